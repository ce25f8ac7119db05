//! Runs: the head (`SK=RUN`) and one item per step record (`SK=STEP#000012`) in the run's
//! partition, the enrollment item per (automation, enrollment key), route items per record key,
//! and event-dedupe items.

use super::deflate;
use super::{
    DynamoStore, EXPIRES_AT, Expr, GSI1PK, GSI1SK, Item, PK, SK, done_unless_other_error, get_n, get_s, get_ss,
    json_error, key, n, s, store_error, tenant_prefix,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use crmflow_core::enrollment::EnrollmentState;
use crmflow_core::ports::{CreateOutcome, Route, RunDirectory, RunFilter, RunStore, StoreError};
use crmflow_core::run::{Run, StepRecord, WaitingFor};
use jiff::Timestamp;
use std::collections::BTreeSet;
use std::sync::Arc;

const RUN_SK: &str = "RUN";
const STEP_PREFIX: &str = "STEP#";
const ENROLL_SK: &str = "ENROLL";
const EVENT_SK: &str = "EVENT";
const SECONDS_PER_DAY: i64 = 86_400;
/// How long an event id is remembered for dedupe.
pub const EVENT_DEDUPE_DAYS: i64 = 7;
/// Step records written while a run is still going expire this long after the retention period
/// (counted from when they were written): a run that lasts longer loses its oldest records.
/// Records written by the save that ends a run expire with its head.
pub const RUNNING_HISTORY_GRACE_DAYS: i64 = 365;

fn run_pk(tenant: &str, run_id: &str) -> String {
    format!("{}RUN#{run_id}", tenant_prefix(tenant))
}

fn step_sk(seq: u32) -> String {
    format!("{STEP_PREFIX}{seq:06}")
}

fn enrollment_pk(tenant: &str, automation_id: &str, enrollment_key: &str) -> String {
    format!("{}ENROLL#{automation_id}#{enrollment_key}", tenant_prefix(tenant))
}

fn route_pk(tenant: &str, route_key: &str) -> String {
    format!("{}ROUTE#{route_key}", tenant_prefix(tenant))
}

fn route_sk(run_id: &str) -> String {
    format!("RUN#{run_id}")
}

fn event_pk(tenant: &str, event_id: &str) -> String {
    format!("{}EVENT#{event_id}", tenant_prefix(tenant))
}

/// The GSI1 partition listing an automation's runs (newest first: run ids are UUID v7).
fn runs_of_automation_pk(tenant: &str, automation_id: &str) -> String {
    format!("{}AUTO#{automation_id}#RUNS", tenant_prefix(tenant))
}

/// The route attribute naming the version of the save that reopened the run and put the route
/// back (none on a route put when the run was created).
const ROUTE_SINCE: &str = "since";

/// The head attribute naming the version whose outbox was dispatched (see `ack_outbox`).
const OUTBOX_ACKED: &str = "outbox_acked";

/// The head attribute holding the run's JSON, deflated against a dictionary of what every head
/// holds ([`deflate`]): a run head is mostly JSON keys and repeats (the trigger, the event, the
/// record), which this shrinks to about a fifth; every write of the head is billed by its size
/// (1 KB write units). After the run's JSON, in the
/// same stream, come the step records of the save that wrote the head, as a JSON array, when it
/// had any: the head keeps them for as long as they may lack items of their own (a save puts
/// the head, then the records' items; the head's acknowledgement, `outbox_acked`, says both
/// are done: see `save_head`). Heads written before hold the run's JSON as text in `run`.
const RUN_DEFLATED: &str = "run_z";
/// The most a stored head's JSON may inflate to (an item is at most 400 KB).
const MAX_INFLATED_BYTES: usize = 16 << 20;

/// `run_z`: the run's JSON, then the pending records' (if any), deflated.
fn deflated_head(run: &Run, pending: &[StepRecord]) -> Result<AttributeValue, StoreError> {
    let mut json = serde_json::to_vec(run).map_err(|e| json_error("serializing a run", e))?;
    if !pending.is_empty() {
        json.push(b'\n');
        serde_json::to_writer(&mut json, pending).map_err(|e| json_error("serializing step records", e))?;
    }
    Ok(AttributeValue::B(Blob::new(deflate::deflate(&json))))
}

/// The head's JSON: inflated from `run_z`, or the text of `run` (a head of an older version).
fn head_json(item: &Item) -> Result<std::borrow::Cow<'_, [u8]>, StoreError> {
    let Some(AttributeValue::B(blob)) = item.get(RUN_DEFLATED) else {
        return Ok(get_s(item, "run")?.as_bytes().into());
    };
    deflate::inflate(blob.as_ref(), MAX_INFLATED_BYTES)
        .map(Into::into)
        .map_err(|e| StoreError::Other(format!("stored run head: cannot inflate {RUN_DEFLATED}: {e}")))
}

/// Whether the head's version is acknowledged: its outbox dispatched and its records written.
fn acknowledged(item: &Item, version: u64) -> Result<bool, StoreError> {
    Ok(item.contains_key(OUTBOX_ACKED) && get_n::<u64>(item, OUTBOX_ACKED)? == version)
}

/// The run (its outbox cleared once acknowledged) and the records the head keeps until they
/// have items (none in heads written before).
fn parse_head(item: &Item) -> Result<(Run, Vec<StepRecord>), StoreError> {
    use serde::Deserialize;
    let json = head_json(item)?;
    let mut de = serde_json::Deserializer::from_slice(&json);
    let mut run = Run::deserialize(&mut de).map_err(|e| json_error("stored run head", e))?;
    let pending = match Option::<Vec<StepRecord>>::deserialize(&mut de) {
        Ok(pending) => pending.unwrap_or_default(),
        Err(e) if e.is_eof() => Vec::new(),
        Err(e) => return Err(json_error("stored pending records", e)),
    };
    de.end().map_err(|e| json_error("stored run head", e))?;
    if acknowledged(item, run.version)? {
        run.outbox.clear();
    }
    Ok((run, pending))
}

fn parse_run(item: &Item) -> Result<Run, StoreError> {
    Ok(parse_head(item)?.0)
}

/// The record of the step the run is parked on: it lives in the head (the cursor) and gets an
/// item of its own only once the step closes, so parking on a step writes no record item.
fn open_record(run: &Run) -> Option<&StepRecord> {
    run.cursor
        .as_ref()
        .filter(|c| c.waiting_for != WaitingFor::Continue)
        .map(|c| &c.record)
}

/// The records of a save that need an item: all but the one the head's cursor holds open.
fn records_to_write<'a>(run: &'a Run, records: &'a [StepRecord]) -> impl Iterator<Item = &'a StepRecord> {
    let open = open_record(run);
    records.iter().filter(move |r| open != Some(*r))
}

fn parse_record(item: &Item) -> Result<StepRecord, StoreError> {
    serde_json::from_str(get_s(item, "record")?).map_err(|e| json_error("stored step record", e))
}

fn epoch_plus_days(at: Timestamp, days: i64) -> i64 {
    at.as_second() + days * SECONDS_PER_DAY
}

impl DynamoStore {
    /// When a finished run's items expire (epoch seconds).
    fn run_expiry(&self, run: &Run) -> i64 {
        epoch_plus_days(
            run.finished_at.unwrap_or(run.updated_at),
            i64::from(self.run_retention_days),
        )
    }

    /// The head item; `pending`: the records it keeps until they have items.
    fn head_item(&self, run: &Run, pending: &[StepRecord]) -> Result<Item, StoreError> {
        let mut item = key(run_pk(&run.tenant, &run.run_id), RUN_SK);
        item.insert(RUN_DEFLATED.into(), deflated_head(run, pending)?);
        item.insert("version".into(), n(run.version));
        item.insert("status".into(), s(run.status.as_str()));
        item.insert("automation_id".into(), s(&run.automation_id));
        item.insert("automation_version".into(), n(run.automation_version));
        item.insert(GSI1PK.into(), s(runs_of_automation_pk(&run.tenant, &run.automation_id)));
        item.insert(GSI1SK.into(), s(route_sk(&run.run_id)));
        if run.status.is_terminal() {
            item.insert(EXPIRES_AT.into(), n(self.run_expiry(run)));
        }
        Ok(item)
    }

    fn record_item(&self, run: &Run, record: &StepRecord) -> Result<Item, StoreError> {
        let json = serde_json::to_string(record).map_err(|e| json_error("serializing a step record", e))?;
        let expires_at = if run.status.is_terminal() {
            self.run_expiry(run)
        } else {
            epoch_plus_days(
                run.updated_at,
                i64::from(self.run_retention_days) + RUNNING_HISTORY_GRACE_DAYS,
            )
        };
        let mut item = key(run_pk(&run.tenant, &run.run_id), step_sk(record.seq));
        item.insert("record".into(), s(json));
        item.insert("seq".into(), n(record.seq));
        item.insert(EXPIRES_AT.into(), n(expires_at));
        Ok(item)
    }

    /// The newest runs of an automation (at most `limit`), newest first. Reads `GSI1`, which is
    /// eventually consistent: a run created a moment ago may be missing.
    pub async fn list_runs(&self, tenant: &str, automation_id: &str, limit: i32) -> Result<Vec<Run>, StoreError> {
        let limit = usize::try_from(limit.max(1)).unwrap_or(1);
        let (keys, _) = self.run_keys(tenant, automation_id, None, limit).await?;
        Ok(self.heads(&keys).await?.into_iter().map(|(_, run)| run).collect())
    }

    /// One page of an automation's run keys from `GSI1`, newest first, after the run id `after`;
    /// the second value says whether the index holds more.
    async fn run_keys(
        &self,
        tenant: &str,
        automation_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let after = after.map(|run_id| (key(run_pk(tenant, run_id), RUN_SK), route_sk(run_id)));
        self.gsi1_page(&runs_of_automation_pk(tenant, automation_id), after, false, limit)
            .await
    }

    /// The run heads of `keys` (read consistently), in the order of `keys`, each with its
    /// partition key; heads that expired meanwhile are skipped.
    async fn heads(&self, keys: &[Item]) -> Result<Vec<(String, Run)>, StoreError> {
        let mut items = self.batch_items(keys).await?;
        keys.iter()
            .filter_map(|k| {
                let pk = get_s(k, PK).ok()?;
                Some((pk.to_owned(), items.remove(pk)?))
            })
            .map(|(pk, item)| Ok((pk, parse_run(&item)?)))
            .collect()
    }
}

#[async_trait]
impl RunDirectory for DynamoStore {
    /// Pages through `GSI1` (newest first) and keeps the heads `filter` keeps, until `limit` are
    /// kept or the automation has no more runs.
    async fn list_runs(
        &self,
        tenant: &str,
        automation_id: &str,
        filter: &RunFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Arc<Run>>, StoreError> {
        let mut kept = Vec::new();
        let mut after = after.map(str::to_owned);
        loop {
            let page = (limit - kept.len()).max(25);
            let (keys, more) = self.run_keys(tenant, automation_id, after.as_deref(), page).await?;
            let Some(last) = keys.last() else {
                return Ok(kept);
            };
            let last_pk = get_s(last, PK)?.to_owned();
            after = last_pk.rsplit_once("RUN#").map(|(_, id)| id.to_owned());
            for (_, run) in self.heads(&keys).await? {
                if filter.keeps(&run) {
                    kept.push(Arc::new(run));
                    if kept.len() == limit {
                        return Ok(kept);
                    }
                }
            }
            if !more || after.is_none() {
                return Ok(kept);
            }
        }
    }
}

#[async_trait]
impl RunStore for DynamoStore {
    async fn enrollment(&self, tenant: &str, automation_id: &str, key: &str) -> Result<EnrollmentState, StoreError> {
        let Some(item) = self
            .get_item(enrollment_pk(tenant, automation_id, key), ENROLL_SK)
            .await?
        else {
            return Ok(EnrollmentState::default());
        };
        let mut active_runs = get_ss(&item, "active_runs");
        active_runs.sort();
        let last_enrolled_at = match item.get("last_enrolled_at") {
            Some(AttributeValue::S(t)) => Some(
                t.parse()
                    .map_err(|e| StoreError::Other(format!("stored last_enrolled_at {t:?}: {e}")))?,
            ),
            _ => None,
        };
        Ok(EnrollmentState {
            version: get_n(&item, "version")?,
            active_runs,
            total_enrollments: get_n(&item, "total_enrollments").unwrap_or(0),
            last_enrolled_at,
        })
    }

    async fn create_run(&self, run: &Run, enrollment: &EnrollmentState) -> Result<CreateOutcome, StoreError> {
        let expected = enrollment
            .version
            .checked_sub(1)
            .ok_or_else(|| StoreError::Other("create_run: the new enrollment state must have version >= 1".into()))?;
        let not_exists = || Expr::new("attribute_not_exists(#pk)").name("#pk", PK);
        let mut items = vec![self.tx_put(self.head_item(run, &[])?, Some(not_exists()))?];

        let mut enrollment_item = key(
            enrollment_pk(&run.tenant, &run.automation_id, &run.enrollment_key),
            ENROLL_SK,
        );
        enrollment_item.insert("version".into(), n(enrollment.version));
        enrollment_item.insert("total_enrollments".into(), n(enrollment.total_enrollments));
        enrollment_item.insert("automation_id".into(), s(&run.automation_id));
        enrollment_item.insert("enrollment_key".into(), s(&run.enrollment_key));
        if !enrollment.active_runs.is_empty() {
            let ids: BTreeSet<String> = enrollment.active_runs.iter().cloned().collect();
            enrollment_item.insert("active_runs".into(), AttributeValue::Ss(ids.into_iter().collect()));
        }
        if let Some(at) = enrollment.last_enrolled_at {
            enrollment_item.insert("last_enrolled_at".into(), s(at.to_string()));
        }
        let guard = if expected == 0 {
            not_exists()
        } else {
            Expr::new("#v = :expected")
                .name("#v", "version")
                .value(":expected", n(expected))
        };
        items.push(self.tx_put(enrollment_item, Some(guard))?);

        for route_key in run.route_keys() {
            let mut route = key(route_pk(&run.tenant, &route_key), route_sk(&run.run_id));
            route.insert("run_id".into(), s(&run.run_id));
            route.insert("automation_id".into(), s(&run.automation_id));
            items.push(self.tx_put(route, None)?);
        }

        match self.transact(items).await {
            Ok(()) => Ok(CreateOutcome::Created),
            // The head exists: a redelivered trigger (whatever happened to the enrollment since).
            Err(e) if e.condition_failed(0) => Ok(CreateOutcome::AlreadyExists),
            Err(e) => Err(e.into_store_error(&format!(
                "create run {} (enrollment {}/{} expected at version {expected})",
                run.run_id, run.automation_id, run.enrollment_key
            ))),
        }
    }

    async fn load_run(&self, tenant: &str, run_id: &str) -> Result<Option<Run>, StoreError> {
        self.get_item(run_pk(tenant, run_id), RUN_SK)
            .await?
            .as_ref()
            .map(parse_run)
            .transpose()
    }

    /// A head whose save was interrupted before its acknowledgement gets what the save does
    /// after its head done again (`after_head`: the same effect, whoever does it) before it is
    /// handed out, so its records exist, and an ended run's routes and slot are gone, before any
    /// later save replaces it.
    async fn load_run_to_save(&self, tenant: &str, run_id: &str) -> Result<Option<Arc<Run>>, StoreError> {
        let Some(item) = self.get_item(run_pk(tenant, run_id), RUN_SK).await? else {
            return Ok(None);
        };
        let (run, pending) = parse_head(&item)?;
        if (!pending.is_empty() || run.status.is_terminal()) && !acknowledged(&item, run.version)? {
            self.after_head(&run, &pending).await?;
        }
        Ok(Some(Arc::new(run)))
    }

    async fn ack_outbox(&self, tenant: &str, run_id: &str, version: u64) -> Result<(), StoreError> {
        // One small conditional update instead of rewriting the head's JSON.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(run_pk(tenant, run_id), RUN_SK)))
            .update_expression("SET #acked = :v")
            .condition_expression("#v = :v")
            .expression_attribute_names("#acked", OUTBOX_ACKED)
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(version))
            .send()
            .await;
        done_unless_other_error("UpdateItem", result)
    }

    async fn save_run(&self, run: &Run, records: &[StepRecord]) -> Result<(), StoreError> {
        self.save_head(run, records, false).await
    }

    async fn save_reopened(&self, run: Arc<Run>, records: Vec<StepRecord>) -> Result<(), StoreError> {
        self.save_head(&run, &records, true).await
    }

    async fn history(&self, tenant: &str, run_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        // One Query reads the head and the records (they share the partition).
        let mut head = None;
        let mut records = Vec::new();
        for item in self.query_partition(&run_pk(tenant, run_id), None).await? {
            let sk = get_s(&item, SK)?;
            if sk == RUN_SK {
                head = Some(parse_head(&item)?);
            } else if sk.starts_with(STEP_PREFIX) {
                records.push(parse_record(&item)?);
            }
        }
        let Some((head, pending)) = head else {
            return Ok(Vec::new());
        };
        // The records of the last save (their items may not be written yet).
        for record in pending {
            records.retain(|r| r.seq != record.seq);
            records.push(record);
        }
        // The open step's record is the head's (an item of an older save may hold it too).
        if let Some(open) = open_record(&head) {
            records.retain(|r| r.seq != open.seq);
            records.push(open.clone());
        }
        records.retain(|r| r.seq < head.history_len);
        records.sort_by_key(|r| r.seq);
        Ok(records)
    }

    async fn routes(&self, tenant: &str, keys: &[String]) -> Result<Vec<Route>, StoreError> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for route_key in keys {
            for item in self.query_partition(&route_pk(tenant, route_key), None).await? {
                let run_id = get_s(&item, "run_id")?.to_string();
                if seen.insert(run_id.clone()) {
                    out.push(Route {
                        run_id,
                        automation_id: get_s(&item, "automation_id")?.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn mark_event_processed(&self, tenant: &str, event_id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let mut item = key(event_pk(tenant, event_id), EVENT_SK);
        item.insert(EXPIRES_AT.into(), n(epoch_plus_days(now, EVENT_DEDUPE_DAYS)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(store_error("PutItem", e)),
        }
    }

    async fn event_processed(&self, tenant: &str, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.get_item(event_pk(tenant, event_id), EVENT_SK).await?.is_some())
    }
}

impl DynamoStore {
    /// The head (version-checked) and the records, and the routes: deleted with the enrollment
    /// slot's release when the run ended, put again when a retry reopened it. A reopening save
    /// is one transaction; any other puts the head, then the rest (`put_head_then_records`).
    async fn save_head(&self, run: &Run, records: &[StepRecord], reopened: bool) -> Result<(), StoreError> {
        let Some(previous) = run.version.checked_sub(1) else {
            return Err(StoreError::Conflict(format!(
                "run {}: version 0 is only ever created",
                run.run_id
            )));
        };
        let guard = Expr::new("#v = :previous")
            .name("#v", "version")
            .value(":previous", n(previous));
        let records: Vec<StepRecord> = records_to_write(run, records).cloned().collect();
        if !reopened {
            let head = self.head_item(run, &records)?;
            return self.put_head_then_records(head, guard, run, &records).await;
        }
        let head = self.head_item(run, &[])?;
        let mut items = vec![self.tx_put(head, Some(guard))?];
        for record in &records {
            items.push(self.tx_put(self.record_item(run, record)?, None)?);
        }
        for route_key in run.route_keys() {
            let mut route = key(route_pk(&run.tenant, &route_key), route_sk(&run.run_id));
            route.insert("run_id".into(), s(&run.run_id));
            route.insert("automation_id".into(), s(&run.automation_id));
            // The version that put it back: an older save that ended the run leaves it.
            route.insert(ROUTE_SINCE.into(), n(run.version));
            items.push(self.tx_put(route, None)?);
        }
        self.transact(items)
            .await
            .map_err(|e| e.into_store_error(&format!("save run {} at version {}", run.run_id, run.version)))
    }

    /// A save that does not reopen the run, without a transaction: the head (with the records,
    /// in `run_z`) if the stored one still has the version `guard` names, then what follows it
    /// (`after_head`). Only the winner of the head's condition writes records,
    /// and an interrupted save's records are written by the next load before a save
    /// (`load_run_to_save`), so every record item holds what a saved head decided.
    async fn put_head_then_records(
        &self,
        head: Item,
        guard: Expr,
        run: &Run,
        records: &[StepRecord],
    ) -> Result<(), StoreError> {
        self.put_head(head, guard, run).await?;
        self.after_head(run, records).await
    }

    /// What a save does after its head, and what the next load before a save does again when
    /// the head is not acknowledged: the records' items; for a run that ended, its routes'
    /// deletion and the release of its enrollment slot; the acknowledgement when the shell will
    /// not make it (no outbox). Every step has the same effect when repeated.
    async fn after_head(&self, run: &Run, records: &[StepRecord]) -> Result<(), StoreError> {
        if records.is_empty() && !run.status.is_terminal() {
            return Ok(());
        }
        self.write_records(run, records).await?;
        if run.status.is_terminal() {
            self.drop_routes(run).await?;
            self.release_enrollment(run).await?;
        }
        if run.outbox.is_empty() {
            self.ack_outbox(&run.tenant, &run.run_id, run.version).await?;
        }
        Ok(())
    }

    /// Deletes the routes of a run that ended at `run.version`, but a route a later save that
    /// reopened the run put back.
    async fn drop_routes(&self, run: &Run) -> Result<(), StoreError> {
        for route_key in run.route_keys() {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(route_pk(&run.tenant, &route_key), route_sk(&run.run_id))))
                .condition_expression("attribute_not_exists(#since) OR #since < :v")
                .expression_attribute_names("#since", ROUTE_SINCE)
                .expression_attribute_values(":v", n(run.version))
                .send()
                .await;
            done_unless_other_error("DeleteItem", result)?;
        }
        Ok(())
    }

    /// Releases the enrollment slot of a run that ended; the version bump makes a concurrent
    /// enrollment that read the old state conflict (a repeated release changes nothing else).
    async fn release_enrollment(&self, run: &Run) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                enrollment_pk(&run.tenant, &run.automation_id, &run.enrollment_key),
                ENROLL_SK,
            )))
            .update_expression("SET #v = if_not_exists(#v, :zero) + :one DELETE #active :run")
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#active", "active_runs")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":run", AttributeValue::Ss(vec![run.run_id.clone()]))
            .send()
            .await
            .map_err(|e| store_error("UpdateItem", e))?;
        Ok(())
    }

    /// Puts the items of `records` (each its own `PutItem`: the same content whoever writes it).
    async fn write_records(&self, run: &Run, records: &[StepRecord]) -> Result<(), StoreError> {
        for record in records {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(self.record_item(run, record)?))
                .send()
                .await
                .map_err(|e| store_error("PutItem", e))?;
        }
        Ok(())
    }

    /// Puts a head if the stored one still has the version `guard` names.
    async fn put_head(&self, head: Item, guard: Expr, run: &Run) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(head))
            .condition_expression(&guard.text)
            .set_expression_attribute_names(guard.names_opt())
            .set_expression_attribute_values(guard.values_opt())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict(format!(
                    "save run {} at version {}: the stored head is not at version {}",
                    run.run_id,
                    run.version,
                    run.version - 1
                )))
            }
            Err(e) => Err(store_error("PutItem", e)),
        }
    }
}
