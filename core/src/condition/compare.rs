//! How field rules compare JSON values: loose numeric equality, ordering of numbers and dates.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// A number, kept exact when it is an integer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn from_number(n: &Number) -> Option<Num> {
        if let Some(i) = n.as_i64() {
            Some(Num::Int(i128::from(i)))
        } else if let Some(u) = n.as_u64() {
            Some(Num::Int(i128::from(u)))
        } else {
            n.as_f64().filter(|f| f.is_finite()).map(Num::Float)
        }
    }

    fn cmp(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (Num::Int(a), Num::Float(b)) => cmp_int_float(a, b),
            (Num::Float(a), Num::Int(b)) => cmp_int_float(b, a).map(Ordering::reverse),
            (Num::Float(a), Num::Float(b)) => a.partial_cmp(&b),
        }
    }

    pub(crate) fn as_f64(self) -> f64 {
        match self {
            // Precision loss is fine here: only used for day counts.
            #[allow(clippy::cast_precision_loss)]
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// Compares an integer with a float without losing precision on large integers.
fn cmp_int_float(int: i128, float: f64) -> Option<Ordering> {
    if float.is_nan() {
        return None;
    }
    let floor = float.floor();
    // Outside the i128 range the float decides alone.
    if floor >= 1.7e38 {
        return Some(Ordering::Less);
    }
    if floor <= -1.7e38 {
        return Some(Ordering::Greater);
    }
    #[allow(clippy::cast_possible_truncation)]
    let whole = floor as i128;
    match int.cmp(&whole) {
        Ordering::Equal if float > floor => Some(Ordering::Less),
        other => Some(other),
    }
}

/// The value as a number: a JSON number, or a string holding a JSON number (`"200000"`,
/// `"-3.5"`, `"1e6"`; not `" 1"`, `"+1"`, `"NaN"`).
pub(crate) fn as_number(value: &Value) -> Option<Num> {
    match value {
        Value::Number(n) => Num::from_number(n),
        Value::String(s) => parse_numeric_string(s),
        _ => None,
    }
}

fn parse_numeric_string(s: &str) -> Option<Num> {
    // Cheap pre-check so that ordinary text never reaches the JSON parser.
    let first = s.as_bytes().first()?;
    if !(first.is_ascii_digit() || *first == b'-') {
        return None;
    }
    serde_json::from_str::<Number>(s)
        .ok()
        .and_then(|n| Num::from_number(&n))
}

/// The value as an instant: a string holding an RFC 3339 timestamp (`2024-05-01T12:00:00Z`,
/// any offset), or an ISO date (`2024-05-01`), taken as midnight UTC.
pub(crate) fn as_instant(value: &Value) -> Option<jiff::Timestamp> {
    let Value::String(s) = value else {
        return None;
    };
    parse_instant(s)
}

pub(crate) fn parse_instant(s: &str) -> Option<jiff::Timestamp> {
    // Dates and timestamps all start with a four-digit year.
    let bytes = s.as_bytes();
    if bytes.len() < 10 || !bytes[..4].iter().all(u8::is_ascii_digit) || bytes[4] != b'-' {
        return None;
    }
    if bytes.len() == 10 {
        let date: jiff::civil::Date = s.parse().ok()?;
        return date.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp());
    }
    s.parse::<jiff::Timestamp>().ok()
}

/// Equality of field rules: JSON equality, except that numbers compare numerically (`1 == 1.0`)
/// and a number equals a string holding the same number (`200000 == "200000"`). Lists and
/// objects compare element by element with the same rule. Strings compare exactly.
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_) | Value::String(_)) | (Value::String(_), Value::Number(_)) => {
            match (as_number(a), as_number(b)) {
                (Some(x), Some(y)) => x.cmp(y) == Some(Ordering::Equal),
                _ => a == b,
            }
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| loose_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| loose_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Ordering of field rules: numbers (or numeric strings) numerically; otherwise, if both sides
/// are dates or RFC 3339 timestamps, as instants; otherwise `None` (not comparable).
pub(crate) fn loose_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (as_number(a), as_number(b)) {
        return x.cmp(y);
    }
    match (as_instant(a), as_instant(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => None,
    }
}

/// Whether a value is something ordering operators accept as an operand.
pub(crate) fn is_comparable(value: &Value) -> bool {
    as_number(value).is_some() || as_instant(value).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_numerically() {
        assert!(loose_eq(&json!(1), &json!(1.0)));
        assert!(loose_eq(&json!(200000), &json!("200000")));
        assert!(loose_eq(&json!("2.50"), &json!(2.5)));
        assert!(
            !loose_eq(&json!("200000"), &json!("200000.0")),
            "two strings compare exactly"
        );
        assert!(!loose_eq(&json!(1), &json!(true)));
        assert!(!loose_eq(&json!(" 1"), &json!(1)));
        assert!(loose_eq(&json!([1, {"a": 2}]), &json!([1.0, {"a": "2"}])));
        assert!(!loose_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        // Large integers do not collapse through f64.
        assert!(!loose_eq(&json!(9007199254740993_i64), &json!(9007199254740992_i64)));
        assert!(!loose_eq(&json!(9007199254740993_i64), &json!(9007199254740992.0)));
        assert!(loose_eq(&json!(u64::MAX), &json!(u64::MAX)));
    }

    #[test]
    fn ordering_of_numbers_and_dates() {
        assert_eq!(loose_cmp(&json!(2), &json!(10)), Some(Ordering::Less));
        assert_eq!(loose_cmp(&json!("10"), &json!(9.5)), Some(Ordering::Greater));
        assert_eq!(loose_cmp(&json!(-1), &json!(-0.5)), Some(Ordering::Less));
        assert_eq!(loose_cmp(&json!(3), &json!(2.5)), Some(Ordering::Greater));
        assert_eq!(
            loose_cmp(&json!("2024-05-01"), &json!("2024-04-30T23:59:59Z")),
            Some(Ordering::Greater)
        );
        assert_eq!(
            loose_cmp(&json!("2024-05-01T02:00:00+02:00"), &json!("2024-05-01")),
            Some(Ordering::Equal)
        );
        assert_eq!(loose_cmp(&json!("abc"), &json!("abd")), None);
        assert_eq!(loose_cmp(&json!("2024-05-01"), &json!(5)), None);
        assert_eq!(loose_cmp(&json!(null), &json!(5)), None);
    }

    #[test]
    fn instants_parse_dates_and_timestamps_only() {
        assert!(parse_instant("2024-02-29").is_some());
        assert!(parse_instant("2023-02-29").is_none());
        assert!(parse_instant("2024-05-01T12:00:00.123Z").is_some());
        assert!(parse_instant("2024-05-01T12:00:00").is_none(), "no offset");
        assert!(parse_instant("tomorrow").is_none());
        assert!(parse_instant("").is_none());
    }
}
