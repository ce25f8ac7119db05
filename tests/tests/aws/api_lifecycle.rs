//! The management API end to end on the local AWS endpoint: the router on the DynamoDB and SQS
//! adapters (as the api function wires them), the four functions pumped by the harness on a
//! virtual clock, and moto's SES. A paused run keeps the timer that falls due and the event that
//! arrives, and finishes after resume; a sandbox run sends nothing yet shows what it would have
//! sent; a human task completed through the API drives the branch after it; a failed run is
//! retried and completes.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use crmflow_api::ApiState;
use crmflow_api::auth::{digest, new_key};
use crmflow_aws::dynamodb::DynamoStore;
use crmflow_aws::sqs::{SqsEventQueue, SqsStepQueue};
use crmflow_core::engine::{EngineConfig, Intake};
use crmflow_core::ports::{Clock, Credential};
use crmflow_tests::e2e::{self, Ctx};
use crmflow_tests::harness::{Harness, HarnessOptions};
use crmflow_tests::setup_or_skip;
use http_body_util::BodyExt;
use jiff::SignedDuration;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

struct Api {
    router: axum::Router,
    key: String,
}

/// The API on the harness's table and queues, its clock the harness's, with a key of tenant
/// `default` (the harness's events name no tenant).
async fn api(h: &Harness) -> Api {
    api_of(h, "default").await
}

/// [`api`] with a key of `tenant`.
async fn api_of(h: &Harness, tenant: &str) -> Api {
    let r = h.resources();
    let store = Arc::new(DynamoStore::from_client(h.dynamodb().clone(), &r.table, 30));
    let steps = Arc::new(SqsStepQueue::from_client(h.sqs().clone(), &r.step_queue_url));
    let clock: Arc<dyn Clock> = h.clock().clone();
    let intake = Intake {
        catalog: store.clone(),
        runs: store.clone(),
        steps: steps.clone(),
        evaluations: Some(store.clone()),
        clock: clock.clone(),
        config: EngineConfig::default(),
        starter: None,
    };
    let state = ApiState {
        automations: store.clone(),
        run_store: store.clone(),
        run_directory: store.clone(),
        steps,
        events: Arc::new(SqsEventQueue::from_client(h.sqs().clone(), &r.events_queue_url)),
        keys: store.clone(),
        held: store.clone(),
        intake,
        audit: store.clone(),
        evaluations: store.clone(),
        idempotency: store.clone(),
        clock,
    };
    let (key, id) = new_key();
    let credential = Credential {
        id,
        tenant: tenant.into(),
    };
    store
        .put_api_key(&digest(&key), &credential, h.now())
        .await
        .expect("put_api_key");
    Api {
        router: crmflow_api::router(state),
        key,
    }
}

impl Api {
    async fn call(&self, method: Method, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key));
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(body.map(|b| Body::from(b.to_owned())).unwrap_or_else(Body::empty))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }

    async fn expect(&self, method: Method, uri: &str, body: Option<&str>, status: StatusCode) -> Value {
        let (got, reply) = self.call(method.clone(), uri, body).await;
        assert_eq!(got, status, "{method} {uri}: {reply:#}");
        reply
    }

    async fn run(&self, automation: &str, run_id: &str) -> Value {
        let uri = format!("/api/v1/automations/{automation}/runs/{run_id}");
        self.expect(Method::GET, &uri, None, StatusCode::OK).await
    }

    /// The automation's only run.
    async fn only_run(&self, automation: &str) -> String {
        let uri = format!("/api/v1/automations/{automation}/runs");
        let page = self.expect(Method::GET, &uri, None, StatusCode::OK).await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{page:#}");
        items[0]["id"].as_str().unwrap().to_owned()
    }
}

fn pumped(report: Result<crmflow_tests::harness::PumpReport, String>) {
    let report = report.expect("pump");
    assert!(
        report.failed.values().all(|n| *n == 0) && report.crashes.is_empty(),
        "failures: {:?}, crashes: {:?}",
        report.failed,
        report.crashes
    );
}

fn lead(id: &str, event_type: &str, time: jiff::Timestamp, status: &str) -> String {
    json!({"id": id, "type": event_type, "time": time.to_string(),
           "subject": {"type": "lead", "id": "L1", "contact_id": "C1"},
           "contact": {"email": "ada@example.com", "first_name": "Ada"},
           "data": {"name": "Ada", "status": status}})
    .to_string()
}

const NURTURE: &str = r#"{"id": "nurture", "name": "Nurture", "status": "active",
  "trigger": {"event": "lead.created"},
  "steps": [
    {"id": "pause", "wait": {"duration": "1h"}},
    {"id": "hello", "action": {"type": "send_email", "params": {"subject": "Hi {{ contact.first_name }}", "text": "Welcome"}}},
    {"id": "qualified?", "branch": {
      "if": {"field": "record.status", "op": "equals", "value": "qualified"},
      "then": [{"id": "won", "end": {"reason": "qualified"}}],
      "else": [{"id": "lost", "end": {"reason": "not qualified"}}]}}
  ]}"#;

#[tokio::test]
async fn a_paused_run_on_aws_keeps_its_timer_and_event_and_finishes_after_resume() {
    let ctx: Ctx = setup_or_skip!("api-pause", HarnessOptions::default());
    let h = &ctx.h;
    let api = api(h).await;
    api.expect(Method::POST, "/api/v1/automations", Some(NURTURE), StatusCode::CREATED)
        .await;
    let start = h.now();
    h.send_event(&lead("e1", "lead.created", start, "new")).await.unwrap();
    pumped(h.pump().await);
    let run = api.only_run("nurture").await;
    assert_eq!(api.run("nurture", &run).await["status"], "waiting");

    let paused = json!({"status": "paused"}).to_string();
    api.expect(
        Method::PATCH,
        "/api/v1/automations/nurture",
        Some(&paused),
        StatusCode::OK,
    )
    .await;
    let qualified = lead(
        "e2",
        "lead.status_changed",
        start + SignedDuration::from_mins(30),
        "qualified",
    );
    api.expect(Method::POST, "/api/v1/events", Some(&qualified), StatusCode::ACCEPTED)
        .await;
    pumped(h.pump().await);
    pumped(h.advance_to(start + SignedDuration::from_hours(2)).await);
    let held = api.run("nurture", &run).await;
    assert_eq!(held["status"], "waiting", "no step advances while paused: {held:#}");
    assert_eq!(held["history"].as_array().unwrap().len(), 1, "{held:#}");
    assert!(
        e2e::ses_emails(&ctx.endpoint, &h.resources().sender).await.is_empty(),
        "nothing sent while paused"
    );

    let active = json!({"status": "active"}).to_string();
    api.expect(
        Method::PATCH,
        "/api/v1/automations/nurture",
        Some(&active),
        StatusCode::OK,
    )
    .await;
    pumped(h.pump().await);
    let done = api.run("nurture", &run).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(
        done["outcome"], "ended at step \"won\": qualified",
        "the held event applied before the held timer"
    );
    let sent = e2e::ses_emails(&ctx.endpoint, &h.resources().sender).await;
    assert_eq!(sent.len(), 1, "the email went once: {sent:?}");
    assert_eq!(sent[0].subject, "Hi Ada");
    e2e::assert_dead_letter_queues_empty(h).await;
}

#[tokio::test]
async fn a_sandbox_run_on_aws_sends_nothing_and_shows_what_it_would_have_sent() {
    let ctx: Ctx = setup_or_skip!("api-sandbox", HarnessOptions::default());
    let h = &ctx.h;
    let api = api(h).await;
    let sandbox = NURTURE.replace(r#""status": "active","#, r#""status": "active", "mode": "sandbox","#);
    api.expect(Method::POST, "/api/v1/automations", Some(&sandbox), StatusCode::CREATED)
        .await;
    let start = h.now();
    h.send_event(&lead("e1", "lead.created", start, "new")).await.unwrap();
    pumped(h.pump().await);
    pumped(h.advance_to(start + SignedDuration::from_hours(2)).await);
    let run = api.only_run("nurture").await;
    let view = api.run("nurture", &run).await;
    assert_eq!(view["status"], "completed", "{view:#}");
    assert_eq!(view["dry_run"], true);
    assert!(
        e2e::ses_emails(&ctx.endpoint, &h.resources().sender).await.is_empty(),
        "the local SES endpoint holds no message"
    );
    let hello = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["step_id"] == "hello")
        .cloned()
        .unwrap();
    assert_eq!(hello["status"], "skipped", "{hello:#}");
    assert_eq!(
        hello["output"]["effect"]["subject"], "Hi Ada",
        "what would have been sent"
    );
    assert_eq!(hello["output"]["effect"]["to"], "ada@example.com");
}

#[tokio::test]
async fn a_task_completed_through_the_api_drives_the_branch_and_a_failed_run_is_retried_on_aws() {
    // A port with nothing listening yet: the webhook fails until the receiver starts on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ctx: Ctx = setup_or_skip!(
        "api-task-retry",
        HarnessOptions {
            allow_private_webhooks: true,
            ..HarnessOptions::default()
        }
    );
    let h = &ctx.h;
    let api = api(h).await;
    let definition = json!({"id": "approval", "name": "Approval", "status": "active",
    "trigger": {"event": "lead.created"},
    "steps": [
      {"id": "review", "human_task": {"title": "Approve?"}},
      {"id": "approved?", "branch": {
        "if": {"field": "steps.review.output.approved", "op": "equals", "value": true},
        "then": [{"id": "hook", "action": {"type": "webhook",
                   "params": {"url": format!("http://127.0.0.1:{port}/approved"), "method": "POST"}}}],
        "else": [{"id": "no", "end": {"reason": "rejected"}}]}}
    ]})
    .to_string();
    api.expect(
        Method::POST,
        "/api/v1/automations",
        Some(&definition),
        StatusCode::CREATED,
    )
    .await;
    h.send_event(&lead("e1", "lead.created", h.now(), "new")).await.unwrap();
    pumped(h.pump().await);
    let run = api.only_run("approval").await;
    let task = format!("/api/v1/automations/approval/runs/{run}/complete-task");
    let retry = format!("/api/v1/automations/approval/runs/{run}/retry");
    api.expect(Method::POST, &retry, None, StatusCode::CONFLICT).await;
    api.expect(
        Method::POST,
        &task,
        Some(r#"{"output": {"approved": true}}"#),
        StatusCode::ACCEPTED,
    )
    .await;
    api.expect(Method::POST, &task, Some(r#"{"output": {}}"#), StatusCode::ACCEPTED)
        .await;
    pumped(h.pump().await);
    let failed = api.run("approval", &run).await;
    assert_eq!(failed["status"], "failed", "the webhook had nowhere to go: {failed:#}");
    api.expect(Method::POST, &task, Some(r#"{"output": {}}"#), StatusCode::CONFLICT)
        .await;

    let receiver = e2e::receiver_on(&format!("127.0.0.1:{port}")).await;
    api.expect(Method::POST, &retry, Some("{}"), StatusCode::ACCEPTED).await;
    pumped(h.pump().await);
    let done = api.run("approval", &run).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let steps: Vec<(&str, &str)> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["step_id"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("review", "completed"),
            ("approved?", "completed"),
            ("hook", "failed"),
            ("hook", "completed"),
            ("hook", "completed")
        ],
        "the task's output took the branch; both attempts of the webhook are kept"
    );
    assert_eq!(receiver.hits().len(), 1, "the retry called the webhook once");
}

/// A valid request for each route of the route table (acme's automation `nurture` and its run),
/// and the status it succeeds with.
fn valid_request(method: &Method, path: &str) -> (Option<String>, StatusCode) {
    let body = |v: Value| Some(v.to_string());
    match (method.as_str(), path.rsplit('/').next().unwrap_or("")) {
        ("POST", "automations") => (
            body(json!({"name": "Another", "trigger": {"event": "lead.created"},
            "actions": [{"type": "add_tag", "params": {"tag": "x"}}]})),
            StatusCode::CREATED,
        ),
        ("PUT", _) => (Some(NURTURE.to_owned()), StatusCode::OK),
        ("PATCH", _) => (body(json!({"status": "active"})), StatusCode::OK),
        ("POST", "complete-task") => (body(json!({"output": {}})), StatusCode::CONFLICT),
        ("POST", "cancel") => (None, StatusCode::ACCEPTED),
        ("POST", "retry") => (None, StatusCode::CONFLICT),
        ("POST", "enroll") => (
            body(json!({"subject": {"type": "lead", "id": "L9"}})),
            StatusCode::CREATED,
        ),
        ("POST", "test") => (
            body(
                json!({"event": {"id": "t1", "type": "lead.created", "time": "2026-06-01T09:00:00Z",
                                  "subject": {"type": "lead", "id": "L8"}}}),
            ),
            StatusCode::OK,
        ),
        ("POST", "events") => (
            body(
                json!({"id": "x1", "type": "lead.updated", "time": "2026-06-01T09:00:00Z",
                        "subject": {"type": "lead", "id": "L7"}}),
            ),
            StatusCode::ACCEPTED,
        ),
        _ => (None, StatusCode::OK),
    }
}

/// Every route of the router on DynamoDB and SQS: the owner's valid request succeeds (or, for
/// complete-task and retry on a run with no task and no failure, answers 409); another tenant
/// gets 404 for everything named by the path, and its listings show nothing of the owner's.
#[tokio::test]
async fn every_route_answers_on_aws_and_tenants_stay_apart() {
    let ctx: Ctx = setup_or_skip!("api-routes", HarnessOptions::default());
    let h = &ctx.h;
    let (acme, globex) = (api_of(h, "acme").await, api_of(h, "globex").await);
    let created = acme
        .expect(Method::POST, "/api/v1/automations", Some(NURTURE), StatusCode::CREATED)
        .await;
    assert_eq!(created["id"], "nurture");
    let mut event: Value = serde_json::from_str(&lead("e1", "lead.created", h.now(), "new")).unwrap();
    event["tenant"] = json!("acme");
    h.send_event(&event.to_string()).await.unwrap();
    pumped(h.pump().await);
    let run = acme.only_run("nurture").await;
    for route in crmflow_api::routes() {
        let uri = route
            .path
            .replace("{id}", "nurture")
            .replace("{version}", "1")
            .replace("{run_id}", &run);
        let uri = match route.path.rsplit('/').next() {
            Some("evaluations") => format!("{uri}?subject=lead/L1"),
            _ => uri,
        };
        let (body, success) = valid_request(&route.method, route.path);
        let (theirs, reply) = globex.call(route.method.clone(), &uri, body.as_deref()).await;
        if route.path.contains("{id}") {
            assert_eq!(
                theirs,
                StatusCode::NOT_FOUND,
                "{} {uri} as globex: {reply:#}",
                route.method
            );
        } else if route.method == Method::GET && route.path != "/api/v1/openapi.json" {
            assert_eq!(theirs, StatusCode::OK, "{} {uri} as globex: {reply:#}", route.method);
            assert!(!reply.to_string().contains("nurture"), "{uri} leaks: {reply:#}");
        }
        acme.expect(route.method.clone(), &uri, body.as_deref(), success).await;
    }
    let unknown = format!(
        "/api/v1/automations/nurture/runs/{}x/complete-task",
        &run[..run.len() - 1]
    );
    acme.expect(Method::POST, &unknown, Some(r#"{"output": {}}"#), StatusCode::NOT_FOUND)
        .await;
    let audit = acme.expect(Method::GET, "/api/v1/audit", None, StatusCode::OK).await;
    assert!(
        audit["items"].as_array().unwrap().len() >= 5,
        "the writes are in acme's audit log: {audit:#}"
    );
}
