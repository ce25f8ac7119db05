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
}
