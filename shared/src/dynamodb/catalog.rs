//! Automation definitions: one item per version, a `LATEST` pointer, and one trigger-index item
//! per trigger pattern of the latest version while it is active, so `active_for_event` is a few
//! Queries (the event type, each prefix wildcard, `*`), never a Scan.

use super::{DynamoStore, Expr, Item, PK, get_n, get_s, get_ss, json_error, key, n, s, tenant_prefix};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use crmflow_core::definition::{Automation, Program};
use crmflow_core::event::candidate_patterns;
use crmflow_core::ports::{AutomationCatalog, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const LATEST: &str = "LATEST";
/// How often `put` re-reads the latest pointer when concurrent puts keep winning.
const MAX_PUT_ATTEMPTS: usize = 5;

fn automation_pk(tenant: &str, automation_id: &str) -> String {
    format!("{}AUTO#{automation_id}", tenant_prefix(tenant))
}

fn version_sk(version: u32) -> String {
    format!("V#{version:010}")
}

fn trigger_pk(tenant: &str, pattern: &str) -> String {
    format!("{}TRIGGER#{pattern}", tenant_prefix(tenant))
}

fn trigger_sk(automation_id: &str) -> String {
    format!("AUTO#{automation_id}")
}

fn compile(automation: Automation) -> Result<Program, StoreError> {
    let what = format!(
        "automation {}/{} v{}",
        automation.tenant, automation.id, automation.version
    );
    Program::new(automation).map_err(|errors| {
        StoreError::Other(format!(
            "{what} does not validate: {}",
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        ))
    })
}

impl DynamoStore {
    /// The compiled program for a stored definition, from the cache when the definition is the
    /// one compiled before.
    fn program_from(
        &self,
        tenant: &str,
        automation_id: &str,
        version: u32,
        definition: &str,
    ) -> Result<Arc<Program>, StoreError> {
        let cache_key = (tenant.to_string(), automation_id.to_string(), version);
        if let Some((json, program)) = self.programs().get(&cache_key)
            && json == definition
        {
            return Ok(program.clone());
        }
        let automation: Automation = serde_json::from_str(definition)
            .map_err(|e| json_error(&format!("stored automation {tenant}/{automation_id} v{version}"), e))?;
        let program = Arc::new(compile(automation)?);
        self.programs()
            .insert(cache_key, (definition.to_string(), program.clone()));
        Ok(program)
    }

    fn program_from_item(&self, tenant: &str, automation_id: &str, item: &Item) -> Result<Arc<Program>, StoreError> {
        self.program_from(
            tenant,
            automation_id,
            get_n(item, "version")?,
            get_s(item, "definition")?,
        )
    }
}

#[async_trait]
impl AutomationCatalog for DynamoStore {
    async fn put(&self, automation: Automation) -> Result<(), StoreError> {
        let program = compile(automation)?;
        let a = &program.automation;
        let definition = serde_json::to_string(a).map_err(|e| json_error("serializing an automation", e))?;
        let pk = automation_pk(&a.tenant, &a.id);
        let mut version_item = key(&pk, version_sk(a.version));
        version_item.insert("definition".into(), s(&definition));
        version_item.insert("version".into(), n(a.version));
        version_item.insert("status".into(), s(status_name(a)));
        let new_triggers: BTreeSet<String> = if a.is_active() {
            a.trigger.event.patterns().into_iter().map(str::to_string).collect()
        } else {
            BTreeSet::new()
        };

        for _ in 0..MAX_PUT_ATTEMPTS {
            let latest = self.get_item(pk.clone(), LATEST).await?;
            let mut items = vec![self.tx_put(version_item.clone(), None)?];
            let becomes_latest = match &latest {
                None => true,
                Some(item) => a.version >= get_n::<u32>(item, "version")?,
            };
            if becomes_latest {
                let (rev, old_triggers) = match &latest {
                    Some(item) => (get_n::<u64>(item, "rev")?, get_ss(item, "triggers")),
                    None => (0, Vec::new()),
                };
                let mut latest_item = key(&pk, LATEST);
                latest_item.insert("definition".into(), s(&definition));
                latest_item.insert("version".into(), n(a.version));
                latest_item.insert("rev".into(), n(rev + 1));
                if !new_triggers.is_empty() {
                    latest_item.insert(
                        "triggers".into(),
                        AttributeValue::Ss(new_triggers.iter().cloned().collect()),
                    );
                }
                // Guards the trigger index against a concurrent put: both read `rev`, one wins.
                let guard = match latest {
                    None => Expr::new("attribute_not_exists(#pk)").name("#pk", PK),
                    Some(_) => Expr::new("#rev = :rev").name("#rev", "rev").value(":rev", n(rev)),
                };
                items.push(self.tx_put(latest_item, Some(guard))?);
                for old in old_triggers.iter().filter(|p| !new_triggers.contains(*p)) {
                    items.push(self.tx_delete(key(trigger_pk(&a.tenant, old), trigger_sk(&a.id)))?);
                }
                for pattern in &new_triggers {
                    let mut index = key(trigger_pk(&a.tenant, pattern), trigger_sk(&a.id));
                    index.insert("automation_id".into(), s(&a.id));
                    index.insert("definition".into(), s(&definition));
                    index.insert("version".into(), n(a.version));
                    items.push(self.tx_put(index, None)?);
                }
            }
            match self.transact(items).await {
                Ok(()) => {
                    let cache_key = (a.tenant.clone(), a.id.clone(), a.version);
                    self.programs().insert(cache_key, (definition, Arc::new(program)));
                    return Ok(());
                }
                Err(e) if becomes_latest && e.condition_failed(1) => continue,
                Err(e) => return Err(e.into_store_error(&format!("put automation {}/{}", a.tenant, a.id))),
            }
        }
        Err(StoreError::Conflict(format!(
            "automation {}/{}: concurrent puts kept winning",
            a.tenant, a.id
        )))
    }

    async fn active_for_event(&self, tenant: &str, event_type: &str) -> Result<Vec<Arc<Program>>, StoreError> {
        let mut queries = tokio::task::JoinSet::new();
        for pattern in candidate_patterns(event_type) {
            let store = self.clone();
            let pk = trigger_pk(tenant, &pattern);
            queries.spawn(async move { store.query_partition(&pk, None).await });
        }
        let mut by_id = BTreeMap::new();
        while let Some(joined) = queries.join_next().await {
            let items = joined.map_err(|e| StoreError::Other(format!("trigger index query: {e}")))??;
            for item in items {
                let automation_id = get_s(&item, "automation_id")?.to_string();
                if let std::collections::btree_map::Entry::Vacant(slot) = by_id.entry(automation_id) {
                    let program = self.program_from_item(tenant, slot.key(), &item)?;
                    slot.insert(program);
                }
            }
        }
        Ok(by_id.into_values().collect())
    }

    async fn get(&self, tenant: &str, automation_id: &str, version: u32) -> Result<Option<Arc<Program>>, StoreError> {
        // Versions are immutable once runs use them: a cached one needs no read.
        let cache_key = (tenant.to_string(), automation_id.to_string(), version);
        if let Some((_, program)) = self.programs().get(&cache_key) {
            return Ok(Some(program.clone()));
        }
        match self
            .get_item(automation_pk(tenant, automation_id), &version_sk(version))
            .await?
        {
            Some(item) => self.program_from_item(tenant, automation_id, &item).map(Some),
            None => Ok(None),
        }
    }

    async fn latest(&self, tenant: &str, automation_id: &str) -> Result<Option<Arc<Program>>, StoreError> {
        match self.get_item(automation_pk(tenant, automation_id), LATEST).await? {
            Some(item) => self.program_from_item(tenant, automation_id, &item).map(Some),
            None => Ok(None),
        }
    }
}

fn status_name(a: &Automation) -> String {
    serde_json::to_value(a.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
