//! The SQS partial batch response: each record is handled on its own; the ids of the records
//! that failed go back in `batchItemFailures`, so SQS redelivers only those (and, after the
//! queue's `maxReceiveCount`, moves them to the dead-letter queue). One bad record never fails
//! or loses the others. Needs `ReportBatchItemFailures` on the event source mapping.

use super::FunctionName;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use crmflow_core::engine::EngineError;
use serde_json::Value;
use std::future::Future;

/// Why a record failed (logged with the record).
#[derive(Debug)]
pub struct RecordError {
    pub message: String,
    /// Redelivery cannot help (malformed input): it will end in the dead-letter queue.
    pub permanent: bool,
}

/// Runs `handle` on each record in order and collects the failures.
pub async fn process_batch<F, Fut>(event: SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), RecordError>>,
{
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let message_id = record.message_id.clone();
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .cloned()
            .unwrap_or_default();
        if let Err(e) = handle(record).await {
            match &message_id {
                Some(id) => {
                    tracing::error!(message_id = %id, receive_count = %receive_count, permanent = e.permanent, error = %e.message, "record failed; returned to the queue");
                    response.add_failure(id.clone());
                }
                None => tracing::error!(error = %e.message, "record without a messageId failed and cannot be reported"),
            }
        }
    }
    response
}

/// The span every record is handled in: its function and message id, plus the fields the
/// handler fills in as it learns them.
pub fn record_span(function: FunctionName, record: &SqsMessage) -> tracing::Span {
    tracing::info_span!(
        "record",
        function = %function,
        message_id = %record.message_id.as_deref().unwrap_or_default(),
        event_id = tracing::field::Empty,
        run_id = tracing::field::Empty,
        automation_id = tracing::field::Empty,
        step_id = tracing::field::Empty,
    )
}

/// The record's body as JSON; a missing or malformed body is permanent.
pub fn body(record: &SqsMessage) -> Result<Value, RecordError> {
    let text = record.body.as_deref().ok_or(RecordError {
        message: "body: missing".to_string(),
        permanent: true,
    })?;
    serde_json::from_str(text).map_err(|e| RecordError {
        message: format!("body: invalid JSON at line {} column {}: {e}", e.line(), e.column()),
        permanent: true,
    })
}

/// An engine error as a record failure: invalid messages and decider errors are permanent
/// (redelivery cannot help; they end in the dead-letter queue).
pub fn engine_error(e: EngineError) -> RecordError {
    let permanent = matches!(e, EngineError::Invalid(_) | EngineError::Decide(_));
    RecordError {
        message: e.to_string(),
        permanent,
    }
}
