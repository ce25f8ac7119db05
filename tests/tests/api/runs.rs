use crate::support::Api;
use axum::http::{Method, StatusCode};
use serde_json::json;

fn lead_created(id: &str, tenant: &str, time: &str) -> serde_json::Value {
    json!({"id": id, "type": "contact.created", "tenant": tenant, "time": time,
           "subject": {"type": "contact", "id": format!("C-{id}")}, "data": {}})
}

/// acme's `welcome` (active), with a run per event time given, oldest first.
async fn with_runs(api: &Api, times: &[&str]) -> Vec<String> {
    api.create("welcome", "active").await;
    let mut runs = Vec::new();
    for (i, time) in times.iter().enumerate() {
        runs.extend(api.enroll(lead_created(&format!("e{i}"), "acme", time)).await);
    }
    assert_eq!(runs.len(), times.len(), "every event starts a run");
    runs
}

#[tokio::test]
async fn runs_are_listed_newest_first_with_filters_and_a_cursor() {
    let api = Api::new();
    let times = ["2026-03-01T09:00:00Z", "2026-03-02T09:00:00Z", "2026-03-03T09:00:00Z"];
    let runs = with_runs(&api, &times).await;

    let page = api
        .as_acme(Method::GET, "/api/v1/automations/welcome/runs?limit=2", None)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{:#}", page.body);
    let items = page.body["items"].as_array().unwrap();
    let ids: Vec<_> = items.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, [runs[2].clone(), runs[1].clone()]);
    let first = &items[0];
    assert_eq!(first["automation_id"], "welcome");
    assert_eq!(first["version"], 1);
    assert_eq!(first["subject"], json!({"type": "contact", "id": "C-e2"}));
    assert_eq!(first["started_at"], "2026-03-03T09:00:00Z");
    assert!(
        first["status"].is_string() && first["duration_ms"].is_null(),
        "{first:#}"
    );

    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = api
        .as_acme(
            Method::GET,
            &format!("/api/v1/automations/welcome/runs?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(next.body["items"][0]["id"], runs[0].as_str());
    assert!(next.body["next_cursor"].is_null());

    let window = api
        .as_acme(
            Method::GET,
            "/api/v1/automations/welcome/runs?started_from=2026-03-02T00:00:00Z&started_before=2026-03-03T00:00:00Z",
            None,
        )
        .await;
    let ids: Vec<_> = window.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!(runs[1])]);
    let done = api
        .as_acme(Method::GET, "/api/v1/automations/welcome/runs?status=completed", None)
        .await;
    assert_eq!(done.body["items"], json!([]));

    for bad in ["status=done", "started_from=yesterday", "limit=0"] {
        api.as_acme(Method::GET, &format!("/api/v1/automations/welcome/runs?{bad}"), None)
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    api.as_acme(Method::GET, "/api/v1/automations/nothing/runs", None)
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_run_comes_with_its_history_and_only_under_its_automation_and_tenant() {
    let api = Api::new();
    let runs = with_runs(&api, &["2026-03-01T09:00:00Z"]).await;
    let uri = format!("/api/v1/automations/welcome/runs/{}", runs[0]);
    let run = api.as_acme(Method::GET, &uri, None).await;
    assert_eq!(run.status, StatusCode::OK, "{:#}", run.body);
    assert_eq!(run.body["id"], runs[0].as_str());
    assert!(run.body["history"].is_array(), "{:#}", run.body);

    api.create("other", "active").await;
    api.as_acme(
        Method::GET,
        &format!("/api/v1/automations/other/runs/{}", runs[0]),
        None,
    )
    .await
    .problem(StatusCode::NOT_FOUND);
    api.as_acme(Method::GET, "/api/v1/automations/welcome/runs/not-a-run", None)
        .await
        .problem(StatusCode::NOT_FOUND);
    let globex = api.globex.clone();
    api.call(Some(&globex), Method::GET, &uri, None)
        .await
        .problem(StatusCode::NOT_FOUND);
}
