use super::*;
use serde_json::{Value, json};

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn spec(v: Value) -> WaitSpec {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// The deserialize error with its path, as a path-tracking caller sees it.
fn spec_err(v: Value) -> String {
    match serde_path_to_error::deserialize::<_, WaitSpec>(v.clone()) {
        Ok(s) => panic!("{v} should fail, got {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn due(v: Value, started: &str, zone: &str) -> Timestamp {
    due_at(&spec(v), ts(started), &tz(zone), &json!({})).unwrap()
}

#[test]
fn one_day_keeps_local_time_across_us_spring_forward() {
    // 2026-03-07 09:00 EST (-05:00); DST starts 2026-03-08 02:00.
    let start = "2026-03-07T14:00:00Z";
    let one_day = due(json!({"duration": "1d"}), start, "America/New_York");
    assert_eq!(one_day, ts("2026-03-08T13:00:00Z")); // 09:00 EDT
    assert_eq!(one_day.as_second() - ts(start).as_second(), 23 * 3600);
    let hours = due(json!({"duration": "24h"}), start, "America/New_York");
    assert_eq!(hours, ts("2026-03-08T14:00:00Z")); // 10:00 EDT
    assert_eq!(hours.as_second() - ts(start).as_second(), 24 * 3600);
    // ISO and week spellings
    assert_eq!(due(json!({"duration": "P1D"}), start, "America/New_York"), one_day);
    assert_eq!(
        due(json!({"duration": "1w"}), start, "America/New_York"),
        ts("2026-03-14T13:00:00Z")
    );
    assert_eq!(
        due(json!({"duration": "90s"}), start, "America/New_York"),
        ts("2026-03-07T14:01:30Z")
    );
}

#[test]
fn same_wait_in_two_zones_gives_different_instants() {
    // US change (2026-03-08): Berlin days are 24h, New York's is 23h.
    let start = "2026-03-07T14:00:00Z";
    let ny = due(json!({"duration": "1d"}), start, "America/New_York");
    let berlin = due(json!({"duration": "1d"}), start, "Europe/Berlin");
    assert_eq!(ny, ts("2026-03-08T13:00:00Z"));
    assert_eq!(berlin, ts("2026-03-08T14:00:00Z"));
    // EU change (2026-03-29): now Berlin's day is 23h and New York's 24h.
    let start = "2026-03-28T08:00:00Z"; // 09:00 CET, 04:00 EDT
    let berlin = due(json!({"duration": "1d"}), start, "Europe/Berlin");
    let ny = due(json!({"duration": "1d"}), start, "America/New_York");
    assert_eq!(berlin, ts("2026-03-29T07:00:00Z")); // 09:00 CEST
    assert_eq!(ny, ts("2026-03-29T08:00:00Z"));
    // A civil `until` is read in the wait's zone.
    let until = json!({"until": "2026-03-08T09:00"});
    assert_eq!(
        due(until.clone(), start, "America/New_York"),
        ts("2026-03-08T13:00:00Z")
    );
    assert_eq!(due(until, start, "Europe/Berlin"), ts("2026-03-08T08:00:00Z"));
}

#[test]
fn spec_timezone_wins_over_the_callers_zone() {
    let start = "2026-03-07T14:00:00Z";
    let w = json!({"duration": "1d", "timezone": "America/New_York"});
    assert_eq!(due(w, start, "Europe/Berlin"), ts("2026-03-08T13:00:00Z"));
}

#[test]
fn until_formats() {
    let start = "2026-01-01T00:00:00Z";
    assert_eq!(
        due(json!({"until": "2026-03-08T09:00:00Z"}), start, "Europe/Berlin"),
        ts("2026-03-08T09:00:00Z")
    );
    assert_eq!(
        due(json!({"until": "2026-03-08T09:00:00+01:00"}), start, "America/New_York"),
        ts("2026-03-08T08:00:00Z")
    );
    // RFC 9557: the annotated zone is used, not the wait's zone.
    assert_eq!(
        due(
            json!({"until": "2026-03-08T09:00[America/New_York]"}),
            start,
            "Europe/Berlin"
        ),
        ts("2026-03-08T13:00:00Z")
    );
    // A plain date is midnight in the wait's zone.
    assert_eq!(
        due(json!({"until": "2026-03-08"}), start, "Europe/Berlin"),
        ts("2026-03-07T23:00:00Z")
    );
    // A past until is returned as is.
    assert_eq!(
        due(json!({"until": "2020-01-01T00:00:00Z"}), start, "UTC"),
        ts("2020-01-01T00:00:00Z")
    );
    // A civil time in the spring-forward gap moves forward ("compatible").
    assert_eq!(
        due(json!({"until": "2026-03-08T02:30"}), start, "America/New_York"),
        ts("2026-03-08T07:30:00Z") // 03:30 EDT
    );
    // In the fall-back fold the earlier instant is used.
    assert_eq!(
        due(json!({"until": "2026-11-01T01:30"}), start, "America/New_York"),
        ts("2026-11-01T05:30:00Z") // 01:30 EDT
    );
}

#[test]
fn until_is_validated_at_deserialize() {
    let e = spec_err(json!({"until": "2026-03-08T09:00[Europe/Berln]"}));
    assert_eq!(e, "until: unknown time zone \"Europe/Berln\"");
    let e = spec_err(json!({"until": "yesterday"}));
    assert!(
        e.starts_with("until: invalid date-time \"yesterday\": expected RFC 3339"),
        "{e}"
    );
    let e = spec_err(json!({"until": "2026-13-08T09:00:00Z"}));
    assert!(e.starts_with("until: invalid date-time"), "{e}");
    let e = spec_err(json!({"until": "2026-03-08T09:00+99:00"}));
    assert!(e.starts_with("until: invalid date-time"), "{e}");
}

#[test]
fn unknown_time_zone_error_text() {
    let e = spec_err(json!({"duration": "1h", "timezone": "Europe/Berln"}));
    assert_eq!(e, "timezone: unknown time zone \"Europe/Berln\"");
}

#[test]
fn invalid_durations_are_rejected_with_their_path() {
    let e = spec_err(json!({"duration": "3 dyas"}));
    assert!(e.starts_with("duration: invalid duration \"3 dyas\": "), "{e}");
    let e = spec_err(json!({"duration": "0s"}));
    assert_eq!(e, "duration: invalid duration \"0s\": duration must be positive");
    let e = spec_err(json!({"duration": "-2d"}));
    assert!(e.ends_with("duration must be positive"), "{e}");
    let e = spec_err(json!({"duration": 3600}));
    assert!(e.starts_with("duration: invalid type"), "{e}");
}

#[test]
fn exactly_one_kind() {
    let e = spec_err(json!({}));
    assert!(
        e.contains("a wait needs exactly one of `duration`, `until`, `until_field` or `until_weekday`"),
        "{e}"
    );
    assert!(e.contains("none was given"), "{e}");
    let e = spec_err(json!({"timezone": "UTC", "business_hours": {"start": "09:00", "end": "17:00"}}));
    assert!(e.contains("none was given"), "{e}");
    let e = spec_err(json!({"duration": "1h", "until": "2026-03-08T09:00:00Z"}));
    assert!(e.contains("got `duration` and `until`"), "{e}");
    let e = spec_err(json!({"durations": "1h"}));
    assert!(e.contains("unknown field `durations`"), "{e}");
    assert!(e.contains("`until_weekday`"), "{e}");
    // Built in code: due_at refuses too.
    let mut s = spec(json!({"duration": "1h"}));
    s.until = Some("2026-03-08T09:00:00Z".into());
    let e = due_at(&s, ts("2026-01-01T00:00:00Z"), &TimeZone::UTC, &json!({})).unwrap_err();
    assert!(matches!(e, WaitError::InvalidSpec(_)), "{e}");
}

fn field_scope() -> Value {
    json!({
        "record": {"id": "O1", "renewal_date": "2026-12-01", "closed_at": "2026-12-01T00:00:00Z",
                   "notes": "next week", "amount": 5, "empty": null, "items": [{"due": "2026-05-01"}]},
        "contact": {"birthday": "1990-07-14", "timezone": "Europe/Berlin"},
        "event": {"data": {"due": "2026-06-01T12:00"}}
    })
}

fn field_due_at(f: Value, zone: &str) -> Result<Timestamp, WaitError> {
    due_at(
        &spec(json!({"until_field": f})),
        ts("2026-01-01T00:00:00Z"),
        &tz(zone),
        &field_scope(),
    )
}

#[test]
fn three_days_before_renewal_date_at_nine() {
    let f = json!({"field": "record.renewal_date", "offset": "-3d", "at": "09:00"});
    assert_eq!(
        field_due_at(f.clone(), "Europe/Berlin").unwrap(),
        ts("2026-11-28T08:00:00Z")
    );
    assert_eq!(field_due_at(f, "America/New_York").unwrap(), ts("2026-11-28T14:00:00Z"));
    // No root means record; "3d ago" is the same offset.
    let f = json!({"field": "renewal_date", "offset": "3 days ago", "at": "09:00"});
    assert_eq!(field_due_at(f, "Europe/Berlin").unwrap(), ts("2026-11-28T08:00:00Z"));
    // Plain date alone = midnight in the zone.
    let f = json!({"field": "renewal_date"});
    assert_eq!(field_due_at(f, "Europe/Berlin").unwrap(), ts("2026-11-30T23:00:00Z"));
    // A timestamp is converted to the zone before the offset and `at`:
    // 2026-12-01T00:00Z is 2026-11-30 19:00 in New York.
    let f = json!({"field": "closed_at", "offset": "-3d", "at": "09:00"});
    assert_eq!(field_due_at(f, "America/New_York").unwrap(), ts("2026-11-27T14:00:00Z"));
    let f = json!({"field": "closed_at", "offset": "+2h"});
    assert_eq!(field_due_at(f, "America/New_York").unwrap(), ts("2026-12-01T02:00:00Z"));
    // Other roots, array items, civil date-times.
    let f = json!({"field": "contact.birthday", "offset": "1d", "at": "08:30"});
    assert_eq!(field_due_at(f, "UTC").unwrap(), ts("1990-07-15T08:30:00Z"));
    let f = json!({"field": "items[0].due"});
    assert_eq!(field_due_at(f, "UTC").unwrap(), ts("2026-05-01T00:00:00Z"));
    let f = json!({"field": "record.items.0.due"});
    assert_eq!(field_due_at(f, "UTC").unwrap(), ts("2026-05-01T00:00:00Z"));
    let f = json!({"field": "event.data.due", "offset": "-1w"});
    assert_eq!(field_due_at(f, "Europe/Berlin").unwrap(), ts("2026-05-25T10:00:00Z"));
}

#[test]
fn offset_across_dst_keeps_wall_clock() {
    // 3 days before 2026-03-10 09:00 New York is 2026-03-07 09:00 EST.
    let scope = json!({"record": {"d": "2026-03-10T09:00"}});
    let s = spec(json!({"until_field": {"field": "d", "offset": "-3d"}}));
    let due = due_at(&s, ts("2026-01-01T00:00:00Z"), &tz("America/New_York"), &scope).unwrap();
    assert_eq!(due, ts("2026-03-07T14:00:00Z"));
}

#[test]
fn missing_and_non_date_fields() {
    let e = field_due_at(json!({"field": "record.renewal_dte"}), "UTC").unwrap_err();
    assert_eq!(e.to_string(), "until_field: record.renewal_dte is missing");
    let e = field_due_at(json!({"field": "renewal_dte"}), "UTC").unwrap_err();
    assert_eq!(e.to_string(), "until_field: record.renewal_dte is missing");
    let e = field_due_at(json!({"field": "empty"}), "UTC").unwrap_err();
    assert!(
        matches!(e, WaitError::FieldMissing { ref path } if path == "record.empty"),
        "{e}"
    );
    let e = field_due_at(json!({"field": "notes"}), "UTC").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("until_field: record.notes is not a date: \"next week\""),
        "{e}"
    );
    let e = field_due_at(json!({"field": "amount"}), "UTC").unwrap_err();
    assert!(
        e.to_string().starts_with("until_field: record.amount is not a date: 5"),
        "{e}"
    );
    let e = field_due_at(json!({"field": "items[3].due"}), "UTC").unwrap_err();
    assert!(matches!(e, WaitError::FieldMissing { .. }), "{e}");
    // Bad paths and offsets are deserialize errors.
    let e = spec_err(json!({"until_field": {"field": "a..b"}}));
    assert!(e.starts_with("until_field.field: invalid path"), "{e}");
    let e = spec_err(json!({"until_field": {"field": "d", "offset": "three days"}}));
    assert!(e.starts_with("until_field.offset: invalid offset"), "{e}");
    let e = spec_err(json!({"until_field": {"field": "d", "at": "9am"}}));
    assert!(e.starts_with("until_field.at: invalid time of day \"9am\""), "{e}");
}

#[test]
fn next_weekday_strictly_after_start() {
    // 2026-03-09 is a Monday. 10:00 Berlin (CET) = 09:00Z.
    let w = json!({"until_weekday": {"days": ["monday"], "at": "09:00"}});
    assert_eq!(
        due(w.clone(), "2026-03-09T09:00:00Z", "Europe/Berlin"),
        ts("2026-03-16T08:00:00Z")
    );
    // From Monday 08:00 the same day's 09:00 is next.
    assert_eq!(
        due(w.clone(), "2026-03-09T07:00:00Z", "Europe/Berlin"),
        ts("2026-03-09T08:00:00Z")
    );
    // Exactly 09:00 is not strictly after: next week.
    assert_eq!(
        due(w.clone(), "2026-03-09T08:00:00Z", "Europe/Berlin"),
        ts("2026-03-16T08:00:00Z")
    );
    // From Saturday.
    assert_eq!(
        due(w, "2026-03-07T12:00:00Z", "Europe/Berlin"),
        ts("2026-03-09T08:00:00Z")
    );
    // Several days: the earliest wins.
    let w = json!({"until_weekday": {"days": ["Thu", "mon"], "at": "09:00"}});
    assert_eq!(
        due(w, "2026-03-09T09:00:00Z", "Europe/Berlin"),
        ts("2026-03-12T08:00:00Z")
    );
    // Across the US change: Monday 09:00 EDT.
    let w = json!({"until_weekday": {"days": ["monday"], "at": "09:00"}});
    assert_eq!(
        due(w, "2026-03-06T15:00:00Z", "America/New_York"),
        ts("2026-03-09T13:00:00Z")
    );
    // A time in the DST gap moves forward.
    let w = json!({"until_weekday": {"days": ["sunday"], "at": "02:30"}});
    assert_eq!(
        due(w, "2026-03-06T15:00:00Z", "America/New_York"),
        ts("2026-03-08T07:30:00Z")
    );
    let e = spec_err(json!({"until_weekday": {"days": [], "at": "09:00"}}));
    assert_eq!(e, "until_weekday.days: must list at least one weekday");
    let e = spec_err(json!({"until_weekday": {"days": ["mondy"], "at": "09:00"}}));
    assert!(e.starts_with("until_weekday.days[0]: invalid weekday \"mondy\""), "{e}");
}

#[test]
fn business_hours_move_due_forward() {
    let bh = json!({"start": "09:00", "end": "17:00"});
    // Friday 2026-03-06 18:00 Berlin -> Monday 2026-03-09 09:00 Berlin.
    let w = json!({"until": "2026-03-06T18:00", "business_hours": bh});
    assert_eq!(
        due(w, "2026-03-01T00:00:00Z", "Europe/Berlin"),
        ts("2026-03-09T08:00:00Z")
    );
    // Friday 18:00 New York -> Monday 09:00 EDT (after the DST change).
    let w = json!({"duration": "1h", "business_hours": bh});
    assert_eq!(
        due(w, "2026-03-06T22:00:00Z", "America/New_York"),
        ts("2026-03-09T13:00:00Z")
    );
    let check = |until: &str, expect: &str| {
        let w = json!({"until": until, "business_hours": bh});
        assert_eq!(due(w, "2026-03-01T00:00:00Z", "UTC"), ts(expect), "{until}");
    };
    check("2026-03-10T07:00", "2026-03-10T09:00:00Z"); // Tuesday early -> same day
    check("2026-03-10T12:00", "2026-03-10T12:00:00Z"); // inside: unchanged
    check("2026-03-10T17:00", "2026-03-11T09:00:00Z"); // at end -> next day
    check("2026-03-07T10:00", "2026-03-09T09:00:00Z"); // Saturday -> Monday
    // Custom days.
    let w = json!({"until": "2026-03-10T18:00", "business_hours": {"days": ["sat"], "start": "10:00", "end": "14:00"}});
    assert_eq!(due(w, "2026-03-01T00:00:00Z", "UTC"), ts("2026-03-14T10:00:00Z"));
    let e = spec_err(json!({"duration": "1h", "business_hours": {"start": "17:00", "end": "09:00"}}));
    assert!(e.starts_with("business_hours: end: must be after start"), "{e}");
    let e = spec_err(json!({"duration": "1h", "business_hours": {"days": [], "start": "09:00", "end": "17:00"}}));
    assert!(
        e.starts_with("business_hours: days: must list at least one weekday"),
        "{e}"
    );
    let e = spec_err(json!({"duration": "1h", "business_hours": {"start": "09:00", "end": "17:00", "tz": "UTC"}}));
    assert!(e.contains("unknown field `tz`"), "{e}");
}

#[test]
fn zone_selection() {
    let berlin = TimeZoneName::parse("Europe/Berlin").unwrap();
    assert_eq!(
        zone_for(Some("America/New_York"), Some(&berlin)).iana_name(),
        Some("America/New_York")
    );
    assert_eq!(
        zone_for(Some("Mars/Base"), Some(&berlin)).iana_name(),
        Some("Europe/Berlin")
    );
    assert_eq!(zone_for(None, Some(&berlin)).iana_name(), Some("Europe/Berlin"));
    assert_eq!(zone_for(Some(""), None).iana_name(), Some("UTC"));
    assert_eq!(zone_for(None, None), TimeZone::UTC);
}

#[test]
fn descriptions() {
    let berlin = tz("Europe/Berlin");
    let s = spec(json!({"until_weekday": {"days": ["monday"], "at": "09:00"}}));
    let d = due_at(&s, ts("2026-03-07T12:00:00Z"), &berlin, &json!({})).unwrap();
    assert_eq!(
        describe(&s, d, &berlin),
        "until Monday 09:00 Europe/Berlin → 2026-03-09T08:00:00Z"
    );
    let s = spec(json!({"until_weekday": {"days": ["mon", "wed", "fri"], "at": "09:00"}}));
    assert!(describe(&s, d, &berlin).starts_with("until Monday, Wednesday or Friday 09:00"));
    let s = spec(json!({"duration": "1d", "business_hours": {"start": "09:00", "end": "17:00"}}));
    assert_eq!(
        describe(&s, d, &berlin),
        "for 1d (Europe/Berlin), within business hours Mon Tue Wed Thu Fri 09:00–17:00 → 2026-03-09T08:00:00Z"
    );
    let s = spec(
        json!({"until_field": {"field": "renewal_date", "offset": "-3d", "at": "09:00"}, "timezone": "America/New_York"}),
    );
    assert_eq!(
        describe(&s, d, &berlin),
        "until 3d before record.renewal_date at 09:00 America/New_York → 2026-03-09T08:00:00Z"
    );
    let s = spec(json!({"until": "2026-03-09T09:00"}));
    assert_eq!(
        describe(&s, d, &berlin),
        "until 2026-03-09T09:00 Europe/Berlin → 2026-03-09T08:00:00Z"
    );
    let s = spec(json!({"until": "2026-03-09T08:00:00Z"}));
    assert_eq!(
        describe(&s, d, &berlin),
        "until 2026-03-09T08:00:00Z → 2026-03-09T08:00:00Z"
    );
}

#[test]
fn serde_round_trip_and_schema() {
    let v = json!({
        "until_field": {"field": "record.renewal_date", "offset": "-3d", "at": "09:00"},
        "business_hours": {"days": ["monday", "tuesday"], "start": "09:00", "end": "17:30"},
        "timezone": "Europe/Berlin"
    });
    let s = spec(v.clone());
    assert_eq!(serde_json::to_value(&s).unwrap(), v);
    let s2 = spec(json!({"duration": "1h", "business_hours": {"start": "09:00", "end": "17:00"}}));
    assert_eq!(s2.business_hours, Some(BusinessHours::default()));
    let schema = serde_json::to_value(schemars::schema_for!(WaitSpec)).unwrap();
    assert_eq!(schema["additionalProperties"], json!(false));
    assert_eq!(schema["oneOf"].as_array().map(Vec::len), Some(4));
    assert!(schema["properties"]["until_weekday"].is_object(), "{schema}");
}

#[test]
fn never_panics_on_odd_scopes() {
    let s = spec(json!({"until_field": {"field": "contact.birthday"}}));
    for scope in [
        json!(null),
        json!([]),
        json!({"contact": 5}),
        json!({"contact": {"birthday": {}}}),
    ] {
        assert!(due_at(&s, ts("2026-01-01T00:00:00Z"), &TimeZone::UTC, &scope).is_err());
    }
    // Out-of-range arithmetic is an error, not a panic.
    let s = spec(json!({"until_field": {"field": "d", "offset": "-15000y"}}));
    let scope = json!({"record": {"d": "0001-01-01"}});
    let e = due_at(&s, ts("2026-01-01T00:00:00Z"), &TimeZone::UTC, &scope).unwrap_err();
    assert!(e.to_string().starts_with("until_field: date out of range"), "{e}");
}
