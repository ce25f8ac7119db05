//! The 16 action types (and the two aliases) through the decider: the rendered Perform command,
//! the results (succeeded, failed, uncertain, skipped, duplicate) and the snapshot updates later
//! conditions see.

use crmflow_core::command::{ActionOutcome, Command, CrmCommand, Effect, EmailMessage, HttpRequest, Input};
use crmflow_core::event::Subject;
use crmflow_core::run::{RunStatus, StepStatus, WaitingFor};
use crmflow_tests::given::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One action step `act` followed by an end step.
fn one_action(action_yaml: &str) -> String {
    def(&format!("- id: act\n  action: {action_yaml}\n- id: fin\n  end: {{}}\n"))
}

fn trigger() -> crmflow_core::event::Event {
    event(
        "evt-1",
        "lead.created",
        "2026-03-02T09:00:00Z",
        json!({"name": "Tom & <Jerry>", "amount": 42, "status": "new"}),
    )
}

fn contact() -> Value {
    json!({"email": "ada@example.com", "phone": "+15550001", "first_name": "Ada", "tags": ["lead"]})
}

fn subject() -> Subject {
    Subject {
        record_type: "lead".into(),
        id: "L1".into(),
        contact_id: Some("C1".into()),
    }
}

fn crm(command: &str, params: Value) -> Effect {
    Effect::Crm(CrmCommand {
        command: command.into(),
        subject: subject(),
        params,
    })
}

fn action_cases() -> Vec<(&'static str, &'static str, &'static str, Effect)> {
    vec![
        (
            "send_email",
            r#"{type: send_email, params: {from: "sales@example.com", reply_to: "help@example.com", subject: "Hi {{ contact.first_name }}, about {{ record.name }}", html: "<p>{{ record.name }}</p>", text: "{{ record.name }}"}}"#,
            "action:send_email",
            Effect::Email(EmailMessage {
                to: "ada@example.com".into(),
                from: Some("sales@example.com".into()),
                reply_to: Some("help@example.com".into()),
                subject: "Hi Ada, about Tom & <Jerry>".into(),
                html: Some("<p>Tom &amp; &lt;Jerry&gt;</p>".into()),
                text: Some("Tom & <Jerry>".into()),
            }),
        ),
        (
            "send_email with explicit to",
            r#"{type: send_email, params: {to: " {{ record.owner_email | default('owner@example.com') }} ", subject: "S", text: "T"}}"#,
            "action:send_email",
            Effect::Email(EmailMessage {
                to: "owner@example.com".into(),
                from: None,
                reply_to: None,
                subject: "S".into(),
                html: None,
                text: Some("T".into()),
            }),
        ),
        (
            "send_sms",
            r#"{type: send_sms, params: {message: "Hi {{ contact.first_name }} & co"}}"#,
            "action:send_sms",
            crm("send_sms", json!({"to": "+15550001", "message": "Hi Ada & co"})),
        ),
        (
            "update_contact",
            r#"{type: update_contact, params: {fields: {status: customer, score: 5, stamp: "{{ now }}", note: "{{ record.name }}"}}}"#,
            "action:update_contact",
            crm(
                "update_contact",
                json!({"fields": {"status": "customer", "score": 5, "stamp": "2026-03-02T09:00:00Z", "note": "Tom & <Jerry>"}}),
            ),
        ),
        (
            "add_tag",
            "{type: add_tag, params: {tag: VIP}}",
            "action:add_tag",
            crm("add_tag", json!({"tag": "VIP"})),
        ),
        (
            "remove_tag",
            "{type: remove_tag, params: {tag: lead}}",
            "action:remove_tag",
            crm("remove_tag", json!({"tag": "lead"})),
        ),
        (
            "add_to_segment",
            "{type: add_to_segment, params: {segment: newsletter}}",
            "action:add_to_segment",
            crm("add_to_segment", json!({"segment": "newsletter"})),
        ),
        (
            "remove_from_segment",
            "{type: remove_from_segment, params: {segment: newsletter}}",
            "action:remove_from_segment",
            crm("remove_from_segment", json!({"segment": "newsletter"})),
        ),
        (
            "assign (user)",
            "{type: assign, params: {user_id: U7}}",
            "action:assign",
            crm("assign", json!({"user_id": "U7", "queue_id": null})),
        ),
        (
            "assign_to_queue (alias of assign)",
            "{type: assign_to_queue, params: {queue_id: tier-2}}",
            "action:assign",
            crm("assign", json!({"user_id": null, "queue_id": "tier-2"})),
        ),
        (
            "create_task",
            r#"{type: create_task, params: {title: "Call {{ contact.first_name }}", description: "About {{ record.name }}", assignee: rep-1, due_in: 2d}}"#,
            "action:create_task",
            crm(
                "create_task",
                json!({"title": "Call Ada", "description": "About Tom & <Jerry>", "assignee": "rep-1", "due_in_seconds": 172800}),
            ),
        ),
        (
            "create_ticket",
            r#"{type: create_ticket, params: {subject: "Problem for {{ contact.first_name }}", priority: high, queue_id: support}}"#,
            "action:create_ticket",
            crm(
                "create_ticket",
                json!({"subject": "Problem for Ada", "description": null, "priority": "high", "queue_id": "support"}),
            ),
        ),
        (
            "create_lead",
            r#"{type: create_lead, params: {fields: {source: referral, referrer: "{{ contact.email }}", value: 10}}}"#,
            "action:create_lead",
            crm(
                "create_lead",
                json!({"fields": {"source": "referral", "referrer": "ada@example.com", "value": 10}}),
            ),
        ),
        (
            "update_lead_status",
            "{type: update_lead_status, params: {status: qualified}}",
            "action:update_lead_status",
            crm("update_lead_status", json!({"status": "qualified"})),
        ),
        (
            "notify",
            r#"{type: notify, params: {channel: slack, message: "New lead {{ record.name }} ({{ record.amount }})", url: "https://hooks.example.com/{{ record.amount }}"}}"#,
            "action:notify",
            Effect::Notify {
                channel: "slack".into(),
                message: "New lead Tom & <Jerry> (42)".into(),
                url: Some("https://hooks.example.com/42".into()),
            },
        ),
        (
            "send_notification (alias of notify)",
            r#"{type: send_notification, params: {channel: sales, message: "Hi"}}"#,
            "action:notify",
            Effect::Notify {
                channel: "sales".into(),
                message: "Hi".into(),
                url: None,
            },
        ),
        (
            "webhook",
            r#"{type: webhook, params: {method: put, url: "https://api.example.com/leads/{{ run.subject.id }}?amount={{ record.amount }}", headers: {Authorization: "Bearer abc", X-Contact: "{{ contact.first_name }}"}, body: '{"name": "{{ record.name }}", "email": "{{ contact.email }}"}'}}"#,
            "action:webhook",
            Effect::Webhook(HttpRequest {
                method: "PUT".into(),
                url: "https://api.example.com/leads/L1?amount=42".into(),
                headers: BTreeMap::from([
                    ("Authorization".to_string(), "Bearer abc".to_string()),
                    ("X-Contact".to_string(), "Ada".to_string()),
                ]),
                body: Some(r#"{"name": "Tom & <Jerry>", "email": "ada@example.com"}"#.into()),
            }),
        ),
        (
            "webhook default method",
            r#"{type: webhook, params: {url: "https://api.example.com/x"}}"#,
            "action:webhook",
            Effect::Webhook(HttpRequest {
                method: "POST".into(),
                url: "https://api.example.com/x".into(),
                headers: BTreeMap::new(),
                body: None,
            }),
        ),
        (
            "enroll",
            "{type: enroll, params: {automation_id: nurture}}",
            "action:enroll",
            Effect::Enroll {
                automation_id: "nurture".into(),
            },
        ),
        (
            "cancel_automations",
            "{type: cancel_automations, params: {automation_ids: [nurture, onboarding]}}",
            "action:cancel_automations",
            Effect::CancelAutomations {
                automation_ids: vec!["nurture".into(), "onboarding".into()],
            },
        ),
        (
            "cancel_automations (all others)",
            "{type: cancel_automations, params: {}}",
            "action:cancel_automations",
            Effect::CancelAutomations { automation_ids: vec![] },
        ),
    ]
}

#[test]
fn every_action_type_renders_its_effect() {
    let cases = action_cases();
    let types: Vec<&str> = cases.iter().map(|c| c.2).collect();
    for t in [
        "send_email",
        "send_sms",
        "update_contact",
        "add_tag",
        "remove_tag",
        "add_to_segment",
        "remove_from_segment",
        "assign",
        "create_task",
        "create_ticket",
        "create_lead",
        "update_lead_status",
        "notify",
        "webhook",
        "enroll",
        "cancel_automations",
    ] {
        assert!(types.contains(&format!("action:{t}").as_str()), "no case for {t}");
    }

    for (case, action, step_type, want) in cases {
        let mut h = Harness::new(&one_action(action), &trigger(), contact());
        let d = h.start();
        assert_eq!(
            records_of(&d),
            vec![("act".into(), step_type.into(), StepStatus::Running)],
            "{case}: record"
        );
        assert_eq!(d.commands.len(), 1, "{case}: only the Perform: {:?}", d.commands);
        let p = perform(&d);
        assert_eq!(p.effect, want, "{case}: effect");
        assert_eq!(p.tenant, "default", "{case}: tenant");
        assert_eq!(p.run_id, "run-1", "{case}: run id");
        assert_eq!(p.automation_id, "t", "{case}: automation id");
        assert_eq!(p.step_id, "act", "{case}: step id");
        assert_eq!((p.seq, p.attempt), (0, 1), "{case}: seq and attempt");
        assert_eq!(p.idempotency_key, "run-1.0", "{case}: idempotency key");
        assert_eq!(
            d.records[0].detail,
            crmflow_core::decider::describe_effect(&want),
            "{case}: record detail describes the effect"
        );
        assert_eq!(
            h.waiting_for(),
            Some(WaitingFor::Action {
                idempotency_key: "run-1.0".into()
            }),
            "{case}: waits for the result"
        );

        // Succeeded: advances.
        let d = h.outcome(ActionOutcome::Succeeded {
            output: json!({"provider_id": "p-1"}),
        });
        assert_eq!(
            records_of(&d),
            vec![
                ("act".into(), step_type.into(), StepStatus::Completed),
                ("fin".into(), "end".into(), StepStatus::Completed)
            ],
            "{case}: after success"
        );
        assert_eq!(d.run.status, RunStatus::Completed, "{case}: completed");
        assert_eq!(
            h.record("act").output,
            Some(json!({"provider_id": "p-1"})),
            "{case}: output kept"
        );
        assert_eq!(
            h.run.data.steps["act"],
            json!({"status": "completed", "output": {"provider_id": "p-1"}}),
            "{case}: steps.act"
        );
    }
}

#[test]
fn idempotency_key_is_run_id_dot_seq() {
    let mut h = Harness::new(
        &def(r#"
- id: check
  branch:
    if: {field: amount, op: gt, value: 1}
    then:
    - id: first
      action: {type: add_tag, params: {tag: a}}
- id: second
  action: {type: webhook, params: {url: "https://example.com"}}
"#),
        &trigger(),
        contact(),
    );
    let d = h.start();
    assert_eq!(perform(&d).idempotency_key, "run-1.1", "after one instant step: seq 1");
    assert_eq!(perform(&d).seq, 1);
    let d = h.succeed();
    assert_eq!(perform(&d).idempotency_key, "run-1.2", "the next action: seq 2");
    assert_eq!(perform(&d).step_id, "second");
}

#[test]
fn successful_crm_actions_update_the_snapshot_for_later_branches() {
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "add_tag → contact.tags contains",
            "{type: add_tag, params: {tag: Clicked}}",
            "{field: contact.tags, op: contains, value: Clicked}",
        ),
        (
            "remove_tag → contact.tags not_contains",
            "{type: remove_tag, params: {tag: lead}}",
            "{field: contact.tags, op: not_contains, value: lead}",
        ),
        (
            "add_to_segment → contact.segments contains",
            "{type: add_to_segment, params: {segment: newsletter}}",
            "{field: contact.segments, op: contains, value: newsletter}",
        ),
        (
            "update_contact → contact field",
            r#"{type: update_contact, params: {fields: {lifecycle: "customer-{{ record.amount }}"}}}"#,
            "{field: contact.lifecycle, op: equals, value: customer-42}",
        ),
        (
            "update_lead_status → record.status",
            "{type: update_lead_status, params: {status: qualified}}",
            "{field: record.status, op: equals, value: qualified}",
        ),
        (
            "assign → record.assigned_queue_id",
            "{type: assign, params: {queue_id: sales}}",
            "{field: record.assigned_queue_id, op: equals, value: sales}",
        ),
    ];
    for (case, action, condition) in cases {
        let definition = def(&format!(
            "- id: act\n  action: {action}\n- id: check\n  branch:\n    if: {condition}\n    then:\n    - id: yes\n      end: {{}}\n    else:\n    - id: no\n      end: {{}}\n"
        ));
        // Before the action the condition is false.
        let pre = def(&format!(
            "- id: check\n  branch:\n    if: {condition}\n    then:\n    - id: yes\n      end: {{}}\n    else:\n    - id: no\n      end: {{}}\n"
        ));
        let mut before = Harness::new(&pre, &trigger(), contact());
        assert_eq!(
            before.start().records[1].step_id,
            "no",
            "{case}: false before the action"
        );

        let mut h = Harness::new(&definition, &trigger(), contact());
        h.start();
        let d = h.succeed();
        assert!(
            d.records[1].detail.starts_with("took then"),
            "{case}: the branch sees the change: {}",
            d.records[1].detail
        );
        assert_eq!(d.records[2].step_id, "yes", "{case}");
    }
}

#[test]
fn failed_uncertain_and_skipped_results() {
    let two = def(r#"
- id: act
  action: {type: webhook, params: {url: "https://example.com"}}
- id: next
  action: {type: add_tag, params: {tag: next}}
"#);
    let tolerant = def(r#"
- id: act
  action: {type: webhook, params: {url: "https://example.com"}}
  continue_on_error: true
- id: next
  action: {type: add_tag, params: {tag: next}}
"#);

    // Failed: the run fails.
    let mut h = Harness::new(&two, &trigger(), contact());
    h.start();
    let d = h.outcome(ActionOutcome::Failed {
        error: "POST https://example.com answered 400: bad".into(),
    });
    assert_eq!(
        records_of(&d),
        vec![("act".into(), "action:webhook".into(), StepStatus::Failed)],
        "failed: record"
    );
    assert_eq!(
        d.records[0].error.as_deref(),
        Some("POST https://example.com answered 400: bad"),
        "failed: error kept"
    );
    assert_eq!(
        d.commands,
        vec![Command::Fail {
            reason: "step \"act\" failed: POST https://example.com answered 400: bad".into()
        }],
        "failed: Fail command"
    );
    assert_eq!(d.run.status, RunStatus::Failed, "failed: run failed");

    // Failed with continue_on_error: goes on.
    let mut h = Harness::new(&tolerant, &trigger(), contact());
    h.start();
    let d = h.outcome(ActionOutcome::Failed { error: "boom".into() });
    assert_eq!(
        records_of(&d),
        vec![
            ("act".into(), "action:webhook".into(), StepStatus::Failed),
            ("next".into(), "action:add_tag".into(), StepStatus::Running)
        ],
        "continue_on_error: records"
    );
    assert_eq!(d.run.status, RunStatus::Running, "continue_on_error: the run goes on");
    assert!(matches!(d.commands[..], [Command::Perform(_)]), "{:?}", d.commands);
    assert_eq!(h.run.data.steps["act"]["status"], json!("failed"), "steps.act.status");

    // Uncertain: recorded, the run goes on.
    let mut h = Harness::new(&two, &trigger(), contact());
    h.start();
    let d = h.outcome(ActionOutcome::Uncertain {
        detail: "may have been sent".into(),
    });
    assert_eq!(
        records_of(&d),
        vec![
            ("act".into(), "action:webhook".into(), StepStatus::Uncertain),
            ("next".into(), "action:add_tag".into(), StepStatus::Running)
        ],
        "uncertain: records"
    );
    assert!(
        d.records[0].detail.ends_with("not repeated: may have been sent"),
        "uncertain: {}",
        d.records[0].detail
    );

    // Skipped: recorded with a reason, the run goes on.
    let mut h = Harness::new(&two, &trigger(), contact());
    h.start();
    let d = h.outcome(ActionOutcome::Skipped {
        reason: "dry run".into(),
    });
    assert_eq!(d.records[0].status, StepStatus::Skipped, "skipped: status");
    assert!(
        d.records[0]
            .skip_reason
            .as_deref()
            .unwrap_or("")
            .ends_with("skipped: dry run"),
        "skipped: reason {:?}",
        d.records[0].skip_reason
    );
    assert_eq!(d.records[1].step_id, "next", "skipped: goes on");

    // The attempt count of the result is kept on the record.
    let mut h = Harness::new(&two, &trigger(), contact());
    h.start();
    let input = Input::ActionResult {
        step_id: "act".into(),
        seq: 0,
        attempt: 3,
        outcome: ActionOutcome::Succeeded { output: json!({}) },
    };
    let d = h.feed(input.clone());
    assert_eq!(d.records[0].attempt, 3, "attempts recorded");
    // A duplicate result is a no-op.
    assert!(h.peek(&input).is_noop(&h.run), "duplicate ActionResult: no-op");
}

#[test]
fn a_template_error_fails_the_step_before_anything_is_sent() {
    let strict = def(r#"
- id: act
  action: {type: send_email, params: {subject: "Hi {{ contact.frist_name }}", text: "x"}}
- id: next
  action: {type: add_tag, params: {tag: next}}
"#);
    let mut h = Harness::new(&strict, &trigger(), contact());
    let d = h.start();
    assert!(
        !d.commands.iter().any(|c| matches!(c, Command::Perform(_))),
        "nothing performed: {:?}",
        d.commands
    );
    assert_eq!(d.records[0].status, StepStatus::Failed);
    assert_eq!(d.records[0].detail, "could not prepare the action");
    assert!(
        d.records[0]
            .error
            .as_deref()
            .unwrap_or("")
            .starts_with("params.subject: template error"),
        "{:?}",
        d.records[0].error
    );
    assert_eq!(d.run.status, RunStatus::Failed);

    // With continue_on_error the run goes on to the next step.
    let tolerant = strict.replace("text: \"x\"}}\n", "text: \"x\"}}\n  continue_on_error: true\n");
    let mut h = Harness::new(&tolerant, &trigger(), contact());
    let d = h.start();
    assert_eq!(d.records[0].status, StepStatus::Failed);
    assert_eq!(d.records[1].step_id, "next", "continue_on_error after a render error");
    assert_eq!(d.run.status, RunStatus::Running);
}

#[test]
fn enroll_is_refused_past_max_enroll_depth() {
    let definition = def_with(
        "limits: {max_enroll_depth: 2}",
        "- id: again\n  action: {type: enroll, params: {automation_id: t}}\n",
    );
    for (depth, refused) in [(0, false), (1, false), (2, true), (3, true)] {
        let mut h = Harness::new(&definition, &trigger(), contact());
        h.run.enroll_depth = depth;
        let d = h.start();
        if refused {
            assert_eq!(d.run.status, RunStatus::Failed, "depth {depth}: run fails");
            assert_eq!(d.records[0].status, StepStatus::Failed, "depth {depth}: step failed");
            let error = d.records[0].error.clone().unwrap_or_default();
            assert!(
                error.starts_with("enroll chain too deep"),
                "depth {depth}: error {error}"
            );
            assert!(
                !d.commands.iter().any(|c| matches!(c, Command::Perform(_))),
                "depth {depth}: nothing performed"
            );
        } else {
            assert_eq!(
                effect(&d),
                &Effect::Enroll {
                    automation_id: "t".into()
                },
                "depth {depth}: enroll performed"
            );
        }
    }
}

#[test]
fn an_event_during_an_action_is_deferred_to_its_result() {
    // The run waits for an action when the reply arrives; the reply must still count.
    let mut h = Harness::new(
        &def(r#"
- id: act
  action: {type: send_email, params: {subject: S, text: T}}
- id: await
  wait_for_event:
    event: message.received
    timeout: 1d
    on_timeout:
    - id: late
      end: {reason: no reply}
- id: replied
  end: {reason: replied}
"#),
        &trigger(),
        contact(),
    );
    h.start();
    let reply = event("evt-2", "message.received", "2026-03-02T09:00:05Z", json!({}));
    let d = h.event(reply);
    assert!(d.commands.is_empty(), "deferred: nothing yet");
    h.at("2026-03-02T09:01:00Z");
    let d = h.succeed();
    assert_eq!(
        d.run.status,
        RunStatus::Completed,
        "the deferred reply completes the wait"
    );
    h.assert_path(
        "deferred event",
        &[
            ("act", StepStatus::Completed),
            ("await", StepStatus::Completed),
            ("replied", StepStatus::Completed),
        ],
    );
    // The wait's timer was scheduled then cancelled in the same decision.
    assert_eq!(
        d.commands[..2],
        [
            Command::ScheduleTimer {
                timer_id: "run-1.1".into(),
                due_at: ts("2026-03-03T09:01:00Z")
            },
            Command::CancelTimer {
                timer_id: "run-1.1".into(),
                due_at: ts("2026-03-03T09:01:00Z")
            }
        ],
        "{:?}",
        d.commands
    );
}

/// A reply that arrives while an action is out is deferred; if the decision after the action's
/// result has to yield (more than MAX_STEPS_PER_DECISION instant steps), the deferred reply must
/// still be applied once the run continues and reaches the wait for it.
#[test]
fn an_event_deferred_across_a_yield_is_still_applied() {
    let mut steps = String::from("- id: act\n  action: {type: send_email, params: {subject: S, text: T}}\n");
    for i in 1..=45 {
        let next = if i == 45 {
            "await".to_string()
        } else {
            format!("g{}", i + 1)
        };
        steps.push_str(&format!("- id: g{i}\n  goto: {next}\n"));
    }
    steps.push_str(
        "- id: await\n  wait_for_event:\n    event: message.received\n    timeout: 1d\n    on_timeout:\n    - id: late\n      end: {reason: no reply}\n- id: replied\n  end: {reason: replied}\n",
    );
    let mut h = Harness::new(&def(&steps), &trigger(), contact());
    h.start();
    let d = h.event(event("evt-2", "message.received", "2026-03-02T09:00:05Z", json!({})));
    assert!(d.commands.is_empty(), "deferred while the email is out");
    let d = h.succeed();
    assert_eq!(d.commands, vec![Command::Continue], "the chain of gotos yields");
    let d = h.feed(Input::Continue);
    assert_eq!(
        h.run.status,
        RunStatus::Completed,
        "the deferred reply completes the wait; commands {:?}, deferred {:?}",
        d.commands,
        h.run.deferred_events.iter().map(|e| &e.id).collect::<Vec<_>>()
    );
    assert_eq!(h.record("await").status, StepStatus::Completed);
    assert_eq!(h.record("replied").status, StepStatus::Completed);
    assert!(h.run.deferred_events.is_empty(), "nothing left deferred");
}

/// `mode: sandbox`: the run is a dry run; an external effect is rendered into the history as a
/// dry-run skip and never handed to execute, the run goes on, and later steps see the skip.
#[test]
fn a_sandbox_run_records_each_effect_it_would_have_had_and_performs_none() {
    let yaml = def_with(
        "mode: sandbox",
        r#"
- id: act
  action: {type: send_email, params: {subject: "Hi {{ contact.first_name }}", text: "{{ record.name }}"}}
- id: hook
  action: {type: webhook, params: {url: "https://example.com/hook", method: POST}}
- id: check
  branch:
    if: {field: steps.act.status, operator: equals, value: skipped}
    then: [{id: seen, end: {}}]
- id: fin
  end: {}
"#,
    );
    let mut h = Harness::new(&yaml, &trigger(), contact());
    assert!(h.run.dry_run, "a sandbox automation's run is a dry run");
    let d = h.start();
    assert!(
        !d.commands.iter().any(|c| matches!(c, Command::Perform(_))),
        "nothing is handed to execute: {:?}",
        d.commands
    );
    assert_eq!(run_status(&d), RunStatus::Completed);
    h.assert_path(
        "sandbox",
        &[
            ("act", StepStatus::Skipped),
            ("hook", StepStatus::Skipped),
            ("check", StepStatus::Completed),
            ("seen", StepStatus::Completed),
        ],
    );
    let email = h.record("act");
    assert_eq!(email.skip_reason.as_deref(), Some("dry run"));
    assert!(
        email.detail.contains("email to ada@example.com: \"Hi Ada\""),
        "{}",
        email.detail
    );
    let output = email.output.as_ref().expect("the rendered effect");
    assert_eq!(output["dry_run"], json!(true));
    assert_eq!(output["effect"]["effect"], json!("email"));
    assert_eq!(output["effect"]["to"], json!("ada@example.com"));
    assert_eq!(output["effect"]["text"], json!("Tom & <Jerry>"));
    assert_eq!(
        h.record("hook").output.as_ref().expect("rendered")["effect"]["url"],
        json!("https://example.com/hook")
    );

    // The same definition live performs the email.
    let live = yaml.replace("mode: sandbox", "mode: live");
    let mut h = Harness::new(&live, &trigger(), contact());
    assert!(!h.run.dry_run);
    let d = h.start();
    assert!(matches!(effect(&d), Effect::Email(_)), "live: the email is performed");
}
