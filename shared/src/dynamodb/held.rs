//! Inputs held while an automation is paused: one item per input, in the automation's
//! partition, sorted by run and then by arrival.

use super::{DynamoStore, Item, get_s, json_error, key, s, store_error, tenant_prefix};
use async_trait::async_trait;
use crmflow_core::command::Input;
use crmflow_core::ids::fnv1a64;
use crmflow_core::ports::{HeldInput, HeldInputStore, StoreError};
use jiff::Timestamp;

fn held_pk(tenant: &str, automation_id: &str) -> String {
    format!("{}HELD#{automation_id}", tenant_prefix(tenant))
}

fn run_prefix(run_id: &str) -> String {
    format!("RUN#{run_id}#")
}

#[async_trait]
impl HeldInputStore for DynamoStore {
    /// `PutItem` of `{PK: TENANT#t#HELD#automation, SK: RUN#run#<nanos>#<hash>, run_id, input}`:
    /// the same input held again in the same nanosecond overwrites itself.
    async fn hold(
        &self,
        tenant: &str,
        automation_id: &str,
        run_id: &str,
        input: &Input,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(input).map_err(|e| json_error("held input", e))?;
        let sk = format!(
            "{}{:020}#{:016x}",
            run_prefix(run_id),
            now.as_nanosecond(),
            fnv1a64(json.as_bytes())
        );
        let mut item = key(held_pk(tenant, automation_id), sk);
        item.insert("run_id".into(), s(run_id));
        item.insert("input".into(), s(json));
        self.put_item(item).await
    }

    /// `Query` of the run's sort-key prefix, oldest first.
    async fn held_for_run(
        &self,
        tenant: &str,
        automation_id: &str,
        run_id: &str,
        limit: usize,
    ) -> Result<Vec<HeldInput>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", super::PK)
            .expression_attribute_names("#sk", super::SK)
            .expression_attribute_values(":pk", s(held_pk(tenant, automation_id)))
            .expression_attribute_values(":prefix", s(run_prefix(run_id)))
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| store_error("Query", e))?;
        out.items.unwrap_or_default().iter().map(held_input).collect()
    }

    /// `Query` of the automation's partition from the run after `after`, keeping one entry per
    /// run (projecting only `run_id`).
    async fn runs_with_held(
        &self,
        tenant: &str,
        automation_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut runs: Vec<String> = Vec::new();
        // Sort keys of the run `after` all sort below `RUN#<after>$` ('$' follows '#').
        let mut start = after.map(|after| key(held_pk(tenant, automation_id), format!("RUN#{after}$")));
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", super::PK)
                .expression_attribute_values(":pk", s(held_pk(tenant, automation_id)))
                .projection_expression("run_id, PK, SK")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            for item in out.items.unwrap_or_default() {
                let run_id = get_s(&item, "run_id")?;
                if runs.last().map(String::as_str) != Some(run_id) {
                    if runs.len() == limit {
                        return Ok(runs);
                    }
                    runs.push(run_id.to_string());
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(runs),
            }
        }
    }

    /// `DeleteItem`.
    async fn forget(&self, tenant: &str, automation_id: &str, _run_id: &str, key_sk: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(held_pk(tenant, automation_id), key_sk)))
            .send()
            .await
            .map_err(|e| store_error("DeleteItem", e))?;
        Ok(())
    }
}

fn held_input(item: &Item) -> Result<HeldInput, StoreError> {
    let sk = get_s(item, super::SK)?;
    let json = get_s(item, "input")?;
    Ok(HeldInput {
        key: sk.to_string(),
        input: serde_json::from_str(json).map_err(|e| json_error(&format!("held input {sk}"), e))?,
    })
}
