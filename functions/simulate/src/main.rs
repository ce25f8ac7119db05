//! The crmflow simulate Lambda function: all of it is in `crmflow_aws::lambda::simulate`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    crmflow_aws::lambda::simulate::main().await
}
