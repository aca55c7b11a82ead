//! OpenSSH public keys, one `authorized_keys` line each, checked without any I/O: `TYPE BASE64
//! [COMMENT]`, a type sshd accepts, base64 that decodes to the SSH wire form of a key of that
//! type (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709, OpenSSH's PROTOCOL.u2f), and nothing that
//! would make the line more than a key (no options prefix such as `command=`, no second line).

use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The longest key line accepted, in bytes (a 16384-bit RSA key is about 2.8 KiB).
pub const MAX_LINE: usize = 16 * 1024;
/// RSA modulus sizes sshd accepts (OpenSSH's `RequiredRSASize` default and its largest).
const RSA_BITS: (usize, usize) = (1024, 16384);

/// The key types accepted, spelled as in the key line and inside the key data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Ed25519,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Rsa,
    SkEd25519,
    SkEcdsaP256,
}

impl KeyType {
    pub const ALL: [KeyType; 7] = [
        KeyType::Ed25519,
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::EcdsaP521,
        KeyType::Rsa,
        KeyType::SkEd25519,
        KeyType::SkEcdsaP256,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ssh-ed25519",
            KeyType::EcdsaP256 => "ecdsa-sha2-nistp256",
            KeyType::EcdsaP384 => "ecdsa-sha2-nistp384",
            KeyType::EcdsaP521 => "ecdsa-sha2-nistp521",
            KeyType::Rsa => "ssh-rsa",
            KeyType::SkEd25519 => "sk-ssh-ed25519@openssh.com",
            KeyType::SkEcdsaP256 => "sk-ecdsa-sha2-nistp256@openssh.com",
        }
    }

    fn from_name(name: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a line is not an acceptable public key, or cannot be added to a login. The message says
/// what the line must be, so it reads after "… must be".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("an OpenSSH public key line of at most {MAX_LINE} bytes (this one has {len})")]
    TooLong { len: usize },
    #[error("one line without control characters (newlines, tabs…)")]
    Control,
    #[error(
        "a public key alone, TYPE BASE64 [COMMENT]: authorized_keys options such as command=, \
         from= or restrict are not accepted"
    )]
    Options,
    #[error(
        "an OpenSSH public key of type ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, \
         ecdsa-sha2-nistp521, ssh-rsa, sk-ssh-ed25519@openssh.com or \
         sk-ecdsa-sha2-nistp256@openssh.com (not {ty:?})"
    )]
    UnknownType { ty: String },
    #[error("TYPE BASE64 [COMMENT]: the key data is missing")]
    NoKeyData,
    #[error("TYPE BASE64 [COMMENT] with base64 key data ({why})")]
    Base64 { why: String },
    #[error("a public key of the type it names, {ty} (its data is of type {found:?})")]
    TypeMismatch { ty: KeyType, found: String },
    #[error("a well-formed {ty} key ({why})")]
    Malformed { ty: KeyType, why: &'static str },
    #[error("an RSA key of {} to {} bits (this one has {bits})", RSA_BITS.0, RSA_BITS.1)]
    RsaSize { bits: usize },
    #[error("a key whose comment has only printable characters")]
    Comment,
    /// The same key (type and data; comments aside) is already the login's `of`-th (0-based).
    #[error("a key not already listed")]
    Duplicate { of: usize },
    #[error("one of at most {max} keys")]
    TooMany { max: usize },
}

/// A checked public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    kind: KeyType,
    blob: Vec<u8>,
    comment: String,
}

impl PublicKey {
    /// Reads one key line (surrounding spaces aside).
    pub fn parse(line: &str) -> Result<PublicKey, KeyError> {
        let line = line.trim_matches(' ');
        if line.len() > MAX_LINE {
            return Err(KeyError::TooLong { len: line.len() });
        }
        if line.chars().any(char::is_control) {
            return Err(KeyError::Control);
        }
        let (ty, rest) = word(line);
        let kind = match KeyType::from_name(ty) {
            Some(kind) => kind,
            None if looks_like_options(ty, rest) => return Err(KeyError::Options),
            None => return Err(KeyError::UnknownType { ty: ty.to_string() }),
        };
        let (data, comment) = word(rest);
        if data.is_empty() {
            return Err(KeyError::NoKeyData);
        }
        let blob = STANDARD
            .decode(data)
            .map_err(|e| KeyError::Base64 { why: e.to_string() })?;
        check_blob(kind, &blob)?;
        if comment.chars().any(invisible) {
            return Err(KeyError::Comment);
        }
        Ok(PublicKey {
            kind,
            blob,
            comment: comment.to_string(),
        })
    }

    pub fn kind(&self) -> KeyType {
        self.kind
    }

    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// The key data in SSH wire form.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// The fingerprint as `ssh-keygen -l` prints it: `SHA256:` and unpadded base64.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(&self.blob))
        )
    }

    /// Whether both are the same key, comments aside.
    pub fn same_key(&self, other: &PublicKey) -> bool {
        self.kind == other.kind && self.blob == other.blob
    }
}

/// The normalized line: `TYPE BASE64 COMMENT`, or `TYPE BASE64` without a comment.
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, STANDARD.encode(&self.blob))?;
        if !self.comment.is_empty() {
            write!(f, " {}", self.comment)?;
        }
        Ok(())
    }
}

/// The first space-separated word and the rest, spaces around it removed.
fn word(text: &str) -> (&str, &str) {
    let text = text.trim_start_matches(' ');
    match text.split_once(' ') {
        Some((w, rest)) => (w, rest.trim_matches(' ')),
        None => (text, ""),
    }
}

/// `authorized_keys` options come before the key type: `command="…"`, `from=…`, `no-pty,…`.
fn looks_like_options(first: &str, rest: &str) -> bool {
    const OPTIONS: &[&str] = &[
        "agent-forwarding",
        "cert-authority",
        "no-agent-forwarding",
        "no-port-forwarding",
        "no-pty",
        "no-touch-required",
        "no-user-rc",
        "no-x11-forwarding",
        "port-forwarding",
        "pty",
        "restrict",
        "user-rc",
        "verify-required",
        "x11-forwarding",
    ];
    first.contains(['=', ',', '"'])
        || OPTIONS.contains(&first.to_ascii_lowercase().as_str())
        || rest.split(' ').any(|w| KeyType::from_name(w).is_some())
}

/// Characters that print as nothing or reorder the text around them (zero-width, bidi
/// controls, soft hyphen, byte-order mark): refused in comments shown to people.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// SSH wire data: length-prefixed strings and multiple-precision integers.
struct Wire<'b>(&'b [u8]);

impl<'b> Wire<'b> {
    fn string(&mut self) -> Option<&'b [u8]> {
        let len: [u8; 4] = self.0.get(..4)?.try_into().ok()?;
        let end = usize::try_from(u32::from_be_bytes(len))
            .ok()?
            .checked_add(4)?;
        let s = self.0.get(4..end)?;
        self.0 = &self.0[end..];
        Some(s)
    }

    /// A positive mpint in its shortest form; its size in bits.
    fn positive_mpint(&mut self) -> Option<usize> {
        let n = self.string()?;
        let (&first, tail) = n.split_first()?;
        if first & 0x80 != 0 {
            return None; // negative
        }
        let magnitude = if first == 0 {
            // a leading zero only to keep the top bit of the next byte from reading as a sign
            match tail.first() {
                Some(&b) if b & 0x80 != 0 => tail,
                _ => return None,
            }
        } else {
            n
        };
        let top = magnitude.first()?;
        Some(magnitude.len() * 8 - top.leading_zeros() as usize)
    }
}

fn check_blob(kind: KeyType, blob: &[u8]) -> Result<(), KeyError> {
    let malformed = |why| KeyError::Malformed { ty: kind, why };
    let mut w = Wire(blob);
    let inner = w
        .string()
        .ok_or_else(|| malformed("no key type in the key data"))?;
    if inner != kind.as_str().as_bytes() {
        let found = String::from_utf8_lossy(&inner[..inner.len().min(64)]).into_owned();
        return Err(KeyError::TypeMismatch { ty: kind, found });
    }
    let point = |w: &mut Wire<'_>, curve: &str, len: usize| {
        if w.string() != Some(curve.as_bytes()) {
            return Err(malformed("the curve name does not match the key type"));
        }
        match w.string() {
            Some(q) if q.len() == len && q[0] == 0x04 => Ok(()),
            _ => Err(malformed(
                "the public point is not an uncompressed point of the curve",
            )),
        }
    };
    let ed25519 = |w: &mut Wire<'_>| match w.string() {
        Some(pk) if pk.len() == 32 => Ok(()),
        _ => Err(malformed("an Ed25519 public key is 32 bytes")),
    };
    match kind {
        KeyType::Ed25519 => ed25519(&mut w)?,
        KeyType::EcdsaP256 => point(&mut w, "nistp256", 65)?,
        KeyType::EcdsaP384 => point(&mut w, "nistp384", 97)?,
        KeyType::EcdsaP521 => point(&mut w, "nistp521", 133)?,
        KeyType::Rsa => {
            w.positive_mpint()
                .ok_or_else(|| malformed("the public exponent is not a positive integer"))?;
            let bits = w
                .positive_mpint()
                .ok_or_else(|| malformed("the modulus is not a positive integer"))?;
            if !(RSA_BITS.0..=RSA_BITS.1).contains(&bits) {
                return Err(KeyError::RsaSize { bits });
            }
        }
        KeyType::SkEd25519 | KeyType::SkEcdsaP256 => {
            if kind == KeyType::SkEd25519 {
                ed25519(&mut w)?;
            } else {
                point(&mut w, "nistp256", 65)?;
            }
            match w.string() {
                Some(app) if !app.is_empty() && !app.contains(&0) => {}
                _ => return Err(malformed("the security key's application is missing")),
            }
        }
    }
    if w.0.is_empty() {
        Ok(())
    } else {
        Err(malformed("bytes follow the key"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&u32::try_from(s.len()).unwrap().to_be_bytes());
        out.extend_from_slice(s);
    }

    fn line(ty: &str, parts: &[&[u8]]) -> String {
        let mut blob = Vec::new();
        for p in parts {
            string(&mut blob, p);
        }
        format!("{ty} {}", STANDARD.encode(blob))
    }

    #[test]
    fn mpints_must_be_positive_and_shortest() {
        let rsa = |n: &[u8]| PublicKey::parse(&line("ssh-rsa", &[b"ssh-rsa", &[1, 0, 1], n]));
        let mut n = vec![0u8];
        n.extend(std::iter::repeat_n(0xff, 128));
        assert!(rsa(&n).is_ok(), "1024 bits with a sign byte");
        assert!(matches!(rsa(&n[1..]), Err(KeyError::Malformed { .. })));
        let mut padded = vec![0u8, 0];
        padded.extend(std::iter::repeat_n(0x7f, 128));
        assert!(matches!(rsa(&padded), Err(KeyError::Malformed { .. })));
        assert_eq!(rsa(&n[..65]), Err(KeyError::RsaSize { bits: 512 }));
        assert!(matches!(rsa(&[]), Err(KeyError::Malformed { .. })));
    }

    #[test]
    fn truncated_and_overlong_data_is_malformed() {
        let pk = [7u8; 32];
        assert!(PublicKey::parse(&line("ssh-ed25519", &[b"ssh-ed25519", &pk])).is_ok());
        for bad in [
            line("ssh-ed25519", &[b"ssh-ed25519"]),
            line("ssh-ed25519", &[b"ssh-ed25519", &pk[..31]]),
            line("ssh-ed25519", &[b"ssh-ed25519", &pk, b"x"]),
            format!(
                "ssh-ed25519 {}",
                STANDARD.encode([0u8, 0, 0xff, 0xff, b's'])
            ),
        ] {
            assert!(
                matches!(PublicKey::parse(&bad), Err(KeyError::Malformed { .. })),
                "{bad}"
            );
        }
    }
}
