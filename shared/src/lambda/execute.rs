//! The execute function: actions from the action queue are performed once per idempotency key
//! (email through SES v2, CRM commands, webhooks and notifications over HTTPS, enrolling in and
//! cancelling other automations), and their results go back to the run ([`Execute::handle`]).

use super::batch::{RecordError, body, engine_error, process_batch, record_span};
use super::{ConfigError, FunctionConfig, FunctionName, SqsConsumer};
use crate::dynamodb::DynamoStore;
use crate::http::ReqwestHttpClient;
use crate::request_counter::RequestCounter;
use crate::ses::SesEmailSender;
use crate::sqs::{SqsCrmCommandSink, SqsStepQueue};
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use crmflow_core::engine::{Execute, Intake};
use crmflow_core::messages::ActionMessage;
use crmflow_core::ports::SystemClock;
use std::sync::Arc;
use tracing::Instrument;

fn required<'a>(value: &'a Option<String>, variable: &'static str) -> Result<&'a str, ConfigError> {
    value.as_deref().ok_or(ConfigError {
        variable,
        message: "must be set".to_string(),
    })
}

/// Execute on the AWS adapters: the table (idempotency records; runs and catalog for `enroll`
/// and `cancel_automations`), the step queue (results), the CRM command queue, SES v2 and the
/// webhook client.
pub fn engine(
    config: &FunctionConfig,
    sdk: &SdkConfig,
    counter: Option<&RequestCounter>,
) -> Result<Execute, ConfigError> {
    let crm_queue = required(&config.crm_commands_queue_url, "CRMFLOW_CRM_COMMANDS_QUEUE_URL")?;
    let sender = required(&config.sender_address, "CRMFLOW_SENDER_ADDRESS")?;
    let http = if config.allow_private_webhooks {
        ReqwestHttpClient::allowing_private_networks()
    } else {
        ReqwestHttpClient::new()
    }
    .map_err(|e| ConfigError {
        variable: "CRMFLOW_ALLOW_PRIVATE_WEBHOOKS",
        message: format!("the webhook client could not be built: {e}"),
    })?;
    let store = Arc::new(DynamoStore::new(
        sdk,
        counter,
        &config.table_name,
        config.retention_days,
    ));
    Ok(Execute {
        intake: Intake {
            catalog: store.clone(),
            runs: store.clone(),
            steps: Arc::new(SqsStepQueue::new(sdk, counter, &config.step_queue_url)),
            evaluations: None,
            clock: Arc::new(SystemClock),
            config: config.engine_config(),
            // Runs enrolled by an `enroll` action are sent `Start` (execute has no evaluate
            // ports).
            starter: None,
        },
        idempotency: store,
        email: Arc::new(SesEmailSender::new(sdk, counter, sender)),
        crm: Arc::new(SqsCrmCommandSink::new(sdk, counter, crm_queue)),
        http: Arc::new(http),
    })
}

impl SqsConsumer for Execute {
    /// Handles a batch from the action queue.
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        process_batch(event, |record| async move {
            let span = record_span(FunctionName::Execute, &record);
            handle_record(self, &record).instrument(span).await
        })
        .await
    }
}

async fn handle_record(engine: &Execute, record: &SqsMessage) -> Result<(), RecordError> {
    let message: ActionMessage = serde_json::from_value(body(record)?).map_err(|e| RecordError {
        message: format!("action message: {e}"),
        permanent: true,
    })?;
    let span = tracing::Span::current();
    span.record("run_id", message.action.run_id.as_str());
    span.record("automation_id", message.action.automation_id.as_str());
    span.record("step_id", message.action.step_id.as_str());
    let outcome = engine.handle(&message).await.map_err(engine_error)?;
    tracing::info!(effect = message.action.effect.kind(), outcome = ?outcome, "action performed");
    Ok(())
}

/// The whole main of the execute function.
pub async fn main() -> Result<(), lambda_runtime::Error> {
    let config = super::init(FunctionName::Execute)?;
    let counter = RequestCounter::new();
    let engine = engine(&config, &crate::sdk::load_sdk_config().await, Some(&counter))?;
    super::serve_sqs(&engine, &counter).await
}
