//! `end` steps: the run completes here.

use super::lifecycle::Ending;
use super::{Flow, Machine};
use crate::definition::{EndSpec, Step};
use crate::run::StepStatus;

impl Machine<'_> {
    pub(super) fn enter_end(&mut self, step: &Step, end: &EndSpec) -> Flow {
        let reason = end.reason.clone().unwrap_or_else(|| "end step".to_string());
        self.instant(step, StepStatus::Completed, reason.clone());
        self.end(Ending::Completed, format!("ended at step \"{}\": {reason}", step.id));
        Flow::Stop
    }
}
