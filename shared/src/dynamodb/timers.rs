//! Long timers (due more than 900 s ahead): items in per-minute buckets `DUE#yyyymmddHHMM`, and
//! the sweep cursor. [`DynamoStore`] is the [`TimerStore`] that [`crate::timers::AwsTimerService`]
//! puts, cancels and sweeps timers in.

use super::{DynamoStore, Item, build_error, done_unless_other_error, get_n, get_s, key, n, s, store_error};
use crate::timers::{TimerStore, minute_floor};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use crmflow_core::ports::{StoreError, Timer};
use jiff::Timestamp;

const SWEEP_PK: &str = "SWEEP";
const CURSOR_SK: &str = "CURSOR";
/// BatchWriteItem's limit.
const BATCH_WRITE_MAX: usize = 25;

/// The UTC minute bucket of an instant: `yyyymmddHHMM`.
pub fn timer_bucket(at: Timestamp) -> String {
    at.strftime("%Y%m%d%H%M").to_string()
}

fn bucket_pk(at: Timestamp) -> String {
    format!("DUE#{}", timer_bucket(at))
}

fn timer_key(timer: &Timer) -> Item {
    key(
        bucket_pk(timer.due_at),
        format!("RUN#{}#T#{}", timer.run_id, timer.timer_id),
    )
}

fn parse_timer(item: &Item) -> Result<Timer, StoreError> {
    let due_at = get_s(item, "due_at")?;
    Ok(Timer {
        tenant: get_s(item, "tenant")?.to_string(),
        run_id: get_s(item, "run_id")?.to_string(),
        timer_id: get_s(item, "timer_id")?.to_string(),
        due_at: due_at
            .parse()
            .map_err(|e| StoreError::Other(format!("stored timer due_at {due_at:?}: {e}")))?,
    })
}

#[async_trait]
impl TimerStore for DynamoStore {
    /// Stores a timer in its due minute's bucket.
    async fn put_timer(&self, timer: &Timer) -> Result<(), StoreError> {
        let mut item = timer_key(timer);
        item.insert("tenant".into(), s(&timer.tenant));
        item.insert("run_id".into(), s(&timer.run_id));
        item.insert("timer_id".into(), s(&timer.timer_id));
        item.insert("due_at".into(), s(timer.due_at.to_string()));
        self.put_item(item).await
    }

    /// Deletes a timer (nothing happens when it is not there).
    async fn delete_timer(&self, timer: &Timer) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(timer_key(timer)))
            .send()
            .await
            .map_err(|e| store_error("DeleteItem", e))?;
        Ok(())
    }

    /// Deletes timers in batches of 25.
    async fn delete_timers(&self, timers: &[Timer]) -> Result<(), StoreError> {
        for chunk in timers.chunks(BATCH_WRITE_MAX) {
            let mut pending = chunk
                .iter()
                .map(|t| {
                    let delete = DeleteRequest::builder()
                        .set_key(Some(timer_key(t)))
                        .build()
                        .map_err(build_error)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            // BatchWriteItem may leave requests unprocessed under load: send those again.
            for attempt in 0..5u32 {
                if pending.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| store_error("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::Transient(format!(
                    "{} timer deletes stayed unprocessed",
                    pending.len()
                )));
            }
        }
        Ok(())
    }

    /// The timers in the bucket of the minute holding `minute`.
    async fn timers_in_bucket(&self, minute: Timestamp) -> Result<Vec<Timer>, StoreError> {
        self.query_partition(&bucket_pk(minute), None)
            .await?
            .iter()
            .map(parse_timer)
            .collect()
    }

    /// The first minute the next sweep must look at (`None` before the first sweep).
    async fn sweep_cursor(&self) -> Result<Option<Timestamp>, StoreError> {
        let Some(item) = self.get_item(SWEEP_PK.to_string(), CURSOR_SK).await? else {
            return Ok(None);
        };
        let minute: i64 = get_n(&item, "minute")?;
        Timestamp::from_second(minute * 60)
            .map(Some)
            .map_err(|e| StoreError::Other(format!("stored sweep cursor {minute}: {e}")))
    }

    /// Moves the sweep cursor forward to `minute` (never back: a slower concurrent sweep that
    /// got less far leaves it where it is).
    async fn set_sweep_cursor(&self, minute: Timestamp) -> Result<(), StoreError> {
        let minute = minute_floor(minute);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(SWEEP_PK, CURSOR_SK)))
            .update_expression("SET #m = :m, #b = :b")
            .condition_expression("attribute_not_exists(#m) OR #m < :m")
            .expression_attribute_names("#m", "minute")
            .expression_attribute_names("#b", "bucket")
            .expression_attribute_values(":m", n(minute.as_second() / 60))
            .expression_attribute_values(":b", s(timer_bucket(minute)))
            .send()
            .await;
        done_unless_other_error("UpdateItem", result)
    }
}
