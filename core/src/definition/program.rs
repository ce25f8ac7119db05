//! The executable view of an automation: every step by id, with where the run goes next.
//!
//! The step tree is block-structured; the program flattens it once so the decider can keep a
//! run's position as a single step id. When a nested path ends, `next` points at the step after
//! the one that holds the path, so paths fall through naturally.

use super::step::{Step, StepKind};
use super::{Automation, validate};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Node {
    /// Shared, so that a copy of a node (the decider takes one per step it enters) does not
    /// copy the step and the paths nested in it.
    pub step: Arc<Step>,
    /// Where the run goes when this step finishes normally (`None`: the run is complete).
    pub next: Option<String>,
    /// Position in depth-first order; a goal "ahead" of the run has a larger order.
    pub order: usize,
}

/// A validated automation, ready for the decider.
#[derive(Debug, Clone)]
pub struct Program {
    pub automation: Automation,
    nodes: HashMap<String, Node>,
    first: Option<String>,
    /// Goal step ids in depth-first order.
    goals: Vec<String>,
}

impl Program {
    /// Builds the program. The automation must have passed validation (unique ids, goto targets
    /// that exist); this re-checks and returns the validation errors otherwise.
    pub fn new(automation: Automation) -> Result<Program, Vec<super::DefinitionError>> {
        let errors = validate::validate(&automation);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut nodes = HashMap::new();
        let mut goals = Vec::new();
        let mut order = 0;
        walk(&automation.steps, None, &mut nodes, &mut goals, &mut order);
        let first = automation.steps.first().map(|s| s.id.clone());
        Ok(Program {
            automation,
            nodes,
            first,
            goals,
        })
    }

    pub fn id(&self) -> &str {
        &self.automation.id
    }

    pub fn version(&self) -> u32 {
        self.automation.version
    }

    pub fn first_step(&self) -> Option<&str> {
        self.first.as_deref()
    }

    pub fn node(&self, step_id: &str) -> Option<&Node> {
        self.nodes.get(step_id)
    }

    /// Where a nested path starts: its first step, or (empty path) the step after its holder.
    pub fn path_entry(&self, holder: &str, path: &[Step]) -> Option<String> {
        match path.first() {
            Some(first) => Some(first.id.clone()),
            None => self.nodes.get(holder).and_then(|n| n.next.clone()),
        }
    }

    /// Goal nodes in depth-first order.
    pub fn goals(&self) -> impl Iterator<Item = &Node> {
        self.goals.iter().filter_map(|id| self.nodes.get(id))
    }

    pub fn step_count(&self) -> usize {
        self.nodes.len()
    }
}

fn walk(
    steps: &[Step],
    after: Option<String>,
    nodes: &mut HashMap<String, Node>,
    goals: &mut Vec<String>,
    order: &mut usize,
) {
    for (i, step) in steps.iter().enumerate() {
        let next = steps.get(i + 1).map(|s| s.id.clone()).or_else(|| after.clone());
        if matches!(step.kind, StepKind::Goal(_)) {
            goals.push(step.id.clone());
        }
        nodes.insert(
            step.id.clone(),
            Node {
                step: Arc::new(step.clone()),
                next: next.clone(),
                order: *order,
            },
        );
        *order += 1;
        for path in nested_paths(step) {
            walk(path, next.clone(), nodes, goals, order);
        }
    }
}

/// The nested step lists a step holds, in definition order.
pub fn nested_paths(step: &Step) -> Vec<&[Step]> {
    match &step.kind {
        StepKind::Branch(b) => {
            let mut v: Vec<&[Step]> = vec![b.then.as_slice()];
            v.extend(b.cases.iter().map(|c| c.steps.as_slice()));
            v.push(b.otherwise.as_slice());
            v
        }
        StepKind::Split(s) => s.paths.iter().map(|p| p.steps.as_slice()).collect(),
        StepKind::WaitForEvent(w) => vec![w.on_event.as_slice(), w.on_timeout.as_slice()],
        StepKind::HumanTask(h) => vec![h.on_timeout.as_slice()],
        StepKind::Action(_) | StepKind::Wait(_) | StepKind::Goal(_) | StepKind::End(_) | StepKind::Goto(_) => {
            Vec::new()
        }
    }
}

/// The name of each nested list of a step, matching [`nested_paths`] (for error paths).
pub fn nested_path_names(step: &Step) -> Vec<String> {
    match &step.kind {
        StepKind::Branch(b) => {
            let mut v = vec!["branch.then".to_string()];
            v.extend((0..b.cases.len()).map(|i| format!("branch.cases[{i}].steps")));
            v.push("branch.else".to_string());
            v
        }
        StepKind::Split(s) => (0..s.paths.len()).map(|i| format!("split.paths[{i}].steps")).collect(),
        StepKind::WaitForEvent(_) => {
            vec![
                "wait_for_event.on_event".to_string(),
                "wait_for_event.on_timeout".to_string(),
            ]
        }
        StepKind::HumanTask(_) => vec!["human_task.on_timeout".to_string()],
        StepKind::Action(_) | StepKind::Wait(_) | StepKind::Goal(_) | StepKind::End(_) | StepKind::Goto(_) => {
            Vec::new()
        }
    }
}
