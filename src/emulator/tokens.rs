//! Who may call: grants (one per approval), the access tokens minted from them, one-time
//! authorization codes and consent requests waiting for a decision.
//!
//! A grant is what `/2/auth/token/revoke` and [`super::Emulator::revoke_tokens`] kill: its refresh
//! token and every access token minted from it (dropbox-api.md §1.3). Tokens are secrets even
//! here, so nothing in this module derives `Debug`.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::wire::AuthFailure;

/// Every scope the emulated app has enabled (the set markdrop asks for, dropbox-api.md §7).
pub const ALL_SCOPES: [&str; 4] =
    ["account_info.read", "files.content.read", "files.content.write", "files.metadata.read"];

/// Scopes, kept sorted so `scope` in a token response is stable.
pub type Scopes = BTreeSet<String>;

pub fn all_scopes() -> Scopes {
    ALL_SCOPES.iter().map(|scope| (*scope).to_owned()).collect()
}

/// Parses a space-separated scope list; `None` if it names a scope the app does not have.
pub fn parse_scopes(text: &str) -> Option<Scopes> {
    let scopes: Scopes = text.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    scopes.iter().all(|scope| ALL_SCOPES.contains(&scope.as_str())).then_some(scopes)
}

pub fn join_scopes(scopes: &Scopes) -> String {
    scopes.iter().map(String::as_str).collect::<Vec<_>>().join(" ")
}

/// How the app authenticated when the grant was made, which decides what a refresh needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// The code was exchanged with the app secret: refreshing needs the secret again.
    Secret,
    /// The code was exchanged with a PKCE verifier alone: `client_id` is enough to refresh.
    Pkce,
}

pub struct Grant {
    pub account_id: String,
    pub scopes: Scopes,
    pub client_auth: ClientAuth,
    pub revoked: bool,
}

struct AccessToken {
    grant: usize,
    scopes: Scopes,
    expires_at: Instant,
}

/// An approved authorization waiting to be exchanged at `/oauth2/token`.
pub struct Code {
    pub account_id: String,
    pub scopes: Scopes,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub offline: bool,
    pub expires_at: Instant,
}

/// An authorize request shown on the consent page, waiting for Allow or Deny.
#[derive(Clone)]
pub struct PendingConsent {
    pub account_id: String,
    pub scopes: Scopes,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub offline: bool,
}

/// A caller that presented a live token.
pub struct Caller {
    pub account_id: String,
    pub scopes: Scopes,
    pub grant: usize,
}

/// A fresh token pair as the token endpoint reports it.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub scopes: Scopes,
}

/// Authorization codes live ten minutes, long enough for any test and short like Dropbox's.
const CODE_LIFETIME: Duration = Duration::from_secs(600);

#[derive(Default)]
pub struct Tokens {
    grants: Vec<Grant>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, usize>,
    codes: HashMap<String, Code>,
    pub consents: HashMap<String, PendingConsent>,
}

impl Tokens {
    /// A new grant with its first access token (and a refresh token when `offline`).
    pub fn grant(
        &mut self,
        account_id: &str,
        scopes: Scopes,
        client_auth: ClientAuth,
        offline: bool,
        lifetime: Duration,
    ) -> Issued {
        let grant = self.grants.len();
        self.grants.push(Grant {
            account_id: account_id.to_owned(),
            scopes: scopes.clone(),
            client_auth,
            revoked: false,
        });
        let refresh_token = offline.then(|| {
            let token = random_token(64);
            self.refresh.insert(token.clone(), grant);
            token
        });
        let access_token = self.mint_access(grant, scopes.clone(), lifetime);
        Issued { access_token, refresh_token, scopes }
    }

    fn mint_access(&mut self, grant: usize, scopes: Scopes, lifetime: Duration) -> String {
        // `sl.` is the observed prefix of short-lived tokens; the emulator calls anything else
        // malformed, which catches a client sending a refresh token as a bearer token.
        let token = format!("sl.{}", random_token(120));
        let expires_at = Instant::now() + lifetime;
        self.access.insert(token.clone(), AccessToken { grant, scopes, expires_at });
        token
    }

    /// The account a token belongs to, alive or not (for stats and fault matching only).
    pub fn account_of(&self, access_token: &str) -> Option<&str> {
        let token = self.access.get(access_token)?;
        self.grants.get(token.grant).map(|grant| grant.account_id.as_str())
    }

    /// Checks a bearer token that looks like one.
    pub fn authenticate(&self, access_token: &str) -> Result<Caller, AuthFailure> {
        let token = self.access.get(access_token).ok_or(AuthFailure::InvalidAccessToken)?;
        let grant = self.grants.get(token.grant).ok_or(AuthFailure::InvalidAccessToken)?;
        if grant.revoked {
            return Err(AuthFailure::InvalidAccessToken);
        }
        if Instant::now() >= token.expires_at {
            return Err(AuthFailure::ExpiredAccessToken);
        }
        Ok(Caller {
            account_id: grant.account_id.clone(),
            scopes: token.scopes.clone(),
            grant: token.grant,
        })
    }

    pub fn revoke_grant(&mut self, grant: usize) {
        if let Some(grant) = self.grants.get_mut(grant) {
            grant.revoked = true;
        }
    }

    pub fn revoke_account(&mut self, account_id: &str) {
        for grant in self.grants.iter_mut().filter(|grant| grant.account_id == account_id) {
            grant.revoked = true;
        }
    }

    pub fn expire_account(&mut self, account_id: &str) {
        let now = Instant::now();
        for token in self.access.values_mut() {
            if self.grants.get(token.grant).is_some_and(|grant| grant.account_id == account_id) {
                token.expires_at = now;
            }
        }
    }

    /// The live grant behind a refresh token.
    pub fn refresh_grant(&self, refresh_token: &str) -> Option<(usize, &Grant)> {
        let index = *self.refresh.get(refresh_token)?;
        let grant = self.grants.get(index)?;
        (!grant.revoked).then_some((index, grant))
    }

    pub fn account_of_refresh(&self, refresh_token: &str) -> Option<&str> {
        let index = *self.refresh.get(refresh_token)?;
        self.grants.get(index).map(|grant| grant.account_id.as_str())
    }

    /// A new access token from a refresh token's grant (refresh tokens do not rotate).
    pub fn refresh(&mut self, grant: usize, scopes: Scopes, lifetime: Duration) -> String {
        self.mint_access(grant, scopes, lifetime)
    }

    pub fn issue_code(&mut self, code: Code) -> String {
        let value = random_token(43);
        self.codes.insert(value.clone(), code);
        value
    }

    pub fn peek_code(&self, code: &str) -> Option<&Code> {
        self.codes.get(code)
    }

    /// Takes a code out: codes are one-time, whatever the outcome of the exchange.
    pub fn take_code(&mut self, code: &str) -> Option<Code> {
        self.codes.remove(code).filter(|code| Instant::now() < code.expires_at)
    }

    pub fn code_expiry() -> Instant {
        Instant::now() + CODE_LIFETIME
    }
}

/// Random characters from the base64url alphabet.
pub fn random_token(length: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    (0..length).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()
}
