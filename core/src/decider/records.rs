//! History records and the cursor: new entries, instant steps, parking the run on a step and
//! closing the step it is parked on.

use super::Machine;
use super::lifecycle::Ending;
use crate::command::Command;
use crate::definition::Step;
use crate::run::{Cursor, RunStatus, StepRecord, StepStatus, TimerRef, WaitingFor};
use serde_json::{Map, Value};
use std::fmt::Display;

impl Machine<'_> {
    /// A record for the next history entry (takes its seq).
    pub(super) fn new_record(
        &mut self,
        step_id: &str,
        step_type: &str,
        status: StepStatus,
        detail: String,
    ) -> StepRecord {
        let seq = self.run.history_len;
        self.run.history_len += 1;
        StepRecord {
            seq,
            step_id: step_id.to_string(),
            step_type: step_type.to_string(),
            status,
            started_at: self.now,
            finished_at: None,
            attempt: 0,
            detail,
            error: None,
            skip_reason: None,
            output: None,
        }
    }

    /// Records an instant step (entered and finished now).
    pub(super) fn instant(&mut self, step: &Step, status: StepStatus, detail: String) {
        let mut rec = self.new_record(&step.id, step.kind.type_name(), status, detail);
        rec.finished_at = Some(self.now);
        self.records.push(rec);
    }

    /// Records an instant step with an output (also seen as `steps.<id>.output`).
    pub(super) fn instant_with_output(
        &mut self,
        step: &Step,
        step_type: &str,
        status: StepStatus,
        detail: String,
        output: Value,
    ) -> &mut StepRecord {
        let mut rec = self.new_record(&step.id, step_type, status, detail);
        rec.finished_at = Some(self.now);
        rec.output = Some(output.clone());
        self.remember_step(&step.id, status, Some(output));
        self.records.push(rec);
        let last = self.records.len() - 1;
        &mut self.records[last]
    }

    /// Records a step that failed as it was entered.
    pub(super) fn record_failure(&mut self, step: &Step, step_type: &str, detail: String, error: &dyn Display) {
        let mut rec = self.new_record(&step.id, step_type, StepStatus::Failed, detail);
        rec.finished_at = Some(self.now);
        rec.error = Some(error.to_string());
        self.records.push(rec);
    }

    /// Records a step that failed as it was entered, and fails the run.
    pub(super) fn fail_step(&mut self, step: &Step, step_type: &str, error: &dyn Display) {
        self.record_failure(step, step_type, String::new(), error);
        self.step_failed(&step.id, error);
    }

    /// Fails the run because of one step.
    pub(super) fn step_failed(&mut self, step_id: &str, error: &dyn Display) {
        self.end(Ending::Failed, format!("step \"{step_id}\" failed: {error}"));
        self.run.failure = Some(crate::run::Failure {
            step_id: step_id.to_string(),
            uncertain: false,
        });
    }

    /// Parks the run on a step.
    pub(super) fn park(
        &mut self,
        step: &Step,
        step_type: &str,
        waiting_for: WaitingFor,
        timer: Option<TimerRef>,
        detail: String,
        status: RunStatus,
    ) {
        let rec_status = if status == RunStatus::Waiting {
            StepStatus::Waiting
        } else {
            StepStatus::Running
        };
        let mut record = self.new_record(&step.id, step_type, rec_status, detail);
        if let WaitingFor::Action { .. } = waiting_for {
            record.attempt = 1;
        }
        if let Some(t) = &timer {
            self.commands.push(Command::ScheduleTimer {
                timer_id: t.timer_id.clone(),
                due_at: t.due_at,
            });
        }
        self.records.push(record.clone());
        self.run.cursor = Some(Cursor {
            step_id: step.id.clone(),
            waiting_for,
            timer,
            record,
        });
        self.run.status = status;
    }

    /// `{run_id}.{seq}`: names what belongs to one step entry (its timer, its human task).
    pub(super) fn entry_id(&self, seq: u32) -> String {
        format!("{}.{seq}", self.run.run_id)
    }

    /// Closes the open step: rewrites its record, cancels its timer, withdraws a human task
    /// that was not completed, clears the cursor.
    pub(super) fn close(&mut self, status: StepStatus, detail: String, error: Option<String>, output: Option<Value>) {
        let Some(cursor) = self.run.cursor.take() else { return };
        if cursor.waiting_for == WaitingFor::Task && status != StepStatus::Completed {
            self.commands.push(Command::CloseTask {
                step_id: cursor.step_id.clone(),
                task_id: self.entry_id(cursor.record.seq),
                reason: detail.clone(),
            });
        }
        if let Some(t) = cursor.timer {
            // A timer that fired is gone already; cancelling it again is harmless.
            if !(status == StepStatus::Completed && cursor.waiting_for == WaitingFor::Timer)
                && status != StepStatus::TimedOut
            {
                self.commands.push(Command::CancelTimer {
                    timer_id: t.timer_id,
                    due_at: t.due_at,
                });
            }
        }
        if cursor.waiting_for == WaitingFor::Continue {
            return;
        }
        let mut rec = cursor.record;
        rec.status = status;
        rec.finished_at = Some(self.now);
        if rec.detail.is_empty() {
            rec.detail = detail;
        } else {
            rec.detail.push_str("; ");
            rec.detail.push_str(&detail);
        }
        rec.error = error;
        if let Some(out) = &output {
            rec.output = Some(out.clone());
        }
        self.remember_step(&rec.step_id, status, output);
        if status == StepStatus::Skipped {
            rec.skip_reason = Some(rec.detail.clone());
        }
        self.records.retain(|r| r.seq != rec.seq);
        self.records.push(rec);
        self.run.status = RunStatus::Running;
    }

    /// `steps.<id>` in the scope: how the step ended and its output.
    fn remember_step(&mut self, step_id: &str, status: StepStatus, output: Option<Value>) {
        let mut step_data = Map::with_capacity(2);
        step_data.insert("status".into(), Value::String(status.as_str().to_string()));
        step_data.insert("output".into(), output.unwrap_or(Value::Null));
        self.run
            .data
            .steps
            .insert(step_id.to_string(), Value::Object(step_data));
    }
}
