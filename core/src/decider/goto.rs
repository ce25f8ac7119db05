//! `goto` steps: the run jumps to another step (loops are bounded by `limits.max_steps`).

use super::{Flow, Machine};
use crate::definition::Step;
use crate::run::StepStatus;

impl Machine<'_> {
    pub(super) fn enter_goto(&mut self, step: &Step, target: &str) -> Flow {
        self.instant(step, StepStatus::Completed, format!("goto {target}"));
        Flow::Next(Some(target.to_string()))
    }
}
