//! `Idempotency-Key` on every POST route: a retried request gets the first one's response
//! instead of doing the work twice (a second automation, a second queued event).
//!
//! The semantics follow the IETF draft "The Idempotency-Key HTTP Header Field"
//! (draft-ietf-httpapi-idempotency-key-header):
//! - the key is any string of 1 to 255 visible ASCII characters, scoped to the caller's tenant;
//! - the first request with a key is processed, and its response (any status below 500) is
//!   kept with a fingerprint of the request (method, path, body: SHA-256);
//! - a request with a kept key and the same fingerprint gets the kept response again, with
//!   `Idempotent-Replayed: true`; with another fingerprint, 422;
//! - while the first is still being processed, 409;
//! - a 5xx response is not kept: the key can be retried.
//!
//! Responses are kept in the [`IdempotencyStore`](crmflow_core::ports::IdempotencyStore) the engine uses for its effects, under
//! `api/{tenant}/{key}`.

use crate::ApiState;
use crate::auth::Caller;
use crate::problem::Problem;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crmflow_core::ports::Claim;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header on a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a request may take before a retry with its key is processed again, in seconds.
const LEASE_SECONDS: i64 = 60;
/// The largest body kept or fingerprinted (bytes); larger requests are refused (413).
const MAX_BODY: usize = 1 << 20;

fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [method.as_bytes(), b"\n", path.as_bytes(), b"\n", body] {
        hash.update(part);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

/// The middleware on POST routes.
pub async fn idempotent(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let Some(key) = request.headers().get(IDEMPOTENCY_KEY).cloned() else {
        return next.run(request).await;
    };
    let Some(key) = key.to_str().ok().filter(|k| valid_key(k)).map(str::to_owned) else {
        return Problem::invalid_field("Idempotency-Key", "must be 1 to 255 visible ASCII characters").into_response();
    };
    let (mut parts, body) = request.into_parts();
    let Ok(Caller(credential)) = Caller::from_request_parts(&mut parts, &state).await else {
        // Not authenticated: the handler answers 401, and nothing is kept.
        return next.run(Request::from_parts(parts, body)).await;
    };
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return Problem::too_large(MAX_BODY).into_response();
    };
    let print = fingerprint(parts.method.as_str(), parts.uri.path(), &body);
    let store_key = format!("api/{}/{key}", credential.tenant);
    let claim = state
        .idempotency
        .claim(&store_key, state.clock.now(), LEASE_SECONDS)
        .await;
    match claim {
        Err(e) => Problem::store(&e).into_response(),
        Ok(Claim::Completed { output }) if output["request"] == print.as_str() => replay(&output),
        Ok(Claim::Completed { .. }) => Problem::unprocessable(
            "this Idempotency-Key was used with another request; use a new key for a new request",
        )
        .into_response(),
        Ok(Claim::InProgress { .. }) => {
            Problem::conflict("a request with this Idempotency-Key is still being processed").into_response()
        }
        Ok(Claim::Acquired | Claim::Expired) => {
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            keep(&state, &store_key, print, response).await
        }
    }
}

/// Keeps a response below 500 under the key (releasing the key otherwise) and returns it.
async fn keep(state: &ApiState, store_key: &str, print: String, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        let _ = state.idempotency.release(store_key).await;
        return Problem::internal("the response could not be read").into_response();
    };
    let kept = if parts.status.is_server_error() {
        state.idempotency.release(store_key).await
    } else {
        let headers: serde_json::Map<String, Value> = [header::CONTENT_TYPE, header::LOCATION]
            .iter()
            .filter_map(|name| Some((name.to_string(), json!(parts.headers.get(name)?.to_str().ok()?))))
            .collect();
        let output = json!({
            "request": print,
            "status": parts.status.as_u16(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        });
        state.idempotency.complete(store_key, &output).await
    };
    if let Err(e) = kept {
        return Problem::store(&e).into_response();
    }
    Response::from_parts(parts, Body::from(body))
}

fn replay(output: &Value) -> Response {
    let status = output["status"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok())
        .unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    if let Some(kept) = output["headers"].as_object() {
        for (name, value) in kept {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                headers.insert(name, value);
            }
        }
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    let body = Bytes::from(output["body"].as_str().unwrap_or_default().to_owned());
    (status, headers, body).into_response()
}
