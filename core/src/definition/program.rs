//! The executable view of an automation: every step by id, with where the run goes next.
//!
//! The step tree is block-structured; the program flattens it once so the decider can keep a
//! run's position as a single step id. When a nested path ends, `next` points at the step after
//! the one that holds the path, so paths fall through naturally.

use super::error::DefinitionError;
use super::step::{Step, StepKind};
use super::{Automation, validate};
use std::collections::HashMap;
use std::sync::Arc;

pub use super::step::{nested_path_names, nested_paths};

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
    pub fn new(automation: Automation) -> Result<Program, Vec<DefinitionError>> {
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
