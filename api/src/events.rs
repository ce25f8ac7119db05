//! `POST /api/v1/events`: a CRM event over HTTP, for CRMs that prefer it to SQS.
//!
//! The body is one event in any of the three envelopes intake reads (CloudEvents 1.0 in
//! structured JSON mode, an EventBridge event, or crmflow's native envelope; see the README's
//! "Events"). It is validated as intake would, given the credential's tenant, and queued: 202.

use crate::ApiState;
use crate::auth::Caller;
use crate::problem::{FieldError, Problem};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use crmflow_core::event::{Event, parse_event};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// What was queued.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Queued {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub tenant: String,
}

/// 202 once queued; 400 with the field at fault (`subject.id`, `type`, ...) when intake would
/// refuse the event, or when it names a tenant other than the credential's.
pub async fn post(
    State(state): State<ApiState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Queued>), Problem> {
    let value: Value = serde_json::from_slice(&body?).map_err(|e| {
        Problem::invalid_field(
            "",
            format!("the body is not JSON (line {} column {}): {e}", e.line(), e.column()),
        )
    })?;
    let event = caller_event(&caller, &value, "")?;
    let after = serde_json::json!({ "type": event.event_type, "subject": event.subject.record_key() });
    state
        .events
        .send_event(&event)
        .await
        .map_err(|e| Problem::store(&crmflow_core::ports::StoreError::Transient(e.to_string())))?;
    let target = format!("events/{}", event.id);
    crate::audit::record(&state, &caller, "event.post", target, None, Some(after)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Queued {
            event_id: event.id,
            event_type: event.event_type,
            tenant: event.tenant,
        }),
    ))
}

/// `value` as an event of the caller's tenant: 400 naming the field at fault (under `prefix`,
/// the event's path in the request body) when intake would refuse it or it names another
/// tenant.
pub(crate) fn caller_event(caller: &Caller, value: &Value, prefix: &str) -> Result<Event, Problem> {
    let at = |path: &str| {
        let path = path.trim_start_matches('$').trim_start_matches('.');
        match (prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_owned(),
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{path}"),
        }
    };
    let (mut event, _) = parse_event(value).map_err(|e| {
        Problem::invalid(
            format!("the event is not valid: {e}"),
            vec![FieldError {
                path: at(&e.path),
                message: e.message,
            }],
        )
    })?;
    let named = value
        .get("tenant")
        .or_else(|| value.pointer("/detail/tenant"))
        .and_then(Value::as_str);
    if named.is_some_and(|t| t != caller.0.tenant) {
        return Err(Problem::invalid_field(
            &at("tenant"),
            "the tenant comes from the API key; leave it out",
        ));
    }
    event.tenant = caller.0.tenant.clone();
    Ok(event)
}
