//! The api function against a local AWS emulator: its adapters (the SQS events queue, the
//! DynamoDB API keys), `crmflow api-keys`, and the function end to end, wired as the Lambda
//! wires it (`crmflow_aws::lambda::api::{state, handler}` from the function's configuration)
//! and driven with API Gateway HTTP API (payload 2.0) requests through `lambda_http`, as the
//! Lambda runtime hands them over.
//!
//! ```sh
//! eval "$(scripts/moto.sh start)"
//! cargo test -p crmflow-tests --test aws -- api::
//! scripts/moto.sh stop
//! ```
//!
//! Without `AWS_ENDPOINT_URL` each test prints "skipped: ..." and returns, unless
//! `CRMFLOW_REQUIRE_LOCAL_AWS=1` (the test scripts set it), which makes that a failure.

use aws_sdk_sqs::types::Message;
use crmflow_api::auth::{digest, new_key};
use crmflow_aws::dynamodb::{DynamoStore, Revocation};
use crmflow_aws::lambda::permissions::{actions_for_operation, required};
use crmflow_aws::lambda::{FunctionConfig, FunctionName, api, simulate};
use crmflow_aws::request_counter::RequestCounter;
use crmflow_aws::sdk::sqs_client;
use crmflow_aws::sqs::SqsEventQueue;
use crmflow_core::event::{Event, Subject, parse_event};
use crmflow_core::ports::{ApiKeyStore, AutomationCatalog, Credential, EventQueue, StoreError};
use crmflow_tests::local_aws::{LocalDeployment, LocalResources, SAMPLE_API_KEY, SAMPLE_API_KEY_ID};
use lambda_http::Service;
use lambda_http::request::LambdaRequest;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The seed API's body (`POST /api/v1/automations`), byte for byte.
const SEED_BODY: &str = include_str!("../../data/definitions/valid/seed-api-body.json");

/// Every message on a queue (waiting briefly for the first).
async fn drain(sdk: &aws_config::SdkConfig, url: &str) -> Vec<Message> {
    let sqs = sqs_client(sdk, None);
    let mut out = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(if out.is_empty() { 1 } else { 0 })
            .message_attribute_names("All")
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in &messages {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
        }
        out.extend(messages);
    }
}

fn tenant_attribute(m: &Message) -> Option<String> {
    m.message_attributes()?.get("tenant")?.string_value().map(str::to_owned)
}

#[tokio::test]
async fn the_events_queue_adapter_sends_the_native_envelope_intake_parses() {
    let Some(LocalDeployment { sdk, resources, .. }) = LocalDeployment::create("api-events-queue").await else {
        return;
    };
    let queue = SqsEventQueue::new(&sdk, None, &resources.events_queue_url);
    let event = Event {
        id: "evt-api-1".into(),
        event_type: "case.created".into(),
        tenant: "acme".into(),
        time: "2026-11-30T01:00:00Z".parse().unwrap(),
        subject: Subject {
            record_type: "case".into(),
            id: "K1".into(),
            contact_id: Some("C1".into()),
        },
        data: serde_json::from_value(json!({"priority": "critical"})).unwrap(),
        previous: None,
        contact: serde_json::from_value(json!({"email": "ada@example.com"})).ok(),
    };
    queue.send_event(&event).await.expect("send_event");
    let messages = drain(&sdk, &resources.events_queue_url).await;
    assert_eq!(messages.len(), 1);
    let body: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    let (parsed, format) = parse_event(&body).expect("intake parses what the api sends");
    assert_eq!(parsed, event);
    assert_eq!(format.to_string(), "native");
    assert_eq!(tenant_attribute(&messages[0]).as_deref(), Some("acme"));
}

#[tokio::test]
async fn api_keys_are_stored_as_digests_found_by_one_get_item_and_revoked() {
    let Some(LocalDeployment { sdk, resources, .. }) = LocalDeployment::create("api-keys-store").await else {
        return;
    };
    let counter = RequestCounter::new();
    let store = DynamoStore::new(&sdk, Some(&counter), &resources.table, 30);
    let (key, id) = new_key();
    let credential = Credential {
        id: id.clone(),
        tenant: "acme".into(),
    };
    let now = "2026-11-30T01:00:00Z".parse().unwrap();
    store.put_api_key(&digest(&key), &credential, now).await.expect("put");
    // The same digest again is a conflict, and a key in place of its digest is refused.
    let again = store.put_api_key(&digest(&key), &credential, now).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(store.put_api_key(&key, &credential, now).await.is_err());

    counter.reset();
    assert_eq!(store.credential(&digest(&key)).await.unwrap(), Some(credential.clone()));
    assert_eq!(
        counter.snapshot().into_keys().collect::<Vec<_>>(),
        [("DynamoDB".to_string(), "GetItem".to_string())]
    );
    assert_eq!(counter.total(), 1, "one GetItem by digest, no scan");
    assert_eq!(store.credential(&digest("cfk_unknown")).await.unwrap(), None);

    let listed = store.list_api_keys("acme").await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].key_id.as_str(), listed[0].revoked), (id.as_str(), false));
    assert_eq!(listed[0].digest, digest(&key));
    assert!(store.list_api_keys("globex").await.unwrap().is_empty());
    // Another tenant cannot revoke it.
    assert_eq!(
        store.revoke_api_key("globex", &id, now).await.unwrap(),
        Revocation::NotFound
    );

    assert_eq!(
        store.revoke_api_key("acme", &id, now).await.unwrap(),
        Revocation::Revoked
    );
    assert_eq!(store.credential(&digest(&key)).await.unwrap(), None);
    assert_eq!(
        store.revoke_api_key("acme", &id, now).await.unwrap(),
        Revocation::AlreadyRevoked
    );
    let listed = store.list_api_keys("acme").await.unwrap();
    assert!(listed[0].revoked && listed[0].revoked_at.is_some(), "{listed:?}");
    assert_key_stored_only_as_digest(&sdk, &resources, &key).await;
}

/// No attribute of any item in the table holds the key itself.
async fn assert_key_stored_only_as_digest(sdk: &aws_config::SdkConfig, resources: &LocalResources, key: &str) {
    let scan = crmflow_aws::sdk::dynamodb_client(sdk, None)
        .scan()
        .table_name(&resources.table)
        .send()
        .await
        .expect("Scan (the test's own look at the table)");
    let items = scan.items();
    assert!(!items.is_empty());
    for item in items {
        assert!(!format!("{item:?}").contains(key), "the key itself is stored: {item:?}");
    }
}

/// What one `crmflow` command line did: exit code, standard output, standard error.
async fn crmflow(args: Vec<String>) -> (u8, String, String) {
    tokio::task::spawn_blocking(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args = std::iter::once("crmflow".to_string()).chain(args).map(Into::into);
        let code = crmflow_cli::run(
            args,
            &mut crmflow_cli::Io {
                out: &mut out,
                err: &mut err,
            },
        );
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    })
    .await
    .expect("crmflow panicked")
}

fn args(line: &str, table: &str) -> Vec<String> {
    line.split_whitespace()
        .map(str::to_owned)
        .chain(["--table".to_owned(), table.to_owned()])
        .collect()
}

#[tokio::test]
async fn crmflow_api_keys_create_list_revoke() {
    let Some(LocalDeployment { sdk, resources, .. }) = LocalDeployment::create("api-keys-cli").await else {
        return;
    };
    let table = &resources.table;
    let (code, out, err) = crmflow(args("api-keys create --tenant acme", table)).await;
    assert_eq!(code, 0, "{err}");
    let key = out.trim().to_owned();
    assert!(key.starts_with("cfk_") && key.len() == 68, "{out}");
    assert!(err.contains("shown once"), "{err}");
    let store = DynamoStore::new(&sdk, None, table, 30);
    let credential = store
        .credential(&digest(&key))
        .await
        .unwrap()
        .expect("the printed key works");
    assert_eq!(credential.tenant, "acme");

    let (code, out, _) = crmflow(args("api-keys list --tenant acme --format json", table)).await;
    assert_eq!(code, 0);
    let listed: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(listed.len(), 1, "{out}");
    assert_eq!(listed[0]["key_id"], credential.id.as_str());
    assert_eq!(listed[0]["revoked"], false);
    assert!(!out.contains(&key), "list shows the key itself");

    let revoke = format!("api-keys revoke --tenant acme {}", credential.id);
    let (code, out, err) = crmflow(args(&revoke, table)).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked"), "{out}");
    assert_eq!(
        store.credential(&digest(&key)).await.unwrap(),
        None,
        "revoked keys stop working"
    );
    let (code, out, _) = crmflow(args("api-keys list --tenant acme", table)).await;
    assert_eq!(code, 0);
    assert!(out.contains(&credential.id) && out.contains("revoked"), "{out}");

    let (code, _, err) = crmflow(args("api-keys revoke --tenant acme key_nonexistent", table)).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no key key_nonexistent"), "{err}");
    let (code, _, err) = crmflow(args("api-keys create --tenant a#b", table)).await;
    assert_eq!(code, 2);
    assert!(err.contains("--tenant"), "{err}");
}

/// The api function on a local deployment: its configuration from the variables the template
/// sets, its state and handler as `crmflow_aws::lambda::api::main` wires them, and two
/// tenants' keys made as `crmflow api-keys create` makes them.
struct ApiFunction {
    sdk: aws_config::SdkConfig,
    resources: LocalResources,
    /// The AWS requests of the state's clients, for the permission check. (The function logs
    /// them per request from the same counter; here the handler gets a counter of its own, so
    /// that its per-request summary does not empty this one.)
    requests: RequestCounter,
    handler: lambda_http::Adapter<'static, api::ApiResponse, ApiHandler>,
    acme: String,
    globex: String,
}

type ApiHandler = Box<
    dyn lambda_http::Service<
            lambda_http::Request,
            Response = api::ApiResponse,
            Error = std::convert::Infallible,
            Future = lambda_http::BoxFuture<'static, Result<api::ApiResponse, std::convert::Infallible>>,
        > + Send,
>;

impl ApiFunction {
    async fn new(test: &str) -> Option<ApiFunction> {
        let LocalDeployment { sdk, resources, .. } = LocalDeployment::create(test).await?;
        let env = BTreeMap::from([
            ("CRMFLOW_TABLE_NAME", resources.table.clone()),
            ("CRMFLOW_STEP_QUEUE_URL", resources.step_queue_url.clone()),
            ("CRMFLOW_EVENTS_QUEUE_URL", resources.events_queue_url.clone()),
            ("CRMFLOW_RETENTION_DAYS", "30".to_string()),
        ]);
        let config = FunctionConfig::from_lookup(FunctionName::Api, |k| env.get(k).cloned()).expect("config");
        let requests = RequestCounter::new();
        let state = api::state(&config, &sdk, Some(&requests)).expect("state");
        let boxed = boxed(api::handler(state, RequestCounter::new()));
        let store = DynamoStore::new(&sdk, None, &resources.table, 30);
        let mut keys = Vec::new();
        for tenant in ["acme", "globex"] {
            let (key, id) = new_key();
            let credential = Credential {
                id,
                tenant: tenant.into(),
            };
            store
                .put_api_key(&digest(&key), &credential, jiff::Timestamp::now())
                .await
                .expect("put_api_key");
            keys.push(key);
        }
        let globex = keys.pop().unwrap();
        let acme = keys.pop().unwrap();
        Some(ApiFunction {
            sdk,
            resources,
            requests,
            handler: boxed,
            acme,
            globex,
        })
    }

    /// Invokes the function with an API Gateway HTTP API request (payload 2.0); returns the
    /// response payload it gives the runtime (`statusCode`, `headers`, `body`).
    async fn invoke(&mut self, request: Value) -> Value {
        invoke(&mut self.handler, request).await
    }
}

/// An HTTP function's handler as the runtime holds it.
fn boxed(
    mut service: impl lambda_http::Service<
        lambda_http::Request,
        Response = api::ApiResponse,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Send
    + 'static,
) -> lambda_http::Adapter<'static, api::ApiResponse, ApiHandler> {
    let boxed: ApiHandler = Box::new(lambda_http::service_fn(move |r| {
        let call = service.call(r);
        Box::pin(call) as lambda_http::BoxFuture<'static, _>
    }));
    lambda_http::Adapter::from(boxed)
}

/// Invokes an HTTP function with an API Gateway HTTP API request (payload 2.0); returns the
/// response payload it gives the runtime.
async fn invoke(handler: &mut lambda_http::Adapter<'static, api::ApiResponse, ApiHandler>, request: Value) -> Value {
    let request: LambdaRequest = serde_json::from_value(request).expect("an API Gateway v2 request");
    let event = lambda_http::LambdaEvent::new(request, lambda_http::Context::default());
    let response = handler.call(event).await.expect("infallible");
    serde_json::to_value(response).expect("the response payload")
}

/// An API Gateway HTTP API request (payload format 2.0), as the `$default` stage sends it for the
/// route `ANY /api/{proxy+}`.
fn request(
    method: &str,
    path_and_query: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Value {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut all = json!({"host": "abcdef1234.execute-api.us-east-1.amazonaws.com", "accept": "application/json"});
    if let Some(key) = key {
        all["authorization"] = json!(format!("Bearer {key}"));
    }
    if body.is_some() {
        all["content-type"] = json!("application/json");
    }
    for (name, value) in headers {
        all[*name] = json!(value);
    }
    let mut payload = json!({
        "version": "2.0",
        "routeKey": "ANY /api/{proxy+}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": all,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abcdef1234", "stage": "$default",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "test"},
            "requestId": uuid::Uuid::new_v4().to_string(), "routeKey": "ANY /api/{proxy+}",
            "time": "30/Nov/2026:01:00:00 +0000", "timeEpoch": 1795999200000u64
        },
        "pathParameters": {"proxy": path.trim_start_matches("/api/")},
        "isBase64Encoded": false
    });
    if !query.is_empty() {
        let params: serde_json::Map<String, Value> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        payload["queryStringParameters"] = Value::Object(params);
    }
    if let Some(body) = body {
        payload["body"] = json!(body);
    }
    payload
}

/// `(statusCode, the JSON body, headers)` of a response payload.
fn reply(response: &Value) -> (u64, Value, Value) {
    let status = response["statusCode"].as_u64().expect("statusCode");
    assert_eq!(
        response["isBase64Encoded"], false,
        "JSON bodies go back as text: {response}"
    );
    let body = response["body"]
        .as_str()
        .map_or(Value::Null, |b| serde_json::from_str(b).unwrap_or(Value::Null));
    (status, body, response["headers"].clone())
}

#[tokio::test]
async fn the_api_function_end_to_end_on_dynamodb_and_sqs() {
    let Some(mut f) = ApiFunction::new("api-e2e").await else {
        return;
    };
    let (acme, globex) = (f.acme.clone(), f.globex.clone());
    let id = create_the_seed_automation(&mut f, &acme).await;
    let path = format!("/api/v1/automations/{id}");

    let (status, body, _) = reply(&f.invoke(request("GET", &path, Some(&acme), &[], None)).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["id"].as_str(), body["status"].as_str()),
        (Some(id.as_str()), Some("active"))
    );
    // Stored in the steps form, the seed's action names read as their canonical types.
    let steps = &body["definition"]["steps"];
    assert_eq!(
        (steps[0]["action"]["type"].as_str(), steps[1]["action"]["type"].as_str()),
        (Some("assign"), Some("notify"))
    );
    assert_eq!(steps[0]["action"]["params"]["queue_id"], "...", "{body}");
    assert_eq!(body["definition"]["tenant"], "acme", "the key's tenant, not the body's");

    let list = request(
        "GET",
        "/api/v1/automations?status=active&limit=10",
        Some(&acme),
        &[],
        None,
    );
    let (status, body, _) = reply(&f.invoke(list).await);
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str()], "{body}");

    // No key, a wrong key: 401, as a problem document.
    for key in [None, Some("cfk_0000")] {
        let (status, body, headers) = reply(&f.invoke(request("GET", &path, key, &[], None)).await);
        assert_eq!(status, 401, "{body}");
        assert_eq!(headers["content-type"], "application/problem+json", "{headers}");
    }
    // Another tenant's automation does not exist for globex; nor do its runs.
    for p in [path.clone(), format!("{path}/runs")] {
        let (status, body, _) = reply(&f.invoke(request("GET", &p, Some(&globex), &[], None)).await);
        assert_eq!(status, 404, "{p}: {body}");
    }
    let (_, body, _) = reply(
        &f.invoke(request("GET", "/api/v1/automations", Some(&globex), &[], None))
            .await,
    );
    assert_eq!(body["items"], json!([]), "{body}");
    let (status, body, _) = reply(
        &f.invoke(request("GET", &format!("{path}/runs"), Some(&acme), &[], None))
            .await,
    );
    assert_eq!((status, &body["items"]), (200, &json!([])), "{body}");

    post_an_event(&mut f, &acme).await;
    assert_requests_within_the_permissions(&f);
}

/// POSTs the seed's body verbatim (with an `Idempotency-Key`, twice): 201, then the same
/// answer replayed; one automation. Returns its id.
async fn create_the_seed_automation(f: &mut ApiFunction, key: &str) -> String {
    let headers = [("idempotency-key", "create-seed-1")];
    let post = request("POST", "/api/v1/automations", Some(key), &headers, Some(SEED_BODY));
    let (status, created, headers) = reply(&f.invoke(post.clone()).await);
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("a server-made id").to_owned();
    assert_eq!(
        (created["version"].as_u64(), created["status"].as_str()),
        (Some(1), Some("active"))
    );
    assert!(
        created["created_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{created}"
    );
    assert_eq!(headers["location"], format!("/api/v1/automations/{id}"), "{headers}");

    let (status, again, headers) = reply(&f.invoke(post).await);
    assert_eq!(
        (status, &again),
        (201, &created),
        "a retried POST returns the first result"
    );
    assert_eq!(headers["idempotent-replayed"], "true", "{headers}");
    id
}

/// `POST /api/v1/events` queues the event on the events queue intake reads, in the key's
/// tenant; a body naming another tenant is refused with the field.
async fn post_an_event(f: &mut ApiFunction, key: &str) {
    let event = r#"{"id": "evt-api-e2e-1", "type": "case.created", "time": "2026-11-30T01:00:00Z",
                    "subject": "case/K1", "data": {"priority": "critical"}}"#;
    let (status, body, _) = reply(
        &f.invoke(request("POST", "/api/v1/events", Some(key), &[], Some(event)))
            .await,
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body,
        json!({"event_id": "evt-api-e2e-1", "type": "case.created", "tenant": "acme"})
    );
    let foreign = r#"{"id": "evt-2", "type": "case.created", "tenant": "globex", "time": "2026-11-30T01:00:00Z",
                      "subject": "case/K2"}"#;
    let (status, body, _) = reply(
        &f.invoke(request("POST", "/api/v1/events", Some(key), &[], Some(foreign)))
            .await,
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["path"], "tenant", "{body}");

    let messages = drain(&f.sdk, &f.resources.events_queue_url).await;
    assert_eq!(messages.len(), 1, "only the valid event is queued");
    let (queued, _) =
        parse_event(&serde_json::from_str(messages[0].body().unwrap()).unwrap()).expect("intake parses it");
    assert_eq!((queued.id.as_str(), queued.tenant.as_str()), ("evt-api-e2e-1", "acme"));
    assert_eq!(queued.subject.record_key(), "case/K1");
    assert_eq!(tenant_attribute(&messages[0]).as_deref(), Some("acme"));
}

/// Every AWS operation the api's clients performed is allowed by `permissions::required(Api)`
/// (which the template's role is checked against).
fn assert_requests_within_the_permissions(f: &ApiFunction) {
    assert_within_the_permissions(FunctionName::Api, &f.requests);
}

/// Every AWS operation `requests` counted is allowed by `permissions::required(function)`.
fn assert_within_the_permissions(function: FunctionName, requests: &RequestCounter) {
    let allowed: Vec<&str> = required(function).iter().map(|p| p.action).collect();
    let performed = requests.snapshot();
    assert!(!performed.is_empty());
    for (service, operation) in performed.keys() {
        let needs = actions_for_operation(service, operation);
        assert!(
            needs.iter().any(|a| allowed.contains(&a.as_str())),
            "{service}:{operation} needs {needs:?}, not in permissions::required({function})"
        );
        if operation != "TransactWriteItems" {
            assert!(
                needs.iter().all(|a| allowed.contains(&a.as_str())),
                "{service}:{operation}"
            );
        }
    }
}

/// The table of `f`, with the samples' API key stored as a local deployment stores it (tenant
/// `default`).
async fn with_the_samples_key(f: &ApiFunction) -> DynamoStore {
    let store = DynamoStore::new(&f.sdk, None, &f.resources.table, 30);
    let sample = Credential {
        id: SAMPLE_API_KEY_ID.into(),
        tenant: "default".into(),
    };
    store
        .put_api_key(&digest(SAMPLE_API_KEY), &sample, jiff::Timestamp::now())
        .await
        .expect("put_api_key");
    store
}

/// A Lambda sample payload of events/lambda/.
fn lambda_sample(name: &str) -> Value {
    let path = format!("{}/../events/lambda/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
}

/// The samples `cargo lambda invoke api --data-file ...` uses are API Gateway v2 requests the
/// function answers, with the samples' key as a local deployment stores it.
#[tokio::test]
async fn the_api_gateway_samples_in_events_are_answered() {
    let Some(mut f) = ApiFunction::new("api-samples").await else {
        return;
    };
    with_the_samples_key(&f).await;
    let create = lambda_sample("api-create-automation.json");
    assert_eq!(create["body"], SEED_BODY, "the sample POSTs the seed's body verbatim");
    let (status, created, _) = reply(&f.invoke(create).await);
    assert_eq!(status, 201, "{created}");
    let (status, listed, _) = reply(&f.invoke(lambda_sample("api.json")).await);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"][0]["id"], created["id"], "{listed}");
}

/// The test route on AWS is the simulate function's: with the variables the template gives it,
/// it answers the sample `cargo lambda invoke simulate` uses (an example automation, the samples'
/// key) with the run the event starts, reading the table only; the api function answers 405 on
/// that path, and the simulate function 404 on any other.
#[tokio::test]
async fn the_test_route_is_served_by_the_simulate_function_which_only_reads() {
    let Some(mut f) = ApiFunction::new("api-simulate").await else {
        return;
    };
    let store = with_the_samples_key(&f).await;
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for program in crmflow_core::definition::load_programs(&examples).expect("the examples") {
        AutomationCatalog::put(&store, program.automation.clone())
            .await
            .expect("put");
    }
    let env = BTreeMap::from([
        ("CRMFLOW_TABLE_NAME", f.resources.table.clone()),
        ("CRMFLOW_RETENTION_DAYS", "30".to_string()),
    ]);
    let config = FunctionConfig::from_lookup(FunctionName::Simulate, |k| env.get(k).cloned()).expect("config");
    let requests = RequestCounter::new();
    let mut handler = boxed(simulate::handler(
        simulate::state(&config, &f.sdk, Some(&requests)),
        RequestCounter::new(),
    ));
    let sample = lambda_sample("simulate.json");

    let (status, body, _) = reply(&invoke(&mut handler, sample.clone()).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["automation_id"], "auto-assign-high-priority-cases", "{body}");
    let steps: Vec<&str> = body["runs"][0]["steps"]
        .as_array()
        .expect("one run with its steps")
        .iter()
        .filter_map(|s| s["step_id"].as_str())
        .collect();
    assert_eq!(steps.len(), 2, "{body}");
    assert_eq!(body["runs"][0]["status"], "completed", "{body}");

    assert_within_the_permissions(FunctionName::Simulate, &requests);
    let allowed = required(FunctionName::Simulate);
    assert!(
        allowed
            .iter()
            .all(|p| ["dynamodb:GetItem", "dynamodb:Query"].contains(&p.action)),
        "{allowed:?}"
    );

    let elsewhere = request("GET", "/api/v1/automations", Some(SAMPLE_API_KEY), &[], None);
    assert_eq!(reply(&invoke(&mut handler, elsewhere).await).0, 404);
    let (status, body, _) = reply(&f.invoke(sample).await);
    assert_eq!(
        status, 405,
        "the api function leaves the test route to the simulate function: {body}"
    );
}
