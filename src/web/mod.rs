//! The web process: what Dropbox and people reach over HTTP.
//!
//! [`Application::build`] binds its own listener, so tests start the real app on port 0 and
//! talk to it over HTTP. The route table is [`configure`]; each route lives in its own module.

mod health;
mod webhook;

pub use self::webhook::MAX_BODY as MAX_WEBHOOK_BODY;

use std::io;
use std::net::TcpListener;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use secrecy::SecretString;

use crate::config::Settings;
use crate::store::Store;

/// Heroku gives a process 30 s between SIGTERM and SIGKILL; in-flight requests get most of it.
const SHUTDOWN_TIMEOUT_SECS: u64 = 25;

/// What every handler shares.
pub struct AppState {
    pub store: Store,
    /// Dropbox signs webhooks with the app secret.
    pub app_secret: SecretString,
}

/// The web app, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Binds `HOST:PORT` from the settings (port 0 picks a free one) and prepares the server.
    pub fn build(settings: &Settings, store: Store) -> io::Result<Application> {
        let listener = TcpListener::bind((settings.host, settings.port))?;
        let port = listener.local_addr()?.port();
        let state =
            web::Data::new(AppState { store, app_secret: settings.dropbox.app_secret.clone() });
        let server =
            HttpServer::new(move || App::new().app_data(state.clone()).configure(configure))
                .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
                .listen(listener)?
                .run();
        Ok(Application { port, server })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped: by the handle, or by SIGTERM / Ctrl-C (graceful, in-flight
    /// requests finish).
    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.server.await
    }
}

/// The route table.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/webhook", web::get().to(webhook::verify_webhook))
        .route("/webhook", web::post().to(webhook::receive_webhook))
        .route("/healthz", web::get().to(health::report_alive))
        .route("/readyz", web::get().to(health::report_ready));
}
