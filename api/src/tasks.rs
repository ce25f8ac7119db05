//! Acting on one run: completing its human task, cancelling it. Each request is checked
//! against the run head, then queued for the engine (the step queue), and answered 202.

use crate::ApiState;
use crate::auth::Caller;
use crate::problem::Problem;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use crmflow_core::command::Input;
use crmflow_core::definition::AutomationStatus;
use crmflow_core::messages::StepMessage;
use crmflow_core::run::{Run, RunStatus, WaitingFor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// `complete-task` body: the seed's `{"output": {...}}`, and the task's id when the caller
/// wants it checked.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    /// The task's output: `steps.<task id>.output` for later steps.
    output: serde_json::Map<String, Value>,
    /// The open task's id (its step id), checked when given.
    #[serde(default)]
    task_id: Option<String>,
}

/// What an accepted request queued.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Accepted {
    pub run_id: String,
    /// `complete_task`, `cancel` or `retry`.
    pub request: &'static str,
    /// The human task's step id (`complete_task` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

/// The caller's run `run_id` of automation `id`; 404 otherwise; 409 when it has ended.
async fn open_run(state: &ApiState, caller: &Caller, id: &str, run_id: &str) -> Result<Arc<Run>, Problem> {
    let run = crate::runs::find(state, caller, id, run_id).await?;
    if run.status.is_terminal() {
        return Err(Problem::conflict(format!(
            "run {run_id} has ended ({})",
            run.status.as_str()
        )));
    }
    Ok(run)
}

async fn queue(state: &ApiState, run: &Run, input: Input) -> Result<(), Problem> {
    let message = StepMessage {
        tenant: run.tenant.clone(),
        run_id: run.run_id.clone(),
        input,
    };
    state
        .steps
        .send_step(&message, 0)
        .await
        .map_err(|e| Problem::store(&crmflow_core::ports::StoreError::Transient(e.to_string())))
}

/// `POST /api/v1/automations/{id}/runs/{runId}/complete-task` with `{"output": {...}}`: 202
/// once queued; the output is `steps.<task id>.output` for later steps. 404 for an unknown
/// run; 409 when the run has ended or no task is open (or `task_id` names another).
pub async fn complete(
    State(state): State<ApiState>,
    caller: Caller,
    params: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    let Path((id, run_id)) = params.map_err(|e| Problem::invalid_field("path", e.body_text()))?;
    let completion: Completion = serde_json::from_slice(&body?).map_err(|e| {
        Problem::invalid_field(
            "output",
            format!("expected {{\"output\": {{...}}, \"task_id\"?: string}}: {e}"),
        )
    })?;
    let run = open_run(&state, &caller, &id, &run_id).await?;
    let open_task = run
        .cursor
        .as_ref()
        .filter(|c| c.waiting_for == WaitingFor::Task)
        .map(|c| c.step_id.clone())
        .ok_or_else(|| Problem::conflict(format!("run {run_id} has no open task")))?;
    if let Some(task_id) = completion.task_id.as_ref().filter(|t| **t != open_task) {
        return Err(Problem::conflict(format!(
            "task {task_id:?} is not open in run {run_id} (the open one is {open_task:?})"
        )));
    }
    let input = Input::TaskCompleted {
        step_id: open_task.clone(),
        output: Value::Object(completion.output),
    };
    let after = serde_json::to_value(&input).ok();
    queue(&state, &run, input).await?;
    audit_run(&state, &caller, "run.complete_task", &run, after).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            run_id,
            request: "complete_task",
            task_id: Some(open_task),
        }),
    ))
}

/// `POST /api/v1/automations/{id}/runs/{runId}/cancel`: 202 once queued; the run ends
/// `cancelled`, its history saying who cancelled it. 404 for an unknown run; 409 when it has
/// ended.
pub async fn cancel(
    State(state): State<ApiState>,
    caller: Caller,
    params: Result<Path<(String, String)>, PathRejection>,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    let Path((id, run_id)) = params.map_err(|e| Problem::invalid_field("path", e.body_text()))?;
    let run = open_run(&state, &caller, &id, &run_id).await?;
    let reason = format!("cancelled through the API (key {})", caller.0.id);
    let input = Input::Cancel { reason };
    let after = serde_json::to_value(&input).ok();
    queue(&state, &run, input).await?;
    audit_run(&state, &caller, "run.cancel", &run, after).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            run_id,
            request: "cancel",
            task_id: None,
        }),
    ))
}

/// `retry` body: whether an action whose failed attempt may have performed it is performed
/// again. An empty body is `{}`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Perform again an action whose failed attempt may have performed it (default false).
    #[serde(default)]
    pub resend_uncertain: bool,
}

/// `POST /api/v1/automations/{id}/runs/{runId}/retry` with `{"resend_uncertain"?: bool}`: 202
/// once queued; the failed run resumes from the step that failed, on the version it started
/// on, its history keeping both attempts. 404 for an unknown run; 409 when the run has not
/// failed, failed other than at a step (a limit), or its automation is archived.
pub async fn retry(
    State(state): State<ApiState>,
    caller: Caller,
    params: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    let Path((id, run_id)) = params.map_err(|e| Problem::invalid_field("path", e.body_text()))?;
    let body = body?;
    let request: RetryRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RetryRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Problem::invalid_field(
                "resend_uncertain",
                format!("expected {{\"resend_uncertain\"?: boolean}}: {e}"),
            )
        })?
    };
    let run = crate::runs::find(&state, &caller, &id, &run_id).await?;
    if run.status != RunStatus::Failed {
        return Err(Problem::conflict(format!(
            "run {run_id} is {}: only a failed run can be retried",
            run.status.as_str()
        )));
    }
    if run.failure.is_none() {
        return Err(Problem::conflict(format!(
            "run {run_id} did not fail at a step ({}): there is no step to retry",
            run.outcome.as_deref().unwrap_or("no reason recorded")
        )));
    }
    let newest = crate::automations::newest(&state, &caller, &id).await?;
    if newest.program.automation.status == AutomationStatus::Archived {
        return Err(Problem::conflict(format!("automation {id:?} is archived")));
    }
    let input = Input::Retry {
        resend_uncertain: request.resend_uncertain,
    };
    let after = serde_json::to_value(&input).ok();
    queue(&state, &run, input).await?;
    audit_run(&state, &caller, "run.retry", &run, after).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            run_id,
            request: "retry",
            task_id: None,
        }),
    ))
}

/// The audit entry of a request on a run: the run's status before, the input queued after.
async fn audit_run(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    run: &Run,
    queued: Option<Value>,
) -> Result<(), Problem> {
    let target = format!("automations/{}/runs/{}", run.automation_id, run.run_id);
    let before = serde_json::json!({ "status": run.status.as_str(), "version": run.version });
    crate::audit::record(state, caller, action, target, Some(before), queued).await
}
