//! The evaluate function: step messages (starts, events, timer wakes, action results, task
//! completions) advance their run through the decider ([`Evaluate::handle`]).

use super::batch::{RecordError, body, engine_error, process_batch, record_span};
use super::{ConfigError, FunctionConfig, FunctionName, SqsConsumer};
use crate::dynamodb::DynamoStore;
use crate::request_counter::RequestCounter;
use crate::ses::SesEmailSender;
use crate::sqs::{SqsActionQueue, SqsCrmCommandSink, SqsStepQueue};
use crate::timers::AwsTimerService;
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use crmflow_core::command::Input;
use crmflow_core::engine::Evaluate;
use crmflow_core::messages::StepMessage;
use crmflow_core::ports::{EmailSender, SystemClock};
use std::sync::Arc;
use tracing::Instrument;

/// Evaluate on the AWS adapters: the table (catalog, runs, idempotency records of task commands,
/// long timers), the step and action queues, the CRM command queue (human tasks, and CRM actions
/// performed in place) and, for the evaluate function, SES v2 (emails performed in place).
pub fn engine(
    config: &FunctionConfig,
    sdk: &SdkConfig,
    counter: Option<&RequestCounter>,
) -> Result<Evaluate, ConfigError> {
    let crm_queue = config.crm_commands_queue_url.as_deref().ok_or(ConfigError {
        variable: "CRMFLOW_CRM_COMMANDS_QUEUE_URL",
        message: "must be set".to_string(),
    })?;
    let store = Arc::new(DynamoStore::new(
        sdk,
        counter,
        &config.table_name,
        config.retention_days,
    ));
    let steps = SqsStepQueue::new(sdk, counter, &config.step_queue_url);
    // The evaluate function performs email and CRM actions in place; intake's starter (built
    // here too) sends them to the action queue.
    let email: Option<Arc<dyn EmailSender>> = match config.function {
        FunctionName::Evaluate => {
            let sender = config.sender_address.as_deref().ok_or(ConfigError {
                variable: "CRMFLOW_SENDER_ADDRESS",
                message: "must be set".to_string(),
            })?;
            Some(Arc::new(SesEmailSender::new(sdk, counter, sender)))
        }
        _ => None,
    };
    Ok(Evaluate {
        catalog: store.clone(),
        runs: store.clone(),
        actions: Arc::new(SqsActionQueue::new(sdk, counter, &config.action_queue_url)),
        timers: Arc::new(AwsTimerService::new(steps.clone(), store.clone())),
        steps: Arc::new(steps),
        idempotency: store.clone(),
        held: store,
        crm: Arc::new(SqsCrmCommandSink::new(sdk, counter, crm_queue)),
        clock: Arc::new(SystemClock),
        config: config.engine_config(),
        email,
    })
}

impl SqsConsumer for Evaluate {
    /// Handles a batch from the step queue.
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        process_batch(event, |record| async move {
            let span = record_span(FunctionName::Evaluate, &record);
            handle_record(self, &record).instrument(span).await
        })
        .await
    }
}

async fn handle_record(engine: &Evaluate, record: &SqsMessage) -> Result<(), RecordError> {
    let message: StepMessage = serde_json::from_value(body(record)?).map_err(|e| RecordError {
        message: format!("step message: {e}"),
        permanent: true,
    })?;
    let span = tracing::Span::current();
    span.record("run_id", message.run_id.as_str());
    if let Input::Event { event } = &message.input {
        span.record("event_id", event.id.as_str());
    }
    let saved = engine.handle(&message).await.map_err(engine_error)?;
    if let Some(run) = saved {
        span.record("automation_id", run.automation_id.as_str());
        if let Some(c) = &run.cursor {
            span.record("step_id", c.step_id.as_str());
        }
        tracing::info!(
            input = message.input.kind(),
            status = run.status.as_str(),
            version = run.version,
            "run advanced"
        );
    }
    Ok(())
}

/// The whole main of the evaluate function.
pub async fn main() -> Result<(), lambda_runtime::Error> {
    let config = super::init(FunctionName::Evaluate)?;
    let counter = RequestCounter::new();
    let engine = engine(&config, &crate::sdk::load_sdk_config().await, Some(&counter))?;
    super::serve_sqs(&engine, &counter).await
}
