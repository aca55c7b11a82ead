//! Running the Debian tools the builder drives, with their failures as [`Error`]s.

use std::process::Command;

use crate::Error;

/// How much of a failed command's stderr an error keeps (mmdebstrap's is long; its end says
/// why).
const STDERR_TAIL: usize = 2000;

fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to completion and returns its stdout; a non-zero exit is an error carrying the
/// end of its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<String, Error> {
    let shown = display(cmd);
    tracing::debug!("running {shown}");
    let out = cmd.output().map_err(|source| Error::Spawn {
        cmd: shown.clone(),
        source,
    })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let start = stderr.len().saturating_sub(STDERR_TAIL);
    let start = (start..stderr.len())
        .find(|&i| stderr.is_char_boundary(i))
        .unwrap_or(0);
    Err(Error::Command {
        cmd: shown,
        status: out.status.to_string(),
        stderr: stderr[start..].trim().to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn failures_carry_the_command_and_the_end_of_stderr() {
        assert_eq!(run(Command::new("echo").arg("hi")).unwrap(), "hi\n");
        let err = run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("`sh -c echo oops >&2; exit 3` failed"),
            "{err}"
        );
        assert!(err.ends_with(": oops"), "{err}");
        let err = run(&mut Command::new("/nonexistent/tool")).unwrap_err();
        assert!(matches!(err, Error::Spawn { .. }));
    }
}
