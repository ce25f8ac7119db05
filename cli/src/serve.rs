//! `crmflow serve`: the management API of `crmflow-api` on 127.0.0.1, on the embedded store,
//! with the engine running in the same process on the real clock. Effects are recorded, not
//! performed (as `crmflow simulate` records them): nothing is emailed or sent anywhere.

use crate::Io;
use anyhow::{Context, Result};
use clap::Args;
use crmflow_api::auth::MemoryApiKeys;
use crmflow_api::{ApiState, router};
use crmflow_core::definition::load_automations;
use crmflow_core::embedded::Embedded;
use crmflow_core::engine::EngineConfig;
use crmflow_core::memory::MemoryCatalog;
use crmflow_core::ports::{AutomationDirectory, Clock, CreateOutcome, SystemClock};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The options of `crmflow serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// The port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Definition files, or a folder of them, stored at start (in the served tenant).
    #[arg(long)]
    automations: Option<PathBuf>,
    /// The tenant of the printed API key.
    #[arg(long, default_value = "default")]
    tenant: String,
    /// Accept this API key (for the tenant) instead of making a random one, so that scripts,
    /// tests and the API commands (which read the same variable) can call the server. Any string
    /// of 16 or more visible ASCII characters.
    #[arg(long, env = "CRMFLOW_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

/// Prints the OpenAPI document of the API, as `GET /api/v1/openapi.json` serves it.
pub fn openapi(io: &mut Io<'_>) -> Result<bool> {
    writeln!(
        io.out,
        "{}",
        serde_json::to_string_pretty(&crmflow_api::openapi::document())?
    )?;
    Ok(true)
}

/// Serves until interrupted (Ctrl-C). Definitions that fail to load are reported and skipped.
pub fn serve(io: &mut Io<'_>, args: &ServeArgs) -> Result<bool> {
    // The engine's warnings (a failed message) on standard error; `RUST_LOG` for more.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(io, args))
}

async fn run(io: &mut Io<'_>, args: &ServeArgs) -> Result<bool> {
    let catalog = Arc::new(MemoryCatalog::new());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ok = match &args.automations {
        Some(path) => load(io, catalog.as_ref(), path, &args.tenant, clock.now()).await?,
        None => true,
    };
    let keys = MemoryApiKeys::new();
    let key = match &args.api_key {
        Some(key) if key.len() >= 16 && key.bytes().all(|b| b.is_ascii_graphic()) => {
            keys.insert(key, &args.tenant);
            key.clone()
        }
        Some(_) => anyhow::bail!("--api-key: must be 16 or more visible ASCII characters"),
        None => keys.create(&args.tenant).0,
    };
    let embedded = Embedded::new(catalog.clone(), clock.clone(), EngineConfig::default());
    let state = ApiState {
        automations: catalog,
        run_store: embedded.store.clone(),
        run_directory: embedded.store.clone(),
        steps: embedded.queue.clone(),
        events: embedded.events.clone(),
        keys: Arc::new(keys),
        held: embedded.held.clone(),
        intake: embedded.engine.intake.clone(),
        audit: embedded.logs.clone(),
        evaluations: embedded.logs.clone(),
        idempotency: embedded.store.clone(),
        clock,
    };
    tokio::spawn(embedded.run());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{}", args.port))?;
    let address = listener.local_addr()?;
    writeln!(
        io.out,
        "crmflow API on http://{address}/api/v1 (tenant {:?}, embedded store)\n\
         API key: {key}\n\
         try:     curl -H 'Authorization: Bearer {key}' http://{address}/api/v1/automations",
        args.tenant
    )?;
    io.out.flush()?;
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    Ok(ok)
}

async fn load(
    io: &mut Io<'_>,
    catalog: &dyn AutomationDirectory,
    path: &Path,
    tenant: &str,
    now: jiff::Timestamp,
) -> Result<bool> {
    let mut ok = true;
    for (file, result) in load_automations(path).with_context(|| format!("reading {}", path.display()))? {
        match result {
            Ok(mut automation) => {
                automation.tenant = tenant.to_owned();
                let id = automation.id.clone();
                match catalog.create(automation, now).await? {
                    CreateOutcome::Created => writeln!(io.err, "loaded {} ({id})", file.display())?,
                    CreateOutcome::AlreadyExists => {
                        ok = false;
                        writeln!(io.err, "{}: id {id:?} is loaded already", file.display())?;
                    }
                }
            }
            Err(errors) => {
                ok = false;
                for e in errors {
                    writeln!(io.err, "{}: {e}", file.display())?;
                }
            }
        }
    }
    Ok(ok)
}
