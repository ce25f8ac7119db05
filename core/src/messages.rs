//! Messages between the handlers (JSON bodies of SQS messages on AWS).

use crate::command::{Input, PerformAction};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// For evaluate: one input for one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepMessage {
    pub tenant: String,
    pub run_id: String,
    #[serde(flatten)]
    pub input: Input,
}

/// For execute: an action to perform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionMessage {
    #[serde(flatten)]
    pub action: PerformAction,
}
