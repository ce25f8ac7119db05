//! The API commands: automations and their runs, through the management API over HTTP, the
//! same against `crmflow serve` and a deployment.
//!
//! ```text
//! crmflow automations create FILE | list [--status S] | get ID [--version V] | pause|resume|archive ID
//! crmflow runs list --automation ID [--status S] | show RUN_ID --automation ID
//! crmflow runs complete-task|cancel|retry RUN_ID --automation ID
//! ```
//!
//! The API is `--api-url` (or `CRMFLOW_API_URL`; `http://127.0.0.1:8080`, what `crmflow serve`
//! listens on, by default) and the key `--api-key` (or `CRMFLOW_API_KEY`). An error the API
//! answers (a problem document) is printed with its title, detail and each field at fault, and
//! the command exits 1; a connection that fails stops it (exit 2). `runs list` and `runs show`
//! with `--table` read a deployment's table instead (see `aws.rs`).

use crate::{Format, Io};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the API is, and the key to call it with.
#[derive(Args, Clone)]
pub struct ApiArgs {
    /// The API's base URL (with or without `/api/v1`).
    #[arg(
        long,
        global = true,
        env = "CRMFLOW_API_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    api_url: String,
    /// The API key (`crmflow serve` prints one).
    #[arg(long, global = true, env = "CRMFLOW_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

#[derive(Args)]
pub struct AutomationsArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: AutomationsCommand,
}

#[derive(Subcommand)]
enum AutomationsCommand {
    /// Create an automation from a definition file (YAML or JSON, flat or steps form).
    Create { file: PathBuf },
    /// The newest version of each automation, one page at a time.
    List {
        /// Only those with this status (draft, active, paused, archived).
        #[arg(long)]
        status: Option<String>,
        /// At most this many (the API's default is 50, its most 200).
        #[arg(long)]
        limit: Option<u16>,
        /// The previous page's next cursor.
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// One automation (its newest version, or `--version`), as JSON.
    Get {
        id: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Pause an active automation.
    Pause { id: String },
    /// Resume a paused automation (or activate a draft).
    Resume { id: String },
    /// Archive an automation: it becomes read-only.
    Archive { id: String },
}

#[derive(Args)]
pub struct RunsArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: RunsCommand,
}

#[derive(Subcommand)]
enum RunsCommand {
    /// An automation's runs, newest first.
    List(ListRuns),
    /// One run and its step history.
    Show(ShowRun),
    /// Complete the run's open human task.
    CompleteTask {
        #[command(flatten)]
        run: RunRef,
        /// The task's output, a JSON object (`steps.<task id>.output` for later steps).
        #[arg(long, default_value = "{}")]
        output: String,
        /// The open task's id, checked by the API when given.
        #[arg(long)]
        task_id: Option<String>,
    },
    /// Cancel the run.
    Cancel {
        #[command(flatten)]
        run: RunRef,
    },
    /// Retry a failed run from the step that failed.
    Retry {
        #[command(flatten)]
        run: RunRef,
        /// Send again an email whose first sending has an unknown outcome.
        #[arg(long)]
        resend_uncertain: bool,
    },
}

/// One run of one automation.
#[derive(Args)]
struct RunRef {
    run_id: String,
    /// The automation the run belongs to.
    #[arg(long)]
    automation: String,
}

#[derive(Args)]
struct ListRuns {
    /// The automation id.
    #[arg(long)]
    automation: String,
    /// Only runs with this status (running, waiting, completed, failed, cancelled).
    #[arg(long)]
    status: Option<String>,
    /// At most this many runs (the API's default is 50, its most 200; with `--table`, 20).
    #[arg(long)]
    limit: Option<u16>,
    /// The previous page's next cursor.
    #[arg(long)]
    cursor: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[cfg(feature = "aws")]
    #[command(flatten)]
    table: TableArgs,
}

#[derive(Args)]
struct ShowRun {
    run_id: String,
    /// The automation the run belongs to (needed with the API).
    #[arg(long)]
    automation: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[cfg(feature = "aws")]
    #[command(flatten)]
    table: TableArgs,
}

/// Reading a deployment's table directly instead of the API.
#[cfg(feature = "aws")]
#[derive(Args)]
struct TableArgs {
    /// Read the runs from this DynamoDB table (the stack output `TableName`) instead of the API.
    #[arg(long)]
    table: Option<String>,
    /// With `--table`: the tenant the runs belong to (default `default`).
    #[arg(long, requires = "table")]
    tenant: Option<String>,
}

/// An answer of the API: its status and JSON body.
struct Reply {
    status: reqwest::StatusCode,
    body: Value,
}

/// A client of one API, with one key.
struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
    runtime: tokio::runtime::Runtime,
}

/// The rustls configuration: the *ring* provider and the Mozilla roots compiled in (reqwest is
/// built without a provider of its own).
fn tls_config() -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

impl Client {
    fn new(args: &ApiArgs) -> Result<Client> {
        let Some(key) = args.api_key.clone().filter(|k| !k.is_empty()) else {
            bail!("no API key: pass --api-key or set CRMFLOW_API_KEY (`crmflow serve` prints one)");
        };
        let base = args.api_url.trim_end_matches('/');
        let base = base.strip_suffix("/api/v1").unwrap_or(base);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--api-url: {:?} is not an http:// or https:// URL", args.api_url);
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("crmflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Client {
            http,
            base: format!("{base}/api/v1"),
            key,
            runtime,
        })
    }

    /// Calls `path` (under `/api/v1`) with an optional JSON body.
    fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.runtime.block_on(async {
            let response = request.send().await.with_context(|| format!("{method} {url}"))?;
            let status = response.status();
            let bytes = response.bytes().await.with_context(|| format!("{method} {url}"))?;
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            Ok(Reply { status, body })
        })
    }
}

/// Prints a problem document (or any error answer) to stderr: status, title, detail, and each
/// field at fault.
fn print_problem(io: &mut Io<'_>, reply: &Reply) -> Result<()> {
    let body = &reply.body;
    let title = body["title"]
        .as_str()
        .unwrap_or_else(|| reply.status.canonical_reason().unwrap_or(""));
    let detail = match &body["detail"] {
        Value::String(detail) => detail.clone(),
        Value::Null if body.is_string() => body.as_str().unwrap_or_default().to_owned(),
        _ => String::new(),
    };
    writeln!(io.err, "error: {} {title}: {detail}", reply.status.as_u16())?;
    for error in body["errors"].as_array().into_iter().flatten() {
        let path = error["path"].as_str().unwrap_or_default();
        let path = if path.is_empty() { "(body)" } else { path };
        writeln!(io.err, "  {path}: {}", error["message"].as_str().unwrap_or_default())?;
    }
    Ok(())
}

/// The body of a success, or `None` once the error is printed.
fn success(io: &mut Io<'_>, reply: Reply) -> Result<Option<Value>> {
    if reply.status.is_success() {
        return Ok(Some(reply.body));
    }
    print_problem(io, &reply)?;
    Ok(None)
}

/// `/automations/{id}/runs/{run_id}` with both segments escaped.
fn run_path(run: &RunRef) -> String {
    format!(
        "/automations/{}/runs/{}",
        segment(&run.automation),
        segment(&run.run_id)
    )
}

/// A path segment, percent-encoded (ids may hold any character).
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A query string of the given parameters that have a value.
fn query(params: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = params
        .iter()
        .filter_map(|(name, value)| Some(format!("{name}={}", segment(value.as_deref()?))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Prints a successful answer's body.
type Printer = fn(&mut Io<'_>, &Value) -> Result<()>;

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

fn print_automation_line(io: &mut Io<'_>, a: &Value) -> Result<()> {
    writeln!(
        io.out,
        "{}  v{}  {:<8}  {}",
        text(&a["id"]),
        a["version"],
        text(&a["status"]),
        text(&a["name"])
    )?;
    Ok(())
}

pub fn automations(io: &mut Io<'_>, args: AutomationsArgs) -> Result<bool> {
    let client = Client::new(&args.api)?;
    let status_change = |id: &str, status: &str| {
        client.call(
            Method::PATCH,
            &format!("/automations/{}", segment(id)),
            Some(&json!({ "status": status })),
        )
    };
    let (reply, print): (Reply, Printer) = match &args.command {
        AutomationsCommand::Create { file } => {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            let body = crmflow_core::definition::load::parse_text(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            (client.call(Method::POST, "/automations", Some(&body))?, |io, a| {
                write!(io.out, "created ")?;
                print_automation_line(io, a)
            })
        }
        AutomationsCommand::List {
            status,
            limit,
            cursor,
            format,
        } => {
            let path = format!(
                "/automations{}",
                query(&[
                    ("status", status.clone()),
                    ("limit", limit.map(|l| l.to_string())),
                    ("cursor", cursor.clone()),
                ])
            );
            let reply = client.call(Method::GET, &path, None)?;
            let print: Printer = match format {
                Format::Json => print_json,
                Format::Text => print_automation_page,
            };
            (reply, print)
        }
        AutomationsCommand::Get { id, version } => {
            let mut path = format!("/automations/{}", segment(id));
            if let Some(v) = version {
                path.push_str(&format!("/versions/{v}"));
            }
            (client.call(Method::GET, &path, None)?, print_json)
        }
        AutomationsCommand::Pause { id } => (status_change(id, "paused")?, print_automation_line),
        AutomationsCommand::Resume { id } => (status_change(id, "active")?, print_automation_line),
        AutomationsCommand::Archive { id } => (status_change(id, "archived")?, print_automation_line),
    };
    match success(io, reply)? {
        Some(body) => print(io, &body).map(|()| true),
        None => Ok(false),
    }
}

fn print_json(io: &mut Io<'_>, value: &Value) -> Result<()> {
    writeln!(io.out, "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

fn print_automation_page(io: &mut Io<'_>, page: &Value) -> Result<()> {
    let items = page["items"].as_array().cloned().unwrap_or_default();
    for a in &items {
        print_automation_line(io, a)?;
    }
    writeln!(io.out, "{} automations", items.len())?;
    if let Some(cursor) = page["next_cursor"].as_str() {
        writeln!(io.out, "more: --cursor {cursor}")?;
    }
    Ok(())
}

fn print_run_line(io: &mut Io<'_>, run: &Value) -> Result<()> {
    writeln!(
        io.out,
        "{}  {}  v{:<3} {:<10} {}/{}  {}",
        text(&run["id"]),
        text(&run["started_at"]),
        run["version"],
        text(&run["status"]),
        text(&run["subject"]["type"]),
        text(&run["subject"]["id"]),
        run["outcome"].as_str().unwrap_or("")
    )?;
    Ok(())
}

fn print_run(io: &mut Io<'_>, run: &Value) -> Result<()> {
    writeln!(
        io.out,
        "run {}  {} v{}  {}/{}",
        text(&run["id"]),
        text(&run["automation_id"]),
        run["version"],
        text(&run["subject"]["type"]),
        text(&run["subject"]["id"])
    )?;
    for step in run["history"].as_array().into_iter().flatten() {
        writeln!(
            io.out,
            "  {}  {:<18} {:<26} {:<10} {}",
            text(&step["started_at"]),
            text(&step["step_id"]),
            text(&step["type"]),
            text(&step["status"]),
            step["detail"].as_str().unwrap_or("")
        )?;
    }
    writeln!(
        io.out,
        "  => {} {}",
        text(&run["status"]),
        run["outcome"].as_str().unwrap_or("")
    )?;
    Ok(())
}

pub fn runs(io: &mut Io<'_>, args: RunsArgs) -> Result<bool> {
    match args.command {
        RunsCommand::List(list) => list_runs(io, &args.api, list),
        RunsCommand::Show(show) => show_run(io, &args.api, show),
        RunsCommand::CompleteTask { run, output, task_id } => {
            let output: Value =
                serde_json::from_str(&output).with_context(|| format!("--output: not JSON: {output}"))?;
            if !output.is_object() {
                bail!("--output: must be a JSON object");
            }
            let mut body = json!({ "output": output });
            if let Some(task_id) = task_id {
                body["task_id"] = json!(task_id);
            }
            run_request(io, &args.api, &run, "complete-task", Some(body))
        }
        RunsCommand::Cancel { run } => run_request(io, &args.api, &run, "cancel", None),
        RunsCommand::Retry { run, resend_uncertain } => run_request(
            io,
            &args.api,
            &run,
            "retry",
            Some(json!({ "resend_uncertain": resend_uncertain })),
        ),
    }
}

/// POSTs `action` on a run and says what was queued.
fn run_request(io: &mut Io<'_>, api: &ApiArgs, run: &RunRef, action: &str, body: Option<Value>) -> Result<bool> {
    let client = Client::new(api)?;
    let reply = client.call(Method::POST, &format!("{}/{action}", run_path(run)), body.as_ref())?;
    let status = reply.status;
    let Some(body) = success(io, reply)? else {
        return Ok(false);
    };
    let task = body["task_id"]
        .as_str()
        .map(|t| format!(" (task {t})"))
        .unwrap_or_default();
    writeln!(io.out, "{} {action} of run {}{task}", status.as_u16(), run.run_id)?;
    Ok(true)
}

fn list_runs(io: &mut Io<'_>, api: &ApiArgs, list: ListRuns) -> Result<bool> {
    #[cfg(feature = "aws")]
    if let Some(table) = list.table.table {
        if list.status.is_some() || list.cursor.is_some() {
            bail!("--status and --cursor filter and page through the API; --table reads the newest runs");
        }
        return crate::aws::runs(
            io,
            crate::aws::RunsCommand::List {
                table: crate::aws::TableArgs { table },
                automation: list.automation,
                tenant: list
                    .table
                    .tenant
                    .unwrap_or_else(|| crmflow_core::definition::DEFAULT_TENANT.to_owned()),
                limit: list.limit.unwrap_or(20),
                format: list.format,
            },
        );
    }
    let client = Client::new(api)?;
    let path = format!(
        "/automations/{}/runs{}",
        segment(&list.automation),
        query(&[
            ("status", list.status),
            ("limit", list.limit.map(|l| l.to_string())),
            ("cursor", list.cursor),
        ])
    );
    let Some(page) = success(io, client.call(Method::GET, &path, None)?)? else {
        return Ok(false);
    };
    let items = page["items"].as_array().cloned().unwrap_or_default();
    for run in &items {
        match list.format {
            Format::Json => writeln!(io.out, "{}", serde_json::to_string(run)?)?,
            Format::Text => print_run_line(io, run)?,
        }
    }
    if matches!(list.format, Format::Text) {
        writeln!(io.out, "{} runs of {} (newest first)", items.len(), list.automation)?;
        if let Some(cursor) = page["next_cursor"].as_str() {
            writeln!(io.out, "more: --cursor {cursor}")?;
        }
    }
    Ok(true)
}

fn show_run(io: &mut Io<'_>, api: &ApiArgs, show: ShowRun) -> Result<bool> {
    #[cfg(feature = "aws")]
    if let Some(table) = show.table.table {
        return crate::aws::runs(
            io,
            crate::aws::RunsCommand::Show {
                table: crate::aws::TableArgs { table },
                run_id: show.run_id,
                tenant: show
                    .table
                    .tenant
                    .unwrap_or_else(|| crmflow_core::definition::DEFAULT_TENANT.to_owned()),
                format: show.format,
            },
        );
    }
    let Some(automation) = show.automation else {
        bail!("--automation: required to show a run through the API (or read a table with --table)");
    };
    let client = Client::new(api)?;
    let run = RunRef {
        run_id: show.run_id,
        automation,
    };
    let Some(body) = success(io, client.call(Method::GET, &run_path(&run), None)?)? else {
        return Ok(false);
    };
    match show.format {
        Format::Json => writeln!(io.out, "{}", serde_json::to_string(&body)?)?,
        Format::Text => print_run(io, &body)?,
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_queries_are_escaped() {
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        assert_eq!(segment("lead-follow-up_1.x~"), "lead-follow-up_1.x~");
        assert_eq!(
            query(&[
                ("status", Some("active".into())),
                ("limit", None),
                ("cursor", Some("a&b".into()))
            ]),
            "?status=active&cursor=a%26b"
        );
        assert_eq!(query(&[("limit", None)]), "");
    }
}
