//! A hello-world Lambda function on the same runtime crate as crmflow's functions: the baseline
//! of `scripts/bench-coldstart.sh` (what the runtime alone costs at start-up).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({ "hello": "world" }))
    }))
    .await
}
