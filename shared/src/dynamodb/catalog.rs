//! Automation definitions: one item per version, a `LATEST` pointer, and one trigger-index item
//! per trigger pattern of the latest version while it is active, so `active_for_event` is a few
//! Queries (the event type, each prefix wildcard, `*`), never a Scan.

use super::{
    DynamoStore, Expr, GSI1PK, GSI1SK, Item, PK, SK, get_n, get_s, get_ss, json_error, key, n, s, tenant_prefix,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use crmflow_core::definition::{Automation, AutomationStatus, Program};
use crmflow_core::event::candidate_patterns;
use crmflow_core::ports::{AutomationCatalog, AutomationDirectory, AutomationVersion, CreateOutcome, StoreError};
use jiff::Timestamp;
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

/// What a put requires of the newest stored version (read, then guarded in the transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PutCheck {
    /// Nothing: a newer version becomes the latest, an older one is stored beside it.
    Any,
    /// No version is stored: the id is free.
    Absent,
    /// The newest version is the one before this one.
    Next,
    /// The newest version is this one (a status change).
    Latest,
}

impl PutCheck {
    fn allows(self, latest: Option<u32>, version: u32) -> bool {
        match self {
            PutCheck::Any => true,
            PutCheck::Absent => latest.is_none(),
            PutCheck::Next => latest == Some(version.saturating_sub(1)) && version > 1,
            PutCheck::Latest => latest == Some(version),
        }
    }
}

/// The GSI1 partition listing a tenant's automations (by id), on their `LATEST` items.
fn automations_of_tenant_pk(tenant: &str) -> String {
    format!("{}AUTOS", tenant_prefix(tenant))
}

impl DynamoStore {
    /// Stores a version when `check` holds; `Ok(false)` when it does not (nothing written).
    /// `created_at` is stored with the version; a [`PutCheck::Latest`] put keeps the stored one.
    async fn put_when(
        &self,
        automation: Automation,
        check: PutCheck,
        created_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let program = compile(automation)?;
        let a = &program.automation;
        let definition = serde_json::to_string(a).map_err(|e| json_error("serializing an automation", e))?;
        let pk = automation_pk(&a.tenant, &a.id);
        for _ in 0..MAX_PUT_ATTEMPTS {
            let latest = self.get_item(pk.clone(), LATEST).await?;
            let latest_version = latest.as_ref().map(|item| get_n::<u32>(item, "version")).transpose()?;
            if !check.allows(latest_version, a.version) {
                return Ok(false);
            }
            let created_at = match (check, latest.as_ref()) {
                (PutCheck::Latest, Some(item)) => get_s(item, "created_at").ok().map(str::to_owned),
                _ => created_at.map(|t| t.to_string()),
            };
            let written = Written {
                a,
                definition: &definition,
                created_at: created_at.as_deref(),
            };
            let mut items = vec![self.tx_put(written.version_item(&pk), None)?];
            let becomes_latest = latest_version.is_none_or(|v| a.version >= v);
            if becomes_latest {
                items.extend(self.latest_items(&written, &pk, latest.as_ref())?);
            }
            match self.transact(items).await {
                Ok(()) => {
                    let cache_key = (a.tenant.clone(), a.id.clone(), a.version);
                    self.programs().insert(cache_key, (definition, Arc::new(program)));
                    return Ok(true);
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

    /// The `LATEST` pointer (guarded by the `rev` read, or by its absence) and the trigger-index
    /// items that follow from the new latest version.
    fn latest_items(
        &self,
        written: &Written<'_>,
        pk: &str,
        latest: Option<&Item>,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StoreError> {
        let a = written.a;
        let (rev, old_triggers) = match latest {
            Some(item) => (get_n::<u64>(item, "rev")?, get_ss(item, "triggers")),
            None => (0, Vec::new()),
        };
        let new_triggers = written.triggers();
        let mut latest_item = written.version_item(pk);
        latest_item.insert(SK.into(), s(LATEST));
        latest_item.insert("rev".into(), n(rev + 1));
        latest_item.insert(GSI1PK.into(), s(automations_of_tenant_pk(&a.tenant)));
        latest_item.insert(GSI1SK.into(), s(trigger_sk(&a.id)));
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
        let mut items = vec![self.tx_put(latest_item, Some(guard))?];
        for old in old_triggers.iter().filter(|p| !new_triggers.contains(*p)) {
            items.push(self.tx_delete(key(trigger_pk(&a.tenant, old), trigger_sk(&a.id)))?);
        }
        for pattern in &new_triggers {
            let mut index = key(trigger_pk(&a.tenant, pattern), trigger_sk(&a.id));
            index.insert("automation_id".into(), s(&a.id));
            index.insert("definition".into(), s(written.definition));
            index.insert("version".into(), n(a.version));
            items.push(self.tx_put(index, None)?);
        }
        Ok(items)
    }
}

/// One version being written.
struct Written<'a> {
    a: &'a Automation,
    definition: &'a str,
    created_at: Option<&'a str>,
}

impl Written<'_> {
    fn version_item(&self, pk: &str) -> Item {
        let mut item = key(pk, version_sk(self.a.version));
        item.insert("definition".into(), s(self.definition));
        item.insert("version".into(), n(self.a.version));
        item.insert("status".into(), s(status_name(self.a)));
        if let Some(created_at) = self.created_at {
            item.insert("created_at".into(), s(created_at));
        }
        item
    }

    /// The trigger patterns the index holds for this version: its own while it is active.
    fn triggers(&self) -> BTreeSet<String> {
        if self.a.is_active() {
            self.a
                .trigger
                .event
                .patterns()
                .into_iter()
                .map(str::to_string)
                .collect()
        } else {
            BTreeSet::new()
        }
    }
}

#[async_trait]
impl AutomationCatalog for DynamoStore {
    async fn put(&self, automation: Automation) -> Result<(), StoreError> {
        self.put_when(automation, PutCheck::Any, None).await.map(|_| ())
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

/// A stored version as the management API shows it.
fn version_of(
    store: &DynamoStore,
    tenant: &str,
    automation_id: &str,
    item: &Item,
) -> Result<AutomationVersion, StoreError> {
    let created_at = match item.get("created_at") {
        Some(AttributeValue::S(t)) => Some(
            t.parse()
                .map_err(|e| StoreError::Other(format!("stored created_at {t:?}: {e}")))?,
        ),
        _ => None,
    };
    Ok(AutomationVersion {
        program: store.program_from_item(tenant, automation_id, item)?,
        created_at,
    })
}

#[async_trait]
impl AutomationDirectory for DynamoStore {
    async fn create(&self, automation: Automation, now: Timestamp) -> Result<CreateOutcome, StoreError> {
        Ok(match self.put_when(automation, PutCheck::Absent, Some(now)).await? {
            true => CreateOutcome::Created,
            false => CreateOutcome::AlreadyExists,
        })
    }

    async fn add_version(&self, automation: Automation, now: Timestamp) -> Result<(), StoreError> {
        let what = format!("automation {} v{}", automation.id, automation.version);
        match self.put_when(automation, PutCheck::Next, Some(now)).await? {
            true => Ok(()),
            false => Err(StoreError::Conflict(format!(
                "{what}: the previous version is not the newest"
            ))),
        }
    }

    async fn replace_latest(&self, automation: Automation) -> Result<(), StoreError> {
        let what = format!("automation {} v{}", automation.id, automation.version);
        match self.put_when(automation, PutCheck::Latest, None).await? {
            true => Ok(()),
            false => Err(StoreError::Conflict(format!("{what} is not the newest version"))),
        }
    }

    /// Pages through `GSI1` (`TENANT#t#AUTOS`, by id) and reads the `LATEST` items.
    async fn list(
        &self,
        tenant: &str,
        status: Option<AutomationStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AutomationVersion>, StoreError> {
        let gsi_pk = automations_of_tenant_pk(tenant);
        let mut kept = Vec::new();
        let mut after = after.map(str::to_owned);
        loop {
            let start = after
                .as_deref()
                .map(|id| (key(automation_pk(tenant, id), LATEST), trigger_sk(id)));
            let page = (limit - kept.len()).clamp(25, 100);
            let (keys, more) = self.gsi1_page(&gsi_pk, start, true, page).await?;
            let mut latest = self.batch_items(&keys).await?;
            for k in &keys {
                let pk = get_s(k, PK)?;
                let id = pk.rsplit_once("#AUTO#").map_or(pk, |(_, id)| id).to_owned();
                after = Some(id.clone());
                let Some(item) = latest.remove(pk) else { continue };
                let version = version_of(self, tenant, &id, &item)?;
                if status.is_none_or(|s| version.program.automation.status == s) {
                    kept.push(version);
                    if kept.len() == limit {
                        return Ok(kept);
                    }
                }
            }
            if keys.is_empty() || !more {
                return Ok(kept);
            }
        }
    }

    async fn versions(&self, tenant: &str, automation_id: &str) -> Result<Vec<AutomationVersion>, StoreError> {
        self.query_partition(&automation_pk(tenant, automation_id), Some("V#"))
            .await?
            .iter()
            .map(|item| version_of(self, tenant, automation_id, item))
            .collect()
    }
}
