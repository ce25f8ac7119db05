//! The management API's keys ([`ApiKeyStore`]): stored only as the SHA-256 digest of the key.
//!
//! Two items per key, written together in one transaction:
//!
//! | item | PK | SK | attributes |
//! |---|---|---|---|
//! | key (looked up per request) | `APIKEY#<digest>` | `APIKEY` | `key_id`, `tenant`, `created_at`, `revoked` (BOOL), `revoked_at` |
//! | the tenant's listing | `TENANT#t#APIKEYS` | `KEY#<key_id>` | `key_id`, `digest`, `created_at`, `revoked`, `revoked_at` |
//!
//! A request's key is one `GetItem` by digest, never a scan; listing a tenant's keys is one
//! `Query` of its listing partition; revoking reads the listing item (for the digest) and
//! updates both items.

use super::{DynamoStore, Expr, Item, PK, get_s, key, s, tenant_prefix};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use crmflow_core::ports::{ApiKeyStore, Credential, StoreError};
use jiff::Timestamp;

const KEY_SK: &str = "APIKEY";
const KEY_ID: &str = "key_id";
const TENANT: &str = "tenant";
const DIGEST: &str = "digest";
const CREATED_AT: &str = "created_at";
const REVOKED: &str = "revoked";
const REVOKED_AT: &str = "revoked_at";

fn key_pk(digest: &str) -> String {
    format!("APIKEY#{digest}")
}

fn listing_pk(tenant: &str) -> String {
    format!("{}APIKEYS", tenant_prefix(tenant))
}

fn listing_sk(key_id: &str) -> String {
    format!("KEY#{key_id}")
}

/// A stored key as `crmflow api-keys list` shows it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiKeyInfo {
    pub key_id: String,
    pub tenant: String,
    /// The SHA-256 digest of the key (lowercase hex).
    pub digest: String,
    pub created_at: String,
    pub revoked: bool,
    pub revoked_at: Option<String>,
}

/// What [`DynamoStore::revoke_api_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    /// It was revoked before: nothing changed.
    AlreadyRevoked,
    /// The tenant has no key with that id.
    NotFound,
}

fn is_revoked(item: &Item) -> bool {
    matches!(item.get(REVOKED), Some(AttributeValue::Bool(true)))
}

fn info(tenant: &str, item: &Item) -> Result<ApiKeyInfo, StoreError> {
    Ok(ApiKeyInfo {
        key_id: get_s(item, KEY_ID)?.to_owned(),
        tenant: tenant.to_owned(),
        digest: get_s(item, DIGEST)?.to_owned(),
        created_at: get_s(item, CREATED_AT)?.to_owned(),
        revoked: is_revoked(item),
        revoked_at: get_s(item, REVOKED_AT).ok().map(str::to_owned),
    })
}

/// `digest` must be 64 lowercase hex digits (a SHA-256 digest), so that a key can never be
/// stored in its place by mistake.
fn check_digest(digest: &str) -> Result<(), StoreError> {
    if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(StoreError::Other(
            "digest: expected the SHA-256 digest of the key, 64 lowercase hex digits".into(),
        ))
    }
}

impl DynamoStore {
    /// Stores a key by its digest for `credential`'s tenant. `Conflict` when the digest or the
    /// key id is stored already.
    pub async fn put_api_key(
        &self,
        digest: &str,
        credential: &Credential,
        created_at: Timestamp,
    ) -> Result<(), StoreError> {
        check_digest(digest)?;
        let created = created_at.to_string();
        let mut key_item = key(key_pk(digest), KEY_SK);
        let mut listing = key(listing_pk(&credential.tenant), listing_sk(&credential.id));
        for item in [&mut key_item, &mut listing] {
            item.insert(KEY_ID.into(), s(&credential.id));
            item.insert(CREATED_AT.into(), s(&created));
            item.insert(REVOKED.into(), AttributeValue::Bool(false));
        }
        key_item.insert(TENANT.into(), s(&credential.tenant));
        listing.insert(DIGEST.into(), s(digest));
        let new = || Expr::new("attribute_not_exists(#pk)").name("#pk", PK);
        let items = vec![self.tx_put(key_item, Some(new()))?, self.tx_put(listing, Some(new()))?];
        self.transact(items).await.map_err(|e| {
            e.into_store_error(&format!(
                "storing API key {} of tenant {}",
                credential.id, credential.tenant
            ))
        })
    }

    /// The tenant's keys (revoked ones too), oldest id first.
    pub async fn list_api_keys(&self, tenant: &str) -> Result<Vec<ApiKeyInfo>, StoreError> {
        self.query_partition(&listing_pk(tenant), Some("KEY#"))
            .await?
            .iter()
            .map(|item| info(tenant, item))
            .collect()
    }

    /// Revokes the tenant's key `key_id`: requests with it answer 401 from then on.
    pub async fn revoke_api_key(&self, tenant: &str, key_id: &str, now: Timestamp) -> Result<Revocation, StoreError> {
        let Some(listing) = self.get_item(listing_pk(tenant), &listing_sk(key_id)).await? else {
            return Ok(Revocation::NotFound);
        };
        if is_revoked(&listing) {
            return Ok(Revocation::AlreadyRevoked);
        }
        let digest = get_s(&listing, DIGEST)?.to_owned();
        let update = || {
            Expr::new("SET #revoked = :true, #revoked_at = :now")
                .name("#revoked", REVOKED)
                .name("#revoked_at", REVOKED_AT)
                .name("#pk", PK)
                .value(":true", AttributeValue::Bool(true))
                .value(":now", s(now.to_string()))
        };
        let items = vec![
            self.tx_update(key(key_pk(&digest), KEY_SK), update(), Some("attribute_exists(#pk)"))?,
            self.tx_update(
                key(listing_pk(tenant), listing_sk(key_id)),
                update(),
                Some("attribute_exists(#pk)"),
            )?,
        ];
        self.transact(items)
            .await
            .map_err(|e| e.into_store_error(&format!("revoking API key {key_id} of tenant {tenant}")))?;
        Ok(Revocation::Revoked)
    }

    /// The credential of the key with this digest, unless revoked: one `GetItem`.
    async fn api_key_credential(&self, digest: &str) -> Result<Option<Credential>, StoreError> {
        if check_digest(digest).is_err() {
            return Ok(None);
        }
        let Some(item) = self.get_item(key_pk(digest), KEY_SK).await? else {
            return Ok(None);
        };
        if is_revoked(&item) {
            return Ok(None);
        }
        Ok(Some(Credential {
            id: get_s(&item, KEY_ID)?.to_owned(),
            tenant: get_s(&item, TENANT)?.to_owned(),
        }))
    }
}

#[async_trait]
impl ApiKeyStore for DynamoStore {
    /// A key the table cannot be asked about (throttled, unreachable) counts as unknown, and the
    /// failure is logged: the request gets 401 and may be retried.
    async fn credential(&self, digest: &str) -> Result<Option<Credential>, StoreError> {
        self.api_key_credential(digest).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_digests_are_accepted_as_keys() {
        assert!(check_digest(&"a1".repeat(32)).is_ok());
        assert!(check_digest(&format!("cfk_{}", "a1".repeat(30))).is_err());
        assert!(check_digest(&"A1".repeat(32)).is_err());
        assert!(check_digest("abc").is_err());
    }

    #[test]
    fn a_key_and_its_listing_are_in_different_partitions() {
        assert_eq!(key_pk("ab"), "APIKEY#ab");
        assert_eq!(listing_pk("acme"), "TENANT#acme#APIKEYS");
        assert_eq!(listing_sk("key_1"), "KEY#key_1");
    }
}
