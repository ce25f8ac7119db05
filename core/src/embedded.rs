//! The whole engine in one process on the in-memory adapters, fed by a queue of posted events:
//! what `crmflow serve` runs beside its API, on the real clock (or, in tests, a virtual one).
//! Effects are recorded, not performed.

use crate::engine::{Engine, EngineConfig, EnginePorts};
use crate::memory::{
    MemoryCatalog, MemoryEventQueue, MemoryHeldInputs, MemoryLogs, MemoryQueue, MemoryRunStore, MemoryTimers,
    RecordingCrm, RecordingEmail, RecordingHttp,
};
use crate::ports::{Clock, TimerService};
use std::sync::Arc;

/// The engine and the in-memory adapters it runs on.
pub struct Embedded {
    pub engine: Engine,
    pub catalog: Arc<MemoryCatalog>,
    pub store: Arc<MemoryRunStore>,
    /// The step and action queues.
    pub queue: Arc<MemoryQueue>,
    pub timers: Arc<MemoryTimers>,
    /// Events posted for intake.
    pub events: Arc<MemoryEventQueue>,
    pub held: Arc<MemoryHeldInputs>,
    /// The audit log and the trigger evaluations.
    pub logs: Arc<MemoryLogs>,
    pub email: Arc<RecordingEmail>,
    pub crm: Arc<RecordingCrm>,
    pub http: Arc<RecordingHttp>,
    pub clock: Arc<dyn Clock>,
}

impl Embedded {
    pub fn new(catalog: Arc<MemoryCatalog>, clock: Arc<dyn Clock>, config: EngineConfig) -> Embedded {
        let store = Arc::new(MemoryRunStore::new());
        let queue = Arc::new(MemoryQueue::new(clock.clone()));
        let timers = Arc::new(MemoryTimers::new(queue.clone()));
        let held = Arc::new(MemoryHeldInputs::new());
        let logs = Arc::new(MemoryLogs::new());
        let (email, crm, http) = (
            Arc::new(RecordingEmail::new(false)),
            Arc::new(RecordingCrm::new(false)),
            Arc::new(RecordingHttp::new(false)),
        );
        let engine = Engine::new(EnginePorts {
            catalog: catalog.clone(),
            runs: store.clone(),
            idempotency: store.clone(),
            steps: queue.clone(),
            actions: queue.clone(),
            timers: timers.clone(),
            email: email.clone(),
            crm: crm.clone(),
            http: http.clone(),
            held: held.clone(),
            evaluations: Some(logs.clone()),
            clock: clock.clone(),
            config,
        });
        Embedded {
            engine,
            catalog,
            store,
            queue,
            timers,
            events: Arc::new(MemoryEventQueue::new()),
            held,
            logs,
            email,
            crm,
            http,
            clock,
        }
    }

    /// Handles whatever is due, then waits 100 ms when there was nothing; forever.
    pub async fn run(self) {
        loop {
            if !self.step().await {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }

    /// One pass: posted events, visible messages, due timers. Whether anything was done. A
    /// message that fails is logged (`tracing`) and dropped: there is no dead-letter queue here.
    pub async fn step(&self) -> bool {
        let mut worked = false;
        while let Some(event) = self.events.pop() {
            worked = true;
            if let Err(e) = self.engine.intake.handle(&event, serde_json::Map::new()).await {
                tracing::warn!(event_id = %event.id, error = %e, "event failed");
            }
        }
        let now = self.clock.now();
        while let Some(message) = self.queue.pop_visible(now) {
            worked = true;
            if let Err(e) = crate::simulate::deliver(&self.engine, &message).await {
                tracing::warn!(run_id = %message.run_id(), error = %e, "message failed");
            }
        }
        match self.timers.sweep(now, 0).await {
            Ok(fired) => worked || fired > 0,
            Err(e) => {
                tracing::warn!(error = %e, "timer sweep failed");
                worked
            }
        }
    }

    /// Steps until nothing is left to do now (a test's virtual clock does not move by itself).
    pub async fn settle(&self) {
        while self.step().await {}
    }
}
