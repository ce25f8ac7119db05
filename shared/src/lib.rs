//! crmflow: a CRM workflow-automation engine.
//!
//! - [`definition`]: automations (trigger, conditions, steps), loading and validation.
//! - [`event`]: CRM events in CloudEvents, EventBridge or the native envelope, normalised.
//! - [`condition`]: field rules and CEL expressions.
//! - [`decider`]: the pure run logic, `(program, run, input) → (run', records, commands)`.
//! - [`ports`]: the traits the shell talks to; [`adapters`]: in-memory and AWS implementations.
//! - [`engine`]: the shell (intake, evaluate, execute, resume); [`simulate`]: the embedded runner.

pub mod adapters;
pub mod command;
pub mod condition;
pub mod decider;
pub mod definition;
pub mod engine;
pub mod enrollment;
pub mod event;
pub mod ids;
pub mod lambda;
pub mod messages;
pub mod ports;
pub mod render;
pub mod run;
pub mod simulate;
pub mod template;
pub mod time;
pub mod wait;
