//! OAuth 2 with Dropbox, through the `oauth2` crate: the authorize URL a person is sent to, the
//! code exchange when they come back, and refreshing short-lived access tokens.
//!
//! Dropbox specifics (docs/dropbox.md §2): `token_access_type=offline` to get a refresh token,
//! PKCE S256 on top of the app secret, the secret again on every refresh (a secret-flow token
//! cannot be refreshed with the client id alone), and `account_id` beside the standard fields.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, HttpClientError, HttpRequest, HttpResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::client::DropboxClient;
use super::error::DropboxError;
use crate::account::{AccountId, AccountTokens};
use crate::config::DropboxSettings;

/// What markdrop asks for: who the person is, and to read their files and write the `.html`.
pub const SCOPES: [&str; 4] =
    ["account_info.read", "files.metadata.read", "files.content.read", "files.content.write"];

/// Dropbox's token response adds the account to the standard fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DropboxTokenFields {
    account_id: Option<String>,
}

impl ExtraTokenFields for DropboxTokenFields {}

type DropboxTokenResponse = StandardTokenResponse<DropboxTokenFields, BasicTokenType>;

pub(super) type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    DropboxTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

pub(super) fn client(settings: &DropboxSettings) -> OAuthClient {
    oauth2::Client::new(ClientId::new(settings.app_key.clone()))
        .set_client_secret(ClientSecret::new(settings.app_secret.expose_secret().to_owned()))
        .set_auth_uri(AuthUrl::from_url(join(&settings.web_url, "oauth2/authorize")))
        .set_token_uri(TokenUrl::from_url(join(&settings.api_url, "oauth2/token")))
}

/// A fresh PKCE pair: the challenge goes into the authorize URL, the verifier is kept (in the
/// person's session) until the code comes back.
pub fn new_pkce() -> (PkceCodeChallenge, PkceCodeVerifier) {
    PkceCodeChallenge::new_random_sha256()
}

/// A successful code exchange.
#[derive(Debug)]
pub struct Grant {
    pub account_id: AccountId,
    pub tokens: AccountTokens,
}

/// A refreshed access token.
pub(super) struct Refreshed {
    pub access_token: SecretString,
    pub expires_at: Option<SystemTime>,
}

impl DropboxClient {
    /// Where to send a person to approve markdrop: the code flow with `state`, PKCE and offline
    /// access.
    pub fn authorize_url(&self, redirect_uri: &Url, state: &str, pkce: PkceCodeChallenge) -> Url {
        let state = state.to_owned();
        let redirect = RedirectUrl::from_url(redirect_uri.clone());
        let (url, _) = self
            .oauth()
            .authorize_url(move || CsrfToken::new(state))
            .set_redirect_uri(Cow::Owned(redirect))
            .set_pkce_challenge(pkce)
            .add_scopes(SCOPES.map(|scope| Scope::new(scope.to_owned())))
            .add_extra_param("token_access_type", "offline")
            .url();
        url
    }

    /// Trades the code Dropbox sent back for the account's tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &Url,
        verifier: PkceCodeVerifier,
    ) -> Result<Grant, DropboxError> {
        let response = self
            .oauth()
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(redirect_uri.clone())))
            .set_pkce_verifier(verifier)
            .request_async(&TokenEndpoint(self.http().clone()))
            .await
            .map_err(|error| match token_error(error) {
                DropboxError::RefreshRefused(description) => DropboxError::CodeRefused(description),
                other => other,
            })?;
        let account_id = response
            .extra_fields()
            .account_id
            .as_deref()
            .map(AccountId::parse)
            .ok_or_else(|| {
                DropboxError::unexpected_success("the token response has no account_id")
            })?
            .map_err(|error| DropboxError::unexpected_success(error.to_string()))?;
        let refresh_token = response.refresh_token().ok_or_else(|| {
            DropboxError::unexpected_success("the token response has no refresh token")
        })?;
        Ok(Grant {
            account_id,
            tokens: AccountTokens {
                access_token: response.access_token().secret().to_owned().into(),
                refresh_token: refresh_token.secret().to_owned().into(),
                expires_at: response.expires_in().map(|lifetime| SystemTime::now() + lifetime),
                path_root: None,
            },
        })
    }
}

/// Trades a refresh token for a new access token, retrying when Dropbox cannot be reached.
pub(super) async fn refresh(
    client: &DropboxClient,
    refresh_token: &SecretString,
) -> Result<Refreshed, DropboxError> {
    let retry = client.retry();
    let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
    let mut attempt = 0;
    loop {
        let outcome = client
            .oauth()
            .exchange_refresh_token(&token)
            .request_async(&TokenEndpoint(client.http().clone()))
            .await
            .map_err(token_error);
        match outcome {
            Ok(response) => {
                return Ok(Refreshed {
                    access_token: response.access_token().secret().to_owned().into(),
                    expires_at: response.expires_in().map(|lifetime| SystemTime::now() + lifetime),
                });
            }
            Err(error) if error.is_transient() && attempt + 1 < retry.attempts => {
                attempt += 1;
                tokio::time::sleep(retry.backoff(attempt - 1)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// What the token endpoint answered that oauth2 should not try to read as an OAuth error.
#[derive(Debug, thiserror::Error)]
enum TokenEndpointError {
    #[error(transparent)]
    Http(#[from] HttpClientError<reqwest::Error>),
    /// A rate limit, a server error, or a page that is no OAuth error: oauth2 would report
    /// these as unreadable without their status, so they are classified here, as on the API.
    #[error(transparent)]
    Dropbox(DropboxError),
}

/// oauth2's HTTP client for the token endpoint: the shared reqwest client, plus the status
/// classification of every other Dropbox call for answers that are not OAuth errors. (A named
/// type owning its (cheaply cloned) client, shaped like oauth2's own reqwest client: a closure
/// or a borrowed client makes callers' futures fail rustc's higher-ranked `Send` check.)
struct TokenEndpoint(reqwest::Client);

impl<'c> AsyncHttpClient<'c> for TokenEndpoint {
    type Error = TokenEndpointError;
    type Future =
        Pin<Box<dyn Future<Output = Result<HttpResponse, TokenEndpointError>> + Send + Sync + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(call_token_endpoint(&self.0, request))
    }
}

async fn call_token_endpoint(
    http: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, TokenEndpointError> {
    let response = http.call(request).await?;
    let is_oauth_error = || {
        serde_json::from_slice::<serde_json::Value>(response.body())
            .is_ok_and(|body| body["error"].is_string())
    };
    if response.status().is_success() || (response.status().is_client_error() && is_oauth_error()) {
        return Ok(response);
    }
    Err(TokenEndpointError::Dropbox(DropboxError::from_response(
        response.status(),
        response.headers(),
        response.body(),
    )))
}

type TokenRequestError = RequestTokenError<TokenEndpointError, BasicErrorResponse>;

fn token_error(error: TokenRequestError) -> DropboxError {
    match error {
        RequestTokenError::ServerResponse(response) => {
            let description = response.error_description().cloned().unwrap_or_default();
            match response.error() {
                BasicErrorResponseType::InvalidGrant => DropboxError::RefreshRefused(description),
                other => DropboxError::Unexpected {
                    status: 400,
                    detail: format!("{}: {description}", other.as_ref()),
                },
            }
        }
        RequestTokenError::Request(TokenEndpointError::Dropbox(error)) => error,
        RequestTokenError::Request(TokenEndpointError::Http(HttpClientError::Reqwest(error))) => {
            DropboxError::Transport(*error)
        }
        other => DropboxError::local(other.to_string()),
    }
}

fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.set_path(&format!("{}/{path}", base.path().trim_end_matches('/')));
    url
}
