//! Deflate with a preset dictionary, for the run head (`run_z`): a head is a few hundred bytes of
//! JSON whose keys are the same in every head, which plain deflate spells out in each. The
//! dictionary (JSON keys and values every head holds) primes the window, so a head costs little
//! more than its own values.
//!
//! Stored form: one byte naming the dictionary ([`DICTIONARY_ID`]), then a raw deflate stream
//! (RFC 1951) that may refer back into the dictionary. It is inflated as if the dictionary had
//! come first, in a stored block: any inflater reads it, and it does not depend on how this
//! compressor encodes the dictionary.

use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress, create_comp_flags_from_zip_params,
};

/// The id of [`DICTIONARY`], the first byte of what [`deflate`] returns. A new dictionary gets a
/// new id; this one stays readable as long as heads written with it may exist.
pub const DICTIONARY_ID: u8 = 1;

/// Dictionary 1: the keys and common values of a run head's JSON (`crmflow_core::run::Run`),
/// of the records it keeps and of its outbox, the most frequent last (nearest to the data, so
/// the shortest references). Never edit the file: heads deflated with it must stay readable (a
/// better dictionary is a new file with a new id).
const DICTIONARY: &[u8] = include_bytes!("head-dictionary-1.txt");

/// Deflate's level (6 is zlib's default: most of the gain, little of the time).
const LEVEL: i32 = 6;

/// `data`, deflated against the dictionary, after the dictionary's id.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    // Raw deflate (negative window bits: no zlib header).
    let flags = create_comp_flags_from_zip_params(LEVEL, -15, 0);
    let mut compressor = CompressorOxide::new(flags);
    let mut sink = vec![0; 2 * DICTIONARY.len() + 1024];
    // The dictionary, flushed to a byte boundary: its output is dropped, its window stays.
    let (status, _, _) = compress(&mut compressor, DICTIONARY, &mut sink, TDEFLFlush::Sync);
    debug_assert_eq!(status, TDEFLStatus::Okay);
    let mut out = vec![DICTIONARY_ID];
    let mut buf = vec![0; data.len() / 2 + 64];
    let mut input = data;
    loop {
        let (status, read, written) = compress(&mut compressor, input, &mut buf, TDEFLFlush::Finish);
        out.extend_from_slice(&buf[..written]);
        input = &input[read..];
        match status {
            TDEFLStatus::Okay => continue,
            // `Done`, or a usage error that cannot happen with a fresh compressor.
            _ => return out,
        }
    }
}

/// Why [`inflate`] failed.
#[derive(Debug, thiserror::Error)]
pub enum InflateError {
    #[error("deflated with dictionary {0}, which this version does not know")]
    UnknownDictionary(u8),
    #[error("empty")]
    Empty,
    #[error("corrupt deflate stream: {0:?}")]
    Corrupt(miniz_oxide::inflate::DecompressError),
}

/// What [`deflate`] deflated; at most `limit` bytes.
pub fn inflate(stored: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    let (&id, stream) = stored.split_first().ok_or(InflateError::Empty)?;
    if id != DICTIONARY_ID {
        return Err(InflateError::UnknownDictionary(id));
    }
    // The dictionary as a stored block (not final), then the stream.
    let len = u16::try_from(DICTIONARY.len()).expect("the dictionary fits a stored block");
    let mut whole = Vec::with_capacity(5 + DICTIONARY.len() + stream.len());
    whole.push(0);
    whole.extend_from_slice(&len.to_le_bytes());
    whole.extend_from_slice(&(!len).to_le_bytes());
    whole.extend_from_slice(DICTIONARY);
    whole.extend_from_slice(stream);
    let mut out = miniz_oxide::inflate::decompress_to_vec_with_limit(&whole, limit + DICTIONARY.len())
        .map_err(InflateError::Corrupt)?;
    out.drain(..DICTIONARY.len());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(data: &[u8]) -> Vec<u8> {
        let stored = deflate(data);
        assert_eq!(stored[0], DICTIONARY_ID);
        let back = inflate(&stored, 1 << 20).expect("inflates");
        assert_eq!(back, data, "round trip of {} bytes", data.len());
        stored
    }

    #[test]
    fn what_is_deflated_inflates_to_itself() {
        round_trip(b"");
        round_trip(b"x");
        round_trip(DICTIONARY);
        round_trip(br#"{"run_id":"019caea2-54c7-7078-853a-3c22d1b3c0c5","tenant":"default"}"#);
        // Longer than the window, and hard to compress.
        let mut state = 0x2545_f491_u32;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state.to_le_bytes()[0]
            })
            .collect();
        round_trip(&noise);
        round_trip(&DICTIONARY.repeat(50));
    }

    #[test]
    fn the_dictionary_shrinks_a_head_below_plain_deflate() {
        let head = br#"{"run_id":"019caea2-54c7-7078-853a-3c22d1b3c0c5","tenant":"default","automation_id":"lead-follow-up","automation_version":1,"subject":{"type":"lead","id":"LW","contact_id":"C-LW"},"enrollment_key":"lead/LW","status":"waiting","data":{"trigger":{"id":"evt-LW","type":"lead.created","tenant":"default","time":"2026-03-02T13:00:00.071Z","subject":{"type":"lead","id":"LW","contact_id":"C-LW"},"data":{"id":"LW","source":"Website"},"previous":null},"record":{"id":"LW","source":"Website"},"previous":{},"contact":{"email":"lw@example.com","first_name":"Lee","id":"C-LW"},"steps":{}},"version":2,"started_at":"2026-03-02T13:00:00.088Z","updated_at":"2026-03-02T14:00:00.468Z","steps_entered":2,"history_len":2,"enroll_depth":0,"recent_event_ids":["evt-LW"]}"#;
        let with = round_trip(head).len();
        let plain = miniz_oxide::deflate::compress_to_vec(head, 6).len();
        assert!(
            with * 4 < plain * 3,
            "{with} bytes with the dictionary, {plain} without"
        );
    }

    #[test]
    fn an_unknown_dictionary_or_a_corrupt_stream_is_an_error() {
        let mut stored = deflate(b"{}");
        stored[0] = 2;
        assert!(matches!(inflate(&stored, 100), Err(InflateError::UnknownDictionary(2))));
        assert!(matches!(inflate(&[], 100), Err(InflateError::Empty)));
        assert!(matches!(
            inflate(&[DICTIONARY_ID, 0xff, 0xff], 100),
            Err(InflateError::Corrupt(_))
        ));
    }
}
