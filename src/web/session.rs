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

use crate::account::AccountId;
use crate::clock::Clock;
use crate::crypto::{Sealer, constant_time_eq, random_token};

const COOKIE: &str = "markdrop_session";
/// Over https the `__Host-` prefix makes browsers refuse the cookie from any other origin (a
/// sibling subdomain cannot plant one) and insist on `Secure` and `Path=/`.
const SECURE_COOKIE: &str = "__Host-markdrop_session";
/// Separates this key from anything else derived from `SECRET_KEY`.
const PURPOSE: &[u8] = b"markdrop session cookie v1";
/// The associated data of the cookie: it is bound to nothing but its name.
const CONTEXT: &[u8] = COOKIE.as_bytes();
/// A session lasts this long after sign-in; an older cookie is refused even if a browser (or a
/// copy) still presents it.
const MAX_AGE_DAYS: i64 = 30;
const MAX_AGE_SECS: u64 = MAX_AGE_DAYS as u64 * 86_400;

/// What one browser's cookie carries.
#[derive(Default, Clone, Serialize, Deserialize)]
pub struct Session {
    pub account: Option<AccountId>,
    /// The account's link id at sign-in; once the account is unlinked it no longer matches, so
    /// this session stays signed out even if the account is linked again.
    pub link_id: Option<String>,
    /// When the session began, in seconds since the Unix epoch.
    pub issued_at: u64,
    pub login: Option<PendingLogin>,
    /// Compared with the token in every form this browser posts.
    pub csrf: String,
    /// Shown once, on the next page.
    pub notice: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.account)
            .field("issued_at", &self.issued_at)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
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

/// Seals sessions into cookies and opens them again, and starts new ones.
#[derive(Clone)]
pub struct SessionCodec {
    sealer: Sealer,
    /// `Secure` cookies when markdrop is served over https.
    secure: bool,
    /// When a session begins, and how old one is.
    clock: Clock,
}

impl SessionCodec {
    pub fn new(secret_key: &SecretString, secure: bool, clock: Clock) -> SessionCodec {
        SessionCodec { sealer: Sealer::new(secret_key, PURPOSE), secure, clock }
    }

    /// A new session: nobody signed in, a fresh CSRF token.
    pub fn fresh(&self) -> Session {
        Session { issued_at: self.clock.now_secs(), csrf: random_token(), ..Session::default() }
    }

    /// A new session signed in as `account` (a fresh CSRF token too, so nothing known before
    /// sign-in carries over).
    pub fn signed_in(&self, account: AccountId, link_id: String) -> Session {
        Session { account: Some(account), link_id: Some(link_id), ..self.fresh() }
    }

    /// The request's session; a missing, expired, forged or damaged cookie gives a fresh one.
    pub fn load(&self, request: &HttpRequest) -> Session {
        request
            .cookie(self.cookie_name())
            .and_then(|cookie| self.open(cookie.value()))
            .filter(|session| {
                !session.csrf.is_empty()
                    && self.clock.now_secs().saturating_sub(session.issued_at) < MAX_AGE_SECS
            })
            .unwrap_or_else(|| self.fresh())
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure { SECURE_COOKIE } else { COOKIE }
    }

    /// The cookie that carries `session`.
    pub fn cookie(&self, session: &Session) -> Cookie<'static> {
        let plaintext = serde_json::to_vec(session).expect("a session always serializes");
        let sealed = self.sealer.seal(&plaintext, CONTEXT);
        Cookie::build(self.cookie_name(), sealed)
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
    use crate::clock::ManualClock;

    fn codec(key: &str) -> SessionCodec {
        SessionCodec::new(&key.to_owned().into(), true, Clock::system())
    }

    #[test]
    fn a_session_survives_its_cookie_and_nobody_else_can_open_it() {
        let account = AccountId::parse("dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc").unwrap();
        let session = Session {
            csrf: "csrf-token".to_owned(),
            notice: Some("hello".to_owned()),
            ..codec("0123456789abcdef0123456789abcdef").signed_in(account, "link".to_owned())
        };
        let ours = codec("0123456789abcdef0123456789abcdef");
        let cookie = ours.cookie(&session);
        assert!(cookie.http_only() == Some(true) && cookie.secure() == Some(true));
        assert_eq!(cookie.name(), "__Host-markdrop_session");
        assert_eq!(cookie.same_site(), Some(SameSite::Lax));
        assert!(!cookie.value().contains("csrf-token"));
        let opened = ours.open(cookie.value()).expect("opens");
        assert_eq!(opened.account, session.account);
        assert_eq!(opened.notice.as_deref(), Some("hello"));
        assert!(codec("another-key-another-key-another-key").open(cookie.value()).is_none());
        assert!(ours.open("garbage").is_none());
    }

    #[test]
    fn an_old_session_is_refused_and_debug_shows_no_csrf_token() {
        let time = ManualClock::new();
        let ours = SessionCodec::new(
            &"0123456789abcdef0123456789abcdef".to_owned().into(),
            true,
            time.clock(),
        );
        let current = ours.fresh();
        let request =
            actix_web::test::TestRequest::default().cookie(ours.cookie(&current)).to_http_request();
        assert_eq!(ours.load(&request).csrf, current.csrf);
        assert!(!format!("{current:?}").contains(&current.csrf));
        time.advance(std::time::Duration::from_secs(MAX_AGE_SECS));
        assert_ne!(ours.load(&request).csrf, current.csrf, "a fresh session instead");
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
