//! Dotted field paths (`record.amount`, `contact.emails.0`) and how they resolve in a [`Scope`].
//!
//! [`Scope`]: super::Scope

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

/// The top-level keys of a [`Scope`](super::Scope) that a path may start with.
///
/// A path whose first segment is not one of these is relative to `record`.
pub const SCOPE_ROOTS: [&str; 7] = ["event", "record", "previous", "contact", "steps", "run", "trigger"];

/// The root a relative path (one not starting with a [`SCOPE_ROOTS`] name) resolves from.
pub const DEFAULT_ROOT: &str = "record";

/// Why a field path was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldPathError {
    #[error("empty field path")]
    Empty,
    /// `a..b`, `.a` or `a.`.
    #[error("invalid field path \"{path}\": empty segment (expected e.g. \"record.amount\")")]
    EmptySegment { path: String },
}

/// A dotted path to a value in the scope, e.g. `record.amount`, `contact.tags`,
/// `steps.approval.output.approved`, `event.data.score` or `contact.emails.0`.
///
/// # Resolution
///
/// * If the first segment is one of the scope roots (`event`, `record`, `previous`, `contact`,
///   `steps`, `run`, `trigger`), the path resolves from that root.
/// * Otherwise the path is relative to `record`: `priority` means `record.priority`, and
///   `address.city` means `record.address.city`.
/// * Each following segment selects an object key; on a list, a segment made of ASCII digits
///   selects the element at that (zero-based) index: `contact.emails.0` is the first email.
/// * Anything else (a key that is absent, an index past the end, a segment applied to a
///   string or number) makes the path *missing*, which is not an error: each operator says what
///   a missing field means.
///
/// A key that itself contains a dot cannot be addressed; use a CEL expression for that.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    /// The path as written.
    raw: String,
    /// Segments from the scope root, with `record` prepended to a relative path.
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses a dotted path. Fails on an empty path or an empty segment (`a..b`, `.a`, `a.`).
    pub fn parse(raw: &str) -> Result<FieldPath, FieldPathError> {
        if raw.is_empty() {
            return Err(FieldPathError::Empty);
        }
        let written: Vec<&str> = raw.split('.').collect();
        if written.iter().any(|s| s.is_empty()) {
            return Err(FieldPathError::EmptySegment { path: raw.to_owned() });
        }
        let mut segments = Vec::with_capacity(written.len() + 1);
        if !SCOPE_ROOTS.contains(&written[0]) {
            segments.push(DEFAULT_ROOT.to_owned());
        }
        segments.extend(written.iter().map(|s| (*s).to_owned()));
        Ok(FieldPath {
            raw: raw.to_owned(),
            segments,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The segments from the scope root, `record` included for a relative path:
    /// `priority` gives `["record", "priority"]`.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The scope root the path resolves from (`record` for a relative path).
    pub fn root(&self) -> &str {
        // `parse` guarantees at least one segment besides the root.
        self.segments.first().map_or(DEFAULT_ROOT, String::as_str)
    }

    /// The segments below the root: `record.address.city` and `address.city` both give
    /// `["address", "city"]`.
    pub fn below_root(&self) -> &[String] {
        self.segments.get(1..).unwrap_or(&[])
    }

    /// Resolves the path against a scope root object (see the type docs); `None` if missing.
    pub fn resolve<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        resolve_segments(root, &self.segments)
    }
}

/// Follows `segments` from `value`: object keys, or list indices for all-digit segments.
pub(crate) fn resolve_segments<'a>(value: &'a Value, segments: &[String]) -> Option<&'a Value> {
    segments.iter().try_fold(value, |current, segment| match current {
        Value::Object(map) => map.get(segment.as_str()),
        Value::Array(items) if is_index(segment) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn is_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for FieldPath {
    type Err = FieldPathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldPath::parse(s)
    }
}

impl serde::Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> serde::Deserialize<'de> for FieldPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        FieldPath::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for FieldPath {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("FieldPath")
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": r"^[^.]+(\.[^.]+)*$",
            "description": "Dotted path to a value, e.g. `record.amount`, `contact.tags`, \
                `steps.approval.output.approved`, `contact.emails.0`. A path not starting with \
                event, record, previous, contact, steps, run or trigger is relative to record.",
            "examples": ["record.amount", "priority", "contact.tags"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relative_paths_resolve_from_record() {
        let root = json!({"record": {"priority": "high", "address": {"city": "Oslo"}}});
        let p = FieldPath::parse("priority").unwrap();
        assert_eq!(p.segments(), ["record", "priority"]);
        assert_eq!(p.root(), "record");
        assert_eq!(p.resolve(&root), Some(&json!("high")));
        let nested = FieldPath::parse("address.city").unwrap();
        assert_eq!(nested.below_root(), ["address", "city"]);
        assert_eq!(nested.resolve(&root), Some(&json!("Oslo")));
        assert_eq!(nested.to_string(), "address.city");
    }

    #[test]
    fn explicit_roots_and_list_indices() {
        let root = json!({
            "contact": {"emails": ["a@x.io", "b@x.io"]},
            "steps": {"approval": {"output": {"approved": true}}},
            "record": {"contact": "not this one"}
        });
        let first = FieldPath::parse("contact.emails.0").unwrap();
        assert_eq!(first.resolve(&root), Some(&json!("a@x.io")));
        let second = FieldPath::parse("contact.emails.1").unwrap();
        assert_eq!(second.resolve(&root), Some(&json!("b@x.io")));
        let past_end = FieldPath::parse("contact.emails.2").unwrap();
        assert_eq!(past_end.resolve(&root), None);
        let not_index = FieldPath::parse("contact.emails.first").unwrap();
        assert_eq!(not_index.resolve(&root), None);
        let step = FieldPath::parse("steps.approval.output.approved").unwrap();
        assert_eq!(step.resolve(&root), Some(&json!(true)));
        assert_eq!(step.root(), "steps");
    }

    #[test]
    fn segments_through_scalars_are_missing() {
        let root = json!({"record": {"name": "Acme"}});
        assert_eq!(FieldPath::parse("record.name.first").unwrap().resolve(&root), None);
        assert_eq!(FieldPath::parse("run.id").unwrap().resolve(&root), None);
    }

    #[test]
    fn rejects_empty_segments() {
        for bad in ["", ".a", "a.", "a..b"] {
            assert!(FieldPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let p: FieldPath = serde_json::from_value(json!("record.amount")).unwrap();
        assert_eq!(serde_json::to_value(&p).unwrap(), json!("record.amount"));
        assert!(serde_json::from_value::<FieldPath>(json!("a..b")).is_err());
    }
}
