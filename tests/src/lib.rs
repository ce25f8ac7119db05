//! Support for crmflow's integration and end-to-end suites (`tests/tests/`). Nothing here is
//! linked by a function or the CLI.
//!
//! - [`given`]: given/when/then helpers for the decider and the embedded engine: definitions,
//!   events, a decider harness with a manual clock, simulator runs and report assertions;
//! - [`local_aws`]: the loopback check of `AWS_ENDPOINT_URL` and the resources of a local
//!   deployment (table, queues with dead-letter queues, sender identity);
//! - [`harness`]: the SQS event-source harness that drives the four functions' handlers the way
//!   Lambda does, with request recording, cost ledgers and crash injection;
//! - [`cost`]: the cost ledger that prices each AWS request, and the price table;
//! - [`e2e`]: helpers of the end-to-end suites (per-test deployments, what moto recorded, a
//!   webhook receiver, log capture, the permission check).

pub mod cost;
pub mod e2e;
pub mod given;
pub mod harness;
pub mod local_aws;
