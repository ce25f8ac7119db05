//! What goes into the decider ([`Input`]) and what comes out ([`Command`], [`Effect`]).

use crate::event::Event;
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One input to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "input", rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "inputs are short-lived values moved once; boxing the event buys nothing"
)]
pub enum Input {
    /// The run was just created; start at the first step.
    Start,
    /// An event for the run's record or contact (for `wait_for_event`, goals, exit rules).
    Event { event: Event },
    /// A timer fired.
    TimerFired { timer_id: String },
    /// The result of an action the decider asked for. `seq` names the step entry.
    ActionResult {
        step_id: String,
        seq: u32,
        attempt: u32,
        outcome: ActionOutcome,
    },
    /// A human task was completed.
    TaskCompleted { step_id: String, output: Value },
    /// Continue after a yield (long instant-step chains are split across messages).
    Continue,
    /// Stop the run (status `cancelled`).
    Cancel { reason: String },
    /// Resume a `failed` run from the step that failed, on the same version (a new entry of
    /// that step; the failed one stays in the history). An action whose failed attempt may have
    /// performed its effect (see [`ActionOutcome::Failed`]) is not performed again unless
    /// `resend_uncertain`: it is recorded as uncertain and the run goes on after it.
    Retry {
        #[serde(default)]
        resend_uncertain: bool,
    },
}

impl Input {
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Start => "start",
            Input::Event { .. } => "event",
            Input::TimerFired { .. } => "timer_fired",
            Input::ActionResult { .. } => "action_result",
            Input::TaskCompleted { .. } => "task_completed",
            Input::Continue => "continue",
            Input::Cancel { .. } => "cancel",
            Input::Retry { .. } => "retry",
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ActionOutcome {
    /// Done; `output` holds provider ids (e.g. the SES MessageId).
    Succeeded { output: Value },
    /// Failed for good (after retries of transient errors). `uncertain`: the last attempt
    /// gave up on a transient error (a timeout, a 5xx) of an effect that is not repeated when in
    /// doubt (email), so it may have been performed.
    Failed {
        error: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        uncertain: bool,
    },
    /// An earlier attempt may have performed it; by the action's policy it was not repeated.
    Uncertain { detail: String },
    /// Deliberately not performed (e.g. dry run, no recipient address).
    Skipped { reason: String },
}

/// What the decider asks the shell to do, after it has saved the new state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Perform an effect exactly once per idempotency key, then report an `ActionResult`.
    Perform(PerformAction),
    /// A `Perform` the shell performs itself, as saved in the run's outbox (evaluate performs
    /// email and CRM actions in place). The decider never emits it: the shell rewrites a
    /// `Perform` so before saving, which makes the saved head the action's claim (a head that
    /// still holds it unacknowledged was saved by an attempt that may have performed it).
    PerformInPlace(PerformAction),
    /// Fire `TimerFired { timer_id }` at `due_at` (UTC).
    ScheduleTimer {
        timer_id: String,
        due_at: Timestamp,
    },
    /// Drop a timer that is no longer needed (the run moved on or ended).
    CancelTimer {
        timer_id: String,
        due_at: Timestamp,
    },
    /// Tell the CRM a human task is open for this run (an `open_human_task` CRM command).
    OpenTask {
        step_id: String,
        /// `{run_id}.{seq}`: the task's identity, the same in every redelivery and in the
        /// matching `CloseTask`.
        task_id: String,
        title: String,
        description: Option<String>,
        assignee: Option<String>,
    },
    /// Tell the CRM an open human task is withdrawn (a `close_human_task` CRM command): the run
    /// left the task step without a completion (timeout, goal, exit rule, cancel or failure).
    CloseTask {
        step_id: String,
        /// The `task_id` of the `OpenTask` that opened it.
        task_id: String,
        /// Why, as written in the step's history (`task not completed in time`, ...).
        reason: String,
    },
    /// Send the run an `Input::Continue` (it yielded after many instant steps).
    Continue,
    Complete {
        reason: String,
    },
    Fail {
        reason: String,
    },
    Cancelled {
        reason: String,
    },
}

/// An action ready to perform: templates rendered, nothing left to decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PerformAction {
    pub tenant: String,
    pub run_id: String,
    pub automation_id: String,
    pub step_id: String,
    /// The step entry this action belongs to.
    pub seq: u32,
    pub attempt: u32,
    /// Stable for every attempt of this step entry: `{run_id}.{seq}`.
    pub idempotency_key: String,
    pub effect: Effect,
}

/// A side effect in the outside world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    Email(EmailMessage),
    /// A command for the CRM (contact updates, tags, segments, assignment, tasks, tickets,
    /// leads, SMS), delivered on the outbound command queue.
    Crm(CrmCommand),
    Notify {
        channel: String,
        message: String,
        url: Option<String>,
    },
    Webhook(HttpRequest),
    /// Start another automation for the run's record.
    Enroll {
        automation_id: String,
    },
    /// Cancel the record's active runs of these automations (all others if empty).
    CancelAutomations {
        automation_ids: Vec<String>,
    },
}

impl Effect {
    /// Whether the effect reaches outside the engine (email, CRM, notification, webhook), as
    /// opposed to starting or stopping runs (`enroll`, `cancel_automations`). A dry run performs
    /// only the latter.
    pub fn is_external(&self) -> bool {
        !matches!(self, Effect::Enroll { .. } | Effect::CancelAutomations { .. })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Effect::Email(_) => "email",
            Effect::Crm(_) => "crm",
            Effect::Notify { .. } => "notify",
            Effect::Webhook(_) => "webhook",
            Effect::Enroll { .. } => "enroll",
            Effect::CancelAutomations { .. } => "cancel_automations",
        }
    }

    /// What to do when an earlier attempt may already have performed this effect:
    /// email is never resent (marked uncertain); HTTP calls are resent with the same
    /// `Idempotency-Key`; CRM commands are resent (they carry their idempotency key and the
    /// CRM dedupes); enroll and cancel are idempotent by construction.
    pub fn uncertain_policy(&self) -> UncertainPolicy {
        match self {
            Effect::Email(_) => UncertainPolicy::MarkUncertain,
            _ => UncertainPolicy::Retry,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UncertainPolicy {
    MarkUncertain,
    Retry,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EmailMessage {
    pub to: String,
    /// None: the deployment's default sender.
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
}

/// A command for the CRM, as published on the outbound queue (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CrmCommand {
    /// `update_contact`, `add_tag`, `remove_tag`, `add_to_segment`, `remove_from_segment`,
    /// `assign`, `create_task`, `create_ticket`, `create_lead`, `update_lead_status`, `send_sms`,
    /// `open_human_task`, `close_human_task`.
    pub command: String,
    /// The record the command is about.
    pub subject: crate::event::Subject,
    pub params: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
}
