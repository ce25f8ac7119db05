//! The management API's audit log (one partition per tenant, entries sorted by their UUID v7
//! id) and intake's trigger evaluations (one partition per automation and record, newest last,
//! expiring after `EVALUATION_RETENTION_DAYS`).

use super::{DynamoStore, EXPIRES_AT, Item, PK, get_s, json_error, key, n, s, store_error, tenant_prefix};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use crmflow_core::ports::{
    AuditEntry, AuditLog, EVALUATION_RETENTION_DAYS, EvaluationLog, StoreError, TriggerEvaluation,
};

fn audit_pk(tenant: &str) -> String {
    format!("{}AUDIT", tenant_prefix(tenant))
}

fn evaluation_pk(tenant: &str, automation_id: &str, subject: &str) -> String {
    format!("{}EVAL#{automation_id}#{subject}", tenant_prefix(tenant))
}

impl DynamoStore {
    /// Newest first: one page of partition `pk` (sort keys descending) after `after`.
    async fn newest_first(&self, pk: String, after: Option<&str>, limit: usize) -> Result<Vec<Item>, StoreError> {
        let start = after.map(|sk| key(pk.clone(), sk));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(false)
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| store_error("Query", e))?;
        Ok(out.items.unwrap_or_default())
    }
}

fn body<T: serde::de::DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
    let json = get_s(item, "entry")?;
    serde_json::from_str(json).map_err(|e| json_error(what, e))
}

#[async_trait]
impl AuditLog for DynamoStore {
    /// `PutItem` of `{PK: TENANT#t#AUDIT, SK: <entry id>, entry}` (kept: no TTL).
    async fn append(&self, tenant: &str, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut item = key(audit_pk(tenant), entry.id.clone());
        let json = serde_json::to_string(entry).map_err(|e| json_error("audit entry", e))?;
        item.insert("entry".into(), s(json));
        self.put_item(item).await
    }

    /// `Query`, descending.
    async fn list(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let items = self.newest_first(audit_pk(tenant), after, limit).await?;
        items.iter().map(|item| body(item, "stored audit entry")).collect()
    }
}

#[async_trait]
impl EvaluationLog for DynamoStore {
    /// `PutItem` of `{PK: TENANT#t#EVAL#automation#record, SK: <nanos>#<event id>, entry,
    /// expires_at}`.
    async fn record(
        &self,
        tenant: &str,
        automation_id: &str,
        evaluation: &TriggerEvaluation,
    ) -> Result<(), StoreError> {
        let at = evaluation.evaluated_at;
        let sk = format!("{:020}#{}", at.as_nanosecond(), evaluation.event_id);
        let mut item = key(evaluation_pk(tenant, automation_id, &evaluation.subject), sk);
        let json = serde_json::to_string(evaluation).map_err(|e| json_error("trigger evaluation", e))?;
        item.insert("entry".into(), s(json));
        let expires = at.as_second() + EVALUATION_RETENTION_DAYS * 86_400;
        item.insert(EXPIRES_AT.into(), n(expires));
        self.put_item(item).await
    }

    /// `Query`, descending (DynamoDB's TTL deletes expired items within days, so those past the
    /// retention are skipped here too).
    async fn recent(
        &self,
        tenant: &str,
        automation_id: &str,
        subject: &str,
        limit: usize,
    ) -> Result<Vec<TriggerEvaluation>, StoreError> {
        let items = self
            .newest_first(evaluation_pk(tenant, automation_id, subject), None, limit)
            .await?;
        let now = jiff::Timestamp::now().as_second();
        items
            .iter()
            .filter(|item| match item.get(EXPIRES_AT) {
                Some(AttributeValue::N(at)) => at.parse::<i64>().is_ok_and(|at| at > now),
                _ => true,
            })
            .map(|item| body(item, "stored trigger evaluation"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_separate_tenants_automations_and_records() {
        assert_eq!(super::audit_pk("t1"), "TENANT#t1#AUDIT");
        assert_ne!(
            super::evaluation_pk("t1", "a", "lead/L1"),
            super::evaluation_pk("t1", "a", "lead/L2")
        );
    }
}
