//! In-memory adapters: the embedded default. Everything lives in process memory behind mutexes;
//! the clock can be virtual ([`ManualClock`]) so waits are fast-forwarded, and side effects are
//! recorded instead of performed ([`RecordingEmail`], [`RecordingCrm`], [`RecordingHttp`]).

use crate::command::{EmailMessage, HttpRequest, Input};
use crate::definition::{Automation, AutomationStatus, Program};
use crate::enrollment::EnrollmentState;
use crate::messages::{ActionMessage, StepMessage};
use crate::ports::{
    ActionQueue, AuditEntry, AuditLog, AutomationCatalog, AutomationDirectory, AutomationVersion, Claim, Clock,
    CreateOutcome, CrmCommandSink, EffectError, EmailSender, EvaluationLog, EventQueue, HeldInput, HeldInputStore,
    HttpClient, HttpResponse, IdempotencyStore, OutboundCrmCommand, QueueError, Route, RunDirectory, RunFilter,
    RunStore, StepQueue, StoreError, Timer, TimerService, TriggerEvaluation,
};
use crate::run::{Run, StepRecord};
use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
// The stores look runs, routes and counters up by string keys on every message: foldhash
// (hashbrown's default hasher) rather than SipHash. Nothing depends on the maps' order.
use foldhash::{HashMap, HashMapExt};
use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the data as it was; keep going with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Mutex::new(start))
    }
    pub fn set(&self, t: Timestamp) {
        *lock(&self.0) = t;
    }
    pub fn advance(&self, d: SignedDuration) {
        let mut now = lock(&self.0);
        *now = now.checked_add(d).unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *lock(&self.0)
    }
}

/// Definitions in memory, indexed by trigger pattern.
#[derive(Default)]
pub struct MemoryCatalog {
    inner: Mutex<CatalogInner>,
}

#[derive(Default)]
struct CatalogInner {
    /// (tenant, automation id) → version → program.
    versions: Keyed<BTreeMap<u32, Arc<Program>>>,
    /// (tenant, trigger pattern) → automation ids whose latest version is active.
    by_trigger: Keyed<BTreeSet<String>>,
    /// (tenant, automation id) → version → when it was stored, for the versions stored through
    /// [`AutomationDirectory`].
    created_at: Keyed<BTreeMap<u32, Timestamp>>,
}

impl CatalogInner {
    fn latest(&self, tenant: &str, automation_id: &str) -> Option<&Arc<Program>> {
        self.versions.get(tenant, automation_id)?.values().next_back()
    }

    fn insert(&mut self, program: Program) {
        let a = &program.automation;
        let latest = self.latest(&a.tenant, &a.id).map(|p| p.version()).unwrap_or(0);
        if a.version >= latest {
            for set in self.by_trigger.values_mut() {
                set.remove(&a.id);
            }
            if a.is_active() {
                for p in a.trigger.event.patterns() {
                    self.by_trigger.get_or_default(&a.tenant, p).insert(a.id.clone());
                }
            }
        }
        let (tenant, id, version) = (a.tenant.clone(), a.id.clone(), a.version);
        self.versions
            .get_or_default(&tenant, &id)
            .insert(version, Arc::new(program));
    }

    fn version_of(&self, program: &Arc<Program>) -> AutomationVersion {
        let a = &program.automation;
        let created_at = self
            .created_at
            .get(&a.tenant, &a.id)
            .and_then(|times| times.get(&a.version))
            .copied();
        AutomationVersion {
            program: Arc::clone(program),
            created_at,
        }
    }

    fn stamp(&mut self, automation: &Automation, now: Timestamp) {
        self.created_at
            .get_or_default(&automation.tenant, &automation.id)
            .insert(automation.version, now);
    }
}

impl MemoryCatalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a compiled program directly.
    pub fn insert(&self, program: Program) {
        lock(&self.inner).insert(program);
    }
}

fn compile(automation: Automation) -> Result<Program, StoreError> {
    Program::new(automation)
        .map_err(|errors| StoreError::Other(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
}

#[async_trait]
impl AutomationDirectory for MemoryCatalog {
    async fn create(&self, automation: Automation, now: Timestamp) -> Result<CreateOutcome, StoreError> {
        let program = compile(automation)?;
        let mut inner = lock(&self.inner);
        let a = &program.automation;
        if inner.versions.get(&a.tenant, &a.id).is_some() {
            return Ok(CreateOutcome::AlreadyExists);
        }
        inner.stamp(a, now);
        inner.insert(program);
        Ok(CreateOutcome::Created)
    }

    async fn add_version(&self, automation: Automation, now: Timestamp) -> Result<(), StoreError> {
        let program = compile(automation)?;
        let mut inner = lock(&self.inner);
        let a = &program.automation;
        let latest = inner.latest(&a.tenant, &a.id).map(|p| p.version()).unwrap_or(0);
        if a.version != latest + 1 {
            return Err(StoreError::Conflict(format!(
                "automation {} is at version {latest}, not {}",
                a.id,
                a.version.saturating_sub(1)
            )));
        }
        inner.stamp(a, now);
        inner.insert(program);
        Ok(())
    }

    async fn replace_latest(&self, automation: Automation) -> Result<(), StoreError> {
        let program = compile(automation)?;
        let mut inner = lock(&self.inner);
        let a = &program.automation;
        let latest = inner.latest(&a.tenant, &a.id).map(|p| p.version());
        if latest != Some(a.version) {
            return Err(StoreError::Conflict(format!(
                "automation {} version {} is not the newest",
                a.id, a.version
            )));
        }
        inner.insert(program);
        Ok(())
    }

    async fn list(
        &self,
        tenant: &str,
        status: Option<AutomationStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AutomationVersion>, StoreError> {
        let inner = lock(&self.inner);
        let Some(automations) = inner.versions.0.get(tenant) else {
            return Ok(Vec::new());
        };
        let mut ids: Vec<&String> = automations
            .keys()
            .filter(|id| after.is_none_or(|after| id.as_str() > after))
            .collect();
        ids.sort();
        Ok(ids
            .into_iter()
            .filter_map(|id| inner.latest(tenant, id))
            .filter(|p| status.is_none_or(|s| p.automation.status == s))
            .take(limit)
            .map(|p| inner.version_of(p))
            .collect())
    }

    async fn versions(&self, tenant: &str, automation_id: &str) -> Result<Vec<AutomationVersion>, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .versions
            .get(tenant, automation_id)
            .map(|versions| versions.values().map(|p| inner.version_of(p)).collect())
            .unwrap_or_default())
    }
}

#[async_trait]
impl AutomationCatalog for MemoryCatalog {
    async fn put(&self, automation: Automation) -> Result<(), StoreError> {
        self.insert(compile(automation)?);
        Ok(())
    }

    async fn active_for_event(&self, tenant: &str, event_type: &str) -> Result<Vec<Arc<Program>>, StoreError> {
        let inner = lock(&self.inner);
        let mut ids = BTreeSet::new();
        for p in crate::event::candidate_patterns(event_type) {
            if let Some(set) = inner.by_trigger.get(tenant, &p) {
                ids.extend(set.iter());
            }
        }
        Ok(ids
            .into_iter()
            .filter_map(|id| inner.latest(tenant, id).cloned())
            .collect())
    }

    async fn get(&self, tenant: &str, automation_id: &str, version: u32) -> Result<Option<Arc<Program>>, StoreError> {
        Ok(lock(&self.inner)
            .versions
            .get(tenant, automation_id)
            .and_then(|versions| versions.get(&version))
            .cloned())
    }

    async fn latest(&self, tenant: &str, automation_id: &str) -> Result<Option<Arc<Program>>, StoreError> {
        Ok(lock(&self.inner).latest(tenant, automation_id).cloned())
    }
}

/// Runs, history, enrollment state, routes, event dedupe and idempotency records in memory.
///
/// Heads are kept shared ([`RunStore::load_run_shared`] hands out the stored one, and
/// [`RunStore::save_run_shared`] keeps the one it is given), so a decision copies a run once,
/// in the decider, not on every load and save.
#[derive(Default)]
pub struct MemoryRunStore {
    inner: Mutex<StoreInner>,
}

#[derive(Default)]
struct StoreInner {
    runs: Keyed<StoredRun>,
    /// (tenant, automation id) → enrollment key → state.
    enrollments: Keyed<HashMap<String, EnrollmentState>>,
    /// (tenant, route key) → run id → automation id.
    routes: Keyed<BTreeMap<String, String>>,
    /// (tenant, event id) of the events handled.
    events: Keyed<()>,
    /// By idempotency key, split at its first `.` ([`split_key`]); a run's keys start with
    /// `{run_id}.` (its step entries and tasks), so a run's records are found together.
    claims: Keyed<ClaimRecord>,
}

/// A map keyed by two strings (a tenant and an id) that looks keys up without building them.
struct Keyed<V>(HashMap<String, HashMap<String, V>>);

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Keyed(HashMap::new())
    }
}

impl<V> Keyed<V> {
    fn get(&self, a: &str, b: &str) -> Option<&V> {
        self.0.get(a)?.get(b)
    }

    fn get_mut(&mut self, a: &str, b: &str) -> Option<&mut V> {
        self.0.get_mut(a)?.get_mut(b)
    }

    fn get_or_default(&mut self, a: &str, b: &str) -> &mut V
    where
        V: Default,
    {
        if self.get(a, b).is_none() {
            self.insert(a, b, V::default());
        }
        self.get_mut(a, b).expect("just inserted")
    }

    fn insert(&mut self, a: &str, b: &str, value: V) -> Option<V> {
        match self.0.get_mut(a) {
            Some(inner) => inner.insert(b.to_string(), value),
            None => {
                self.0.insert(a.to_string(), {
                    let mut inner = HashMap::new();
                    inner.insert(b.to_string(), value);
                    inner
                });
                None
            }
        }
    }

    fn remove(&mut self, a: &str, b: &str) -> Option<V> {
        let inner = self.0.get_mut(a)?;
        let value = inner.remove(b);
        if inner.is_empty() {
            self.0.remove(a);
        }
        value
    }

    /// Removes the entries `(a, b)` for which `remove(b)` holds.
    fn remove_where(&mut self, a: &str, remove: impl Fn(&str) -> bool) {
        let Some(inner) = self.0.get_mut(a) else { return };
        inner.retain(|b, _| !remove(b));
        if inner.is_empty() {
            self.0.remove(a);
        }
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.0.values_mut().flat_map(HashMap::values_mut)
    }
}

/// An idempotency key split at its first `.`: `("r1", ".3")` for `r1.3`, `("r1", "")` for `r1`.
fn split_key(key: &str) -> (&str, &str) {
    key.split_at(key.find('.').unwrap_or(key.len()))
}

impl Keyed<ClaimRecord> {
    fn get_key(&self, key: &str) -> Option<&ClaimRecord> {
        let (head, tail) = split_key(key);
        self.get(head, tail)
    }

    fn insert_key(&mut self, key: &str, record: ClaimRecord) {
        let (head, tail) = split_key(key);
        self.insert(head, tail, record);
    }

    /// Removes the records whose keys start with `{run_id}.`. Split at their first `.`, those
    /// keys start as `run_id` does, and what follows starts with the rest of `run_id` and a `.`.
    fn remove_run(&mut self, run_id: &str) {
        let (head, rest) = split_key(run_id);
        self.remove_where(head, |tail| {
            tail.len() > rest.len() && tail.starts_with(rest) && tail[rest.len()..].starts_with('.')
        });
    }
}

/// A run head with its history.
struct StoredRun {
    head: Arc<Run>,
    /// The head's outbox was dispatched: it is emptied when the head is next handed out (by
    /// then, usually nobody else holds the head, so that costs no copy).
    outbox_acked: bool,
    /// By seq, each seq once. A vector rather than a map: records come in seq order, and a
    /// record saved again (its step finished) replaces its earlier version.
    history: Vec<StepRecord>,
}

impl StoredRun {
    /// The head as a load returns it (an acknowledged outbox emptied).
    fn head(&mut self) -> &Arc<Run> {
        if self.outbox_acked && !self.head.outbox.is_empty() {
            Arc::make_mut(&mut self.head).outbox.clear();
        }
        self.outbox_acked = false;
        &self.head
    }

    /// The history below the head's `history_len`, in seq order.
    fn history(&self) -> impl Iterator<Item = &StepRecord> {
        let len = self.head.history_len;
        self.history.iter().filter(move |r| r.seq < len)
    }

    /// Keeps `record`, replacing the one with its seq if any.
    fn keep(&mut self, record: StepRecord) {
        match self.history.last() {
            Some(last) if last.seq >= record.seq => match self.history.binary_search_by_key(&record.seq, |r| r.seq) {
                Ok(i) => self.history[i] = record,
                Err(i) => self.history.insert(i, record),
            },
            _ => self.history.push(record),
        }
    }
}

#[derive(Debug, Clone)]
enum ClaimRecord {
    InProgress { until: Timestamp },
    Completed { output: serde_json::Value },
}

impl MemoryRunStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every run, ordered by (tenant, run id) — run ids are time-ordered UUID v7.
    pub fn all_runs(&self) -> Vec<Run> {
        let mut inner = lock(&self.inner);
        let mut runs: Vec<Run> = inner.runs.values_mut().map(|r| Run::clone(r.head())).collect();
        runs.sort_by(|a, b| (&a.tenant, &a.run_id).cmp(&(&b.tenant, &b.run_id)));
        runs
    }

    /// Removes a finished (completed, failed or cancelled) run with its history and the
    /// idempotency records of its effects (keys `{run_id}.…`), and returns the run and its
    /// history. The enrollment state of its automation and record stays (re-enrollment rules need
    /// it). `None`, and nothing removed, if the run is unknown or still active.
    ///
    /// The simulator calls this once nothing is left queued for the run, so no redelivery can
    /// need those records any more.
    pub fn take_finished(&self, tenant: &str, run_id: &str) -> Option<(Run, Vec<StepRecord>)> {
        let mut inner = lock(&self.inner);
        if !inner.runs.get(tenant, run_id)?.head.status.is_terminal() {
            return None;
        }
        let mut stored = inner.runs.remove(tenant, run_id)?;
        stored.head();
        let len = stored.head.history_len;
        let history = stored.history.into_iter().filter(|r| r.seq < len).collect();
        inner.claims.remove_run(run_id);
        Some((Arc::unwrap_or_clone(stored.head), history))
    }

    /// Forgets the enrollment state of (automation, enrollment key) if none of its runs is
    /// active. For an automation that enrolls every time (`reenroll: always`), such a state says
    /// nothing that a missing one does not: the next enrollment starts again from version 0.
    pub fn forget_idle_enrollment(&self, tenant: &str, automation_id: &str, key: &str) {
        let mut inner = lock(&self.inner);
        let Some(states) = inner.enrollments.get_mut(tenant, automation_id) else {
            return;
        };
        if states.get(key).is_some_and(|e| e.active_runs.is_empty()) {
            states.remove(key);
            if states.is_empty() {
                inner.enrollments.remove(tenant, automation_id);
            }
        }
    }

    /// Forces an idempotency record into "in progress" with a lease (tests of crash recovery).
    pub fn force_in_progress(&self, key: &str, until: Timestamp) {
        lock(&self.inner)
            .claims
            .insert_key(key, ClaimRecord::InProgress { until });
    }
}

impl StoreInner {
    /// A terminal run gives up its routes and its enrollment slot.
    fn release(&mut self, run: &Run) {
        for key in run.route_keys() {
            if let Some(routes) = self.routes.get_mut(&run.tenant, &key) {
                routes.remove(&run.run_id);
                if routes.is_empty() {
                    self.routes.remove(&run.tenant, &key);
                }
            }
        }
        let state = self
            .enrollments
            .get_mut(&run.tenant, &run.automation_id)
            .and_then(|states| states.get_mut(&run.enrollment_key));
        if let Some(e) = state {
            e.active_runs.retain(|id| id != &run.run_id);
            e.version += 1;
        }
    }
}

#[async_trait]
impl RunStore for MemoryRunStore {
    async fn enrollment(&self, tenant: &str, automation_id: &str, key: &str) -> Result<EnrollmentState, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .enrollments
            .get(tenant, automation_id)
            .and_then(|states| states.get(key))
            .cloned()
            .unwrap_or_default())
    }

    async fn create_run(&self, run: &Run, enrollment: &EnrollmentState) -> Result<CreateOutcome, StoreError> {
        self.create_run_shared(Arc::new(run.clone()), enrollment).await
    }

    async fn create_run_shared(
        &self,
        run: Arc<Run>,
        enrollment: &EnrollmentState,
    ) -> Result<CreateOutcome, StoreError> {
        let mut inner = lock(&self.inner);
        if inner.runs.get(&run.tenant, &run.run_id).is_some() {
            return Ok(CreateOutcome::AlreadyExists);
        }
        let states = inner.enrollments.get_or_default(&run.tenant, &run.automation_id);
        let stored = states.get(&run.enrollment_key).map(|e| e.version).unwrap_or(0);
        if stored + 1 != enrollment.version {
            return Err(StoreError::Conflict(format!(
                "enrollment {} changed",
                run.enrollment_key
            )));
        }
        match states.get_mut(&run.enrollment_key) {
            Some(state) => state.clone_from(enrollment),
            None => {
                states.insert(run.enrollment_key.clone(), enrollment.clone());
            }
        }
        for route in run.route_keys() {
            inner
                .routes
                .get_or_default(&run.tenant, &route)
                .insert(run.run_id.clone(), run.automation_id.clone());
        }
        let stored = StoredRun {
            head: run.clone(),
            outbox_acked: false,
            history: Vec::new(),
        };
        inner.runs.insert(&run.tenant, &run.run_id, stored);
        Ok(CreateOutcome::Created)
    }

    async fn load_run(&self, tenant: &str, run_id: &str) -> Result<Option<Run>, StoreError> {
        Ok(self.load_run_shared(tenant, run_id).await?.map(Arc::unwrap_or_clone))
    }

    async fn save_run(&self, run: &Run, records: &[StepRecord]) -> Result<(), StoreError> {
        self.save_run_shared(Arc::new(run.clone()), records.to_vec()).await
    }

    async fn load_run_shared(&self, tenant: &str, run_id: &str) -> Result<Option<Arc<Run>>, StoreError> {
        let mut inner = lock(&self.inner);
        Ok(inner.runs.get_mut(tenant, run_id).map(|r| r.head().clone()))
    }

    async fn save_run_shared(&self, run: Arc<Run>, records: Vec<StepRecord>) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        let stored = inner
            .runs
            .get_mut(&run.tenant, &run.run_id)
            .filter(|stored| stored.head.version == run.version.wrapping_sub(1))
            .ok_or_else(|| StoreError::Conflict(format!("run {} changed", run.run_id)))?;
        for r in records {
            stored.keep(r);
        }
        stored.head = run.clone();
        stored.outbox_acked = false;
        if run.status.is_terminal() {
            inner.release(&run);
        }
        Ok(())
    }

    async fn save_reopened(&self, run: Arc<Run>, records: Vec<StepRecord>) -> Result<(), StoreError> {
        self.save_run_shared(run.clone(), records).await?;
        let mut inner = lock(&self.inner);
        for route in run.route_keys() {
            inner
                .routes
                .get_or_default(&run.tenant, &route)
                .insert(run.run_id.clone(), run.automation_id.clone());
        }
        Ok(())
    }

    async fn ack_outbox(&self, tenant: &str, run_id: &str, version: u64) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        if let Some(stored) = inner.runs.get_mut(tenant, run_id)
            && stored.head.version == version
        {
            stored.outbox_acked = true;
        }
        Ok(())
    }

    async fn history(&self, tenant: &str, run_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .runs
            .get(tenant, run_id)
            .map(|r| r.history().cloned().collect())
            .unwrap_or_default())
    }

    async fn routes(&self, tenant: &str, keys: &[String]) -> Result<Vec<Route>, StoreError> {
        let inner = lock(&self.inner);
        // A run routed by both its record and its contact is listed once.
        let mut out: Vec<Route> = Vec::new();
        for key in keys {
            if let Some(routes) = inner.routes.get(tenant, key) {
                for (run_id, automation_id) in routes {
                    if !out.iter().any(|r| &r.run_id == run_id) {
                        out.push(Route {
                            run_id: run_id.clone(),
                            automation_id: automation_id.clone(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    async fn mark_event_processed(&self, tenant: &str, event_id: &str, _now: Timestamp) -> Result<bool, StoreError> {
        Ok(lock(&self.inner).events.insert(tenant, event_id, ()).is_none())
    }

    async fn event_processed(&self, tenant: &str, event_id: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.inner).events.get(tenant, event_id).is_some())
    }
}

#[async_trait]
impl IdempotencyStore for MemoryRunStore {
    async fn claim(&self, key: &str, now: Timestamp, lease_seconds: i64) -> Result<Claim, StoreError> {
        let mut inner = lock(&self.inner);
        let until = now.checked_add(SignedDuration::from_secs(lease_seconds)).unwrap_or(now);
        match inner.claims.get_key(key).cloned() {
            None => {
                inner.claims.insert_key(key, ClaimRecord::InProgress { until });
                Ok(Claim::Acquired)
            }
            Some(ClaimRecord::Completed { output }) => Ok(Claim::Completed { output }),
            Some(ClaimRecord::InProgress { until: held }) if held > now => Ok(Claim::InProgress { until: held }),
            Some(ClaimRecord::InProgress { .. }) => {
                inner.claims.insert_key(key, ClaimRecord::InProgress { until });
                Ok(Claim::Expired)
            }
        }
    }

    async fn complete(&self, key: &str, output: &serde_json::Value) -> Result<(), StoreError> {
        self.complete_owned(key, output.clone()).await
    }

    async fn complete_owned(&self, key: &str, output: serde_json::Value) -> Result<(), StoreError> {
        lock(&self.inner)
            .claims
            .insert_key(key, ClaimRecord::Completed { output });
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        let (head, tail) = split_key(key);
        lock(&self.inner).claims.remove(head, tail);
        Ok(())
    }
}

#[async_trait]
impl RunDirectory for MemoryRunStore {
    async fn list_runs(
        &self,
        tenant: &str,
        automation_id: &str,
        filter: &RunFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Arc<Run>>, StoreError> {
        let inner = lock(&self.inner);
        let Some(runs) = inner.runs.0.get(tenant) else {
            return Ok(Vec::new());
        };
        let mut kept: Vec<&Arc<Run>> = runs
            .values()
            .map(|stored| &stored.head)
            .filter(|run| run.automation_id == automation_id && filter.keeps(run))
            .filter(|run| after.is_none_or(|after| run.run_id.as_str() < after))
            .collect();
        kept.sort_by(|a, b| b.run_id.cmp(&a.run_id));
        Ok(kept.into_iter().take(limit).cloned().collect())
    }
}

/// Events waiting for intake, in arrival order (the embedded engine takes them).
#[derive(Default)]
pub struct MemoryEventQueue {
    events: Mutex<std::collections::VecDeque<crate::event::Event>>,
}

impl MemoryEventQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// The oldest event waiting, if any.
    pub fn pop(&self) -> Option<crate::event::Event> {
        lock(&self.events).pop_front()
    }
}

#[async_trait]
impl EventQueue for MemoryEventQueue {
    async fn send_event(&self, event: &crate::event::Event) -> Result<(), QueueError> {
        lock(&self.events).push_back(event.clone());
        Ok(())
    }
}

/// A message waiting in the in-memory queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Queued {
    Step(StepMessage),
    Action(ActionMessage),
}

impl Queued {
    /// The run the message is for.
    pub fn run_id(&self) -> &str {
        match self {
            Queued::Step(m) => &m.run_id,
            Queued::Action(m) => &m.action.run_id,
        }
    }

    pub fn tenant(&self) -> &str {
        match self {
            Queued::Step(m) => &m.tenant,
            Queued::Action(m) => &m.action.tenant,
        }
    }
}

/// Step and action queues in memory, with delays against the engine's clock.
pub struct MemoryQueue {
    clock: Arc<dyn Clock>,
    inner: Mutex<QueueInner>,
}

#[derive(Default)]
struct QueueInner {
    next_seq: u64,
    /// (visible_at, seq) → message
    messages: BTreeMap<(Timestamp, u64), Queued>,
    /// Run id → how many of the messages are for it (runs with none are absent).
    per_run: HashMap<String, u32>,
}

impl MemoryQueue {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryQueue {
            clock,
            inner: Mutex::new(QueueInner::default()),
        }
    }

    fn push(&self, message: Queued, delay_seconds: u32) {
        let visible_at = self
            .clock
            .now()
            .checked_add(SignedDuration::from_secs(i64::from(delay_seconds.min(900))))
            .unwrap_or_else(|_| self.clock.now());
        let mut inner = lock(&self.inner);
        let seq = inner.next_seq;
        inner.next_seq += 1;
        count_in(&mut inner.per_run, message.run_id());
        inner.messages.insert((visible_at, seq), message);
    }

    /// The oldest message visible at `now`, removed from the queue.
    pub fn pop_visible(&self, now: Timestamp) -> Option<Queued> {
        let mut inner = lock(&self.inner);
        let entry = inner.messages.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let message = entry.remove();
        count_out(&mut inner.per_run, message.run_id());
        Some(message)
    }

    /// Whether a message for this run is queued (visible or not).
    pub fn has_messages_for(&self, run_id: &str) -> bool {
        lock(&self.inner).per_run.contains_key(run_id)
    }

    /// When the next message becomes visible.
    pub fn next_visible_at(&self) -> Option<Timestamp> {
        lock(&self.inner).messages.keys().next().map(|k| k.0)
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl StepQueue for MemoryQueue {
    async fn send_step(&self, message: &StepMessage, delay_seconds: u32) -> Result<(), QueueError> {
        self.push(Queued::Step(message.clone()), delay_seconds);
        Ok(())
    }

    async fn send_step_owned(&self, message: StepMessage, delay_seconds: u32) -> Result<(), QueueError> {
        self.push(Queued::Step(message), delay_seconds);
        Ok(())
    }
}

#[async_trait]
impl ActionQueue for MemoryQueue {
    async fn send_action(&self, message: &ActionMessage) -> Result<(), QueueError> {
        self.push(Queued::Action(message.clone()), 0);
        Ok(())
    }

    async fn send_action_owned(&self, message: ActionMessage) -> Result<(), QueueError> {
        self.push(Queued::Action(message), 0);
        Ok(())
    }
}

/// Counts one more item for `run_id`.
fn count_in(per_run: &mut HashMap<String, u32>, run_id: &str) {
    match per_run.get_mut(run_id) {
        Some(n) => *n += 1,
        None => {
            per_run.insert(run_id.to_string(), 1);
        }
    }
}

/// Counts one item less for `run_id`, forgetting the run at zero.
fn count_out(per_run: &mut HashMap<String, u32>, run_id: &str) {
    if let Some(n) = per_run.get_mut(run_id) {
        *n -= 1;
        if *n == 0 {
            per_run.remove(run_id);
        }
    }
}

/// Timers in memory, indexed by due time; `sweep` moves due ones onto a [`MemoryQueue`].
pub struct MemoryTimers {
    queue: Arc<MemoryQueue>,
    timers: Mutex<TimerIndex>,
}

#[derive(Default)]
struct TimerIndex {
    by_due: BTreeMap<(Timestamp, String), Timer>,
    due_of: HashMap<String, Timestamp>,
    /// Run id → how many pending timers it has (runs with none are absent).
    per_run: HashMap<String, u32>,
}

impl TimerIndex {
    fn insert(&mut self, timer: Timer) {
        self.remove(&timer.timer_id);
        self.due_of.insert(timer.timer_id.clone(), timer.due_at);
        count_in(&mut self.per_run, &timer.run_id);
        self.by_due.insert((timer.due_at, timer.timer_id.clone()), timer);
    }

    fn remove(&mut self, timer_id: &str) -> Option<Timer> {
        let due = self.due_of.remove(timer_id)?;
        let timer = self.by_due.remove(&(due, timer_id.to_string()))?;
        count_out(&mut self.per_run, &timer.run_id);
        Some(timer)
    }

    /// The earliest timer if it is due by `limit`, removed.
    fn pop_due(&mut self, limit: Timestamp) -> Option<Timer> {
        let entry = self.by_due.first_entry()?;
        if entry.key().0 > limit {
            return None;
        }
        let timer = entry.remove();
        self.due_of.remove(&timer.timer_id);
        count_out(&mut self.per_run, &timer.run_id);
        Some(timer)
    }
}

impl MemoryTimers {
    pub fn new(queue: Arc<MemoryQueue>) -> Self {
        MemoryTimers {
            queue,
            timers: Mutex::new(TimerIndex::default()),
        }
    }

    /// The earliest pending timer's due time.
    pub fn next_due(&self) -> Option<Timestamp> {
        lock(&self.timers).by_due.keys().next().map(|k| k.0)
    }

    pub fn pending(&self) -> Vec<Timer> {
        lock(&self.timers).by_due.values().cloned().collect()
    }

    /// Whether this run has a pending timer.
    pub fn has_timers_for(&self, run_id: &str) -> bool {
        lock(&self.timers).per_run.contains_key(run_id)
    }
}

#[async_trait]
impl TimerService for MemoryTimers {
    async fn schedule(&self, timer: &Timer, _now: Timestamp) -> Result<(), QueueError> {
        lock(&self.timers).insert(timer.clone());
        Ok(())
    }

    async fn cancel(&self, timer: &Timer) -> Result<(), QueueError> {
        lock(&self.timers).remove(&timer.timer_id);
        Ok(())
    }

    async fn sweep(&self, now: Timestamp, horizon_seconds: u32) -> Result<usize, QueueError> {
        let limit = now
            .checked_add(SignedDuration::from_secs(i64::from(horizon_seconds)))
            .unwrap_or(now);
        let due: Vec<Timer> = {
            let mut index = lock(&self.timers);
            let mut due = Vec::new();
            while let Some(timer) = index.pop_due(limit) {
                due.push(timer);
            }
            due
        };
        for t in &due {
            let remaining = t.due_at.duration_since(now).as_secs_f64().ceil().max(0.0) as u32;
            let msg = StepMessage {
                tenant: t.tenant.clone(),
                run_id: t.run_id.clone(),
                input: crate::command::Input::TimerFired {
                    timer_id: t.timer_id.clone(),
                },
            };
            self.queue.send_step_owned(msg, remaining).await?;
        }
        Ok(due.len())
    }
}

/// Records emails instead of sending them: each email is kept by its idempotency key (the
/// latest one per key) until [`RecordingEmail::take`] hands it over, and, when logging, in
/// [`RecordingEmail::sent`] too.
pub struct RecordingEmail {
    /// Every email in send order with its idempotency key; empty unless logging.
    pub sent: Mutex<Vec<(String, EmailMessage)>>,
    log: bool,
    /// Emails by idempotency key, until taken, and how many were sent in all.
    by_key: Mutex<(HashMap<String, EmailMessage>, u64)>,
}

impl RecordingEmail {
    /// `log`: also keep every email in [`RecordingEmail::sent`] (grows with every email).
    pub fn new(log: bool) -> Self {
        RecordingEmail {
            sent: Mutex::new(Vec::new()),
            log,
            by_key: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// The latest email sent with this idempotency key, if it has not been taken.
    pub fn get(&self, idempotency_key: &str) -> Option<EmailMessage> {
        lock(&self.by_key).0.get(idempotency_key).cloned()
    }

    /// Removes and returns the latest email sent with this idempotency key.
    pub fn take(&self, idempotency_key: &str) -> Option<EmailMessage> {
        lock(&self.by_key).0.remove(idempotency_key)
    }

    /// How many emails were sent in all (logging or not).
    pub fn count(&self) -> u64 {
        lock(&self.by_key).1
    }
}

/// Logging (every email stays in `sent`).
impl Default for RecordingEmail {
    fn default() -> Self {
        RecordingEmail::new(true)
    }
}

#[async_trait]
impl EmailSender for RecordingEmail {
    async fn send(&self, email: &EmailMessage, idempotency_key: &str) -> Result<String, EffectError> {
        if self.log {
            lock(&self.sent).push((idempotency_key.to_string(), email.clone()));
        }
        let mut by_key = lock(&self.by_key);
        by_key.0.insert(idempotency_key.to_string(), email.clone());
        by_key.1 += 1;
        // Named after the key, not a counter: the same whatever else was simulated with it.
        Ok(format!("simulated-{idempotency_key}"))
    }
}

/// Records CRM commands instead of publishing them (in [`RecordingCrm::sent`], when logging).
pub struct RecordingCrm {
    /// Every command in send order; empty unless logging.
    pub sent: Mutex<Vec<OutboundCrmCommand>>,
    log: bool,
}

impl RecordingCrm {
    /// `log`: keep every command in [`RecordingCrm::sent`] (grows with every command).
    pub fn new(log: bool) -> Self {
        RecordingCrm {
            sent: Mutex::new(Vec::new()),
            log,
        }
    }
}

/// Logging.
impl Default for RecordingCrm {
    fn default() -> Self {
        RecordingCrm::new(true)
    }
}

#[async_trait]
impl CrmCommandSink for RecordingCrm {
    async fn send(&self, command: &OutboundCrmCommand) -> Result<(), EffectError> {
        if self.log {
            lock(&self.sent).push(command.clone());
        }
        Ok(())
    }
}

/// Records HTTP requests (in [`RecordingHttp::sent`], when logging) and answers each with a
/// configurable status (200 by default).
pub struct RecordingHttp {
    /// Every request in send order with its idempotency key; empty unless logging.
    pub sent: Mutex<Vec<(String, HttpRequest)>>,
    /// Statuses to answer with, in order; when empty, 200.
    pub script: Mutex<Vec<u16>>,
    log: bool,
}

impl RecordingHttp {
    /// `log`: keep every request in [`RecordingHttp::sent`] (grows with every request).
    pub fn new(log: bool) -> Self {
        RecordingHttp {
            sent: Mutex::new(Vec::new()),
            script: Mutex::new(Vec::new()),
            log,
        }
    }
}

/// Logging.
impl Default for RecordingHttp {
    fn default() -> Self {
        RecordingHttp::new(true)
    }
}

#[async_trait]
impl HttpClient for RecordingHttp {
    async fn send(&self, request: &HttpRequest, idempotency_key: &str) -> Result<HttpResponse, EffectError> {
        if self.log {
            lock(&self.sent).push((idempotency_key.to_string(), request.clone()));
        }
        let mut script = lock(&self.script);
        let status = if script.is_empty() { 200 } else { script.remove(0) };
        Ok(HttpResponse {
            status,
            body: String::new(),
        })
    }
}

/// Inputs held while their automation is paused, in memory: (tenant, automation id, run id)
/// → held inputs in arrival order.
#[derive(Default)]
pub struct MemoryHeldInputs {
    inner: Mutex<HeldInner>,
}

#[derive(Default)]
struct HeldInner {
    by_run: BTreeMap<(String, String, String), BTreeMap<String, Input>>,
    /// Orders inputs held in the same instant.
    counter: u64,
}

impl MemoryHeldInputs {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl HeldInputStore for MemoryHeldInputs {
    async fn hold(
        &self,
        tenant: &str,
        automation_id: &str,
        run_id: &str,
        input: &Input,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        inner.counter += 1;
        let key = format!("{:020}.{:012}", now.as_nanosecond(), inner.counter);
        inner
            .by_run
            .entry((tenant.to_string(), automation_id.to_string(), run_id.to_string()))
            .or_default()
            .insert(key, input.clone());
        Ok(())
    }

    async fn held_for_run(
        &self,
        tenant: &str,
        automation_id: &str,
        run_id: &str,
        limit: usize,
    ) -> Result<Vec<HeldInput>, StoreError> {
        let inner = lock(&self.inner);
        let run_key = (tenant.to_string(), automation_id.to_string(), run_id.to_string());
        Ok(inner
            .by_run
            .get(&run_key)
            .map(|held| {
                held.iter()
                    .take(limit)
                    .map(|(key, input)| HeldInput {
                        key: key.clone(),
                        input: input.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn runs_with_held(
        &self,
        tenant: &str,
        automation_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .by_run
            .iter()
            .filter(|((t, a, _), held)| t == tenant && a == automation_id && !held.is_empty())
            .map(|((_, _, run_id), _)| run_id)
            .filter(|run_id| after.is_none_or(|after| run_id.as_str() > after))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn forget(&self, tenant: &str, automation_id: &str, run_id: &str, key: &str) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        let run_key = (tenant.to_string(), automation_id.to_string(), run_id.to_string());
        if let Some(held) = inner.by_run.get_mut(&run_key) {
            held.remove(key);
            if held.is_empty() {
                inner.by_run.remove(&run_key);
            }
        }
        Ok(())
    }
}

/// The audit log and the trigger evaluations in memory.
#[derive(Default)]
pub struct MemoryLogs {
    audit: Mutex<BTreeMap<(String, String), AuditEntry>>,
    evaluations: Mutex<BTreeMap<(String, String, String), std::collections::VecDeque<TriggerEvaluation>>>,
}

/// Evaluations kept per automation and record.
const MEMORY_EVALUATIONS: usize = 50;

impl MemoryLogs {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl AuditLog for MemoryLogs {
    async fn append(&self, tenant: &str, entry: &AuditEntry) -> Result<(), StoreError> {
        lock(&self.audit).insert((tenant.to_string(), entry.id.clone()), entry.clone());
        Ok(())
    }

    async fn list(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let audit = lock(&self.audit);
        Ok(audit
            .iter()
            .rev()
            .filter(|((t, id), _)| t == tenant && after.is_none_or(|after| id.as_str() < after))
            .take(limit)
            .map(|(_, entry)| entry.clone())
            .collect())
    }
}

#[async_trait]
impl EvaluationLog for MemoryLogs {
    async fn record(
        &self,
        tenant: &str,
        automation_id: &str,
        evaluation: &TriggerEvaluation,
    ) -> Result<(), StoreError> {
        let key = (
            tenant.to_string(),
            automation_id.to_string(),
            evaluation.subject.clone(),
        );
        let mut evaluations = lock(&self.evaluations);
        let kept = evaluations.entry(key).or_default();
        kept.push_front(evaluation.clone());
        kept.truncate(MEMORY_EVALUATIONS);
        Ok(())
    }

    async fn recent(
        &self,
        tenant: &str,
        automation_id: &str,
        subject: &str,
        limit: usize,
    ) -> Result<Vec<TriggerEvaluation>, StoreError> {
        let key = (tenant.to_string(), automation_id.to_string(), subject.to_string());
        Ok(lock(&self.evaluations)
            .get(&key)
            .map(|kept| kept.iter().take(limit).cloned().collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::definition::{Program, parse_automation};

    fn run() -> Run {
        let yaml = "id: a\nname: a\nstatus: active\ntrigger: {event: lead.created}\nsteps: [{id: e, end: {}}]\n";
        let program = Program::new(parse_automation(yaml).expect("parses")).expect("compiles");
        let (event, _) = crate::event::parse_event(&serde_json::json!({
            "id": "e1", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
            "subject": {"type": "lead", "id": "L1"}
        }))
        .expect("event");
        Run::new("R1".to_string(), &program, &event, Default::default(), event.time)
    }

    #[tokio::test]
    async fn messages_sent_owned_are_queued_as_those_sent_by_reference() {
        let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        let step = |n: u32| StepMessage {
            tenant: "t".to_string(),
            run_id: format!("r{n}"),
            input: crate::command::Input::Continue,
        };
        let (by_ref, owned) = (MemoryQueue::new(clock.clone()), MemoryQueue::new(clock.clone()));
        for (n, delay) in [(1, 5), (2, 0), (3, 5), (4, 1)] {
            by_ref.send_step(&step(n), delay).await.expect("sent");
            owned.send_step_owned(step(n), delay).await.expect("sent");
        }
        let later = Timestamp::UNIX_EPOCH + SignedDuration::from_secs(10);
        for _ in 0..4 {
            let (a, b) = (by_ref.pop_visible(later), owned.pop_visible(later));
            assert!(a.is_some());
            assert_eq!(a, b);
        }
        assert!(owned.is_empty() && !owned.has_messages_for("r1"));
    }

    #[test]
    fn a_runs_idempotency_records_are_those_with_its_prefix() {
        let keys = [
            "r1",
            "r1.0",
            "r1.3.open",
            "r1..x",
            "r10.1",
            "r2.1",
            "r",
            "a.b",
            "a.b.1",
            "a.b.2.close",
            "a.bc.1",
            "a.1",
            "a",
            "a.b.c.1",
            ".x",
            "",
        ];
        for run_id in ["r1", "r", "a", "a.b", "a.b.c", "zz", ""] {
            let mut claims = Keyed::default();
            for key in keys {
                claims.insert_key(
                    key,
                    ClaimRecord::InProgress {
                        until: Timestamp::UNIX_EPOCH,
                    },
                );
            }
            claims.remove_run(run_id);
            let prefix = format!("{run_id}.");
            for key in keys {
                assert_eq!(
                    claims.get_key(key).is_none(),
                    key.starts_with(&prefix),
                    "run {run_id:?}, key {key:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn an_acknowledged_outbox_is_gone_from_later_loads_only() {
        let store = MemoryRunStore::new();
        let first = run();
        let enrollment = crate::enrollment::enrolled(&EnrollmentState::default(), &first.run_id, first.started_at);
        store.create_run(&first, &enrollment).await.expect("created");
        let mut next = first.clone();
        next.version = 1;
        next.outbox = vec![Command::Continue];
        let next = Arc::new(next);
        store.save_run_shared(next.clone(), Vec::new()).await.expect("saved");
        let load = || async {
            store
                .load_run_shared("default", "R1")
                .await
                .expect("load")
                .expect("run")
        };
        assert_eq!(load().await.outbox, vec![Command::Continue], "not acknowledged yet");
        store.ack_outbox("default", "R1", 0).await.expect("ack");
        assert_eq!(
            load().await.outbox,
            vec![Command::Continue],
            "an ack of an older head does nothing"
        );
        store.ack_outbox("default", "R1", 1).await.expect("ack");
        assert!(load().await.outbox.is_empty(), "acknowledged");
        assert_eq!(
            next.outbox,
            vec![Command::Continue],
            "a head handed out earlier is not changed"
        );
        assert_eq!(
            store.load_run("default", "R1").await.expect("load").map(|r| r.version),
            Some(1)
        );
        let stale = Arc::new(first);
        assert!(matches!(
            store.save_run_shared(stale, Vec::new()).await,
            Err(StoreError::Conflict(_))
        ));
    }
}
