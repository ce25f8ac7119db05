//! The decider, input by input: every step kind, action type, operator, and the time rules.

mod actions;
mod operators;
mod steps;
mod time;
