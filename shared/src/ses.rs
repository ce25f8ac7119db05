//! SES v2 email: [`SesEmailSender`] sends **simple** content (subject, HTML and text parts; never
//! SES templates: templates are rendered by the engine) and returns the SES MessageId.
//!
//! Every email carries the effect's idempotency key twice: as the header
//! `X-Crmflow-Idempotency-Key` (for whoever reads the message) and as the email tag
//! `idempotency_key` (in SES event publishing: bounces, complaints, deliveries), sanitised to the
//! characters tags allow.
//!
//! IAM actions per method:
//!
//! | method | actions |
//! |---|---|
//! | `SesEmailSender::send` | `ses:SendEmail` (on the sender identity; v2 uses the `ses:` prefix) |

use super::request_counter::RequestCounter;
use super::sdk::{describe, error_code, is_transient, sesv2_client};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageHeader, MessageTag};
use crmflow_core::command::EmailMessage;
use crmflow_core::ports::{EffectError, EmailSender};

/// The header holding the idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "X-Crmflow-Idempotency-Key";
/// The email tag holding the (sanitised) idempotency key.
pub const IDEMPOTENCY_TAG: &str = "idempotency_key";

/// Sends email through SES v2. The client does not retry by itself (see
/// [`super::sdk::sesv2_client`]): a retried send could deliver twice.
#[derive(Debug, Clone)]
pub struct SesEmailSender {
    client: Client,
    default_from: String,
}

impl SesEmailSender {
    /// `default_from` is used when a message names no sender; it must be a verified identity.
    pub fn new(sdk: &SdkConfig, counter: Option<&RequestCounter>, default_from: impl Into<String>) -> Self {
        Self::from_client(sesv2_client(sdk, counter), default_from)
    }

    pub fn from_client(client: Client, default_from: impl Into<String>) -> Self {
        SesEmailSender {
            client,
            default_from: default_from.into(),
        }
    }
}

/// An email tag value: ASCII letters, digits, `_` and `-` only, at most 256 characters.
pub fn tag_value(key: &str) -> String {
    let mut value: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect();
    if value.is_empty() {
        value.push('_');
    }
    value
}

/// A header value: printable ASCII only, at most 900 characters.
fn header_value(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' })
        .take(900)
        .collect()
}

fn utf8(data: &str) -> Result<Content, EffectError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| EffectError::permanent(format!("building email content: {e}")))
}

/// Error codes that will fail again the same way: a bad or unverified address, a rejected
/// message, a suspended or paused account.
const PERMANENT_CODES: &[&str] = &[
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "BadRequestException",
    "NotFoundException",
    "AccountSuspendedException",
    "SendingPausedException",
];

#[async_trait]
impl EmailSender for SesEmailSender {
    async fn send(&self, email: &EmailMessage, idempotency_key: &str) -> Result<String, EffectError> {
        // SES needs a body: a subject-only email gets an empty text part.
        let body = Body::builder()
            .set_html(email.html.as_deref().map(utf8).transpose()?)
            .set_text(match (&email.html, &email.text) {
                (None, None) => Some(utf8("")?),
                (_, text) => text.as_deref().map(utf8).transpose()?,
            })
            .build();
        let header = MessageHeader::builder()
            .name(IDEMPOTENCY_HEADER)
            .value(header_value(idempotency_key))
            .build()
            .map_err(|e| EffectError::permanent(format!("building the idempotency header: {e}")))?;
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(body)
            .headers(header)
            .build();
        let tag = MessageTag::builder()
            .name(IDEMPOTENCY_TAG)
            .value(tag_value(idempotency_key))
            .build()
            .map_err(|e| EffectError::permanent(format!("building the idempotency tag: {e}")))?;
        let out = self
            .client
            .send_email()
            .from_email_address(email.from.as_deref().unwrap_or(&self.default_from))
            .destination(Destination::builder().to_addresses(&email.to).build())
            .set_reply_to_addresses(email.reply_to.clone().map(|r| vec![r]))
            .content(EmailContent::builder().simple(message).build())
            .email_tags(tag)
            .send()
            .await
            .map_err(|e| {
                let message = format!("SES SendEmail to {}: {}", email.to, describe(&e));
                let permanent = error_code(&e).is_some_and(|c| PERMANENT_CODES.contains(&c));
                if !permanent && is_transient(&e) {
                    EffectError::transient(message)
                } else {
                    EffectError::permanent(message)
                }
            })?;
        // Accepted: the email is on its way even in the (never seen) case of a missing id.
        Ok(out.message_id.unwrap_or_default())
    }
}
