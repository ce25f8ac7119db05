//! `GET /api/v1/automations/{id}/evaluations?subject=lead/L1`: why a record did or did not
//! enroll: the recent trigger evaluations of the record (kept 7 days), newest first, with the
//! conditions' results or the enrollment policy's reason.

use crate::ApiState;
use crate::auth::Caller;
use crate::problem::Problem;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use crmflow_core::ports::TriggerEvaluation;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The query.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluationQuery {
    /// The record, `type/id`: `lead/L1`, `contact/C1`.
    #[schemars(regex(pattern = r"^[^/]+/.+$"))]
    subject: String,
    /// The most evaluations (default 20).
    #[schemars(range(min = 1, max = 50))]
    limit: Option<usize>,
}

/// The evaluations.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Evaluations {
    pub automation_id: String,
    pub subject: String,
    pub items: Vec<TriggerEvaluation>,
}

pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<EvaluationQuery>, QueryRejection>,
) -> Result<Json<Evaluations>, Problem> {
    let Path(id) = id.map_err(|e| Problem::invalid_field("id", e.body_text()))?;
    crate::automations::versions(state.automations.as_ref(), &caller, &id).await?;
    let Query(query) = query.map_err(Problem::from)?;
    let limit = query.limit.unwrap_or(20);
    if limit == 0 || limit > 50 {
        return Err(Problem::invalid_field("limit", "must be from 1 to 50"));
    }
    if !query
        .subject
        .split_once('/')
        .is_some_and(|(t, id)| !t.is_empty() && !id.is_empty())
    {
        return Err(Problem::invalid_field("subject", "expected type/id, e.g. lead/L1"));
    }
    let items = state
        .evaluations
        .recent(&caller.0.tenant, &id, &query.subject, limit)
        .await
        .map_err(|e| Problem::store(&e))?;
    Ok(Json(Evaluations {
        automation_id: id,
        subject: query.subject,
        items,
    }))
}
