//! The run decider: `(program, run, input) → (new run, history records, commands)`.
//!
//! Pure: no I/O; the current time comes from the [`Clock`] port. The shell loads the run, calls
//! [`decide`], saves the new head and records with one conditional write (version counter) and
//! only then dispatches the commands. An input that does not fit where the run is (a duplicate
//! start, a result for a step the run has left, a stale timer) yields no records and no commands,
//! which is what makes redelivery harmless.

use crate::command::{ActionOutcome, Command, Effect, Input, PerformAction};
use crate::condition::{Condition, Scope};
use crate::definition::program::Node;
use crate::definition::step::GoalReached;
use crate::definition::{Program, Step, StepKind};
use crate::event::Event;
use crate::ports::Clock;
use crate::render::{apply_to_snapshot, render_action};
use crate::run::{Cursor, Run, RunStatus, StepRecord, StepStatus, TimerRef, WaitingFor};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// Steps one decision may enter before it yields (keeps one save within DynamoDB's
/// 100-item transaction limit and one Lambda invocation short).
pub const MAX_STEPS_PER_DECISION: u32 = 40;
/// Events kept while an action is in flight; older ones are dropped with a history note.
pub const MAX_DEFERRED_EVENTS: usize = 20;
/// Event ids remembered per run for dedupe.
pub const MAX_RECENT_EVENT_IDS: usize = 50;

/// The outcome of one decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The new run head. Its `version` is the old one plus 1 when anything changed.
    pub run: Run,
    /// History records to upsert, keyed by `seq`.
    pub records: Vec<StepRecord>,
    pub commands: Vec<Command>,
}

impl Decision {
    /// True when the input changed nothing (a duplicate or stale input).
    pub fn is_noop(&self, before: &Run) -> bool {
        self.records.is_empty() && self.commands.is_empty() && self.run == *before
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecideError {
    #[error("run {run_id} is on {run_automation} v{run_version}, not {program} v{program_version}")]
    WrongProgram {
        run_id: String,
        run_automation: String,
        run_version: u32,
        program: String,
        program_version: u32,
    },
}

/// Decides what one input does to a run.
pub fn decide(program: &Program, run: &Run, input: &Input, clock: &dyn Clock) -> Result<Decision, DecideError> {
    if program.id() != run.automation_id || program.version() != run.automation_version {
        return Err(DecideError::WrongProgram {
            run_id: run.run_id.clone(),
            run_automation: run.automation_id.clone(),
            run_version: run.automation_version,
            program: program.id().to_string(),
            program_version: program.version(),
        });
    }
    let mut m = Machine {
        program,
        run: run.clone(),
        records: Vec::new(),
        commands: Vec::new(),
        now: clock.now(),
        entered_this_decision: 0,
    };
    if !run.status.is_terminal() {
        m.handle(input);
    }
    let changed = m.run != *run || !m.records.is_empty() || !m.commands.is_empty();
    if changed {
        m.run.version = run.version + 1;
        m.run.updated_at = m.now;
    }
    Ok(Decision {
        run: m.run,
        records: m.records,
        commands: m.commands,
    })
}

/// The scope conditions and templates see for a run (and, optionally, an arriving event).
pub fn scope_for(run: &Run, now: Timestamp) -> Value {
    json!({
        "trigger": run.data.trigger,
        "event": run.data.event,
        "record": run.data.record,
        "previous": run.data.previous,
        "contact": run.data.contact,
        "steps": run.data.steps,
        "run": {
            "id": run.run_id,
            "automation_id": run.automation_id,
            "automation_version": run.automation_version,
            "tenant": run.tenant,
            "started_at": run.started_at.to_string(),
            "subject": run.subject,
        },
        "now": now.to_string(),
    })
}

/// Where the run goes after a step.
enum Flow {
    /// On to this step (`None`: past the last step, so the run completes).
    Next(Option<String>),
    /// Parked, ended or failed: stop here.
    Stop,
}

struct Machine<'a> {
    program: &'a Program,
    run: Run,
    records: Vec<StepRecord>,
    commands: Vec<Command>,
    now: Timestamp,
    entered_this_decision: u32,
}

impl Machine<'_> {
    fn handle(&mut self, input: &Input) {
        match input {
            Input::Start => {
                if self.run.cursor.is_none() && self.run.history_len == 0 {
                    let first = self.program.first_step().map(str::to_string);
                    self.run_from(first);
                }
            }
            Input::Continue => {
                if let Some(c) = &self.run.cursor
                    && c.waiting_for == WaitingFor::Continue
                {
                    let next = c.step_id.clone();
                    self.run.cursor = None;
                    self.run_from(Some(next));
                    // Events deferred while an action was out stay queued when the decision
                    // after its result yielded; apply them now that the run has moved on.
                    self.drain_deferred();
                }
            }
            Input::ActionResult {
                step_id,
                seq,
                attempt,
                outcome,
            } => {
                let fits = self.run.cursor.as_ref().is_some_and(|c| {
                    c.step_id == *step_id && c.record.seq == *seq && matches!(c.waiting_for, WaitingFor::Action { .. })
                });
                if fits {
                    self.finish_action(*attempt, outcome);
                    self.drain_deferred();
                }
            }
            Input::TimerFired { timer_id } => {
                let fits = self
                    .run
                    .cursor
                    .as_ref()
                    .and_then(|c| c.timer.as_ref())
                    .is_some_and(|t| t.timer_id == *timer_id);
                if fits {
                    self.timer_fired();
                }
            }
            Input::Event { event } => {
                if self.run.recent_event_ids.contains(&event.id) {
                    return;
                }
                self.run.recent_event_ids.push(event.id.clone());
                if self.run.recent_event_ids.len() > MAX_RECENT_EVENT_IDS {
                    self.run.recent_event_ids.remove(0);
                }
                let in_flight = self
                    .run
                    .cursor
                    .as_ref()
                    .is_some_and(|c| matches!(c.waiting_for, WaitingFor::Action { .. }));
                if in_flight {
                    if !self.run.deferred_events.iter().any(|e| e.id == event.id) {
                        if self.run.deferred_events.len() >= MAX_DEFERRED_EVENTS {
                            self.run.deferred_events.remove(0);
                        }
                        self.run.deferred_events.push(event.clone());
                    }
                } else {
                    self.on_event(event);
                }
            }
            Input::TaskCompleted { step_id, output } => {
                let fits = self
                    .run
                    .cursor
                    .as_ref()
                    .is_some_and(|c| c.step_id == *step_id && c.waiting_for == WaitingFor::Task);
                if fits {
                    let next = self.node(step_id).and_then(|n| n.next.clone());
                    self.close(
                        StepStatus::Completed,
                        "task completed".to_string(),
                        None,
                        Some(output.clone()),
                    );
                    self.run_from(next);
                }
            }
            Input::Cancel { reason } => self.cancel(reason.clone()),
        }
    }

    fn node(&self, id: &str) -> Option<&Node> {
        self.program.node(id)
    }

    fn scope(&self) -> Scope {
        Scope {
            root: scope_for(&self.run, self.now),
            now: self.now,
        }
    }

    /// Enters steps from `next` until the run must wait or ends.
    fn run_from(&mut self, mut next: Option<String>) {
        loop {
            if self.run.status.is_terminal() {
                return;
            }
            let Some(id) = next.take() else {
                self.complete("reached the end of the automation".to_string());
                return;
            };
            if self.run.steps_entered >= self.program.automation.limits.max_steps {
                self.fail(format!(
                    "step limit exceeded: the run entered {} steps (limits.max_steps); stopped to prevent a runaway loop",
                    self.run.steps_entered
                ));
                return;
            }
            if self.entered_this_decision >= MAX_STEPS_PER_DECISION {
                self.yield_at(id);
                return;
            }
            let Some(node) = self.program.node(&id).cloned() else {
                self.fail(format!(
                    "step \"{id}\" does not exist in {} v{}",
                    self.program.id(),
                    self.program.version()
                ));
                return;
            };
            match self.enter(&node) {
                Flow::Next(n) => next = n,
                Flow::Stop => return,
            }
        }
    }

    fn yield_at(&mut self, step_id: String) {
        let record = self.new_record(
            &step_id,
            "continue",
            StepStatus::Running,
            "yielded; continues in the next message".to_string(),
        );
        // The yield marker is not a history entry: give the seq back.
        self.run.history_len -= 1;
        self.run.cursor = Some(Cursor {
            step_id,
            waiting_for: WaitingFor::Continue,
            timer: None,
            record,
        });
        self.run.status = RunStatus::Running;
        self.commands.push(Command::Continue);
    }

    fn new_record(&mut self, step_id: &str, step_type: &str, status: StepStatus, detail: String) -> StepRecord {
        let seq = self.run.history_len;
        self.run.history_len += 1;
        StepRecord {
            seq,
            step_id: step_id.to_string(),
            step_type: step_type.to_string(),
            status,
            started_at: self.now,
            finished_at: None,
            attempt: 0,
            detail,
            error: None,
            skip_reason: None,
            output: None,
        }
    }

    /// Records an instant step (entered and finished now).
    fn instant(&mut self, step: &Step, status: StepStatus, detail: String) {
        let mut rec = self.new_record(&step.id, step.kind.type_name(), status, detail);
        rec.finished_at = Some(self.now);
        self.records.push(rec);
    }

    /// Parks the run on a step.
    fn park(
        &mut self,
        step: &Step,
        step_type: &str,
        waiting_for: WaitingFor,
        timer: Option<TimerRef>,
        detail: String,
        status: RunStatus,
    ) {
        let rec_status = if status == RunStatus::Waiting {
            StepStatus::Waiting
        } else {
            StepStatus::Running
        };
        let mut record = self.new_record(&step.id, step_type, rec_status, detail);
        if let WaitingFor::Action { .. } = waiting_for {
            record.attempt = 1;
        }
        if let Some(t) = &timer {
            self.commands.push(Command::ScheduleTimer {
                timer_id: t.timer_id.clone(),
                due_at: t.due_at,
            });
        }
        self.records.push(record.clone());
        self.run.cursor = Some(Cursor {
            step_id: step.id.clone(),
            waiting_for,
            timer,
            record,
        });
        self.run.status = status;
    }

    fn timer_for(&self, due_at: Timestamp) -> TimerRef {
        TimerRef {
            timer_id: self.entry_id(self.run.history_len),
            due_at,
        }
    }

    /// `{run_id}.{seq}`: names what belongs to one step entry (its timer, its human task).
    fn entry_id(&self, seq: u32) -> String {
        format!("{}.{seq}", self.run.run_id)
    }

    /// Closes the open step: rewrites its record, cancels its timer, withdraws a human task
    /// that was not completed, clears the cursor.
    fn close(&mut self, status: StepStatus, detail: String, error: Option<String>, output: Option<Value>) {
        let Some(cursor) = self.run.cursor.take() else { return };
        if cursor.waiting_for == WaitingFor::Task && status != StepStatus::Completed {
            self.commands.push(Command::CloseTask {
                step_id: cursor.step_id.clone(),
                task_id: self.entry_id(cursor.record.seq),
                reason: detail.clone(),
            });
        }
        if let Some(t) = cursor.timer {
            // A timer that fired is gone already; cancelling it again is harmless.
            if !(status == StepStatus::Completed && cursor.waiting_for == WaitingFor::Timer)
                && status != StepStatus::TimedOut
            {
                self.commands.push(Command::CancelTimer {
                    timer_id: t.timer_id,
                    due_at: t.due_at,
                });
            }
        }
        if cursor.waiting_for == WaitingFor::Continue {
            return;
        }
        let mut rec = cursor.record;
        rec.status = status;
        rec.finished_at = Some(self.now);
        rec.detail = if rec.detail.is_empty() {
            detail
        } else {
            format!("{}; {detail}", rec.detail)
        };
        rec.error = error;
        if let Some(out) = &output {
            rec.output = Some(out.clone());
        }
        let mut step_data = Map::new();
        step_data.insert("status".into(), Value::String(status.as_str().to_string()));
        step_data.insert("output".into(), output.unwrap_or(Value::Null));
        self.run
            .data
            .steps
            .insert(rec.step_id.clone(), Value::Object(step_data));
        if status == StepStatus::Skipped {
            rec.skip_reason = Some(rec.detail.clone());
        }
        self.records.retain(|r| r.seq != rec.seq);
        self.records.push(rec);
        self.run.status = RunStatus::Running;
    }

    /// Enters one step; says where the run goes next.
    fn enter(&mut self, node: &Node) -> Flow {
        self.run.steps_entered += 1;
        self.entered_this_decision += 1;
        let step = &node.step;
        match &step.kind {
            StepKind::Action(action) => {
                let scope = scope_for(&self.run, self.now);
                let type_name = format!("action:{}", action.type_name());
                let rendered = render_action(action, &scope, &self.run.subject).and_then(|effect| {
                    self.check_effect(&effect)?;
                    Ok(effect)
                });
                match rendered {
                    Ok(effect) => {
                        let seq = self.run.history_len;
                        let idempotency_key = format!("{}.{seq}", self.run.run_id);
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
                            &type_name,
                            WaitingFor::Action { idempotency_key },
                            None,
                            detail,
                            RunStatus::Running,
                        );
                        Flow::Stop
                    }
                    Err(error) => {
                        let mut rec = self.new_record(
                            &step.id,
                            &type_name,
                            StepStatus::Failed,
                            "could not prepare the action".to_string(),
                        );
                        rec.finished_at = Some(self.now);
                        rec.error = Some(error.clone());
                        self.records.push(rec);
                        if step.continue_on_error {
                            Flow::Next(node.next.clone())
                        } else {
                            self.fail(format!("step \"{}\" failed: {error}", step.id));
                            Flow::Stop
                        }
                    }
                }
            }
            StepKind::Wait(spec) => {
                let zone = self.zone();
                match crate::wait::due_at(spec, self.now, &zone, &scope_for(&self.run, self.now)) {
                    Ok(due) if due <= self.now => {
                        let detail = format!("{} (already due)", crate::wait::describe(spec, due, &zone));
                        self.instant(step, StepStatus::Completed, detail);
                        Flow::Next(node.next.clone())
                    }
                    Ok(due) => {
                        let timer = self.timer_for(due);
                        let detail = crate::wait::describe(spec, due, &zone);
                        self.park(step, "wait", WaitingFor::Timer, Some(timer), detail, RunStatus::Waiting);
                        Flow::Stop
                    }
                    Err(e) => {
                        self.fail_step(step, "wait", e.to_string());
                        Flow::Stop
                    }
                }
            }
            StepKind::Branch(branch) => {
                let scope = self.scope();
                let mut explanations = Vec::new();
                for (label, condition, path) in branch.cases() {
                    match condition.explain(&scope) {
                        Ok((true, why)) => {
                            self.instant(step, StepStatus::Completed, format!("took {label}: {why}"));
                            return Flow::Next(self.program.path_entry(&step.id, path));
                        }
                        Ok((false, why)) => explanations.push(format!("{label}: {why}")),
                        Err(e) => {
                            self.fail_step(step, "branch", format!("{label}: {e}"));
                            return Flow::Stop;
                        }
                    }
                }
                let detail = format!("took else: {}", explanations.join("; "));
                self.instant(step, StepStatus::Completed, detail);
                Flow::Next(self.program.path_entry(&step.id, &branch.otherwise))
            }
            StepKind::Split(split) => {
                let draw = split_draw(&self.run.run_id, &step.id);
                let mut acc = 0;
                let mut chosen = split.paths.len().saturating_sub(1);
                for (i, path) in split.paths.iter().enumerate() {
                    acc += path.percent;
                    if draw < acc {
                        chosen = i;
                        break;
                    }
                }
                let Some(path) = split.paths.get(chosen) else {
                    self.fail_step(step, "split", "split has no paths".to_string());
                    return Flow::Stop;
                };
                let label = path.name.clone().unwrap_or_else(|| format!("path {}", chosen + 1));
                self.instant(
                    step,
                    StepStatus::Completed,
                    format!("took {label} ({}%), draw {draw} of 100", path.percent),
                );
                Flow::Next(self.program.path_entry(&step.id, &path.steps))
            }
            StepKind::WaitForEvent(w) => {
                let timer = match &w.timeout {
                    Some(t) => match self.add_in_zone(t) {
                        Ok(due) => Some(self.timer_for(due)),
                        Err(e) => {
                            self.fail_step(step, "wait_for_event", e);
                            return Flow::Stop;
                        }
                    },
                    None => None,
                };
                let detail = match &timer {
                    Some(t) => format!("waiting for {} until {}", w.event, t.due_at),
                    None => format!("waiting for {} (no timeout)", w.event),
                };
                self.park(
                    step,
                    "wait_for_event",
                    WaitingFor::Event,
                    timer,
                    detail,
                    RunStatus::Waiting,
                );
                Flow::Stop
            }
            StepKind::Goal(goal) => {
                // A condition-only goal may already hold when the run gets here.
                if goal.event.is_none()
                    && let Some(c) = &goal.condition
                {
                    match c.explain(&self.scope()) {
                        Ok((true, why)) => {
                            self.instant(step, StepStatus::Completed, format!("goal reached: {why}"));
                            return self.after_goal(node, goal.on_reached);
                        }
                        Ok((false, _)) => {}
                        Err(e) => {
                            self.fail_step(step, "goal", e.to_string());
                            return Flow::Stop;
                        }
                    }
                }
                if goal.required {
                    let timer = match &goal.timeout {
                        Some(t) => match self.add_in_zone(t) {
                            Ok(due) => Some(self.timer_for(due)),
                            Err(e) => {
                                self.fail_step(step, "goal", e);
                                return Flow::Stop;
                            }
                        },
                        None => None,
                    };
                    let detail = match &timer {
                        Some(t) => format!("waiting for the goal until {}", t.due_at),
                        None => "waiting for the goal".to_string(),
                    };
                    self.park(step, "goal", WaitingFor::Goal, timer, detail, RunStatus::Waiting);
                    Flow::Stop
                } else {
                    self.instant(
                        step,
                        StepStatus::Skipped,
                        "optional goal not met yet; continuing".to_string(),
                    );
                    Flow::Next(node.next.clone())
                }
            }
            StepKind::HumanTask(task) => {
                let scope = scope_for(&self.run, self.now);
                let title = task.title.render_text(&scope);
                let description = task.description.as_ref().map(|d| d.render_text(&scope)).transpose();
                let (title, description) = match (title, description) {
                    (Ok(t), Ok(d)) => (t, d),
                    (Err(e), _) | (_, Err(e)) => {
                        self.fail_step(step, "human_task", e.to_string());
                        return Flow::Stop;
                    }
                };
                let timer = match &task.timeout {
                    Some(t) => match self.add_in_zone(t) {
                        Ok(due) => Some(self.timer_for(due)),
                        Err(e) => {
                            self.fail_step(step, "human_task", e);
                            return Flow::Stop;
                        }
                    },
                    None => None,
                };
                // `park` gives the task's step entry the next seq.
                let task_id = self.entry_id(self.run.history_len);
                self.commands.push(Command::OpenTask {
                    step_id: step.id.clone(),
                    task_id,
                    title: title.clone(),
                    description,
                    assignee: task.assignee.clone(),
                });
                self.park(
                    step,
                    "human_task",
                    WaitingFor::Task,
                    timer,
                    format!("task \"{title}\" opened"),
                    RunStatus::Waiting,
                );
                Flow::Stop
            }
            StepKind::End(end) => {
                let reason = end.reason.clone().unwrap_or_else(|| "end step".to_string());
                self.instant(step, StepStatus::Completed, reason.clone());
                self.complete(format!("ended at step \"{}\": {reason}", step.id));
                Flow::Stop
            }
            StepKind::Goto(target) => {
                self.instant(step, StepStatus::Completed, format!("goto {target}"));
                Flow::Next(Some(target.clone()))
            }
        }
    }

    /// Refuses effects that would break limits (enroll chains).
    fn check_effect(&self, effect: &Effect) -> Result<(), String> {
        if let Effect::Enroll { .. } = effect {
            let limit = self.program.automation.limits.max_enroll_depth;
            if self.run.enroll_depth >= limit {
                return Err(format!(
                    "enroll chain too deep: this run is {} enrollments deep (limits.max_enroll_depth = {limit})",
                    self.run.enroll_depth
                ));
            }
        }
        Ok(())
    }

    fn fail_step(&mut self, step: &Step, step_type: &str, error: String) {
        let mut rec = self.new_record(&step.id, step_type, StepStatus::Failed, String::new());
        rec.finished_at = Some(self.now);
        rec.error = Some(error.clone());
        self.records.push(rec);
        self.fail(format!("step \"{}\" failed: {error}", step.id));
    }

    fn zone(&self) -> jiff::tz::TimeZone {
        crate::wait::zone_for(
            self.run.data.contact.get("timezone").and_then(Value::as_str),
            self.program.automation.timezone.as_ref(),
        )
    }

    fn add_in_zone(&self, d: &crate::time::DurationSpec) -> Result<Timestamp, String> {
        let zoned = self.now.to_zoned(self.zone());
        d.add_to(&zoned).map(|z| z.timestamp()).map_err(|e| e.to_string())
    }

    fn finish_action(&mut self, attempt: u32, outcome: &ActionOutcome) {
        let Some(cursor) = &self.run.cursor else { return };
        let step_id = cursor.step_id.clone();
        let Some(node) = self.node(&step_id).cloned() else {
            return;
        };
        if let Some(c) = self.run.cursor.as_mut() {
            c.record.attempt = attempt.max(1);
        }
        match outcome {
            ActionOutcome::Succeeded { output } => {
                if let StepKind::Action(action) = &node.step.kind {
                    let scope = scope_for(&self.run, self.now);
                    if let Ok(effect) = render_action(action, &scope, &self.run.subject) {
                        apply_to_snapshot(&effect, &mut self.run.data.contact, &mut self.run.data.record);
                    }
                }
                self.close(StepStatus::Completed, "done".to_string(), None, Some(output.clone()));
                self.run_from(node.next.clone());
            }
            ActionOutcome::Uncertain { detail } => {
                self.close(StepStatus::Uncertain, format!("not repeated: {detail}"), None, None);
                self.run_from(node.next.clone());
            }
            ActionOutcome::Skipped { reason } => {
                self.close(StepStatus::Skipped, format!("skipped: {reason}"), None, None);
                self.run_from(node.next.clone());
            }
            ActionOutcome::Failed { error } => {
                self.close(StepStatus::Failed, "failed".to_string(), Some(error.clone()), None);
                if node.step.continue_on_error {
                    self.run_from(node.next.clone());
                } else {
                    self.fail(format!("step \"{step_id}\" failed: {error}"));
                }
            }
        }
    }

    fn drain_deferred(&mut self) {
        while !self.run.status.is_terminal()
            && !self.run.deferred_events.is_empty()
            && !self
                .run
                .cursor
                .as_ref()
                .is_some_and(|c| matches!(c.waiting_for, WaitingFor::Action { .. } | WaitingFor::Continue))
        {
            let event = self.run.deferred_events.remove(0);
            self.on_event(&event);
        }
    }

    fn timer_fired(&mut self) {
        let Some(cursor) = self.run.cursor.clone() else { return };
        let Some(node) = self.node(&cursor.step_id).cloned() else {
            return;
        };
        match (&cursor.waiting_for, &node.step.kind) {
            (WaitingFor::Timer, _) => {
                self.close(StepStatus::Completed, "waited".to_string(), None, None);
                self.run_from(node.next.clone());
            }
            (WaitingFor::Event, StepKind::WaitForEvent(w)) => {
                let timeout = w.timeout.as_ref().map(|t| t.as_str().to_string()).unwrap_or_default();
                self.close(
                    StepStatus::TimedOut,
                    format!("no {} within {timeout}", w.event),
                    None,
                    None,
                );
                let entry = self.program.path_entry(&node.step.id, &w.on_timeout);
                self.run_from(entry);
            }
            (WaitingFor::Goal, _) => {
                self.close(StepStatus::TimedOut, "goal not reached in time".to_string(), None, None);
                self.complete(format!("goal \"{}\" not reached before its timeout", node.step.id));
            }
            (WaitingFor::Task, StepKind::HumanTask(h)) => {
                self.close(
                    StepStatus::TimedOut,
                    "task not completed in time".to_string(),
                    None,
                    None,
                );
                let entry = self.program.path_entry(&node.step.id, &h.on_timeout);
                self.run_from(entry);
            }
            _ => {}
        }
    }

    /// Applies an event: refresh the snapshots, then exit rules, goals, and a waiting step.
    fn on_event(&mut self, event: &Event) {
        if !self.concerns(event) {
            return;
        }
        self.absorb(event);
        let scope = self.scope();

        if let Some(exit) = &self.program.automation.exit {
            if let Some(pattern) = exit.events.iter().find(|p| event.type_matches(p)) {
                self.cancel(format!(
                    "exit: event {} ({}) matched {pattern}",
                    event.event_type, event.id
                ));
                return;
            }
            if let Some(c) = &exit.condition {
                match c.explain(&scope) {
                    Ok((true, why)) => {
                        self.cancel(format!("exit condition met after event {}: {why}", event.id));
                        return;
                    }
                    Ok((false, _)) => {}
                    Err(e) => {
                        self.fail(format!("exit condition could not be evaluated: {e}"));
                        return;
                    }
                }
            }
        }

        let Some(cursor) = self.run.cursor.clone() else { return };
        let current_order = self.node(&cursor.step_id).map(|n| n.order).unwrap_or(0);

        // Goals at or after the run's position.
        let goals: Vec<Node> = self
            .program
            .goals()
            .filter(|g| g.order > current_order || (g.order == current_order && cursor.waiting_for == WaitingFor::Goal))
            .cloned()
            .collect();
        for goal_node in goals {
            let StepKind::Goal(goal) = &goal_node.step.kind else {
                continue;
            };
            let event_ok = goal.event.as_ref().is_none_or(|p| event.type_matches(p));
            if !event_ok {
                continue;
            }
            let (holds, why) = match goal.condition.as_ref().map(|c| c.explain(&scope)) {
                None => (true, format!("event {} ({})", event.event_type, event.id)),
                Some(Ok((b, why))) => (b, why),
                Some(Err(e)) => {
                    self.fail(format!(
                        "goal \"{}\" condition could not be evaluated: {e}",
                        goal_node.step.id
                    ));
                    return;
                }
            };
            if !holds {
                continue;
            }
            if goal_node.step.id == cursor.step_id {
                self.close(StepStatus::Completed, format!("goal reached: {why}"), None, None);
            } else {
                self.close(
                    StepStatus::Cancelled,
                    format!("left: goal \"{}\" reached", goal_node.step.id),
                    None,
                    None,
                );
                self.instant(
                    &goal_node.step,
                    StepStatus::Completed,
                    format!("goal reached early: {why}"),
                );
            }
            if let Flow::Next(next) = self.after_goal(&goal_node, goal.on_reached) {
                self.run_from(next);
            }
            return;
        }

        if cursor.waiting_for == WaitingFor::Event
            && let Some(node) = self.node(&cursor.step_id).cloned()
            && let StepKind::WaitForEvent(w) = &node.step.kind
            && event.type_matches(&w.event)
        {
            let matched = match w.condition.as_ref().map(|c: &Condition| c.explain(&scope)) {
                None => Ok((true, String::new())),
                Some(r) => r,
            };
            match matched {
                Ok((true, why)) => {
                    let why = if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({why})")
                    };
                    self.close(
                        StepStatus::Completed,
                        format!("received {} {}{why}", event.event_type, event.id),
                        None,
                        Some(event.to_scope_value()),
                    );
                    let entry = self.program.path_entry(&node.step.id, &w.on_event);
                    self.run_from(entry);
                }
                Ok((false, _)) => {}
                Err(e) => self.fail(format!(
                    "step \"{}\" condition could not be evaluated: {e}",
                    node.step.id
                )),
            }
        }
    }

    fn after_goal(&mut self, node: &Node, on_reached: GoalReached) -> Flow {
        match on_reached {
            GoalReached::Continue => Flow::Next(node.next.clone()),
            GoalReached::End => {
                self.complete(format!("goal \"{}\" reached; run ends", node.step.id));
                Flow::Stop
            }
        }
    }

    /// Does an event routed to this run concern it? Runs are routed events by record and by
    /// contact. An event concerns the run when it is about the run's record, about the run's
    /// contact, or about a record of another type belonging to the same contact (a reply message,
    /// an email click). An event about a *sibling* record of the same type (another lead of the
    /// same contact) does not: it neither meets this run's waits and goals nor exits it.
    fn concerns(&self, event: &Event) -> bool {
        let run = &self.run.subject;
        if event.subject.record_key() == run.record_key() {
            return true;
        }
        let contact = self.run.contact_id();
        if event.subject.record_type == "contact" {
            return Some(&event.subject.id) == contact.as_ref();
        }
        event.subject.record_type != run.record_type
            && contact.is_some()
            && event.subject.contact_id.as_ref() == contact.as_ref()
    }

    /// Merges an event into the snapshots conditions see.
    fn absorb(&mut self, event: &Event) {
        self.run.data.event = event.to_scope_value();
        if event.subject.record_key() == self.run.subject.record_key() {
            for (k, v) in &event.data {
                self.run.data.record.insert(k.clone(), v.clone());
            }
            self.run.data.previous = event.previous.clone().unwrap_or_default();
        }
        let contact_id = self.run.contact_id();
        let is_contact_record =
            event.subject.record_type == "contact" && Some(&event.subject.id) == contact_id.as_ref();
        if is_contact_record {
            for (k, v) in &event.data {
                self.run.data.contact.insert(k.clone(), v.clone());
            }
        }
        if let Some(c) = &event.contact
            && (event.subject.contact_id.is_none() || event.subject.contact_id == contact_id)
        {
            for (k, v) in c {
                self.run.data.contact.insert(k.clone(), v.clone());
            }
        }
    }

    fn complete(&mut self, reason: String) {
        if self.run.status.is_terminal() {
            return;
        }
        self.run.status = RunStatus::Completed;
        self.run.finished_at = Some(self.now);
        self.run.outcome = Some(reason.clone());
        self.run.deferred_events.clear();
        self.commands.push(Command::Complete { reason });
    }

    fn fail(&mut self, reason: String) {
        if self.run.status.is_terminal() {
            return;
        }
        if self.run.cursor.is_some() {
            self.close(StepStatus::Cancelled, "run failed".to_string(), None, None);
        }
        self.run.status = RunStatus::Failed;
        self.run.finished_at = Some(self.now);
        self.run.outcome = Some(reason.clone());
        self.run.deferred_events.clear();
        self.commands.push(Command::Fail { reason });
    }

    fn cancel(&mut self, reason: String) {
        if self.run.status.is_terminal() {
            return;
        }
        if self.run.cursor.is_some() {
            self.close(StepStatus::Cancelled, format!("cancelled: {reason}"), None, None);
        }
        self.run.status = RunStatus::Cancelled;
        self.run.finished_at = Some(self.now);
        self.run.outcome = Some(reason.clone());
        self.run.deferred_events.clear();
        self.commands.push(Command::Cancelled { reason });
    }
}

/// A short description of an effect for history.
pub fn describe_effect(effect: &Effect) -> String {
    match effect {
        Effect::Email(e) => format!("email to {}: \"{}\"", e.to, e.subject),
        Effect::Crm(c) => format!("CRM command {} {}", c.command, c.params),
        Effect::Notify { channel, message, .. } => format!("notify {channel}: \"{message}\""),
        Effect::Webhook(r) => format!("webhook {} {}", r.method, r.url),
        Effect::Enroll { automation_id } => format!("enroll in {automation_id}"),
        Effect::CancelAutomations { automation_ids } if automation_ids.is_empty() => {
            "cancel all other automations for this record".to_string()
        }
        Effect::CancelAutomations { automation_ids } => format!("cancel {}", automation_ids.join(", ")),
    }
}

/// A stable draw in 0..100 for a split: FNV-1a of "run_id/step_id". Stable across processes and
/// releases (std's hasher is not), so a redelivered message takes the same path.
pub fn split_draw(run_id: &str, step_id: &str) -> u32 {
    (crate::ids::fnv1a64(format!("{run_id}/{step_id}").as_bytes()) % 100) as u32
}
