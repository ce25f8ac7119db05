//! Automation definitions: the When (trigger) / If (conditions) / Then (steps) model.
//!
//! YAML and JSON share this one model. Two shapes are accepted:
//! - the **flat form** of the public API (`trigger` + `actions` run in order), and
//! - the **steps form**: a block-structured `steps` list whose steps have stable ids.
//!
//! The flat form is turned into the steps form at load time (action `i` gets the id `action-{i+1}`),
//! so the engine only ever sees steps. Loading and validation live in [`load`] and [`validate`];
//! the flattened, executable view of the step tree is [`program::Program`].
//!
//! The submodules import one way: [`step`] and [`action`] (the step model) and [`error`] below
//! [`validate`], below [`program`], below [`load`]. The automation model in this file uses none
//! of them but the step model.

pub mod action;
pub mod error;
pub mod load;
pub mod program;
pub mod schema;
pub mod step;
pub mod validate;

pub use action::Action;
pub use error::DefinitionError;
pub use load::{LoadError, load_automation_file, load_automations, load_programs, parse_automation};
pub use program::Program;
pub use schema::automation_schema;
pub use step::{
    BranchCase, BranchSpec, EndSpec, GoalSpec, HumanTaskSpec, SplitPath, SplitSpec, Step, StepKind, WaitForEventSpec,
};

use crate::condition::Condition;
use crate::time::{DurationSpec, TimeZoneName};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An automation definition. See the README's "Definition format" for examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Automation {
    /// Stable identifier, `[a-z0-9_-]`. Defaults to a slug of `name` when omitted.
    #[serde(default)]
    pub id: String,
    /// Human-readable name.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Definition version, a positive integer. A run records the version it started on.
    #[serde(default = "default_version")]
    pub version: u32,
    /// Only `active` automations enroll records.
    #[serde(default)]
    pub status: AutomationStatus,
    /// `live` performs the steps' effects; `sandbox` evaluates triggers and conditions against
    /// live events but performs no side effect (no email, CRM command, webhook or human task):
    /// each is recorded in the run's history as a dry-run skip with its rendered content, and
    /// the runs carry `dry_run: true`. Promotion is a new version with `mode: live`.
    #[serde(default, skip_serializing_if = "Mode::is_live")]
    pub mode: Mode,
    /// The tenant (CRM account) this automation belongs to; events of other tenants never enroll.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// The automation's IANA time zone, used for waits when the contact has no `timezone`.
    /// Defaults to UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<TimeZoneName>,
    /// When: the event type(s) that can enroll a record, with optional trigger conditions.
    pub trigger: Trigger,
    /// If: extra enrollment conditions, checked after the trigger conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Condition>,
    /// Re-enrollment and concurrency policy.
    #[serde(default)]
    pub enrollment: EnrollmentPolicy,
    /// Unenroll a run when one of these events arrives or this condition becomes true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitRule>,
    /// Flat form: actions run in order. Mutually exclusive with `steps`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// Steps form: a block-structured list of steps with stable ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Safety limits against runaway loops.
    #[serde(default)]
    pub limits: RunLimits,
}

fn default_version() -> u32 {
    1
}

/// The default tenant name, used when events and automations do not name one.
pub const DEFAULT_TENANT: &str = "default";

fn default_tenant() -> String {
    DEFAULT_TENANT.to_string()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AutomationStatus {
    /// Being edited; never enrolls (the default, so nothing goes live by accident).
    #[default]
    Draft,
    /// Enrolls records.
    Active,
    /// Temporarily stopped: no new enrollments.
    Paused,
    /// Retired: no new enrollments.
    Archived,
}

/// Whether an automation's effects are performed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Effects are performed (the default).
    #[default]
    Live,
    /// Dry run: effects are rendered and recorded, never performed.
    Sandbox,
}

impl Mode {
    pub fn is_live(&self) -> bool {
        *self == Mode::Live
    }
}

/// When: which events enroll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// One event type (`"lead.created"`), a list of them, or a prefix wildcard (`"contact.*"`).
    pub event: EventTypes,
    /// Trigger conditions. A plain map means equality on the triggering record's fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Condition>,
}

/// One event type or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EventTypes {
    One(String),
    Many(Vec<String>),
}

impl EventTypes {
    pub fn patterns(&self) -> Vec<&str> {
        match self {
            EventTypes::One(one) => vec![one.as_str()],
            EventTypes::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

/// Re-enrollment policy: may a record that already went through this automation enter again?
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentPolicy {
    #[serde(default)]
    pub reenroll: Reenroll,
    /// With `reenroll: after`, the minimum time between two enrollments of the same record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<DurationSpec>,
    /// Allow more than one active run per record of this automation (default false).
    #[serde(default)]
    pub allow_concurrent: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reenroll {
    /// A record is enrolled at most once, ever (the default).
    #[default]
    Once,
    /// Every matching event enrolls (still at most one active run unless `allow_concurrent`).
    Always,
    /// Enroll again once `after` has passed since the previous enrollment.
    After,
}

/// Exit conditions: the run is unenrolled (status `cancelled`) when one of `events` arrives for
/// its record, or when `condition` holds after an event updated the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExitRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

/// Guards against runaway loops (`goto` cycles, self-re-enrolling automations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunLimits {
    /// The most steps one run may enter in its lifetime; past it the run fails with
    /// `step limit exceeded`. Default 500.
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    /// How deep `enroll` actions may chain (automation A enrolls B enrolls C...). Default 5.
    #[serde(default = "default_max_enroll_depth")]
    pub max_enroll_depth: u32,
}

fn default_max_steps() -> u32 {
    500
}
fn default_max_enroll_depth() -> u32 {
    5
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            max_steps: default_max_steps(),
            max_enroll_depth: default_max_enroll_depth(),
        }
    }
}

impl Automation {
    pub fn is_active(&self) -> bool {
        self.status == AutomationStatus::Active
    }

    /// Does this event type trigger the automation?
    pub fn triggered_by(&self, event: &crate::event::Event) -> bool {
        self.trigger.event.patterns().iter().any(|p| event.type_matches(p))
    }
}
