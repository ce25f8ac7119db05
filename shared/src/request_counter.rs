//! Counts AWS requests per (service, operation): an SDK interceptor that the AWS adapters attach
//! to their clients (see [`super::sdk`]). Every attempt counts, retries included, because
//! every attempt is a billed request. Each function logs its invocation's counts
//! ([`crate::lambda`]), and the end-to-end tests read them for the request figures.
//!
//! A counter may carry other interceptors ([`RequestCounter::with_interceptor`]), which the
//! clients built with it get after the counter.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Request counts keyed by (service, operation), e.g. `("DynamoDB", "TransactWriteItems")`.
/// Clones share the counts (and the interceptors).
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<(String, String), u64>>>,
    interceptors: Vec<SharedInterceptor>,
}

impl RequestCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter, and `interceptor` for the clients built with it (by the `*_client` functions
    /// of [`crate::sdk`], after the counter and the interceptors added before): another
    /// interceptor that should see every request of a function's clients, e.g. a test's cost
    /// ledger. The functions themselves add none.
    pub fn with_interceptor(mut self, interceptor: impl Intercept + 'static) -> Self {
        self.interceptors.push(SharedInterceptor::new(interceptor));
        self
    }

    /// The interceptors added with [`RequestCounter::with_interceptor`], in order.
    pub fn interceptors(&self) -> &[SharedInterceptor] {
        &self.interceptors
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), u64>> {
        self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one request (the interceptor calls this; tests and other transports may too).
    pub fn record(&self, service: &str, operation: &str) {
        *self
            .lock()
            .entry((service.to_string(), operation.to_string()))
            .or_insert(0) += 1;
    }

    /// Requests of one operation so far.
    pub fn get(&self, service: &str, operation: &str) -> u64 {
        self.lock()
            .get(&(service.to_string(), operation.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Every request so far.
    pub fn total(&self) -> u64 {
        self.lock().values().sum()
    }

    /// A copy of the counts.
    pub fn snapshot(&self) -> BTreeMap<(String, String), u64> {
        self.lock().clone()
    }

    /// Clears the counts.
    pub fn reset(&self) {
        self.lock().clear();
    }

    /// The counts so far, cleared: `(total, "DynamoDB.GetItem=3 SQS.SendMessage=1")`.
    pub fn take_summary(&self) -> (u64, String) {
        let counts = std::mem::take(&mut *self.lock());
        let total = counts.values().sum();
        let summary = counts
            .iter()
            .map(|((service, operation), n)| format!("{service}.{operation}={n}"))
            .collect::<Vec<_>>()
            .join(" ");
        (total, summary)
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match cfg.load::<Metadata>() {
            Some(meta) => self.record(meta.service(), meta.name()),
            None => self.record("unknown", "unknown"),
        }
        Ok(())
    }
}
