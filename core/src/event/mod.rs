//! CRM events, normalised from three input formats.
//!
//! Every event that reaches crmflow — from a CRM webhook, an EventBridge bus
//! or a test file — is turned into one [`Event`]: an id, a type such as
//! `lead.created`, a tenant, a UTC time, the record it is about (the
//! [`Subject`]), the record's fields (`data`), and optionally the previous
//! values of changed fields and a contact snapshot.
//!
//! [`parse_event`] detects the format of one JSON object:
//!
//! | the object has | format |
//! | --- | --- |
//! | `specversion` | [CloudEvents 1.0](#cloudevents-10-structured-json) |
//! | `detail-type` (and no `specversion`) | [EventBridge](#eventbridge) |
//! | neither | [native envelope](#native-envelope) |
//!
//! [`parse_events_text`] reads a file of events: a JSON array, a single JSON
//! object, or JSON lines (one object per line, blank lines ignored).
//!
//! # Native envelope
//!
//! ```json
//! {
//!   "id": "evt-001",
//!   "type": "opportunity.stage_changed",
//!   "tenant": "acme",
//!   "time": "2026-03-08T09:00:00Z",
//!   "subject": {"type": "opportunity", "id": "O1", "contact_id": "C1"},
//!   "data": {"stage": "negotiation", "amount": 12000},
//!   "previous": {"stage": "proposal"},
//!   "contact": {"email": "ada@example.com", "tags": ["vip"], "timezone": "Europe/Berlin"}
//! }
//! ```
//!
//! | field | required | meaning |
//! | --- | --- | --- |
//! | `id` | yes | non-empty string, unique per tenant (used to drop duplicates) |
//! | `type` | yes | event type, letters, digits and `_ . : -` only: `lead.created`, `contact.tag_added`, any custom type |
//! | `tenant` | no | tenant id, default `"default"` |
//! | `time` | yes | RFC 3339 timestamp with an offset (`Z` or `+01:00`); stored as a UTC instant |
//! | `subject` | yes | the record: `{"type", "id", "contact_id"?}` (strings), or the shorthand string `"lead/L1"` |
//! | `data` | no | object: the record's fields (default `{}`) |
//! | `previous` | no | object: previous values of the fields that changed (updates) |
//! | `contact` | no | object: a snapshot of the related contact (email, tags, timezone, ...) |
//!
//! Any other key is an error (it is most likely a typo).
//!
//! # CloudEvents 1.0 (structured JSON)
//!
//! ```json
//! {
//!   "specversion": "1.0", "id": "evt-002", "source": "/crm/acme",
//!   "type": "lead.created", "time": "2026-03-08T09:00:00Z",
//!   "subject": "lead/L1", "tenant": "acme", "contactid": "C1",
//!   "datacontenttype": "application/json",
//!   "data": {"record": {"id": "L1", "score": 72}, "previous": {"score": 40}, "contact": {"email": "ada@example.com"}}
//! }
//! ```
//!
//! - `specversion` must be `"1.0"`; `id`, `source` and `type` are required.
//! - `time` is optional in CloudEvents but **required by crmflow** (runs and
//!   waits are ordered by it and there is no clock to fall back on).
//! - `subject` is `"<record type>/<record id>"`. Without it the record type
//!   is the part of `type` before the first `.` and the record id is the
//!   record's `id` field (a string or an integer).
//! - Extension attributes: `tenant` (default `"default"`) and `contactid`.
//! - `datacontenttype`, if present, must be a JSON type (`application/json`,
//!   `...+json`); `data_base64` (binary data) is rejected.
//!
//! # EventBridge
//!
//! An event as EventBridge delivers it to a target:
//!
//! ```json
//! {
//!   "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
//!   "detail-type": "lead.created", "source": "crm.acme", "account": "111122223333",
//!   "time": "2026-03-08T09:00:00Z", "region": "eu-central-1", "resources": [],
//!   "detail": {"tenant": "acme", "subject": {"type": "lead", "id": "L1"}, "record": {"score": 72}}
//! }
//! ```
//!
//! - The type is `detail-type`; `id` and `time` are required; the other
//!   envelope fields are ignored.
//! - `detail` (required, an object) carries `subject` (an object as in the
//!   native envelope, or `"lead/L1"`) and `tenant` (default `"default"`);
//!   without `subject`, it is derived as for CloudEvents.
//!
//! # Payload of CloudEvents `data` and EventBridge `detail`
//!
//! When the payload has a `record` key holding an object, it is the wrapped
//! form `{"record": {...}, "previous": {...}?, "contact": {...}?}` and no other
//! keys are allowed (besides `subject`/`tenant` in EventBridge). Otherwise
//! the payload itself is the record's fields.
//!
//! # Contact id
//!
//! Taken from `subject.contact_id` (native, EventBridge), the `contactid`
//! extension (CloudEvents), else the record's `contact_id` field (string or
//! integer), else the contact snapshot's `id`.
//!
//! # Errors
//!
//! An [`EventError`] names the field: `subject.id: missing`, `time: invalid
//! RFC 3339 timestamp "yesterday"`, `detail-type: missing`; the root of the
//! event is `$`. [`parse_events_text`] prefixes the position: `[3].type:
//! missing` (array index, from 0) or `line 4: ...` (JSON lines, from 1).

mod cloudevents;
mod eventbridge;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde_json::{Map, Value};

/// A normalised CRM event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Event {
    /// Unique per tenant; used to drop duplicate deliveries.
    pub id: String,
    /// e.g. `lead.created`, `opportunity.stage_changed`, any custom type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Tenant id, `"default"` when the input has none.
    pub tenant: String,
    /// When it happened: a UTC instant, serialized as RFC 3339 (`2026-03-08T09:00:00Z`).
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub time: Timestamp,
    /// The record the event is about.
    pub subject: Subject,
    /// The record's fields.
    #[serde(default)]
    pub data: Map<String, Value>,
    /// Previous values of changed fields (updates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Map<String, Value>>,
    /// Optional contact snapshot carried by the event (tags, email, timezone...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Map<String, Value>>,
}

/// The record an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Subject {
    /// Record type: `lead`, `contact`, `opportunity`, `ticket`, ...
    #[serde(rename = "type")]
    pub record_type: String,
    /// Record id.
    pub id: String,
    /// The related contact, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
}

impl Subject {
    /// `"<record type>/<id>"`, e.g. `"lead/L1"`.
    pub fn record_key(&self) -> String {
        let mut key = String::with_capacity(self.record_type.len() + 1 + self.id.len());
        key.push_str(&self.record_type);
        key.push('/');
        key.push_str(&self.id);
        key
    }

    /// `self.record_key() == other.record_key()`, without building the keys.
    pub fn same_record_key(&self, other: &Subject) -> bool {
        fn key(s: &Subject) -> impl Iterator<Item = u8> + '_ {
            s.record_type.bytes().chain(*b"/").chain(s.id.bytes())
        }
        self.record_type.len() + self.id.len() == other.record_type.len() + other.id.len() && key(self).eq(key(other))
    }

    /// `"contact/<contact_id>"` when the subject names a related contact
    /// (`contact_id`), e.g. `"contact/C1"`. `None` otherwise — also for a
    /// `contact` record without `contact_id`, whose key is [`Self::record_key`].
    pub fn contact_key(&self) -> Option<String> {
        self.contact_id.as_ref().map(|c| format!("contact/{c}"))
    }
}

impl Event {
    /// The JSON conditions and templates see under `event` / `trigger`:
    /// `{"id", "type", "tenant", "time" (RFC 3339 UTC string), "subject",
    /// "data", "previous" (null when absent)}`. The contact snapshot is not
    /// included (it is merged into `contact`).
    pub fn to_scope_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert("type".into(), Value::String(self.event_type.clone()));
        m.insert("tenant".into(), Value::String(self.tenant.clone()));
        m.insert("time".into(), Value::String(self.time.to_string()));
        let mut subject = Map::new();
        subject.insert("type".into(), Value::String(self.subject.record_type.clone()));
        subject.insert("id".into(), Value::String(self.subject.id.clone()));
        if let Some(c) = &self.subject.contact_id {
            subject.insert("contact_id".into(), Value::String(c.clone()));
        }
        m.insert("subject".into(), Value::Object(subject));
        m.insert("data".into(), Value::Object(self.data.clone()));
        m.insert(
            "previous".into(),
            self.previous.clone().map_or(Value::Null, Value::Object),
        );
        Value::Object(m)
    }

    /// Whether the event matches a trigger/wait pattern: `"*"` matches
    /// everything, a pattern ending in `*` matches types starting with the
    /// rest (`"contact.*"` matches `contact.created` and
    /// `contact.tag.added`, not `contact`), anything else must be equal
    /// (case-sensitive).
    pub fn type_matches(&self, pattern: &str) -> bool {
        let pattern = pattern.trim();
        if pattern == "*" {
            return true;
        }
        match pattern.strip_suffix('*') {
            Some(prefix) => self.event_type.len() > prefix.len() && self.event_type.starts_with(prefix),
            None => self.event_type == pattern,
        }
    }
}

/// The trigger patterns that can match an event type: the type, each prefix wildcard, and `*`.
/// (`a.b.*` matches only types longer than `a.b.`, never `a.b` itself: not a candidate.)
pub fn candidate_patterns(event_type: &str) -> Vec<String> {
    let mut out = vec![event_type.to_string(), "*".to_string()];
    let mut prefix = String::new();
    let parts: Vec<&str> = event_type.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        prefix.push_str(part);
        prefix.push('.');
        out.push(format!("{prefix}*"));
    }
    out
}

/// Why an event was rejected: `path` names the field (`subject.id`,
/// `[3].type`, `line 4`; `$` is the whole event).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct EventError {
    pub path: String,
    pub message: String,
}

/// The input format [`parse_event`] detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventFormat {
    /// CloudEvents 1.0, structured JSON mode (has `specversion`).
    CloudEvents,
    /// An EventBridge event (has `detail-type`).
    EventBridge,
    /// crmflow's own envelope.
    Native,
}

impl fmt::Display for EventFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventFormat::CloudEvents => "cloudevents",
            EventFormat::EventBridge => "eventbridge",
            EventFormat::Native => "native",
        })
    }
}

/// The tenant of events that name none.
pub const DEFAULT_TENANT: &str = "default";

/// The path of the whole event in [`EventError`].
pub const ROOT_PATH: &str = "$";

/// Detects the format of one event and normalises it. Errors name the
/// field, e.g. `subject.id: missing`.
pub fn parse_event(value: &Value) -> Result<(Event, EventFormat), EventError> {
    let obj = value
        .as_object()
        .ok_or_else(|| err(ROOT_PATH, format!("expected a JSON object, got {}", kind(value))))?;
    if obj.contains_key("specversion") {
        cloudevents::parse(obj).map(|e| (e, EventFormat::CloudEvents))
    } else if obj.contains_key("detail-type") {
        eventbridge::parse(obj).map(|e| (e, EventFormat::EventBridge))
    } else {
        parse_native(&mut obj.clone()).map(|e| (e, EventFormat::Native))
    }
}

/// [`parse_event`] of a value no longer needed: a native event's `data`, `previous` and
/// `contact` move into the event instead of being copied. The same result and errors.
pub fn parse_event_owned(value: Value) -> Result<(Event, EventFormat), EventError> {
    match value {
        Value::Object(mut obj) if !obj.contains_key("specversion") && !obj.contains_key("detail-type") => {
            parse_native(&mut obj).map(|e| (e, EventFormat::Native))
        }
        other => parse_event(&other),
    }
}

/// Parses a file of events: a JSON array of events, a single JSON object,
/// or JSON lines (one event per line; blank lines ignored). Returns one
/// result per event, in order; error paths are prefixed with the position:
/// `[3].type: missing` (array index from 0), `line 4: type: missing` or
/// `line 4: expected value at column 1` (line numbers from 1). Empty text
/// gives no events. Never panics.
pub fn parse_events_text(text: &str) -> Vec<Result<Event, EventError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Vec::new();
    }
    if trimmed.starts_with('[') {
        return match serde_json::from_str::<Vec<Value>>(text) {
            Ok(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    parse_event_owned(v)
                        .map(|(e, _)| e)
                        .map_err(|e| prefix_error(&format!("[{i}]"), ".", e))
                })
                .collect(),
            Err(e) => vec![Err(json_error(&e, None))],
        };
    }
    // One JSON document (possibly pretty-printed over many lines)?
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return vec![parse_event_owned(v).map(|(e, _)| e)];
    }
    // JSON lines if the first non-blank line is a complete JSON value;
    // otherwise it is a broken single document: report where.
    let first_line_ok = text.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| {
        let l = l.trim();
        (l.starts_with('{') && l.ends_with('}')) || serde_json::from_str::<Value>(l).is_ok()
    });
    if !first_line_ok {
        return match serde_json::from_str::<Value>(text) {
            Err(e) => vec![Err(json_error(&e, None))],
            Ok(v) => vec![parse_event_owned(v).map(|(e, _)| e)],
        };
    }
    let lines: Vec<(usize, &str)> = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).collect();
    parse_lines_in_parallel(&lines)
}

/// Below this many lines, JSON lines are parsed on the calling thread only.
const PARALLEL_LINES: usize = 4096;

/// The events of numbered JSON lines, in order; a large input is cut into one chunk per core
/// (at most 4), parsed on threads of its own.
fn parse_lines_in_parallel(lines: &[(usize, &str)]) -> Vec<Result<Event, EventError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    if threads < 2 || lines.len() < PARALLEL_LINES {
        return parse_lines(lines);
    }
    let chunk = lines.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut chunks = lines.chunks(chunk);
        let first = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks.map(|c| scope.spawn(move || parse_lines(c))).collect();
        let mut out = parse_lines(first);
        out.reserve(lines.len() - out.len());
        for handle in others {
            match handle.join() {
                Ok(parsed) => out.extend(parsed),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// The events of numbered JSON lines (`i` counts from 0), in order.
fn parse_lines(lines: &[(usize, &str)]) -> Vec<Result<Event, EventError>> {
    lines
        .iter()
        .map(|&(i, line)| match serde_json::from_str::<Value>(line) {
            Ok(v) => parse_event_owned(v)
                .map(|(e, _)| e)
                .map_err(|e| prefix_error(&format!("line {}", i + 1), ": ", e)),
            Err(e) => Err(json_error(&e, Some(i + 1))),
        })
        .collect()
}

fn prefix_error(position: &str, sep: &str, e: EventError) -> EventError {
    let path = if e.path == ROOT_PATH {
        position.to_string()
    } else if e.path.starts_with('[') {
        format!("{position}{}", e.path)
    } else {
        format!("{position}{sep}{}", e.path)
    };
    EventError {
        path,
        message: e.message,
    }
}

/// A JSON syntax error as `line N: <problem> at column C`. `line` overrides
/// the line serde reports (for JSON lines, where each line is parsed alone).
fn json_error(e: &serde_json::Error, line: Option<usize>) -> EventError {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let problem = full.strip_suffix(&suffix).unwrap_or(&full);
    EventError {
        path: format!("line {}", line.unwrap_or(e.line())),
        message: format!("{problem} at column {}", e.column()),
    }
}

// ---------------------------------------------------------------------------
// helpers shared by the three formats
// ---------------------------------------------------------------------------

pub(crate) fn err(path: impl Into<String>, message: impl Into<String>) -> EventError {
    EventError {
        path: path.into(),
        message: message.into(),
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A required non-empty string at `obj[key]`.
fn required_str(obj: &Map<String, Value>, key: &str, path: &str) -> Result<String, EventError> {
    optional_str(obj, key, path)?.ok_or_else(|| err(path, "missing"))
}

/// An optional non-empty string at `obj[key]` (`null` = absent).
fn optional_str(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, EventError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(err(path, "must not be empty")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(err(path, format!("expected a string, got {}", kind(other)))),
    }
}

/// An optional object at `obj[key]` (`null` = absent).
fn optional_object(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<Map<String, Value>>, EventError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(err(path, format!("expected a JSON object, got {}", kind(other)))),
    }
}

/// [`optional_object`], moved out of `obj` instead of copied.
fn take_optional_object(
    obj: &mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<Map<String, Value>>, EventError> {
    match obj.get_mut(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(std::mem::take(m))),
        Some(other) => Err(err(path, format!("expected a JSON object, got {}", kind(other)))),
    }
}

fn is_type_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

/// The event type at `obj[key]`: non-empty, `[A-Za-z0-9_.:-]` only.
fn event_type(obj: &Map<String, Value>, key: &str, path: &str) -> Result<String, EventError> {
    let t = required_str(obj, key, path)?;
    if !t.chars().all(is_type_char) {
        return Err(err(
            path,
            format!("invalid event type \"{t}\": only letters, digits and _ . : - are allowed"),
        ));
    }
    Ok(t)
}

/// The required RFC 3339 `time` at `obj[key]`.
fn event_time(obj: &Map<String, Value>, key: &str, path: &str, missing: &str) -> Result<Timestamp, EventError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(err(path, missing)),
        Some(Value::String(s)) => {
            // RFC 3339 only: no zone annotation.
            if s.contains('[') {
                return Err(err(path, format!("invalid RFC 3339 timestamp \"{s}\"")));
            }
            Timestamp::from_str(s.trim()).map_err(|_| err(path, format!("invalid RFC 3339 timestamp \"{s}\"")))
        }
        Some(other) => Err(err(
            path,
            format!("expected an RFC 3339 timestamp string, got {}", kind(other)),
        )),
    }
}

/// An id in the payload: a non-empty string or an integer.
fn loose_id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// `"lead/L1"` → (`lead`, `L1`). The id may contain further `/`.
fn subject_from_str(s: &str, path: &str) -> Result<Subject, EventError> {
    match s.split_once('/') {
        Some((t, id)) if !t.trim().is_empty() && !id.trim().is_empty() => Ok(Subject {
            record_type: t.to_string(),
            id: id.to_string(),
            contact_id: None,
        }),
        _ => Err(err(
            path,
            format!("expected \"<record type>/<record id>\" such as \"lead/L1\", got \"{s}\""),
        )),
    }
}

/// A subject object `{type, id, contact_id?}` or a `"type/id"` string.
fn subject_from_value(v: &Value, path: &str) -> Result<Subject, EventError> {
    match v {
        Value::String(s) => subject_from_str(s, path),
        Value::Object(m) => {
            for k in m.keys() {
                if !matches!(k.as_str(), "type" | "id" | "contact_id") {
                    return Err(err(
                        join(path, k),
                        "unknown field (a subject has type, id and contact_id)",
                    ));
                }
            }
            Ok(Subject {
                record_type: required_str(m, "type", &join(path, "type"))?,
                id: required_str(m, "id", &join(path, "id"))?,
                contact_id: optional_str(m, "contact_id", &join(path, "contact_id"))?,
            })
        }
        other => Err(err(
            path,
            format!(
                "expected an object {{\"type\", \"id\"}} or \"<type>/<id>\", got {}",
                kind(other)
            ),
        )),
    }
}

/// Record fields, previous values and contact snapshot of a CloudEvents
/// `data` / EventBridge `detail` payload.
struct Payload {
    record: Map<String, Value>,
    previous: Option<Map<String, Value>>,
    contact: Option<Map<String, Value>>,
}

/// Splits a payload (see the module docs). `extra_ok` lists keys that were
/// already consumed (EventBridge `subject`, `tenant`) and must be dropped.
fn split_payload(data: &Map<String, Value>, path: &str, extra_ok: &[&str]) -> Result<Payload, EventError> {
    if let Some(Value::Object(record)) = data.get("record") {
        for k in data.keys() {
            if !matches!(k.as_str(), "record" | "previous" | "contact") && !extra_ok.contains(&k.as_str()) {
                return Err(err(
                    join(path, k),
                    "unknown key (next to \"record\" only \"previous\" and \"contact\" are allowed)",
                ));
            }
        }
        return Ok(Payload {
            record: record.clone(),
            previous: optional_object(data, "previous", &join(path, "previous"))?,
            contact: optional_object(data, "contact", &join(path, "contact"))?,
        });
    }
    let record = data
        .iter()
        .filter(|(k, _)| !extra_ok.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Payload {
        record,
        previous: None,
        contact: None,
    })
}

/// The subject derived from the type and the record when none is given:
/// record type = `type` before the first `.`, id = the record's `id`.
fn derived_subject(
    event_type: &str,
    record: &Map<String, Value>,
    path: &str,
    id_path: &str,
) -> Result<Subject, EventError> {
    let record_type = event_type.split('.').next().unwrap_or(event_type);
    let id = loose_id(record.get("id")).ok_or_else(|| {
        err(
            path,
            format!("missing, and {id_path} has no string or integer \"id\" to take the record id from"),
        )
    })?;
    Ok(Subject {
        record_type: record_type.to_string(),
        id,
        contact_id: None,
    })
}

/// Fills `subject.contact_id` from the record's `contact_id` or the contact
/// snapshot's `id` when nothing set it explicitly.
fn fill_contact_id(subject: &mut Subject, record: &Map<String, Value>, contact: Option<&Map<String, Value>>) {
    if subject.contact_id.is_none() {
        subject.contact_id = loose_id(record.get("contact_id")).or_else(|| contact.and_then(|c| loose_id(c.get("id"))));
    }
}

fn tenant_of(obj: &Map<String, Value>, key: &str, path: &str) -> Result<String, EventError> {
    Ok(optional_str(obj, key, path)?.unwrap_or_else(|| DEFAULT_TENANT.to_string()))
}

const NATIVE_KEYS: [&str; 8] = ["id", "type", "tenant", "time", "subject", "data", "previous", "contact"];

/// A native event; its `data`, `previous` and `contact` are moved out of `obj`.
fn parse_native(obj: &mut Map<String, Value>) -> Result<Event, EventError> {
    for k in obj.keys() {
        if !NATIVE_KEYS.contains(&k.as_str()) {
            return Err(err(
                k.as_str(),
                format!(
                    "unknown field (the native envelope has {}; CloudEvents need \"specversion\", EventBridge events \"detail-type\")",
                    NATIVE_KEYS.join(", ")
                ),
            ));
        }
    }
    let id = required_str(obj, "id", "id")?;
    let event_type = event_type(obj, "type", "type")?;
    let tenant = tenant_of(obj, "tenant", "tenant")?;
    let time = event_time(obj, "time", "time", "missing")?;
    let mut subject = match obj.get("subject") {
        None | Some(Value::Null) => return Err(err("subject", "missing")),
        Some(v) => subject_from_value(v, "subject")?,
    };
    let data = take_optional_object(obj, "data", "data")?.unwrap_or_default();
    let previous = take_optional_object(obj, "previous", "previous")?;
    let contact = take_optional_object(obj, "contact", "contact")?;
    fill_contact_id(&mut subject, &data, contact.as_ref());
    Ok(Event {
        id,
        event_type,
        tenant,
        time,
        subject,
        data,
        previous,
        contact,
    })
}
