//! The JSON Schema (draft 2020-12) of a definition: what editors and independent validators
//! check a definition against, accepting what the loader accepts.
//!
//! The schema is derived from the model (schemars), then given what the derive cannot see: the
//! names the loader also accepts for some action types ([`ACTION_ALIASES`], serde aliases in
//! [`super::action::Action`]).

use super::Automation;
use serde_json::Value;

/// Action types the loader also accepts under another name: (type, other name). Keep in step
/// with the `#[serde(alias)]` attributes of [`super::action::Action`]; a test loads each alias.
pub const ACTION_ALIASES: &[(&str, &str)] = &[("assign", "assign_to_queue"), ("notify", "send_notification")];

/// The schema of an automation definition, in either form (flat or steps).
pub fn automation_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Automation)).unwrap_or_default();
    if let Some(variants) = schema.pointer_mut("/$defs/Action/oneOf").and_then(Value::as_array_mut) {
        for variant in variants {
            let Some(kind) = variant.pointer_mut("/properties/type") else {
                continue;
            };
            let name = kind.get("const").and_then(Value::as_str).map(str::to_owned);
            if let Some((_, alias)) = ACTION_ALIASES.iter().find(|(n, _)| Some(*n) == name.as_deref()) {
                *kind = serde_json::json!({ "type": "string", "enum": [name, alias] });
            }
        }
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{Action, StepKind, parse_automation};

    #[test]
    fn every_alias_loads_as_its_action_and_the_schema_names_it() {
        let schema = automation_schema().to_string();
        for (name, alias) in ACTION_ALIASES {
            let params = if *name == "assign" {
                r#"{"queue_id": "q"}"#
            } else {
                r#"{"channel": "slack", "message": "m"}"#
            };
            for written in [name, alias] {
                let text = format!(
                    r#"{{"name": "a", "trigger": {{"event": "case.created"}}, "actions": [{{"type": "{written}", "params": {params}}}]}}"#
                );
                let automation = parse_automation(&text).unwrap_or_else(|e| panic!("{written}: {e:?}"));
                let StepKind::Action(action) = &automation.steps[0].kind else {
                    panic!("{written}: not an action step");
                };
                assert!(matches!(action, Action::Assign(_) | Action::Notify(_)));
                assert_eq!(
                    serde_json::to_value(action).unwrap()["type"],
                    *name,
                    "{written} loads as {name}"
                );
            }
            assert!(schema.contains(&format!(r#""enum":["{name}","{alias}"]"#)), "{name}");
        }
    }
}
