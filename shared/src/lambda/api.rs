//! The api function: the management API (`crmflow_api::management_router`: every route but the
//! test route, which the simulate function serves) behind an API Gateway HTTP API
//! (payload format 2.0), on `lambda_http`, with the DynamoDB and SQS adapters.
//!
//! [`state`] wires [`ApiState`] from the function's configuration: the table (definitions,
//! runs, kept responses of idempotent POSTs, API keys), the step queue (task completions and
//! cancellations for evaluate) and the events queue (posted events for intake). Nothing else:
//! the api sends no email and consumes no queue.

use super::{FunctionConfig, FunctionName};
use crate::dynamodb::DynamoStore;
use crate::request_counter::RequestCounter;
use crate::sqs::{SqsEventQueue, SqsStepQueue};
use aws_config::SdkConfig;
use crmflow_api::{ApiState, management_router};
use crmflow_core::engine::Intake;
use crmflow_core::ports::SystemClock;
use lambda_http::tower::ServiceExt;
use std::sync::Arc;

/// What a misconfigured api function says (before any request is served).
fn missing(variable: &'static str) -> super::ConfigError {
    super::ConfigError {
        variable,
        message: "must be set for the api function".to_string(),
    }
}

/// The API's ports on AWS, as the api function wires them.
pub fn state(
    config: &FunctionConfig,
    sdk: &SdkConfig,
    counter: Option<&RequestCounter>,
) -> Result<ApiState, super::ConfigError> {
    let events_queue_url = config
        .events_queue_url
        .as_deref()
        .ok_or_else(|| missing("CRMFLOW_EVENTS_QUEUE_URL"))?;
    let store = Arc::new(DynamoStore::new(
        sdk,
        counter,
        &config.table_name,
        config.retention_days,
    ));
    let steps = Arc::new(SqsStepQueue::new(sdk, counter, &config.step_queue_url));
    let clock = Arc::new(SystemClock);
    let intake = Intake {
        catalog: store.clone(),
        runs: store.clone(),
        steps: steps.clone(),
        evaluations: Some(store.clone()),
        clock: clock.clone(),
        config: config.engine_config(),
        // The api's enroll sends `Start` (the api function has no evaluate ports).
        starter: None,
    };
    Ok(ApiState {
        automations: store.clone(),
        run_store: store.clone(),
        run_directory: store.clone(),
        steps,
        events: Arc::new(SqsEventQueue::new(sdk, counter, events_queue_url)),
        keys: store.clone(),
        held: store.clone(),
        intake,
        audit: store.clone(),
        evaluations: store.clone(),
        idempotency: store,
        clock,
    })
}

/// A response of the router, as the api function gives it to `lambda_http`: its body is text
/// when it is UTF-8 (every JSON and problem document the API writes), else binary (base64 in the
/// payload).
///
/// `lambda_http`'s own conversion of an `http::Response` decodes a text body by the charset its
/// `Content-Type` names, with encoding_rs: that links every decoder encoding_rs has (0.15 MB) for
/// bodies that are always UTF-8.
pub struct ApiResponse(pub axum::response::Response);

impl lambda_http::IntoResponse for ApiResponse {
    fn into_response(self) -> std::pin::Pin<Box<dyn Future<Output = lambda_http::Response<lambda_http::Body>> + Send>> {
        Box::pin(async move {
            let (parts, body) = self.0.into_parts();
            let body = match axum::body::to_bytes(body, usize::MAX).await {
                Ok(bytes) => match String::from_utf8(bytes.into()) {
                    Ok(text) => lambda_http::Body::Text(text),
                    Err(binary) => lambda_http::Body::Binary(binary.into_bytes()),
                },
                // The router's bodies are in memory; should one fail, the status says so.
                Err(_) => {
                    let mut failed = lambda_http::Response::new(lambda_http::Body::Empty);
                    *failed.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    return failed;
                }
            };
            lambda_http::Response::from_parts(parts, body)
        })
    }
}

/// What the api function serves: the management router, logged per request.
pub fn handler(
    state: ApiState,
    counter: RequestCounter,
) -> impl lambda_http::Service<lambda_http::Request, Response = ApiResponse, Error = std::convert::Infallible, Future: Send>
+ Clone {
    http_handler(management_router(state), counter)
}

/// An HTTP function's handler: each request (converted from the API Gateway payload by
/// `lambda_http`) goes through `app`; one log line per request with its method, path, status and
/// the AWS requests it made (`counter`, attached to the state's clients).
pub(super) fn http_handler(
    app: axum::Router,
    counter: RequestCounter,
) -> impl lambda_http::Service<lambda_http::Request, Response = ApiResponse, Error = std::convert::Infallible, Future: Send>
+ Clone {
    lambda_http::service_fn(move |request: lambda_http::Request| {
        let (app, counter) = (app.clone(), counter.clone());
        async move {
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let response = app.oneshot(request).await;
            let (aws_requests, by_operation) = counter.take_summary();
            if let Ok(r) = &response {
                let status = r.status().as_u16();
                tracing::info!(%method, path, status, aws_requests, %by_operation, "request done");
            }
            response.map(ApiResponse)
        }
    })
}

/// The whole main of the api function.
pub async fn main() -> Result<(), lambda_runtime::Error> {
    let config = super::init(FunctionName::Api)?;
    let counter = RequestCounter::new();
    let state = state(&config, &crate::sdk::load_sdk_config().await, Some(&counter))?;
    lambda_http::run(handler(state, counter)).await
}

#[cfg(test)]
mod tests {
    use super::ApiResponse;
    use lambda_http::{Body, IntoResponse};

    async fn converted(body: Vec<u8>) -> (u16, Body, Option<String>) {
        let response = axum::http::Response::builder()
            .status(201)
            .header("content-type", "application/problem+json")
            .body(axum::body::Body::from(body))
            .expect("a response");
        let converted = ApiResponse(response).into_response().await;
        let content_type = converted
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        (converted.status().as_u16(), converted.into_body(), content_type)
    }

    #[tokio::test]
    async fn a_utf8_body_is_text_and_anything_else_binary_with_status_and_headers_kept() {
        let (status, body, content_type) = converted("{\"title\":\"café\"}".into()).await;
        assert_eq!(
            (status, content_type.as_deref()),
            (201, Some("application/problem+json"))
        );
        assert!(matches!(body, Body::Text(t) if t == "{\"title\":\"café\"}"));
        let (_, body, _) = converted(vec![0xff, 0xfe, 0x00]).await;
        assert!(matches!(body, Body::Binary(b) if b == [0xff, 0xfe, 0x00]));
    }
}
