//! An API on the in-memory adapters, two tenants' keys, and a way to call it.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use crmflow_api::auth::MemoryApiKeys;
use crmflow_api::{ApiState, router};
use crmflow_core::embedded::Embedded;
use crmflow_core::engine::EngineConfig;
use crmflow_core::memory::{ManualClock, MemoryCatalog, MemoryEventQueue, MemoryQueue, Queued};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

pub struct Api {
    pub router: axum::Router,
    /// The step queue the API queues task completions and cancellations on.
    pub queue: Arc<MemoryQueue>,
    /// The events posted to the API, waiting for intake.
    pub events: Arc<MemoryEventQueue>,
    pub clock: Arc<ManualClock>,
    /// The engine on the same adapters ([`Api::settle`]).
    pub embedded: Embedded,
    /// Tenant `acme`'s key.
    pub acme: String,
    /// Tenant `globex`'s key.
    pub globex: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub replayed: bool,
    pub content_type: String,
    pub location: Option<String>,
    pub body: Value,
}

impl Api {
    pub fn new() -> Api {
        let keys = MemoryApiKeys::new();
        let (acme, _) = keys.create("acme");
        let (globex, _) = keys.create("globex");
        let catalog = Arc::new(MemoryCatalog::new());
        let clock = Arc::new(ManualClock::new("2026-03-02T14:00:00Z".parse().unwrap()));
        let embedded = Embedded::new(catalog.clone(), clock.clone(), EngineConfig::default());
        let runs = embedded.store.clone();
        let queue = embedded.queue.clone();
        let events = embedded.events.clone();
        let state = ApiState {
            automations: catalog.clone(),
            run_store: runs.clone(),
            run_directory: runs.clone(),
            steps: queue.clone(),
            events: events.clone(),
            keys: Arc::new(keys),
            idempotency: runs.clone(),
            held: embedded.held.clone(),
            intake: embedded.engine.intake.clone(),
            audit: embedded.logs.clone(),
            evaluations: embedded.logs.clone(),
            clock: clock.clone(),
        };
        Api {
            router: router(state),
            queue,
            events,
            clock,
            embedded,
            acme,
            globex,
        }
    }

    /// Calls the API with `key` (none when `None`) and a JSON (or raw) body.
    pub async fn call(&self, key: Option<&str>, method: Method, uri: &str, body: Option<&str>) -> Reply {
        self.call_with(key, method, uri, body, &[]).await
    }

    /// [`Api::call`] with extra headers.
    pub async fn call_with(
        &self,
        key: Option<&str>,
        method: Method,
        uri: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(body.map(|b| Body::from(b.to_owned())).unwrap_or_else(Body::empty))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let header_text = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
        };
        let content_type = header_text(header::CONTENT_TYPE).unwrap_or_default();
        let location = header_text(header::LOCATION);
        let replayed = header_text(header::HeaderName::from_static("idempotent-replayed")).is_some();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"))
        };
        Reply {
            status,
            replayed,
            content_type,
            location,
            body,
        }
    }

    /// Runs `event` (native envelope JSON) through intake on the API's catalog and run store:
    /// the runs it starts, as intake reports them.
    pub async fn enroll(&self, event: serde_json::Value) -> Vec<String> {
        let (event, _) = crmflow_core::event::parse_event(&event).unwrap();
        self.enroll_event(event).await
    }

    /// [`Api::enroll`] for a parsed event.
    pub async fn enroll_event(&self, event: crmflow_core::event::Event) -> Vec<String> {
        self.clock.set(event.time);
        let intake = self.embedded.engine.intake.clone();
        let report = intake.handle(&event, serde_json::Map::new()).await.unwrap();
        report.outcomes.into_iter().filter_map(|o| o.run_id).collect()
    }

    /// Lets evaluate handle every step message queued so far (actions are left queued, so runs
    /// stay on their action steps); returns how many it handled.
    pub async fn evaluate_queued(&self) -> usize {
        let evaluate = &self.embedded.engine.evaluate;
        let mut handled = 0;
        let mut actions = Vec::new();
        while let Some(queued) = self
            .queue
            .pop_visible(crmflow_core::ports::Clock::now(self.clock.as_ref()))
        {
            match queued {
                Queued::Step(message) => {
                    evaluate.handle(&message).await.unwrap();
                    handled += 1;
                }
                action => actions.push(action),
            }
        }
        handled
    }

    /// Runs the engine (events, steps, actions, due timers) until nothing is left to do at the
    /// clock's time.
    pub async fn settle(&self) {
        self.embedded.settle().await;
    }

    /// Moves the clock to `time` and settles.
    pub async fn settle_at(&self, time: &str) {
        self.clock.set(time.parse().unwrap());
        self.settle().await;
    }

    /// acme's automation `id` ([`body`]) with `status`, created through the API.
    pub async fn create(&self, id: &str, status: &str) {
        let reply = self
            .as_acme(Method::POST, "/api/v1/automations", Some(&body(Some(id), status)))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
    }

    pub async fn as_acme(&self, method: Method, uri: &str, body: Option<&str>) -> Reply {
        self.call(Some(&self.acme.clone()), method, uri, body).await
    }
}

impl Reply {
    /// Asserts a problem document with this status, and returns its `errors` as (path, message).
    pub fn problem(&self, status: StatusCode) -> Vec<(String, String)> {
        assert_eq!(self.status, status, "{:#}", self.body);
        assert_eq!(self.content_type, "application/problem+json");
        assert_eq!(self.body["status"], status.as_u16());
        assert!(
            self.body["title"].is_string() && self.body["detail"].is_string(),
            "{:#}",
            self.body
        );
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        (
                            e["path"].as_str().unwrap().to_owned(),
                            e["message"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The seed's `POST /api/v1/automations` body, verbatim.
pub const SEED_BODY: &str = r#"{
"name": "Auto-assign high-priority cases",
"trigger": {
"event": "case.created",
"conditions": { "priority": "critical" }
},
"actions": [
{
"type": "assign_to_queue",
"params": { "queue_id": "..." }
},
{
"type": "send_notification",
"params": { "channel": "slack", "message": "Critical case created" }
}
],
"status": "active"
}"#;

/// A small valid definition with a given id (or none) and status.
pub fn body(id: Option<&str>, status: &str) -> String {
    let id = id.map(|id| format!(r#""id": "{id}", "#)).unwrap_or_default();
    format!(
        r#"{{{id}"name": "Welcome", "status": "{status}", "trigger": {{"event": "contact.created"}},
            "actions": [{{"type": "send_email", "params": {{"subject": "Hi", "text": "Welcome"}}}}]}}"#
    )
}
