//! Ports: the small traits the engine's shell talks to. In-memory implementations live in
//! [`crate::memory`] (the embedded default); AWS ones in the `crmflow-aws` crate
//! (`dynamodb`, `sqs`, `ses`, `http`).

use crate::command::{CrmCommand, EmailMessage, HttpRequest, Input};
use crate::definition::{Automation, AutomationStatus, Program};
use crate::enrollment::EnrollmentState;
use crate::messages::{ActionMessage, StepMessage};
use crate::run::{Run, RunStatus, StepRecord};
use async_trait::async_trait;
use jiff::Timestamp;
use std::sync::Arc;

/// Where time comes from. The engine never reads the system clock directly.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The conditional write lost: someone else saved first (re-read and decide again).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Throttled or unavailable; retrying later may work.
    #[error("transient store error: {0}")]
    Transient(String),
    #[error("store error: {0}")]
    Other(String),
}

/// The result of trying to create a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// A run with this id exists already (a redelivered trigger).
    AlreadyExists,
}

/// A run registered for events of a record (`lead/L1`) or contact (`contact/C1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub run_id: String,
    pub automation_id: String,
}

/// Automation definitions, indexed by trigger event type.
#[async_trait]
pub trait AutomationCatalog: Send + Sync {
    /// Stores a definition version (replacing the same id + version).
    async fn put(&self, automation: Automation) -> Result<(), StoreError>;
    /// Active automations of a tenant whose trigger matches this event type (an index lookup,
    /// not a scan of every automation).
    async fn active_for_event(&self, tenant: &str, event_type: &str) -> Result<Vec<Arc<Program>>, StoreError>;
    /// A specific version (runs stay on the version they started on).
    async fn get(&self, tenant: &str, automation_id: &str, version: u32) -> Result<Option<Arc<Program>>, StoreError>;
    /// The newest version.
    async fn latest(&self, tenant: &str, automation_id: &str) -> Result<Option<Arc<Program>>, StoreError>;
    /// The automation's status (its newest version's): evaluate holds the runs of a `paused`
    /// automation and cancels those of an `archived` one.
    async fn status(&self, tenant: &str, automation_id: &str) -> Result<Option<AutomationStatus>, StoreError> {
        Ok(self
            .latest(tenant, automation_id)
            .await?
            .map(|program| program.automation.status))
    }
}

/// One stored version of an automation, as the management API shows it.
#[derive(Debug, Clone)]
pub struct AutomationVersion {
    pub program: Arc<Program>,
    /// When this version was stored (UTC); `None` for versions stored without a time (loaded
    /// through [`AutomationCatalog::put`]).
    pub created_at: Option<Timestamp>,
}

/// What the management API needs of the catalog beyond what the engine reads: creating an
/// automation only when its id is free, adding versions, changing the status of the newest
/// version, and listing.
#[async_trait]
pub trait AutomationDirectory: Send + Sync {
    /// Stores `automation` (its version must be 1) unless its id exists in its tenant:
    /// [`CreateOutcome::AlreadyExists`] then, and nothing is written.
    async fn create(&self, automation: Automation, now: Timestamp) -> Result<CreateOutcome, StoreError>;
    /// Stores `automation` as a new version. Its `version` must be one more than the newest
    /// stored; [`StoreError::Conflict`] when another write got there first.
    async fn add_version(&self, automation: Automation, now: Timestamp) -> Result<(), StoreError>;
    /// Replaces the newest version with `automation`, the same version with another status;
    /// [`StoreError::Conflict`] when a newer version exists.
    async fn replace_latest(&self, automation: Automation) -> Result<(), StoreError>;
    /// The newest version of each automation of `tenant`, by id, starting after the id
    /// `after`, at most `limit`, keeping those with the given status when one is given.
    async fn list(
        &self,
        tenant: &str,
        status: Option<AutomationStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AutomationVersion>, StoreError>;
    /// Every version of one automation, oldest first (empty when it does not exist).
    async fn versions(&self, tenant: &str, automation_id: &str) -> Result<Vec<AutomationVersion>, StoreError>;
}

/// Which runs a listing keeps: all when every field is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    /// Started at or after this instant (UTC).
    pub started_from: Option<Timestamp>,
    /// Started before this instant (UTC).
    pub started_before: Option<Timestamp>,
}

impl RunFilter {
    /// Whether `run` is kept.
    pub fn keeps(&self, run: &Run) -> bool {
        self.status.is_none_or(|s| run.status == s)
            && self.started_from.is_none_or(|t| run.started_at >= t)
            && self.started_before.is_none_or(|t| run.started_at < t)
    }
}

/// Runs as the management API lists them.
#[async_trait]
pub trait RunDirectory: Send + Sync {
    /// The runs of one automation (every version) that `filter` keeps, newest first by run id (a
    /// UUID v7 whose time is the trigger event's), starting after the run id `after` (the
    /// previous page's last), at most `limit`.
    async fn list_runs(
        &self,
        tenant: &str,
        automation_id: &str,
        filter: &RunFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Arc<Run>>, StoreError>;
}

/// Runs, their history, enrollment state and event routes.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Reads the enrollment state of (automation, enrollment key).
    async fn enrollment(&self, tenant: &str, automation_id: &str, key: &str) -> Result<EnrollmentState, StoreError>;
    /// Atomically: creates the run (if no run has its id), registers its routes, and writes
    /// `enrollment` if the stored enrollment state still has version `enrollment.version - 1`.
    async fn create_run(&self, run: &Run, enrollment: &EnrollmentState) -> Result<CreateOutcome, StoreError>;
    /// [`RunStore::create_run`], handing the new head over: a store that keeps heads in memory
    /// keeps this one instead of a copy.
    async fn create_run_shared(
        &self,
        run: Arc<Run>,
        enrollment: &EnrollmentState,
    ) -> Result<CreateOutcome, StoreError> {
        self.create_run(&run, enrollment).await
    }
    async fn load_run(&self, tenant: &str, run_id: &str) -> Result<Option<Run>, StoreError>;
    /// Saves a new head if the stored head has version `run.version - 1`, and upserts `records`
    /// by seq. When the run became terminal, its routes go and its enrollment slot is released.
    async fn save_run(&self, run: &Run, records: &[StepRecord]) -> Result<(), StoreError>;
    /// [`RunStore::load_run`], shared: a store that keeps heads in memory hands out its own
    /// (the handlers only read a loaded head), where the default wraps an owned one.
    async fn load_run_shared(&self, tenant: &str, run_id: &str) -> Result<Option<Arc<Run>>, StoreError> {
        Ok(self.load_run(tenant, run_id).await?.map(Arc::new))
    }
    /// [`RunStore::load_run_shared`] for a caller that may save the head next (evaluate): a
    /// store that completes an interrupted save lazily (the DynamoDB store writes the step records
    /// a head still keeps) does it here, so that no save replaces a head whose records lack their
    /// items. Other readers need not write.
    async fn load_run_to_save(&self, tenant: &str, run_id: &str) -> Result<Option<Arc<Run>>, StoreError> {
        self.load_run_shared(tenant, run_id).await
    }
    /// [`RunStore::save_run`], handing the head and the records over: a store that keeps them in
    /// memory keeps these instead of copies.
    async fn save_run_shared(&self, run: Arc<Run>, records: Vec<StepRecord>) -> Result<(), StoreError> {
        self.save_run(&run, &records).await
    }
    /// Saves a head that a retry brought back from `failed`, as [`RunStore::save_run`] does,
    /// and registers its routes again (they went when it failed). The enrollment slot it
    /// released then is not taken again.
    async fn save_reopened(&self, run: Arc<Run>, records: Vec<StepRecord>) -> Result<(), StoreError>;
    /// Marks the outbox saved with head `version` as dispatched (a later load returns the run
    /// with an empty outbox). Does nothing if the head has moved past `version`.
    async fn ack_outbox(&self, tenant: &str, run_id: &str, version: u64) -> Result<(), StoreError>;
    /// The history, ordered by seq (only records below the head's `history_len`).
    async fn history(&self, tenant: &str, run_id: &str) -> Result<Vec<StepRecord>, StoreError>;
    /// Active runs routed by any of these keys.
    async fn routes(&self, tenant: &str, keys: &[String]) -> Result<Vec<Route>, StoreError>;
    /// Records an event id; false when it was seen before (dedupe).
    async fn mark_event_processed(&self, tenant: &str, event_id: &str, now: Timestamp) -> Result<bool, StoreError>;
    async fn event_processed(&self, tenant: &str, event_id: &str) -> Result<bool, StoreError>;
}

/// One input held while its automation was paused.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldInput {
    /// Orders the held inputs of a run (oldest first) and names the item to forget.
    pub key: String,
    pub input: Input,
}

/// Inputs that reach the runs of a `paused` automation (timers that fall due, events, action
/// results, task completions): each is kept as its own item, not on the run head, until the
/// automation is resumed; then evaluate applies a run's held inputs in the order they arrived,
/// before anything else.
#[async_trait]
pub trait HeldInputStore: Send + Sync {
    /// Keeps `input` for run `run_id`, after the inputs held for it before.
    async fn hold(
        &self,
        tenant: &str,
        automation_id: &str,
        run_id: &str,
        input: &Input,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The inputs held for one run, oldest first, at most `limit`.
    async fn held_for_run(
        &self,
        tenant: &str,
        automation_id: &str,
        run_id: &str,
        limit: usize,
    ) -> Result<Vec<HeldInput>, StoreError>;
    /// The runs of an automation with held inputs, by run id, starting after `after`, at most
    /// `limit`.
    async fn runs_with_held(
        &self,
        tenant: &str,
        automation_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// Forgets a held input once it was applied.
    async fn forget(&self, tenant: &str, automation_id: &str, run_id: &str, key: &str) -> Result<(), StoreError>;
}

/// One write made through the management API.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// A UUID v7: entries sort by it in time order.
    pub id: String,
    /// When (UTC).
    pub at: Timestamp,
    /// Who: the id of the API key (never the key).
    pub credential: String,
    /// What: `automation.create`, `automation.version`, `automation.status`,
    /// `run.complete_task`, `run.cancel`, `run.retry`, `run.enroll`, `event.post`.
    pub action: String,
    /// The automation (`automations/{id}`), run (`automations/{id}/runs/{run_id}`) or event
    /// (`events/{event_id}`) written.
    pub target: String,
    /// The state before the write (absent for a creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    /// The state after it, or what was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
}

/// The audit log of the management API, per tenant.
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn append(&self, tenant: &str, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Newest first, starting after the entry `after` (the previous page's last id), at most
    /// `limit`.
    async fn list(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}

/// How long trigger evaluations are kept, in days.
pub const EVALUATION_RETENTION_DAYS: i64 = 7;

/// One event's trigger evaluation for one automation: why the record did or did not enroll.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct TriggerEvaluation {
    pub event_id: String,
    pub event_type: String,
    /// The record: `lead/L1`.
    pub subject: String,
    /// When intake evaluated it (UTC).
    pub evaluated_at: Timestamp,
    /// `enrolled`, `not_matched` (a trigger condition or condition did not hold) or
    /// `not_enrolled` (the enrollment policy refused).
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The conditions' results (`trigger.conditions: record.priority equals "critical" was
    /// false: ...`) or the enrollment policy's reason.
    pub reason: String,
}

/// Recent trigger evaluations, kept [`EVALUATION_RETENTION_DAYS`] days (at most 50 per
/// automation and record in memory).
#[async_trait]
pub trait EvaluationLog: Send + Sync {
    async fn record(&self, tenant: &str, automation_id: &str, evaluation: &TriggerEvaluation)
    -> Result<(), StoreError>;
    /// The evaluations of one record, newest first, at most `limit`.
    async fn recent(
        &self,
        tenant: &str,
        automation_id: &str,
        subject: &str,
        limit: usize,
    ) -> Result<Vec<TriggerEvaluation>, StoreError>;
}

/// The state of an effect's idempotency record.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// We hold it now; perform the effect.
    Acquired,
    /// Done before; here is what it returned.
    Completed { output: serde_json::Value },
    /// Someone holds it and its lease has not expired (a concurrent attempt): try later.
    InProgress { until: Timestamp },
    /// A previous holder's lease expired without completing: the effect may or may not have
    /// happened. We hold it now; the effect's uncertain-policy decides.
    Expired,
}

/// Claim / complete protocol for effects (exactly once, as far as the world allows).
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Conditional put of `INPROGRESS` with a lease until `now + lease_seconds`.
    async fn claim(&self, key: &str, now: Timestamp, lease_seconds: i64) -> Result<Claim, StoreError>;
    /// Marks `COMPLETED` with the effect's output.
    async fn complete(&self, key: &str, output: &serde_json::Value) -> Result<(), StoreError>;
    /// [`IdempotencyStore::complete`] with an output the caller no longer needs: a store that
    /// keeps values (the in-memory one) keeps it instead of copying it.
    async fn complete_owned(&self, key: &str, output: serde_json::Value) -> Result<(), StoreError> {
        self.complete(key, &output).await
    }
    /// Releases a claim after a failure that certainly did not perform the effect.
    async fn release(&self, key: &str) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
#[error("queue error: {0}")]
pub struct QueueError(pub String);

/// The events queue: CRM events for intake (the management API's `POST /api/v1/events` puts
/// them here, as a CRM would on SQS).
#[async_trait]
pub trait EventQueue: Send + Sync {
    async fn send_event(&self, event: &crate::event::Event) -> Result<(), QueueError>;
}

/// What a management API key stands for: its id (not secret, what the audit shows) and its
/// tenant, the tenant of every read and write a request with the key makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The key's id: `key_` and a UUID.
    pub id: String,
    pub tenant: String,
}

/// The management API's keys, looked up by the SHA-256 digest of the key (lowercase hex): the
/// key itself is never stored.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// The credential whose key has this digest, unless it is revoked or unknown (`None`); an
    /// error when the store could not be read (the API answers 503, not 401).
    async fn credential(&self, digest: &str) -> Result<Option<Credential>, StoreError>;
}

/// The step queue: inputs for evaluate. Delays are whole seconds, at most 900 (the SQS
/// `DelaySeconds` limit).
#[async_trait]
pub trait StepQueue: Send + Sync {
    async fn send_step(&self, message: &StepMessage, delay_seconds: u32) -> Result<(), QueueError>;

    /// [`StepQueue::send_step`] with a message the caller no longer needs: an in-memory queue
    /// keeps it instead of a copy.
    async fn send_step_owned(&self, message: StepMessage, delay_seconds: u32) -> Result<(), QueueError> {
        self.send_step(&message, delay_seconds).await
    }
}

/// The action queue: work for execute.
#[async_trait]
pub trait ActionQueue: Send + Sync {
    async fn send_action(&self, message: &ActionMessage) -> Result<(), QueueError>;

    /// [`ActionQueue::send_action`] with a message the caller no longer needs: an in-memory
    /// queue keeps it instead of a copy.
    async fn send_action_owned(&self, message: ActionMessage) -> Result<(), QueueError> {
        self.send_action(&message).await
    }
}

/// A due wake-up for a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timer {
    pub tenant: String,
    pub run_id: String,
    pub timer_id: String,
    pub due_at: Timestamp,
}

/// Timers. Implementations deliver `TimerFired` to the step queue when due: short timers as
/// delayed messages, long ones kept in a store and moved by [`TimerService::sweep`].
#[async_trait]
pub trait TimerService: Send + Sync {
    async fn schedule(&self, timer: &Timer, now: Timestamp) -> Result<(), QueueError>;
    async fn cancel(&self, timer: &Timer) -> Result<(), QueueError>;
    /// Moves timers due before `now + horizon_seconds` onto the step queue with their exact
    /// remaining delay; returns how many were moved.
    async fn sweep(&self, now: Timestamp, horizon_seconds: u32) -> Result<usize, QueueError>;
}

/// Is an effect error worth retrying?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Throttling, 5xx, timeouts: retry with backoff.
    Transient,
    /// Bad address, 4xx, rejected: don't retry.
    Permanent,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct EffectError {
    pub kind: ErrorKind,
    pub message: String,
}

impl EffectError {
    pub fn transient(message: impl Into<String>) -> Self {
        EffectError {
            kind: ErrorKind::Transient,
            message: message.into(),
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        EffectError {
            kind: ErrorKind::Permanent,
            message: message.into(),
        }
    }
}

/// Email (SES v2 on AWS). Returns the provider's message id.
#[async_trait]
pub trait EmailSender: Send + Sync {
    async fn send(&self, email: &EmailMessage, idempotency_key: &str) -> Result<String, EffectError>;
}

/// The outbound CRM command as published: the command plus where it came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct OutboundCrmCommand {
    /// Stable for every attempt of one step entry; the CRM should ignore repeats.
    pub idempotency_key: String,
    pub tenant: String,
    pub run_id: String,
    pub automation_id: String,
    pub step_id: String,
    #[serde(flatten)]
    pub command: CrmCommand,
}

/// Outbound CRM commands (an SQS queue the CRM consumes, on AWS).
#[async_trait]
pub trait CrmCommandSink: Send + Sync {
    async fn send(&self, command: &OutboundCrmCommand) -> Result<(), EffectError>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// Outbound HTTP (webhooks, notifications). Non-2xx answers come back as responses; the caller
/// classifies them.
#[async_trait]
pub trait HttpClient: Send + Sync {
    async fn send(&self, request: &HttpRequest, idempotency_key: &str) -> Result<HttpResponse, EffectError>;
}
