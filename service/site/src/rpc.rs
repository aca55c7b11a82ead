//! Authenticated request/response protocol between the manager and a P-node agent.
//!
//! The same framing runs over every transport ([`Endpoint`]: a Unix socket on the local site,
//! TCP in production; mutual TLS will wrap the TCP stream later):
//!
//! ```text
//! frame    = length (u32, big-endian, ≤ MAX_FRAME) | tag (HMAC-SHA256 of envelope, 32 bytes) | envelope
//! envelope = {"session": S, "seq": N, "from": "manager"|"agent", "body": …}   (JSON)
//! ```
//!
//! A connection starts with a handshake: the manager sends seq 0 with `session` = its random
//! nonce; the agent answers seq 0 with `session` = `MANAGER_NONCE.AGENT_NONCE`. Every later
//! request carries that session and seq 1, 2, … (each exactly one more than the last), and its
//! answer the same session and seq. So a recorded message cannot be replayed into another
//! connection (the agent's nonce differs) nor within one (the seq has passed), and an answer
//! cannot be passed off as a request (`from`). A message the agent refuses (bad tag, replay,
//! oversized frame, garbage JSON) gets a signed `{"rejected": reason}` answer and the connection
//! is closed; the agent keeps serving others.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Largest envelope accepted, in bytes (an inventory of a full P-node is far smaller).
pub const MAX_FRAME: usize = 4 << 20;
/// Length of an HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;
/// Shortest key accepted: HMAC-SHA256 is only as strong as its key.
pub const MIN_KEY_LEN: usize = 32;
/// How long a client waits for an answer; starting a VM waits for its QMP socket.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Protocol and transport failures, on either side.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("key file {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("frame of {len} bytes is shorter than its {TAG_LEN}-byte tag")]
    FrameTooShort { len: usize },
    #[error("message tag does not verify (wrong key, or the message was altered)")]
    BadTag,
    #[error("message is not a valid envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("message belongs to session {got:?}, not {expected:?}")]
    WrongSession { got: String, expected: String },
    #[error("message seq {got} replayed or out of order (expected {expected})")]
    Sequence { got: u64, expected: u64 },
    #[error("message claims to come from the {got}, not the {expected}")]
    WrongSender { got: Side, expected: Side },
    #[error("the peer closed the connection")]
    Closed,
    #[error("the agent rejected the message: {0}")]
    Rejected(String),
    /// The agent carried out the request and it failed (the connection is fine).
    #[error("the agent could not do it: {0}")]
    Agent(crate::failure::AgentFailure),
    #[error("the agent answered {0}, which does not fit the request")]
    UnexpectedReply(String),
    #[error("endpoint {endpoint}: {reason}")]
    Endpoint { endpoint: String, reason: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> RpcError {
    let what = what.into();
    move |source| RpcError::Io { what, source }
}

/// The per-P-node secret shared by the manager and that P-node's agent.
#[derive(Clone)]
pub struct Key(Hmac<Sha256>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    pub fn new(bytes: Vec<u8>) -> Result<Key, RpcError> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(RpcError::Key {
                path: "(in memory)".to_owned(),
                reason: format!("{} bytes, need at least {MIN_KEY_LEN}", bytes.len()),
            });
        }
        <Hmac<Sha256>>::new_from_slice(&bytes)
            .map(Key)
            .map_err(|e| RpcError::Key {
                path: "(in memory)".to_owned(),
                reason: e.to_string(),
            })
    }

    /// Reads a key file: its bytes, without a trailing newline, at least [`MIN_KEY_LEN`]; the
    /// file must not be readable by group or others.
    pub fn load(path: &Path) -> Result<Key, RpcError> {
        let key_err = |reason: String| RpcError::Key {
            path: path.display().to_string(),
            reason,
        };
        let mode = fs::metadata(path)
            .map_err(|e| key_err(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(key_err(format!(
                "mode {:o} lets group or others read it; chmod 600 it",
                mode & 0o777
            )));
        }
        let mut bytes = fs::read(path).map_err(|e| key_err(e.to_string()))?;
        while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
            bytes.pop();
        }
        Key::new(bytes).map_err(|e| match e {
            RpcError::Key { reason, .. } => key_err(reason),
            other => other,
        })
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.0.clone();
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of `tag` over `body`.
    fn verify(&self, body: &[u8], tag: &[u8]) -> Result<(), RpcError> {
        let mut mac = self.0.clone();
        mac.update(body);
        mac.verify_slice(tag).map_err(|_| RpcError::BadTag)
    }
}

/// Which end sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Manager,
    Agent,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Manager => "manager",
            Side::Agent => "agent",
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope<T> {
    session: String,
    seq: u64,
    from: Side,
    body: T,
}

/// The body of every agent message.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Answer<T> {
    Ok(T),
    Rejected(String),
}

/// How long an agent waits for a new connection's handshake, so that connections that never
/// speak do not pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A byte stream a connection runs over (Unix socket, TCP, later TLS).
pub trait Stream: Read + Write + Send {
    /// Bounds blocking reads; `None` waits forever.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl Stream for UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

fn write_frame<T: Serialize>(
    stream: &mut dyn Stream,
    key: &Key,
    envelope: &Envelope<T>,
) -> Result<(), RpcError> {
    let body = serde_json::to_vec(envelope)?;
    let len = u32::try_from(body.len() + TAG_LEN)
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME + TAG_LEN)
        .ok_or(RpcError::FrameTooLarge {
            len: body.len(),
            max: MAX_FRAME,
        })?;
    let mut frame = Vec::with_capacity(4 + TAG_LEN + body.len());
    frame.extend(len.to_be_bytes());
    frame.extend(key.tag(&body));
    frame.extend(&body);
    stream
        .write_all(&frame)
        .map_err(io_err("sending a frame"))?;
    stream.flush().map_err(io_err("sending a frame"))
}

/// Reads one frame and returns its verified envelope bytes; [`RpcError::Closed`] on a clean
/// end of stream before the frame.
fn read_frame(stream: &mut dyn Stream, key: &Key) -> Result<Vec<u8>, RpcError> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(RpcError::Closed),
        other => other.map_err(io_err("reading a frame"))?,
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME + TAG_LEN {
        return Err(RpcError::FrameTooLarge {
            len: len - TAG_LEN,
            max: MAX_FRAME,
        });
    }
    if len < TAG_LEN {
        return Err(RpcError::FrameTooShort { len });
    }
    let mut frame = vec![0u8; len];
    stream
        .read_exact(&mut frame)
        .map_err(io_err("reading a frame"))?;
    let (tag, body) = frame.split_at(TAG_LEN);
    key.verify(body, tag)?;
    Ok(body.to_vec())
}

/// 16 random bytes from the kernel, hex-encoded.
fn nonce() -> Result<String, RpcError> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_err("reading /dev/urandom"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Where an agent listens: `unix:PATH` or a path (local site), or `tcp:HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl FromStr for Endpoint {
    type Err = RpcError;

    fn from_str(s: &str) -> Result<Endpoint, RpcError> {
        if let Some(addr) = s.strip_prefix("tcp:") {
            return Ok(Endpoint::Tcp(addr.to_owned()));
        }
        let path = s.strip_prefix("unix:").unwrap_or(s);
        if path.is_empty() {
            return Err(RpcError::Endpoint {
                endpoint: s.to_owned(),
                reason: "empty socket path".to_owned(),
            });
        }
        Ok(Endpoint::Unix(PathBuf::from(path)))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

impl Endpoint {
    /// Opens a stream to the endpoint with [`CALL_TIMEOUT`] on reads and writes.
    pub fn connect(&self) -> Result<Box<dyn Stream>, RpcError> {
        let what = format!("connecting to {self}");
        let timeouts = |r: io::Result<()>| r.map_err(io_err(format!("timeouts on {self}")));
        Ok(match self {
            Endpoint::Unix(path) => {
                let s = UnixStream::connect(path).map_err(io_err(what))?;
                timeouts(s.set_read_timeout(Some(CALL_TIMEOUT)))?;
                timeouts(s.set_write_timeout(Some(CALL_TIMEOUT)))?;
                Box::new(s)
            }
            Endpoint::Tcp(addr) => {
                let s = TcpStream::connect(addr).map_err(io_err(what))?;
                timeouts(s.set_read_timeout(Some(CALL_TIMEOUT)))?;
                timeouts(s.set_write_timeout(Some(CALL_TIMEOUT)))?;
                Box::new(s)
            }
        })
    }

    /// Listens on the endpoint. A Unix socket left by a dead agent is replaced (one with a
    /// live agent behind it is not) and the new one is made owner-only.
    pub fn bind(&self) -> Result<Listener, RpcError> {
        let what = format!("listening on {self}");
        match self {
            Endpoint::Unix(path) => {
                let is_socket = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
                if is_socket {
                    if UnixStream::connect(path).is_ok() {
                        return Err(RpcError::Endpoint {
                            endpoint: self.to_string(),
                            reason: "another agent is listening there".to_owned(),
                        });
                    }
                    fs::remove_file(path).map_err(io_err(format!("removing stale {self}")))?;
                }
                let listener = UnixListener::bind(path).map_err(io_err(what))?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                    .map_err(io_err(format!("chmod {self}")))?;
                Ok(Listener::Unix(listener))
            }
            Endpoint::Tcp(addr) => Ok(Listener::Tcp(
                TcpListener::bind(addr).map_err(io_err(what))?,
            )),
        }
    }
}

/// A bound endpoint.
#[derive(Debug)]
pub enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    pub fn accept(&self) -> Result<Box<dyn Stream>, RpcError> {
        let what = "accepting a connection";
        Ok(match self {
            Listener::Unix(l) => Box::new(l.accept().map_err(io_err(what))?.0),
            Listener::Tcp(l) => Box::new(l.accept().map_err(io_err(what))?.0),
        })
    }
}

/// Manager end of a connection: sends typed requests, returns the agent's typed answers.
pub struct Client {
    stream: Box<dyn Stream>,
    key: Key,
    session: String,
    seq: u64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn connect(endpoint: &Endpoint, key: Key) -> Result<Client, RpcError> {
        Client::handshake(endpoint.connect()?, key)
    }

    /// Runs the handshake over an open stream.
    pub fn handshake(stream: Box<dyn Stream>, key: Key) -> Result<Client, RpcError> {
        let mine = nonce()?;
        let mut client = Client {
            stream,
            key,
            session: mine.clone(),
            seq: 0,
        };
        client.send(&())?;
        let session = client.receive_raw::<()>()?.session;
        match session.split_once('.') {
            Some((echo, agent)) if echo == mine && !agent.is_empty() => {}
            _ => {
                return Err(RpcError::WrongSession {
                    got: session,
                    expected: format!("{mine}.AGENT_NONCE"),
                })
            }
        }
        client.session = session;
        Ok(client)
    }

    fn send<Q: Serialize>(&mut self, body: &Q) -> Result<(), RpcError> {
        let envelope = Envelope {
            session: self.session.clone(),
            seq: self.seq,
            from: Side::Manager,
            body,
        };
        write_frame(self.stream.as_mut(), &self.key, &envelope)
    }

    /// Reads the agent's answer without checking the session (the handshake learns it here).
    fn receive_raw<P: DeserializeOwned>(&mut self) -> Result<Envelope<P>, RpcError> {
        let bytes = read_frame(self.stream.as_mut(), &self.key)?;
        let envelope: Envelope<Answer<P>> = serde_json::from_slice(&bytes)?;
        if envelope.from != Side::Agent {
            return Err(RpcError::WrongSender {
                got: envelope.from,
                expected: Side::Agent,
            });
        }
        let body = match envelope.body {
            Answer::Ok(body) => body,
            Answer::Rejected(reason) => return Err(RpcError::Rejected(reason)),
        };
        if envelope.seq != self.seq {
            return Err(RpcError::Sequence {
                got: envelope.seq,
                expected: self.seq,
            });
        }
        Ok(Envelope {
            session: envelope.session,
            seq: envelope.seq,
            from: envelope.from,
            body,
        })
    }

    /// Sends one request and waits for its answer.
    pub fn call<Q: Serialize, P: DeserializeOwned>(&mut self, request: &Q) -> Result<P, RpcError> {
        self.seq += 1;
        self.send(request)?;
        let answer = self.receive_raw()?;
        if answer.session != self.session {
            return Err(RpcError::WrongSession {
                got: answer.session,
                expected: self.session.clone(),
            });
        }
        Ok(answer.body)
    }
}

/// Agent end of one connection: answers each authenticated request with `handle`. Returns
/// `Ok` when the manager hangs up between requests; a refused message is answered with a
/// rejection and returned as the error.
pub fn serve_connection<Q, P>(
    stream: &mut dyn Stream,
    key: &Key,
    mut handle: impl FnMut(Q) -> P,
) -> Result<(), RpcError>
where
    Q: DeserializeOwned,
    P: Serialize,
{
    let mut session = String::new();
    let mut seq = 0;
    let outcome = (|| -> Result<(), RpcError> {
        // Handshake: the manager's nonce, answered with ours appended.
        stream
            .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(io_err("setting the handshake timeout"))?;
        let hello = match read_frame(stream, key) {
            // Connected and left without a word (another agent probing the socket).
            Err(RpcError::Closed) => return Ok(()),
            other => other?,
        };
        let hello: Envelope<()> = serde_json::from_slice(&hello)?;
        check_request(&hello, None, 0)?;
        session = format!("{}.{}", hello.session, nonce()?);
        answer(stream, key, &session, 0, Answer::Ok(()))?;
        stream
            .set_read_timeout(None)
            .map_err(io_err("clearing the handshake timeout"))?;
        loop {
            let bytes = match read_frame(stream, key) {
                Err(RpcError::Closed) => return Ok(()),
                other => other?,
            };
            let request: Envelope<Q> = serde_json::from_slice(&bytes)?;
            check_request(&request, Some(&session), seq + 1)?;
            seq = request.seq;
            let reply = handle(request.body);
            answer(stream, key, &session, seq, Answer::Ok(reply))?;
        }
    })();
    match outcome {
        Err(RpcError::Io { .. }) | Ok(()) => outcome,
        Err(e) => {
            // Best effort: the manager may already be gone.
            let _ = answer::<()>(stream, key, &session, seq, Answer::Rejected(e.to_string()));
            Err(e)
        }
    }
}

fn check_request<T>(
    envelope: &Envelope<T>,
    session: Option<&str>,
    seq: u64,
) -> Result<(), RpcError> {
    if envelope.from != Side::Manager {
        return Err(RpcError::WrongSender {
            got: envelope.from,
            expected: Side::Manager,
        });
    }
    if let Some(session) = session {
        if envelope.session != session {
            return Err(RpcError::WrongSession {
                got: envelope.session.clone(),
                expected: session.to_owned(),
            });
        }
    }
    if envelope.seq != seq {
        return Err(RpcError::Sequence {
            got: envelope.seq,
            expected: seq,
        });
    }
    Ok(())
}

fn answer<P: Serialize>(
    stream: &mut dyn Stream,
    key: &Key,
    session: &str,
    seq: u64,
    body: Answer<P>,
) -> Result<(), RpcError> {
    let envelope = Envelope {
        session: session.to_owned(),
        seq,
        from: Side::Agent,
        body,
    };
    write_frame(stream, key, &envelope)
}

/// Accepts connections forever, serving each on its own thread with `handle`; a connection's
/// failure is logged and does not stop the others.
pub fn serve<Q, P, H>(listener: &Listener, key: &Key, handle: H) -> !
where
    Q: DeserializeOwned,
    P: Serialize,
    H: Fn(Q) -> P + Send + Sync + 'static,
{
    let handle = Arc::new(handle);
    loop {
        let mut stream = match listener.accept() {
            Ok(stream) => stream,
            Err(e) => {
                // Typically out of file descriptors: wait for some to be freed.
                tracing::warn!("{e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let (key, handle) = (key.clone(), Arc::clone(&handle));
        thread::spawn(move || {
            if let Err(e) = serve_connection(stream.as_mut(), &key, |q| handle(q)) {
                tracing::warn!("agent connection closed: {e}");
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn key(byte: u8) -> Key {
        Key::new(vec![byte; MIN_KEY_LEN]).unwrap()
    }

    /// An echo agent on a Unix socket in a temporary directory.
    fn echo_agent() -> (tempfile::TempDir, Endpoint) {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = Endpoint::Unix(dir.path().join("agent.sock"));
        let listener = endpoint.bind().unwrap();
        thread::spawn(move || serve(&listener, &key(1), |q: Value| json!({ "echo": q })));
        (dir, endpoint)
    }

    fn assert_still_serving(endpoint: &Endpoint) {
        let mut client = Client::connect(endpoint, key(1)).unwrap();
        for n in 0..3 {
            let reply: Value = client.call(&json!(n)).unwrap();
            assert_eq!(reply, json!({ "echo": n }));
        }
    }

    /// Sends a hand-made frame on an established session and returns the agent's verdict.
    fn send_raw(client: &mut Client, frame: &[u8]) -> RpcError {
        client.stream.write_all(frame).unwrap();
        client.receive_raw::<Value>().unwrap_err()
    }

    fn signed(key: &Key, body: &[u8]) -> Vec<u8> {
        let mut frame = u32::try_from(body.len() + TAG_LEN)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        frame.extend(key.tag(body));
        frame.extend(body);
        frame
    }

    #[test]
    fn requests_are_answered_in_order() {
        let (_dir, endpoint) = echo_agent();
        assert_still_serving(&endpoint);
    }

    #[test]
    fn wrong_key_fails_on_both_sides() {
        let (_dir, endpoint) = echo_agent();
        // The agent rejects the hello; its signed rejection does not verify under our key.
        let err = Client::connect(&endpoint, key(2)).unwrap_err();
        assert!(matches!(err, RpcError::BadTag), "{err}");
        assert_still_serving(&endpoint);
    }

    #[test]
    fn replayed_message_is_rejected() {
        let (_dir, endpoint) = echo_agent();
        let mut client = Client::connect(&endpoint, key(1)).unwrap();
        let body = serde_json::to_vec(&Envelope {
            session: client.session.clone(),
            seq: 1,
            from: Side::Manager,
            body: json!("once"),
        })
        .unwrap();
        let frame = signed(&key(1), &body);
        client.stream.write_all(&frame).unwrap();
        client.seq = 1;
        assert_eq!(
            client.receive_raw::<Value>().unwrap().body,
            json!({"echo": "once"})
        );
        let err = send_raw(&mut client, &frame);
        assert_eq!(
            err.to_string(),
            "the agent rejected the message: message seq 1 replayed or out of order (expected 2)"
        );
        assert_still_serving(&endpoint);
    }

    #[test]
    fn message_from_another_session_is_rejected() {
        let (_dir, endpoint) = echo_agent();
        let mut first = Client::connect(&endpoint, key(1)).unwrap();
        let mut second = Client::connect(&endpoint, key(1)).unwrap();
        second.session = first.session.clone();
        let err = second.call::<_, Value>(&json!(1)).unwrap_err();
        assert!(
            matches!(&err, RpcError::Rejected(r) if r.starts_with("message belongs to session")),
            "{err}"
        );
        let _: Value = first.call(&json!(1)).unwrap();
    }

    #[test]
    fn oversized_frame_is_rejected_unread() {
        let (_dir, endpoint) = echo_agent();
        let mut client = Client::connect(&endpoint, key(1)).unwrap();
        let err = send_raw(&mut client, &u32::MAX.to_be_bytes());
        assert_eq!(
            err.to_string(),
            format!(
                "the agent rejected the message: frame of {} bytes exceeds the limit of {MAX_FRAME}",
                u32::MAX as usize - TAG_LEN
            )
        );
        assert_still_serving(&endpoint);
    }

    #[test]
    fn garbage_json_is_rejected() {
        let (_dir, endpoint) = echo_agent();
        let mut client = Client::connect(&endpoint, key(1)).unwrap();
        let err = send_raw(&mut client, &signed(&key(1), b"{not json"));
        assert!(
            matches!(&err, RpcError::Rejected(r) if r.starts_with("message is not a valid envelope")),
            "{err}"
        );
        // A tampered body fails its tag before it is parsed.
        let mut client = Client::connect(&endpoint, key(1)).unwrap();
        let mut frame = signed(&key(1), b"{\"session\":\"x\"}");
        *frame.last_mut().unwrap() = b']';
        let err = send_raw(&mut client, &frame);
        assert!(
            matches!(&err, RpcError::Rejected(r) if r.starts_with("message tag does not verify")),
            "{err}"
        );
        assert_still_serving(&endpoint);
    }

    #[test]
    fn agent_answer_is_not_accepted_as_a_request() {
        let (_dir, endpoint) = echo_agent();
        let mut client = Client::connect(&endpoint, key(1)).unwrap();
        let body = serde_json::to_vec(&Envelope {
            session: client.session.clone(),
            seq: 1,
            from: Side::Agent,
            body: json!(1),
        })
        .unwrap();
        let err = send_raw(&mut client, &signed(&key(1), &body));
        assert_eq!(
            err.to_string(),
            "the agent rejected the message: message claims to come from the agent, not the manager"
        );
    }

    #[test]
    fn key_files_must_be_private_and_long() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, format!("{}\n", "k".repeat(MIN_KEY_LEN))).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Key::load(&path).unwrap_err().to_string();
        assert!(err.contains("mode 644"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        Key::load(&path).unwrap();
        fs::write(&path, "short").unwrap();
        let err = Key::load(&path).unwrap_err().to_string();
        assert!(err.contains("5 bytes, need at least 32"), "{err}");
    }

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            "tcp:10.0.0.1:7400".parse::<Endpoint>().unwrap(),
            Endpoint::Tcp("10.0.0.1:7400".to_owned())
        );
        assert_eq!(
            "unix:/run/a.sock".parse::<Endpoint>().unwrap(),
            Endpoint::Unix(PathBuf::from("/run/a.sock"))
        );
        assert_eq!(
            "/run/a.sock".parse::<Endpoint>().unwrap().to_string(),
            "unix:/run/a.sock"
        );
        assert!("unix:".parse::<Endpoint>().is_err());
    }

    #[test]
    fn tcp_transport_speaks_the_same_protocol() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = Endpoint::Tcp(listener.local_addr().unwrap().to_string());
        let listener = Listener::Tcp(listener);
        thread::spawn(move || serve(&listener, &key(1), |q: Value| q));
        let mut client = Client::connect(&endpoint, key(1)).unwrap();
        let reply: Value = client.call(&json!({"ping": 1})).unwrap();
        assert_eq!(reply, json!({"ping": 1}));
    }

    #[test]
    fn agent_that_bound_a_socket_keeps_it() {
        let (_dir, endpoint) = echo_agent();
        let err = endpoint.bind().unwrap_err().to_string();
        assert!(err.contains("another agent is listening"), "{err}");
    }
}
