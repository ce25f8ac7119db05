//! The shell survives a crash between saving a decision and dispatching its commands, even when
//! another input for the same run is handled before the interrupted message is redelivered.

use async_trait::async_trait;
use crmflow_core::command::Input;
use crmflow_core::definition::{Program, parse_automation};
use crmflow_core::engine::{Engine, EngineConfig, EnginePorts};
use crmflow_core::event::parse_event;
use crmflow_core::memory::{
    ManualClock, MemoryCatalog, MemoryQueue, MemoryRunStore, MemoryTimers, Queued, RecordingCrm, RecordingEmail,
    RecordingHttp,
};
use crmflow_core::messages::{ActionMessage, StepMessage};
use crmflow_core::ports::{ActionQueue, Clock, QueueError, RunStore, StepQueue};
use crmflow_core::run::RunStatus;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A step queue that fails the next `fail_next` sends, as if the process died mid-dispatch.
struct FlakyQueue {
    inner: Arc<MemoryQueue>,
    fail_next: AtomicU32,
}

#[async_trait]
impl StepQueue for FlakyQueue {
    async fn send_step(&self, message: &StepMessage, delay_seconds: u32) -> Result<(), QueueError> {
        if self.fail_next.load(Ordering::SeqCst) > 0 {
            self.fail_next.fetch_sub(1, Ordering::SeqCst);
            return Err(QueueError("injected crash".into()));
        }
        self.inner.send_step(message, delay_seconds).await
    }
}

#[async_trait]
impl ActionQueue for FlakyQueue {
    async fn send_action(&self, message: &ActionMessage) -> Result<(), QueueError> {
        if self.fail_next.load(Ordering::SeqCst) > 0 {
            self.fail_next.fetch_sub(1, Ordering::SeqCst);
            return Err(QueueError("injected crash".into()));
        }
        self.inner.send_action(message).await
    }
}

/// The engine on memory adapters whose queue can be told to fail, with an automation that tags
/// the lead then waits 2 days.
struct Setup {
    engine: Engine,
    store: Arc<MemoryRunStore>,
    memory_queue: Arc<MemoryQueue>,
    queue: Arc<FlakyQueue>,
    crm: Arc<RecordingCrm>,
    clock: Arc<ManualClock>,
}

fn setup() -> Setup {
    let yaml = "id: a\nname: a\nstatus: active\ntrigger: {event: lead.created}\nsteps:\n  - {id: tag, action: {type: add_tag, params: {tag: x}}}\n  - {id: w, wait: {duration: 2d}}\n";
    let program = Program::new(parse_automation(yaml).expect("valid")).expect("program");
    let clock = Arc::new(ManualClock::new("2026-03-02T09:00:00Z".parse().unwrap()));
    let catalog = Arc::new(MemoryCatalog::new());
    catalog.insert(program);
    let store = Arc::new(MemoryRunStore::new());
    let memory_queue = Arc::new(MemoryQueue::new(clock.clone()));
    let queue = Arc::new(FlakyQueue {
        inner: memory_queue.clone(),
        fail_next: AtomicU32::new(0),
    });
    let timers = Arc::new(MemoryTimers::new(memory_queue.clone()));
    let crm = Arc::new(RecordingCrm::default());
    let engine = Engine::new(EnginePorts {
        catalog,
        runs: store.clone(),
        idempotency: store.clone(),
        steps: queue.clone(),
        actions: queue.clone(),
        timers,
        email: Arc::new(RecordingEmail::default()),
        crm: crm.clone(),
        http: Arc::new(RecordingHttp::default()),
        held: Arc::new(crmflow_core::memory::MemoryHeldInputs::new()),
        evaluations: None,
        clock: clock.clone(),
        config: EngineConfig::default(),
    });
    Setup {
        engine,
        store,
        memory_queue,
        queue,
        crm,
        clock,
    }
}

/// A crash while the start decision is dispatched, whether intake or evaluate made it: the
/// next input for the run dispatches the saved outbox, and the redelivered trigger or `Start`
/// sends nothing twice.
#[tokio::test]
async fn an_interrupted_dispatch_is_completed_by_the_next_input() {
    for starts_in_intake in [true, false] {
        let case = if starts_in_intake {
            "started by intake"
        } else {
            "started by evaluate"
        };
        let Setup {
            mut engine,
            store,
            memory_queue,
            queue,
            crm,
            clock,
        } = setup();
        if !starts_in_intake {
            engine.intake.starter = None;
        }
        let trigger = parse_event(&json!({
            "id": "e1", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
            "subject": {"type": "lead", "id": "L1", "contact_id": "C1"}
        }))
        .unwrap()
        .0;
        // The start decision (perform add_tag) is saved, then its dispatch "crashes".
        let start = if starts_in_intake {
            queue.fail_next.store(1, Ordering::SeqCst);
            let crashed = engine.intake.handle(&trigger, Default::default()).await;
            assert!(crashed.is_err(), "{case}: the dispatch failure surfaces");
            None
        } else {
            engine
                .intake
                .handle(&trigger, Default::default())
                .await
                .expect("intake");
            let Some(Queued::Step(start)) = memory_queue.pop_visible(clock.now()) else {
                panic!("{case}: a Start message")
            };
            queue.fail_next.store(1, Ordering::SeqCst);
            assert!(
                engine.evaluate.handle(&start).await.is_err(),
                "{case}: the dispatch failure surfaces"
            );
            Some(start)
        };
        assert!(memory_queue.is_empty(), "{case}: nothing was dispatched");
        let run_id = store.all_runs()[0].run_id.clone();
        let run = store.load_run("default", &run_id).await.unwrap().unwrap();
        assert_eq!(run.outbox.len(), 1, "{case}: the unsent Perform waits in the outbox");

        // Another input for the run arrives before the redelivery: an unrelated event.
        let other = StepMessage {
            tenant: "default".into(),
            run_id: run_id.clone(),
            input: Input::Event {
                event: parse_event(&json!({
                    "id": "e2", "type": "contact.updated", "time": "2026-03-02T09:01:00Z",
                    "subject": {"type": "contact", "id": "C1"}, "data": {"city": "Paris"}
                }))
                .unwrap()
                .0,
            },
        };
        engine.evaluate.handle(&other).await.expect("the other input");
        let Some(Queued::Action(perform)) = memory_queue.pop_visible(clock.now()) else {
            panic!("{case}: the interrupted Perform is dispatched by the next evaluation")
        };
        let run = store.load_run("default", &run_id).await.unwrap().unwrap();
        assert!(run.outbox.is_empty(), "{case}: acknowledged");

        // The redelivery changes nothing and sends nothing more: the trigger again (the run
        // exists, so intake sends `Start`), or the `Start` message again.
        let start = match start {
            Some(start) => start,
            None => {
                engine
                    .intake
                    .handle(&trigger, Default::default())
                    .await
                    .expect("redelivered trigger");
                let Some(Queued::Step(start)) = memory_queue.pop_visible(clock.now()) else {
                    panic!("{case}: the redelivered trigger sends Start to the existing run")
                };
                assert_eq!(start.run_id, run_id, "{case}");
                start
            }
        };
        engine.evaluate.handle(&start).await.expect("redelivered start");
        assert!(
            memory_queue.is_empty(),
            "{case}: no duplicate dispatch: {} queued",
            memory_queue.len()
        );

        // The run goes on normally, and the tag is sent once.
        engine.execute.handle(&perform).await.expect("execute");
        while let Some(Queued::Step(m)) = memory_queue.pop_visible(clock.now()) {
            engine.evaluate.handle(&m).await.expect("result");
        }
        let run = store.load_run("default", &run_id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Waiting, "{case}: parked on the 2-day wait");
        assert_eq!(crm.sent.lock().unwrap().len(), 1, "{case}: one add_tag command");
    }
}
