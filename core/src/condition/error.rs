//! Errors of parsing and evaluating conditions.

/// A condition could not be evaluated.
///
/// Field rules only fail when they were put together by hand in a way parsing would have
/// rejected; type mismatches are `false`, not errors. CEL expressions fail on a runtime error
/// or a result that is not a bool.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConditionError {
    /// A CEL expression raised an error while running.
    #[error("CEL expression `{expression}` failed: {message}")]
    Cel { expression: String, message: String },
    /// A CEL expression used as a condition evaluated to something else than a bool.
    #[error("CEL expression `{expression}` returned {found}, expected a bool")]
    NotBool { expression: String, found: String },
    /// A field rule is invalid (e.g. `between` whose value is not a list of two), which only
    /// happens when it was built or changed without the validation of parsing.
    #[error("field rule on `{field}` is invalid: {message}")]
    InvalidRule { field: String, message: String },
}

/// A condition could not be parsed. `path` locates the problem inside the condition, e.g.
/// `all[1].op`; it is empty for the condition itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConditionParseError {
    /// Where in the condition, e.g. `any[0].not.value`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConditionParseError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConditionParseError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error, located below `prefix` (`all[1]` + `op` = `all[1].op`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.path = join_path(prefix, &self.path);
        self
    }

    /// `path: message`, or just the message when the path is empty.
    pub fn to_message(&self) -> String {
        if self.path.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.path, self.message)
        }
    }
}

/// Joins two parts of a condition path: `all` + `[1]` = `all[1]`, `all[1]` + `op` = `all[1].op`.
pub(crate) fn join_path(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else if rest.is_empty() {
        prefix.to_owned()
    } else if rest.starts_with('[') {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}.{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_like_accessors() {
        assert_eq!(join_path("", "all"), "all");
        assert_eq!(join_path("all", "[1]"), "all[1]");
        assert_eq!(join_path("all[1]", "op"), "all[1].op");
        assert_eq!(join_path("not", ""), "not");
        let e = ConditionParseError::new("op", "bad").under("any[2]");
        assert_eq!(e.to_string(), "any[2].op: bad");
        assert_eq!(ConditionParseError::new("", "bad").to_message(), "bad");
    }
}
