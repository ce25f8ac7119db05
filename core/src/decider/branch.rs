//! `branch` steps: take the first path whose condition holds, or `else`, and say why.

use super::{Flow, Machine, StepError};
use crate::definition::{BranchSpec, Step};
use crate::run::StepStatus;

impl Machine<'_> {
    pub(super) fn enter_branch(&mut self, step: &Step, branch: &BranchSpec) -> Result<Flow, StepError> {
        let cases = branch.cases();
        let conditions = || {
            branch
                .condition
                .iter()
                .chain(branch.cases.iter().map(|case| &case.when))
        };
        let reads = |root: &str| conditions().any(|condition| condition.reads(root));
        let taken = self.with_scope(reads, |_, scope| {
            let mut explanations = Vec::new();
            for (label, condition, path) in cases {
                match condition.explain(scope) {
                    Ok((true, why)) => return Ok(Ok((label, why, path))),
                    Ok((false, why)) => explanations.push(format!("{label}: {why}")),
                    Err(error) => return Err(StepError::Branch { label, error }),
                }
            }
            Ok(Err(explanations))
        })?;
        match taken {
            Ok((label, why, path)) => {
                self.instant(step, StepStatus::Completed, format!("took {label}: {why}"));
                Ok(Flow::Next(self.program.path_entry(&step.id, path)))
            }
            Err(explanations) => {
                let detail = format!("took else: {}", explanations.join("; "));
                self.instant(step, StepStatus::Completed, detail);
                Ok(Flow::Next(self.program.path_entry(&step.id, &branch.otherwise)))
            }
        }
    }
}
