//! The error every definition check reports: a problem and where it is.

/// One problem in a definition. `path` is where it is (`steps[1].action.params.subject`);
/// an empty path means the document as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct DefinitionError {
    pub path: String,
    pub message: String,
}

impl DefinitionError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        DefinitionError {
            path: path.into(),
            message: message.into(),
        }
    }
}
