//! Where events meet the run. An event is applied once (dedupe by id), and waits while an
//! action is out. An applied event that concerns the run refreshes its snapshots, then
//! [`match_event`] weighs it against, in this order, the exit rule, the goals at or after the
//! run's position, and the `wait_for_event` step the run is parked on. The first match acts.

use super::lifecycle::Ending;
use super::{MAX_DEFERRED_EVENTS, MAX_RECENT_EVENT_IDS, Machine};
use crate::condition::{ConditionError, Scope};
use crate::definition::program::Node;
use crate::definition::{GoalSpec, Program, StepKind, WaitForEventSpec};
use crate::event::Event;
use crate::run::{Cursor, Run, WaitingFor};

/// A condition an event was weighed against could not be evaluated; the run fails.
#[derive(Debug, thiserror::Error)]
pub enum EventMatchError {
    #[error("exit condition could not be evaluated: {0}")]
    ExitCondition(ConditionError),
    #[error("goal \"{goal_id}\" condition could not be evaluated: {error}")]
    GoalCondition { goal_id: String, error: ConditionError },
    #[error("step \"{step_id}\" condition could not be evaluated: {error}")]
    AwaitedCondition { step_id: String, error: ConditionError },
}

/// What an event means for the run.
enum EventMatch<'p> {
    /// It is one of the exit rule's events.
    ExitEvent { pattern: &'p str },
    /// The exit rule's condition holds after it.
    ExitCondition { why: String },
    /// It met a goal (`at_goal`: the one the run waits at).
    Goal {
        node: &'p Node,
        goal: &'p GoalSpec,
        at_goal: bool,
        why: String,
    },
    /// It is the event the run's `wait_for_event` step waits for.
    Awaited {
        node: &'p Node,
        spec: &'p WaitForEventSpec,
        why: String,
    },
}

impl Machine<'_> {
    /// An event routed to the run: applied now, or kept until the action in flight is done.
    pub(super) fn receive(&mut self, event: &Event) {
        if self.run.recent_event_ids.contains(&event.id) {
            return;
        }
        self.run.recent_event_ids.push(event.id.clone());
        if self.run.recent_event_ids.len() > MAX_RECENT_EVENT_IDS {
            self.run.recent_event_ids.remove(0);
        }
        let in_flight = self
            .run
            .cursor
            .as_ref()
            .is_some_and(|c| matches!(c.waiting_for, WaitingFor::Action { .. }));
        if !in_flight {
            self.apply(event);
        } else if !self.run.deferred_events.iter().any(|e| e.id == event.id) {
            if self.run.deferred_events.len() >= MAX_DEFERRED_EVENTS {
                self.run.deferred_events.remove(0);
            }
            self.run.deferred_events.push(event.clone());
        }
    }

    /// Applies the events kept while an action was out, as long as the run can take them.
    pub(super) fn drain_deferred(&mut self) {
        while !self.run.status.is_terminal()
            && !self.run.deferred_events.is_empty()
            && !self
                .run
                .cursor
                .as_ref()
                .is_some_and(|c| matches!(c.waiting_for, WaitingFor::Action { .. } | WaitingFor::Continue))
        {
            let event = self.run.deferred_events.remove(0);
            self.apply(&event);
        }
    }

    /// Applies an event: refresh the snapshots, then act on what it meets.
    fn apply(&mut self, event: &Event) {
        if !self.concerns(event) {
            return;
        }
        self.absorb(event);
        let program = self.program;
        let cursor = self.run.cursor.as_ref();
        let awaited = cursor.and_then(|c| program.node(&c.step_id));
        let reads = |root: &str| event_conditions_read(program, awaited, root);
        match self.with_scope(reads, |run, scope| match_event(program, run, event, scope)) {
            Ok(None) => {}
            Ok(Some(found)) => self.act_on(found, event),
            Err(error) => self.end(Ending::Failed, error.to_string()),
        }
    }

    fn act_on(&mut self, found: EventMatch<'_>, event: &Event) {
        match found {
            EventMatch::ExitEvent { pattern } => {
                let reason = format!("exit: event {} ({}) matched {pattern}", event.event_type, event.id);
                self.end(Ending::Cancelled, reason);
            }
            EventMatch::ExitCondition { why } => {
                self.end(
                    Ending::Cancelled,
                    format!("exit condition met after event {}: {why}", event.id),
                );
            }
            EventMatch::Goal {
                node,
                goal,
                at_goal,
                why,
            } => self.goal_reached(node, goal, at_goal, &why),
            EventMatch::Awaited { node, spec, why } => self.event_received(node, spec, event, &why),
        }
    }

    /// Does an event routed to this run concern it? Runs are routed events by record and by
    /// contact. An event concerns the run when it is about the run's record, about the run's
    /// contact, or about a record of another type belonging to the same contact (a reply message,
    /// an email click). An event about a *sibling* record of the same type (another lead of the
    /// same contact) does not: it neither meets this run's waits and goals nor exits it.
    fn concerns(&self, event: &Event) -> bool {
        let run = &self.run.subject;
        if event.subject.same_record_key(run) {
            return true;
        }
        let contact = self.run.contact_id();
        if event.subject.record_type == "contact" {
            return Some(&event.subject.id) == contact.as_ref();
        }
        event.subject.record_type != run.record_type
            && contact.is_some()
            && event.subject.contact_id.as_ref() == contact.as_ref()
    }

    /// Merges an event into the snapshots conditions see.
    fn absorb(&mut self, event: &Event) {
        self.run.data.event = crate::run::SharedValue::new(event.to_scope_value());
        if event.subject.same_record_key(&self.run.subject) {
            for (k, v) in &event.data {
                self.run.data.record.set(k, v);
            }
            self.run.data.previous.assign(event.previous.as_ref());
        }
        let contact_id = self.run.contact_id();
        let is_contact_record =
            event.subject.record_type == "contact" && Some(&event.subject.id) == contact_id.as_ref();
        if is_contact_record {
            for (k, v) in &event.data {
                self.run.data.contact.set(k, v);
            }
        }
        if let Some(c) = &event.contact
            && (event.subject.contact_id.is_none() || event.subject.contact_id == contact_id)
        {
            for (k, v) in c {
                self.run.data.contact.set(k, v);
            }
        }
    }
}

/// Whether the conditions [`match_event`] may evaluate read the scope's top-level value `root`:
/// the exit rule's, every goal's, and that of the `wait_for_event` step the run waits at
/// (`awaited`, the step the run is parked on).
fn event_conditions_read(program: &Program, awaited: Option<&Node>, root: &str) -> bool {
    let exit = program
        .automation
        .exit
        .as_ref()
        .and_then(|exit| exit.condition.as_ref());
    let goals = program.goals().filter_map(|node| match &node.step.kind {
        StepKind::Goal(goal) => goal.condition.as_ref(),
        _ => None,
    });
    let waited = awaited.and_then(|node| match &node.step.kind {
        StepKind::WaitForEvent(spec) => spec.condition.as_ref(),
        _ => None,
    });
    exit.into_iter().chain(goals).chain(waited).any(|c| c.reads(root))
}

/// Weighs an event (already absorbed into `scope`) against the exit rule, then the goals, then
/// the step the run waits at. `None`: the event changes nothing beyond the snapshots.
fn match_event<'p>(
    program: &'p Program,
    run: &Run,
    event: &Event,
    scope: &Scope,
) -> Result<Option<EventMatch<'p>>, EventMatchError> {
    if let Some(found) = match_exit(program, event, scope)? {
        return Ok(Some(found));
    }
    let Some(cursor) = &run.cursor else { return Ok(None) };
    if let Some(found) = match_goal(program, cursor, event, scope)? {
        return Ok(Some(found));
    }
    match_awaited(program, cursor, event, scope)
}

fn match_exit<'p>(
    program: &'p Program,
    event: &Event,
    scope: &Scope,
) -> Result<Option<EventMatch<'p>>, EventMatchError> {
    let Some(exit) = &program.automation.exit else {
        return Ok(None);
    };
    if let Some(pattern) = exit.events.iter().find(|p| event.type_matches(p)) {
        return Ok(Some(EventMatch::ExitEvent { pattern }));
    }
    let Some(condition) = &exit.condition else {
        return Ok(None);
    };
    match condition.explain(scope).map_err(EventMatchError::ExitCondition)? {
        (true, why) => Ok(Some(EventMatch::ExitCondition { why })),
        (false, _) => Ok(None),
    }
}

/// The first goal at or after the run's position (the goal it waits at included) that the
/// event meets: its event type, if it names one, and its condition, if it has one.
fn match_goal<'p>(
    program: &'p Program,
    cursor: &Cursor,
    event: &Event,
    scope: &Scope,
) -> Result<Option<EventMatch<'p>>, EventMatchError> {
    let current_order = program.node(&cursor.step_id).map(|n| n.order).unwrap_or(0);
    let waits_at_goal = cursor.waiting_for == WaitingFor::Goal;
    let ahead = program
        .goals()
        .filter(|g| g.order > current_order || (g.order == current_order && waits_at_goal));
    for node in ahead {
        let StepKind::Goal(goal) = &node.step.kind else {
            continue;
        };
        if !goal.event.as_ref().is_none_or(|p| event.type_matches(p)) {
            continue;
        }
        let (holds, why) = match &goal.condition {
            None => (true, format!("event {} ({})", event.event_type, event.id)),
            Some(condition) => condition
                .explain(scope)
                .map_err(|error| EventMatchError::GoalCondition {
                    goal_id: node.step.id.clone(),
                    error,
                })?,
        };
        if holds {
            let at_goal = node.step.id == cursor.step_id;
            return Ok(Some(EventMatch::Goal {
                node,
                goal,
                at_goal,
                why,
            }));
        }
    }
    Ok(None)
}

/// The `wait_for_event` step the run is parked on, if this is its event and its condition holds.
fn match_awaited<'p>(
    program: &'p Program,
    cursor: &Cursor,
    event: &Event,
    scope: &Scope,
) -> Result<Option<EventMatch<'p>>, EventMatchError> {
    if cursor.waiting_for != WaitingFor::Event {
        return Ok(None);
    }
    let Some(node) = program.node(&cursor.step_id) else {
        return Ok(None);
    };
    let StepKind::WaitForEvent(spec) = &node.step.kind else {
        return Ok(None);
    };
    if !event.type_matches(&spec.event) {
        return Ok(None);
    }
    let (holds, why) = match &spec.condition {
        None => (true, String::new()),
        Some(condition) => condition
            .explain(scope)
            .map_err(|error| EventMatchError::AwaitedCondition {
                step_id: node.step.id.clone(),
                error,
            })?,
    };
    Ok(holds.then_some(EventMatch::Awaited { node, spec, why }))
}
