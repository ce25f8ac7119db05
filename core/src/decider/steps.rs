//! The walk through the steps: start, resume after a yield, enter steps until the run must wait
//! or ends, and hand each step to its kind's module.

use super::lifecycle::Ending;
use super::{Flow, MAX_STEPS_PER_DECISION, Machine};
use crate::command::Command;
use crate::condition::ConditionError;
use crate::definition::StepKind;
use crate::definition::program::Node;
use crate::render::RenderError;
use crate::run::{Cursor, RunStatus, StepStatus, WaitingFor};
use crate::template::TemplateError;
use crate::time::TimeError;
use crate::wait::WaitError;

/// Why a step could not be entered. The message becomes the failed step's `error` and, unless
/// the step goes on after errors, part of the run's outcome.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// An action's templates did not render.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// An action's effect breaks a limit.
    #[error(transparent)]
    Refused(#[from] super::EffectRefused),
    /// A wait's due time could not be computed.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// A branch's condition could not be evaluated.
    #[error("{label}: {error}")]
    Branch { label: String, error: ConditionError },
    /// A split without paths (validation refuses it; kept for a program built in code).
    #[error("split has no paths")]
    NoSplitPath,
    /// A goal's condition could not be evaluated.
    #[error(transparent)]
    Condition(#[from] ConditionError),
    /// A timeout's due time is out of range.
    #[error(transparent)]
    Timeout(#[from] TimeError),
    /// A human task's title or description did not render.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl Machine<'_> {
    /// Starts a new run at its first step (a repeated start does nothing).
    pub(super) fn start(&mut self) {
        if self.run.cursor.is_none() && self.run.history_len == 0 {
            let first = self.program.first_step().map(str::to_string);
            self.run_from(first);
        }
    }

    /// Goes on where the run yielded.
    pub(super) fn resume_after_yield(&mut self) {
        let Some(cursor) = &self.run.cursor else { return };
        if cursor.waiting_for != WaitingFor::Continue {
            return;
        }
        let next = cursor.step_id.clone();
        self.run.cursor = None;
        self.run_from(Some(next));
        // Events deferred while an action was out stay queued when the decision after its
        // result yielded; apply them now that the run has moved on.
        self.drain_deferred();
    }

    /// Enters steps from `next` until the run must wait or ends.
    pub(super) fn run_from(&mut self, mut next: Option<String>) {
        loop {
            if self.run.status.is_terminal() {
                return;
            }
            let Some(id) = next.take() else {
                self.end(Ending::Completed, "reached the end of the automation".to_string());
                return;
            };
            if self.run.steps_entered >= self.program.automation.limits.max_steps {
                let reason = format!(
                    "step limit exceeded: the run entered {} steps (limits.max_steps); stopped to prevent a runaway loop",
                    self.run.steps_entered
                );
                self.end(Ending::Failed, reason);
                return;
            }
            if self.entered_this_decision >= MAX_STEPS_PER_DECISION {
                self.yield_at(id);
                return;
            }
            let Some(node) = self.node(&id) else {
                let reason = format!(
                    "step \"{id}\" does not exist in {} v{}",
                    self.program.id(),
                    self.program.version()
                );
                self.end(Ending::Failed, reason);
                return;
            };
            match self.enter(node) {
                Flow::Next(n) => next = n,
                Flow::Stop => return,
            }
        }
    }

    /// Stops entering steps for this decision; a `Continue` message goes on at `step_id`.
    fn yield_at(&mut self, step_id: String) {
        let record = self.new_record(
            &step_id,
            "continue",
            StepStatus::Running,
            "yielded; continues in the next message".to_string(),
        );
        // The yield marker is not a history entry: give the seq back.
        self.run.history_len -= 1;
        self.run.cursor = Some(Cursor {
            step_id,
            waiting_for: WaitingFor::Continue,
            timer: None,
            record,
        });
        self.run.status = RunStatus::Running;
        self.commands.push(Command::Continue);
    }

    /// Enters one step; says where the run goes next. A step that cannot be entered fails (and
    /// with it the run).
    fn enter(&mut self, node: &Node) -> Flow {
        self.run.steps_entered += 1;
        self.entered_this_decision += 1;
        let step = &node.step;
        let entered = match &step.kind {
            StepKind::Action(action) => Ok(self.enter_action(node, action)),
            StepKind::Wait(spec) => self.enter_wait(node, spec),
            StepKind::Branch(branch) => self.enter_branch(step, branch),
            StepKind::Split(split) => self.enter_split(step, split),
            StepKind::WaitForEvent(spec) => self.enter_wait_for_event(step, spec),
            StepKind::Goal(goal) => self.enter_goal(node, goal),
            StepKind::HumanTask(task) => self.enter_human_task(step, task),
            StepKind::End(end) => Ok(self.enter_end(step, end)),
            StepKind::Goto(target) => Ok(self.enter_goto(step, target)),
        };
        entered.unwrap_or_else(|error| {
            self.fail_step(step, step.kind.type_name(), &error);
            Flow::Stop
        })
    }
}
