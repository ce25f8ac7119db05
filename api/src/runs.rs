//! `/api/v1/automations/{id}/runs`: the runs of an automation, and one run with its history.

use crate::ApiState;
use crate::auth::Caller;
use crate::automations::{MAX_PAGE, Page};
use crate::problem::Problem;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use crmflow_core::event::Subject;
use crmflow_core::ports::{RunFilter, TriggerEvaluation};
use crmflow_core::run::{Run, RunStatus, StepRecord};
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A run as the API lists it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunView {
    pub id: String,
    pub automation_id: String,
    /// `running`, `waiting`, `completed`, `failed` or `cancelled`.
    pub status: RunStatus,
    /// The record the run is about.
    pub subject: Subject,
    /// The automation version the run started on, and stays on.
    pub version: u32,
    /// RFC 3339, UTC.
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// From start to finish in milliseconds; null while the run goes on.
    pub duration_ms: Option<i64>,
    /// Why the run ended, in words.
    pub outcome: Option<String>,
    /// A dry run performs no side effect (sandbox mode, or a dry-run deployment): its history
    /// shows each effect it would have had.
    pub dry_run: bool,
}

impl From<&Run> for RunView {
    fn from(run: &Run) -> Self {
        RunView {
            id: run.run_id.clone(),
            automation_id: run.automation_id.clone(),
            status: run.status,
            subject: run.subject.clone(),
            version: run.automation_version,
            started_at: run.started_at,
            finished_at: run.finished_at,
            duration_ms: run
                .finished_at
                .and_then(|end| end.duration_since(run.started_at).as_millis().try_into().ok()),
            outcome: run.outcome.clone(),
            dry_run: run.dry_run,
        }
    }
}

/// One run with every step it went through, in order: each record says what happened and why
/// (the branch taken and the condition results behind it, the wait's due time, the email sent).
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunView,
    /// How the run was enrolled: its trigger evaluation, with the trigger conditions' and
    /// conditions' results (kept 7 days; null after that, or for a run an `enroll` action
    /// started).
    pub trigger: Option<TriggerEvaluation>,
    pub history: Vec<StepRecord>,
}

/// The query of the run list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// Only runs with this status.
    status: Option<RunStatus>,
    /// Runs started at or after this instant (RFC 3339).
    started_from: Option<Timestamp>,
    /// Runs started before this instant (RFC 3339).
    started_before: Option<Timestamp>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// The most items on the page (default 50).
    #[schemars(range(min = 1, max = 200))]
    limit: Option<usize>,
}

/// `GET /api/v1/automations/{id}/runs`: newest first; `status`, `started_from` and
/// `started_before` filter; `limit` (1–200, default 50) and `cursor` page.
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<RunQuery>, QueryRejection>,
) -> Result<Json<Page<RunView>>, Problem> {
    let Path(id) = id.map_err(|e| Problem::invalid_field("path", e.body_text()))?;
    let Query(query) = query.map_err(Problem::from)?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(Problem::invalid_field("limit", format!("must be from 1 to {MAX_PAGE}")));
    }
    crate::automations::versions(state.automations.as_ref(), &caller, &id).await?;
    let filter = RunFilter {
        status: query.status,
        started_from: query.started_from,
        started_before: query.started_before,
    };
    let mut runs = state
        .run_directory
        .list_runs(&caller.0.tenant, &id, &filter, query.cursor.as_deref(), limit + 1)
        .await
        .map_err(|e| Problem::store(&e))?;
    let next_cursor = if runs.len() > limit {
        runs.truncate(limit);
        runs.last().map(|r| r.run_id.clone())
    } else {
        None
    };
    Ok(Json(Page {
        items: runs.iter().map(|r| RunView::from(r.as_ref())).collect(),
        next_cursor,
    }))
}

/// `GET /api/v1/automations/{id}/runs/{runId}`: the run and its history; 404 when the run is
/// not this automation's (or not the caller's tenant's).
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    params: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<RunDetail>, Problem> {
    let Path((id, run_id)) = params.map_err(|e| Problem::invalid_field("path", e.body_text()))?;
    let tenant = &caller.0.tenant;
    let run = find(&state, &caller, &id, &run_id).await?;
    let history = state
        .run_store
        .history(tenant, &run_id)
        .await
        .map_err(|e| Problem::store(&e))?;
    let trigger = state
        .evaluations
        .recent(tenant, &id, &run.subject.record_key(), 50)
        .await
        .map_err(|e| Problem::store(&e))?
        .into_iter()
        .find(|e| e.run_id.as_deref() == Some(run_id.as_str()));
    Ok(Json(RunDetail {
        run: RunView::from(run.as_ref()),
        trigger,
        history,
    }))
}

/// The caller's run `run_id` of automation `id`; 404 when there is none (another tenant's, or
/// another automation's, included).
pub(crate) async fn find(
    state: &ApiState,
    caller: &Caller,
    id: &str,
    run_id: &str,
) -> Result<std::sync::Arc<Run>, Problem> {
    state
        .run_store
        .load_run_shared(&caller.0.tenant, run_id)
        .await
        .map_err(|e| Problem::store(&e))?
        .filter(|run| run.automation_id == id)
        .ok_or_else(|| Problem::not_found(format!("automation {id:?} has no run {run_id:?}")))
}
