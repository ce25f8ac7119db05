//! crmflow on AWS: the adapters of the core's ports and the Lambda layer the functions share.
//!
//! - [`dynamodb`]: runs, history, enrollment, routes, the automation catalog, idempotency
//!   records and long timers in one DynamoDB table;
//! - [`sqs`]: the step and action queues and the CRM command queue; [`timers`]: the timer
//!   service (delayed messages, or a timer store swept every minute);
//! - [`ses`]: email through SES v2; [`http`]: webhooks and notifications over HTTPS;
//! - [`sdk`]: SDK client construction and error classification; [`request_counter`]: an SDK
//!   interceptor that counts requests per operation; [`ledger`]: one that prices them, which a
//!   counter carries in tests (DynamoDB
//!   request units by [`item_size`] from the [`item_images`] it keeps, SQS 64 KB chunks, SES
//!   emails), and [`pricing`]: the price table and the cost of a run;
//! - [`lambda`]: configuration from the environment, per-function wiring, partial batch
//!   responses, JSON logs and each function's IAM permissions.
//!
//! The engine itself (definitions, conditions, the decider, the shell) is `crmflow-core`.

pub mod dynamodb;
pub mod http;
pub mod item_images;
pub mod item_size;
pub mod lambda;
pub mod ledger;
pub mod pricing;
pub mod request_counter;
pub mod sdk;
pub mod ses;
pub mod sqs;
pub mod timers;
