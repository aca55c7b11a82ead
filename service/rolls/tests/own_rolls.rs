//! The project's own rolls (rolls/vcds-base, rolls/vcds-compute) load and generate, through
//! the offline entry point behind `vcds kickstart` as well as the library API.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use vcds_rolls::{
    fs, kickstart, site_defaults, AttributeLayers, Deferred, RollError, RollSet, Target,
};

fn roll_dirs() -> [PathBuf; 2] {
    let rolls = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rolls");
    [rolls.join("vcds-base"), rolls.join("vcds-compute")]
}

fn attr(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[test]
fn own_rolls_load_and_declare_their_appliances() {
    let set = RollSet::new(roll_dirs().map(|d| Arc::new(fs::load_roll(&d).unwrap()))).unwrap();
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
    let ks = kickstart(&roll_dirs(), "compute", None, None, None, &attrs, false).unwrap();
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
        false,
    )
    .unwrap();
    assert!(serial.contains("ttyS0::respawn"), "cond on an edge");
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
        true,
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
    let err = kickstart(&roll_dirs(), "nas", None, None, None, &[], false).unwrap_err();
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
        false,
    )
    .unwrap_err();
    assert!(matches!(err, RollError::Io { .. }), "{err}");
    let err = kickstart(
        &roll_dirs(),
        "compute",
        None,
        None,
        None,
        &[attr("bad name", "x")],
        false,
    )
    .unwrap_err();
    assert!(matches!(err, RollError::BadAttribute { .. }), "{err}");
    let none: [PathBuf; 0] = [];
    assert!(matches!(
        kickstart(&none, "compute", None, None, None, &[], false),
        Err(RollError::NoRolls)
    ));
}

#[test]
fn own_kickstarts_pass_ksvalidator() {
    let set = RollSet::new(roll_dirs().map(|d| Arc::new(fs::load_roll(&d).unwrap()))).unwrap();
    let layers = AttributeLayers {
        global: site_defaults(),
        ..Default::default()
    };
    let target = Target::default();
    let kickstarts: Vec<(String, String)> = set
        .kickstartable()
        .iter()
        .map(|a| {
            (
                a.to_string(),
                set.profile(a, &target, &layers, &Deferred)
                    .unwrap()
                    .kickstart(),
            )
        })
        .collect();
    let Some(failures) = common::ksvalidate(&target.kickstart_version(), &kickstarts) else {
        return;
    };
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
