//! CloudEvents 1.0, structured JSON mode (see the module docs of
//! [`crate::event`]).

use serde_json::{Map, Value};

use super::{
    Event, EventError, derived_subject, err, event_time, event_type, fill_contact_id, kind, optional_str, required_str,
    split_payload, subject_from_str, tenant_of,
};

pub(super) fn parse(obj: &Map<String, Value>) -> Result<Event, EventError> {
    match obj.get("specversion") {
        Some(Value::String(v)) if v == "1.0" => {}
        Some(Value::String(v)) => {
            return Err(err(
                "specversion",
                format!("unsupported CloudEvents version \"{v}\" (crmflow accepts \"1.0\")"),
            ));
        }
        Some(other) => {
            return Err(err(
                "specversion",
                format!("expected the string \"1.0\", got {}", kind(other)),
            ));
        }
        None => return Err(err("specversion", "missing")),
    }
    let id = required_str(obj, "id", "id")?;
    required_str(obj, "source", "source")?;
    let event_type = event_type(obj, "type", "type")?;
    let time = event_time(
        obj,
        "time",
        "time",
        "missing (optional in CloudEvents, but crmflow requires it)",
    )?;
    if obj.contains_key("data_base64") {
        return Err(err(
            "data_base64",
            "binary event data is not supported; send a JSON object in \"data\"",
        ));
    }
    if let Some(ct) = optional_str(obj, "datacontenttype", "datacontenttype")? {
        let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !(media == "application/json" || media.ends_with("+json") || media == "text/json") {
            return Err(err(
                "datacontenttype",
                format!("unsupported content type \"{ct}\": crmflow needs JSON data"),
            ));
        }
    }
    let tenant = tenant_of(obj, "tenant", "tenant")?;
    let contact_id = optional_str(obj, "contactid", "contactid")?;
    let data = match obj.get("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(err("data", format!("expected a JSON object, got {}", kind(other))));
        }
    };
    let payload = split_payload(&data, "data", &[])?;
    let mut subject = match optional_str(obj, "subject", "subject")? {
        Some(s) => subject_from_str(&s, "subject")?,
        None => {
            let id_path = if data.get("record").is_some_and(Value::is_object) {
                "data.record"
            } else {
                "data"
            };
            derived_subject(&event_type, &payload.record, "subject", id_path)?
        }
    };
    subject.contact_id = contact_id;
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
