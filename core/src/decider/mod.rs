//! The run decider: `(program, run, input) → (new run, history records, commands)`.
//!
//! Pure: no I/O; the current time comes from the [`Clock`] port. The shell loads the run, calls
//! [`decide`], saves the new head and records with one conditional write (version counter) and
//! only then dispatches the commands. An input that does not fit where the run is (a duplicate
//! start, a result for a step the run has left, a stale timer) yields no records and no commands,
//! which is what makes redelivery harmless.
//!
//! The machine is split by concern:
//! - `steps`: the walk from step to step (limits, yields) and the dispatch to the step kinds;
//! - one module per step kind (`action`, `wait`, `branch`, `split`, `wait_for_event`, `goal`,
//!   `human_task`, `end`, `goto`): entering the step, and how it ends when it waits;
//! - `events`: the one place where an event meets the exit rule, the goals and a waiting step;
//! - `timers`: the run's zone, step timers and timeouts, and where a fired timer goes;
//! - `records`: history records and the cursor (park, close);
//! - `lifecycle`: how a run ends (completed, failed or cancelled).

mod action;
mod branch;
mod end;
mod events;
mod goal;
mod goto;
mod human_task;
mod lifecycle;
mod records;
mod split;
mod steps;
mod timers;
mod wait;
mod wait_for_event;

pub use action::{EffectRefused, describe_effect};
pub use events::EventMatchError;
pub use split::split_draw;
pub use steps::StepError;

use crate::command::{Command, Input};
use crate::condition::Scope;
use crate::definition::Program;
use crate::definition::program::Node;
use crate::ports::Clock;
use crate::run::{Run, StepRecord};
use crate::template::{ScopePart, ScopeParts};
use jiff::Timestamp;
use lifecycle::Ending;
use serde_json::{Map, Value, json};
use std::cell::OnceCell;

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
    // An ended run ignores inputs, but a failed one can be retried.
    if !run.status.is_terminal() || matches!(input, Input::Retry { .. }) {
        m.handle(input);
    }
    // The cheap tests first: comparing the runs walks all their data.
    let changed = !m.records.is_empty() || !m.commands.is_empty() || m.run != *run;
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
///
/// Built by cloning the run's values (not by re-serializing them with `json!`): the same tree,
/// in the same key order, for a fraction of the cost.
pub fn scope_for(run: &Run, now: Timestamp) -> Value {
    scope_reading(run, now, |_| true)
}

/// [`scope_for`] without the top-level values (`trigger`, `record`, `run`, ...) that `reads`
/// says will not be looked up; the others keep their order. Conditions and templates that read
/// only the values kept see the same as in the whole scope (see [`crate::condition::Condition::reads`],
/// [`crate::template::Template::reads`] and [`crate::render::action_reads`]).
pub fn scope_reading(run: &Run, now: Timestamp, reads: impl Fn(&str) -> bool) -> Value {
    let data = &run.data;
    let mut root = Map::with_capacity(8);
    for (name, value) in [("trigger", &data.trigger), ("event", &data.event)] {
        if reads(name) {
            root.insert(name.into(), Value::clone(value));
        }
    }
    let maps = [
        ("record", &data.record),
        ("previous", &data.previous),
        ("contact", &data.contact),
        ("steps", &data.steps),
    ];
    for (name, map) in maps {
        if reads(name) {
            root.insert(name.into(), Value::Object(Map::clone(map)));
        }
    }
    if reads("run") {
        root.insert("run".into(), run_scope(run));
    }
    if reads("now") {
        root.insert("now".into(), Value::String(now.to_string()));
    }
    Value::Object(root)
}

/// The top-level values of a run's scope, in [`scope_for`]'s order.
const SCOPE_ROOTS: [&str; 8] = [
    "trigger", "event", "record", "previous", "contact", "steps", "run", "now",
];

/// A run's scope by parts, borrowed from the run: what [`scope_for`] builds, for templates
/// ([`ScopeParts`]), without copying the run's data (`run` and `now` are built when looked up).
pub struct RunScope<'a> {
    run: &'a Run,
    now: Timestamp,
    run_value: OnceCell<Value>,
    now_value: OnceCell<Value>,
}

impl<'a> RunScope<'a> {
    pub fn new(run: &'a Run, now: Timestamp) -> Self {
        RunScope {
            run,
            now,
            run_value: OnceCell::new(),
            now_value: OnceCell::new(),
        }
    }
}

impl ScopeParts for RunScope<'_> {
    fn part(&self, name: &str) -> Option<ScopePart<'_>> {
        let data = &self.run.data;
        Some(match name {
            "trigger" => ScopePart::Value(&data.trigger),
            "event" => ScopePart::Value(&data.event),
            "record" => ScopePart::Map(&data.record),
            "previous" => ScopePart::Map(&data.previous),
            "contact" => ScopePart::Map(&data.contact),
            "steps" => ScopePart::Map(&data.steps),
            "run" => ScopePart::Value(self.run_value.get_or_init(|| run_scope(self.run))),
            "now" => ScopePart::Value(self.now_value.get_or_init(|| Value::String(self.now.to_string()))),
            _ => return None,
        })
    }

    fn parts(&self) -> Vec<(&str, ScopePart<'_>)> {
        SCOPE_ROOTS
            .iter()
            .filter_map(|name| Some((*name, self.part(name)?)))
            .collect()
    }
}

/// `run.*` in the scope.
fn run_scope(run: &Run) -> Value {
    json!({
        "id": run.run_id,
        "automation_id": run.automation_id,
        "automation_version": run.automation_version,
        "tenant": run.tenant,
        "started_at": run.started_at.to_string(),
        "subject": run.subject,
    })
}

/// Where the run goes after a step.
enum Flow {
    /// On to this step (`None`: past the last step, so the run completes).
    Next(Option<String>),
    /// Parked, ended or failed: stop here.
    Stop,
}

/// One decision in progress: the run as it changes, and what the decision has produced so far.
struct Machine<'a> {
    program: &'a Program,
    run: Run,
    records: Vec<StepRecord>,
    commands: Vec<Command>,
    now: Timestamp,
    entered_this_decision: u32,
}

impl<'a> Machine<'a> {
    /// Routes an input to the part of the machine it concerns.
    fn handle(&mut self, input: &Input) {
        match input {
            Input::Start => self.start(),
            Input::Continue => self.resume_after_yield(),
            Input::ActionResult {
                step_id,
                seq,
                attempt,
                outcome,
            } => self.action_result(step_id, *seq, *attempt, outcome),
            Input::TimerFired { timer_id } => self.timer_fired(timer_id),
            Input::Event { event } => self.receive(event),
            Input::TaskCompleted { step_id, output } => self.task_completed(step_id, output),
            Input::Cancel { reason } => self.end(Ending::Cancelled, reason.clone()),
            Input::Retry { resend_uncertain } => self.retry(*resend_uncertain),
        }
    }

    fn node(&self, id: &str) -> Option<&'a Node> {
        self.program.node(id)
    }

    /// The run's scope by parts, for templates.
    fn scope_parts(&self) -> RunScope<'_> {
        RunScope::new(&self.run, self.now)
    }

    /// Calls `f` with the run and its scope: what [`scope_for`] gives, without the top-level
    /// values `reads` says `f` does not look up (see [`scope_reading`]).
    fn with_scope<R>(&self, reads: impl Fn(&str) -> bool, f: impl FnOnce(&Run, &Scope) -> R) -> R {
        let scope = Scope {
            root: scope_reading(&self.run, self.now, reads),
            now: self.now,
        };
        f(&self.run, &scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::parse_automation;

    /// The scope as it was built before: every part re-serialized with `json!`.
    fn scope_by_serializing(run: &Run, now: Timestamp) -> Value {
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

    #[test]
    fn scope_by_cloning_is_the_serialized_scope_in_the_same_key_order() {
        let yaml =
            "id: a\nname: a\nversion: 2\nstatus: active\ntrigger: {event: lead.created}\nsteps: [{id: e, end: {}}]\n";
        let program = Program::new(parse_automation(yaml).expect("parses")).expect("compiles");
        let (event, _) = crate::event::parse_event(&json!({
            "id": "e1", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
            "subject": {"type": "lead", "id": "L1", "contact_id": "C1"},
            "data": {"score": 7, "z": [1, {"b": 2, "a": 1.5}], "a": null}, "contact": {"email": "ada@example.com"}
        }))
        .expect("event");
        let contact: Map<String, Value> = [("first_name".to_string(), json!("Ada"))].into_iter().collect();
        let mut run = Run::new("r1".to_string(), &program, &event, contact, event.time);
        run.data.previous.insert("score".to_string(), json!(3));
        run.data
            .steps
            .insert("s".to_string(), json!({"status": "completed", "output": {"x": 1}}));
        let now = event.time;
        let (cloned, serialized) = (scope_for(&run, now), scope_by_serializing(&run, now));
        assert_eq!(cloned, serialized);
        assert_eq!(cloned.to_string(), serialized.to_string(), "key order");

        let m = Machine {
            program: &program,
            run: run.clone(),
            records: Vec::new(),
            commands: Vec::new(),
            now,
            entered_this_decision: 0,
        };
        let whole = m.with_scope(|_| true, |_, scope| scope.root.clone());
        assert_eq!(whole, serialized, "the scope with every root read");
        assert_eq!(whole.to_string(), serialized.to_string(), "key order");
        let partial = m.with_scope(
            |root| ["run", "record", "steps"].contains(&root),
            |_, scope| scope.root.clone(),
        );
        let mut expected = serialized.as_object().expect("an object").clone();
        for left_out in ["trigger", "event", "previous", "contact", "now"] {
            expected.shift_remove(left_out);
        }
        assert_eq!(
            partial,
            Value::Object(expected),
            "only the roots read, in the same order"
        );
        assert_eq!(m.run, run, "the run is left alone");

        let scope = RunScope::new(&run, now);
        for source in [
            "{{ record.score }} {{ contact.first_name }} {{ trigger.id }} {{ event.type }}",
            "{{ previous.score }} {{ steps.s.output.x }} {{ run.id }} {{ run.subject.id }} {{ now }}",
            "{{ record.z[1].a }} {% for k in record %}{{ k }},{% endfor %}",
            "{{ debug() | length > 0 }}",
            "{{ missing.x }}",
        ] {
            let template = crate::template::Template::parse(source).expect("parses");
            assert_eq!(
                template.render_text_in(&scope),
                template.render_text(&serialized),
                "{source}"
            );
            assert_eq!(
                template.render_html_in(&scope),
                template.render_html(&serialized),
                "{source}"
            );
        }
        let whole: Vec<&str> = scope.parts().into_iter().map(|(name, _)| name).collect();
        let keys: Vec<&str> = serialized
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(whole, keys, "the parts of the whole scope, in its order");
    }
}
