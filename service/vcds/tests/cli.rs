//! The binary as a person runs it.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::PathBuf;
use std::process::Command;

fn vcds() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vcds"))
}

fn roll(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../rolls")
        .join(name)
}

#[test]
fn kickstart_prints_the_profile_and_fails_loudly() {
    let out = vcds()
        .args([
            "kickstart",
            "--appliance",
            "compute",
            "--attr",
            "hostname=compute-0-0",
            "--roll",
        ])
        .arg(roll("vcds-base"))
        .arg("--roll")
        .arg(roll("vcds-compute"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ks = String::from_utf8(out.stdout).unwrap();
    assert!(ks.contains("%packages") && ks.contains("%post"), "{ks}");
    let out = vcds()
        .args(["kickstart", "--appliance", "toaster", "--roll"])
        .arg(roll("vcds-base"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("toaster"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_explains_every_serve_option() {
    let out = vcds().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in ["--listen", "--db", "--data-dir", "--site", "--max-body"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn kickstart_prints_debian_packages_and_refuses_unavailable_ones() {
    let debian = |lists: Option<&std::path::Path>| {
        let mut cmd = vcds();
        cmd.args([
            "kickstart",
            "--appliance",
            "compute",
            "--debian-packages",
            "--roll",
        ])
        .arg(roll("vcds-base"))
        .arg("--roll")
        .arg(roll("vcds-compute"));
        if let Some(lists) = lists {
            cmd.arg("--apt-lists").arg(lists);
        }
        cmd.output().unwrap()
    };
    let out = debian(None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = names.lines().collect();
    assert!(
        names.contains(&"openmpi-bin") && names.contains(&"openssh-server"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"openmpi") && !names.contains(&"nano"),
        "{names:?}"
    );

    // apt's lists that hold only some of them: the rest are named, with their rolls.
    let lists = tempfile::tempdir().unwrap();
    let held: String = names
        .iter()
        .filter(|n| **n != "openmpi-bin" && **n != "udev")
        .map(|n| format!("Package: {n}\n\n"))
        .collect();
    std::fs::write(lists.path().join("x_main_binary-amd64_Packages"), held).unwrap();
    let out = debian(Some(lists.path()));
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "no apt source holds 2 packages: openmpi-bin (package openmpi of roll vcds-compute"
        ) && err.contains("udev (package udev of roll vcds-base, nodes/vcds-node.xml)"),
        "{err}"
    );
    let out = vcds()
        .args([
            "kickstart",
            "--appliance",
            "compute",
            "--apt-lists",
            "/x",
            "--roll",
        ])
        .arg(roll("vcds-base"))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "--apt-lists needs --debian or --debian-packages"
    );
}
