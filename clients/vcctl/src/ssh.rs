//! `vcctl ssh`: the system's OpenSSH client to a cluster's frontend (through the GW-node's port
//! forward, `vcds:Access`) or to one of its nodes through the frontend, host keys checked
//! strictly against the ones in the System's document (`vcds:hostKey`).
//!
//! `ssh -J` starts the jump as `ssh -l USER -p PORT -W [%h]:%p HOST` and passes on neither
//! `-o` options nor `-i` (only `-F`), so the jump would check the frontend's key against the
//! user's own known_hosts, asking to trust it on first use. The jump is therefore an explicit
//! ProxyCommand with the same options.

use std::borrow::Cow;
use std::ffi::CString;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt as _;
use std::sync::{Arc, Mutex};

use nix::spawn::{posix_spawnp, PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{kill, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use vcds_cdl::cluster::is_login_name;
use vcds_cdl::cluster::ssh::PublicKey;

use crate::error::Error;
use crate::view::{NodeRow, Status};

/// Where ssh goes and the keys it may accept there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: String,
    /// The GW-node's outside address (or name), with the port forwarded to the frontend's sshd.
    pub host: String,
    pub port: u16,
    /// The frontend's host key, `TYPE BASE64`.
    pub frontend_key: String,
    /// `--node`: a node other than the frontend, by name, and its host key.
    pub node: Option<(String, String)>,
}

impl Target {
    /// The target in `s` (the System `id`'s document): the frontend, or `node`.
    pub fn of(id: &str, s: &Status, node: Option<&str>) -> Result<Target, Error> {
        let access = s.access.as_ref().ok_or_else(|| no_access(id, s))?;
        if !is_login_name(&access.user) {
            return Err(Error::NotReady(format!(
                "{id}: the login user in vcds:Access, {:?}, is not a login name",
                access.user
            )));
        }
        if access.host.parse::<IpAddr>().is_err() && !is_host_name(&access.host) {
            return Err(Error::NotReady(format!(
                "{id}: the host in vcds:Access, {:?}, is no address or host name",
                access.host
            )));
        }
        let frontend = s
            .nodes
            .iter()
            .find(|n| n.is_frontend())
            .or_else(|| s.nodes.first())
            .ok_or_else(|| Error::NotReady(format!("{id}: its document lists no nodes")))?;
        let node = match node {
            None => None,
            Some(name) if name == frontend.name => None,
            Some(name) => {
                let n = s.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
                    let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
                    Error::Usage(format!(
                        "--node {name}: {id} has no such node; its nodes: {}",
                        names.join(", ")
                    ))
                })?;
                if !is_host_name(&n.name) {
                    return Err(Error::NotReady(format!(
                        "{id}: the node name {:?} is no host name",
                        n.name
                    )));
                }
                Some((n.name.clone(), host_key(id, n)?))
            }
        };
        Ok(Target {
            user: access.user.clone(),
            host: access.host.clone(),
            port: access.port,
            frontend_key: host_key(id, frontend)?,
            node,
        })
    }

    /// The known_hosts file: the frontend under `[host]:port` (as ssh looks it up for a port
    /// other than 22), the node under its bare name (as ssh looks up a ProxyCommand's target:
    /// the name given, port 22, no address to check).
    pub fn known_hosts(&self, id: &str) -> String {
        let frontend = if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        };
        let mut out = format!(
            "# vcctl ssh {id}: host keys from the System's vcds:Nodes\n{frontend} {}\n",
            self.frontend_key
        );
        if let Some((name, key)) = &self.node {
            out.push_str(&format!("{name} {key}\n"));
        }
        out
    }
}

/// Why a System without `vcds:Access` cannot be logged in to, by its phase.
fn no_access(id: &str, s: &Status) -> Error {
    let phase = s.phase();
    Error::NotReady(match phase {
        "tearing-down" | "released" | "failed" => {
            format!("{id}: its cluster is gone (phase {phase}); there is nothing to log in to")
        }
        "ready" | "suspended" => format!(
            "{id}: the site gives no SSH access to its cluster (no vcds:Access in its \
             document; the simulated site never does)"
        ),
        _ => format!(
            "{id}: its cluster is not built yet (state {}, phase {phase}); it can be logged in \
             to once the site holds it (vcds:Access); `vcctl watch {id}` shows its progress",
            s.state
        ),
    })
}

/// The node's host key as a known_hosts entry wants it: `TYPE BASE64`, comment left out.
fn host_key(id: &str, n: &NodeRow) -> Result<String, Error> {
    let line = n.host_key.as_deref().ok_or_else(|| {
        Error::NotReady(format!(
            "{id}: node {} has no SSH host key yet (vcds:hostKey), so its identity cannot be \
             checked; it is there once the site made the node",
            n.name
        ))
    })?;
    let key = PublicKey::parse(line).map_err(|e| {
        Error::NotReady(format!(
            "{id}: the host key of node {} is not usable: it must be {e}",
            n.name
        ))
    })?;
    let mut words = line.split_whitespace();
    Ok(format!(
        "{} {}",
        key.kind(),
        words.nth(1).unwrap_or_default()
    ))
}

/// A DNS name as ssh and known_hosts take it: letters, digits, `-`, `.`; no leading `-`.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with(['-', '.'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// How ssh is asked to run.
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// `-i`, as given.
    pub identity: Option<&'a str>,
    /// `-t`.
    pub tty: bool,
    /// The remote command's words; none: a login shell.
    pub command: &'a [String],
}

/// A path where ssh expands `%` tokens (and `~`): `%` written as `%%`.
fn literal(path: &str) -> String {
    path.replace('%', "%%")
}

/// The options both connections get: only the file's keys, strictly, and the identity.
fn checks(known_hosts: &str, identity: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = [
        format!("UserKnownHostsFile={}", literal(known_hosts)),
        "GlobalKnownHostsFile=/dev/null".to_string(),
        "StrictHostKeyChecking=yes".to_string(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect();
    if let Some(key) = identity {
        out.extend(["-i".to_string(), literal(key)]);
    }
    out
}

/// ssh's argv (`ssh` first) for `t`, with the known_hosts file at `known_hosts`.
pub fn argv(t: &Target, known_hosts: &str, o: &Options<'_>) -> Vec<String> {
    let mut argv = vec!["ssh".to_string()];
    argv.extend(checks(known_hosts, o.identity));
    if o.tty {
        argv.push("-t".to_string());
    }
    let login = |host: &str| format!("{}@{host}", t.user);
    match &t.node {
        None => {
            argv.extend(["-p".to_string(), t.port.to_string()]);
            argv.extend(["--".to_string(), login(&t.host)]);
        }
        Some((name, _)) => {
            let mut jump = vec!["ssh".to_string()];
            jump.extend(checks(known_hosts, o.identity));
            jump.extend(["-p".to_string(), t.port.to_string()]);
            // The frontend resolves the node's name.
            jump.extend(["-W".to_string(), "%h:%p".to_string()]);
            jump.extend(["--".to_string(), login(&t.host)]);
            argv.extend([
                "-o".to_string(),
                format!("ProxyCommand={}", shell_line(&jump)),
            ]);
            argv.extend(["--".to_string(), login(name)]);
        }
    }
    argv.extend(o.command.iter().cloned());
    argv
}

/// One word for a POSIX shell: as is when nothing in it is special, else single-quoted.
pub fn sh_quote(word: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', "'\\''")))
    }
}

/// `argv` as a line a POSIX shell runs as the same words.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|w| sh_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `argv` (its program looked up in PATH) with vcctl's stdin, stdout, stderr and
/// environment, and returns its exit status: its own, or 128 + N when signal N ended it. While
/// it runs, vcctl holds SIGINT, SIGQUIT, SIGTERM and SIGHUP and passes each on to it (Ctrl-C on
/// a terminal reaches both), so vcctl outlives it and cleans up after it.
pub fn run(argv: &[String]) -> Result<u8, Error> {
    let program = argv
        .first()
        .ok_or_else(|| Error::Usage("nothing to run".to_string()))?;
    let unavailable = |what: &str, e: nix::errno::Errno| {
        Error::Unavailable(format!("cannot run {program}: {what}: {e}"))
    };
    let held: SigSet = [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGHUP,
    ]
    .into_iter()
    .collect();
    // The child starts with no signal held and SIGPIPE as default (Rust ignores it); std's
    // Command would leave it vcctl's mask, so posix_spawn with both set.
    let mut attr = PosixSpawnAttr::init().map_err(|e| unavailable("posix_spawnattr", e))?;
    attr.set_sigmask(&SigSet::empty())
        .and_then(|()| attr.set_sigdefault(&[Signal::SIGPIPE].into_iter().collect()))
        .and_then(|()| {
            attr.set_flags(
                PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
            )
        })
        .map_err(|e| unavailable("posix_spawnattr", e))?;
    let actions = PosixSpawnFileActions::init().map_err(|e| unavailable("file actions", e))?;
    let c = |s: &[u8]| {
        CString::new(s)
            .map_err(|_| Error::Usage(format!("a NUL byte in {:?}", String::from_utf8_lossy(s))))
    };
    let args = argv
        .iter()
        .map(|a| c(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let env = std::env::vars_os()
        .map(|(k, v)| c(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<Result<Vec<_>, _>>()?;
    let path = c(program.as_bytes())?;
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&held), None)
        .map_err(|e| unavailable("holding signals", e))?;
    let pid = posix_spawnp(&path, &actions, &attr, &args, &env).map_err(|e| match e {
        nix::errno::Errno::ENOENT => Error::Unavailable(format!(
            "{program} not found: vcctl ssh needs OpenSSH's client (openssh-client)"
        )),
        e => unavailable("posix_spawnp", e),
    })?;
    // Set once the child is about to be reaped: a pid is not signalled after it is reused.
    let reaped = Arc::new(Mutex::new(false));
    {
        let reaped = Arc::clone(&reaped);
        std::thread::spawn(move || {
            while let Ok(signal) = held.wait() {
                let Ok(reaped) = reaped.lock() else { return };
                if *reaped {
                    return;
                }
                let _ = kill(pid, signal);
            }
        });
    }
    // Wait until it has ended without reaping it (a zombie keeps its pid), then reap.
    let ended = || waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT);
    while let Err(nix::errno::Errno::EINTR) = ended() {}
    if let Ok(mut r) = reaped.lock() {
        *r = true;
    }
    loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(WaitStatus::Exited(_, code)) => {
                return Ok(u8::try_from(code & 0xff).unwrap_or(u8::MAX))
            }
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                return Ok(128u8.saturating_add(u8::try_from(signal as i32).unwrap_or(127)))
            }
            Ok(_) => continue,
            Err(e) => return Err(unavailable("waiting for it", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRONTEND_KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJ9zIHvxZ+n2juKrrBwRThLECh7tY5UYJan8bBQo3wr root@frontend";
    const COMPUTE_KEY: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNT6PaefWI26RGYJMbxkznhm3G11eyuDkBZRvHf5mu1ar5jgOQOU/JG7wHSlXa4kR8YHXUN9F94vW//xtR63GiE= root@compute-0-0";

    /// A System document as a local site gives it: vcds:Access and host keys.
    fn document(access: bool, compute_key: bool) -> String {
        let access = if access {
            "<v:Access><v:user>alice</v:user><v:host>198.19.1.1</v:host><v:port>2222</v:port></v:Access>"
        } else {
            ""
        };
        let compute_key = if compute_key {
            format!("<v:hostKey>{COMPUTE_KEY}</v:hostKey>")
        } else {
            String::new()
        };
        format!(
            r#"<v:SystemProperties xmlns:v="urn:vcds:2026"
                xmlns:cmp="http://www.gridforum.org/cddlm/components/2005/02">
              <v:SystemState><cmp:State><v:RunningState/></cmp:State></v:SystemState>
              <v:Phase>ready</v:Phase>
              <v:Nodes>
                <v:Node><v:name>frontend</v:name><v:appliance>frontend</v:appliance><v:state>up</v:state>
                  <v:hostKey>{FRONTEND_KEY}</v:hostKey><v:vmCpus>2</v:vmCpus><v:vmMemoryMiB>2048</v:vmMemoryMiB></v:Node>
                <v:Node><v:name>compute-0-0</v:name><v:appliance>compute</v:appliance><v:state>up</v:state>
                  {compute_key}</v:Node>
              </v:Nodes>
              {access}
            </v:SystemProperties>"#
        )
    }

    fn status(text: &str) -> Status {
        let doc = vcds_xml::parse(text, &vcds_xml::Limits::default()).unwrap();
        Status::read(doc.root_element())
    }

    fn target(node: Option<&str>) -> Target {
        Target::of("S", &status(&document(true, true)), node).unwrap()
    }

    const KH: &str = "/tmp/vcctl-ssh-X/known_hosts";

    #[test]
    fn the_frontend_through_the_gw_node() {
        let t = target(None);
        let command = ["hostname".to_string()];
        let argv = argv(
            &t,
            KH,
            &Options {
                command: &command,
                ..Options::default()
            },
        );
        assert_eq!(
            shell_line(&argv),
            "ssh -o UserKnownHostsFile=/tmp/vcctl-ssh-X/known_hosts -o GlobalKnownHostsFile=/dev/null \
             -o StrictHostKeyChecking=yes -p 2222 -- alice@198.19.1.1 hostname"
        );
        assert_eq!(
            t.known_hosts("S"),
            format!(
                "# vcctl ssh S: host keys from the System's vcds:Nodes\n[198.19.1.1]:2222 {}\n",
                &FRONTEND_KEY[..FRONTEND_KEY.rfind(' ').unwrap()]
            )
        );
        // --node with the frontend's own name is the same connection.
        assert_eq!(target(Some("frontend")), t);
    }

    #[test]
    fn a_node_through_the_frontend() {
        let t = target(Some("compute-0-0"));
        let command = ["ls".to_string(), "-l".to_string(), "a b".to_string()];
        let argv = argv(
            &t,
            "/tmp/50%/known_hosts",
            &Options {
                identity: Some("/home/alice/.ssh/id_ed25519"),
                tty: true,
                command: &command,
            },
        );
        let checks =
            "-o UserKnownHostsFile=/tmp/50%%/known_hosts -o GlobalKnownHostsFile=/dev/null \
                      -o StrictHostKeyChecking=yes -i /home/alice/.ssh/id_ed25519";
        assert_eq!(
            argv[argv.len() - 6..],
            [
                format!("ProxyCommand=ssh {checks} -p 2222 -W %h:%p -- alice@198.19.1.1"),
                "--".to_string(),
                "alice@compute-0-0".to_string(),
                "ls".to_string(),
                "-l".to_string(),
                "a b".to_string(),
            ]
        );
        assert_eq!(
            shell_line(&argv),
            format!(
                "ssh {checks} -t -o 'ProxyCommand=ssh {checks} -p 2222 -W %h:%p -- alice@198.19.1.1' \
                 -- alice@compute-0-0 ls -l 'a b'"
            )
        );
        let kh = t.known_hosts("S");
        let lines: Vec<&str> = kh.lines().collect();
        assert!(lines[1].starts_with("[198.19.1.1]:2222 ssh-ed25519 AAAA"));
        assert_eq!(
            lines[2],
            &COMPUTE_KEY[..COMPUTE_KEY.rfind(' ').unwrap()].replacen(
                "ecdsa",
                "compute-0-0 ecdsa",
                1
            )
        );
    }

    #[test]
    fn what_is_missing_is_said() {
        let no_access = Target::of("S", &status(&document(false, true)), None);
        assert!(
            matches!(&no_access, Err(Error::NotReady(m)) if m.contains("gives no SSH access")),
            "{no_access:?}"
        );
        let building = document(false, true).replace(">ready<", ">installing<");
        assert!(matches!(
            Target::of("S", &status(&building), None),
            Err(Error::NotReady(m)) if m.contains("not built yet")
        ));
        let no_key = Target::of("S", &status(&document(true, false)), Some("compute-0-0"));
        assert!(matches!(&no_key, Err(Error::NotReady(m)) if m.contains("no SSH host key")));
        // Its frontend is all the frontend needs.
        assert!(Target::of("S", &status(&document(true, false)), None).is_ok());
        let unknown = Target::of("S", &status(&document(true, true)), Some("compute-9-9"));
        assert!(
            matches!(&unknown, Err(Error::Usage(m)) if m.contains("frontend, compute-0-0")),
            "{unknown:?}"
        );
        // What the service says is checked before it reaches ssh or known_hosts.
        let bad = document(true, true).replace("root@compute-0-0", "x\n* ssh-rsa AAAA");
        assert!(matches!(
            Target::of("S", &status(&bad), Some("compute-0-0")),
            Err(Error::NotReady(_))
        ));
        let bad = document(true, true).replace("198.19.1.1", "-oProxyCommand=x");
        assert!(Target::of("S", &status(&bad), None).is_err());
        let bad = document(true, true).replace("<v:user>alice", "<v:user>-l");
        assert!(Target::of("S", &status(&bad), None).is_err());
    }

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(sh_quote("a-b.c/d@e:22"), "a-b.c/d@e:22");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn the_exit_status_is_the_programs() {
        let sh =
            |script: &str| run(&["sh".to_string(), "-c".to_string(), script.to_string()]).unwrap();
        assert_eq!(sh("exit 0"), 0);
        assert_eq!(sh("exit 7"), 7);
        assert_eq!(sh("kill -TERM $$"), 128 + 15);
        // Nothing of vcctl's held signals reaches the program, and SIGPIPE is the default.
        assert_eq!(sh("grep -q '^SigBlk:\\s*0*$' /proc/$$/status"), 0);
        let sigpipe_ignored =
            "test $(( 0x$(grep ^SigIgn /proc/$$/status | cut -f2) & 4096 )) -ne 0";
        assert_eq!(sh(sigpipe_ignored), 1);
        assert!(matches!(
            run(&["/nonexistent/ssh".to_string()]),
            Err(Error::Unavailable(m)) if m.contains("openssh-client")
        ));
    }
}
