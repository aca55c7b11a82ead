//! The real Rocks rolls core, base and hpc (from ../shared when present): every appliance
//! generates, and every kickstart passes pykickstart's ksvalidator for the OS the rolls target.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use vcds_rolls::{fs, site_defaults, AttributeLayers, Deferred, Piece, Profile, RollSet, Target};

fn fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/rocks");
    if dir.join("core").is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP: ../shared/fixtures not present");
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

#[test]
fn kickstarts_pass_ksvalidator() {
    let Some(dir) = fixtures() else { return };
    let set = real_rolls(&dir);
    let kickstarts: Vec<(String, String)> = all_profiles(&set)
        .iter()
        .map(|p| (p.appliance.clone(), p.kickstart()))
        .collect();
    assert_eq!(kickstarts.len(), 5);
    let Some(failures) = common::ksvalidate(&Target::default().kickstart_version(), &kickstarts)
    else {
        return;
    };
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
