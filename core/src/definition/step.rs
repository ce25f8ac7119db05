//! Steps: the nodes of an automation. Each step has a stable `id` and exactly one kind key:
//! `action`, `wait`, `branch`, `split`, `wait_for_event`, `goal`, `human_task`, `end` or `goto`.
//!
//! ```yaml
//! - id: welcome
//!   action: { type: send_email, params: { subject: "Welcome", text: "Hi {{ contact.first_name }}" } }
//! - id: pause
//!   wait: { duration: 1h }
//! ```
//! Nested paths (`then`, `else`, `cases[].steps`, `on_event`, `on_timeout`, `paths[].steps`) are
//! step lists of their own; when a path ends, the run goes on after the step that holds it.

use super::action::Action;
use crate::condition::Condition;
use crate::time::DurationSpec;
use crate::wait::WaitSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A step with its id and kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StepWire", into = "StepWire")]
pub struct Step {
    pub id: String,
    pub name: Option<String>,
    pub kind: StepKind,
    /// For actions: a permanent failure is recorded and the run goes on.
    pub continue_on_error: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Action(Action),
    Wait(WaitSpec),
    Branch(BranchSpec),
    Split(SplitSpec),
    WaitForEvent(WaitForEventSpec),
    Goal(GoalSpec),
    HumanTask(HumanTaskSpec),
    End(EndSpec),
    /// Jump to another step by id.
    Goto(String),
}

impl StepKind {
    /// The step type as written in definitions and history (`action`, `wait`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            StepKind::Action(_) => "action",
            StepKind::Wait(_) => "wait",
            StepKind::Branch(_) => "branch",
            StepKind::Split(_) => "split",
            StepKind::WaitForEvent(_) => "wait_for_event",
            StepKind::Goal(_) => "goal",
            StepKind::HumanTask(_) => "human_task",
            StepKind::End(_) => "end",
            StepKind::Goto(_) => "goto",
        }
    }
}

/// The wire shape of a step: the id plus exactly one kind key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Step",
    description = "A step: `id` plus exactly one of action, wait, branch, split, wait_for_event, goal, human_task, end, goto."
)]
pub struct StepWire {
    /// Stable step id, unique within the automation.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_event: Option<WaitForEventSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<GoalSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human_task: Option<HumanTaskSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EndSpec>,
    /// Jump to the step with this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goto: Option<String>,
    /// Actions only: record a permanent failure and go on instead of failing the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_on_error: bool,
}

const KIND_KEYS: &str = "action, wait, branch, split, wait_for_event, goal, human_task, end, goto";

/// Why a step's keys do not make a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepShapeError {
    #[error("step \"{id}\" has no step type; expected exactly one of {KIND_KEYS}")]
    NoKind { id: String },
    #[error(
        "step \"{id}\" has {} step types ({}); expected exactly one of {KIND_KEYS}",
        kinds.len(),
        kinds.join(", ")
    )]
    SeveralKinds { id: String, kinds: Vec<&'static str> },
    #[error("step \"{id}\": continue_on_error applies to action steps only")]
    ContinueOnErrorNotAction { id: String },
}

impl TryFrom<StepWire> for Step {
    type Error = StepShapeError;

    fn try_from(wire: StepWire) -> Result<Self, Self::Error> {
        let StepWire {
            id,
            name,
            action,
            wait,
            branch,
            split,
            wait_for_event,
            goal,
            human_task,
            end,
            goto,
            continue_on_error,
        } = wire;
        let mut kinds: Vec<StepKind> = [
            action.map(StepKind::Action),
            wait.map(StepKind::Wait),
            branch.map(StepKind::Branch),
            split.map(StepKind::Split),
            wait_for_event.map(StepKind::WaitForEvent),
            goal.map(StepKind::Goal),
            human_task.map(StepKind::HumanTask),
            end.map(StepKind::End),
            goto.map(StepKind::Goto),
        ]
        .into_iter()
        .flatten()
        .collect();
        if kinds.len() != 1 {
            let kinds: Vec<&'static str> = kinds.iter().map(StepKind::type_name).collect();
            return Err(if kinds.is_empty() {
                StepShapeError::NoKind { id }
            } else {
                StepShapeError::SeveralKinds { id, kinds }
            });
        }
        let kind = kinds.remove(0);
        if continue_on_error && !matches!(kind, StepKind::Action(_)) {
            return Err(StepShapeError::ContinueOnErrorNotAction { id });
        }
        Ok(Step {
            id,
            name,
            kind,
            continue_on_error,
        })
    }
}

impl From<Step> for StepWire {
    fn from(step: Step) -> Self {
        let mut wire = StepWire {
            id: step.id,
            name: step.name,
            continue_on_error: step.continue_on_error,
            ..StepWire::default()
        };
        match step.kind {
            StepKind::Action(a) => wire.action = Some(a),
            StepKind::Wait(w) => wire.wait = Some(w),
            StepKind::Branch(b) => wire.branch = Some(b),
            StepKind::Split(s) => wire.split = Some(s),
            StepKind::WaitForEvent(w) => wire.wait_for_event = Some(w),
            StepKind::Goal(g) => wire.goal = Some(g),
            StepKind::HumanTask(h) => wire.human_task = Some(h),
            StepKind::End(e) => wire.end = Some(e),
            StepKind::Goto(g) => wire.goto = Some(g),
        }
        wire
    }
}

impl JsonSchema for Step {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        StepWire::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        StepWire::json_schema(generator)
    }
}

/// If/else or multi-way branch. Write either `if` + `then` (+ `else`), or `cases` (+ `else`).
/// The first case whose condition holds is taken; otherwise `else` (which may be empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchSpec {
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<Step>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<BranchCase>,
    #[serde(default, rename = "else", skip_serializing_if = "Vec::is_empty")]
    pub otherwise: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchCase {
    /// A label for history (defaults to `case N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub when: Condition,
    #[serde(default)]
    pub steps: Vec<Step>,
}

impl BranchSpec {
    /// The branch as an ordered list of (label, condition, steps), `if/then` first.
    pub fn cases(&self) -> Vec<(String, &Condition, &[Step])> {
        let mut out = Vec::new();
        if let Some(c) = &self.condition {
            out.push(("then".to_string(), c, self.then.as_slice()));
        }
        for (i, case) in self.cases.iter().enumerate() {
            let label = case.name.clone().unwrap_or_else(|| format!("case {}", i + 1));
            out.push((label, &case.when, case.steps.as_slice()));
        }
        out
    }
}

/// Random A/B split: each run takes one path with the given probability. The draw is a stable
/// hash of (run id, step id), so a redelivered message always takes the same path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    pub paths: Vec<SplitPath>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitPath {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Percentage, 0–100; the paths of a split must add up to 100.
    pub percent: u32,
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// Wait for an event of this record, with an optional condition and timeout. This is how
/// "IF no response" is written: the `on_timeout` path runs when nothing came in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitForEventSpec {
    /// Event type or prefix wildcard (`message.*`).
    pub event: String,
    /// Checked against the arriving event (`event.*`) and the run's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Give up after this long; without it the run waits until the event comes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_event: Vec<Step>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_timeout: Vec<Step>,
}

/// A run-wide goal (FluentCRM's benchmark). Whenever the goal's event arrives (and its
/// condition holds) while the run is at an earlier step, the run jumps to the goal. A run that
/// reaches a `required` goal waits there until it is met (or `timeout` passes, which ends the
/// run); an optional goal is passed straight through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoalSpec {
    /// Event type or prefix wildcard. Optional when `condition` alone defines the goal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Wait here until the goal is met (default false: pass through).
    #[serde(default)]
    pub required: bool,
    /// For a required goal: stop waiting after this long and end the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// What to do when the goal is met: `continue` with the steps after it (default) or `end`.
    #[serde(default)]
    pub on_reached: GoalReached,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GoalReached {
    #[default]
    Continue,
    End,
}

/// Pause the run until a person completes the task. The completion's `output` object is readable
/// by later conditions and templates as `steps.<id>.output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HumanTaskSpec {
    pub title: crate::template::Template,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<crate::template::Template>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Stop waiting after this long and take `on_timeout` (the task is recorded as timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_timeout: Vec<Step>,
}

/// End the run here (status `completed`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The nested step lists a step holds, in definition order.
pub fn nested_paths(step: &Step) -> Vec<&[Step]> {
    match &step.kind {
        StepKind::Branch(b) => {
            let mut v: Vec<&[Step]> = vec![b.then.as_slice()];
            v.extend(b.cases.iter().map(|c| c.steps.as_slice()));
            v.push(b.otherwise.as_slice());
            v
        }
        StepKind::Split(s) => s.paths.iter().map(|p| p.steps.as_slice()).collect(),
        StepKind::WaitForEvent(w) => vec![w.on_event.as_slice(), w.on_timeout.as_slice()],
        StepKind::HumanTask(h) => vec![h.on_timeout.as_slice()],
        StepKind::Action(_) | StepKind::Wait(_) | StepKind::Goal(_) | StepKind::End(_) | StepKind::Goto(_) => {
            Vec::new()
        }
    }
}

/// The name of each nested list of a step, matching [`nested_paths`] (for error paths).
pub fn nested_path_names(step: &Step) -> Vec<String> {
    match &step.kind {
        StepKind::Branch(b) => {
            let mut v = vec!["branch.then".to_string()];
            v.extend((0..b.cases.len()).map(|i| format!("branch.cases[{i}].steps")));
            v.push("branch.else".to_string());
            v
        }
        StepKind::Split(s) => (0..s.paths.len()).map(|i| format!("split.paths[{i}].steps")).collect(),
        StepKind::WaitForEvent(_) => {
            vec![
                "wait_for_event.on_event".to_string(),
                "wait_for_event.on_timeout".to_string(),
            ]
        }
        StepKind::HumanTask(_) => vec!["human_task.on_timeout".to_string()],
        StepKind::Action(_) | StepKind::Wait(_) | StepKind::Goal(_) | StepKind::End(_) | StepKind::Goto(_) => {
            Vec::new()
        }
    }
}
