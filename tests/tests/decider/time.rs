//! Time zones and DST through the decider: calendar days are wall-clock days in the contact's
//! zone (else the automation's, else UTC), hours are elapsed time.

use crmflow_core::command::{Command, Input};
use crmflow_core::run::RunStatus;
use crmflow_tests::given::*;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

fn wait_def(extra: &str, wait: &str) -> String {
    def_with(extra, &format!("- id: w\n  wait: {wait}\n- id: after\n  end: {{}}\n"))
}

/// Starts a run at `start` for a contact and returns the due time of the timer it schedules,
/// and the wait record's detail.
fn due_for(definition: &str, start: &str, contact: Value) -> (Timestamp, String) {
    let trig = event("evt-1", "lead.created", start, json!({}));
    let mut h = Harness::new(definition, &trig, contact);
    let d = h.start();
    let due = d
        .commands
        .iter()
        .find_map(|c| match c {
            Command::ScheduleTimer { due_at, .. } => Some(*due_at),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no timer scheduled: {:?}", d.commands));
    assert_eq!(h.timer().1, due, "the cursor's timer is the scheduled one");
    (due, d.records[0].detail.clone())
}

fn ny() -> Value {
    json!({"timezone": "America/New_York"})
}

fn berlin() -> Value {
    json!({"timezone": "Europe/Berlin"})
}

#[test]
fn one_day_across_the_us_spring_forward_is_23_hours() {
    let start = "2026-03-07T19:00:00Z"; // 14:00 EST, the day before the change
    let (day, detail) = due_for(&wait_def("", "{duration: 1d}"), start, ny());
    assert_eq!(day, ts("2026-03-08T18:00:00Z"), "1d: 14:00 EDT next day");
    assert_eq!(
        day.duration_since(ts(start)),
        SignedDuration::from_hours(23),
        "1d is 23 elapsed hours across spring-forward"
    );
    assert_eq!(detail, "for 1d (America/New_York) → 2026-03-08T18:00:00Z");

    let (hours, _) = due_for(&wait_def("", "{duration: 24h}"), start, ny());
    assert_eq!(hours, ts("2026-03-08T19:00:00Z"), "24h: elapsed time, 15:00 EDT");
}

#[test]
fn one_day_across_the_eu_change_in_berlin() {
    let start = "2026-03-28T13:00:00Z"; // 14:00 CET, the day before the EU change
    let (day, detail) = due_for(&wait_def("", "{duration: 1d}"), start, berlin());
    assert_eq!(day, ts("2026-03-29T12:00:00Z"), "1d: 14:00 CEST next day");
    assert_eq!(detail, "for 1d (Europe/Berlin) → 2026-03-29T12:00:00Z");
    let (hours, _) = due_for(&wait_def("", "{duration: 24h}"), start, berlin());
    assert_eq!(hours, ts("2026-03-29T13:00:00Z"), "24h: 15:00 CEST");
}

#[test]
fn the_same_definition_gives_different_instants_in_two_zones() {
    let definition = wait_def("", "{duration: 1d}");
    let start = "2026-03-07T19:00:00Z";
    let (ny_due, _) = due_for(&definition, start, ny());
    let (berlin_due, _) = due_for(&definition, start, berlin());
    let (utc_due, _) = due_for(&definition, start, json!({}));
    assert_eq!(ny_due, ts("2026-03-08T18:00:00Z"), "New York: US change inside the day");
    assert_eq!(berlin_due, ts("2026-03-08T19:00:00Z"), "Berlin: no change that day");
    assert_eq!(utc_due, ts("2026-03-08T19:00:00Z"), "no zone: UTC");
    assert_ne!(ny_due, berlin_due, "two zones, two instants");

    // Around the EU change it is the other way round.
    let start = "2026-03-28T13:00:00Z";
    let (ny_due, _) = due_for(&definition, start, ny());
    let (berlin_due, _) = due_for(&definition, start, berlin());
    assert_eq!(ny_due, ts("2026-03-29T13:00:00Z"), "New York: already on EDT, 24h");
    assert_eq!(berlin_due, ts("2026-03-29T12:00:00Z"), "Berlin: 23h");
}

#[test]
fn one_day_across_the_us_fall_back_is_25_hours() {
    let start = "2026-10-31T18:00:00Z"; // 14:00 EDT
    let (day, _) = due_for(&wait_def("", "{duration: 1d}"), start, ny());
    assert_eq!(day, ts("2026-11-01T19:00:00Z"), "1d: 14:00 EST");
    assert_eq!(day.duration_since(ts(start)), SignedDuration::from_hours(25));
}

#[test]
fn until_weekday_monday_0900_in_two_zones() {
    let definition = wait_def("", r#"{until_weekday: {days: [monday], at: "09:00"}}"#);
    for (case, start, contact, want) in [
        (
            "New York, after the US change",
            "2026-03-04T12:00:00Z",
            ny(),
            "2026-03-09T13:00:00Z",
        ),
        (
            "Berlin, before the EU change",
            "2026-03-04T12:00:00Z",
            berlin(),
            "2026-03-09T08:00:00Z",
        ),
        (
            "New York, late March",
            "2026-03-25T12:00:00Z",
            ny(),
            "2026-03-30T13:00:00Z",
        ),
        (
            "Berlin, after the EU change",
            "2026-03-25T12:00:00Z",
            berlin(),
            "2026-03-30T07:00:00Z",
        ),
        ("UTC", "2026-03-04T12:00:00Z", json!({}), "2026-03-09T09:00:00Z"),
        (
            "Monday 08:59 local: today",
            "2026-03-09T12:59:00Z",
            ny(),
            "2026-03-09T13:00:00Z",
        ),
        (
            "Monday 09:00 local exactly: next week (strictly after)",
            "2026-03-09T13:00:00Z",
            ny(),
            "2026-03-16T13:00:00Z",
        ),
    ] {
        let (due, detail) = due_for(&definition, start, contact);
        assert_eq!(due, ts(want), "{case}: {detail}");
    }
}

#[test]
fn contact_timezone_overrides_the_automation_timezone() {
    let definition = wait_def(
        "timezone: Europe/Berlin",
        r#"{until_weekday: {days: [monday], at: "09:00"}}"#,
    );
    let start = "2026-03-04T12:00:00Z";
    for (case, contact, want, zone) in [
        ("contact zone wins", ny(), "2026-03-09T13:00:00Z", "America/New_York"),
        (
            "no contact zone: the automation's",
            json!({}),
            "2026-03-09T08:00:00Z",
            "Europe/Berlin",
        ),
        (
            "invalid contact zone: the automation's",
            json!({"timezone": "Mars/Olympus_Mons"}),
            "2026-03-09T08:00:00Z",
            "Europe/Berlin",
        ),
        (
            "non-string contact zone: the automation's",
            json!({"timezone": 5}),
            "2026-03-09T08:00:00Z",
            "Europe/Berlin",
        ),
    ] {
        let (due, detail) = due_for(&definition, start, contact);
        assert_eq!(due, ts(want), "{case}: {detail}");
        assert!(detail.contains(zone), "{case}: detail names {zone}: {detail}");
    }

    // Invalid contact zone and no automation zone: UTC.
    let (due, detail) = due_for(
        &wait_def("", r#"{until_weekday: {days: [monday], at: "09:00"}}"#),
        start,
        json!({"timezone": "Not/AZone"}),
    );
    assert_eq!(
        due,
        ts("2026-03-09T09:00:00Z"),
        "invalid zone, no fallback: UTC ({detail})"
    );

    // The 1-day DST case with the automation in Berlin and the contact in New York.
    let (due, _) = due_for(
        &wait_def("timezone: Europe/Berlin", "{duration: 1d}"),
        "2026-03-07T19:00:00Z",
        ny(),
    );
    assert_eq!(due, ts("2026-03-08T18:00:00Z"), "contact zone for a 1d wait");
    let (due, _) = due_for(
        &wait_def("timezone: America/New_York", "{duration: 1d}"),
        "2026-03-07T19:00:00Z",
        json!({"timezone": "bogus"}),
    );
    assert_eq!(
        due,
        ts("2026-03-08T18:00:00Z"),
        "invalid contact zone: the automation's New York"
    );
}

#[test]
fn timeouts_of_events_tasks_and_goals_use_calendar_days_in_the_zone() {
    let start = "2026-03-07T19:00:00Z";
    for (case, step) in [
        (
            "wait_for_event timeout",
            "- id: s\n  wait_for_event: {event: message.received, timeout: 1d}\n",
        ),
        (
            "human_task timeout",
            "- id: s\n  human_task: {title: Check, timeout: 1d}\n",
        ),
        (
            "required goal timeout",
            "- id: s\n  goal: {event: deal.won, required: true, timeout: 1d}\n",
        ),
    ] {
        let (due, _) = due_for(&def_with("", step), start, ny());
        assert_eq!(due, ts("2026-03-08T18:00:00Z"), "{case}: 1d in New York");
        let (due, _) = due_for(&def_with("", step), start, json!({}));
        assert_eq!(due, ts("2026-03-08T19:00:00Z"), "{case}: 1d in UTC");
    }
}

#[test]
fn wall_clock_times_in_a_dst_gap_move_forward() {
    // 02:30 on 2026-03-08 does not exist in New York: it becomes 03:30 EDT.
    let definition = wait_def("", r#"{until_field: {field: due_day, at: "02:30"}}"#);
    let trig = event(
        "evt-1",
        "lead.created",
        "2026-03-01T12:00:00Z",
        json!({"due_day": "2026-03-08"}),
    );
    let mut h = Harness::new(&definition, &trig, ny());
    h.start();
    assert_eq!(
        h.timer().1,
        ts("2026-03-08T07:30:00Z"),
        "gap: compatible disambiguation"
    );
}

#[test]
fn a_zone_learnt_from_an_event_applies_to_later_waits() {
    let definition = def_with(
        "",
        r#"
- id: await
  wait_for_event: {event: contact.updated}
- id: w
  wait: {duration: 1d}
"#,
    );
    let trig = event("evt-1", "lead.created", "2026-03-01T12:00:00Z", json!({}));
    let mut h = Harness::new(&definition, &trig, json!({}));
    h.start();
    let update = with_contact(
        event("evt-2", "contact.updated", "2026-03-07T19:00:00Z", json!({})),
        json!({"timezone": "America/New_York"}),
    );
    let d = h.event(update);
    assert_eq!(d.run.status, RunStatus::Waiting);
    assert_eq!(h.cursor_step(), Some("w"));
    assert_eq!(h.timer().1, ts("2026-03-08T18:00:00Z"), "the new contact zone is used");
    let fired = h.fire();
    assert_eq!(fired.run.status, RunStatus::Completed);
    assert!(
        h.peek(&Input::TimerFired {
            timer_id: "run-1.1".into()
        })
        .is_noop(&h.run)
    );
}
