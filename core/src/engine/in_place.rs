//! Actions evaluate performs itself ([`Evaluate::email`]): email, CRM commands and notifications
//! through the CRM. They save a round trip through the action queue, an execute invocation with
//! its claim and completion writes, and a result message with its load: the result is decided
//! in the same invocation, right after the effect.
//!
//! The saved head is the action's claim. The decision that asks for the action is saved with it
//! as `PerformInPlace` in the outbox; the save of its result replaces that head. A head loaded
//! with `PerformInPlace` unacknowledged was saved by an attempt that is performing it (within the
//! claim lease, counted from the head's `updated_at`: the message is retried later) or that died
//! before saving the result, having performed the effect or not: then an email is not resent
//! (its step is marked uncertain) and other effects are performed again with the same
//! idempotency key (the CRM dedupes), as execute does with an expired claim.

use super::effects::{Effects, not_resent, with_retries};
use super::{EngineError, Evaluate};
use crate::command::{ActionOutcome, Command, Effect, Input, PerformAction, UncertainPolicy};
use crate::run::Run;
use jiff::SignedDuration;
use std::sync::Arc;

/// Actions one message performs in place at most; the next one in the same chain goes to the
/// action queue (a run of many emails in a row stays within one invocation's time limit).
pub const MAX_IN_PLACE_ACTIONS: u32 = 8;

/// The action a saved outbox holds to perform in place, if any.
pub(super) fn pending(outbox: &[Command]) -> Option<&PerformAction> {
    outbox.iter().find_map(|c| match c {
        Command::PerformInPlace(action) => Some(action),
        _ => None,
    })
}

impl Evaluate {
    /// Whether evaluate performs `effect` itself.
    fn performs_in_place(&self, effect: &Effect) -> bool {
        self.email.is_some()
            && match effect {
                Effect::Email(_) | Effect::Crm(_) => true,
                Effect::Notify { .. } => Effects::notify_url(&self.config, effect).is_none(),
                Effect::Webhook(_) | Effect::Enroll { .. } | Effect::CancelAutomations { .. } => false,
            }
    }

    /// Rewrites the first `Perform` of a decision that evaluate performs itself into
    /// `PerformInPlace` (a decision asks for one action at most: the run then waits for it).
    pub(super) fn mark_in_place(&self, commands: &mut [Command]) {
        let first = commands
            .iter()
            .position(|c| matches!(c, Command::Perform(action) if self.performs_in_place(&action.effect)));
        if let Some(i) = first
            && let Command::Perform(action) = &commands[i]
        {
            commands[i] = Command::PerformInPlace(action.clone());
        }
    }

    /// Performs `action` of `run` (with retries of transient errors) and returns its result.
    /// `earlier` counts the attempts that may have performed it before.
    async fn perform_effect(&self, run: &Run, action: &PerformAction, earlier: u32) -> Input {
        let outcome = match &self.email {
            Some(email) => {
                let effects = Effects {
                    email: email.as_ref(),
                    crm: self.crm.as_ref(),
                    http: None,
                    config: &self.config,
                };
                let perform = || effects.perform(action, Some(&run.subject));
                let (outcome, tries) = with_retries(&self.config.retry, action, perform).await;
                if let ActionOutcome::Failed { error, .. } = &outcome {
                    tracing::warn!(run_id = %action.run_id, step_id = %action.step_id, %error, "action failed");
                }
                (outcome, tries)
            }
            None => (
                ActionOutcome::Failed {
                    error: "no email sender here to perform this action".to_string(),
                    uncertain: false,
                },
                1,
            ),
        };
        result(action, outcome.0, earlier + outcome.1)
    }

    /// Performs the action a decision just saved to perform in place; returns its result.
    pub(super) async fn perform_in_place(&self, run: &Run, action: &PerformAction) -> Input {
        self.perform_effect(run, action, 0).await
    }

    /// Takes over an action a head holds to perform in place, unacknowledged (see the module
    /// docs): retry later within the lease, else dispatch the rest of the head's outbox again,
    /// decide the action's result (not resent when in doubt, or performed again) and save it,
    /// sending any further action to the queue.
    pub(super) async fn resume_in_place(&self, run: Arc<Run>, action: PerformAction) -> Result<Arc<Run>, EngineError> {
        let lease = SignedDuration::from_secs(self.config.claim_lease_seconds);
        let until = run.updated_at.checked_add(lease).unwrap_or(run.updated_at);
        if self.clock.now() < until {
            return Err(EngineError::RetryLater(format!(
                "run {} is performing step {} in place until {until}",
                run.run_id, action.step_id
            )));
        }
        tracing::warn!(run_id = %run.run_id, step_id = %action.step_id, "taking over an action an earlier attempt stopped performing");
        // What the attempt that died dispatched before the action, again (idempotent).
        self.dispatch(&run, &run.outbox).await?;
        let input = if action.effect.uncertain_policy() == UncertainPolicy::MarkUncertain {
            result(&action, not_resent(&action), 2)
        } else {
            self.perform_effect(&run, &action, 1).await
        };
        let program = self.program_of(&run).await?;
        Ok(self.decide_result(&program, run, &input, false).await?.0)
    }
}

/// The `ActionResult` of `action` after `tries` attempts in all (at least the first).
fn result(action: &PerformAction, outcome: ActionOutcome, tries: u32) -> Input {
    Input::ActionResult {
        step_id: action.step_id.clone(),
        seq: action.seq,
        attempt: action.attempt + tries.max(1) - 1,
        outcome,
    }
}
