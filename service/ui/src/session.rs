//! UI sessions and CSRF tokens, without server-side storage.
//!
//! The session cookie is `ISSUED.NONCE.MAC`, the MAC an HMAC-SHA256 under a per-process secret
//! over the caller the gate found (DN and account), the issue time and the nonce. It is only
//! valid for that caller: a cookie lifted from alice's browser is worthless on bob's TLS
//! connection. Every POST form carries a CSRF token, the HMAC of the session cookie under a
//! different label, so a page that cannot read the cookie cannot forge the token. With
//! `SameSite=Strict` and the Origin/Referer check this is defence in depth; a refusal changes
//! nothing. A restart makes a new secret, which ends every session (a reload gets a new one).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::HttpRequest;
use chrono::Utc;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;

use vcds_api::security::Principal;

/// How long a session lasts.
const LIFETIME_SECS: i64 = 12 * 3600;
const NONCE_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot make the UI session secret: {0}")]
    Secret(#[from] openssl::error::ErrorStack),
}

/// Why a state-changing UI request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no valid UI session for this caller (reload the page to get one)")]
    NoSession,
    #[error("the form's CSRF token does not belong to this session")]
    BadToken,
    #[error("the request came from another site (Origin or Referer)")]
    CrossOrigin,
}

/// The per-process secret sessions and tokens are made with.
pub struct Sessions {
    key: PKey<Private>,
    /// Secure mode: cookies get `Secure` and the `__Host-` prefix.
    secure: bool,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

/// A session valid for the current caller: its cookie value and the CSRF token of its forms.
#[derive(Debug, Clone)]
pub struct Session {
    pub value: String,
    pub csrf: String,
    /// Made by this request: the response must set the cookie.
    pub new: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    pub fn new(secure: bool) -> Result<Sessions, SessionError> {
        let mut secret = [0u8; 32];
        openssl::rand::rand_bytes(&mut secret)?;
        Ok(Sessions {
            key: PKey::hmac(&secret)?,
            secure,
        })
    }

    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-vcds-ui"
        } else {
            "vcds-ui"
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> Option<String> {
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).ok()?;
        for part in parts {
            // Length-prefixed, so no two different part lists sign the same bytes.
            signer.update(&(part.len() as u64).to_be_bytes()).ok()?;
            signer.update(part).ok()?;
        }
        signer.sign_to_vec().ok().map(|m| hex(&m))
    }

    fn session_mac(&self, caller: &Principal, issued: &str, nonce: &str) -> Option<String> {
        let dn = caller.dn.to_string();
        self.mac(&[
            b"vcds-ui-session",
            dn.as_bytes(),
            caller.account.as_bytes(),
            issued.as_bytes(),
            nonce.as_bytes(),
        ])
    }

    fn csrf_of(&self, value: &str) -> Option<String> {
        self.mac(&[b"vcds-ui-csrf", value.as_bytes()])
    }

    /// The session `value` stands for, if it is valid for `caller` now.
    fn check(&self, caller: &Principal, value: &str) -> Option<Session> {
        let mut parts = value.split('.');
        let (issued, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let expected = self.session_mac(caller, issued, nonce)?;
        if !same(mac, &expected) {
            return None;
        }
        let age = Utc::now().timestamp() - issued.parse::<i64>().ok()?;
        if !(-60..LIFETIME_SECS).contains(&age) {
            return None;
        }
        Some(Session {
            value: value.to_string(),
            csrf: self.csrf_of(value)?,
            new: false,
        })
    }

    fn cookie_value<'r>(&self, req: &'r HttpRequest) -> Option<Cookie<'r>> {
        req.cookie(self.cookie_name())
    }

    /// For a page: the caller's current session, or a new one (`new`: set the cookie). `None`
    /// only if the HMAC cannot be computed.
    pub fn begin(&self, req: &HttpRequest, caller: &Principal) -> Option<Session> {
        if let Some(s) = self
            .cookie_value(req)
            .and_then(|c| self.check(caller, c.value()))
        {
            return Some(s);
        }
        let mut nonce = [0u8; NONCE_BYTES];
        openssl::rand::rand_bytes(&mut nonce).ok()?;
        let (issued, nonce) = (Utc::now().timestamp().to_string(), hex(&nonce));
        let mac = self.session_mac(caller, &issued, &nonce)?;
        let value = format!("{issued}.{nonce}.{mac}");
        Some(Session {
            csrf: self.csrf_of(&value)?,
            value,
            new: true,
        })
    }

    /// The cookie that carries `session`.
    pub fn cookie(&self, session: &Session) -> Cookie<'static> {
        Cookie::build(self.cookie_name(), session.value.clone())
            .path(if self.secure { "/" } else { "/ui" })
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
            .max_age(actix_web::cookie::time::Duration::seconds(LIFETIME_SECS))
            .finish()
    }

    /// For a state-changing request: its origin is this site, it carries a session valid for
    /// `caller`, and `token` is that session's CSRF token.
    pub fn authorize(
        &self,
        req: &HttpRequest,
        caller: &Principal,
        token: &str,
    ) -> Result<Session, Refusal> {
        if !same_origin(req) {
            return Err(Refusal::CrossOrigin);
        }
        let session = self
            .cookie_value(req)
            .and_then(|c| self.check(caller, c.value()))
            .ok_or(Refusal::NoSession)?;
        if same(token, &session.csrf) {
            Ok(session)
        } else {
            Err(Refusal::BadToken)
        }
    }
}

/// Constant-time equality of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

/// `scheme://host[:port]` of the origin a header names.
fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{}://{host}:{p}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// Origin (or, without it, Referer) names this site when present. Browsers send Origin with
/// every POST; an opaque `null` origin is refused.
fn same_origin(req: &HttpRequest) -> bool {
    let info = req.connection_info();
    let ours = origin_of(&format!("{}://{}", info.scheme(), info.host()));
    let claimed = req
        .headers()
        .get(header::ORIGIN)
        .or_else(|| req.headers().get(header::REFERER))
        .map(|v| v.to_str().ok().and_then(origin_of));
    match claimed {
        None => true,
        Some(theirs) => theirs.is_some() && theirs == ours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use vcds_auth::Dn;

    fn who(account: &str) -> Principal {
        Principal {
            dn: Dn::from_attributes([("CN", account)]),
            account: account.to_string(),
            admin: false,
            limited_proxy: false,
        }
    }

    fn with_cookie(sessions: &Sessions, s: &Session) -> TestRequest {
        TestRequest::post().cookie(sessions.cookie(s))
    }

    #[test]
    fn a_session_is_bound_to_its_caller_and_token() {
        let sessions = Sessions::new(false).expect("secret");
        let (alice, bob) = (who("alice"), who("bob"));
        let s = sessions
            .begin(&TestRequest::get().to_http_request(), &alice)
            .expect("session");
        assert!(s.new);
        let req = with_cookie(&sessions, &s).to_http_request();
        assert!(sessions.authorize(&req, &alice, &s.csrf).is_ok());
        assert_eq!(
            sessions.authorize(&req, &bob, &s.csrf).err(),
            Some(Refusal::NoSession)
        );
        assert_eq!(
            sessions.authorize(&req, &alice, "00").err(),
            Some(Refusal::BadToken)
        );
        let bare = TestRequest::post().to_http_request();
        assert_eq!(
            sessions.authorize(&bare, &alice, &s.csrf).err(),
            Some(Refusal::NoSession)
        );
        // The same cookie is the same session on the next page.
        let again = sessions.begin(&req, &alice).expect("session");
        assert!(!again.new);
        assert_eq!(again.csrf, s.csrf);
        // Another process's secret knows none of it.
        let other = Sessions::new(false).expect("secret");
        assert!(other.authorize(&req, &alice, &s.csrf).is_err());
    }

    #[test]
    fn foreign_origins_are_refused() {
        let sessions = Sessions::new(false).expect("secret");
        let alice = who("alice");
        let s = sessions
            .begin(&TestRequest::get().to_http_request(), &alice)
            .expect("session");
        let from = |name, value| {
            with_cookie(&sessions, &s)
                .insert_header(("Host", "127.0.0.1:8080"))
                .insert_header((name, value))
                .to_http_request()
        };
        for (name, value, ok) in [
            ("Origin", "http://127.0.0.1:8080", true),
            ("Referer", "http://127.0.0.1:8080/ui/clusters/x", true),
            ("Origin", "http://evil.example", false),
            ("Origin", "null", false),
            ("Origin", "http://127.0.0.1:8081", false),
            ("Referer", "https://127.0.0.1:8080/ui/", false),
        ] {
            let got = sessions.authorize(&from(name, value), &alice, &s.csrf);
            assert_eq!(got.is_ok(), ok, "{name}: {value}: {got:?}");
        }
    }
}
