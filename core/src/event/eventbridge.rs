//! EventBridge events as delivered to a target (see the module docs of
//! [`crate::event`]).

use serde_json::{Map, Value};

use super::{
    Event, EventError, derived_subject, err, event_time, event_type, fill_contact_id, kind, required_str,
    split_payload, subject_from_value, tenant_of,
};

pub(super) fn parse(obj: &Map<String, Value>) -> Result<Event, EventError> {
    let id = required_str(obj, "id", "id")?;
    let event_type = event_type(obj, "detail-type", "detail-type")?;
    let time = event_time(obj, "time", "time", "missing")?;
    let detail = match obj.get("detail") {
        None | Some(Value::Null) => return Err(err("detail", "missing")),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(err("detail", format!("expected a JSON object, got {}", kind(other))));
        }
    };
    let tenant = tenant_of(detail, "tenant", "detail.tenant")?;
    let payload = split_payload(detail, "detail", &["subject", "tenant"])?;
    let mut subject = match detail.get("subject") {
        None | Some(Value::Null) => {
            let id_path = if detail.get("record").is_some_and(Value::is_object) {
                "detail.record"
            } else {
                "detail"
            };
            derived_subject(&event_type, &payload.record, "detail.subject", id_path)?
        }
        Some(v) => subject_from_value(v, "detail.subject")?,
    };
    fill_contact_id(&mut subject, &payload.record, payload.contact.as_ref());
    Ok(Event {
        id,
        event_type,
        tenant,
        time,
        subject,
        data: payload.record,
        previous: payload.previous,
        contact: payload.contact,
    })
}
