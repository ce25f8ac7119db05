//! `POST /api/v1/automations/{id}/enroll`: enrolls a record by hand, under the automation's
//! enrollment policy (no trigger or conditions are checked).

use crate::ApiState;
use crate::auth::Caller;
use crate::events::caller_event;
use crate::problem::Problem;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use crmflow_core::definition::AutomationStatus;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The event type of a manual enrollment (its `trigger.*` in conditions and templates).
pub const MANUAL_ENROLLMENT_EVENT: &str = "crmflow.enrolled_by_hand";

/// The body: the record (as an event's `subject`), and optionally its fields and a contact
/// snapshot.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// The record: `{"type": "lead", "id": "L1", "contact_id"?: "C1"}`, as an event's subject.
    pub subject: Value,
    /// The record's fields (`record.*` and `trigger.data.*` for the run).
    #[serde(default)]
    pub data: Map<String, Value>,
    /// The contact snapshot the run starts with.
    #[serde(default)]
    pub contact: Option<Map<String, Value>>,
}

/// What happened.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Enrolled {
    pub run_id: String,
    pub automation_id: String,
    /// `enrolled`.
    pub result: String,
}

/// 201 with the run's id; 400 naming the field at fault; 404 for an unknown automation; 409
/// when the automation is not active or its enrollment policy refuses the record (the reason
/// says which rule).
pub async fn enroll(
    State(state): State<ApiState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Enrolled>), Problem> {
    let Path(id) = id.map_err(|e| Problem::invalid_field("path", e.body_text()))?;
    // The automation first: another tenant's answers 404 whatever the body.
    let newest = crate::automations::newest(&state, &caller, &id).await?;
    let request: Enrollment = serde_json::from_slice(&body?).map_err(|e| {
        Problem::invalid_field(
            "",
            format!("expected {{\"subject\": {{\"type\", \"id\", \"contact_id\"?}}, \"data\"?: {{}}, \"contact\"?: {{}}}}: {e}"),
        )
    })?;
    let program = newest.program;
    if program.automation.status != AutomationStatus::Active {
        return Err(Problem::conflict(format!(
            "automation {id:?} is {}: only an active automation enrolls",
            crate::automations::status_name(program.automation.status)
        )));
    }
    let now = state.clock.now();
    let event = json!({
        "id": uuid::Uuid::now_v7().to_string(),
        "type": MANUAL_ENROLLMENT_EVENT,
        "time": now.to_string(),
        "subject": request.subject,
        "data": request.data,
    });
    let event = caller_event(&caller, &event, "")?;
    let contact = request.contact.unwrap_or_default();
    let outcome = state
        .intake
        .enroll_by_hand(&program, &event, contact)
        .await
        .map_err(|e| Problem::store(&crmflow_core::ports::StoreError::Transient(e.to_string())))?;
    match outcome.run_id {
        Some(run_id) => {
            let target = format!("automations/{id}/runs/{run_id}");
            let after = serde_json::json!({ "run_id": run_id, "subject": event.subject.record_key() });
            crate::audit::record(&state, &caller, "run.enroll", target, None, Some(after)).await?;
            Ok((
                StatusCode::CREATED,
                Json(Enrolled {
                    run_id,
                    automation_id: id,
                    result: outcome.result,
                }),
            ))
        }
        None => Err(Problem::conflict(format!(
            "automation {id:?} does not enroll this record: {}",
            outcome.reason
        ))),
    }
}
