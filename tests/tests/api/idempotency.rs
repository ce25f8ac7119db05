use crate::support::{Api, body};
use axum::http::{Method, StatusCode};
use crmflow_api::routes;

async fn post(api: &Api, key: &str, payload: &str) -> crate::support::Reply {
    api.call_with(
        Some(&api.acme.clone()),
        Method::POST,
        "/api/v1/automations",
        Some(payload),
        &[("Idempotency-Key", key)],
    )
    .await
}

#[tokio::test]
async fn a_retried_post_returns_the_first_result_instead_of_a_second_automation() {
    let api = Api::new();
    let payload = body(None, "active");
    let first = post(&api, "retry-1", &payload).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(!first.replayed);
    let again = post(&api, "retry-1", &payload).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert!(again.replayed);
    assert_eq!(again.body, first.body);
    assert_eq!(again.location, first.location);

    let all = api.as_acme(Method::GET, "/api/v1/automations", None).await;
    assert_eq!(
        all.body["items"].as_array().unwrap().len(),
        1,
        "one automation, not two"
    );

    let other = post(&api, "retry-2", &payload).await;
    assert_eq!(other.status, StatusCode::CREATED);
    assert_ne!(other.body["id"], first.body["id"], "a new key is a new request");
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused_and_errors_are_kept_too() {
    let api = Api::new();
    post(&api, "k", &body(Some("one"), "active")).await;
    let reused = post(&api, "k", &body(Some("two"), "active")).await;
    reused.problem(StatusCode::UNPROCESSABLE_ENTITY);
    let missing = api.as_acme(Method::GET, "/api/v1/automations/two", None).await;
    missing.problem(StatusCode::NOT_FOUND);

    let invalid = r#"{"name": "x"}"#;
    post(&api, "bad", invalid).await.problem(StatusCode::BAD_REQUEST);
    let replayed = post(&api, "bad", invalid).await;
    assert!(replayed.replayed);
    replayed.problem(StatusCode::BAD_REQUEST);

    let long = "x".repeat(256);
    let errors = post(&api, &long, invalid).await.problem(StatusCode::BAD_REQUEST);
    assert_eq!(errors[0].0, "Idempotency-Key");
}

#[tokio::test]
async fn keys_are_per_tenant_and_every_post_route_honours_them() {
    let api = Api::new();
    let payload = body(None, "active");
    let acme = post(&api, "shared", &payload).await;
    let globex = api
        .call_with(
            Some(&api.globex.clone()),
            Method::POST,
            "/api/v1/automations",
            Some(&payload),
            &[("Idempotency-Key", "shared")],
        )
        .await;
    assert_eq!(globex.status, StatusCode::CREATED);
    assert!(!globex.replayed, "another tenant's key of the same name is another key");
    assert_ne!(globex.body["id"], acme.body["id"]);

    let (idempotent, safe): (Vec<_>, Vec<_>) = routes()
        .into_iter()
        .filter(|r| r.method == Method::POST)
        .partition(|r| r.is_idempotent());
    // The test route changes nothing, so it keeps no response: each call is answered afresh.
    assert_eq!(
        safe.iter().map(|r| r.path).collect::<Vec<_>>(),
        [crmflow_api::test_run::PATH]
    );
    for route in safe {
        let uri = route.path.replace("{id}", "a");
        let acme = api.acme.clone();
        let reply = api
            .call_with(
                Some(&acme),
                Method::POST,
                &uri,
                Some(&payload),
                &[("Idempotency-Key", "safe")],
            )
            .await;
        assert!(!reply.replayed, "{}", route.path);
    }
    for route in idempotent {
        let uri = route.path.replace("{id}", "a");
        let key = [("Idempotency-Key", route.path)];
        let mut replies = Vec::new();
        for _ in 0..2 {
            let acme = api.acme.clone();
            replies.push(
                api.call_with(Some(&acme), Method::POST, &uri, Some(&payload), &key)
                    .await,
            );
        }
        let [first, second] = <[_; 2]>::try_from(replies).ok().unwrap();
        assert!(!first.replayed && second.replayed, "{} replays", route.path);
        assert_eq!(
            (first.status, &first.body),
            (second.status, &second.body),
            "{}",
            route.path
        );
    }
}
