//! `action` steps: render the effect, hand it to execute, and go on when its result arrives.

use super::{Flow, Machine, StepError};
use crate::command::{ActionOutcome, Command, Effect, PerformAction};
use crate::definition::Action;
use crate::definition::Step;
use crate::definition::program::Node;
use crate::render::{apply_to_snapshot, render_action_in};
use crate::run::{RunStatus, StepStatus, WaitingFor};

/// An effect the run may not have, whatever its parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectRefused {
    /// `enroll` would start a chain deeper than `limits.max_enroll_depth`.
    #[error("enroll chain too deep: this run is {depth} enrollments deep (limits.max_enroll_depth = {limit})")]
    EnrollTooDeep { depth: u32, limit: u32 },
}

impl Machine<'_> {
    /// Prepares the effect and parks the run until its result arrives. An effect that cannot
    /// be prepared fails the step; the run goes on only with `continue_on_error`.
    pub(super) fn enter_action(&mut self, node: &Node, action: &Action) -> Flow {
        let step = &node.step;
        let type_name = action.step_type();
        match self.prepare(action) {
            Ok(effect) if self.run.dry_run && effect.is_external() => {
                self.dry_run_skip(step, type_name, &effect);
                Flow::Next(node.next.clone())
            }
            Ok(effect) => {
                self.perform(step, type_name, effect);
                Flow::Stop
            }
            Err(error) => {
                self.record_failure(step, type_name, "could not prepare the action".to_string(), &error);
                if step.continue_on_error {
                    Flow::Next(node.next.clone())
                } else {
                    self.step_failed(&step.id, &error);
                    Flow::Stop
                }
            }
        }
    }

    fn prepare(&mut self, action: &Action) -> Result<Effect, StepError> {
        let effect = render_action_in(action, &self.scope_parts(), &self.run.subject)?;
        self.check_effect(&effect)?;
        Ok(effect)
    }

    /// Refuses effects that would break limits (enroll chains).
    fn check_effect(&self, effect: &Effect) -> Result<(), EffectRefused> {
        if let Effect::Enroll { .. } = effect {
            let limit = self.program.automation.limits.max_enroll_depth;
            if self.run.enroll_depth >= limit {
                return Err(EffectRefused::EnrollTooDeep {
                    depth: self.run.enroll_depth,
                    limit,
                });
            }
        }
        Ok(())
    }

    /// A dry run's action: recorded as skipped, with the effect it would have had (rendered),
    /// and not performed.
    fn dry_run_skip(&mut self, step: &Step, type_name: &str, effect: &Effect) {
        let detail = format!("dry run, not performed: {}", describe_effect(effect));
        let output = serde_json::json!({ "dry_run": true, "effect": effect });
        let rec = self.instant_with_output(step, type_name, StepStatus::Skipped, detail, output);
        rec.skip_reason = Some("dry run".to_string());
    }

    /// Asks execute to perform the effect (idempotency key `{run_id}.{seq}`) and parks the run.
    fn perform(&mut self, step: &Step, type_name: &str, effect: Effect) {
        let seq = self.run.history_len;
        let idempotency_key = self.entry_id(seq);
        let detail = describe_effect(&effect);
        self.commands.push(Command::Perform(PerformAction {
            tenant: self.run.tenant.clone(),
            run_id: self.run.run_id.clone(),
            automation_id: self.run.automation_id.clone(),
            step_id: step.id.clone(),
            seq,
            attempt: 1,
            idempotency_key: idempotency_key.clone(),
            effect,
        }));
        self.park(
            step,
            type_name,
            WaitingFor::Action { idempotency_key },
            None,
            detail,
            RunStatus::Running,
        );
    }

    /// An action's result: it counts only for the step entry the run is parked on.
    pub(super) fn action_result(&mut self, step_id: &str, seq: u32, attempt: u32, outcome: &ActionOutcome) {
        let fits = self.run.cursor.as_ref().is_some_and(|c| {
            c.step_id == step_id && c.record.seq == seq && matches!(c.waiting_for, WaitingFor::Action { .. })
        });
        if fits {
            self.finish_action(step_id, attempt, outcome);
            self.drain_deferred();
        }
    }

    fn finish_action(&mut self, step_id: &str, attempt: u32, outcome: &ActionOutcome) {
        let Some(node) = self.node(step_id) else { return };
        if let Some(c) = self.run.cursor.as_mut() {
            c.record.attempt = attempt.max(1);
        }
        let next = node.next.clone();
        match outcome {
            ActionOutcome::Succeeded { output } => {
                if let crate::definition::StepKind::Action(action) = &node.step.kind {
                    self.reflect_in_snapshot(action);
                }
                self.close(StepStatus::Completed, "done".to_string(), None, Some(output.clone()));
                self.run_from(next);
            }
            ActionOutcome::Uncertain { detail } => {
                self.close(StepStatus::Uncertain, format!("not repeated: {detail}"), None, None);
                self.run_from(next);
            }
            ActionOutcome::Skipped { reason } => {
                self.close(StepStatus::Skipped, format!("skipped: {reason}"), None, None);
                self.run_from(next);
            }
            ActionOutcome::Failed { error, uncertain } => {
                let detail = if *uncertain {
                    "failed; it may have been performed"
                } else {
                    "failed"
                };
                self.close(StepStatus::Failed, detail.to_string(), Some(error.clone()), None);
                if node.step.continue_on_error {
                    self.run_from(next);
                } else {
                    self.step_failed(step_id, error);
                    if let Some(failure) = self.run.failure.as_mut() {
                        failure.uncertain = *uncertain;
                    }
                }
            }
        }
    }

    /// After a record action succeeded, later conditions see its change (a tag just added).
    /// Only the actions whose effect `apply_to_snapshot` applies are rendered again; for the
    /// others (email, notify, webhook, enroll, ...) the snapshot would not change.
    fn reflect_in_snapshot(&mut self, action: &Action) {
        if !changes_snapshot(action) {
            return;
        }
        let rendered = render_action_in(action, &self.scope_parts(), &self.run.subject);
        if let Ok(effect) = rendered {
            apply_to_snapshot(&effect, &mut self.run.data.contact, &mut self.run.data.record);
        }
    }
}

/// True for the actions whose CRM command [`apply_to_snapshot`] reflects in the run's contact or
/// record (`update_contact`, the tag and segment edits, `update_lead_status`, `assign`).
fn changes_snapshot(action: &Action) -> bool {
    matches!(
        action,
        Action::UpdateContact(_)
            | Action::AddTag(_)
            | Action::RemoveTag(_)
            | Action::AddToSegment(_)
            | Action::RemoveFromSegment(_)
            | Action::UpdateLeadStatus(_)
            | Action::Assign(_)
    )
}

/// A short description of an effect for history.
pub fn describe_effect(effect: &Effect) -> String {
    match effect {
        Effect::Email(e) => ["email to ", &e.to, ": \"", &e.subject, "\""].concat(),
        Effect::Crm(c) => {
            // `format!("CRM command {} {}", c.command, c.params)`, with the parameters written
            // by serde_json directly rather than through `Display`'s formatter adapter.
            let params = serde_json::to_string(&c.params).unwrap_or_default();
            ["CRM command ", &c.command, " ", &params].concat()
        }
        Effect::Notify { channel, message, .. } => ["notify ", channel, ": \"", message, "\""].concat(),
        Effect::Webhook(r) => format!("webhook {} {}", r.method, r.url),
        Effect::Enroll { automation_id } => format!("enroll in {automation_id}"),
        Effect::CancelAutomations { automation_ids } if automation_ids.is_empty() => {
            "cancel all other automations for this record".to_string()
        }
        Effect::CancelAutomations { automation_ids } => format!("cancel {}", automation_ids.join(", ")),
    }
}
