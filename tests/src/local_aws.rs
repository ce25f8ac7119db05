//! Creates the AWS resources of one crmflow deployment on a local AWS emulator (or any account
//! the SDK config points at): the table (with `GSI1` and TTL on `expires_at`), the four queues,
//! each with a dead-letter queue (`maxReceiveCount` 5), and the verified SES sender identity.
//! Integration tests and the local function setup share it. Every name starts with a prefix, so
//! parallel tests do not collide. Running it again on existing resources is fine.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use crmflow_aws::dynamodb::{EXPIRES_AT, GSI1, GSI1PK, GSI1SK, PK, SK};
use crmflow_aws::sdk::{describe, dynamodb_client, error_code, sesv2_client, sqs_client};
use std::collections::BTreeMap;

/// How often a message is received before it goes to its dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// What to call things.
#[derive(Debug, Clone)]
pub struct LocalNames {
    /// Starts every table and queue name (`[A-Za-z0-9_-]`, short: SQS names are at most 80
    /// characters and the longest suffix is `-crm-commands-dlq`).
    pub prefix: String,
    /// The sender identity to verify.
    pub sender: String,
}

impl LocalNames {
    pub fn new(prefix: impl Into<String>) -> Self {
        LocalNames {
            prefix: prefix.into(),
            sender: "automations@example.com".to_string(),
        }
    }

    pub fn with_sender(mut self, sender: impl Into<String>) -> Self {
        self.sender = sender.into();
        self
    }
}

/// The API key of the API Gateway samples (`events/lambda/api*.json`), tenant `default`: a
/// fixed, public key that only local deployments (`local-setup`) store, so the samples work
/// with `cargo lambda invoke`. Never store it in a real deployment.
pub const SAMPLE_API_KEY: &str = "cfk_5a3b1e005a3b1e005a3b1e005a3b1e005a3b1e005a3b1e005a3b1e005a3b1e00";
/// Its key id.
pub const SAMPLE_API_KEY_ID: &str = "key_local_sample";

/// The queues of a deployment, by role.
pub const QUEUE_ROLES: [&str; 4] = ["events", "step", "action", "crm-commands"];

/// What was created.
#[derive(Debug, Clone)]
pub struct LocalResources {
    pub table: String,
    pub events_queue_url: String,
    pub step_queue_url: String,
    pub action_queue_url: String,
    pub crm_commands_queue_url: String,
    /// Dead-letter queue URLs by role (`events`, `step`, `action`, `crm-commands`).
    pub dead_letter_queue_urls: BTreeMap<String, String>,
    pub sender: String,
}

#[derive(Debug, thiserror::Error)]
#[error("creating local resources: {0}")]
pub struct LocalSetupError(pub String);

fn fail(what: &str, detail: impl std::fmt::Display) -> LocalSetupError {
    LocalSetupError(format!("{what}: {detail}"))
}

/// Set to `1` by the scripts that start the local AWS server for a test run
/// (`scripts/test.sh` and friends): the AWS integration tests then fail, instead of skipping,
/// when `AWS_ENDPOINT_URL` is missing, so a server that did not start cannot pass as green.
pub const REQUIRE_LOCAL_AWS_ENV: &str = "CRMFLOW_REQUIRE_LOCAL_AWS";

/// Why [`local_endpoint_from_env`] refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocalEndpointError {
    #[error("AWS_ENDPOINT_URL is not set, and {REQUIRE_LOCAL_AWS_ENV}=1 requires a local AWS server")]
    Required,
    #[error("AWS_ENDPOINT_URL={0} is not a URL")]
    Invalid(String),
    #[error(
        "AWS_ENDPOINT_URL={0} is not a loopback endpoint; tests that create and delete resources only run against a local emulator"
    )]
    NotLocal(String),
}

/// The endpoint for tests that create and delete AWS resources, read from `AWS_ENDPOINT_URL`.
///
/// `Ok(Some(url))` when it is set and names a loopback host (`localhost`, `127.0.0.0/8`, `::1`);
/// `Ok(None)` when it is unset or empty (the caller skips), unless [`REQUIRE_LOCAL_AWS_ENV`] is
/// `1`, which makes that [`LocalEndpointError::Required`]; [`LocalEndpointError::NotLocal`] for
/// any other host, so a test can never touch a real account.
pub fn local_endpoint_from_env() -> Result<Option<String>, LocalEndpointError> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok().filter(|e| !e.is_empty());
    let required = std::env::var(REQUIRE_LOCAL_AWS_ENV).is_ok_and(|v| v == "1");
    check_local_endpoint(endpoint, required)
}

fn check_local_endpoint(endpoint: Option<String>, required: bool) -> Result<Option<String>, LocalEndpointError> {
    let Some(endpoint) = endpoint else {
        return if required {
            Err(LocalEndpointError::Required)
        } else {
            Ok(None)
        };
    };
    let url = reqwest::Url::parse(&endpoint).map_err(|_| LocalEndpointError::Invalid(endpoint.clone()))?;
    // host_str() writes an IPv6 host in brackets.
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let local =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if local {
        Ok(Some(endpoint))
    } else {
        Err(LocalEndpointError::NotLocal(endpoint))
    }
}

/// What a test prints when it skips for want of a local endpoint.
pub const SKIP: &str = "skipped: AWS_ENDPOINT_URL not set (scripts/test.sh starts a local moto server and sets it; or run `eval \"$(scripts/moto.sh start)\"` first)";

/// One test's own deployment on the local endpoint: the SDK configuration and the resources,
/// under a prefix unique to the test, so tests run in parallel.
pub struct LocalDeployment {
    pub endpoint: String,
    pub sdk: SdkConfig,
    pub resources: LocalResources,
}

impl LocalDeployment {
    /// Creates the test's table, queues and sender identity (`automations-<prefix>@example.com`).
    /// `None`, after printing [`SKIP`], when no local endpoint is configured; panics when the
    /// endpoint is refused (not loopback, or required and missing) or the resources cannot be made.
    pub async fn create(test: &str) -> Option<LocalDeployment> {
        let Some(endpoint) = local_endpoint_from_env().unwrap_or_else(|e| panic!("{test}: {e}")) else {
            eprintln!("{test}: {SKIP}");
            return None;
        };
        let sdk = crmflow_aws::sdk::load_sdk_config().await;
        // Short and unique: SQS names are at most 80 characters with the longest suffix.
        let prefix: String = format!(
            "t{}-{}",
            &uuid::Uuid::now_v7().simple().to_string()[20..],
            test.replace('_', "-")
        )
        .chars()
        .take(40)
        .collect();
        let sender = format!("automations-{prefix}@example.com");
        let resources = create_local_resources(&sdk, &LocalNames::new(prefix).with_sender(sender))
            .await
            .unwrap_or_else(|e| panic!("{test}: local resources: {e}"));
        Some(LocalDeployment {
            endpoint,
            sdk,
            resources,
        })
    }
}

/// Creates (or finds) the table, queues and sender identity named by `names`.
pub async fn create_local_resources(sdk: &SdkConfig, names: &LocalNames) -> Result<LocalResources, LocalSetupError> {
    let table = format!("{}-table", names.prefix);
    create_table(sdk, &table).await?;

    let sqs = sqs_client(sdk, None);
    let mut urls = BTreeMap::new();
    let mut dead_letter_queue_urls = BTreeMap::new();
    for role in QUEUE_ROLES {
        let (url, dlq_url) = create_queue_with_dlq(&sqs, &format!("{}-{role}", names.prefix)).await?;
        urls.insert(role, url);
        dead_letter_queue_urls.insert(role.to_string(), dlq_url);
    }

    let ses = sesv2_client(sdk, None);
    if let Err(e) = ses.create_email_identity().email_identity(&names.sender).send().await
        && error_code(&e) != Some("AlreadyExistsException")
    {
        return Err(fail("CreateEmailIdentity", describe(&e)));
    }

    let mut take = |role: &str| urls.remove(role).unwrap_or_default();
    Ok(LocalResources {
        table,
        events_queue_url: take("events"),
        step_queue_url: take("step"),
        action_queue_url: take("action"),
        crm_commands_queue_url: take("crm-commands"),
        dead_letter_queue_urls,
        sender: names.sender.clone(),
    })
}

async fn create_table(sdk: &SdkConfig, table: &str) -> Result<(), LocalSetupError> {
    let client = dynamodb_client(sdk, None);
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| fail("attribute definition", e))
    };
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(|e| fail("key schema", e))
    };
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key(GSI1PK, KeyType::Hash)?)
        .key_schema(key(GSI1SK, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
        .build()
        .map_err(|e| fail("GSI1", e))?;
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PK)?)
        .attribute_definitions(attribute(SK)?)
        .attribute_definitions(attribute(GSI1PK)?)
        .attribute_definitions(attribute(GSI1SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if error_code(&e) == Some("ResourceInUseException") => return Ok(()),
        Err(e) => return Err(fail(&format!("CreateTable {table}"), describe(&e))),
    }
    // Wait until the table is usable (at once on an emulator, seconds on AWS).
    for _ in 0..120 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| fail(&format!("DescribeTable {table}"), describe(&e)))?;
        let status = described.table.and_then(|t| t.table_status);
        if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name(EXPIRES_AT)
        .enabled(true)
        .build()
        .map_err(|e| fail("TTL specification", e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| fail(&format!("UpdateTimeToLive {table}"), describe(&e)))?;
    Ok(())
}

/// Creates `{name}-dlq` and `{name}` redriving to it; returns (queue URL, DLQ URL).
async fn create_queue_with_dlq(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<(String, String), LocalSetupError> {
    let dlq_name = format!("{name}-dlq");
    let dlq_url = sqs
        .create_queue()
        .queue_name(&dlq_name)
        .send()
        .await
        .map_err(|e| fail(&format!("CreateQueue {dlq_name}"), describe(&e)))?
        .queue_url
        .ok_or_else(|| fail(&format!("CreateQueue {dlq_name}"), "no queue URL"))?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| fail(&format!("GetQueueAttributes {dlq_name}"), describe(&e)))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| fail(&format!("GetQueueAttributes {dlq_name}"), "no QueueArn"))?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT });
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(|e| fail(&format!("CreateQueue {name}"), describe(&e)))?
        .queue_url
        .ok_or_else(|| fail(&format!("CreateQueue {name}"), "no queue URL"))?;
    Ok((url, dlq_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(endpoint: Option<&str>, required: bool) -> Result<Option<String>, LocalEndpointError> {
        check_local_endpoint(endpoint.map(str::to_string), required)
    }

    #[test]
    fn loopback_endpoints_are_accepted() {
        for endpoint in [
            "http://127.0.0.1:5000",
            "http://localhost:4566/",
            "http://127.1.2.3",
            "http://[::1]:5000",
        ] {
            assert_eq!(
                check(Some(endpoint), true),
                Ok(Some(endpoint.to_string())),
                "{endpoint}"
            );
        }
    }

    #[test]
    fn other_hosts_are_refused() {
        for endpoint in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "http://10.0.0.5:5000",
            "http://[2001:db8::1]",
            "http://localhost.example.com",
        ] {
            assert_eq!(
                check(Some(endpoint), false),
                Err(LocalEndpointError::NotLocal(endpoint.to_string()))
            );
        }
        assert_eq!(
            check(Some("not a url"), false),
            Err(LocalEndpointError::Invalid("not a url".into()))
        );
    }

    #[test]
    fn a_missing_endpoint_skips_unless_required() {
        assert_eq!(check(None, false), Ok(None));
        assert_eq!(check(None, true), Err(LocalEndpointError::Required));
    }
}
