//! The intake function: CRM events from the events queue become runs, and reach the runs already
//! waiting on their record ([`Intake::handle`]).

use super::batch::{RecordError, body, engine_error, process_batch, record_span};
use super::{ConfigError, FunctionConfig, FunctionName, SqsConsumer};
use crate::dynamodb::DynamoStore;
use crate::request_counter::RequestCounter;
use crate::sqs::SqsStepQueue;
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use crmflow_core::engine::Intake;
use crmflow_core::event::parse_event;
use crmflow_core::ports::SystemClock;
use std::sync::Arc;
use tracing::Instrument;

/// Intake on the AWS adapters: the table (catalog, runs, evaluation log) and the step queue,
/// plus evaluate's ports (see [`super::evaluate::engine`]) to start the runs it creates in place
/// ([`Intake::starter`]).
pub fn engine(
    config: &FunctionConfig,
    sdk: &SdkConfig,
    counter: Option<&RequestCounter>,
) -> Result<Intake, ConfigError> {
    let store = Arc::new(DynamoStore::new(
        sdk,
        counter,
        &config.table_name,
        config.retention_days,
    ));
    Ok(Intake {
        catalog: store.clone(),
        runs: store.clone(),
        steps: Arc::new(SqsStepQueue::new(sdk, counter, &config.step_queue_url)),
        evaluations: Some(store),
        clock: Arc::new(SystemClock),
        config: config.engine_config(),
        starter: Some(Arc::new(super::evaluate::engine(config, sdk, counter)?)),
    })
}

impl SqsConsumer for Intake {
    /// Handles a batch from the events queue.
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        process_batch(event, |record| async move {
            let span = record_span(FunctionName::Intake, &record);
            handle_record(self, &record).instrument(span).await
        })
        .await
    }
}

async fn handle_record(engine: &Intake, record: &SqsMessage) -> Result<(), RecordError> {
    let value = body(record)?;
    let (event, format) = parse_event(&value).map_err(|e| RecordError {
        message: format!("event {e}"),
        permanent: true,
    })?;
    tracing::Span::current().record("event_id", event.id.as_str());
    let report = engine
        .handle(&event, serde_json::Map::new())
        .await
        .map_err(engine_error)?;
    tracing::info!(
        format = %format,
        event_type = %event.event_type,
        duplicate = report.duplicate,
        enrolled = report.outcomes.iter().filter(|o| o.result == "enrolled").count(),
        delivered = report.delivered_to.len(),
        "event handled"
    );
    Ok(())
}

/// The whole main of the intake function.
pub async fn main() -> Result<(), lambda_runtime::Error> {
    let config = super::init(FunctionName::Intake)?;
    let counter = RequestCounter::new();
    let engine = engine(&config, &crate::sdk::load_sdk_config().await, Some(&counter))?;
    super::serve_sqs(&engine, &counter).await
}
