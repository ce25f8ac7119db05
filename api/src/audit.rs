//! `GET /api/v1/audit`: every write made through the API, newest first: who (the API key's
//! id), what, when, and the state before and after. [`record`] is what the writing handlers
//! call once their write is done.

use crate::ApiState;
use crate::auth::Caller;
use crate::automations::{MAX_PAGE, Page};
use crate::problem::Problem;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use crmflow_core::ports::AuditEntry;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// The query of the audit log.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// The most entries on the page (default 50).
    #[schemars(range(min = 1, max = 200))]
    limit: Option<usize>,
}

/// Appends an entry for a write the caller made.
pub async fn record(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    target: String,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), Problem> {
    let entry = AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: state.clock.now(),
        credential: caller.0.id.clone(),
        action: action.to_owned(),
        target,
        before,
        after,
    };
    state
        .audit
        .append(&caller.0.tenant, &entry)
        .await
        .map_err(|e| Problem::store(&e))
}

/// One page of the caller's tenant's audit log, newest first.
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Page<AuditEntry>>, Problem> {
    let Query(query) = query.map_err(Problem::from)?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(Problem::invalid_field("limit", format!("must be from 1 to {MAX_PAGE}")));
    }
    let mut items = state
        .audit
        .list(&caller.0.tenant, query.cursor.as_deref(), limit + 1)
        .await
        .map_err(|e| Problem::store(&e))?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|e| e.id.clone())
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}
