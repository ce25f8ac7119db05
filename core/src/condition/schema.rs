//! JSON Schema of the condition wire format.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::Condition;
use super::operator::Operator;
use super::path::FieldPath;

impl JsonSchema for Condition {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Condition")
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed(concat!(module_path!(), "::Condition"))
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let condition = generator.subschema_for::<Condition>();
        let field = generator.subschema_for::<FieldPath>();
        let cel = json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "A CEL expression returning a bool. Variables: record, contact, \
                event, trigger, previous, steps, run, now."
        });
        let list = json_schema!({ "type": "array", "items": condition });
        json_schema!({
            "description": "A condition: a list (all of), {all: [...]}, {any: [...]}, {not: ...}, \
                a field rule {field, op, value}, a CEL expression {cel: ...}, or equality \
                shorthand {field_path: value, ...} ({} is always true).",
            "anyOf": [
                {
                    "type": "array",
                    "items": condition,
                    "description": "All of these conditions."
                },
                single_key("all", list.clone()),
                single_key("any", list),
                single_key("not", condition),
                single_key("cel", cel.clone()),
                single_key("expression", cel),
                field_rule(field),
                equality_shorthand()
            ]
        })
    }
}

/// An object with exactly one key: `{all: [...]}`, `{cel: "..."}`.
fn single_key(key: &str, value: Schema) -> Schema {
    json_schema!({
        "type": "object",
        "properties": { key: value },
        "required": [key],
        "additionalProperties": false
    })
}

/// `{field, op, value}` (or `operator` for `op`).
fn field_rule(field: Schema) -> Schema {
    let operators: Vec<&str> = Operator::accepted_names().collect();
    let operator = json_schema!({
        "type": "string",
        "enum": operators,
        "description": "Operator name (or alias)."
    });
    json_schema!({
        "type": "object",
        "description": "A field rule.",
        "properties": {
            "field": field,
            "op": operator,
            "operator": operator,
            "value": {
                "description": "The operand: a list for in/not_in, [low, high] for \
                    between, a number of days for within_last_days and \
                    more_than_days_ago, a regex for matches, none for is_known, \
                    is_unknown and changed."
            }
        },
        "required": ["field"],
        "oneOf": [ { "required": ["op"] }, { "required": ["operator"] } ],
        "additionalProperties": false
    })
}

/// `{field_path: value, ...}`: any object that is none of the keyed forms.
fn equality_shorthand() -> Schema {
    let reserved: Vec<Schema> = ["field", "all", "any", "not", "cel", "expression"]
        .into_iter()
        .map(|key| json_schema!({ "required": [key] }))
        .collect();
    json_schema!({
        "type": "object",
        "description": "Equality shorthand: each key is a field path that must equal \
            its value.",
        "not": { "anyOf": reserved },
        "additionalProperties": true
    })
}
