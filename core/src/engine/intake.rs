//! Intake: a CRM event becomes runs, and reaches the runs already waiting on its record.

use super::{EngineError, Intake};
use crate::command::Input;
use crate::condition::Scope;
use crate::definition::Program;
use crate::enrollment::{self, EnrollmentRefused};
use crate::event::Event;
use crate::ids::run_id_for;
use crate::messages::StepMessage;
use crate::ports::{CreateOutcome, StoreError, TriggerEvaluation};
use crate::run::{Run, SharedValue};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

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
        let mut shared = EventShared::new(event, &contact, now, &programs);
        for program in programs {
            let outcome = self.enroll_for_event(&program, &mut shared).await?;
            self.keep_evaluation(event, &outcome, now).await?;
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
            self.steps.send_step_owned(msg, 0).await?;
            report.delivered_to.push(route.run_id);
        }
        self.runs.mark_event_processed(&event.tenant, &event.id, now).await?;
        Ok(report)
    }

    async fn enroll_for_event(
        &self,
        program: &Program,
        shared: &mut EventShared<'_>,
    ) -> Result<IntakeOutcome, EngineError> {
        let (event, now) = (shared.event, shared.now);
        let automation = &program.automation;
        let outcome = |result: &str, run_id: Option<String>, reason: String| IntakeOutcome {
            automation_id: automation.id.clone(),
            result: result.to_string(),
            run_id,
            reason,
        };
        let run_id = run_id_for(&event.tenant, &event.id, &automation.id, event.time);
        let mut held = Vec::new();
        for (name, condition) in [
            ("trigger.conditions", &automation.trigger.conditions),
            ("conditions", &automation.conditions),
        ] {
            if let Some(c) = condition {
                let scope = shared.conditions_scope(&run_id, program);
                let verdict = match self.config.explain_intake {
                    true => c.explain(scope),
                    false => c.evaluate(scope).map(|holds| (holds, "not met".to_string())),
                };
                match verdict {
                    Ok((true, why)) => held.push(format!("{name}: {why}")),
                    Ok((false, why)) => return Ok(outcome("not_matched", None, format!("{name}: {why}"))),
                    Err(e) => {
                        tracing::warn!(automation_id = %automation.id, event_id = %event.id, error = %e, "condition error");
                        return Ok(outcome("not_matched", None, format!("{name}: {e}")));
                    }
                }
            }
        }
        let created = self
            .create_run(program, shared.run(run_id.clone(), program), now)
            .await?;
        let reason = if held.is_empty() {
            "enrolled".to_string()
        } else {
            format!("enrolled; {}", held.join("; "))
        };
        match created {
            Ok(()) => Ok(outcome("enrolled", Some(run_id), reason)),
            Err(refused) => Ok(outcome("not_enrolled", None, refused.to_string())),
        }
    }

    /// Keeps the outcome of one automation's trigger evaluation in the evaluation log.
    async fn keep_evaluation(
        &self,
        event: &Event,
        outcome: &IntakeOutcome,
        now: jiff::Timestamp,
    ) -> Result<(), EngineError> {
        let Some(log) = &self.evaluations else { return Ok(()) };
        let evaluation = TriggerEvaluation {
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            subject: event.subject.record_key(),
            evaluated_at: now,
            result: outcome.result.clone(),
            run_id: outcome.run_id.clone(),
            reason: outcome.reason.clone(),
        };
        log.record(&event.tenant, &outcome.automation_id, &evaluation).await?;
        Ok(())
    }

    /// Enrolls the record of `event` in `program` by hand (the management API's `enroll`): no
    /// trigger or conditions are checked, only the enrollment policy. The run id derives from
    /// the event id, so the same request again finds the same run.
    pub async fn enroll_by_hand(
        &self,
        program: &Program,
        event: &Event,
        contact: Map<String, Value>,
    ) -> Result<IntakeOutcome, EngineError> {
        let now = self.clock.now();
        let run_id = run_id_for(&event.tenant, &event.id, program.id(), event.time);
        let run = Run::new(run_id.clone(), program, event, contact, now);
        let (result, run_id, reason) = match self.create_run(program, run, now).await? {
            Ok(()) => ("enrolled", Some(run_id), "enrolled by hand".to_string()),
            Err(refused) => ("not_enrolled", None, refused.to_string()),
        };
        let outcome = IntakeOutcome {
            automation_id: program.id().to_string(),
            result: result.to_string(),
            run_id,
            reason,
        };
        self.keep_evaluation(event, &outcome, now).await?;
        Ok(outcome)
    }

    /// Creates a run under the enrollment policy and starts it: in place when intake has a
    /// [starter](Intake::starter), else with `Start` on the step queue. Idempotent: a run that
    /// exists already (a redelivered trigger) is sent `Start` on the queue, which evaluate
    /// ignores if it started (after dispatching an outbox its starter saved but did not get to
    /// acknowledge). Returns the policy's reason when the record may not enroll.
    pub(crate) async fn create_run(
        &self,
        program: &Program,
        run: Run,
        now: jiff::Timestamp,
    ) -> Result<Result<(), EnrollmentRefused>, EngineError> {
        let policy = &program.automation.enrollment;
        let mut run = run;
        run.dry_run |= self.config.dry_run;
        let run = Arc::new(run);
        for _ in 0..self.config.max_conflict_retries {
            if self.runs.load_run_shared(&run.tenant, &run.run_id).await?.is_some() {
                self.send_start(&run).await?;
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
            match self.runs.create_run_shared(run.clone(), &next).await {
                Ok(CreateOutcome::Created) => {
                    tracing::info!(run_id = %run.run_id, automation_id = %run.automation_id, "run created");
                    match &self.starter {
                        Some(evaluate) => evaluate.start(program, run).await?,
                        None => self.send_start(&run).await?,
                    }
                    return Ok(Ok(()));
                }
                // Created by an earlier delivery of the same trigger, which may have died before
                // starting it: `Start` on the queue lets evaluate finish that (its load dispatches
                // a saved outbox; the decider ignores a second start).
                Ok(CreateOutcome::AlreadyExists) => {
                    self.send_start(&run).await?;
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
        self.steps.send_step_owned(msg, 0).await?;
        Ok(())
    }
}

/// The top-level values of a scope (see [`crate::decider::scope_for`]).
const SCOPE_ROOTS: [&str; 8] = [
    "trigger", "event", "record", "previous", "contact", "steps", "run", "now",
];

/// Whether the conditions of `program` that intake evaluates read the scope's value `root`.
fn conditions_read(program: &Program, root: &str) -> bool {
    let automation = &program.automation;
    [&automation.trigger.conditions, &automation.conditions]
        .into_iter()
        .flatten()
        .any(|c| c.reads(root))
}

/// What the runs one event may start have in common, built once per event.
struct EventShared<'e> {
    event: &'e Event,
    contact: &'e Map<String, Value>,
    now: jiff::Timestamp,
    /// The event as `trigger.*`, shared by those runs.
    trigger: SharedValue,
    /// See [`EventShared::conditions_scope`].
    conditions: Option<Scope>,
    /// The top-level scope values the conditions of these automations read.
    roots: Vec<&'static str>,
    /// The first run built (see [`EventShared::run`]).
    first_run: Option<Run>,
}

impl<'e> EventShared<'e> {
    /// For the automations `programs` (their conditions are evaluated against one scope).
    fn new(event: &'e Event, contact: &'e Map<String, Value>, now: jiff::Timestamp, programs: &[Arc<Program>]) -> Self {
        let roots = SCOPE_ROOTS
            .into_iter()
            .filter(|root| programs.iter().any(|p| conditions_read(p, root)))
            .collect();
        EventShared {
            roots,
            event,
            contact,
            now,
            trigger: SharedValue::new(event.to_scope_value()),
            conditions: None,
            first_run: None,
        }
    }

    /// The run `run_id` of `program` that the event starts. The runs of one event differ only in
    /// `run_id`, `automation_id` and `automation_version`: the first is built, the others are
    /// copies of it (sharing its data) with those rewritten.
    fn run(&mut self, run_id: String, program: &Program) -> Run {
        if let Some(first) = &self.first_run {
            let mut run = first.clone();
            run.run_id = run_id;
            run.automation_id = program.id().to_string();
            run.automation_version = program.version();
            run.dry_run = program.automation.mode == crate::definition::Mode::Sandbox;
            return run;
        }
        let (event, contact) = (self.event, self.contact.clone());
        let run = Run::with_trigger(run_id, program, event, self.trigger.clone(), contact, self.now);
        self.first_run = Some(run.clone());
        run
    }

    /// The scope the conditions of `program` see for its run `run_id`: what
    /// [`crate::decider::scope_for`] gives for that run, without the values none of the
    /// automations' conditions read. It is built for the first automation
    /// that asks; between automations it differs only in `run.id`, `run.automation_id` and
    /// `run.automation_version`, which are rewritten in place.
    fn conditions_scope(&mut self, run_id: &str, program: &Program) -> &Scope {
        if let Some(scope) = &mut self.conditions {
            if let Some(Value::Object(run)) = scope.root.get_mut("run") {
                run.insert("id".to_string(), Value::from(run_id));
                run.insert("automation_id".to_string(), Value::from(program.id()));
                run.insert("automation_version".to_string(), Value::from(program.version()));
            }
        } else {
            let run = self.run(run_id.to_string(), program);
            let roots = &self.roots;
            let root = crate::decider::scope_reading(&run, self.now, |root| roots.contains(&root));
            self.conditions = Some(Scope { root, now: self.now });
        }
        self.conditions.as_ref().expect("built above")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::parse_automation;

    fn program(id: &str, version: u32, cel: &str) -> Arc<Program> {
        let yaml = format!(
            "id: {id}\nname: {id}\nversion: {version}\nstatus: active\ntrigger: {{event: lead.created, conditions: {{cel: \"{cel}\"}}}}\nsteps: [{{id: e, end: {{}}}}]\n"
        );
        Arc::new(Program::new(parse_automation(&yaml).expect("parses")).expect("compiles"))
    }

    fn event() -> (Event, Map<String, Value>) {
        let (event, _) = crate::event::parse_event(&json!({
            "id": "e1", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
            "subject": {"type": "lead", "id": "L1", "contact_id": "C1"},
            "data": {"score": 7}, "contact": {"email": "ada@example.com"}
        }))
        .expect("event");
        let contact: Map<String, Value> = [("first_name".to_string(), json!("Ada"))].into_iter().collect();
        (event, contact)
    }

    #[test]
    fn runs_and_conditions_scope_built_once_per_event_are_those_of_each_automation() {
        // Between them, the conditions read every top-level value of the scope.
        let programs = [
            program(
                "first",
                1,
                "has(trigger.id) && has(event.id) && record.score > 0 && previous == previous",
            ),
            program(
                "second",
                3,
                "contact == contact && steps == steps && has(run.id) && now == now",
            ),
        ];
        let (event, contact) = event();
        let now = event.time;
        let mut shared = EventShared::new(&event, &contact, now, &programs);
        for p in &programs {
            let run_id = run_id_for(&event.tenant, &event.id, p.id(), event.time);
            let run = Run::new(run_id.clone(), p, &event, contact.clone(), now);
            assert_eq!(shared.run(run_id.clone(), p), run, "{}", p.id());
            let expected = crate::decider::scope_for(&run, now);
            let scope = shared.conditions_scope(&run_id, p);
            assert_eq!(scope.root, expected, "{}", p.id());
            assert_eq!(scope.root.to_string(), expected.to_string(), "{}: key order", p.id());
        }
    }

    #[test]
    fn the_conditions_scope_holds_the_values_the_conditions_read() {
        let programs = [
            program("first", 1, "record.score > 0"),
            program("second", 3, "has(run.id)"),
        ];
        let (event, contact) = event();
        let now = event.time;
        let mut shared = EventShared::new(&event, &contact, now, &programs);
        for p in &programs {
            let run_id = run_id_for(&event.tenant, &event.id, p.id(), event.time);
            let run = Run::new(run_id.clone(), p, &event, contact.clone(), now);
            let mut expected = crate::decider::scope_for(&run, now);
            let kept = ["record", "run"];
            expected
                .as_object_mut()
                .expect("object")
                .retain(|k, _| kept.contains(&k.as_str()));
            let scope = shared.conditions_scope(&run_id, p);
            assert_eq!(scope.root, expected, "{}", p.id());
            assert_eq!(scope.root.to_string(), expected.to_string(), "{}: key order", p.id());
        }
    }

    #[tokio::test]
    async fn intake_without_explanations_matches_and_enrolls_the_same() {
        let programs = [
            program("holds", 1, "record.score > 0"),
            program("fails", 1, "record.score > 100"),
            program("errs", 1, "record.missing > 1"),
        ];
        let (event, contact) = event();
        let mut outcomes = Vec::new();
        for explain_intake in [true, false] {
            let catalog = Arc::new(crate::memory::MemoryCatalog::new());
            for p in &programs {
                catalog.insert(Program::clone(p));
            }
            let clock = Arc::new(crate::memory::ManualClock::new(event.time));
            let intake = Intake {
                catalog,
                runs: Arc::new(crate::memory::MemoryRunStore::new()),
                steps: Arc::new(crate::memory::MemoryQueue::new(clock.clone())),
                evaluations: None,
                clock,
                config: crate::engine::EngineConfig {
                    explain_intake,
                    ..Default::default()
                },
                starter: None,
            };
            let report = intake.handle(&event, contact.clone()).await.expect("handled");
            let results: Vec<_> = report
                .outcomes
                .iter()
                .map(|o| (o.automation_id.clone(), o.result.clone(), o.run_id.clone()))
                .collect();
            outcomes.push((results, report.outcomes));
        }
        let (explained, quiet) = (&outcomes[0], &outcomes[1]);
        assert_eq!(explained.0, quiet.0, "the same outcomes");
        assert_eq!(explained.0.len(), 3);
        let reason = |o: &[IntakeOutcome], id: &str| {
            o.iter()
                .find(|o| o.automation_id == id)
                .expect("outcome")
                .reason
                .clone()
        };
        assert!(
            reason(&explained.1, "fails").contains("record.score > 100"),
            "{}",
            reason(&explained.1, "fails")
        );
        assert_eq!(reason(&quiet.1, "fails"), "trigger.conditions: not met");
        assert_eq!(
            reason(&quiet.1, "errs"),
            reason(&explained.1, "errs"),
            "errors are reported either way"
        );
    }
}
