//! SQS adapters: the events queue ([`SqsEventQueue`], for the management API's posted events),
//! the step queue ([`SqsStepQueue`]), the action queue ([`SqsActionQueue`]) and the
//! outbound CRM command queue ([`SqsCrmCommandSink`]). Timers use the step queue too
//! ([`crate::timers::AwsTimerService`]).
//!
//! The queues are standard queues: per-message `DelaySeconds` is refused by FIFO queues.
//!
//! IAM actions per method:
//!
//! | method | actions |
//! |---|---|
//! | `SqsStepQueue::send_step` | `sqs:SendMessage` (step queue) |
//! | `SqsActionQueue::send_action` | `sqs:SendMessage` (action queue) |
//! | `SqsStepQueue::send_steps` | `sqs:SendMessage` (step queue; `SendMessageBatch` is authorised by it) |
//! | `SqsCrmCommandSink::send` | `sqs:SendMessage` (CRM command queue) |
//! | `SqsEventQueue::send_event` | `sqs:SendMessage` (events queue) |

use super::request_counter::RequestCounter;
use super::sdk::{describe, is_transient, sqs_client};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use crmflow_core::event::Event;
use crmflow_core::messages::{ActionMessage, StepMessage};
use crmflow_core::ports::{
    ActionQueue, CrmCommandSink, EffectError, EventQueue, OutboundCrmCommand, QueueError, StepQueue,
};

/// SQS's largest `DelaySeconds` (15 minutes).
pub const MAX_DELAY_SECONDS: u32 = 900;
/// `SendMessageBatch`'s limit.
pub const SEND_BATCH_MAX: usize = 10;

pub(crate) fn queue_error(operation: &str, err: impl std::fmt::Display) -> QueueError {
    QueueError(format!("{operation}: {err}"))
}

fn to_json<T: serde::Serialize>(message: &T) -> Result<String, QueueError> {
    serde_json::to_string(message).map_err(|e| QueueError(format!("serializing a message: {e}")))
}

/// The step queue: inputs for evaluate.
#[derive(Debug, Clone)]
pub struct SqsStepQueue {
    client: Client,
    queue_url: String,
}

impl SqsStepQueue {
    pub fn new(sdk: &SdkConfig, counter: Option<&RequestCounter>, queue_url: impl Into<String>) -> Self {
        Self::from_client(sqs_client(sdk, counter), queue_url)
    }

    pub fn from_client(client: Client, queue_url: impl Into<String>) -> Self {
        SqsStepQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Sends step messages with their delays, ten per request. Returns the indexes of the
    /// messages that were not sent (the others were).
    pub async fn send_steps(&self, messages: &[(StepMessage, u32)]) -> Result<Vec<usize>, QueueError> {
        let mut failed = Vec::new();
        for (chunk_index, chunk) in messages.chunks(SEND_BATCH_MAX).enumerate() {
            let offset = chunk_index * SEND_BATCH_MAX;
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (message, delay))| {
                    SendMessageBatchRequestEntry::builder()
                        .id((offset + i).to_string())
                        .message_body(to_json(message)?)
                        .delay_seconds(clamp_delay(*delay))
                        .build()
                        .map_err(|e| queue_error("building SendMessageBatch", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| queue_error("SendMessageBatch", describe(&e)))?;
            for entry in out.failed() {
                tracing::warn!(id = entry.id(), code = entry.code(), message = ?entry.message(), "step message not sent");
                failed.extend(entry.id().parse::<usize>().ok());
            }
        }
        Ok(failed)
    }
}

fn clamp_delay(delay_seconds: u32) -> i32 {
    // At most 900, so the cast cannot truncate.
    delay_seconds.min(MAX_DELAY_SECONDS) as i32
}

#[async_trait]
impl StepQueue for SqsStepQueue {
    async fn send_step(&self, message: &StepMessage, delay_seconds: u32) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(to_json(message)?)
            .delay_seconds(clamp_delay(delay_seconds))
            .send()
            .await
            .map_err(|e| queue_error("SendMessage", describe(&e)))?;
        Ok(())
    }
}

/// The events queue intake reads: an event is sent in crmflow's native envelope (the JSON of
/// [`Event`], which intake parses back to the same event), with its tenant as the message
/// attribute `tenant`.
#[derive(Debug, Clone)]
pub struct SqsEventQueue {
    client: Client,
    queue_url: String,
}

impl SqsEventQueue {
    pub fn new(sdk: &SdkConfig, counter: Option<&RequestCounter>, queue_url: impl Into<String>) -> Self {
        Self::from_client(sqs_client(sdk, counter), queue_url)
    }

    pub fn from_client(client: Client, queue_url: impl Into<String>) -> Self {
        SqsEventQueue {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl EventQueue for SqsEventQueue {
    async fn send_event(&self, event: &Event) -> Result<(), QueueError> {
        let tenant = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(&event.tenant)
            .build()
            .map_err(|e| queue_error("building the tenant attribute", e))?;
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(to_json(event)?);
        // SQS refuses empty attribute values.
        if !event.tenant.is_empty() {
            request = request.message_attributes("tenant", tenant);
        }
        request
            .send()
            .await
            .map_err(|e| queue_error("SendMessage to the events queue", describe(&e)))?;
        Ok(())
    }
}

/// The action queue: work for execute.
#[derive(Debug, Clone)]
pub struct SqsActionQueue {
    client: Client,
    queue_url: String,
}

impl SqsActionQueue {
    pub fn new(sdk: &SdkConfig, counter: Option<&RequestCounter>, queue_url: impl Into<String>) -> Self {
        SqsActionQueue {
            client: sqs_client(sdk, counter),
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl ActionQueue for SqsActionQueue {
    async fn send_action(&self, message: &ActionMessage) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(to_json(message)?)
            .send()
            .await
            .map_err(|e| queue_error("SendMessage", describe(&e)))?;
        Ok(())
    }
}

/// Publishes outbound CRM commands: the JSON of [`OutboundCrmCommand`], with the message
/// attributes `idempotency_key`, `command` and `tenant` so consumers can dedupe and filter
/// without parsing the body.
#[derive(Debug, Clone)]
pub struct SqsCrmCommandSink {
    client: Client,
    queue_url: String,
}

impl SqsCrmCommandSink {
    pub fn new(sdk: &SdkConfig, counter: Option<&RequestCounter>, queue_url: impl Into<String>) -> Self {
        Self::from_client(sqs_client(sdk, counter), queue_url)
    }

    pub fn from_client(client: Client, queue_url: impl Into<String>) -> Self {
        SqsCrmCommandSink {
            client,
            queue_url: queue_url.into(),
        }
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, EffectError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| EffectError::permanent(format!("building a message attribute: {e}")))
}

#[async_trait]
impl CrmCommandSink for SqsCrmCommandSink {
    async fn send(&self, command: &OutboundCrmCommand) -> Result<(), EffectError> {
        let body = serde_json::to_string(command)
            .map_err(|e| EffectError::permanent(format!("serializing a CRM command: {e}")))?;
        let mut request = self.client.send_message().queue_url(&self.queue_url).message_body(body);
        // SQS refuses empty attribute values.
        for (name, value) in [
            ("idempotency_key", command.idempotency_key.as_str()),
            ("command", command.command.command.as_str()),
            ("tenant", command.tenant.as_str()),
        ] {
            if !value.is_empty() {
                request = request.message_attributes(name, string_attribute(value)?);
            }
        }
        request.send().await.map_err(|e| {
            let message = format!("SendMessage to the CRM command queue: {}", describe(&e));
            if is_transient(&e) {
                EffectError::transient(message)
            } else {
                EffectError::permanent(message)
            }
        })?;
        Ok(())
    }
}
