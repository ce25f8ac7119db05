//! Intake: a CRM event becomes runs, and reaches the runs already waiting on its record.

use super::{EngineError, Intake};
use crate::command::Input;
use crate::condition::Scope;
use crate::definition::Program;
use crate::enrollment::{self, EnrollmentRefused};
use crate::event::Event;
use crate::ids::run_id_for;
use crate::messages::StepMessage;
use crate::ports::{CreateOutcome, StoreError};
use crate::run::Run;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// The event type a CRM sends when a human task is done: `data.step_id` names the task step,
/// `data.output` is the output object, and optionally `data.run_id` / `data.automation_id`
/// narrow the runs. It reaches the runs of the event's record (its subject) only.
pub const TASK_COMPLETED_EVENT: &str = "task.completed";

/// What intake did with one event, per automation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IntakeReport {
    pub event_id: String,
    pub duplicate: bool,
    pub outcomes: Vec<IntakeOutcome>,
    /// Runs the event was delivered to.
    pub delivered_to: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IntakeOutcome {
    pub automation_id: String,
    /// `enrolled`, `not_matched` or `not_enrolled`.
    pub result: String,
    pub run_id: Option<String>,
    pub reason: String,
}

impl Intake {
    /// Handles one normalised event. `contact` is the contact snapshot known for the event's
    /// contact (merged under the event's own `contact` data).
    pub async fn handle(&self, event: &Event, contact: Map<String, Value>) -> Result<IntakeReport, EngineError> {
        let mut report = IntakeReport {
            event_id: event.id.clone(),
            ..Default::default()
        };
        if self.runs.event_processed(&event.tenant, &event.id).await? {
            report.duplicate = true;
            return Ok(report);
        }
        let now = self.clock.now();
        let programs = self.catalog.active_for_event(&event.tenant, &event.event_type).await?;
        let mut created = Vec::new();
        for program in programs {
            let outcome = self.enroll_for_event(&program, event, &contact, now).await?;
            if let Some(id) = &outcome.run_id {
                created.push(id.clone());
            }
            report.outcomes.push(outcome);
        }

        // Deliver to runs waiting on this record or contact.
        // A task completion goes to the runs of its own record only (never to a task of another
        // record of the same contact); other events also reach the contact's runs.
        let mut keys = vec![event.subject.record_key()];
        if let Some(c) = event.subject.contact_key()
            && event.event_type != TASK_COMPLETED_EVENT
        {
            keys.push(c);
        }
        let routes = self.runs.routes(&event.tenant, &keys).await?;
        let mut seen = std::collections::BTreeSet::new();
        for route in routes {
            if created.contains(&route.run_id) || !seen.insert(route.run_id.clone()) {
                continue;
            }
            let input = if event.event_type == TASK_COMPLETED_EVENT {
                match task_completion(event, &route.run_id, &route.automation_id) {
                    Some(input) => input,
                    None => continue,
                }
            } else {
                Input::Event { event: event.clone() }
            };
            let msg = StepMessage {
                tenant: event.tenant.clone(),
                run_id: route.run_id.clone(),
                input,
            };
            self.steps.send_step(&msg, 0).await?;
            report.delivered_to.push(route.run_id);
        }
        self.runs.mark_event_processed(&event.tenant, &event.id, now).await?;
        Ok(report)
    }

    async fn enroll_for_event(
        &self,
        program: &Program,
        event: &Event,
        contact: &Map<String, Value>,
        now: jiff::Timestamp,
    ) -> Result<IntakeOutcome, EngineError> {
        let automation = &program.automation;
        let outcome = |result: &str, run_id: Option<String>, reason: String| IntakeOutcome {
            automation_id: automation.id.clone(),
            result: result.to_string(),
            run_id,
            reason,
        };
        let run_id = run_id_for(&event.tenant, &event.id, &automation.id, event.time);
        let mut run = Run::new(run_id.clone(), program, event, contact.clone(), now);
        let scope = Scope {
            root: crate::decider::scope_for(&run, now),
            now,
        };
        for (name, condition) in [
            ("trigger.conditions", &automation.trigger.conditions),
            ("conditions", &automation.conditions),
        ] {
            if let Some(c) = condition {
                match c.explain(&scope) {
                    Ok((true, _)) => {}
                    Ok((false, why)) => return Ok(outcome("not_matched", None, format!("{name}: {why}"))),
                    Err(e) => {
                        tracing::warn!(automation_id = %automation.id, event_id = %event.id, error = %e, "condition error");
                        return Ok(outcome("not_matched", None, format!("{name}: {e}")));
                    }
                }
            }
        }
        let created = self.create_run(program, &mut run, now).await?;
        match created {
            Ok(()) => Ok(outcome("enrolled", Some(run_id), "enrolled".to_string())),
            Err(refused) => Ok(outcome("not_enrolled", None, refused.to_string())),
        }
    }

    /// Creates a run under the enrollment policy and sends it `Start`. Idempotent: a run that
    /// exists already (a redelivered trigger) just gets `Start` again, which the decider
    /// ignores if it started. Returns the policy's reason when the record may not enroll.
    pub(crate) async fn create_run(
        &self,
        program: &Program,
        run: &mut Run,
        now: jiff::Timestamp,
    ) -> Result<Result<(), EnrollmentRefused>, EngineError> {
        let policy = &program.automation.enrollment;
        for _ in 0..self.config.max_conflict_retries {
            if self.runs.load_run(&run.tenant, &run.run_id).await?.is_some() {
                self.send_start(run).await?;
                return Ok(Ok(()));
            }
            let state = self
                .runs
                .enrollment(&run.tenant, &run.automation_id, &run.enrollment_key)
                .await?;
            if let Err(reason) = enrollment::check(policy, &state, now) {
                return Ok(Err(reason));
            }
            let next = enrollment::enrolled(&state, &run.run_id, now);
            match self.runs.create_run(run, &next).await {
                Ok(CreateOutcome::Created | CreateOutcome::AlreadyExists) => {
                    tracing::info!(run_id = %run.run_id, automation_id = %run.automation_id, "run created");
                    self.send_start(run).await?;
                    return Ok(Ok(()));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::RetryLater(format!(
            "enrollment of {} kept conflicting",
            run.enrollment_key
        )))
    }

    async fn send_start(&self, run: &Run) -> Result<(), EngineError> {
        let msg = StepMessage {
            tenant: run.tenant.clone(),
            run_id: run.run_id.clone(),
            input: Input::Start,
        };
        self.steps.send_step(&msg, 0).await?;
        Ok(())
    }
}

/// A `task.completed` event as a `TaskCompleted` input, if it names a step (and this run and
/// automation, when it names them).
fn task_completion(event: &Event, run_id: &str, automation_id: &str) -> Option<Input> {
    let step_id = event.data.get("step_id")?.as_str()?.to_string();
    if let Some(r) = event.data.get("run_id").and_then(Value::as_str)
        && r != run_id
    {
        return None;
    }
    if let Some(a) = event.data.get("automation_id").and_then(Value::as_str)
        && a != automation_id
    {
        return None;
    }
    let output = event.data.get("output").cloned().unwrap_or_else(|| json!({}));
    Some(Input::TaskCompleted { step_id, output })
}
