//! `POST /api/v1/automations/{id}/test`: a sample event (and optionally a sample contact) run
//! through a draft or active version of the automation on a private embedded engine, waits
//! fast-forwarded. Nothing is performed and nothing is stored: the answer is the timeline, as
//! `crmflow simulate --format json` prints it.
//!
//! The route needs only the automations and the API keys ([`TestState`]), and changes nothing:
//! on AWS it is served by a function of its own (the simulate function, which links the engine
//! and has read-only access to the table), so that the api function does not link the engine.

use crate::ApiState;
use crate::auth::{ApiKeyStore, Caller};
use crate::events::caller_event;
use crate::problem::Problem;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRef, Path, State};
use crmflow_core::definition::{AutomationStatus, Program};
use crmflow_core::event::Event;
use crmflow_core::ports::AutomationDirectory;
use crmflow_core::simulate::{RunReport, SimulationOptions, Simulator};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The route's path.
pub const PATH: &str = "/api/v1/automations/{id}/test";

/// What the route uses.
#[derive(Clone)]
pub struct TestState {
    pub automations: Arc<dyn AutomationDirectory>,
    pub keys: Arc<dyn ApiKeyStore>,
}

impl FromRef<ApiState> for TestState {
    fn from_ref(state: &ApiState) -> Self {
        TestState {
            automations: Arc::clone(&state.automations),
            keys: Arc::clone(&state.keys),
        }
    }
}

impl FromRef<TestState> for Arc<dyn ApiKeyStore> {
    fn from_ref(state: &TestState) -> Self {
        Arc::clone(&state.keys)
    }
}

/// The body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// One event, in any envelope intake reads.
    pub event: Value,
    /// The contact snapshot the run starts with.
    #[serde(default)]
    pub contact: Option<Map<String, Value>>,
    /// The version to test; the newest when absent.
    #[serde(default)]
    pub version: Option<u32>,
}

/// The timeline.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TestResult {
    pub automation_id: String,
    pub version: u32,
    /// The runs the event started (none when the trigger or the conditions did not match), with
    /// every step, as `crmflow simulate --format json` prints them.
    pub runs: Vec<RunReport>,
    /// Problems met while running (a failed message).
    pub errors: Vec<String>,
}

/// 200 with the timeline; 400 naming the field at fault; 404 for an unknown automation or
/// version; 409 for an archived one.
pub async fn test(
    State(state): State<TestState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TestResult>, Problem> {
    let Path(id) = id.map_err(|e| Problem::invalid_field("path", e.body_text()))?;
    // The automation first: another tenant's answers 404 whatever the body.
    let versions = crate::automations::versions(state.automations.as_ref(), &caller, &id).await?;
    let request: TestRequest = serde_json::from_slice(&body?).map_err(|e| {
        Problem::invalid_field(
            "",
            format!("expected {{\"event\": {{...}}, \"contact\"?: {{...}}, \"version\"?: n}}: {e}"),
        )
    })?;
    let chosen = match request.version {
        None => versions.last(),
        Some(v) => versions.iter().find(|a| a.program.version() == v),
    }
    .ok_or_else(|| Problem::not_found(format!("automation {id:?} has no version {:?}", request.version)))?;
    let mut automation = chosen.program.automation.clone();
    if automation.status == AutomationStatus::Archived {
        return Err(Problem::conflict(format!("automation {id:?} is archived")));
    }
    automation.status = AutomationStatus::Active;
    let version = automation.version;
    let program = Program::new(automation)
        .map_err(|errors| Problem::invalid_field("", format!("the stored definition does not compile: {errors:?}")))?;
    let mut event = caller_event(&caller, &request.event, "event")?;
    if let Some(contact) = request.contact {
        let mut merged = event.contact.take().unwrap_or_default();
        merged.extend(contact);
        event.contact = Some(merged);
    }
    let (runs, errors) = tokio::task::spawn_blocking(move || simulate(program, event))
        .await
        .map_err(|e| Problem::internal(format!("the test run stopped: {e}")))??;
    Ok(Json(TestResult {
        automation_id: id,
        version,
        runs,
        errors,
    }))
}

/// The simulation, on a runtime of its own (its future holds the simulator's callbacks, which
/// are not `Send`).
fn simulate(program: Program, event: Event) -> Result<(Vec<RunReport>, Vec<String>), Problem> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Problem::internal(format!("could not start the test run: {e}")))?;
    let mut simulator = Simulator::new(vec![program], HashMap::new(), SimulationOptions::default());
    let runs = runtime.block_on(simulator.run(vec![event]));
    Ok((runs, simulator.errors))
}
