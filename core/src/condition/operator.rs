//! Field-rule operators, their names and aliases.

use std::fmt;

/// A field-rule operator. See [`FieldRule`](super::FieldRule) for what each one means.
///
/// Serialized in snake_case (`greater_than`). In input these aliases are accepted too:
/// `eq`, `neq`/`ne`, `gt`, `gte`, `lt`, `lte`, `not_in`, `regex`, `exists` (= `is_known`),
/// `not_exists` (= `is_unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    #[serde(alias = "eq")]
    Equals,
    #[serde(alias = "neq", alias = "ne")]
    NotEquals,
    #[serde(alias = "gt")]
    GreaterThan,
    #[serde(alias = "gte")]
    GreaterThanOrEqual,
    #[serde(alias = "lt")]
    LessThan,
    #[serde(alias = "lte")]
    LessThanOrEqual,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    In,
    NotIn,
    #[serde(alias = "exists")]
    IsKnown,
    #[serde(alias = "not_exists")]
    IsUnknown,
    Between,
    Changed,
    ChangedFrom,
    ChangedTo,
    WithinLastDays,
    MoreThanDaysAgo,
    #[serde(alias = "regex")]
    Matches,
}

/// What an operator expects as its `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// No value (`is_known`, `is_unknown`, `changed`).
    None,
    /// Any JSON value (`equals`, `contains`, `changed_to`, ...).
    Any,
    /// A number, or a string holding a number, an RFC 3339 timestamp or a date.
    Comparable,
    /// A string.
    String,
    /// A list of values.
    List,
    /// A list of two comparables.
    Range,
    /// A non-negative number of days.
    Days,
    /// A regular expression.
    Regex,
}

impl Operator {
    /// Every operator, in canonical order.
    pub const ALL: [Operator; 21] = [
        Operator::Equals,
        Operator::NotEquals,
        Operator::GreaterThan,
        Operator::GreaterThanOrEqual,
        Operator::LessThan,
        Operator::LessThanOrEqual,
        Operator::Contains,
        Operator::NotContains,
        Operator::StartsWith,
        Operator::EndsWith,
        Operator::In,
        Operator::NotIn,
        Operator::IsKnown,
        Operator::IsUnknown,
        Operator::Between,
        Operator::Changed,
        Operator::ChangedFrom,
        Operator::ChangedTo,
        Operator::WithinLastDays,
        Operator::MoreThanDaysAgo,
        Operator::Matches,
    ];

    /// The accepted aliases, with the operator each one stands for.
    pub const ALIASES: [(&'static str, Operator); 11] = [
        ("eq", Operator::Equals),
        ("neq", Operator::NotEquals),
        ("ne", Operator::NotEquals),
        ("gt", Operator::GreaterThan),
        ("gte", Operator::GreaterThanOrEqual),
        ("lt", Operator::LessThan),
        ("lte", Operator::LessThanOrEqual),
        ("not_in", Operator::NotIn),
        ("regex", Operator::Matches),
        ("exists", Operator::IsKnown),
        ("not_exists", Operator::IsUnknown),
    ];

    /// The canonical snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "equals",
            Operator::NotEquals => "not_equals",
            Operator::GreaterThan => "greater_than",
            Operator::GreaterThanOrEqual => "greater_than_or_equal",
            Operator::LessThan => "less_than",
            Operator::LessThanOrEqual => "less_than_or_equal",
            Operator::Contains => "contains",
            Operator::NotContains => "not_contains",
            Operator::StartsWith => "starts_with",
            Operator::EndsWith => "ends_with",
            Operator::In => "in",
            Operator::NotIn => "not_in",
            Operator::IsKnown => "is_known",
            Operator::IsUnknown => "is_unknown",
            Operator::Between => "between",
            Operator::Changed => "changed",
            Operator::ChangedFrom => "changed_from",
            Operator::ChangedTo => "changed_to",
            Operator::WithinLastDays => "within_last_days",
            Operator::MoreThanDaysAgo => "more_than_days_ago",
            Operator::Matches => "matches",
        }
    }

    /// Looks an operator up by its canonical name or an alias (case-sensitive).
    pub fn from_name(name: &str) -> Option<Operator> {
        Operator::ALL.into_iter().find(|op| op.as_str() == name).or_else(|| {
            Operator::ALIASES
                .into_iter()
                .find(|(alias, _)| *alias == name)
                .map(|(_, op)| op)
        })
    }

    /// Every name accepted in input: canonical names, then aliases.
    pub fn accepted_names() -> impl Iterator<Item = &'static str> {
        Operator::ALL
            .into_iter()
            .map(Operator::as_str)
            .chain(Operator::ALIASES.into_iter().map(|(alias, _)| alias))
            .filter({
                let mut seen = Vec::new();
                move |name| {
                    if seen.contains(name) {
                        false
                    } else {
                        seen.push(*name);
                        true
                    }
                }
            })
    }

    /// The error message for an unknown operator name.
    pub(crate) fn unknown_message(name: &str) -> String {
        let canonical: Vec<&str> = Operator::ALL.into_iter().map(Operator::as_str).collect();
        let aliases: Vec<String> = Operator::ALIASES
            .into_iter()
            .filter(|(alias, op)| *alias != op.as_str())
            .map(|(alias, op)| format!("{alias} (= {op})"))
            .collect();
        format!(
            "unknown operator \"{name}\"; expected one of {}; aliases: {}",
            canonical.join(", "),
            aliases.join(", ")
        )
    }

    /// What the operator expects as its value.
    pub(crate) fn value_kind(self) -> ValueKind {
        match self {
            Operator::IsKnown | Operator::IsUnknown | Operator::Changed => ValueKind::None,
            Operator::Equals
            | Operator::NotEquals
            | Operator::Contains
            | Operator::NotContains
            | Operator::ChangedFrom
            | Operator::ChangedTo => ValueKind::Any,
            Operator::GreaterThan | Operator::GreaterThanOrEqual | Operator::LessThan | Operator::LessThanOrEqual => {
                ValueKind::Comparable
            }
            Operator::StartsWith | Operator::EndsWith => ValueKind::String,
            Operator::In | Operator::NotIn => ValueKind::List,
            Operator::Between => ValueKind::Range,
            Operator::WithinLastDays | Operator::MoreThanDaysAgo => ValueKind::Days,
            Operator::Matches => ValueKind::Regex,
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no operator; its text lists the operators and their aliases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Operator::unknown_message(.0))]
pub struct UnknownOperator(pub String);

impl std::str::FromStr for Operator {
    type Err = UnknownOperator;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operator::from_name(s).ok_or_else(|| UnknownOperator(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_match_serde() {
        for op in Operator::ALL {
            let json = serde_json::to_value(op).unwrap();
            assert_eq!(json, serde_json::Value::String(op.as_str().to_owned()));
            assert_eq!(Operator::from_name(op.as_str()), Some(op));
            let back: Operator = serde_json::from_value(json).unwrap();
            assert_eq!(back, op);
        }
    }

    #[test]
    fn aliases_resolve_in_from_name_and_serde() {
        for (alias, op) in Operator::ALIASES {
            assert_eq!(Operator::from_name(alias), Some(op), "{alias}");
            let back: Operator = serde_json::from_value(serde_json::Value::String(alias.to_owned())).unwrap();
            assert_eq!(back, op, "{alias}");
        }
        assert_eq!(Operator::from_name("exists"), Some(Operator::IsKnown));
        assert_eq!(Operator::from_name("ne"), Some(Operator::NotEquals));
        assert_eq!(Operator::from_name("EQ"), None);
    }

    #[test]
    fn unknown_operator_message_lists_the_choices() {
        let error = "eqals".parse::<Operator>().unwrap_err();
        assert_eq!(error, UnknownOperator("eqals".to_string()));
        let message = error.to_string();
        assert!(message.starts_with("unknown operator \"eqals\"; expected one of equals, not_equals"));
        assert!(message.contains("exists (= is_known)"));
        // `not_in` is both a canonical name and a listed alias: named once.
        assert_eq!(Operator::accepted_names().filter(|n| *n == "not_in").count(), 1);
    }
}
