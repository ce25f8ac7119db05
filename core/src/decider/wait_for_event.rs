//! `wait_for_event` steps: park the run until a matching event arrives (`on_event`) or the
//! timeout passes (`on_timeout`). Which events match is decided in `events`.

use super::{Flow, Machine, StepError};
use crate::definition::program::Node;
use crate::definition::{Step, WaitForEventSpec};
use crate::event::Event;
use crate::run::{RunStatus, StepStatus, WaitingFor};

impl Machine<'_> {
    pub(super) fn enter_wait_for_event(&mut self, step: &Step, spec: &WaitForEventSpec) -> Result<Flow, StepError> {
        let timer = self.timeout_timer(spec.timeout.as_ref())?;
        let detail = match &timer {
            Some(t) => format!("waiting for {} until {}", spec.event, t.due_at),
            None => format!("waiting for {} (no timeout)", spec.event),
        };
        self.park(
            step,
            "wait_for_event",
            WaitingFor::Event,
            timer,
            detail,
            RunStatus::Waiting,
        );
        Ok(Flow::Stop)
    }

    /// The awaited event arrived (`why`: how its condition held, if it has one).
    pub(super) fn event_received(&mut self, node: &Node, spec: &WaitForEventSpec, event: &Event, why: &str) {
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(" ({why})")
        };
        self.close(
            StepStatus::Completed,
            format!("received {} {}{why}", event.event_type, event.id),
            None,
            Some(event.to_scope_value()),
        );
        let entry = self.program.path_entry(&node.step.id, &spec.on_event);
        self.run_from(entry);
    }

    /// No matching event before the timeout.
    pub(super) fn event_timed_out(&mut self, node: &Node, spec: &WaitForEventSpec) {
        let timeout = spec
            .timeout
            .as_ref()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default();
        self.close(
            StepStatus::TimedOut,
            format!("no {} within {timeout}", spec.event),
            None,
            None,
        );
        let entry = self.program.path_entry(&node.step.id, &spec.on_timeout);
        self.run_from(entry);
    }
}
