//! What the functions' AWS requests cost, for the cost tests (`tests/tests/aws/cost.rs`) and
//! `scripts/bench-cost.sh`:
//!
//! - [`ledger`]: an SDK interceptor that prices each request (DynamoDB request units, SQS
//!   64 KB chunks, SES emails), attached to a function's clients through its request counter
//!   ([`crmflow_aws::request_counter::RequestCounter::with_interceptor`]);
//! - [`item_images`]: what the ledger knows of a table's items (their last images, the key
//!   schema and indexes, an update expression applied);
//! - [`item_size`]: DynamoDB's item-size rules and the capacity units a size costs;
//! - [`pricing`]: the price table, the Lambda assumptions and the cost of a run.

pub mod item_images;
pub mod item_size;
pub mod ledger;
pub mod pricing;
