//! Typed settings, read once from the environment (and a `.env` file, loaded by `main`).
//!
//! Every field's documentation names its variable. Nothing else in markdrop reads the
//! environment: handlers and the worker take these types. Secrets are `SecretString`s, so a
//! `Debug` of the settings, a log line or a panic message cannot show them.
//!
//! An empty variable counts as unset: platforms such as Heroku make it easy to leave one blank.

use std::net::IpAddr;
use std::num::NonZeroU16;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use tracing_subscriber::EnvFilter;
use url::Url;

/// Shortest `SECRET_KEY` accepted: it keys the encryption of Dropbox tokens at rest and the
/// signing of session cookies, so it must carry at least 256 bits when hex-encoded random.
pub const MIN_SECRET_KEY_LEN: usize = 32;

/// A configuration problem, worded to be printed as the one line the program stops with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var} is not set: {hint}")]
    Missing { var: &'static str, hint: &'static str },
    /// `reason` never quotes the value of a secret variable.
    #[error("{var} is not valid: {reason}")]
    Invalid { var: &'static str, reason: String },
    /// The offending line is not quoted: it may hold a secret (dotenvy's own message quotes it).
    #[error(".env cannot be used: it has a line that is not `NAME=value`")]
    DotEnvSyntax,
    #[error(".env cannot be read: {0}")]
    DotEnvUnreadable(String),
}

/// Loads `.env` from the working directory into the environment when there is one. Variables
/// already set win, so a platform's settings are never overridden by a stray file.
pub fn load_dotenv() -> Result<(), ConfigError> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(error) if error.not_found() => Ok(()),
        Err(dotenvy::Error::LineParse(..)) => Err(ConfigError::DotEnvSyntax),
        Err(dotenvy::Error::Io(error)) => Err(ConfigError::DotEnvUnreadable(error.to_string())),
        Err(_) => Err(ConfigError::DotEnvUnreadable("unexpected error".to_owned())),
    }
}

/// Everything `serve`, `web` and `worker` need to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `HOST`: the address the web server binds to. Default `0.0.0.0`.
    pub host: IpAddr,
    /// `PORT`: the port the web server binds to (the platform sets it). Default 5000.
    pub port: u16,
    /// `BASE_URL`: the public URL people and Dropbox reach markdrop at; the OAuth redirect URI
    /// (`BASE_URL/oauth/callback`) and the webhook URI (`BASE_URL/webhook`) derive from it.
    /// Default `http://localhost:$PORT`.
    pub base_url: Url,
    /// The Dropbox app and where its API lives.
    pub dropbox: DropboxSettings,
    /// `SECRET_KEY`: keys the encryption of stored tokens and the signing of session cookies.
    /// At least [`MIN_SECRET_KEY_LEN`] characters; changing it unlinks every account.
    pub secret_key: SecretString,
    /// Where tokens, cursors and the queue live.
    pub store: StoreSettings,
    /// How the sync worker runs.
    pub worker: WorkerSettings,
    /// `METRICS_TOKEN`: when set, `GET /metrics` answers only a request carrying
    /// `Authorization: Bearer <token>` (401 otherwise); unset, `/metrics` is open to whoever
    /// reaches the web process. Default unset.
    pub metrics_token: Option<SecretString>,
    /// `REQUEST_DEADLINE_SECONDS`: a web request not answered within this, its body included,
    /// is cut off with a 408, so a body trickled a byte at a time cannot hold a connection.
    /// Default 30 (long enough for the OAuth callback's calls to Dropbox).
    pub request_deadline: Duration,
}

/// How the sync worker runs. The variables are for tuning; the defaults suit a small dyno.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `WORKER_ACCOUNTS`: how many accounts one worker process syncs at once. Default 256: a
    /// pass spends nearly all its time waiting for Dropbox (100-300 ms a call), so a small
    /// dyno keeps that many in flight in under 100 MB (BENCHMARKS.md), and the memory budget
    /// below bounds the files they hold.
    pub accounts: usize,
    /// `WORKER_READ_AHEAD`: how many files of one account may be downloaded, rendered and sent
    /// to Dropbox ahead of their commit. Default 64; the account's calls in flight stay within
    /// Dropbox's per-user limit whatever this is (`src/dropbox/concurrency.rs`).
    pub read_ahead: usize,
    /// `MAX_MARKDOWN_BYTES`: Markdown files larger than this are skipped and reported.
    /// Default 10 MiB.
    pub max_markdown_bytes: u64,
    /// `WORKER_LEASE_SECONDS`: how long an account stays with a worker that stopped renewing
    /// its lease (a killed process) before another worker takes it over. Default 15.
    pub lease_ttl: Duration,
    /// The first retry delay after a failed pass; it doubles with each failure in a row.
    pub retry_base: Duration,
    /// The longest retry delay: an account that keeps failing is tried this often.
    pub retry_cap: Duration,
    /// The longest one file may take to render before it is reported as failed.
    pub render_time_limit: Duration,
    /// On SIGTERM, how long running passes may take to finish their current file before they
    /// are abandoned (their accounts are handed back either way). Heroku allows 30 s in all.
    pub shutdown_grace: Duration,
    /// How often an idle worker looks at the queue without being woken (work coming due after
    /// a backoff, or a wake-up lost to a dropped connection).
    pub idle_poll: Duration,
    /// How much memory files read ahead (downloaded and rendered before their turn to upload)
    /// may take at once in one process, Markdown and HTML together; beyond it they wait.
    /// 256 MiB. The file each pass is uploading next never waits, so the bound on files in
    /// memory is this plus one file per running pass (`WORKER_ACCOUNTS`).
    pub memory_budget: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            accounts: 256,
            read_ahead: 64,
            max_markdown_bytes: 10 * 1024 * 1024,
            lease_ttl: Duration::from_secs(15),
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(300),
            render_time_limit: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            idle_poll: Duration::from_secs(2),
            memory_budget: 256 * 1024 * 1024,
        }
    }
}

impl WorkerSettings {
    /// The delay before retrying after `failures` failed tries in a row (this one not counted),
    /// for a pass or a note: doubling from `retry_base` up to `retry_cap`, the upper half
    /// jittered, so an account that keeps failing is tried about every `retry_cap` and never in
    /// lockstep with others.
    pub fn backoff(&self, failures: u32) -> Duration {
        let bound =
            self.retry_base.saturating_mul(2u32.saturating_pow(failures)).min(self.retry_cap);
        let half = bound / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// The Dropbox app markdrop acts as, and the three hosts of the Dropbox API.
#[derive(Debug, Clone)]
pub struct DropboxSettings {
    /// `DROPBOX_APP_KEY`: the app key from the Dropbox App Console (public: it is in every
    /// authorize URL).
    pub app_key: String,
    /// `DROPBOX_APP_SECRET`: the app secret from the App Console; it also signs webhooks.
    pub app_secret: SecretString,
    /// `DROPBOX_API_URL`: RPC routes and the token endpoint. Default `https://api.dropboxapi.com`.
    pub api_url: Url,
    /// `DROPBOX_CONTENT_URL`: upload and download routes. Default `https://content.dropboxapi.com`.
    pub content_url: Url,
    /// `DROPBOX_WEB_URL`: the browser-facing authorize page. Default `https://www.dropbox.com`.
    pub web_url: Url,
}

/// Which store backs markdrop.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    /// `REDIS_URL` set: a Redis (or a Redis Cluster) shared by any number of `web` and
    /// `worker` processes.
    Redis(RedisSettings),
    /// `REDIS_URL` unset: an embedded store in `DATA_DIR` (default `./data`), for one process.
    Embedded { data_dir: PathBuf },
}

/// The shared Redis: where it is and how markdrop lays its keys out in it.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `REDIS_URL`: `redis://` or `rediss://` (append `#insecure` for a managed Redis with a
    /// self-signed certificate, as Heroku's). For a cluster, any of its nodes, comma-separated:
    /// the others are found from them. The URLs usually carry a password, so they are secrets.
    pub urls: Vec<SecretString>,
    /// `REDIS_CLUSTER=true`: the URLs name a Redis Cluster, so every call goes to the node that
    /// holds its key's slot.
    pub cluster: bool,
    /// `REDIS_KEY_PREFIX` (default empty) starts every key, so deployments can share a Redis.
    /// It may not hold `{` or `}`: the shard in each key is its hash tag.
    pub key_prefix: String,
    /// `REDIS_SHARDS` (default [`DEFAULT_SHARDS`]): how many parts the accounts are divided
    /// into, each in a cluster slot of its own. Fixed for a deployment's life: changing it
    /// would move accounts to other keys.
    pub shards: NonZeroU16,
}

/// Enough shards to spread evenly over any cluster markdrop will meet (1,024 slots' worth
/// over 3 nodes differ by a few percent), few enough that a worker looks at each every few
/// seconds without noticeable cost.
pub const DEFAULT_SHARDS: u16 = 1024;
/// A Redis Cluster has 16,384 slots; more shards than that would share them.
const MAX_SHARDS: u16 = 16384;

impl StoreSettings {
    /// One Redis at `url` with keys under `key_prefix`, for a store chosen other than by the
    /// environment (tests, benchmarks).
    pub fn redis(url: &str, key_prefix: &str) -> StoreSettings {
        StoreSettings::Redis(RedisSettings {
            urls: vec![url.to_owned().into()],
            cluster: false,
            key_prefix: key_prefix.to_owned(),
            shards: NonZeroU16::new(DEFAULT_SHARDS).expect("not zero"),
        })
    }

    /// A Redis Cluster reached through the comma-separated `seeds`, keys under `key_prefix`.
    pub fn redis_cluster(seeds: &str, key_prefix: &str) -> StoreSettings {
        StoreSettings::Redis(RedisSettings {
            urls: seeds.split(',').map(|seed| seed.trim().to_owned().into()).collect(),
            cluster: true,
            key_prefix: key_prefix.to_owned(),
            shards: NonZeroU16::new(DEFAULT_SHARDS).expect("not zero"),
        })
    }

    /// An embedded store in `data_dir`, for a store chosen other than by the environment (the
    /// demo's fresh folder, tests).
    pub fn embedded(data_dir: impl Into<PathBuf>) -> StoreSettings {
        StoreSettings::Embedded { data_dir: data_dir.into() }
    }
}

/// markdrop's own events at `info`; the web server's start-up chatter (one line per thread)
/// only when something is wrong.
pub const DEFAULT_LOG_FILTER: &str = "info,actix_server=warn";

/// How markdrop logs; read before everything else so that even `render` logs the same way.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// `RUST_LOG`: which events to keep, in `tracing_subscriber::EnvFilter` syntax. Default
    /// [`DEFAULT_LOG_FILTER`].
    pub filter: String,
    /// `LOG_FORMAT`: `pretty` for people (default) or `json` for log pipelines.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_lookup(process_env)
    }

    /// Reads the settings through `lookup`, which answers a variable's value or `None`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let env = Env(&lookup);
        let port = env.parse_or("PORT", 5000, "expected a port number from 0 to 65535")?;
        let host = env.parse_or(
            "HOST",
            IpAddr::from([0, 0, 0, 0]),
            "expected an IP address such as 0.0.0.0 or ::",
        )?;
        let base_url = match env.get("BASE_URL") {
            Some(raw) => public_url("BASE_URL", &raw)?,
            None => public_url("BASE_URL", &format!("http://localhost:{port}"))?,
        };
        let dropbox = DropboxSettings {
            app_key: env.require("DROPBOX_APP_KEY", "the app key from your Dropbox App Console")?,
            app_secret: env
                .require("DROPBOX_APP_SECRET", "the app secret from your Dropbox App Console")?
                .into(),
            api_url: env.url_or("DROPBOX_API_URL", "https://api.dropboxapi.com")?,
            content_url: env.url_or("DROPBOX_CONTENT_URL", "https://content.dropboxapi.com")?,
            web_url: env.url_or("DROPBOX_WEB_URL", "https://www.dropbox.com")?,
        };
        let secret_key = env.require(
            "SECRET_KEY",
            "a random string of 32 or more characters, e.g. from `openssl rand -hex 32`",
        )?;
        if secret_key.chars().count() < MIN_SECRET_KEY_LEN {
            return Err(ConfigError::Invalid {
                var: "SECRET_KEY",
                reason: format!(
                    "it must be at least {MIN_SECRET_KEY_LEN} characters; generate one with `openssl rand -hex 32`"
                ),
            });
        }
        // Checked whether or not REDIS_URL is set, so a typo is never silently ignored.
        let tls_insecure = env.flag("REDIS_TLS_INSECURE")?;
        let cluster = env.flag("REDIS_CLUSTER")?;
        let store = match env.get("REDIS_URL") {
            Some(urls) => StoreSettings::Redis(redis_settings(&env, &urls, tls_insecure, cluster)?),
            None => StoreSettings::Embedded {
                data_dir: env.get("DATA_DIR").unwrap_or_else(|| "./data".to_owned()).into(),
            },
        };
        let defaults = WorkerSettings::default();
        let worker = WorkerSettings {
            accounts: env.positive_or("WORKER_ACCOUNTS", defaults.accounts)?,
            read_ahead: env.positive_or("WORKER_READ_AHEAD", defaults.read_ahead)?,
            max_markdown_bytes: env
                .positive_or("MAX_MARKDOWN_BYTES", defaults.max_markdown_bytes as usize)?
                as u64,
            lease_ttl: Duration::from_secs(
                env.positive_or("WORKER_LEASE_SECONDS", defaults.lease_ttl.as_secs() as usize)?
                    as u64,
            ),
            ..defaults
        };
        let metrics_token = env.get("METRICS_TOKEN").map(|token| SecretString::from(token.trim()));
        let request_deadline =
            Duration::from_secs(env.positive_or("REQUEST_DEADLINE_SECONDS", 30)? as u64);
        Ok(Settings {
            host,
            port,
            base_url,
            dropbox,
            secret_key: secret_key.into(),
            store,
            worker,
            metrics_token,
            request_deadline,
        })
    }

    /// The Redis that `web` and `worker` share; they cannot run on an embedded store, which
    /// only one process can open.
    pub fn shared_redis(&self, command: &str) -> Result<&StoreSettings, ConfigError> {
        match &self.store {
            redis @ StoreSettings::Redis(_) => Ok(redis),
            StoreSettings::Embedded { .. } => Err(ConfigError::Missing {
                var: "REDIS_URL",
                hint: match command {
                    "web" => {
                        "`web` shares its queue with the workers through Redis; set REDIS_URL, or run `markdrop serve` on one machine"
                    }
                    "worker" => {
                        "`worker` shares its queue with the web processes through Redis; set REDIS_URL, or run `markdrop serve` on one machine"
                    }
                    _ => "this command shares its queue through Redis; set REDIS_URL",
                },
            }),
        }
    }

    /// The URI Dropbox sends people back to after they approve access.
    pub fn redirect_uri(&self) -> Url {
        join(&self.base_url, "oauth/callback")
    }

    /// The URI to register as the app's webhook in the App Console.
    pub fn webhook_uri(&self) -> Url {
        join(&self.base_url, "webhook")
    }
}

impl RedisSettings {
    /// Reads `REDIS_URL` and the settings that go with it from the process environment, for a
    /// command that needs a Redis and nothing else (`markdrop migrate`): it should not ask for
    /// Dropbox's keys to move keys in Redis.
    pub fn from_env() -> Result<RedisSettings, ConfigError> {
        RedisSettings::from_lookup(process_env)
    }

    /// Reads the Redis settings through `lookup`, which answers a variable's value or `None`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<RedisSettings, ConfigError> {
        let env = Env(&lookup);
        let tls_insecure = env.flag("REDIS_TLS_INSECURE")?;
        let cluster = env.flag("REDIS_CLUSTER")?;
        let urls = env.require("REDIS_URL", "the Redis (or Redis Cluster) whose keys to use")?;
        redis_settings(&env, &urls, tls_insecure, cluster)
    }
}

impl TelemetrySettings {
    /// Reads `RUST_LOG` and `LOG_FORMAT` from the process environment.
    pub fn from_env() -> Result<TelemetrySettings, ConfigError> {
        TelemetrySettings::from_lookup(process_env)
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<TelemetrySettings, ConfigError> {
        let env = Env(&lookup);
        let filter = env.get("RUST_LOG").unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
        if let Err(error) = EnvFilter::try_new(&filter) {
            return Err(ConfigError::Invalid { var: "RUST_LOG", reason: error.to_string() });
        }
        let format = match env.get("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "LOG_FORMAT",
                    reason: format!("expected `pretty` or `json`, got `{other}`"),
                });
            }
        };
        Ok(TelemetrySettings { filter, format })
    }
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|value| !value.trim().is_empty())
    }

    fn require(&self, var: &'static str, hint: &'static str) -> Result<String, ConfigError> {
        self.get(var).ok_or(ConfigError::Missing { var, hint })
    }

    fn parse_or<T: std::str::FromStr>(
        &self,
        var: &'static str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|_| ConfigError::Invalid {
                var,
                reason: format!("{expected}, got `{raw}`"),
            }),
        }
    }

    /// `true`, `1` or `yes` (any case) as true; `false`, `0`, `no` or unset as false.
    fn flag(&self, var: &'static str) -> Result<bool, ConfigError> {
        match self.get(var).map(|raw| raw.trim().to_ascii_lowercase()).as_deref() {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(_) => {
                Err(ConfigError::Invalid { var, reason: "expected true or false".to_owned() })
            }
        }
    }

    fn positive_or(&self, var: &'static str, default: usize) -> Result<usize, ConfigError> {
        let value = self.parse_or(var, default, "expected a whole number of at least 1")?;
        if value == 0 {
            return Err(ConfigError::Invalid {
                var,
                reason: "expected a whole number of at least 1, got `0`".to_owned(),
            });
        }
        Ok(value)
    }

    fn url_or(&self, var: &'static str, default: &str) -> Result<Url, ConfigError> {
        public_url(var, &self.get(var).unwrap_or_else(|| default.to_owned()))
    }
}

/// An `http(s)` URL with a host and nothing after the path, since paths are joined onto it.
fn public_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { var, reason };
    let url = Url::parse(raw.trim())
        .map_err(|error| invalid(format!("`{raw}` is not a URL ({error})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(format!("`{raw}` must be an http:// or https:// URL with a host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!("`{raw}` must not have a query or fragment")));
    }
    Ok(url)
}

/// `REDIS_URL` and the settings that go with it.
fn redis_settings(
    env: &Env,
    urls: &str,
    tls_insecure: bool,
    cluster: bool,
) -> Result<RedisSettings, ConfigError> {
    // Only a cluster's URL is a list: one Redis's password may hold a comma.
    let urls = if cluster {
        urls.split(',').map(|url| redis_url(url.to_owned(), tls_insecure)).collect()
    } else {
        redis_url(urls.to_owned(), tls_insecure).map(|url| vec![url]).map_err(|error| {
            let several = urls.contains(',')
                && urls.split(',').all(|url| redis_url(url.to_owned(), false).is_ok());
            match several {
                true => ConfigError::Invalid {
                    var: "REDIS_URL",
                    reason:
                        "several URLs name the nodes of a Redis Cluster; set REDIS_CLUSTER=true too"
                            .to_owned(),
                },
                false => error,
            }
        })
    }?;
    let key_prefix = env.get("REDIS_KEY_PREFIX").unwrap_or_default();
    if key_prefix.contains(['{', '}']) {
        return Err(ConfigError::Invalid {
            var: "REDIS_KEY_PREFIX",
            reason: "it may not contain `{` or `}`: markdrop puts each account's shard in braces, so a cluster spreads the shards over its nodes (docs/OPERATIONS.md §2)".to_owned(),
        });
    }
    let shards =
        env.parse_or("REDIS_SHARDS", DEFAULT_SHARDS, "expected a whole number from 1 to 16384")?;
    let shards = NonZeroU16::new(shards).filter(|shards| shards.get() <= MAX_SHARDS).ok_or(
        ConfigError::Invalid {
            var: "REDIS_SHARDS",
            reason: format!("expected a whole number from 1 to {MAX_SHARDS}, got `{shards}`"),
        },
    )?;
    Ok(RedisSettings { urls, cluster, key_prefix, shards })
}

/// Checks a Redis URL's shape without ever quoting it: it usually holds a password. With
/// `insecure` (`REDIS_TLS_INSECURE`), a `rediss://` URL accepts a certificate it cannot verify,
/// as managed Redis such as Heroku's needs: the platform sets `REDIS_URL` itself, so the
/// `#insecure` fragment cannot be added to it by hand.
fn redis_url(raw: String, insecure: bool) -> Result<SecretString, ConfigError> {
    let invalid =
        |reason: &str| ConfigError::Invalid { var: "REDIS_URL", reason: reason.to_owned() };
    let mut url = Url::parse(raw.trim()).map_err(|_| invalid("it is not a URL"))?;
    if !matches!(url.scheme(), "redis" | "rediss" | "redis+unix" | "unix") {
        return Err(invalid("expected a redis:// or rediss:// URL"));
    }
    if insecure && url.scheme() == "rediss" {
        url.set_fragment(Some("insecure"));
        return Ok(url.to_string().into());
    }
    Ok(raw.trim().into())
}

/// `base` with `path` appended to its path, whether or not `base` ends with a slash.
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    fn required() -> Vec<(&'static str, &'static str)> {
        vec![
            ("DROPBOX_APP_KEY", "app-key"),
            ("DROPBOX_APP_SECRET", "app-secret-value"),
            ("SECRET_KEY", KEY),
        ]
    }

    #[test]
    fn defaults_fill_everything_but_the_app_and_the_secret_key() {
        let settings = settings(&required()).expect("valid");
        assert_eq!(settings.port, 5000);
        assert_eq!(settings.host.to_string(), "0.0.0.0");
        assert_eq!(settings.base_url.as_str(), "http://localhost:5000/");
        assert_eq!(settings.dropbox.api_url.as_str(), "https://api.dropboxapi.com/");
        assert_eq!(settings.dropbox.content_url.as_str(), "https://content.dropboxapi.com/");
        assert_eq!(settings.dropbox.web_url.as_str(), "https://www.dropbox.com/");
        assert!(
            matches!(settings.store, StoreSettings::Embedded { ref data_dir } if data_dir == &PathBuf::from("./data"))
        );
    }

    #[test]
    fn metrics_token_is_optional_and_trimmed() {
        use secrecy::ExposeSecret;
        assert!(settings(&required()).expect("valid").metrics_token.is_none());
        let mut vars = required();
        vars.push(("METRICS_TOKEN", " scrape-token "));
        let token = settings(&vars).expect("valid").metrics_token.expect("set");
        assert_eq!(token.expose_secret(), "scrape-token");
        let mut vars = required();
        vars.push(("METRICS_TOKEN", "  "));
        assert!(settings(&vars).expect("valid").metrics_token.is_none(), "empty counts as unset");
    }

    #[test]
    fn the_default_base_url_follows_port() {
        let mut vars = required();
        vars.push(("PORT", "8080"));
        assert_eq!(settings(&vars).expect("valid").base_url.as_str(), "http://localhost:8080/");
    }

    #[test]
    fn each_missing_required_variable_is_named() {
        for missing in ["DROPBOX_APP_KEY", "DROPBOX_APP_SECRET", "SECRET_KEY"] {
            let vars: Vec<_> = required().into_iter().filter(|(k, _)| *k != missing).collect();
            let error = settings(&vars).expect_err("missing");
            assert!(matches!(error, ConfigError::Missing { var, .. } if var == missing));
            assert!(error.to_string().starts_with(&format!("{missing} is not set: ")));
        }
    }

    #[test]
    fn an_empty_variable_counts_as_missing() {
        let mut vars = required();
        vars[0].1 = "  ";
        assert!(matches!(
            settings(&vars),
            Err(ConfigError::Missing { var: "DROPBOX_APP_KEY", .. })
        ));
    }

    #[test]
    fn malformed_values_are_rejected_with_the_variable_named() {
        for (var, value) in [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("HOST", "example.com"),
            ("BASE_URL", "localhost:5000"),
            ("BASE_URL", "ftp://example.com"),
            ("BASE_URL", "https://example.com/?x=1"),
            ("DROPBOX_API_URL", "not a url"),
            ("REDIS_URL", "http://cache:6379"),
            ("SECRET_KEY", "short"),
        ] {
            let mut vars = required();
            vars.retain(|(k, _)| *k != var);
            vars.push((var, value));
            let error = settings(&vars).expect_err(var);
            assert!(
                matches!(error, ConfigError::Invalid { var: named, .. } if named == var),
                "{var}={value}: {error}"
            );
        }
    }

    #[test]
    fn secrets_never_appear_in_debug_output_or_errors() {
        let mut vars = required();
        vars.push(("REDIS_URL", "rediss://:hunter2-redis-password@cache.example:6380"));
        vars.push(("METRICS_TOKEN", "scrape-token-value"));
        let debug = format!("{:?}", settings(&vars).expect("valid"));
        for secret in ["app-secret-value", KEY, "hunter2-redis-password", "scrape-token-value"] {
            assert!(!debug.contains(secret), "{secret} leaked into {debug}");
        }
        let mut vars = required();
        vars.push(("REDIS_URL", "mysql://:hunter2-redis-password@db"));
        let error = settings(&vars).expect_err("bad scheme").to_string();
        assert!(!error.contains("hunter2"), "{error}");
        let mut vars = required();
        vars.retain(|(k, _)| *k != "SECRET_KEY");
        vars.push(("SECRET_KEY", "tooshort-secret"));
        assert!(!settings(&vars).expect_err("short").to_string().contains("tooshort-secret"));
    }

    #[test]
    fn a_managed_redis_certificate_is_accepted_only_when_asked() {
        use secrecy::ExposeSecret;
        let url = |insecure: &str| {
            let mut vars = required();
            vars.push(("REDIS_URL", "rediss://:pw@redis.example:6380"));
            vars.push(("REDIS_TLS_INSECURE", insecure));
            match settings(&vars).map(|settings| settings.store) {
                Ok(StoreSettings::Redis(redis)) => redis.urls[0].expose_secret().to_owned(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(url("true"), "rediss://:pw@redis.example:6380#insecure");
        assert_eq!(url(""), "rediss://:pw@redis.example:6380");
        assert_eq!(url("0"), "rediss://:pw@redis.example:6380");
        let mut vars = required();
        vars.push(("REDIS_TLS_INSECURE", "maybe"));
        assert!(matches!(
            settings(&vars),
            Err(ConfigError::Invalid { var: "REDIS_TLS_INSECURE", .. })
        ));
    }

    #[test]
    fn the_redis_settings_alone_need_only_redis_url() {
        let vars: HashMap<&str, &str> =
            [("REDIS_URL", "redis://cache:6379"), ("REDIS_KEY_PREFIX", "md:")].into();
        let redis = RedisSettings::from_lookup(|name| vars.get(name).map(|v| v.to_string()))
            .expect("valid without Dropbox's keys or SECRET_KEY");
        assert_eq!(redis.key_prefix, "md:");
        assert!(!redis.cluster);
        let error = RedisSettings::from_lookup(|_| None).expect_err("REDIS_URL is needed");
        assert!(matches!(error, ConfigError::Missing { var: "REDIS_URL", .. }), "{error}");
    }

    #[test]
    fn a_cluster_is_named_by_its_nodes_and_the_shards_are_a_setting() {
        use secrecy::ExposeSecret;
        let redis = |extra: &[(&'static str, &'static str)]| {
            let mut vars = required();
            vars.extend_from_slice(extra);
            settings(&vars).map(|settings| match settings.store {
                StoreSettings::Redis(redis) => redis,
                other => panic!("{other:?}"),
            })
        };
        let nodes = "redis://10.0.0.1:6379, redis://10.0.0.2:6379";
        let cluster = redis(&[("REDIS_URL", nodes), ("REDIS_CLUSTER", "true")]).expect("valid");
        let urls: Vec<_> = cluster.urls.iter().map(|url| url.expose_secret().to_owned()).collect();
        assert_eq!(urls, ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]);
        assert!(cluster.cluster);
        assert_eq!(cluster.shards.get(), DEFAULT_SHARDS);
        let error = redis(&[("REDIS_URL", nodes)]).expect_err("several URLs need REDIS_CLUSTER");
        assert!(error.to_string().contains("REDIS_CLUSTER=true"), "{error}");
        let comma = redis(&[("REDIS_URL", "redis://:pass,word@cache:6379")]).expect("one URL");
        assert_eq!(comma.urls.len(), 1, "a password may hold a comma");
        let one = [("REDIS_URL", "redis://cache:6379")];
        let shards = |value| redis(&[one[0], ("REDIS_SHARDS", value)]);
        assert_eq!(shards("16").expect("valid").shards.get(), 16);
        for bad in ["0", "16385", "many"] {
            assert!(
                matches!(shards(bad), Err(ConfigError::Invalid { var: "REDIS_SHARDS", .. })),
                "{bad}"
            );
        }
        let tagged = redis(&[one[0], ("REDIS_KEY_PREFIX", "{markdrop}:")]);
        assert!(matches!(tagged, Err(ConfigError::Invalid { var: "REDIS_KEY_PREFIX", .. })));
    }

    #[test]
    fn worker_tuning_takes_whole_numbers_of_at_least_one() {
        let mut vars = required();
        vars.extend([("WORKER_ACCOUNTS", "64"), ("WORKER_LEASE_SECONDS", "5")]);
        let worker = settings(&vars).expect("valid").worker;
        assert_eq!((worker.accounts, worker.lease_ttl), (64, Duration::from_secs(5)));
        for bad in ["0", "-1", "many"] {
            let mut vars = required();
            vars.push(("WORKER_READ_AHEAD", bad));
            assert!(matches!(
                settings(&vars),
                Err(ConfigError::Invalid { var: "WORKER_READ_AHEAD", .. })
            ));
        }
    }

    #[test]
    fn redirect_and_webhook_uris_derive_from_base_url() {
        for base in ["https://markdrop.example", "https://markdrop.example/"] {
            let mut vars = required();
            vars.push(("BASE_URL", base));
            let settings = settings(&vars).expect("valid");
            assert_eq!(settings.redirect_uri().as_str(), "https://markdrop.example/oauth/callback");
            assert_eq!(settings.webhook_uri().as_str(), "https://markdrop.example/webhook");
        }
        let mut vars = required();
        vars.push(("BASE_URL", "https://example.org/markdrop/"));
        assert_eq!(
            settings(&vars).expect("valid").webhook_uri().as_str(),
            "https://example.org/markdrop/webhook"
        );
    }

    #[test]
    fn telemetry_settings_validate_the_filter_and_the_format() {
        let read = |vars: &[(&str, &str)]| {
            let vars: HashMap<&str, &str> = vars.iter().copied().collect();
            TelemetrySettings::from_lookup(|name| vars.get(name).map(|v| v.to_string()))
        };
        let defaults = read(&[]).expect("defaults");
        assert_eq!(
            (defaults.filter.as_str(), defaults.format),
            ("info,actix_server=warn", LogFormat::Pretty)
        );
        assert_eq!(read(&[("LOG_FORMAT", "json")]).expect("json").format, LogFormat::Json);
        assert!(matches!(
            read(&[("LOG_FORMAT", "xml")]),
            Err(ConfigError::Invalid { var: "LOG_FORMAT", .. })
        ));
        assert!(matches!(
            read(&[("RUST_LOG", "markdrop=loud")]),
            Err(ConfigError::Invalid { var: "RUST_LOG", .. })
        ));
    }

    #[test]
    fn the_backoff_doubles_then_stays_at_the_cap() {
        let settings = WorkerSettings {
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(300),
            ..WorkerSettings::default()
        };
        for (failures, bound) in [(0, 2), (1, 4), (2, 8), (7, 256), (8, 300), (40, 300)] {
            let delay = settings.backoff(failures);
            let bound = Duration::from_secs(bound);
            assert!(delay >= bound / 2 && delay <= bound, "{failures}: {delay:?} vs {bound:?}");
        }
    }
}
