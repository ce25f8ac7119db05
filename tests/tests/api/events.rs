use crate::support::Api;
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_posted_event_is_queued_in_the_key_s_tenant_and_enrolls_there() {
    let api = Api::new();
    api.create("welcome", "active").await;
    // CloudEvents 1.0, structured mode, without a tenant: the key's tenant is taken.
    let cloud_event = json!({"specversion": "1.0", "id": "ce-1", "source": "crm", "type": "contact.created",
                             "time": "2026-03-02T14:00:00Z", "subject": "contact/C1", "data": {}});
    let reply = api
        .as_acme(Method::POST, "/api/v1/events", Some(&cloud_event.to_string()))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:#}", reply.body);
    assert_eq!(
        reply.body,
        json!({"event_id": "ce-1", "type": "contact.created", "tenant": "acme"})
    );

    let event = api.events.pop().expect("queued for intake");
    assert_eq!(event.tenant, "acme");
    let runs = api.enroll_event(event).await;
    assert_eq!(runs.len(), 1);
    let listed = api.as_acme(Method::GET, "/api/v1/automations/welcome/runs", None).await;
    assert_eq!(listed.body["items"][0]["id"], runs[0].as_str());
}

#[tokio::test]
async fn invalid_events_and_foreign_tenants_are_refused_with_the_field() {
    let api = Api::new();
    let api = &api;
    let post = |b: String| async move { api.as_acme(Method::POST, "/api/v1/events", Some(&b)).await };
    let errors = post(json!({"id": "e1", "type": "lead.created", "time": "2026-03-02T14:00:00Z"}).to_string())
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(errors[0].0.contains("subject"), "{errors:?}");
    let errors = post(
        json!({"id": "e1", "type": "lead.created", "tenant": "globex", "time": "2026-03-02T14:00:00Z",
               "subject": "lead/L1"})
        .to_string(),
    )
    .await
    .problem(StatusCode::BAD_REQUEST);
    assert_eq!(errors[0].0, "tenant");
    let errors = post("{".to_owned()).await.problem(StatusCode::BAD_REQUEST);
    assert_eq!(errors[0].0, "");
    assert!(api.events.pop().is_none(), "nothing invalid was queued");
}
