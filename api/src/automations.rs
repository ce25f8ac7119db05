//! `/api/v1/automations`: create, read, list, version and change the status of automations.
//!
//! Bodies are automation definitions in either form the loader accepts (the flat form of the
//! seed API, `trigger` + `actions`, or the steps form), as JSON. The server sets three fields:
//! `tenant` (the credential's; a body naming another tenant is refused), `version` (1 on create,
//! one more than the newest on `PUT`) and, when the body has none, `id` (a new UUID).

use crate::ApiState;
use crate::auth::Caller;
use crate::problem::{FieldError, Problem};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use crmflow_core::definition::load::from_value;
use crmflow_core::definition::{Automation, AutomationStatus};
use crmflow_core::ports::{AutomationDirectory, AutomationVersion, CreateOutcome};
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An automation as the API returns it: the newest (or a given) version.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AutomationView {
    pub id: String,
    pub name: String,
    pub version: u32,
    pub status: AutomationStatus,
    /// When this version was stored (RFC 3339, UTC); null for versions loaded another way.
    pub created_at: Option<Timestamp>,
    /// The definition, in the steps form.
    #[schemars(schema_with = "crate::openapi::automation_ref")]
    pub definition: Automation,
}

impl From<&AutomationVersion> for AutomationView {
    fn from(v: &AutomationVersion) -> Self {
        let a = &v.program.automation;
        AutomationView {
            id: a.id.clone(),
            name: a.name.clone(),
            version: a.version,
            status: a.status,
            created_at: v.created_at,
            definition: a.clone(),
        }
    }
}

/// A page of a list, and the cursor of the next one (null on the last page).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "{T}Page")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The query of `GET /api/v1/automations`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only automations with this status.
    status: Option<AutomationStatus>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// The most items on the page (default 50).
    #[schemars(range(min = 1, max = 200))]
    limit: Option<usize>,
}

/// The most items one page holds, and the default.
pub const MAX_PAGE: usize = 200;
const DEFAULT_PAGE: usize = 50;

/// `PATCH` body: the new status.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    status: AutomationStatus,
}

fn parse_json(body: &[u8]) -> Result<Value, Problem> {
    serde_json::from_slice(body).map_err(|e| {
        Problem::invalid_field(
            "",
            format!("the body is not JSON (line {} column {}): {e}", e.line(), e.column()),
        )
    })
}

/// The definition in `body`, with the fields the server sets: `tenant`, `version`, and `id`
/// when the body has none (else it must equal `path_id` when there is one). `status` is
/// `default_status` when the body has none.
fn definition(
    mut body: Value,
    caller: &Caller,
    version: u32,
    path_id: Option<&str>,
    default_status: AutomationStatus,
) -> Result<Automation, Problem> {
    let Some(fields) = body.as_object_mut() else {
        return Err(Problem::invalid_field("", "a definition must be a JSON object"));
    };
    match fields.get("tenant") {
        Some(Value::String(t)) if *t == caller.0.tenant => {}
        Some(_) => {
            return Err(Problem::invalid_field(
                "tenant",
                "the tenant comes from the API key; leave it out",
            ));
        }
        None => {}
    }
    let id = match (fields.get("id"), path_id) {
        (Some(Value::String(id)), Some(path)) if id != path => {
            return Err(Problem::invalid_field(
                "id",
                format!("must be {path:?}, the id in the path"),
            ));
        }
        (Some(Value::String(id)), _) if !id.is_empty() => id.clone(),
        (Some(Value::String(_)) | None, Some(path)) => path.to_owned(),
        (Some(Value::String(_)) | None, None) => uuid::Uuid::now_v7().to_string(),
        (Some(_), _) => return Err(Problem::invalid_field("id", "must be a string")),
    };
    fields.insert("id".into(), Value::String(id));
    fields.insert("tenant".into(), Value::String(caller.0.tenant.clone()));
    fields.insert("version".into(), Value::from(version));
    if !fields.contains_key("status") {
        fields.insert(
            "status".into(),
            serde_json::to_value(default_status).unwrap_or_default(),
        );
    }
    from_value(&body).map_err(|errors| {
        Problem::invalid(
            "the definition is not valid",
            errors.into_iter().map(FieldError::from).collect(),
        )
    })
}

fn location(id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("/api/v1/automations/{id}")) {
        headers.insert(header::LOCATION, value);
    }
    headers
}

/// `POST /api/v1/automations`: 201 with the automation and its `Location`; 400 with the
/// invalid fields; 409 when the body's `id` exists.
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<AutomationView>), Problem> {
    let automation = definition(parse_json(&body?)?, &caller, 1, None, AutomationStatus::Draft)?;
    let id = automation.id.clone();
    let outcome = state
        .automations
        .create(automation, state.clock.now())
        .await
        .map_err(|e| Problem::store(&e))?;
    if outcome == CreateOutcome::AlreadyExists {
        return Err(Problem::conflict(format!(
            "automation {id:?} exists; PUT a new version instead"
        )));
    }
    let view = AutomationView::from(&newest(&state, &caller, &id).await?);
    let after = serde_json::to_value(&view).ok();
    crate::audit::record(
        &state,
        &caller,
        "automation.create",
        format!("automations/{id}"),
        None,
        after,
    )
    .await?;
    Ok((StatusCode::CREATED, location(&id), Json(view)))
}

/// Every version of the caller's automation `id`; 404 when it has none.
pub(crate) async fn versions(
    automations: &dyn AutomationDirectory,
    caller: &Caller,
    id: &str,
) -> Result<Vec<AutomationVersion>, Problem> {
    let versions = automations
        .versions(&caller.0.tenant, id)
        .await
        .map_err(|e| Problem::store(&e))?;
    if versions.is_empty() {
        return Err(Problem::not_found(format!("no automation {id:?}")));
    }
    Ok(versions)
}

pub(crate) async fn newest(state: &ApiState, caller: &Caller, id: &str) -> Result<AutomationVersion, Problem> {
    let mut all = versions(state.automations.as_ref(), caller, id).await?;
    all.pop()
        .ok_or_else(|| Problem::not_found(format!("no automation {id:?}")))
}

fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, Problem> {
    path.map(|Path(p)| p).map_err(Problem::from)
}

/// The path of `GET /api/v1/automations/{id}/versions/{version}` (named, so that an error
/// names the parameter).
#[derive(Debug, Deserialize)]
pub struct VersionPath {
    id: String,
    version: u32,
}

/// `GET /api/v1/automations/{id}`: the newest version.
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<AutomationView>, Problem> {
    let id = path(id)?;
    Ok(Json(AutomationView::from(&newest(&state, &caller, &id).await?)))
}

/// `GET /api/v1/automations`: the newest version of each automation, by id, one page at a
/// time (`limit`, default 50, at most 200; `cursor` from the previous page), optionally only
/// those with a `status`.
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page<AutomationView>>, Problem> {
    let Query(query) = query.map_err(Problem::from)?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(Problem::invalid_field("limit", format!("must be from 1 to {MAX_PAGE}")));
    }
    let mut items = state
        .automations
        .list(&caller.0.tenant, query.status, query.cursor.as_deref(), limit + 1)
        .await
        .map_err(|e| Problem::store(&e))?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|v| v.program.automation.id.clone())
    } else {
        None
    };
    Ok(Json(Page {
        items: items.iter().map(AutomationView::from).collect(),
        next_cursor,
    }))
}

/// `GET /api/v1/automations/{id}/versions`: every version, oldest first.
pub async fn list_versions(
    State(state): State<ApiState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<AutomationView>>, Problem> {
    let id = path(id)?;
    let all = versions(state.automations.as_ref(), &caller, &id).await?;
    Ok(Json(all.iter().map(AutomationView::from).collect()))
}

/// `GET /api/v1/automations/{id}/versions/{version}`.
pub async fn get_version(
    State(state): State<ApiState>,
    caller: Caller,
    params: Result<Path<VersionPath>, PathRejection>,
) -> Result<Json<AutomationView>, Problem> {
    let VersionPath { id, version } = path(params)?;
    let all = versions(state.automations.as_ref(), &caller, &id).await?;
    all.iter()
        .find(|v| v.program.version() == version)
        .map(|v| Json(AutomationView::from(v)))
        .ok_or_else(|| Problem::not_found(format!("automation {id:?} has no version {version}")))
}

/// `PUT /api/v1/automations/{id}`: stores the body as the next version (200). Runs already
/// going stay on the version they started on. The status is the newest version's unless the
/// body sets one. 409 for an archived automation, or when another write made a version first.
pub async fn replace(
    State(state): State<ApiState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AutomationView>, Problem> {
    let id = path(id)?;
    let body = parse_json(&body?)?;
    let current = newest(&state, &caller, &id).await?;
    let current = &current.program.automation;
    if current.status == AutomationStatus::Archived {
        return Err(Problem::conflict(format!(
            "automation {id:?} is archived, and read-only"
        )));
    }
    let automation = definition(body, &caller, current.version + 1, Some(&id), current.status)?;
    let before = serde_json::to_value(current).ok();
    state
        .automations
        .add_version(automation, state.clock.now())
        .await
        .map_err(|e| Problem::store(&e))?;
    let view = AutomationView::from(&newest(&state, &caller, &id).await?);
    let after = serde_json::to_value(&view).ok();
    crate::audit::record(
        &state,
        &caller,
        "automation.version",
        format!("automations/{id}"),
        before,
        after,
    )
    .await?;
    Ok(Json(view))
}

/// Whether an automation may go from one status to another: draft → active, active ⇄ paused,
/// any → archived; archived is final. Staying put is allowed.
pub fn transition_allowed(from: AutomationStatus, to: AutomationStatus) -> bool {
    use AutomationStatus::{Active, Archived, Draft, Paused};
    from == to
        || matches!(
            (from, to),
            (Draft, Active) | (Active, Paused) | (Paused, Active) | (Draft | Active | Paused, Archived)
        )
}

/// `PATCH /api/v1/automations/{id}` with `{"status": ...}`: changes the newest version's
/// status (200); 409 for a transition [`transition_allowed`] refuses.
pub async fn change_status(
    State(state): State<ApiState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AutomationView>, Problem> {
    let id = path(id)?;
    let change: StatusChange = serde_json::from_value(parse_json(&body?)?).map_err(|e| {
        Problem::invalid_field(
            "status",
            format!("expected {{\"status\": draft|active|paused|archived}}: {e}"),
        )
    })?;
    let current = newest(&state, &caller, &id).await?;
    let mut automation = current.program.automation.clone();
    if !transition_allowed(automation.status, change.status) {
        return Err(Problem::conflict(format!(
            "automation {id:?} cannot go from {} to {}",
            status_name(automation.status),
            status_name(change.status)
        )));
    }
    if automation.status != change.status {
        automation.status = change.status;
        state
            .automations
            .replace_latest(automation)
            .await
            .map_err(|e| Problem::store(&e))?;
    }
    match change.status {
        AutomationStatus::Active => {
            crate::lifecycle::release_held(&state, &caller.0.tenant, &id).await?;
        }
        AutomationStatus::Archived => {
            crate::lifecycle::cancel_active(&state, &caller.0.tenant, &id).await?;
        }
        AutomationStatus::Draft | AutomationStatus::Paused => {}
    }
    let (before, after) = (
        status_name(current.program.automation.status),
        status_name(change.status),
    );
    crate::audit::record(
        &state,
        &caller,
        "automation.status",
        format!("automations/{id}"),
        Some(serde_json::json!({ "status": before })),
        Some(serde_json::json!({ "status": after })),
    )
    .await?;
    Ok(Json(AutomationView::from(&newest(&state, &caller, &id).await?)))
}

pub(crate) fn status_name(status: AutomationStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
