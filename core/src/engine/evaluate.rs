//! Evaluate: load a run, decide, save (version-checked), dispatch.

use super::{EngineError, Evaluate, in_place};
use crate::command::{Command, CrmCommand, Input, PerformAction};
use crate::decider::{Decision, decide};
use crate::definition::{AutomationStatus, Program};
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

/// Why evaluate cancels the runs of an archived automation.
pub const ARCHIVED_REASON: &str = "automation archived";

/// Inputs held while the run's automation is paused: everything but a cancel (a paused run can
/// still be cancelled, and archiving cancels).
fn held_while_paused(input: &Input) -> bool {
    !matches!(input, Input::Cancel { .. })
}

impl Evaluate {
    /// Handles one step message. Returns the saved head, its outbox as saved (None if the input
    /// changed nothing).
    ///
    /// Crash safety (a transactional outbox): the commands of a decision are saved with the run
    /// head, dispatched, then acknowledged. A run loaded with an unacknowledged outbox had its
    /// dispatch interrupted, so the outbox is dispatched again first (every command is idempotent
    /// downstream) and acknowledged, whatever input comes next.
    ///
    /// An action performed in place ([`Evaluate::email`]) is saved as `PerformInPlace` and
    /// performed after the other commands are dispatched; its result is decided at once, and
    /// that save acknowledges the head that asked for it. A head loaded with it still
    /// unacknowledged is the action's claim: within the claim lease (from the head's
    /// `updated_at`) another attempt may be performing it, so the message is retried later;
    /// after it, that attempt died mid-way, so an email is not resent (its step is marked
    /// uncertain) and other effects are performed again with the same idempotency key, as
    /// execute does with an expired claim.
    ///
    /// The automation's status rules over the input: while it is `paused` the input is held
    /// ([`HeldInputStore`](crate::ports::HeldInputStore)); the inputs held for a run are applied,
    /// oldest first, before the next input after the pause; an `archived` automation's run is
    /// cancelled whatever the input.
    pub async fn handle(&self, message: &StepMessage) -> Result<Option<Arc<Run>>, EngineError> {
        let run = self.load(&message.tenant, &message.run_id).await?;
        // An ended run ignores inputs but a retry (the decider's rule): no need to read the
        // status.
        let retry = matches!(message.input, Input::Retry { .. });
        let status = if run.status.is_terminal() && !retry {
            None
        } else {
            self.catalog.status(&run.tenant, &run.automation_id).await?
        };
        if status == Some(AutomationStatus::Paused) && held_while_paused(&message.input) {
            self.hold(run, &message.input).await?;
            return Ok(None);
        }
        let archived = status == Some(AutomationStatus::Archived);
        let run = if run.held_inputs {
            self.apply_held(run, !archived).await?
        } else {
            run
        };
        let cancel;
        let input = if archived {
            cancel = Input::Cancel {
                reason: ARCHIVED_REASON.to_string(),
            };
            &cancel
        } else {
            &message.input
        };
        let (run, changed) = self.decide_and_save(run, input).await?;
        Ok(changed.then_some(run))
    }

    /// Loads a run, dispatching an unacknowledged outbox first.
    async fn load(&self, tenant: &str, run_id: &str) -> Result<Arc<Run>, EngineError> {
        let Some(mut run) = self.runs.load_run_to_save(tenant, run_id).await? else {
            return Err(EngineError::Invalid(format!("run {run_id} not found")));
        };
        if let Some(action) = in_place::pending(&run.outbox) {
            let action = action.clone();
            return Box::pin(self.resume_in_place(run, action)).await;
        }
        if !run.outbox.is_empty() {
            tracing::info!(run_id = %run.run_id, version = run.version, "dispatching an unacknowledged outbox");
            self.dispatch(&run, &run.outbox).await?;
            self.runs.ack_outbox(&run.tenant, &run.run_id, run.version).await?;
            Arc::make_mut(&mut run).outbox.clear();
        }
        Ok(run)
    }

    /// Starts a run intake has just created (saved at version 0): decides `Start` with
    /// `program` (the run's automation version), saves and dispatches, as [`Evaluate::handle`]
    /// does for a `Start` message, without loading the run or reading the automation's status
    /// (intake enrolled it in an active automation a moment ago).
    pub async fn start(&self, program: &Program, run: Arc<Run>) -> Result<(), EngineError> {
        self.decide_with(program, run, &Input::Start).await.map(|_| ())
    }

    /// Decides `input` for `run` with its automation version's program: see
    /// [`Evaluate::decide_with`].
    async fn decide_and_save(&self, run: Arc<Run>, input: &Input) -> Result<(Arc<Run>, bool), EngineError> {
        let program = self.program_of(&run).await?;
        self.decide_with(&program, run, input).await
    }

    /// The program of the run's automation version.
    pub(super) async fn program_of(&self, run: &Run) -> Result<Arc<Program>, EngineError> {
        self.catalog
            .get(&run.tenant, &run.automation_id, run.automation_version)
            .await?
            .ok_or_else(|| {
                EngineError::Invalid(format!(
                    "automation {} v{} not found for run {}",
                    run.automation_id, run.automation_version, run.run_id
                ))
            })
    }

    /// Decides `input` for `run` and saves and dispatches the decision, then performs the
    /// action it asks to perform in place, if any, and decides its result, and so on (at most
    /// [`in_place::MAX_IN_PLACE_ACTIONS`] actions). Returns the head after it, and whether the
    /// input changed it.
    pub(super) async fn decide_with(
        &self,
        program: &Program,
        run: Arc<Run>,
        input: &Input,
    ) -> Result<(Arc<Run>, bool), EngineError> {
        let (mut run, changed, mut in_place) = self.decide_once(program, run, input, true).await?;
        let mut performed = 0;
        while let Some(action) = in_place {
            let result = self.perform_in_place(&run, &action).await;
            performed += 1;
            let more = performed < in_place::MAX_IN_PLACE_ACTIONS;
            (run, in_place) = self.decide_result(program, run, &result, more).await?;
        }
        Ok((run, changed))
    }

    /// Decides the result of an action `run` (its head) claims to perform in place, and saves
    /// it, which acknowledges the claim; a result the run does not take (it changes nothing)
    /// acknowledges the claim by itself, so that no later attempt takes the action over.
    pub(super) async fn decide_result(
        &self,
        program: &Program,
        run: Arc<Run>,
        result: &Input,
        in_place: bool,
    ) -> Result<(Arc<Run>, Option<PerformAction>), EngineError> {
        let (tenant, run_id, version) = (run.tenant.clone(), run.run_id.clone(), run.version);
        let (mut next, changed, in_place) = self.decide_once(program, run, result, in_place).await?;
        if !changed {
            tracing::warn!(%run_id, input = result.kind(), "the run did not take the result of its action");
            self.runs.ack_outbox(&tenant, &run_id, version).await?;
            Arc::make_mut(&mut next).outbox.clear();
        }
        Ok((next, in_place))
    }

    /// Decides `input` for `run` (reloaded after a lost conditional save) and saves and
    /// dispatches the decision. Returns the head after it, whether the input changed it, and
    /// the action it saved to perform in place (only with `in_place`), whose result is then
    /// the caller's to decide (its save acknowledges this one).
    pub(super) async fn decide_once(
        &self,
        program: &Program,
        mut run: Arc<Run>,
        input: &Input,
        in_place: bool,
    ) -> Result<(Arc<Run>, bool, Option<PerformAction>), EngineError> {
        for attempt in 0..self.config.max_conflict_retries {
            if attempt > 0 {
                run = Box::pin(self.load(&run.tenant, &run.run_id)).await?;
            }
            let decision = decide(program, &run, input, self.clock.as_ref())?;
            if decision.is_noop(&run) {
                tracing::info!(run_id = %run.run_id, input = input.kind(), "input changes nothing (duplicate or stale)");
                return Ok((run, false, None));
            }
            let Decision {
                run: mut next,
                records,
                mut commands,
            } = decision;
            if in_place {
                self.mark_in_place(&mut commands);
            }
            let (outbox, logged): (Vec<Command>, Vec<Command>) = commands.into_iter().partition(needs_dispatch);
            next.outbox = outbox;
            let reopened = run.status.is_terminal() && !next.status.is_terminal();
            let next = Arc::new(next);
            let saved = if reopened {
                self.runs.save_reopened(next.clone(), records).await
            } else {
                self.runs.save_run_shared(next.clone(), records).await
            };
            match saved {
                Ok(()) => {
                    self.dispatch(&next, &next.outbox).await?;
                    self.dispatch(&next, &logged).await?;
                    if let Some(action) = in_place::pending(&next.outbox) {
                        let action = action.clone();
                        return Ok((next, true, Some(action)));
                    }
                    if !next.outbox.is_empty() {
                        self.runs.ack_outbox(&next.tenant, &next.run_id, next.version).await?;
                    }
                    return Ok((next, true, None));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::RetryLater(format!("run {} kept conflicting", run.run_id)))
    }

    /// Keeps an input of a paused automation's run, and marks the head so the held inputs come
    /// first once the automation is resumed.
    async fn hold(&self, run: Arc<Run>, input: &Input) -> Result<(), EngineError> {
        let now = self.clock.now();
        self.held
            .hold(&run.tenant, &run.automation_id, &run.run_id, input, now)
            .await?;
        tracing::info!(run_id = %run.run_id, input = input.kind(), "automation paused: input held");
        self.mark_held(run, true).await
    }

    /// Applies the inputs held for `run`, oldest first, forgetting each once applied (only
    /// forgetting them when `apply` is false: the run of an archived automation is cancelled
    /// instead), then clears the mark. Returns the head after them.
    async fn apply_held(&self, mut run: Arc<Run>, apply: bool) -> Result<Arc<Run>, EngineError> {
        const PAGE: usize = 25;
        loop {
            let held = self
                .held
                .held_for_run(&run.tenant, &run.automation_id, &run.run_id, PAGE)
                .await?;
            if held.is_empty() {
                break;
            }
            for h in held {
                if apply {
                    tracing::info!(run_id = %run.run_id, input = h.input.kind(), "applying a held input");
                    run = self.decide_and_save(run, &h.input).await?.0;
                }
                self.held
                    .forget(&run.tenant, &run.automation_id, &run.run_id, &h.key)
                    .await?;
            }
        }
        self.mark_held(run.clone(), false).await?;
        self.load(&run.tenant, &run.run_id).await
    }

    /// Sets the head's `held_inputs` mark (a save of its own, with the version check).
    async fn mark_held(&self, mut run: Arc<Run>, held: bool) -> Result<(), EngineError> {
        for attempt in 0..self.config.max_conflict_retries {
            if attempt > 0 {
                run = self.load(&run.tenant, &run.run_id).await?;
            }
            if run.held_inputs == held {
                return Ok(());
            }
            let mut next = Run::clone(&run);
            next.held_inputs = held;
            next.version += 1;
            match self.runs.save_run_shared(Arc::new(next), Vec::new()).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::RetryLater(format!("run {} kept conflicting", run.run_id)))
    }

    pub(super) async fn dispatch(&self, run: &Run, commands: &[Command]) -> Result<(), EngineError> {
        let now = self.clock.now();
        for command in commands {
            match command {
                Command::Perform(action) => {
                    self.actions
                        .send_action_owned(ActionMessage { action: action.clone() })
                        .await?;
                }
                // Performed by the caller, after the rest of the outbox.
                Command::PerformInPlace(_) => {}
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
                    if !(self.config.dry_run || run.dry_run) {
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
                    if !(self.config.dry_run || run.dry_run) {
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
                self.idempotency.complete_owned(key, output).await?;
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
