//! The embedded engine (`crmflow simulate`): the behaviour matrix, the examples, and crash
//! safety of the shell on the in-memory adapters.

mod crash_safety;
mod examples;
mod simulate_matrix;
