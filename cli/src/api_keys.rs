//! The management API's keys in a deployment's table.
//!
//! ```text
//! crmflow api-keys create --table NAME --tenant T [--format text|json]
//! crmflow api-keys list   --table NAME --tenant T [--format text|json]
//! crmflow api-keys revoke --table NAME --tenant T KEY_ID
//! ```
//!
//! `create` prints the key once; the table keeps only its SHA-256 digest, with the tenant, the
//! key id and the creation time. A revoked key answers 401 from its next request on.
//!
//! IAM actions on the table: `create` needs `dynamodb:PutItem` (a `TransactWriteItems` of two
//! puts); `list` needs `dynamodb:Query`; `revoke` needs `dynamodb:GetItem` and
//! `dynamodb:UpdateItem`.

use super::aws::TableArgs;
use super::{Format, Io};
use anyhow::{Context, Result};
use clap::Subcommand;
use crmflow_api::auth::{digest, new_key};
use crmflow_aws::dynamodb::{DynamoStore, Revocation};
use crmflow_aws::sdk::load_sdk_config;
use crmflow_core::ports::Credential;
use serde_json::json;

#[derive(Subcommand)]
pub enum ApiKeysCommand {
    /// Make a key for a tenant and print it (once: only its digest is stored).
    Create {
        #[command(flatten)]
        table: TableArgs,
        /// The tenant (CRM account) every request with the key reads and writes.
        #[arg(long)]
        tenant: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// The tenant's keys (ids, creation times, revoked or not; never the keys).
    List {
        #[command(flatten)]
        table: TableArgs,
        #[arg(long)]
        tenant: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Revoke a key by its id: requests with it answer 401.
    Revoke {
        #[command(flatten)]
        table: TableArgs,
        #[arg(long)]
        tenant: String,
        /// The key's id (`key_...`, from `create` or `list`).
        key_id: String,
    },
}

/// A tenant id as the API keeps it: 1 to 128 characters, letters, digits and `_ . : -`.
fn check_tenant(tenant: &str) -> Result<()> {
    let ok = (1..=128).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    anyhow::ensure!(
        ok,
        "--tenant: {tenant:?} is not a tenant id (1 to 128 letters, digits, `_ . : -`)"
    );
    Ok(())
}

pub fn api_keys(io: &mut Io<'_>, command: ApiKeysCommand) -> Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        match command {
            ApiKeysCommand::Create { table, tenant, format } => create(io, &table.table, &tenant, format).await,
            ApiKeysCommand::List { table, tenant, format } => list(io, &table.table, &tenant, format).await,
            ApiKeysCommand::Revoke { table, tenant, key_id } => revoke(io, &table.table, &tenant, &key_id).await,
        }
    })
}

async fn store(table: &str) -> DynamoStore {
    // Retention only matters for writes of runs, which these commands never make.
    DynamoStore::new(&load_sdk_config().await, None, table, 30)
}

async fn create(io: &mut Io<'_>, table: &str, tenant: &str, format: Format) -> Result<bool> {
    check_tenant(tenant)?;
    let (key, id) = new_key();
    let credential = Credential {
        id,
        tenant: tenant.to_owned(),
    };
    let now = jiff::Timestamp::now();
    store(table)
        .await
        .put_api_key(&digest(&key), &credential, now)
        .await
        .with_context(|| format!("storing a key for tenant {tenant} in {table}"))?;
    match format {
        Format::Json => writeln!(
            io.out,
            "{}",
            json!({"key": key, "key_id": credential.id, "tenant": tenant, "created_at": now.to_string()})
        )?,
        Format::Text => {
            writeln!(io.out, "{key}")?;
            writeln!(
                io.err,
                "API key {} for tenant {tenant}: shown once, only its SHA-256 digest is stored.\n\
                 Use it as `Authorization: Bearer <key>`.",
                credential.id
            )?;
        }
    }
    Ok(true)
}

async fn list(io: &mut Io<'_>, table: &str, tenant: &str, format: Format) -> Result<bool> {
    check_tenant(tenant)?;
    let keys = store(table)
        .await
        .list_api_keys(tenant)
        .await
        .with_context(|| format!("listing the keys of tenant {tenant} in {table}"))?;
    for k in &keys {
        match format {
            Format::Json => writeln!(io.out, "{}", serde_json::to_string(k)?)?,
            Format::Text => {
                let state = match &k.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None if k.revoked => "revoked".to_owned(),
                    None => "active".to_owned(),
                };
                writeln!(io.out, "{}  created {}  {state}", k.key_id, k.created_at)?;
            }
        }
    }
    if matches!(format, Format::Text) {
        writeln!(io.err, "{} keys of tenant {tenant}", keys.len())?;
    }
    Ok(true)
}

async fn revoke(io: &mut Io<'_>, table: &str, tenant: &str, key_id: &str) -> Result<bool> {
    check_tenant(tenant)?;
    let outcome = store(table)
        .await
        .revoke_api_key(tenant, key_id, jiff::Timestamp::now())
        .await
        .with_context(|| format!("revoking key {key_id} of tenant {tenant} in {table}"))?;
    match outcome {
        Revocation::Revoked => writeln!(io.out, "revoked {key_id} (tenant {tenant})")?,
        Revocation::AlreadyRevoked => writeln!(io.out, "{key_id} (tenant {tenant}) was already revoked")?,
        Revocation::NotFound => {
            writeln!(io.err, "tenant {tenant} has no key {key_id} in {table}")?;
            return Ok(false);
        }
    }
    Ok(true)
}
