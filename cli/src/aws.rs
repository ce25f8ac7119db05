//! Operating a deployment: load definitions into its table and read its runs.
//!
//! ```text
//! crmflow deploy-automations --table NAME PATH...
//! crmflow runs list --table NAME --automation ID [--tenant T] [--limit N] [--format text|json]
//! crmflow runs show --table NAME RUN_ID [--tenant T] [--format text|json]
//! ```
//!
//! These talk to DynamoDB through the crmflow DynamoDB adapter, with the standard AWS
//! configuration from the environment (AWS_PROFILE, AWS_REGION, credentials) and
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_DYNAMODB` for a local emulator.
//!
//! IAM actions on the table: `deploy-automations` needs `dynamodb:GetItem`, `dynamodb:PutItem`
//! and `dynamodb:DeleteItem` (`AutomationCatalog::put` is a `TransactWriteItems`); `runs list`
//! needs `dynamodb:Query` on `table/index/GSI1` and `dynamodb:BatchGetItem`; `runs show` needs
//! `dynamodb:GetItem` and `dynamodb:Query`.

use super::{Format, Io};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use crmflow_aws::dynamodb::DynamoStore;
use crmflow_aws::sdk::load_sdk_config;
use crmflow_core::definition::{Automation, DEFAULT_TENANT, Program, load_automations};
use crmflow_core::ports::{AutomationCatalog, RunStore};
use crmflow_core::run::Run;
use crmflow_core::simulate::RunReport;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The table to operate on.
#[derive(Args, Clone)]
pub struct TableArgs {
    /// The deployment's DynamoDB table (the stack output `TableName`).
    #[arg(long)]
    pub table: String,
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// The newest runs of an automation, newest first.
    List {
        #[command(flatten)]
        table: TableArgs,
        /// The automation id.
        #[arg(long)]
        automation: String,
        /// The tenant (CRM account) the runs belong to.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: u16,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// One run: its head and step history, as a timeline (like `crmflow simulate`).
    Show {
        #[command(flatten)]
        table: TableArgs,
        run_id: String,
        /// The tenant (CRM account) the runs belong to.
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

async fn store(table: &str) -> DynamoStore {
    let sdk = load_sdk_config().await;
    // Retention only matters for writes of runs, which these commands never make.
    DynamoStore::new(&sdk, None, table, 30)
}

/// A definition read from a file and compiled.
struct Loaded {
    file: PathBuf,
    program: Program,
}

/// Validates every definition under `paths`; stores them only when all are valid. A version
/// that is already stored is left alone when identical and refused when different (versions are
/// immutable once runs use them: bump `version` instead).
pub fn deploy_automations(io: &mut Io<'_>, table: &str, paths: &[PathBuf]) -> Result<bool> {
    let (loaded, valid) = load_all(io, paths)?;
    if !valid || !unique_versions(io, &loaded)? {
        writeln!(io.err, "nothing deployed: fix the errors above first")?;
        return Ok(false);
    }
    runtime()?.block_on(async {
        let store = store(table).await;
        let mut ok = true;
        for loaded in loaded {
            ok &= deploy_one(io, &store, table, loaded).await?;
        }
        Ok(ok)
    })
}

/// Every definition under `paths`, compiled; false when any path had none or any failed.
fn load_all(io: &mut Io<'_>, paths: &[PathBuf]) -> Result<(Vec<Loaded>, bool)> {
    let mut ok = true;
    let mut loaded: Vec<Loaded> = Vec::new();
    for path in paths {
        let files = load_automations(path).with_context(|| format!("reading {}", path.display()))?;
        if files.is_empty() {
            writeln!(io.err, "{}: no definition files (.yaml, .yml, .json)", path.display())?;
            ok = false;
        }
        for (file, result) in files {
            match result.and_then(Program::new) {
                Ok(program) => loaded.push(Loaded { file, program }),
                Err(errors) => {
                    ok = false;
                    for e in errors {
                        writeln!(io.err, "{}: {e}", file.display())?;
                    }
                }
            }
        }
    }
    Ok((loaded, ok))
}

/// False (after saying where) when two files define the same tenant, id and version.
fn unique_versions(io: &mut Io<'_>, loaded: &[Loaded]) -> Result<bool> {
    let mut ok = true;
    let mut seen: BTreeMap<(String, String, u32), &Path> = BTreeMap::new();
    for l in loaded {
        let a = &l.program.automation;
        if let Some(other) = seen.insert((a.tenant.clone(), a.id.clone(), a.version), &l.file) {
            writeln!(
                io.err,
                "{}: {}/{} v{} is also defined in {}",
                l.file.display(),
                a.tenant,
                a.id,
                a.version,
                other.display()
            )?;
            ok = false;
        }
    }
    Ok(ok)
}

/// Stores one version unless it is stored already; false when a different definition holds it.
async fn deploy_one(io: &mut Io<'_>, store: &DynamoStore, table: &str, loaded: Loaded) -> Result<bool> {
    let Loaded { file, program } = loaded;
    let a: Automation = program.automation;
    let name = format!("{}/{} v{}", a.tenant, a.id, a.version);
    let status = serde_json::to_value(a.status)?.as_str().unwrap_or_default().to_string();
    let stored = store
        .get(&a.tenant, &a.id, a.version)
        .await
        .with_context(|| format!("reading {name} from {table}"))?;
    if let Some(stored) = stored {
        if serde_json::to_value(&stored.automation)? == serde_json::to_value(&a)? {
            writeln!(io.out, "unchanged  {name} ({status})  {}", file.display())?;
            return Ok(true);
        }
        writeln!(
            io.err,
            "{}: {name} is already deployed with a different definition; versions are immutable, raise `version`",
            file.display()
        )?;
        return Ok(false);
    }
    let (tenant, id, version) = (a.tenant.clone(), a.id.clone(), a.version);
    store
        .put(a)
        .await
        .with_context(|| format!("storing {name} in {table}"))?;
    let latest = store
        .latest(&tenant, &id)
        .await
        .with_context(|| format!("reading {tenant}/{id} from {table}"))?
        .map(|p| p.version());
    let note = match latest {
        Some(v) if v > version => format!("  (not the latest: v{v} is)"),
        _ => String::new(),
    };
    writeln!(io.out, "deployed   {name} ({status})  {}{note}", file.display())?;
    Ok(true)
}

fn run_summary(run: &Run) -> serde_json::Value {
    json!({
        "run_id": run.run_id,
        "tenant": run.tenant,
        "automation_id": run.automation_id,
        "automation_version": run.automation_version,
        "subject": run.subject,
        "status": run.status,
        "started_at": run.started_at,
        "updated_at": run.updated_at,
        "finished_at": run.finished_at,
        "outcome": run.outcome,
        "steps": run.history_len,
    })
}

pub fn runs(io: &mut Io<'_>, command: RunsCommand) -> Result<bool> {
    match command {
        RunsCommand::List {
            table,
            automation,
            tenant,
            limit,
            format,
        } => runtime()?.block_on(async {
            let store = store(&table.table).await;
            let runs = store
                .list_runs(&tenant, &automation, i32::from(limit.max(1)))
                .await
                .with_context(|| format!("listing runs of {tenant}/{automation} in {}", table.table))?;
            for run in &runs {
                match format {
                    Format::Json => writeln!(io.out, "{}", serde_json::to_string(&run_summary(run))?)?,
                    Format::Text => {
                        let when = run.started_at.strftime("%Y-%m-%d %H:%M:%SZ");
                        writeln!(
                            io.out,
                            "{}  {when}  v{:<3} {:<10} {}/{}  {} steps  {}",
                            run.run_id,
                            run.automation_version,
                            run.status.as_str(),
                            run.subject.record_type,
                            run.subject.id,
                            run.history_len,
                            run.outcome.as_deref().unwrap_or("")
                        )?;
                    }
                }
            }
            if matches!(format, Format::Text) {
                writeln!(io.out, "{} runs of {tenant}/{automation} (newest first)", runs.len())?;
            }
            Ok(true)
        }),
        RunsCommand::Show {
            table,
            run_id,
            tenant,
            format,
        } => runtime()?.block_on(async {
            let store = store(&table.table).await;
            let Some(run) = store
                .load_run(&tenant, &run_id)
                .await
                .with_context(|| format!("reading run {run_id} from {}", table.table))?
            else {
                writeln!(io.err, "run {run_id} not found in tenant {tenant} ({})", table.table)?;
                return Ok(false);
            };
            let history = store
                .history(&tenant, &run_id)
                .await
                .with_context(|| format!("reading the history of run {run_id}"))?;
            let report = RunReport::new(&run, &history, &HashMap::new());
            match format {
                Format::Text => write!(io.out, "{}", report.to_text())?,
                Format::Json => writeln!(io.out, "{}", serde_json::to_string(&report)?)?,
            }
            Ok(true)
        }),
    }
}
