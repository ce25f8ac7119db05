//! Performing an action's effect in the outside world: email, CRM commands, notifications and
//! webhooks, with retries of transient errors (throttling, 5xx) and exponential backoff.
//!
//! Execute performs the actions of the action queue with these; evaluate performs email and
//! CRM actions in place with them (see [`super::Evaluate::email`]).

use super::EngineConfig;
use crate::command::{ActionOutcome, Effect, HttpRequest, PerformAction, UncertainPolicy};
use crate::event::Subject;
use crate::ports::{CrmCommandSink, EffectError, EmailSender, ErrorKind, HttpClient, OutboundCrmCommand};
use serde_json::json;
use std::future::Future;
use std::time::Duration;

/// Retries of transient effect errors within one attempt.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total tries per delivery (1 = no retry).
    pub max_tries: u32,
    /// First backoff, milliseconds; doubles each try.
    pub base_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_tries: 3,
            base_delay_ms: 200,
        }
    }
}

/// Tries `perform` until it succeeds, fails for good or runs out of tries (`policy`). Returns
/// the outcome and the number of tries.
pub(super) async fn with_retries<F, Fut>(
    policy: &RetryPolicy,
    action: &PerformAction,
    mut perform: F,
) -> (ActionOutcome, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ActionOutcome, EffectError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match perform().await {
            Ok(outcome) => return (outcome, tries),
            Err(e) if e.kind == ErrorKind::Transient && tries < policy.max_tries => {
                let delay = policy.base_delay_ms.saturating_mul(1 << (tries - 1).min(10));
                tracing::info!(run_id = %action.run_id, error = %e.message, tries, "transient error; retrying");
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            Err(e) => {
                let transient = e.kind == ErrorKind::Transient;
                let error = if transient {
                    format!("{} (gave up after {tries} tries)", e.message)
                } else {
                    e.message
                };
                // A transient error (a timeout, a 5xx) leaves it open whether the effect
                // happened; for effects not repeated when in doubt, a retry must know.
                let uncertain = transient && action.effect.uncertain_policy() == UncertainPolicy::MarkUncertain;
                return (ActionOutcome::Failed { error, uncertain }, tries);
            }
        }
    }
}

/// The outcome of an action an earlier attempt may have performed and that is not repeated
/// when in doubt (email: [`UncertainPolicy::MarkUncertain`]).
pub(super) fn not_resent(action: &PerformAction) -> ActionOutcome {
    ActionOutcome::Uncertain {
        detail: format!(
            "an earlier attempt at this {} stopped mid-way and may have sent it; not resent to avoid a duplicate",
            action.effect.kind()
        ),
    }
}

/// The ports an effect is performed through.
pub(super) struct Effects<'a> {
    pub email: &'a dyn EmailSender,
    pub crm: &'a dyn CrmCommandSink,
    /// None where no HTTP client is wired (evaluate): webhooks and notifications with a URL
    /// are not performed there.
    pub http: Option<&'a dyn HttpClient>,
    pub config: &'a EngineConfig,
}

impl Effects<'_> {
    /// The URL a notification goes to (its own, or its channel's); none: through the CRM.
    pub fn notify_url(config: &EngineConfig, effect: &Effect) -> Option<String> {
        match effect {
            Effect::Notify { channel, url, .. } => url.clone().or_else(|| config.notify_urls.get(channel).cloned()),
            _ => None,
        }
    }

    /// Performs the effect once. `subject` is the run's record, for a notification through the
    /// CRM (the run id stands in without it). Enroll and cancel are execute's own: a permanent
    /// error here.
    pub async fn perform(
        &self,
        action: &PerformAction,
        subject: Option<&Subject>,
    ) -> Result<ActionOutcome, EffectError> {
        if self.config.dry_run && action.effect.is_external() {
            return Ok(ActionOutcome::Skipped {
                reason: "dry run: side effects are not performed".to_string(),
            });
        }
        let key = &action.idempotency_key;
        match &action.effect {
            Effect::Email(email) => {
                if email.to.is_empty() {
                    return Ok(ActionOutcome::Skipped {
                        reason: "no recipient: the contact has no email address".to_string(),
                    });
                }
                let id = self.email.send(email, key).await?;
                Ok(ActionOutcome::Succeeded {
                    output: json!({ "message_id": id, "to": email.to }),
                })
            }
            Effect::Crm(command) => {
                self.crm.send(&outbound(action, command.clone())).await?;
                Ok(ActionOutcome::Succeeded {
                    output: json!({ "command": command.command }),
                })
            }
            Effect::Notify {
                channel, message: text, ..
            } => match Self::notify_url(self.config, &action.effect) {
                Some(url) => {
                    let request = HttpRequest {
                        method: "POST".to_string(),
                        url,
                        headers: [("Content-Type".to_string(), "application/json".to_string())].into(),
                        body: Some(json!({ "channel": channel, "text": text }).to_string()),
                    };
                    self.call_http(&request, key).await
                }
                None => {
                    // No URL for the channel: the CRM delivers its own internal notifications.
                    let subject = subject.cloned().unwrap_or_else(|| Subject {
                        record_type: "run".to_string(),
                        id: action.run_id.clone(),
                        contact_id: None,
                    });
                    let command = crate::command::CrmCommand {
                        command: "notify".to_string(),
                        subject,
                        params: json!({ "channel": channel, "message": text }),
                    };
                    self.crm.send(&outbound(action, command)).await?;
                    Ok(ActionOutcome::Succeeded {
                        output: json!({ "channel": channel, "via": "crm" }),
                    })
                }
            },
            Effect::Webhook(request) => self.call_http(request, key).await,
            Effect::Enroll { .. } | Effect::CancelAutomations { .. } => Err(EffectError::permanent(format!(
                "{} is performed by the execute function",
                action.effect.kind()
            ))),
        }
    }

    async fn call_http(&self, request: &HttpRequest, key: &str) -> Result<ActionOutcome, EffectError> {
        let Some(http) = self.http else {
            return Err(EffectError::permanent(format!(
                "no HTTP client here for {} {}",
                request.method, request.url
            )));
        };
        let response = http.send(request, key).await?;
        match response.status {
            200..=299 => Ok(ActionOutcome::Succeeded {
                output: json!({ "status": response.status }),
            }),
            408 | 425 | 429 | 500..=599 => Err(EffectError::transient(format!(
                "{} {} answered {}",
                request.method, request.url, response.status
            ))),
            status => Err(EffectError::permanent(format!(
                "{} {} answered {status}: {}",
                request.method,
                request.url,
                response.body.chars().take(200).collect::<String>()
            ))),
        }
    }
}

/// The outbound form of the action's CRM command (with its idempotency key and origin).
fn outbound(action: &PerformAction, command: crate::command::CrmCommand) -> OutboundCrmCommand {
    OutboundCrmCommand {
        idempotency_key: action.idempotency_key.clone(),
        tenant: action.tenant.clone(),
        run_id: action.run_id.clone(),
        automation_id: action.automation_id.clone(),
        step_id: action.step_id.clone(),
        command,
    }
}
