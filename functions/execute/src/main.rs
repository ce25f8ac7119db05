//! The crmflow execute Lambda function: all of it is in `crmflow_aws::lambda::execute`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    crmflow_aws::lambda::execute::main().await
}
