//! `crmflow`: validate automation definitions, simulate them against sample events, print the
//! definition schema; load definitions into a deployment and read its runs (see `aws.rs`).

mod aws;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use crmflow::definition::{Automation, AutomationStatus, Program, load_automations};
use crmflow::event::parse_events_text;
use crmflow::simulate::{SimulationOptions, Simulator};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The engine allocates many small JSON values; mimalloc handles that far better than the
/// system allocator (measured with `scripts/bench-simulate.sh`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "crmflow",
    version,
    about = "CRM workflow automations: validate, simulate, inspect"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check definition files (or folders of them); print every error with its path.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run events through the automations on the embedded engine, with a virtual clock that
    /// fast-forwards waits. Side effects are recorded, not performed.
    Simulate {
        /// A definition file or a folder of them (.yaml, .yml, .json).
        #[arg(long)]
        automations: PathBuf,
        /// A JSON file (an array or one event) or JSON lines; CloudEvents, EventBridge or native.
        #[arg(long)]
        events: PathBuf,
        /// Contact snapshots: a JSON array of objects with `id`, or an object keyed by contact id.
        #[arg(long)]
        contacts: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Treat draft automations as active (test them before activating).
        #[arg(long)]
        include_drafts: bool,
        /// Stop fast-forwarding this many days after the last event.
        #[arg(long, default_value_t = 365)]
        horizon_days: i64,
        /// Print only the summary line (for benchmarks).
        #[arg(long)]
        summary_only: bool,
    },
    /// Print the JSON Schema of an automation definition.
    Schema,
    /// Validate definitions, then store them in a deployment's DynamoDB table (all or nothing;
    /// an already stored version must be identical).
    DeployAutomations {
        /// The deployment's DynamoDB table (the stack output `TableName`).
        #[arg(long)]
        table: String,
        /// Definition files or folders of them (.yaml, .yml, .json).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Read runs from a deployment's DynamoDB table.
    Runs {
        #[command(subcommand)]
        command: aws::RunsCommand,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { files } => validate(&files),
        Command::Simulate {
            automations,
            events,
            contacts,
            format,
            include_drafts,
            horizon_days,
            summary_only,
        } => simulate(
            &automations,
            &events,
            contacts.as_deref(),
            format,
            include_drafts,
            horizon_days,
            summary_only,
        ),
        Command::Schema => schema(),
        Command::DeployAutomations { table, paths } => aws::deploy_automations(&table, &paths),
        Command::Runs { command } => aws::runs(command),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn validate(files: &[PathBuf]) -> Result<bool> {
    let mut ok = true;
    for path in files {
        let loaded = load_automations(path).with_context(|| format!("reading {}", path.display()))?;
        if loaded.is_empty() {
            eprintln!("{}: no definition files (.yaml, .yml, .json)", path.display());
            ok = false;
        }
        for (file, result) in loaded {
            match result.and_then(Program::new) {
                Ok(p) => println!(
                    "ok  {}  ({} v{}, {} steps)",
                    file.display(),
                    p.id(),
                    p.version(),
                    p.step_count()
                ),
                Err(errors) => {
                    ok = false;
                    for e in errors {
                        println!("{}: {e}", file.display());
                    }
                }
            }
        }
    }
    Ok(ok)
}

fn schema() -> Result<bool> {
    let schema = schemars::schema_for!(Automation);
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(true)
}

fn load_contacts(path: &Path) -> Result<HashMap<String, Map<String, Value>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: Value = serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    let mut out = HashMap::new();
    match value {
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                let Value::Object(map) = item else {
                    bail!("{}: [{i}]: a contact must be an object", path.display())
                };
                let Some(id) = map.get("id").and_then(Value::as_str).map(str::to_string) else {
                    bail!("{}: [{i}].id: missing", path.display())
                };
                out.insert(id, map);
            }
        }
        Value::Object(map) => {
            for (id, item) in map {
                let Value::Object(mut fields) = item else {
                    bail!("{}: {id}: a contact must be an object", path.display())
                };
                fields.entry("id").or_insert_with(|| Value::String(id.clone()));
                out.insert(id, fields);
            }
        }
        _ => bail!(
            "{}: expected an array of contacts or an object keyed by contact id",
            path.display()
        ),
    }
    Ok(out)
}

fn simulate(
    automations: &Path,
    events: &Path,
    contacts: Option<&Path>,
    format: Format,
    include_drafts: bool,
    horizon_days: i64,
    summary_only: bool,
) -> Result<bool> {
    let mut ok = true;
    let mut programs = Vec::new();
    for (file, result) in load_automations(automations).with_context(|| format!("reading {}", automations.display()))? {
        match result {
            Ok(mut automation) => {
                if include_drafts && automation.status == AutomationStatus::Draft {
                    automation.status = AutomationStatus::Active;
                }
                match Program::new(automation) {
                    Ok(p) => programs.push(p),
                    Err(errors) => {
                        ok = false;
                        errors.iter().for_each(|e| eprintln!("{}: {e}", file.display()));
                    }
                }
            }
            Err(errors) => {
                ok = false;
                errors.iter().for_each(|e| eprintln!("{}: {e}", file.display()));
            }
        }
    }
    let text = std::fs::read_to_string(events).with_context(|| format!("reading {}", events.display()))?;
    let mut parsed = Vec::new();
    for result in parse_events_text(&text) {
        match result {
            Ok(e) => parsed.push(e),
            Err(e) => {
                ok = false;
                eprintln!("{}: {e}", events.display());
            }
        }
    }
    let contacts = match contacts {
        Some(p) => load_contacts(p)?,
        None => HashMap::new(),
    };
    let options = SimulationOptions {
        horizon: jiff::SignedDuration::from_hours(24 * horizon_days.max(0)),
        ..SimulationOptions::default()
    };
    let started = std::time::Instant::now();
    let event_count = parsed.len();
    let automation_count = programs.len();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut simulator = Simulator::new(programs, contacts, options);
    let reports = runtime.block_on(async {
        simulator.run(parsed).await;
        simulator.reports().await
    });
    let elapsed = started.elapsed();
    if !summary_only {
        for report in &reports {
            match format {
                Format::Text => println!("{}", report.to_text()),
                Format::Json => println!("{}", serde_json::to_string(report)?),
            }
        }
    }
    for e in &simulator.errors {
        ok = false;
        eprintln!("error: {e}");
    }
    let mut by_status: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &reports {
        *by_status.entry(r.status.as_str()).or_default() += 1;
    }
    let statuses: Vec<String> = by_status.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let per_second = event_count as f64 / elapsed.as_secs_f64().max(1e-9);
    let summary = format!(
        "simulated {event_count} events against {automation_count} automations: {} runs ({}), {} messages, {:.2}s, {per_second:.0} events/s",
        reports.len(),
        statuses.join(", "),
        simulator.messages_handled,
        elapsed.as_secs_f64()
    );
    match format {
        Format::Text => println!("{summary}"),
        Format::Json => eprintln!("{summary}"),
    }
    Ok(ok)
}
