//! The enrollment policy, as a pure decision over the stored enrollment state.

use crate::definition::{EnrollmentPolicy, Reenroll};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What the store keeps per (automation, enrollment key). `version` guards concurrent
/// enrollments: a write must name the version it read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnrollmentState {
    pub version: u64,
    /// Ids of the runs still active.
    pub active_runs: Vec<String>,
    pub total_enrollments: u64,
    pub last_enrolled_at: Option<Timestamp>,
}

/// Decides whether a record may enroll now. `Err` carries the reason, for logs and reports.
pub fn check(policy: &EnrollmentPolicy, state: &EnrollmentState, now: Timestamp) -> Result<(), String> {
    if !policy.allow_concurrent && !state.active_runs.is_empty() {
        return Err(format!("already has an active run ({})", state.active_runs.join(", ")));
    }
    match policy.reenroll {
        Reenroll::Once if state.total_enrollments > 0 => Err("already enrolled once (reenroll: once)".to_string()),
        Reenroll::After => {
            let (Some(last), Some(after)) = (state.last_enrolled_at, &policy.after) else {
                return Ok(());
            };
            let next = last
                .to_zoned(jiff::tz::TimeZone::UTC)
                .checked_add(after.span())
                .map(|z| z.timestamp())
                .map_err(|e| format!("enrollment.after: {e}"))?;
            if now < next {
                Err(format!(
                    "re-enrollment allowed from {next} (reenroll: after {})",
                    after.as_str()
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// The state after enrolling `run_id`.
pub fn enrolled(state: &EnrollmentState, run_id: &str, now: Timestamp) -> EnrollmentState {
    let mut next = state.clone();
    next.version += 1;
    next.active_runs.push(run_id.to_string());
    next.total_enrollments += 1;
    next.last_enrolled_at = Some(now);
    next
}
