//! Loading definitions from YAML or JSON, with errors that name their path
//! (e.g. `steps[2].wait.until: unknown time zone "Europe/Berln"`).

use super::program::Program;
use super::step::{Step, StepKind};
use super::{Automation, validate};
use std::path::{Path, PathBuf};

pub use super::error::DefinitionError;

/// Parses one definition. JSON is recognised by a leading `{`; anything else is read as YAML.
/// Applies defaults (id from the name), turns the flat `actions` form into steps, and validates.
pub fn parse_automation(text: &str) -> Result<Automation, Vec<DefinitionError>> {
    from_value(&parse_text(text).map_err(|e| vec![e])?)
}

/// The JSON value of a definition's text, as [`parse_automation`] reads it (JSON when it starts
/// with `{`, else YAML 1.2), before defaults and validation: what the API takes as a body.
pub fn parse_text(text: &str) -> Result<serde_json::Value, DefinitionError> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| {
            DefinitionError::new(
                "",
                format!("invalid JSON at line {} column {}: {e}", e.line(), e.column()),
            )
        })
    } else {
        serde_saphyr::from_str_with_options(text, yaml_options())
            .map_err(|e| DefinitionError::new("", format!("invalid YAML: {e}")))
    }
}

/// YAML 1.2 booleans only (`true`/`false`): a tag named `y` or `no` stays a string, not the
/// YAML 1.1 boolean it would otherwise become (the "Norway problem").
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! { strict_booleans: true }
}

/// Deserializes and validates a definition already parsed into JSON.
pub fn from_value(value: &serde_json::Value) -> Result<Automation, Vec<DefinitionError>> {
    if !value.is_object() {
        return Err(vec![DefinitionError::new(
            "",
            "a definition must be an object (a YAML mapping)",
        )]);
    }
    let mut automation: Automation = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        vec![DefinitionError::new(path, e.into_inner().to_string())]
    })?;
    let flat_form = automation.steps.is_empty() && !automation.actions.is_empty();
    normalise(&mut automation);
    let mut errors = validate::validate(&automation);
    if flat_form {
        for e in &mut errors {
            e.path = flat_path(&e.path);
        }
    }
    if errors.is_empty() { Ok(automation) } else { Err(errors) }
}

/// Maps a path in the normalised steps back to the flat form the user wrote:
/// `steps[2].action.params.x` → `actions[2].params.x`.
fn flat_path(path: &str) -> String {
    let Some(rest) = path.strip_prefix("steps[") else {
        return path.to_string();
    };
    let Some((index, rest)) = rest.split_once(']') else {
        return path.to_string();
    };
    let rest = rest.strip_prefix(".action").unwrap_or(rest);
    format!("actions[{index}]{rest}")
}

/// Fills in defaults: the id from the name, and flat `actions` as steps `action-1`, `action-2`...
fn normalise(automation: &mut Automation) {
    if automation.id.is_empty() {
        automation.id = slug(&automation.name);
    }
    if automation.steps.is_empty() && !automation.actions.is_empty() {
        automation.steps = automation
            .actions
            .drain(..)
            .enumerate()
            .map(|(i, action)| Step {
                id: format!("action-{}", i + 1),
                name: None,
                kind: StepKind::Action(action),
                continue_on_error: false,
            })
            .collect();
    }
}

/// `"Auto-assign high-priority cases"` → `"auto-assign-high-priority-cases"`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Reads and parses one file; errors are prefixed with nothing (the caller names the file).
pub fn load_automation_file(path: &Path) -> Result<Automation, Vec<DefinitionError>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![DefinitionError::new("", format!("cannot read {}: {e}", path.display()))])?;
    parse_automation(&text)
}

/// The result of loading a file or a folder of definitions.
pub type Loaded = Vec<(PathBuf, Result<Automation, Vec<DefinitionError>>)>;

/// Loads a definition file, or every `.yaml`, `.yml` and `.json` file of a folder (sorted by name,
/// not recursive).
pub fn load_automations(path: &Path) -> std::io::Result<Loaded> {
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    Ok(files
        .into_iter()
        .map(|f| {
            let loaded = load_automation_file(&f);
            (f, loaded)
        })
        .collect())
}

/// Why [`load_programs`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file or folder could not be read.
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// A file holds an invalid definition: one line per problem, each naming the file.
    #[error("{}", problems(file, errors))]
    Invalid {
        file: PathBuf,
        errors: Vec<DefinitionError>,
    },
}

fn problems(file: &Path, errors: &[DefinitionError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {e}", file.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads and compiles every definition; the first invalid file is an error naming it.
pub fn load_programs(path: &Path) -> Result<Vec<Program>, LoadError> {
    let loaded = load_automations(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut programs = Vec::new();
    for (file, result) in loaded {
        let program = result.and_then(Program::new);
        programs.push(program.map_err(|errors| LoadError::Invalid { file, errors })?);
    }
    Ok(programs)
}

#[cfg(test)]
mod yaml_tests {
    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let v: serde_json::Value =
            serde_saphyr::from_str_with_options("a: y\nb: { t: no }\nc: true", super::yaml_options()).unwrap();
        assert_eq!(v, serde_json::json!({"a": "y", "b": {"t": "no"}, "c": true}));
    }
}
