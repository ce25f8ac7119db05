//! The four handlers. Each SQS record is parsed, handled by the engine, and reported as a
//! failure (→ redelivery → dead-letter queue) when it could not be handled.

use super::FunctionName;
use super::batch::{RecordError, process_batch};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use crmflow_core::engine::{Engine, EngineError};
use crmflow_core::event::parse_event;
use crmflow_core::messages::{ActionMessage, StepMessage};
use serde_json::{Value, json};
use tracing::Instrument;

/// Handles a batch for intake, evaluate or execute.
pub async fn sqs_batch(function: FunctionName, engine: &Engine, event: SqsEvent) -> SqsBatchResponse {
    process_batch(event, |record| async move {
        let message_id = record.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!(
            "record",
            function = %function,
            message_id = %message_id,
            event_id = tracing::field::Empty,
            run_id = tracing::field::Empty,
            automation_id = tracing::field::Empty,
            step_id = tracing::field::Empty,
        );
        match function {
            FunctionName::Intake => intake_record(engine, &record).instrument(span).await,
            FunctionName::Evaluate => evaluate_record(engine, &record).instrument(span).await,
            FunctionName::Execute => execute_record(engine, &record).instrument(span).await,
            FunctionName::Resume => Err(RecordError {
                message: "resume is not an SQS consumer".to_string(),
                permanent: true,
            }),
        }
    })
    .await
}

fn body(record: &SqsMessage) -> Result<Value, RecordError> {
    let text = record.body.as_deref().ok_or(RecordError {
        message: "body: missing".to_string(),
        permanent: true,
    })?;
    serde_json::from_str(text).map_err(|e| RecordError {
        message: format!("body: invalid JSON at line {} column {}: {e}", e.line(), e.column()),
        permanent: true,
    })
}

fn engine_error(e: EngineError) -> RecordError {
    let permanent = matches!(e, EngineError::Invalid(_) | EngineError::Decide(_));
    RecordError {
        message: e.to_string(),
        permanent,
    }
}

async fn intake_record(engine: &Engine, record: &SqsMessage) -> Result<(), RecordError> {
    let value = body(record)?;
    let (event, format) = parse_event(&value).map_err(|e| RecordError {
        message: format!("event {e}"),
        permanent: true,
    })?;
    tracing::Span::current().record("event_id", event.id.as_str());
    let report = engine
        .intake(&event, serde_json::Map::new())
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

async fn evaluate_record(engine: &Engine, record: &SqsMessage) -> Result<(), RecordError> {
    let message: StepMessage = serde_json::from_value(body(record)?).map_err(|e| RecordError {
        message: format!("step message: {e}"),
        permanent: true,
    })?;
    let span = tracing::Span::current();
    span.record("run_id", message.run_id.as_str());
    if let crmflow_core::command::Input::Event { event } = &message.input {
        span.record("event_id", event.id.as_str());
    }
    let saved = engine.evaluate(&message).await.map_err(engine_error)?;
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

async fn execute_record(engine: &Engine, record: &SqsMessage) -> Result<(), RecordError> {
    let message: ActionMessage = serde_json::from_value(body(record)?).map_err(|e| RecordError {
        message: format!("action message: {e}"),
        permanent: true,
    })?;
    let span = tracing::Span::current();
    span.record("run_id", message.action.run_id.as_str());
    span.record("automation_id", message.action.automation_id.as_str());
    span.record("step_id", message.action.step_id.as_str());
    let outcome = engine.execute(&message).await.map_err(engine_error)?;
    tracing::info!(effect = message.action.effect.kind(), outcome = ?outcome, "action performed");
    Ok(())
}

/// The scheduled sweep (an EventBridge Scheduler / CloudWatch Events invocation; the payload is
/// not used). Moves timers due within the next 60 seconds onto the step queue.
pub async fn resume(engine: &Engine, _payload: Value) -> Result<Value, lambda_runtime::Error> {
    let moved = engine.resume(SWEEP_HORIZON_SECONDS).await.map_err(|e| {
        tracing::error!(error = %e, "timer sweep failed");
        lambda_runtime::Error::from(e.to_string())
    })?;
    tracing::info!(moved, "timer sweep");
    Ok(json!({ "moved": moved }))
}

/// How far ahead each sweep looks, seconds: the sweep period (1 minute).
pub const SWEEP_HORIZON_SECONDS: u32 = 60;
