//! The project's own rolls (rolls/vcds-base, rolls/vcds-compute) load and generate, through
//! the offline entry point behind `vcds kickstart` as well as the library API, for Debian
//! nodes whose packages are all in Debian's archive (as this machine's apt lists have it).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use vcds_rolls::{
    fs, kickstart, site_defaults, AttributeLayers, DebianOutput, Deferred, Output, PackageMaps,
    RollError, RollSet, Target,
};

fn roll_dirs() -> [PathBuf; 2] {
    let rolls = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rolls");
    [rolls.join("vcds-base"), rolls.join("vcds-compute")]
}

fn own_rolls() -> RollSet {
    RollSet::new(roll_dirs().map(|d| Arc::new(fs::load_roll(&d).unwrap()))).unwrap()
}

/// A compute node's kickstart through the entry point, for the default target.
fn compute(attrs: &[(String, String)], output: Output<'_>) -> Result<String, RollError> {
    kickstart(&roll_dirs(), "compute", None, None, None, attrs, output)
}

fn attr(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[test]
fn own_rolls_load_and_declare_their_appliances() {
    let set = own_rolls();
    assert_eq!(set.kickstartable(), ["compute", "frontend"]);
    assert_eq!(
        set.appliances()["compute"].root.as_deref(),
        Some("vcds-compute")
    );
    assert_eq!(
        set.appliances()["frontend"].attributes["primary_net"],
        "public"
    );
    let names: Vec<&str> = set.rolls().map(|r| r.name()).collect();
    assert_eq!(names, ["vcds-base", "vcds-compute"]);
    assert!(set.rolls().all(|r| r.version() == Some("7.0")));
    assert_eq!(set.release(), Some(7));
}

#[test]
fn compute_kickstart_from_the_entry_point() {
    let attrs = [attr("hostname", "c100-n1"), attr("hostaddr", "10.1.0.11")];
    let ks = compute(&attrs, Output::Kickstart).unwrap();
    assert!(
        ks.contains("cat > /etc/hostname << 'EOF'\nc100-n1\nEOF\n"),
        "{ks}"
    );
    assert!(
        ks.contains("\taddress 10.1.0.11\n"),
        "<var ref=> then <var name=>: {ks}"
    );
    assert!(ks.contains("auto eth0\niface eth0 inet static"));
    assert!(ks.contains("\n-nano\n") && ks.contains("\nqemu-guest-agent\n"));
    assert!(
        ks.contains("cat > /etc/vcds/batch-role"),
        "exec_host is true for compute"
    );
    assert!(
        !ks.contains("submit_host\n"),
        "submit_host is false for compute"
    );
    assert!(!ks.contains("ttyS0"), "no serial console unless asked");
    assert!(ks.contains("%post --interpreter=/bin/sh --log=/var/log/rocks-install.log\n"));
    let node = ks.find("nodes/vcds-node.xml (vcds-base)").unwrap();
    let network = ks.find("nodes/vcds-network.xml (vcds-base)").unwrap();
    let root = ks.find("nodes/vcds-compute.xml (vcds-compute)").unwrap();
    assert!(node < network && network < root, "orders and TAIL honoured");

    let serial = kickstart(
        &roll_dirs(),
        "compute",
        None,
        Some(7),
        Some("i386"),
        &[attr("vcds_console", "serial")],
        Output::Kickstart,
    )
    .unwrap();
    assert!(
        serial.contains("/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"),
        "cond on an edge"
    );
    assert!(!serial.contains("qemu-guest-agent"), "arch= on a package");
}

#[test]
fn xml_profile_from_the_entry_point() {
    let xml = kickstart(
        &roll_dirs(),
        "frontend",
        Some("linux"),
        Some(7),
        Some("x86_64"),
        &[],
        Output::Xml,
    )
    .unwrap();
    let doc = vcds_xml::parse(&xml, &vcds_xml::Limits::default()).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "profile");
    assert_eq!(root.attribute("root"), Some("vcds-frontend"));
    let nodes: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("node"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(
        nodes.first(),
        Some(&"vcds-appliances"),
        "HEAD-ordered node first"
    );
    assert_eq!(nodes.last(), Some(&"vcds-frontend"));
    let file = doc.descendants().find(|n| {
        n.has_tag_name("file") && n.attribute("name") == Some("/etc/dnsmasq.d/vcds.conf")
    });
    assert!(file
        .unwrap()
        .text()
        .unwrap()
        .contains("dhcp-range=10.1.0.0,static,255.255.0.0"));
}

#[test]
fn entry_point_errors() {
    let err = kickstart(
        &roll_dirs(),
        "nas",
        None,
        None,
        None,
        &[],
        Output::Kickstart,
    )
    .unwrap_err();
    assert!(
        matches!(&err, RollError::UnknownAppliance { known, .. } if known == "compute, frontend"),
        "{err}"
    );
    let err = kickstart(
        &[roll_dirs()[0].join("missing")],
        "compute",
        None,
        None,
        None,
        &[],
        Output::Kickstart,
    )
    .unwrap_err();
    assert!(matches!(err, RollError::Io { .. }), "{err}");
    let err = compute(&[attr("bad name", "x")], Output::Kickstart).unwrap_err();
    assert!(matches!(err, RollError::BadAttribute { .. }), "{err}");
    let none: [PathBuf; 0] = [];
    assert!(matches!(
        kickstart(&none, "compute", None, None, None, &[], Output::Kickstart),
        Err(RollError::NoRolls)
    ));
}

#[test]
fn own_kickstarts_pass_ksvalidator() {
    let set = own_rolls();
    let layers = AttributeLayers {
        global: site_defaults(),
        ..Default::default()
    };
    let target = Target::default();
    let maps = PackageMaps::new(&set, &Default::default());
    let mut kickstarts: Vec<(String, String)> = Vec::new();
    for a in set.kickstartable() {
        let profile = set.profile(a, &target, &layers, &Deferred).unwrap();
        let debian = profile.debian_kickstart(&profile.debian_packages(&maps));
        kickstarts.push((a.to_string(), profile.kickstart()));
        kickstarts.push((format!("{a}-debian"), debian));
    }
    let Some(failures) = common::ksvalidate(&target.kickstart_version(), &kickstarts) else {
        return;
    };
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn own_rolls_make_debian_nodes() {
    let set = own_rolls();
    let layers = AttributeLayers {
        global: site_defaults(),
        ..Default::default()
    };
    let maps = PackageMaps::new(&set, &Default::default());
    let debian = |appliance: &str| {
        let profile = set
            .profile(appliance, &Target::default(), &layers, &Deferred)
            .unwrap();
        profile.debian_packages(&maps)
    };
    let (compute, frontend) = (debian("compute"), debian("frontend"));
    for (appliance, packages) in [("compute", &compute), ("frontend", &frontend)] {
        let names: Vec<&str> = packages.names().collect();
        for wanted in [
            "systemd-sysv",
            "linux-image-cloud-amd64",
            "openssh-server",
            "ifupdown",
            "iproute2",
            "ca-certificates",
            "qemu-guest-agent",
        ] {
            assert!(
                names.contains(&wanted),
                "{appliance} lacks {wanted}: {names:?}"
            );
        }
        let removed: Vec<&str> = packages.removed.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(removed, ["nano"], "{appliance}");
        assert!(packages.dropped.is_empty(), "{appliance}");
    }
    // vcds-compute names Rocks' openmpi; its debian-packages gives Debian's.
    let names: Vec<&str> = compute.names().collect();
    assert!(names.contains(&"openmpi-bin") && names.contains(&"libopenmpi-dev"));
    assert!(!names.contains(&"openmpi") && !names.contains(&"dnsmasq"));
    let openmpi = compute
        .install
        .iter()
        .find(|p| p.name == "openmpi-bin")
        .unwrap();
    let mapping = openmpi.requests[0].mapping.as_ref().unwrap();
    assert_eq!(
        (mapping.roll.as_str(), mapping.file.as_str()),
        ("vcds-compute", "debian-packages")
    );
    let names: Vec<&str> = frontend.names().collect();
    assert!(names.contains(&"dnsmasq") && names.contains(&"pxelinux"));
    assert!(!names.contains(&"openmpi-bin"));

    let Some(apt) = common::apt_names() else {
        return;
    };
    for (appliance, packages) in [("compute", &compute), ("frontend", &frontend)] {
        if let Err(e) = packages.check(&|n| apt.contains(n)) {
            panic!("{appliance}: {e}");
        }
        for removed in &packages.removed {
            assert!(apt.contains(&removed.name), "{appliance}: {}", removed.name);
        }
    }
    let all = compute.names().chain(frontend.names());
    if let Some(Err(report)) = common::apt_installable(all) {
        panic!("{report}");
    }
}

#[test]
fn debian_kickstart_from_the_entry_point() {
    let attrs = [attr("hostname", "c100-n1"), attr("vcds_console", "serial")];
    let output = |names_only| {
        Output::Debian(DebianOutput {
            names_only,
            ..Default::default()
        })
    };
    let ks = compute(&attrs, output(false)).unwrap();
    let packages = ks
        .split_once("\n%packages --ignoremissing\n")
        .and_then(|(_, rest)| rest.split_once("%end\n"))
        .unwrap()
        .0;
    assert!(
        packages.starts_with("# Debian package names\n"),
        "{packages}"
    );
    assert!(
        packages.contains("\nlibopenmpi-dev\nlinux-image-cloud-amd64\n"),
        "{packages}"
    );
    assert!(packages.ends_with("\n-nano\n"), "{packages}");
    assert!(!packages.contains("\nopenmpi\n"));
    // What a Debian node's %post sets up: keys-only sshd, a getty on ttyS0, kernel interface
    // names, a machine id of its own; nothing that would act on the installer's system.
    for part in [
        "PasswordAuthentication no\n",
        "ln -sf /dev/null /etc/systemd/network/99-default.link\n",
        "getty.target.wants/serial-getty@ttyS0.service\n",
        ": > /etc/machine-id\n",
        "ExecStart=/usr/bin/ssh-keygen -A\n",
    ] {
        assert!(ks.contains(part), "{part} missing from {ks}");
    }
    assert!(!ks.contains("hostname \"$("), "{ks}");

    let names = compute(&attrs, output(true)).unwrap();
    let names: Vec<&str> = names.lines().collect();
    assert!(
        names.contains(&"openmpi-bin") && !names.contains(&"nano"),
        "{names:?}"
    );
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted and unique");

    // Checked against apt's lists when given some: an unknown name is refused with its roll.
    let Some(_) = common::apt_names() else {
        return;
    };
    let lists = std::path::Path::new("/var/lib/apt/lists");
    let checked = Output::Debian(DebianOutput {
        apt_lists: Some(lists),
        names_only: true,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let maps = dir.path().join("maps");
    std::fs::create_dir(&maps).unwrap();
    std::fs::write(
        maps.join("vcds-compute.packages"),
        "openmpi openmpi-bin no-such-mpi\n",
    )
    .unwrap();
    let with_maps = Output::Debian(DebianOutput {
        package_maps: Some(&maps),
        apt_lists: Some(lists),
        names_only: true,
    });
    assert!(compute(&attrs, checked).is_ok());
    let err = compute(&attrs, with_maps).unwrap_err();
    assert!(
        matches!(&err, RollError::Unavailable(u) if u.missing.len() == 1),
        "{err}"
    );
    assert!(
        err.to_string().contains(
            "no-such-mpi (package openmpi of roll vcds-compute, nodes/vcds-compute-env.xml, mapped by"
        ),
        "{err}"
    );
}
