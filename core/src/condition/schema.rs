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
        let operators: Vec<&str> = Operator::accepted_names().collect();
        let cel = json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "A CEL expression returning a bool. Variables: record, contact, \
                event, trigger, previous, steps, run, now."
        });
        let operator = json_schema!({
            "type": "string",
            "enum": operators,
            "description": "Operator name (or alias)."
        });
        let reserved: Vec<Schema> = ["field", "all", "any", "not", "cel", "expression"]
            .into_iter()
            .map(|key| json_schema!({ "required": [key] }))
            .collect();
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
                {
                    "type": "object",
                    "properties": { "all": { "type": "array", "items": condition } },
                    "required": ["all"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": { "any": { "type": "array", "items": condition } },
                    "required": ["any"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": { "not": condition },
                    "required": ["not"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": { "cel": cel },
                    "required": ["cel"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": { "expression": cel },
                    "required": ["expression"],
                    "additionalProperties": false
                },
                {
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
                },
                {
                    "type": "object",
                    "description": "Equality shorthand: each key is a field path that must equal \
                        its value.",
                    "not": { "anyOf": reserved },
                    "additionalProperties": true
                }
            ]
        })
    }
}
