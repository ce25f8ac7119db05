//! Structured JSON logs (one object per line) for CloudWatch. Handlers open a span per SQS
//! record carrying `message_id`, `run_id`, `automation_id`, `step_id` and `event_id`, and the
//! formatter adds the current span's fields to every line. Level from `RUST_LOG` (default info).

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .without_time()
        .with_target(false)
        .try_init();
}
