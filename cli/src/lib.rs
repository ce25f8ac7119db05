//! `crmflow`: validate automation definitions, simulate them against sample events, print the
//! definition schema; load definitions into a deployment and read its runs (see `aws.rs`, with
//! the default `aws` feature); serve the management API locally (`serve.rs`, with the default
//! `serve` feature), and operate automations and runs through it (`client.rs`, with the default
//! `client` feature). The binary (`main.rs`) calls [`run`] with the process's arguments,
//! standard output and standard error; tests call it with buffers.

#[cfg(feature = "aws")]
mod api_keys;
#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "serve")]
mod serve;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use crmflow_core::definition::{AutomationStatus, Program, load_automations};
use crmflow_core::event::{Event, parse_events_text};
use crmflow_core::simulate::{RunReport, SimulationOptions, simulate_partitioned};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where a command writes: its standard output and standard error.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

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
    Simulate(SimulateArgs),
    /// Print the JSON Schema of an automation definition.
    Schema,
    #[cfg(feature = "aws")]
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
    #[cfg(feature = "serve")]
    /// Print the management API's OpenAPI 3.1 document (docs/openapi.json is this output).
    Openapi,
    #[cfg(feature = "serve")]
    /// Serve the management API on 127.0.0.1 on the embedded store (no AWS): prints the URL and
    /// an API key for the tenant, then serves until interrupted.
    Serve(serve::ServeArgs),
    #[cfg(feature = "client")]
    /// Create, list, read, pause, resume and archive automations through the API.
    Automations(client::AutomationsArgs),
    #[cfg(feature = "client")]
    /// Read runs, complete their tasks, cancel and retry them through the API (or, with
    /// `--table`, read them from a deployment's DynamoDB table).
    Runs(client::RunsArgs),
    #[cfg(feature = "aws")]
    /// Make, list and revoke the management API's keys in a deployment's DynamoDB table.
    ApiKeys {
        #[command(subcommand)]
        command: api_keys::ApiKeysCommand,
    },
}

/// The options of `crmflow simulate`.
#[derive(Args)]
struct SimulateArgs {
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
    /// Threads to simulate on (default: the machine's cores). Records that share no event
    /// are simulated apart; the output is the same whatever the number.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: Option<u16>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Runs the command line `args` (the program name first) and returns the exit status: 0 when
/// all went well, 1 when a command reported invalid input, 2 for a usage error (clap's) or an
/// error that stopped the command.
pub fn run(args: impl IntoIterator<Item = OsString>, io: &mut Io<'_>) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = write!(if e.use_stderr() { &mut *io.err } else { &mut *io.out }, "{e}");
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Validate { files } => validate(&files, io),
        Command::Simulate(args) => simulate(io, &args),
        Command::Schema => schema(io),
        #[cfg(feature = "aws")]
        Command::DeployAutomations { table, paths } => aws::deploy_automations(io, &table, &paths),
        #[cfg(feature = "client")]
        Command::Automations(args) => client::automations(io, args),
        #[cfg(feature = "client")]
        Command::Runs(args) => client::runs(io, args),
        #[cfg(feature = "aws")]
        Command::ApiKeys { command } => api_keys::api_keys(io, command),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::serve(io, &args),
        #[cfg(feature = "serve")]
        Command::Openapi => serve::openapi(io),
    };
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            let _ = writeln!(io.err, "error: {e:#}");
            2
        }
    }
}

fn validate(files: &[PathBuf], io: &mut Io<'_>) -> Result<bool> {
    let mut ok = true;
    for path in files {
        let loaded = load_automations(path).with_context(|| format!("reading {}", path.display()))?;
        if loaded.is_empty() {
            writeln!(io.err, "{}: no definition files (.yaml, .yml, .json)", path.display())?;
            ok = false;
        }
        for (file, result) in loaded {
            match result.and_then(Program::new) {
                Ok(p) => writeln!(
                    io.out,
                    "ok  {}  ({} v{}, {} steps)",
                    file.display(),
                    p.id(),
                    p.version(),
                    p.step_count()
                )?,
                Err(errors) => {
                    ok = false;
                    for e in errors {
                        writeln!(io.out, "{}: {e}", file.display())?;
                    }
                }
            }
        }
    }
    Ok(ok)
}

fn schema(io: &mut Io<'_>) -> Result<bool> {
    let schema = crmflow_core::definition::automation_schema();
    writeln!(io.out, "{}", serde_json::to_string_pretty(&schema)?)?;
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

fn simulate(io: &mut Io<'_>, args: &SimulateArgs) -> Result<bool> {
    let (programs, programs_ok) = load_programs(io, &args.automations, args.include_drafts)?;
    let (events, events_ok) = load_events(io, &args.events)?;
    let contacts = match &args.contacts {
        Some(p) => load_contacts(p)?,
        None => HashMap::new(),
    };
    let options = SimulationOptions {
        horizon: jiff::SignedDuration::from_hours(24 * args.horizon_days.max(0)),
        ..SimulationOptions::default()
    };
    let started = std::time::Instant::now();
    let (event_count, automation_count) = (events.len(), programs.len());
    let jobs = match args.jobs {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let mut out = std::io::BufWriter::new(&mut *io.out);
    let mut tally = Tally::default();
    let mut failed: Option<anyhow::Error> = None;
    // Each report is rendered on the thread that simulated its run, and written here in order.
    let render = |report: RunReport| {
        let text = (!args.summary_only).then(|| render_report(&report, args.format));
        (report.status.as_str(), text)
    };
    let outcome = simulate_partitioned(programs, contacts, options, events, jobs, render, |(status, text)| {
        tally.runs += 1;
        *tally.by_status.entry(status).or_default() += 1;
        if let (Some(text), None) = (text, &failed) {
            failed = text
                .and_then(|t| writeln!(out, "{t}").map_err(anyhow::Error::from))
                .err();
        }
    });
    out.flush()?;
    drop(out);
    if let Some(e) = failed {
        return Err(e);
    }
    let elapsed = started.elapsed();
    for e in &outcome.errors {
        writeln!(io.err, "error: {e}")?;
    }
    let statuses: Vec<String> = tally.by_status.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let per_second = event_count as f64 / elapsed.as_secs_f64().max(1e-9);
    let summary = format!(
        "simulated {event_count} events against {automation_count} automations: {} runs ({}), {} messages, {:.2}s, {per_second:.0} events/s",
        tally.runs,
        statuses.join(", "),
        outcome.messages_handled,
        elapsed.as_secs_f64()
    );
    match args.format {
        Format::Text => writeln!(io.out, "{summary}")?,
        Format::Json => writeln!(io.err, "{summary}")?,
    }
    Ok(programs_ok && events_ok && outcome.errors.is_empty())
}

/// The definitions of `path` as programs (drafts made active with `include_drafts`); prints the
/// errors of those that are invalid, and says whether all were valid.
fn load_programs(io: &mut Io<'_>, path: &Path, include_drafts: bool) -> Result<(Vec<Program>, bool)> {
    let mut ok = true;
    let mut programs = Vec::new();
    for (file, result) in load_automations(path).with_context(|| format!("reading {}", path.display()))? {
        let compiled = result.and_then(|mut automation| {
            if include_drafts && automation.status == AutomationStatus::Draft {
                automation.status = AutomationStatus::Active;
            }
            Program::new(automation)
        });
        match compiled {
            Ok(p) => programs.push(p),
            Err(errors) => {
                ok = false;
                for e in &errors {
                    writeln!(io.err, "{}: {e}", file.display())?;
                }
            }
        }
    }
    Ok((programs, ok))
}

/// The events of `path`; prints the invalid ones' errors, and says whether all were valid.
fn load_events(io: &mut Io<'_>, path: &Path) -> Result<(Vec<Event>, bool)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut ok = true;
    let results = parse_events_text(&text);
    let mut events = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(e) => events.push(e),
            Err(e) => {
                ok = false;
                writeln!(io.err, "{}: {e}", path.display())?;
            }
        }
    }
    Ok((events, ok))
}

/// How many runs were reported, in all and by status.
#[derive(Default)]
struct Tally {
    runs: usize,
    by_status: BTreeMap<&'static str, usize>,
}

/// One run's report as printed (without its line end): the text timeline or a JSON line.
fn render_report(report: &RunReport, format: Format) -> Result<String> {
    Ok(match format {
        Format::Text => report.to_text(),
        Format::Json => serde_json::to_string(report)?,
    })
}
