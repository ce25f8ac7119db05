//! The OpenAPI document: served, committed, and in step with the router both ways.

use crate::support::Api;
use axum::http::{Method, StatusCode};
use crmflow_api::openapi::{self, path_parameter_names};
use crmflow_api::routes;
use serde_json::Value;

/// The document as `docs/openapi.json` holds it (pretty-printed, with a final newline, as
/// `crmflow openapi` prints it).
fn generated() -> String {
    format!("{}\n", serde_json::to_string_pretty(&openapi::document()).unwrap())
}

#[test]
fn the_committed_document_is_what_the_code_generates() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated(),
        "docs/openapi.json is not what the code generates; regenerate it with\n    \
         cargo run -q -p crmflow-cli -- openapi > docs/openapi.json"
    );
}

#[tokio::test]
async fn the_document_is_served_without_a_key() {
    let api = Api::new();
    let reply = api.call(None, Method::GET, openapi::PATH, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.content_type.starts_with("application/json"),
        "{}",
        reply.content_type
    );
    assert_eq!(reply.body, openapi::document());
    assert_eq!(reply.body["openapi"], "3.1.0");
}

/// The document's (path, method) pairs.
fn documented() -> Vec<(String, Method)> {
    let document = openapi::document();
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.push((
                path.clone(),
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn every_route_is_in_the_document_with_its_parameters() {
    let document = openapi::document();
    for route in routes() {
        let operation = &document["paths"][route.path][route.method.as_str().to_lowercase()];
        assert!(
            operation.is_object(),
            "{} {} is not documented",
            route.method,
            route.path
        );
        let path_parameters: Vec<&str> = operation["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(path_parameters, path_parameter_names(route.path), "{}", route.path);
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{}: no success",
            route.path
        );
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                    "{} {status}",
                    route.path
                );
            }
        }
        let secured = operation.get("security") != Some(&serde_json::json!([]));
        assert_eq!(secured, !route.is_public(), "{}", route.path);
        assert_eq!(secured, responses.contains_key("401"), "{}", route.path);
        if route.method == Method::POST {
            let names: Vec<&Value> = operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| &p["name"])
                .collect();
            assert_eq!(
                names.contains(&&Value::from("Idempotency-Key")),
                route.is_idempotent(),
                "{}",
                route.path
            );
        }
    }
    assert_eq!(documented().len(), routes().len(), "one operation per route");
}

/// Every (path, method) of the document reaches a handler of the router: never the router's
/// own 404 ("no such route") or 405.
#[tokio::test]
async fn every_documented_operation_exists_in_the_router() {
    let api = Api::new();
    for (path, method) in documented() {
        let uri = path
            .replace("{id}", "a")
            .replace("{version}", "1")
            .replace("{run_id}", "r");
        let reply = api.as_acme(method.clone(), &uri, Some("{}")).await;
        assert_ne!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(reply.body["detail"], "no such route", "{method} {path}");
    }
    let reply = api.as_acme(Method::GET, "/api/v1/nothing", None).await;
    assert_eq!(
        reply.body["detail"], "no such route",
        "the router's own 404 is told apart"
    );
}
