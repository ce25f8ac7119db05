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

/// Why a record may not enroll now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EnrollmentRefused {
    /// The record has a run of this automation still going (and `allow_concurrent` is off).
    #[error("already has an active run ({})", active_runs.join(", "))]
    ActiveRun { active_runs: Vec<String> },
    /// `reenroll: once`, and the record enrolled before.
    #[error("already enrolled once (reenroll: once)")]
    AlreadyEnrolled,
    /// `reenroll: after`, and the time since the last enrollment is shorter.
    #[error("re-enrollment allowed from {next} (reenroll: after {after})")]
    TooSoon { next: Timestamp, after: String },
    /// The last enrollment plus `after` is out of jiff's range.
    #[error("enrollment.after: {0}")]
    AfterOutOfRange(jiff::Error),
}

/// Decides whether a record may enroll now.
pub fn check(policy: &EnrollmentPolicy, state: &EnrollmentState, now: Timestamp) -> Result<(), EnrollmentRefused> {
    if !policy.allow_concurrent && !state.active_runs.is_empty() {
        return Err(EnrollmentRefused::ActiveRun {
            active_runs: state.active_runs.clone(),
        });
    }
    match policy.reenroll {
        Reenroll::Once if state.total_enrollments > 0 => Err(EnrollmentRefused::AlreadyEnrolled),
        Reenroll::After => {
            let (Some(last), Some(after)) = (state.last_enrolled_at, &policy.after) else {
                return Ok(());
            };
            let next = last
                .to_zoned(jiff::tz::TimeZone::UTC)
                .checked_add(after.span())
                .map(|z| z.timestamp())
                .map_err(EnrollmentRefused::AfterOutOfRange)?;
            if now < next {
                Err(EnrollmentRefused::TooSoon {
                    next,
                    after: after.as_str().to_string(),
                })
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
