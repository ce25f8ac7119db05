//! Implementations of the ports: in-memory (the embedded default, used by `crmflow simulate`
//! and unit tests) and AWS (DynamoDB, SQS, SES v2, HTTP).

pub mod aws_config;
pub mod dynamodb;
pub mod http;
pub mod local;
pub mod memory;
pub mod request_counter;
pub mod ses;
pub mod sqs;
