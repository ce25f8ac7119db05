//! Serde support: canonical objects out, every accepted shape in (through [`Condition::from_value`]).

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Condition;
use super::expression::CelExpression;
use super::rule::FieldRule;

impl Serialize for Condition {
    /// Serializes to the canonical object forms: `{all: [...]}`, `{any: [...]}`, `{not: ...}`,
    /// `{field, op, value}` and `{cel: ...}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Condition::All(children) => single_entry(serializer, "all", children),
            Condition::Any(children) => single_entry(serializer, "any", children),
            Condition::Not(inner) => single_entry(serializer, "not", inner),
            Condition::Rule(rule) => rule.serialize(serializer),
            Condition::Expression(expression) => expression.serialize(serializer),
        }
    }
}

fn single_entry<S: Serializer, T: Serialize + ?Sized>(serializer: S, key: &str, value: &T) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(key, value)?;
    map.end()
}

impl<'de> Deserialize<'de> for Condition {
    /// Accepts every shape [`Condition::from_value`] does, from any serde format.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Condition::from_value(&value).map_err(|e| D::Error::custom(e.to_message()))
    }
}

impl Serialize for FieldRule {
    /// `{field, op, value}`, without `value` for operators that take none.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(if self.value.is_some() { 3 } else { 2 }))?;
        map.serialize_entry("field", &self.field)?;
        map.serialize_entry("op", &self.operator)?;
        if let Some(value) = &self.value {
            map.serialize_entry("value", value)?;
        }
        map.end()
    }
}

impl Serialize for CelExpression {
    /// `{cel: source}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        single_entry(serializer, "cel", self.source())
    }
}
