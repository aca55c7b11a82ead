//! The real Rocks rolls core, base and hpc (from ../shared when present): every appliance
//! generates, every kickstart passes pykickstart's ksvalidator for the OS the rolls target, and
//! every appliance's packages resolve, through the mappings in rolls/debian, to packages of
//! Debian's archive as this machine's apt lists have it.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use vcds_rolls::{
    fs, site_defaults, AttributeLayers, DebianPackages, Deferred, Origin, PackageMaps, Piece,
    Profile, RollSet, Target,
};

fn fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/rocks");
    if dir.join("core").is_dir() {
        Some(dir)
    } else {
        {
            // Past the test harness's capture, so a skip is seen.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "SKIP: ../shared/fixtures not present");
        }
        None
    }
}

fn real_rolls(dir: &std::path::Path) -> RollSet {
    let rolls = ["core", "base", "hpc"].map(|r| Arc::new(fs::load_roll(&dir.join(r)).unwrap()));
    RollSet::new(rolls).unwrap()
}

/// Every kickstartable appliance, generated for the rolls' own target: Rocks 7 (the snapshot is
/// Rocks 6.2/7.0 and carries the rocks7 graph), so CentOS 7 and RHEL7 kickstart syntax.
fn all_profiles(set: &RollSet) -> Vec<Profile> {
    let layers = AttributeLayers {
        global: site_defaults(),
        ..Default::default()
    };
    set.kickstartable()
        .iter()
        .map(|a| {
            set.profile(a, &Target::default(), &layers, &Deferred)
                .unwrap()
        })
        .collect()
}

#[test]
fn every_appliance_of_core_base_hpc_generates() {
    let Some(dir) = fixtures() else { return };
    let set = real_rolls(&dir);
    assert_eq!(
        set.kickstartable(),
        ["compute", "devel-server", "frontend", "login", "nas"]
    );
    assert_eq!(set.appliances()["compute"].attributes["exec_host"], "true");
    for profile in all_profiles(&set) {
        let ks = profile.kickstart();
        assert!(
            ks.contains("\n%packages --ignoremissing\n"),
            "{}",
            profile.appliance
        );
        assert!(
            ks.contains("%post --interpreter=/bin/bash"),
            "{}",
            profile.appliance
        );
        assert!(
            profile.nodes.iter().any(|n| n.vertex == profile.root),
            "{} lacks its root node",
            profile.appliance
        );
        let xml = profile.to_xml();
        let doc = vcds_xml::parse(
            &xml,
            &vcds_xml::Limits {
                max_bytes: 16 << 20,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            doc.root_element().attribute("appliance"),
            Some(profile.appliance.as_str())
        );
    }
}

#[test]
fn real_rolls_decide_like_rocks() {
    let Some(dir) = fixtures() else { return };
    let set = real_rolls(&dir);
    let profiles = all_profiles(&set);
    let by_name = |name: &str| profiles.iter().find(|p| p.appliance == name).unwrap();
    let files = |p: &Profile| p.nodes.iter().map(|n| n.vertex.clone()).collect::<Vec<_>>();
    let compute = by_name("compute");
    let frontend = by_name("frontend");
    // compute → compute-appliance → client (reverse edge form); rocks 7 → grub2-client.
    for vertex in [
        "compute-appliance",
        "client",
        "grub2-client",
        "mpi",
        "hpc-client",
    ] {
        assert!(
            files(compute).iter().any(|v| v == vertex),
            "compute lacks {vertex}"
        );
    }
    for vertex in ["grub-client", "server", "x11", "pvm", "fail2ban"] {
        assert!(
            !files(compute).iter().any(|v| v == vertex),
            "compute has {vertex}"
        );
    }
    // login sets fail2ban=true for its appliance; `cond="fail2ban"` follows.
    assert!(files(by_name("login")).iter().any(|v| v == "fail2ban"));
    // HEAD-ordered python-development precedes base; compute-appliance precedes base.
    let pos = |p: &Profile, v: &str| files(p).iter().position(|x| x == v).unwrap();
    assert!(pos(compute, "python-development") < pos(compute, "base"));
    assert!(pos(compute, "compute-appliance") < pos(compute, "base"));
    assert!(pos(frontend, "database") < pos(frontend, "database-schema"));
    assert!(pos(frontend, "database-schema") < pos(frontend, "database-data"));
    // Attribute substitution, package filters and main directives.
    let ks = compute.kickstart();
    assert!(ks.contains("\nnspr.x86_64\n"), "&arch; in a package name");
    assert!(ks.contains("\nurl --url http://10.1.1.1/install/rocks-dist/x86_64\n"));
    assert!(ks.contains("\ninstall\n%include /tmp/partition-info\n"));
    assert!(
        !ks.contains("openmpi-libs"),
        "rocks_version_major == 6 package"
    );
    assert!(ks.contains(
        "%post --interpreter=/bin/bash --log=/mnt/sysimage/var/log/rocks-install.log --nochroot"
    ));
    assert!(ks.contains("# rootpw left out: its value comes from an <eval>"));
    let fe = frontend.kickstart();
    assert!(fe.contains("\nrootpw --iscrypted *\n"));
    assert!(fe.contains("%post --interpreter=/opt/rocks/bin/python"));
    assert!(
        !fe.contains("Kickstart_PrivateHostname_old"),
        "reconfigure-only configure sections stay out"
    );
    // The pending evals are kept, with their scripts, in the XML profile.
    let pending = compute
        .nodes
        .iter()
        .flat_map(|n| &n.scripts)
        .flat_map(|s| &s.body);
    assert!(pending.clone().any(|p| matches!(p, Piece::Eval(e) if e.script.contains("rocks report host network compute-0-0"))));
}

/// Each appliance's Debian packages, through the repository's mappings for the stock rolls.
fn debian(set: &RollSet) -> Vec<(Profile, DebianPackages)> {
    let maps = PackageMaps::new(set, &fs::load_package_maps(&maps_dir()).unwrap());
    all_profiles(set)
        .into_iter()
        .map(|p| {
            let debian = p.debian_packages(&maps);
            (p, debian)
        })
        .collect()
}

fn maps_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rolls/debian")
}

#[test]
fn every_appliance_resolves_to_packages_of_debians_archive() {
    let Some(dir) = fixtures() else { return };
    let Some(apt) = common::apt_names() else {
        return;
    };
    let set = real_rolls(&dir);
    for (profile, debian) in debian(&set) {
        let appliance = &profile.appliance;
        if let Err(e) = debian.check(&|n| apt.contains(n)) {
            panic!("{appliance}: {e}");
        }
        assert!(
            debian.removed.is_empty(),
            "{appliance}: the stock rolls disable nothing"
        );
        // Rocks' own packages are mapped explicitly: to nothing, with a reason, or to
        // Debian's counterpart (rocks-openmpi → openmpi-bin …); never kept as they are.
        for d in &debian.dropped {
            assert!(!d.reason.is_empty(), "{appliance}: {}", d.request.package);
        }
        let names: BTreeSet<&str> = debian.names().collect();
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("rocks-") || n.starts_with("foundation-")),
            "{appliance}: {names:?}"
        );
        assert!(debian
            .dropped
            .iter()
            .any(|d| d.request.package == "rocks-pylib"));
        for wanted in [
            "openssh-server",
            "openssh-client",
            "nfs-common",
            "openmpi-bin",
            "python3",
        ] {
            assert!(names.contains(wanted), "{appliance} lacks {wanted}");
        }
        assert!(!names.contains("nfs-utils") && !names.contains("rocks-pylib"));
    }
    let by_name = debian(&set);
    let names = |appliance: &str| {
        let (_, debian) = by_name
            .iter()
            .find(|(p, _)| p.appliance == appliance)
            .unwrap();
        debian.names().map(str::to_string).collect::<BTreeSet<_>>()
    };
    let frontend = names("frontend");
    for server in [
        "isc-dhcp-server",
        "apache2",
        "bind9",
        "tftpd-hpa",
        "mariadb-client",
    ] {
        assert!(frontend.contains(server), "frontend lacks {server}");
    }
    assert!(!names("compute").contains("isc-dhcp-server"));
    assert!(names("compute").contains("isc-dhcp-client"));
    // More than names: each appliance's packages install together (no conflicts, e.g. the
    // BIOS and EFI GRUB that Red Hat installs side by side). All appliances' at once is one
    // slow apt run instead of five, and what installs together, any part of it does too.
    let all: BTreeSet<&str> = by_name.iter().flat_map(|(_, d)| d.names()).collect();
    if let Some(Err(report)) = common::apt_installable(all) {
        panic!("{report}");
    }
}

/// No mapping line is dead data: each is used by some appliance of the stock rolls.
#[test]
fn every_mapping_of_the_stock_rolls_is_used() {
    let Some(dir) = fixtures() else { return };
    let set = real_rolls(&dir);
    let mut used: BTreeSet<(String, u32)> = BTreeSet::new();
    let mut mark = |origin: &Option<Origin>| {
        if let Some(o) = origin {
            used.insert((o.file.clone(), o.line));
        }
    };
    for (_, debian) in debian(&set) {
        for p in debian.install.iter().chain(&debian.removed) {
            p.requests.iter().for_each(|r| mark(&r.mapping));
        }
        debian.dropped.iter().for_each(|d| mark(&d.request.mapping));
    }
    let maps = fs::load_package_maps(&maps_dir()).unwrap();
    assert_eq!(maps.keys().collect::<Vec<_>>(), ["base", "core", "hpc"]);
    for map in maps.values() {
        for (name, entry) in map.entries() {
            let at = (entry.origin.file.clone(), entry.origin.line);
            assert!(
                used.contains(&at),
                "{name} ({}:{}) is used by no appliance",
                at.0,
                at.1
            );
        }
    }
}

#[test]
fn kickstarts_pass_ksvalidator() {
    let Some(dir) = fixtures() else { return };
    let set = real_rolls(&dir);
    let mut kickstarts: Vec<(String, String)> = Vec::new();
    for (p, debian) in debian(&set) {
        kickstarts.push((p.appliance.clone(), p.kickstart()));
        kickstarts.push((
            format!("{}-debian", p.appliance),
            p.debian_kickstart(&debian),
        ));
    }
    assert_eq!(kickstarts.len(), 10);
    let Some(failures) = common::ksvalidate(&Target::default().kickstart_version(), &kickstarts)
    else {
        return;
    };
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
