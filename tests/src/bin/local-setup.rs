//! Creates a local deployment on the AWS-protocol server at `AWS_ENDPOINT_URL` (table, queues,
//! sender identity), stores the example automations in its table and the API Gateway samples'
//! API key ([`SAMPLE_API_KEY`], tenant `default`, only its digest), and writes the functions'
//! environment to a file for `cargo lambda watch --env-file`.
//!
//! ```sh
//! cargo run -p crmflow-tests --bin local-setup -- functions.env [PREFIX]
//! ```

use crmflow_aws::dynamodb::DynamoStore;
use crmflow_aws::sdk::load_sdk_config;
use crmflow_core::definition::load::load_programs;
use crmflow_core::ports::{AutomationCatalog, Credential, StoreError};
use crmflow_tests::local_aws::{LocalNames, SAMPLE_API_KEY, SAMPLE_API_KEY_ID, create_local_resources};
use std::path::Path;

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let env_file = args.next().ok_or("usage: local-setup ENV_FILE [PREFIX]")?;
    let prefix = args.next().unwrap_or_else(|| "crmflow-local".to_string());
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        return Err("AWS_ENDPOINT_URL must name the local server (see scripts/moto.sh)".to_string());
    }
    let sdk = load_sdk_config().await;
    let resources = create_local_resources(&sdk, &LocalNames::new(prefix))
        .await
        .map_err(|e| e.to_string())?;
    let store = DynamoStore::new(&sdk, None, &resources.table, 30);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for program in load_programs(&examples).map_err(|e| e.to_string())? {
        store.put(program.automation.clone()).await.map_err(|e| e.to_string())?;
        eprintln!("stored {} v{}", program.id(), program.version());
    }
    let sample = Credential {
        id: SAMPLE_API_KEY_ID.to_string(),
        tenant: "default".to_string(),
    };
    let digest = crmflow_api::auth::digest(SAMPLE_API_KEY);
    match store.put_api_key(&digest, &sample, jiff::Timestamp::now()).await {
        // Stored by an earlier run on the same resources.
        Ok(()) | Err(StoreError::Conflict(_)) => eprintln!("stored the samples' API key ({SAMPLE_API_KEY_ID})"),
        Err(e) => return Err(e.to_string()),
    }
    let lines = [
        ("CRMFLOW_TABLE_NAME", resources.table.as_str()),
        ("CRMFLOW_STEP_QUEUE_URL", resources.step_queue_url.as_str()),
        ("CRMFLOW_ACTION_QUEUE_URL", resources.action_queue_url.as_str()),
        (
            "CRMFLOW_CRM_COMMANDS_QUEUE_URL",
            resources.crm_commands_queue_url.as_str(),
        ),
        ("CRMFLOW_SENDER_ADDRESS", resources.sender.as_str()),
        ("CRMFLOW_EVENTS_QUEUE_URL", resources.events_queue_url.as_str()),
    ];
    let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&env_file, text).map_err(|e| format!("{env_file}: {e}"))?;
    eprintln!("wrote {env_file}");
    Ok(())
}
