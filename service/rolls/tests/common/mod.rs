//! Shared by the integration tests: ksvalidator, when this machine has it.

use std::process::Command;

/// Runs `ksvalidator -v VERSION` on each `(name, kickstart)`; returns the failures' reports.
/// `None` (after printing SKIP) when ksvalidator is not on PATH, unless VCDS_REQUIRE_TOOLS=1.
pub fn ksvalidate(version: &str, kickstarts: &[(String, String)]) -> Option<Vec<String>> {
    if Command::new("ksvalidator").arg("-l").output().is_err() {
        assert!(
            std::env::var("VCDS_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "ksvalidator is not on PATH"
        );
        eprintln!("SKIP: ksvalidator (pip install pykickstart) not on PATH");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, text) in kickstarts {
        let path = tmp.path().join(format!("{name}.ks"));
        std::fs::write(&path, text).unwrap();
        let out = Command::new("ksvalidator")
            .arg("-v")
            .arg(version)
            .arg(&path)
            .output()
            .unwrap();
        eprintln!(
            "ksvalidator -v {version} {name}: {}",
            if out.status.success() { "ok" } else { "FAILED" }
        );
        if !out.status.success() {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            failures.push(format!("{name}:\n{stdout}{stderr}"));
        }
    }
    Some(failures)
}
