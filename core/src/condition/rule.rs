//! Field rules: `{field, op, value}`.

use std::cmp::Ordering;

use serde_json::Value;

use super::compare::{as_instant, as_number, is_comparable, loose_cmp, loose_eq};
use super::error::{ConditionError, ConditionParseError};
use super::explain::short_value;
use super::operator::{Operator, ValueKind};
use super::path::{FieldPath, resolve_segments};
use super::scope::Scope;

/// Seconds in the 24-hour day used by `within_last_days` and `more_than_days_ago`.
const SECONDS_PER_DAY: f64 = 86_400.0;

/// A field rule: compares the value at `field` with `value` using `operator`.
///
/// Build one with [`FieldRule::new`] (or parse a [`Condition`](super::Condition)), which checks
/// that the value suits the operator and compiles `matches` patterns once.
///
/// # Operators
///
/// "The field" is the value at [`field`](FieldRule::field) (see [`FieldPath`] for how a path
/// resolves); it is *missing* when the path leads nowhere. Type mismatches are never errors:
/// the rule is simply `false` (or `true` for the negated operators below).
///
/// | operator | value | true when |
/// |----------|-------|-----------|
/// | `equals` (`eq`) | any | the field equals the value: JSON equality, except that numbers compare numerically (`1` = `1.0`) and a number equals a string holding that number (`"200000"` = `200000`); lists and objects compare element-wise by the same rule; strings compare exactly (case-sensitive). A missing field is never equal. |
/// | `not_equals` (`neq`, `ne`) | any | not `equals`; so a missing field is "not equal". |
/// | `greater_than` (`gt`), `greater_than_or_equal` (`gte`), `less_than` (`lt`), `less_than_or_equal` (`lte`) | number, or a string with a number, an RFC 3339 timestamp or an ISO date | both sides are numbers (or numeric strings) and compare so numerically; or both are timestamps/dates (a plain `YYYY-MM-DD` date is midnight UTC) and compare so as instants. Anything else is `false`. |
/// | `contains` | any | the field is a string containing the value as a substring (value a string), or a list with an element equal (as in `equals`) to the value. |
/// | `not_contains` | any | not `contains` (so a missing field does not contain anything). |
/// | `starts_with`, `ends_with` | string | the field is a string starting/ending with the value (case-sensitive). |
/// | `in` | list | the field equals (as in `equals`) one of the listed values; if the field is a list (e.g. tags), any of its elements does. |
/// | `not_in` | list | not `in`. |
/// | `is_known` (`exists`) | none | the field is present, not `null` and not the empty string. |
/// | `is_unknown` (`not_exists`) | none | not `is_known`. |
/// | `between` | `[low, high]` | `low <= field <= high` (inclusive), numbers or dates as for `greater_than`. |
/// | `changed` | none | the field changed in the current update: the `previous` object has the field's path below its root (`record.stage` and `stage` look up `previous.stage`; `record.address.city` looks up `previous.address.city`), and that previous value differs from the current one. |
/// | `changed_from` | any | `changed`, and the previous value equals the value. |
/// | `changed_to` | any | `changed`, and the current value equals the value. |
/// | `within_last_days` | number of days ≥ 0 | the field is a timestamp or date with `now - days <= field <= now`. |
/// | `more_than_days_ago` | number of days ≥ 0 | the field is a timestamp or date with `field < now - days`. |
/// | `matches` (`regex`) | regular expression | the field is a string in which the pattern matches somewhere (a search, not a full match: anchor with `^…$`). Patterns use the syntax of the `regex` crate. |
///
/// Days are 24-hour periods (86 400 seconds), whatever the calendar or time zone; fractions are
/// allowed (`0.5` is 12 hours). `now` is [`Scope::now`], the engine's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRule {
    /// The field the rule looks at.
    pub field: FieldPath,
    /// How it compares.
    pub operator: Operator,
    /// The operand; `None` for operators that take none (`is_known`, `is_unknown`, `changed`).
    pub value: Option<Value>,
    /// The compiled pattern of a `matches` rule.
    pattern: Option<Pattern>,
}

/// A compiled regex, compared by its source.
#[derive(Debug, Clone)]
struct Pattern(regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl FieldRule {
    /// A rule, after checking that `value` suits `operator` (see the type docs). A `null` value
    /// counts as no value for the operators that take none.
    ///
    /// Errors are located relative to the rule: their path is `value`.
    pub fn new(field: FieldPath, operator: Operator, value: Option<Value>) -> Result<FieldRule, ConditionParseError> {
        let value = check_value(operator, value)?;
        let pattern = match (&value, operator) {
            (Some(Value::String(source)), Operator::Matches) => {
                Some(Pattern(regex::Regex::new(source).map_err(|e| {
                    ConditionParseError::new("value", format!("invalid regex: {e}"))
                })?))
            }
            _ => None,
        };
        Ok(FieldRule {
            field,
            operator,
            value,
            pattern,
        })
    }

    /// Whether evaluating may look up the scope's top-level value `root`: the field's root, or
    /// `previous`.
    pub fn reads(&self, root: &str) -> bool {
        self.field.root() == root || root == "previous"
    }

    /// Evaluates the rule against `scope`.
    pub fn evaluate(&self, scope: &Scope) -> Result<bool, ConditionError> {
        let current = scope.get(&self.field);
        let previous = self.previous_value(scope);
        self.decide(current, previous, scope.now)
    }

    /// Evaluates the rule and describes it, e.g. `record.amount (250000) greater_than 200000 → true`.
    pub fn explain(&self, scope: &Scope) -> Result<(bool, String), ConditionError> {
        let current = scope.get(&self.field);
        let previous = self.previous_value(scope);
        let result = self.decide(current, previous, scope.now)?;
        let mut shown = match current {
            Some(v) => short_value(v),
            None => "missing".to_owned(),
        };
        if matches!(
            self.operator,
            Operator::Changed | Operator::ChangedFrom | Operator::ChangedTo
        ) {
            match previous {
                Some(p) => shown = format!("{shown}; previous {}", short_value(p)),
                None => shown.push_str("; not in previous"),
            }
        }
        let mut text = format!("{} ({shown}) {}", self.field, self.operator);
        if let Some(value) = &self.value {
            text.push(' ');
            text.push_str(&short_value(value));
        }
        text.push_str(if result { " → true" } else { " → false" });
        Ok((result, text))
    }

    /// The previous value of the field: `previous.<path below the root>`, if present.
    fn previous_value<'a>(&self, scope: &'a Scope) -> Option<&'a Value> {
        let previous = scope.root.get("previous")?;
        resolve_segments(previous, self.field.below_root())
    }

    fn invalid(&self, message: impl Into<String>) -> ConditionError {
        ConditionError::InvalidRule {
            field: self.field.to_string(),
            message: message.into(),
        }
    }

    /// The operand, which the operator requires.
    fn operand(&self) -> Result<&Value, ConditionError> {
        self.value
            .as_ref()
            .ok_or_else(|| self.invalid(format!("{} needs a value", self.operator)))
    }

    fn decide(
        &self,
        current: Option<&Value>,
        previous: Option<&Value>,
        now: jiff::Timestamp,
    ) -> Result<bool, ConditionError> {
        use Operator as Op;
        Ok(match self.operator {
            Op::Equals => equals(current, self.operand()?),
            Op::NotEquals => !equals(current, self.operand()?),
            Op::GreaterThan => ordered(current, self.operand()?, Ordering::is_gt),
            Op::GreaterThanOrEqual => ordered(current, self.operand()?, Ordering::is_ge),
            Op::LessThan => ordered(current, self.operand()?, Ordering::is_lt),
            Op::LessThanOrEqual => ordered(current, self.operand()?, Ordering::is_le),
            Op::Contains => contains(current, self.operand()?),
            Op::NotContains => !contains(current, self.operand()?),
            Op::StartsWith => strings(current, self.operand()?, |f, v| f.starts_with(v)),
            Op::EndsWith => strings(current, self.operand()?, |f, v| f.ends_with(v)),
            Op::In => self.is_in(current)?,
            Op::NotIn => !self.is_in(current)?,
            Op::IsKnown => is_known(current),
            Op::IsUnknown => !is_known(current),
            Op::Between => {
                let (low, high) = match self.operand()? {
                    Value::Array(bounds) if bounds.len() == 2 => (&bounds[0], &bounds[1]),
                    _ => return Err(self.invalid("between needs a list [low, high]")),
                };
                ordered(current, low, Ordering::is_ge) && ordered(current, high, Ordering::is_le)
            }
            Op::Changed => changed(current, previous),
            Op::ChangedFrom => {
                changed(current, previous) && previous.is_some_and(|p| loose_eq(p, self.value_or_null()))
            }
            Op::ChangedTo => changed(current, previous) && current.is_some_and(|c| loose_eq(c, self.value_or_null())),
            Op::WithinLastDays => {
                let Some(at) = current.and_then(as_instant) else {
                    return Ok(false);
                };
                match self.cutoff(now)? {
                    Some(cutoff) => cutoff <= at && at <= now,
                    None => at <= now,
                }
            }
            Op::MoreThanDaysAgo => {
                let Some(at) = current.and_then(as_instant) else {
                    return Ok(false);
                };
                self.cutoff(now)?.is_some_and(|cutoff| at < cutoff)
            }
            Op::Matches => match current {
                Some(Value::String(s)) => self.regex_matches(s)?,
                _ => false,
            },
        })
    }

    fn value_or_null(&self) -> &Value {
        self.value.as_ref().unwrap_or(&Value::Null)
    }

    fn is_in(&self, current: Option<&Value>) -> Result<bool, ConditionError> {
        let Value::Array(options) = self.operand()? else {
            return Err(self.invalid(format!("{} needs a list", self.operator)));
        };
        let listed = |v: &Value| options.iter().any(|o| loose_eq(v, o));
        Ok(match current {
            None => false,
            Some(Value::Array(items)) => items.iter().any(listed),
            Some(v) => listed(v),
        })
    }

    /// `now` minus the rule's number of days; `None` when that is before the earliest instant.
    fn cutoff(&self, now: jiff::Timestamp) -> Result<Option<jiff::Timestamp>, ConditionError> {
        let days = match self.operand()? {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
        .filter(|d| d.is_finite() && *d >= 0.0)
        .ok_or_else(|| self.invalid(format!("{} needs a number of days >= 0", self.operator)))?;
        Ok(jiff::SignedDuration::try_from_secs_f64(days * SECONDS_PER_DAY)
            .ok()
            .and_then(|span| now.checked_sub(span).ok()))
    }

    fn regex_matches(&self, text: &str) -> Result<bool, ConditionError> {
        let Some(Value::String(source)) = &self.value else {
            return Err(self.invalid("matches needs a regex string"));
        };
        match &self.pattern {
            Some(Pattern(re)) if re.as_str() == source => Ok(re.is_match(text)),
            // The value was changed after construction: compile it now.
            _ => regex::Regex::new(source)
                .map(|re| re.is_match(text))
                .map_err(|e| self.invalid(format!("invalid regex: {e}"))),
        }
    }
}

fn equals(current: Option<&Value>, value: &Value) -> bool {
    current.is_some_and(|c| loose_eq(c, value))
}

fn ordered(current: Option<&Value>, value: &Value, accept: fn(Ordering) -> bool) -> bool {
    current.and_then(|c| loose_cmp(c, value)).is_some_and(accept)
}

fn contains(current: Option<&Value>, value: &Value) -> bool {
    match (current, value) {
        (Some(Value::String(field)), Value::String(part)) => field.contains(part.as_str()),
        (Some(Value::Array(items)), value) => items.iter().any(|item| loose_eq(item, value)),
        _ => false,
    }
}

fn strings(current: Option<&Value>, value: &Value, test: fn(&str, &str) -> bool) -> bool {
    match (current, value) {
        (Some(Value::String(field)), Value::String(part)) => test(field, part),
        _ => false,
    }
}

fn is_known(current: Option<&Value>) -> bool {
    !matches!(current, None | Some(Value::Null)) && current != Some(&Value::String(String::new()))
}

fn changed(current: Option<&Value>, previous: Option<&Value>) -> bool {
    match previous {
        None => false,
        Some(previous) => !loose_eq(previous, current.unwrap_or(&Value::Null)),
    }
}

/// Checks that `value` suits `operator`; normalizes `null` to no value for operators taking none.
fn check_value(operator: Operator, value: Option<Value>) -> Result<Option<Value>, ConditionParseError> {
    let kind = operator.value_kind();
    if kind == ValueKind::None {
        return match value {
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(ConditionParseError::new(
                "value",
                match operator {
                    Operator::Changed => "changed takes no value; use changed_to or changed_from to compare".to_owned(),
                    _ => format!("{operator} takes no value"),
                },
            )),
        };
    }
    let Some(value) = value else {
        return Err(ConditionParseError::new(
            "value",
            format!("missing; {operator} needs {}", expectation(kind)),
        ));
    };
    let ok = match kind {
        ValueKind::None | ValueKind::Any => true,
        ValueKind::Comparable => is_comparable(&value),
        ValueKind::String | ValueKind::Regex => value.is_string(),
        ValueKind::List => value.is_array(),
        ValueKind::Range => {
            matches!(&value, Value::Array(b) if b.len() == 2 && b.iter().all(is_comparable))
        }
        ValueKind::Days => as_number(&value)
            .filter(|_| value.is_number())
            .is_some_and(|n| n.as_f64() >= 0.0),
    };
    if ok {
        Ok(Some(value))
    } else {
        Err(ConditionParseError::new(
            "value",
            format!("{operator} needs {}, found {}", expectation(kind), short_value(&value)),
        ))
    }
}

fn expectation(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::None => "no value",
        ValueKind::Any => "a value",
        ValueKind::Comparable => "a number, or a string holding a number, an RFC 3339 timestamp or a date (YYYY-MM-DD)",
        ValueKind::String => "a string",
        ValueKind::List => "a list of values",
        ValueKind::Range => "a list [low, high] of two numbers or dates (RFC 3339 timestamps or YYYY-MM-DD)",
        ValueKind::Days => "a number of days >= 0",
        ValueKind::Regex => "a regular expression string",
    }
}
