//! The simulate function: the management API's test route (`crmflow_api::test_router`: an
//! automation run on a sample event, on a private simulator) behind the same API Gateway HTTP
//! API as the api function, which routes `POST /api/v1/automations/{id}/test` here.
//!
//! It is a function of its own because the route links the whole engine (the decider, the
//! in-memory adapters, the simulator), which the api function would otherwise carry (0.4 MB, README
//! "Figures"), and because it needs so little: it reads the automation's versions and the
//! caller's API key from the table, and writes nothing anywhere.

use super::api::{ApiResponse, http_handler};
use super::{FunctionConfig, FunctionName};
use crate::dynamodb::DynamoStore;
use crate::request_counter::RequestCounter;
use aws_config::SdkConfig;
use crmflow_api::test_router;
use crmflow_api::test_run::TestState;
use std::sync::Arc;

/// The test route's ports on AWS: the table, read only.
pub fn state(config: &FunctionConfig, sdk: &SdkConfig, counter: Option<&RequestCounter>) -> TestState {
    let store = Arc::new(DynamoStore::new(
        sdk,
        counter,
        &config.table_name,
        config.retention_days,
    ));
    TestState {
        automations: store.clone(),
        keys: store,
    }
}

/// What the simulate function serves: the test route, as the api function serves its routes.
pub fn handler(
    state: TestState,
    counter: RequestCounter,
) -> impl lambda_http::Service<lambda_http::Request, Response = ApiResponse, Error = std::convert::Infallible, Future: Send>
+ Clone {
    http_handler(test_router(state), counter)
}

/// The whole main of the simulate function.
pub async fn main() -> Result<(), lambda_runtime::Error> {
    let config = super::init(FunctionName::Simulate)?;
    let counter = RequestCounter::new();
    let state = state(&config, &crate::sdk::load_sdk_config().await, Some(&counter));
    lambda_http::run(handler(state, counter)).await
}
