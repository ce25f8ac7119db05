//! SQS adapters: the step and action queues ([`SqsStepQueue`]), the outbound CRM command queue
//! ([`SqsCrmCommandSink`]) and timers ([`AwsTimerService`]: short ones as delayed SQS messages,
//! long ones as DynamoDB items moved onto the step queue by [`TimerService::sweep`]).
//!
//! The queues are standard queues: per-message `DelaySeconds` is refused by FIFO queues.
//!
//! IAM actions per method:
//!
//! | method | actions |
//! |---|---|
//! | `SqsStepQueue::send_step` | `sqs:SendMessage` (step queue) |
//! | `SqsStepQueue::send_action` | `sqs:SendMessage` (action queue) |
//! | `SqsStepQueue::send_steps` | `sqs:SendMessage` (step queue; `SendMessageBatch` is authorised by it) |
//! | `SqsCrmCommandSink::send` | `sqs:SendMessage` (CRM command queue) |
//! | `AwsTimerService::schedule` | `sqs:SendMessage` (step queue) when due within 900 s, else `dynamodb:PutItem` |
//! | `AwsTimerService::cancel` | `dynamodb:DeleteItem` |
//! | `AwsTimerService::sweep` | `dynamodb:GetItem`, `dynamodb:Query`, `dynamodb:BatchWriteItem`, `dynamodb:UpdateItem`, `sqs:SendMessage` |

use super::dynamodb::{DynamoStore, minute_floor};
use super::request_counter::RequestCounter;
use super::sdk::{describe, is_transient, sqs_client};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use crmflow_core::command::Input;
use crmflow_core::messages::{ActionMessage, StepMessage};
use crmflow_core::ports::{
    CrmCommandSink, EffectError, OutboundCrmCommand, QueueError, StepQueue, StoreError, Timer, TimerService,
};
use jiff::{SignedDuration, Timestamp};

/// SQS's largest `DelaySeconds` (15 minutes).
pub const MAX_DELAY_SECONDS: u32 = 900;
/// `SendMessageBatch`'s limit.
const SEND_BATCH_MAX: usize = 10;
/// Without a cursor (the first sweep), a sweep starts this far back.
pub const SWEEP_CATCH_UP_MINUTES: i64 = 24 * 60;
/// The most minute buckets one sweep reads: a backlog longer than the catch-up window is worked
/// off by the following sweeps, from the cursor, so no timer is skipped.
pub const MAX_SWEEP_BUCKETS: i64 = SWEEP_CATCH_UP_MINUTES + 16;
/// Bucket reads of a sweep in flight at once.
const SWEEP_READ_CONCURRENCY: usize = 16;

fn queue_error(operation: &str, err: impl std::fmt::Display) -> QueueError {
    QueueError(format!("{operation}: {err}"))
}

fn to_json<T: serde::Serialize>(message: &T) -> Result<String, QueueError> {
    serde_json::to_string(message).map_err(|e| QueueError(format!("serializing a message: {e}")))
}

/// The step queue (to evaluate) and the action queue (to execute).
#[derive(Debug, Clone)]
pub struct SqsStepQueue {
    client: Client,
    step_queue_url: String,
    action_queue_url: String,
}

impl SqsStepQueue {
    pub fn new(
        sdk: &SdkConfig,
        counter: Option<&RequestCounter>,
        step_queue_url: impl Into<String>,
        action_queue_url: impl Into<String>,
    ) -> Self {
        Self::from_client(sqs_client(sdk, counter), step_queue_url, action_queue_url)
    }

    pub fn from_client(client: Client, step_queue_url: impl Into<String>, action_queue_url: impl Into<String>) -> Self {
        SqsStepQueue {
            client,
            step_queue_url: step_queue_url.into(),
            action_queue_url: action_queue_url.into(),
        }
    }

    pub fn step_queue_url(&self) -> &str {
        &self.step_queue_url
    }

    pub fn action_queue_url(&self) -> &str {
        &self.action_queue_url
    }

    /// Sends step messages with their delays, ten per request. Returns the indexes of the
    /// messages that were not sent (the others were).
    pub async fn send_steps(&self, messages: &[(StepMessage, u32)]) -> Result<Vec<usize>, QueueError> {
        let mut failed = Vec::new();
        for (chunk_index, chunk) in messages.chunks(SEND_BATCH_MAX).enumerate() {
            let offset = chunk_index * SEND_BATCH_MAX;
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (message, delay))| {
                    SendMessageBatchRequestEntry::builder()
                        .id((offset + i).to_string())
                        .message_body(to_json(message)?)
                        .delay_seconds(clamp_delay(*delay))
                        .build()
                        .map_err(|e| queue_error("building SendMessageBatch", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.step_queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| queue_error("SendMessageBatch", describe(&e)))?;
            for entry in out.failed() {
                tracing::warn!(id = entry.id(), code = entry.code(), message = ?entry.message(), "step message not sent");
                failed.extend(entry.id().parse::<usize>().ok());
            }
        }
        Ok(failed)
    }
}

fn clamp_delay(delay_seconds: u32) -> i32 {
    // At most 900, so the cast cannot truncate.
    delay_seconds.min(MAX_DELAY_SECONDS) as i32
}

#[async_trait]
impl StepQueue for SqsStepQueue {
    async fn send_step(&self, message: &StepMessage, delay_seconds: u32) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.step_queue_url)
            .message_body(to_json(message)?)
            .delay_seconds(clamp_delay(delay_seconds))
            .send()
            .await
            .map_err(|e| queue_error("SendMessage", describe(&e)))?;
        Ok(())
    }

    async fn send_action(&self, message: &ActionMessage) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.action_queue_url)
            .message_body(to_json(message)?)
            .send()
            .await
            .map_err(|e| queue_error("SendMessage", describe(&e)))?;
        Ok(())
    }
}

/// Publishes outbound CRM commands: the JSON of [`OutboundCrmCommand`], with the message
/// attributes `idempotency_key`, `command` and `tenant` so consumers can dedupe and filter
/// without parsing the body.
#[derive(Debug, Clone)]
pub struct SqsCrmCommandSink {
    client: Client,
    queue_url: String,
}

impl SqsCrmCommandSink {
    pub fn new(sdk: &SdkConfig, counter: Option<&RequestCounter>, queue_url: impl Into<String>) -> Self {
        Self::from_client(sqs_client(sdk, counter), queue_url)
    }

    pub fn from_client(client: Client, queue_url: impl Into<String>) -> Self {
        SqsCrmCommandSink {
            client,
            queue_url: queue_url.into(),
        }
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, EffectError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| EffectError::permanent(format!("building a message attribute: {e}")))
}

#[async_trait]
impl CrmCommandSink for SqsCrmCommandSink {
    async fn send(&self, command: &OutboundCrmCommand) -> Result<(), EffectError> {
        let body = serde_json::to_string(command)
            .map_err(|e| EffectError::permanent(format!("serializing a CRM command: {e}")))?;
        let mut request = self.client.send_message().queue_url(&self.queue_url).message_body(body);
        // SQS refuses empty attribute values.
        for (name, value) in [
            ("idempotency_key", command.idempotency_key.as_str()),
            ("command", command.command.command.as_str()),
            ("tenant", command.tenant.as_str()),
        ] {
            if !value.is_empty() {
                request = request.message_attributes(name, string_attribute(value)?);
            }
        }
        request.send().await.map_err(|e| {
            let message = format!("SendMessage to the CRM command queue: {}", describe(&e));
            if is_transient(&e) {
                EffectError::transient(message)
            } else {
                EffectError::permanent(message)
            }
        })?;
        Ok(())
    }
}

/// Timers on AWS: due within 900 s → a delayed `TimerFired` step message straight away; later →
/// a DynamoDB timer item that [`TimerService::sweep`] moves onto the step queue when it comes
/// within the horizon.
///
/// `cancel` deletes the timer item. A delayed SQS message cannot be recalled, so a cancelled
/// short timer (or a long one already swept) still fires: the decider ignores a `TimerFired`
/// whose timer is not the run's current one (stale), so that is harmless.
#[derive(Debug, Clone)]
pub struct AwsTimerService {
    queue: SqsStepQueue,
    store: DynamoStore,
}

impl AwsTimerService {
    pub fn new(queue: SqsStepQueue, store: DynamoStore) -> Self {
        AwsTimerService { queue, store }
    }
}

fn fired(timer: &Timer) -> StepMessage {
    StepMessage {
        tenant: timer.tenant.clone(),
        run_id: timer.run_id.clone(),
        input: Input::TimerFired {
            timer_id: timer.timer_id.clone(),
        },
    }
}

/// Whole seconds from `now` until `due_at`, rounded up (0 when already due), at most `u32::MAX`.
fn seconds_until(due_at: Timestamp, now: Timestamp) -> u64 {
    let millis = due_at.duration_since(now).as_millis();
    if millis <= 0 {
        0
    } else {
        u64::try_from((millis + 999) / 1000).unwrap_or(u64::MAX)
    }
}

fn from_store(err: StoreError) -> QueueError {
    QueueError(format!("timer store: {err}"))
}

fn minutes(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n * 60)
}

impl AwsTimerService {
    /// A sweep failed at `bucket`: the buckets before it are done, so the next sweep starts
    /// there. Returns the error to report.
    async fn stop_at(&self, bucket: Timestamp, err: QueueError) -> QueueError {
        if let Err(e) = self.store.set_sweep_cursor(bucket).await {
            tracing::warn!(error = %e, "could not save the sweep cursor");
        }
        err
    }
}

#[async_trait]
impl TimerService for AwsTimerService {
    async fn schedule(&self, timer: &Timer, now: Timestamp) -> Result<(), QueueError> {
        let remaining = seconds_until(timer.due_at, now);
        if remaining <= u64::from(MAX_DELAY_SECONDS) {
            self.queue.send_step(&fired(timer), remaining as u32).await
        } else {
            self.store.put_timer(timer).await.map_err(from_store)
        }
    }

    async fn cancel(&self, timer: &Timer) -> Result<(), QueueError> {
        self.store.delete_timer(timer).await.map_err(from_store)
    }

    /// Sweeps the buckets from the cursor (less one minute, against clock skew between the
    /// function that scheduled a timer and this one) through the bucket holding
    /// `now + horizon`, at most [`MAX_SWEEP_BUCKETS`] of them. Each timer due by then is sent
    /// first and deleted after: a crash in between only causes a duplicate wake-up, which the
    /// decider ignores. The horizon is capped at 900 s, the longest SQS delay.
    async fn sweep(&self, now: Timestamp, horizon_seconds: u32) -> Result<usize, QueueError> {
        let horizon = i64::from(horizon_seconds.min(MAX_DELAY_SECONDS));
        let limit = now
            .checked_add(SignedDuration::from_secs(horizon))
            .map_err(|e| queue_error("sweep", e))?;
        let limit_bucket = minute_floor(limit);
        let first = match self.store.sweep_cursor().await.map_err(from_store)? {
            Some(cursor) => cursor.checked_sub(minutes(1)),
            None => minute_floor(now).checked_sub(minutes(SWEEP_CATCH_UP_MINUTES)),
        }
        .map_err(|e| queue_error("sweep", e))?;
        let last = first
            .checked_add(minutes(MAX_SWEEP_BUCKETS - 1))
            .map_err(|e| queue_error("sweep", e))?
            .min(limit_bucket);

        let count = (last.as_second() - first.as_second()) / 60 + 1;
        let buckets: Vec<Timestamp> = (0..count.max(0))
            .filter_map(|i| first.checked_add(minutes(i)).ok())
            .collect();
        let mut moved = 0;
        for window in buckets.chunks(SWEEP_READ_CONCURRENCY) {
            // Reads run concurrently; sends and deletes go bucket by bucket, in order, so the
            // cursor can stop at the first bucket that failed.
            let mut reads = tokio::task::JoinSet::new();
            for (i, &bucket) in window.iter().enumerate() {
                let store = self.store.clone();
                reads.spawn(async move { (i, store.timers_in_bucket(bucket).await) });
            }
            let mut found: Vec<Result<Vec<Timer>, StoreError>> = window.iter().map(|_| Ok(Vec::new())).collect();
            while let Some(joined) = reads.join_next().await {
                let (i, timers) = joined.map_err(|e| queue_error("sweep", e))?;
                found[i] = timers;
            }
            for (&bucket, timers) in window.iter().zip(found) {
                let due: Vec<Timer> = match timers {
                    Ok(timers) => timers.into_iter().filter(|t| t.due_at <= limit).collect(),
                    Err(e) => return Err(self.stop_at(bucket, from_store(e)).await),
                };
                for chunk in due.chunks(SEND_BATCH_MAX) {
                    let messages: Vec<(StepMessage, u32)> = chunk
                        .iter()
                        .map(|t| {
                            (
                                fired(t),
                                seconds_until(t.due_at, now).min(u64::from(MAX_DELAY_SECONDS)) as u32,
                            )
                        })
                        .collect();
                    let failed = match self.queue.send_steps(&messages).await {
                        Ok(failed) => failed,
                        Err(e) => return Err(self.stop_at(bucket, e).await),
                    };
                    let sent: Vec<Timer> = chunk
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !failed.contains(i))
                        .map(|(_, t)| t.clone())
                        .collect();
                    self.store.delete_timers(&sent).await.map_err(from_store)?;
                    moved += sent.len();
                    if !failed.is_empty() {
                        let e = QueueError(format!("sweep: {} timer messages were not sent", failed.len()));
                        return Err(self.stop_at(bucket, e).await);
                    }
                }
            }
        }
        // The bucket holding the limit may keep timers due later than it: start there next time.
        let next = last
            .checked_add(minutes(1))
            .map_err(|e| queue_error("sweep", e))?
            .min(limit_bucket);
        self.store.set_sweep_cursor(next).await.map_err(from_store)?;
        Ok(moved)
    }
}
