//! The imperative shell around the decider: the four handlers that both the Lambda functions and
//! the embedded runner call. Each handler is idempotent under redelivery:
//! - [`intake`](Engine::intake): run ids derive from (tenant, event id, automation id), run
//!   creation is conditional, and the event id is marked processed only after all its work;
//! - [`evaluate`](Engine::evaluate): saves with a version check, then dispatches; a redelivered
//!   input that changes nothing re-dispatches the saved outbox;
//! - [`execute`](Engine::execute): claim → perform → complete per idempotency key;
//! - [`resume`](Engine::resume): moves due timers; a duplicate wake is a stale timer to the decider.

mod evaluate;
mod execute;
mod intake;

pub use execute::RetryPolicy;
pub use intake::{IntakeOutcome, IntakeReport};

use crate::ports::{
    AutomationCatalog, Clock, CrmCommandSink, EmailSender, HttpClient, IdempotencyStore, QueueError, RunStore,
    StepQueue, StoreError, TimerService,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The ports an engine works through.
#[derive(Clone)]
pub struct Engine {
    pub catalog: Arc<dyn AutomationCatalog>,
    pub runs: Arc<dyn RunStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub queue: Arc<dyn StepQueue>,
    pub timers: Arc<dyn TimerService>,
    pub email: Arc<dyn EmailSender>,
    pub crm: Arc<dyn CrmCommandSink>,
    pub http: Arc<dyn HttpClient>,
    pub clock: Arc<dyn Clock>,
    pub config: EngineConfig,
}

/// Settings of the shell.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Notification channel → URL (`notify` actions without their own `url`). A channel with no
    /// URL is handed to the CRM as a `notify` command instead.
    pub notify_urls: BTreeMap<String, String>,
    /// How long an effect claim is held before another attempt may treat it as expired, seconds.
    pub claim_lease_seconds: i64,
    pub retry: RetryPolicy,
    /// Attempts at a conditional save before giving up (the message is then redelivered).
    pub max_conflict_retries: u32,
    /// Never perform effects: record them as skipped ("dry run").
    pub dry_run: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            notify_urls: BTreeMap::new(),
            claim_lease_seconds: 300,
            retry: RetryPolicy::default(),
            max_conflict_retries: 8,
            dry_run: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The message is malformed or refers to nothing; retrying will not help.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// Try again later (a concurrent attempt holds the effect, or conflicts persisted).
    #[error("retry later: {0}")]
    RetryLater(String),
    #[error("decider: {0}")]
    Decide(#[from] crate::decider::DecideError),
}

impl Engine {
    /// Moves due timers onto the step queue (the scheduled resume function). `horizon_seconds`
    /// is how far ahead to look (the sweep period, e.g. 60).
    pub async fn resume(&self, horizon_seconds: u32) -> Result<usize, EngineError> {
        let now = self.clock.now();
        Ok(self.timers.sweep(now, horizon_seconds).await?)
    }
}
