//! The SQS partial batch response: each record is handled on its own; the ids of the records
//! that failed go back in `batchItemFailures`, so SQS redelivers only those (and, after the
//! queue's `maxReceiveCount`, moves them to the dead-letter queue). One bad record never fails
//! or loses the others. Needs `ReportBatchItemFailures` on the event source mapping.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
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
