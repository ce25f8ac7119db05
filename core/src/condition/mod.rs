//! Conditions: whether a trigger enrolls a record, which branch a run takes, whether an event
//! satisfies a wait.
//!
//! A [`Condition`] is a tree of `all` / `any` / `not` over two kinds of leaves:
//!
//! * **field rules** ([`FieldRule`]): a field path, an [`Operator`] and a value, e.g.
//!   `{field: record.amount, op: greater_than, value: 200000}`;
//! * **CEL expressions** ([`CelExpression`]), e.g.
//!   `{cel: "record.amount > 200000 && 'VIP' in contact.tags"}`.
//!
//! Conditions are evaluated against a [`Scope`]: the event, record, previous values, contact,
//! step outputs, run metadata and triggering event, plus the engine's current instant.
//!
//! # Field paths
//!
//! A field rule names its field with a dotted [`FieldPath`]. If the first segment is one of
//! `event`, `record`, `previous`, `contact`, `steps`, `run` or `trigger`, the path resolves from
//! that part of the scope; otherwise it is relative to `record` (`priority` means
//! `record.priority`). Numeric segments index lists (`contact.emails.0`). A path that leads
//! nowhere is a *missing* field, which each operator handles (see [`FieldRule`]), never an
//! error.
//!
//! # Wire format
//!
//! Conditions deserialize from any serde format (JSON, YAML, ...); see
//! [`Condition::from_value`] for every accepted shape. They serialize to the canonical object
//! forms: `{all: [...]}`, `{any: [...]}`, `{not: ...}`, `{field, op, value}` and `{cel: ...}`.
//!
//! ```
//! use crmflow_core::condition::{Condition, Scope};
//! use serde_json::json;
//!
//! let condition = Condition::from_value(&json!({
//!     "any": [
//!         {"field": "record.amount", "op": "gt", "value": 200000},
//!         {"cel": "'VIP' in contact.tags"}
//!     ]
//! })).unwrap();
//! let scope = Scope::new(
//!     json!({"record": {"amount": 250000}, "contact": {"tags": []}}),
//!     "2024-05-01T12:00:00Z".parse().unwrap(),
//! );
//! assert!(condition.evaluate(&scope).unwrap());
//! let (_, why) = condition.explain(&scope).unwrap();
//! assert_eq!(why, "any of 2 → true (record.amount (250000) greater_than 200000 → true)");
//! ```

mod compare;
mod error;
mod explain;
mod expression;
mod operator;
mod parse;
mod path;
mod rule;
mod schema;
mod scope;
mod serde_impl;

#[cfg(test)]
mod tests;

pub use error::{ConditionError, ConditionParseError};
pub use explain::MAX_EXPLANATION_CHARS;
pub use expression::{CelExpression, CelToJsonError, CelValue, cel_to_json, json_to_cel};
pub use operator::Operator;
pub use path::{DEFAULT_ROOT, FieldPath, FieldPathError, SCOPE_ROOTS};
pub use rule::FieldRule;
pub use scope::Scope;

/// A condition: `all`/`any`/`not` over field rules and CEL expressions.
///
/// `All` of nothing is true, `Any` of nothing is false. Evaluation short-circuits left to
/// right: an `all` stops at the first false child, an `any` at the first true one, so a later
/// child's error is not reached.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// True when every child is true.
    All(Vec<Condition>),
    /// True when some child is true.
    Any(Vec<Condition>),
    /// True when the child is false.
    Not(Box<Condition>),
    /// A field rule.
    Rule(FieldRule),
    /// A CEL expression returning a bool.
    Expression(CelExpression),
}

impl Condition {
    /// The condition that is always true (`all` of nothing, written `{}`).
    pub fn always() -> Condition {
        Condition::All(Vec::new())
    }

    /// Whether evaluating (or explaining) may look up the scope's top-level value `root`
    /// (`record`, `trigger`, ...). A scope without the roots a condition does not read gives
    /// the same result.
    pub fn reads(&self, root: &str) -> bool {
        match self {
            Condition::All(children) | Condition::Any(children) => children.iter().any(|c| c.reads(root)),
            Condition::Not(inner) => inner.reads(root),
            Condition::Rule(rule) => rule.reads(root),
            Condition::Expression(expression) => expression.reads(root),
        }
    }

    /// Evaluates against a scope.
    ///
    /// Type mismatches in field rules (e.g. `greater_than` on a string that is neither a number
    /// nor a date) are `false`, not errors; a CEL runtime error, or a CEL result that is not a
    /// bool, is an `Err`.
    pub fn evaluate(&self, scope: &Scope) -> Result<bool, ConditionError> {
        match self {
            Condition::All(children) => {
                for child in children {
                    if !child.evaluate(scope)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Any(children) => {
                for child in children {
                    if child.evaluate(scope)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(inner) => Ok(!inner.evaluate(scope)?),
            Condition::Rule(rule) => rule.evaluate(scope),
            Condition::Expression(expression) => expression.evaluate(scope),
        }
    }
}

impl From<FieldRule> for Condition {
    fn from(rule: FieldRule) -> Self {
        Condition::Rule(rule)
    }
}

impl From<CelExpression> for Condition {
    fn from(expression: CelExpression) -> Self {
        Condition::Expression(expression)
    }
}
