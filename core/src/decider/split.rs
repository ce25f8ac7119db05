//! `split` steps: a stable random draw picks a path.

use super::{Flow, Machine, StepError};
use crate::definition::{SplitSpec, Step};
use crate::run::StepStatus;

impl Machine<'_> {
    pub(super) fn enter_split(&mut self, step: &Step, split: &SplitSpec) -> Result<Flow, StepError> {
        let draw = split_draw(&self.run.run_id, &step.id);
        let chosen = chosen_path(split, draw);
        let path = split.paths.get(chosen).ok_or(StepError::NoSplitPath)?;
        let label = path.name.clone().unwrap_or_else(|| format!("path {}", chosen + 1));
        self.instant(
            step,
            StepStatus::Completed,
            format!("took {label} ({}%), draw {draw} of 100", path.percent),
        );
        Ok(Flow::Next(self.program.path_entry(&step.id, &path.steps)))
    }
}

/// The index of the path a draw falls in (the last path when the percentages fall short).
fn chosen_path(split: &SplitSpec, draw: u32) -> usize {
    let mut acc = 0;
    for (i, path) in split.paths.iter().enumerate() {
        acc += path.percent;
        if draw < acc {
            return i;
        }
    }
    split.paths.len().saturating_sub(1)
}

/// A stable draw in 0..100 for a split: FNV-1a of "run_id/step_id". Stable across processes and
/// releases (std's hasher is not), so a redelivered message takes the same path.
pub fn split_draw(run_id: &str, step_id: &str) -> u32 {
    let key: [&[u8]; 3] = [run_id.as_bytes(), b"/", step_id.as_bytes()];
    (crate::ids::fnv1a64_parts(&key) % 100) as u32
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_draw_is_fnv1a_of_run_id_slash_step_id() {
        for (run_id, step_id) in [
            ("r1", "ab"),
            ("019ca6b1-dc00-7bc6-bcef-b689e96fb1e4", "split"),
            ("", ""),
        ] {
            let joined = format!("{run_id}/{step_id}");
            assert_eq!(
                super::split_draw(run_id, step_id),
                (crate::ids::fnv1a64(joined.as_bytes()) % 100) as u32
            );
        }
    }
}
