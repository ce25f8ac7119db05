//! What a condition sees: the scope object and the current instant.

use serde_json::Value;

use super::path::FieldPath;

/// The data a condition is evaluated against.
///
/// `root` is a JSON object with these keys, any of which may be missing or empty:
///
/// | key        | content |
/// |------------|---------|
/// | `event`    | the current event `{id, type, tenant, time, subject: {type, id, contact_id}, data, previous}` |
/// | `record`   | the record's current fields |
/// | `previous` | previous values of the fields changed by the current update event (key present = field changed) |
/// | `contact`  | the contact snapshot (`tags` is a list of strings, `timezone` an IANA name) |
/// | `steps`    | outputs of earlier steps: `steps.<step_id>.output` |
/// | `run`      | run metadata `{id, automation_id, automation_version, started_at, ...}` |
/// | `trigger`  | the triggering event (same shape as `event`) |
///
/// `now` is the current instant, from the engine's clock: date operators
/// (`within_last_days`, `more_than_days_ago`) and the CEL variable `now` use it, never the
/// system clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// The scope object (see the type docs).
    pub root: Value,
    /// The current instant.
    pub now: jiff::Timestamp,
}

impl Scope {
    /// A scope over `root` at the instant `now`.
    pub fn new(root: Value, now: jiff::Timestamp) -> Scope {
        Scope { root, now }
    }

    /// The value at `path` (see [`FieldPath`] for how paths resolve), `None` if missing.
    pub fn get(&self, path: &FieldPath) -> Option<&Value> {
        path.resolve(&self.root)
    }

    /// The top-level value `name` (e.g. `record`), `None` if missing.
    pub fn root_value(&self, name: &str) -> Option<&Value> {
        self.root.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn get_resolves_relative_and_rooted_paths() {
        let scope = Scope::new(
            json!({"record": {"stage": "Open"}, "event": {"type": "deal.updated"}}),
            jiff::Timestamp::UNIX_EPOCH,
        );
        let stage = FieldPath::parse("stage").unwrap();
        assert_eq!(scope.get(&stage), Some(&json!("Open")));
        let kind = FieldPath::parse("event.type").unwrap();
        assert_eq!(scope.get(&kind), Some(&json!("deal.updated")));
        assert_eq!(scope.root_value("contact"), None);
    }
}
