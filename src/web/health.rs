//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its job: the store
//! answers), for the platform's health checks and load balancers; `GET /metrics` for
//! Prometheus, behind `METRICS_TOKEN` when it is set.

use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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
/// queue's depth, in Prometheus text format. With `METRICS_TOKEN` set, only for a request
/// carrying it as a bearer token.
pub async fn report_metrics(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(token) = &state.metrics_token
        && !bears(&request, token)
    {
        return HttpResponse::Unauthorized()
            .insert_header((WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
            .content_type("text/plain; charset=utf-8")
            .body("/metrics needs Authorization: Bearer <METRICS_TOKEN>\n");
    }
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

/// Whether the request carries `Authorization: Bearer <token>`. Compared in constant time over
/// digests of both, so neither the token's bytes nor its length show in the time taken.
fn bears(request: &HttpRequest, token: &SecretString) -> bool {
    let Some(presented) = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return false;
    };
    let presented = Sha256::digest(presented.trim().as_bytes());
    let expected = Sha256::digest(token.expose_secret().as_bytes());
    presented.ct_eq(&expected).into()
}
