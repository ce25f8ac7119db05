//! Who is calling: per-tenant API keys.
//!
//! A request carries `Authorization: Bearer <key>`. A key maps to one [`Credential`]: its id
//! (what the audit shows) and its tenant, the tenant of every read and write the request makes.
//! The tenant never comes from the body or the path. Keys are stored only as their SHA-256
//! digest ([`digest`]); the key itself is shown once, when it is made ([`new_key`]).

use crate::problem::Problem;
use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crmflow_core::ports::StoreError;
/// The key store port and what a key stands for live with the core's other ports, so the
/// AWS adapters implement them without depending on this crate.
pub use crmflow_core::ports::{ApiKeyStore, Credential};

/// The prefix of every key, so that a leaked key is recognisable.
pub const KEY_PREFIX: &str = "cfk_";

/// A new random key (`cfk_` and 64 hex digits: two random UUIDs, 244 random bits) and its
/// credential id.
pub fn new_key() -> (String, String) {
    let key = format!(
        "{KEY_PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    (key, format!("key_{}", uuid::Uuid::now_v7().simple()))
}

/// The SHA-256 digest of a key, lowercase hex: what the store keeps.
pub fn digest(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Keys in memory (for `crmflow serve` and tests), by digest.
#[derive(Default)]
pub struct MemoryApiKeys {
    by_digest: RwLock<HashMap<String, Credential>>,
}

impl MemoryApiKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes a key for `tenant` and returns it with its credential; only the digest is kept.
    pub fn create(&self, tenant: &str) -> (String, Credential) {
        let (key, id) = new_key();
        let credential = Credential {
            id,
            tenant: tenant.to_owned(),
        };
        self.by_digest
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest(&key), credential.clone());
        (key, credential)
    }

    /// Accepts a key chosen by the caller (`crmflow serve --api-key`) for `tenant`; only its
    /// digest is kept.
    pub fn insert(&self, key: &str, tenant: &str) -> Credential {
        let credential = Credential {
            id: new_key().1,
            tenant: tenant.to_owned(),
        };
        self.by_digest
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest(key), credential.clone());
        credential
    }
}

#[async_trait]
impl ApiKeyStore for MemoryApiKeys {
    async fn credential(&self, digest: &str) -> Result<Option<Credential>, StoreError> {
        Ok(self
            .by_digest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned())
    }
}

/// The caller, taken from the `Authorization` header: 401 without a known key.
pub struct Caller(pub Credential);

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<dyn ApiKeyStore>: axum::extract::FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, Problem> {
        let keys: Arc<dyn ApiKeyStore> = axum::extract::FromRef::from_ref(state);
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| Problem::unauthorized("an Authorization: Bearer <API key> header is required"))?;
        let key = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| Problem::unauthorized("the Authorization header must be `Bearer <API key>`"))?;
        keys.credential(&digest(key))
            .await
            .map_err(|e| Problem::store(&e))?
            .map(Caller)
            .ok_or_else(|| Problem::unauthorized("unknown or revoked API key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key store that cannot be read.
    struct Down;

    #[async_trait]
    impl ApiKeyStore for Down {
        async fn credential(&self, _: &str) -> Result<Option<Credential>, StoreError> {
            Err(StoreError::Transient("throttled".into()))
        }
    }

    #[tokio::test]
    async fn a_key_store_that_cannot_be_read_answers_503_not_401() {
        use tower::ServiceExt;
        let keys: Arc<dyn ApiKeyStore> = Arc::new(Down);
        let app = axum::Router::new()
            .route("/", axum::routing::get(|_: Caller| async { "ok" }))
            .with_state(keys);
        let request = axum::http::Request::builder()
            .uri("/")
            .header(header::AUTHORIZATION, "Bearer cfk_0123")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn keys_are_random_prefixed_and_stored_only_as_digests() {
        let store = MemoryApiKeys::new();
        let (key, credential) = store.create("acme");
        let (other, _) = store.create("acme");
        assert_ne!(key, other);
        assert!(
            key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 64,
            "{key}"
        );
        let stored = store.by_digest.read().unwrap();
        assert!(stored.keys().all(|d| d.len() == 64 && !d.contains(&key)));
        assert_eq!(stored.get(&digest(&key)), Some(&credential));
    }

    #[test]
    fn the_digest_is_sha256_in_lowercase_hex() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
