//! The session: a small record in one cookie, sealed (encrypted and authenticated) with a key
//! derived from `SECRET_KEY`, so it needs no server-side storage and a person can neither read
//! nor forge it.
//!
//! It holds who is signed in, the one-time `state` and PKCE verifier of a login in progress, the
//! CSRF token for forms, and a one-shot notice for the next page.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::crypto::{Sealer, constant_time_eq, random_token};
use crate::dropbox::AccountId;

const COOKIE: &str = "markdrop_session";
/// Separates this key from anything else derived from `SECRET_KEY`.
const PURPOSE: &[u8] = b"markdrop session cookie v1";
/// The associated data of the cookie: it is bound to nothing but its name.
const CONTEXT: &[u8] = COOKIE.as_bytes();
/// A signed-in session lasts this long without a visit.
const MAX_AGE_DAYS: i64 = 30;

/// What one browser's cookie carries.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Session {
    pub account: Option<AccountId>,
    pub login: Option<PendingLogin>,
    /// Compared with the token in every form this browser posts.
    pub csrf: String,
    /// Shown once, on the next page.
    pub notice: Option<String>,
}

/// A login sent to Dropbox and not back yet.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub verifier: String,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin").field("started_at", &self.started_at).finish_non_exhaustive()
    }
}

impl Session {
    /// Whether `token` (from a posted form) is this session's CSRF token, compared in constant
    /// time.
    pub fn csrf_matches(&self, token: &str) -> bool {
        !self.csrf.is_empty() && constant_time_eq(&self.csrf, token)
    }
}

/// Seals sessions into cookies and opens them again.
#[derive(Clone)]
pub struct SessionCodec {
    sealer: Sealer,
    /// `Secure` cookies when markdrop is served over https.
    secure: bool,
}

impl SessionCodec {
    pub fn new(secret_key: &SecretString, secure: bool) -> SessionCodec {
        SessionCodec { sealer: Sealer::new(secret_key, PURPOSE), secure }
    }

    /// The request's session; a missing, expired, forged or damaged cookie gives a fresh one.
    pub fn load(&self, request: &HttpRequest) -> Session {
        let mut session =
            request.cookie(COOKIE).and_then(|cookie| self.open(cookie.value())).unwrap_or_default();
        if session.csrf.is_empty() {
            session.csrf = random_token();
        }
        session
    }

    /// The cookie that carries `session`.
    pub fn cookie(&self, session: &Session) -> Cookie<'static> {
        let plaintext = serde_json::to_vec(session).expect("a session always serializes");
        let sealed = self.sealer.seal(&plaintext, CONTEXT);
        Cookie::build(COOKIE, sealed)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(time::Duration::days(MAX_AGE_DAYS))
            .finish()
    }

    fn open(&self, value: &str) -> Option<Session> {
        serde_json::from_slice(&self.sealer.open(value, CONTEXT)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(key: &str) -> SessionCodec {
        SessionCodec::new(&key.to_owned().into(), true)
    }

    #[test]
    fn a_session_survives_its_cookie_and_nobody_else_can_open_it() {
        let session = Session {
            account: Some(AccountId::parse("dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc").unwrap()),
            login: None,
            csrf: "csrf-token".to_owned(),
            notice: Some("hello".to_owned()),
        };
        let ours = codec("0123456789abcdef0123456789abcdef");
        let cookie = ours.cookie(&session);
        assert!(cookie.http_only() == Some(true) && cookie.secure() == Some(true));
        assert_eq!(cookie.same_site(), Some(SameSite::Lax));
        assert!(!cookie.value().contains("csrf-token"));
        let opened = ours.open(cookie.value()).expect("opens");
        assert_eq!(opened.account, session.account);
        assert_eq!(opened.notice.as_deref(), Some("hello"));
        assert!(codec("another-key-another-key-another-key").open(cookie.value()).is_none());
        assert!(ours.open("garbage").is_none());
    }

    #[test]
    fn csrf_tokens_match_only_exactly() {
        let session = Session { csrf: "abc".to_owned(), ..Session::default() };
        assert!(session.csrf_matches("abc"));
        assert!(
            !session.csrf_matches("abd")
                && !session.csrf_matches("ab")
                && !session.csrf_matches("")
        );
        assert!(!Session::default().csrf_matches(""));
    }
}
