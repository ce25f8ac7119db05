//! Against a local AWS-protocol server (moto, started by `scripts/test.sh`): the AWS adapters,
//! the four engine functions end to end through the SQS event-source harness, the api function
//! (its adapters, `crmflow api-keys`, API Gateway requests end to end), what a run costs, the CLI's deployment
//! commands, endpoint configuration, the webhook client, TLS and the template's IAM permissions.

mod adapters;
mod api;
mod api_lifecycle;
mod cli_commands;
mod cost;
mod e2e;
mod endpoint_env;
mod http_client;
mod infra_permissions;
mod tls;
