//! The engine on small in-memory rolls: bad input is refused with an error naming the roll,
//! the file and the line (a broken roll is refused whole); evals, phases and script options;
//! packages resolved to Debian's names.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use vcds_rolls::{
    fs, AttributeLayers, Deferred, EvalRequest, Evaluator, Mapping, PackageMap, PackageMaps, Phase,
    Piece, Problem, Roll, RollError, RollSet, RollSource, Section, Target,
};

const ROOT: &str = "<kickstart><post>\nrocks add appliance compute membership=Compute node=compute\n</post></kickstart>";

fn source(name: &str, files: &[(&str, &str)]) -> RollSource {
    RollSource {
        name: name.to_string(),
        files: files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn set(rolls: &[RollSource]) -> Result<RollSet, RollError> {
    let parsed = rolls
        .iter()
        .map(|s| Roll::parse(s).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    RollSet::new(parsed)
}

/// One compute host's profile: default target and attributes, evals left alone.
fn compute(rolls: &RollSet) -> Result<vcds_rolls::Profile, RollError> {
    rolls.profile(
        "compute",
        &Target::default(),
        &AttributeLayers::default(),
        &Deferred,
    )
}

/// The roll, file and line of an error, and its problem.
fn place(err: RollError) -> (String, String, u32, Problem) {
    match err {
        RollError::At {
            roll,
            file,
            line,
            problem,
        } => (roll, file, line, *problem),
        other => panic!("no place in {other:?}"),
    }
}

#[test]
fn malformed_xml_names_roll_file_and_line() {
    let bad = source(
        "r",
        &[("nodes/a.xml", "<kickstart>\n<post>\n</pre>\n</kickstart>")],
    );
    let (roll, file, line, problem) = place(Roll::parse(&bad).unwrap_err());
    assert_eq!(
        (roll.as_str(), file.as_str(), line),
        ("r", "nodes/a.xml", 3)
    );
    assert!(matches!(problem, Problem::Xml(_)));
    let doctype = source(
        "r",
        &[(
            "nodes/a.xml",
            "<!DOCTYPE k [<!ENTITY x \"y\">]><kickstart/>",
        )],
    );
    assert!(matches!(
        place(Roll::parse(&doctype).unwrap_err()).3,
        Problem::Xml(vcds_xml::XmlError::Doctype)
    ));
    let graph = source(
        "r",
        &[(
            "graphs/default/g.xml",
            "<graph>\n<edge from=\"a\" to=\"b\">\n</graph>",
        )],
    );
    let (_, file, line, _) = place(Roll::parse(&graph).unwrap_err());
    assert_eq!((file.as_str(), line), ("graphs/default/g.xml", 3));
}

#[test]
fn bad_conditions_name_their_place() {
    let node = source(
        "r",
        &[(
            "nodes/a.xml",
            "<kickstart>\n\n<package cond=\"os == \">x</package></kickstart>",
        )],
    );
    let (_, file, line, problem) = place(Roll::parse(&node).unwrap_err());
    assert_eq!((file.as_str(), line), ("nodes/a.xml", 3));
    assert!(
        matches!(problem, Problem::Cond(ref e) if e.column == 6),
        "{problem}"
    );
    let graph = source(
        "r",
        &[(
            "graphs/default/g.xml",
            "<graph>\n<edge from=\"a\">\n<to cond=\"import os\">b</to></edge></graph>",
        )],
    );
    let (_, file, line, problem) = place(Roll::parse(&graph).unwrap_err());
    assert_eq!((file.as_str(), line), ("graphs/default/g.xml", 2));
    assert!(matches!(problem, Problem::Cond(_)));
}

#[test]
fn missing_node_file_names_the_edge() {
    let graph = "<graph>\n\n<edge from=\"compute\" to=\"ghost\"/></graph>";
    let r = source(
        "r",
        &[("nodes/compute.xml", ROOT), ("graphs/default/g.xml", graph)],
    );
    let (roll, file, line, problem) = place(set(&[r]).unwrap_err());
    assert_eq!(
        (roll.as_str(), file.as_str(), line),
        ("r", "graphs/default/g.xml", 3)
    );
    assert!(matches!(problem, Problem::MissingNodeFile { ref node } if node == "ghost"));
}

#[test]
fn order_cycles_are_refused_with_the_cycle() {
    let one = source(
        "one",
        &[(
            "graphs/default/g.xml",
            "<graph>\n<order head=\"a\" tail=\"b\"/>\n<order head=\"b\" tail=\"a\"/></graph>",
        )],
    );
    let (_, _, _, problem) = place(Roll::parse(&one).unwrap_err());
    assert!(
        matches!(problem, Problem::OrderCycle(ref c) if c.len() == 3),
        "{problem}"
    );
    // Each roll alone is fine; enabled together they contradict each other.
    let a = source(
        "a",
        &[
            ("nodes/compute.xml", ROOT),
            (
                "graphs/default/a.xml",
                "<graph><order head=\"x\" tail=\"y\"/></graph>",
            ),
        ],
    );
    let b = source(
        "b",
        &[(
            "graphs/default/b.xml",
            "<graph>\n<order head=\"y\"><tail>x</tail></order></graph>",
        )],
    );
    let err = set(&[a, b]).unwrap_err();
    assert!(
        err.to_string().contains("cycle: x → y → x")
            || err.to_string().contains("cycle: y → x → y"),
        "{err}"
    );
    // HEAD and TAIL take part: something before HEAD cannot also come after TAIL.
    let ht = source(
        "h",
        &[(
            "graphs/default/g.xml",
            "<graph><order tail=\"HEAD\" head=\"p\"/><order head=\"TAIL\" tail=\"p\"/></graph>",
        )],
    );
    assert!(matches!(
        place(Roll::parse(&ht).unwrap_err()).3,
        Problem::OrderCycle(_)
    ));
}

#[test]
fn unknown_appliance_and_unknown_attribute() {
    let r = source("r", &[("nodes/compute.xml", ROOT)]);
    let rolls = set(&[r]).unwrap();
    let layers = AttributeLayers::default();
    let err = rolls
        .profile("gpu", &Target::default(), &layers, &Deferred)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown appliance \"gpu\"; the enabled rolls define: compute"
    );
    let r = source("r", &[("nodes/compute.xml", "<kickstart><post>\nrocks add appliance compute node=compute\n\necho &nope;</post></kickstart>")]);
    let err = set(&[r])
        .unwrap()
        .profile("compute", &Target::default(), &layers, &Deferred)
        .unwrap_err();
    let (_, file, line, problem) = place(err);
    assert_eq!((file.as_str(), line), ("nodes/compute.xml", 4));
    assert!(matches!(problem, Problem::UnknownAttribute { ref name } if name == "nope"));
}

#[test]
fn script_text_cannot_end_its_section() {
    let r = source("r", &[("nodes/compute.xml", "<kickstart><post>\nrocks add appliance compute node=compute\n%end\n%post\nrm -rf /</post></kickstart>")]);
    let err = set(&[r])
        .unwrap()
        .profile(
            "compute",
            &Target::default(),
            &AttributeLayers::default(),
            &Deferred,
        )
        .unwrap_err();
    assert!(matches!(place(err).3, Problem::SectionBreak(ref l) if l == "%end"));
}

#[test]
fn a_broken_roll_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let roll = dir.path().join("half");
    std::fs::create_dir_all(roll.join("nodes")).unwrap();
    std::fs::write(roll.join("nodes/compute.xml"), ROOT).unwrap();
    std::fs::write(
        roll.join("nodes/zz-broken.xml"),
        "<kickstart><post></kickstart>",
    )
    .unwrap();
    let (roll_name, file, _, _) = place(fs::load_roll(&roll).unwrap_err());
    assert_eq!(
        (roll_name.as_str(), file.as_str()),
        ("half", "nodes/zz-broken.xml")
    );
    std::fs::write(
        roll.join("nodes/zz-broken.xml"),
        b"<kickstart>\xff</kickstart>",
    )
    .unwrap();
    assert!(matches!(
        place(fs::load_roll(&roll).unwrap_err()).3,
        Problem::NotUtf8
    ));
    std::fs::remove_file(roll.join("nodes/zz-broken.xml")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", roll.join("nodes/zz-link.xml")).unwrap();
    assert!(matches!(fs::load_roll(&roll), Err(RollError::Io { .. })));
    std::fs::remove_file(roll.join("nodes/zz-link.xml")).unwrap();
    assert_eq!(fs::load_roll(&roll).unwrap().name(), "half");
}

/// Answers evals the way a frontend would, to check how output is spliced in.
struct Frontend;

impl Evaluator for Frontend {
    fn eval(&self, request: &EvalRequest<'_>) -> Result<Option<String>, String> {
        match request.script.trim() {
            "gen_root_pw" => Ok(Some("$6$salt$hash".to_string())),
            "report host" if request.xml => Ok(Some(format!(
                "<file name=\"/etc/who\" perms=\"0600\">{} &amp; co</file><eval>nested</eval>",
                request.attributes["hostname"]
            ))),
            "fail" => Err("exit status 1".to_string()),
            _ => Ok(None),
        }
    }
}

#[test]
fn evals_are_spliced_in_by_the_evaluator() {
    let node = "<kickstart>\n<main><rootpw>--iscrypted <eval>gen_root_pw</eval></rootpw></main>\n<post>\nrocks add appliance compute node=compute\n<eval mode=\"xml\">report host</eval>\n<eval>later</eval></post></kickstart>";
    let rolls = set(&[source("r", &[("nodes/compute.xml", node)])]).unwrap();
    let layers = AttributeLayers::default();
    let profile = rolls
        .profile("compute", &Target::default(), &layers, &Frontend)
        .unwrap();
    let ks = profile.kickstart();
    assert!(ks.contains("\nrootpw --iscrypted $6$salt$hash\n"), "{ks}");
    assert!(
        ks.contains("cat > /etc/who << 'EOF'\ncompute-0-0 & co\nEOF\nchmod 0600 /etc/who\n"),
        "{ks}"
    );
    assert!(ks.contains("# <eval> blocks left for a frontend to run: nodes/compute.xml:5, nodes/compute.xml:6\n"), "{ks}");
    let body = &profile.nodes[0].scripts[0].body;
    let pending: Vec<_> = body
        .iter()
        .filter(|p| matches!(p, Piece::Eval(_)))
        .collect();
    assert_eq!(
        pending.len(),
        2,
        "the nested eval from eval output and the one the evaluator left"
    );
    let xml = profile.to_xml();
    assert!(xml.contains("<eval shell=\"sh\">later</eval>"), "{xml}");

    let failing = "<kickstart>\n<post>\nrocks add appliance compute node=compute\n<eval>fail</eval></post></kickstart>";
    let rolls = set(&[source("r", &[("nodes/compute.xml", failing)])]).unwrap();
    let (_, _, line, problem) = place(
        rolls
            .profile("compute", &Target::default(), &layers, &Frontend)
            .unwrap_err(),
    );
    assert_eq!(line, 4);
    assert!(matches!(problem, Problem::Eval(ref r) if r == "exit status 1"));
}

#[test]
fn appliances_without_a_root_node_are_not_kickstartable() {
    let node = "<kickstart><post>\nrocks add appliance compute node=compute\nrocks add appliance power membership='Power Distribution Unit'\n</post></kickstart>";
    let rolls = set(&[source("r", &[("nodes/compute.xml", node)])]).unwrap();
    assert_eq!(rolls.kickstartable(), ["compute"]);
    let err = rolls.profile(
        "power",
        &Target::default(),
        &AttributeLayers::default(),
        &Deferred,
    );
    assert!(matches!(err, Err(RollError::NotKickstartable { ref name }) if name == "power"));
}

#[test]
fn phases_select_install_or_reconfigure_scripts() {
    let node = "<kickstart>
<package>p</package>
<post>\nrocks add appliance compute node=compute\n</post>
<post arg=\"--nochroot\" log=\"/tmp/mine.log\">echo chrootless</post>
<configure phase=\"reconfigure\">echo reconfigure only</configure>
<configure phase=\"post,reconfigure\">echo both</configure>
<configure phase=\"pre\">echo early</configure>
</kickstart>";
    let rolls = set(&[source("r", &[("nodes/compute.xml", node)])]).unwrap();
    let layers = AttributeLayers::default();
    let install = compute(&rolls).unwrap();
    let scripts = &install.nodes[0].scripts;
    let texts: Vec<String> = scripts.iter().map(|s| format!("{:?}", s.body)).collect();
    assert_eq!(scripts.len(), 4, "{texts:?}");
    assert!(texts.iter().all(|t| !t.contains("reconfigure only")));
    assert_eq!(scripts[1].log, "/tmp/mine.log");
    assert_eq!(scripts[3].section, Section::Pre);
    let ks = install.kickstart();
    assert!(
        ks.contains("%post --interpreter=/bin/bash --log=/tmp/mine.log --nochroot\n"),
        "{ks}"
    );
    assert!(
        ks.contains("%pre --interpreter=/bin/bash --log=/tmp/ks-pre.log\n"),
        "{ks}"
    );

    let reconfigure = Target {
        phase: Phase::Reconfigure,
        ..Target::default()
    };
    let again = rolls
        .profile("compute", &reconfigure, &layers, &Deferred)
        .unwrap();
    let ks = again.kickstart();
    assert!(
        ks.contains("echo reconfigure only") && ks.contains("echo both"),
        "{ks}"
    );
    assert!(
        !ks.contains("echo chrootless") && !ks.contains("%packages"),
        "{ks}"
    );
}

#[test]
fn section_options_cannot_be_smuggled_in() {
    for post in [
        "<post arg=\"--nochroot; reboot\">x</post>",
        "<post interpreter=\"/bin/sh -x\">x</post>",
        "<post log=\"&amp;x y\">x</post>",
    ] {
        let node = format!("<kickstart>\n{post}\n<post>\nrocks add appliance compute node=compute\n</post></kickstart>");
        let rolls = set(&[source("r", &[("nodes/compute.xml", &node)])]).unwrap();
        let err = compute(&rolls).unwrap_err();
        assert!(
            matches!(err.problem(), Some(Problem::BadValue { .. })),
            "{post}: {err}"
        );
    }
}

#[test]
fn later_rolls_win_and_extend_or_replace_node_files() {
    let root = "<kickstart><package>base</package><post>\nrocks add appliance compute node=compute\n</post></kickstart>";
    let a = source(
        "a",
        &[
            ("nodes/compute.xml", root),
            (
                "nodes/x.xml",
                "<kickstart><package>from-a</package></kickstart>",
            ),
        ],
    );
    let b = source(
        "b",
        &[
            (
                "nodes/x.xml",
                "<kickstart><package>from-b</package></kickstart>",
            ),
            (
                "nodes/extend-compute.xml",
                "<kickstart><package>extra</package></kickstart>",
            ),
            (
                "graphs/default/b.xml",
                "<graph><edge from=\"compute\" to=\"x\"/></graph>",
            ),
        ],
    );
    let rolls = set(&[a.clone(), b.clone()]).unwrap();
    let p = compute(&rolls).unwrap();
    let packages: Vec<&str> = p
        .nodes
        .iter()
        .flat_map(|n| &n.packages)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        packages,
        ["base", "extra", "from-b"],
        "no <order>: alphabetical"
    );
    let c = source(
        "c",
        &[(
            "nodes/replace-compute.xml",
            "<kickstart><package>replaced</package></kickstart>",
        )],
    );
    let rolls = set(&[a, b, c]).unwrap();
    let p = compute(&rolls).unwrap();
    let files: Vec<&str> = p.nodes.iter().map(|n| n.file.as_str()).collect();
    assert_eq!(
        files,
        [
            "nodes/replace-compute.xml",
            "nodes/extend-compute.xml",
            "nodes/x.xml"
        ]
    );
}

#[test]
fn parsed_rolls_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Roll>();
    shareable::<RollSet>();
    shareable::<vcds_rolls::Profile>();
}

#[test]
fn boot_text_goes_to_the_first_boot_scripts() {
    let node = "<kickstart><post>\nrocks add appliance compute node=compute\n</post>
<boot order=\"pre\">echo &hostname; early</boot><boot>echo late &amp; done</boot></kickstart>";
    let rolls = set(&[source("r", &[("nodes/compute.xml", node)])]).unwrap();
    let profile = compute(&rolls).unwrap();
    let ks = profile.kickstart();
    assert!(
        ks.contains("cat >> /etc/sysconfig/rocks-pre << 'EOF'\necho compute-0-0 early\nEOF\n"),
        "{ks}"
    );
    assert!(
        ks.contains("cat >> /etc/sysconfig/rocks-post << 'EOF'\necho late & done\nEOF\n"),
        "{ks}"
    );
    assert!(profile
        .to_xml()
        .contains("<boot order=\"post\">echo late &amp; done</boot>"));
}

/// Two rolls that name packages in Rocks' (RPM) names, each with its own Debian mapping.
fn debian_rolls() -> RollSet {
    let base = source(
        "base",
        &[
            (
                "nodes/compute.xml",
                "<kickstart><package>openssh-server</package><package>openmpi</package>\
                 <package>openssh-server</package>\
                 <package>rocks-pylib</package><package>rocks-pylib</package>\
                 <package>perl-DBI</package><package type=\"meta\">x11</package>\
                 <package>gcc-c++</package><package disable=\"true\">vim-minimal</package>\
                 <post>\nrocks add appliance compute membership=Compute node=compute\n</post>\
                 </kickstart>",
            ),
            (
                "debian-packages",
                "# RPM name   Debian names\nopenmpi openmpi-bin libopenmpi-dev\n\
                 rocks-pylib - Rocks' own Python library\nvim-minimal vim-tiny\n\
                 @x11 xorg\ngcc-c++ g++\n",
            ),
        ],
    );
    let site = source(
        "site",
        &[
            (
                "nodes/extend-compute.xml",
                "<kickstart><package>vim-tiny</package><package>gcc-c++</package>\
                 <package>rocks-pylib</package></kickstart>",
            ),
            ("debian-packages", "perl-DBI libdbi-perl\ngcc-c++ g++-12\n"),
        ],
    );
    set(&[base, site]).unwrap()
}

#[test]
fn packages_resolve_to_debian_names_through_the_rolls_mappings() {
    let rolls = debian_rolls();
    let profile = compute(&rolls).unwrap();
    let debian = profile.debian_packages(&PackageMaps::new(&rolls, &BTreeMap::new()));
    // Unmapped names stay; each roll's own mapping first (gcc-c++), else the other rolls'
    // (perl-DBI); groups are mapped as @name.
    assert_eq!(
        debian.names().collect::<Vec<_>>(),
        [
            "g++",
            "g++-12",
            "libdbi-perl",
            "libopenmpi-dev",
            "openmpi-bin",
            "openssh-server",
            "xorg"
        ]
    );
    // vim-minimal is disabled in base and maps to vim-tiny: that wins over site's vim-tiny.
    let removed: Vec<_> = debian.removed.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(removed, ["vim-tiny"]);
    let asked: Vec<_> = debian.removed[0]
        .requests
        .iter()
        .map(|r| (r.roll.as_str(), r.package.as_str(), r.disabled))
        .collect();
    assert_eq!(
        asked,
        [("base", "vim-minimal", true), ("site", "vim-tiny", false)]
    );
    // Nothing on Debian: once per roll that asks, with the reason of the mapping used.
    let dropped: Vec<_> = debian
        .dropped
        .iter()
        .map(|d| (d.request.roll.as_str(), d.reason.as_str()))
        .collect();
    assert_eq!(
        dropped,
        [
            ("base", "Rocks' own Python library"),
            ("site", "Rocks' own Python library")
        ]
    );
    let dbi = &debian.install[2].requests[0];
    assert_eq!(
        (dbi.roll.as_str(), dbi.file.as_str()),
        ("base", "nodes/compute.xml")
    );
    let mapped = dbi.mapping.as_ref().unwrap();
    assert_eq!((mapped.roll.as_str(), mapped.line), ("site", 1));
    let ssh = &debian.install[5];
    assert_eq!(
        (ssh.requests.len(), &ssh.requests[0].mapping),
        (1, &None),
        "named twice, once"
    );

    // The provider's mapping for a roll wins over the roll's own.
    let extra = BTreeMap::from([(
        "base".to_string(),
        PackageMap::parse("base", "base.packages", "openmpi mpich\n").unwrap(),
    )]);
    let debian = profile.debian_packages(&PackageMaps::new(&rolls, &extra));
    assert!(debian.names().any(|n| n == "mpich"));
    assert!(!debian.names().any(|n| n == "openmpi-bin"));
}

#[test]
fn unavailable_debian_packages_are_refused_with_the_rolls_that_ask() {
    let rolls = debian_rolls();
    let debian = compute(&rolls)
        .unwrap()
        .debian_packages(&PackageMaps::new(&rolls, &BTreeMap::new()));
    let index: BTreeSet<&str> = ["g++", "libdbi-perl", "libopenmpi-dev", "openmpi-bin"].into();
    let err = debian.check(&|n| index.contains(n)).unwrap_err();
    let missing: Vec<_> = err.missing.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        missing,
        ["g++-12", "openssh-server", "xorg"],
        "kept-out vim-tiny is not checked"
    );
    assert_eq!(
        err.to_string(),
        "no apt source holds 3 packages: g++-12 (package gcc-c++ of roll site, \
         nodes/extend-compute.xml, mapped by debian-packages:2 (roll site)); openssh-server (package \
         openssh-server of roll base, nodes/compute.xml); xorg (package @x11 of roll base, \
         nodes/compute.xml, mapped by debian-packages:5 (roll base))"
    );
    let all: BTreeSet<&str> = index.iter().copied().chain(missing).collect();
    assert!(debian.check(&|n| all.contains(n)).is_ok());
}

#[test]
fn a_debian_kickstart_lists_debian_names() {
    let rolls = debian_rolls();
    let profile = compute(&rolls).unwrap();
    let debian = profile.debian_packages(&PackageMaps::new(&rolls, &BTreeMap::new()));
    let ks = profile.debian_kickstart(&debian);
    assert!(ks.contains(
        "\n%packages --ignoremissing\n# Debian package names\n\
         # rocks-pylib (base, nodes/compute.xml): nothing on Debian: Rocks' own Python library\n\
         # rocks-pylib (site, nodes/extend-compute.xml): nothing on Debian: Rocks' own Python library\n\
         g++\ng++-12\nlibdbi-perl\nlibopenmpi-dev\nopenmpi-bin\nopenssh-server\nxorg\n-vim-tiny\n%end\n"
    ), "{ks}");
    // Everything but %packages is the kickstart as Rocks' names give it.
    let rocks = profile.kickstart();
    assert!(rocks.contains("\n@x11\ngcc-c++\nopenmpi\n") && rocks.contains("\n-vim-minimal\n"));
    let outside = |ks: &str| {
        let (head, rest) = ks.split_once("%packages").unwrap();
        format!("{head}{}", rest.split_once("%end\n").unwrap().1)
    };
    assert_eq!(outside(&ks), outside(&rocks));
}

#[test]
fn debian_mappings_load_with_the_roll_or_from_a_providers_directory() {
    let dir = tempfile::tempdir().unwrap();
    let roll = dir.path().join("mpi");
    std::fs::create_dir_all(roll.join("nodes")).unwrap();
    std::fs::write(roll.join("nodes/compute.xml"), ROOT).unwrap();
    std::fs::write(roll.join("debian-packages"), "openmpi openmpi-bin\n").unwrap();
    let loaded = fs::load_roll(&roll).unwrap();
    assert_eq!(
        loaded.package_map().get("openmpi").unwrap().mapping,
        Mapping::Debian(vec!["openmpi-bin".to_string()])
    );
    std::fs::write(
        roll.join("debian-packages"),
        "openmpi openmpi-bin\nOpenMPI\n",
    )
    .unwrap();
    let (roll_name, file, line, problem) = place(fs::load_roll(&roll).unwrap_err());
    assert_eq!(
        (roll_name.as_str(), file.as_str(), line),
        ("mpi", "debian-packages", 2)
    );
    assert!(matches!(problem, Problem::MapTargetMissing(name) if name == "OpenMPI"));

    let maps = dir.path().join("debian");
    std::fs::create_dir_all(&maps).unwrap();
    std::fs::write(maps.join("core.packages"), "rocks-pylib - Rocks' own\n").unwrap();
    std::fs::write(maps.join("README"), "not a mapping").unwrap();
    let loaded = fs::load_package_maps(&maps).unwrap();
    assert_eq!(loaded.keys().collect::<Vec<_>>(), ["core"]);
    let entry = loaded["core"].get("rocks-pylib").unwrap();
    assert_eq!(
        entry.origin.file,
        maps.join("core.packages").display().to_string()
    );
    std::fs::write(maps.join("hpc.packages"), "\n\nopenmpi Open_MPI\n").unwrap();
    let (roll_name, file, line, problem) = place(fs::load_package_maps(&maps).unwrap_err());
    assert_eq!((roll_name.as_str(), line), ("hpc", 3));
    assert!(file.ends_with("debian/hpc.packages"), "{file}");
    assert!(matches!(problem, Problem::BadDebianName(name) if name == "Open_MPI"));
}

#[test]
fn apt_package_names_come_from_the_lists_packages_and_provides() {
    let dir = tempfile::tempdir().unwrap();
    let err = fs::apt_package_names(dir.path()).unwrap_err();
    assert!(
        matches!(&err, RollError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err}"
    );
    std::fs::write(
        dir.path()
            .join("deb.example_dists_x_main_binary-amd64_Packages"),
        "Package: apache2\nVersion: 2.4\nProvides: httpd, httpd-cgi (= 1)\nDescription: web\n \
         Package: not-a-field\n\nPackage: ed\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("lock"), "").unwrap();
    let names = fs::apt_package_names(dir.path()).unwrap();
    assert_eq!(
        names.iter().map(String::as_str).collect::<Vec<_>>(),
        ["apache2", "ed", "httpd", "httpd-cgi"]
    );
}
