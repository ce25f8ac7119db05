//! What a status change does to an automation's runs: resuming a `paused` automation releases
//! the inputs held for its runs; archiving cancels its active runs. Both only queue step
//! messages (the engine does the rest, with the version checks of every other input), and both
//! may be repeated: a `PATCH` to the status the automation has already does them again, which
//! finishes a release or an archive that an earlier request left half done.

use crate::ApiState;
use crate::problem::Problem;
use crmflow_core::command::Input;
use crmflow_core::engine::ARCHIVED_REASON;
use crmflow_core::messages::StepMessage;
use crmflow_core::ports::{QueueError, RunFilter, StoreError};
use crmflow_core::run::RunStatus;

const PAGE: usize = 200;

fn queue_problem(e: QueueError) -> Problem {
    Problem::store(&StoreError::Transient(e.to_string()))
}

async fn send(state: &ApiState, tenant: &str, run_id: String, input: Input) -> Result<(), Problem> {
    let message = StepMessage {
        tenant: tenant.to_string(),
        run_id,
        input,
    };
    state.steps.send_step_owned(message, 0).await.map_err(queue_problem)
}

/// After `paused → active`: nudges every run with held inputs (a `continue`, which the run
/// ignores once its held inputs are applied, oldest first, before it). Returns how many.
pub async fn release_held(state: &ApiState, tenant: &str, automation_id: &str) -> Result<usize, Problem> {
    let mut after: Option<String> = None;
    let mut released = 0;
    loop {
        let runs = state
            .held
            .runs_with_held(tenant, automation_id, after.as_deref(), PAGE)
            .await
            .map_err(|e| Problem::store(&e))?;
        let last = runs.last().cloned();
        for run_id in runs {
            send(state, tenant, run_id, Input::Continue).await?;
            released += 1;
        }
        match last {
            Some(last) => after = Some(last),
            None => return Ok(released),
        }
    }
}

/// After `→ archived`: queues a cancel (reason "automation archived") for every run that is
/// running or waiting. Returns how many.
pub async fn cancel_active(state: &ApiState, tenant: &str, automation_id: &str) -> Result<usize, Problem> {
    let mut cancelled = 0;
    for status in [RunStatus::Running, RunStatus::Waiting] {
        let filter = RunFilter {
            status: Some(status),
            ..RunFilter::default()
        };
        let mut after: Option<String> = None;
        loop {
            let runs = state
                .run_directory
                .list_runs(tenant, automation_id, &filter, after.as_deref(), PAGE)
                .await
                .map_err(|e| Problem::store(&e))?;
            let Some(last) = runs.last().map(|r| r.run_id.clone()) else {
                break;
            };
            for run in runs {
                let reason = ARCHIVED_REASON.to_string();
                send(state, tenant, run.run_id.clone(), Input::Cancel { reason }).await?;
                cancelled += 1;
            }
            after = Some(last);
        }
    }
    Ok(cancelled)
}
