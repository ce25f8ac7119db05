//! Identifiers: run ids (UUID v7, derived deterministically from the enrollment so that a
//! redelivered event creates the same run), and a small stable hash.

use jiff::Timestamp;

/// FNV-1a, 64 bits. Stable across platforms and releases.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_parts(&[bytes])
}

/// FNV-1a, 64 bits, of the concatenation of `parts` (without building it).
pub fn fnv1a64_parts(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.iter()) {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A UUID v7 whose time is the event's time and whose "random" bits are a hash of
/// `(tenant, event id, automation id)`: the same trigger event always yields the same run id,
/// which makes run creation idempotent, and ids still sort by time.
pub fn run_id_for(tenant: &str, event_id: &str, automation_id: &str, time: Timestamp) -> String {
    let (tenant, event_id, automation_id) = (tenant.as_bytes(), event_id.as_bytes(), automation_id.as_bytes());
    let a = fnv1a64_parts(&[tenant, b"\0", event_id, b"\0", automation_id]);
    let b = fnv1a64_parts(&[automation_id, b"\0", event_id, b"\0", tenant]);
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&a.to_be_bytes());
    random[8..].copy_from_slice(&b.to_be_bytes()[..2]);
    let millis = u64::try_from(time.as_millisecond()).unwrap_or(0);
    let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    // What `to_string` gives (lower-case, hyphenated), without the formatting machinery.
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid.hyphenated().encode_lower(&mut text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_stable() {
        // Run ids are stored: they must not change between releases (this one is in the README).
        let time: Timestamp = "2026-03-02T14:00:00Z".parse().unwrap();
        assert_eq!(
            run_id_for("default", "evt-lead-1", "lead-follow-up", time),
            "019caed9-4300-75dc-a56c-fa7013b0a27b"
        );
        let a = fnv1a64("default\0e1\0lead-follow-up".as_bytes());
        assert_eq!(a, fnv1a64_parts(&[b"default", b"\0", b"e1", b"\0", b"lead-follow-up"]));
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
