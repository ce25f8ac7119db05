//! How a run ends: completed, failed or cancelled, always with a reason.

use super::Machine;
use crate::command::Command;
use crate::run::{RunStatus, StepStatus};

/// The three ways a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// It went through (the last step, an `end` step, a goal that ends it).
    Completed,
    /// Something went wrong (a step failed, a limit was hit).
    Failed,
    /// It was stopped from outside (an exit rule, a cancel).
    Cancelled,
}

impl Ending {
    fn status(self) -> RunStatus {
        match self {
            Ending::Completed => RunStatus::Completed,
            Ending::Failed => RunStatus::Failed,
            Ending::Cancelled => RunStatus::Cancelled,
        }
    }

    fn command(self, reason: String) -> Command {
        match self {
            Ending::Completed => Command::Complete { reason },
            Ending::Failed => Command::Fail { reason },
            Ending::Cancelled => Command::Cancelled { reason },
        }
    }

    /// The detail of the step the run was on when it ended this way. A run completes only
    /// after it has left its step, so completing closes none.
    fn open_step_detail(self, reason: &str) -> Option<String> {
        match self {
            Ending::Completed => None,
            Ending::Failed => Some("run failed".to_string()),
            Ending::Cancelled => Some(format!("cancelled: {reason}")),
        }
    }
}

impl Machine<'_> {
    /// Ends the run (once: a run that has ended stays as it ended). The step it is on is
    /// cancelled, its timer and human task withdrawn.
    pub(super) fn end(&mut self, ending: Ending, reason: String) {
        if self.run.status.is_terminal() {
            return;
        }
        if self.run.cursor.is_some()
            && let Some(detail) = ending.open_step_detail(&reason)
        {
            self.close(StepStatus::Cancelled, detail, None, None);
        }
        self.run.status = ending.status();
        self.run.finished_at = Some(self.now);
        self.run.outcome = Some(reason.clone());
        self.run.deferred_events.clear();
        self.commands.push(ending.command(reason));
    }

    /// Brings a `failed` run back to the step it failed at (a retry): a new entry of that step,
    /// or, when the failed action may have been performed and `resend_uncertain` is false, an
    /// `uncertain` record for it and the step after. A run that did not fail at a step (a limit,
    /// an event it could not read) or did not fail at all is left as it is.
    pub(super) fn retry(&mut self, resend_uncertain: bool) {
        if self.run.status != RunStatus::Failed {
            return;
        }
        let Some(failure) = self.run.failure.take() else { return };
        let Some(node) = self.node(&failure.step_id) else {
            return;
        };
        self.run.status = RunStatus::Running;
        self.run.finished_at = None;
        self.run.outcome = None;
        self.run.retries += 1;
        let step = &node.step;
        let attempt = self.run.retries;
        let detail = format!("retry {attempt} of the run, from step \"{}\"", step.id);
        let mut note = self.new_record(&step.id, "retry", StepStatus::Completed, detail);
        note.finished_at = Some(self.now);
        self.records.push(note);
        if failure.uncertain && !resend_uncertain {
            let mut rec = self.new_record(
                &step.id,
                step.kind.type_name(),
                StepStatus::Uncertain,
                "not performed again on retry: the failed attempt may have performed it (retry with resend_uncertain to repeat it)".to_string(),
            );
            rec.finished_at = Some(self.now);
            self.records.push(rec);
            self.run_from(node.next.clone());
        } else {
            self.run_from(Some(step.id.clone()));
        }
    }
}
