//! Step kinds, enrollment/exit and redelivery, through the pure decider.
//!
//! Each test builds a program from a small YAML definition, a run from a trigger event, and
//! feeds inputs with a manual clock, asserting the new state, the history records and the exact
//! commands.

use crmflow_core::command::{ActionOutcome, Command, Effect, Input};
use crmflow_core::decider::{MAX_STEPS_PER_DECISION, split_draw};
use crmflow_core::definition::{EnrollmentPolicy, Reenroll};
use crmflow_core::enrollment::{self, EnrollmentState};
use crmflow_core::run::{RunStatus, StepStatus, WaitingFor};
use crmflow_core::time::DurationSpec;
use crmflow_tests::given::*;
use serde_json::{Value, json};

fn trigger(data: Value) -> crmflow_core::event::Event {
    event("evt-1", "lead.created", "2026-03-02T09:00:00Z", data)
}

fn ada() -> Value {
    json!({"email": "ada@example.com", "first_name": "Ada"})
}

fn tag_of(d: &crmflow_core::decider::Decision) -> String {
    match effect(d) {
        Effect::Crm(c) => c.params["tag"].as_str().unwrap_or_default().to_string(),
        other => panic!("expected a CRM effect, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// action
// ---------------------------------------------------------------------------

#[test]
fn action_step_performs_and_advances_on_success() {
    let mut h = Harness::new(
        &def(r#"
- id: a
  action: {type: add_tag, params: {tag: VIP}}
- id: b
  end: {}
"#),
        &trigger(json!({})),
        ada(),
    );
    let d = h.start();
    assert_eq!(
        records_of(&d),
        vec![("a".into(), "action:add_tag".into(), StepStatus::Running)],
        "start: action record"
    );
    assert_eq!(d.commands.len(), 1, "start: one command, got {:?}", d.commands);
    let p = perform(&d);
    assert_eq!(
        (p.step_id.as_str(), p.seq, p.attempt),
        ("a", 0, 1),
        "start: perform coordinates"
    );
    assert_eq!(p.idempotency_key, "run-1.0", "start: idempotency key");
    assert_eq!(
        d.run.status,
        RunStatus::Running,
        "start: running while the action is out"
    );
    assert_eq!(
        h.waiting_for(),
        Some(WaitingFor::Action {
            idempotency_key: "run-1.0".into()
        }),
        "start: waits for the action"
    );

    let d = h.succeed();
    assert_eq!(
        records_of(&d),
        vec![
            ("a".into(), "action:add_tag".into(), StepStatus::Completed),
            ("b".into(), "end".into(), StepStatus::Completed)
        ],
        "result: action closed, end entered"
    );
    assert_eq!(
        d.commands,
        vec![Command::Complete {
            reason: "ended at step \"b\": end step".into()
        }],
        "result: commands"
    );
    assert_eq!(d.run.status, RunStatus::Completed, "result: run completed");
    assert!(d.run.cursor.is_none(), "result: no cursor after completion");
    assert_eq!(
        h.record("a").detail,
        "CRM command add_tag {\"tag\":\"VIP\"}; done",
        "action detail"
    );
}

// ---------------------------------------------------------------------------
// wait
// ---------------------------------------------------------------------------

/// Starts a run of `def` at `start` for a contact and returns the first decision's timer.
fn wait_case(
    case: &str,
    definition: &str,
    data: Value,
    contact: Value,
    start: &str,
) -> (Harness, String, jiff::Timestamp) {
    let trig = event("evt-1", "lead.created", start, data);
    let mut h = Harness::new(definition, &trig, contact);
    let d = h.start();
    assert_eq!(d.run.status, RunStatus::Waiting, "{case}: run waits");
    assert_eq!(h.waiting_for(), Some(WaitingFor::Timer), "{case}: waits for a timer");
    let scheduled: Vec<_> = d
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::ScheduleTimer { timer_id, due_at } => Some((timer_id.clone(), *due_at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        d.commands.len(),
        1,
        "{case}: only a ScheduleTimer, got {:?}",
        d.commands
    );
    assert_eq!(scheduled.len(), 1, "{case}: one timer");
    let (id, due) = scheduled[0].clone();
    assert_eq!(
        h.timer(),
        (id.clone(), due),
        "{case}: cursor timer equals the scheduled one"
    );
    let rec = &d.records[0];
    assert_eq!(
        (rec.step_type.as_str(), rec.status),
        ("wait", StepStatus::Waiting),
        "{case}: wait record"
    );
    assert!(
        rec.detail.ends_with(&format!("→ {due}")),
        "{case}: detail names the due time: {}",
        rec.detail
    );
    (h, id, due)
}

#[test]
fn wait_kinds_schedule_the_exact_due_time() {
    let after = "- id: next\n  action: {type: add_tag, params: {tag: after-wait}}\n";
    let cases: Vec<(&str, String, Value, Value, &str, &str)> = vec![
        (
            "duration 2h",
            def(&format!("- id: w\n  wait: {{duration: 2h}}\n{after}")),
            json!({}),
            json!({}),
            "2026-03-02T09:00:00Z",
            "2026-03-02T11:00:00Z",
        ),
        (
            "until RFC 3339",
            def(&format!(
                "- id: w\n  wait: {{until: \"2026-03-05T10:30:00Z\"}}\n{after}"
            )),
            json!({}),
            json!({}),
            "2026-03-02T09:00:00Z",
            "2026-03-05T10:30:00Z",
        ),
        (
            "until civil, read in the automation's zone",
            def_with(
                "timezone: Europe/Berlin",
                &format!("- id: w\n  wait: {{until: \"2026-03-05T09:00\"}}\n{after}"),
            ),
            json!({}),
            json!({}),
            "2026-03-02T09:00:00Z",
            "2026-03-05T08:00:00Z",
        ),
        (
            "until_field with offset and at, contact zone",
            def(&format!(
                "- id: w\n  wait: {{until_field: {{field: renewal_date, offset: \"-3d\", at: \"09:00\"}}}}\n{after}"
            )),
            json!({"renewal_date": "2026-04-10"}),
            json!({"timezone": "America/New_York"}),
            "2026-03-02T09:00:00Z",
            "2026-04-07T13:00:00Z",
        ),
        (
            "until_field on a contact timestamp",
            def(&format!(
                "- id: w\n  wait: {{until_field: {{field: contact.trial_ends, offset: \"1d\"}}}}\n{after}"
            )),
            json!({}),
            json!({"trial_ends": "2026-03-10T15:00:00Z"}),
            "2026-03-02T09:00:00Z",
            "2026-03-11T15:00:00Z",
        ),
        (
            "until_weekday monday 09:00 from a Wednesday",
            def(&format!(
                "- id: w\n  wait: {{until_weekday: {{days: [monday], at: \"09:00\"}}}}\n{after}"
            )),
            json!({}),
            json!({}),
            "2026-03-04T12:00:00Z",
            "2026-03-09T09:00:00Z",
        ),
        (
            "until_weekday monday or thursday picks the nearest",
            def(&format!(
                "- id: w\n  wait: {{until_weekday: {{days: [monday, thu], at: \"09:00\"}}}}\n{after}"
            )),
            json!({}),
            json!({}),
            "2026-03-04T12:00:00Z",
            "2026-03-05T09:00:00Z",
        ),
        (
            "business_hours moves Friday 17:30 to Monday 09:00",
            def(&format!(
                "- id: w\n  wait: {{duration: 1h, business_hours: {{start: \"09:00\", end: \"17:00\"}}}}\n{after}"
            )),
            json!({}),
            json!({"timezone": "America/New_York"}),
            "2026-03-13T20:30:00Z",
            "2026-03-16T13:00:00Z",
        ),
        (
            "business_hours keeps a due time inside the hours",
            def(&format!(
                "- id: w\n  wait: {{duration: 1h, business_hours: {{start: \"09:00\", end: \"17:00\"}}}}\n{after}"
            )),
            json!({}),
            json!({"timezone": "America/New_York"}),
            "2026-03-13T14:00:00Z",
            "2026-03-13T15:00:00Z",
        ),
        (
            "wait timezone wins over the contact's",
            def(&format!(
                "- id: w\n  wait: {{until: \"2026-03-05T09:00\", timezone: Asia/Tokyo}}\n{after}"
            )),
            json!({}),
            json!({"timezone": "America/New_York"}),
            "2026-03-02T09:00:00Z",
            "2026-03-05T00:00:00Z",
        ),
    ];
    for (case, definition, data, contact, start, want) in cases {
        let (mut h, id, due) = wait_case(case, &definition, data, contact, start);
        assert_eq!(due, ts(want), "{case}: due_at");
        assert_eq!(id, "run-1.0", "{case}: timer id is run_id.seq");

        // Firing the timer closes the wait (no CancelTimer: it fired) and moves on.
        let d = h.fire();
        assert_eq!(
            records_of(&d),
            vec![
                ("w".into(), "wait".into(), StepStatus::Completed),
                ("next".into(), "action:add_tag".into(), StepStatus::Running)
            ],
            "{case}: after the timer"
        );
        assert!(
            !d.commands.iter().any(|c| matches!(c, Command::CancelTimer { .. })),
            "{case}: a fired timer is not cancelled: {:?}",
            d.commands
        );
        assert_eq!(tag_of(&d), "after-wait", "{case}: next step performs");
        assert_eq!(
            h.record("w").finished_at,
            Some(ts(want)),
            "{case}: wait finished at due"
        );
        assert!(
            h.record("w").detail.ends_with("; waited"),
            "{case}: {}",
            h.record("w").detail
        );
    }
}

#[test]
fn wait_already_due_is_passed_through() {
    let mut h = Harness::new(
        &def(r#"
- id: w
  wait: {until: "2026-01-01T00:00:00Z"}
- id: next
  action: {type: add_tag, params: {tag: x}}
"#),
        &trigger(json!({})),
        json!({}),
    );
    let d = h.start();
    assert_eq!(
        records_of(&d),
        vec![
            ("w".into(), "wait".into(), StepStatus::Completed),
            ("next".into(), "action:add_tag".into(), StepStatus::Running)
        ],
        "past until: instant"
    );
    assert!(d.records[0].detail.contains("(already due)"), "{}", d.records[0].detail);
    assert!(
        !d.commands.iter().any(|c| matches!(c, Command::ScheduleTimer { .. })),
        "past until: no timer"
    );
}

#[test]
fn wait_on_a_missing_field_fails_the_run() {
    let mut h = Harness::new(
        &def(r#"
- id: w
  wait: {until_field: {field: renewal_date}}
"#),
        &trigger(json!({})),
        json!({}),
    );
    let d = h.start();
    assert_eq!(d.run.status, RunStatus::Failed, "missing field: run fails");
    assert_eq!(d.records[0].status, StepStatus::Failed, "missing field: step failed");
    assert_eq!(
        d.records[0].error.as_deref(),
        Some("until_field: record.renewal_date is missing"),
        "missing field: error"
    );
}

// ---------------------------------------------------------------------------
// branch
// ---------------------------------------------------------------------------

const IF_ELSE: &str = r#"
- id: check
  branch:
    if: {field: record.amount, op: greater_than, value: 100}
    then:
    - id: big
      action: {type: add_tag, params: {tag: big}}
    else:
    - id: small
      action: {type: add_tag, params: {tag: small}}
- id: after
  end: {reason: done}
"#;

#[test]
fn branch_if_else_both_ways() {
    for (case, amount, label, path_step, tag) in [
        ("if true", 150, "took then", "big", "big"),
        ("if false", 50, "took else", "small", "small"),
    ] {
        let mut h = Harness::new(&def(IF_ELSE), &trigger(json!({"amount": amount})), json!({}));
        let d = h.start();
        assert_eq!(
            records_of(&d),
            vec![
                ("check".into(), "branch".into(), StepStatus::Completed),
                (path_step.into(), "action:add_tag".into(), StepStatus::Running)
            ],
            "{case}: records"
        );
        assert!(
            d.records[0].detail.starts_with(label),
            "{case}: detail {:?} should start with {label:?}",
            d.records[0].detail
        );
        assert!(
            d.records[0]
                .detail
                .contains(&format!("record.amount ({amount}) greater_than 100")),
            "{case}: detail explains: {}",
            d.records[0].detail
        );
        assert_eq!(tag_of(&d), tag, "{case}: path action");
        // The path falls through to the step after the branch.
        h.succeed();
        h.assert_path(
            case,
            &[
                ("check", StepStatus::Completed),
                (path_step, StepStatus::Completed),
                ("after", StepStatus::Completed),
            ],
        );
        assert_eq!(h.run.status, RunStatus::Completed, "{case}: completed");
    }
}

#[test]
fn branch_cases_take_the_first_match_or_else() {
    let definition = def(r#"
- id: tier
  branch:
    cases:
    - name: gold
      when: {tier: gold}
      steps:
      - id: g
        action: {type: add_tag, params: {tag: gold}}
    - when: {field: tier, op: in, value: [silver, platinum]}
      steps:
      - id: s
        action: {type: add_tag, params: {tag: silver}}
    - name: any-paid
      when: {field: tier, op: is_known}
      steps:
      - id: p
        action: {type: add_tag, params: {tag: paid}}
    else:
    - id: o
      action: {type: add_tag, params: {tag: other}}
"#);
    for (case, tier, label, step_id) in [
        ("first case", json!("gold"), "took gold:", "g"),
        ("second case (unnamed)", json!("silver"), "took case 2:", "s"),
        ("third case, not the second", json!("bronze"), "took any-paid:", "p"),
        ("no case: else", Value::Null, "took else:", "o"),
    ] {
        let data = if tier.is_null() {
            json!({})
        } else {
            json!({"tier": tier})
        };
        let mut h = Harness::new(&definition, &trigger(data), json!({}));
        let d = h.start();
        assert!(
            d.records[0].detail.starts_with(label),
            "{case}: detail {:?} should start with {label:?}",
            d.records[0].detail
        );
        assert_eq!(d.records[1].step_id, step_id, "{case}: path taken");
        if step_id == "o" {
            assert!(
                d.records[0].detail.contains("gold:") && d.records[0].detail.contains("case 2:"),
                "{case}: else explains every case: {}",
                d.records[0].detail
            );
        }
    }
}

#[test]
fn branch_with_cel_condition() {
    let definition = def(r#"
- id: check
  branch:
    if: {cel: "record.amount > 100 && 'vip' in contact.tags"}
    then:
    - id: yes
      end: {reason: vip}
    else:
    - id: no
      end: {reason: not vip}
"#);
    for (case, amount, tags, want) in [
        ("cel true", 150, json!(["vip"]), "took then"),
        ("cel false (tags)", 150, json!(["x"]), "took else"),
        ("cel false (amount)", 50, json!(["vip"]), "took else"),
    ] {
        let mut h = Harness::new(&definition, &trigger(json!({"amount": amount})), json!({"tags": tags}));
        let d = h.start();
        assert!(d.records[0].detail.starts_with(want), "{case}: {}", d.records[0].detail);
    }
}

#[test]
fn branch_on_an_empty_else_falls_through() {
    let definition = def(r#"
- id: check
  branch:
    if: {field: amount, op: gt, value: 100}
    then:
    - id: big
      end: {reason: big}
- id: after
  end: {reason: fell through}
"#);
    let mut h = Harness::new(&definition, &trigger(json!({"amount": 1})), json!({}));
    let d = h.start();
    assert_eq!(d.records[1].step_id, "after", "empty else goes to the next step");
    assert_eq!(
        d.commands,
        vec![Command::Complete {
            reason: "ended at step \"after\": fell through".into()
        }]
    );
}

// ---------------------------------------------------------------------------
// split
// ---------------------------------------------------------------------------

const SPLIT: &str = r#"
- id: ab
  split:
    paths:
    - name: a
      percent: 30
      steps:
      - id: path-a
        end: {reason: a}
    - name: b
      percent: 70
      steps:
      - id: path-b
        end: {reason: b}
"#;

#[test]
fn split_takes_the_path_split_draw_implies() {
    let program = program(&def(SPLIT));
    // Find run ids that land on each side, and check each against split_draw.
    let mut seen_a = false;
    let mut seen_b = false;
    for i in 0..200 {
        let run_id = format!("run-{i}");
        let draw = split_draw(&run_id, "ab");
        let (want_step, want_label) = if draw < 30 { ("path-a", "a") } else { ("path-b", "b") };
        seen_a |= draw < 30;
        seen_b |= draw >= 30;
        let mut h = Harness::with_run_id(&run_id, program.clone(), &trigger(json!({})), json!({}));
        let d = h.start();
        assert_eq!(d.records[1].step_id, want_step, "{run_id}: draw {draw}");
        let pct = if want_label == "a" { 30 } else { 70 };
        assert_eq!(
            d.records[0].detail,
            format!("took {want_label} ({pct}%), draw {draw} of 100"),
            "{run_id}: split detail"
        );
        // Redelivered: the same path again.
        let again = h.peek(&Input::Start);
        assert!(again.is_noop(&h.run), "{run_id}: a second Start is a no-op");
        let mut h2 = Harness::with_run_id(&run_id, program.clone(), &trigger(json!({})), json!({}));
        assert_eq!(
            h2.start().records[1].step_id,
            want_step,
            "{run_id}: stable across decisions"
        );
    }
    assert!(seen_a && seen_b, "200 run ids should exercise both paths");
}

#[test]
fn split_30_70_over_1000_runs_is_within_tolerance() {
    let program = program(&def(SPLIT));
    let mut a = 0;
    for i in 0..1000 {
        let run_id = format!("019c{i:04}-run");
        let mut h = Harness::with_run_id(&run_id, program.clone(), &trigger(json!({})), json!({}));
        let d = h.start();
        if d.records[1].step_id == "path-a" {
            a += 1;
        }
    }
    // Binomial(1000, 0.3): sd ≈ 14.5; allow 4 sd.
    assert!(
        (240..=360).contains(&a),
        "path a taken {a} times of 1000, expected about 300"
    );
}

// ---------------------------------------------------------------------------
// wait_for_event
// ---------------------------------------------------------------------------

const WAIT_FOR_REPLY: &str = r#"
- id: await
  wait_for_event:
    event: message.received
    condition: {field: event.data.channel, op: equals, value: email}
    timeout: 2d
    on_event:
    - id: replied
      action: {type: add_tag, params: {tag: replied}}
    on_timeout:
    - id: nudge
      action: {type: add_tag, params: {tag: nudge}}
- id: done
  end: {reason: finished}
"#;

fn start_wait_for_reply() -> Harness {
    let mut h = Harness::new(&def(WAIT_FOR_REPLY), &trigger(json!({})), json!({}));
    let d = h.start();
    assert_eq!(
        d.commands,
        vec![Command::ScheduleTimer {
            timer_id: "run-1.0".into(),
            due_at: ts("2026-03-04T09:00:00Z")
        }],
        "wait_for_event: timeout timer"
    );
    assert_eq!(
        records_of(&d),
        vec![("await".into(), "wait_for_event".into(), StepStatus::Waiting)]
    );
    assert_eq!(
        d.records[0].detail,
        "waiting for message.received until 2026-03-04T09:00:00Z"
    );
    assert_eq!(h.waiting_for(), Some(WaitingFor::Event));
    assert_eq!(d.run.status, RunStatus::Waiting);
    h
}

#[test]
fn wait_for_event_event_arrives_takes_on_event() {
    let mut h = start_wait_for_reply();
    let reply = event(
        "evt-2",
        "message.received",
        "2026-03-02T12:00:00Z",
        json!({"channel": "email"}),
    );
    let d = h.event(reply.clone());
    assert_eq!(
        records_of(&d),
        vec![
            ("await".into(), "wait_for_event".into(), StepStatus::Completed),
            ("replied".into(), "action:add_tag".into(), StepStatus::Running)
        ],
        "event: records"
    );
    assert_eq!(
        d.commands[0],
        Command::CancelTimer {
            timer_id: "run-1.0".into(),
            due_at: ts("2026-03-04T09:00:00Z")
        },
        "event: the timeout timer is cancelled first"
    );
    assert_eq!(tag_of(&d), "replied", "event: on_event path");
    assert_eq!(d.commands.len(), 2, "event: CancelTimer + Perform: {:?}", d.commands);
    let rec = h.record("await");
    assert!(rec.detail.contains("received message.received evt-2"), "{}", rec.detail);
    assert_eq!(rec.output, Some(reply.to_scope_value()), "event: output is the event");
    assert_eq!(rec.finished_at, Some(ts("2026-03-02T12:00:00Z")));

    // The timeout timer fires anyway (it was already in flight): stale, no-op.
    let stale = h.peek(&Input::TimerFired {
        timer_id: "run-1.0".into(),
    });
    assert!(
        stale.is_noop(&h.run),
        "stale timer after the event is a no-op: {stale:?}"
    );

    h.succeed();
    h.assert_path(
        "event then done",
        &[
            ("await", StepStatus::Completed),
            ("replied", StepStatus::Completed),
            ("done", StepStatus::Completed),
        ],
    );
    assert_eq!(h.run.status, RunStatus::Completed);
}

#[test]
fn wait_for_event_condition_false_keeps_waiting_then_times_out() {
    let mut h = start_wait_for_reply();
    for (case, e) in [
        (
            "condition false",
            event(
                "evt-2",
                "message.received",
                "2026-03-02T12:00:00Z",
                json!({"channel": "sms"}),
            ),
        ),
        (
            "other event type",
            event(
                "evt-3",
                "message.sent",
                "2026-03-02T13:00:00Z",
                json!({"channel": "email"}),
            ),
        ),
    ] {
        let d = h.event(e);
        assert!(d.records.is_empty(), "{case}: no records: {:?}", d.records);
        assert!(d.commands.is_empty(), "{case}: no commands: {:?}", d.commands);
        assert_eq!(d.run.status, RunStatus::Waiting, "{case}: still waiting");
        assert_eq!(h.cursor_step(), Some("await"), "{case}: still at the step");
        assert_eq!(
            h.timer(),
            ("run-1.0".into(), ts("2026-03-04T09:00:00Z")),
            "{case}: same timer"
        );
    }

    let d = h.fire();
    assert_eq!(
        records_of(&d),
        vec![
            ("await".into(), "wait_for_event".into(), StepStatus::TimedOut),
            ("nudge".into(), "action:add_tag".into(), StepStatus::Running)
        ],
        "timeout: records"
    );
    assert_eq!(d.commands.len(), 1, "timeout: only the Perform: {:?}", d.commands);
    assert_eq!(tag_of(&d), "nudge", "timeout: on_timeout path");
    assert!(
        h.record("await").detail.ends_with("no message.received within 2d"),
        "{}",
        h.record("await").detail
    );
    h.succeed();
    h.assert_path(
        "timeout then done",
        &[
            ("await", StepStatus::TimedOut),
            ("nudge", StepStatus::Completed),
            ("done", StepStatus::Completed),
        ],
    );
}

#[test]
fn wait_for_event_without_timeout_has_no_timer() {
    let mut h = Harness::new(
        &def(r#"
- id: await
  wait_for_event: {event: "message.*"}
- id: done
  end: {}
"#),
        &trigger(json!({})),
        json!({}),
    );
    let d = h.start();
    assert!(d.commands.is_empty(), "no timeout: no timer: {:?}", d.commands);
    assert_eq!(d.records[0].detail, "waiting for message.* (no timeout)");
    let d = h.event(event("evt-2", "message.received", "2026-03-09T09:00:00Z", json!({})));
    assert_eq!(d.run.status, RunStatus::Completed, "wildcard event matches");
    assert!(
        !d.commands.iter().any(|c| matches!(c, Command::CancelTimer { .. })),
        "no timer to cancel"
    );
}

// ---------------------------------------------------------------------------
// goal
// ---------------------------------------------------------------------------

#[test]
fn optional_goal_is_passed_through_or_reached() {
    let definition = def(r#"
- id: g
  goal: {condition: {field: contact.tags, op: contains, value: customer}}
- id: after
  action: {type: add_tag, params: {tag: after}}
"#);
    for (case, tags, status, detail) in [
        (
            "optional goal not met",
            json!([]),
            StepStatus::Skipped,
            "optional goal not met yet; continuing",
        ),
        (
            "optional goal already met",
            json!(["customer"]),
            StepStatus::Completed,
            "goal reached: contact.tags ([\"customer\"]) contains \"customer\" → true",
        ),
    ] {
        let mut h = Harness::new(&definition, &trigger(json!({})), json!({"tags": tags}));
        let d = h.start();
        assert_eq!(
            records_of(&d),
            vec![
                ("g".into(), "goal".into(), status),
                ("after".into(), "action:add_tag".into(), StepStatus::Running)
            ],
            "{case}: records"
        );
        assert_eq!(d.records[0].detail, detail, "{case}: detail");
    }
}

const REQUIRED_GOAL: &str = r#"
- id: g
  goal: {event: deal.won, required: true, timeout: 3d}
- id: after
  action: {type: add_tag, params: {tag: won}}
"#;

#[test]
fn required_goal_waits_and_is_reached_by_its_event() {
    let mut h = Harness::new(&def(REQUIRED_GOAL), &trigger(json!({})), json!({}));
    let d = h.start();
    assert_eq!(
        d.commands,
        vec![Command::ScheduleTimer {
            timer_id: "run-1.0".into(),
            due_at: ts("2026-03-05T09:00:00Z")
        }],
        "required goal: timeout timer"
    );
    assert_eq!(h.waiting_for(), Some(WaitingFor::Goal), "required goal: waits");
    assert_eq!(d.run.status, RunStatus::Waiting);
    assert_eq!(d.records[0].detail, "waiting for the goal until 2026-03-05T09:00:00Z");

    // Another event does nothing.
    let d = h.event(event("evt-2", "deal.lost", "2026-03-03T09:00:00Z", json!({})));
    assert!(d.records.is_empty() && d.commands.is_empty(), "other event: nothing");

    let d = h.event(event("evt-3", "deal.won", "2026-03-03T10:00:00Z", json!({})));
    assert_eq!(
        records_of(&d),
        vec![
            ("g".into(), "goal".into(), StepStatus::Completed),
            ("after".into(), "action:add_tag".into(), StepStatus::Running)
        ],
        "goal reached: records"
    );
    assert_eq!(
        d.commands[0],
        Command::CancelTimer {
            timer_id: "run-1.0".into(),
            due_at: ts("2026-03-05T09:00:00Z")
        },
        "goal reached: its timeout is cancelled"
    );
    assert_eq!(tag_of(&d), "won");
    assert_eq!(
        h.record("g").detail,
        "waiting for the goal until 2026-03-05T09:00:00Z; goal reached: event deal.won (evt-3)"
    );
}

#[test]
fn required_goal_timeout_ends_the_run() {
    let mut h = Harness::new(&def(REQUIRED_GOAL), &trigger(json!({})), json!({}));
    h.start();
    let d = h.fire();
    assert_eq!(
        records_of(&d),
        vec![("g".into(), "goal".into(), StepStatus::TimedOut)],
        "goal timeout: record"
    );
    assert_eq!(
        d.commands,
        vec![Command::Complete {
            reason: "goal \"g\" not reached before its timeout".into()
        }],
        "goal timeout: commands"
    );
    assert_eq!(
        d.run.status,
        RunStatus::Completed,
        "goal timeout: the run ends (completed)"
    );
    assert_eq!(d.run.finished_at, Some(ts("2026-03-05T09:00:00Z")));
}

const GOAL_AHEAD: &str = r#"
- id: first-wait
  wait: {duration: 3d}
- id: reminder
  action: {type: add_tag, params: {tag: reminded}}
- id: clicked
  goal:
    event: email.clicked
    condition: {field: event.data.link, op: contains, value: offer}
- id: thanks
  action: {type: add_tag, params: {tag: clicked}}
"#;

#[test]
fn event_reaching_a_goal_ahead_jumps_and_cancels_the_wait_timer() {
    let mut h = Harness::new(&def(GOAL_AHEAD), &trigger(json!({})), json!({}));
    h.start();
    assert_eq!(h.timer(), ("run-1.0".into(), ts("2026-03-05T09:00:00Z")));

    // A click on another link does not meet the goal.
    let d = h.event(event(
        "evt-2",
        "email.clicked",
        "2026-03-03T08:00:00Z",
        json!({"link": "https://example.com/unsubscribe"}),
    ));
    assert!(
        d.records.is_empty() && d.commands.is_empty(),
        "goal condition false: nothing"
    );
    assert_eq!(h.cursor_step(), Some("first-wait"));

    let d = h.event(event(
        "evt-3",
        "email.clicked",
        "2026-03-03T12:00:00Z",
        json!({"link": "https://example.com/offer"}),
    ));
    assert_eq!(
        records_of(&d),
        vec![
            ("first-wait".into(), "wait".into(), StepStatus::Cancelled),
            ("clicked".into(), "goal".into(), StepStatus::Completed),
            ("thanks".into(), "action:add_tag".into(), StepStatus::Running)
        ],
        "jump: records"
    );
    assert_eq!(
        d.commands[0],
        Command::CancelTimer {
            timer_id: "run-1.0".into(),
            due_at: ts("2026-03-05T09:00:00Z")
        },
        "jump: the wait's timer is cancelled"
    );
    assert_eq!(tag_of(&d), "clicked", "jump: continues after the goal");
    assert!(
        h.record("first-wait")
            .detail
            .ends_with("left: goal \"clicked\" reached"),
        "{}",
        h.record("first-wait").detail
    );
    assert!(h.record("clicked").detail.starts_with("goal reached early: "));

    // The wait's timer fires late: stale.
    assert!(
        h.peek(&Input::TimerFired {
            timer_id: "run-1.0".into()
        })
        .is_noop(&h.run),
        "the cancelled wait's timer is stale"
    );
    h.succeed();
    assert_eq!(h.run.status, RunStatus::Completed);
    assert!(
        !h.path().iter().any(|(s, _)| s == "reminder"),
        "the reminder is skipped: {:?}",
        h.path()
    );
}

#[test]
fn goal_on_reached_end_completes_the_run() {
    let mut h = Harness::new(
        &def(r#"
- id: w
  wait: {duration: 3d}
- id: g
  goal: {event: deal.won, on_reached: end}
- id: never
  action: {type: add_tag, params: {tag: never}}
"#),
        &trigger(json!({})),
        json!({}),
    );
    h.start();
    let d = h.event(event("evt-2", "deal.won", "2026-03-03T12:00:00Z", json!({})));
    assert_eq!(
        records_of(&d),
        vec![
            ("w".into(), "wait".into(), StepStatus::Cancelled),
            ("g".into(), "goal".into(), StepStatus::Completed)
        ],
        "on_reached end: records"
    );
    assert_eq!(
        d.commands,
        vec![
            Command::CancelTimer {
                timer_id: "run-1.0".into(),
                due_at: ts("2026-03-05T09:00:00Z")
            },
            Command::Complete {
                reason: "goal \"g\" reached; run ends".into()
            }
        ],
        "on_reached end: commands"
    );
    assert_eq!(d.run.status, RunStatus::Completed);
}

#[test]
fn goal_behind_the_run_is_not_reached_again() {
    // The goal is before the wait: an event for it while waiting later must not jump back.
    let mut h = Harness::new(
        &def(r#"
- id: g
  goal: {event: deal.won}
- id: w
  wait: {duration: 3d}
- id: after
  end: {}
"#),
        &trigger(json!({})),
        json!({}),
    );
    h.start();
    assert_eq!(h.cursor_step(), Some("w"));
    let d = h.event(event("evt-2", "deal.won", "2026-03-03T12:00:00Z", json!({})));
    assert!(
        d.records.is_empty() && d.commands.is_empty(),
        "goal behind: nothing: {d:?}"
    );
    assert_eq!(h.cursor_step(), Some("w"));
}

// ---------------------------------------------------------------------------
// human_task
// ---------------------------------------------------------------------------

const APPROVAL: &str = r#"
- id: approval
  human_task:
    title: "Approve {{ record.discount }}% for {{ record.account }}"
    description: "Requested by {{ contact.first_name }}"
    assignee: managers
    timeout: 2d
    on_timeout:
    - id: escalate
      action: {type: notify, params: {channel: leadership, message: "Approval for {{ record.account }} timed out"}}
    - id: stop
      end: {reason: approval timed out}
- id: approved?
  branch:
    if: {field: steps.approval.output.approved, op: equals, value: true}
    then:
    - id: send-quote
      action: {type: add_tag, params: {tag: quote}}
    else:
    - id: rework
      action: {type: add_tag, params: {tag: rework}}
"#;

fn start_approval() -> Harness {
    let mut h = Harness::new(
        &def(APPROVAL),
        &trigger(json!({"discount": 30, "account": "Globex"})),
        ada(),
    );
    let d = h.start();
    assert_eq!(
        d.commands,
        vec![
            Command::OpenTask {
                step_id: "approval".into(),
                task_id: "run-1.0".into(),
                title: "Approve 30% for Globex".into(),
                description: Some("Requested by Ada".into()),
                assignee: Some("managers".into())
            },
            Command::ScheduleTimer {
                timer_id: "run-1.0".into(),
                due_at: ts("2026-03-04T09:00:00Z")
            }
        ],
        "human_task: OpenTask and its timeout"
    );
    assert_eq!(
        records_of(&d),
        vec![("approval".into(), "human_task".into(), StepStatus::Waiting)]
    );
    assert_eq!(d.records[0].detail, "task \"Approve 30% for Globex\" opened");
    assert_eq!(h.waiting_for(), Some(WaitingFor::Task));
    assert_eq!(d.run.status, RunStatus::Waiting);
    h
}

#[test]
fn human_task_completion_output_drives_a_later_branch() {
    for (case, approved, label, next, tag) in [
        ("approved", true, "took then", "send-quote", "quote"),
        ("rejected", false, "took else", "rework", "rework"),
    ] {
        let mut h = start_approval();
        // A completion for another step does nothing.
        let other = h.peek(&Input::TaskCompleted {
            step_id: "other".into(),
            output: json!({"approved": true}),
        });
        assert!(other.is_noop(&h.run), "{case}: completion of another step is a no-op");

        let output = json!({"approved": approved, "notes": "ok"});
        h.clock.set(ts("2026-03-02T15:00:00Z"));
        let d = h.feed(Input::TaskCompleted {
            step_id: "approval".into(),
            output: output.clone(),
        });
        assert_eq!(
            records_of(&d),
            vec![
                ("approval".into(), "human_task".into(), StepStatus::Completed),
                ("approved?".into(), "branch".into(), StepStatus::Completed),
                (next.into(), "action:add_tag".into(), StepStatus::Running)
            ],
            "{case}: records"
        );
        assert_eq!(
            d.commands[0],
            Command::CancelTimer {
                timer_id: "run-1.0".into(),
                due_at: ts("2026-03-04T09:00:00Z")
            },
            "{case}: the task's timeout is cancelled"
        );
        assert!(
            !d.commands.iter().any(|c| matches!(c, Command::CloseTask { .. })),
            "{case}: a completed task is closed by the CRM itself, not withdrawn"
        );
        assert_eq!(tag_of(&d), tag, "{case}: branch path");
        assert_eq!(
            h.record("approval").output,
            Some(output.clone()),
            "{case}: record output"
        );
        assert_eq!(
            h.run.data.steps["approval"]["output"], output,
            "{case}: steps.approval.output"
        );
        assert!(
            h.record("approved?").detail.starts_with(label),
            "{case}: {}",
            h.record("approved?").detail
        );
    }
}

#[test]
fn human_task_timeout_takes_on_timeout() {
    let mut h = start_approval();
    let d = h.fire();
    assert_eq!(
        records_of(&d),
        vec![
            ("approval".into(), "human_task".into(), StepStatus::TimedOut),
            ("escalate".into(), "action:notify".into(), StepStatus::Running)
        ],
        "task timeout: records"
    );
    assert_eq!(
        d.commands[0],
        Command::CloseTask {
            step_id: "approval".into(),
            task_id: "run-1.0".into(),
            reason: "task not completed in time".into()
        },
        "task timeout: the open task is withdrawn from the CRM"
    );
    assert_eq!(
        effect(&d),
        &Effect::Notify {
            channel: "leadership".into(),
            message: "Approval for Globex timed out".into(),
            url: None
        },
        "task timeout: escalation"
    );
    let d = h.succeed();
    assert_eq!(
        d.commands,
        vec![Command::Complete {
            reason: "ended at step \"stop\": approval timed out".into()
        }]
    );
    assert!(
        !h.path().iter().any(|(s, _)| s == "approved?"),
        "the branch after the task is not reached: {:?}",
        h.path()
    );
    // A late completion is stale.
    assert!(
        h.peek(&Input::TaskCompleted {
            step_id: "approval".into(),
            output: json!({"approved": true})
        })
        .is_noop(&h.run),
        "late completion is a no-op"
    );
}

#[test]
fn leaving_an_open_task_early_withdraws_it() {
    let extra = r#"
exit:
  events: [lead.disqualified]
"#;
    let steps = r#"
- id: approval
  human_task: {title: "Approve {{ record.account }}", timeout: 2d}
- id: signed
  goal: {event: contract.signed}
- id: thanks
  action: {type: add_tag, params: {tag: customer}}
"#;
    for (case, input, reason, run_status) in [
        (
            "goal ahead reached",
            Input::Event {
                event: event("evt-2", "contract.signed", "2026-03-03T09:00:00Z", json!({})),
            },
            "task \"Approve Globex\" opened; left: goal \"signed\" reached",
            RunStatus::Running,
        ),
        (
            "exit event",
            Input::Event {
                event: event("evt-2", "lead.disqualified", "2026-03-03T09:00:00Z", json!({})),
            },
            "task \"Approve Globex\" opened; cancelled: exit: event lead.disqualified (evt-2) matched lead.disqualified",
            RunStatus::Cancelled,
        ),
        (
            "cancel",
            Input::Cancel {
                reason: "by hand".into(),
            },
            "task \"Approve Globex\" opened; cancelled: by hand",
            RunStatus::Cancelled,
        ),
    ] {
        let mut h = Harness::new(&def_with(extra, steps), &trigger(json!({"account": "Globex"})), ada());
        h.start();
        assert_eq!(h.waiting_for(), Some(WaitingFor::Task), "{case}");
        let d = h.feed(input);
        let withdrawn: Vec<&Command> = d
            .commands
            .iter()
            .filter(|c| matches!(c, Command::CloseTask { .. }))
            .collect();
        assert_eq!(
            withdrawn,
            vec![&Command::CloseTask {
                step_id: "approval".into(),
                task_id: "run-1.0".into(),
                reason: h
                    .record("approval")
                    .detail
                    .trim_start_matches("task \"Approve Globex\" opened; ")
                    .into(),
            }],
            "{case}: one close_human_task for the task opened as run-1.0"
        );
        assert_eq!(h.record("approval").detail, reason, "{case}: history");
        assert_eq!(h.record("approval").status, StepStatus::Cancelled, "{case}");
        assert_eq!(d.run.status, run_status, "{case}: run status");
        assert!(
            d.commands.contains(&Command::CancelTimer {
                timer_id: "run-1.0".into(),
                due_at: ts("2026-03-04T09:00:00Z")
            }),
            "{case}: the task's timeout is cancelled"
        );
        // A completion arriving afterwards is stale and withdraws nothing again.
        let late = h.peek(&Input::TaskCompleted {
            step_id: "approval".into(),
            output: json!({}),
        });
        assert!(late.is_noop(&h.run), "{case}: late completion is a no-op");
    }
}

// ---------------------------------------------------------------------------
// end, goto
// ---------------------------------------------------------------------------

#[test]
fn end_step_completes_and_skips_the_rest() {
    let mut h = Harness::new(
        &def(r#"
- id: stop
  end: {reason: nothing more to do}
- id: never
  action: {type: add_tag, params: {tag: never}}
"#),
        &trigger(json!({})),
        json!({}),
    );
    let d = h.start();
    assert_eq!(
        records_of(&d),
        vec![("stop".into(), "end".into(), StepStatus::Completed)]
    );
    assert_eq!(d.records[0].detail, "nothing more to do");
    assert_eq!(
        d.commands,
        vec![Command::Complete {
            reason: "ended at step \"stop\": nothing more to do".into()
        }]
    );
    assert_eq!(d.run.status, RunStatus::Completed);
    assert_eq!(
        d.run.outcome.as_deref(),
        Some("ended at step \"stop\": nothing more to do")
    );
    assert_eq!(d.run.finished_at, Some(ts("2026-03-02T09:00:00Z")));
}

#[test]
fn running_off_the_last_step_completes() {
    let mut h = Harness::new(
        &def(r#"
- id: only
  action: {type: add_tag, params: {tag: x}}
"#),
        &trigger(json!({})),
        json!({}),
    );
    h.start();
    let d = h.succeed();
    assert_eq!(
        d.commands,
        vec![Command::Complete {
            reason: "reached the end of the automation".into()
        }]
    );
}

#[test]
fn goto_jumps_forward_and_back() {
    let mut h = Harness::new(
        &def(r#"
- id: first
  goto: third
- id: second
  action: {type: add_tag, params: {tag: skipped}}
- id: third
  action: {type: add_tag, params: {tag: third}}
"#),
        &trigger(json!({})),
        json!({}),
    );
    let d = h.start();
    assert_eq!(
        records_of(&d),
        vec![
            ("first".into(), "goto".into(), StepStatus::Completed),
            ("third".into(), "action:add_tag".into(), StepStatus::Running)
        ]
    );
    assert_eq!(d.records[0].detail, "goto third");
    assert_eq!(tag_of(&d), "third");
}

#[test]
fn goto_loop_is_stopped_by_max_steps() {
    // Without waits: the guard trips inside one decision.
    let mut h = Harness::new(
        &def_with(
            "limits: {max_steps: 10}",
            r#"
- id: loop-a
  goto: loop-b
- id: loop-b
  goto: loop-a
"#,
        ),
        &trigger(json!({})),
        json!({}),
    );
    let d = h.start();
    assert_eq!(d.records.len(), 10, "10 steps entered before the guard");
    assert_eq!(d.run.status, RunStatus::Failed, "runaway loop fails the run");
    assert_eq!(d.run.steps_entered, 10);
    let reason = d.run.outcome.clone().unwrap_or_default();
    assert!(reason.starts_with("step limit exceeded"), "outcome: {reason}");
    assert_eq!(
        d.commands,
        vec![Command::Fail {
            reason:
                "step limit exceeded: the run entered 10 steps (limits.max_steps); stopped to prevent a runaway loop"
                    .into()
        }]
    );

    // With a wait in the loop: the guard trips on a later timer.
    let mut h = Harness::new(
        &def_with(
            "limits: {max_steps: 5}",
            r#"
- id: tick
  wait: {duration: 1h}
- id: again
  goto: tick
"#,
        ),
        &trigger(json!({})),
        json!({}),
    );
    h.start();
    let mut fired = 0;
    while !h.run.status.is_terminal() {
        h.fire();
        fired += 1;
        assert!(fired < 10, "the loop must be stopped");
    }
    assert_eq!(fired, 3, "tick, again+tick, again+tick, then the guard");
    assert_eq!(h.run.status, RunStatus::Failed);
    assert!(
        h.run
            .outcome
            .as_deref()
            .unwrap_or("")
            .starts_with("step limit exceeded"),
        "{:?}",
        h.run.outcome
    );
    assert!(h.run.cursor.is_none(), "no open step after the guard");
}

#[test]
fn goto_loop_without_waits_yields_with_continue() {
    let mut h = Harness::new(
        &def(r#"
- id: loop-a
  goto: loop-b
- id: loop-b
  goto: loop-a
"#),
        &trigger(json!({})),
        json!({}),
    );
    let d = h.start();
    assert_eq!(
        d.records.len(),
        MAX_STEPS_PER_DECISION as usize,
        "one decision enters at most 40 steps"
    );
    assert_eq!(d.commands, vec![Command::Continue], "yield: Continue");
    assert_eq!(d.run.status, RunStatus::Running, "yield: running");
    assert_eq!(
        h.waiting_for(),
        Some(WaitingFor::Continue),
        "yield: cursor waits for Continue"
    );
    assert_eq!(h.cursor_step(), Some("loop-a"), "yield: continues at the next step");
    assert_eq!(d.run.history_len, 40, "the yield marker takes no seq");

    // Continue re-enters; until the default max_steps (500) stops it.
    let mut decisions = 1;
    while !h.run.status.is_terminal() {
        let d = h.feed(Input::Continue);
        decisions += 1;
        if !d.run.status.is_terminal() {
            assert_eq!(d.commands, vec![Command::Continue], "decision {decisions}: Continue");
            assert_eq!(d.records.len(), 40, "decision {decisions}: 40 steps");
        }
        assert!(decisions < 20);
    }
    assert_eq!(decisions, 13, "500 steps: 12 full decisions and a last one of 20");
    assert_eq!(h.run.steps_entered, 500);
    assert_eq!(h.history.len(), 500, "history holds every step entered, seq 0..500");
    assert_eq!(h.run.status, RunStatus::Failed);

    // Continue when the run does not wait for it: no-op.
    let mut h = Harness::new(&def(REQUIRED_GOAL), &trigger(json!({})), json!({}));
    h.start();
    assert!(
        h.peek(&Input::Continue).is_noop(&h.run),
        "Continue while waiting on a goal"
    );
}

// ---------------------------------------------------------------------------
// enrollment and exit
// ---------------------------------------------------------------------------

fn policy(reenroll: Reenroll, after: Option<&str>, allow_concurrent: bool) -> EnrollmentPolicy {
    EnrollmentPolicy {
        reenroll,
        after: after.map(|a| DurationSpec::parse(a).unwrap()),
        allow_concurrent,
    }
}

#[test]
fn enrollment_policy_decisions() {
    let now = ts("2026-03-10T00:00:00Z");
    let fresh = EnrollmentState::default();
    let done_once = EnrollmentState {
        version: 2,
        active_runs: vec![],
        total_enrollments: 1,
        last_enrolled_at: Some(ts("2026-03-05T00:00:00Z")),
    };
    let active = EnrollmentState {
        version: 1,
        active_runs: vec!["r1".into()],
        total_enrollments: 1,
        last_enrolled_at: Some(ts("2026-03-09T00:00:00Z")),
    };
    let cases: Vec<(&str, EnrollmentPolicy, &EnrollmentState, bool)> = vec![
        (
            "once, never enrolled",
            policy(Reenroll::Once, None, false),
            &fresh,
            true,
        ),
        (
            "once, enrolled before",
            policy(Reenroll::Once, None, false),
            &done_once,
            false,
        ),
        (
            "always, enrolled before",
            policy(Reenroll::Always, None, false),
            &done_once,
            true,
        ),
        (
            "always, active run, no concurrency",
            policy(Reenroll::Always, None, false),
            &active,
            false,
        ),
        (
            "always, active run, concurrency",
            policy(Reenroll::Always, None, true),
            &active,
            true,
        ),
        (
            "after 7d, 5 days since",
            policy(Reenroll::After, Some("7d"), false),
            &done_once,
            false,
        ),
        (
            "after 3d, 5 days since",
            policy(Reenroll::After, Some("3d"), false),
            &done_once,
            true,
        ),
        (
            "after 5d, exactly 5 days since",
            policy(Reenroll::After, Some("5d"), false),
            &done_once,
            true,
        ),
    ];
    for (case, p, state, ok) in cases {
        let got = enrollment::check(&p, state, now);
        assert_eq!(got.is_ok(), ok, "{case}: {got:?}");
    }
    let next = enrollment::enrolled(&done_once, "r2", now);
    assert_eq!(next.version, 3, "enrolled: version bump");
    assert_eq!(next.active_runs, vec!["r2".to_string()]);
    assert_eq!(next.total_enrollments, 2);
    assert_eq!(next.last_enrolled_at, Some(now));
}

#[test]
fn draft_and_paused_automations_are_not_active() {
    for (status, active) in [
        ("draft", false),
        ("paused", false),
        ("archived", false),
        ("active", true),
    ] {
        let p = program(&format!(
            "id: s\nname: S\nstatus: {status}\ntrigger: {{event: lead.created}}\nsteps:\n- id: e\n  end: {{}}\n"
        ));
        assert_eq!(p.automation.is_active(), active, "status {status}");
    }
    // No status at all: draft.
    let p = program("id: s\nname: S\ntrigger: {event: lead.created}\nsteps:\n- id: e\n  end: {}\n");
    assert!(!p.automation.is_active(), "the default status is draft");
}

const EXIT_DEF: &str = r#"
exit:
  events: [lead.disqualified]
  condition: {field: record.status, op: equals, value: lost}
"#;

#[test]
fn exit_event_cancels_a_waiting_run_and_its_timer() {
    let steps = "- id: w\n  wait: {duration: 2d}\n- id: after\n  end: {}\n";
    for (case, e, reason_start) in [
        (
            "exit event",
            event("evt-2", "lead.disqualified", "2026-03-03T09:00:00Z", json!({})),
            "exit: event lead.disqualified (evt-2) matched lead.disqualified",
        ),
        (
            "exit condition",
            event(
                "evt-2",
                "lead.updated",
                "2026-03-03T09:00:00Z",
                json!({"status": "lost"}),
            ),
            "exit condition met after event evt-2: ",
        ),
    ] {
        let mut h = Harness::new(
            &def_with(EXIT_DEF, steps),
            &trigger(json!({"status": "open"})),
            json!({}),
        );
        h.start();
        // An unrelated update does not exit.
        let d = h.event(event(
            "evt-0",
            "lead.updated",
            "2026-03-02T10:00:00Z",
            json!({"status": "open"}),
        ));
        assert!(d.commands.is_empty() && d.records.is_empty(), "{case}: unrelated event");

        let d = h.event(e);
        assert_eq!(
            records_of(&d),
            vec![("w".into(), "wait".into(), StepStatus::Cancelled)],
            "{case}: records"
        );
        assert_eq!(d.commands.len(), 2, "{case}: commands {:?}", d.commands);
        assert_eq!(
            d.commands[0],
            Command::CancelTimer {
                timer_id: "run-1.0".into(),
                due_at: ts("2026-03-04T09:00:00Z")
            },
            "{case}: the wait's timer is cancelled"
        );
        match &d.commands[1] {
            Command::Cancelled { reason } => {
                assert!(reason.starts_with(reason_start), "{case}: reason {reason}")
            }
            other => panic!("{case}: expected Cancelled, got {other:?}"),
        }
        assert_eq!(d.run.status, RunStatus::Cancelled, "{case}: run cancelled");
        assert!(d.run.cursor.is_none(), "{case}: no cursor");
        // Anything after that is a no-op.
        assert!(
            h.peek(&Input::TimerFired {
                timer_id: "run-1.0".into()
            })
            .is_noop(&h.run),
            "{case}: timer after exit"
        );
    }
}

/// The exit rule applies to events "for its record" (ExitRule docs). The engine routes events
/// by contact too, so a run of lead L1 receives `lead.disqualified` of lead L2 of the same
/// contact; that must not unenroll L1. (Fails today: see the report.)
#[test]
fn exit_event_about_another_lead_of_the_contact_does_not_cancel() {
    let steps = "- id: w\n  wait: {duration: 2d}\n- id: after\n  end: {}\n";
    let mut h = Harness::new(
        &def_with("exit: {events: [lead.disqualified]}", steps),
        &trigger(json!({})),
        json!({}),
    );
    h.start();
    let other_lead = event_on(
        "evt-2",
        "lead.disqualified",
        "2026-03-03T09:00:00Z",
        "lead",
        "L2",
        Some("C1"),
        json!({}),
    );
    let d = h.event(other_lead);
    assert!(
        d.commands.is_empty(),
        "an exit event about lead L2 must not cancel the run of lead L1: {:?}",
        d.commands
    );
    assert_eq!(d.run.status, RunStatus::Waiting, "still waiting");
}

/// An exit event about the run's contact itself (the contact record) still unenrolls.
#[test]
fn exit_event_about_the_runs_contact_record_cancels() {
    let steps = "- id: w\n  wait: {duration: 2d}\n- id: after\n  end: {}\n";
    let mut h = Harness::new(
        &def_with("exit: {events: [contact.unsubscribed]}", steps),
        &trigger(json!({})),
        json!({}),
    );
    h.start();
    let other_contact = event_on(
        "evt-2",
        "contact.unsubscribed",
        "2026-03-03T08:00:00Z",
        "contact",
        "C9",
        None,
        json!({}),
    );
    let d = h.event(other_contact);
    assert!(d.commands.is_empty(), "another contact: nothing: {:?}", d.commands);
    let own_contact = event_on(
        "evt-3",
        "contact.unsubscribed",
        "2026-03-03T09:00:00Z",
        "contact",
        "C1",
        None,
        json!({}),
    );
    let d = h.event(own_contact);
    assert_eq!(
        d.run.status,
        RunStatus::Cancelled,
        "the run's contact unsubscribed: {:?}",
        d.commands
    );
}

#[test]
fn exit_event_during_an_action_is_applied_after_its_result() {
    let mut h = Harness::new(
        &def_with(
            EXIT_DEF,
            "- id: a\n  action: {type: add_tag, params: {tag: x}}\n- id: w\n  wait: {duration: 2d}\n",
        ),
        &trigger(json!({})),
        json!({}),
    );
    h.start();
    let d = h.event(event("evt-2", "lead.disqualified", "2026-03-02T09:00:01Z", json!({})));
    assert!(
        d.commands.is_empty() && d.records.is_empty(),
        "deferred while the action is out"
    );
    assert_eq!(d.run.deferred_events.len(), 1, "the event is kept");
    let d = h.succeed();
    assert_eq!(d.run.status, RunStatus::Cancelled, "applied after the result");
    assert_eq!(h.record("a").status, StepStatus::Completed);
    assert_eq!(
        h.record("w").status,
        StepStatus::Cancelled,
        "the wait entered is cancelled"
    );
    assert!(d.run.deferred_events.is_empty());
}

#[test]
fn cancel_input_cancels() {
    let mut h = Harness::new(&def(REQUIRED_GOAL), &trigger(json!({})), json!({}));
    h.start();
    let d = h.feed(Input::Cancel {
        reason: "by hand".into(),
    });
    assert_eq!(
        d.commands,
        vec![
            Command::CancelTimer {
                timer_id: "run-1.0".into(),
                due_at: ts("2026-03-05T09:00:00Z")
            },
            Command::Cancelled {
                reason: "by hand".into()
            }
        ]
    );
    assert_eq!(d.run.status, RunStatus::Cancelled);
    assert_eq!(h.record("g").status, StepStatus::Cancelled);
}

// ---------------------------------------------------------------------------
// redelivery
// ---------------------------------------------------------------------------

fn check_twice(h: &mut Harness, case: &str, input: Input) {
    let first = h.feed(input.clone());
    assert!(
        !(first.records.is_empty() && first.commands.is_empty()),
        "{case}: the first delivery does something"
    );
    let second = h.peek(&input);
    assert!(second.is_noop(&h.run), "{case}: redelivery is a no-op: {second:?}");
    let adopted = h.feed(input);
    assert!(adopted.records.is_empty() && adopted.commands.is_empty(), "{case}");
}

#[test]
fn the_same_input_twice_is_a_noop_the_second_time() {
    let definition = def(r#"
- id: a
  action: {type: add_tag, params: {tag: x}}
- id: w
  wait: {duration: 1h}
- id: approval
  human_task: {title: Approve}
- id: await
  wait_for_event: {event: message.received}
- id: b
  action: {type: add_tag, params: {tag: y}}
"#);
    let mut h = Harness::new(&definition, &trigger(json!({})), json!({}));

    check_twice(&mut h, "Start", Input::Start);
    let result = h.result_input(ActionOutcome::Succeeded { output: json!({}) });
    check_twice(&mut h, "ActionResult", result);
    let (timer_id, due) = h.timer();
    h.clock.set(due);
    check_twice(&mut h, "TimerFired", Input::TimerFired { timer_id });
    check_twice(
        &mut h,
        "TaskCompleted",
        Input::TaskCompleted {
            step_id: "approval".into(),
            output: json!({"ok": true}),
        },
    );
    let e = event("evt-9", "message.received", "2026-03-02T11:00:00Z", json!({}));
    h.clock.set(e.time);
    check_twice(&mut h, "Event", Input::Event { event: e });
    let result = h.result_input(ActionOutcome::Succeeded { output: json!({}) });
    check_twice(&mut h, "last ActionResult", result);
    assert_eq!(h.run.status, RunStatus::Completed);
    h.assert_path(
        "redelivery path",
        &[
            ("a", StepStatus::Completed),
            ("w", StepStatus::Completed),
            ("approval", StepStatus::Completed),
            ("await", StepStatus::Completed),
            ("b", StepStatus::Completed),
        ],
    );
}

#[test]
fn an_old_timer_id_is_a_noop() {
    let mut h = Harness::new(
        &def(r#"
- id: w1
  wait: {duration: 1h}
- id: w2
  wait: {duration: 1h}
"#),
        &trigger(json!({})),
        json!({}),
    );
    h.start();
    assert_eq!(h.timer().0, "run-1.0");
    h.fire();
    assert_eq!(h.timer().0, "run-1.1", "the second wait has its own timer id");
    for id in ["run-1.0", "run-1.7", "other-run.1"] {
        let d = h.peek(&Input::TimerFired { timer_id: id.into() });
        assert!(d.is_noop(&h.run), "timer {id}: no-op: {d:?}");
    }
}

#[test]
fn an_event_already_applied_is_a_noop() {
    let mut h = start_wait_for_reply();
    // The trigger's own id counts as applied.
    let d = h.peek(&Input::Event {
        event: event(
            "evt-1",
            "message.received",
            "2026-03-02T10:00:00Z",
            json!({"channel": "email"}),
        ),
    });
    assert!(d.is_noop(&h.run), "the trigger event id: no-op");

    let e = event(
        "evt-2",
        "message.received",
        "2026-03-02T10:00:00Z",
        json!({"channel": "sms"}),
    );
    let first = h.event(e.clone());
    assert!(first.commands.is_empty(), "condition false: waits");
    assert!(
        h.run.recent_event_ids.contains(&"evt-2".to_string()),
        "the id is remembered"
    );
    // The same id again, even with different content, is ignored.
    let mut again = e.clone();
    again.data = serde_json::from_value(json!({"channel": "email"})).unwrap();
    let d = h.peek(&Input::Event { event: again });
    assert!(d.is_noop(&h.run), "an event id already applied: no-op: {d:?}");
}

#[test]
fn a_duplicate_action_result_is_a_noop() {
    let mut h = Harness::new(
        &def(r#"
- id: a
  action: {type: add_tag, params: {tag: x}}
- id: b
  action: {type: add_tag, params: {tag: y}}
"#),
        &trigger(json!({})),
        json!({}),
    );
    h.start();
    let first = h.result_input(ActionOutcome::Succeeded { output: json!({}) });
    h.feed(first.clone());
    assert_eq!(h.cursor_step(), Some("b"));
    for (case, input) in [
        ("same result again", first.clone()),
        (
            "a failure for the old step",
            Input::ActionResult {
                step_id: "a".into(),
                seq: 0,
                attempt: 2,
                outcome: ActionOutcome::Failed {
                    error: "late".into(),
                    uncertain: false,
                },
            },
        ),
        (
            "right step, wrong seq",
            Input::ActionResult {
                step_id: "b".into(),
                seq: 0,
                attempt: 1,
                outcome: ActionOutcome::Succeeded { output: json!({}) },
            },
        ),
    ] {
        assert!(h.peek(&input).is_noop(&h.run), "{case}: no-op");
    }
}

#[test]
fn a_terminal_run_ignores_every_input() {
    let mut h = Harness::new(&def("- id: e\n  end: {}\n"), &trigger(json!({})), json!({}));
    h.start();
    assert_eq!(h.run.status, RunStatus::Completed);
    for input in [
        Input::Start,
        Input::Continue,
        Input::Cancel { reason: "x".into() },
        Input::TimerFired {
            timer_id: "run-1.0".into(),
        },
        Input::Event {
            event: event("evt-5", "lead.updated", "2026-03-03T00:00:00Z", json!({})),
        },
    ] {
        assert!(h.peek(&input).is_noop(&h.run), "{} on a completed run", input.kind());
    }
}

/// "Stop the sequence when they reply": an exit event about another kind of record of the run's
/// contact (a message) unenrolls the lead's run, while a sibling lead's event does not.
#[test]
fn exit_event_about_a_message_of_the_runs_contact_cancels() {
    let steps = "- id: w\n  wait: {duration: 2d}\n- id: after\n  end: {}\n";
    let mut h = Harness::new(
        &def_with("exit: {events: [message.received]}", steps),
        &trigger(json!({})),
        json!({}),
    );
    h.start();
    let reply = event_on(
        "evt-2",
        "message.received",
        "2026-03-03T09:00:00Z",
        "message",
        "M1",
        Some("C1"),
        json!({}),
    );
    let d = h.event(reply);
    assert_eq!(d.run.status, RunStatus::Cancelled, "a reply from the contact unenrolls");
    assert!(
        d.commands
            .iter()
            .any(|c| matches!(c, crmflow_core::command::Command::CancelTimer { .. })),
        "the wait's timer is cancelled: {:?}",
        d.commands
    );
}
