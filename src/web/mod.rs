//! The web process: what Dropbox and people reach over HTTP.
//!
//! [`Application::build`] binds its own listener, so tests start the real app on port 0 and
//! talk to it over HTTP. The route table is [`configure`]; each route lives in its own module.

mod health;
mod oauth;
mod pages;
mod session;
mod webhook;

pub use self::webhook::{MAX_BODY as MAX_WEBHOOK_BODY, Notified, parse_notification};

use std::io;
use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};
use secrecy::SecretString;
use url::Url;

use self::session::SessionCodec;
use crate::config::Settings;
use crate::dropbox::{DropboxClient, DropboxError};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::sync::AbortOnDrop;

/// Heroku gives a process 30 s between SIGTERM and SIGKILL; in-flight requests get most of it.
const SHUTDOWN_TIMEOUT_SECS: u64 = 25;

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
            ),
            redirect_uri: settings.redirect_uri(),
            metrics_token: settings.metrics_token.clone(),
        });
        let https = settings.base_url.scheme() == "https";
        let server = HttpServer::new(move || {
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
            App::new()
                .wrap(headers)
                .wrap(actix_web::middleware::from_fn(log_request))
                .app_data(state.clone())
                .app_data(web::FormConfig::default().error_handler(pages::refuse_bad_request))
                .app_data(web::QueryConfig::default().error_handler(pages::refuse_bad_request))
                .configure(configure)
        })
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        // The caller decides when to stop (`run_until`): `serve` stops the worker too.
        .disable_signals()
        .listen(listener)?
        .run();
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
        let (stop_flushing, flushing) = tokio::sync::watch::channel(false);
        let flusher = AbortOnDrop(tokio::spawn(metrics.flush_until(store, flushing)));
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
        // The flusher's last flush: what was counted since is not lost with the process.
        let _ = stop_flushing.send(true);
        let _ = flusher.await;
        result
    }
}

/// One log line per request: method, path, status and time taken. Never the query string, which
/// carries OAuth codes and state, nor any header.
async fn log_request(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let (method, path) = (request.method().clone(), request.path().to_owned());
    let response = next.call(request).await?;
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
