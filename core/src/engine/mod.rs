//! The imperative shell around the decider: the four handlers, each with only the ports it uses.
//! Each Lambda function wires one of them; the embedded runner wires all four ([`Engine`]). Each handler is idempotent under redelivery:
//! - [`Intake`]: run ids derive from (tenant, event id, automation id), run
//!   creation is conditional, and the event id is marked processed only after all its work;
//! - [`Evaluate`]: saves with a version check, then dispatches; a redelivered
//!   input that changes nothing re-dispatches the saved outbox;
//! - [`Execute`]: claim → perform → complete per idempotency key;
//! - [`Resume`]: moves due timers; a duplicate wake is a stale timer to the decider.

mod effects;
mod evaluate;
mod execute;
mod in_place;
mod intake;

pub use effects::RetryPolicy;
pub use evaluate::ARCHIVED_REASON;
pub use in_place::MAX_IN_PLACE_ACTIONS;
pub use intake::{IntakeOutcome, IntakeReport};

use crate::definition::Program;
use crate::ports::{
    ActionQueue, AutomationCatalog, Clock, CrmCommandSink, EmailSender, EvaluationLog, HeldInputStore, HttpClient,
    IdempotencyStore, QueueError, RunStore, StepQueue, StoreError, TimerService,
};
use crate::run::Run;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Intake's ports: events become runs ([`Intake::handle`]) and reach the runs waiting on their
/// record.
#[derive(Clone)]
pub struct Intake {
    pub catalog: Arc<dyn AutomationCatalog>,
    pub runs: Arc<dyn RunStore>,
    pub steps: Arc<dyn StepQueue>,
    /// Where each trigger evaluation is kept (why a record did or did not enroll); none in
    /// `crmflow simulate`.
    pub evaluations: Option<Arc<dyn EvaluationLog>>,
    pub clock: Arc<dyn Clock>,
    pub config: EngineConfig,
    /// Starts the runs intake creates in place: decides their `Start` input, saves and
    /// dispatches it as evaluate would ([`Evaluate::start`]). That saves each new run a step
    /// message, an evaluate invocation, a load and a status read. `None`: each new run is sent
    /// `Start` on the step queue instead (a handler without evaluate's ports). A trait object,
    /// so a function that never starts runs in place (the api, execute) does not link evaluate.
    pub starter: Option<Arc<dyn Starter>>,
}

/// What starts a run intake has just created (saved at version 0) in place.
#[async_trait::async_trait]
pub trait Starter: Send + Sync {
    /// Decides the run's `Start` with `program` (its automation version), saves and dispatches.
    async fn start(&self, program: &Program, run: Arc<Run>) -> Result<(), EngineError>;
}

#[async_trait::async_trait]
impl Starter for Evaluate {
    async fn start(&self, program: &Program, run: Arc<Run>) -> Result<(), EngineError> {
        Evaluate::start(self, program, run).await
    }
}

/// Evaluate's ports: load a run, decide, save, dispatch ([`Evaluate::handle`]). Human tasks are
/// opened and closed with CRM commands sent once per key (the idempotency store).
#[derive(Clone)]
pub struct Evaluate {
    pub catalog: Arc<dyn AutomationCatalog>,
    pub runs: Arc<dyn RunStore>,
    pub steps: Arc<dyn StepQueue>,
    pub actions: Arc<dyn ActionQueue>,
    pub timers: Arc<dyn TimerService>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub crm: Arc<dyn CrmCommandSink>,
    /// Where inputs wait while the run's automation is paused.
    pub held: Arc<dyn HeldInputStore>,
    pub clock: Arc<dyn Clock>,
    pub config: EngineConfig,
    /// With an email sender, evaluate performs email, CRM-command and CRM-notification actions
    /// itself, right after saving the decision that asks for them, and decides their result in
    /// the same invocation (no action message, execute invocation or result message; the saved
    /// head is the action's claim: see [`Evaluate::handle`]). Without one (intake's starter),
    /// every action goes to the action queue. Webhooks, notifications with a URL, `enroll` and
    /// `cancel_automations` always do.
    pub email: Option<Arc<dyn EmailSender>>,
}

/// Execute's ports: perform an action once per idempotency key ([`Execute::handle`]). The
/// `enroll` and `cancel_automations` actions start and stop runs through intake's ports
/// (catalog, run store, step queue, clock, settings), which also carry the action results back.
#[derive(Clone)]
pub struct Execute {
    pub intake: Intake,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub email: Arc<dyn EmailSender>,
    pub crm: Arc<dyn CrmCommandSink>,
    pub http: Arc<dyn HttpClient>,
}

/// Resume's ports: the scheduled sweep moves due timers onto the step queue
/// ([`Resume::handle`]).
#[derive(Clone)]
pub struct Resume {
    pub timers: Arc<dyn TimerService>,
    pub clock: Arc<dyn Clock>,
}

/// The whole engine in one process (the embedded runner, `crmflow simulate`): the four
/// handlers, usually on one set of in-memory adapters.
#[derive(Clone)]
pub struct Engine {
    pub intake: Intake,
    pub evaluate: Evaluate,
    pub execute: Execute,
    pub resume: Resume,
}

/// Every port of the embedded engine, for [`Engine::new`].
pub struct EnginePorts {
    pub catalog: Arc<dyn AutomationCatalog>,
    pub runs: Arc<dyn RunStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub steps: Arc<dyn StepQueue>,
    pub actions: Arc<dyn ActionQueue>,
    pub timers: Arc<dyn TimerService>,
    pub email: Arc<dyn EmailSender>,
    pub crm: Arc<dyn CrmCommandSink>,
    pub http: Arc<dyn HttpClient>,
    pub held: Arc<dyn HeldInputStore>,
    pub evaluations: Option<Arc<dyn EvaluationLog>>,
    pub clock: Arc<dyn Clock>,
    pub config: EngineConfig,
}

impl Engine {
    /// The four handlers on one set of ports.
    pub fn new(ports: EnginePorts) -> Engine {
        let EnginePorts {
            catalog,
            runs,
            idempotency,
            steps,
            actions,
            timers,
            email,
            crm,
            http,
            held,
            evaluations,
            clock,
            config,
        } = ports;
        let evaluate = Evaluate {
            catalog: catalog.clone(),
            runs: runs.clone(),
            steps: steps.clone(),
            actions,
            timers: timers.clone(),
            idempotency: idempotency.clone(),
            crm: crm.clone(),
            held,
            clock: clock.clone(),
            config: config.clone(),
            email: Some(email.clone()),
        };
        // As on AWS: intake's starter sends actions to the action queue.
        let starter = Evaluate {
            email: None,
            ..evaluate.clone()
        };
        let intake = Intake {
            catalog,
            runs,
            steps,
            evaluations,
            clock: clock.clone(),
            config,
            starter: Some(Arc::new(starter)),
        };
        Engine {
            evaluate,
            execute: Execute {
                intake: intake.clone(),
                idempotency,
                email,
                crm,
                http,
            },
            resume: Resume { timers, clock },
            intake,
        }
    }
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
    /// Intake explains why each automation's conditions held or not (the `reason` of an
    /// [`IntakeOutcome`]). Without it the conditions are only evaluated (same results, same
    /// errors) and a `not_matched` reason names the conditions only: for a caller that does not
    /// read the reasons (the simulator).
    pub explain_intake: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            notify_urls: BTreeMap::new(),
            claim_lease_seconds: 300,
            retry: RetryPolicy::default(),
            max_conflict_retries: 8,
            dry_run: false,
            explain_intake: true,
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

impl Resume {
    /// Moves due timers onto the step queue (the scheduled resume function). `horizon_seconds`
    /// is how far ahead to look (the sweep period, e.g. 60).
    pub async fn handle(&self, horizon_seconds: u32) -> Result<usize, EngineError> {
        let now = self.clock.now();
        Ok(self.timers.sweep(now, horizon_seconds).await?)
    }
}
