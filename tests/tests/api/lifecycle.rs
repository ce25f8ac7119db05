//! What the status of an automation does to its runs: a pause holds them (a timer that falls
//! due and an event that arrives are kept and applied, in order, on resume), archiving cancels
//! them, and a sandbox automation's runs perform nothing but show what they would have done.

use crate::support::Api;
use axum::http::{Method, StatusCode};
use crmflow_core::ports::HeldInputStore;
use serde_json::{Value, json};

/// A one-hour wait, then an email and a branch on whether the lead was qualified meanwhile.
const NURTURE: &str = r#"{"id": "nurture", "name": "Nurture", "status": "active",
  "trigger": {"event": "lead.created"},
  "steps": [
    {"id": "pause", "wait": {"duration": "1h"}},
    {"id": "hello", "action": {"type": "send_email", "params": {"subject": "Hi {{ record.name }}", "text": "Welcome"}}},
    {"id": "qualified?", "branch": {
      "if": {"field": "record.status", "op": "equals", "value": "qualified"},
      "then": [{"id": "won", "end": {"reason": "qualified"}}],
      "else": [{"id": "lost", "end": {"reason": "not qualified"}}]}}
  ]}"#;

fn lead_event(id: &str, event_type: &str, time: &str, data: Value) -> Value {
    json!({"id": id, "type": event_type, "tenant": "acme", "time": time,
           "subject": {"type": "lead", "id": "L1", "contact_id": "C1"},
           "contact": {"email": "ada@example.com"}, "data": data})
}

async fn run_view(api: &Api, automation: &str, run: &str) -> Value {
    let reply = api
        .as_acme(
            Method::GET,
            &format!("/api/v1/automations/{automation}/runs/{run}"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    reply.body
}

async fn set_status(api: &Api, automation: &str, status: &str) {
    let body = json!({ "status": status }).to_string();
    let reply = api
        .as_acme(Method::PATCH, &format!("/api/v1/automations/{automation}"), Some(&body))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.body["status"], status);
}

fn steps_of(view: &Value) -> Vec<(String, String)> {
    view["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["step_id"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_paused_run_keeps_what_falls_due_and_finishes_in_order_after_resume() {
    let api = Api::new();
    let created = api.as_acme(Method::POST, "/api/v1/automations", Some(NURTURE)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.body);
    let run = api
        .enroll(lead_event(
            "e1",
            "lead.created",
            "2026-03-02T14:00:00Z",
            json!({"name": "Ada", "status": "new"}),
        ))
        .await
        .pop()
        .expect("enrolled");
    api.settle().await;
    assert_eq!(run_view(&api, "nurture", &run).await["status"], "waiting");

    set_status(&api, "nurture", "paused").await;
    // During the pause: the lead is qualified (an event for the run), then the wait falls due.
    let qualified = lead_event(
        "e2",
        "lead.status_changed",
        "2026-03-02T14:30:00Z",
        json!({"name": "Ada", "status": "qualified"}),
    );
    let posted = api
        .as_acme(Method::POST, "/api/v1/events", Some(&qualified.to_string()))
        .await;
    assert_eq!(posted.status, StatusCode::ACCEPTED, "{:#}", posted.body);
    api.settle_at("2026-03-02T14:30:00Z").await;
    api.settle_at("2026-03-02T16:00:00Z").await;
    let paused = run_view(&api, "nurture", &run).await;
    assert_eq!(paused["status"], "waiting", "no step advances while paused: {paused:#}");
    assert_eq!(steps_of(&paused), vec![("pause".to_owned(), "waiting".to_owned())]);
    assert!(api.embedded.email.count() == 0, "nothing sent while paused");
    let held = api
        .embedded
        .held
        .held_for_run("acme", "nurture", &run, 10)
        .await
        .unwrap();
    let kinds: Vec<&str> = held.iter().map(|h| h.input.kind()).collect();
    assert_eq!(kinds, vec!["event", "timer_fired"], "kept, in the order they arrived");

    set_status(&api, "nurture", "active").await;
    api.settle().await;
    let done = run_view(&api, "nurture", &run).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(
        done["outcome"], "ended at step \"won\": qualified",
        "the held event was applied before the timer"
    );
    assert_eq!(
        steps_of(&done),
        [
            ("pause", "completed"),
            ("hello", "completed"),
            ("qualified?", "completed"),
            ("won", "completed")
        ]
        .map(|(s, t)| (s.to_owned(), t.to_owned()))
        .to_vec()
    );
    assert_eq!(api.embedded.email.count(), 1, "the email went once");
    assert!(
        api.embedded
            .held
            .runs_with_held("acme", "nurture", None, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing is left held"
    );
}

#[tokio::test]
async fn archiving_cancels_the_active_runs_with_the_reason_and_refuses_changes() {
    let api = Api::new();
    api.as_acme(Method::POST, "/api/v1/automations", Some(NURTURE)).await;
    let mut runs = Vec::new();
    for (i, subject) in ["L1", "L2"].into_iter().enumerate() {
        let mut event = lead_event(
            &format!("e{i}"),
            "lead.created",
            "2026-03-02T14:00:00Z",
            json!({"name": "Ada"}),
        );
        event["subject"]["id"] = json!(subject);
        runs.extend(api.enroll(event).await);
    }
    api.settle().await;
    assert_eq!(runs.len(), 2);

    set_status(&api, "nurture", "archived").await;
    api.settle().await;
    for run in &runs {
        let view = run_view(&api, "nurture", run).await;
        assert_eq!(view["status"], "cancelled", "{view:#}");
        assert_eq!(view["outcome"], "automation archived");
    }
    api.settle_at("2026-03-02T16:00:00Z").await;
    assert!(api.embedded.email.count() == 0, "a cancelled run sends nothing");

    let put = api
        .as_acme(Method::PUT, "/api/v1/automations/nurture", Some(NURTURE))
        .await;
    put.problem(StatusCode::CONFLICT);
    let patch = api
        .as_acme(
            Method::PATCH,
            "/api/v1/automations/nurture",
            Some(r#"{"status": "active"}"#),
        )
        .await;
    patch.problem(StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_sandbox_run_sends_nothing_and_its_history_shows_what_it_would_have_sent() {
    let api = Api::new();
    let sandbox = NURTURE.replace(r#""status": "active","#, r#""status": "active", "mode": "sandbox","#);
    let created = api.as_acme(Method::POST, "/api/v1/automations", Some(&sandbox)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.body);
    let run = api
        .enroll(lead_event(
            "e1",
            "lead.created",
            "2026-03-02T14:00:00Z",
            json!({"name": "Ada"}),
        ))
        .await
        .pop()
        .expect("a sandbox automation enrolls from live events");
    api.settle().await;
    api.settle_at("2026-03-02T15:30:00Z").await;
    let view = run_view(&api, "nurture", &run).await;
    assert_eq!(view["status"], "completed", "{view:#}");
    assert_eq!(view["dry_run"], true);
    assert!(api.embedded.email.count() == 0, "no email");
    let hello = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["step_id"] == "hello")
        .unwrap();
    assert_eq!(hello["status"], "skipped", "{hello:#}");
    assert_eq!(hello["skip_reason"], "dry run");
    assert_eq!(hello["output"]["effect"]["subject"], "Hi Ada", "the rendered email");
    assert_eq!(hello["output"]["effect"]["to"], "ada@example.com");

    // Promotion: a new version in live mode sends.
    let live = sandbox.replace(r#""mode": "sandbox","#, r#""mode": "live","#);
    let put = api
        .as_acme(Method::PUT, "/api/v1/automations/nurture", Some(&live))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:#}", put.body);
    let mut bob = lead_event("e2", "lead.created", "2026-03-02T15:00:00Z", json!({"name": "Bob"}));
    bob["subject"]["id"] = json!("L2");
    let run = api.enroll(bob).await.pop().expect("enrolled");
    api.settle().await;
    api.settle_at("2026-03-02T16:30:00Z").await;
    let view = run_view(&api, "nurture", &run).await;
    assert_eq!(view["dry_run"], false);
    assert_eq!(api.embedded.email.count(), 1, "the live version sends");
}

/// A webhook, then the end.
const HOOK: &str = r#"{"id": "hook", "name": "Hook", "status": "active",
  "trigger": {"event": "lead.created"},
  "steps": [
    {"id": "notify-crm", "action": {"type": "webhook", "params": {"url": "https://crm.example.com/hook", "method": "POST"}}},
    {"id": "fin", "end": {}}
  ]}"#;

#[tokio::test]
async fn a_failed_run_is_retried_from_the_failed_step_and_completes() {
    let api = Api::new();
    api.as_acme(Method::POST, "/api/v1/automations", Some(HOOK)).await;
    api.embedded.http.script.lock().unwrap().push(400);
    let run = api
        .enroll(lead_event(
            "e1",
            "lead.created",
            "2026-03-02T14:00:00Z",
            json!({"name": "Ada"}),
        ))
        .await
        .pop()
        .expect("enrolled");
    api.settle().await;
    let failed = run_view(&api, "hook", &run).await;
    assert_eq!(failed["status"], "failed", "{failed:#}");

    let uri = format!("/api/v1/automations/hook/runs/{run}/retry");
    api.as_acme(Method::POST, &uri, Some(r#"{"resend": true}"#))
        .await
        .problem(StatusCode::BAD_REQUEST);
    api.as_acme(Method::POST, "/api/v1/automations/hook/runs/nope/retry", None)
        .await
        .problem(StatusCode::NOT_FOUND);
    let accepted = api.as_acme(Method::POST, &uri, None).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:#}", accepted.body);
    assert_eq!(accepted.body["request"], "retry");
    api.settle().await;

    let done = run_view(&api, "hook", &run).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["version"], 1, "on the version it started on");
    assert_eq!(
        steps_of(&done),
        [
            ("notify-crm", "failed"),
            ("notify-crm", "completed"),
            ("notify-crm", "completed"),
            ("fin", "completed")
        ]
        .map(|(s, t)| (s.to_owned(), t.to_owned()))
        .to_vec(),
        "both attempts, with the retry between them"
    );
    assert_eq!(done["history"][1]["type"], "retry");

    api.as_acme(Method::POST, &uri, None)
        .await
        .problem(StatusCode::CONFLICT);
}
