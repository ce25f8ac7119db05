//! The crmflow resume Lambda function: all of it is in `crmflow_aws::lambda::resume`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    crmflow_aws::lambda::resume::main().await
}
