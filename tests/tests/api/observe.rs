//! What the API tells about an automation after the fact: why a record did or did not enroll
//! (trigger evaluations), per-step statistics with goal conversion, and the audit log of writes.

use crate::support::Api;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

/// High-value leads: a required goal (the lead converts within a day), then a thank-you.
const HIGH_VALUE: &str = r#"{"id": "high-value", "name": "High value", "status": "active",
  "trigger": {"event": "lead.created", "conditions": {"field": "record.value", "op": "greater_than", "value": 1000}},
  "steps": [
    {"id": "converted", "goal": {"event": "lead.converted", "required": true, "timeout": "1d"}},
    {"id": "thanks", "action": {"type": "send_email", "params": {"subject": "Thanks", "text": "Welcome aboard"}}}
  ]}"#;

fn lead(id: &str, event_type: &str, record: &str, time: &str, value: i64) -> Value {
    json!({"id": id, "type": event_type, "time": time,
           "subject": {"type": "lead", "id": record, "contact_id": format!("C-{record}")},
           "contact": {"email": format!("{record}@example.com")}, "data": {"value": value}})
}

async fn post_event(api: &Api, event: Value) {
    let reply = api
        .as_acme(Method::POST, "/api/v1/events", Some(&event.to_string()))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:#}", reply.body);
}

#[tokio::test]
async fn trigger_evaluations_say_why_a_record_did_or_did_not_enroll() {
    let api = Api::new();
    api.as_acme(Method::POST, "/api/v1/automations", Some(HIGH_VALUE)).await;
    post_event(&api, lead("e1", "lead.created", "L1", "2026-03-02T14:00:00Z", 300)).await;
    api.settle().await;
    post_event(&api, lead("e2", "lead.created", "L1", "2026-03-02T14:05:00Z", 5000)).await;
    post_event(&api, lead("e3", "lead.created", "L1", "2026-03-02T14:06:00Z", 7000)).await;
    api.settle().await;

    let reply = api
        .as_acme(
            Method::GET,
            "/api/v1/automations/high-value/evaluations?subject=lead/L1",
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    let items = reply.body["items"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = items
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [("e3", "not_enrolled"), ("e2", "enrolled"), ("e1", "not_matched")],
        "newest first"
    );
    let reason = |i: usize| items[i]["reason"].as_str().unwrap().to_owned();
    let run = items[1]["run_id"].as_str().unwrap();
    let detail = api
        .as_acme(Method::GET, &format!("/api/v1/automations/high-value/runs/{run}"), None)
        .await;
    assert_eq!(
        detail.body["trigger"]["event_id"], "e2",
        "the run shows its trigger evaluation"
    );
    let why = detail.body["trigger"]["reason"].as_str().unwrap();
    assert!(
        why.starts_with("enrolled; trigger.conditions: ") && why.contains("record.value"),
        "the trigger condition's result: {why}"
    );
    assert!(
        reason(2).contains("record.value"),
        "the condition result: {}",
        reason(2)
    );
    assert!(items[1]["run_id"].is_string());
    assert!(!reason(0).is_empty(), "the enrollment policy's reason");

    api.as_acme(Method::GET, "/api/v1/automations/high-value/evaluations", None)
        .await
        .problem(StatusCode::BAD_REQUEST);
    let other = api
        .as_acme(
            Method::GET,
            "/api/v1/automations/high-value/evaluations?subject=lead/L2",
            None,
        )
        .await;
    assert_eq!(other.body["items"], json!([]));
}

#[tokio::test]
async fn stats_count_enrollments_steps_waiting_runs_and_goal_conversion() {
    let api = Api::new();
    api.as_acme(Method::POST, "/api/v1/automations", Some(HIGH_VALUE)).await;
    for record in ["L1", "L2", "L3"] {
        post_event(
            &api,
            lead(
                &format!("c-{record}"),
                "lead.created",
                record,
                "2026-03-02T14:00:00Z",
                5000,
            ),
        )
        .await;
    }
    api.settle().await;
    post_event(&api, lead("v-L1", "lead.converted", "L1", "2026-03-02T15:00:00Z", 5000)).await;
    api.settle_at("2026-03-02T15:00:00Z").await;

    let stats = api
        .as_acme(Method::GET, "/api/v1/automations/high-value/stats", None)
        .await;
    assert_eq!(stats.status, StatusCode::OK, "{:#}", stats.body);
    let body = &stats.body;
    assert_eq!(body["enrollments"], 3);
    assert_eq!(body["complete"], true);
    assert_eq!(body["by_status"], json!({"completed": 1, "waiting": 2}));
    let step = |id: &str| {
        body["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no step {id}: {body:#}"))
    };
    let goal = step("converted");
    assert_eq!(
        (
            goal["entered"].as_u64(),
            goal["completed"].as_u64(),
            goal["waiting_now"].as_u64()
        ),
        (Some(3), Some(1), Some(2))
    );
    assert_eq!(step("thanks")["completed"], 1);
    assert_eq!(
        body["goals"],
        json!([{"step_id": "converted", "entered": 3, "converted": 1, "conversion_rate": 1.0 / 3.0}])
    );

    // A day later the two others time out: still entered, not converted.
    api.settle_at("2026-03-03T15:00:00Z").await;
    let later = api
        .as_acme(Method::GET, "/api/v1/automations/high-value/stats?runs=2", None)
        .await;
    assert_eq!(later.body["runs_counted"], 2);
    assert_eq!(later.body["complete"], false, "three runs, two counted");
    api.as_acme(Method::GET, "/api/v1/automations/high-value/stats?runs=0", None)
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_audit_log_has_every_write_with_who_what_before_and_after() {
    let api = Api::new();
    api.as_acme(Method::POST, "/api/v1/automations", Some(HIGH_VALUE)).await;
    let paused = api
        .as_acme(
            Method::PATCH,
            "/api/v1/automations/high-value",
            Some(r#"{"status": "paused"}"#),
        )
        .await;
    assert_eq!(paused.status, StatusCode::OK);
    post_event(&api, lead("e1", "lead.created", "L1", "2026-03-02T14:00:00Z", 5000)).await;
    // A read is not audited; a refused write is not either.
    api.as_acme(Method::GET, "/api/v1/automations", None).await;
    api.as_acme(
        Method::PATCH,
        "/api/v1/automations/high-value",
        Some(r#"{"status": "draft"}"#),
    )
    .await
    .problem(StatusCode::CONFLICT);

    let log = api.as_acme(Method::GET, "/api/v1/audit?limit=2", None).await;
    assert_eq!(log.status, StatusCode::OK, "{:#}", log.body);
    let actions: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["event.post", "automation.status"], "newest first");
    let status = &log.body["items"][1];
    assert_eq!(status["target"], "automations/high-value");
    assert_eq!(status["before"], json!({"status": "active"}));
    assert_eq!(status["after"], json!({"status": "paused"}));
    let credential = status["credential"].as_str().unwrap();
    assert!(credential.starts_with("key_"), "the key's id: {credential}");
    assert!(
        !log.body.to_string().contains(&api.acme),
        "the log names the key's id, never the key"
    );

    let cursor = log.body["next_cursor"].as_str().unwrap();
    let rest = api
        .as_acme(Method::GET, &format!("/api/v1/audit?cursor={cursor}"), None)
        .await;
    let rest: Vec<&str> = rest.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["automation.create"]);

    let theirs = api
        .call(Some(&api.globex.clone()), Method::GET, "/api/v1/audit", None)
        .await;
    assert_eq!(theirs.body["items"], json!([]), "another tenant's log is its own");
}
