//! The claim / complete protocol of effects: `IDEMP#key` items in state `INPROGRESS` (with a
//! lease) or `COMPLETED` (with the effect's output).

use super::{
    DynamoStore, EXPIRES_AT, Item, PK, done_unless_other_error, get_n, get_s, json_error, key, n, s, store_error,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use crmflow_core::ports::{Claim, IdempotencyStore, StoreError};
use jiff::Timestamp;

const IDEMP_SK: &str = "IDEMP";
const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";
/// Idempotency records are kept this long (after the lease, or after completion): longer than
/// any message can be redelivered (SQS keeps messages 14 days at most).
pub const IDEMPOTENCY_RETENTION_DAYS: i64 = 30;
/// A claim that keeps racing with releases or lease expiries gives up after this many tries.
const MAX_CLAIM_ATTEMPTS: usize = 3;

fn idempotency_pk(idempotency_key: &str) -> String {
    format!("IDEMP#{idempotency_key}")
}

fn retention_from(epoch_seconds: i64) -> i64 {
    epoch_seconds + IDEMPOTENCY_RETENTION_DAYS * 86_400
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn claim(&self, idempotency_key: &str, now: Timestamp, lease_seconds: i64) -> Result<Claim, StoreError> {
        let now_s = now.as_second();
        let lease_until = now_s + lease_seconds;
        let mut item = key(idempotency_pk(idempotency_key), IDEMP_SK);
        item.insert("state".into(), s(IN_PROGRESS));
        item.insert("lease_until".into(), n(lease_until));
        item.insert(EXPIRES_AT.into(), n(retention_from(lease_until)));

        for _ in 0..MAX_CLAIM_ATTEMPTS {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(#pk) OR (#state = :in_progress AND #lease <= :now)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#lease", "lease_until")
                .expression_attribute_values(":in_progress", s(IN_PROGRESS))
                .expression_attribute_values(":now", n(now_s))
                // The old item tells a fresh claim from a takeover of an expired lease.
                .return_values(ReturnValue::AllOld)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let held = match result {
                Ok(out) if out.attributes.as_ref().is_some_and(|old| !old.is_empty()) => return Ok(Claim::Expired),
                Ok(_) => return Ok(Claim::Acquired),
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(failed)) => failed.item().cloned(),
                    _ => return Err(store_error("PutItem", err)),
                },
            };
            // Some servers do not return the item on a failed condition: read it.
            let held = match held.filter(|i| !i.is_empty()) {
                Some(item) => Some(item),
                None => self.get_item(idempotency_pk(idempotency_key), IDEMP_SK).await?,
            };
            let Some(held) = held else { continue }; // released meanwhile: claim again
            match held_claim(&held, now_s)? {
                Some(claim) => return Ok(claim),
                None => continue, // the lease ran out meanwhile: claim again
            }
        }
        Err(StoreError::Transient(format!(
            "claim {idempotency_key}: the record kept changing"
        )))
    }

    async fn complete(&self, idempotency_key: &str, output: &serde_json::Value) -> Result<(), StoreError> {
        let json = serde_json::to_string(output).map_err(|e| json_error("serializing an effect output", e))?;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(idempotency_pk(idempotency_key), IDEMP_SK)))
            .update_expression("SET #state = :completed, #output = :output, #expires = :expires REMOVE #lease")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#output", "output")
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_names("#lease", "lease_until")
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":output", s(json))
            .expression_attribute_values(":expires", n(retention_from(Timestamp::now().as_second())))
            .send()
            .await
            .map_err(|e| store_error("UpdateItem", e))?;
        Ok(())
    }

    async fn release(&self, idempotency_key: &str) -> Result<(), StoreError> {
        // Only an in-progress claim is released: a completed record stays.
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(idempotency_pk(idempotency_key), IDEMP_SK)))
            .condition_expression("#state = :in_progress")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .await;
        done_unless_other_error("DeleteItem", result)
    }
}

/// What a record that refused our claim says; `None` when its lease has run out by now.
fn held_claim(item: &Item, now_s: i64) -> Result<Option<Claim>, StoreError> {
    match get_s(item, "state")? {
        COMPLETED => {
            let output = match item.get("output") {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(json)) => {
                    serde_json::from_str(json).map_err(|e| json_error("stored effect output", e))?
                }
                _ => serde_json::Value::Null,
            };
            Ok(Some(Claim::Completed { output }))
        }
        IN_PROGRESS => {
            let lease_until: i64 = get_n(item, "lease_until")?;
            if lease_until > now_s {
                let until = Timestamp::from_second(lease_until)
                    .map_err(|e| StoreError::Other(format!("stored lease_until {lease_until}: {e}")))?;
                Ok(Some(Claim::InProgress { until }))
            } else {
                Ok(None)
            }
        }
        other => Err(StoreError::Other(format!(
            "idempotency record in unknown state {other:?}"
        ))),
    }
}
