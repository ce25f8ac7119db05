//! Parsing conditions from their wire format.

use serde_json::{Map, Value};

use super::Condition;
use super::error::{ConditionParseError, join_path};
use super::expression::CelExpression;
use super::operator::Operator;
use super::path::FieldPath;
use super::rule::FieldRule;

/// The keys of a field rule object.
const RULE_KEYS: [&str; 4] = ["field", "op", "operator", "value"];
/// The keys that make an object a group or an expression rather than equality shorthand.
const FORM_KEYS: [&str; 5] = ["all", "any", "not", "cel", "expression"];

impl Condition {
    /// Parses a condition from JSON (or anything deserialized into a `serde_json::Value`).
    ///
    /// Accepted shapes:
    ///
    /// * a list `[c1, c2]`: all of them;
    /// * `{all: [..]}`, `{any: [..]}`, `{not: c}`;
    /// * a field rule `{field: "record.amount", op: "greater_than", value: 200000}`
    ///   (`operator` is a synonym of `op`; operator aliases such as `gt` are accepted; see
    ///   [`FieldRule`] for the operators and the values they take). Unknown keys are errors. A
    ///   `matches` pattern is compiled here, and an invalid one is an error;
    /// * `{cel: "record.amount > 200000"}` (or `{expression: ...}`): a CEL expression, compiled
    ///   here;
    /// * any other object is equality shorthand: `{priority: "critical", source: "Website"}` is
    ///   all of `equals` rules, each key a field path. `{}` is always true. (A field literally
    ///   named `field`, `all`, `any`, `not`, `cel` or `expression` needs the explicit rule form.)
    ///
    /// Errors carry the path inside the condition, e.g.
    /// `all[1].op: unknown operator "eqals"; expected one of ...`.
    pub fn from_value(value: &Value) -> Result<Condition, ConditionParseError> {
        parse(value, "")
    }
}

fn parse(value: &Value, path: &str) -> Result<Condition, ConditionParseError> {
    match value {
        Value::Array(items) => parse_list(items, path).map(Condition::All),
        Value::Object(map) => parse_object(map, path),
        other => Err(ConditionParseError::new(
            path,
            format!(
                "expected a condition (a list, or an object such as {{all: [...]}}, \
                 {{field, op, value}}, {{cel: ...}} or {{field_name: value}}), found {}",
                kind(other)
            ),
        )),
    }
}

fn parse_list(items: &[Value], path: &str) -> Result<Vec<Condition>, ConditionParseError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse(item, &join_path(path, &format!("[{i}]"))))
        .collect()
}

fn parse_object(map: &Map<String, Value>, path: &str) -> Result<Condition, ConditionParseError> {
    if map.contains_key("field") {
        return parse_rule(map, path).map(Condition::Rule);
    }
    let forms: Vec<&str> = FORM_KEYS.into_iter().filter(|k| map.contains_key(*k)).collect();
    let Some(&form) = forms.first() else {
        return parse_shorthand(map, path);
    };
    if forms.len() > 1 {
        return Err(ConditionParseError::new(
            path,
            format!(
                "a condition object holds one of all, any, not, cel; found {}",
                forms.join(" and ")
            ),
        ));
    }
    if let Some(extra) = map.keys().find(|k| k.as_str() != form) {
        return Err(ConditionParseError::new(
            join_path(path, extra),
            format!("unexpected key \"{extra}\" next to \"{form}\" (combine conditions with all/any)"),
        ));
    }
    let inner_path = join_path(path, form);
    let inner = &map[form];
    match form {
        "all" | "any" => {
            let Value::Array(items) = inner else {
                return Err(ConditionParseError::new(
                    inner_path,
                    format!("expected a list of conditions, found {}", kind(inner)),
                ));
            };
            let children = parse_list(items, &inner_path)?;
            Ok(if form == "all" {
                Condition::All(children)
            } else {
                Condition::Any(children)
            })
        }
        "not" => parse(inner, &inner_path).map(|c| Condition::Not(Box::new(c))),
        _ => {
            let Value::String(source) = inner else {
                return Err(ConditionParseError::new(
                    inner_path,
                    format!("expected a CEL expression string, found {}", kind(inner)),
                ));
            };
            CelExpression::new(source.as_str())
                .map(Condition::Expression)
                .map_err(|e| ConditionParseError::new(inner_path, e.message))
        }
    }
}

fn parse_rule(map: &Map<String, Value>, path: &str) -> Result<FieldRule, ConditionParseError> {
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !RULE_KEYS.contains(k))
        .collect();
    if let Some(first) = unknown.first() {
        let names: Vec<String> = unknown.iter().map(|k| format!("\"{k}\"")).collect();
        return Err(ConditionParseError::new(
            join_path(path, first),
            format!(
                "unknown key{} {} in field rule; expected field, op (or operator), value",
                if unknown.len() > 1 { "s" } else { "" },
                names.join(", ")
            ),
        ));
    }

    let field_path = join_path(path, "field");
    let field = match &map["field"] {
        Value::String(raw) => {
            FieldPath::parse(raw).map_err(|e| ConditionParseError::new(&field_path, e.to_string()))?
        }
        other => {
            return Err(ConditionParseError::new(
                field_path,
                format!("expected a field path string, found {}", kind(other)),
            ));
        }
    };

    let (op_key, op_value) = match (map.get("op"), map.get("operator")) {
        (Some(_), Some(_)) => {
            return Err(ConditionParseError::new(
                join_path(path, "operator"),
                "both \"op\" and \"operator\" given; use one",
            ));
        }
        (Some(v), None) => ("op", v),
        (None, Some(v)) => ("operator", v),
        (None, None) => {
            return Err(ConditionParseError::new(
                join_path(path, "op"),
                format!("missing; the field rule on \"{field}\" needs an operator (e.g. op: equals)"),
            ));
        }
    };
    let op_path = join_path(path, op_key);
    let operator = match op_value {
        Value::String(name) => Operator::from_name(name)
            .ok_or_else(|| ConditionParseError::new(&op_path, Operator::unknown_message(name)))?,
        other => {
            return Err(ConditionParseError::new(
                op_path,
                format!("expected an operator name, found {}", kind(other)),
            ));
        }
    };

    FieldRule::new(field, operator, map.get("value").cloned()).map_err(|e| e.under(path))
}

fn parse_shorthand(map: &Map<String, Value>, path: &str) -> Result<Condition, ConditionParseError> {
    map.iter()
        .map(|(key, value)| {
            let key_path = join_path(path, key);
            let field = FieldPath::parse(key).map_err(|e| ConditionParseError::new(&key_path, e.to_string()))?;
            FieldRule::new(field, Operator::Equals, Some(value.clone()))
                .map(Condition::Rule)
                .map_err(|e| e.under(&key_path))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Condition::All)
}

/// The JSON kind of a value, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
