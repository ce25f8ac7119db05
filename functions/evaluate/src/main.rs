//! The crmflow evaluate Lambda function. All logic lives in the shared crate.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    crmflow::lambda::run_function(crmflow::lambda::FunctionName::Evaluate).await
}
