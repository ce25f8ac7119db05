use crate::support::{Api, SEED_BODY, body};
use axum::http::{Method, StatusCode};
use crmflow_api::routes;

#[tokio::test]
async fn the_seed_body_posted_verbatim_creates_an_active_automation() {
    let api = Api::new();
    let created = api.as_acme(Method::POST, "/api/v1/automations", Some(SEED_BODY)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "a body without id gets a UUID: {id}"
    );
    assert_eq!(
        created.location.as_deref(),
        Some(format!("/api/v1/automations/{id}").as_str())
    );
    assert_eq!(created.body["version"], 1);
    assert_eq!(created.body["status"], "active");
    assert_eq!(created.body["created_at"], "2026-03-02T14:00:00Z");
    assert_eq!(created.body["definition"]["tenant"], "acme");

    let got = api
        .as_acme(Method::GET, &format!("/api/v1/automations/{id}"), None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["name"], "Auto-assign high-priority cases");
    // `assign_to_queue` is the seed's name for the `assign` action.
    assert_eq!(got.body["definition"]["steps"][0]["action"]["type"], "assign");
    assert_eq!(got.body["definition"]["steps"][0]["id"], "action-1");

    let again = api.as_acme(Method::POST, "/api/v1/automations", Some(SEED_BODY)).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_ne!(
        again.body["id"], created.body["id"],
        "each POST without id is a new automation"
    );
}

#[tokio::test]
async fn invalid_bodies_get_problem_documents_naming_the_fields() {
    let api = Api::new();
    let post = |b: &'static str| api.as_acme(Method::POST, "/api/v1/automations", Some(b));

    let errors = post(r#"{"name": "x", "trigger": {"event": 5}, "actions": []}"#)
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(errors.iter().any(|(path, _)| path == "trigger.event"), "{errors:?}");

    let errors = post(
        r#"{"name": "x", "trigger": {"event": "lead.created"}, "actions": [{"type": "send_email", "params": {}}]}"#,
    )
    .await
    .problem(StatusCode::BAD_REQUEST);
    assert!(
        errors.iter().all(|(path, _)| path.starts_with("actions[0]")),
        "flat-form paths: {errors:?}"
    );
    assert!(!errors.is_empty());

    let errors = post("{not json").await.problem(StatusCode::BAD_REQUEST);
    assert_eq!(errors[0].0, "");
    assert!(errors[0].1.contains("not JSON"), "{errors:?}");

    let errors = post(r#"["a list"]"#).await.problem(StatusCode::BAD_REQUEST);
    assert!(errors[0].1.contains("object"), "{errors:?}");

    let errors = post(r#"{"name": "x", "tenant": "globex", "trigger": {"event": "lead.created"}}"#)
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(errors[0].0, "tenant");
}

#[tokio::test]
async fn a_given_id_that_exists_is_a_conflict() {
    let api = Api::new();
    let first = api
        .as_acme(
            Method::POST,
            "/api/v1/automations",
            Some(&body(Some("welcome"), "draft")),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = api
        .as_acme(
            Method::POST,
            "/api/v1/automations",
            Some(&body(Some("welcome"), "active")),
        )
        .await;
    second.problem(StatusCode::CONFLICT);
    let kept = api.as_acme(Method::GET, "/api/v1/automations/welcome", None).await;
    assert_eq!(kept.body["status"], "draft", "the conflict wrote nothing");
}

#[tokio::test]
async fn put_adds_a_version_and_keeps_the_old_one() {
    let api = Api::new();
    api.create("welcome", "active").await;
    let mut changed: serde_json::Value = serde_json::from_str(&body(None, "active")).unwrap();
    changed.as_object_mut().unwrap().remove("status");
    changed["name"] = "Welcome v2".into();
    let put = api
        .as_acme(Method::PUT, "/api/v1/automations/welcome", Some(&changed.to_string()))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:#}", put.body);
    assert_eq!(put.body["version"], 2);
    assert_eq!(put.body["status"], "active", "the status stays when the body has none");

    let versions = api
        .as_acme(Method::GET, "/api/v1/automations/welcome/versions", None)
        .await;
    let names: Vec<_> = versions
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].clone())
        .collect();
    assert_eq!(names, ["Welcome", "Welcome v2"]);
    let v1 = api
        .as_acme(Method::GET, "/api/v1/automations/welcome/versions/1", None)
        .await;
    assert_eq!(v1.body["name"], "Welcome");
    api.as_acme(Method::GET, "/api/v1/automations/welcome/versions/3", None)
        .await
        .problem(StatusCode::NOT_FOUND);
    let errors = api
        .as_acme(Method::GET, "/api/v1/automations/welcome/versions/first", None)
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(errors[0].0, "version", "the error names the parameter");

    let errors = api
        .as_acme(
            Method::PUT,
            "/api/v1/automations/welcome",
            Some(&body(Some("other"), "active")),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(errors[0].0, "id");
    api.as_acme(Method::PUT, "/api/v1/automations/missing", Some(&body(None, "active")))
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn status_changes_follow_the_lifecycle_and_archived_is_read_only() {
    let api = Api::new();
    api.as_acme(Method::POST, "/api/v1/automations", Some(&body(Some("w"), "draft")))
        .await;
    let patch = |status: &'static str| {
        api.as_acme(
            Method::PATCH,
            "/api/v1/automations/w",
            Some(Box::leak(format!(r#"{{"status": "{status}"}}"#).into_boxed_str())),
        )
    };
    patch("paused").await.problem(StatusCode::CONFLICT);
    for status in ["active", "paused", "active", "active", "archived"] {
        let reply = patch(status).await;
        assert_eq!(reply.status, StatusCode::OK, "{status}: {:#}", reply.body);
        assert_eq!(reply.body["status"], status);
        assert_eq!(reply.body["version"], 1, "a status change is not a new version");
    }
    patch("active").await.problem(StatusCode::CONFLICT);
    api.as_acme(Method::PUT, "/api/v1/automations/w", Some(&body(None, "active")))
        .await
        .problem(StatusCode::CONFLICT);
    let errors = api
        .as_acme(Method::PATCH, "/api/v1/automations/w", Some(r#"{"status": "running"}"#))
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(errors[0].0, "status");
}

#[tokio::test]
async fn the_list_pages_with_a_cursor_and_filters_by_status() {
    let api = Api::new();
    for (id, status) in [
        ("a", "active"),
        ("b", "draft"),
        ("c", "active"),
        ("d", "active"),
        ("e", "paused"),
    ] {
        let status = if status == "paused" { "active" } else { status };
        api.as_acme(Method::POST, "/api/v1/automations", Some(&body(Some(id), status)))
            .await;
    }
    api.as_acme(Method::PATCH, "/api/v1/automations/e", Some(r#"{"status": "paused"}"#))
        .await;

    let mut seen = Vec::new();
    let mut uri = "/api/v1/automations?status=active&limit=2".to_owned();
    loop {
        let page = api.as_acme(Method::GET, &uri, None).await;
        assert_eq!(page.status, StatusCode::OK, "{:#}", page.body);
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/v1/automations?status=active&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "c", "d"]);

    let all = api.as_acme(Method::GET, "/api/v1/automations", None).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 5);
    for bad in ["limit=0", "limit=201", "limit=x", "status=running", "colour=red"] {
        let errors = api
            .as_acme(Method::GET, &format!("/api/v1/automations?{bad}"), None)
            .await
            .problem(StatusCode::BAD_REQUEST);
        let field = bad.split_once('=').unwrap().0;
        assert_eq!(errors.len(), 1, "{bad}");
        assert_eq!(errors[0].0, field, "{bad}: the error names the parameter");
    }
}

#[tokio::test]
async fn every_route_needs_a_key_and_unknown_routes_are_problems() {
    let api = Api::new();
    for route in routes() {
        let uri = route
            .path
            .replace("{id}", "a")
            .replace("{version}", "1")
            .replace("{run_id}", "r");
        let reply = api.call(None, route.method.clone(), &uri, Some("{}")).await;
        if route.is_public() {
            // Public by design (the OpenAPI document): it answers without a key.
            assert_eq!(reply.status, StatusCode::OK, "{}", route.path);
            continue;
        }
        reply.problem(StatusCode::UNAUTHORIZED);
        let reply = api
            .call(Some("cfk_not-a-key"), route.method.clone(), &uri, Some("{}"))
            .await;
        reply.problem(StatusCode::UNAUTHORIZED);
    }
    api.as_acme(Method::GET, "/api/v2/nothing", None)
        .await
        .problem(StatusCode::NOT_FOUND);
    api.as_acme(Method::DELETE, "/api/v1/automations", None)
        .await
        .problem(StatusCode::METHOD_NOT_ALLOWED);
    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(3 << 20));
    api.as_acme(Method::POST, "/api/v1/automations", Some(&huge))
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
}

/// Every route of the table, called with another tenant's key on acme's automation: nothing of
/// it is seen or changed, and routes naming it answer 404 (never 403).
#[tokio::test]
async fn tenants_are_isolated_on_every_route() {
    let api = Api::new();
    api.create("secret", "active").await;
    let run = api
        .enroll(
            serde_json::json!({"id": "e1", "type": "contact.created", "tenant": "acme",
                                  "time": "2026-03-02T14:00:00Z", "subject": {"type": "contact", "id": "C1"}}),
        )
        .await
        .pop()
        .expect("acme's automation enrolls the contact");
    let globex = api.globex.clone();
    for route in routes() {
        let uri = route
            .path
            .replace("{id}", "secret")
            .replace("{version}", "1")
            .replace("{run_id}", &run);
        let payload = match route.method {
            Method::PATCH => r#"{"status": "paused"}"#.to_owned(),
            Method::POST if route.path.ends_with("complete-task") => r#"{"output": {}}"#.to_owned(),
            Method::POST if route.path.ends_with("/retry") => r#"{"resend_uncertain": false}"#.to_owned(),
            Method::POST if route.path == "/api/v1/events" => {
                r#"{"id": "g1", "type": "contact.created", "time": "2026-03-02T14:00:00Z", "subject": "contact/C9"}"#
                    .to_owned()
            }
            Method::POST => body(None, "active"),
            _ => body(Some("secret"), "active"),
        };
        let reply = api
            .call(Some(&globex), route.method.clone(), &uri, Some(&payload))
            .await;
        if route.is_public() {
            // A public route answers the same to every tenant, and to no key at all: nothing in
            // it depends on who asks.
            assert!(
                !route.path.contains('{'),
                "{}: a public route names nothing",
                route.path
            );
            let anonymous = api.call(None, route.method.clone(), &uri, None).await;
            let acme = api.as_acme(route.method.clone(), &uri, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", route.path);
            assert_eq!(
                (&reply.body, &acme.body),
                (&anonymous.body, &anonymous.body),
                "{}",
                route.path
            );
        } else if route.path.contains("{id}") {
            // Every route naming acme's automation or run answers as if neither existed.
            reply.problem(StatusCode::NOT_FOUND);
        } else if route.method == Method::GET {
            assert_eq!(reply.status, StatusCode::OK);
            assert!(
                !reply.body.to_string().contains("secret"),
                "{} leaks: {:#}",
                route.path,
                reply.body
            );
        } else if route.path == "/api/v1/events" {
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}: {:#}", route.path, reply.body);
            assert_eq!(reply.body["tenant"], "globex");
        } else {
            assert_eq!(reply.status, StatusCode::CREATED, "{}: {:#}", route.path, reply.body);
            assert_eq!(reply.body["definition"]["tenant"], "globex");
        }
    }
    let versions = api
        .as_acme(Method::GET, "/api/v1/automations/secret/versions", None)
        .await;
    assert_eq!(
        versions.body.as_array().unwrap().len(),
        1,
        "acme's automation is untouched"
    );
    assert_eq!(versions.body[0]["status"], "active");
}
