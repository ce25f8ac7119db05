//! The embedded runner: the whole engine in one process on the in-memory adapters, with a
//! virtual clock that jumps from one due moment to the next, so a 5-day wait takes no time.
//! Side effects are recorded, not performed: emails are rendered, webhooks described.
//!
//! This is `crmflow simulate` and the test mode for automation authors.
//!
//! The simulation streams: a run that has ended (completed, failed or cancelled) and has nothing
//! left queued for it (no message, no timer) is reported to the caller's sink and removed, with
//! its history, its emails and its idempotency records. Memory follows the runs still active
//! (plus the enrollment state per automation and record that re-enrollment rules need), not
//! the number of runs.
//!
//! Reports come in the order runs end, which is deterministic: one thread handles messages in
//! virtual-clock order (then queue order), so the same input always gives the same order. Runs
//! still active when the simulation stops (waiting past the horizon) come last, in start order.
//! [`simulate_partitioned`] runs independent groups of records on several threads, with the
//! same histories and an order of its own that does not depend on the number of threads.

pub mod partition;

pub use partition::{SimulationOutcome, simulate_partitioned};

use crate::definition::Program;
use crate::definition::Reenroll;
use crate::engine::{Engine, EngineConfig, EnginePorts};
use crate::event::Event;
use crate::memory::{
    ManualClock, MemoryCatalog, MemoryQueue, MemoryRunStore, MemoryTimers, Queued, RecordingCrm, RecordingEmail,
    RecordingHttp,
};
use crate::ports::{AutomationCatalog, RunStore, TimerService};
use crate::run::{Run, RunStatus, StepRecord};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Options of a simulation.
#[derive(Debug, Clone)]
pub struct SimulationOptions {
    /// Stop fast-forwarding this long after the last event (runs still waiting then are
    /// reported as `waiting`). Default 365 days.
    pub horizon: SignedDuration,
    /// Safety cap on handled messages. Default 50 million.
    pub max_messages: u64,
    /// Record effects as skipped instead of performing them on the recording adapters.
    pub dry_run: bool,
    /// Keep every email, CRM command and HTTP request in the recording adapters' `sent` lists
    /// (for tests that inspect them). Off by default: those lists grow with every action of
    /// every run. The reports carry each run's rendered emails either way.
    pub log_effects: bool,
}

impl Default for SimulationOptions {
    fn default() -> Self {
        SimulationOptions {
            horizon: SignedDuration::from_hours(24 * 365),
            max_messages: 50_000_000,
            dry_run: false,
            log_effects: false,
        }
    }
}

/// The embedded engine with its in-memory parts.
pub struct Simulator {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub store: Arc<MemoryRunStore>,
    pub catalog: Arc<MemoryCatalog>,
    pub queue: Arc<MemoryQueue>,
    pub timers: Arc<MemoryTimers>,
    pub email: Arc<RecordingEmail>,
    pub crm: Arc<RecordingCrm>,
    pub http: Arc<RecordingHttp>,
    contacts: Arc<HashMap<String, Map<String, Value>>>,
    options: SimulationOptions,
    /// Problems met while handling messages (a message that failed is not retried here).
    pub errors: Vec<String>,
    pub messages_handled: u64,
}

impl Simulator {
    /// `contacts` maps contact ids to their fields (the contact snapshot runs start with).
    pub fn new(
        programs: Vec<Program>,
        contacts: HashMap<String, Map<String, Value>>,
        options: SimulationOptions,
    ) -> Self {
        Self::with_contacts(programs, Arc::new(contacts), options)
    }

    /// [`Simulator::new`] with contacts shared with other simulators (see [`partition`]).
    pub fn with_contacts(
        programs: Vec<Program>,
        contacts: Arc<HashMap<String, Map<String, Value>>>,
        options: SimulationOptions,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        let catalog = Arc::new(MemoryCatalog::new());
        for p in programs {
            catalog.insert(p);
        }
        let store = Arc::new(MemoryRunStore::new());
        let queue = Arc::new(MemoryQueue::new(clock.clone()));
        let timers = Arc::new(MemoryTimers::new(queue.clone()));
        let email = Arc::new(RecordingEmail::new(options.log_effects));
        let crm = Arc::new(RecordingCrm::new(options.log_effects));
        let http = Arc::new(RecordingHttp::new(options.log_effects));
        // Intake's reports are not kept: no need to explain its conditions.
        let config = EngineConfig {
            dry_run: options.dry_run,
            explain_intake: false,
            ..EngineConfig::default()
        };
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
            held: Arc::new(crate::memory::MemoryHeldInputs::new()),
            evaluations: None,
            clock: clock.clone(),
            config,
        });
        Simulator {
            engine,
            clock,
            store,
            catalog,
            queue,
            timers,
            email,
            crm,
            http,
            contacts,
            options,
            errors: Vec::new(),
            messages_handled: 0,
        }
    }

    /// Feeds the events in time order and fast-forwards until nothing is left to do (or the
    /// horizon passes), and returns every run's report: see [`Simulator::run_with`] for the
    /// order. Convenient for tests; [`Simulator::run_with`] does not hold the reports.
    pub async fn run(&mut self, events: Vec<Event>) -> Vec<RunReport> {
        let mut reports = Vec::new();
        self.run_with(events, |report| reports.push(report)).await;
        reports
    }

    /// Feeds the events in time order and fast-forwards until nothing is left to do (or the
    /// horizon passes). Each run is handed to `sink` once: when it has ended and nothing is left
    /// queued for it, and it is then dropped from memory; the runs still active at the end
    /// follow in start order, and stay in the store (see [`Simulator::reports`]).
    pub async fn run_with(&mut self, events: Vec<Event>, mut sink: impl FnMut(RunReport)) {
        self.advance(events, None, &mut sink).await;
        for report in self.reports().await {
            sink(report);
        }
    }

    /// Feeds `events` and fast-forwards until the horizon after the last of them (or after
    /// `last_event`, when given: the last event of a whole simulation split into parts).
    async fn advance(
        &mut self,
        mut events: Vec<Event>,
        last_event: Option<Timestamp>,
        sink: &mut dyn FnMut(RunReport),
    ) {
        events.sort_by_key(|e| e.time);
        let Some(first) = events.first().map(|e| e.time) else {
            return;
        };
        let last = last_event.or(events.last().map(|e| e.time)).unwrap_or(first);
        let end = last.checked_add(self.options.horizon).unwrap_or(last);
        self.clock.set(first);
        // Each event is dropped once intake has handled it (runs keep what they need of it).
        let mut events = events.into_iter().peekable();
        loop {
            let now = crate::ports::Clock::now(self.clock.as_ref());
            while let Some(event) = events.next_if(|e| e.time <= now) {
                self.intake(&event, sink).await;
                drop(event);
                self.drain(now, sink).await;
            }
            self.drain(now, sink).await;
            match self.timers.sweep(now, 0).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => self.errors.push(format!("timer sweep: {e}")),
            }
            if self.messages_handled >= self.options.max_messages {
                self.errors.push(format!(
                    "stopped after {} messages (max_messages)",
                    self.messages_handled
                ));
                return;
            }
            let candidates = [
                events.peek().map(|e| e.time),
                self.queue.next_visible_at(),
                self.timers.next_due(),
            ];
            let Some(next) = candidates.into_iter().flatten().min() else {
                return;
            };
            if next > end {
                return;
            }
            self.clock.set(next.max(now));
        }
    }

    /// Hands `event` to intake, which starts the runs it enrolls in place: a run that ends
    /// there (no step waits) is retired at once.
    async fn intake(&mut self, event: &Event, sink: &mut dyn FnMut(RunReport)) {
        let contact = event
            .subject
            .contact_id
            .as_ref()
            .and_then(|c| self.contacts.get(c))
            .cloned()
            .unwrap_or_default();
        match self.engine.intake.handle(event, contact).await {
            Ok(report) => {
                for run_id in report.outcomes.iter().filter_map(|o| o.run_id.as_deref()) {
                    self.retire(&event.tenant, run_id, sink).await;
                }
            }
            Err(e) => self.errors.push(format!("event {}: {e}", event.id)),
        }
    }

    async fn drain(&mut self, now: Timestamp, sink: &mut dyn FnMut(RunReport)) {
        while let Some(message) = self.queue.pop_visible(now) {
            self.messages_handled += 1;
            if let Err(e) = deliver(&self.engine, &message).await {
                self.errors.push(format!("{}: {e}", describe_message(&message)));
            }
            self.retire(message.tenant(), message.run_id(), sink).await;
            if self.messages_handled >= self.options.max_messages {
                return;
            }
        }
    }

    /// Reports and drops a run that has ended, once no message or timer for it is left (a
    /// run's messages are the only thing that can end it or use it).
    async fn retire(&self, tenant: &str, run_id: &str, sink: &mut dyn FnMut(RunReport)) {
        if self.queue.has_messages_for(run_id) || self.timers.has_timers_for(run_id) {
            return;
        }
        let Some((run, history)) = self.store.take_finished(tenant, run_id) else {
            return;
        };
        // With `reenroll: always`, the enrollment state only matters while a run is active.
        if let Ok(Some(program)) = self.catalog.latest(&run.tenant, &run.automation_id).await
            && program.automation.enrollment.reenroll == Reenroll::Always
        {
            self.store
                .forget_idle_enrollment(&run.tenant, &run.automation_id, &run.enrollment_key);
        }
        sink(RunReport::from_run(run, history, |key| self.email.take(key)));
    }

    /// The runs still in the store (those not yet reported by [`Simulator::run_with`], or every
    /// run the engine's handlers made when driven by hand), with their history, in start order.
    pub async fn reports(&self) -> Vec<RunReport> {
        let mut runs = self.store.all_runs();
        runs.sort_by(|a, b| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)));
        let mut out = Vec::with_capacity(runs.len());
        for run in runs {
            let history = self.store.history(&run.tenant, &run.run_id).await.unwrap_or_default();
            out.push(RunReport::with_emails(&run, &history, |key| self.email.get(key)));
        }
        out
    }
}

/// Hands one message of the in-memory queue to its handler: a step message to evaluate, an
/// action to execute. The embedded runners (the simulator, `crmflow serve`) drain the queue so.
pub async fn deliver(engine: &Engine, message: &Queued) -> Result<(), crate::engine::EngineError> {
    match message {
        Queued::Step(m) => engine.evaluate.handle(m).await.map(|_| ()),
        Queued::Action(m) => engine.execute.handle(m).await.map(|_| ()),
    }
}

fn describe_message(message: &Queued) -> String {
    match message {
        Queued::Step(m) => format!("run {} {}", m.run_id, m.input.kind()),
        Queued::Action(m) => format!("run {} action {}", m.action.run_id, m.action.step_id),
    }
}

/// One run as `crmflow simulate --format json` prints it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RunReport {
    pub run_id: String,
    pub automation_id: String,
    pub automation_version: u32,
    pub subject: crate::event::Subject,
    /// completed | failed | cancelled | waiting | running
    pub status: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    pub started_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    pub steps: Vec<StepReport>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct StepReport {
    pub step_id: String,
    #[serde(rename = "type")]
    pub step_type: String,
    pub status: crate::run::StepStatus,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// The rendered email, for `send_email` steps (recorded, not sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<crate::command::EmailMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl RunReport {
    /// The report of `run` with its `history`; `emails` holds the emails sent, by idempotency
    /// key (`{run_id}.{seq}`).
    pub fn new(run: &Run, history: &[StepRecord], emails: &HashMap<String, crate::command::EmailMessage>) -> Self {
        RunReport::with_emails(run, history, |key| emails.get(key).cloned())
    }

    /// The report of `run` with its `history`; `email` gives the email sent with an idempotency
    /// key (`{run_id}.{seq}`), if any.
    pub fn with_emails(
        run: &Run,
        history: &[StepRecord],
        mut email: impl FnMut(&str) -> Option<crate::command::EmailMessage>,
    ) -> Self {
        RunReport {
            run_id: run.run_id.clone(),
            automation_id: run.automation_id.clone(),
            automation_version: run.automation_version,
            subject: run.subject.clone(),
            status: run.status,
            outcome: run.outcome.clone(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            steps: history
                .iter()
                .map(|r| StepReport {
                    step_id: r.step_id.clone(),
                    step_type: r.step_type.clone(),
                    status: r.status,
                    started_at: r.started_at,
                    finished_at: r.finished_at,
                    detail: r.detail.clone(),
                    error: r.error.clone(),
                    skip_reason: r.skip_reason.clone(),
                    attempt: r.attempt,
                    email: email(&format!("{}.{}", run.run_id, r.seq)),
                    output: r.output.clone(),
                })
                .collect(),
        }
    }

    /// [`RunReport::with_emails`] for a run and history that are no longer needed: their
    /// strings and values move into the report instead of being copied.
    pub fn from_run(
        run: Run,
        history: Vec<StepRecord>,
        mut email: impl FnMut(&str) -> Option<crate::command::EmailMessage>,
    ) -> Self {
        let mut key = format!("{}.", run.run_id);
        let prefix = key.len();
        let steps = history
            .into_iter()
            .map(|r| {
                key.truncate(prefix);
                let _ = std::fmt::Write::write_fmt(&mut key, format_args!("{}", r.seq));
                StepReport {
                    step_id: r.step_id,
                    step_type: r.step_type,
                    status: r.status,
                    started_at: r.started_at,
                    finished_at: r.finished_at,
                    detail: r.detail,
                    error: r.error,
                    skip_reason: r.skip_reason,
                    attempt: r.attempt,
                    email: email(&key),
                    output: r.output,
                }
            })
            .collect();
        RunReport {
            run_id: run.run_id,
            automation_id: run.automation_id,
            automation_version: run.automation_version,
            subject: run.subject,
            status: run.status,
            outcome: run.outcome,
            started_at: run.started_at,
            finished_at: run.finished_at,
            steps,
        }
    }

    /// A readable timeline.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let contact = self
            .subject
            .contact_id
            .as_ref()
            .map(|c| format!(" (contact {c})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "run {}  {} v{}  {}/{}{}",
            self.run_id,
            self.automation_id,
            self.automation_version,
            self.subject.record_type,
            self.subject.id,
            contact
        );
        for s in &self.steps {
            let when = s.started_at.strftime("%Y-%m-%d %H:%M:%SZ");
            let _ = writeln!(
                out,
                "  {when}  {:<18} {:<26} {:<10} {}",
                s.step_id,
                s.step_type,
                s.status.as_str(),
                s.detail
            );
            if let Some(e) = &s.error {
                let _ = writeln!(out, "  {:<20}  error: {e}", "");
            }
            if let Some(email) = &s.email {
                let body = email.text.clone().or_else(|| email.html.clone()).unwrap_or_default();
                let body: String = body.chars().take(160).collect::<String>().replace('\n', " ");
                let _ = writeln!(
                    out,
                    "  {:<20}  email to {} | {} | {}",
                    "", email.to, email.subject, body
                );
            }
        }
        let end = self
            .finished_at
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  => {} {} {}",
            self.status.as_str(),
            end,
            self.outcome.clone().unwrap_or_default()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::EmailMessage;
    use crate::definition::parse_automation;
    use crate::run::StepStatus;

    #[test]
    fn a_report_from_an_owned_run_is_the_report_from_a_borrowed_one() {
        let yaml = "id: a\nname: a\nstatus: active\ntrigger: {event: lead.created}\nsteps: [{id: e, end: {}}]\n";
        let program = Program::new(parse_automation(yaml).expect("parses")).expect("compiles");
        let (event, _) = crate::event::parse_event(&serde_json::json!({
            "id": "e1", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
            "subject": {"type": "lead", "id": "L1", "contact_id": "C1"}
        }))
        .expect("event");
        let mut run = Run::new("r1".to_string(), &program, &event, Map::new(), event.time);
        run.status = RunStatus::Completed;
        run.outcome = Some("done".to_string());
        run.finished_at = Some(event.time);
        let record = |seq: u32, step_id: &str| StepRecord {
            seq,
            step_id: step_id.to_string(),
            step_type: "action:send_email".to_string(),
            status: StepStatus::Completed,
            started_at: event.time,
            finished_at: Some(event.time),
            attempt: 1,
            detail: format!("detail {seq}"),
            error: (seq == 11).then(|| "boom".to_string()),
            skip_reason: None,
            output: Some(serde_json::json!({"seq": seq})),
        };
        let history: Vec<StepRecord> = (0..12).map(|seq| record(seq, &format!("s{seq}"))).collect();
        let email = |to: &str| EmailMessage {
            to: to.to_string(),
            from: None,
            reply_to: None,
            subject: "Hi".to_string(),
            html: None,
            text: Some("text".to_string()),
        };
        let emails: HashMap<String, EmailMessage> = [("r1.1", "a@x"), ("r1.10", "b@x"), ("r2.2", "c@x")]
            .into_iter()
            .map(|(k, to)| (k.to_string(), email(to)))
            .collect();
        let borrowed = RunReport::new(&run, &history, &emails);
        let owned = RunReport::from_run(run, history, |key| emails.get(key).cloned());
        let (borrowed, owned) = (
            serde_json::to_value(&borrowed).expect("json"),
            serde_json::to_value(&owned).expect("json"),
        );
        assert_eq!(owned, borrowed);
        assert_eq!(owned["steps"][10]["email"]["to"], "b@x");
        assert_eq!(owned["steps"][1]["email"]["to"], "a@x");
    }
}
