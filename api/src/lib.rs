//! The crmflow management API: one [axum] router, on the core's ports, served by the api Lambda
//! function (behind an API Gateway HTTP API) and by `crmflow serve` (on the embedded store).
//!
//! Every route but the OpenAPI document needs an API key ([`auth`]) and takes its tenant from
//! it. Errors are RFC 9457 problem documents ([`problem`]). [`routes`] is the route table the
//! router is built from, so tests can walk every route; each route carries its OpenAPI
//! operation, and [`openapi`] writes the document from the table.

pub mod audit;
pub mod auth;
pub mod automations;
pub mod enroll;
pub mod evaluations;
pub mod events;
pub mod idempotency;
pub mod lifecycle;
pub mod openapi;
pub mod problem;
pub mod runs;
pub mod stats;
pub mod tasks;
pub mod test_run;

use auth::ApiKeyStore;
use axum::Router;
use axum::extract::FromRef;
use axum::http::Method;
use axum::routing::{MethodRouter, get, patch, post, put};
use crmflow_core::engine::Intake;
use crmflow_core::ports::{
    AuditLog, AutomationDirectory, Clock, EvaluationLog, EventQueue, HeldInputStore, IdempotencyStore, RunDirectory,
    RunStore, StepQueue,
};
use openapi::Operation;
use problem::Problem;
use std::sync::Arc;

/// What the handlers use.
#[derive(Clone)]
pub struct ApiState {
    pub automations: Arc<dyn AutomationDirectory>,
    pub run_store: Arc<dyn RunStore>,
    pub run_directory: Arc<dyn RunDirectory>,
    /// Intake's ports, for enrolling a record by hand.
    pub intake: Intake,
    /// Every write made through the API ([`audit`]).
    pub audit: Arc<dyn AuditLog>,
    /// Intake's recent trigger evaluations ([`evaluations`]).
    pub evaluations: Arc<dyn EvaluationLog>,
    /// Where task completions and cancellations go for the engine.
    pub steps: Arc<dyn StepQueue>,
    /// Where posted events go for intake.
    pub events: Arc<dyn EventQueue>,
    pub keys: Arc<dyn ApiKeyStore>,
    /// Inputs held while an automation is paused ([`lifecycle::release_held`] releases them).
    pub held: Arc<dyn HeldInputStore>,
    /// Where responses to requests with an `Idempotency-Key` are kept ([`idempotency`]).
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub clock: Arc<dyn Clock>,
}

impl FromRef<ApiState> for Arc<dyn ApiKeyStore> {
    fn from_ref(state: &ApiState) -> Self {
        Arc::clone(&state.keys)
    }
}

/// One route: method, path (axum's syntax, `{id}` for a parameter), handler, and its OpenAPI
/// operation ([`openapi`]): a route is documented where it is registered, or not at all.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub handler: MethodRouter<ApiState>,
    pub doc: Operation,
}

impl Route {
    /// Served without an API key (the OpenAPI document).
    pub fn is_public(&self) -> bool {
        self.doc.public
    }

    /// Honours `Idempotency-Key` ([`idempotency`]): a POST that changes something.
    pub fn is_idempotent(&self) -> bool {
        self.method == Method::POST && !self.doc.safe
    }
}

fn route(method: Method, path: &'static str, handler: MethodRouter<ApiState>, doc: Operation) -> Route {
    Route {
        method,
        path,
        handler,
        doc,
    }
}

/// OpenAPI links ([`Operation::link`]): the automation an answer is about, and the first run of
/// a page of runs.
const NEW_ID: &str = "$response.body#/id";
const BY_ID: &[(&str, &str)] = &[("id", NEW_ID)];
const FIRST_RUN: &[(&str, &str)] = &[("id", "$request.path.id"), ("run_id", "$response.body#/items/0/id")];

/// Every route of the API: [`management_routes`] and [`test_route`].
pub fn routes() -> Vec<Route> {
    let mut all = management_routes();
    all.push(test_route());
    all
}

/// The test route: an automation run on a sample event ([`test_run`]). It links the whole
/// engine, so on AWS a function of its own serves it ([`test_router`]).
pub fn test_route() -> Route {
    route(
        Method::POST,
        test_run::PATH,
        post(test_run::test),
        Operation::new("testAutomation", "Test a version with a sample event")
            .safe()
            .describe(
                "Runs the event (and contact) through a draft or active version with waits \
                 fast-forwarded; nothing is performed or stored. The answer is the timeline, as \
                 `crmflow simulate --format json` prints it.",
            )
            .body::<test_run::TestRequest>("The sample event, contact and version")
            .reply::<test_run::TestResult>(200, "The runs the event started, step by step")
            .problem(404, "No such automation, or no such version of it")
            .problem(409, "The automation is archived"),
    )
}

/// Every route but [`test_route`]: what the api function serves ([`management_router`]).
pub fn management_routes() -> Vec<Route> {
    let mut all = automation_routes();
    all.extend(version_routes());
    all.extend(run_routes());
    all.extend(manual_routes());
    all.extend([
        route(
            Method::POST,
            "/api/v1/events",
            post(events::post),
            Operation::new("postEvent", "Queue a CRM event")
                .describe(
                    "Validated as intake would, in the API key's tenant (a body naming another tenant is \
                     refused), and queued for intake.",
                )
                .event_body("One CRM event, in any of the three envelopes")
                .reply::<events::Queued>(202, "Queued")
                .problem(
                    400,
                    "The event is not valid (`errors` names the field), or names another tenant",
                ),
        ),
        route(
            Method::GET,
            "/api/v1/audit",
            get(audit::list),
            Operation::new("listAudit", "The audit log")
                .describe(
                    "Every write made through the API in the key's tenant, newest first: who (the \
                     key's id), what, when, before and after.",
                )
                .query::<audit::AuditQuery>()
                .reply::<automations::Page<crmflow_core::ports::AuditEntry>>(200, "One page"),
        ),
        route(
            Method::GET,
            openapi::PATH,
            get(openapi::serve),
            Operation::new("getOpenApi", "This document").public().document_reply(),
        ),
    ]);
    all
}

fn automation_routes() -> Vec<Route> {
    use automations as a;
    let view = "The automation: its newest version";
    vec![
        route(
            Method::POST,
            "/api/v1/automations",
            post(a::create),
            Operation::new("createAutomation", "Create an automation")
                .describe(
                    "The server sets `tenant` (the API key's), `version` (1), `status` (`draft` unless the \
                     body sets one) and `id` when the body has none (a new UUID).",
                )
                .definition_body("A definition in the flat form (the seed API's body, as is) or the steps form")
                .reply::<a::AutomationView>(201, "Created")
                .header("Location")
                .link("getAutomation", BY_ID)
                .link("replaceAutomation", BY_ID)
                .link("changeAutomationStatus", BY_ID)
                .link("listAutomationVersions", BY_ID)
                .link(
                    "getAutomationVersion",
                    &[("id", NEW_ID), ("version", "$response.body#/version")],
                )
                .link("listRuns", BY_ID)
                .problem(400, "The definition is not valid: `errors` names each field")
                .problem(
                    409,
                    "An automation with the body's `id` exists: PUT a new version instead",
                ),
        ),
        route(
            Method::GET,
            "/api/v1/automations",
            get(a::list),
            Operation::new("listAutomations", "List automations")
                .describe("The newest version of each automation, by id, one page at a time.")
                .query::<a::ListQuery>()
                .reply::<a::Page<a::AutomationView>>(200, "One page"),
        ),
        route(
            Method::GET,
            "/api/v1/automations/{id}",
            get(a::get),
            Operation::new("getAutomation", "Get an automation")
                .reply::<a::AutomationView>(200, view)
                .problem(404, "No such automation"),
        ),
        route(
            Method::PUT,
            "/api/v1/automations/{id}",
            put(a::replace),
            Operation::new("replaceAutomation", "Store a new version")
                .describe(
                    "The body becomes the next version. Runs already going finish on their version. The \
                     status stays unless the body sets one.",
                )
                .definition_body("The new version's definition, in either form")
                .reply::<a::AutomationView>(200, "The new version")
                .problem(
                    400,
                    "The definition is not valid (`errors` names each field), or its `id` is not the path's",
                )
                .problem(404, "No such automation")
                .problem(409, "The automation is archived, or another write made a version first"),
        ),
        route(
            Method::PATCH,
            "/api/v1/automations/{id}",
            patch(a::change_status),
            Operation::new("changeAutomationStatus", "Change an automation's status")
                .describe("draft → active, active ⇄ paused, any → archived; archived is read-only.")
                .body::<a::StatusChange>("The new status")
                .reply::<a::AutomationView>(200, "The same version, with its new status")
                .problem(404, "No such automation")
                .problem(409, "The transition is not allowed"),
        ),
    ]
}

fn version_routes() -> Vec<Route> {
    use automations as a;
    vec![
        route(
            Method::GET,
            "/api/v1/automations/{id}/versions",
            get(a::list_versions),
            Operation::new("listAutomationVersions", "List an automation's versions")
                .reply::<Vec<a::AutomationView>>(200, "Every version, oldest first")
                .problem(404, "No such automation"),
        ),
        route(
            Method::GET,
            "/api/v1/automations/{id}/versions/{version}",
            get(a::get_version),
            Operation::new("getAutomationVersion", "Get one version of an automation")
                .reply::<a::AutomationView>(200, "The version")
                .problem(404, "No such automation, or no such version of it"),
        ),
    ]
}

fn run_routes() -> Vec<Route> {
    let no_run = "No such automation, or no such run of it";
    vec![
        route(
            Method::GET,
            "/api/v1/automations/{id}/runs",
            get(runs::list),
            Operation::new("listRuns", "List an automation's runs")
                .describe("Newest first, one page at a time.")
                .query::<runs::RunQuery>()
                .reply::<automations::Page<runs::RunView>>(200, "One page")
                .link("getRun", FIRST_RUN)
                .link("completeTask", FIRST_RUN)
                .link("cancelRun", FIRST_RUN)
                .problem(404, "No such automation"),
        ),
        route(
            Method::GET,
            "/api/v1/automations/{id}/runs/{run_id}",
            get(runs::get),
            Operation::new("getRun", "Get a run and its history")
                .reply::<runs::RunDetail>(200, "The run, and one record per step it entered, in order")
                .problem(404, no_run),
        ),
        route(
            Method::POST,
            "/api/v1/automations/{id}/runs/{run_id}/complete-task",
            post(tasks::complete),
            Operation::new("completeTask", "Complete a run's human task")
                .describe(
                    "Checked against the run head, then queued for the engine. The output is \
                     `steps.<task id>.output` for later steps.",
                )
                .body::<tasks::Completion>("The task's output, and its id if it should be checked")
                .reply::<tasks::Accepted>(202, "Queued")
                .problem(404, no_run)
                .problem(
                    409,
                    "The run has ended, has no open task, or `task_id` is not the open one",
                ),
        ),
        route(
            Method::POST,
            "/api/v1/automations/{id}/runs/{run_id}/cancel",
            post(tasks::cancel),
            Operation::new("cancelRun", "Cancel a run")
                .reply::<tasks::Accepted>(202, "Queued: the run ends `cancelled`, its outcome naming the API key")
                .problem(404, no_run)
                .problem(409, "The run has ended"),
        ),
        route(
            Method::POST,
            "/api/v1/automations/{id}/runs/{run_id}/retry",
            post(tasks::retry),
            Operation::new("retryRun", "Retry a failed run")
                .describe(
                    "The run resumes from the step that failed, on the version it started on; its \
                     history keeps both attempts. An action whose failed attempt may have performed \
                     it (an email that timed out) is not performed again unless `resend_uncertain`.",
                )
                .body::<tasks::RetryRequest>("Whether to repeat an action that may have been performed (may be empty)")
                .reply::<tasks::Accepted>(202, "Queued")
                .problem(404, no_run)
                .problem(
                    409,
                    "The run has not failed, failed other than at a step, or its automation is archived",
                ),
        ),
    ]
}

fn manual_routes() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/api/v1/automations/{id}/stats",
            get(stats::stats),
            Operation::new("getAutomationStats", "Step statistics")
                .describe(
                    "Enrollments, and per step: entered, completed, failed, waiting now; conversion for \
                     goals. Counted from the newest runs (`runs`, default 500) when read.",
                )
                .query::<stats::StatsQuery>()
                .reply::<stats::Stats>(200, "The counts")
                .problem(404, "No such automation"),
        ),
        route(
            Method::GET,
            "/api/v1/automations/{id}/evaluations",
            get(evaluations::list),
            Operation::new("listTriggerEvaluations", "Why a record did or did not enroll")
                .describe(
                    "The record's recent trigger evaluations (kept 7 days), newest first: the \
                     conditions' results or the enrollment policy's reason.",
                )
                .query::<evaluations::EvaluationQuery>()
                .reply::<evaluations::Evaluations>(200, "The evaluations")
                .problem(404, "No such automation"),
        ),
        route(
            Method::POST,
            "/api/v1/automations/{id}/enroll",
            post(enroll::enroll),
            Operation::new("enrollRecord", "Enroll a record by hand")
                .describe("Under the automation's enrollment policy; the trigger and conditions are not checked.")
                .body::<enroll::Enrollment>("The record, and optionally its fields and a contact snapshot")
                .reply::<enroll::Enrolled>(201, "Enrolled: the new run")
                .problem(404, "No such automation")
                .problem(
                    409,
                    "The automation is not active, or its enrollment policy refuses the record",
                ),
        ),
    ]
}

/// The router of every route ([`routes`]): `crmflow serve`.
pub fn router(state: ApiState) -> Router {
    serve(routes(), state)
}

/// The router of the api function: [`management_routes`], and 405 on the test route's path, whose
/// POST goes to the simulate function ([`test_router`]; the HTTP API routes it there).
pub fn management_router(state: ApiState) -> Router {
    serve(management_routes(), state).route(test_run::PATH, MethodRouter::new())
}

/// The router of the simulate function: the test route alone, on [`test_run::TestState`], with
/// the same answers for any other path or method as [`router`].
pub fn test_router(state: test_run::TestState) -> Router {
    Router::new()
        .route(test_run::PATH, post(test_run::test))
        .fallback(|| async { Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .with_state(state)
}

/// `routes` served on `state`: POST routes that change something honour `Idempotency-Key`
/// ([`Route::is_idempotent`]), and any other path (404) or method (405) gets a problem document.
fn serve(routes: Vec<Route>, state: ApiState) -> Router {
    routes
        .into_iter()
        .fold(Router::new(), |router, r| {
            let handler = if r.is_idempotent() {
                r.handler.layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    idempotency::idempotent,
                ))
            } else {
                r.handler
            };
            router.route(r.path, handler)
        })
        .fallback(|| async { Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .with_state(state)
}
