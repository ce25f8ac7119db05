//! What the four Lambda functions share: configuration from the environment, engine wiring on
//! the AWS adapters, JSON logging, the SQS partial-batch wrapper and the handlers.
//! The binaries in `functions/` only call [`run_function`].

pub mod batch;
pub mod config;
pub mod handlers;
pub mod logging;
pub mod permissions;

pub use config::{FunctionConfig, FunctionName};

use crate::dynamodb::DynamoStore;
use crate::http::ReqwestHttpClient;
use crate::request_counter::RequestCounter;
use crate::sdk::load_sdk_config;
use crate::ses::SesEmailSender;
use crate::sqs::{AwsTimerService, SqsCrmCommandSink, SqsStepQueue};
use async_trait::async_trait;
use crmflow_core::command::{EmailMessage, HttpRequest};
use crmflow_core::engine::{Engine, EngineConfig};
use crmflow_core::ports::{
    CrmCommandSink, EffectError, EmailSender, HttpClient, HttpResponse, OutboundCrmCommand, SystemClock,
};
use std::sync::Arc;

/// Builds the engine a function needs from its configuration. A port the function has no
/// business using (email in intake, say) answers with a permanent error naming the function.
pub async fn build_engine(config: &FunctionConfig, counter: Option<&RequestCounter>) -> Result<Engine, String> {
    build_engine_with_sdk(config, &load_sdk_config().await, counter)
}

/// [`build_engine`] on a given SDK configuration (the local harness passes one whose HTTP client
/// records requests and injects faults).
pub fn build_engine_with_sdk(
    config: &FunctionConfig,
    sdk: &aws_config::SdkConfig,
    counter: Option<&RequestCounter>,
) -> Result<Engine, String> {
    let store = DynamoStore::new(sdk, counter, &config.table_name, config.retention_days);
    let queue = SqsStepQueue::new(sdk, counter, &config.step_queue_url, &config.action_queue_url);
    let timers = AwsTimerService::new(queue.clone(), store.clone());
    let email: Arc<dyn EmailSender> = match &config.sender_address {
        Some(from) => Arc::new(SesEmailSender::new(sdk, counter, from.clone())),
        None => Arc::new(Unavailable(config.function)),
    };
    let crm: Arc<dyn CrmCommandSink> = match &config.crm_commands_queue_url {
        Some(url) => Arc::new(SqsCrmCommandSink::new(sdk, counter, url.clone())),
        None => Arc::new(Unavailable(config.function)),
    };
    let http: Arc<dyn HttpClient> = if config.function == FunctionName::Execute {
        let client = if config.allow_private_webhooks {
            ReqwestHttpClient::allowing_private_networks()
        } else {
            ReqwestHttpClient::new()
        };
        Arc::new(client.map_err(|e| e.to_string())?)
    } else {
        Arc::new(Unavailable(config.function))
    };
    let store = Arc::new(store);
    Ok(Engine {
        catalog: store.clone(),
        runs: store.clone(),
        idempotency: store,
        queue: Arc::new(queue),
        timers: Arc::new(timers),
        email,
        crm,
        http,
        clock: Arc::new(SystemClock),
        config: EngineConfig {
            notify_urls: config.notify_urls.clone(),
            ..EngineConfig::default()
        },
    })
}

/// A port this function is not configured for.
struct Unavailable(FunctionName);

#[async_trait]
impl EmailSender for Unavailable {
    async fn send(&self, _: &EmailMessage, _: &str) -> Result<String, EffectError> {
        Err(EffectError::permanent(format!(
            "email is not configured in the {} function",
            self.0
        )))
    }
}

#[async_trait]
impl CrmCommandSink for Unavailable {
    async fn send(&self, _: &OutboundCrmCommand) -> Result<(), EffectError> {
        Err(EffectError::permanent(format!(
            "the CRM command queue is not configured in the {} function",
            self.0
        )))
    }
}

#[async_trait]
impl HttpClient for Unavailable {
    async fn send(&self, _: &HttpRequest, _: &str) -> Result<HttpResponse, EffectError> {
        Err(EffectError::permanent(format!(
            "outbound HTTP is not available in the {} function",
            self.0
        )))
    }
}

/// The whole main of a function: logging, configuration, engine, and the Lambda runtime loop.
pub async fn run_function(function: FunctionName) -> Result<(), lambda_runtime::Error> {
    logging::init();
    let config = FunctionConfig::from_env(function).map_err(|e| {
        tracing::error!(error = %e, "configuration");
        e
    })?;
    let engine = Arc::new(build_engine(&config, None).await?);
    match function {
        FunctionName::Resume => {
            lambda_runtime::run(lambda_runtime::service_fn(
                move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
                    let engine = engine.clone();
                    async move { handlers::resume(&engine, event.payload).await }
                },
            ))
            .await
        }
        _ => {
            lambda_runtime::run(lambda_runtime::service_fn(
                move |event: lambda_runtime::LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| {
                    let engine = engine.clone();
                    async move {
                        Ok::<_, lambda_runtime::Error>(handlers::sqs_batch(function, &engine, event.payload).await)
                    }
                },
            ))
            .await
        }
    }
}
