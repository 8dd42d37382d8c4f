//! Who may call: grants (one per approval), the access tokens minted from them, one-time
//! authorization codes and consent requests waiting for a decision.
//!
//! A grant is what `/2/auth/token/revoke` and [`super::Emulator::revoke_tokens`] kill: its refresh
//! token and every access token minted from it (docs/dropbox.md §2). Tokens are secrets even
//! here, so nothing in this module derives `Debug`.
//!
//! A long-running emulator keeps only what can still be used: a revoked grant is forgotten with
//! its tokens, expired tokens and grants nothing can use any more are pruned whenever a token is
//! minted, and codes and consent requests go when used or expired. Dead tokens are remembered
//! (a bounded number of them) so an expired one still answers `expired_access_token`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use super::wire::AuthFailure;

/// Every scope the emulated app has enabled (the set markdrop asks for, docs/dropbox.md §9).
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

/// Identifies a grant; never reused, so a stale id finds nothing.
pub type GrantId = u64;

pub struct Grant {
    pub account_id: String,
    pub scopes: Scopes,
    pub client_auth: ClientAuth,
    refresh_token: Option<String>,
}

struct AccessToken {
    grant: GrantId,
    scopes: Scopes,
    expires_at: Instant,
}

/// A token that stopped working, remembered so it still gets the right 401 (and its calls still
/// count for its account) after the live records are gone.
struct DeadToken {
    account_id: String,
    grant: GrantId,
    revoked: bool,
    /// Order of death, for dropping the longest dead first.
    buried: u64,
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
#[derive(Clone)]
pub struct Caller {
    pub account_id: String,
    pub scopes: Scopes,
    pub grant: GrantId,
    /// The folder the caller's paths start from, for a team member calling without
    /// `Dropbox-API-Path-Root` (their home folder in the team's tree); `None`: the root.
    pub home: Option<super::path::DropboxPath>,
}

/// A fresh token pair as the token endpoint reports it.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub scopes: Scopes,
}

/// Authorization codes live ten minutes, long enough for any test and short like Dropbox's.
const CODE_LIFETIME: Duration = Duration::from_secs(600);
/// A consent page left unanswered for an hour is abandoned.
const CONSENT_LIFETIME: Duration = Duration::from_secs(3600);
/// Codes and consent requests waiting at once; beyond this the oldest are dropped, which only a
/// runaway script would notice.
const MAX_WAITING: usize = 1024;
/// Dead tokens remembered; an older one answers `invalid_access_token` like an unknown one.
const MAX_DEAD: usize = 1024;

#[derive(Default)]
pub struct Tokens {
    grants: HashMap<GrantId, Grant>,
    next_grant: GrantId,
    /// Tokens not yet known dead: live ones, and expired ones until the next prune.
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, GrantId>,
    dead: HashMap<String, DeadToken>,
    burials: u64,
    codes: HashMap<String, Code>,
    consents: HashMap<String, (PendingConsent, Instant)>,
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
        // Granting and refreshing are when the tables grow, so they are when they are pruned;
        // before the new grant exists, which has no token yet and would look unusable.
        self.prune();
        let grant = self.next_grant;
        self.next_grant += 1;
        let refresh_token = offline.then(|| random_token(64));
        if let Some(token) = &refresh_token {
            self.refresh.insert(token.clone(), grant);
        }
        self.grants.insert(
            grant,
            Grant {
                account_id: account_id.to_owned(),
                scopes: scopes.clone(),
                client_auth,
                refresh_token: refresh_token.clone(),
            },
        );
        let access_token = self.mint_access(grant, scopes.clone(), lifetime);
        Issued { access_token, refresh_token, scopes }
    }

    fn mint_access(&mut self, grant: GrantId, scopes: Scopes, lifetime: Duration) -> String {
        // `sl.` is the observed prefix of short-lived tokens; the emulator calls anything else
        // malformed, which catches a client sending a refresh token as a bearer token.
        let token = format!("sl.{}", random_token(120));
        let expires_at = Instant::now() + lifetime;
        self.access.insert(token.clone(), AccessToken { grant, scopes, expires_at });
        token
    }

    /// Moves expired access tokens to the dead, and forgets grants nothing can use any more.
    fn prune(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .access
            .iter()
            .filter(|(_, token)| token.expires_at <= now)
            .map(|(token, _)| token.clone())
            .collect();
        for token in expired {
            if let Some(record) = self.access.remove(&token) {
                self.bury(token, record.grant, false);
            }
        }
        let used: HashSet<GrantId> = self.access.values().map(|token| token.grant).collect();
        self.grants.retain(|id, grant| grant.refresh_token.is_some() || used.contains(id));
    }

    fn bury(&mut self, token: String, grant: GrantId, revoked: bool) {
        let Some(account_id) = self.grants.get(&grant).map(|grant| grant.account_id.clone()) else {
            return;
        };
        self.burials += 1;
        self.dead.insert(token, DeadToken { account_id, grant, revoked, buried: self.burials });
        drop_oldest(&mut self.dead, MAX_DEAD, |dead| dead.buried);
    }

    /// The account a token belongs to, alive or not (for stats and fault matching only).
    pub fn account_of(&self, access_token: &str) -> Option<&str> {
        match self.access.get(access_token) {
            Some(token) => self.grants.get(&token.grant).map(|grant| grant.account_id.as_str()),
            None => self.dead.get(access_token).map(|dead| dead.account_id.as_str()),
        }
    }

    /// Checks a bearer token that looks like one.
    pub fn authenticate(&self, access_token: &str) -> Result<Caller, AuthFailure> {
        let Some(token) = self.access.get(access_token) else {
            return match self.dead.get(access_token) {
                Some(dead) if !dead.revoked => Err(AuthFailure::ExpiredAccessToken),
                _ => Err(AuthFailure::InvalidAccessToken),
            };
        };
        let grant = self.grants.get(&token.grant).ok_or(AuthFailure::InvalidAccessToken)?;
        if Instant::now() >= token.expires_at {
            return Err(AuthFailure::ExpiredAccessToken);
        }
        Ok(Caller {
            account_id: grant.account_id.clone(),
            scopes: token.scopes.clone(),
            grant: token.grant,
            home: None,
        })
    }

    /// Kills a grant: its refresh token and every access token minted from it.
    pub fn revoke_grant(&mut self, grant: GrantId) {
        let minted: Vec<String> = self
            .access
            .iter()
            .filter(|(_, token)| token.grant == grant)
            .map(|(token, _)| token.clone())
            .collect();
        for token in minted {
            self.access.remove(&token);
            self.bury(token, grant, true);
        }
        let refresh_token = self.grants.get_mut(&grant).and_then(|g| g.refresh_token.take());
        if let Some(token) = refresh_token {
            self.refresh.remove(&token);
            self.bury(token, grant, true);
        }
        // Tokens that had merely expired are revoked now too: a revoked grant is invalid.
        for dead in self.dead.values_mut().filter(|dead| dead.grant == grant) {
            dead.revoked = true;
        }
        self.grants.remove(&grant);
    }

    pub fn revoke_account(&mut self, account_id: &str) {
        let grants: Vec<GrantId> = self
            .grants
            .iter()
            .filter(|(_, grant)| grant.account_id == account_id)
            .map(|(id, _)| *id)
            .collect();
        for grant in grants {
            self.revoke_grant(grant);
        }
    }

    pub fn expire_account(&mut self, account_id: &str) {
        let now = Instant::now();
        for token in self.access.values_mut() {
            if self.grants.get(&token.grant).is_some_and(|grant| grant.account_id == account_id) {
                token.expires_at = now;
            }
        }
    }

    /// The live grant behind a refresh token.
    pub fn refresh_grant(&self, refresh_token: &str) -> Option<(GrantId, &Grant)> {
        let id = *self.refresh.get(refresh_token)?;
        self.grants.get(&id).map(|grant| (id, grant))
    }

    /// The account of a refresh token, alive or not (for stats and fault matching only).
    pub fn account_of_refresh(&self, refresh_token: &str) -> Option<&str> {
        match self.refresh_grant(refresh_token) {
            Some((_, grant)) => Some(&grant.account_id),
            None => self.dead.get(refresh_token).map(|dead| dead.account_id.as_str()),
        }
    }

    /// A new access token from a refresh token's grant (refresh tokens do not rotate).
    pub fn refresh(&mut self, grant: GrantId, scopes: Scopes, lifetime: Duration) -> String {
        // The grant has a refresh token, so pruning keeps it.
        self.prune();
        self.mint_access(grant, scopes, lifetime)
    }

    pub fn issue_code(&mut self, code: Code) -> String {
        let now = Instant::now();
        self.codes.retain(|_, code| now < code.expires_at);
        let value = random_token(43);
        self.codes.insert(value.clone(), code);
        drop_oldest(&mut self.codes, MAX_WAITING, |code| code.expires_at);
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

    /// Keeps a consent request until its page is answered (or abandoned).
    pub fn hold_consent(&mut self, request_id: String, consent: PendingConsent) {
        let now = Instant::now();
        self.consents.retain(|_, (_, expires_at)| now < *expires_at);
        self.consents.insert(request_id, (consent, now + CONSENT_LIFETIME));
        drop_oldest(&mut self.consents, MAX_WAITING, |(_, expires_at)| *expires_at);
    }

    /// Takes a consent request out: a page is answered once.
    pub fn take_consent(&mut self, request_id: &str) -> Option<PendingConsent> {
        let (consent, expires_at) = self.consents.remove(request_id)?;
        (Instant::now() < expires_at).then_some(consent)
    }
}

/// Removes the entries with the smallest `age` until at most `max` remain.
fn drop_oldest<V, A: Ord>(map: &mut HashMap<String, V>, max: usize, age: impl Fn(&V) -> A) {
    while map.len() > max {
        let Some(oldest) = map.iter().min_by_key(|(_, value)| age(value)).map(|(k, _)| k.clone())
        else {
            return;
        };
        map.remove(&oldest);
    }
}

/// Random characters from the base64url alphabet.
pub fn random_token(length: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    (0..length).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn scopes() -> Scopes {
        all_scopes()
    }

    #[test]
    fn a_revoked_grant_is_forgotten_but_its_tokens_still_answer_invalid() {
        let mut tokens = Tokens::default();
        let issued = tokens.grant("dbid:a", scopes(), ClientAuth::Secret, true, HOUR);
        let Ok(caller) = tokens.authenticate(&issued.access_token) else { panic!("live") };
        let refresh = issued.refresh_token.expect("a refresh token");
        let (grant, _) = tokens.refresh_grant(&refresh).expect("a grant");
        let second = tokens.refresh(grant, scopes(), HOUR);
        tokens.revoke_grant(caller.grant);
        assert!(tokens.grants.is_empty() && tokens.access.is_empty() && tokens.refresh.is_empty());
        for token in [&issued.access_token, &second] {
            assert_eq!(tokens.authenticate(token).err(), Some(AuthFailure::InvalidAccessToken));
            assert_eq!(tokens.account_of(token), Some("dbid:a"));
        }
        assert!(tokens.refresh_grant(&refresh).is_none());
        assert_eq!(tokens.account_of_refresh(&refresh), Some("dbid:a"));
    }

    #[test]
    fn expired_tokens_answer_expired_and_only_the_newest_are_remembered() {
        let mut tokens = Tokens::default();
        let minted: Vec<String> = (0..MAX_DEAD + 10)
            .map(|_| tokens.grant("dbid:a", scopes(), ClientAuth::Secret, false, Duration::ZERO))
            .map(|issued| issued.access_token)
            .collect();
        let newest = minted.last().expect("tokens");
        assert_eq!(tokens.authenticate(newest).err(), Some(AuthFailure::ExpiredAccessToken));
        assert!(tokens.access.len() <= 1 && tokens.dead.len() <= MAX_DEAD);
        assert!(tokens.grants.len() <= 1, "grants without a usable token are forgotten");
        assert_eq!(tokens.authenticate(&minted[0]).err(), Some(AuthFailure::InvalidAccessToken));
        let second_newest = &minted[minted.len() - 2];
        assert_eq!(tokens.authenticate(second_newest).err(), Some(AuthFailure::ExpiredAccessToken));
    }

    #[test]
    fn expired_codes_and_answered_consents_are_not_kept() {
        let mut tokens = Tokens::default();
        let code = |expires_at| Code {
            account_id: "dbid:a".to_owned(),
            scopes: scopes(),
            redirect_uri: None,
            code_challenge: None,
            offline: false,
            expires_at,
        };
        tokens.issue_code(code(Instant::now()));
        let live = tokens.issue_code(code(Tokens::code_expiry()));
        assert_eq!(tokens.codes.len(), 1);
        assert!(tokens.take_code(&live).is_some());
        assert!(tokens.codes.is_empty());

        let consent = PendingConsent {
            account_id: "dbid:a".to_owned(),
            scopes: scopes(),
            redirect_uri: None,
            state: None,
            code_challenge: None,
            offline: false,
        };
        tokens.hold_consent("r".to_owned(), consent);
        assert!(tokens.take_consent("r").is_some());
        assert!(tokens.take_consent("r").is_none());
        assert!(tokens.consents.is_empty());
    }
}
