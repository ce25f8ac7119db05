//! End-to-end tests of the four Lambda functions against a local AWS-protocol server (moto):
//! the handlers run as Lambda would run them (SQS event source mappings with partial batch
//! responses, the scheduled resume sweep), through `crmflow_aws::lambda::harness`.
//!
//! ```sh
//! scripts/test-e2e.sh            # starts its own moto, runs these tests, stops it
//! ```
//!
//! Without `AWS_ENDPOINT_URL` every test prints "skipped: ..." and returns, unless
//! `CRMFLOW_REQUIRE_LOCAL_AWS=1` (the test scripts set it), which makes that a failure. Each test creates its
//! own table, queues and sender identity under a unique prefix, so they run in parallel.

use crmflow_aws::lambda::FunctionName;
use crmflow_core::command::EmailMessage;
use crmflow_core::ports::{OutboundCrmCommand, RunStore};
use crmflow_core::run::{RunStatus, StepStatus};
use crmflow_core::simulate::{RunReport, SimulationOptions, Simulator};
use crmflow_tests::e2e::{self, Ctx};
use crmflow_tests::harness::{CrashPoint, Duplicates, Harness, HarnessOptions, PumpReport};
use crmflow_tests::setup_or_skip;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

fn hours(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n)
}

fn assert_no_failures(report: &PumpReport, what: &str) {
    assert!(
        report.failed.is_empty() && report.crashes.is_empty(),
        "{what}: records failed: {report:?}"
    );
}

/// Two JSON values are equal, except that timestamps may differ by up to two minutes (the
/// harness clock flows in real time, the simulator's does not).
fn json_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            x == y
                || match (x.parse::<Timestamp>(), y.parse::<Timestamp>()) {
                    (Ok(p), Ok(q)) => p.duration_since(q).abs() < SignedDuration::from_secs(120),
                    _ => false,
                }
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_close(v, w)),
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------
// The examples

/// Drives the example events through AWS in time order, firing the long timers due before each
/// event, then runs on for 30 days.
async fn drive_examples(h: &Harness, send_twice: bool) -> PumpReport {
    let programs = e2e::example_programs();
    e2e::load(h, &programs).await;
    let events = e2e::example_events();
    let mut report = PumpReport::default();
    for (raw, event) in &events {
        // Timers due before the event fire first (the simulator handles an event before timers
        // due at the same instant; no example depends on that order).
        let r = h.advance_to(event.time).await.expect("advance");
        merge(&mut report, r);
        h.send_event(raw).await.expect("send event");
        if send_twice {
            h.send_event(raw).await.expect("send event again");
        }
        merge(&mut report, h.pump().await.expect("pump"));
    }
    let last = events.last().expect("events").1.time;
    merge(&mut report, h.advance_to(last + hours(24 * 30)).await.expect("advance"));
    report
}

fn merge(into: &mut PumpReport, r: PumpReport) {
    for (f, n) in r.handled {
        *into.handled.entry(f).or_default() += n;
    }
    for (f, n) in r.failed {
        *into.failed.entry(f).or_default() += n;
    }
    into.crashes.extend(r.crashes);
}

/// The embedded simulation of the same input (the events with their contact snapshots).
async fn simulate_examples() -> (Simulator, Vec<RunReport>) {
    let events = e2e::example_events().into_iter().map(|(_, e)| e).collect();
    let options = SimulationOptions {
        log_effects: true,
        ..SimulationOptions::default()
    };
    let mut sim = Simulator::new(e2e::example_programs(), HashMap::new(), options);
    let reports = sim.run(events).await;
    assert!(sim.errors.is_empty(), "simulation errors: {:?}", sim.errors);
    (sim, reports)
}

/// Runs, emails and CRM commands on AWS match the simulation; nothing was sent twice. With
/// `read_moto`, the emails are also read back from moto's own record (`/moto-api/data.json`,
/// which serialises the whole server: slow once it holds much, so only one test reads it).
async fn assert_examples_match_simulation(ctx: &Ctx, (sim, expected): &(Simulator, Vec<RunReport>), read_moto: bool) {
    let h = &ctx.h;
    let ids: Vec<String> = e2e::example_programs().iter().map(|p| p.id().to_string()).collect();
    let aws = e2e::aws_reports(h, "default", &ids).await;
    assert!(expected.len() >= 10, "the examples make runs: {}", expected.len());
    e2e::assert_same_runs(&aws, expected);

    // Emails: exactly the simulated ones, each once.
    let mut simulated: Vec<(String, String)> = sim
        .email
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|(_, e): &(String, EmailMessage)| (e.to.clone(), e.subject.clone()))
        .collect();
    simulated.sort();
    assert_eq!(
        e2e::accepted_emails(h),
        simulated,
        "SendEmail requests SES accepted (to, subject)"
    );
    if read_moto {
        let sent = e2e::ses_emails(&ctx.endpoint, &h.resources().sender).await;
        let on_aws: Vec<(String, String)> = sent.iter().map(|e| (e.to.clone(), e.subject.clone())).collect();
        assert_eq!(on_aws, simulated, "SES messages moto recorded (to, subject)");
        assert!(sent.iter().all(|e| !e.body.is_empty()));
    }

    // CRM commands: the simulated ones, one message per idempotency key.
    let messages = e2e::crm_commands(h).await;
    let by_key = e2e::by_key(&messages);
    let simulated: BTreeMap<String, OutboundCrmCommand> = sim
        .crm
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|c| (c.idempotency_key.clone(), c.clone()))
        .collect();
    assert_eq!(
        by_key.keys().collect::<Vec<_>>(),
        simulated.keys().collect::<Vec<_>>(),
        "CRM command idempotency keys"
    );
    for (key, copies) in &by_key {
        assert_eq!(
            copies.len(),
            1,
            "CRM command {key} sent {} times: {:?}",
            copies.len(),
            copies.iter().map(|c| &c.body).collect::<Vec<_>>()
        );
        let (got, want) = (&copies[0].command, &simulated[key]);
        assert_eq!(
            (&got.command.command, &got.command.subject, &got.run_id, &got.step_id),
            (
                &want.command.command,
                &want.command.subject,
                &want.run_id,
                &want.step_id
            ),
            "{key}"
        );
        assert!(
            json_close(&got.command.params, &want.command.params),
            "{key}: params {} vs simulated {}",
            got.command.params,
            want.command.params
        );
    }
    e2e::assert_dead_letter_queues_empty(h).await;
}

/// Long waits went through DynamoDB timer items and the sweep.
fn assert_long_waits_were_swept(h: &Harness) {
    let timer_puts = h
        .function(FunctionName::Evaluate)
        .wire
        .calls()
        .iter()
        .filter(|c| c.operation == "PutItem" && c.keys.iter().any(|k| k.starts_with("DUE#")))
        .count();
    let swept = h.function(FunctionName::Resume).counter.get("SQS", "SendMessageBatch");
    assert!(timer_puts > 0, "long timers were stored");
    assert!(swept > 0, "the sweep moved timers");
}

#[tokio::test]
async fn examples_run_on_aws_as_simulated() {
    let ctx = setup_or_skip!(
        "examples",
        HarnessOptions {
            start: e2e::ts("2026-03-02T07:00:00Z"),
            ..HarnessOptions::default()
        }
    );
    let report = drive_examples(&ctx.h, false).await;
    assert_no_failures(&report, "examples");
    let simulated = simulate_examples().await;
    assert_examples_match_simulation(&ctx, &simulated, true).await;
    assert_long_waits_were_swept(&ctx.h);
    e2e::assert_permissions(&ctx.h);
    e2e::print_overhead(&ctx.h);
}

#[tokio::test]
async fn duplicate_deliveries_change_nothing() {
    let ctx = setup_or_skip!(
        "duplicates",
        HarnessOptions {
            start: e2e::ts("2026-03-02T07:00:00Z"),
            duplicates: Duplicates::Redeliver,
            ..HarnessOptions::default()
        }
    );
    // Every event is sent twice (a producer retry), and every message of every queue is
    // delivered twice (not deleted after its first successful delivery).
    let report = drive_examples(&ctx.h, true).await;
    assert_no_failures(&report, "duplicates");
    let events = e2e::example_events().len();
    assert!(
        report.handled[&FunctionName::Intake] >= 4 * events,
        "each event was handled four times: {report:?}"
    );
    let simulated = simulate_examples().await;
    assert_examples_match_simulation(&ctx, &simulated, false).await;
    e2e::assert_permissions(&ctx.h);
    e2e::print_overhead(&ctx.h);
}

// ---------------------------------------------------------------------------------------------
// Crash points

/// An email, a long wait, a CRM command and a webhook to the local receiver.
fn crash_flow(receiver: &str) -> String {
    format!(
        r#"
id: crash-flow
name: Crash flow
status: active
trigger: {{ event: order.placed }}
steps:
  - id: confirm-email
    action:
      type: send_email
      params: {{ subject: "Order {{{{ record.id }}}} confirmed", text: "Thanks for order {{{{ record.id }}}}." }}
  - id: wait-2h
    wait: {{ duration: 2h }}
  - id: tag
    action: {{ type: add_tag, params: {{ tag: ordered }} }}
  - id: hook
    action:
      type: webhook
      params:
        url: "{receiver}/orders/{{{{ record.id }}}}"
        body: '{{"order": "{{{{ record.id }}}}"}}'
"#
    )
}

fn order_event(order: &str, at: Timestamp) -> String {
    json!({
        "id": format!("evt-{order}"),
        "type": "order.placed",
        "time": at.to_string(),
        "subject": { "type": "order", "id": order, "contact_id": format!("C-{order}") },
        "data": { "id": order, "total": 42 },
        "contact": { "email": format!("{}@example.com", order.to_lowercase()), "first_name": "Buyer" },
    })
    .to_string()
}

/// What one order's run did.
#[derive(Debug)]
struct OrderOutcome {
    crash: Option<(FunctionName, u32)>,
    crashed_at: Vec<String>,
    email_status: StepStatus,
    emails: usize,
    crm: usize,
    webhooks: usize,
}

/// Places one order (crashing `crash` = (function, k): right after that function's k-th call
/// from now), lets redelivery and the sweep finish it, and checks that it completed with every
/// effect done once, except what the uncertain policies allow.
async fn place_order(
    ctx: &Ctx,
    receiver: &e2e::Receiver,
    order: &str,
    crash: Option<(FunctionName, u32)>,
) -> OrderOutcome {
    let h = &ctx.h;
    if let Some((f, k)) = crash {
        h.function(f).wire.arm_crash(CrashPoint {
            nth: k,
            operation: None,
        });
    }
    let at = h.now();
    h.send_event(&order_event(order, at)).await.expect("send");
    let mut report = h.pump().await.expect("pump");
    merge(
        &mut report,
        h.advance_to(h.now() + hours(2) + SignedDuration::from_secs(60))
            .await
            .expect("advance"),
    );
    if let Some((f, k)) = crash {
        assert!(!h.function(f).wire.armed(), "{f} call {k} was reached for {order}");
        assert_eq!(report.crashes.len(), 1, "{order}: {report:?}");
    }
    let what = format!("{order} (crash {crash:?}: {:?})", report.crashes);
    let run_id = crmflow_core::ids::run_id_for("default", &format!("evt-{order}"), "crash-flow", at);
    let run = &e2e::report_of(h, "default", &run_id).await;
    assert_eq!(run.status, RunStatus::Completed, "{what}: {}", run.to_text());
    let ids: Vec<&str> = run.steps.iter().map(|s| s.step_id.as_str()).collect();
    assert_eq!(
        ids,
        ["confirm-email", "wait-2h", "tag", "hook"],
        "{what}: {}",
        run.to_text()
    );
    let email_status = run.steps[0].status;
    for s in &run.steps[1..] {
        assert_eq!(s.status, StepStatus::Completed, "{what}: {}", run.to_text());
    }
    // Effects are performed by execute, and by evaluate for the actions it performs in place:
    // a crash in either may stop one mid-way.
    let mid_effect = matches!(crash, Some((FunctionName::Execute | FunctionName::Evaluate, _)));

    // Email: once; not resent after a crash mid-send (uncertain: sent once or not at all).
    let to = format!("{}@example.com", order.to_lowercase());
    let emails = e2e::accepted_emails(h).into_iter().filter(|(t, _)| *t == to).count();
    match email_status {
        StepStatus::Completed => assert_eq!(emails, 1, "{what}"),
        StepStatus::Uncertain => {
            assert!(mid_effect, "{what}: uncertain without a crash in evaluate or execute");
            assert!(emails <= 1, "{what}: {emails} emails");
        }
        other => panic!("{what}: email step {other:?}"),
    }

    // CRM command: once, or (a crash in evaluate or execute right after sending it) resent with
    // the same key.
    let messages = e2e::crm_commands(h).await;
    let keys = e2e::by_key(&messages);
    assert_eq!(keys.len(), 1, "{what}: one CRM command: {keys:?}");
    let copies = keys.values().next().expect("a key");
    assert!(
        copies.iter().all(|c| c.body == copies[0].body),
        "{what}: resent identically"
    );
    assert!(
        copies.len() == 1 || mid_effect && copies.len() == 2,
        "{what}: {} copies",
        copies.len()
    );
    assert_eq!(copies[0].command.run_id, run.run_id);

    // Webhook: once, or repeated with the same Idempotency-Key.
    let hits: Vec<e2e::Hit> = receiver
        .hits()
        .into_iter()
        .filter(|hit| hit.path == format!("/orders/{order}"))
        .collect();
    assert!(!hits.is_empty(), "{what}: webhook called");
    assert!(hits.len() == 1 || mid_effect, "{what}: {} webhook calls", hits.len());
    let key = hits[0].idempotency_key.clone().expect("Idempotency-Key header");
    assert!(key.starts_with(&run.run_id), "{what}: key {key}");
    assert!(
        hits.iter()
            .all(|hit| hit.idempotency_key.as_deref() == Some(key.as_str())),
        "{what}: the same Idempotency-Key every time: {hits:?}"
    );
    OrderOutcome {
        crash,
        crashed_at: report.crashes,
        email_status,
        emails,
        crm: copies.len(),
        webhooks: hits.len(),
    }
}

#[tokio::test]
async fn a_crash_after_any_call_is_recovered_without_repeating_effects() {
    let receiver = e2e::receiver().await;
    let ctx = setup_or_skip!(
        "crash",
        HarnessOptions {
            start: e2e::ts("2026-04-01T09:00:00Z"),
            allow_private_webhooks: true,
            ..HarnessOptions::default()
        }
    );
    let h = &ctx.h;
    e2e::load(h, &[e2e::program(&crash_flow(&receiver.base_url))]).await;

    // A first order without faults: how many calls each function makes for one run (the
    // webhook counts as one of execute's).
    place_order(&ctx, &receiver, "O-0", None).await; // warms the definition caches
    h.reset_counters();
    let baseline = place_order(&ctx, &receiver, "O-1", None).await;
    assert_eq!(baseline.email_status, StepStatus::Completed);
    let calls: BTreeMap<FunctionName, Vec<String>> = h
        .functions()
        .map(|f| (f.function, f.wire.calls().into_iter().map(|c| c.operation).collect()))
        .collect();
    println!("calls per run: {calls:?}");

    // Then a crash after each call of evaluate and execute, one order each. In intake and
    // resume only after their writes: a crash after a read leaves what a crash after the write
    // before it leaves (or nothing at all).
    let mut outcomes = Vec::new();
    for (f, operations) in &calls {
        for (i, operation) in operations.iter().enumerate() {
            let read = matches!(operation.as_str(), "GetItem" | "Query");
            if read && matches!(f, FunctionName::Intake | FunctionName::Resume) {
                continue;
            }
            let k = i as u32 + 1;
            let order = format!("O-{}-{k}", f.as_str());
            outcomes.push(place_order(&ctx, &receiver, &order, Some((*f, k))).await);
        }
    }
    println!("crash point                      email       sent crm webhook");
    for o in &outcomes {
        let (f, k) = o.crash.expect("crash");
        println!(
            "{:<9} call {k:>2} {:<40} {:<10} {:>4} {:>3} {:>7}",
            f.as_str(),
            o.crashed_at.join(","),
            o.email_status.as_str(),
            o.emails,
            o.crm,
            o.webhooks
        );
    }
    assert!(
        outcomes.iter().any(|o| o.email_status == StepStatus::Uncertain),
        "some crash left an email uncertain"
    );
    assert!(outcomes.iter().any(|o| o.webhooks > 1), "some crash repeated a webhook");
    e2e::assert_dead_letter_queues_empty(h).await;
    e2e::assert_permissions(h);
    e2e::print_overhead(h);
}

// ---------------------------------------------------------------------------------------------
// Bad input

const WELCOME_LEAD: &str = r#"
id: welcome-lead
name: Welcome lead
status: active
trigger: { event: lead.created }
steps:
  - id: tag
    action: { type: add_tag, params: { tag: new-lead } }
"#;

#[tokio::test]
async fn malformed_events_are_reported_and_end_in_the_dead_letter_queue() {
    let logs = e2e::LogCapture::start();
    let ctx = setup_or_skip!("bad_input", HarnessOptions::default());
    let h = &ctx.h;
    e2e::load(h, &[e2e::program(WELCOME_LEAD)]).await;
    let good = |n: u32| {
        json!({
            "id": format!("good-{n}"), "type": "lead.created", "time": h.now().to_string(),
            "subject": { "type": "lead", "id": format!("L{n}") }, "data": {}
        })
        .to_string()
    };
    let not_json = r#"{"id": "bad-json", "type": "lead.created", "#.to_string();
    let no_subject = json!({ "id": "bad-subject", "type": "lead.created", "time": h.now().to_string() }).to_string();
    for body in [good(1), not_json.clone(), no_subject.clone(), good(2)] {
        h.send_event(&body).await.expect("send");
    }
    // tracing-core caches each callsite's interest: one that another test's thread was
    // registering while this capture's subscriber was being registered can keep the interest
    // computed without it, and its events would not reach the capture. Recompute them all now
    // that the capture is in place.
    tracing::callsite::rebuild_interest_cache();
    let report = h.pump().await.expect("pump");

    // The good events were handled.
    let runs = e2e::aws_reports(h, "default", &["welcome-lead".to_string()]).await;
    let mut records: Vec<&str> = runs.iter().map(|r| r.subject.id.as_str()).collect();
    records.sort();
    assert_eq!(records, ["L1", "L2"]);
    assert!(runs.iter().all(|r| r.status == RunStatus::Completed));

    // Each bad one failed on every delivery and went to the events dead-letter queue after
    // maxReceiveCount (5) receives.
    assert_eq!(report.failed.get(&FunctionName::Intake), Some(&10), "{report:?}");
    let dlq = h.resources().dead_letter_queue_urls["events"].clone();
    let dead = h.drain_queue(&dlq).await.expect("DLQ");
    let mut bodies: Vec<&str> = dead.iter().map(|m| m.body().unwrap_or_default()).collect();
    bodies.sort();
    let mut expected = vec![not_json.as_str(), no_subject.as_str()];
    expected.sort();
    assert_eq!(bodies, expected);
    for m in &dead {
        let receives: u32 = m
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(receives >= 5, "received {receives} times");
    }

    // The handler logged why, naming the problem, with the message id.
    let failures: Vec<Value> = logs
        .lines()
        .into_iter()
        .filter(|l| l["message"] == "record failed; returned to the queue")
        .collect();
    assert_eq!(failures.len(), 10, "one line per failed delivery");
    let reason = |id: &str| {
        failures
            .iter()
            .filter(|l| l["message_id"] == id)
            .map(|l| l["error"].as_str().unwrap_or_default().to_string())
            .collect::<BTreeSet<String>>()
    };
    let ids: BTreeMap<&str, String> = dead
        .iter()
        .map(|m| {
            (
                m.body().unwrap_or_default(),
                m.message_id().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let json_reason = reason(&ids[not_json.as_str()]);
    assert_eq!(json_reason.len(), 1);
    assert!(
        json_reason.iter().all(|r| r.contains("invalid JSON")),
        "{json_reason:?}"
    );
    let subject_reason = reason(&ids[no_subject.as_str()]);
    assert!(
        subject_reason
            .iter()
            .all(|r| r.contains("subject") && r.contains("missing")),
        "{subject_reason:?}"
    );
    assert!(failures.iter().all(|l| l["permanent"] == true));
    e2e::assert_permissions(h);
}

// ---------------------------------------------------------------------------------------------
// Concurrency

const HOLD_ONCE: &str = r#"
id: hold-once
name: Hold once
status: active
trigger: { event: ping }
enrollment: { reenroll: once }
steps:
  - id: hold
    wait_for_event: { event: release, timeout: 1d }
  - id: tag
    action: { type: add_tag, params: { tag: released } }
"#;

const HOLD_SINGLE: &str = r#"
id: hold-single
name: Hold single
status: active
trigger: { event: ping }
enrollment: { reenroll: always, allow_concurrent: false }
steps:
  - id: hold
    wait_for_event: { event: release, timeout: 1d }
"#;

fn ping(id: &str, event_type: &str, at: Timestamp) -> String {
    json!({
        "id": id, "type": event_type, "time": at.to_string(),
        "subject": { "type": "lead", "id": "R1" }, "data": { "last_ping": id }
    })
    .to_string()
}

/// Sends `n` events for record R1 at once and lets 20 concurrent invocations per function work
/// them off.
async fn burst(h: &Harness, prefix: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:02}")).collect();
    for id in &ids {
        h.send_event(&ping(id, "ping", h.now())).await.expect("send");
    }
    let report = h.pump().await.expect("pump");
    println!("{prefix}: {report:?}");
    ids
}

/// A run's history is whole (seqs 0..n) and it absorbed every event routed to it.
async fn assert_consistent(h: &Harness, run_id: &str, events: &[String]) {
    let run = e2e::load_run(h, "default", run_id).await;
    let history = h.store().history("default", run_id).await.expect("history");
    let seqs: Vec<u32> = history.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (0..run.history_len).collect::<Vec<_>>(), "run {run_id}: history");
    let seen: BTreeSet<&String> = run.recent_event_ids.iter().collect();
    let missing: Vec<&String> = events.iter().filter(|e| !seen.contains(e)).collect();
    assert!(
        missing.is_empty(),
        "run {run_id} (v{}) lost events {missing:?}",
        run.version
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_events_for_one_record_lose_nothing_and_respect_enrollment() {
    let ctx = setup_or_skip!(
        "concurrency",
        HarnessOptions {
            start: e2e::ts("2026-05-04T09:00:00Z"),
            batch_size: 1,
            concurrency: 20,
            ..HarnessOptions::default()
        }
    );
    let h = &ctx.h;
    e2e::load(h, &[e2e::program(HOLD_ONCE), e2e::program(HOLD_SINGLE)]).await;
    let ids = vec!["hold-once".to_string(), "hold-single".to_string()];

    // 20 events for the same record, handled concurrently.
    let first = burst(h, "p1", 20).await;
    let runs = e2e::aws_reports(h, "default", &ids).await;
    let once: Vec<_> = runs.iter().filter(|r| r.automation_id == "hold-once").collect();
    let single: Vec<_> = runs.iter().filter(|r| r.automation_id == "hold-single").collect();
    assert_eq!(once.len(), 1, "reenroll once: exactly one run");
    assert_eq!(single.len(), 1, "no concurrent runs: exactly one active run");
    for r in once.iter().chain(&single) {
        assert_eq!(r.status, RunStatus::Waiting);
        // Every other event of the burst reached the run (none lost to a conflicting save).
        let run = e2e::load_run(h, "default", &r.run_id).await;
        let trigger = run.data.trigger["id"].as_str().unwrap_or_default().to_string();
        let others: Vec<String> = first.iter().filter(|e| **e != trigger).cloned().collect();
        assert_consistent(h, &r.run_id, &others).await;
    }
    let state = h
        .store()
        .enrollment("default", "hold-single", "lead/R1")
        .await
        .expect("enrollment");
    assert_eq!(state.active_runs.len(), 1);
    assert_eq!(state.total_enrollments, 1);

    // Release both runs, then another burst: "once" stays at one run, "single" gets its second.
    h.send_event(&ping("release-1", "release", h.now()))
        .await
        .expect("send");
    h.pump().await.expect("pump");
    let second = burst(h, "p2", 10).await;
    let runs = e2e::aws_reports(h, "default", &ids).await;
    assert_eq!(runs.iter().filter(|r| r.automation_id == "hold-once").count(), 1);
    let mut single: Vec<_> = runs.iter().filter(|r| r.automation_id == "hold-single").collect();
    single.sort_by_key(|r| r.started_at);
    assert_eq!(single.len(), 2, "one more run once the first ended");
    assert_eq!(single[0].status, RunStatus::Completed);
    assert_eq!(single[1].status, RunStatus::Waiting);
    assert!(
        single[1].started_at >= single[0].finished_at.expect("finished"),
        "never two active runs"
    );
    let run = e2e::load_run(h, "default", &single[1].run_id).await;
    let trigger = run.data.trigger["id"].as_str().unwrap_or_default().to_string();
    let others: Vec<String> = second.iter().filter(|e| **e != trigger).cloned().collect();
    assert_consistent(h, &single[1].run_id, &others).await;
    let state = h
        .store()
        .enrollment("default", "hold-single", "lead/R1")
        .await
        .expect("enrollment");
    assert_eq!(state.active_runs, vec![single[1].run_id.clone()]);
    assert_eq!(state.total_enrollments, 2);
    e2e::assert_dead_letter_queues_empty(h).await;
    e2e::assert_permissions(h);
    e2e::print_overhead(h);
}

// ---------------------------------------------------------------------------------------------
// Every effect type, both kinds of wait, and the permissions they need

fn everything(receiver: &str) -> Vec<String> {
    vec![
        format!(
            r#"
id: everything
name: Everything
status: active
trigger: {{ event: deal.opened }}
steps:
  - id: welcome
    action: {{ type: send_email, params: {{ subject: "Hello {{{{ contact.first_name }}}}", text: "Hi." }} }}
  - id: short-wait
    wait: {{ duration: 3s }}
  - id: tag
    action: {{ type: add_tag, params: {{ tag: opened }} }}
  - id: notify-url
    action: {{ type: notify, params: {{ channel: deals, message: "Deal {{{{ record.id }}}} opened" }} }}
  - id: notify-crm
    action: {{ type: notify, params: {{ channel: elsewhere, message: "Deal {{{{ record.id }}}}" }} }}
  - id: hook
    action: {{ type: webhook, params: {{ url: "{receiver}/deals/{{{{ record.id }}}}", body: "{{}}" }} }}
  - id: start-follower
    action: {{ type: enroll, params: {{ automation_id: follower }} }}
  - id: stop-bystander
    action: {{ type: cancel_automations, params: {{ automation_ids: [bystander] }} }}
  - id: approval
    human_task: {{ title: "Approve {{{{ record.id }}}}", assignee: managers, timeout: 2d }}
  - id: long-wait
    wait: {{ duration: 2h }}
  - id: done
    action: {{ type: add_tag, params: {{ tag: done }} }}
"#
        ),
        r#"
id: follower
name: Follower
status: active
trigger: { event: follower.started }
steps:
  - id: follow
    action: { type: add_tag, params: { tag: followed } }
"#
        .to_string(),
        r#"
id: bystander
name: Bystander
status: active
trigger: { event: deal.opened }
steps:
  - id: park
    human_task: { title: "Review {{ record.id }}", timeout: 30d }
"#
        .to_string(),
    ]
}

#[tokio::test]
async fn every_effect_and_wait_kind_works_within_the_iam_lists() {
    let receiver = e2e::receiver().await;
    let ctx = setup_or_skip!(
        "everything",
        HarnessOptions {
            start: e2e::ts("2026-06-01T09:00:00Z"),
            allow_private_webhooks: true,
            notify_urls: BTreeMap::from([("deals".to_string(), format!("{}/notify", receiver.base_url))]),
            ..HarnessOptions::default()
        }
    );
    let h = &ctx.h;
    let programs: Vec<_> = everything(&receiver.base_url).iter().map(|y| e2e::program(y)).collect();
    e2e::load(h, &programs).await;
    let subject = json!({ "type": "deal", "id": "D1", "contact_id": "C9" });
    let opened = json!({
        "id": "deal-opened-1", "type": "deal.opened", "time": h.now().to_string(), "subject": subject,
        "data": { "id": "D1", "amount": 1000 }, "contact": { "email": "dana@example.com", "first_name": "Dana" }
    });
    let started = std::time::Instant::now();
    h.send_event(&opened.to_string()).await.expect("send");
    assert_no_failures(&h.pump().await.expect("pump"), "opened");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "the short wait took real seconds"
    );
    let task_done = json!({
        "id": "task-done-1", "type": "task.completed", "time": h.now().to_string(), "subject": subject,
        "data": { "step_id": "approval", "output": { "approved": true } }
    });
    h.send_event(&task_done.to_string()).await.expect("send");
    assert_no_failures(&h.pump().await.expect("pump"), "task");
    let report = h.advance_to(h.now() + hours(3)).await.expect("advance");
    assert_no_failures(&report, "long wait");

    let ids: Vec<String> = ["everything", "follower", "bystander"].map(String::from).to_vec();
    let runs = e2e::aws_reports(h, "default", &ids).await;
    let of = |id: &str| {
        runs.iter()
            .find(|r| r.automation_id == id)
            .unwrap_or_else(|| panic!("no {id} run"))
    };
    let main = of("everything");
    assert_eq!(main.status, RunStatus::Completed, "{}", main.to_text());
    assert!(
        main.steps.iter().all(|s| s.status == StepStatus::Completed),
        "{}",
        main.to_text()
    );
    assert_eq!(main.steps.len(), 11, "{}", main.to_text());
    let short = main.steps[1].started_at;
    assert!(main.steps[2].started_at.duration_since(short) >= SignedDuration::from_secs(3));
    let long = main.steps[9].started_at;
    assert!(main.steps[10].started_at.duration_since(long) >= hours(2));
    assert_eq!(of("follower").status, RunStatus::Completed);
    assert_eq!(of("bystander").status, RunStatus::Cancelled);

    // Short waits are delayed messages; long ones (the task timeout, the 2 h wait, the
    // bystander's 30 d timeout) are timer items, and the ones no longer needed were deleted.
    // Intake stores the timers of the steps a run starts with (the bystander's timeout).
    let mut calls = h.function(FunctionName::Evaluate).wire.calls();
    calls.extend(h.function(FunctionName::Intake).wire.calls());
    let timer_op = |op: &str| {
        calls
            .iter()
            .filter(|c| c.operation == op && c.keys.iter().any(|k| k.starts_with("DUE#")))
            .count()
    };
    assert_eq!(timer_op("PutItem"), 3, "long timers stored");
    assert_eq!(
        timer_op("DeleteItem"),
        2,
        "the task timeout and the bystander's timeout cancelled"
    );

    // Effects: one email; CRM commands for the tags, the channel without a URL, the two tasks
    // (the bystander's withdrawn when it was cancelled) and the follower; the notification and
    // the webhook over HTTP, each once with its key.
    assert_eq!(
        e2e::accepted_emails(h),
        [("dana@example.com".to_string(), "Hello Dana".to_string())]
    );
    let messages = e2e::crm_commands(h).await;
    let mut commands: Vec<String> = e2e::by_key(&messages)
        .values()
        .map(|copies| {
            assert_eq!(copies.len(), 1);
            copies[0].command.command.command.clone()
        })
        .collect();
    commands.sort();
    assert_eq!(
        commands,
        [
            "add_tag",
            "add_tag",
            "add_tag",
            "close_human_task",
            "notify",
            "open_human_task",
            "open_human_task"
        ]
    );
    let task_ids = |name: &str| -> Vec<Value> {
        messages
            .iter()
            .filter(|m| m.command.command.command == name && m.command.automation_id == "bystander")
            .map(|m| m.command.command.params["task_id"].clone())
            .collect()
    };
    assert_eq!(
        task_ids("close_human_task"),
        task_ids("open_human_task"),
        "the cancelled bystander withdraws the task it opened"
    );
    let hits = receiver.hits();
    let mut paths: Vec<&str> = hits.iter().map(|hit| hit.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["/deals/D1", "/notify"]);
    assert!(hits.iter().all(|hit| {
        hit.idempotency_key
            .as_deref()
            .is_some_and(|k| k.starts_with(&main.run_id))
    }));

    // Every function did something, within its IAM list.
    let seen = e2e::assert_permissions(h);
    for (f, ops) in &seen {
        println!("{f}: {}", ops.join(", "));
        assert!(!ops.is_empty(), "{f} made requests");
    }
    e2e::assert_dead_letter_queues_empty(h).await;
}

// ---------------------------------------------------------------------------------------------
// Figures

const WAIT_5D: &str = r#"
id: probe-wait
name: Probe with a 5-day wait
status: active
trigger: { event: probe.wait }
steps:
  - id: wait-5d
    wait: { duration: 5d }
  - id: end
    end: { reason: done }
"#;

const NO_WAIT: &str = r#"
id: probe-nowait
name: Probe without a wait
status: active
trigger: { event: probe.nowait }
steps:
  - id: end
    end: { reason: done }
"#;

type Counts = BTreeMap<(String, String), u64>;

fn snapshot(h: &Harness) -> BTreeMap<String, Counts> {
    let mut out = BTreeMap::new();
    for f in h.functions() {
        out.insert(f.function.as_str().to_string(), f.counter.snapshot());
        out.insert(format!("{} (ESM)", f.function.as_str()), f.esm.snapshot());
    }
    out
}

fn total(s: &BTreeMap<String, Counts>, esm: bool) -> u64 {
    s.iter()
        .filter(|(k, _)| k.ends_with("(ESM)") == esm)
        .flat_map(|(_, c)| c.values())
        .sum()
}

fn print_figures(title: &str, s: &BTreeMap<String, Counts>) {
    println!("{title}");
    for (function, counts) in s {
        for line in e2e::figure_lines(function, counts) {
            println!("{line}");
        }
    }
    println!(
        "  total: {} by the functions, {} by the event source mappings",
        total(s, false),
        total(s, true)
    );
}

/// `a - b`, per function and operation (only what differs).
fn minus(
    a: &BTreeMap<String, Counts>,
    b: &BTreeMap<String, Counts>,
) -> BTreeMap<String, BTreeMap<(String, String), i64>> {
    let mut out: BTreeMap<String, BTreeMap<(String, String), i64>> = BTreeMap::new();
    for function in a.keys().chain(b.keys()) {
        let (x, y) = (a.get(function), b.get(function));
        let keys: BTreeSet<&(String, String)> = x
            .iter()
            .flat_map(|c| c.keys())
            .chain(y.iter().flat_map(|c| c.keys()))
            .collect();
        for k in keys {
            let d = x.and_then(|c| c.get(k)).copied().unwrap_or(0) as i64
                - y.and_then(|c| c.get(k)).copied().unwrap_or(0) as i64;
            if d != 0 {
                out.entry(function.clone()).or_default().insert(k.clone(), d);
            }
        }
    }
    out
}

#[tokio::test]
async fn request_figures_per_run_per_wait_and_per_sweep() {
    let ctx = setup_or_skip!(
        "figures",
        HarnessOptions {
            start: e2e::ts("2026-03-02T13:00:00Z"),
            ..HarnessOptions::default()
        }
    );
    let h = &ctx.h;
    let mut programs: Vec<_> = e2e::example_programs()
        .into_iter()
        .filter(|p| p.id() == "lead-follow-up")
        .collect();
    programs.push(e2e::program(WAIT_5D));
    programs.push(e2e::program(NO_WAIT));
    e2e::load(h, &programs).await;
    let lead = |id: &str, at: Timestamp| {
        json!({
            "specversion": "1.0", "id": format!("evt-{id}"), "source": "/crm/default", "type": "lead.created",
            "time": at.to_string(), "subject": format!("lead/{id}"), "contactid": format!("C-{id}"),
            "data": { "record": { "id": id, "source": "Website" },
                      "contact": { "email": format!("{}@example.com", id.to_lowercase()), "first_name": "Lee" } }
        })
        .to_string()
    };

    // A warm-up lead (cold caches in every function), then the measured one: no reply, so the
    // whole path (1 h wait, welcome, 2 days, follow-up, 5 days, assignment).
    for (i, id) in ["LW", "LM"].iter().enumerate() {
        if i == 1 {
            h.reset_counters();
        }
        h.send_event(&lead(id, h.now())).await.expect("send");
        assert_no_failures(&h.pump().await.expect("pump"), id);
        assert_no_failures(&h.advance_to(h.now() + hours(24 * 8)).await.expect("advance"), id);
    }
    let per_run = snapshot(h);
    let runs = e2e::aws_reports(h, "default", &["lead-follow-up".to_string()]).await;
    let measured = runs.iter().find(|r| r.subject.id == "LM").expect("run");
    assert_eq!(
        e2e::steps(measured).iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        [
            "wait-1h",
            "welcome-email",
            "await-reply",
            "follow-up-email",
            "await-second-reply",
            "assign-to-sales-rep"
        ]
    );
    assert_eq!(measured.status, RunStatus::Completed);
    print_figures(
        "AWS requests for one lead follow-up run (no reply: every step)",
        &per_run,
    );

    // One empty sweep a minute after the previous one: the fixed cost of the resume function
    // each minute.
    h.sweep().await.expect("sweep");
    h.clock().advance(SignedDuration::from_secs(60));
    h.reset_counters();
    assert_eq!(h.sweep().await.expect("sweep"), 0);
    let sweep = h.function(FunctionName::Resume).counter.snapshot();
    let per_sweep: u64 = sweep.values().sum();
    println!("requests per sweep (nothing due): {per_sweep} {sweep:?}");

    // A 5-day wait: a run with one, less the same run without it, less the sweep's fixed cost.
    h.reset_counters();
    h.send_event(
        &json!({"id": "probe-0", "type": "probe.nowait", "time": h.now().to_string(), "subject": "probe/P0"})
            .to_string(),
    )
    .await
    .expect("send");
    h.pump().await.expect("pump");
    let without = snapshot(h);
    h.reset_counters();
    h.send_event(
        &json!({"id": "probe-1", "type": "probe.wait", "time": h.now().to_string(), "subject": "probe/P1"}).to_string(),
    )
    .await
    .expect("send");
    h.pump().await.expect("pump");
    let sweeps_before = h.function(FunctionName::Resume).counter.total();
    assert_eq!(sweeps_before, 0);
    h.advance_to(h.now() + hours(24 * 5) + SignedDuration::from_secs(60))
        .await
        .expect("advance");
    let with = snapshot(h);
    let wait_run = e2e::aws_reports(h, "default", &["probe-wait".to_string()]).await;
    assert_eq!(wait_run[0].status, RunStatus::Completed, "{}", wait_run[0].to_text());
    let mut cost = minus(&with, &without);
    // The sweep that moved the timer includes the fixed cost of any sweep.
    if let Some(resume) = cost.get_mut("resume") {
        for (k, n) in &sweep {
            *resume.entry(k.clone()).or_default() -= *n as i64;
        }
        resume.retain(|_, n| *n != 0);
    }
    println!("requests a 5-day wait costs (schedule + sweep + wake, less the sweep's fixed cost):");
    for (function, counts) in &cost {
        for ((service, op), n) in counts {
            println!("  {function:<15} {service:<9} {op:<22} {n:>3}");
        }
    }
    let function_cost: i64 = cost
        .iter()
        .filter(|(k, _)| !k.ends_with("(ESM)"))
        .flat_map(|(_, c)| c.values())
        .sum();
    let esm_cost: i64 = cost
        .iter()
        .filter(|(k, _)| k.ends_with("(ESM)"))
        .flat_map(|(_, c)| c.values())
        .sum();
    println!("  total: {function_cost} by the functions, {esm_cost} by the event source mapping");

    // Sane bounds: a run is tens of requests, a long wait a handful, a sweep a few.
    let run_total = total(&per_run, false);
    assert!(
        (30..=120).contains(&run_total),
        "requests per lead follow-up run: {run_total}"
    );
    assert!(
        (1..=12).contains(&function_cost),
        "a 5-day wait costs {function_cost} requests"
    );
    assert!((2..=8).contains(&per_sweep), "a sweep costs {per_sweep} requests");
    // Intake starts the run itself: no `Start` message (the first step, a 1 h wait, is a timer
    // item), and evaluate sees only the wakes, the events and the results.
    assert_eq!(
        per_run["intake"].get(&("SQS".to_string(), "SendMessage".to_string())),
        None,
        "intake sends no Start"
    );
    // The trigger index: `lead.created`, `lead.*` and `*` (never `lead.created.*`, which cannot
    // match it); then the routes of `lead/LM` and `contact/C-LM`.
    assert_eq!(
        per_run["intake"].get(&("DynamoDB".to_string(), "Query".to_string())),
        Some(&5),
        "intake queries per event"
    );
    e2e::assert_permissions(h);
}

// ---------------------------------------------------------------------------------------------
// The sample Lambda events (events/lambda/, for `cargo lambda invoke`)

fn lambda_event(name: &str) -> Value {
    let path = e2e::repo().join("events/lambda").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("event file")).expect("event JSON")
}

/// The samples are what Lambda delivers (an SQS event, a scheduled EventBridge event) with
/// bodies each function accepts, and they tell one story: intake enrolls lead L100 in the lead
/// follow-up (the run id is derived from the event), evaluate gets that run's `Start` (what a
/// redelivered trigger or an enrollment by hand sends; intake starts the runs it creates in
/// place), execute sends its welcome email.
#[test]
fn sample_lambda_events_parse_and_fit_together() {
    use aws_lambda_events::event::eventbridge::EventBridgeEvent;
    use aws_lambda_events::event::sqs::SqsEvent;
    use crmflow_core::messages::{ActionMessage, StepMessage};
    let body = |name: &str| -> Value {
        let event: SqsEvent = serde_json::from_value(lambda_event(name)).expect("an SQS event");
        assert_eq!(event.records.len(), 1, "{name}");
        let record = &event.records[0];
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        assert!(record.attributes.contains_key("ApproximateReceiveCount"));
        serde_json::from_str(record.body.as_deref().expect("a body")).expect("a JSON body")
    };
    let (event, _) = crmflow_core::event::parse_event(&body("intake")).expect("intake accepts its event");
    let run_id = crmflow_core::ids::run_id_for(&event.tenant, &event.id, "lead-follow-up", event.time);
    let step: StepMessage = serde_json::from_value(body("evaluate")).expect("evaluate accepts its message");
    assert_eq!(step.run_id, run_id, "evaluate.json starts the run intake.json creates");
    assert_eq!(step.input, crmflow_core::command::Input::Start);
    let action: ActionMessage = serde_json::from_value(body("execute")).expect("execute accepts its message");
    assert_eq!(action.action.run_id, run_id);
    assert_eq!(action.action.idempotency_key, format!("{run_id}.1"));
    assert!(matches!(action.action.effect, crmflow_core::command::Effect::Email(_)));
    let scheduled: EventBridgeEvent = serde_json::from_value(lambda_event("resume")).expect("a scheduled event");
    assert_eq!(scheduled.detail_type, "Scheduled Event");
}
