//! A cost ledger: an SDK interceptor that tallies, per (service, operation), what AWS bills for
//! each request, computed from what is actually sent and received:
//!
//! - **DynamoDB** request units, by the item-size rules of [`super::item_size`]:
//!   - `PutItem`, `UpdateItem`: write units on the larger of the item before and after;
//!     `DeleteItem`: on the deleted item; at least 1 each; a write whose condition fails is
//!     billed on the item as it is;
//!   - `TransactWriteItems`: each item twice (`ConditionCheck` items bill as writes); a
//!     cancelled transaction is billed as if it had run;
//!   - `BatchWriteItem`: each item as its own put or delete;
//!   - global secondary index writes, on the index entry (the table's and the index's keys and
//!     the projected attributes): 1 write when an entry appears, changes or goes, 2 when its
//!     index key changes, none when it is unchanged; not doubled in transactions; none for a
//!     write whose condition fails;
//!   - `GetItem`: read units on the item (per 4 KB, at least 1, even when absent);
//!     `BatchGetItem`: the same per key; `Query`, `Scan`: on the sum of the items read, rounded
//!     up once; half for eventually consistent reads (index queries always are). A query with
//!     a projection is billed on the whole items, taken from [`ItemImages`] when known.
//!
//!   The item before a write comes from [`ItemImages`] (shared by the ledgers of a
//!   deployment); a write to an item never seen is billed as if the item were new (updates,
//!   deletes and condition checks of such items are counted in [`Tally::unknown_before`]).
//! - **SQS** billed requests: 1 per 64 KB (65,536 bytes) chunk of payload (message bodies and
//!   attributes; a receive counts what it returns), at least 1 per request.
//! - **SES** emails: one per recipient of each accepted `SendEmail`.
//!
//! A request that gets no answer is counted but billed nothing more. Every attempt is a
//! request, retries included, as for [`crmflow_aws::request_counter::RequestCounter`].

use super::item_images::{Item, ItemImages, Known, Placeholders, TableSchema, apply_update};
use super::item_size::{item_size, read_units, write_units};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// SQS bills a request per this many bytes of payload.
pub const SQS_CHUNK_BYTES: u64 = 65_536;

/// What one (service, operation) cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    /// Requests sent (every attempt).
    pub requests: u64,
    /// DynamoDB read request units (a strongly consistent read of 4 KB is 1, eventually
    /// consistent 0.5).
    pub read_units: f64,
    /// DynamoDB write request units on the table (1 per KB of item; transactional writes count
    /// twice, included here).
    pub write_units: u64,
    /// Of [`Tally::write_units`], the extra units transactions cost (half of their units).
    pub transactional_extra_write_units: u64,
    /// DynamoDB write request units on global secondary indexes.
    pub index_write_units: u64,
    /// SQS billed requests (1 per 64 KB chunk of payload).
    pub sqs_requests: u64,
    /// SES emails (1 per recipient).
    pub emails: u64,
    /// DynamoDB updates, deletes and condition checks of items never seen, billed as if the
    /// item were absent (a put of an item never seen is taken to create it).
    pub unknown_before: u64,
    /// Update expressions the ledger could not apply (the item after is then the item before
    /// with the expression's values set).
    pub approximated_updates: u64,
}

impl Tally {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.read_units += other.read_units;
        self.write_units += other.write_units;
        self.transactional_extra_write_units += other.transactional_extra_write_units;
        self.index_write_units += other.index_write_units;
        self.sqs_requests += other.sqs_requests;
        self.emails += other.emails;
        self.unknown_before += other.unknown_before;
        self.approximated_updates += other.approximated_updates;
    }

    /// All write request units: the table's and the indexes'.
    pub fn all_write_units(&self) -> u64 {
        self.write_units + self.index_write_units
    }
}

/// Tallies keyed by (service, operation).
pub type Tallies = BTreeMap<(String, String), Tally>;

/// The cost ledger of one function (or any set of clients); clones share the tallies. Attach it
/// with [`crmflow_aws::request_counter::RequestCounter::with_interceptor`].
#[derive(Debug, Clone)]
pub struct CostLedger {
    tallies: Arc<Mutex<Tallies>>,
    images: ItemImages,
    schema: Arc<TableSchema>,
}

impl CostLedger {
    /// A ledger for tables of `schema`, keeping item images in `images` (share one set between
    /// the ledgers of clients that write the same tables).
    pub fn new(schema: TableSchema, images: ItemImages) -> Self {
        CostLedger {
            tallies: Arc::default(),
            images,
            schema: Arc::new(schema),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tallies> {
        self.tallies.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn add(&self, service: &str, operation: &str, tally: &Tally) {
        self.lock()
            .entry((service.to_string(), operation.to_string()))
            .or_default()
            .add(tally);
    }

    /// A copy of the tallies.
    pub fn snapshot(&self) -> Tallies {
        self.lock().clone()
    }

    /// The sum of every tally.
    pub fn total(&self) -> Tally {
        let mut total = Tally::default();
        for t in self.lock().values() {
            total.add(t);
        }
        total
    }

    /// Clears the tallies (the item images stay).
    pub fn reset(&self) {
        self.lock().clear();
    }

    /// Tallies a request about to be sent (`body`: its JSON body) and returns what its answer
    /// is needed for.
    pub fn on_request(&self, service: &str, operation: &str, body: &Value) -> Pending {
        let mut tally = Tally {
            requests: 1,
            ..Tally::default()
        };
        let mut pending = Pending::default();
        match service {
            "DynamoDB" => self.dynamodb_request(operation, body, &mut pending),
            "SQS" => tally.sqs_requests = chunks(sqs_request_payload(operation, body)),
            "SESv2" if operation == "SendEmail" => pending.recipients = recipients(body),
            _ => {}
        }
        self.add(service, operation, &tally);
        pending
    }

    /// Tallies the answer (`status`, JSON `body`) to a request [`CostLedger::on_request`] saw.
    pub fn on_response(&self, service: &str, operation: &str, pending: &Pending, status: u16, body: &Value) {
        let ok = (200..300).contains(&status);
        let mut tally = Tally::default();
        match service {
            "DynamoDB" => self.dynamodb_response(operation, pending, ok, body, &mut tally),
            "SQS" if ok && operation == "ReceiveMessage" => {
                let payload: u64 = body["Messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(message_payload)
                    .sum();
                tally.sqs_requests = chunks(payload) - 1;
            }
            "SESv2" if ok => tally.emails = pending.recipients,
            _ => {}
        }
        self.add(service, operation, &tally);
    }

    fn dynamodb_request(&self, operation: &str, body: &Value, pending: &mut Pending) {
        let table = str_of(body, "TableName");
        match operation {
            "PutItem" => pending.writes.push(self.put(table, &body["Item"], 1)),
            "UpdateItem" => pending.writes.push(self.update(table, body, 1)),
            "DeleteItem" => pending.writes.push(self.delete(table, &body["Key"], 1)),
            "TransactWriteItems" => {
                for action in body["TransactItems"].as_array().into_iter().flatten() {
                    let write = if let Some(put) = action.get("Put") {
                        self.put(str_of(put, "TableName"), &put["Item"], 2)
                    } else if let Some(update) = action.get("Update") {
                        self.update(str_of(update, "TableName"), update, 2)
                    } else if let Some(delete) = action.get("Delete") {
                        self.delete(str_of(delete, "TableName"), &delete["Key"], 2)
                    } else if let Some(check) = action.get("ConditionCheck") {
                        self.condition_check(str_of(check, "TableName"), &check["Key"])
                    } else {
                        continue;
                    };
                    pending.writes.push(write);
                }
            }
            "BatchWriteItem" => {
                for (table, requests) in body["RequestItems"].as_object().into_iter().flatten() {
                    for r in requests.as_array().into_iter().flatten() {
                        if let Some(put) = r.get("PutRequest") {
                            pending.writes.push(self.put(table, &put["Item"], 1));
                        } else if let Some(delete) = r.get("DeleteRequest") {
                            pending.writes.push(self.delete(table, &delete["Key"], 1));
                        }
                    }
                }
            }
            _ => {
                pending.table = table.to_string();
                pending.consistent = body["ConsistentRead"].as_bool().unwrap_or(false);
                pending.index = body.get("IndexName").and_then(Value::as_str).map(str::to_string);
                pending.batch_gets = body["RequestItems"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(t, r)| {
                        let consistent = r["ConsistentRead"].as_bool().unwrap_or(false);
                        (t.clone(), (consistent, r["Keys"].as_array().map_or(0, Vec::len) as u64))
                    })
                    .collect();
            }
        }
    }

    fn dynamodb_response(&self, operation: &str, pending: &Pending, ok: bool, body: &Value, tally: &mut Tally) {
        for write in &pending.writes {
            write.bill(ok, tally);
            if ok {
                self.images.set(&write.table, &write.key, write.after.clone());
            }
        }
        if !ok {
            return;
        }
        match operation {
            "GetItem" => {
                let item = body.get("Item").and_then(Value::as_object);
                let units = read_units(item.map_or(0, item_size)) as f64;
                tally.read_units += if pending.consistent { units } else { units / 2.0 };
                if let Some(item) = item {
                    self.remember(&pending.table, item);
                }
            }
            "Query" | "Scan" => tally.read_units += self.query_units(pending, body),
            "BatchGetItem" => tally.read_units += self.batch_get_units(pending, body),
            _ => {}
        }
    }

    /// A read item's image, when it holds the whole item (no projection).
    fn remember(&self, table: &str, item: &Item) {
        if let Some(key) = self.schema.key_of(item) {
            self.images.set(table, &key, Some(item.clone()));
        }
    }

    fn query_units(&self, pending: &Pending, body: &Value) -> f64 {
        let mut bytes = 0;
        for item in body["Items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
        {
            bytes += self.read_size(pending, item);
        }
        let units = read_units(bytes) as f64;
        if pending.consistent && pending.index.is_none() {
            units
        } else {
            units / 2.0
        }
    }

    /// The size a read of `item` (as returned) is billed on: the index entry for an index
    /// query, else the whole item (its known image when a projection left attributes out).
    fn read_size(&self, pending: &Pending, item: &Item) -> u64 {
        if let Some(index) = &pending.index {
            let entry = self
                .schema
                .indexes
                .iter()
                .find(|i| &i.name == index)
                .and_then(|i| self.schema.index_entry(i, item));
            return entry.as_ref().map_or_else(|| item_size(item), item_size);
        }
        let known = self
            .schema
            .key_of(item)
            .map(|key| self.images.get(&pending.table, &key));
        match known.as_ref().and_then(Known::item) {
            Some(whole) => item_size(whole).max(item_size(item)),
            None => item_size(item),
        }
    }

    /// Each key read as a `GetItem`: the items found on their size, the keys not found (asked
    /// for and neither returned nor left unprocessed) 1 unit each.
    fn batch_get_units(&self, pending: &Pending, body: &Value) -> f64 {
        let mut units = 0.0;
        for (table, (consistent, keys)) in &pending.batch_gets {
            let items: Vec<&Item> = body["Responses"][table]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .collect();
            let unprocessed = body["UnprocessedKeys"][table]["Keys"].as_array().map_or(0, Vec::len) as u64;
            let missing = keys.saturating_sub(items.len() as u64 + unprocessed);
            let mut u = missing as f64;
            for item in items {
                u += read_units(item_size(item)) as f64;
                self.remember(table, item);
            }
            units += if *consistent { u } else { u / 2.0 };
        }
        units
    }

    fn before(&self, table: &str, key: &Item) -> (Option<Item>, bool) {
        match self.images.get(table, key) {
            Known::Unknown => (None, false),
            Known::Absent => (None, true),
            Known::Present(item) => (Some(item), true),
        }
    }

    fn put(&self, table: &str, item: &Value, factor: u64) -> Write {
        let item = item.as_object().cloned().unwrap_or_default();
        let key = self.schema.key_of(&item).unwrap_or_default();
        // A put of an item never seen is taken to create it: not counted as unknown.
        let (before, _) = self.before(table, &key);
        self.write(table, key, before, Some(item), true, factor)
    }

    fn delete(&self, table: &str, key: &Value, factor: u64) -> Write {
        let key = key.as_object().cloned().unwrap_or_default();
        let (before, known) = self.before(table, &key);
        self.write(table, key, before, None, known, factor)
    }

    fn condition_check(&self, table: &str, key: &Value) -> Write {
        let key = key.as_object().cloned().unwrap_or_default();
        let (before, known) = self.before(table, &key);
        let mut write = self.write(table, key, before.clone(), before, known, 2);
        write.index_units = 0;
        write
    }

    fn update(&self, table: &str, body: &Value, factor: u64) -> Write {
        let key = body["Key"].as_object().cloned().unwrap_or_default();
        let (before, known) = self.before(table, &key);
        let empty = Map::new();
        let placeholders = Placeholders {
            names: body["ExpressionAttributeNames"].as_object().unwrap_or(&empty),
            values: body["ExpressionAttributeValues"].as_object().unwrap_or(&empty),
        };
        let expression = str_of(body, "UpdateExpression");
        let (after, approximated) = match apply_update(before.as_ref(), &key, expression, placeholders) {
            Ok(after) => (after, false),
            Err(_) => {
                let mut after = before.clone().unwrap_or_else(|| key.clone());
                after.extend(placeholders.values.iter().map(|(k, v)| (k.clone(), v.clone())));
                (after, true)
            }
        };
        let mut write = self.write(table, key, before, Some(after), known, factor);
        write.approximated = approximated;
        write
    }

    fn write(
        &self,
        table: &str,
        key: Item,
        before: Option<Item>,
        after: Option<Item>,
        known: bool,
        factor: u64,
    ) -> Write {
        let size = |i: &Option<Item>| i.as_ref().map_or(0, item_size);
        let units = write_units(size(&before).max(size(&after)));
        let index_units = self.index_write_units(before.as_ref(), after.as_ref());
        Write {
            table: table.to_string(),
            key,
            after,
            units,
            failed_units: write_units(size(&before)),
            index_units,
            factor,
            known,
            approximated: false,
        }
    }

    /// Write units on the indexes for an item going from `before` to `after`.
    fn index_write_units(&self, before: Option<&Item>, after: Option<&Item>) -> u64 {
        let mut units = 0;
        for index in &self.schema.indexes {
            let entry = |i: Option<&Item>| i.and_then(|i| self.schema.index_entry(index, i));
            let same_key = |a: &Item, b: &Item| index.key.iter().all(|k| a.get(k) == b.get(k));
            units += match (entry(before), entry(after)) {
                (None, None) => 0,
                (Some(e), None) | (None, Some(e)) => write_units(item_size(&e)),
                (Some(old), Some(new)) if old == new => 0,
                (Some(old), Some(new)) if same_key(&old, &new) => write_units(item_size(&new)),
                (Some(old), Some(new)) => write_units(item_size(&old)) + write_units(item_size(&new)),
            };
        }
        units
    }
}

/// One item write of a request, priced before it is sent.
#[derive(Debug, Clone, Default)]
pub struct Write {
    table: String,
    key: Item,
    /// The item after the write (`None`: deleted).
    after: Option<Item>,
    /// Table write units (before the transactional factor) if the write succeeds.
    units: u64,
    /// Table write units if its condition fails (on the item as it is).
    failed_units: u64,
    index_units: u64,
    /// 2 in a transaction.
    factor: u64,
    known: bool,
    approximated: bool,
}

impl Write {
    fn bill(&self, ok: bool, tally: &mut Tally) {
        // A cancelled transaction is billed as if it had run; a single write whose condition
        // failed, on the item as it is.
        let units = if ok || self.factor > 1 {
            self.units
        } else {
            self.failed_units
        };
        tally.write_units += units * self.factor;
        tally.transactional_extra_write_units += units * (self.factor - 1);
        if ok {
            tally.index_write_units += self.index_units;
        }
        tally.unknown_before += u64::from(!self.known);
        tally.approximated_updates += u64::from(self.approximated);
    }
}

/// What a request's answer is needed for (kept between the two interceptor hooks).
#[derive(Debug, Clone, Default)]
pub struct Pending {
    writes: Vec<Write>,
    table: String,
    index: Option<String>,
    consistent: bool,
    /// `BatchGetItem`: per table, consistent reads? and the keys asked for.
    batch_gets: BTreeMap<String, (bool, u64)>,
    recipients: u64,
}

impl Storable for Pending {
    type Storer = StoreReplace<Self>;
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// SQS requests billed for `bytes` of payload: 1 per 64 KB, at least 1.
pub fn chunks(bytes: u64) -> u64 {
    bytes.div_ceil(SQS_CHUNK_BYTES).max(1)
}

/// A message's payload: its body and its attributes (names, types and values).
fn message_payload(m: &Value) -> u64 {
    let body = str_of(m, "MessageBody").len().max(str_of(m, "Body").len()) as u64;
    let attributes: u64 = m["MessageAttributes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, a)| {
            let value = str_of(a, "StringValue").len() + str_of(a, "BinaryValue").len() * 3 / 4;
            (name.len() + str_of(a, "DataType").len() + value) as u64
        })
        .sum();
    body + attributes
}

fn sqs_request_payload(operation: &str, body: &Value) -> u64 {
    match operation {
        "SendMessage" => message_payload(body),
        "SendMessageBatch" => body["Entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(message_payload)
            .sum(),
        _ => 0,
    }
}

fn recipients(body: &Value) -> u64 {
    ["ToAddresses", "CcAddresses", "BccAddresses"]
        .iter()
        .map(|f| body["Destination"][f].as_array().map_or(0, Vec::len) as u64)
        .sum()
}

/// The JSON of a request or response body (`Null` when there is none or it is not JSON).
fn json_body(bytes: Option<&[u8]>) -> Value {
    bytes
        .filter(|b| !b.is_empty())
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null)
}

fn operation_of(cfg: &ConfigBag) -> (String, String) {
    match cfg.load::<Metadata>() {
        Some(meta) => (meta.service().to_string(), meta.name().to_string()),
        None => ("unknown".to_string(), "unknown".to_string()),
    }
}

impl Intercept for CostLedger {
    fn name(&self) -> &'static str {
        "CostLedger"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = operation_of(cfg);
        let body = json_body(context.request().body().bytes());
        let pending = self.on_request(&service, &operation, &body);
        cfg.interceptor_state().store_put(pending);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = operation_of(cfg);
        let Some(pending) = cfg.load::<Pending>().cloned() else {
            return Ok(());
        };
        let response = context.response();
        let body = json_body(response.body().bytes());
        self.on_response(&service, &operation, &pending, response.status().as_u16(), &body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ledger() -> CostLedger {
        CostLedger::new(TableSchema::crmflow(), ItemImages::new())
    }

    fn exchange(l: &CostLedger, service: &str, op: &str, request: Value, status: u16, response: Value) {
        let pending = l.on_request(service, op, &request);
        l.on_response(service, op, &pending, status, &response);
    }

    fn item_of_bytes(pk: &str, filler: usize) -> Value {
        json!({"PK": {"S": pk}, "SK": {"S": "R"}, "d": {"S": "x".repeat(filler)}})
    }

    #[test]
    fn puts_bill_the_larger_of_the_item_before_and_after() {
        let l = ledger();
        // 2 + 1 + 2 + 1 + 1 + 2000 = 2007 bytes: 2 write units.
        exchange(
            &l,
            "DynamoDB",
            "PutItem",
            json!({"TableName": "t", "Item": item_of_bytes("a", 2000)}),
            200,
            json!({}),
        );
        let t = l.snapshot()[&("DynamoDB".into(), "PutItem".into())];
        assert_eq!((t.requests, t.write_units, t.unknown_before), (1, 2, 0));
        // A smaller item over it: still 2 (the item before is larger).
        exchange(
            &l,
            "DynamoDB",
            "PutItem",
            json!({"TableName": "t", "Item": item_of_bytes("a", 10)}),
            200,
            json!({}),
        );
        let t = l.snapshot()[&("DynamoDB".into(), "PutItem".into())];
        assert_eq!((t.requests, t.write_units, t.unknown_before), (2, 4, 0));
        // Now small: a delete costs 1.
        exchange(
            &l,
            "DynamoDB",
            "DeleteItem",
            json!({"TableName": "t", "Key": {"PK": {"S": "a"}, "SK": {"S": "R"}}}),
            200,
            json!({}),
        );
        assert_eq!(l.snapshot()[&("DynamoDB".into(), "DeleteItem".into())].write_units, 1);
    }

    #[test]
    fn a_failed_condition_bills_the_item_as_it_is_and_changes_nothing() {
        let l = ledger();
        exchange(
            &l,
            "DynamoDB",
            "PutItem",
            json!({"TableName": "t", "Item": item_of_bytes("a", 10)}),
            200,
            json!({}),
        );
        exchange(
            &l,
            "DynamoDB",
            "PutItem",
            json!({"TableName": "t", "Item": item_of_bytes("a", 5000)}),
            400,
            json!({}),
        );
        let t = l.snapshot()[&("DynamoDB".into(), "PutItem".into())];
        assert_eq!(t.write_units, 2);
        exchange(
            &l,
            "DynamoDB",
            "GetItem",
            json!({"TableName": "t", "Key": {}, "ConsistentRead": true}),
            200,
            json!({"Item": item_of_bytes("a", 10)}),
        );
        assert_eq!(l.snapshot()[&("DynamoDB".into(), "GetItem".into())].read_units, 1.0);
    }

    #[test]
    fn transactions_bill_twice_and_index_writes_once() {
        let l = ledger();
        let with_index = json!({"PK": {"S": "a"}, "SK": {"S": "R"}, "GSI1PK": {"S": "g"}, "GSI1SK": {"S": "1"}, "d": {"S": "x".repeat(1500)}});
        let request = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": with_index}},
            {"ConditionCheck": {"TableName": "t", "Key": {"PK": {"S": "b"}, "SK": {"S": "R"}}}},
        ]});
        exchange(&l, "DynamoDB", "TransactWriteItems", request, 200, json!({}));
        let t = l.snapshot()[&("DynamoDB".into(), "TransactWriteItems".into())];
        // Put: 2 units x 2; condition check: 1 x 2; the index entry (4 short keys): 1.
        assert_eq!(t.write_units, 6);
        assert_eq!(t.transactional_extra_write_units, 3);
        assert_eq!(t.index_write_units, 1);
        // Moving the index key: 2 index writes; an update leaving the index alone: none.
        let update = |expr: &str, values: Value| {
            json!({"TableName": "t", "Key": {"PK": {"S": "a"}, "SK": {"S": "R"}}, "UpdateExpression": expr,
                   "ExpressionAttributeValues": values})
        };
        exchange(
            &l,
            "DynamoDB",
            "UpdateItem",
            update("SET GSI1SK = :v", json!({":v": {"S": "2"}})),
            200,
            json!({}),
        );
        exchange(
            &l,
            "DynamoDB",
            "UpdateItem",
            update("SET d = :v", json!({":v": {"S": "y"}})),
            200,
            json!({}),
        );
        let t = l.snapshot()[&("DynamoDB".into(), "UpdateItem".into())];
        assert_eq!(t.index_write_units, 2);
        // Both updates bill the larger item before (1.5 KB: 2 units).
        assert_eq!(t.write_units, 4);
        assert_eq!(t.unknown_before, 0);
    }

    #[test]
    fn queries_round_the_total_and_index_queries_are_eventually_consistent() {
        let l = ledger();
        let items: Vec<Value> = (0..10).map(|i| item_of_bytes(&format!("p{i}"), 990)).collect();
        // 10 items of 999-1000 bytes: about 10,000 bytes, 3 read units.
        exchange(
            &l,
            "DynamoDB",
            "Query",
            json!({"TableName": "t", "ConsistentRead": true}),
            200,
            json!({"Items": items}),
        );
        assert_eq!(l.snapshot()[&("DynamoDB".into(), "Query".into())].read_units, 3.0);
        l.reset();
        let keys = json!([{"PK": {"S": "a"}, "SK": {"S": "R"}, "GSI1PK": {"S": "g"}, "GSI1SK": {"S": "1"}}]);
        exchange(
            &l,
            "DynamoDB",
            "Query",
            json!({"TableName": "t", "IndexName": "GSI1"}),
            200,
            json!({"Items": keys}),
        );
        assert_eq!(l.snapshot()[&("DynamoDB".into(), "Query".into())].read_units, 0.5);
        // Batch gets: each key on its own (the found 5 KB item 2 units, the missing key 1, the
        // unprocessed one nothing).
        let keys = json!([{"PK": {"S": "a"}}, {"PK": {"S": "b"}}, {"PK": {"S": "c"}}]);
        let found = json!({"Responses": {"t": [item_of_bytes("a", 5000)]},
                           "UnprocessedKeys": {"t": {"Keys": [{"PK": {"S": "c"}}]}}});
        exchange(
            &l,
            "DynamoDB",
            "BatchGetItem",
            json!({"RequestItems": {"t": {"Keys": keys, "ConsistentRead": true}}}),
            200,
            found,
        );
        assert_eq!(
            l.snapshot()[&("DynamoDB".into(), "BatchGetItem".into())].read_units,
            3.0
        );
        // A missing item still costs a read unit.
        exchange(
            &l,
            "DynamoDB",
            "GetItem",
            json!({"TableName": "t", "ConsistentRead": true}),
            200,
            json!({}),
        );
        assert_eq!(l.snapshot()[&("DynamoDB".into(), "GetItem".into())].read_units, 1.0);
    }

    #[test]
    fn sqs_bills_per_64_kb_chunk_and_ses_per_recipient() {
        let l = ledger();
        exchange(
            &l,
            "SQS",
            "SendMessage",
            json!({"MessageBody": "x".repeat(70_000)}),
            200,
            json!({}),
        );
        exchange(&l, "SQS", "SendMessage", json!({"MessageBody": "{}"}), 200, json!({}));
        assert_eq!(l.snapshot()[&("SQS".into(), "SendMessage".into())].sqs_requests, 3);
        exchange(
            &l,
            "SQS",
            "ReceiveMessage",
            json!({}),
            200,
            json!({"Messages": [{"Body": "x".repeat(65_000)}, {"Body": "x".repeat(1000)}]}),
        );
        assert_eq!(l.snapshot()[&("SQS".into(), "ReceiveMessage".into())].sqs_requests, 2);
        let email = json!({"Destination": {"ToAddresses": ["a@example.com"], "CcAddresses": ["b@example.com"]}});
        exchange(&l, "SESv2", "SendEmail", email.clone(), 200, json!({}));
        exchange(&l, "SESv2", "SendEmail", email, 400, json!({}));
        let t = l.snapshot()[&("SESv2".into(), "SendEmail".into())];
        assert_eq!((t.requests, t.emails), (2, 2));
        assert_eq!(l.total().requests, 5);
    }
}
