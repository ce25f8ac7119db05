//! `human_task` steps: open a task in the CRM and park the run until it is completed or its
//! timeout passes. A task the run leaves any other way is withdrawn (see `records`).

use super::{Flow, Machine, StepError};
use crate::command::Command;
use crate::definition::program::Node;
use crate::definition::{HumanTaskSpec, Step};
use crate::run::{RunStatus, StepStatus, WaitingFor};
use serde_json::Value;

impl Machine<'_> {
    pub(super) fn enter_human_task(&mut self, step: &Step, task: &HumanTaskSpec) -> Result<Flow, StepError> {
        let scope = self.scope_parts();
        let title = task.title.render_text_in(&scope)?;
        let description = task
            .description
            .as_ref()
            .map(|d| d.render_text_in(&scope))
            .transpose()?;
        drop(scope);
        let timer = self.timeout_timer(task.timeout.as_ref())?;
        // `park` gives the task's step entry the next seq.
        let task_id = self.entry_id(self.run.history_len);
        self.commands.push(Command::OpenTask {
            step_id: step.id.clone(),
            task_id,
            title: title.clone(),
            description,
            assignee: task.assignee.clone(),
        });
        self.park(
            step,
            "human_task",
            WaitingFor::Task,
            timer,
            format!("task \"{title}\" opened"),
            RunStatus::Waiting,
        );
        Ok(Flow::Stop)
    }

    /// The CRM reports the task done: its output is `steps.<id>.output`.
    pub(super) fn task_completed(&mut self, step_id: &str, output: &Value) {
        let fits = self
            .run
            .cursor
            .as_ref()
            .is_some_and(|c| c.step_id == step_id && c.waiting_for == WaitingFor::Task);
        if !fits {
            return;
        }
        let next = self.node(step_id).and_then(|n| n.next.clone());
        self.close(
            StepStatus::Completed,
            "task completed".to_string(),
            None,
            Some(output.clone()),
        );
        self.run_from(next);
    }

    /// Nobody completed the task in time.
    pub(super) fn task_timed_out(&mut self, node: &Node, task: &HumanTaskSpec) {
        self.close(
            StepStatus::TimedOut,
            "task not completed in time".to_string(),
            None,
            None,
        );
        let entry = self.program.path_entry(&node.step.id, &task.on_timeout);
        self.run_from(entry);
    }
}
