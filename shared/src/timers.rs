//! Timers on AWS ([`AwsTimerService`]): due within 900 s → a delayed `TimerFired` step message;
//! later → an item in a [`TimerStore`] (the DynamoDB table on AWS), which the scheduled sweep moves
//! onto the step queue when it comes within the horizon.
//!
//! IAM actions per method (with [`crate::dynamodb::DynamoStore`] as the timer store):
//!
//! | method | actions |
//! |---|---|
//! | `AwsTimerService::schedule` | `sqs:SendMessage` (step queue) when due within 900 s, else `dynamodb:PutItem` |
//! | `AwsTimerService::cancel` | `dynamodb:DeleteItem` |
//! | `AwsTimerService::sweep` | `dynamodb:GetItem`, `dynamodb:Query`, `dynamodb:BatchWriteItem`, `dynamodb:UpdateItem`, `sqs:SendMessage` |

use crate::sqs::{MAX_DELAY_SECONDS, SEND_BATCH_MAX, SqsStepQueue, queue_error};
use async_trait::async_trait;
use crmflow_core::command::Input;
use crmflow_core::messages::StepMessage;
use crmflow_core::ports::{QueueError, StepQueue, StoreError, Timer, TimerService};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

/// Without a cursor (the first sweep), a sweep starts this far back.
pub const SWEEP_CATCH_UP_MINUTES: i64 = 24 * 60;
/// The most minute buckets one sweep reads: a backlog longer than the catch-up window is worked
/// off by the following sweeps, from the cursor, so no timer is skipped.
pub const MAX_SWEEP_BUCKETS: i64 = SWEEP_CATCH_UP_MINUTES + 16;
/// Bucket reads of a sweep in flight at once.
const SWEEP_READ_CONCURRENCY: usize = 16;

/// The start of the minute holding `at` (UTC): long timers are kept in per-minute buckets.
pub fn minute_floor(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second().div_euclid(60) * 60).unwrap_or(at)
}

/// Where long timers wait: per-minute buckets (keyed by [`minute_floor`] of the due time) and the
/// sweep cursor, the first bucket the next sweep reads.
#[async_trait]
pub trait TimerStore: Send + Sync {
    /// Stores a timer in its due minute's bucket.
    async fn put_timer(&self, timer: &Timer) -> Result<(), StoreError>;
    /// Deletes one timer (nothing to do if it is gone).
    async fn delete_timer(&self, timer: &Timer) -> Result<(), StoreError>;
    /// Deletes timers that were moved onto the queue.
    async fn delete_timers(&self, timers: &[Timer]) -> Result<(), StoreError>;
    /// The timers in the bucket of the minute starting at `minute`.
    async fn timers_in_bucket(&self, minute: Timestamp) -> Result<Vec<Timer>, StoreError>;
    async fn sweep_cursor(&self) -> Result<Option<Timestamp>, StoreError>;
    async fn set_sweep_cursor(&self, minute: Timestamp) -> Result<(), StoreError>;
}

/// Timers on AWS: due within 900 s → a delayed `TimerFired` step message straight away; later →
/// a DynamoDB timer item that [`TimerService::sweep`] moves onto the step queue when it comes
/// within the horizon.
///
/// `cancel` deletes the timer item. A delayed SQS message cannot be recalled, so a cancelled
/// short timer (or a long one already swept) still fires: the decider ignores a `TimerFired`
/// whose timer is not the run's current one (stale), so that is harmless.
#[derive(Clone)]
pub struct AwsTimerService {
    queue: SqsStepQueue,
    store: Arc<dyn TimerStore>,
}

impl AwsTimerService {
    pub fn new(queue: SqsStepQueue, store: Arc<dyn TimerStore>) -> Self {
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
