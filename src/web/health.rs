//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its job: the store
//! answers), for the platform's health checks and load balancers.

use actix_web::{HttpResponse, web};

use super::AppState;
use crate::telemetry::error_chain;

pub async fn report_alive() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("ok\n")
}

pub async fn report_ready(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("ready\n"),
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "not ready: the store does not answer");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("the store is unavailable\n")
        }
    }
}
