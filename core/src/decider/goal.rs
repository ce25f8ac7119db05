//! `goal` steps: entered in order, a goal already met is passed (or ends the run); a required
//! goal not met yet holds the run until it is, or until its timeout. Goals met by an event
//! while the run is at an earlier step are found in `events`.

use super::lifecycle::Ending;
use super::{Flow, Machine, StepError};
use crate::definition::GoalSpec;
use crate::definition::program::Node;
use crate::definition::step::GoalReached;
use crate::run::{RunStatus, StepStatus, WaitingFor};

impl Machine<'_> {
    pub(super) fn enter_goal(&mut self, node: &Node, goal: &GoalSpec) -> Result<Flow, StepError> {
        let step = &node.step;
        // A condition-only goal may already hold when the run gets here.
        if goal.event.is_none()
            && let Some(condition) = &goal.condition
            && let (true, why) = self.with_scope(|root| condition.reads(root), |_, scope| condition.explain(scope))?
        {
            self.instant(step, StepStatus::Completed, format!("goal reached: {why}"));
            return Ok(self.after_goal(node, goal.on_reached));
        }
        if !goal.required {
            self.instant(
                step,
                StepStatus::Skipped,
                "optional goal not met yet; continuing".to_string(),
            );
            return Ok(Flow::Next(node.next.clone()));
        }
        let timer = self.timeout_timer(goal.timeout.as_ref())?;
        let detail = match &timer {
            Some(t) => format!("waiting for the goal until {}", t.due_at),
            None => "waiting for the goal".to_string(),
        };
        self.park(step, "goal", WaitingFor::Goal, timer, detail, RunStatus::Waiting);
        Ok(Flow::Stop)
    }

    /// An event met a goal at or after the run's position (`at_goal`: the run waits at it).
    pub(super) fn goal_reached(&mut self, node: &Node, goal: &GoalSpec, at_goal: bool, why: &str) {
        if at_goal {
            self.close(StepStatus::Completed, format!("goal reached: {why}"), None, None);
        } else {
            self.close(
                StepStatus::Cancelled,
                format!("left: goal \"{}\" reached", node.step.id),
                None,
                None,
            );
            self.instant(&node.step, StepStatus::Completed, format!("goal reached early: {why}"));
        }
        if let Flow::Next(next) = self.after_goal(node, goal.on_reached) {
            self.run_from(next);
        }
    }

    /// A required goal's timeout passed: the run ends.
    pub(super) fn goal_timed_out(&mut self, node: &Node) {
        self.close(StepStatus::TimedOut, "goal not reached in time".to_string(), None, None);
        self.end(
            Ending::Completed,
            format!("goal \"{}\" not reached before its timeout", node.step.id),
        );
    }

    fn after_goal(&mut self, node: &Node, on_reached: GoalReached) -> Flow {
        match on_reached {
            GoalReached::Continue => Flow::Next(node.next.clone()),
            GoalReached::End => {
                self.end(
                    Ending::Completed,
                    format!("goal \"{}\" reached; run ends", node.step.id),
                );
                Flow::Stop
            }
        }
    }
}
