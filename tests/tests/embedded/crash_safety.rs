//! The shell survives a crash between saving a decision and dispatching its commands, even when
//! another input for the same run is handled before the interrupted message is redelivered.

use async_trait::async_trait;
use crmflow_core::command::{Command, EmailMessage, Input};
use crmflow_core::definition::{Program, parse_automation};
use crmflow_core::engine::{Engine, EngineConfig, EngineError, EnginePorts};
use crmflow_core::event::parse_event;
use crmflow_core::memory::{
    ManualClock, MemoryCatalog, MemoryQueue, MemoryRunStore, MemoryTimers, Queued, RecordingCrm, RecordingEmail,
    RecordingHttp,
};
use crmflow_core::messages::{ActionMessage, StepMessage};
use crmflow_core::ports::{
    ActionQueue, Clock, CrmCommandSink, EffectError, EmailSender, OutboundCrmCommand, QueueError, RunStore, StepQueue,
};
use crmflow_core::run::RunStatus;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

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

/// The engine on memory adapters with `yaml`'s automation: `queue` for steps and actions,
/// timers onto `memory_queue`, and the given email sender and CRM sink.
fn engine_on<Q: StepQueue + ActionQueue + 'static>(
    yaml: &str,
    clock: &Arc<ManualClock>,
    store: &Arc<MemoryRunStore>,
    queue: Arc<Q>,
    memory_queue: &Arc<MemoryQueue>,
    email: Arc<dyn EmailSender>,
    crm: Arc<dyn CrmCommandSink>,
) -> Engine {
    let catalog = Arc::new(MemoryCatalog::new());
    catalog.insert(Program::new(parse_automation(yaml).expect("valid")).expect("program"));
    Engine::new(EnginePorts {
        catalog,
        runs: store.clone(),
        idempotency: store.clone(),
        steps: queue.clone(),
        actions: queue,
        timers: Arc::new(MemoryTimers::new(memory_queue.clone())),
        email,
        crm,
        http: Arc::new(RecordingHttp::default()),
        held: Arc::new(crmflow_core::memory::MemoryHeldInputs::new()),
        evaluations: None,
        clock: clock.clone(),
        config: EngineConfig::default(),
    })
}

fn setup() -> Setup {
    let yaml = "id: a\nname: a\nstatus: active\ntrigger: {event: lead.created}\nsteps:\n  - {id: tag, action: {type: add_tag, params: {tag: x}}}\n  - {id: w, wait: {duration: 2d}}\n";
    let clock = Arc::new(ManualClock::new("2026-03-02T09:00:00Z".parse().unwrap()));
    let store = Arc::new(MemoryRunStore::new());
    let memory_queue = Arc::new(MemoryQueue::new(clock.clone()));
    let queue = Arc::new(FlakyQueue {
        inner: memory_queue.clone(),
        fail_next: AtomicU32::new(0),
    });
    let crm = Arc::new(RecordingCrm::default());
    let email = Arc::new(RecordingEmail::default());
    let engine = engine_on(yaml, &clock, &store, queue.clone(), &memory_queue, email, crm.clone());
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
        // The tag goes through the action queue (evaluate would perform it in place: see
        // `an_action_performed_in_place_is_its_heads_claim`).
        engine.evaluate.email = None;
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

/// An email sender and a CRM sink that perform their effect, then hang once when told to: the
/// attempt that called them "dies" right after the effect, before saving its result.
#[derive(Default)]
struct Hanging {
    email: RecordingEmail,
    crm: RecordingCrm,
    hang_email: AtomicBool,
    hang_crm: AtomicBool,
}

async fn hang_if(flag: &AtomicBool) {
    if flag.swap(false, Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
}

#[async_trait]
impl EmailSender for Hanging {
    async fn send(&self, email: &EmailMessage, key: &str) -> Result<String, EffectError> {
        let id = self.email.send(email, key).await?;
        hang_if(&self.hang_email).await;
        Ok(id)
    }
}

#[async_trait]
impl CrmCommandSink for Hanging {
    async fn send(&self, command: &OutboundCrmCommand) -> Result<(), EffectError> {
        self.crm.send(command).await?;
        hang_if(&self.hang_crm).await;
        Ok(())
    }
}

/// Polls `future` once, then drops it: everything on the memory adapters is ready at once, so
/// it runs to its end (`Some`) or until it hangs (`None`: a process that died there).
fn run_until_it_hangs<T>(future: impl std::future::Future<Output = T>) -> Option<T> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(value) => Some(value),
        std::task::Poll::Pending => None,
    }
}

/// Evaluate performs the email and the tag itself (no action message), each right after saving
/// the decision that asks for it: the saved head is the claim. An attempt that dies after an
/// effect, before saving its result, leaves a head that a redelivery within the claim lease
/// leaves alone (retry later); after the lease the email is not resent (its step is uncertain)
/// and the tag is sent again with the same idempotency key.
#[tokio::test]
async fn an_action_performed_in_place_is_its_heads_claim() {
    let yaml = "id: a\nname: a\nstatus: active\ntrigger: {event: lead.created}\nsteps:\n  - {id: pause, wait: {duration: 10m}}\n  - {id: mail, action: {type: send_email, params: {to: ada@example.com, subject: Hi, text: T}}}\n  - {id: tag, action: {type: add_tag, params: {tag: x}}}\n  - {id: w, wait: {duration: 2d}}\n";
    for hang_at in ["nowhere", "mail", "tag"] {
        let clock = Arc::new(ManualClock::new("2026-03-02T09:00:00Z".parse().unwrap()));
        let store = Arc::new(MemoryRunStore::new());
        let queue = Arc::new(MemoryQueue::new(clock.clone()));
        let effects = Arc::new(Hanging::default());
        let engine = engine_on(
            yaml,
            &clock,
            &store,
            queue.clone(),
            &queue,
            effects.clone(),
            effects.clone(),
        );
        let trigger = parse_event(&json!({
            "id": "e1", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
            "subject": {"type": "lead", "id": "L1", "contact_id": "C1"}
        }))
        .unwrap()
        .0;
        engine
            .intake
            .handle(&trigger, Default::default())
            .await
            .expect("intake");
        clock.set("2026-03-02T09:10:00Z".parse().unwrap());
        engine.resume.handle(0).await.expect("sweep");
        let Some(Queued::Step(wake)) = queue.pop_visible(clock.now()) else {
            panic!("{hang_at}: the 10-minute wake")
        };
        let run_id = wake.run_id.clone();
        effects.hang_email.store(hang_at == "mail", Ordering::SeqCst);
        effects.hang_crm.store(hang_at == "tag", Ordering::SeqCst);
        let first = run_until_it_hangs(engine.evaluate.handle(&wake));
        assert_eq!(
            first.is_none(),
            hang_at != "nowhere",
            "{hang_at}: the first attempt died"
        );
        if let Some(result) = first {
            result.expect("handled");
        } else {
            let run = store.load_run("default", &run_id).await.unwrap().unwrap();
            assert!(
                matches!(run.outbox.as_slice(), [Command::PerformInPlace(a)] if a.step_id == hang_at),
                "{hang_at}: the head claims the action: {:?}",
                run.outbox
            );
            // The wake is redelivered while the lease (300 s from the save) runs: left alone.
            let early = engine.evaluate.handle(&wake).await;
            assert!(
                matches!(early, Err(EngineError::RetryLater(_))),
                "{hang_at}: within the lease: {early:?}"
            );
            // After the lease the redelivery takes the action over, then ignores the stale wake.
            clock.set("2026-03-02T09:16:00Z".parse().unwrap());
            engine.evaluate.handle(&wake).await.expect("taken over");
            while let Some(message) = queue.pop_visible(clock.now()) {
                match message {
                    Queued::Action(m) => drop(engine.execute.handle(&m).await.expect("execute")),
                    Queued::Step(m) => drop(engine.evaluate.handle(&m).await.expect("evaluate")),
                }
            }
        }
        assert!(queue.is_empty(), "{hang_at}: nothing left queued");
        let run = store.load_run("default", &run_id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Waiting, "{hang_at}: parked on the 2-day wait");
        let history = store.history("default", &run_id).await.unwrap();
        let status_of = |step: &str| {
            history
                .iter()
                .find(|r| r.step_id == step)
                .map(|r| r.status.as_str())
                .unwrap_or("missing")
        };
        let (mail, tag) = (status_of("mail"), status_of("tag"));
        let expected_mail = if hang_at == "mail" { "uncertain" } else { "completed" };
        assert_eq!((mail, tag), (expected_mail, "completed"), "{hang_at}: {history:?}");
        assert_eq!(
            effects.email.sent.lock().unwrap().len(),
            1,
            "{hang_at}: one email, never resent"
        );
        let tags = effects.crm.sent.lock().unwrap().clone();
        let expected_tags = if hang_at == "tag" { 2 } else { 1 };
        assert_eq!(tags.len(), expected_tags, "{hang_at}: tag sends");
        assert!(
            tags.iter().all(|t| t.idempotency_key == tags[0].idempotency_key),
            "{hang_at}: a resent tag carries the same idempotency key"
        );
    }
}
