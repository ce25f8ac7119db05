//! DynamoDB's item-size rules ("Item sizes and formats" in the DynamoDB developer guide), on
//! items in DynamoDB's JSON wire form (`{"PK": {"S": "..."}, "n": {"N": "12"}}`), and the
//! capacity units a size costs.
//!
//! - an item's size is the sum, over its attributes, of the attribute name's UTF-8 bytes and the
//!   value's size;
//! - String: its UTF-8 bytes; Binary: its raw bytes (the wire carries base64);
//! - Number: 1 byte per two significant digits (leading and trailing zeros trimmed, rounded
//!   up) + 1 byte, and 1 more byte for a negative number (the guide says "approximately");
//! - Boolean, Null: 1 byte;
//! - List, Map: 3 bytes + each element's size + 1 byte per element (a map's key names count);
//! - String, Number and Binary sets: the sum of their elements' sizes.
//!
//! Write units are per 1 KB (1,024 bytes) of item, read units per 4 KB (4,096 bytes), rounded up,
//! at least 1. Values of an unknown type count 0 bytes.

use serde_json::{Map, Value};

/// One write request unit covers this many bytes of item.
pub const WRITE_UNIT_BYTES: u64 = 1024;
/// One (strongly consistent) read request unit covers this many bytes of item.
pub const READ_UNIT_BYTES: u64 = 4096;

/// The size of an item, in bytes.
pub fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter().map(|(name, value)| attribute_size(name, value)).sum()
}

/// The size of one attribute (its name and its value), in bytes.
pub fn attribute_size(name: &str, value: &Value) -> u64 {
    name.len() as u64 + value_size(value)
}

/// The size of an attribute value in DynamoDB JSON (`{"S": "abc"}` is 3 bytes), in bytes.
pub fn value_size(value: &Value) -> u64 {
    let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let strings = || v.as_array().into_iter().flatten().filter_map(Value::as_str);
    match kind.as_str() {
        "S" => v.as_str().map_or(0, |s| s.len() as u64),
        "N" => v.as_str().map_or(0, number_size),
        "B" => v.as_str().map_or(0, base64_decoded_len),
        "BOOL" | "NULL" => 1,
        "SS" => strings().map(|s| s.len() as u64).sum(),
        "NS" => strings().map(number_size).sum(),
        "BS" => strings().map(base64_decoded_len).sum(),
        "L" => {
            3 + v
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| 1 + value_size(e))
                .sum::<u64>()
        }
        "M" => {
            3 + v
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, e)| 1 + attribute_size(k, e))
                .sum::<u64>()
        }
        _ => 0,
    }
}

/// The size of a number given as text (`"-12.50"`, `"1E+3"`), in bytes.
pub fn number_size(text: &str) -> u64 {
    let text = text.trim();
    let negative = text.starts_with('-');
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.div_ceil(2) + 1 + u64::from(negative)
}

/// The raw length of base64 text, in bytes.
fn base64_decoded_len(text: &str) -> u64 {
    let text = text.trim_end_matches('=');
    (text.len() as u64 * 3) / 4
}

/// Write request units for writing an item of `bytes` bytes: per 1 KB, rounded up, at least 1.
pub fn write_units(bytes: u64) -> u64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1)
}

/// Strongly consistent read request units for reading `bytes` bytes: per 4 KB, rounded up, at
/// least 1 (an eventually consistent read costs half).
pub fn read_units(bytes: u64) -> u64 {
    bytes.div_ceil(READ_UNIT_BYTES).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn strings_and_binaries_count_their_bytes_and_names() {
        // "Id" (2) + "abc" (3); "café" is 5 UTF-8 bytes; 4 base64 chars "AAEC" are 3 bytes.
        assert_eq!(item_size(&item(json!({"Id": {"S": "abc"}}))), 5);
        assert_eq!(value_size(&json!({"S": "café"})), 5);
        assert_eq!(value_size(&json!({"B": "AAEC"})), 3);
        assert_eq!(value_size(&json!({"B": "AAE="})), 2);
        assert_eq!(value_size(&json!({"B": "AA=="})), 1);
    }

    #[test]
    fn numbers_count_a_byte_per_two_significant_digits_plus_one() {
        assert_eq!(number_size("7"), 2);
        assert_eq!(number_size("12"), 2);
        assert_eq!(number_size("123"), 3);
        // Leading and trailing zeros are trimmed.
        assert_eq!(number_size("000123000"), 3);
        assert_eq!(number_size("1.50"), 2);
        assert_eq!(number_size("0"), 1);
        assert_eq!(number_size("-12"), 3);
        // A Unix time in seconds: 8 significant digits once the trailing zeros go.
        assert_eq!(number_size("1772456400"), 5);
        assert_eq!(number_size("1E+3"), 2);
    }

    #[test]
    fn booleans_and_nulls_are_one_byte() {
        assert_eq!(
            item_size(&item(json!({"ok": {"BOOL": true}, "gone": {"NULL": true}}))),
            2 + 1 + 4 + 1
        );
    }

    #[test]
    fn lists_and_maps_cost_three_bytes_plus_one_per_element() {
        assert_eq!(value_size(&json!({"L": []})), 3);
        assert_eq!(value_size(&json!({"M": {}})), 3);
        // 3 + (1 + 1) + (1 + 2)
        assert_eq!(value_size(&json!({"L": [{"S": "a"}, {"N": "12"}]})), 8);
        // 3 + (1 + "k" 1 + "vv" 2)
        assert_eq!(value_size(&json!({"M": {"k": {"S": "vv"}}})), 7);
        // Nested: the outer map's element is the inner list.
        assert_eq!(
            value_size(&json!({"M": {"l": {"L": [{"BOOL": false}]}}})),
            3 + 1 + 1 + (3 + 1 + 1)
        );
    }

    #[test]
    fn sets_are_the_sum_of_their_elements() {
        assert_eq!(value_size(&json!({"SS": ["ab", "c"]})), 3);
        assert_eq!(value_size(&json!({"NS": ["1", "123"]})), 2 + 3);
        assert_eq!(value_size(&json!({"BS": ["AAEC"]})), 3);
    }

    #[test]
    fn unknown_shapes_count_nothing() {
        assert_eq!(value_size(&json!("bare")), 0);
        assert_eq!(value_size(&json!({"X": 1})), 0);
    }

    #[test]
    fn units_round_up_per_kilobyte_and_per_four_kilobytes() {
        // The developer guide's examples: a 500-byte item takes 1 write unit, a 3.5 KB item 4;
        // a 3.5 KB strongly consistent read 1 read unit, a 10,000-byte one 3.
        assert_eq!(write_units(500), 1);
        assert_eq!(write_units(3584), 4);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(write_units(0), 1);
        assert_eq!(read_units(3584), 1);
        assert_eq!(read_units(4097), 2);
        assert_eq!(read_units(10_000), 3);
        assert_eq!(read_units(0), 1);
    }
}
