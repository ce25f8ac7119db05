//! Turning an action of a definition into a concrete [`Effect`]: templates are rendered against
//! the run's scope (the same data conditions see).

use crate::command::{CrmCommand, Effect, EmailMessage, HttpRequest};
use crate::definition::Action;
use crate::event::Subject;
use crate::template::Template;
use serde_json::{Map, Value, json};

/// Renders an action. Errors name the parameter (`params.subject: ...`).
pub fn render_action(action: &Action, scope: &Value, subject: &Subject) -> Result<Effect, String> {
    let text = |name: &str, t: &Template| t.render_text(scope).map_err(|e| format!("params.{name}: {e}"));
    let opt = |name: &str, t: &Option<Template>| t.as_ref().map(|t| text(name, t)).transpose();
    let crm = |command: &str, params: Value| {
        Effect::Crm(CrmCommand {
            command: command.to_string(),
            subject: subject.clone(),
            params,
        })
    };
    Ok(match action {
        Action::SendEmail(p) => {
            let to = match &p.to {
                Some(t) => text("to", t)?,
                None => scope
                    .pointer("/contact/email")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            };
            let html = match &p.html {
                Some(t) => Some(t.render_html(scope).map_err(|e| format!("params.html: {e}"))?),
                None => None,
            };
            Effect::Email(EmailMessage {
                to: to.trim().to_string(),
                from: p.from.clone(),
                reply_to: p.reply_to.clone(),
                subject: text("subject", &p.subject)?,
                html,
                text: opt("text", &p.text)?,
            })
        }
        Action::SendSms(p) => {
            let to = match &p.to {
                Some(t) => text("to", t)?,
                None => scope
                    .pointer("/contact/phone")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            };
            crm("send_sms", json!({ "to": to, "message": text("message", &p.message)? }))
        }
        Action::UpdateContact(p) => crm("update_contact", json!({ "fields": render_fields(&p.fields, scope)? })),
        Action::AddTag(p) => crm("add_tag", json!({ "tag": p.tag })),
        Action::RemoveTag(p) => crm("remove_tag", json!({ "tag": p.tag })),
        Action::AddToSegment(p) => crm("add_to_segment", json!({ "segment": p.segment })),
        Action::RemoveFromSegment(p) => crm("remove_from_segment", json!({ "segment": p.segment })),
        Action::Assign(p) => crm("assign", json!({ "user_id": p.user_id, "queue_id": p.queue_id })),
        Action::CreateTask(p) => crm(
            "create_task",
            json!({
                "title": text("title", &p.title)?,
                "description": opt("description", &p.description)?,
                "assignee": p.assignee,
                "due_in_seconds": p.due_in.as_ref().map(|d| d.approx_seconds()),
            }),
        ),
        Action::CreateTicket(p) => crm(
            "create_ticket",
            json!({
                "subject": text("subject", &p.subject)?,
                "description": opt("description", &p.description)?,
                "priority": p.priority,
                "queue_id": p.queue_id,
            }),
        ),
        Action::CreateLead(p) => crm("create_lead", json!({ "fields": render_fields(&p.fields, scope)? })),
        Action::UpdateLeadStatus(p) => crm("update_lead_status", json!({ "status": p.status })),
        Action::Notify(p) => Effect::Notify {
            channel: p.channel.clone(),
            message: text("message", &p.message)?,
            url: opt("url", &p.url)?,
        },
        Action::Webhook(p) => {
            let mut headers = std::collections::BTreeMap::new();
            for (name, value) in &p.headers {
                headers.insert(name.clone(), text(&format!("headers.{name}"), value)?);
            }
            Effect::Webhook(HttpRequest {
                method: p.method.to_ascii_uppercase(),
                url: text("url", &p.url)?,
                headers,
                body: opt("body", &p.body)?,
            })
        }
        Action::Enroll(p) => Effect::Enroll {
            automation_id: p.automation_id.clone(),
        },
        Action::CancelAutomations(p) => Effect::CancelAutomations {
            automation_ids: p.automation_ids.clone(),
        },
    })
}

/// Renders the string values of a field map as templates; other values pass through.
fn render_fields(fields: &Map<String, Value>, scope: &Value) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (name, value) in fields {
        let rendered = match value {
            Value::String(s) => {
                let t = Template::parse(s).map_err(|e| format!("params.fields.{name}: {e}"))?;
                Value::String(t.render_text(scope).map_err(|e| format!("params.fields.{name}: {e}"))?)
            }
            other => other.clone(),
        };
        out.insert(name.clone(), rendered);
    }
    Ok(out)
}

/// After a CRM command succeeded, reflect it in the run's snapshots so later conditions see it
/// (a tag just added is in `contact.tags`, an updated field in `contact.<field>`).
pub fn apply_to_snapshot(effect: &Effect, contact: &mut Map<String, Value>, record: &mut Map<String, Value>) {
    let Effect::Crm(cmd) = effect else { return };
    let list_edit = |contact: &mut Map<String, Value>, key: &str, item: &Value, add: bool| {
        let entry = contact
            .entry(key.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if !entry.is_array() {
            *entry = Value::Array(Vec::new());
        }
        if let Value::Array(items) = entry {
            items.retain(|v| v != item);
            if add {
                items.push(item.clone());
            }
        }
    };
    match cmd.command.as_str() {
        "update_contact" => {
            if let Some(fields) = cmd.params.get("fields").and_then(Value::as_object) {
                for (k, v) in fields {
                    contact.insert(k.clone(), v.clone());
                }
            }
        }
        "add_tag" | "remove_tag" => {
            if let Some(tag) = cmd.params.get("tag") {
                list_edit(contact, "tags", tag, cmd.command == "add_tag");
            }
        }
        "add_to_segment" | "remove_from_segment" => {
            if let Some(seg) = cmd.params.get("segment") {
                list_edit(contact, "segments", seg, cmd.command == "add_to_segment");
            }
        }
        "update_lead_status" if cmd.subject.record_type == "lead" => {
            if let Some(status) = cmd.params.get("status") {
                record.insert("status".to_string(), status.clone());
            }
        }
        "assign" => {
            for key in ["user_id", "queue_id"] {
                if let Some(v) = cmd.params.get(key).filter(|v| !v.is_null()) {
                    record.insert(format!("assigned_{key}"), v.clone());
                }
            }
        }
        _ => {}
    }
}
