//! Shared by the integration tests: ksvalidator and apt's lists, when this machine has them.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// Runs `ksvalidator -v VERSION` on each `(name, kickstart)`; returns the failures' reports.
/// `None` (after printing SKIP) when ksvalidator is not on PATH, unless VCDS_REQUIRE_TOOLS=1.
pub fn ksvalidate(version: &str, kickstarts: &[(String, String)]) -> Option<Vec<String>> {
    if Command::new("ksvalidator").arg("-l").output().is_err() {
        assert!(
            std::env::var("VCDS_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "ksvalidator is not on PATH"
        );
        {
            // Past the test harness's capture, so a skip is seen.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: ksvalidator (pip install pykickstart) not on PATH"
            );
        }
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

/// The package names of this machine's apt lists, read once per test binary; `None` (after
/// printing SKIP) when there are none, unless VCDS_REQUIRE_TOOLS=1.
pub fn apt_names() -> Option<&'static BTreeSet<String>> {
    static NAMES: OnceLock<Option<BTreeSet<String>>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let lists = Path::new("/var/lib/apt/lists");
        match vcds_rolls::fs::apt_package_names(lists) {
            Ok(names) => Some(names),
            Err(e) => {
                assert!(
                    std::env::var("VCDS_REQUIRE_TOOLS").as_deref() != Ok("1"),
                    "no apt lists: {e}"
                );
                None
            }
        }
    });
    if names.is_none() {
        {
            // Past the test harness's capture, so a skip is seen.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: no apt lists in /var/lib/apt/lists (run apt-get update)"
            );
        }
    }
    names.as_ref()
}

/// Whether apt could install `names` together on an empty system (`apt-get install -s` with
/// no dpkg status), with its report when not; `None` (after printing SKIP) without apt's lists.
pub fn apt_installable<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Result<(), String>> {
    apt_names()?;
    let tmp = tempfile::tempdir().unwrap();
    let status = tmp.path().join("status");
    std::fs::write(&status, "").unwrap();
    let out = Command::new("apt-get")
        .args([
            "install",
            "--simulate",
            "--quiet",
            "--no-install-recommends",
        ])
        .arg(format!("-oDir::State::Status={}", status.display()))
        .args(names)
        .output()
        .unwrap();
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr))
    })
}
