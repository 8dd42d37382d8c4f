//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its job: the store
//! answers), for the platform's health checks and load balancers; `GET /metrics` for
//! Prometheus.

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

/// `GET /metrics`: the deployment's counts (every process adds its own to the store) and the
/// queue's depth, in Prometheus text format.
pub async fn report_metrics(state: web::Data<AppState>) -> HttpResponse {
    let read = async {
        Ok::<_, crate::store::StoreError>((
            state.store.metrics().await?,
            state.store.queue_depth().await?,
        ))
    };
    match read.await {
        Ok((counts, queue)) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(crate::metrics::render(&counts, queue)),
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "no metrics: the store does not answer");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("the store is unavailable\n")
        }
    }
}
