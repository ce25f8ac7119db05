//! Integration tests of the AWS adapters against a local AWS emulator (moto server).
//!
//! ```sh
//! eval "$(scripts/moto.sh start)"
//! cargo test -p crmflow-tests --test aws -- adapters::
//! scripts/moto.sh stop
//! ```
//!
//! Without `AWS_ENDPOINT_URL` every test prints "skipped: AWS_ENDPOINT_URL not set" and returns,
//! unless `CRMFLOW_REQUIRE_LOCAL_AWS=1` (the test scripts set it), which makes that a failure.
//! Each test creates its own table and queues under a unique prefix, so they run in parallel.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::Message;
use crmflow_aws::dynamodb::DynamoStore;
use crmflow_aws::request_counter::RequestCounter;
use crmflow_aws::sdk::{dynamodb_client, sqs_client};
use crmflow_aws::ses::SesEmailSender;
use crmflow_aws::sqs::{SqsActionQueue, SqsCrmCommandSink, SqsStepQueue};
use crmflow_aws::timers::{AwsTimerService, TimerStore};
use crmflow_core::command::{Command, CrmCommand, EmailMessage, Input, PerformAction};
use crmflow_core::definition::{AutomationStatus, Program, parse_automation};
use crmflow_core::enrollment::{EnrollmentState, enrolled};
use crmflow_core::event::{Event, Subject};
use crmflow_core::messages::{ActionMessage, StepMessage};
use crmflow_core::ports::{
    ActionQueue, AutomationCatalog, AutomationDirectory, Claim, CreateOutcome, CrmCommandSink, EmailSender, ErrorKind,
    HeldInputStore, IdempotencyStore, OutboundCrmCommand, RunDirectory, RunFilter, RunStore, StepQueue, StoreError,
    Timer, TimerService,
};
use crmflow_core::run::{Cursor, Run, RunStatus, StepRecord, StepStatus, WaitingFor};
use crmflow_tests::local_aws::{LocalDeployment, LocalResources};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One test's AWS resources and adapters.
struct Env {
    sdk: aws_config::SdkConfig,
    endpoint: String,
    res: LocalResources,
    counter: RequestCounter,
    store: DynamoStore,
    queue: SqsStepQueue,
    actions: SqsActionQueue,
}

impl Env {
    /// `None` (after printing why) when no local AWS endpoint is configured.
    async fn new(test: &str) -> Option<Env> {
        let LocalDeployment {
            endpoint,
            sdk,
            resources: res,
        } = LocalDeployment::create(test).await?;
        let counter = RequestCounter::new();
        let store = DynamoStore::new(&sdk, Some(&counter), &res.table, 30);
        let queue = SqsStepQueue::new(&sdk, Some(&counter), &res.step_queue_url);
        let actions = SqsActionQueue::new(&sdk, Some(&counter), &res.action_queue_url);
        Some(Env {
            sdk,
            endpoint,
            res,
            counter,
            store,
            queue,
            actions,
        })
    }

    fn timers(&self) -> AwsTimerService {
        AwsTimerService::new(self.queue.clone(), Arc::new(self.store.clone()))
    }

    async fn receive(&self, queue_url: &str, wait_seconds: i32) -> Vec<Message> {
        sqs_client(&self.sdk, None)
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .message_attribute_names("All")
            .send()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for one message on the queue.
    async fn receive_one(&self, queue_url: &str, timeout: Duration) -> Option<(Message, Duration)> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            let mut messages = self.receive(queue_url, 1).await;
            if let Some(m) = messages.pop() {
                assert!(messages.is_empty(), "expected one message, got more");
                return Some((m, start.elapsed()));
            }
        }
        None
    }

    async fn raw_item(&self, pk: &str, sk: &str) -> Option<std::collections::HashMap<String, AttributeValue>> {
        dynamodb_client(&self.sdk, None)
            .get_item()
            .table_name(&self.res.table)
            .key("PK", AttributeValue::S(pk.into()))
            .key("SK", AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem")
            .item
    }
}

macro_rules! env_or_skip {
    ($test:expr) => {
        match Env::new($test).await {
            Some(env) => env,
            None => return,
        }
    };
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn program(yaml: &str) -> Program {
    Program::new(parse_automation(yaml).expect("definition")).expect("program")
}

const WELCOME: &str = r#"
id: welcome
name: Welcome
tenant: t1
status: active
trigger:
  event: lead.created
actions:
  - type: add_tag
    params: { tag: new }
"#;

fn event(id: &str) -> Event {
    Event {
        id: id.to_string(),
        event_type: "lead.created".to_string(),
        tenant: "t1".to_string(),
        time: ts("2026-03-02T09:00:00Z"),
        subject: Subject {
            record_type: "lead".into(),
            id: "L1".into(),
            contact_id: Some("C1".into()),
        },
        data: serde_json::Map::new(),
        previous: None,
        contact: None,
    }
}

fn new_run(run_id: &str) -> Run {
    Run::new(
        run_id.to_string(),
        &program(WELCOME),
        &event("E1"),
        serde_json::Map::new(),
        ts("2026-03-02T09:00:00Z"),
    )
}

fn record(seq: u32, detail: &str) -> StepRecord {
    StepRecord {
        seq,
        step_id: format!("action-{}", seq + 1),
        step_type: "action:add_tag".into(),
        status: StepStatus::Completed,
        started_at: ts("2026-03-02T09:00:00Z"),
        finished_at: None,
        attempt: 1,
        detail: detail.to_string(),
        error: None,
        skip_reason: None,
        output: None,
    }
}

/// Creates a run (version 0) with a fresh enrollment.
async fn create(env: &Env, run: &Run) {
    let enrollment = enrolled(&EnrollmentState::default(), &run.run_id, run.started_at);
    assert_eq!(
        env.store.create_run(run, &enrollment).await.unwrap(),
        CreateOutcome::Created
    );
}

/// The next version of a run, as the decider would save it.
fn next(run: &Run) -> Run {
    let mut r = run.clone();
    r.version += 1;
    r
}

#[tokio::test]
async fn create_run_is_idempotent_and_registers_routes() {
    let env = env_or_skip!("create_run");
    let run = new_run("R1");
    let enrollment = enrolled(&EnrollmentState::default(), "R1", run.started_at);
    assert_eq!(
        env.store.create_run(&run, &enrollment).await.unwrap(),
        CreateOutcome::Created
    );
    // A redelivered trigger: the same run id again.
    assert_eq!(
        env.store.create_run(&run, &enrollment).await.unwrap(),
        CreateOutcome::AlreadyExists
    );

    assert_eq!(env.store.load_run("t1", "R1").await.unwrap(), Some(run.clone()));
    assert_eq!(env.store.load_run("t1", "R2").await.unwrap(), None);
    assert_eq!(
        env.store.load_run("t2", "R1").await.unwrap(),
        None,
        "tenants are separate"
    );

    let state = env.store.enrollment("t1", "welcome", "lead/L1").await.unwrap();
    assert_eq!(state.version, 1);
    assert_eq!(state.active_runs, vec!["R1".to_string()]);
    assert_eq!(state.total_enrollments, 1);
    assert_eq!(state.last_enrolled_at, Some(run.started_at));

    for key in ["lead/L1", "contact/C1"] {
        let routes = env.store.routes("t1", &[key.to_string()]).await.unwrap();
        assert_eq!(routes.len(), 1, "{key}");
        assert_eq!(
            (routes[0].run_id.as_str(), routes[0].automation_id.as_str()),
            ("R1", "welcome")
        );
    }
    let both = env
        .store
        .routes("t1", &["lead/L1".into(), "contact/C1".into()])
        .await
        .unwrap();
    assert_eq!(both.len(), 1, "a run routed by two keys is listed once");
    assert!(env.store.routes("t2", &["lead/L1".into()]).await.unwrap().is_empty());
}

#[tokio::test]
async fn enrollment_version_conflict() {
    let env = env_or_skip!("enrollment_conflict");
    let a = new_run("RA");
    let b = new_run("RB");
    let empty = EnrollmentState::default();
    create(&env, &a).await;
    // B read the enrollment before A was created: its write names version 0, which is gone.
    let stale = enrolled(&empty, "RB", b.started_at);
    match env.store.create_run(&b, &stale).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        env.store.load_run("t1", "RB").await.unwrap(),
        None,
        "nothing of B was written"
    );
    assert!(
        env.store
            .routes("t1", &["lead/L1".into()])
            .await
            .unwrap()
            .iter()
            .all(|r| r.run_id == "RA")
    );

    // Re-read and try again: accepted.
    let current = env.store.enrollment("t1", "welcome", "lead/L1").await.unwrap();
    let fresh = enrolled(&current, "RB", b.started_at);
    assert_eq!(env.store.create_run(&b, &fresh).await.unwrap(), CreateOutcome::Created);
    let state = env.store.enrollment("t1", "welcome", "lead/L1").await.unwrap();
    assert_eq!(state.version, 2);
    assert_eq!(state.active_runs, vec!["RA".to_string(), "RB".to_string()]);
    assert_eq!(state.total_enrollments, 2);
}

#[tokio::test]
async fn save_run_version_conflict() {
    let env = env_or_skip!("save_conflict");
    let run = new_run("R1");
    create(&env, &run).await;
    let v1 = next(&run);
    env.store.save_run(&v1, &[]).await.unwrap();
    // A second writer that also read version 0.
    let mut other = next(&run);
    other.outcome = Some("other writer".into());
    assert!(matches!(
        env.store.save_run(&other, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    // Skipping a version is a conflict too.
    assert!(matches!(
        env.store.save_run(&next(&next(&v1)), &[]).await,
        Err(StoreError::Conflict(_))
    ));
    // Saving a run that was never created.
    assert!(matches!(
        env.store.save_run(&next(&new_run("R9")), &[]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(env.store.load_run("t1", "R1").await.unwrap(), Some(v1.clone()));
    env.store.save_run(&next(&v1), &[]).await.unwrap();
}

#[tokio::test]
async fn history_is_ordered_and_cut_at_history_len() {
    let env = env_or_skip!("history");
    let run = new_run("R1");
    create(&env, &run).await;
    assert!(env.store.history("t1", "R1").await.unwrap().is_empty());

    // Records 0..=11 written out of order; the head says only 11 exist (seq 11 is ahead of it).
    let mut v1 = next(&run);
    v1.history_len = 11;
    let records: Vec<StepRecord> = [5, 11, 0, 10, 1, 2, 3, 4, 6, 7, 8, 9]
        .iter()
        .map(|&s| record(s, "first"))
        .collect();
    env.store.save_run(&v1, &records).await.unwrap();
    let history = env.store.history("t1", "R1").await.unwrap();
    assert_eq!(
        history.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..11).collect::<Vec<_>>()
    );

    // Records are upserted by seq.
    let mut v2 = next(&v1);
    v2.history_len = 12;
    env.store.save_run(&v2, &[record(10, "rewritten")]).await.unwrap();
    let history = env.store.history("t1", "R1").await.unwrap();
    assert_eq!(history.len(), 12);
    assert_eq!(history[10].detail, "rewritten");
    assert_eq!(history[11], record(11, "first"));
    assert!(env.store.history("t1", "nope").await.unwrap().is_empty());
}

/// A run as the previous version of the store left it: the head's JSON as text in `run`, its
/// outbox acknowledged by `outbox_acked` on the head, the open step's record as an item too.
/// It loads (outbox cleared), its history reads (the open record from the cursor), and the next
/// save replaces the head with the current shape, deflated.
#[tokio::test]
async fn a_run_of_the_previous_item_shape_still_loads_and_saves() {
    let env = env_or_skip!("old_shape");
    let mut run = new_run("R1");
    run.version = 3;
    run.history_len = 2;
    run.status = RunStatus::Waiting;
    let mut open = record(1, "waiting");
    open.status = StepStatus::Waiting;
    run.cursor = Some(Cursor {
        step_id: open.step_id.clone(),
        waiting_for: WaitingFor::Event,
        timer: None,
        record: open.clone(),
    });
    run.outbox = vec![Command::Continue];
    let client = dynamodb_client(&env.sdk, None);
    let pk = AttributeValue::S("TENANT#t1#RUN#R1".into());
    let n = |v: u64| AttributeValue::N(v.to_string());
    client
        .put_item()
        .table_name(&env.res.table)
        .item("PK", pk.clone())
        .item("SK", AttributeValue::S("RUN".into()))
        .item("run", AttributeValue::S(serde_json::to_string(&run).unwrap()))
        .item("version", n(3))
        .item("status", AttributeValue::S("waiting".into()))
        .item("outbox_acked", n(3))
        .send()
        .await
        .expect("PutItem head");
    for (seq, rec) in [(0, record(0, "done")), (1, record(1, "entered"))] {
        client
            .put_item()
            .table_name(&env.res.table)
            .item("PK", pk.clone())
            .item("SK", AttributeValue::S(format!("STEP#{seq:06}")))
            .item("record", AttributeValue::S(serde_json::to_string(&rec).unwrap()))
            .item("seq", n(seq))
            .send()
            .await
            .expect("PutItem record");
    }

    let loaded = env.store.load_run("t1", "R1").await.unwrap().expect("head");
    let mut expected = run.clone();
    expected.outbox.clear();
    assert_eq!(loaded, expected, "acknowledged outbox cleared");
    assert_eq!(
        env.store.history("t1", "R1").await.unwrap(),
        vec![record(0, "done"), open],
        "the open step's record is the cursor's"
    );

    let saved = next(&loaded);
    env.store.save_run(&saved, &[]).await.unwrap();
    assert_eq!(env.store.load_run("t1", "R1").await.unwrap(), Some(saved));
    let head = env.raw_item("TENANT#t1#RUN#R1", "RUN").await.unwrap();
    assert!(
        matches!(head.get("run_z"), Some(AttributeValue::B(_))) && !head.contains_key("run"),
        "the current shape"
    );
}

/// A save puts the head (keeping the decision's records), then the records' items, then the
/// acknowledgement. When it stopped after the head (here: the record's item and the
/// acknowledgement removed by hand), the history still has the record (from the head) and the
/// next load to save writes its item and acknowledges (a plain load only reads).
#[tokio::test]
async fn records_of_a_save_interrupted_after_its_head_are_written_by_the_next_load_to_save() {
    let env = env_or_skip!("interrupted_save");
    let run = new_run("R1");
    create(&env, &run).await;
    let mut saved = next(&run);
    saved.history_len = 1;
    env.store.save_run(&saved, &[record(0, "done")]).await.unwrap();
    assert!(env.raw_item("TENANT#t1#RUN#R1", "STEP#000000").await.is_some());
    let head = env.raw_item("TENANT#t1#RUN#R1", "RUN").await.unwrap();
    assert_eq!(
        head.get("outbox_acked"),
        Some(&AttributeValue::N("1".into())),
        "acknowledged"
    );

    let client = dynamodb_client(&env.sdk, None);
    let pk = AttributeValue::S("TENANT#t1#RUN#R1".into());
    client
        .delete_item()
        .table_name(&env.res.table)
        .key("PK", pk.clone())
        .key("SK", AttributeValue::S("STEP#000000".into()))
        .send()
        .await
        .expect("DeleteItem");
    client
        .update_item()
        .table_name(&env.res.table)
        .key("PK", pk)
        .key("SK", AttributeValue::S("RUN".into()))
        .update_expression("REMOVE outbox_acked")
        .send()
        .await
        .expect("UpdateItem");
    assert_eq!(
        env.store.history("t1", "R1").await.unwrap(),
        vec![record(0, "done")],
        "from the head"
    );

    assert_eq!(env.store.load_run("t1", "R1").await.unwrap(), Some(saved.clone()));
    assert!(
        env.raw_item("TENANT#t1#RUN#R1", "STEP#000000").await.is_none(),
        "a plain load only reads"
    );
    assert_eq!(
        env.store.load_run_to_save("t1", "R1").await.unwrap().as_deref(),
        Some(&saved)
    );
    let step = env
        .raw_item("TENANT#t1#RUN#R1", "STEP#000000")
        .await
        .expect("written by the load");
    assert!(step.contains_key("record"));
    let head = env.raw_item("TENANT#t1#RUN#R1", "RUN").await.unwrap();
    assert_eq!(
        head.get("outbox_acked"),
        Some(&AttributeValue::N("1".into())),
        "acknowledged"
    );
}

#[tokio::test]
async fn terminal_run_drops_routes_and_releases_enrollment() {
    let env = env_or_skip!("terminal");
    let run = new_run("R1");
    create(&env, &run).await;
    let head = env.raw_item("TENANT#t1#RUN#R1", "RUN").await.unwrap();
    assert!(!head.contains_key("expires_at"), "a running run does not expire");

    let mut done = next(&run);
    done.status = RunStatus::Completed;
    done.finished_at = Some(ts("2026-03-03T00:00:00Z"));
    done.history_len = 1;
    env.store.save_run(&done, &[record(0, "done")]).await.unwrap();

    assert!(
        env.store
            .routes("t1", &["lead/L1".into(), "contact/C1".into()])
            .await
            .unwrap()
            .is_empty()
    );
    let state = env.store.enrollment("t1", "welcome", "lead/L1").await.unwrap();
    assert_eq!(state.version, 2, "releasing bumps the version");
    assert!(state.active_runs.is_empty());
    assert_eq!(state.total_enrollments, 1);

    let head = env.raw_item("TENANT#t1#RUN#R1", "RUN").await.unwrap();
    let expected = ts("2026-03-03T00:00:00Z").as_second() + 30 * 86_400;
    assert_eq!(head.get("expires_at"), Some(&AttributeValue::N(expected.to_string())));
    assert_eq!(head.get("status"), Some(&AttributeValue::S("completed".into())));
    let step = env.raw_item("TENANT#t1#RUN#R1", "STEP#000000").await.unwrap();
    assert_eq!(step.get("expires_at"), Some(&AttributeValue::N(expected.to_string())));
}

#[tokio::test]
async fn list_runs_newest_first() {
    let env = env_or_skip!("list_runs");
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = uuid::Uuid::now_v7().to_string();
        let mut run = new_run(&id);
        run.enrollment_key = format!("lead/L{i}");
        create(&env, &run).await;
        ids.push(id);
    }
    let runs = env.store.list_runs("t1", "welcome", 2).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.run_id.clone()).collect::<Vec<_>>(),
        vec![ids[2].clone(), ids[1].clone()]
    );
}

/// The management API's listing: pages with a cursor across index pages, and filters on the
/// heads (here by status and start time) without losing runs between pages.
#[tokio::test]
async fn run_directory_pages_and_filters() {
    let env = env_or_skip!("run_directory");
    let mut ids = Vec::new();
    for i in 0..7 {
        let id = uuid::Uuid::now_v7().to_string();
        let mut run = new_run(&id);
        run.enrollment_key = format!("lead/L{i}");
        run.started_at = ts("2026-03-02T09:00:00Z") + jiff::SignedDuration::from_hours(i);
        if i % 2 == 0 {
            run.status = RunStatus::Waiting;
        }
        create(&env, &run).await;
        ids.push(id);
    }
    let directory: &dyn RunDirectory = &env.store;
    let waiting = RunFilter {
        status: Some(RunStatus::Waiting),
        ..RunFilter::default()
    };
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = directory
            .list_runs("t1", "welcome", &waiting, after.as_deref(), 2)
            .await
            .unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.run_id.clone());
        seen.extend(page.iter().map(|r| r.run_id.clone()));
    }
    let expected: Vec<String> = [6, 4, 2, 0].iter().map(|&i| ids[i].clone()).collect();
    assert_eq!(seen, expected, "the waiting runs, newest first, each once");

    let window = RunFilter {
        started_from: Some(ts("2026-03-02T10:00:00Z")),
        started_before: Some(ts("2026-03-02T12:00:00Z")),
        ..RunFilter::default()
    };
    let runs = directory.list_runs("t1", "welcome", &window, None, 10).await.unwrap();
    let got: Vec<String> = runs.iter().map(|r| r.run_id.clone()).collect();
    assert_eq!(got, vec![ids[2].clone(), ids[1].clone()]);
    assert!(
        directory
            .list_runs("t2", "welcome", &RunFilter::default(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

fn automation(id: &str, tenant: &str, version: u32, status: &str) -> crmflow_core::definition::Automation {
    crmflow_core::definition::parse_automation(&format!(
        "id: {id}\nname: {id}\ntenant: {tenant}\nversion: {version}\nstatus: {status}\n\
         trigger: {{ event: lead.created }}\nactions: [{{ type: add_tag, params: {{ tag: t }} }}]\n"
    ))
    .unwrap()
}

/// The management API's catalog: create only when the id is free, the next version only after
/// the newest, a status change only on the newest; listing by tenant with a cursor and a status
/// filter; versions with when they were stored; the trigger index follows the status.
#[tokio::test]
async fn automation_directory_on_dynamodb() {
    let env = env_or_skip!("automation_directory");
    let dir: &dyn AutomationDirectory = &env.store;
    let at = ts("2026-03-02T09:00:00Z");
    for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
        let status = if i == 1 { "draft" } else { "active" };
        assert_eq!(
            dir.create(automation(id, "dt", 1, status), at).await.unwrap(),
            CreateOutcome::Created
        );
    }
    assert_eq!(
        dir.create(automation("a", "dt", 1, "draft"), at).await.unwrap(),
        CreateOutcome::AlreadyExists
    );
    let later = ts("2026-03-03T09:00:00Z");
    dir.add_version(automation("a", "dt", 2, "active"), later)
        .await
        .unwrap();
    assert!(matches!(
        dir.add_version(automation("a", "dt", 2, "active"), later).await,
        Err(StoreError::Conflict(_))
    ));
    dir.replace_latest(automation("c", "dt", 1, "paused")).await.unwrap();
    assert!(matches!(
        dir.replace_latest(automation("a", "dt", 1, "paused")).await,
        Err(StoreError::Conflict(_))
    ));

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = dir
            .list("dt", Some(AutomationStatus::Active), after.as_deref(), 1)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.program.automation.id.clone());
        seen.extend(
            page.iter()
                .map(|v| (v.program.automation.id.clone(), v.program.version())),
        );
    }
    assert_eq!(seen, vec![("a".to_owned(), 2), ("d".to_owned(), 1)]);
    assert_eq!(dir.list("dt", None, None, 10).await.unwrap().len(), 4);
    assert!(dir.list("other", None, None, 10).await.unwrap().is_empty());

    let versions = dir.versions("dt", "a").await.unwrap();
    let stored: Vec<_> = versions.iter().map(|v| (v.program.version(), v.created_at)).collect();
    assert_eq!(stored, vec![(1, Some(at)), (2, Some(later))]);
    let c = dir.versions("dt", "c").await.unwrap();
    assert_eq!(
        c[0].created_at,
        Some(at),
        "a status change keeps when the version was stored"
    );
    let active = env.store.active_for_event("dt", "lead.created").await.unwrap();
    let ids: Vec<_> = active.iter().map(|p| p.id().to_owned()).collect();
    assert_eq!(ids, ["a", "d"], "paused c and draft b leave the trigger index");
}

#[tokio::test]
async fn events_are_deduplicated() {
    let env = env_or_skip!("event_dedupe");
    let now = ts("2026-03-02T09:00:00Z");
    assert!(!env.store.event_processed("t1", "E1").await.unwrap());
    assert!(env.store.mark_event_processed("t1", "E1", now).await.unwrap());
    assert!(!env.store.mark_event_processed("t1", "E1", now).await.unwrap());
    assert!(env.store.event_processed("t1", "E1").await.unwrap());
    assert!(!env.store.event_processed("t1", "E2").await.unwrap());
    assert!(!env.store.event_processed("t2", "E1").await.unwrap());
    let item = env.raw_item("TENANT#t1#EVENT#E1", "EVENT").await.unwrap();
    assert_eq!(
        item.get("expires_at"),
        Some(&AttributeValue::N((now.as_second() + 7 * 86_400).to_string()))
    );
}

#[tokio::test]
async fn idempotency_claim_then_complete() {
    let env = env_or_skip!("idempotency");
    let now = ts("2026-03-02T09:00:00Z");
    assert_eq!(env.store.claim("R1.3", now, 60).await.unwrap(), Claim::Acquired);
    // A concurrent attempt while the lease holds.
    assert_eq!(
        env.store
            .claim("R1.3", now + SignedDuration::from_secs(5), 60)
            .await
            .unwrap(),
        Claim::InProgress {
            until: now + SignedDuration::from_secs(60)
        }
    );
    let output = serde_json::json!({ "message_id": "m-1" });
    env.store.complete("R1.3", &output).await.unwrap();
    assert_eq!(
        env.store.claim("R1.3", now, 60).await.unwrap(),
        Claim::Completed { output: output.clone() }
    );
    // Releasing a completed record leaves it.
    env.store.release("R1.3").await.unwrap();
    assert_eq!(
        env.store.claim("R1.3", now, 60).await.unwrap(),
        Claim::Completed { output }
    );

    // Release after a failure that did not perform the effect: the next claim acquires.
    assert_eq!(env.store.claim("R1.4", now, 60).await.unwrap(), Claim::Acquired);
    env.store.release("R1.4").await.unwrap();
    assert_eq!(env.store.claim("R1.4", now, 60).await.unwrap(), Claim::Acquired);
}

#[tokio::test]
async fn expired_lease_is_taken_over_as_expired() {
    let env = env_or_skip!("expired_lease");
    let now = ts("2026-03-02T09:00:00Z");
    assert_eq!(env.store.claim("R1.5", now, 10).await.unwrap(), Claim::Acquired);
    let later = now + SignedDuration::from_secs(11);
    assert_eq!(env.store.claim("R1.5", later, 10).await.unwrap(), Claim::Expired);
    // The taker holds a fresh lease now.
    assert_eq!(
        env.store
            .claim("R1.5", later + SignedDuration::from_secs(1), 10)
            .await
            .unwrap(),
        Claim::InProgress {
            until: later + SignedDuration::from_secs(10)
        }
    );
}

fn timer(id: &str, due_at: Timestamp) -> Timer {
    Timer {
        tenant: "t1".into(),
        run_id: "R1".into(),
        timer_id: id.into(),
        due_at,
    }
}

fn fired_id(message: &Message) -> String {
    let step: StepMessage = serde_json::from_str(message.body().unwrap()).unwrap();
    assert_eq!((step.tenant.as_str(), step.run_id.as_str()), ("t1", "R1"));
    match step.input {
        Input::TimerFired { timer_id } => timer_id,
        other => panic!("expected timer_fired, got {other:?}"),
    }
}

#[tokio::test]
async fn short_timer_goes_straight_to_the_queue() {
    let env = env_or_skip!("short_timer");
    let now = Timestamp::now();
    let t = timer("R1.1", now + SignedDuration::from_millis(2_500));
    env.timers().schedule(&t, now).await.unwrap();
    assert!(
        env.store.timers_in_bucket(t.due_at).await.unwrap().is_empty(),
        "no timer item"
    );
    assert!(
        env.receive(&env.res.step_queue_url, 0).await.is_empty(),
        "delayed: not visible yet"
    );
    // Delay = 2.5 s rounded up to 3 s.
    let (message, waited) = env
        .receive_one(&env.res.step_queue_url, Duration::from_secs(10))
        .await
        .expect("fired");
    assert_eq!(fired_id(&message), "R1.1");
    assert!(waited >= Duration::from_millis(1_500), "arrived after {waited:?}");
}

#[tokio::test]
async fn long_timer_is_swept_with_its_exact_delay() {
    let env = env_or_skip!("long_timer");
    let timers = env.timers();
    let now = Timestamp::now();
    // As if a sweeper had been running (a first sweep reads a day of buckets: see the next test).
    env.store.set_sweep_cursor(now).await.unwrap();
    let due = now + SignedDuration::from_secs(20 * 60);
    let t = timer("R1.2", due);
    timers.schedule(&t, now).await.unwrap();
    assert_eq!(env.store.timers_in_bucket(due).await.unwrap(), vec![t.clone()]);
    let pk = format!("DUE#{}", due.strftime("%Y%m%d%H%M"));
    assert!(
        env.raw_item(&pk, "RUN#R1#T#R1.2").await.is_some(),
        "item under its minute bucket"
    );

    // A sweep now: nothing due within the horizon.
    assert_eq!(timers.sweep(now, 60).await.unwrap(), 0);
    assert!(env.receive(&env.res.step_queue_url, 0).await.is_empty());

    // Twenty minutes later (a virtual clock), 3 s before due: moved with DelaySeconds 3.
    let sweep_at = due - SignedDuration::from_secs(3);
    assert_eq!(timers.sweep(sweep_at, 60).await.unwrap(), 1);
    assert!(
        env.store.timers_in_bucket(due).await.unwrap().is_empty(),
        "deleted after sending"
    );
    assert!(
        env.receive(&env.res.step_queue_url, 0).await.is_empty(),
        "delayed: not visible yet"
    );
    let (message, waited) = env
        .receive_one(&env.res.step_queue_url, Duration::from_secs(10))
        .await
        .expect("fired");
    assert_eq!(fired_id(&message), "R1.2");
    assert!(waited >= Duration::from_secs(2), "arrived after {waited:?}");
    // Swept once only.
    assert_eq!(timers.sweep(sweep_at, 60).await.unwrap(), 0);
}

#[tokio::test]
async fn sweep_catches_up_missed_minutes_and_respects_the_horizon() {
    let env = env_or_skip!("sweep_catch_up");
    let timers = env.timers();
    let t0 = ts("2026-03-02T09:00:30Z");
    // The first sweep (no cursor yet) looks back one day: a timer due before that is not seen.
    let day_old = timer("R1.day_old", ts("2026-03-01T10:00:00Z"));
    let too_old = timer("R1.too_old", ts("2026-03-01T08:00:00Z"));
    env.store.put_timer(&day_old).await.unwrap();
    env.store.put_timer(&too_old).await.unwrap();
    assert_eq!(env.store.sweep_cursor().await.unwrap(), None);
    assert_eq!(timers.sweep(t0, 60).await.unwrap(), 1);
    let (message, _) = env
        .receive_one(&env.res.step_queue_url, Duration::from_secs(5))
        .await
        .expect("day-old timer");
    assert_eq!(fired_id(&message), "R1.day_old");
    assert_eq!(env.store.timers_in_bucket(too_old.due_at).await.unwrap(), vec![too_old]);
    assert_eq!(
        env.store.sweep_cursor().await.unwrap(),
        Some(ts("2026-03-02T09:01:00Z"))
    );

    // The sweeper is down for 40 minutes; a timer came due during the outage, another is due
    // 50 s after it comes back, a third in the same minute but beyond the horizon.
    let overdue = timer("R1.overdue", ts("2026-03-02T09:20:10Z"));
    let soon = timer("R1.soon", ts("2026-03-02T09:41:20Z"));
    let beyond = timer("R1.beyond", ts("2026-03-02T09:41:50Z"));
    for t in [&overdue, &soon, &beyond] {
        env.store.put_timer(t).await.unwrap();
    }
    let back = ts("2026-03-02T09:40:30Z");
    assert_eq!(timers.sweep(back, 60).await.unwrap(), 2);
    let mut ids: Vec<String> = Vec::new();
    let start = Instant::now();
    while ids.len() < 2 && start.elapsed() < Duration::from_secs(10) {
        ids.extend(env.receive(&env.res.step_queue_url, 1).await.iter().map(fired_id));
    }
    ids.sort();
    // The overdue timer had no delay; "soon" was 50 s away, so it is still invisible.
    assert_eq!(ids, vec!["R1.overdue".to_string()]);
    assert_eq!(
        env.store.timers_in_bucket(beyond.due_at).await.unwrap(),
        vec![beyond.clone()]
    );
    assert_eq!(
        env.store.sweep_cursor().await.unwrap(),
        Some(ts("2026-03-02T09:41:00Z"))
    );

    // The next sweep picks up the one left in the bucket.
    assert_eq!(timers.sweep(ts("2026-03-02T09:41:30Z"), 60).await.unwrap(), 1);
    assert!(env.store.timers_in_bucket(beyond.due_at).await.unwrap().is_empty());
}

#[tokio::test]
async fn cancel_deletes_the_timer_item() {
    let env = env_or_skip!("cancel_timer");
    let now = Timestamp::now();
    let t = timer("R1.7", now + SignedDuration::from_secs(7 * 86_400));
    env.timers().schedule(&t, now).await.unwrap();
    env.timers().cancel(&t).await.unwrap();
    assert!(env.store.timers_in_bucket(t.due_at).await.unwrap().is_empty());
    env.store
        .set_sweep_cursor(t.due_at - SignedDuration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(env.timers().sweep(t.due_at, 60).await.unwrap(), 0);
    env.timers().cancel(&t).await.unwrap(); // cancelling twice is fine
}

#[tokio::test]
async fn step_and_action_messages_round_trip() {
    let env = env_or_skip!("step_queue");
    let step = StepMessage {
        tenant: "t1".into(),
        run_id: "R1".into(),
        input: Input::Start,
    };
    env.queue.send_step(&step, 0).await.unwrap();
    let (m, _) = env
        .receive_one(&env.res.step_queue_url, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(serde_json::from_str::<StepMessage>(m.body().unwrap()).unwrap(), step);

    let action = ActionMessage {
        action: PerformAction {
            tenant: "t1".into(),
            run_id: "R1".into(),
            automation_id: "welcome".into(),
            step_id: "action-1".into(),
            seq: 0,
            attempt: 1,
            idempotency_key: "R1.0".into(),
            effect: crmflow_core::command::Effect::Enroll {
                automation_id: "other".into(),
            },
        },
    };
    env.actions.send_action(&action).await.unwrap();
    let (m, _) = env
        .receive_one(&env.res.action_queue_url, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<ActionMessage>(m.body().unwrap()).unwrap(),
        action
    );
}

#[tokio::test]
async fn crm_command_carries_its_idempotency_key() {
    let env = env_or_skip!("crm_command");
    let sink = SqsCrmCommandSink::new(&env.sdk, None, &env.res.crm_commands_queue_url);
    let command = OutboundCrmCommand {
        idempotency_key: "R1.2".into(),
        tenant: "t1".into(),
        run_id: "R1".into(),
        automation_id: "welcome".into(),
        step_id: "action-3".into(),
        command: CrmCommand {
            command: "add_tag".into(),
            subject: Subject {
                record_type: "lead".into(),
                id: "L1".into(),
                contact_id: None,
            },
            params: serde_json::json!({ "tag": "vip" }),
        },
    };
    sink.send(&command).await.unwrap();
    let (m, _) = env
        .receive_one(&env.res.crm_commands_queue_url, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<OutboundCrmCommand>(m.body().unwrap()).unwrap(),
        command
    );
    let attrs = m.message_attributes().unwrap();
    assert_eq!(attrs["idempotency_key"].string_value(), Some("R1.2"));
    assert_eq!(attrs["command"].string_value(), Some("add_tag"));
    assert_eq!(attrs["tenant"].string_value(), Some("t1"));

    let missing = SqsCrmCommandSink::new(&env.sdk, None, format!("{}-missing", env.res.crm_commands_queue_url));
    let err = missing.send(&command).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent, "{err}");
}

#[tokio::test]
async fn ses_send_is_recorded_by_the_emulator() {
    let env = env_or_skip!("ses");
    let sender = SesEmailSender::new(&env.sdk, Some(&env.counter), &env.res.sender);
    let subject = format!("Welcome {}", uuid::Uuid::now_v7());
    let email = EmailMessage {
        to: "ada@example.com".into(),
        from: None,
        reply_to: Some("help@example.com".into()),
        subject: subject.clone(),
        html: Some("<p>Hello Ada</p>".into()),
        text: Some("Hello Ada".into()),
    };
    let message_id = sender.send(&email, "R1.0").await.unwrap();
    assert!(!message_id.is_empty());
    assert_eq!(env.counter.get("SESv2", "SendEmail"), 1);

    let data: serde_json::Value = crmflow_aws::http::client_builder()
        .build()
        .unwrap()
        .get(format!("{}/moto-api/data.json", env.endpoint))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let messages = data["ses"]["Message"].as_array().expect("ses messages");
    let sent = messages
        .iter()
        .find(|m| m["subject"] == subject.as_str())
        .expect("our message");
    assert_eq!(sent["id"], message_id.as_str());
    assert_eq!(sent["source"], env.res.sender.as_str());
    assert_eq!(sent["destinations"]["ToAddresses"][0], "ada@example.com");
    assert_eq!(sent["body"], "<p>Hello Ada</p>");

    // An unverified sender is rejected: permanent.
    let mut bad = email.clone();
    bad.from = Some("nobody@unverified.example".into());
    let err = sender.send(&bad, "R1.1").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent, "{err}");
}

#[tokio::test]
async fn catalog_indexes_active_versions_by_trigger() {
    let env = env_or_skip!("catalog");
    let welcome = parse_automation(WELCOME).unwrap();
    env.store.put(welcome.clone()).await.unwrap();
    let any_contact = parse_automation(
        "id: contacts\nname: Contacts\ntenant: t1\nstatus: active\ntrigger: { event: [contact.*, lead.created] }\nactions:\n  - type: add_tag\n    params: { tag: c }\n",
    )
    .unwrap();
    env.store.put(any_contact.clone()).await.unwrap();
    let everything = parse_automation(
        "id: all\nname: All\ntenant: t1\nstatus: active\ntrigger: { event: '*' }\nactions:\n  - type: add_tag\n    params: { tag: a }\n",
    )
    .unwrap();
    env.store.put(everything).await.unwrap();
    let draft =
        parse_automation("id: draft\nname: Draft\ntenant: t1\ntrigger: { event: lead.created }\nactions:\n  - type: add_tag\n    params: { tag: d }\n")
            .unwrap();
    env.store.put(draft).await.unwrap();

    let ids = |programs: Vec<std::sync::Arc<Program>>| programs.iter().map(|p| p.id().to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(env.store.active_for_event("t1", "lead.created").await.unwrap()),
        ["all", "contacts", "welcome"]
    );
    assert_eq!(
        ids(env.store.active_for_event("t1", "contact.tag_added").await.unwrap()),
        ["all", "contacts"]
    );
    assert_eq!(
        ids(env.store.active_for_event("t1", "ticket.created").await.unwrap()),
        ["all"]
    );
    assert!(
        env.store
            .active_for_event("t2", "lead.created")
            .await
            .unwrap()
            .is_empty()
    );

    // Version 2 of "contacts" is paused: its trigger entries go; version 1 is still readable.
    let mut paused = any_contact.clone();
    paused.version = 2;
    paused.status = AutomationStatus::Paused;
    env.store.put(paused).await.unwrap();
    assert_eq!(
        ids(env.store.active_for_event("t1", "contact.tag_added").await.unwrap()),
        ["all"]
    );
    assert_eq!(env.store.latest("t1", "contacts").await.unwrap().unwrap().version(), 2);
    assert_eq!(
        env.store.get("t1", "contacts", 1).await.unwrap().unwrap().automation,
        any_contact
    );
    // Putting an older version again does not touch the index or the latest pointer.
    env.store.put(any_contact).await.unwrap();
    assert_eq!(
        ids(env.store.active_for_event("t1", "contact.tag_added").await.unwrap()),
        ["all"]
    );
    assert_eq!(env.store.latest("t1", "contacts").await.unwrap().unwrap().version(), 2);

    // A fresh store (cold Lambda): the first get reads, the second comes from the cache.
    let counter = RequestCounter::new();
    let cold = DynamoStore::new(&env.sdk, Some(&counter), &env.res.table, 30);
    assert_eq!(cold.get("t1", "welcome", 1).await.unwrap().unwrap().automation, welcome);
    assert_eq!(cold.get("t1", "welcome", 1).await.unwrap().unwrap().automation, welcome);
    assert!(cold.get("t1", "welcome", 9).await.unwrap().is_none());
    assert_eq!(counter.get("DynamoDB", "GetItem"), 2);
}

#[tokio::test]
async fn request_counter_counts_per_operation() {
    let env = env_or_skip!("counter");
    env.counter.reset();
    let run = new_run("R1");
    create(&env, &run).await;
    env.store.load_run("t1", "R1").await.unwrap();
    env.store.history("t1", "R1").await.unwrap();
    env.store
        .routes("t1", &["lead/L1".into(), "contact/C1".into()])
        .await
        .unwrap();
    env.queue
        .send_step(
            &StepMessage {
                tenant: "t1".into(),
                run_id: "R1".into(),
                input: Input::Start,
            },
            0,
        )
        .await
        .unwrap();
    let counts: Vec<((String, String), u64)> = env.counter.snapshot().into_iter().collect();
    let expected = [
        (("DynamoDB", "GetItem"), 1),
        (("DynamoDB", "Query"), 3),
        (("DynamoDB", "TransactWriteItems"), 1),
        (("SQS", "SendMessage"), 1),
    ];
    assert_eq!(
        counts,
        expected
            .iter()
            .map(|((s, o), n)| ((s.to_string(), o.to_string()), *n))
            .collect::<Vec<_>>()
    );
    assert_eq!(env.counter.total(), 6);
}

/// Inputs held while an automation is paused: kept per run in arrival order, listed by run
/// across pages, and forgotten one by one.
#[tokio::test]
async fn held_inputs_keep_their_order_per_run_on_dynamodb() {
    let env = env_or_skip!("held_inputs");
    let held: &dyn HeldInputStore = &env.store;
    let t0 = ts("2026-03-02T09:00:00Z");
    let inputs = [
        (
            "run-b",
            Input::TimerFired {
                timer_id: "run-b.1".into(),
            },
        ),
        ("run-a", Input::Continue),
        ("run-b", Input::Event { event: event("e-held") }),
        ("run-c", Input::Start),
    ];
    for (i, (run_id, input)) in inputs.iter().enumerate() {
        let at = t0 + SignedDuration::from_secs(i64::try_from(i).unwrap());
        held.hold("t1", "welcome", run_id, input, at).await.unwrap();
    }
    held.hold("t2", "welcome", "run-z", &Input::Continue, t0).await.unwrap();

    let b = held.held_for_run("t1", "welcome", "run-b", 10).await.unwrap();
    let kinds: Vec<&str> = b.iter().map(|h| h.input.kind()).collect();
    assert_eq!(kinds, vec!["timer_fired", "event"], "oldest first");
    assert_eq!(b[1].input, inputs[2].1, "the input round-trips");

    let first = held.runs_with_held("t1", "welcome", None, 2).await.unwrap();
    assert_eq!(first, vec!["run-a", "run-b"], "one entry per run, by id");
    let rest = held.runs_with_held("t1", "welcome", Some("run-b"), 2).await.unwrap();
    assert_eq!(rest, vec!["run-c"], "after the cursor");

    held.forget("t1", "welcome", "run-b", &b[0].key).await.unwrap();
    let b = held.held_for_run("t1", "welcome", "run-b", 10).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].input.kind(), "event");
    assert!(
        held.held_for_run("t2", "welcome", "run-b", 10)
            .await
            .unwrap()
            .is_empty(),
        "another tenant's partition"
    );
}

/// A run that failed gives up its routes; a retry that reopens it registers them again.
#[tokio::test]
async fn a_reopened_run_gets_its_routes_back() {
    let env = env_or_skip!("save_reopened");
    let run = new_run("R-reopen");
    create(&env, &run).await;
    let keys = run.route_keys();
    let routed = |routes: Vec<crmflow_core::ports::Route>| routes.iter().any(|r| r.run_id == "R-reopen");
    assert!(
        routed(env.store.routes("t1", &keys).await.unwrap()),
        "routed once created"
    );

    let mut failed = next(&run);
    failed.status = RunStatus::Failed;
    env.store.save_run(&failed, &[record(0, "failed")]).await.unwrap();
    assert!(
        !routed(env.store.routes("t1", &keys).await.unwrap()),
        "no routes once failed"
    );

    let mut reopened = next(&failed);
    reopened.status = RunStatus::Running;
    env.store
        .save_reopened(Arc::new(reopened.clone()), vec![record(1, "retry")])
        .await
        .unwrap();
    assert!(routed(env.store.routes("t1", &keys).await.unwrap()), "routed again");
    let stale = Arc::new(reopened);
    assert!(
        matches!(
            env.store.save_reopened(stale, Vec::new()).await,
            Err(StoreError::Conflict(_))
        ),
        "version-checked like any save"
    );
    let route = env.raw_item("TENANT#t1#ROUTE#lead/L1", "RUN#R-reopen").await.unwrap();
    assert_eq!(
        route.get("since"),
        Some(&AttributeValue::N("2".into())),
        "names the reopening save"
    );

    let mut failed_again = next(&failed);
    failed_again.version = 3;
    failed_again.status = RunStatus::Failed;
    env.store.save_run(&failed_again, &[]).await.unwrap();
    assert!(
        !routed(env.store.routes("t1", &keys).await.unwrap()),
        "a later end drops the routes put back"
    );
}

/// An ended run's save that stopped after its head (here: a route, the enrollment slot and the
/// acknowledgement put back by hand) is finished by the next load to save: routes gone, slot
/// released, acknowledged. A plain load only reads.
#[tokio::test]
async fn an_ended_runs_save_interrupted_after_its_head_is_finished_by_the_next_load_to_save() {
    let env = env_or_skip!("interrupted_end");
    let run = new_run("R1");
    create(&env, &run).await;
    let mut done = next(&run);
    done.status = RunStatus::Completed;
    done.finished_at = Some(ts("2026-03-03T00:00:00Z"));
    env.store.save_run(&done, &[]).await.unwrap();
    let keys = run.route_keys();
    assert!(env.store.routes("t1", &keys).await.unwrap().is_empty());

    let client = dynamodb_client(&env.sdk, None);
    let s = |v: &str| AttributeValue::S(v.into());
    client
        .put_item()
        .table_name(&env.res.table)
        .item("PK", s("TENANT#t1#ROUTE#lead/L1"))
        .item("SK", s("RUN#R1"))
        .item("run_id", s("R1"))
        .item("automation_id", s("welcome"))
        .send()
        .await
        .expect("PutItem route");
    client
        .update_item()
        .table_name(&env.res.table)
        .key("PK", s("TENANT#t1#ENROLL#welcome#lead/L1"))
        .key("SK", s("ENROLL"))
        .update_expression("ADD active_runs :r")
        .expression_attribute_values(":r", AttributeValue::Ss(vec!["R1".into()]))
        .send()
        .await
        .expect("UpdateItem enrollment");
    client
        .update_item()
        .table_name(&env.res.table)
        .key("PK", s("TENANT#t1#RUN#R1"))
        .key("SK", s("RUN"))
        .update_expression("REMOVE outbox_acked")
        .send()
        .await
        .expect("UpdateItem head");

    assert_eq!(env.store.load_run("t1", "R1").await.unwrap(), Some(done.clone()));
    assert_eq!(
        env.store.routes("t1", &keys).await.unwrap().len(),
        1,
        "a plain load only reads"
    );
    assert_eq!(
        env.store.load_run_to_save("t1", "R1").await.unwrap().as_deref(),
        Some(&done)
    );
    assert!(env.store.routes("t1", &keys).await.unwrap().is_empty(), "routes gone");
    let state = env.store.enrollment("t1", "welcome", "lead/L1").await.unwrap();
    assert!(state.active_runs.is_empty(), "slot released");
    let head = env.raw_item("TENANT#t1#RUN#R1", "RUN").await.unwrap();
    assert_eq!(
        head.get("outbox_acked"),
        Some(&AttributeValue::N("1".into())),
        "acknowledged"
    );
}

/// The audit log pages newest first per tenant; trigger evaluations come back newest first per
/// automation and record, with their expiry set.
#[tokio::test]
async fn audit_and_evaluation_logs_on_dynamodb() {
    use crmflow_core::ports::{AuditEntry, AuditLog, EvaluationLog, TriggerEvaluation};
    let env = env_or_skip!("logs");
    let audit: &dyn AuditLog = &env.store;
    for i in 0..3 {
        let entry = AuditEntry {
            id: format!("0190-{i}"),
            at: ts("2026-03-02T09:00:00Z"),
            credential: "key_1".into(),
            action: "automation.status".into(),
            target: "automations/welcome".into(),
            before: Some(serde_json::json!({"status": "active"})),
            after: None,
        };
        audit.append("t1", &entry).await.unwrap();
    }
    let page = audit.list("t1", None, 2).await.unwrap();
    let ids: Vec<&str> = page.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["0190-2", "0190-1"]);
    assert_eq!(page[0].before, Some(serde_json::json!({"status": "active"})));
    let rest = audit.list("t1", Some("0190-1"), 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, "0190-0");
    assert!(audit.list("t2", None, 5).await.unwrap().is_empty());

    let log: &dyn EvaluationLog = &env.store;
    let now = Timestamp::now();
    for (i, result) in ["not_matched", "enrolled"].into_iter().enumerate() {
        let evaluation = TriggerEvaluation {
            event_id: format!("e{i}"),
            event_type: "lead.created".into(),
            subject: "lead/L1".into(),
            evaluated_at: now + SignedDuration::from_secs(i64::try_from(i).unwrap()),
            result: result.into(),
            run_id: None,
            reason: "trigger.conditions: not met".into(),
        };
        log.record("t1", "welcome", &evaluation).await.unwrap();
    }
    let recent = log.recent("t1", "welcome", "lead/L1", 10).await.unwrap();
    let results: Vec<&str> = recent.iter().map(|e| e.result.as_str()).collect();
    assert_eq!(results, ["enrolled", "not_matched"], "newest first");
    assert!(log.recent("t1", "welcome", "lead/L2", 10).await.unwrap().is_empty());
}
