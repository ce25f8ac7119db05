//! End-to-end tests of the four Lambda functions against a local AWS-protocol server (moto):
//! the handlers run as Lambda would run them (SQS event source mappings with partial batch
//! responses, the scheduled resume sweep), through `crmflow::lambda::harness`.
//!
//! ```sh
//! scripts/test-e2e.sh            # starts its own moto, runs these tests, stops it
//! ```
//!
//! Without `AWS_ENDPOINT_URL` every test prints "skipped: ..." and returns. Each test creates its
//! own table, queues and sender identity under a unique prefix, so they run in parallel.

mod e2e;

use crmflow::command::EmailMessage;
use crmflow::lambda::FunctionName;
use crmflow::lambda::harness::{CrashPoint, Duplicates, Harness, HarnessOptions, PumpReport};
use crmflow::ports::{OutboundCrmCommand, RunStore};
use crmflow::run::{RunStatus, StepStatus};
use crmflow::simulate::{SimulationOptions, Simulator};
use e2e::{Ctx, setup_or_skip};
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
async fn simulate_examples() -> Simulator {
    let events = e2e::example_events().into_iter().map(|(_, e)| e).collect();
    let mut sim = Simulator::new(e2e::example_programs(), HashMap::new(), SimulationOptions::default());
    sim.run(events).await;
    assert!(sim.errors.is_empty(), "simulation errors: {:?}", sim.errors);
    sim
}

/// Runs, emails and CRM commands on AWS match the simulation; nothing was sent twice.
async fn assert_examples_match_simulation(ctx: &Ctx, sim: &Simulator) {
    let h = &ctx.h;
    let ids: Vec<String> = e2e::example_programs().iter().map(|p| p.id().to_string()).collect();
    let aws = e2e::aws_reports(h, "default", &ids).await;
    let expected = sim.reports().await;
    assert!(expected.len() >= 10, "the examples make runs: {}", expected.len());
    e2e::assert_same_runs(&aws, &expected);

    // Emails: exactly the simulated ones, each once.
    let sent = e2e::ses_emails(&ctx.endpoint, &h.resources().sender).await;
    let mut simulated: Vec<(String, String)> = sim
        .email
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|(_, e): &(String, EmailMessage)| (e.to.clone(), e.subject.clone()))
        .collect();
    simulated.sort();
    let on_aws: Vec<(String, String)> = sent.iter().map(|e| (e.to.clone(), e.subject.clone())).collect();
    assert_eq!(on_aws, simulated, "SES messages (to, subject)");
    assert!(sent.iter().all(|e| !e.body.is_empty()));

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
            (&want.command.command, &want.command.subject, &want.run_id, &want.step_id),
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
    let sim = simulate_examples().await;
    assert_examples_match_simulation(&ctx, &sim).await;
    assert_long_waits_were_swept(&ctx.h);
    e2e::assert_permissions(&ctx.h);
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
    let sim = simulate_examples().await;
    assert_examples_match_simulation(&ctx, &sim).await;
    e2e::assert_permissions(&ctx.h);
}
