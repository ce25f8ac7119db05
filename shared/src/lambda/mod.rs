//! The Lambda layer: what the functions share (configuration from the environment, JSON logs,
//! the SQS partial batch response, IAM permissions) and one module per function that wires the
//! engine's handler for that function to the AWS adapters it needs, and only those:
//!
//! | function | module | engine type | ports on AWS |
//! |---|---|---|---|
//! | intake | [`intake`] | [`Intake`](crmflow_core::engine::Intake) | DynamoDB (catalog, runs), step queue |
//! | evaluate | [`evaluate`] | [`Evaluate`](crmflow_core::engine::Evaluate) | DynamoDB (catalog, runs, idempotency, timers), step and action queues, CRM command queue |
//! | execute | [`execute`] | [`Execute`](crmflow_core::engine::Execute) | DynamoDB (catalog, runs, idempotency), step queue, CRM command queue, SES v2, HTTPS |
//! | resume | [`resume`] | [`Resume`](crmflow_core::engine::Resume) | DynamoDB (timers), step queue |
//! | api | `api` (feature `api`) | `crmflow_api::management_router` on `lambda_http` | DynamoDB (catalog, runs, idempotency, API keys), step and events queues |
//! | simulate | `simulate` (feature `api`) | `crmflow_api::test_router` on `lambda_http` | DynamoDB (catalog, API keys), read only |
//!
//! The binaries in `functions/` only call their module's `main`.

#[cfg(feature = "api")]
pub mod api;
pub mod batch;
pub mod config;
pub mod evaluate;
pub mod execute;
pub mod intake;
pub mod logging;
pub mod permissions;
pub mod resume;
#[cfg(feature = "api")]
pub mod simulate;

pub use config::{ConfigError, FunctionConfig, FunctionName};

use crate::request_counter::RequestCounter;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::future::Future;

/// A function that consumes an SQS queue through its event source mapping.
pub trait SqsConsumer: Sync {
    /// Handles one batch; the records that failed go back in `batchItemFailures`.
    fn handle_batch(&self, event: SqsEvent) -> impl Future<Output = SqsBatchResponse> + Send;
}

/// The Lambda runtime loop of an SQS consumer. After each invocation it logs how many records
/// failed and the AWS requests the invocation made (`counter`, attached to the engine's clients).
async fn serve_sqs(engine: &impl SqsConsumer, counter: &RequestCounter) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
            let records = event.payload.records.len();
            let response = engine.handle_batch(event.payload).await;
            let (aws_requests, by_operation) = counter.take_summary();
            tracing::info!(
                records,
                failed = response.batch_item_failures.len(),
                aws_requests,
                %by_operation,
                "invocation done"
            );
            Ok::<_, lambda_runtime::Error>(response)
        },
    ))
    .await
}

/// Logging and configuration: the start of every function's main.
fn init(function: FunctionName) -> Result<FunctionConfig, lambda_runtime::Error> {
    logging::init();
    FunctionConfig::from_env(function).map_err(|e| {
        tracing::error!(error = %e, "configuration");
        lambda_runtime::Error::from(e)
    })
}
