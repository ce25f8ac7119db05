//! The behaviour matrix through the embedded engine (`Simulator`): events in, run reports and
//! recorded effects (email, CRM commands, HTTP requests) out. The same behaviours are tested
//! through the pure decider in `decider_*.rs`.

use crmflow_core::command::{ActionOutcome, Effect, HttpRequest, Input, PerformAction};
use crmflow_core::decider::split_draw;
use crmflow_core::ids::run_id_for;
use crmflow_core::messages::{ActionMessage, StepMessage};
use crmflow_core::run::RunStatus;
use crmflow_core::simulate::RunReport;
use crmflow_tests::given::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

fn people() -> Value {
    json!([
        {"id": "C1", "first_name": "Ada", "email": "ada@example.com", "phone": "+15550001", "tags": ["lead"]},
        {"id": "C2", "first_name": "Grace", "email": "grace@example.com", "timezone": "America/New_York"},
        {"id": "C3", "first_name": "Linus", "email": "linus@example.com", "timezone": "Europe/Berlin"},
        {"id": "C4", "first_name": "Mars", "email": "mars@example.com", "timezone": "Mars/Olympus_Mons"}
    ])
}

/// `lead.created` for lead `id` of contact `contact`.
fn lead(event_id: &str, time: &str, id: &str, contact: &str, data: Value) -> crmflow_core::event::Event {
    event_on(event_id, "lead.created", time, "lead", id, Some(contact), data)
}

fn report_for<'a>(case: &str, reports: &'a [RunReport], automation_id: &str, record_id: &str) -> &'a RunReport {
    let found: Vec<&RunReport> = reports
        .iter()
        .filter(|r| r.automation_id == automation_id && r.subject.id == record_id)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{case}: expected one run of {automation_id} for {record_id}, got {:?}",
        reports
            .iter()
            .map(|r| (&r.automation_id, &r.subject.id, r.status))
            .collect::<Vec<_>>()
    );
    found[0]
}

fn crm_commands(sim: &crmflow_core::simulate::Simulator) -> Vec<crmflow_core::ports::OutboundCrmCommand> {
    sim.crm.sent.lock().unwrap().clone()
}

fn http_requests(sim: &crmflow_core::simulate::Simulator) -> Vec<(String, HttpRequest)> {
    sim.http.sent.lock().unwrap().clone()
}

fn emails(sim: &crmflow_core::simulate::Simulator) -> Vec<(String, crmflow_core::command::EmailMessage)> {
    sim.email.sent.lock().unwrap().clone()
}

fn assert_no_pending_timers(case: &str, sim: &crmflow_core::simulate::Simulator) {
    assert!(
        sim.timers.pending().is_empty(),
        "{case}: timers left behind: {:?}",
        sim.timers.pending()
    );
}

// ---------------------------------------------------------------------------
// 1. step kinds
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sim_action_step() {
    let d = definition(
        "tagger",
        "lead.created",
        "",
        "- id: a\n  action: {type: add_tag, params: {tag: VIP}}\n- id: b\n  end: {reason: tagged}\n",
    );
    let (sim, reports) = simulate(
        &[&d],
        people(),
        vec![lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({}))],
    )
    .await;
    let r = only_report("action", &reports, "tagger");
    assert_report(
        "action",
        r,
        RunStatus::Completed,
        &[("a", "completed"), ("b", "completed")],
    );
    assert_eq!(r.outcome.as_deref(), Some("ended at step \"b\": tagged"));
    let sent = crm_commands(&sim);
    assert_eq!(sent.len(), 1, "one CRM command");
    assert_eq!(sent[0].command.command, "add_tag");
    assert_eq!(sent[0].command.params, json!({"tag": "VIP"}));
    assert_eq!(sent[0].idempotency_key, format!("{}.0", r.run_id));
}

#[tokio::test]
async fn sim_wait_kinds_fire_at_the_due_time() {
    let after = "- id: next\n  action: {type: add_tag, params: {tag: after-wait}}\n";
    let cases: Vec<(&str, &str, &str, &str, Value, &str)> = vec![
        (
            "duration 2h",
            "{duration: 2h}",
            "",
            "C1",
            json!({}),
            "2026-03-04T14:00:00Z",
        ),
        (
            "until",
            "{until: \"2026-03-05T10:30:00Z\"}",
            "",
            "C1",
            json!({}),
            "2026-03-05T10:30:00Z",
        ),
        (
            "until civil in the automation zone",
            "{until: \"2026-03-05T09:00\"}",
            "timezone: Europe/Berlin",
            "C1",
            json!({}),
            "2026-03-05T08:00:00Z",
        ),
        (
            "until_field offset at, contact zone",
            "{until_field: {field: renewal_date, offset: \"-3d\", at: \"09:00\"}}",
            "",
            "C2",
            json!({"renewal_date": "2026-04-10"}),
            "2026-04-07T13:00:00Z",
        ),
        (
            "until_weekday",
            "{until_weekday: {days: [monday], at: \"09:00\"}}",
            "",
            "C1",
            json!({}),
            "2026-03-09T09:00:00Z",
        ),
        (
            "business_hours",
            "{until: \"2026-03-07T12:00:00Z\", business_hours: {start: \"09:00\", end: \"17:00\"}}",
            "",
            "C2",
            json!({}),
            "2026-03-09T13:00:00Z",
        ),
    ];
    for (case, wait, extra, contact, data, want) in cases {
        let d = definition(
            "waiter",
            "lead.created",
            extra,
            &format!("- id: w\n  wait: {wait}\n{after}"),
        );
        let (sim, reports) = simulate(
            &[&d],
            people(),
            vec![lead("e1", "2026-03-04T12:00:00Z", "L1", contact, data)],
        )
        .await;
        let r = only_report(case, &reports, "waiter");
        assert_report(
            case,
            r,
            RunStatus::Completed,
            &[("w", "completed"), ("next", "completed")],
        );
        assert_eq!(
            step(r, "w").finished_at,
            Some(ts(want)),
            "{case}: the wait ends at the due time"
        );
        assert_eq!(
            step(r, "next").started_at,
            ts(want),
            "{case}: the next step starts then"
        );
        assert_eq!(
            crm_commands(&sim).len(),
            1,
            "{case}: the action after the wait ran once"
        );
        assert_no_pending_timers(case, &sim);
    }
}

#[tokio::test]
async fn sim_branch_if_else_and_cases() {
    let if_else = definition(
        "ifelse",
        "lead.created",
        "",
        r#"
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
  end: {}
"#,
    );
    let cases = definition(
        "cases",
        "lead.created",
        "",
        r#"
- id: tier
  branch:
    cases:
    - name: gold
      when: {tier: gold}
      steps:
      - id: g
        end: {reason: gold}
    - when: {tier: silver}
      steps:
      - id: s
        end: {reason: silver}
    else:
    - id: o
      end: {reason: other}
"#,
    );
    let (sim, reports) = simulate(
        &[&if_else, &cases],
        people(),
        vec![
            lead(
                "e1",
                "2026-03-02T09:00:00Z",
                "L1",
                "C1",
                json!({"amount": 150, "tier": "gold"}),
            ),
            lead(
                "e2",
                "2026-03-02T09:01:00Z",
                "L2",
                "C1",
                json!({"amount": 50, "tier": "silver"}),
            ),
            lead(
                "e3",
                "2026-03-02T09:02:00Z",
                "L3",
                "C1",
                json!({"amount": 100, "tier": "bronze"}),
            ),
        ],
    )
    .await;
    for (record, path, label) in [
        ("L1", "big", "took then"),
        ("L2", "small", "took else"),
        ("L3", "small", "took else"),
    ] {
        let case = format!("if/else {record}");
        let r = report_for(&case, &reports, "ifelse", record);
        assert_report(
            &case,
            r,
            RunStatus::Completed,
            &[("check", "completed"), (path, "completed"), ("after", "completed")],
        );
        assert!(
            step(r, "check").detail.starts_with(label),
            "{case}: {}",
            step(r, "check").detail
        );
    }
    for (record, path, label) in [
        ("L1", "g", "took gold"),
        ("L2", "s", "took case 2"),
        ("L3", "o", "took else"),
    ] {
        let case = format!("cases {record}");
        let r = report_for(&case, &reports, "cases", record);
        assert_report(
            &case,
            r,
            RunStatus::Completed,
            &[("tier", "completed"), (path, "completed")],
        );
        assert!(
            step(r, "tier").detail.starts_with(label),
            "{case}: {}",
            step(r, "tier").detail
        );
    }
    let tags: Vec<Value> = crm_commands(&sim)
        .iter()
        .map(|c| c.command.params["tag"].clone())
        .collect();
    assert_eq!(
        tags,
        vec![json!("big"), json!("small"), json!("small")],
        "branch actions"
    );
}

#[tokio::test]
async fn sim_split_paths_follow_split_draw() {
    let d = definition(
        "ab",
        "lead.created",
        "enrollment: {reenroll: always, allow_concurrent: true}",
        r#"
- id: ab
  split:
    paths:
    - name: a
      percent: 30
      steps:
      - id: path-a
        action: {type: add_tag, params: {tag: a}}
    - name: b
      percent: 70
      steps:
      - id: path-b
        action: {type: add_tag, params: {tag: b}}
"#,
    );
    let events: Vec<_> = (0..1000)
        .map(|i| {
            lead(
                &format!("e{i}"),
                "2026-03-02T09:00:00Z",
                &format!("L{i}"),
                &format!("C{i}"),
                json!({}),
            )
        })
        .collect();
    let (sim, reports) = simulate(&[&d], json!([]), events).await;
    assert_eq!(reports.len(), 1000, "one run per lead");
    let (mut a, mut b) = (0, 0);
    for r in &reports {
        let draw = split_draw(&r.run_id, "ab");
        let want = if draw < 30 { "path-a" } else { "path-b" };
        if draw < 30 {
            a += 1
        } else {
            b += 1
        }
        let case = format!("split run {} draw {draw}", r.run_id);
        assert_report(
            &case,
            r,
            RunStatus::Completed,
            &[("ab", "completed"), (want, "completed")],
        );
    }
    assert!(
        (240..=360).contains(&a),
        "30/70 split over 1000 runs: path a taken {a} times (b {b})"
    );
    let tags_a = crm_commands(&sim)
        .iter()
        .filter(|c| c.command.params["tag"] == "a")
        .count();
    assert_eq!(tags_a, a, "the CRM saw one tag per path-a run");
}

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

#[tokio::test]
async fn sim_wait_for_event_matrix() {
    let d = definition("reply", "lead.created", "", WAIT_FOR_REPLY);
    let msg = |id: &str, time: &str, lead_id: &str, channel: &str| {
        event_on(
            id,
            "message.received",
            time,
            "lead",
            lead_id,
            None,
            json!({"channel": channel}),
        )
    };
    let (sim, reports) = simulate(
        &[&d],
        people(),
        vec![
            lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({})),
            lead("e2", "2026-03-02T09:00:00Z", "L2", "C1", json!({})),
            lead("e3", "2026-03-02T09:00:00Z", "L3", "C1", json!({})),
            // L1 replies by email: on_event.
            msg("m1", "2026-03-02T12:00:00Z", "L1", "email"),
            // L2 replies by SMS: the condition is false, it keeps waiting and times out.
            msg("m2", "2026-03-02T12:00:00Z", "L2", "sms"),
        ],
    )
    .await;
    let r = report_for("event arrives", &reports, "reply", "L1");
    assert_report(
        "event arrives",
        r,
        RunStatus::Completed,
        &[("await", "completed"), ("replied", "completed"), ("done", "completed")],
    );
    assert_eq!(
        r.finished_at,
        Some(ts("2026-03-02T12:00:00Z")),
        "event arrives: done at the reply, the stale timeout changes nothing"
    );
    assert_eq!(
        step(r, "await").output.as_ref().unwrap()["id"],
        json!("m1"),
        "the event is the output"
    );

    for (case, record) in [("condition false then timeout", "L2"), ("no event: timeout", "L3")] {
        let r = report_for(case, &reports, "reply", record);
        assert_report(
            case,
            r,
            RunStatus::Completed,
            &[("await", "timed_out"), ("nudge", "completed"), ("done", "completed")],
        );
        assert_eq!(
            step(r, "await").finished_at,
            Some(ts("2026-03-04T09:00:00Z")),
            "{case}: timed out after 2d"
        );
    }
    let tags: Vec<String> = crm_commands(&sim)
        .iter()
        .map(|c| format!("{}:{}", c.command.subject.id, c.command.params["tag"].as_str().unwrap()))
        .collect();
    assert_eq!(tags, vec!["L1:replied", "L2:nudge", "L3:nudge"], "effects");
    assert_no_pending_timers("wait_for_event", &sim);
}

#[tokio::test]
async fn sim_goals() {
    let optional = definition(
        "optional",
        "lead.created",
        "",
        "- id: g\n  goal: {event: deal.won}\n- id: after\n  action: {type: add_tag, params: {tag: after}}\n",
    );
    let required = definition(
        "required",
        "lead.created",
        "",
        "- id: g\n  goal: {event: deal.won, required: true, timeout: 3d}\n- id: after\n  action: {type: add_tag, params: {tag: won}}\n",
    );
    let ahead = definition(
        "ahead",
        "lead.created",
        "",
        r#"
- id: first-wait
  wait: {duration: 3d}
- id: reminder
  action: {type: add_tag, params: {tag: reminded}}
- id: clicked
  goal: {event: email.clicked, condition: {field: event.data.link, op: contains, value: offer}}
- id: thanks
  action: {type: add_tag, params: {tag: clicked}}
"#,
    );
    let ending = definition(
        "ending",
        "lead.created",
        "",
        "- id: w\n  wait: {duration: 3d}\n- id: g\n  goal: {event: deal.won, on_reached: end}\n- id: never\n  action: {type: add_tag, params: {tag: never}}\n",
    );
    // Follow-up events name only their record (events naming the contact also reach the
    // contact's other runs: see the `contact_routing_*` tests).
    let on = |id: &str, ty: &str, time: &str, lead_id: &str, data: Value| {
        event_on(id, ty, time, "lead", lead_id, None, data)
    };
    let (sim, reports) = simulate(
        &[&optional, &required, &ahead, &ending],
        people(),
        vec![
            lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({})),
            lead("e2", "2026-03-02T09:00:00Z", "L2", "C1", json!({})),
            // L1: won after a day, reaching the required goal, the goal ahead and ending `ending`.
            on("w1", "deal.won", "2026-03-03T09:00:00Z", "L1", json!({})),
            on(
                "c1",
                "email.clicked",
                "2026-03-03T10:00:00Z",
                "L1",
                json!({"link": "https://x/offer"}),
            ),
            // L2: a click on another link only.
            on(
                "c2",
                "email.clicked",
                "2026-03-03T10:00:00Z",
                "L2",
                json!({"link": "https://x/unsubscribe"}),
            ),
        ],
    )
    .await;

    for record in ["L1", "L2"] {
        let case = format!("optional goal {record}");
        let r = report_for(&case, &reports, "optional", record);
        assert_report(
            &case,
            r,
            RunStatus::Completed,
            &[("g", "skipped"), ("after", "completed")],
        );
    }

    let r = report_for("required goal reached", &reports, "required", "L1");
    assert_report(
        "required goal reached",
        r,
        RunStatus::Completed,
        &[("g", "completed"), ("after", "completed")],
    );
    assert_eq!(
        step(r, "g").finished_at,
        Some(ts("2026-03-03T09:00:00Z")),
        "reached when the event came"
    );
    let r = report_for("required goal timeout", &reports, "required", "L2");
    assert_report("required goal timeout", r, RunStatus::Completed, &[("g", "timed_out")]);
    assert_eq!(r.outcome.as_deref(), Some("goal \"g\" not reached before its timeout"));
    assert_eq!(
        r.finished_at,
        Some(ts("2026-03-05T09:00:00Z")),
        "ended at the goal's timeout"
    );

    let r = report_for("goal ahead", &reports, "ahead", "L1");
    assert_report(
        "goal ahead",
        r,
        RunStatus::Completed,
        &[
            ("first-wait", "cancelled"),
            ("clicked", "completed"),
            ("thanks", "completed"),
        ],
    );
    assert_eq!(
        r.finished_at,
        Some(ts("2026-03-03T10:00:00Z")),
        "goal ahead: done at the click"
    );
    let r = report_for("goal ahead, condition false", &reports, "ahead", "L2");
    assert_report(
        "goal ahead, condition false",
        r,
        RunStatus::Completed,
        &[
            ("first-wait", "completed"),
            ("reminder", "completed"),
            ("clicked", "skipped"),
            ("thanks", "completed"),
        ],
    );

    let r = report_for("on_reached end", &reports, "ending", "L1");
    assert_report(
        "on_reached end",
        r,
        RunStatus::Completed,
        &[("w", "cancelled"), ("g", "completed")],
    );
    assert_eq!(r.outcome.as_deref(), Some("goal \"g\" reached; run ends"));
    assert_eq!(r.finished_at, Some(ts("2026-03-03T09:00:00Z")));

    assert!(
        !crm_commands(&sim)
            .iter()
            .any(|c| c.command.params["tag"] == "never" && c.command.subject.id == "L1"),
        "on_reached end: nothing after the goal"
    );
    // L2 never won: its optional goal is passed through and the step after it runs.
    let r = report_for("on_reached end, not reached", &reports, "ending", "L2");
    assert_report(
        "on_reached end, not reached",
        r,
        RunStatus::Completed,
        &[("w", "completed"), ("g", "skipped"), ("never", "completed")],
    );
    assert_no_pending_timers("goals", &sim);
}

#[tokio::test]
async fn sim_human_task() {
    let d = definition(
        "approval",
        "opportunity.created",
        "",
        r#"
- id: manager-approval
  human_task:
    title: "Approve {{ record.discount }}% for {{ record.account }}"
    assignee: managers
    timeout: 2d
    on_timeout:
    - id: escalate
      action: {type: add_tag, params: {tag: escalated}}
    - id: stop
      end: {reason: approval timed out}
- id: approved?
  branch:
    if: {field: steps.manager-approval.output.approved, op: equals, value: true}
    then:
    - id: send-quote
      action: {type: send_email, params: {to: "owner@example.com", subject: "Approved", text: "Notes: {{ steps['manager-approval'].output.notes }}"}}
    else:
    - id: rework
      action: {type: add_tag, params: {tag: rework}}
"#,
    );
    let opp = |id: &str, oid: &str| {
        event_on(
            id,
            "opportunity.created",
            "2026-03-05T09:00:00Z",
            "opportunity",
            oid,
            Some("C1"),
            json!({"discount": 30, "account": "Globex"}),
        )
    };
    let done = |id: &str, oid: &str, output: Value| {
        event_on(
            id,
            "task.completed",
            "2026-03-05T15:00:00Z",
            "opportunity",
            oid,
            None,
            json!({"step_id": "manager-approval", "output": output}),
        )
    };
    let (sim, reports) = simulate(
        &[&d],
        people(),
        vec![
            opp("o1", "O1"),
            opp("o2", "O2"),
            opp("o3", "O3"),
            done("t1", "O1", json!({"approved": true, "notes": "this quarter only"})),
            done("t2", "O2", json!({"approved": false})),
        ],
    )
    .await;

    let r = report_for("approved", &reports, "approval", "O1");
    assert_report(
        "approved",
        r,
        RunStatus::Completed,
        &[
            ("manager-approval", "completed"),
            ("approved?", "completed"),
            ("send-quote", "completed"),
        ],
    );
    assert_eq!(
        step(r, "manager-approval").output,
        Some(json!({"approved": true, "notes": "this quarter only"}))
    );
    let email = step(r, "send-quote")
        .email
        .clone()
        .expect("the quote email is in the report");
    assert_eq!(email.text.as_deref(), Some("Notes: this quarter only"));

    let r = report_for("rejected", &reports, "approval", "O2");
    assert_report(
        "rejected",
        r,
        RunStatus::Completed,
        &[
            ("manager-approval", "completed"),
            ("approved?", "completed"),
            ("rework", "completed"),
        ],
    );

    let r = report_for("timeout", &reports, "approval", "O3");
    assert_report(
        "timeout",
        r,
        RunStatus::Completed,
        &[
            ("manager-approval", "timed_out"),
            ("escalate", "completed"),
            ("stop", "completed"),
        ],
    );
    assert_eq!(r.finished_at, Some(ts("2026-03-07T09:00:00Z")));

    // Every run opened its task in the CRM.
    let opened: Vec<(String, Value)> = crm_commands(&sim)
        .iter()
        .filter(|c| c.command.command == "open_human_task")
        .map(|c| (c.command.subject.id.clone(), c.command.params.clone()))
        .collect();
    assert_eq!(opened.len(), 3, "three tasks opened: {opened:?}");
    for (oid, params) in &opened {
        assert_eq!(params["title"], json!("Approve 30% for Globex"), "task of {oid}");
        assert_eq!(params["assignee"], json!("managers"), "task of {oid}");
    }
    // Only the task that timed out is withdrawn, by the task_id it was opened with.
    let closed: Vec<(String, Value, String)> = crm_commands(&sim)
        .iter()
        .filter(|c| c.command.command == "close_human_task")
        .map(|c| {
            (
                c.command.subject.id.clone(),
                c.command.params.clone(),
                c.idempotency_key.clone(),
            )
        })
        .collect();
    assert_eq!(closed.len(), 1, "one task withdrawn: {closed:?}");
    let (oid, params, key) = &closed[0];
    assert_eq!(oid, "O3", "the timed-out run's task");
    let opened_o3 = &opened.iter().find(|(o, _)| o == "O3").expect("O3 opened a task").1;
    assert_eq!(params["task_id"], opened_o3["task_id"], "closes the task it opened");
    assert_eq!(params["reason"], json!("task not completed in time"));
    assert_eq!(
        key,
        &format!("{}.close", params["task_id"].as_str().unwrap_or_default())
    );
    assert_no_pending_timers("human_task", &sim);
}

#[tokio::test]
async fn sim_end_and_goto() {
    let end = definition(
        "ender",
        "lead.created",
        "",
        "- id: stop\n  end: {reason: enough}\n- id: never\n  action: {type: add_tag, params: {tag: never}}\n",
    );
    let guarded = definition(
        "guarded",
        "lead.created",
        "limits: {max_steps: 7}",
        "- id: tick\n  wait: {duration: 1h}\n- id: ping\n  action: {type: add_tag, params: {tag: ping}}\n- id: again\n  goto: tick\n",
    );
    let spinning = definition(
        "spinning",
        "lead.created",
        "",
        "- id: loop-a\n  goto: loop-b\n- id: loop-b\n  goto: loop-a\n",
    );
    let (sim, reports) = simulate(
        &[&end, &guarded, &spinning],
        people(),
        vec![lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({}))],
    )
    .await;

    let r = only_report("end", &reports, "ender");
    assert_report("end", r, RunStatus::Completed, &[("stop", "completed")]);
    assert_eq!(r.outcome.as_deref(), Some("ended at step \"stop\": enough"));

    let r = only_report("goto loop with waits", &reports, "guarded");
    assert_eq!(r.status, RunStatus::Failed, "runaway loop: failed ({:?})", r.outcome);
    assert!(
        r.outcome
            .as_deref()
            .unwrap_or("")
            .starts_with("step limit exceeded: the run entered 7 steps"),
        "{:?}",
        r.outcome
    );
    assert_eq!(r.steps.len(), 7, "seven steps entered: {:?}", report_path(r));
    assert_eq!(
        crm_commands(&sim)
            .iter()
            .filter(|c| c.command.params["tag"] == "ping")
            .count(),
        2,
        "the loop's action ran twice before the guard"
    );

    let r = only_report("goto loop without waits", &reports, "spinning");
    assert_eq!(r.status, RunStatus::Failed, "{:?}", r.outcome);
    assert!(
        r.outcome
            .as_deref()
            .unwrap_or("")
            .starts_with("step limit exceeded: the run entered 500 steps")
    );
    assert_eq!(r.steps.len(), 500, "500 goto steps recorded across yields");
    assert!(
        r.steps
            .iter()
            .all(|s| s.step_type == "goto" && s.status.as_str() == "completed")
    );
    assert!(!crm_commands(&sim).iter().any(|c| c.command.params["tag"] == "never"));
}

// ---------------------------------------------------------------------------
// 2. operators as trigger conditions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sim_every_operator_as_a_trigger_condition() {
    for c in op_cases() {
        let d = format!(
            "id: op\nname: op\nstatus: active\ntrigger:\n  event: deal.updated\n  conditions: {}\nsteps:\n- id: e\n  end: {{}}\n",
            rule_yaml(&c)
        );
        let mut events = Vec::new();
        for (record, data, previous) in [
            ("D-TRUE", &c.true_data, &c.true_previous),
            ("D-FALSE", &c.false_data, &c.false_previous),
        ] {
            let mut e = event_on(
                &format!("ev-{record}"),
                "deal.updated",
                OP_NOW,
                "deal",
                record,
                Some("C1"),
                data.clone(),
            );
            if let Some(p) = previous {
                e = with_previous(e, p.clone());
            }
            events.push(e);
        }
        let (_, reports) = simulate(&[&d], people(), events).await;
        let enrolled: Vec<&str> = reports.iter().map(|r| r.subject.id.as_str()).collect();
        assert_eq!(
            enrolled,
            vec!["D-TRUE"],
            "{}: only the record where the rule holds enrolls",
            c.op
        );
    }
}

#[tokio::test]
async fn sim_cel_and_shorthand_trigger_conditions() {
    let cel = "id: cel\nname: cel\nstatus: active\ntrigger:\n  event: deal.updated\n  conditions: {cel: \"record.amount > 100 && 'lead' in contact.tags\"}\nsteps:\n- id: e\n  end: {}\n";
    let extra = "id: extra\nname: extra\nstatus: active\ntrigger: {event: deal.updated, conditions: {source: Website}}\nconditions: {field: contact.email, op: ends_with, value: '@example.com'}\nsteps:\n- id: e\n  end: {}\n";
    let deal = |id: &str, rec: &str, contact: &str, data: Value| {
        event_on(id, "deal.updated", OP_NOW, "deal", rec, Some(contact), data)
    };
    let (_, reports) = simulate(
        &[cel, extra],
        people(),
        vec![
            deal("d1", "D1", "C1", json!({"amount": 150, "source": "Website"})),
            deal("d2", "D2", "C2", json!({"amount": 150, "source": "Referral"})),
            deal("d3", "D3", "C1", json!({"amount": 50, "source": "Website"})),
        ],
    )
    .await;
    let got = |a: &str| -> Vec<String> { reports_of(&reports, a).iter().map(|r| r.subject.id.clone()).collect() };
    assert_eq!(
        got("cel"),
        vec!["D1"],
        "CEL: amount > 100 and C1 tagged lead (C2 is not)"
    );
    assert_eq!(
        got("extra"),
        vec!["D1", "D3"],
        "shorthand trigger condition + top-level conditions"
    );
}

// ---------------------------------------------------------------------------
// 3. action types
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sim_every_action_type_is_recorded() {
    let d = definition(
        "acts",
        "lead.created",
        "",
        r#"
- id: email
  action: {type: send_email, params: {subject: "Hi {{ contact.first_name }}", html: "<p>{{ record.name }}</p>", text: "{{ record.name }}"}}
- id: sms
  action: {type: send_sms, params: {message: "Hi {{ contact.first_name }}"}}
- id: update
  action: {type: update_contact, params: {fields: {lifecycle: customer, seen: "{{ now }}"}}}
- id: tag
  action: {type: add_tag, params: {tag: VIP}}
- id: untag
  action: {type: remove_tag, params: {tag: lead}}
- id: seg
  action: {type: add_to_segment, params: {segment: newsletter}}
- id: unseg
  action: {type: remove_from_segment, params: {segment: cold}}
- id: assign
  action: {type: assign, params: {user_id: U7}}
- id: queue
  action: {type: assign_to_queue, params: {queue_id: tier-2}}
- id: task
  action: {type: create_task, params: {title: "Call {{ contact.first_name }}", due_in: 1d}}
- id: ticket
  action: {type: create_ticket, params: {subject: "Ticket for {{ record.name }}", priority: high}}
- id: new-lead
  action: {type: create_lead, params: {fields: {source: "{{ record.source }}"}}}
- id: status
  action: {type: update_lead_status, params: {status: qualified}}
- id: notify-crm
  action: {type: notify, params: {channel: sales, message: "Lead {{ record.name }}"}}
- id: notify-http
  action: {type: send_notification, params: {channel: slack, message: "Lead {{ record.name }}", url: "https://hooks.example.com/{{ run.subject.id }}"}}
- id: hook
  action: {type: webhook, params: {method: patch, url: "https://api.example.com/leads/{{ run.subject.id }}", headers: {X-Name: "{{ contact.first_name }}"}, body: '{"name": "{{ record.name }}"}'}}
- id: check
  branch:
    if: {all: [{field: contact.tags, op: contains, value: VIP}, {field: contact.tags, op: not_contains, value: lead}, {field: record.status, op: equals, value: qualified}, {field: contact.lifecycle, op: equals, value: customer}]}
    then:
    - id: snapshot-ok
      end: {reason: snapshot updated}
"#,
    );
    let (sim, reports) = simulate(
        &[&d],
        people(),
        vec![lead(
            "e1",
            "2026-03-02T09:00:00Z",
            "L1",
            "C1",
            json!({"name": "Tom & <Jerry>", "source": "Website"}),
        )],
    )
    .await;
    let r = only_report("actions", &reports, "acts");
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.outcome);
    assert!(
        r.steps.iter().all(|s| s.status.as_str() == "completed"),
        "{:?}",
        report_path(r)
    );
    assert_eq!(
        r.outcome.as_deref(),
        Some("ended at step \"snapshot-ok\": snapshot updated")
    );
    let seq_of = |step_id: &str| {
        r.steps
            .iter()
            .position(|s| s.step_id == step_id)
            .unwrap_or_else(|| panic!("no step {step_id}"))
    };
    let key = |step_id: &str| format!("{}.{}", r.run_id, seq_of(step_id));

    // Email, with the HTML body escaped and the text body not.
    let sent = emails(&sim);
    assert_eq!(sent.len(), 1, "one email");
    assert_eq!(sent[0].0, key("email"), "email idempotency key");
    assert_eq!(sent[0].1.to, "ada@example.com");
    assert_eq!(sent[0].1.subject, "Hi Ada");
    assert_eq!(sent[0].1.html.as_deref(), Some("<p>Tom &amp; &lt;Jerry&gt;</p>"));
    assert_eq!(sent[0].1.text.as_deref(), Some("Tom & <Jerry>"));
    assert_eq!(
        step(r, "email").email.as_ref(),
        Some(&sent[0].1),
        "the report shows the email"
    );

    // CRM commands, in order, with their keys.
    let subject = crmflow_core::event::Subject {
        record_type: "lead".into(),
        id: "L1".into(),
        contact_id: Some("C1".into()),
    };
    let want: Vec<(&str, &str, Value)> = vec![
        ("sms", "send_sms", json!({"to": "+15550001", "message": "Hi Ada"})),
        (
            "update",
            "update_contact",
            json!({"fields": {"lifecycle": "customer", "seen": "2026-03-02T09:00:00Z"}}),
        ),
        ("tag", "add_tag", json!({"tag": "VIP"})),
        ("untag", "remove_tag", json!({"tag": "lead"})),
        ("seg", "add_to_segment", json!({"segment": "newsletter"})),
        ("unseg", "remove_from_segment", json!({"segment": "cold"})),
        ("assign", "assign", json!({"user_id": "U7", "queue_id": null})),
        ("queue", "assign", json!({"user_id": null, "queue_id": "tier-2"})),
        (
            "task",
            "create_task",
            json!({"title": "Call Ada", "description": null, "assignee": null, "due_in_seconds": 86400}),
        ),
        (
            "ticket",
            "create_ticket",
            json!({"subject": "Ticket for Tom & <Jerry>", "description": null, "priority": "high", "queue_id": null}),
        ),
        ("new-lead", "create_lead", json!({"fields": {"source": "Website"}})),
        ("status", "update_lead_status", json!({"status": "qualified"})),
        (
            "notify-crm",
            "notify",
            json!({"channel": "sales", "message": "Lead Tom & <Jerry>"}),
        ),
    ];
    let crm = crm_commands(&sim);
    assert_eq!(crm.len(), want.len(), "CRM commands: {crm:#?}");
    for (got, (step_id, command, params)) in crm.iter().zip(want) {
        let case = format!("CRM command of step {step_id}");
        assert_eq!(got.step_id, step_id, "{case}: step id");
        assert_eq!(got.command.command, command, "{case}: command");
        assert_eq!(got.command.params, params, "{case}: params");
        assert_eq!(got.command.subject, subject, "{case}: subject");
        assert_eq!(got.idempotency_key, key(step_id), "{case}: idempotency key");
        assert_eq!(got.run_id, r.run_id, "{case}: run id");
        assert_eq!(got.automation_id, "acts", "{case}: automation id");
        assert_eq!(got.tenant, "default", "{case}: tenant");
    }

    // HTTP: the notification with a URL, then the webhook, each with its idempotency key.
    let http = http_requests(&sim);
    assert_eq!(http.len(), 2, "two HTTP requests: {http:#?}");
    assert_eq!(http[0].0, key("notify-http"), "notify idempotency key");
    assert_eq!(
        http[0].1,
        HttpRequest {
            method: "POST".into(),
            url: "https://hooks.example.com/L1".into(),
            headers: BTreeMap::from([("Content-Type".to_string(), "application/json".to_string())]),
            body: Some(json!({"channel": "slack", "text": "Lead Tom & <Jerry>"}).to_string()),
        },
        "notify over HTTP"
    );
    assert_eq!(http[1].0, key("hook"), "webhook idempotency key");
    assert_eq!(
        http[1].1,
        HttpRequest {
            method: "PATCH".into(),
            url: "https://api.example.com/leads/L1".into(),
            headers: BTreeMap::from([("X-Name".to_string(), "Ada".to_string())]),
            body: Some(r#"{"name": "Tom & <Jerry>"}"#.into()),
        },
        "webhook"
    );
}

#[tokio::test]
async fn sim_failed_uncertain_and_duplicate_results() {
    let strict = definition(
        "strict",
        "lead.created",
        "",
        "- id: hook\n  action: {type: webhook, params: {url: \"https://api.example.com/strict\"}}\n- id: after\n  action: {type: add_tag, params: {tag: strict-after}}\n",
    );
    let tolerant = definition(
        "tolerant",
        "lead.updated",
        "",
        "- id: hook\n  action: {type: webhook, params: {url: \"https://api.example.com/tolerant\"}}\n  continue_on_error: true\n- id: after\n  action: {type: add_tag, params: {tag: tolerant-after}}\n",
    );
    let mut sim = simulator(&[&strict, &tolerant], people());
    // Both webhooks answer 400 (permanent: not retried).
    sim.http.script.lock().unwrap().extend([400, 400]);
    let reports = sim
        .run(vec![
            lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({})),
            event_on(
                "e2",
                "lead.updated",
                "2026-03-02T10:00:00Z",
                "lead",
                "L2",
                Some("C1"),
                json!({}),
            ),
        ])
        .await;
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    let r = only_report("failed", &reports, "strict");
    assert_report("failed", r, RunStatus::Failed, &[("hook", "failed")]);
    assert!(
        step(r, "hook").error.as_deref().unwrap_or("").contains("answered 400"),
        "failed: {:?}",
        step(r, "hook").error
    );
    assert!(r.outcome.as_deref().unwrap_or("").starts_with("step \"hook\" failed: "));
    let r = only_report("continue_on_error", &reports, "tolerant");
    assert_report(
        "continue_on_error",
        r,
        RunStatus::Completed,
        &[("hook", "failed"), ("after", "completed")],
    );
    let tags: Vec<Value> = crm_commands(&sim)
        .iter()
        .map(|c| c.command.params["tag"].clone())
        .collect();
    assert_eq!(tags, vec![json!("tolerant-after")], "only the tolerant run went on");

    // Uncertain: an earlier attempt at the email died mid-way (its claim expired).
    let d = definition(
        "mailer",
        "lead.created",
        "",
        "- id: mail\n  action: {type: send_email, params: {subject: S, text: T}}\n- id: after\n  action: {type: add_tag, params: {tag: after-mail}}\n",
    );
    let mut sim = simulator(&[&d], people());
    // Both actions go through execute, whose claims this part is about (evaluate would perform
    // the tag in place).
    sim.engine.evaluate.email = None;
    let trigger = lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({}));
    let run_id = run_id_for("default", "e1", "mailer", trigger.time);
    sim.store
        .force_in_progress(&format!("{run_id}.0"), ts("2026-03-02T08:59:00Z"));
    // Driven by hand rather than by `sim.run`, which drops a run with its idempotency records
    // once it has ended and nothing is queued for it: the duplicates below need them.
    sim.clock.set(trigger.time);
    let ada = contacts(people())["C1"].clone();
    sim.engine.intake.handle(&trigger, ada).await.expect("intake");
    drain(&sim).await;
    let reports = sim.reports().await;
    let r = only_report("uncertain", &reports, "mailer");
    assert_eq!(r.run_id, run_id);
    assert_report(
        "uncertain",
        r,
        RunStatus::Completed,
        &[("mail", "uncertain"), ("after", "completed")],
    );
    assert!(emails(&sim).is_empty(), "uncertain: the email is not resent");

    // A duplicate ActionResult (and a redelivered action) change nothing.
    let history_before = report_path(r);
    let dup = StepMessage {
        tenant: "default".into(),
        run_id: run_id.clone(),
        input: Input::ActionResult {
            step_id: "after".into(),
            seq: 1,
            attempt: 1,
            outcome: ActionOutcome::Succeeded { output: json!({}) },
        },
    };
    let saved = sim.engine.evaluate.handle(&dup).await.expect("evaluate");
    assert!(saved.is_none(), "duplicate ActionResult: nothing saved");
    let action = PerformAction {
        tenant: "default".into(),
        run_id: run_id.clone(),
        automation_id: "mailer".into(),
        step_id: "after".into(),
        seq: 1,
        attempt: 1,
        idempotency_key: format!("{run_id}.1"),
        effect: Effect::Crm(crmflow_core::command::CrmCommand {
            command: "add_tag".into(),
            subject: r.subject.clone(),
            params: json!({"tag": "after-mail"}),
        }),
    };
    let crm_before = crm_commands(&sim).len();
    let outcome = sim
        .engine
        .execute
        .handle(&ActionMessage { action })
        .await
        .expect("execute");
    assert!(matches!(outcome, ActionOutcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(
        crm_commands(&sim).len(),
        crm_before,
        "redelivered action: not sent again"
    );
    // Its re-reported result is a no-op for the run.
    let now = crmflow_core::ports::Clock::now(sim.clock.as_ref());
    while let Some(m) = sim.queue.pop_visible(now) {
        if let crmflow_core::memory::Queued::Step(m) = m {
            assert!(
                sim.engine.evaluate.handle(&m).await.expect("evaluate").is_none(),
                "re-reported result: no-op"
            );
        }
    }
    let reports = sim.reports().await;
    assert_eq!(
        report_path(only_report("after duplicates", &reports, "mailer")),
        history_before
    );
}

#[tokio::test]
async fn sim_enroll_and_cancel_automations() {
    let main = definition(
        "main",
        "lead.created",
        "",
        "- id: hand-over\n  action: {type: enroll, params: {automation_id: nurture}}\n",
    );
    let nurture = definition(
        "nurture",
        "never.happens",
        "",
        "- id: nurtured\n  action: {type: add_tag, params: {tag: nurtured}}\n",
    );
    let (sim, reports) = simulate(
        &[&main, &nurture],
        people(),
        vec![lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({"name": "X"}))],
    )
    .await;
    let m = only_report("enroll: parent", &reports, "main");
    assert_report("enroll: parent", m, RunStatus::Completed, &[("hand-over", "completed")]);
    let n = only_report("enroll: child", &reports, "nurture");
    assert_report("enroll: child", n, RunStatus::Completed, &[("nurtured", "completed")]);
    assert_eq!(n.subject, m.subject, "enroll: the same record");
    assert_eq!(
        step(m, "hand-over").output.as_ref().map(|o| o["run_id"].clone()),
        Some(json!(n.run_id)),
        "the enroll step names the new run"
    );
    let crm = crm_commands(&sim);
    assert_eq!(crm.len(), 1);
    assert_eq!(crm[0].run_id, n.run_id, "the child's action");

    // A self-enrolling chain stops at limits.max_enroll_depth.
    let chain = definition(
        "chain",
        "lead.created",
        "enrollment: {reenroll: always, allow_concurrent: true}\nlimits: {max_enroll_depth: 2}",
        "- id: again\n  action: {type: enroll, params: {automation_id: chain}}\n",
    );
    let (_, reports) = simulate(
        &[&chain],
        people(),
        vec![lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({}))],
    )
    .await;
    assert_eq!(
        reports.len(),
        3,
        "depth 0, 1, 2: {:?}",
        reports.iter().map(|r| (&r.run_id, r.status)).collect::<Vec<_>>()
    );
    let statuses: Vec<RunStatus> = reports.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == RunStatus::Completed).count(),
        2,
        "the first two runs enrolled the next: {statuses:?}"
    );
    let deepest = reports
        .iter()
        .find(|r| r.status == RunStatus::Failed)
        .expect("the deepest run fails");
    assert_report(
        "enroll chain too deep",
        deepest,
        RunStatus::Failed,
        &[("again", "failed")],
    );
    assert!(
        step(deepest, "again")
            .error
            .as_deref()
            .unwrap_or("")
            .starts_with("enroll chain too deep"),
        "{:?}",
        step(deepest, "again").error
    );

    // cancel_automations cancels the record's run of the listed automation only.
    let slow = definition(
        "slow",
        "lead.created",
        "",
        "- id: w\n  wait: {duration: 3d}\n- id: after\n  action: {type: add_tag, params: {tag: slow}}\n",
    );
    let other = definition(
        "other",
        "lead.created",
        "",
        "- id: w\n  wait: {duration: 5d}\n- id: after\n  end: {}\n",
    );
    let closer = definition(
        "closer",
        "lead.converted",
        "",
        "- id: stop-slow\n  action: {type: cancel_automations, params: {automation_ids: [slow]}}\n",
    );
    let (sim, reports) = simulate(
        &[&slow, &other, &closer],
        people(),
        vec![
            lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({})),
            lead("e2", "2026-03-02T09:00:00Z", "L2", "C2", json!({})),
            event_on(
                "e3",
                "lead.converted",
                "2026-03-03T09:00:00Z",
                "lead",
                "L1",
                Some("C1"),
                json!({}),
            ),
        ],
    )
    .await;
    let s = report_for("cancelled", &reports, "slow", "L1");
    assert_report("cancelled", s, RunStatus::Cancelled, &[("w", "cancelled")]);
    assert_eq!(s.finished_at, Some(ts("2026-03-03T09:00:00Z")));
    assert!(
        s.outcome.as_deref().unwrap_or("").starts_with("cancelled by run "),
        "{:?}",
        s.outcome
    );
    let c = only_report("closer", &reports, "closer");
    assert_report("closer", c, RunStatus::Completed, &[("stop-slow", "completed")]);
    assert_eq!(
        step(c, "stop-slow").output,
        Some(json!({"cancelled_runs": [s.run_id]})),
        "the cancel step names the run"
    );
    let untouched = report_for("other record", &reports, "slow", "L2");
    assert_report(
        "other record",
        untouched,
        RunStatus::Completed,
        &[("w", "completed"), ("after", "completed")],
    );
    let not_listed = report_for("not listed", &reports, "other", "L1");
    assert_report(
        "not listed",
        not_listed,
        RunStatus::Completed,
        &[("w", "completed"), ("after", "completed")],
    );
    let tags: Vec<String> = crm_commands(&sim)
        .iter()
        .map(|c| c.command.subject.id.clone())
        .collect();
    assert_eq!(tags, vec!["L2"], "only L2's slow run tagged");
    assert_no_pending_timers("cancel", &sim);
}

/// Handles every visible message, like the simulator's own loop (which is private).
async fn drain(sim: &crmflow_core::simulate::Simulator) {
    let now = crmflow_core::ports::Clock::now(sim.clock.as_ref());
    while let Some(m) = sim.queue.pop_visible(now) {
        match m {
            crmflow_core::memory::Queued::Step(m) => {
                sim.engine.evaluate.handle(&m).await.expect("evaluate");
            }
            crmflow_core::memory::Queued::Action(m) => {
                sim.engine.execute.handle(&m).await.expect("execute");
            }
        }
    }
}

/// A reply delivered while the run's email is still out is deferred and applied after the
/// email's result, also when that decision yields (a long chain of instant steps).
#[tokio::test]
async fn sim_event_during_an_action_is_deferred_until_its_result() {
    for gotos in [0, 45] {
        let case = format!("{gotos} instant steps after the email");
        let mut steps = String::from("- id: act\n  action: {type: send_email, params: {subject: S, text: T}}\n");
        for i in 1..=gotos {
            let next = if i == gotos {
                "await".to_string()
            } else {
                format!("g{}", i + 1)
            };
            steps.push_str(&format!("- id: g{i}\n  goto: {next}\n"));
        }
        steps.push_str("- id: await\n  wait_for_event: {event: message.received, timeout: 1d, on_timeout: [{id: late, end: {reason: no reply}}]}\n- id: replied\n  end: {reason: replied}\n");
        let d = definition("deferring", "lead.created", "", &steps);
        let sim = simulator(&[&d], people());
        sim.clock.set(ts("2026-03-02T09:00:00Z"));
        let trigger = lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({}));
        let ada = contacts(people())["C1"].clone();
        // Intake starts the run: the email goes out (an action message is queued, not yet
        // performed).
        sim.engine.intake.handle(&trigger, ada).await.expect("intake");
        let now = crmflow_core::ports::Clock::now(sim.clock.as_ref());
        let Some(crmflow_core::memory::Queued::Action(email)) = sim.queue.pop_visible(now) else {
            panic!("{case}: expected the email action")
        };
        // The reply arrives before the email's result.
        let reply = event_on(
            "m1",
            "message.received",
            "2026-03-02T09:00:00Z",
            "lead",
            "L1",
            None,
            json!({}),
        );
        let report = sim
            .engine
            .intake
            .handle(&reply, Default::default())
            .await
            .expect("intake reply");
        assert_eq!(report.delivered_to.len(), 1, "{case}: the reply reaches the run");
        drain(&sim).await;
        // Now the email is performed and its result handled.
        sim.engine.execute.handle(&email).await.expect("execute");
        drain(&sim).await;
        let reports = sim.reports().await;
        let r = only_report(&case, &reports, "deferring");
        assert_eq!(
            r.status,
            RunStatus::Completed,
            "{case}: {:?} {:?}",
            r.outcome,
            report_path(r)
        );
        assert_eq!(
            step(r, "await").status.as_str(),
            "completed",
            "{case}: the reply was applied"
        );
        assert_eq!(step(r, "replied").status.as_str(), "completed", "{case}");
        assert_eq!(emails(&sim).len(), 1, "{case}: one email");
        assert_no_pending_timers(&case, &sim);
    }
}

// ---------------------------------------------------------------------------
// 4. enrollment and exit
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sim_reenrollment_policies() {
    let quick = "- id: e\n  end: {}\n";
    let slow = "- id: w\n  wait: {duration: 2d}\n- id: e\n  end: {}\n";
    let times = [
        "2026-03-01T09:00:00Z",
        "2026-03-02T09:00:00Z",
        "2026-03-04T09:00:00Z",
        "2026-03-12T09:00:00Z",
    ];
    let cases: Vec<(&str, &str, &str, Vec<&str>)> = vec![
        ("once", "enrollment: {reenroll: once}", quick, vec![times[0]]),
        ("default is once", "", quick, vec![times[0]]),
        ("always", "enrollment: {reenroll: always}", quick, times.to_vec()),
        (
            "after 7d",
            "enrollment: {reenroll: after, after: 7d}",
            quick,
            vec![times[0], times[3]],
        ),
        (
            "always, no concurrency: not while active",
            "enrollment: {reenroll: always}",
            slow,
            vec![times[0], times[2], times[3]],
        ),
        (
            "always with concurrency",
            "enrollment: {reenroll: always, allow_concurrent: true}",
            slow,
            times.to_vec(),
        ),
    ];
    for (case, extra, steps, want) in cases {
        let d = definition("pol", "lead.created", extra, steps);
        let events = times
            .iter()
            .enumerate()
            .map(|(i, t)| lead(&format!("e{i}"), t, "L1", "C1", json!({})))
            .collect();
        let (_, reports) = simulate(&[&d], people(), events).await;
        let started: Vec<jiff::Timestamp> = reports.iter().map(|r| r.started_at).collect();
        let want: Vec<jiff::Timestamp> = want.iter().map(|t| ts(t)).collect();
        assert_eq!(started, want, "{case}: runs started at");
        assert!(
            reports.iter().all(|r| r.status == RunStatus::Completed),
            "{case}: all completed"
        );
    }
}

#[tokio::test]
async fn sim_exit_event_cancels_a_waiting_run() {
    let d = definition(
        "exiting",
        "lead.created",
        "exit: {events: [lead.disqualified], condition: {field: record.status, op: equals, value: lost}}",
        "- id: w\n  wait: {duration: 2d}\n- id: after\n  action: {type: add_tag, params: {tag: after}}\n",
    );
    let on = |id: &str, ty: &str, time: &str, rec: &str, data: Value| event_on(id, ty, time, "lead", rec, None, data);
    let (sim, reports) = simulate(
        &[&d],
        people(),
        vec![
            lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({})),
            lead("e2", "2026-03-02T09:00:00Z", "L2", "C1", json!({})),
            lead("e3", "2026-03-02T09:00:00Z", "L3", "C1", json!({})),
            on("x1", "lead.disqualified", "2026-03-03T09:00:00Z", "L1", json!({})),
            on(
                "x2",
                "lead.updated",
                "2026-03-03T10:00:00Z",
                "L2",
                json!({"status": "lost"}),
            ),
            on(
                "x3",
                "lead.updated",
                "2026-03-03T11:00:00Z",
                "L3",
                json!({"status": "open"}),
            ),
        ],
    )
    .await;
    for (case, record, at) in [
        ("exit event", "L1", "2026-03-03T09:00:00Z"),
        ("exit condition", "L2", "2026-03-03T10:00:00Z"),
    ] {
        let r = report_for(case, &reports, "exiting", record);
        assert_report(case, r, RunStatus::Cancelled, &[("w", "cancelled")]);
        assert_eq!(r.finished_at, Some(ts(at)), "{case}: cancelled when the event came");
    }
    let r = report_for("no exit", &reports, "exiting", "L3");
    assert_report(
        "no exit",
        r,
        RunStatus::Completed,
        &[("w", "completed"), ("after", "completed")],
    );
    assert_eq!(crm_commands(&sim).len(), 1, "only L3 went on");
    assert_no_pending_timers("exit", &sim);
}

#[tokio::test]
async fn sim_only_active_automations_enroll() {
    for (status, enrolls) in [
        ("draft", false),
        ("paused", false),
        ("archived", false),
        ("active", true),
    ] {
        let d = format!(
            "id: st\nname: st\nstatus: {status}\ntrigger: {{event: lead.created}}\nsteps:\n- id: e\n  end: {{}}\n"
        );
        let (_, reports) = simulate(
            &[&d],
            people(),
            vec![lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({}))],
        )
        .await;
        assert_eq!(reports.len(), usize::from(enrolls), "status {status}");
    }
    let no_status = "id: st\nname: st\ntrigger: {event: lead.created}\nsteps:\n- id: e\n  end: {}\n";
    let (_, reports) = simulate(
        &[no_status],
        people(),
        vec![lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({}))],
    )
    .await;
    assert!(reports.is_empty(), "no status: draft");
}

// ---------------------------------------------------------------------------
// 5. time
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sim_waits_across_dst_in_the_contact_zone() {
    let day = definition(
        "day",
        "lead.created",
        "",
        "- id: w\n  wait: {duration: 1d}\n- id: after\n  end: {}\n",
    );
    let hours = definition(
        "hours",
        "lead.created",
        "",
        "- id: w\n  wait: {duration: 24h}\n- id: after\n  end: {}\n",
    );
    let monday = definition(
        "monday",
        "lead.created",
        "timezone: Europe/Berlin",
        "- id: w\n  wait: {until_weekday: {days: [monday], at: \"09:00\"}}\n- id: after\n  end: {}\n",
    );
    let (_, reports) = simulate(
        &[&day, &hours, &monday],
        people(),
        vec![
            // 14:00 in New York the day before the US change.
            lead("ny", "2026-03-07T19:00:00Z", "L-NY", "C2", json!({})),
            // 14:00 in Berlin the day before the EU change.
            lead("be", "2026-03-28T13:00:00Z", "L-BE", "C3", json!({})),
            // Same instant as New York, but a Berlin contact.
            lead("be2", "2026-03-07T19:00:00Z", "L-BE2", "C3", json!({})),
            // An invalid contact zone: the automation's (Berlin), else UTC.
            lead("mars", "2026-03-07T19:00:00Z", "L-MARS", "C4", json!({})),
            // No contact zone.
            lead("utc", "2026-03-07T19:00:00Z", "L-UTC", "C1", json!({})),
        ],
    )
    .await;
    let due = |automation: &str, record: &str| {
        let r = report_for(&format!("{automation} {record}"), &reports, automation, record);
        assert_eq!(r.status, RunStatus::Completed);
        step(r, "after").started_at
    };
    let cases = [
        (
            "day",
            "L-NY",
            "2026-03-08T18:00:00Z",
            "1d in New York across spring-forward: 23h",
        ),
        ("hours", "L-NY", "2026-03-08T19:00:00Z", "24h in New York"),
        (
            "day",
            "L-BE",
            "2026-03-29T12:00:00Z",
            "1d in Berlin across the EU change: 23h",
        ),
        ("hours", "L-BE", "2026-03-29T13:00:00Z", "24h in Berlin"),
        (
            "day",
            "L-BE2",
            "2026-03-08T19:00:00Z",
            "1d in Berlin from the New York instant",
        ),
        (
            "day",
            "L-MARS",
            "2026-03-08T19:00:00Z",
            "invalid zone, no automation zone: UTC",
        ),
        ("day", "L-UTC", "2026-03-08T19:00:00Z", "no zone: UTC"),
        (
            "monday",
            "L-NY",
            "2026-03-09T13:00:00Z",
            "Monday 09:00 New York (contact zone wins)",
        ),
        ("monday", "L-BE2", "2026-03-09T08:00:00Z", "Monday 09:00 Berlin"),
        (
            "monday",
            "L-UTC",
            "2026-03-09T08:00:00Z",
            "Monday 09:00: no contact zone, the automation's",
        ),
        (
            "monday",
            "L-MARS",
            "2026-03-09T08:00:00Z",
            "Monday 09:00: invalid contact zone, the automation's",
        ),
        (
            "monday",
            "L-BE",
            "2026-03-30T07:00:00Z",
            "Monday 09:00 Berlin after the EU change",
        ),
    ];
    for (automation, record, want, case) in cases {
        assert_eq!(due(automation, record), ts(want), "{case}");
    }
    assert_ne!(due("day", "L-NY"), due("day", "L-BE2"), "two zones, two instants");
}

// ---------------------------------------------------------------------------
// contact routing: events that name a contact reach every run of that contact
// ---------------------------------------------------------------------------
//
// Runs are routed events by their record key and by their contact (`Run::route_keys`), so an
// event about one record of a contact also reaches the contact's runs about other records.
// That is intended for replies and clicks (a `message.received` on a message record reaches the
// lead's run), but these three behaviours act on the wrong record.

/// Two opportunities of the same contact, each waiting for its manager's approval. Completing
/// O1's task must not complete O2's (O2's own completion rejects it).
#[tokio::test]
async fn contact_routing_task_completed_for_one_record_completes_only_its_own_task() {
    let d = definition(
        "approval",
        "opportunity.created",
        "",
        r#"
- id: manager-approval
  human_task: {title: Approve, timeout: 2d}
- id: approved?
  branch:
    if: {field: steps.manager-approval.output.approved, op: equals, value: true}
    then:
    - id: send-quote
      end: {}
    else:
    - id: rework
      end: {}
"#,
    );
    let on = |id: &str, ty: &str, time: &str, oid: &str, data: Value| {
        event_on(id, ty, time, "opportunity", oid, Some("C1"), data)
    };
    let (_, reports) = simulate(
        &[&d],
        people(),
        vec![
            on("o1", "opportunity.created", "2026-03-05T09:00:00Z", "O1", json!({})),
            on("o2", "opportunity.created", "2026-03-05T09:00:00Z", "O2", json!({})),
            on(
                "t1",
                "task.completed",
                "2026-03-05T15:00:00Z",
                "O1",
                json!({"step_id": "manager-approval", "output": {"approved": true}}),
            ),
            on(
                "t2",
                "task.completed",
                "2026-03-05T16:00:00Z",
                "O2",
                json!({"step_id": "manager-approval", "output": {"approved": false}}),
            ),
        ],
    )
    .await;
    let r = report_for("O1 approved", &reports, "approval", "O1");
    assert_report(
        "O1 approved",
        r,
        RunStatus::Completed,
        &[
            ("manager-approval", "completed"),
            ("approved?", "completed"),
            ("send-quote", "completed"),
        ],
    );
    let r = report_for("O2 rejected by its own task", &reports, "approval", "O2");
    assert_eq!(
        step(r, "manager-approval").output,
        Some(json!({"approved": false})),
        "O2's task output must come from O2's completion, not O1's"
    );
    assert_report(
        "O2 rejected by its own task",
        r,
        RunStatus::Completed,
        &[
            ("manager-approval", "completed"),
            ("approved?", "completed"),
            ("rework", "completed"),
        ],
    );
}

/// `cancel_automations` cancels "this record's active runs" (Action docs); a run of the same
/// automation for another lead of the same contact must survive.
#[tokio::test]
async fn contact_routing_cancel_automations_cancels_only_this_records_runs() {
    let slow = definition(
        "slow",
        "lead.created",
        "",
        "- id: w\n  wait: {duration: 3d}\n- id: after\n  end: {}\n",
    );
    let closer = definition(
        "closer",
        "lead.converted",
        "",
        "- id: stop-slow\n  action: {type: cancel_automations, params: {automation_ids: [slow]}}\n",
    );
    let (_, reports) = simulate(
        &[&slow, &closer],
        people(),
        vec![
            lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({})),
            lead("e2", "2026-03-02T09:00:00Z", "L2", "C1", json!({})),
            event_on(
                "e3",
                "lead.converted",
                "2026-03-03T09:00:00Z",
                "lead",
                "L1",
                Some("C1"),
                json!({}),
            ),
        ],
    )
    .await;
    let r = report_for("converted lead", &reports, "slow", "L1");
    assert_eq!(r.status, RunStatus::Cancelled, "L1's run is cancelled");
    let r = report_for("the contact's other lead", &reports, "slow", "L2");
    assert_report(
        "the contact's other lead",
        r,
        RunStatus::Completed,
        &[("w", "completed"), ("after", "completed")],
    );
}

/// The exit rule unenrolls a run "when one of `events` arrives for its record" (ExitRule docs):
/// disqualifying lead L1 must not cancel the follow-up of lead L2 of the same contact.
#[tokio::test]
async fn contact_routing_exit_event_of_another_lead_does_not_cancel() {
    let d = definition(
        "follow-up",
        "lead.created",
        "exit: {events: [lead.disqualified]}",
        "- id: w\n  wait: {duration: 2d}\n- id: after\n  end: {}\n",
    );
    let (_, reports) = simulate(
        &[&d],
        people(),
        vec![
            lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({})),
            lead("e2", "2026-03-02T09:00:00Z", "L2", "C1", json!({})),
            event_on(
                "x1",
                "lead.disqualified",
                "2026-03-03T09:00:00Z",
                "lead",
                "L1",
                Some("C1"),
                json!({}),
            ),
        ],
    )
    .await;
    let r = report_for("disqualified lead", &reports, "follow-up", "L1");
    assert_report("disqualified lead", r, RunStatus::Cancelled, &[("w", "cancelled")]);
    let r = report_for("the contact's other lead", &reports, "follow-up", "L2");
    assert_report(
        "the contact's other lead",
        r,
        RunStatus::Completed,
        &[("w", "completed"), ("after", "completed")],
    );
}

/// What contact routing is for: a reply on a message record of the contact reaches the lead's
/// run waiting for it.
#[tokio::test]
async fn contact_routing_a_reply_on_a_message_record_reaches_the_leads_run() {
    let d = definition("reply", "lead.created", "", WAIT_FOR_REPLY);
    let (_, reports) = simulate(
        &[&d],
        people(),
        vec![
            lead("e1", "2026-03-02T09:00:00Z", "L1", "C1", json!({})),
            event_on(
                "m1",
                "message.received",
                "2026-03-02T12:00:00Z",
                "message",
                "M1",
                Some("C1"),
                json!({"channel": "email"}),
            ),
        ],
    )
    .await;
    let r = report_for("reply via contact", &reports, "reply", "L1");
    assert_report(
        "reply via contact",
        r,
        RunStatus::Completed,
        &[("await", "completed"), ("replied", "completed"), ("done", "completed")],
    );
}

// ---------------------------------------------------------------------------
// 6. streaming
// ---------------------------------------------------------------------------

/// The simulator streams: a run is reported once it has ended and nothing is left queued for it,
/// then dropped with its history, its emails and its idempotency records (its enrollment state
/// stays, unless the automation re-enrolls always and no run of it is active). A run cancelled
/// while its email is out is reported after the email's result, with the email. Runs still
/// waiting come last and stay in the store.
#[tokio::test]
async fn sim_streams_reports_as_runs_end_and_drops_them() {
    let definitions = streaming_definitions();
    let mut sim = simulator(&definitions.each_ref().map(String::as_str), people());
    let store = sim.store.clone();
    let on = |id: &str, ty: &str, time: &str, lead: &str, contact: &str| {
        event_on(id, ty, time, "lead", lead, Some(contact), json!({}))
    };
    let events = vec![
        on("e1", "lead.created", "2026-03-02T09:00:00Z", "L1", "C1"),
        on("e2", "lead.updated", "2026-03-02T10:00:00Z", "L1", "C1"),
        on("e3", "lead.converted", "2026-03-03T09:00:00Z", "L2", "C2"),
    ];
    let mut streamed = Vec::new();
    sim.run_with(events, |r| {
        let still_stored = store.all_runs().iter().any(|run| run.run_id == r.run_id);
        streamed.push((r, still_stored));
    })
    .await;
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    let order: Vec<(&str, RunStatus, bool)> = streamed
        .iter()
        .map(|(r, stored)| (r.automation_id.as_str(), r.status, *stored))
        .collect();
    assert_eq!(
        order,
        vec![
            ("quick", RunStatus::Completed, false),
            ("closer", RunStatus::Completed, false),
            ("mailer", RunStatus::Cancelled, false),
            ("slow", RunStatus::Completed, false),
            ("waiting", RunStatus::Waiting, true),
        ],
        "runs as they end, dropped; the waiting run last, kept"
    );
    let reports: Vec<RunReport> = streamed.into_iter().map(|(r, _)| r).collect();
    let m = only_report("cancelled mid-email", &reports, "mailer");
    assert_report("cancelled mid-email", m, RunStatus::Cancelled, &[("mail", "cancelled")]);
    assert_eq!(step(m, "mail").email.as_ref().map(|e| e.subject.as_str()), Some("Bye"));
    let q = only_report("quick", &reports, "quick");
    assert_eq!(step(q, "mail").email.as_ref().map(|e| e.subject.as_str()), Some("Hi"));
    assert_dropped_with_what_it_left(&sim, q).await;
}

/// Runs for [`sim_streams_reports_as_runs_end_and_drops_them`]: one ends after a wait, one waits
/// for ever, one sends an email, and one is cancelled by another while its email is out.
fn streaming_definitions() -> [String; 5] {
    [
        definition(
            "slow",
            "lead.created",
            "enrollment: {reenroll: always}",
            "- id: w\n  wait: {duration: 3d}\n- id: done\n  end: {}\n",
        ),
        definition(
            "waiting",
            "lead.created",
            "",
            "- id: reply\n  wait_for_event: {event: message.received}\n",
        ),
        definition(
            "quick",
            "lead.updated",
            "",
            "- id: mail\n  action: {type: send_email, params: {subject: Hi, text: T}}\n",
        ),
        definition(
            "mailer",
            "lead.converted",
            "",
            "- id: mail\n  action: {type: send_email, params: {subject: Bye, text: T}}\n",
        ),
        definition(
            "closer",
            "lead.converted",
            "",
            "- id: stop\n  action: {type: cancel_automations, params: {automation_ids: [mailer]}}\n",
        ),
    ]
}

/// After streaming: only the waiting run stays; the finished `quick` run took its email and its
/// idempotency record with it, and left its enrollment state (reenroll: once); `slow`
/// (reenroll: always) left none.
async fn assert_dropped_with_what_it_left(sim: &crmflow_core::simulate::Simulator, quick: &RunReport) {
    use crmflow_core::ports::{Claim, Clock, IdempotencyStore, RunStore};
    let left: Vec<String> = sim.store.all_runs().into_iter().map(|r| r.automation_id).collect();
    assert_eq!(left, vec!["waiting"], "only the waiting run stays");
    assert_eq!(sim.reports().await.len(), 1, "reports(): the runs still stored");
    let key = format!("{}.0", quick.run_id);
    assert_eq!(sim.email.get(&key), None, "the report took the email");
    let claim = sim.store.claim(&key, sim.clock.now(), 60).await.expect("claim");
    assert_eq!(claim, Claim::Acquired, "the idempotency record is gone");
    let enrollment = sim
        .store
        .enrollment("default", "quick", "lead/L1")
        .await
        .expect("enrollment");
    assert_eq!(
        (enrollment.total_enrollments, enrollment.active_runs.len()),
        (1, 0),
        "the enrollment state stays"
    );
    let enrollment = sim
        .store
        .enrollment("default", "slow", "lead/L1")
        .await
        .expect("enrollment");
    assert_eq!(
        enrollment,
        Default::default(),
        "reenroll: always, idle: nothing to keep"
    );
}
