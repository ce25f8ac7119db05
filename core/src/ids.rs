//! Identifiers: run ids (UUID v7, derived deterministically from the enrollment so that a
//! redelivered event creates the same run), and a small stable hash.

use jiff::Timestamp;

/// FNV-1a, 64 bits. Stable across platforms and releases.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A UUID v7 whose time is the event's time and whose "random" bits are a hash of
/// `(tenant, event id, automation id)`: the same trigger event always yields the same run id,
/// which makes run creation idempotent, and ids still sort by time.
pub fn run_id_for(tenant: &str, event_id: &str, automation_id: &str, time: Timestamp) -> String {
    let a = fnv1a64(format!("{tenant}\u{0}{event_id}\u{0}{automation_id}").as_bytes());
    let b = fnv1a64(format!("{automation_id}\u{0}{event_id}\u{0}{tenant}").as_bytes());
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&a.to_be_bytes());
    random[8..].copy_from_slice(&b.to_be_bytes()[..2]);
    let millis = u64::try_from(time.as_millisecond()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .to_string()
}
