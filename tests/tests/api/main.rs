//! The management API on the embedded store: every route's success and error statuses, the
//! seed's bodies sent verbatim, and tenant isolation over the whole route table.

mod automations;
mod cli;
mod events;
mod idempotency;
mod lifecycle;
mod manual;
mod observe;
mod openapi;
mod readme;
mod runs;
mod support;
mod tasks;
