//! Durations, offsets, time zones, times of day and weekdays as they are
//! written in automation definitions.
//!
//! Every type here is written as a **string** in YAML/JSON and validated when
//! it is deserialized, so a path-tracking deserializer reports the exact
//! location, e.g. `steps[2].wait.duration: invalid duration "3 dyas": ...`.
//! Each type serializes back to the text it was parsed from (or to its
//! canonical spelling).
//!
//! | type | examples | meaning |
//! | --- | --- | --- |
//! | [`DurationSpec`] | `"90s"`, `"15m"`, `"1h 30m"`, `"2 days"`, `"1w"`, `"PT1H"`, `"P3D"` | a strictly positive, calendar-aware amount of time |
//! | [`OffsetSpec`] | `"-3d"`, `"3d ago"`, `"-P3D"`, `"+1w"`, `"2h"` | a signed amount of time (negative = before) |
//! | [`TimeZoneName`] | `"Europe/Berlin"`, `"America/New_York"`, `"UTC"` | an IANA time zone from the bundled tz database |
//! | [`TimeOfDay`] | `"09:00"`, `"17:30"`, `"09:00:00"` | a wall-clock time, 24-hour clock |
//! | [`Weekday`] | `"monday"`, `"Mon"`, `"SUNDAY"` | a day of the week, case-insensitive |
//!
//! # Units
//!
//! Durations and offsets use [`jiff::Span`] syntax: either jiff's "friendly"
//! format (`y`/`mo`/`w`/`d`/`h`/`m`/`s`/`ms`, long names such as `days` or
//! `hours` also work, units may be combined: `"1h 30m"`) or ISO 8601
//! (`"PT1H30M"`, `"P3D"`). Note that `m` means **minutes**; months are `mo`.
//!
//! Years, months, weeks and days are **calendar units**: added to a time in a
//! zone, they keep the wall-clock time, so `"1d"` from 09:00 is 09:00 the next
//! day even when a DST change makes that day 23 or 25 hours long. Hours,
//! minutes and seconds are exact elapsed time (`"24h"` is always 86 400 s).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use jiff::{Span, Unit, Zoned, civil, tz::TimeZone};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Errors from parsing or applying the types of this module.
///
/// The messages never contain a field path: the deserializer (or the caller)
/// prefixes the path, e.g. `steps[2].wait.duration: invalid duration ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The text is not a duration jiff understands.
    #[error("invalid duration \"{input}\": {reason}")]
    InvalidDuration { input: String, reason: String },
    /// A [`DurationSpec`] was zero or negative.
    #[error("invalid duration \"{input}\": duration must be positive")]
    NotPositive { input: String },
    /// The text is not a signed duration jiff understands.
    #[error("invalid offset \"{input}\": {reason}")]
    InvalidOffset { input: String, reason: String },
    /// The name is not in the bundled IANA tz database.
    #[error("unknown time zone \"{name}\"")]
    UnknownTimeZone { name: String },
    /// Not `HH:MM` or `HH:MM:SS`.
    #[error("invalid time of day \"{input}\": expected HH:MM or HH:MM:SS (24-hour clock, 00:00 to 23:59:59)")]
    InvalidTimeOfDay { input: String },
    /// Not a weekday name.
    #[error("invalid weekday \"{input}\": expected one of monday..sunday or mon..sun")]
    InvalidWeekday { input: String },
    /// Date arithmetic left jiff's supported range (years -9999 to 9999).
    #[error("date arithmetic failed: {message}")]
    Arithmetic { message: String },
}

impl TimeError {
    pub(crate) fn arithmetic(err: impl fmt::Display) -> Self {
        TimeError::Arithmetic {
            message: err.to_string(),
        }
    }
}

/// A fixed reference date used only to turn calendar units into an
/// approximate number of seconds.
const APPROX_REFERENCE: civil::Date = civil::date(2001, 1, 1);

fn approx_seconds_of(span: Span) -> i64 {
    match span.total((Unit::Second, APPROX_REFERENCE)) {
        Ok(secs) if secs.is_finite() => {
            if secs >= i64::MAX as f64 {
                i64::MAX
            } else if secs <= i64::MIN as f64 {
                i64::MIN
            } else {
                secs.round() as i64
            }
        }
        // Only possible for spans too large to be meaningful anyway.
        _ if span.is_negative() => i64::MIN,
        _ => i64::MAX,
    }
}

fn add_span(t: &Zoned, span: Span) -> Result<Zoned, TimeError> {
    t.checked_add(span).map_err(TimeError::arithmetic)
}

// ---------------------------------------------------------------------------
// DurationSpec
// ---------------------------------------------------------------------------

/// A strictly positive, calendar-aware duration written as text.
///
/// Accepted: jiff's friendly format (`"90s"`, `"15m"`, `"1h"`, `"2d"`,
/// `"1w"`, `"1h 30m"`, `"2 days"`) or ISO 8601 (`"PT1H"`, `"P3D"`). `m` is
/// minutes, `mo` is months. Zero or negative durations are rejected with
/// `duration must be positive`.
///
/// Days and weeks (and months, years) are calendar units: [`DurationSpec::add_to`]
/// adds them to the wall-clock date in the time's zone, keeping the time of
/// day across DST changes. Hours, minutes and seconds are elapsed time.
///
/// Serializes as the original text; two specs are equal when their text is.
#[derive(Debug, Clone)]
pub struct DurationSpec {
    text: String,
    span: Span,
}

impl DurationSpec {
    /// Parses and validates a duration (surrounding whitespace is ignored).
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        let text = s.trim();
        let span = Span::from_str(text).map_err(|e| TimeError::InvalidDuration {
            input: s.to_string(),
            reason: e.to_string(),
        })?;
        if !span.is_positive() {
            return Err(TimeError::NotPositive { input: s.to_string() });
        }
        Ok(DurationSpec {
            text: text.to_string(),
            span,
        })
    }

    /// The parsed span (always positive).
    pub fn span(&self) -> Span {
        self.span
    }

    /// The text as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `t` plus this duration, calendar units applied in `t`'s zone (DST gaps
    /// and folds resolved with jiff's "compatible" disambiguation).
    pub fn add_to(&self, t: &Zoned) -> Result<Zoned, TimeError> {
        add_span(t, self.span)
    }

    /// Approximate length in **seconds**, for documentation and limits only:
    /// a day counts 86 400 s, a month and a year are measured from
    /// 2001-01-01 (so `1mo` = 31 days, `1y` = 365 days). Saturates at `i64::MAX`.
    pub fn approx_seconds(&self) -> i64 {
        approx_seconds_of(self.span)
    }
}

impl PartialEq for DurationSpec {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for DurationSpec {}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for DurationSpec {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------
// OffsetSpec
// ---------------------------------------------------------------------------

/// A signed, calendar-aware offset written as text: negative means "before".
///
/// Same syntax as [`DurationSpec`] plus a sign or the `ago` suffix: `"-3d"`,
/// `"3d ago"`, `"-P3D"` (3 days before), `"+1w"`, `"2h"` (after), `"0d"`.
///
/// Serializes as the original text; two offsets are equal when their text is.
#[derive(Debug, Clone)]
pub struct OffsetSpec {
    text: String,
    span: Span,
}

impl OffsetSpec {
    /// Parses an offset (surrounding whitespace is ignored). Zero is allowed.
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        let text = s.trim();
        let span = Span::from_str(text).map_err(|e| TimeError::InvalidOffset {
            input: s.to_string(),
            reason: e.to_string(),
        })?;
        Ok(OffsetSpec {
            text: text.to_string(),
            span,
        })
    }

    /// The parsed span (negative for "before").
    pub fn span(&self) -> Span {
        self.span
    }

    /// The text as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `t` shifted by this offset, calendar units applied in `t`'s zone (DST
    /// gaps and folds resolved with jiff's "compatible" disambiguation).
    pub fn add_to(&self, t: &Zoned) -> Result<Zoned, TimeError> {
        add_span(t, self.span)
    }

    /// Approximate signed length in **seconds** (see
    /// [`DurationSpec::approx_seconds`]).
    pub fn approx_seconds(&self) -> i64 {
        approx_seconds_of(self.span)
    }

    /// `true` when the offset points to the past ("before").
    pub fn is_negative(&self) -> bool {
        self.span.is_negative()
    }
}

impl PartialEq for OffsetSpec {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for OffsetSpec {}

impl fmt::Display for OffsetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for OffsetSpec {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------
// TimeZoneName
// ---------------------------------------------------------------------------

/// A validated IANA time zone name such as `"Europe/Berlin"` or `"UTC"`,
/// looked up in the tz database bundled into the binary (the host's zone
/// files are not used). Lookup is case-insensitive; the canonical spelling is
/// kept. An unknown name gives `unknown time zone "Europe/Berln"`.
#[derive(Debug, Clone)]
pub struct TimeZoneName {
    name: String,
    tz: TimeZone,
}

impl TimeZoneName {
    /// Validates the name against the bundled tz database.
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        let trimmed = s.trim();
        let unknown = || TimeError::UnknownTimeZone { name: s.to_string() };
        // Reject anything that is not a plain IANA name (jiff would also
        // accept some POSIX TZ strings through other APIs; `get` does not,
        // but be explicit).
        if trimmed.is_empty() || trimmed.starts_with(['+', '-', '[', ':']) {
            return Err(unknown());
        }
        let tz = TimeZone::get(trimmed).map_err(|_| unknown())?;
        let name = tz.iana_name().unwrap_or(trimmed).to_string();
        Ok(TimeZoneName { name, tz })
    }

    /// The zone, ready for conversions.
    pub fn time_zone(&self) -> TimeZone {
        self.tz.clone()
    }

    /// The canonical IANA name.
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl PartialEq for TimeZoneName {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for TimeZoneName {}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl FromStr for TimeZoneName {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------
// TimeOfDay
// ---------------------------------------------------------------------------

/// A wall-clock time of day, 24-hour clock: `"09:00"`, `"17:30"`,
/// `"09:00:00"` (the hour may have one digit: `"9:00"`). Serializes as
/// `HH:MM`, or `HH:MM:SS` when the seconds are not zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(pub civil::Time);

impl TimeOfDay {
    /// Parses `H:MM`, `HH:MM` or `HH:MM:SS`.
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        let err = || TimeError::InvalidTimeOfDay { input: s.to_string() };
        let parts: Vec<&str> = s.trim().split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(err());
        }
        let num = |p: &str, min_len: usize, max: i8| -> Option<i8> {
            if p.len() < min_len || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let v: i8 = p.parse().ok()?;
            (v <= max).then_some(v)
        };
        let hour = num(parts[0], 1, 23).ok_or_else(err)?;
        let minute = num(parts[1], 2, 59).ok_or_else(err)?;
        let second = match parts.get(2) {
            Some(p) => num(p, 2, 59).ok_or_else(err)?,
            None => 0,
        };
        let time = civil::Time::new(hour, minute, second, 0).map_err(|_| err())?;
        Ok(TimeOfDay(time))
    }

    /// Builds a time of day from hour (0..=23) and minute (0..=59).
    pub fn new(hour: i8, minute: i8) -> Result<Self, TimeError> {
        civil::Time::new(hour, minute, 0, 0)
            .map(TimeOfDay)
            .map_err(|_| TimeError::InvalidTimeOfDay {
                input: format!("{hour}:{minute:02}"),
            })
    }

    /// The civil time.
    pub fn time(&self) -> civil::Time {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        if t.second() == 0 {
            write!(f, "{:02}:{:02}", t.hour(), t.minute())
        } else {
            write!(f, "{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
        }
    }
}

impl FromStr for TimeOfDay {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<TimeOfDay> for civil::Time {
    fn from(t: TimeOfDay) -> civil::Time {
        t.0
    }
}

// ---------------------------------------------------------------------------
// Weekday
// ---------------------------------------------------------------------------

/// A day of the week. Written `"monday"`..`"sunday"` or `"mon"`..`"sun"`,
/// case-insensitive; serialized as the lowercase full name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// Monday to Sunday.
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// Monday to Friday (the default business days).
    pub const WORKDAYS: [Weekday; 5] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ];

    /// Parses a weekday name (full or three-letter, any case).
    pub fn parse(s: &str) -> Result<Self, TimeError> {
        let lower = s.trim().to_ascii_lowercase();
        Weekday::ALL
            .into_iter()
            .find(|d| lower == d.as_str() || lower == d.as_str()[..3])
            .ok_or_else(|| TimeError::InvalidWeekday { input: s.to_string() })
    }

    /// Lowercase full name, as serialized: `"monday"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Weekday::Monday => "monday",
            Weekday::Tuesday => "tuesday",
            Weekday::Wednesday => "wednesday",
            Weekday::Thursday => "thursday",
            Weekday::Friday => "friday",
            Weekday::Saturday => "saturday",
            Weekday::Sunday => "sunday",
        }
    }

    /// Capitalised full name for messages: `"Monday"`.
    pub fn name(&self) -> &'static str {
        match self {
            Weekday::Monday => "Monday",
            Weekday::Tuesday => "Tuesday",
            Weekday::Wednesday => "Wednesday",
            Weekday::Thursday => "Thursday",
            Weekday::Friday => "Friday",
            Weekday::Saturday => "Saturday",
            Weekday::Sunday => "Sunday",
        }
    }

    /// Capitalised three-letter name: `"Mon"`.
    pub fn short_name(&self) -> &'static str {
        &self.name()[..3]
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Weekday {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<Weekday> for civil::Weekday {
    fn from(d: Weekday) -> civil::Weekday {
        match d {
            Weekday::Monday => civil::Weekday::Monday,
            Weekday::Tuesday => civil::Weekday::Tuesday,
            Weekday::Wednesday => civil::Weekday::Wednesday,
            Weekday::Thursday => civil::Weekday::Thursday,
            Weekday::Friday => civil::Weekday::Friday,
            Weekday::Saturday => civil::Weekday::Saturday,
            Weekday::Sunday => civil::Weekday::Sunday,
        }
    }
}

impl From<civil::Weekday> for Weekday {
    fn from(d: civil::Weekday) -> Weekday {
        match d {
            civil::Weekday::Monday => Weekday::Monday,
            civil::Weekday::Tuesday => Weekday::Tuesday,
            civil::Weekday::Wednesday => Weekday::Wednesday,
            civil::Weekday::Thursday => Weekday::Thursday,
            civil::Weekday::Friday => Weekday::Friday,
            civil::Weekday::Saturday => Weekday::Saturday,
            civil::Weekday::Sunday => Weekday::Sunday,
        }
    }
}

/// A JSON-schema (ECMA-262) pattern matching `word` in any letter case.
fn case_insensitive(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn weekday_pattern() -> String {
    let alternatives: Vec<String> = Weekday::ALL
        .iter()
        .map(|d| {
            let full = d.as_str();
            format!("{}(?:{})?", case_insensitive(&full[..3]), case_insensitive(&full[3..]))
        })
        .collect();
    format!("^\\s*(?:{})\\s*$", alternatives.join("|"))
}

// ---------------------------------------------------------------------------
// serde + schemars for all string-like types
// ---------------------------------------------------------------------------

macro_rules! string_serde {
    ($ty:ty, $expecting:literal, $to_text:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let f: fn(&$ty) -> Cow<'_, str> = $to_text;
                serializer.serialize_str(&f(self))
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        <$ty>::parse(v).map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(V)
            }
        }
    };
}

string_serde!(
    DurationSpec,
    "a duration string such as \"1h\", \"2d\" or \"PT1H\"",
    |d| { Cow::Borrowed(d.as_str()) }
);
string_serde!(OffsetSpec, "an offset string such as \"-3d\" or \"2h\"", |d| {
    Cow::Borrowed(d.as_str())
});
string_serde!(TimeZoneName, "an IANA time zone name such as \"Europe/Berlin\"", |z| {
    Cow::Borrowed(z.as_str())
});
string_serde!(TimeOfDay, "a time of day such as \"09:00\"", |t| {
    Cow::Owned(t.to_string())
});
string_serde!(Weekday, "a weekday such as \"monday\" or \"mon\"", |d| {
    Cow::Borrowed(d.as_str())
});

impl JsonSchema for DurationSpec {
    fn schema_name() -> Cow<'static, str> {
        "DurationSpec".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "A positive duration: jiff friendly format (\"90s\", \"15m\", \"1h 30m\", \"2 days\", \"1w\"; m = minutes, mo = months) or ISO 8601 (\"PT1H\", \"P3D\"). Days, weeks, months and years are calendar units that keep the wall-clock time across DST changes; hours, minutes and seconds are elapsed time.",
            "examples": ["15m", "1h 30m", "2d", "1w", "PT1H"]
        })
    }
}

impl JsonSchema for OffsetSpec {
    fn schema_name() -> Cow<'static, str> {
        "OffsetSpec".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "A signed offset, negative = before: \"-3d\", \"3d ago\", \"-P3D\", \"+1w\", \"2h\". Same units as a duration; days and larger are calendar units.",
            "examples": ["-3d", "3 days ago", "1w", "-PT2H"]
        })
    }
}

impl JsonSchema for TimeZoneName {
    fn schema_name() -> Cow<'static, str> {
        "TimeZoneName".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "An IANA time zone name from the tz database (bundled with crmflow).",
            "examples": ["Europe/Berlin", "America/New_York", "UTC"]
        })
    }
}

impl JsonSchema for TimeOfDay {
    fn schema_name() -> Cow<'static, str> {
        "TimeOfDay".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^\\s*([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?\\s*$",
            "description": "A wall-clock time of day, 24-hour clock: HH:MM or HH:MM:SS.",
            "examples": ["09:00", "17:30"]
        })
    }
}

impl JsonSchema for Weekday {
    fn schema_name() -> Cow<'static, str> {
        "Weekday".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": weekday_pattern(),
            "description": "A day of the week: monday..sunday or mon..sun, case-insensitive.",
            "examples": ["monday", "fri"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ny() -> TimeZone {
        TimeZone::get("America/New_York").unwrap()
    }

    #[test]
    fn durations_in_many_spellings() {
        for (text, secs) in [
            ("90s", 90),
            ("15m", 900),
            ("1h", 3600),
            ("2d", 2 * 86_400),
            ("1w", 7 * 86_400),
            ("1h 30m", 5400),
            ("2 days", 2 * 86_400),
            ("PT1H", 3600),
            ("P3D", 3 * 86_400),
            ("  45 minutes ", 2700),
        ] {
            let d = DurationSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(d.approx_seconds(), secs, "{text}");
            assert_eq!(d.as_str(), text.trim());
        }
    }

    #[test]
    fn invalid_and_non_positive_durations() {
        let e = DurationSpec::parse("3 dyas").unwrap_err();
        assert!(e.to_string().starts_with("invalid duration \"3 dyas\": "), "{e}");
        for bad in ["", "abc", "1x", "h1"] {
            assert!(
                matches!(DurationSpec::parse(bad), Err(TimeError::InvalidDuration { .. })),
                "{bad}"
            );
        }
        for bad in ["0s", "PT0S", "-1h", "1h ago"] {
            let e = DurationSpec::parse(bad).unwrap_err();
            assert!(e.to_string().ends_with("duration must be positive"), "{bad}: {e}");
        }
    }

    #[test]
    fn calendar_day_keeps_wall_clock_across_spring_forward() {
        let start: Zoned = "2026-03-07T09:00[America/New_York]".parse().unwrap();
        let one_day = DurationSpec::parse("1d").unwrap().add_to(&start).unwrap();
        assert_eq!(one_day.to_string(), "2026-03-08T09:00:00-04:00[America/New_York]");
        let elapsed = one_day.timestamp().as_second() - start.timestamp().as_second();
        assert_eq!(elapsed, 23 * 3600);
        let hours = DurationSpec::parse("24h").unwrap().add_to(&start).unwrap();
        assert_eq!(hours.to_string(), "2026-03-08T10:00:00-04:00[America/New_York]");
        assert_eq!(start.time_zone(), &ny());
    }

    #[test]
    fn offsets() {
        for (text, secs) in [
            ("-3d", -3 * 86_400),
            ("3d ago", -3 * 86_400),
            ("3 days ago", -3 * 86_400),
            ("-P3D", -3 * 86_400),
            ("+1w", 7 * 86_400),
            ("2h", 7200),
            ("0d", 0),
        ] {
            let o = OffsetSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(o.approx_seconds(), secs, "{text}");
        }
        assert!(OffsetSpec::parse("-3d").unwrap().is_negative());
        let e = OffsetSpec::parse("three days").unwrap_err();
        assert!(e.to_string().starts_with("invalid offset \"three days\""), "{e}");
    }

    #[test]
    fn time_zone_names() {
        let z = TimeZoneName::parse("Europe/Berlin").unwrap();
        assert_eq!(z.as_str(), "Europe/Berlin");
        assert_eq!(z.time_zone().iana_name(), Some("Europe/Berlin"));
        assert_eq!(TimeZoneName::parse("UTC").unwrap().as_str(), "UTC");
        let e = TimeZoneName::parse("Europe/Berln").unwrap_err();
        assert_eq!(e.to_string(), "unknown time zone \"Europe/Berln\"");
        for bad in ["", "+05:00", "Mars/Olympus"] {
            assert!(TimeZoneName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_of_day() {
        assert_eq!(TimeOfDay::parse("09:00").unwrap().0, civil::time(9, 0, 0, 0));
        assert_eq!(TimeOfDay::parse("9:05").unwrap().0, civil::time(9, 5, 0, 0));
        assert_eq!(TimeOfDay::parse("17:30:15").unwrap().0, civil::time(17, 30, 15, 0));
        assert_eq!(TimeOfDay::parse("09:00").unwrap().to_string(), "09:00");
        assert_eq!(TimeOfDay::parse("17:30:15").unwrap().to_string(), "17:30:15");
        for bad in [
            "24:00",
            "9",
            "09:60",
            "09:0",
            "0900",
            "09:00:00:00",
            "a:bc",
            "-1:00",
            "",
        ] {
            let e = TimeOfDay::parse(bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid time of day"), "{bad}");
        }
    }

    #[test]
    fn weekdays() {
        assert_eq!(Weekday::parse("Monday").unwrap(), Weekday::Monday);
        assert_eq!(Weekday::parse("sun").unwrap(), Weekday::Sunday);
        assert_eq!(Weekday::parse("WED").unwrap(), Weekday::Wednesday);
        assert!(Weekday::parse("mo").is_err());
        assert!(Weekday::parse("mondays").is_err());
        assert_eq!(civil::Weekday::from(Weekday::Friday), civil::Weekday::Friday);
        assert_eq!(Weekday::from(civil::Weekday::Saturday), Weekday::Saturday);
    }

    #[test]
    fn serde_round_trips_and_errors() {
        #[derive(Debug, Serialize, Deserialize, PartialEq)]
        struct S {
            d: DurationSpec,
            o: OffsetSpec,
            z: TimeZoneName,
            t: TimeOfDay,
            w: Vec<Weekday>,
        }
        let v = serde_json::json!({"d": "1h 30m", "o": "3d ago", "z": "Europe/Berlin", "t": "9:00", "w": ["Mon", "friday"]});
        let s: S = serde_json::from_value(v).unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"d": "1h 30m", "o": "3d ago", "z": "Europe/Berlin", "t": "09:00", "w": ["monday", "friday"]})
        );
        let e =
            serde_json::from_str::<S>(r#"{"d": "3 dyas", "o": "1d", "z": "UTC", "t": "09:00", "w": []}"#).unwrap_err();
        assert!(e.to_string().contains("invalid duration \"3 dyas\""), "{e}");
        let e = serde_json::from_str::<S>(r#"{"d": "1d", "o": "1d", "z": "Europe/Berln", "t": "09:00", "w": []}"#)
            .unwrap_err();
        assert!(e.to_string().contains("unknown time zone \"Europe/Berln\""), "{e}");
        let e = serde_json::from_str::<S>(r#"{"d": 5, "o": "1d", "z": "UTC", "t": "09:00", "w": []}"#).unwrap_err();
        assert!(e.to_string().contains("a duration string"), "{e}");
    }

    #[test]
    fn weekday_schema_pattern_matches_spellings() {
        let p = weekday_pattern();
        assert!(p.contains("[mM][oO][nN](?:[dD][aA][yY])?"), "{p}");
        let schema = serde_json::to_value(schemars::schema_for!(Weekday)).unwrap();
        assert_eq!(schema["type"], "string");
        let schema = serde_json::to_value(schemars::schema_for!(DurationSpec)).unwrap();
        assert_eq!(schema["type"], "string");
        assert!(schema["description"].as_str().unwrap().contains("calendar"));
    }
}
