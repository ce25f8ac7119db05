//! Structural validation beyond what deserialization checks: unique step ids, goto targets that
//! exist, split percentages, goal and enrollment options, action parameters.
//!
//! Syntax errors in durations, time zones, conditions and templates are already caught while
//! deserializing (each of those types validates itself) and come with their path.

use super::action::Action;
use super::error::DefinitionError;
use super::step::{Step, StepKind, nested_path_names, nested_paths};
use super::{Automation, Reenroll};
use crate::template::Template;
use std::collections::HashMap;

/// Every problem found, each with its path. Empty means valid.
pub fn validate(automation: &Automation) -> Vec<DefinitionError> {
    let mut errors = Vec::new();
    let mut err = |path: &str, message: String| errors.push(DefinitionError::new(path, message));
    check_header(automation, &mut err);
    check_trigger(automation, &mut err);
    check_form(automation, &mut err);
    check_run_rules(automation, &mut err);
    check_step_tree(&automation.steps, &mut errors);
    errors
}

/// `id`, `name`, `version`.
fn check_header(automation: &Automation, err: &mut impl FnMut(&str, String)) {
    if automation.id.is_empty()
        || !automation
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        err(
            "id",
            format!(
                "invalid automation id \"{}\": use letters, digits, '-' and '_'",
                automation.id
            ),
        );
    }
    if automation.name.trim().is_empty() {
        err("name", "must not be empty".to_string());
    }
    if automation.version == 0 {
        err("version", "must be 1 or more".to_string());
    }
}

/// `trigger.event`: at least one well-formed event type.
fn check_trigger(automation: &Automation, err: &mut impl FnMut(&str, String)) {
    let patterns = automation.trigger.event.patterns();
    if patterns.is_empty() {
        err("trigger.event", "at least one event type is required".to_string());
    }
    for (i, p) in patterns.iter().enumerate() {
        if !valid_event_pattern(p) {
            let path = if patterns.len() == 1 {
                "trigger.event".to_string()
            } else {
                format!("trigger.event[{i}]")
            };
            err(&path, format!("invalid event type \"{p}\""));
        }
    }
}

/// Exactly one of the flat form (`actions`) and the steps form (`steps`).
fn check_form(automation: &Automation, err: &mut impl FnMut(&str, String)) {
    if !automation.actions.is_empty() && !automation.steps.is_empty() {
        err("", "use either `actions` (flat form) or `steps`, not both".to_string());
    }
    if automation.actions.is_empty() && automation.steps.is_empty() {
        err(
            "steps",
            "an automation needs at least one step (or `actions`)".to_string(),
        );
    }
}

/// `enrollment`, `exit` and `limits`.
fn check_run_rules(automation: &Automation, err: &mut impl FnMut(&str, String)) {
    match (automation.enrollment.reenroll, &automation.enrollment.after) {
        (Reenroll::After, None) => err("enrollment.after", "required with reenroll: after".to_string()),
        (Reenroll::Once | Reenroll::Always, Some(_)) => {
            err("enrollment.after", "only allowed with reenroll: after".to_string())
        }
        _ => {}
    }
    if let Some(exit) = &automation.exit {
        if exit.events.is_empty() && exit.condition.is_none() {
            err("exit", "needs `events` or `condition`".to_string());
        }
        for (i, e) in exit.events.iter().enumerate() {
            if !valid_event_pattern(e) {
                err(&format!("exit.events[{i}]"), format!("invalid event type \"{e}\""));
            }
        }
    }
    if automation.limits.max_steps == 0 {
        err("limits.max_steps", "must be 1 or more".to_string());
    }
}

/// Every step: ids unique across the whole tree, goto targets that exist, each kind's rules.
fn check_step_tree(steps: &[Step], errors: &mut Vec<DefinitionError>) {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut gotos: Vec<(String, String)> = Vec::new();
    walk(steps, "steps", &mut seen, &mut gotos, errors);
    for (path, target) in gotos {
        if !seen.contains_key(&target) {
            errors.push(DefinitionError::new(
                path,
                format!("goto target \"{target}\" does not exist"),
            ));
        }
    }
}

fn walk(
    steps: &[Step],
    base: &str,
    seen: &mut HashMap<String, String>,
    gotos: &mut Vec<(String, String)>,
    errors: &mut Vec<DefinitionError>,
) {
    for (i, step) in steps.iter().enumerate() {
        let path = format!("{base}[{i}]");
        if step.id.is_empty() || step.id.chars().any(|c| c.is_whitespace() || c == '#' || c == '/') {
            errors.push(DefinitionError::new(
                format!("{path}.id"),
                format!("invalid step id \"{}\": no spaces, '#' or '/'", step.id),
            ));
        }
        if let Some(first) = seen.get(&step.id) {
            errors.push(DefinitionError::new(
                format!("{path}.id"),
                format!("duplicate step id \"{}\" (first used at {first})", step.id),
            ));
        } else {
            seen.insert(step.id.clone(), path.clone());
        }
        check_step(step, &path, gotos, errors);
        for (nested, name) in nested_paths(step).into_iter().zip(nested_path_names(step)) {
            walk(nested, &format!("{path}.{name}"), seen, gotos, errors);
        }
    }
}

fn check_step(step: &Step, path: &str, gotos: &mut Vec<(String, String)>, errors: &mut Vec<DefinitionError>) {
    let mut err = |p: String, m: String| errors.push(DefinitionError::new(p, m));
    match &step.kind {
        StepKind::Goto(target) => gotos.push((format!("{path}.goto"), target.clone())),
        StepKind::Branch(b) => {
            if b.condition.is_none() && !b.then.is_empty() {
                err(format!("{path}.branch.then"), "`then` needs `if`".to_string());
            }
            if b.condition.is_none() && b.cases.is_empty() {
                err(
                    format!("{path}.branch"),
                    "needs `if` (with `then`) or `cases`".to_string(),
                );
            }
        }
        StepKind::Split(s) => {
            if s.paths.len() < 2 {
                err(
                    format!("{path}.split.paths"),
                    "a split needs at least two paths".to_string(),
                );
            }
            let total: u32 = s.paths.iter().map(|p| p.percent).sum();
            if total != 100 {
                err(
                    format!("{path}.split.paths"),
                    format!("percentages add up to {total}, not 100"),
                );
            }
        }
        StepKind::Goal(g) => {
            if g.event.is_none() && g.condition.is_none() {
                err(
                    format!("{path}.goal"),
                    "a goal needs `event` or `condition`".to_string(),
                );
            }
            if let Some(e) = &g.event
                && !valid_event_pattern(e)
            {
                err(format!("{path}.goal.event"), format!("invalid event type \"{e}\""));
            }
            if g.timeout.is_some() && !g.required {
                err(
                    format!("{path}.goal.timeout"),
                    "only a required goal can have a timeout".to_string(),
                );
            }
        }
        StepKind::WaitForEvent(w) => {
            if !valid_event_pattern(&w.event) {
                err(
                    format!("{path}.wait_for_event.event"),
                    format!("invalid event type \"{}\"", w.event),
                );
            }
            if w.timeout.is_none() && !w.on_timeout.is_empty() {
                err(
                    format!("{path}.wait_for_event.on_timeout"),
                    "`on_timeout` needs `timeout`".to_string(),
                );
            }
        }
        StepKind::HumanTask(h) => {
            if h.timeout.is_none() && !h.on_timeout.is_empty() {
                err(
                    format!("{path}.human_task.on_timeout"),
                    "`on_timeout` needs `timeout`".to_string(),
                );
            }
        }
        StepKind::Action(action) => check_action(action, &format!("{path}.action.params"), errors),
        StepKind::Wait(_) | StepKind::End(_) => {}
    }
}

fn check_action(action: &Action, path: &str, errors: &mut Vec<DefinitionError>) {
    let mut err = |p: String, m: &str| errors.push(DefinitionError::new(p, m));
    match action {
        Action::Assign(a) if a.user_id.is_some() == a.queue_id.is_some() => {
            err(path.to_string(), "assign needs exactly one of `user_id` or `queue_id`");
        }
        Action::UpdateContact(u) => {
            if u.fields.is_empty() {
                err(format!("{path}.fields"), "at least one field is required");
            }
            check_field_templates(&u.fields, &format!("{path}.fields"), errors);
        }
        Action::CreateLead(c) => check_field_templates(&c.fields, &format!("{path}.fields"), errors),
        Action::AddTag(t) | Action::RemoveTag(t) if t.tag.trim().is_empty() => {
            err(format!("{path}.tag"), "must not be empty");
        }
        Action::Webhook(w)
            if !matches!(
                w.method.to_ascii_uppercase().as_str(),
                "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
            ) =>
        {
            err(
                format!("{path}.method"),
                &format!("unsupported HTTP method \"{}\"", w.method),
            );
        }
        Action::SendEmail(e) if e.html.is_none() && e.text.is_none() => {
            err(path.to_string(), "send_email needs `html` or `text`");
        }
        _ => {}
    }
}

fn check_field_templates(
    fields: &serde_json::Map<String, serde_json::Value>,
    path: &str,
    errors: &mut Vec<DefinitionError>,
) {
    for (name, value) in fields {
        if let serde_json::Value::String(s) = value
            && let Err(e) = Template::parse(s)
        {
            errors.push(DefinitionError::new(format!("{path}.{name}"), e.to_string()));
        }
    }
}

/// Event types and patterns: `[A-Za-z0-9_.:-]+`, optionally ending in `*` (prefix wildcard).
pub fn valid_event_pattern(p: &str) -> bool {
    let body = p.strip_suffix('*').unwrap_or(p);
    (p == "*" || !body.is_empty())
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}
