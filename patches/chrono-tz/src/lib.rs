//! The part of [chrono-tz](https://crates.io/crates/chrono-tz)'s API that the `cel` crate calls,
//! answered from [jiff]'s time-zone database (the system's, `/usr/share/zoneinfo` or `TZDIR`, when
//! there is one, else the copy compiled into jiff).
//!
//! The `cel` crate converts a timestamp to a named zone (`getHours("Europe/Berlin")` and the other
//! accessors that take a zone) with chrono-tz: `chrono_tz::UTC`, `name.parse::<chrono_tz::Tz>()`
//! and `DateTime::with_timezone(&tz)`. chrono-tz compiles the whole IANA database into tables
//! of Rust values, which cost about 1.9 MB in every binary that links CEL (measured: an
//! optimised-for-size binary that parses one zone grows from 0.29 MB to 2.19 MB). crmflow's waits
//! already carry jiff's copy of the same database (compressed, 0.23 MB). The workspace's
//! `[patch.crates-io]` puts this crate in chrono-tz's place, so CEL and the waits read the same
//! database, at one version, and the functions stay under their size budget.
//!
//! What it provides, with chrono-tz's meaning:
//! - [`Tz`], a time zone implementing [`chrono::TimeZone`], parsed from an IANA name with
//!   [`str::parse`] ([`ParseError`] when jiff's database does not know it);
//! - [`UTC`];
//! - [`TzOffset`], the offset in effect at an instant, implementing [`chrono::Offset`].
//!
//! Local times that a transition skips (a gap) have no offset; local times it repeats (a fold)
//! have two, earlier first, as chrono's [`MappedLocalTime`] expects.

use chrono::{FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, Offset, TimeZone};
use jiff::tz::{AmbiguousOffset, TimeZone as JiffZone};
use std::fmt;
use std::str::FromStr;

/// A time zone of the IANA database, as jiff knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tz(JiffZone);

/// Coordinated Universal Time.
pub const UTC: Tz = Tz(JiffZone::UTC);

impl Tz {
    /// The IANA name, as given when the zone was parsed (`UTC` for [`UTC`]).
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }
}

impl fmt::Display for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a zone of the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not a valid timezone", self.0)
    }
}

impl std::error::Error for ParseError {}

impl FromStr for Tz {
    type Err = ParseError;

    fn from_str(name: &str) -> Result<Tz, ParseError> {
        JiffZone::get(name).map(Tz).map_err(|_| ParseError(name.to_owned()))
    }
}

/// The offset of a [`Tz`] at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TzOffset {
    tz: Tz,
    offset: FixedOffset,
}

impl Offset for TzOffset {
    fn fix(&self) -> FixedOffset {
        self.offset
    }
}

impl fmt::Display for TzOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.offset, f)
    }
}

impl Tz {
    fn offset(&self, offset: jiff::tz::Offset) -> TzOffset {
        // Every IANA offset is within ±24 h, chrono's range; a stranger one (jiff allows ±26 h)
        // is read as UTC rather than panic.
        let offset = FixedOffset::east_opt(offset.seconds()).unwrap_or(chrono::Utc.fix());
        TzOffset {
            tz: self.clone(),
            offset,
        }
    }
}

/// The civil date and time of a chrono value, to the nanosecond.
fn civil(local: &NaiveDateTime) -> Option<jiff::civil::DateTime> {
    use chrono::{Datelike, Timelike};
    let year = i16::try_from(local.year()).ok()?;
    let nanosecond = local.nanosecond().min(999_999_999);
    jiff::civil::DateTime::new(
        year,
        local.month() as i8,
        local.day() as i8,
        local.hour() as i8,
        local.minute() as i8,
        local.second() as i8,
        nanosecond as i32,
    )
    .ok()
}

impl TimeZone for Tz {
    type Offset = TzOffset;

    fn from_offset(offset: &TzOffset) -> Tz {
        offset.tz.clone()
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<TzOffset> {
        self.offset_from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<TzOffset> {
        let Some(civil) = civil(local) else {
            return MappedLocalTime::None;
        };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => MappedLocalTime::Single(self.offset(offset)),
            AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
            AmbiguousOffset::Fold { before, after } => {
                MappedLocalTime::Ambiguous(self.offset(before), self.offset(after))
            }
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> TzOffset {
        self.offset_from_utc_datetime(&utc.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> TzOffset {
        let utc = utc.and_utc();
        let instant = jiff::Timestamp::new(utc.timestamp(), utc.timestamp_subsec_nanos().min(999_999_999) as i32)
            .unwrap_or(if utc.timestamp() < 0 {
                jiff::Timestamp::MIN
            } else {
                jiff::Timestamp::MAX
            });
        self.offset(self.0.to_offset(instant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Timelike};

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> chrono::DateTime<chrono::Utc> {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
            .and_utc()
    }

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    #[test]
    fn converts_an_instant_to_a_named_zone_across_daylight_saving_time() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(utc(2026, 1, 15, 12, 0).with_timezone(&berlin).hour(), 13);
        assert_eq!(utc(2026, 7, 15, 12, 0).with_timezone(&berlin).hour(), 14);
        let fixed = utc(2026, 7, 15, 12, 0).with_timezone(&berlin).fixed_offset();
        assert_eq!(fixed.offset().local_minus_utc(), 2 * 3600);
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        assert_eq!(utc(2026, 7, 15, 12, 0).with_timezone(&kolkata).minute(), 30);
    }

    #[test]
    fn utc_and_links_parse_and_unknown_names_do_not() {
        assert_eq!(utc(2026, 7, 15, 12, 0).with_timezone(&UTC).hour(), 12);
        let eastern: Tz = "US/Eastern".parse().unwrap();
        assert_eq!(utc(2026, 7, 15, 12, 0).with_timezone(&eastern).hour(), 8);
        let err = "Mars/Olympus_Mons".parse::<Tz>().unwrap_err();
        assert_eq!(err.to_string(), "'Mars/Olympus_Mons' is not a valid timezone");
    }

    #[test]
    fn local_times_in_a_gap_have_no_offset_and_in_a_fold_two() {
        let new_york: Tz = "America/New_York".parse().unwrap();
        // 2026-03-08 02:30 does not exist in New York; 2026-11-01 01:30 happens twice.
        assert_eq!(
            new_york.offset_from_local_datetime(&local(2026, 3, 8, 2, 30)),
            MappedLocalTime::None
        );
        let MappedLocalTime::Ambiguous(first, second) = new_york.offset_from_local_datetime(&local(2026, 11, 1, 1, 30))
        else {
            panic!("a fold has two offsets");
        };
        assert_eq!(first.fix().local_minus_utc(), -4 * 3600);
        assert_eq!(second.fix().local_minus_utc(), -5 * 3600);
        let single = new_york.offset_from_local_datetime(&local(2026, 6, 1, 9, 0));
        assert_eq!(single.single().unwrap().fix().local_minus_utc(), -4 * 3600);
    }

    #[test]
    fn an_offset_gives_back_its_zone() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        let at = utc(2026, 7, 15, 12, 0).with_timezone(&tokyo);
        assert_eq!(at.timezone(), tokyo);
        assert_eq!(at.timezone().to_string(), "Asia/Tokyo");
    }
}
