//! The crmflow management API: one [axum] router, on the core's ports, served by the api Lambda
//! function (behind an API Gateway HTTP API) and by `crmflow serve` (on the embedded store).
//!
//! Every route needs an API key ([`auth`]) and takes its tenant from it. Errors are RFC 9457
//! problem documents ([`problem`]). [`routes`] is the route table the router is built from,
//! so tests can walk every route.

pub mod auth;
pub mod automations;
pub mod enroll;
pub mod events;
pub mod idempotency;
pub mod lifecycle;
pub mod problem;
pub mod runs;
pub mod tasks;
pub mod test_run;

use auth::ApiKeyStore;
use axum::Router;
use axum::extract::FromRef;
use axum::http::Method;
use axum::routing::{MethodRouter, get, patch, post, put};
use crmflow_core::engine::Intake;
use crmflow_core::ports::{
    AutomationDirectory, Clock, EventQueue, HeldInputStore, IdempotencyStore, RunDirectory, RunStore, StepQueue,
};
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

/// One route: method, path (axum's syntax, `{id}` for a parameter) and handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub handler: MethodRouter<ApiState>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<ApiState>) -> Route {
    Route { method, path, handler }
}

/// Every route of the API.
pub fn routes() -> Vec<Route> {
    use automations as a;
    vec![
        route(Method::POST, "/api/v1/automations", post(a::create)),
        route(Method::GET, "/api/v1/automations", get(a::list)),
        route(Method::GET, "/api/v1/automations/{id}", get(a::get)),
        route(Method::PUT, "/api/v1/automations/{id}", put(a::replace)),
        route(Method::PATCH, "/api/v1/automations/{id}", patch(a::change_status)),
        route(Method::GET, "/api/v1/automations/{id}/versions", get(a::list_versions)),
        route(
            Method::GET,
            "/api/v1/automations/{id}/versions/{version}",
            get(a::get_version),
        ),
        route(Method::GET, "/api/v1/automations/{id}/runs", get(runs::list)),
        route(Method::GET, "/api/v1/automations/{id}/runs/{run_id}", get(runs::get)),
        route(
            Method::POST,
            "/api/v1/automations/{id}/runs/{run_id}/complete-task",
            post(tasks::complete),
        ),
        route(
            Method::POST,
            "/api/v1/automations/{id}/runs/{run_id}/cancel",
            post(tasks::cancel),
        ),
        route(
            Method::POST,
            "/api/v1/automations/{id}/runs/{run_id}/retry",
            post(tasks::retry),
        ),
        route(Method::POST, "/api/v1/automations/{id}/enroll", post(enroll::enroll)),
        route(Method::POST, "/api/v1/automations/{id}/test", post(test_run::test)),
        route(Method::POST, "/api/v1/events", post(events::post)),
    ]
}

/// The router: [`routes`] (POST routes honour `Idempotency-Key`), and a problem document for
/// any other path (404) or method (405).
pub fn router(state: ApiState) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, r| {
            let handler = if r.method == Method::POST {
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
