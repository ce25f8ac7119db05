//! Enrolling a record by hand, and test runs of a draft.

use crate::support::Api;
use axum::http::{Method, StatusCode};
use serde_json::json;

/// A draft: a branch on the lead's score, an email to the hot ones, a day's wait.
const SCORING: &str = r#"{"id": "scoring", "name": "Scoring", "status": "draft",
  "trigger": {"event": "lead.created", "conditions": {"source": "web"}},
  "steps": [
    {"id": "hot?", "branch": {
      "if": {"field": "record.score", "op": "greater_than", "value": 50},
      "then": [{"id": "hello", "action": {"type": "send_email", "params": {"subject": "Hi {{ contact.first_name }}", "text": "Hot lead"}}}],
      "else": [{"id": "cold", "end": {"reason": "cold"}}]}},
    {"id": "later", "wait": {"duration": "1d"}},
    {"id": "fin", "end": {}}
  ]}"#;

#[tokio::test]
async fn a_test_run_returns_the_timeline_of_a_draft_and_performs_nothing() {
    let api = Api::new();
    let created = api.as_acme(Method::POST, "/api/v1/automations", Some(SCORING)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.body);
    let body = json!({
        "event": {"id": "t1", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
                  "subject": {"type": "lead", "id": "L1", "contact_id": "C1"},
                  "data": {"source": "web", "score": 80}},
        "contact": {"email": "ada@example.com", "first_name": "Ada"}
    })
    .to_string();
    let reply = api
        .as_acme(Method::POST, "/api/v1/automations/scoring/test", Some(&body))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.body["version"], 1);
    let run = &reply.body["runs"][0];
    assert_eq!(run["status"], "completed", "waits are fast-forwarded: {run:#}");
    let steps: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step_id"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["hot?", "hello", "later", "fin"]);
    assert!(
        run["steps"][0]["detail"].as_str().unwrap().contains("score"),
        "the branch says why: {:#}",
        run["steps"][0]
    );
    assert_eq!(api.embedded.email.count(), 0, "nothing is performed");
    let listed = api.as_acme(Method::GET, "/api/v1/automations/scoring/runs", None).await;
    assert_eq!(listed.body["items"], json!([]), "nothing is stored");

    // An event the trigger conditions refuse starts no run.
    let cold = body.replace(r#""source":"web""#, r#""source":"fair""#);
    let reply = api
        .as_acme(Method::POST, "/api/v1/automations/scoring/test", Some(&cold))
        .await;
    assert_eq!(reply.body["runs"], json!([]), "{:#}", reply.body);

    // Bad input names the field.
    let bad = json!({"event": {"id": "t2", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
                               "subject": {"type": "lead"}}})
    .to_string();
    let errors = api
        .as_acme(Method::POST, "/api/v1/automations/scoring/test", Some(&bad))
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(errors[0].0, "event.subject.id", "{errors:?}");
    api.as_acme(
        Method::POST,
        "/api/v1/automations/scoring/test",
        Some(&json!({"event": {}, "version": 9}).to_string()),
    )
    .await
    .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_record_is_enrolled_by_hand_under_the_enrollment_policy() {
    let api = Api::new();
    api.as_acme(Method::POST, "/api/v1/automations", Some(SCORING)).await;
    let uri = "/api/v1/automations/scoring/enroll";
    let body = json!({"subject": {"type": "lead", "id": "L7", "contact_id": "C7"},
                      "data": {"score": 90}, "contact": {"email": "bo@example.com", "first_name": "Bo"}})
    .to_string();
    api.as_acme(Method::POST, uri, Some(&body))
        .await
        .problem(StatusCode::CONFLICT);

    let activate = api
        .as_acme(
            Method::PATCH,
            "/api/v1/automations/scoring",
            Some(r#"{"status": "active"}"#),
        )
        .await;
    assert_eq!(activate.status, StatusCode::OK);
    let enrolled = api.as_acme(Method::POST, uri, Some(&body)).await;
    assert_eq!(enrolled.status, StatusCode::CREATED, "{:#}", enrolled.body);
    let run = enrolled.body["run_id"].as_str().unwrap().to_owned();
    api.settle().await;
    let view = api
        .as_acme(Method::GET, &format!("/api/v1/automations/scoring/runs/{run}"), None)
        .await;
    assert_eq!(view.body["status"], "waiting", "{:#}", view.body);
    assert_eq!(view.body["subject"]["id"], "L7");
    assert_eq!(api.embedded.email.count(), 1, "the hot lead got the email");

    // The default policy enrolls a record once at a time.
    let again = api.as_acme(Method::POST, uri, Some(&body)).await;
    let _ = again.problem(StatusCode::CONFLICT);
    assert!(
        again.body["detail"].as_str().unwrap().contains("does not enroll"),
        "{:#}",
        again.body
    );
    let errors = api
        .as_acme(Method::POST, uri, Some(r#"{"subject": {"type": "lead"}}"#))
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(errors[0].0, "subject.id", "{errors:?}");
}
