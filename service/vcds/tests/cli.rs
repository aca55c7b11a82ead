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
