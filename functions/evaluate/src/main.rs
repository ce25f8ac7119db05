//! The crmflow evaluate Lambda function: all of it is in `crmflow_aws::lambda::evaluate`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    crmflow_aws::lambda::evaluate::main().await
}
