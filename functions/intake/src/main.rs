//! The crmflow intake Lambda function. All logic lives in the shared crate.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    crmflow_aws::lambda::run_function(crmflow_aws::lambda::FunctionName::Intake).await
}
