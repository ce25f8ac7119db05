//! Evaluate: load a run, decide, save (version-checked), dispatch.

use super::{EngineError, Evaluate};
use crate::command::{Command, CrmCommand, Effect, Input};
use crate::decider::{Decision, decide};
use crate::messages::{ActionMessage, StepMessage};
use crate::ports::{Claim, OutboundCrmCommand, StoreError, Timer};
use crate::run::Run;
use serde_json::{Value, json};
use std::sync::Arc;

/// Commands with an effect outside the run head (the others are only logged).
fn needs_dispatch(command: &Command) -> bool {
    !matches!(
        command,
        Command::Complete { .. } | Command::Fail { .. } | Command::Cancelled { .. }
    )
}

impl Evaluate {
    /// Handles one step message. Returns the saved head, its outbox as saved (None if the input
    /// changed nothing).
    ///
    /// Crash safety (a transactional outbox): the commands of a decision are saved with the run
    /// head, dispatched, then acknowledged. A run loaded with an unacknowledged outbox had its
    /// dispatch interrupted, so the outbox is dispatched again first (every command is idempotent
    /// downstream) and acknowledged, whatever input comes next.
    pub async fn handle(&self, message: &StepMessage) -> Result<Option<Arc<Run>>, EngineError> {
        for _ in 0..self.config.max_conflict_retries {
            let Some(mut run) = self.runs.load_run_shared(&message.tenant, &message.run_id).await? else {
                return Err(EngineError::Invalid(format!("run {} not found", message.run_id)));
            };
            if !run.outbox.is_empty() {
                tracing::info!(run_id = %run.run_id, version = run.version, "dispatching an unacknowledged outbox");
                self.dispatch(&run, &run.outbox).await?;
                self.runs.ack_outbox(&run.tenant, &run.run_id, run.version).await?;
                Arc::make_mut(&mut run).outbox.clear();
            }
            let program = self
                .catalog
                .get(&run.tenant, &run.automation_id, run.automation_version)
                .await?
                .ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "automation {} v{} not found for run {}",
                        run.automation_id, run.automation_version, run.run_id
                    ))
                })?;
            let decision = decide(&program, &run, &message.input, self.clock.as_ref())?;
            if decision.is_noop(&run) {
                tracing::info!(run_id = %run.run_id, input = message.input.kind(), "input changes nothing (duplicate or stale)");
                return Ok(None);
            }
            let Decision {
                mut run,
                records,
                commands,
            } = decision;
            let (outbox, logged): (Vec<Command>, Vec<Command>) = commands.into_iter().partition(needs_dispatch);
            run.outbox = outbox;
            let run = Arc::new(run);
            match self.runs.save_run_shared(run.clone(), records).await {
                Ok(()) => {
                    self.dispatch(&run, &run.outbox).await?;
                    self.dispatch(&run, &logged).await?;
                    if !run.outbox.is_empty() {
                        self.runs.ack_outbox(&run.tenant, &run.run_id, run.version).await?;
                    }
                    return Ok(Some(run));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::RetryLater(format!(
            "run {} kept conflicting",
            message.run_id
        )))
    }

    async fn dispatch(&self, run: &Run, commands: &[Command]) -> Result<(), EngineError> {
        let now = self.clock.now();
        for command in commands {
            match command {
                Command::Perform(action) => {
                    self.actions
                        .send_action_owned(ActionMessage { action: action.clone() })
                        .await?;
                }
                Command::ScheduleTimer { timer_id, due_at } => {
                    let timer = Timer {
                        tenant: run.tenant.clone(),
                        run_id: run.run_id.clone(),
                        timer_id: timer_id.clone(),
                        due_at: *due_at,
                    };
                    self.timers.schedule(&timer, now).await?;
                }
                Command::CancelTimer { timer_id, due_at } => {
                    let timer = Timer {
                        tenant: run.tenant.clone(),
                        run_id: run.run_id.clone(),
                        timer_id: timer_id.clone(),
                        due_at: *due_at,
                    };
                    self.timers.cancel(&timer).await?;
                }
                Command::OpenTask {
                    step_id,
                    task_id,
                    title,
                    description,
                    assignee,
                } => {
                    let params = json!({
                        "task_id": task_id,
                        "title": title,
                        "description": description,
                        "assignee": assignee,
                    });
                    let command = task_command(run, step_id, "open_human_task", format!("{task_id}.open"), params);
                    if !self.config.dry_run {
                        self.send_task_command_once(&command, now).await?;
                    }
                }
                Command::CloseTask {
                    step_id,
                    task_id,
                    reason,
                } => {
                    let params = json!({ "task_id": task_id, "reason": reason });
                    let command = task_command(run, step_id, "close_human_task", format!("{task_id}.close"), params);
                    if !self.config.dry_run {
                        self.send_task_command_once(&command, now).await?;
                    }
                }
                Command::Continue => {
                    let msg = StepMessage {
                        tenant: run.tenant.clone(),
                        run_id: run.run_id.clone(),
                        input: Input::Continue,
                    };
                    self.steps.send_step_owned(msg, 0).await?;
                }
                Command::Complete { reason } => {
                    tracing::info!(run_id = %run.run_id, automation_id = %run.automation_id, %reason, "run completed");
                }
                Command::Fail { reason } => {
                    tracing::warn!(run_id = %run.run_id, automation_id = %run.automation_id, %reason, "run failed");
                }
                Command::Cancelled { reason } => {
                    tracing::info!(run_id = %run.run_id, automation_id = %run.automation_id, %reason, "run cancelled");
                }
            }
        }
        Ok(())
    }
}

impl Evaluate {
    /// Sends the CRM command that opens or closes a human task once per idempotency key. It is
    /// not an action (execute's claim does not cover it), and a redelivered input re-dispatches
    /// the saved outbox, so without its own claim every redelivery would send it again. A claim left
    /// by an attempt that died mid-send is taken over when its lease expires, and the command is
    /// sent again with the same key (the policy of CRM commands).
    async fn send_task_command_once(
        &self,
        command: &OutboundCrmCommand,
        now: jiff::Timestamp,
    ) -> Result<(), EngineError> {
        let key = command.idempotency_key.as_str();
        match self
            .idempotency
            .claim(key, now, self.config.claim_lease_seconds)
            .await?
        {
            Claim::Completed { .. } => Ok(()),
            Claim::InProgress { until } => Err(EngineError::RetryLater(format!(
                "{key} is being sent by another attempt until {until}"
            ))),
            Claim::Acquired | Claim::Expired => {
                if let Err(e) = self.crm.send(command).await {
                    if let Err(release) = self.idempotency.release(key).await {
                        tracing::warn!(%key, error = %release, "could not release the claim");
                    }
                    return Err(EngineError::RetryLater(e.to_string()));
                }
                let output = json!({ "command": command.command.command });
                self.idempotency.complete(key, &output).await?;
                Ok(())
            }
        }
    }
}

/// The outbound CRM command that opens or closes a run's human task.
fn task_command(run: &Run, step_id: &str, command: &str, idempotency_key: String, params: Value) -> OutboundCrmCommand {
    OutboundCrmCommand {
        idempotency_key,
        tenant: run.tenant.clone(),
        run_id: run.run_id.clone(),
        automation_id: run.automation_id.clone(),
        step_id: step_id.to_string(),
        command: CrmCommand {
            command: command.to_string(),
            subject: run.subject.clone(),
            params,
        },
    }
}

/// Effects that only the engine itself can perform (they touch runs).
pub(crate) fn is_engine_effect(effect: &Effect) -> bool {
    matches!(effect, Effect::Enroll { .. } | Effect::CancelAutomations { .. })
}
