//! The web process: what Dropbox and people reach over HTTP.
//!
//! [`Application::build`] binds its own listener, so tests start the real app on port 0 and
//! talk to it over HTTP. The route table is [`configure`]; each route lives in its own module.

mod health;
mod oauth;
mod pages;
mod session;
mod webhook;

pub use self::webhook::{
    BODY_BUDGET as WEBHOOK_BODY_BUDGET, BODY_DEADLINE as WEBHOOK_BODY_DEADLINE,
    MAX_BODY as MAX_WEBHOOK_BODY, Notified, parse_notification,
};

use std::io;
use std::net::TcpListener;
use std::time::Duration;

use actix_http::body::BoxBody;
use actix_http::{HttpService, Request, Response, StatusCode};
use actix_service::map_config;
use actix_web::dev::{AppConfig, Server, fn_service};
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, web};
use secrecy::SecretString;
use url::Url;

use self::session::SessionCodec;
use crate::config::Settings;
use crate::dropbox::{DropboxClient, DropboxError};
use crate::metrics::Metrics;
use crate::store::Store;

/// Heroku gives a process 30 s between SIGTERM and SIGKILL; in-flight requests get most of it.
const SHUTDOWN_TIMEOUT_SECS: u64 = 25;

// The server's limits. A stranger can open connections to the web process at will, so each
// thing a connection can hold has a bound: how long (the head, the body, an idle keep-alive,
// the drain after a refusal) and how many at once (connections), which bounds memory too.

/// The request head (request line and headers) must arrive within this, counted from the
/// connection's first byte. Browsers, proxies and Dropbox send it in one packet.
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// An idle connection is kept this long for the next request. Short, because idle connections
/// count toward [`MAX_CONNECTIONS`]: at 15 s, holding every slot open with idle connections takes
/// a stranger a steady stream of requests, not one request per slot a minute. (Behind a proxy
/// with a longer idle timeout, the proxy may find a connection closed under it and retries on
/// a new one; Heroku's router does.)
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// After answering a request whose body it did not read (a 413, or a webhook refused before its
/// body), the server reads and discards what the client still sends for this long and then
/// half-closes, so the client reads the answer instead of a connection reset.
pub const REFUSED_BODY_DRAIN: Duration = Duration::from_secs(1);

/// Connections served at once by one web process, all worker threads together; beyond it new
/// connections wait in the listen backlog. Far above what Dropbox and people need of one
/// process (each request takes a millisecond), well below a dyno's file descriptor limit
/// (10 000), and it bounds the memory connections hold: a connection whose client sent a nearly
/// full webhook body and stalled was measured at about 290 KiB in actix's buffers and
/// markdrop's, so 1,024 of them hold about 300 MiB, for at most the body deadline plus the
/// drain. A stranger with enough connections can still fill it; per-client limits are a proxy's
/// job.
pub const MAX_CONNECTIONS: usize = 1024;

/// Pages load only their own stylesheet and icon, post only to markdrop, and are never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What every handler shares.
pub struct AppState {
    pub store: Store,
    /// Dropbox signs webhooks with the app secret.
    pub app_secret: SecretString,
    pub dropbox: DropboxClient,
    pub sessions: SessionCodec,
    /// `BASE_URL/oauth/callback`, registered with the Dropbox app.
    pub redirect_uri: Url,
    /// This process's counts, added to the store's every second.
    pub metrics: Metrics,
    /// `METRICS_TOKEN`: when set, `/metrics` answers only `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretString>,
    /// The memory all webhook bodies may take at once.
    pub body_budget: webhook::BodyBudget,
    /// `REQUEST_DEADLINE_SECONDS`.
    pub request_deadline: Duration,
}

/// The web app, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    metrics: Metrics,
    store: Store,
}

impl Application {
    /// Binds `HOST:PORT` from the settings (port 0 picks a free one) and prepares the server.
    pub fn build(settings: &Settings, store: Store) -> io::Result<Application> {
        let listener = TcpListener::bind((settings.host, settings.port))?;
        Application::build_on(listener, settings, store)
    }

    /// Prepares the server on a listener bound already, for a caller that must know the
    /// address first (tests and `demo` tell the Dropbox emulator where to send webhooks).
    pub fn build_on(
        listener: TcpListener,
        settings: &Settings,
        store: Store,
    ) -> io::Result<Application> {
        let dropbox = DropboxClient::new(&settings.dropbox).map_err(|error: DropboxError| {
            io::Error::other(format!("cannot set up the Dropbox client: {error}"))
        })?;
        let port = listener.local_addr()?.port();
        let metrics = Metrics::new();
        let state = web::Data::new(AppState {
            metrics: metrics.clone(),
            store: store.clone(),
            app_secret: settings.dropbox.app_secret.clone(),
            dropbox,
            sessions: SessionCodec::new(
                &settings.secret_key,
                settings.base_url.scheme() == "https",
                store.clock().clone(),
            ),
            redirect_uri: settings.redirect_uri(),
            metrics_token: settings.metrics_token.clone(),
            body_budget: webhook::BodyBudget::new(),
            request_deadline: settings.request_deadline,
        });
        let https = settings.base_url.scheme() == "https";
        let address = listener.local_addr()?;
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        let refusals = metrics.clone();
        // actix-web's `HttpServer` is this same assembly, minus one thing markdrop needs: a
        // say in answering `Expect: 100-continue`, so an oversized body is refused before the
        // client sends it (the `expect` service below).
        let mut builder = actix_server::Server::build()
            .workers(workers)
            .max_concurrent_connections(MAX_CONNECTIONS.div_ceil(workers))
            .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
            // The caller decides when to stop (`run_until`): `serve` stops the worker too.
            .disable_signals();
        let graceful = builder.graceful_shutdown_signal();
        builder = builder.listen("markdrop-web", listener, move || {
            let mut headers = DefaultHeaders::new()
                .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
                .add(("X-Content-Type-Options", "nosniff"))
                .add(("Referrer-Policy", "same-origin"))
                .add(("X-Frame-Options", "DENY"))
                // Pages are per person and the callback carries a code: nothing is to be kept
                // by caches (static files set their own policy, which takes precedence).
                .add(("Cache-Control", "no-store"));
            if https {
                headers = headers.add(("Strict-Transport-Security", "max-age=31536000"));
            }
            let app = App::new()
                .wrap(headers)
                .wrap(actix_web::middleware::from_fn(log_request))
                .app_data(state.clone())
                .app_data(web::FormConfig::default().error_handler(pages::refuse_bad_request))
                .app_data(web::QueryConfig::default().error_handler(pages::refuse_bad_request))
                .configure(configure);
            let graceful = graceful.clone();
            let refusals = refusals.clone();
            HttpService::build()
                .client_request_timeout(REQUEST_HEAD_TIMEOUT)
                .keep_alive(KEEP_ALIVE)
                .client_disconnect_timeout(REFUSED_BODY_DRAIN)
                .local_addr(address)
                // Lets a graceful stop close idle keep-alive connections at once, as
                // `HttpServer` does, instead of waiting out their keep-alive.
                .graceful_shutdown_signal(move || {
                    let graceful = graceful.clone();
                    async move { graceful.notified().await }
                })
                .expect(fn_service(move |request: Request| {
                    let refused = refuse_before_continue(&request, &refusals);
                    async move { refused.map_or(Ok(request), Err) }
                }))
                // markdrop builds every URL from BASE_URL, never from the app's own idea of
                // its host, so the default app config serves.
                .h1(map_config(app, |_| AppConfig::default()))
                .tcp()
        })?;
        let server = builder.run();
        Ok(Application { port, server, metrics, store })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the runtime ends.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves until `shutdown` resolves, then stops gracefully: no new connections, in-flight
    /// requests finish (within Heroku's 30 s).
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> io::Result<()> {
        let Application { server, metrics, store, .. } = self;
        let flusher = metrics.start_flushing(store);
        let handle = server.handle();
        let mut server = std::pin::pin!(server);
        let result = tokio::select! {
            result = &mut server => result,
            () = shutdown => {
                // The server future itself carries out the stop, so it is polled alongside.
                let (_, result) = tokio::join!(handle.stop(true), server);
                result
            }
        };
        flusher.stop().await;
        result
    }
}

/// The answer to a request with `Expect: 100-continue` that must not send its body: one whose
/// declared length is over what any route reads ([`MAX_WEBHOOK_BODY`]). Answered before
/// `100 Continue`, so the client learns it without sending a byte of the body (actix answers
/// `100 Continue` before the app sees the request, so the app's own check comes too late).
fn refuse_before_continue(request: &Request, metrics: &Metrics) -> Option<Response<BoxBody>> {
    let declared = webhook::declared_length(request.head())?;
    if declared <= MAX_WEBHOOK_BODY {
        return None;
    }
    if request.path() == "/webhook" {
        metrics.webhook("too_large");
    }
    tracing::info!(path = %request.path(), declared, "a declared body over the cap refused before 100 Continue");
    let mut response = Response::with_body(
        StatusCode::PAYLOAD_TOO_LARGE,
        BoxBody::new(format!("the body is over {MAX_WEBHOOK_BODY} bytes\n")),
    );
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        actix_web::http::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        X_CONTENT_TYPE_OPTIONS,
        actix_web::http::header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(CACHE_CONTROL, actix_web::http::header::HeaderValue::from_static("no-store"));
    Some(response)
}

/// One log line per request: method, path, status and time taken. Never the query string, which
/// carries OAuth codes and state, nor any header. A request not answered within
/// `REQUEST_DEADLINE_SECONDS` is cut off with a 408.
async fn log_request(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let (method, path) = (request.method().clone(), request.path().to_owned());
    let deadline = request
        .app_data::<web::Data<AppState>>()
        .map_or(Duration::from_secs(30), |state| state.request_deadline);
    let response = match tokio::time::timeout(deadline, next.call(request)).await {
        Ok(response) => response?,
        Err(_) => {
            tracing::info!(%method, %path, status = 408, "request cut off at its deadline");
            return Err(actix_web::error::ErrorRequestTimeout("the request took too long\n"));
        }
    };
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(response)
}

/// The route table.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/webhook", web::get().to(webhook::verify_webhook))
        .route("/webhook", web::post().to(webhook::receive_webhook))
        .route("/healthz", web::get().to(health::report_alive))
        .route("/readyz", web::get().to(health::report_ready))
        .route("/metrics", web::get().to(health::report_metrics))
        .route("/", web::get().to(pages::show_home))
        .route("/login", web::get().to(oauth::start_login))
        .route("/oauth/callback", web::get().to(oauth::finish_oauth))
        .route("/account", web::get().to(pages::show_account))
        .route("/account/unlink", web::post().to(pages::unlink_account))
        .route("/static/{file}", web::get().to(pages::serve_static))
        .default_service(web::to(pages::show_not_found));
}
