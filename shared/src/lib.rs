//! crmflow on AWS: the adapters of the core's ports and the Lambda layer the functions share.
//!
//! - [`dynamodb`]: runs, history, enrollment, routes, the automation catalog, idempotency
//!   records and long timers in one DynamoDB table;
//! - [`sqs`]: the step and action queues and the CRM command queue; [`timers`]: the timer
//!   service (delayed messages, or a timer store swept every minute);
//! - [`ses`]: email through SES v2; [`http`]: webhooks and notifications over HTTPS;
//! - [`sdk`]: SDK client construction and error classification; [`request_counter`]: an SDK
//!   interceptor that counts requests per operation;
//! - [`lambda`]: configuration from the environment, per-function wiring, partial batch
//!   responses, JSON logs and each function's IAM permissions.
//!
//! The engine itself (definitions, conditions, the decider, the shell) is `crmflow-core`.

pub mod dynamodb;
pub mod http;
pub mod lambda;
pub mod request_counter;
pub mod sdk;
pub mod ses;
pub mod sqs;
pub mod timers;
