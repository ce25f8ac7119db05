//! The crmflow intake Lambda function: all of it is in `crmflow_aws::lambda::intake`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    crmflow_aws::lambda::intake::main().await
}
