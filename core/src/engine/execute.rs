//! Execute: perform one action exactly once per idempotency key, as far as the world allows.
//!
//! 1. Claim the key (conditional write, state INPROGRESS with a lease).
//! 2. Perform the effect, retrying transient errors (throttling, 5xx) with exponential backoff.
//! 3. Record COMPLETED with the outcome.
//! 4. Report the outcome to the run as an `ActionResult`.
//!
//! A redelivered message finds COMPLETED and only re-reports. A claim whose lease expired means
//! an earlier attempt died mid-effect: email is then not resent (the step is marked uncertain),
//! other effects are repeated with the same idempotency key.

use super::effects::{Effects, not_resent, with_retries};
use super::{EngineError, Execute};
use crate::command::{ActionOutcome, Effect, Input, UncertainPolicy};
use crate::ids::run_id_for;
use crate::messages::{ActionMessage, StepMessage};
use crate::ports::{Claim, EffectError};
use serde_json::{Value, json};

impl Execute {
    /// Handles one action message; returns the outcome reported to the run.
    pub async fn handle(&self, message: &ActionMessage) -> Result<ActionOutcome, EngineError> {
        let action = &message.action;
        let now = self.intake.clock.now();
        let key = action.idempotency_key.as_str();
        let claim = self
            .idempotency
            .claim(key, now, self.intake.config.claim_lease_seconds)
            .await?;
        let (outcome, attempt) = match claim {
            Claim::Completed { output } => {
                let outcome: ActionOutcome =
                    serde_json::from_value(output).unwrap_or(ActionOutcome::Succeeded { output: Value::Null });
                (outcome, action.attempt)
            }
            Claim::InProgress { until } => {
                return Err(EngineError::RetryLater(format!(
                    "{key} is being performed by another attempt until {until}"
                )));
            }
            Claim::Expired if action.effect.uncertain_policy() == UncertainPolicy::MarkUncertain => {
                let outcome = not_resent(action);
                self.idempotency
                    .complete_owned(key, serde_json::to_value(&outcome).unwrap_or(Value::Null))
                    .await?;
                (outcome, action.attempt + 1)
            }
            Claim::Expired | Claim::Acquired => {
                let retried = matches!(claim, Claim::Expired);
                let policy = &self.intake.config.retry;
                let (outcome, tries) = with_retries(policy, &message.action, || self.perform(message)).await;
                if let ActionOutcome::Failed { error, .. } = &outcome {
                    tracing::warn!(run_id = %action.run_id, step_id = %action.step_id, %error, "action failed");
                }
                self.idempotency
                    .complete_owned(key, serde_json::to_value(&outcome).unwrap_or(Value::Null))
                    .await?;
                (outcome, action.attempt + tries - 1 + u32::from(retried))
            }
        };
        let report = StepMessage {
            tenant: action.tenant.clone(),
            run_id: action.run_id.clone(),
            input: Input::ActionResult {
                step_id: action.step_id.clone(),
                seq: action.seq,
                attempt,
                outcome: outcome.clone(),
            },
        };
        self.intake.steps.send_step_owned(report, 0).await?;
        Ok(outcome)
    }

    /// Performs the action's effect once: enroll and cancel here (intake's ports), the others
    /// through [`Effects`].
    async fn perform(&self, message: &ActionMessage) -> Result<ActionOutcome, EffectError> {
        let action = &message.action;
        match &action.effect {
            Effect::Enroll { automation_id } => self.enroll_other(message, automation_id).await,
            Effect::CancelAutomations { automation_ids } => self.cancel_others(message, automation_ids).await,
            effect => {
                // A notification through the CRM names the run's record: read only then.
                let subject = match effect {
                    Effect::Notify { .. } if Effects::notify_url(&self.intake.config, effect).is_none() => {
                        Some(self.subject_of(action).await)
                    }
                    _ => None,
                };
                let effects = Effects {
                    email: self.email.as_ref(),
                    crm: self.crm.as_ref(),
                    http: Some(self.http.as_ref()),
                    config: &self.intake.config,
                };
                effects.perform(action, subject.as_ref()).await
            }
        }
    }

    async fn subject_of(&self, action: &crate::command::PerformAction) -> crate::event::Subject {
        match self.intake.runs.load_run_shared(&action.tenant, &action.run_id).await {
            Ok(Some(run)) => run.subject.clone(),
            _ => crate::event::Subject {
                record_type: "run".to_string(),
                id: action.run_id.clone(),
                contact_id: None,
            },
        }
    }

    async fn enroll_other(&self, message: &ActionMessage, target: &str) -> Result<ActionOutcome, EffectError> {
        let action = &message.action;
        let store = |e: crate::ports::StoreError| EffectError::transient(e.to_string());
        let parent = self
            .intake
            .runs
            .load_run_shared(&action.tenant, &action.run_id)
            .await
            .map_err(store)?;
        let Some(parent) = parent else {
            return Err(EffectError::permanent(format!("run {} not found", action.run_id)));
        };
        let Some(program) = self
            .intake
            .catalog
            .latest(&action.tenant, target)
            .await
            .map_err(store)?
        else {
            return Err(EffectError::permanent(format!("automation \"{target}\" not found")));
        };
        if !program.automation.is_active() {
            return Ok(ActionOutcome::Skipped {
                reason: format!("automation \"{target}\" is not active"),
            });
        }
        let trigger = match <crate::event::Event as serde::Deserialize>::deserialize(&*parent.data.trigger) {
            Ok(e) => e,
            Err(e) => {
                return Err(EffectError::permanent(format!(
                    "run {} has no usable trigger: {e}",
                    parent.run_id
                )));
            }
        };
        let now = self.intake.clock.now();
        let run_id = run_id_for(
            &action.tenant,
            &format!("enroll:{}", action.idempotency_key),
            target,
            now,
        );
        let mut run = crate::run::Run::new(
            run_id.clone(),
            &program,
            &trigger,
            serde_json::Map::clone(&parent.data.contact),
            now,
        );
        run.enroll_depth = parent.enroll_depth + 1;
        run.parent_run_id = Some(parent.run_id.clone());
        run.dry_run |= parent.dry_run;
        run.data.record = parent.data.record.clone();
        match self.intake.create_run(&program, run, now).await {
            Ok(Ok(())) => Ok(ActionOutcome::Succeeded {
                output: json!({ "run_id": run_id, "automation_id": target }),
            }),
            Ok(Err(reason)) => Ok(ActionOutcome::Skipped {
                reason: format!("not enrolled in {target}: {reason}"),
            }),
            Err(e) => Err(EffectError::transient(e.to_string())),
        }
    }

    async fn cancel_others(&self, message: &ActionMessage, ids: &[String]) -> Result<ActionOutcome, EffectError> {
        let action = &message.action;
        let store = |e: crate::ports::StoreError| EffectError::transient(e.to_string());
        let Some(run) = self
            .intake
            .runs
            .load_run_shared(&action.tenant, &action.run_id)
            .await
            .map_err(store)?
        else {
            return Err(EffectError::permanent(format!("run {} not found", action.run_id)));
        };
        // This record's runs only (not those of the contact's other records).
        let routes = self
            .intake
            .runs
            .routes(&action.tenant, &[run.subject.record_key()])
            .await
            .map_err(store)?;
        let mut cancelled = Vec::new();
        for route in routes {
            let chosen =
                route.automation_id != run.automation_id && (ids.is_empty() || ids.contains(&route.automation_id));
            if !chosen || cancelled.contains(&route.run_id) {
                continue;
            }
            let msg = StepMessage {
                tenant: action.tenant.clone(),
                run_id: route.run_id.clone(),
                input: Input::Cancel {
                    reason: format!("cancelled by run {} step {}", run.run_id, action.step_id),
                },
            };
            self.intake
                .steps
                .send_step(&msg, 0)
                .await
                .map_err(|e| EffectError::transient(e.to_string()))?;
            cancelled.push(route.run_id);
        }
        Ok(ActionOutcome::Succeeded {
            output: json!({ "cancelled_runs": cancelled }),
        })
    }
}
