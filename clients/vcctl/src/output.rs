//! Output for people (tables, progress) and the two machine forms.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::view::Status;

/// What a command prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tables and plain lines.
    Text,
    /// Every reply body as received (printed by the client), nothing else.
    Xml,
    /// One JSON document.
    Json,
}

/// `--json` output: one pretty-printed document.
pub fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => tracing::error!("cannot write JSON: {e}"),
    }
}

/// Columns padded to their widest cell, two spaces apart, trailing blanks trimmed.
pub fn table(columns: &[&str], rows: &[Vec<String>]) -> String {
    let width = |i: usize, c: &str| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|v| v.chars().count())
            .chain([c.chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| width(i, c))
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(columns.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// A progress bar on stderr while a command waits for a cluster; drawn only when stdout is a
/// terminal, so scripts that capture the output get plain lines.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// `nodes`: a bar of installed nodes (deploy); otherwise a spinner (watch).
    pub fn new(nodes: bool) -> Progress {
        let target = if std::io::stdout().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let template = if nodes {
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} nodes installed  {msg}"
        } else {
            "{spinner} [{elapsed_precise}] {msg}"
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::with_draw_target(Some(0), target).with_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    pub fn update(&self, s: &Status) {
        self.bar.set_length(s.nodes.len() as u64);
        self.bar
            .set_position(s.nodes.iter().filter(|n| n.installed()).count() as u64);
        self.bar.set_message(format!("{} {}", s.state, s.phase()));
    }

    /// Prints a line on stdout or stderr without tearing the bar (also when it is hidden).
    pub fn println(&self, stdout: bool, line: &str) {
        self.bar.suspend(|| {
            if stdout {
                println!("{line}");
            } else {
                eprintln!("{line}");
            }
        });
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_pad_like_the_python_client() {
        let t = super::table(
            &["Node", "IP"],
            &[
                vec!["frontend".into(), "10.0.0.1".into()],
                vec!["c".into(), String::new()],
            ],
        );
        assert_eq!(t, "Node      IP\nfrontend  10.0.0.1\nc");
        assert_eq!(super::table(&["A", "B"], &[]), "A  B");
    }
}
