//! Processes the site starts and finds again by their command line (QEMU, dnsmasq): liveness
//! from `/proc`, so a reused pid or a zombie never counts as the process.

use std::fs;
use std::path::Path;

/// The argv of a live (not zombie) process.
pub(crate) fn live_argv(pid: &str) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name, which may itself contain ')'.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    if matches!(state, "Z" | "X") {
        return None;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Whether argv's program file name is `name`.
pub(crate) fn program_is(argv: &[String], name: &str) -> bool {
    argv.first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|f| f.to_string_lossy() == name)
}

/// Pids of the live processes whose argv satisfies `matches`.
pub(crate) fn pids_where(matches: impl Fn(&[String]) -> bool) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| live_argv(&pid.to_string()).is_some_and(|argv| matches(&argv)))
        .collect();
    pids.sort_unstable();
    pids
}
