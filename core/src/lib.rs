//! crmflow's core: everything that decides, and nothing that talks to AWS.
//!
//! - [`definition`]: automations (trigger, conditions, steps), loading and validation.
//! - [`event`]: CRM events in CloudEvents, EventBridge or the native envelope, normalised.
//! - [`condition`]: field rules and CEL expressions.
//! - [`time`], [`wait`]: durations, time zones and when a wait falls due.
//! - [`template`], [`render`]: minijinja templates and the rendered effects.
//! - [`decider`]: the pure run logic, `(program, run, input, now) → (run', records, commands)`.
//! - [`ports`]: the traits the shell talks to; [`memory`]: their in-memory adapters.
//! - [`engine`]: the shell (intake, evaluate, execute, resume); [`simulate`]: the embedded runner.
//!
//! The AWS adapters and the Lambda layer live in the `crmflow-aws` crate (`shared/`).

pub mod command;
pub mod condition;
pub mod decider;
pub mod definition;
pub mod embedded;
pub mod engine;
pub mod enrollment;
pub mod event;
pub mod ids;
pub mod memory;
pub mod messages;
pub mod ports;
pub mod render;
pub mod run;
pub mod simulate;
pub mod template;
pub mod time;
pub mod wait;
