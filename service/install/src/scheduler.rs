//! What a cluster's batch scheduler sees, as its frontend reports it every few seconds
//! (`POST /install/scheduler`, over the install path only the cluster's nodes reach): each
//! node's state and the queue. Kept in memory only: the next report is seconds away, and a
//! view older than that says so by its time.

use std::collections::BTreeMap;

use serde::Serialize;

/// Longest report body accepted.
pub const MAX_REPORT_BYTES: usize = 64 * 1024;
/// Most nodes one report may name.
const MAX_NODES: usize = 4096;
/// Longest node name (a DNS label) and state word.
const MAX_NAME: usize = 63;
const MAX_STATE: usize = 32;

/// One report of the scheduler on a cluster's frontend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchedulerView {
    /// Each node the scheduler knows, by its name in the placement (`compute-0-0`), with its
    /// state in the scheduler's words (`idle`, `allocated`, `mixed`, `drained`…); a node the
    /// scheduler marks as not responding is `down`.
    pub nodes: BTreeMap<String, String>,
    /// Jobs running and waiting.
    pub running: u32,
    pub pending: u32,
}

/// A scheduler view and when the frontend reported it (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reported {
    pub at_ms: i64,
    pub view: SchedulerView,
}

/// A cluster's scheduler view as it changed, announced to
/// [`Kickstarts::scheduler_events`](crate::Kickstarts::scheduler_events) listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerReport {
    /// The System the reporting frontend belongs to.
    pub cluster: String,
    /// The view until now, as of its last report.
    pub before: Option<Reported>,
    pub after: Reported,
}

impl SchedulerView {
    /// Parses a report: one `node NAME STATE` line per node (Slurm's `sinfo -N -o '%N %T'`),
    /// then one `jobs RUNNING PENDING` line.
    pub fn parse(text: &str) -> Result<SchedulerView, String> {
        let mut view = SchedulerView::default();
        let mut jobs = false;
        for (n, line) in text.lines().enumerate() {
            let at = |why: String| format!("line {}: {why}", n + 1);
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [] => {}
                ["node", name, state] => {
                    if view.nodes.len() == MAX_NODES {
                        return Err(at(format!("more than {MAX_NODES} nodes")));
                    }
                    let name = node_name(name).map_err(at)?;
                    view.nodes
                        .insert(name.to_owned(), node_state(state).map_err(at)?);
                }
                ["jobs", running, pending] if !jobs => {
                    let count = |w: &str| {
                        w.parse::<u32>()
                            .map_err(|_| at(format!("job count {w:?} is not a number")))
                    };
                    view.running = count(running)?;
                    view.pending = count(pending)?;
                    jobs = true;
                }
                _ => {
                    return Err(at(
                        "expected `node NAME STATE` or one `jobs RUNNING PENDING`".to_owned(),
                    ))
                }
            }
        }
        if !jobs {
            return Err("no `jobs RUNNING PENDING` line".to_owned());
        }
        Ok(view)
    }
}

fn node_name(name: &str) -> Result<&str, String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(name)
        .ok_or_else(|| format!("node name {name:?} is not a host name"))
}

/// Slurm's long state with its flags off (`idle*`: not responding, so `down`; `mixed+drain`…).
fn node_state(state: &str) -> Result<String, String> {
    let base: String = state
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
        .collect();
    let flags = &state[base.len()..];
    let known_flags = flags
        .chars()
        .all(|c| "*~#!%$@^+-".contains(c) || c.is_ascii_lowercase());
    if base.is_empty() || state.len() > MAX_STATE || !known_flags {
        return Err(format!("node state {state:?} is not a scheduler state"));
    }
    Ok(if flags.starts_with('*') {
        "down".to_owned()
    } else {
        base
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_slurm_report_parses_with_its_flags_read() {
        let view = SchedulerView::parse(
            "node compute-0-0 idle\nnode compute-0-1 allocated\nnode compute-0-2 idle*\n\
             node compute-0-3 drained\njobs 1 3\n",
        )
        .unwrap();
        let states: Vec<(&str, &str)> = view
            .nodes
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                ("compute-0-0", "idle"),
                ("compute-0-1", "allocated"),
                ("compute-0-2", "down"),
                ("compute-0-3", "drained"),
            ]
        );
        assert_eq!((view.running, view.pending), (1, 3));
    }

    #[test]
    fn bad_reports_are_refused_with_the_line() {
        for (text, words) in [
            ("node compute-0-0 idle\n", "no `jobs"),
            (
                "node Compute idle\njobs 0 0",
                "line 1: node name \"Compute\"",
            ),
            ("node c-1 <idle>\njobs 0 0", "line 1: node state \"<idle>\""),
            ("jobs 0 0\njobs 1 1", "line 2: expected"),
            ("jobs -1 0", "line 1: job count \"-1\""),
            ("hello", "line 1: expected"),
        ] {
            let why = SchedulerView::parse(text).unwrap_err();
            assert!(why.starts_with(words), "{text:?}: {why}");
        }
        let many: String = (0..=MAX_NODES)
            .map(|i| format!("node n{i} idle\n"))
            .collect();
        let why = SchedulerView::parse(&(many + "jobs 0 0")).unwrap_err();
        assert!(why.contains("more than 4096 nodes"), "{why}");
    }
}
