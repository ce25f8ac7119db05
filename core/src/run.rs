//! The run model: one record going through one automation version, with its step history.
//!
//! A run head ([`Run`]) is small and versioned (optimistic concurrency); its history is a list of
//! [`StepRecord`]s stored one item per step, keyed by `seq` (0, 1, 2, ... in the order steps were
//! entered). All instants are UTC ([`jiff::Timestamp`], RFC 3339 on the wire).

use crate::event::Subject;
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A JSON value that copies of a run share because it never changes once the run exists (the
/// triggering event): the decider copies the run on every decision, and this part costs nothing
/// to copy. Serializes, deserializes and compares as the value itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transparent)]
pub struct SharedValue(Arc<Value>);

impl SharedValue {
    pub fn new(value: Value) -> Self {
        SharedValue(Arc::new(value))
    }
}

impl std::ops::Deref for SharedValue {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}

impl Serialize for SharedValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(SharedValue::new)
    }
}

/// A JSON object that copies of a run share until one of them changes it (copy on write: a
/// mutable borrow copies it first if another copy holds it). The decider copies the run on every
/// decision; a map that the decision leaves alone costs nothing to copy, and comparing it with
/// the original is a pointer comparison. Serializes, deserializes and compares as the map.
#[derive(Debug, Clone, Default, PartialEq, Eq, JsonSchema)]
#[schemars(transparent)]
pub struct SharedMap(Arc<Map<String, Value>>);

impl SharedMap {
    pub fn new(map: Map<String, Value>) -> Self {
        SharedMap(Arc::new(map))
    }
}

impl SharedMap {
    /// Sets `key` to `value`, as `insert` does, unless the map already holds an equal value
    /// there: then it is left alone, still shared with the copies that hold it (no copy).
    pub fn set(&mut self, key: &str, value: &Value) {
        if self.0.get(key) != Some(value) {
            Arc::make_mut(&mut self.0).insert(key.to_string(), value.clone());
        }
    }

    /// Makes the map equal to `map` (empty for `None`); a map equal to it already is left
    /// alone (no copy).
    pub fn assign(&mut self, map: Option<&Map<String, Value>>) {
        match map {
            Some(map) if *self.0 != *map => *self = SharedMap::new(map.clone()),
            None if !self.0.is_empty() => *self = SharedMap::default(),
            _ => {}
        }
    }
}

impl From<Map<String, Value>> for SharedMap {
    fn from(map: Map<String, Value>) -> Self {
        SharedMap::new(map)
    }
}

impl std::ops::Deref for SharedMap {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl std::ops::DerefMut for SharedMap {
    fn deref_mut(&mut self) -> &mut Map<String, Value> {
        Arc::make_mut(&mut self.0)
    }
}

impl Serialize for SharedMap {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(SharedMap::new)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Moving, or waiting for an action's result.
    Running,
    /// Parked on a wait, an event, a goal or a human task.
    Waiting,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Entered, waiting for an action result.
    Running,
    /// Parked (wait, wait_for_event, goal, human_task).
    Waiting,
    Completed,
    Failed,
    /// Not performed; `skip_reason` says why.
    Skipped,
    /// An earlier attempt may have performed the effect; by policy it was not repeated.
    Uncertain,
    /// A wait for an event, goal or task that gave up at its timeout.
    TimedOut,
    /// Left because the run was cancelled or jumped to a goal.
    Cancelled,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Running => "running",
            StepStatus::Waiting => "waiting",
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Uncertain => "uncertain",
            StepStatus::TimedOut => "timed_out",
            StepStatus::Cancelled => "cancelled",
        }
    }
}

/// One entry of a run's history: a step the run entered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepRecord {
    /// Position in the history, from 0.
    pub seq: u32,
    pub step_id: String,
    /// `action:send_email`, `wait`, `branch`, ...
    #[serde(rename = "type")]
    pub step_type: String,
    pub status: StepStatus,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Attempts made (actions), 0 for other steps.
    #[serde(default)]
    pub attempt: u32,
    /// What happened, in words: the branch taken and why, the wait's due time, the email sent.
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Result data (an action's provider id, a human task's output, the rendered effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// What a run is parked on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitingFor {
    /// An action's result (the action was handed to execute).
    Action { idempotency_key: String },
    /// A timer (a `wait` step).
    Timer,
    /// An event (a `wait_for_event` step).
    Event,
    /// A required goal.
    Goal,
    /// A human task completion.
    Task,
    /// Nothing external: the run yielded after many steps and continues with the next message.
    Continue,
}

/// A scheduled wake-up. `timer_id` is unique per step entry (`{run_id}.{seq}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TimerRef {
    pub timer_id: String,
    pub due_at: Timestamp,
}

/// Where a run is: the open step record and what it waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cursor {
    pub step_id: String,
    pub waiting_for: WaitingFor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<TimerRef>,
    /// The step's open history record (rewritten when the step finishes).
    pub record: StepRecord,
}

/// The data a run carries for conditions and templates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunData {
    /// The triggering event, as conditions see it (`trigger.*`).
    pub trigger: SharedValue,
    /// The most recent event delivered to the run (`event.*`); the trigger at first (shared
    /// with it). Copies of the run share it too.
    pub event: SharedValue,
    /// The record's fields, updated by later events of the same record and by record actions.
    pub record: SharedMap,
    /// Previous values of the fields the latest event changed.
    #[serde(default)]
    pub previous: SharedMap,
    /// The contact snapshot, updated by contact events and contact actions.
    #[serde(default)]
    pub contact: SharedMap,
    /// Outputs of finished steps: `steps.<id>.output`, `steps.<id>.status`.
    #[serde(default)]
    pub steps: SharedMap,
}

/// Where a run failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Failure {
    pub step_id: String,
    /// The failed action may have performed its effect (see `ActionOutcome::Failed`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncertain: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The run head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Run {
    pub run_id: String,
    pub tenant: String,
    pub automation_id: String,
    pub automation_version: u32,
    /// The record the run is about (from the trigger event).
    pub subject: Subject,
    /// The key the enrollment policy counts runs by (`lead/L1`).
    pub enrollment_key: String,
    pub status: RunStatus,
    /// A dry run performs no side effect: its automation is in `sandbox` mode, the deployment
    /// runs dry, or the run was enrolled by a dry run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    pub data: RunData,
    /// Optimistic-concurrency counter: every save must name the version it read.
    pub version: u64,
    pub started_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Why the run ended (completed, failed or cancelled), in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The step a `failed` run failed at (what a retry resumes from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// How many times the run was retried after failing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// Steps entered so far (the runaway-loop guard counts these).
    pub steps_entered: u32,
    /// Number of history records (the next record's `seq`).
    pub history_len: u32,
    /// How many `enroll` actions led to this run (0 for a run started by its trigger).
    #[serde(default)]
    pub enroll_depth: u32,
    /// The run this one was enrolled from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<String>,
    /// Events that arrived while an action was in flight; handled after its result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred_events: Vec<crate::event::Event>,
    /// Ids of the latest events applied to this run (a redelivered event is ignored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_event_ids: Vec<String>,
    /// The commands of the last decision until the shell acknowledges their dispatch. A run
    /// loaded with a non-empty outbox had its dispatch interrupted (a crash between save and
    /// dispatch): the shell dispatches it again before anything else (every command is
    /// idempotent downstream).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbox: Vec<crate::command::Command>,
    /// Inputs were held for this run while its automation was paused (in the held-input store,
    /// not here): they are applied, in order, before any other input.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held_inputs: bool,
}

/// A run as the enrollment policy sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub status: RunStatus,
    pub started_at: Timestamp,
}

impl Run {
    /// A new run, not yet started (feed it [`crate::command::Input::Start`]).
    pub fn new(
        run_id: String,
        program: &crate::definition::Program,
        trigger: &crate::event::Event,
        contact: Map<String, Value>,
        now: Timestamp,
    ) -> Run {
        let trigger_value = SharedValue::new(trigger.to_scope_value());
        Run::with_trigger(run_id, program, trigger, trigger_value, contact, now)
    }

    /// [`Run::new`] with the trigger as conditions see it (`trigger.to_scope_value()`) already
    /// built, so that the runs one event starts share it.
    pub fn with_trigger(
        run_id: String,
        program: &crate::definition::Program,
        trigger: &crate::event::Event,
        trigger_value: SharedValue,
        contact: Map<String, Value>,
        now: Timestamp,
    ) -> Run {
        let mut contact_snapshot = contact;
        if let Some(c) = &trigger.contact {
            for (k, v) in c {
                contact_snapshot.insert(k.clone(), v.clone());
            }
        }
        if let Some(cid) = &trigger.subject.contact_id {
            contact_snapshot
                .entry("id")
                .or_insert_with(|| Value::String(cid.clone()));
        }
        Run {
            run_id,
            tenant: trigger.tenant.clone(),
            automation_id: program.id().to_string(),
            automation_version: program.version(),
            subject: trigger.subject.clone(),
            enrollment_key: trigger.subject.record_key(),
            status: RunStatus::Running,
            dry_run: program.automation.mode == crate::definition::Mode::Sandbox,
            cursor: None,
            data: RunData {
                event: trigger_value.clone(),
                trigger: trigger_value,
                record: trigger.data.clone().into(),
                previous: trigger.previous.clone().unwrap_or_default().into(),
                contact: contact_snapshot.into(),
                steps: SharedMap::default(),
            },
            version: 0,
            started_at: now,
            updated_at: now,
            finished_at: None,
            outcome: None,
            failure: None,
            retries: 0,
            steps_entered: 0,
            history_len: 0,
            enroll_depth: 0,
            parent_run_id: None,
            deferred_events: Vec::new(),
            recent_event_ids: vec![trigger.id.clone()],
            outbox: Vec::new(),
            held_inputs: false,
        }
    }

    /// The contact id, from the subject or the contact snapshot.
    pub fn contact_id(&self) -> Option<String> {
        self.subject
            .contact_id
            .clone()
            .or_else(|| self.data.contact.get("id").and_then(Value::as_str).map(str::to_string))
    }

    /// The record keys events are routed to this run by: the record, and its contact.
    pub fn route_keys(&self) -> Vec<String> {
        let mut keys = Vec::with_capacity(2);
        keys.push(self.subject.record_key());
        let contact = self
            .subject
            .contact_id
            .as_deref()
            .or_else(|| self.data.contact.get("id").and_then(Value::as_str));
        if let Some(c) = contact {
            let mut key = String::with_capacity("contact/".len() + c.len());
            key.push_str("contact/");
            key.push_str(c);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    pub fn summary(&self) -> RunSummary {
        RunSummary {
            run_id: self.run_id.clone(),
            status: self.status,
            started_at: self.started_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{Program, parse_automation};

    #[test]
    fn a_run_round_trips_through_json_with_its_shared_trigger() {
        let yaml = "id: a\nname: a\nstatus: active\ntrigger: {event: lead.created}\nsteps: [{id: e, end: {}}]\n";
        let program = Program::new(parse_automation(yaml).expect("parses")).expect("compiles");
        let (event, _) = crate::event::parse_event(&serde_json::json!({
            "id": "e1", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
            "subject": {"type": "lead", "id": "L1"}, "data": {"score": 7}
        }))
        .expect("event");
        let run = Run::new("R1".to_string(), &program, &event, Map::new(), event.time);
        let json = serde_json::to_value(&run).expect("serializes");
        assert_eq!(
            json["data"]["trigger"],
            event.to_scope_value(),
            "the trigger, as a plain value"
        );
        assert_eq!(json["data"]["trigger"], json["data"]["event"]);
        let back: Run = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, run);
        let copy = run.clone();
        assert!(
            Arc::ptr_eq(&copy.data.trigger.0, &run.data.trigger.0),
            "copies share the trigger"
        );
    }

    #[test]
    fn copies_of_a_run_share_its_maps_until_one_changes_them() {
        let yaml = "id: a\nname: a\nstatus: active\ntrigger: {event: lead.created}\nsteps: [{id: e, end: {}}]\n";
        let program = Program::new(parse_automation(yaml).expect("parses")).expect("compiles");
        let (event, _) = crate::event::parse_event(&serde_json::json!({
            "id": "e1", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
            "subject": {"type": "lead", "id": "L1"}, "data": {"score": 7}, "contact": {"email": "a@example.com"}
        }))
        .expect("event");
        let run = Run::new("R1".to_string(), &program, &event, Map::new(), event.time);
        let mut copy = run.clone();
        assert!(Arc::ptr_eq(&copy.data.record.0, &run.data.record.0), "shared");
        assert!(
            Arc::ptr_eq(&copy.data.event.0, &run.data.trigger.0),
            "event is the trigger"
        );
        copy.data.record.insert("score".to_string(), serde_json::json!(8));
        copy.data.contact.insert("tags".to_string(), serde_json::json!(["vip"]));
        assert_eq!(
            run.data.record.get("score"),
            Some(&serde_json::json!(7)),
            "the original is left alone"
        );
        assert_eq!(run.data.contact.get("tags"), None, "the original is left alone");
        assert_eq!(copy.data.record.get("score"), Some(&serde_json::json!(8)));
        assert_ne!(copy, run);
        let json = serde_json::to_value(&copy).expect("serializes");
        assert_eq!(
            json["data"]["record"],
            serde_json::json!({"score": 8}),
            "as a plain map"
        );
        assert_eq!(
            json["data"]["contact"],
            serde_json::json!({"email": "a@example.com", "tags": ["vip"]})
        );
        let back: Run = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, copy);
    }

    #[test]
    fn setting_a_map_to_what_it_holds_keeps_it_shared() {
        let map: Map<String, Value> = serde_json::from_str(r#"{"a": 1, "b": [2]}"#).expect("a map");
        let original = SharedMap::new(map.clone());
        let mut copy = original.clone();
        copy.set("b", &serde_json::json!([2]));
        copy.assign(Some(&map));
        assert!(Arc::ptr_eq(&copy.0, &original.0), "unchanged: still shared");
        copy.set("a", &serde_json::json!(3));
        copy.set("c", &Value::Null);
        assert_eq!(
            serde_json::to_string(&copy).expect("serializes"),
            r#"{"a":3,"b":[2],"c":null}"#,
            "in place, then appended"
        );
        assert_eq!(
            original.get("a"),
            Some(&serde_json::json!(1)),
            "the original is left alone"
        );
        copy.assign(None);
        assert!(copy.is_empty());
    }
}
