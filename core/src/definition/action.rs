//! Action types: what a step does in the outside world.
//!
//! Wire shape: `{ "type": "send_email", "params": { ... } }` (the public flat API shape).
//! String parameters marked *template* are [minijinja](https://docs.rs/minijinja) templates that
//! see the same data as conditions (`contact`, `record`, `event`, `trigger`, `steps`, `run`, `now`).

use crate::template::Template;
use crate::time::DurationSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Every action type. `assign_to_queue` is accepted as `assign`, `send_notification` as `notify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "params", rename_all = "snake_case")]
pub enum Action {
    /// Email through the email port (SES v2 on AWS). `to` defaults to `{{ contact.email }}`.
    SendEmail(SendEmail),
    /// SMS, handed to the CRM as a command. `to` defaults to `{{ contact.phone }}`.
    SendSms(SendSms),
    /// Set contact fields. String values are templates (`"{{ now }}"`).
    UpdateContact(UpdateContact),
    AddTag(TagParams),
    RemoveTag(TagParams),
    AddToSegment(SegmentParams),
    RemoveFromSegment(SegmentParams),
    /// Assign the record to a user or a queue (exactly one of `user_id`, `queue_id`).
    #[serde(alias = "assign_to_queue")]
    Assign(AssignParams),
    CreateTask(CreateTask),
    CreateTicket(CreateTicket),
    CreateLead(CreateLead),
    UpdateLeadStatus(UpdateLeadStatus),
    /// An internal notification on a channel (Slack, Teams...), posted over HTTP to the URL
    /// configured for the channel, or to `url` when given.
    #[serde(alias = "send_notification")]
    Notify(Notify),
    /// An outbound HTTP call. Sent with an `Idempotency-Key` header that is stable across retries.
    Webhook(Webhook),
    /// Start another automation for this record.
    Enroll(EnrollParams),
    /// Cancel this record's active runs of other automations (all others when the list is empty).
    CancelAutomations(CancelAutomations),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendEmail {
    /// Recipient address (template). Default `{{ contact.email }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Template>,
    /// Sender address; default is the deployment's configured sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Subject line (template, plain text).
    pub subject: Template,
    /// HTML body (template, values are HTML-escaped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<Template>,
    /// Plain-text body (template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Template>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendSms {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Template>,
    pub message: Template,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    /// Field name → new value. String values are templates.
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagParams {
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentParams {
    pub segment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    pub title: Template,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Template>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Due this long after the task is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_in: Option<DurationSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    pub subject: Template,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Template>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLead {
    /// Field name → value. String values are templates.
    #[serde(default)]
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLeadStatus {
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Channel name, e.g. `slack`, `vip-support`.
    pub channel: String,
    pub message: Template,
    /// Explicit URL (template); otherwise the deployment's URL for `channel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Template>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// HTTP method, default POST.
    #[serde(default = "default_method")]
    pub method: String,
    pub url: Template,
    /// Header name → value (template).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, Template>,
    /// Request body (template). Sent as-is; set `Content-Type` in `headers` (default application/json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Template>,
}

fn default_method() -> String {
    "POST".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollParams {
    pub automation_id: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelAutomations {
    /// Automation ids to cancel; empty means every other automation.
    #[serde(default)]
    pub automation_ids: Vec<String>,
}

/// The name of an action's type, after `$prefix` (a string literal), as a `&'static str`.
macro_rules! action_type_name {
    ($action:expr, $prefix:literal) => {
        match $action {
            Action::SendEmail(_) => concat!($prefix, "send_email"),
            Action::SendSms(_) => concat!($prefix, "send_sms"),
            Action::UpdateContact(_) => concat!($prefix, "update_contact"),
            Action::AddTag(_) => concat!($prefix, "add_tag"),
            Action::RemoveTag(_) => concat!($prefix, "remove_tag"),
            Action::AddToSegment(_) => concat!($prefix, "add_to_segment"),
            Action::RemoveFromSegment(_) => concat!($prefix, "remove_from_segment"),
            Action::Assign(_) => concat!($prefix, "assign"),
            Action::CreateTask(_) => concat!($prefix, "create_task"),
            Action::CreateTicket(_) => concat!($prefix, "create_ticket"),
            Action::CreateLead(_) => concat!($prefix, "create_lead"),
            Action::UpdateLeadStatus(_) => concat!($prefix, "update_lead_status"),
            Action::Notify(_) => concat!($prefix, "notify"),
            Action::Webhook(_) => concat!($prefix, "webhook"),
            Action::Enroll(_) => concat!($prefix, "enroll"),
            Action::CancelAutomations(_) => concat!($prefix, "cancel_automations"),
        }
    };
}

impl Action {
    /// The canonical type name (`send_email`, `assign`, ...).
    pub fn type_name(&self) -> &'static str {
        action_type_name!(self, "")
    }

    /// The type of its step in history: `action:` and [`Action::type_name`].
    pub fn step_type(&self) -> &'static str {
        action_type_name!(self, "action:")
    }

    /// Whether any template this action holds (those of [`Action::templates`]) satisfies
    /// `pred`; without building their list.
    pub fn any_template(&self, pred: impl Fn(&Template) -> bool) -> bool {
        let any = |items: &[Option<&Template>]| items.iter().flatten().any(|t| pred(t));
        match self {
            Action::SendEmail(p) => any(&[p.to.as_ref(), Some(&p.subject), p.html.as_ref(), p.text.as_ref()]),
            Action::SendSms(p) => any(&[p.to.as_ref(), Some(&p.message)]),
            Action::CreateTask(p) => any(&[Some(&p.title), p.description.as_ref()]),
            Action::CreateTicket(p) => any(&[Some(&p.subject), p.description.as_ref()]),
            Action::Notify(p) => any(&[Some(&p.message), p.url.as_ref()]),
            Action::Webhook(p) => any(&[Some(&p.url), p.body.as_ref()]) || p.headers.values().any(&pred),
            _ => self.templates().iter().any(|(_, t)| pred(t)),
        }
    }

    /// Every template this action holds, with its parameter name (for validation).
    pub fn templates(&self) -> Vec<(String, &Template)> {
        fn named<'a>(items: &[(&str, Option<&'a Template>)]) -> Vec<(String, &'a Template)> {
            items
                .iter()
                .filter_map(|(n, t)| t.map(|t| (n.to_string(), t)))
                .collect()
        }
        match self {
            Action::SendEmail(p) => named(&[
                ("to", p.to.as_ref()),
                ("subject", Some(&p.subject)),
                ("html", p.html.as_ref()),
                ("text", p.text.as_ref()),
            ]),
            Action::SendSms(p) => named(&[("to", p.to.as_ref()), ("message", Some(&p.message))]),
            Action::CreateTask(p) => named(&[("title", Some(&p.title)), ("description", p.description.as_ref())]),
            Action::CreateTicket(p) => named(&[("subject", Some(&p.subject)), ("description", p.description.as_ref())]),
            Action::Notify(p) => named(&[("message", Some(&p.message)), ("url", p.url.as_ref())]),
            Action::Webhook(p) => {
                let mut out = named(&[("url", Some(&p.url)), ("body", p.body.as_ref())]);
                out.extend(p.headers.iter().map(|(name, value)| (format!("headers.{name}"), value)));
                out
            }
            Action::UpdateContact(_)
            | Action::CreateLead(_)
            | Action::AddTag(_)
            | Action::RemoveTag(_)
            | Action::AddToSegment(_)
            | Action::RemoveFromSegment(_)
            | Action::Assign(_)
            | Action::UpdateLeadStatus(_)
            | Action::Enroll(_)
            | Action::CancelAutomations(_) => Vec::new(),
        }
    }
}
