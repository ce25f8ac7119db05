//! DynamoDB adapter: [`DynamoStore`] implements [`crmflow_core::ports::RunStore`],
//! [`crmflow_core::ports::IdempotencyStore`], [`crmflow_core::ports::AutomationCatalog`] and, for the
//! management API, [`crmflow_core::ports::AutomationDirectory`],
//! [`crmflow_core::ports::RunDirectory`] and [`crmflow_core::ports::ApiKeyStore`], and keeps the long
//! timers that [`crate::timers::AwsTimerService`] schedules and sweeps.
//!
//! One table: `PK` (S) / `SK` (S), one GSI `GSI1` (`GSI1PK` / `GSI1SK`, keys only) and TTL on
//! `expires_at` (epoch seconds). Bodies (definitions, run heads, step records) are JSON strings,
//! but for the run head's, deflated (binary); the attributes beside them exist for conditions,
//! indexes and TTL.
//!
//! | item | PK | SK | attributes |
//! |---|---|---|---|
//! | automation version | `TENANT#t#AUTO#id` | `V#0000000007` | `definition`, `version`, `status`, `created_at` (RFC 3339, when stored through the API) |
//! | latest pointer | `TENANT#t#AUTO#id` | `LATEST` | the newest version's attributes, `rev`, `triggers` (SS), `GSI1PK`=`TENANT#t#AUTOS`, `GSI1SK`=`AUTO#id` |
//! | trigger index | `TENANT#t#TRIGGER#<pattern>` | `AUTO#id` | `definition`, `version` (latest version, only while active) |
//! | run head | `TENANT#t#RUN#id` | `RUN` | `run_z` (deflated JSON; `run`, text, in heads written before), `version`, `status`, `automation_id`, `automation_version`, `GSI1PK`=`TENANT#t#AUTO#id#RUNS`, `GSI1SK`=`RUN#id`, `expires_at` once terminal |
//! | step record | `TENANT#t#RUN#id` | `STEP#000012` | `record`, `seq`, `expires_at` |
//! | enrollment | `TENANT#t#ENROLL#automation#key` | `ENROLL` | `version`, `active_runs` (SS), `total_enrollments`, `last_enrolled_at` |
//! | route | `TENANT#t#ROUTE#lead/L1` | `RUN#id` | `run_id`, `automation_id`, `since` (the version that reopened the run) |
//! | event dedupe | `TENANT#t#EVENT#id` | `EVENT` | `expires_at` (+7 days) |
//! | idempotency | `IDEMP#key` | `IDEMP` | `state` (`INPROGRESS`/`COMPLETED`), `lease_until`, `output`, `expires_at` |
//! | long timer | `DUE#yyyymmddHHMM` | `RUN#run_id#T#timer_id` | `tenant`, `run_id`, `timer_id`, `due_at` |
//! | sweep cursor | `SWEEP` | `CURSOR` | `minute` (epoch minutes of the next bucket to sweep), `bucket` |
//! | audit entry | `TENANT#t#AUDIT` | entry id (UUID v7) | `entry` (JSON) |
//! | trigger evaluation | `TENANT#t#EVAL#automation#lead/L1` | `<nanos>#<event id>` | `entry` (JSON), `expires_at` (+7 days) |
//! | held input | `TENANT#t#HELD#automation` | `RUN#run_id#<nanos>#<hash>` | `run_id`, `input` (held while the automation is paused) |
//! | API key | `APIKEY#<SHA-256 of the key>` | `APIKEY` | `key_id`, `tenant`, `created_at`, `revoked`, `revoked_at` |
//! | a tenant's API keys | `TENANT#t#APIKEYS` | `KEY#<key_id>` | `key_id`, `digest`, `created_at`, `revoked`, `revoked_at` |
//!
//! IAM actions per method (on the table, and `table/index/GSI1` for the listings):
//!
//! | method | actions |
//! |---|---|
//! | `AutomationCatalog::put` | `GetItem`, `TransactWriteItems` (→ `PutItem`, `DeleteItem`) |
//! | `AutomationCatalog::active_for_event` | `Query` |
//! | `AutomationCatalog::get`, `latest` | `GetItem` |
//! | `AutomationDirectory::create`, `add_version`, `replace_latest` | as `put` |
//! | `AutomationDirectory::list` | `Query` (on `GSI1`), `BatchGetItem` |
//! | `AutomationDirectory::versions` | `Query` |
//! | `RunStore::enrollment`, `load_run` | `GetItem` |
//! | `RunStore::load_run_to_save` | `GetItem`; `PutItem`, `UpdateItem` (a head whose save was interrupted) |
//! | `RunStore::create_run` | `TransactWriteItems` (→ `PutItem`) |
//! | `RunStore::save_run` | `PutItem`, `DeleteItem`, `UpdateItem` |
//! | `RunStore::save_reopened` | `TransactWriteItems` (→ `PutItem`) |
//! | `RunStore::history`, `routes` | `Query` |
//! | `RunStore::mark_event_processed` | `PutItem` |
//! | `RunStore::event_processed` | `GetItem` |
//! | `IdempotencyStore::claim` | `PutItem`, `GetItem` (only when the put lost and no item came back) |
//! | `IdempotencyStore::complete` | `UpdateItem` |
//! | `IdempotencyStore::release` | `DeleteItem` |
//! | `DynamoStore::list_runs`, `RunDirectory::list_runs` | `Query` (on `GSI1`), `BatchGetItem` |
//! | `AuditLog::append`, `EvaluationLog::record` | `PutItem` |
//! | `AuditLog::list`, `EvaluationLog::recent` | `Query` |
//! | `HeldInputStore::hold` | `PutItem` |
//! | `HeldInputStore::held_for_run`, `runs_with_held` | `Query` |
//! | `HeldInputStore::forget` | `DeleteItem` |
//! | `DynamoStore::put_timer` | `PutItem` |
//! | `DynamoStore::delete_timer` | `DeleteItem` |
//! | `DynamoStore::delete_timers` | `BatchWriteItem` |
//! | `DynamoStore::timers_in_bucket` | `Query` |
//! | `DynamoStore::sweep_cursor` / `set_sweep_cursor` | `GetItem` / `UpdateItem` |
//! | `ApiKeyStore::credential` | `GetItem` |
//! | `DynamoStore::put_api_key` | `TransactWriteItems` (→ `PutItem`) |
//! | `DynamoStore::list_api_keys` | `Query` |
//! | `DynamoStore::revoke_api_key` | `GetItem`, `TransactWriteItems` (→ `UpdateItem`) |
//!
//! A `TransactWriteItems` call needs the permissions of the item actions it contains.

mod api_keys;
mod catalog;
mod deflate;
mod held;
mod idempotency;
mod logs;
mod runs;
mod timers;

use super::request_counter::RequestCounter;
use super::sdk::{describe, dynamodb_client, is_transient};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use crmflow_core::definition::Program;
use crmflow_core::ports::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub use api_keys::{ApiKeyInfo, Revocation};
pub use timers::timer_bucket;

/// Attribute names.
pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
/// The TTL attribute (epoch seconds).
pub const EXPIRES_AT: &str = "expires_at";

/// A DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// Compiled programs by (tenant, automation id, version), with the definition JSON they came from.
type ProgramCache = HashMap<(String, String, u32), (String, Arc<Program>)>;

/// Runs, definitions, idempotency records and long timers in one DynamoDB table.
/// Clones share the client and the program cache.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    run_retention_days: u32,
    programs: Arc<Mutex<ProgramCache>>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .field("run_retention_days", &self.run_retention_days)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store on `table`. Finished runs (head and history) expire `run_retention_days` after
    /// they end.
    pub fn new(
        sdk: &SdkConfig,
        counter: Option<&RequestCounter>,
        table: impl Into<String>,
        run_retention_days: u32,
    ) -> Self {
        Self::from_client(dynamodb_client(sdk, counter), table, run_retention_days)
    }

    /// A store on an existing client.
    pub fn from_client(client: Client, table: impl Into<String>, run_retention_days: u32) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            run_retention_days,
            programs: Arc::default(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn programs(&self) -> MutexGuard<'_, ProgramCache> {
        self.programs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One unconditional `PutItem`.
    async fn put_item(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error("PutItem", e))?;
        Ok(())
    }

    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(out.item)
    }

    /// Every item of a partition (optionally only sort keys starting with `sk_prefix`), in sort
    /// key order, following pages. Strongly consistent.
    async fn query_partition(&self, pk: &str, sk_prefix: Option<&str>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start.take());
            q = match sk_prefix {
                Some(prefix) => q
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":prefix", s(prefix)),
                None => q.key_condition_expression("#pk = :pk"),
            };
            let out = q.send().await.map_err(|e| store_error("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// One page of `GSI1` partition `gsi_pk` (keys only: each item's `PK` and `SK`), in index
    /// order (`forward`) or reversed, starting after the item whose table key is `after` (`PK`,
    /// `SK`, with its `GSI1SK` as `after_gsi_sk`); the second value says whether the index
    /// holds more.
    async fn gsi1_page(
        &self,
        gsi_pk: &str,
        after: Option<(Item, String)>,
        forward: bool,
        limit: usize,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let start = after.map(|(mut start, gsi_sk)| {
            start.insert(GSI1PK.into(), s(gsi_pk));
            start.insert(GSI1SK.into(), s(gsi_sk));
            start
        });
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1PK)
            .expression_attribute_values(":pk", s(gsi_pk))
            .scan_index_forward(forward)
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| store_error("Query", e))?;
        let keys = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| Some(key(get_s(&item, PK).ok()?, get_s(&item, SK).ok()?)))
            .collect();
        Ok((keys, out.last_evaluated_key.is_some()))
    }

    /// The items at `keys` (read consistently), by partition key, with `BatchGetItem` in chunks
    /// of 100, asking again for keys DynamoDB leaves unprocessed under load. Missing items are
    /// absent from the map.
    async fn batch_items(&self, keys: &[Item]) -> Result<HashMap<String, Item>, StoreError> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut pending = chunk.to_vec();
            for _ in 0..5 {
                if pending.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(build_error)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| store_error("BatchGetItem", e))?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    found.insert(get_s(&item, PK)?.to_string(), item);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::Transient(
                    "BatchGetItem kept leaving keys unprocessed".into(),
                ));
            }
        }
        Ok(found)
    }

    /// Runs one transaction. `Err(Cancelled(codes))` when it was cancelled: one code per item,
    /// in order (`None`, `ConditionalCheckFailed`, `TransactionConflict`, ...).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TxError> {
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(TxError::Store(StoreError::Other(format!(
                "a transaction of {} items exceeds DynamoDB's limit of {MAX_TRANSACTION_ITEMS}",
                items.len()
            ))));
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => {
                if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                    cancelled,
                )) = err.as_service_error()
                {
                    let codes: Vec<String> = cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_string())
                        .collect();
                    // Throttled inside a transaction: worth retrying as is.
                    if codes.iter().any(|c| c.contains("Throttl") || c == "ProvisionedThroughputExceeded") {
                        return Err(TxError::Store(StoreError::Transient(describe(&err))));
                    }
                    return Err(TxError::Cancelled(codes, describe(&err)));
                }
                Err(TxError::Store(store_error("TransactWriteItems", err)))
            }
        }
    }
}

/// DynamoDB's limit of actions per `TransactWriteItems`.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// A transaction's failure.
#[derive(Debug)]
enum TxError {
    /// Cancelled: the cancellation reason code of each item, in order, and the error text.
    Cancelled(Vec<String>, String),
    Store(StoreError),
}

impl TxError {
    /// Did the condition of item `index` fail?
    fn condition_failed(&self, index: usize) -> bool {
        matches!(self, TxError::Cancelled(codes, _) if codes.get(index).is_some_and(|c| c == "ConditionalCheckFailed"))
    }

    /// Maps what is left to a store error: a failed condition or a conflicting transaction is a
    /// conflict (re-read and decide again).
    fn into_store_error(self, what: &str) -> StoreError {
        match self {
            TxError::Cancelled(codes, text) => {
                StoreError::Conflict(format!("{what}: transaction cancelled [{}]: {text}", codes.join(", ")))
            }
            TxError::Store(e) => e,
        }
    }
}

/// Maps an SDK error: throttling, 5xx, timeouts and connection failures are transient.
fn store_error<E>(operation: &str, err: SdkError<E, Response>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if is_transient(&err) {
        StoreError::Transient(format!("{operation}: {}", describe(&err)))
    } else {
        StoreError::Other(format!("{operation}: {}", describe(&err)))
    }
}

/// The result of a conditional write where losing the condition means "nothing to do" (the item
/// has moved on): a failed condition is `Ok`, any other error a [`StoreError`].
fn done_unless_other_error<T, E>(operation: &str, result: Result<T, SdkError<E, Response>>) -> Result<(), StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error().and_then(ProvideErrorMetadata::code) == Some("ConditionalCheckFailedException") =>
        {
            Ok(())
        }
        Err(e) => Err(store_error(operation, e)),
    }
}

fn build_error(e: aws_smithy_types::error::operation::BuildError) -> StoreError {
    StoreError::Other(format!("building a DynamoDB request: {e}"))
}

fn json_error(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Other(format!("{what}: {e}"))
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Other(format!(
            "item {} has no string attribute {name}",
            item_key(item)
        ))),
    }
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Other(format!("item {}: {name} is not a valid number: {v}", item_key(item)))),
        _ => Err(StoreError::Other(format!(
            "item {} has no number attribute {name}",
            item_key(item)
        ))),
    }
}

fn get_ss(item: &Item, name: &str) -> Vec<String> {
    match item.get(name) {
        Some(AttributeValue::Ss(v)) => v.clone(),
        _ => Vec::new(),
    }
}

/// `PK/SK` of an item, for error messages.
fn item_key(item: &Item) -> String {
    let part = |name| match item.get(name) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "?",
    };
    format!("{}/{}", part(PK), part(SK))
}

fn tenant_prefix(tenant: &str) -> String {
    format!("TENANT#{tenant}#")
}

/// An expression with its placeholders (`#name`, `:value`).
#[derive(Debug, Default, Clone)]
struct Expr {
    text: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn new(text: impl Into<String>) -> Self {
        Expr {
            text: text.into(),
            ..Expr::default()
        }
    }
    fn name(mut self, placeholder: &str, name: &str) -> Self {
        self.names.insert(placeholder.to_string(), name.to_string());
        self
    }
    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_string(), value);
        self
    }
    /// DynamoDB refuses empty placeholder maps: `None` instead.
    fn names_opt(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
    fn values_opt(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

impl DynamoStore {
    fn tx_put(&self, item: Item, condition: Option<Expr>) -> Result<TransactWriteItem, StoreError> {
        let condition = condition.unwrap_or_default();
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression((!condition.text.is_empty()).then(|| condition.text.clone()))
            .set_expression_attribute_names(condition.names_opt())
            .set_expression_attribute_values(condition.values_opt())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn tx_delete(&self, key: Item) -> Result<TransactWriteItem, StoreError> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// An update; `update` carries the placeholders of the update and the condition.
    fn tx_update(&self, key: Item, update: Expr, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        let update_item = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(&update.text)
            .set_condition_expression(condition.map(str::to_string))
            .set_expression_attribute_names(update.names_opt())
            .set_expression_attribute_values(update.values_opt())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update_item).build())
    }
}
