//! Shared helpers for the behaviour matrix tests (`decider_*.rs`, `simulate_matrix.rs`).
//!
//! - definitions: [`program`] parses a YAML definition and compiles it, panicking with the errors;
//! - events: [`event`] / [`event_on`] build normalised events;
//! - the decider: [`Harness`] holds a program, a run and a [`ManualClock`], feeds inputs and keeps
//!   the run's whole history (records upserted by seq, as the store does);
//! - the simulator: [`simulate`] runs definitions against events on the embedded engine.

use crmflow_core::command::{ActionOutcome, Command, Effect, Input, PerformAction};
use crmflow_core::decider::{Decision, decide};
use crmflow_core::definition::{Program, parse_automation};
use crmflow_core::event::{Event, Subject};
use crmflow_core::memory::ManualClock;
use crmflow_core::run::{Run, RunStatus, StepRecord, StepStatus, WaitingFor};
use crmflow_core::simulate::{RunReport, SimulationOptions, Simulator};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

// ---------------------------------------------------------------------------
// definitions, times, events
// ---------------------------------------------------------------------------

/// The head of a test definition: `id` (also its name), status active, triggered by `trigger`.
pub fn head(id: &str, trigger: &str) -> String {
    format!("id: {id}\nname: {id}\nstatus: active\ntrigger: {{event: {trigger}}}\n")
}

/// A test definition: the [`head`], extra top-level YAML (may be empty), and the steps (a YAML
/// block sequence at column 0).
pub fn definition(id: &str, trigger: &str, extra: &str, steps: &str) -> String {
    format!(
        "{}{}\nsteps:\n{}",
        head(id, trigger),
        extra.trim(),
        steps.trim_start_matches('\n')
    )
}

/// A definition `t` triggered by `lead.created` with these steps.
pub fn def(steps: &str) -> String {
    def_with("", steps)
}

/// A definition `t` triggered by `lead.created` with extra top-level keys before the steps.
pub fn def_with(extra: &str, steps: &str) -> String {
    definition("t", "lead.created", extra, steps)
}

/// Parses and compiles a YAML (or JSON) definition; panics with every error.
pub fn program(yaml: &str) -> Program {
    let automation = parse_automation(yaml).unwrap_or_else(|errors| {
        panic!(
            "definition does not parse:\n{}\n---\n{yaml}",
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        )
    });
    Program::new(automation).unwrap_or_else(|errors| {
        panic!(
            "definition does not compile:\n{}",
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        )
    })
}

/// An RFC 3339 instant.
pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("bad timestamp {s:?}: {e}"))
}

/// A JSON object as a map (panics on anything else).
pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("expected a JSON object, got {other}"),
    }
}

/// An event about `lead/L1` (contact `C1`).
pub fn event(id: &str, event_type: &str, time: &str, data: Value) -> Event {
    event_on(id, event_type, time, "lead", "L1", Some("C1"), data)
}

/// An event about any record.
pub fn event_on(
    id: &str,
    event_type: &str,
    time: &str,
    record_type: &str,
    record_id: &str,
    contact_id: Option<&str>,
    data: Value,
) -> Event {
    Event {
        id: id.to_string(),
        event_type: event_type.to_string(),
        tenant: "default".to_string(),
        time: ts(time),
        subject: Subject {
            record_type: record_type.to_string(),
            id: record_id.to_string(),
            contact_id: contact_id.map(str::to_string),
        },
        data: obj(data),
        previous: None,
        contact: None,
    }
}

/// The same event with `previous` values.
pub fn with_previous(mut e: Event, previous: Value) -> Event {
    e.previous = Some(obj(previous));
    e
}

/// The same event with a contact snapshot.
pub fn with_contact(mut e: Event, contact: Value) -> Event {
    e.contact = Some(obj(contact));
    e
}

// ---------------------------------------------------------------------------
// the decider harness
// ---------------------------------------------------------------------------

/// One run driven through the pure decider.
pub struct Harness {
    pub program: Program,
    pub run: Run,
    pub clock: ManualClock,
    /// Every record the run wrote, by seq (upserted as the store does).
    pub history: BTreeMap<u32, StepRecord>,
    /// Every command of every decision, in order.
    pub all_commands: Vec<Command>,
}

impl Harness {
    /// A fresh run `run-1` of `yaml` for `trigger`, clock at the trigger's time.
    pub fn new(yaml: &str, trigger: &Event, contact: Value) -> Harness {
        Harness::with_run_id("run-1", program(yaml), trigger, contact)
    }

    pub fn with_run_id(run_id: &str, program: Program, trigger: &Event, contact: Value) -> Harness {
        let run = Run::new(run_id.to_string(), &program, trigger, obj(contact), trigger.time);
        Harness {
            program,
            run,
            clock: ManualClock::new(trigger.time),
            history: BTreeMap::new(),
            all_commands: Vec::new(),
        }
    }

    /// Moves the clock.
    pub fn at(&mut self, time: &str) -> &mut Harness {
        self.clock.set(ts(time));
        self
    }

    /// Decides one input and adopts the new run; checks the version rule on the way.
    pub fn feed(&mut self, input: Input) -> Decision {
        let before = self.run.clone();
        let d = decide(&self.program, &self.run, &input, &self.clock).expect("decide");
        if d.is_noop(&before) {
            assert_eq!(d.run.version, before.version, "a no-op keeps the version");
        } else {
            assert_eq!(d.run.version, before.version + 1, "a change bumps the version by one");
        }
        for r in &d.records {
            self.history.insert(r.seq, r.clone());
        }
        self.all_commands.extend(d.commands.iter().cloned());
        self.run = d.run.clone();
        d
    }

    /// Decides an input without adopting the result (for redelivery checks).
    pub fn peek(&self, input: &Input) -> Decision {
        decide(&self.program, &self.run, input, &self.clock).expect("decide")
    }

    pub fn start(&mut self) -> Decision {
        self.feed(Input::Start)
    }

    /// The input that reports `outcome` for the action the run waits on.
    pub fn result_input(&self, outcome: ActionOutcome) -> Input {
        let c = self.run.cursor.as_ref().expect("the run has a cursor");
        assert!(
            matches!(c.waiting_for, WaitingFor::Action { .. }),
            "the run waits for {:?}, not an action",
            c.waiting_for
        );
        Input::ActionResult {
            step_id: c.step_id.clone(),
            seq: c.record.seq,
            attempt: 1,
            outcome,
        }
    }

    pub fn succeed(&mut self) -> Decision {
        let input = self.result_input(ActionOutcome::Succeeded {
            output: json!({"ok": true}),
        });
        self.feed(input)
    }

    pub fn outcome(&mut self, outcome: ActionOutcome) -> Decision {
        let input = self.result_input(outcome);
        self.feed(input)
    }

    /// Succeeds every action until the run waits on something else or ends.
    pub fn succeed_all(&mut self) {
        for _ in 0..100 {
            let waiting_action = self
                .run
                .cursor
                .as_ref()
                .is_some_and(|c| matches!(c.waiting_for, WaitingFor::Action { .. }));
            if !waiting_action {
                return;
            }
            self.succeed();
        }
        panic!("more than 100 actions in a row");
    }

    /// The timer the run waits on (id, due).
    pub fn timer(&self) -> (String, Timestamp) {
        let t = self
            .run
            .cursor
            .as_ref()
            .and_then(|c| c.timer.as_ref())
            .unwrap_or_else(|| panic!("the run has no timer; cursor {:?}", self.run.cursor));
        (t.timer_id.clone(), t.due_at)
    }

    /// Moves the clock to the current timer's due time and fires it.
    pub fn fire(&mut self) -> Decision {
        let (id, due) = self.timer();
        self.clock.set(due);
        self.feed(Input::TimerFired { timer_id: id })
    }

    pub fn event(&mut self, e: Event) -> Decision {
        self.clock.set(e.time);
        self.feed(Input::Event { event: e })
    }

    pub fn cursor_step(&self) -> Option<&str> {
        self.run.cursor.as_ref().map(|c| c.step_id.as_str())
    }

    pub fn waiting_for(&self) -> Option<WaitingFor> {
        self.run.cursor.as_ref().map(|c| c.waiting_for.clone())
    }

    /// (step id, status) of the whole history, in seq order.
    pub fn path(&self) -> Vec<(String, StepStatus)> {
        self.history.values().map(|r| (r.step_id.clone(), r.status)).collect()
    }

    pub fn record(&self, step_id: &str) -> &StepRecord {
        self.history
            .values()
            .rev()
            .find(|r| r.step_id == step_id)
            .unwrap_or_else(|| panic!("no record for step {step_id}; history {:?}", self.path()))
    }

    /// Asserts the whole history path.
    pub fn assert_path(&self, case: &str, expected: &[(&str, StepStatus)]) {
        let want: Vec<(String, StepStatus)> = expected.iter().map(|(s, st)| (s.to_string(), *st)).collect();
        assert_eq!(self.path(), want, "{case}: history path");
    }
}

/// (step id, type, status) of a decision's records.
pub fn records_of(d: &Decision) -> Vec<(String, String, StepStatus)> {
    d.records
        .iter()
        .map(|r| (r.step_id.clone(), r.step_type.clone(), r.status))
        .collect()
}

/// The only Perform command of a decision.
pub fn perform(d: &Decision) -> &PerformAction {
    let performs: Vec<&PerformAction> = d
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Perform(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(performs.len(), 1, "expected one Perform command, got {:?}", d.commands);
    performs[0]
}

/// The effect of the only Perform command.
pub fn effect(d: &Decision) -> &Effect {
    &perform(d).effect
}

pub fn run_status(d: &Decision) -> RunStatus {
    d.run.status
}

// ---------------------------------------------------------------------------
// the simulator
// ---------------------------------------------------------------------------

/// The contacts `[{id, ...}]` as the simulator wants them.
pub fn contacts(list: Value) -> HashMap<String, Map<String, Value>> {
    let Value::Array(items) = list else {
        panic!("contacts must be a list")
    };
    items
        .into_iter()
        .map(|c| {
            let m = obj(c);
            let id = m.get("id").and_then(Value::as_str).expect("contact id").to_string();
            (id, m)
        })
        .collect()
}

/// A simulator over these definitions and contacts that logs every effect (`sim.email.sent`,
/// `sim.crm.sent`, `sim.http.sent`).
pub fn simulator(defs: &[&str], contact_list: Value) -> Simulator {
    let programs = defs.iter().map(|d| program(d)).collect();
    let options = SimulationOptions {
        log_effects: true,
        ..SimulationOptions::default()
    };
    Simulator::new(programs, contacts(contact_list), options)
}

/// Runs the events and returns the simulator and every run's report, in the order the
/// simulator streams them (runs as they end, then those still waiting, in start order); fails
/// on engine errors.
pub async fn simulate(defs: &[&str], contact_list: Value, events: Vec<Event>) -> (Simulator, Vec<RunReport>) {
    let mut sim = simulator(defs, contact_list);
    let reports = sim.run(events).await;
    assert!(sim.errors.is_empty(), "simulation errors: {:?}", sim.errors);
    (sim, reports)
}

/// (step id, status) of a report, in history order.
pub fn report_path(r: &RunReport) -> Vec<(String, String)> {
    r.steps
        .iter()
        .map(|s| (s.step_id.clone(), s.status.as_str().to_string()))
        .collect()
}

/// Asserts a report's status and step path.
pub fn assert_report(case: &str, r: &RunReport, status: RunStatus, expected: &[(&str, &str)]) {
    let want: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(
        report_path(r),
        want,
        "{case}: steps of run {} ({}); outcome {:?}",
        r.run_id,
        r.automation_id,
        r.outcome
    );
    assert_eq!(
        r.status, status,
        "{case}: status of run {} ({}); outcome {:?}",
        r.run_id, r.automation_id, r.outcome
    );
}

/// The reports of one automation.
pub fn reports_of<'a>(reports: &'a [RunReport], automation_id: &str) -> Vec<&'a RunReport> {
    reports.iter().filter(|r| r.automation_id == automation_id).collect()
}

/// The only report of one automation.
pub fn only_report<'a>(case: &str, reports: &'a [RunReport], automation_id: &str) -> &'a RunReport {
    let found = reports_of(reports, automation_id);
    assert_eq!(
        found.len(),
        1,
        "{case}: expected one run of {automation_id}, got {:?}",
        reports
            .iter()
            .map(|r| (&r.automation_id, &r.subject.id, r.status))
            .collect::<Vec<_>>()
    );
    found[0]
}

/// The step report of `step_id` (the last entry of it).
pub fn step<'a>(r: &'a RunReport, step_id: &str) -> &'a crmflow_core::simulate::StepReport {
    r.steps
        .iter()
        .rev()
        .find(|s| s.step_id == step_id)
        .unwrap_or_else(|| panic!("run {} has no step {step_id}: {:?}", r.run_id, report_path(r)))
}

// ---------------------------------------------------------------------------
// the operator table (decider_operators.rs and simulate_matrix.rs)
// ---------------------------------------------------------------------------

/// When the operator cases are evaluated (the decider's clock, the event's time).
pub const OP_NOW: &str = "2026-03-10T12:00:00Z";

/// One operator case: the rule, and a (data, previous) pair where it holds and one where not.
pub struct OpCase {
    pub op: &'static str,
    pub field: &'static str,
    pub value: Option<Value>,
    pub true_data: Value,
    pub true_previous: Option<Value>,
    pub false_data: Value,
    pub false_previous: Option<Value>,
}

pub fn op_case(op: &'static str, field: &'static str, value: Option<Value>, t: Value, f: Value) -> OpCase {
    OpCase {
        op,
        field,
        value,
        true_data: t,
        true_previous: None,
        false_data: f,
        false_previous: None,
    }
}

pub fn changed_case(
    op: &'static str,
    value: Option<Value>,
    (t, tp): (Value, Value),
    (f, fp): (Value, Value),
) -> OpCase {
    OpCase {
        op,
        field: "record.stage",
        value,
        true_data: t,
        true_previous: Some(tp),
        false_data: f,
        false_previous: Some(fp),
    }
}

pub fn op_cases() -> Vec<OpCase> {
    vec![
        op_case(
            "equals",
            "record.stage",
            Some(json!("won")),
            json!({"stage": "won"}),
            json!({"stage": "lost"}),
        ),
        op_case(
            "not_equals",
            "record.stage",
            Some(json!("won")),
            json!({"stage": "lost"}),
            json!({"stage": "won"}),
        ),
        op_case(
            "greater_than",
            "record.amount",
            Some(json!(100)),
            json!({"amount": 150}),
            json!({"amount": 100}),
        ),
        op_case(
            "greater_than_or_equal",
            "record.amount",
            Some(json!(100)),
            json!({"amount": 100}),
            json!({"amount": 99.5}),
        ),
        op_case(
            "less_than",
            "record.amount",
            Some(json!(100)),
            json!({"amount": 99}),
            json!({"amount": 100}),
        ),
        op_case(
            "less_than_or_equal",
            "record.amount",
            Some(json!(100)),
            json!({"amount": "100"}),
            json!({"amount": 101}),
        ),
        op_case(
            "contains",
            "record.tags",
            Some(json!("vip")),
            json!({"tags": ["x", "vip"]}),
            json!({"tags": ["x"]}),
        ),
        op_case(
            "not_contains",
            "record.tags",
            Some(json!("vip")),
            json!({"tags": ["x"]}),
            json!({"tags": ["vip"]}),
        ),
        op_case(
            "starts_with",
            "record.company",
            Some(json!("Ac")),
            json!({"company": "Acme"}),
            json!({"company": "Globex"}),
        ),
        op_case(
            "ends_with",
            "record.email",
            Some(json!("@example.com")),
            json!({"email": "ada@example.com"}),
            json!({"email": "ada@example.org"}),
        ),
        op_case(
            "in",
            "record.country",
            Some(json!(["DE", "FR"])),
            json!({"country": "FR"}),
            json!({"country": "US"}),
        ),
        op_case(
            "not_in",
            "record.country",
            Some(json!(["DE", "FR"])),
            json!({"country": "US"}),
            json!({"country": "DE"}),
        ),
        op_case(
            "is_known",
            "record.phone",
            None,
            json!({"phone": "+15550001"}),
            json!({"phone": ""}),
        ),
        op_case(
            "is_unknown",
            "record.phone",
            None,
            json!({}),
            json!({"phone": "+15550001"}),
        ),
        op_case(
            "between",
            "record.amount",
            Some(json!([10, 20])),
            json!({"amount": 20}),
            json!({"amount": 21}),
        ),
        changed_case(
            "changed",
            None,
            (json!({"stage": "won"}), json!({"stage": "proposal"})),
            (json!({"stage": "won"}), json!({"stage": "won"})),
        ),
        changed_case(
            "changed_from",
            Some(json!("proposal")),
            (json!({"stage": "won"}), json!({"stage": "proposal"})),
            (json!({"stage": "won"}), json!({"stage": "negotiation"})),
        ),
        changed_case(
            "changed_to",
            Some(json!("won")),
            (json!({"stage": "won"}), json!({"stage": "proposal"})),
            (json!({"stage": "lost"}), json!({"stage": "won"})),
        ),
        op_case(
            "within_last_days",
            "record.last_seen",
            Some(json!(7)),
            json!({"last_seen": "2026-03-05T08:00:00Z"}),
            json!({"last_seen": "2026-02-20T08:00:00Z"}),
        ),
        op_case(
            "more_than_days_ago",
            "record.last_seen",
            Some(json!(30)),
            json!({"last_seen": "2026-01-15"}),
            json!({"last_seen": "2026-03-01"}),
        ),
        op_case(
            "matches",
            "record.code",
            Some(json!("^[A-Z]{2}-\\d+$")),
            json!({"code": "AB-123"}),
            json!({"code": "ab-123"}),
        ),
    ]
}

/// The rule of a case as a YAML flow mapping.
pub fn rule_yaml(c: &OpCase) -> String {
    let mut rule = json!({"field": c.field, "op": c.op});
    if let Some(v) = &c.value {
        rule["value"] = v.clone();
    }
    // JSON is a YAML flow mapping.
    rule.to_string()
}
