use crate::support::Api;
use axum::http::{Method, StatusCode};
use serde_json::json;

/// A human task, then a branch on its output; both ways end the run with a reason.
const APPROVAL: &str = r#"{"id": "approval", "name": "Approval", "status": "active",
  "trigger": {"event": "opportunity.created"},
  "steps": [
    {"id": "review", "human_task": {"title": "Approve?"}},
    {"id": "approved?", "branch": {
      "if": {"field": "steps.review.output.approved", "op": "equals", "value": true},
      "then": [{"id": "yes", "end": {"reason": "approved"}}],
      "else": [{"id": "no", "end": {"reason": "rejected"}}]}}
  ]}"#;

/// acme's approval automation with one run waiting on its task.
async fn waiting_run(api: &Api, record: &str) -> String {
    let created = api.as_acme(Method::POST, "/api/v1/automations", Some(APPROVAL)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.body);
    let run = api
        .enroll(
            json!({"id": format!("e-{record}"), "type": "opportunity.created", "tenant": "acme",
                       "time": "2026-03-02T14:00:00Z", "subject": {"type": "opportunity", "id": record}}),
        )
        .await
        .pop()
        .expect("the event enrolls the opportunity");
    api.evaluate_queued().await;
    run
}

async fn run_view(api: &Api, run: &str) -> serde_json::Value {
    api.as_acme(Method::GET, &format!("/api/v1/automations/approval/runs/{run}"), None)
        .await
        .body
}

#[tokio::test]
async fn a_completed_task_s_output_drives_the_branch_after_it() {
    for (approved, outcome) in [(true, "approved"), (false, "rejected")] {
        let api = Api::new();
        let run = waiting_run(&api, "O1").await;
        assert_eq!(run_view(&api, &run).await["status"], "waiting");
        let uri = format!("/api/v1/automations/approval/runs/{run}/complete-task");
        let body = json!({"output": {"approved": approved, "notes": "Looks good"}}).to_string();
        let accepted = api.as_acme(Method::POST, &uri, Some(&body)).await;
        assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:#}", accepted.body);
        assert_eq!(accepted.body["task_id"], "review");
        assert_eq!(
            api.evaluate_queued().await,
            1,
            "the completion was queued for the engine"
        );

        let view = run_view(&api, &run).await;
        assert_eq!(view["status"], "completed", "{view:#}");
        assert!(view["outcome"].as_str().unwrap().contains(outcome), "{view:#}");
        let review = view["history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["step_id"] == "review")
            .unwrap();
        assert_eq!(review["output"]["notes"], "Looks good", "{review:#}");

        let again = api.as_acme(Method::POST, &uri, Some(&body)).await;
        again.problem(StatusCode::CONFLICT);
    }
}

#[tokio::test]
async fn complete_task_refuses_unknown_runs_other_tasks_and_bad_bodies() {
    let api = Api::new();
    let run = waiting_run(&api, "O2").await;
    let uri = format!("/api/v1/automations/approval/runs/{run}/complete-task");
    api.as_acme(
        Method::POST,
        "/api/v1/automations/approval/runs/nope/complete-task",
        Some(r#"{"output": {}}"#),
    )
    .await
    .problem(StatusCode::NOT_FOUND);
    api.as_acme(Method::POST, &uri, Some(r#"{"output": {}, "task_id": "other"}"#))
        .await
        .problem(StatusCode::CONFLICT);
    for bad in [r#"{"approved": true}"#, r#"{"output": 5}"#, "not json"] {
        let errors = api
            .as_acme(Method::POST, &uri, Some(bad))
            .await
            .problem(StatusCode::BAD_REQUEST);
        assert_eq!(errors[0].0, "output", "{bad}");
    }
    let named = api
        .as_acme(
            Method::POST,
            &uri,
            Some(r#"{"output": {"approved": true}, "task_id": "review"}"#),
        )
        .await;
    assert_eq!(named.status, StatusCode::ACCEPTED);
    assert_eq!(api.evaluate_queued().await, 1);
}

#[tokio::test]
async fn cancel_ends_a_run_and_says_who_did_it() {
    let api = Api::new();
    let run = waiting_run(&api, "O3").await;
    let uri = format!("/api/v1/automations/approval/runs/{run}/cancel");
    let accepted = api.as_acme(Method::POST, &uri, None).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:#}", accepted.body);
    api.evaluate_queued().await;
    let view = run_view(&api, &run).await;
    assert_eq!(view["status"], "cancelled", "{view:#}");
    assert!(view["outcome"].as_str().unwrap().contains("key_"), "{view:#}");
    api.as_acme(Method::POST, &uri, None)
        .await
        .problem(StatusCode::CONFLICT);
    api.as_acme(
        Method::POST,
        &format!("/api/v1/automations/approval/runs/{run}/complete-task"),
        Some(r#"{"output": {}}"#),
    )
    .await
    .problem(StatusCode::CONFLICT);
}
