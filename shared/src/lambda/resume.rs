//! The resume function: the scheduled sweep (an EventBridge schedule, every minute) moves long
//! timers that fall due within the next minute onto the step queue ([`Resume::handle`]).

use super::{FunctionConfig, FunctionName};
use crate::dynamodb::DynamoStore;
use crate::request_counter::RequestCounter;
use crate::sqs::SqsStepQueue;
use crate::timers::AwsTimerService;
use aws_config::SdkConfig;
use crmflow_core::engine::Resume;
use crmflow_core::ports::SystemClock;
use serde_json::{Value, json};
use std::sync::Arc;

/// How far ahead each sweep looks, seconds: the sweep period (1 minute).
pub const SWEEP_HORIZON_SECONDS: u32 = 60;

/// Resume on the AWS adapters: the table (long timers, the sweep cursor) and the step queue.
pub fn engine(config: &FunctionConfig, sdk: &SdkConfig, counter: Option<&RequestCounter>) -> Resume {
    let store = Arc::new(DynamoStore::new(
        sdk,
        counter,
        &config.table_name,
        config.retention_days,
    ));
    let steps = SqsStepQueue::new(sdk, counter, &config.step_queue_url);
    Resume {
        timers: Arc::new(AwsTimerService::new(steps, store)),
        clock: Arc::new(SystemClock),
    }
}

/// One scheduled invocation (the payload, an EventBridge scheduled event, is not used). Returns
/// `{"moved": n}`; a failed sweep is an error, and the next sweep resumes from the cursor.
pub async fn handle(engine: &Resume, _payload: Value) -> Result<Value, lambda_runtime::Error> {
    let moved = engine.handle(SWEEP_HORIZON_SECONDS).await.map_err(|e| {
        tracing::error!(error = %e, "timer sweep failed");
        lambda_runtime::Error::from(e.to_string())
    })?;
    tracing::info!(moved, "timer sweep");
    Ok(json!({ "moved": moved }))
}

/// The whole main of the resume function.
pub async fn main() -> Result<(), lambda_runtime::Error> {
    let config = super::init(FunctionName::Resume)?;
    let counter = RequestCounter::new();
    let engine = engine(&config, &crate::sdk::load_sdk_config().await, Some(&counter));
    let (engine, counter) = (&engine, &counter);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            let result = handle(engine, event.payload).await;
            let (aws_requests, by_operation) = counter.take_summary();
            tracing::info!(aws_requests, %by_operation, "invocation done");
            result
        },
    ))
    .await
}
