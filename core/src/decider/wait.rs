//! `wait` steps: park the run until the computed instant (or go on if it is already due).

use super::{Flow, Machine, StepError};
use crate::definition::program::Node;
use crate::run::{RunStatus, StepStatus, WaitingFor};
use crate::wait::{WaitSpec, describe, due_at};

impl Machine<'_> {
    pub(super) fn enter_wait(&mut self, node: &Node, spec: &WaitSpec) -> Result<Flow, StepError> {
        let zone = self.zone();
        let now = self.now;
        // Only an `until_field` wait reads the scope; the others are given an empty one.
        let due = match spec.until_field {
            Some(_) => self.with_scope(|_| true, |_, scope| due_at(spec, now, &zone, &scope.root))?,
            None => due_at(spec, now, &zone, &serde_json::Value::Null)?,
        };
        let detail = describe(spec, due, &zone);
        if due <= self.now {
            self.instant(&node.step, StepStatus::Completed, format!("{detail} (already due)"));
            return Ok(Flow::Next(node.next.clone()));
        }
        let timer = self.timer_for(due);
        self.park(
            &node.step,
            "wait",
            WaitingFor::Timer,
            Some(timer),
            detail,
            RunStatus::Waiting,
        );
        Ok(Flow::Stop)
    }

    /// The wait's timer fired.
    pub(super) fn wait_elapsed(&mut self, node: &Node) {
        self.close(StepStatus::Completed, "waited".to_string(), None, None);
        self.run_from(node.next.clone());
    }
}
