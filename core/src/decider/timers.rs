//! Time for steps: the run's zone, a step entry's timer, timeouts, and where a fired timer goes.

use super::Machine;
use crate::definition::StepKind;
use crate::run::{TimerRef, WaitingFor};
use crate::time::{DurationSpec, TimeError};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

impl Machine<'_> {
    /// The zone waits and timeouts are computed in: the contact's, else the automation's.
    pub(super) fn zone(&self) -> TimeZone {
        crate::wait::zone_for(
            self.run.data.contact.get("timezone").and_then(Value::as_str),
            self.program.automation.timezone.as_ref(),
        )
    }

    /// The timer of the step entry about to be parked (it takes the next seq).
    pub(super) fn timer_for(&self, due_at: Timestamp) -> TimerRef {
        TimerRef {
            timer_id: self.entry_id(self.run.history_len),
            due_at,
        }
    }

    /// The timer for a step's optional timeout: due that long from now, in the run's zone.
    pub(super) fn timeout_timer(&self, timeout: Option<&DurationSpec>) -> Result<Option<TimerRef>, TimeError> {
        let Some(timeout) = timeout else { return Ok(None) };
        let due = timeout.add_to(&self.now.to_zoned(self.zone()))?.timestamp();
        Ok(Some(self.timer_for(due)))
    }

    /// A timer fired: if it is the current step's, that step's kind says what happens. Any other
    /// timer is stale.
    pub(super) fn timer_fired(&mut self, timer_id: &str) {
        let Some(cursor) = &self.run.cursor else { return };
        if cursor.timer.as_ref().is_none_or(|t| t.timer_id != timer_id) {
            return;
        }
        let waiting_for = cursor.waiting_for.clone();
        let Some(node) = self.node(&cursor.step_id) else { return };
        match (waiting_for, &node.step.kind) {
            (WaitingFor::Timer, _) => self.wait_elapsed(node),
            (WaitingFor::Event, StepKind::WaitForEvent(spec)) => self.event_timed_out(node, spec),
            (WaitingFor::Goal, _) => self.goal_timed_out(node),
            (WaitingFor::Task, StepKind::HumanTask(task)) => self.task_timed_out(node, task),
            _ => {}
        }
    }
}
