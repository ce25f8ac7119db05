//! `GET /api/v1/automations/{id}/stats`: enrollments, and per step how many runs entered it,
//! completed it, failed at it and wait on it now; conversion for goals. Counted from the
//! automation's newest runs (`runs`, default 500, at most 1,000) and their histories when read:
//! nothing is counted on the hot path, so runs cost no extra write.

use crate::ApiState;
use crate::auth::Caller;
use crate::problem::Problem;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use crmflow_core::ports::RunFilter;
use crmflow_core::run::{Run, StepRecord, StepStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

const DEFAULT_RUNS: usize = 500;
const MAX_RUNS: usize = 1000;

/// The query.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// How many of the newest runs to count (default 500).
    #[schemars(range(min = 1, max = 1000))]
    runs: Option<usize>,
}

/// One step's counts.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct StepStats {
    pub step_id: String,
    /// `action:send_email`, `wait`, `branch`, ...
    #[serde(rename = "type")]
    pub step_type: String,
    /// Entries (a step entered twice by one run, by a loop or a retry, counts twice).
    pub entered: u64,
    pub completed: u64,
    pub failed: u64,
    /// Runs parked on the step now.
    pub waiting_now: u64,
}

/// A goal's conversion.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GoalStats {
    pub step_id: String,
    /// Runs that reached the goal step.
    pub entered: u64,
    /// Of those, runs whose goal was met.
    pub converted: u64,
    /// `converted / entered`, 0 when none entered.
    pub conversion_rate: f64,
}

/// The statistics.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Stats {
    pub automation_id: String,
    /// Runs counted: the newest ones, at most the `runs` asked for.
    pub runs_counted: usize,
    /// False when the automation has more runs than were counted.
    pub complete: bool,
    /// Runs counted, which is enrollments in that window.
    pub enrollments: usize,
    /// Runs counted by status.
    pub by_status: BTreeMap<String, u64>,
    /// Steps in the order runs first entered them.
    pub steps: Vec<StepStats>,
    pub goals: Vec<GoalStats>,
}

pub async fn stats(
    State(state): State<ApiState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<Stats>, Problem> {
    let Path(id) = id.map_err(|e| Problem::invalid_field("id", e.body_text()))?;
    crate::automations::versions(state.automations.as_ref(), &caller, &id).await?;
    let Query(query) = query.map_err(Problem::from)?;
    let wanted = query.runs.unwrap_or(DEFAULT_RUNS);
    if wanted == 0 || wanted > MAX_RUNS {
        return Err(Problem::invalid_field("runs", format!("must be from 1 to {MAX_RUNS}")));
    }
    let tenant = &caller.0.tenant;
    let mut runs = state
        .run_directory
        .list_runs(tenant, &id, &RunFilter::default(), None, wanted + 1)
        .await
        .map_err(|e| Problem::store(&e))?;
    let complete = runs.len() <= wanted;
    runs.truncate(wanted);
    let mut tally = Tally::default();
    for run in &runs {
        let history = state
            .run_store
            .history(tenant, &run.run_id)
            .await
            .map_err(|e| Problem::store(&e))?;
        tally.add(run, &history);
    }
    Ok(Json(tally.into_stats(id, runs.len(), complete)))
}

#[derive(Default)]
struct Tally {
    by_status: BTreeMap<String, u64>,
    steps: Vec<StepStats>,
    index: BTreeMap<String, usize>,
}

impl Tally {
    fn step(&mut self, record: &StepRecord) -> &mut StepStats {
        let next = self.steps.len();
        let at = *self.index.entry(record.step_id.clone()).or_insert(next);
        if at == next {
            self.steps.push(StepStats {
                step_id: record.step_id.clone(),
                step_type: record.step_type.clone(),
                ..StepStats::default()
            });
        }
        &mut self.steps[at]
    }

    fn add(&mut self, run: &Arc<Run>, history: &[StepRecord]) {
        *self.by_status.entry(run.status.as_str().to_owned()).or_default() += 1;
        for record in history.iter().filter(|r| r.step_type != "retry") {
            let parked = matches!(record.status, StepStatus::Running | StepStatus::Waiting)
                && !run.status.is_terminal()
                && run.cursor.as_ref().is_some_and(|c| c.record.seq == record.seq);
            let step = self.step(record);
            step.entered += 1;
            match record.status {
                StepStatus::Completed => step.completed += 1,
                StepStatus::Failed => step.failed += 1,
                _ => {}
            }
            if parked {
                step.waiting_now += 1;
            }
        }
    }

    fn into_stats(self, automation_id: String, counted: usize, complete: bool) -> Stats {
        let goals = self
            .steps
            .iter()
            .filter(|s| s.step_type == "goal")
            .map(|s| GoalStats {
                step_id: s.step_id.clone(),
                entered: s.entered,
                converted: s.completed,
                conversion_rate: if s.entered == 0 {
                    0.0
                } else {
                    s.completed as f64 / s.entered as f64
                },
            })
            .collect();
        Stats {
            automation_id,
            runs_counted: counted,
            complete,
            enrollments: counted,
            by_status: self.by_status,
            steps: self.steps,
            goals,
        }
    }
}
