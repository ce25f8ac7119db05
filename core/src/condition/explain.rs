//! Human-readable explanations of condition results, for run history.

use serde_json::Value;

use super::Condition;
use super::error::ConditionError;
use super::scope::Scope;

/// Longest value shown in an explanation, in characters.
pub(crate) const MAX_VALUE_CHARS: usize = 60;
/// Longest explanation, in characters.
pub const MAX_EXPLANATION_CHARS: usize = 600;

/// A value as compact JSON, cut to [`MAX_VALUE_CHARS`].
pub(crate) fn short_value(value: &Value) -> String {
    truncate(&value.to_string(), MAX_VALUE_CHARS)
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if text[cut..].chars().nth(1).is_some() => {
            format!("{}…", &text[..cut])
        }
        _ => text.to_owned(),
    }
}

fn verdict(result: bool) -> &'static str {
    if result { "true" } else { "false" }
}

impl Condition {
    /// Like [`evaluate`](Condition::evaluate), but also returns a short explanation for run
    /// history, e.g. `record.amount (250000) greater_than 200000 → true` or
    /// `all of 2 → false (record.stage ("Open") equals "Closed Won" → false)`.
    ///
    /// `all`/`any` show the child that decided (the first false one for `all`, the first true one
    /// for `any`), or every child when all of them agreed. Values are cut to 60 characters and
    /// the whole text to [`MAX_EXPLANATION_CHARS`]. Evaluation short-circuits as in `evaluate`.
    pub fn explain(&self, scope: &Scope) -> Result<(bool, String), ConditionError> {
        let (result, text) = match self {
            Condition::All(children) => explain_group("all", children, false, scope)?,
            Condition::Any(children) => explain_group("any", children, true, scope)?,
            Condition::Not(inner) => {
                let (inner_result, inner_text) = inner.explain(scope)?;
                (
                    !inner_result,
                    format!("not ({inner_text}) → {}", verdict(!inner_result)),
                )
            }
            Condition::Rule(rule) => rule.explain(scope)?,
            Condition::Expression(expression) => {
                let result = expression.evaluate(scope)?;
                (
                    result,
                    format!("cel `{}` → {}", truncate(expression.source(), 200), verdict(result)),
                )
            }
        };
        Ok((result, truncate(&text, MAX_EXPLANATION_CHARS)))
    }
}

/// `all`/`any` of `children`; `decisive` is the child result that settles the group.
fn explain_group(
    name: &str,
    children: &[Condition],
    decisive: bool,
    scope: &Scope,
) -> Result<(bool, String), ConditionError> {
    let mut texts = Vec::with_capacity(children.len());
    for child in children {
        let (result, text) = child.explain(scope)?;
        if result == decisive {
            return Ok((
                decisive,
                format!("{name} of {} → {} ({text})", children.len(), verdict(decisive)),
            ));
        }
        texts.push(text);
    }
    let result = !decisive;
    let mut text = format!("{name} of {} → {}", children.len(), verdict(result));
    if !texts.is_empty() {
        text = format!("{text} ({})", texts.join("; "));
    }
    Ok((result, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééééé", 4), "ééé…");
        assert_eq!(truncate("", 3), "");
        assert_eq!(truncate("ab", 0), "…");
        assert!(truncate(&"x".repeat(1000), 60).chars().count() == 60);
    }
}
