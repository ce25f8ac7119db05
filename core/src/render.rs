//! Turning an action of a definition into a concrete [`Effect`]: templates are rendered against
//! the run's scope (the same data conditions see).

use crate::command::{CrmCommand, Effect, EmailMessage, HttpRequest};
use crate::definition::Action;
use crate::definition::action::{SendEmail, Webhook};
use crate::event::Subject;
use crate::run::SharedMap;
use crate::template::{ScopeParts, Template, TemplateError};
use serde_json::{Map, Value, json};

/// A parameter of an action that did not render. The message names it (`params.subject: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A template parameter (`subject`, `url`, `headers.X-Id`) failed to render.
    #[error("params.{param}: {source}")]
    Param { param: String, source: TemplateError },
    /// A string value of a `fields` map (read as a template when rendered) failed to parse or
    /// to render.
    #[error("params.fields.{field}: {source}")]
    Field { field: String, source: TemplateError },
}

fn param_error(param: &str) -> impl FnOnce(TemplateError) -> RenderError {
    move |source| RenderError::Param {
        param: param.to_string(),
        source,
    }
}

/// Renders an action. Errors name the parameter (`params.subject: ...`).
pub fn render_action(action: &Action, scope: &Value, subject: &Subject) -> Result<Effect, RenderError> {
    render_action_in(action, scope, subject)
}

/// [`render_action`] against a scope given by parts (a run's data, borrowed).
pub fn render_action_in(action: &Action, scope: &dyn ScopeParts, subject: &Subject) -> Result<Effect, RenderError> {
    let r = Renderer { scope, subject };
    Ok(match action {
        Action::SendEmail(p) => r.email(p)?,
        Action::SendSms(p) => r.crm(
            "send_sms",
            json!({ "to": r.recipient(&p.to, "phone")?, "message": r.text("message", &p.message)? }),
        ),
        Action::UpdateContact(p) => r.crm("update_contact", json!({ "fields": render_fields(&p.fields, scope)? })),
        Action::AddTag(p) => r.crm("add_tag", json!({ "tag": p.tag })),
        Action::RemoveTag(p) => r.crm("remove_tag", json!({ "tag": p.tag })),
        Action::AddToSegment(p) => r.crm("add_to_segment", json!({ "segment": p.segment })),
        Action::RemoveFromSegment(p) => r.crm("remove_from_segment", json!({ "segment": p.segment })),
        Action::Assign(p) => r.crm("assign", json!({ "user_id": p.user_id, "queue_id": p.queue_id })),
        Action::CreateTask(p) => r.crm(
            "create_task",
            json!({
                "title": r.text("title", &p.title)?,
                "description": r.opt("description", &p.description)?,
                "assignee": p.assignee,
                "due_in_seconds": p.due_in.as_ref().map(|d| d.approx_seconds()),
            }),
        ),
        Action::CreateTicket(p) => r.crm(
            "create_ticket",
            json!({
                "subject": r.text("subject", &p.subject)?,
                "description": r.opt("description", &p.description)?,
                "priority": p.priority,
                "queue_id": p.queue_id,
            }),
        ),
        Action::CreateLead(p) => r.crm("create_lead", json!({ "fields": render_fields(&p.fields, scope)? })),
        Action::UpdateLeadStatus(p) => r.crm("update_lead_status", json!({ "status": p.status })),
        Action::Notify(p) => Effect::Notify {
            channel: p.channel.clone(),
            message: r.text("message", &p.message)?,
            url: r.opt("url", &p.url)?,
        },
        Action::Webhook(p) => r.webhook(p)?,
        Action::Enroll(p) => Effect::Enroll {
            automation_id: p.automation_id.clone(),
        },
        Action::CancelAutomations(p) => Effect::CancelAutomations {
            automation_ids: p.automation_ids.clone(),
        },
    })
}

/// Whether rendering `action` may look up the scope's top-level value `root` (`record`,
/// `trigger`, ...); a scope without the roots an action does not read renders it the same.
/// Its templates ([`Action::templates`]) say, with two additions: an email without `to` reads
/// `contact.email`, and CRM field maps read whatever their template strings do. Conservative:
/// `true` for send_sms, create_task and webhook, whose rendering reads more than their templates.
pub fn action_reads(action: &Action, root: &str) -> bool {
    match action {
        Action::SendEmail(p) if p.to.is_none() && root == "contact" => true,
        Action::UpdateContact(p) => fields_read(&p.fields, root),
        Action::CreateLead(p) => fields_read(&p.fields, root),
        Action::SendSms(_) | Action::CreateTask(_) | Action::Webhook(_) => true,
        _ => action.any_template(|t| t.reads(root)),
    }
}

/// Whether [`render_fields`] may look `root` up: only strings with template syntax do (others
/// render as themselves).
fn fields_read(fields: &Map<String, Value>, _root: &str) -> bool {
    fields.values().any(|v| {
        v.as_str()
            .is_some_and(|s| s.contains("{{") || s.contains("{%") || s.contains("{#"))
    })
}

/// Renders the parameters of one action against the run's scope.
struct Renderer<'a> {
    scope: &'a dyn ScopeParts,
    subject: &'a Subject,
}

impl Renderer<'_> {
    fn text(&self, name: &str, t: &Template) -> Result<String, RenderError> {
        t.render_text_in(self.scope).map_err(param_error(name))
    }

    fn opt(&self, name: &str, t: &Option<Template>) -> Result<Option<String>, RenderError> {
        t.as_ref().map(|t| self.text(name, t)).transpose()
    }

    /// `to` when given, else the contact's field `default` (`email` or `phone`).
    fn recipient(&self, to: &Option<Template>, default: &str) -> Result<String, RenderError> {
        match to {
            Some(t) => self.text("to", t),
            None => Ok(self
                .scope
                .part("contact")
                .and_then(|contact| contact.get(default))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()),
        }
    }

    fn crm(&self, command: &str, params: Value) -> Effect {
        Effect::Crm(CrmCommand {
            command: command.to_string(),
            subject: self.subject.clone(),
            params,
        })
    }

    fn email(&self, p: &SendEmail) -> Result<Effect, RenderError> {
        let to = self.recipient(&p.to, "email")?;
        let html = match &p.html {
            Some(t) => Some(t.render_html_in(self.scope).map_err(param_error("html"))?),
            None => None,
        };
        Ok(Effect::Email(EmailMessage {
            to: to.trim().to_string(),
            from: p.from.clone(),
            reply_to: p.reply_to.clone(),
            subject: self.text("subject", &p.subject)?,
            html,
            text: self.opt("text", &p.text)?,
        }))
    }

    fn webhook(&self, p: &Webhook) -> Result<Effect, RenderError> {
        let mut headers = std::collections::BTreeMap::new();
        for (name, value) in &p.headers {
            headers.insert(name.clone(), self.text(&format!("headers.{name}"), value)?);
        }
        Ok(Effect::Webhook(HttpRequest {
            method: p.method.to_ascii_uppercase(),
            url: self.text("url", &p.url)?,
            headers,
            body: self.opt("body", &p.body)?,
        }))
    }
}

/// Renders the string values of a field map as templates; other values pass through.
fn render_fields(fields: &Map<String, Value>, scope: &dyn ScopeParts) -> Result<Map<String, Value>, RenderError> {
    let mut out = Map::new();
    for (name, value) in fields {
        let rendered = match value {
            Value::String(s) if renders_as_itself(s) => Value::String(s.clone()),
            Value::String(s) => {
                let field_error = |source: TemplateError| RenderError::Field {
                    field: name.clone(),
                    source,
                };
                let t = Template::parse(s).map_err(field_error)?;
                Value::String(t.render_text_in(scope).map_err(field_error)?)
            }
            other => other.clone(),
        };
        out.insert(name.clone(), rendered);
    }
    Ok(out)
}

/// True for a string without template syntax (`{{`, `{%`, `{#`) or a trailing line break (which
/// rendering drops): as a template it renders as itself, so it need not be compiled.
fn renders_as_itself(s: &str) -> bool {
    !(s.contains("{{") || s.contains("{%") || s.contains("{#") || s.ends_with(['\n', '\r']))
}

/// After a CRM command succeeded, reflect it in the run's snapshots so later conditions see it
/// (a tag just added is in `contact.tags`, an updated field in `contact.<field>`). A snapshot the
/// command leaves as it was is not written to, so it stays shared with the run's other copies.
pub fn apply_to_snapshot(effect: &Effect, contact: &mut SharedMap, record: &mut SharedMap) {
    let Effect::Crm(cmd) = effect else { return };
    // The list at `key` with `item` removed, then added at the end when `add` (a value that is
    // not a list counts as an empty one); set unless the list is that already.
    let list_edit = |contact: &mut SharedMap, key: &str, item: &Value, add: bool| {
        let mut items: Vec<Value> = match contact.get(key) {
            Some(Value::Array(items)) => items.iter().filter(|v| *v != item).cloned().collect(),
            _ => Vec::new(),
        };
        if add {
            items.push(item.clone());
        }
        let edited = Value::Array(items);
        contact.set(key, &edited);
    };
    match cmd.command.as_str() {
        "update_contact" => {
            if let Some(fields) = cmd.params.get("fields").and_then(Value::as_object) {
                for (k, v) in fields {
                    contact.set(k, v);
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
                record.set("status", status);
            }
        }
        "assign" => {
            for key in ["user_id", "queue_id"] {
                if let Some(v) = cmd.params.get(key).filter(|v| !v.is_null()) {
                    record.set(&format!("assigned_{key}"), v);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_without_template_syntax_render_as_themselves() {
        let scope = json!({"record": {"x": 1}});
        for s in [
            "A",
            "",
            "a\rb",
            "\r\nlead",
            "two\nlines",
            " padded ",
            "tab\t",
            "ünï ☃",
            "{ {",
            "}}",
            "%}",
            "#}",
            "{x}",
            "a\n\nb",
        ] {
            assert!(renders_as_itself(s), "{s:?}");
            let rendered = Template::parse(s)
                .expect("parses")
                .render_text(&scope)
                .expect("renders");
            assert_eq!(rendered, s, "{s:?}");
        }
        for s in [
            "{{ record.x }}",
            "{% if true %}y{% endif %}",
            "{# c #}",
            "line\n",
            "line\r",
            "line\r\n",
        ] {
            assert!(!renders_as_itself(s), "{s:?}");
        }
        assert_eq!(
            Template::parse("line\n")
                .expect("parses")
                .render_text(&scope)
                .expect("renders"),
            "line"
        );
    }

    /// `action_reads` names every root an action's templates look up: the scope without the
    /// other roots renders the same effect.
    #[test]
    fn a_scope_without_the_roots_an_action_does_not_read_renders_the_same() {
        let scope = json!({
            "trigger": {"type": "lead.created", "id": "e1"},
            "event": {"type": "lead.updated", "id": "e2"},
            "record": {"id": "R1", "score": 42},
            "previous": {},
            "contact": {"email": "a@example.com", "first_name": "Ada"},
            "steps": {},
            "run": {"id": "r1"},
            "now": "2024-06-15T12:00:00Z",
        });
        let actions = [
            json!({"type": "send_email", "params": {"subject": "Hi {{ contact.first_name }}", "text": "score {{ record.score }}"}}),
            json!({"type": "send_email", "params": {"to": "{{ contact.email }}", "subject": "{{ trigger.id }}", "html": "<p>{{ event.id }}</p>"}}),
            json!({"type": "notify", "params": {"channel": "ops", "message": "{{ record.score }} at {{ now }}"}}),
            json!({"type": "create_ticket", "params": {"subject": "check {{ record.id }}", "description": "run {{ run.id }}"}}),
            json!({"type": "add_tag", "params": {"tag": "t"}}),
            json!({"type": "assign", "params": {"queue_id": "q1"}}),
            json!({"type": "update_contact", "params": {"fields": {"variant": "A", "n": 1}}}),
            json!({"type": "update_contact", "params": {"fields": {"from": "{{ trigger.type }}"}}}),
        ];
        let subject = Subject {
            record_type: "lead".to_string(),
            id: "R1".to_string(),
            contact_id: None,
        };
        let roots = [
            "trigger", "event", "record", "previous", "contact", "steps", "run", "now",
        ];
        for raw in actions {
            let action: Action = serde_json::from_value(raw.clone()).expect("an action");
            let mut reduced = Map::new();
            for key in roots.into_iter().filter(|r| action_reads(&action, r)) {
                reduced.insert(key.to_string(), scope[key].clone());
            }
            let full = render_action(&action, &scope, &subject).expect("renders");
            let partial = render_action(&action, &Value::Object(reduced), &subject).expect("renders");
            assert_eq!(full, partial, "{raw}");
        }
    }
}
