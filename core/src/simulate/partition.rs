//! The simulation on several threads: the events are split into independent parts, each part
//! runs on its own [`Simulator`], and the reports are merged back into one deterministic order.
//!
//! **Why the parts are independent.** A run meets other runs and events only through its
//! record and its contact: an event reaches the runs waiting on its record or its contact, the
//! enrollment rules count runs per automation and record, and the `enroll` and
//! `cancel_automations` actions act on the run's own record. So the events are grouped by the
//! connected components of "record and contact appear in the same event" (a union-find over
//! the subjects' record and contact keys), and a component is never split between parts. In a
//! part, every message is handled at the virtual instant it becomes visible, as in one
//! simulation of everything, so each run's history is the same whatever the number of parts.
//!
//! **The order of the reports** does not depend on the number of threads either: runs are
//! reported in the order they end (virtual time); runs that end at the same instant in different
//! components come in the order of their components' first events, and within a component in
//! the order they ended. The runs still active at the end follow in start order, as in
//! [`Simulator::run_with`].

use super::{RunReport, SimulationOptions, Simulator};
use crate::definition::Program;
use crate::event::Event;
use jiff::Timestamp;
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Reports a part hands over at a time (one wake-up of the merge per batch, not per report).
const BATCH: usize = 512;
/// Batches a part may have handed over before the merge takes them (the merge waits for the
/// slowest part, so this bounds the memory the others use meanwhile).
const CHANNEL_BATCHES: usize = 8;

/// What a whole simulation did, besides its reports.
#[derive(Debug, Default)]
pub struct SimulationOutcome {
    /// Problems met while handling messages, part by part (a failed message is not retried).
    pub errors: Vec<String>,
    /// Messages handled by all parts.
    pub messages_handled: u64,
}

/// A report (as the caller renders it), with when (virtual time) and in which component its
/// run ended.
struct Ended<T> {
    at: Timestamp,
    component: usize,
    report: T,
}

/// What a part sends to the merge.
enum FromPart<T> {
    /// Runs that ended, in the order they did.
    Ended(Vec<Ended<T>>),
    /// The part has finished: its runs still active (with their start), and its outcome.
    Done {
        active: Vec<(Timestamp, String, T)>,
        outcome: SimulationOutcome,
    },
}

/// Simulates `events` against `programs` on up to `jobs` threads (at least 1). Each run's report
/// is rendered by `render` on the thread that simulated it (so the rendering, and dropping the
/// report, happen in parallel too), then handed to `sink` on the calling thread, in the order
/// described in the [module docs](self). `max_messages` of `options` applies to each part.
pub fn simulate_partitioned<T: Send>(
    programs: Vec<Program>,
    contacts: HashMap<String, Map<String, Value>>,
    options: SimulationOptions,
    events: Vec<Event>,
    jobs: usize,
    render: impl Fn(RunReport) -> T + Sync,
    mut sink: impl FnMut(T),
) -> SimulationOutcome {
    let last_event = events.iter().map(|e| e.time).max();
    let (components, parts) = split(events, jobs.max(1));
    let contacts = Arc::new(contacts);
    std::thread::scope(|scope| {
        let mut receivers = Vec::with_capacity(parts.len());
        for events in parts {
            let (sender, receiver) = sync_channel(CHANNEL_BATCHES);
            receivers.push(receiver);
            let (programs, contacts, options, components) =
                (programs.clone(), contacts.clone(), options.clone(), &components);
            let part = Part {
                programs,
                contacts,
                options,
                events,
                last_event,
            };
            let render = &render;
            scope.spawn(move || run_part(part, components, render, sender));
        }
        merge(receivers, &mut sink)
    })
}

/// Splits the events (sorted by time, stably) into at most `jobs` parts of whole components,
/// the biggest parts first taken by the emptiest thread. Returns each record or contact key's
/// component (numbered in the order of their first events) and the parts.
fn split(mut events: Vec<Event>, jobs: usize) -> (HashMap<String, usize>, Vec<Vec<Event>>) {
    events.sort_by_key(|e| e.time);
    let keys: Vec<(String, Option<String>)> = events
        .iter()
        .map(|e| (e.subject.record_key(), e.subject.contact_key()))
        .collect();
    let mut sets = UnionFind::default();
    for (record, contact) in &keys {
        let r = sets.id(record);
        if let Some(c) = contact {
            let c = sets.id(c);
            sets.union(r, c);
        }
    }
    // Components numbered by their first event.
    let mut number: HashMap<usize, usize> = HashMap::new();
    let of_event: Vec<usize> = keys
        .iter()
        .map(|(record, _)| {
            let root = sets.find(sets.ids[record.as_str()]);
            let next = number.len();
            *number.entry(root).or_insert(next)
        })
        .collect();
    let mut sizes = vec![0usize; number.len()];
    for &c in &of_event {
        sizes[c] += 1;
    }
    let mut by_size: Vec<usize> = (0..sizes.len()).collect();
    by_size.sort_by_key(|&c| (std::cmp::Reverse(sizes[c]), c));
    let mut load = vec![0usize; jobs.min(sizes.len()).max(1)];
    let mut part_of = vec![0usize; sizes.len()];
    for c in by_size {
        let part = (0..load.len()).min_by_key(|&p| (load[p], p)).unwrap_or(0);
        part_of[c] = part;
        load[part] += sizes[c];
    }
    let mut parts: Vec<Vec<Event>> = load.iter().map(|&n| Vec::with_capacity(n)).collect();
    for (event, c) in events.into_iter().zip(&of_event) {
        parts[part_of[*c]].push(event);
    }
    let components = sets
        .ids
        .iter()
        .map(|(key, &id)| (key.clone(), number.get(&sets.find(id)).copied().unwrap_or(0)))
        .collect();
    (components, parts)
}

/// What one thread simulates.
struct Part {
    programs: Vec<Program>,
    contacts: Arc<HashMap<String, Map<String, Value>>>,
    options: SimulationOptions,
    events: Vec<Event>,
    /// The last event of all parts: every part simulates up to the same horizon after it.
    last_event: Option<Timestamp>,
}

/// One part on its own simulator and single-threaded runtime.
fn run_part<T>(
    part: Part,
    components: &HashMap<String, usize>,
    render: &dyn Fn(RunReport) -> T,
    to_merge: SyncSender<FromPart<T>>,
) {
    let Part {
        programs,
        contacts,
        options,
        events,
        last_event,
    } = part;
    let mut simulator = Simulator::with_contacts(programs, contacts, options);
    let runtime = tokio::runtime::Builder::new_current_thread().build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            let outcome = SimulationOutcome {
                errors: vec![format!("could not start a runtime: {e}")],
                messages_handled: 0,
            };
            let _ = to_merge.send(FromPart::Done {
                active: Vec::new(),
                outcome,
            });
            return;
        }
    };
    let clock = simulator.clock.clone();
    let mut batch = Vec::with_capacity(BATCH);
    runtime.block_on(simulator.advance(events, last_event, &mut |report| {
        let component = components.get(&report.subject.record_key()).copied().unwrap_or(0);
        let at = crate::ports::Clock::now(clock.as_ref());
        batch.push(Ended {
            at,
            component,
            report: render(report),
        });
        if batch.len() == BATCH {
            // The merge has stopped only if the caller's thread is unwinding.
            let _ = to_merge.send(FromPart::Ended(std::mem::replace(
                &mut batch,
                Vec::with_capacity(BATCH),
            )));
        }
    }));
    if !batch.is_empty() {
        let _ = to_merge.send(FromPart::Ended(batch));
    }
    let active = runtime
        .block_on(simulator.reports())
        .into_iter()
        .map(|r| (r.started_at, r.run_id.clone(), render(r)))
        .collect();
    let outcome = SimulationOutcome {
        errors: std::mem::take(&mut simulator.errors),
        messages_handled: simulator.messages_handled,
    };
    let _ = to_merge.send(FromPart::Done { active, outcome });
}

/// Hands the parts' reports to `sink` in order: the earliest end first; at one instant, by
/// component (stable, so a component's runs keep their order); then the runs still active, in
/// start order.
fn merge<T>(parts: Vec<Receiver<FromPart<T>>>, sink: &mut dyn FnMut(T)) -> SimulationOutcome {
    let mut pending: Vec<VecDeque<Ended<T>>> = parts.iter().map(|_| VecDeque::new()).collect();
    let mut done = vec![false; parts.len()];
    let mut active = Vec::new();
    let mut total = SimulationOutcome::default();
    // Makes sure part `p` has a report waiting, unless it has finished.
    let mut refill = |p: usize, pending: &mut Vec<VecDeque<Ended<T>>>, done: &mut Vec<bool>| {
        while pending[p].is_empty() && !done[p] {
            match parts[p].recv() {
                Ok(FromPart::Ended(batch)) => pending[p].extend(batch),
                Ok(FromPart::Done { active: a, outcome }) => {
                    done[p] = true;
                    active.extend(a);
                    total.errors.extend(outcome.errors);
                    total.messages_handled += outcome.messages_handled;
                }
                Err(_) => {
                    done[p] = true;
                    total.errors.push(format!("part {p} of the simulation stopped early"));
                }
            }
        }
    };
    let mut batch: Vec<Ended<T>> = Vec::new();
    loop {
        for p in 0..parts.len() {
            refill(p, &mut pending, &mut done);
        }
        let Some(at) = pending.iter().filter_map(|q| q.front()).map(|e| e.at).min() else {
            break;
        };
        for p in 0..parts.len() {
            while pending[p].front().is_some_and(|e| e.at == at) {
                batch.extend(pending[p].pop_front());
                refill(p, &mut pending, &mut done);
            }
        }
        batch.sort_by_key(|e| e.component);
        for ended in batch.drain(..) {
            sink(ended.report);
        }
    }
    active.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (_, _, report) in active {
        sink(report);
    }
    total
}

/// Disjoint sets of keys (union by size).
#[derive(Default)]
struct UnionFind {
    ids: HashMap<String, usize>,
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    fn id(&mut self, key: &str) -> usize {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let id = self.parent.len();
        self.ids.insert(key.to_string(), id);
        self.parent.push(id);
        self.size.push(1);
        id
    }

    /// The set's representative (union by size keeps the trees O(log n) deep).
    fn find(&self, mut x: usize) -> usize {
        while self.parent[x] != x {
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::parse_automation;
    use serde_json::json;

    fn program(yaml: &str) -> Program {
        Program::new(parse_automation(yaml).expect("valid")).expect("compiles")
    }

    fn event(id: &str, event_type: &str, time: &str, record: &str, contact: Option<&str>) -> Event {
        let mut subject = json!({"type": "lead", "id": record});
        if let Some(c) = contact {
            subject["contact_id"] = json!(c);
        }
        crate::event::parse_event(&json!({
            "id": id, "type": event_type, "time": time, "subject": subject, "data": {"score": 7}
        }))
        .expect("event")
        .0
    }

    /// Leads whose runs wait for a reply (by record or by contact), enroll into a second
    /// automation and wait past the last event, so parts must agree on the horizon.
    fn case() -> (Vec<Program>, Vec<Event>) {
        let programs = vec![
            program(
                "id: follow\nname: f\nstatus: active\ntrigger: {event: lead.created}\nsteps:\n  - {id: hello, action: {type: add_tag, params: {tag: t}}}\n  - {id: reply, wait_for_event: {event: message.received, timeout: 3d, on_timeout: [{id: chase, action: {type: enroll, params: {automation_id: chase}}}]}}\n  - {id: done, end: {reason: replied}}\n",
            ),
            program(
                "id: chase\nname: c\nstatus: active\ntrigger: {event: never.sent}\nsteps:\n  - {id: later, wait: {duration: 20d}}\n  - {id: tag, action: {type: add_tag, params: {tag: chased}}}\n",
            ),
        ];
        let mut events = Vec::new();
        for i in 0..12 {
            let (lead, contact) = (format!("L{i}"), format!("C{}", i / 2));
            let day = 1 + i % 5;
            events.push(event(
                &format!("c{i}"),
                "lead.created",
                &format!("2026-03-0{day}T09:00:00Z"),
                &lead,
                Some(&contact),
            ));
            if i % 3 == 0 {
                // A reply naming only the contact: it reaches the contact's other lead's run too.
                events.push(event(
                    &format!("m{i}"),
                    "message.received",
                    &format!("2026-03-0{day}T10:00:00Z"),
                    &format!("X{i}"),
                    Some(&contact),
                ));
            }
        }
        // The last event, on a record of its own, a month later.
        events.push(event("late", "lead.created", "2026-04-05T09:00:00Z", "L99", None));
        (programs, events)
    }

    fn options() -> SimulationOptions {
        SimulationOptions {
            horizon: jiff::SignedDuration::from_hours(24 * 10),
            ..SimulationOptions::default()
        }
    }

    #[test]
    fn components_join_records_through_their_contacts() {
        let (_, events) = case();
        let (components, parts) = split(events.clone(), 3);
        assert_eq!(components["lead/L0"], components["lead/L1"], "same contact C0");
        assert_eq!(components["lead/L0"], components["lead/X0"], "the reply names C0");
        assert_ne!(components["lead/L0"], components["lead/L2"]);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), events.len(), "no event lost");
        for part in &parts {
            assert!(
                part.windows(2).all(|w| w[0].time <= w[1].time),
                "each part in time order"
            );
        }
        let part_of = |key: &str| {
            parts
                .iter()
                .position(|p| p.iter().any(|e| e.subject.record_key() == key))
        };
        assert_eq!(part_of("lead/L0"), part_of("lead/X0"), "a component stays in one part");
        assert_eq!(part_of("lead/L0"), part_of("lead/L1"));
    }

    #[tokio::test]
    async fn any_number_of_threads_gives_the_one_simulations_reports() {
        let (programs, events) = case();
        let mut one = Simulator::new(programs.clone(), HashMap::new(), options());
        let whole = one.run(events.clone()).await;
        let as_json = |r: &RunReport| serde_json::to_string(r).expect("json");
        let mut expected: Vec<String> = whole.iter().map(as_json).collect();
        expected.sort();
        assert!(whole.iter().any(|r| r.automation_id == "chase"), "runs were enrolled");
        assert!(
            whole
                .iter()
                .any(|r| r.automation_id == "chase" && r.finished_at.is_some()),
            "a 20-day wait ended within the horizon after the last event"
        );
        let mut first_order = None;
        for jobs in 1..=4 {
            let mut reports = Vec::new();
            let outcome = simulate_partitioned(
                programs.clone(),
                HashMap::new(),
                options(),
                events.clone(),
                jobs,
                |r| as_json(&r),
                |r| reports.push(r),
            );
            assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
            assert_eq!(outcome.messages_handled, one.messages_handled, "jobs {jobs}");
            let mut sorted = reports.clone();
            sorted.sort();
            assert_eq!(sorted, expected, "jobs {jobs}: the same runs with the same histories");
            match &first_order {
                None => first_order = Some(reports),
                Some(order) => assert_eq!(&reports, order, "jobs {jobs}: the same order"),
            }
        }
    }
}
