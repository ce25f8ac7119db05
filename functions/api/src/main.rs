//! The crmflow api Lambda function: all of it is in `crmflow_aws::lambda::api`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    crmflow_aws::lambda::api::main().await
}
