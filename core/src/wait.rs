//! Wait steps: when is a wait due?
//!
//! A [`WaitSpec`] sets **exactly one** of four kinds (checked when it is
//! deserialized):
//!
//! | key | example | due time |
//! | --- | --- | --- |
//! | `duration` | `"1h"`, `"2d"` | start + duration; days/weeks are calendar days in the zone (09:00 stays 09:00 across DST) |
//! | `until` | `"2026-03-08T09:00:00Z"`, `"2026-03-08T09:00[America/New_York]"`, `"2026-03-08T09:00"` | that instant; a civil date-time (no offset, no zone) is read in the wait's zone, a plain date `"2026-03-08"` is midnight there |
//! | `until_field` | `{field: renewal_date, offset: "-3d", at: "09:00"}` | a date field of the scope, shifted by `offset`, then set to the wall-clock time `at` |
//! | `until_weekday` | `{days: [monday], at: "09:00"}` | the next listed weekday at that time, strictly after the start |
//!
//! plus two optional modifiers:
//! - `business_hours: {days: [mon, ..., fri], start: "09:00", end: "17:00"}`:
//!   a due time outside the window moves forward to the next opening (before
//!   `start` on a business day: that day's `start`; at/after `end` or on a
//!   non-business day: the next business day's `start`). `days` defaults to
//!   Monday to Friday.
//! - `timezone: "Europe/Berlin"`: the zone of this wait (see [`due_at`]).
//!
//! # Zones and DST
//!
//! Everything is computed in one zone, chosen by the caller (typically with
//! [`zone_for`]: the contact's timezone, else the automation's, else UTC),
//! unless the wait sets `timezone`, which always wins. Due instants are UTC
//! [`jiff::Timestamp`]s. When a wall-clock time does not exist (spring-forward
//! gap) or exists twice (fall-back fold), jiff's default **"compatible"**
//! disambiguation applies: a time in a gap moves forward by the gap's length
//! (02:30 → 03:30), a time in a fold takes the earlier instant.
//!
//! # Date fields
//!
//! `until_field.field` is a path into the scope (`record.renewal_date`,
//! `contact.birthday`, `event.data.due`; `renewal_date` alone means
//! `record.renewal_date`; array items as `items[0]` or `items.0`). Its value
//! must be a string: an RFC 3339 timestamp (`"2026-12-01T10:00:00Z"`), an
//! RFC 9557 zoned date-time, a civil date-time (`"2026-12-01T10:00"`, read in
//! the wait's zone) or a plain date (`"2026-12-01"` = midnight in the wait's
//! zone). The value is converted to the wait's zone, the offset is added,
//! then the time of day is set to `at` if given.

use jiff::{Timestamp, Zoned, civil, tz::TimeZone};
use serde::{Deserialize, Deserializer, Serialize};

use crate::time::{DurationSpec, OffsetSpec, TimeError, TimeOfDay, TimeZoneName, Weekday};

/// Roots a `until_field.field` path may start with; any other first segment
/// is looked up under `record`.
pub const SCOPE_ROOTS: [&str; 8] = [
    "record", "contact", "event", "trigger", "steps", "run", "previous", "now",
];

const KINDS: &str = "`duration`, `until`, `until_field` or `until_weekday`";

/// A wait step's configuration. Exactly one of `duration`, `until`,
/// `until_field`, `until_weekday` is set (validated at deserialize; unknown
/// keys are rejected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "WaitSpecWire")]
pub struct WaitSpec {
    /// Wait this long from the start: due = start + duration, added in the
    /// zone (calendar days keep the wall-clock time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationSpec>,
    /// Wait until a date-time: RFC 3339 with offset (`2026-03-08T09:00:00Z`),
    /// RFC 9557 with a zone (`2026-03-08T09:00[America/New_York]`), or a civil
    /// date-time (`2026-03-08T09:00`; a plain date is midnight) read in the
    /// wait's zone. Validated at deserialize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Wait until a date field of the record/contact, shifted by an offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_field: Option<FieldOffset>,
    /// Wait until the next given weekday(s) at a time of day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_weekday: Option<WeekdayTime>,
    /// If the computed due time is outside these hours, move it forward to
    /// the next opening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<BusinessHours>,
    /// The zone of this wait; wins over the zone the caller passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<TimeZoneName>,
}

/// The wire form of [`WaitSpec`]: same keys, validated into a `WaitSpec`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "WaitSpec",
    description = "A wait: exactly one of duration, until, until_field, until_weekday; optional business_hours and timezone.",
    extend("oneOf" = [
        {"required": ["duration"]},
        {"required": ["until"]},
        {"required": ["until_field"]},
        {"required": ["until_weekday"]}
    ])
)]
struct WaitSpecWire {
    /// Wait this long from the start ("1h", "2d", "PT30M"). Days are calendar days in the wait's zone.
    #[serde(default)]
    duration: Option<DurationSpec>,
    /// A date-time: RFC 3339 ("2026-03-08T09:00:00Z"), RFC 9557 with a zone ("2026-03-08T09:00[America/New_York]") or civil ("2026-03-08T09:00", in the wait's zone).
    #[serde(default, deserialize_with = "deserialize_until")]
    until: Option<String>,
    /// A date field plus/minus an offset, optionally at a time of day.
    #[serde(default)]
    until_field: Option<FieldOffset>,
    /// The next listed weekday at a time of day, strictly after the start.
    #[serde(default)]
    until_weekday: Option<WeekdayTime>,
    /// Move a due time outside these hours to the next opening.
    #[serde(default)]
    business_hours: Option<BusinessHours>,
    /// IANA zone for this wait; overrides the contact's and the automation's zone.
    #[serde(default)]
    timezone: Option<TimeZoneName>,
}

impl TryFrom<WaitSpecWire> for WaitSpec {
    type Error = WaitSpecError;
    fn try_from(w: WaitSpecWire) -> Result<Self, WaitSpecError> {
        let spec = WaitSpec {
            duration: w.duration,
            until: w.until,
            until_field: w.until_field,
            until_weekday: w.until_weekday,
            business_hours: w.business_hours,
            timezone: w.timezone,
        };
        spec.validate()?;
        Ok(spec)
    }
}

fn deserialize_until<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    if let Some(s) = &value {
        UntilTime::parse(s).map_err(serde::de::Error::custom)?;
    }
    Ok(value)
}

impl WaitSpec {
    /// A wait of `duration`.
    pub fn for_duration(duration: DurationSpec) -> Self {
        WaitSpec {
            duration: Some(duration),
            until: None,
            until_field: None,
            until_weekday: None,
            business_hours: None,
            timezone: None,
        }
    }

    /// Checks the rules deserialization enforces (exactly one kind, a
    /// well-formed `until`), for specs built in code. The error lists the
    /// allowed keys.
    pub fn validate(&self) -> Result<(), WaitSpecError> {
        let set: Vec<&'static str> = [
            ("duration", self.duration.is_some()),
            ("until", self.until.is_some()),
            ("until_field", self.until_field.is_some()),
            ("until_weekday", self.until_weekday.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
        match set.len() {
            0 => return Err(WaitSpecError::NoKind),
            1 => {}
            _ => return Err(WaitSpecError::SeveralKinds { kinds: set }),
        }
        if let Some(until) = &self.until {
            UntilTime::parse(until).map_err(WaitSpecError::Until)?;
        }
        if let Some(w) = &self.until_weekday
            && w.days.is_empty()
        {
            return Err(WaitSpecError::NoWeekdays);
        }
        if let Some(f) = &self.until_field {
            check_field_path(&f.field).map_err(WaitSpecError::FieldPath)?;
        }
        if let Some(b) = &self.business_hours {
            b.check().map_err(WaitSpecError::BusinessHours)?;
        }
        Ok(())
    }
}

/// Why a wait's configuration is unusable. Messages start with the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitSpecError {
    #[error("a wait needs exactly one of {KINDS} (optionally with `business_hours` and `timezone`); none was given")]
    NoKind,
    #[error(
        "a wait needs exactly one of {KINDS}; got {}",
        kinds.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and ")
    )]
    SeveralKinds { kinds: Vec<&'static str> },
    #[error("until: {0}")]
    Until(UntilError),
    #[error("until_weekday.days: must list at least one weekday")]
    NoWeekdays,
    #[error("until_field.field: {0}")]
    FieldPath(PathError),
    #[error("business_hours.{0}")]
    BusinessHours(BusinessHoursError),
}

/// A date field plus/minus an offset, optionally at a fixed time of day:
/// "3 days before renewal_date at 09:00" is
/// `{field: record.renewal_date, offset: "-3d", at: "09:00"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldOffset {
    /// Path of the date field: `record.renewal_date`, `contact.birthday`,
    /// `event.data.due_at`; without a known root (record, contact, event,
    /// trigger, steps, run, previous) it is relative to `record`.
    #[serde(deserialize_with = "deserialize_field_path")]
    pub field: String,
    /// Shift from the field's date: negative = before ("-3d", "3d ago").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<OffsetSpec>,
    /// Wall-clock time of day set after applying the offset ("09:00").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<TimeOfDay>,
}

/// The next occurrence of any of `days` at `at`, strictly after the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeekdayTime {
    /// One or more weekdays.
    #[serde(deserialize_with = "deserialize_days")]
    #[schemars(length(min = 1))]
    pub days: Vec<Weekday>,
    /// Wall-clock time of day in the wait's zone.
    pub at: TimeOfDay,
}

/// Opening hours; a due time outside them moves forward to the next opening.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "BusinessHoursWire")]
pub struct BusinessHours {
    /// Business days (default Monday to Friday).
    pub days: Vec<Weekday>,
    /// Opening time (wall clock, in the wait's zone).
    pub start: TimeOfDay,
    /// Closing time, after `start` (a due time exactly at `end` is outside).
    pub end: TimeOfDay,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "BusinessHours")]
struct BusinessHoursWire {
    /// Business days, default monday..friday.
    #[serde(default = "default_business_days")]
    #[schemars(length(min = 1))]
    days: Vec<Weekday>,
    /// Opening time, e.g. "09:00".
    start: TimeOfDay,
    /// Closing time, after start, e.g. "17:00".
    end: TimeOfDay,
}

fn default_business_days() -> Vec<Weekday> {
    Weekday::WORKDAYS.to_vec()
}

impl Default for BusinessHours {
    /// Monday to Friday, 09:00 to 17:00.
    fn default() -> Self {
        BusinessHours {
            days: default_business_days(),
            start: TimeOfDay(civil::time(9, 0, 0, 0)),
            end: TimeOfDay(civil::time(17, 0, 0, 0)),
        }
    }
}

/// Why business hours are unusable. Messages start with the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusinessHoursError {
    #[error("days: must list at least one weekday")]
    NoDays,
    #[error("end: must be after start ({end} is not after {start})")]
    EndNotAfterStart { start: TimeOfDay, end: TimeOfDay },
}

impl BusinessHours {
    fn check(&self) -> Result<(), BusinessHoursError> {
        if self.days.is_empty() {
            return Err(BusinessHoursError::NoDays);
        }
        if self.end <= self.start {
            return Err(BusinessHoursError::EndNotAfterStart {
                start: self.start,
                end: self.end,
            });
        }
        Ok(())
    }
}

impl TryFrom<BusinessHoursWire> for BusinessHours {
    type Error = BusinessHoursError;
    fn try_from(w: BusinessHoursWire) -> Result<Self, BusinessHoursError> {
        let b = BusinessHours {
            days: w.days,
            start: w.start,
            end: w.end,
        };
        b.check()?;
        Ok(b)
    }
}

fn deserialize_days<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Weekday>, D::Error> {
    let days = Vec::<Weekday>::deserialize(d)?;
    if days.is_empty() {
        return Err(serde::de::Error::custom("must list at least one weekday"));
    }
    Ok(days)
}

fn deserialize_field_path<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let path = String::deserialize(d)?;
    check_field_path(&path).map_err(serde::de::Error::custom)?;
    Ok(path)
}

/// Errors computing a due time. Messages name the offending key or field.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The spec breaks a rule deserialization enforces (built in code).
    #[error("invalid wait: {0}")]
    InvalidSpec(WaitSpecError),
    /// The `until_field` path does not exist in the scope (or is null).
    #[error("until_field: {path} is missing")]
    FieldMissing {
        /// The resolved path, e.g. `record.renewal_date`.
        path: String,
    },
    /// The `until_field` value is not a date.
    #[error(
        "until_field: {path} is not a date: {value} (expected an RFC 3339 timestamp such as \"2026-12-01T09:00:00Z\" or a date such as \"2026-12-01\")"
    )]
    NotADate {
        /// The resolved path, e.g. `record.renewal_date`.
        path: String,
        /// The value found, as JSON.
        value: String,
    },
    /// A zone or date-time could not be used.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// Date arithmetic left the supported range (years -9999..=9999).
    #[error("{key}: date out of range: {message}")]
    OutOfRange {
        /// The wait key being computed (`duration`, `until_field`, ...).
        key: &'static str,
        message: String,
    },
}

// ---------------------------------------------------------------------------
// `until` values
// ---------------------------------------------------------------------------

/// A parsed `until` value.
enum UntilTime {
    /// RFC 3339 with an offset: an exact instant.
    Instant(Timestamp),
    /// RFC 9557 with a zone annotation.
    Zoned(Box<Zoned>),
    /// No offset, no zone: read in the wait's zone.
    Civil(civil::DateTime),
}

/// Why an `until` string was rejected (message without the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UntilError {
    /// The zone in its `[...]` annotation is not an IANA zone.
    #[error(transparent)]
    UnknownZone(TimeError),
    #[error(
        "invalid date-time \"{input}\": expected RFC 3339 (\"2026-03-08T09:00:00Z\"), RFC 9557 with a zone (\"2026-03-08T09:00[America/New_York]\") or a civil date-time (\"2026-03-08T09:00\"): {reason}"
    )]
    Invalid { input: String, reason: String },
}

/// The time zone named in the first bracketed RFC 9557 annotation, if any
/// (offsets like `[+05:00]` and `key=value` annotations are not zones).
fn annotated_zone(s: &str) -> Option<&str> {
    let open = s.find('[')?;
    let rest = &s[open + 1..];
    let close = rest.find(']')?;
    let name = rest[..close].trim_start_matches('!');
    if name.contains('=') || name.starts_with(['+', '-']) || name.is_empty() {
        None
    } else {
        Some(name)
    }
}

impl UntilTime {
    fn parse(input: &str) -> Result<UntilTime, UntilError> {
        let s = input.trim();
        let invalid = |reason: String| UntilError::Invalid {
            input: input.to_string(),
            reason,
        };
        if s.contains('[') {
            if let Some(zone) = annotated_zone(s) {
                TimeZoneName::parse(zone).map_err(UntilError::UnknownZone)?;
            }
            return s
                .parse::<Zoned>()
                .map(|z| UntilTime::Zoned(Box::new(z)))
                .map_err(|e| invalid(e.to_string()));
        }
        match s.parse::<Timestamp>() {
            Ok(ts) => Ok(UntilTime::Instant(ts)),
            Err(ts_err) => {
                // Only fall back to civil when there is no offset at all:
                // "2026-03-08T09:00+25:00" must not become a civil time.
                if has_offset(s) {
                    return Err(invalid(ts_err.to_string()));
                }
                s.parse::<civil::DateTime>()
                    .map(UntilTime::Civil)
                    .map_err(|e| invalid(e.to_string()))
            }
        }
    }

    fn to_zoned(&self, zone: &TimeZone) -> Result<Zoned, TimeError> {
        match self {
            UntilTime::Instant(ts) => Ok(ts.to_zoned(zone.clone())),
            UntilTime::Zoned(z) => Ok((**z).clone()),
            UntilTime::Civil(dt) => dt.to_zoned(zone.clone()).map_err(TimeError::arithmetic),
        }
    }
}

/// Whether the time part of an ISO date-time string carries `Z` or `±hh`.
fn has_offset(s: &str) -> bool {
    let Some(t) = s.find(['T', 't', ' ']) else {
        return false;
    };
    let time = &s[t + 1..];
    time.contains(['Z', 'z', '+', '-'])
}

// ---------------------------------------------------------------------------
// field paths
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Why an `until_field.field` path was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("must not be empty")]
    Empty,
    #[error("invalid path \"{path}\": empty segment")]
    EmptySegment { path: String },
    #[error("invalid path \"{path}\": missing ']'")]
    MissingBracket { path: String },
    #[error("invalid path \"{path}\": expected a number in [...]")]
    NotAnIndex { path: String },
    #[error("invalid path \"{path}\": unexpected text after ']'")]
    TextAfterBracket { path: String },
}

/// Splits `a.b[0].c` / `a.b.0.c` into segments.
fn split_path(path: &str) -> Result<Vec<Segment<'_>>, PathError> {
    let mut out = Vec::new();
    if path.trim().is_empty() {
        return Err(PathError::Empty);
    }
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if key.is_empty() && (rest.is_empty() || out.is_empty()) {
            return Err(PathError::EmptySegment { path: path.to_string() });
        }
        if !key.is_empty() {
            match key.parse::<usize>() {
                Ok(i) if !out.is_empty() => out.push(Segment::Index(i)),
                _ => out.push(Segment::Key(key)),
            }
        }
        while !rest.is_empty() {
            let close = rest
                .find(']')
                .ok_or_else(|| PathError::MissingBracket { path: path.to_string() })?;
            let idx = rest[1..close]
                .trim()
                .parse::<usize>()
                .map_err(|_| PathError::NotAnIndex { path: path.to_string() })?;
            out.push(Segment::Index(idx));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(PathError::TextAfterBracket { path: path.to_string() });
            }
        }
    }
    Ok(out)
}

fn check_field_path(path: &str) -> Result<(), PathError> {
    split_path(path).map(|_| ())
}

/// The path with its root made explicit: `renewal_date` → `record.renewal_date`.
fn resolved_path(path: &str) -> String {
    let first = path.split(['.', '[']).next().unwrap_or("");
    if SCOPE_ROOTS.contains(&first) {
        path.to_string()
    } else {
        format!("record.{path}")
    }
}

fn lookup<'v>(scope: &'v serde_json::Value, path: &str) -> Option<&'v serde_json::Value> {
    let segments = split_path(path).ok()?;
    let mut cur = scope;
    for seg in segments {
        cur = match (seg, cur) {
            (Segment::Key(k), serde_json::Value::Object(m)) => m.get(k)?,
            (Segment::Index(i), serde_json::Value::Array(a)) => a.get(i)?,
            (Segment::Index(i), serde_json::Value::Object(m)) => m.get(&i.to_string())?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Reads a date string in `zone`: RFC 3339 / RFC 9557 keep their instant;
/// civil date-times and plain dates are wall-clock times in `zone`.
fn parse_date_value(s: &str, zone: &TimeZone) -> Option<Zoned> {
    let s = s.trim();
    if let Ok(until) = UntilTime::parse(s) {
        return until.to_zoned(zone).ok().map(|z| z.with_time_zone(zone.clone()));
    }
    let date = s.parse::<civil::Date>().ok()?;
    date.to_zoned(zone.clone()).ok()
}

// ---------------------------------------------------------------------------
// due_at
// ---------------------------------------------------------------------------

fn out_of_range(key: &'static str) -> impl Fn(TimeError) -> WaitError {
    move |e| WaitError::OutOfRange {
        key,
        message: match e {
            TimeError::Arithmetic { message } => message,
            other => other.to_string(),
        },
    }
}

/// `date` at `time` in `zone` ("compatible" disambiguation).
fn at_time(date: civil::Date, time: civil::Time, zone: &TimeZone) -> Result<Zoned, TimeError> {
    date.to_datetime(time)
        .to_zoned(zone.clone())
        .map_err(TimeError::arithmetic)
}

fn next_weekday(w: &WeekdayTime, started: Timestamp, zone: &TimeZone) -> Result<Zoned, WaitError> {
    let err = out_of_range("until_weekday");
    let mut date = started.to_zoned(zone.clone()).date();
    // Eight days always contain the next occurrence strictly after `started`.
    for _ in 0..8 {
        if w.days.contains(&Weekday::from(date.weekday())) {
            let candidate = at_time(date, w.at.0, zone).map_err(&err)?;
            if candidate.timestamp() > started {
                return Ok(candidate);
            }
        }
        date = date.tomorrow().map_err(TimeError::arithmetic).map_err(&err)?;
    }
    Err(WaitError::InvalidSpec(WaitSpecError::NoWeekdays))
}

fn field_due(f: &FieldOffset, zone: &TimeZone, scope: &serde_json::Value) -> Result<Zoned, WaitError> {
    let path = resolved_path(&f.field);
    let value = match lookup(scope, &path) {
        None | Some(serde_json::Value::Null) => return Err(WaitError::FieldMissing { path }),
        Some(v) => v,
    };
    let not_a_date = || WaitError::NotADate {
        path: path.clone(),
        value: value.to_string(),
    };
    let s = value.as_str().ok_or_else(not_a_date)?;
    let mut z = parse_date_value(s, zone).ok_or_else(not_a_date)?;
    let err = out_of_range("until_field");
    if let Some(offset) = &f.offset {
        z = offset.add_to(&z).map_err(&err)?;
    }
    if let Some(at) = f.at {
        z = at_time(z.date(), at.0, zone).map_err(&err)?;
    }
    Ok(z)
}

/// Moves `due` forward to the next opening of `hours` in `zone` if it is
/// outside them.
pub fn apply_business_hours(due: Timestamp, hours: &BusinessHours, zone: &TimeZone) -> Result<Timestamp, WaitError> {
    hours
        .check()
        .map_err(|e| WaitError::InvalidSpec(WaitSpecError::BusinessHours(e)))?;
    let err = out_of_range("business_hours");
    let local = due.to_zoned(zone.clone());
    let mut date = local.date();
    let time = local.time();
    for day in 0..8 {
        if hours.days.contains(&Weekday::from(date.weekday())) {
            if day > 0 || time < hours.start.0 {
                return Ok(at_time(date, hours.start.0, zone).map_err(&err)?.timestamp());
            }
            if time < hours.end.0 {
                return Ok(due);
            }
        }
        date = date.tomorrow().map_err(TimeError::arithmetic).map_err(&err)?;
    }
    // Unreachable with a non-empty `days` (checked above).
    Ok(due)
}

/// The zone a wait is computed in: `spec.timezone` if set, else `zone`.
pub fn effective_zone(spec: &WaitSpec, zone: &TimeZone) -> TimeZone {
    spec.timezone
        .as_ref()
        .map(TimeZoneName::time_zone)
        .unwrap_or_else(|| zone.clone())
}

/// Computes the due instant (UTC).
///
/// - `started`: when the wait step began (UTC instant).
/// - `zone`: the zone picked by the caller (usually [`zone_for`]: the
///   contact's timezone, else the automation's, else UTC). **`spec.timezone`,
///   when set, wins over `zone`.**
/// - `scope`: the JSON object conditions see (keys `record`, `contact`,
///   `event`, `trigger`, `steps`, `run`, `previous`); only `until_field`
///   reads it.
///
/// A due time in the past is returned as is (the caller treats it as "due
/// now"). Business hours are applied last. DST gaps/folds use jiff's
/// "compatible" disambiguation.
pub fn due_at(
    spec: &WaitSpec,
    started: Timestamp,
    zone: &TimeZone,
    scope: &serde_json::Value,
) -> Result<Timestamp, WaitError> {
    spec.validate().map_err(WaitError::InvalidSpec)?;
    let zone = effective_zone(spec, zone);
    let base = if let Some(d) = &spec.duration {
        d.add_to(&started.to_zoned(zone.clone()))
            .map_err(out_of_range("duration"))?
            .timestamp()
    } else if let Some(until) = &spec.until {
        let parsed = UntilTime::parse(until).map_err(|e| match e {
            UntilError::UnknownZone(t) => WaitError::Time(t),
            other => WaitError::InvalidSpec(WaitSpecError::Until(other)),
        })?;
        parsed.to_zoned(&zone).map_err(out_of_range("until"))?.timestamp()
    } else if let Some(f) = &spec.until_field {
        field_due(f, &zone, scope)?.timestamp()
    } else if let Some(w) = &spec.until_weekday {
        next_weekday(w, started, &zone)?.timestamp()
    } else {
        // validate() guarantees one kind is set.
        return Err(WaitError::InvalidSpec(WaitSpecError::NoKind));
    };
    match &spec.business_hours {
        Some(hours) => apply_business_hours(base, hours, &zone),
        None => Ok(base),
    }
}

/// Picks the zone for a wait: `contact_timezone` when it is a valid IANA
/// name, else `fallback` (the automation's zone), else UTC.
pub fn zone_for(contact_timezone: Option<&str>, fallback: Option<&TimeZoneName>) -> TimeZone {
    contact_timezone
        .and_then(|name| TimeZoneName::parse(name).ok())
        .map(|z| z.time_zone())
        .or_else(|| fallback.map(TimeZoneName::time_zone))
        .unwrap_or(TimeZone::UTC)
}

fn zone_label(zone: &TimeZone, at: Timestamp) -> String {
    match zone.iana_name() {
        Some(name) => name.to_string(),
        None => format!("UTC{}", zone.to_offset(at)),
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// One line for run history, e.g. `until Monday 09:00 Europe/Berlin →
/// 2026-03-09T08:00:00Z`. `due` is printed in UTC (RFC 3339); `zone` is
/// the zone passed to [`due_at`] (`spec.timezone` wins, as there).
pub fn describe(spec: &WaitSpec, due: Timestamp, zone: &TimeZone) -> String {
    let zone = effective_zone(spec, zone);
    let z = zone_label(&zone, due);
    let mut out = if let Some(d) = &spec.duration {
        format!("for {} ({z})", d.as_str())
    } else if let Some(until) = &spec.until {
        match UntilTime::parse(until) {
            Ok(UntilTime::Civil(_)) => format!("until {} {z}", until.trim()),
            _ => format!("until {}", until.trim()),
        }
    } else if let Some(f) = &spec.until_field {
        let path = resolved_path(&f.field);
        let mut s = match &f.offset {
            Some(o) if !o.span().is_zero() => {
                let rel = if o.is_negative() { "before" } else { "after" };
                format!("until {:#} {rel} {path}", o.span().abs())
            }
            _ => format!("until {path}"),
        };
        if let Some(at) = f.at {
            s.push_str(&format!(" at {at}"));
        }
        s.push_str(&format!(" {z}"));
        s
    } else if let Some(w) = &spec.until_weekday {
        let days: Vec<String> = w.days.iter().map(|d| d.name().to_string()).collect();
        format!("until {} {} {z}", join_or(&days), w.at)
    } else {
        "until (invalid wait)".to_string()
    };
    if let Some(b) = &spec.business_hours {
        let days: Vec<&str> = b.days.iter().map(|d| d.short_name()).collect();
        out.push_str(&format!(
            ", within business hours {} {}–{}",
            days.join(" "),
            b.start,
            b.end
        ));
    }
    out.push_str(&format!(" → {due}"));
    out
}

#[cfg(test)]
mod tests;
