//! What a run costs: the price table (list prices, one date) and the arithmetic from what the
//! functions used ([`super::ledger`] tallies, records handled) and stated Lambda assumptions to
//! US dollars per run.
//!
//! Lambda's side is modelled, not measured (no timed tests): an invocation per batch of
//! records, and a duration made of a fixed part per invocation, a compute part per record and a
//! wait per AWS request ([`LambdaAssumptions`]). The event source mapping's own SQS requests
//! are billed too: per batch, one `ReceiveMessage` (one 64 KB chunk, the batch's payload being
//! assumed under 64 KB) and one `DeleteMessageBatch`. Its empty long polls, and the resume
//! schedule's invocation every minute, cost the same whatever the traffic: they are not in a
//! run's cost.

use super::ledger::Tallies;

/// List prices in US dollars, US East (N. Virginia), on-demand, arm64 Lambda.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// When the prices were checked (ISO date).
    pub checked: &'static str,
    /// $ per million DynamoDB write request units.
    pub dynamodb_write_units_per_million: f64,
    /// $ per million DynamoDB read request units.
    pub dynamodb_read_units_per_million: f64,
    /// $ per million SQS requests (each 64 KB chunk of a payload is a request).
    pub sqs_requests_per_million: f64,
    /// $ per million Lambda requests (invocations).
    pub lambda_requests_per_million: f64,
    /// $ per GB-second of Lambda duration (arm64).
    pub lambda_gb_second: f64,
    /// $ per 1,000 SES emails (per recipient).
    pub ses_emails_per_thousand: f64,
    /// $ per million Step Functions Standard state transitions (for comparison).
    pub step_functions_transitions_per_million: f64,
    /// $ per million Lambda durable functions operations (for comparison; approximate).
    pub durable_operations_per_million: f64,
}

/// The prices the cost figures use.
pub const PRICES: Prices = Prices {
    checked: "2026-11-30",
    dynamodb_write_units_per_million: 0.625,
    dynamodb_read_units_per_million: 0.125,
    sqs_requests_per_million: 0.40,
    lambda_requests_per_million: 0.20,
    lambda_gb_second: 0.000_013_333_4,
    ses_emails_per_thousand: 0.10,
    step_functions_transitions_per_million: 25.0,
    durable_operations_per_million: 8.0,
};

impl Prices {
    /// The table as rows: (what, price in $, per what).
    pub fn rows(&self) -> Vec<(&'static str, f64, &'static str)> {
        vec![
            (
                "DynamoDB write request units",
                self.dynamodb_write_units_per_million,
                "per million",
            ),
            (
                "DynamoDB read request units",
                self.dynamodb_read_units_per_million,
                "per million",
            ),
            (
                "SQS requests (64 KB chunks)",
                self.sqs_requests_per_million,
                "per million",
            ),
            ("Lambda requests", self.lambda_requests_per_million, "per million"),
            ("Lambda duration (arm64)", self.lambda_gb_second, "per GB-second"),
            ("SES emails", self.ses_emails_per_thousand, "per 1,000"),
            (
                "Step Functions Standard transitions",
                self.step_functions_transitions_per_million,
                "per million",
            ),
            (
                "Lambda durable functions operations",
                self.durable_operations_per_million,
                "per million",
            ),
        ]
    }

    /// $ per run of a Step Functions Standard workflow of `transitions` state transitions (the
    /// transitions only).
    pub fn step_functions_run(&self, transitions: f64) -> f64 {
        transitions * self.step_functions_transitions_per_million / 1e6
    }

    /// $ per run of a Lambda durable function of `operations` operations and `invocations`
    /// invocations (duration left out).
    pub fn durable_run(&self, operations: f64, invocations: f64) -> f64 {
        (operations * self.durable_operations_per_million + invocations * self.lambda_requests_per_million) / 1e6
    }
}

/// How Lambda duration is modelled (the figures state these).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LambdaAssumptions {
    /// Memory of every function, in MB (the IaC template's `MemorySize`).
    pub memory_mb: f64,
    /// Fixed duration of an invocation (runtime API calls, the batch's setup), in ms.
    pub ms_per_invocation: f64,
    /// Compute per record (parsing, deciding, serialising), in ms.
    pub ms_per_record: f64,
    /// Wait per DynamoDB or SQS request, in ms.
    pub ms_per_request: f64,
    /// Wait per SES `SendEmail`, in ms.
    pub ms_per_email_request: f64,
}

/// The assumptions of the published figures.
pub const LAMBDA_ASSUMPTIONS: LambdaAssumptions = LambdaAssumptions {
    memory_mb: 256.0,
    ms_per_invocation: 2.0,
    ms_per_record: 2.0,
    ms_per_request: 8.0,
    ms_per_email_request: 40.0,
};

/// What one function did for a run.
#[derive(Debug, Clone, Default)]
pub struct FunctionUse {
    pub function: String,
    /// Its requests and their cost.
    pub tallies: Tallies,
    /// SQS records it handled (through an event source mapping, in batches).
    pub records: u64,
    /// Invocations not from a queue (the resume schedule's), priced as they are; the resume
    /// function's share of a run is its work in sweeps that run anyway: 0 invocations.
    pub scheduled_invocations: u64,
}

/// A run's cost, in US dollars, by item; and the quantities behind it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunCost {
    pub dynamodb_reads: f64,
    pub dynamodb_writes: f64,
    pub sqs: f64,
    pub lambda_requests: f64,
    pub lambda_duration: f64,
    pub ses: f64,
    /// DynamoDB read request units.
    pub read_units: f64,
    /// DynamoDB write request units (tables and indexes).
    pub write_units: f64,
    /// SQS billed requests: the functions' and the event source mappings'.
    pub sqs_requests: f64,
    /// Lambda invocations.
    pub invocations: f64,
    /// Lambda GB-seconds.
    pub gb_seconds: f64,
    /// SES emails.
    pub emails: f64,
}

impl RunCost {
    /// $ per run.
    pub fn total(&self) -> f64 {
        self.dynamodb_reads + self.dynamodb_writes + self.sqs + self.lambda_requests + self.lambda_duration + self.ses
    }

    /// The cost of `n` runs as the cost of one (every figure divided by `n`).
    pub fn divided(self, n: f64) -> RunCost {
        let n = if n > 0.0 { n } else { 1.0 };
        RunCost {
            dynamodb_reads: self.dynamodb_reads / n,
            dynamodb_writes: self.dynamodb_writes / n,
            sqs: self.sqs / n,
            lambda_requests: self.lambda_requests / n,
            lambda_duration: self.lambda_duration / n,
            ses: self.ses / n,
            read_units: self.read_units / n,
            write_units: self.write_units / n,
            sqs_requests: self.sqs_requests / n,
            invocations: self.invocations / n,
            gb_seconds: self.gb_seconds / n,
            emails: self.emails / n,
        }
    }

    /// $ per run without SES (what the engine itself costs; the emails cost the same in any
    /// design).
    pub fn without_email(&self) -> f64 {
        self.total() - self.ses
    }
}

/// The cost of a run whose functions did `uses`, at `batch_size` records per invocation (the
/// batches assumed full).
pub fn run_cost(uses: &[FunctionUse], batch_size: u32, lambda: &LambdaAssumptions, prices: &Prices) -> RunCost {
    let batch = f64::from(batch_size.max(1));
    let mut cost = RunCost::default();
    for u in uses {
        let mut ms = 0.0;
        for ((service, _), t) in &u.tallies {
            cost.read_units += t.read_units;
            cost.write_units += t.all_write_units() as f64;
            cost.sqs_requests += t.sqs_requests as f64;
            cost.emails += t.emails as f64;
            let wait = if service == "SESv2" {
                lambda.ms_per_email_request
            } else {
                lambda.ms_per_request
            };
            ms += t.requests as f64 * wait;
        }
        let records = u.records as f64;
        let invocations = records / batch;
        // Per batch: a ReceiveMessage and a DeleteMessageBatch.
        cost.sqs_requests += 2.0 * invocations;
        let scheduled = u.scheduled_invocations as f64;
        cost.invocations += invocations + scheduled;
        ms += (invocations + scheduled) * lambda.ms_per_invocation + records * lambda.ms_per_record;
        cost.gb_seconds += lambda.memory_mb / 1024.0 * ms / 1000.0;
    }
    cost.dynamodb_reads = cost.read_units * prices.dynamodb_read_units_per_million / 1e6;
    cost.dynamodb_writes = cost.write_units * prices.dynamodb_write_units_per_million / 1e6;
    cost.sqs = cost.sqs_requests * prices.sqs_requests_per_million / 1e6;
    cost.lambda_requests = cost.invocations * prices.lambda_requests_per_million / 1e6;
    cost.lambda_duration = cost.gb_seconds * prices.lambda_gb_second;
    cost.ses = cost.emails * prices.ses_emails_per_thousand / 1e3;
    cost
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::ledger::Tally;

    fn tallies(entries: &[(&str, &str, Tally)]) -> Tallies {
        entries
            .iter()
            .map(|(s, o, t)| ((s.to_string(), o.to_string()), *t))
            .collect()
    }

    #[test]
    fn a_run_costs_its_units_requests_invocations_duration_and_emails() {
        let uses = [
            FunctionUse {
                function: "evaluate".into(),
                tallies: tallies(&[
                    (
                        "DynamoDB",
                        "TransactWriteItems",
                        Tally {
                            requests: 2,
                            write_units: 8,
                            index_write_units: 2,
                            ..Tally::default()
                        },
                    ),
                    (
                        "DynamoDB",
                        "GetItem",
                        Tally {
                            requests: 4,
                            read_units: 4.0,
                            ..Tally::default()
                        },
                    ),
                    (
                        "SQS",
                        "SendMessage",
                        Tally {
                            requests: 2,
                            sqs_requests: 2,
                            ..Tally::default()
                        },
                    ),
                ]),
                records: 2,
                ..FunctionUse::default()
            },
            FunctionUse {
                function: "execute".into(),
                tallies: tallies(&[(
                    "SESv2",
                    "SendEmail",
                    Tally {
                        requests: 1,
                        emails: 1,
                        ..Tally::default()
                    },
                )]),
                records: 1,
                ..FunctionUse::default()
            },
        ];
        let lambda = LambdaAssumptions {
            memory_mb: 1024.0,
            ms_per_invocation: 10.0,
            ms_per_record: 5.0,
            ms_per_request: 10.0,
            ms_per_email_request: 50.0,
        };
        let one = run_cost(&uses, 1, &lambda, &PRICES);
        assert_eq!(one.write_units, 10.0);
        assert_eq!(one.read_units, 4.0);
        // 2 sends + 3 records x (receive + delete).
        assert_eq!(one.sqs_requests, 8.0);
        assert_eq!(one.invocations, 3.0);
        // evaluate: 8 requests x 10 + 2 x 10 + 2 x 5 = 110 ms; execute: 50 + 10 + 5 = 65 ms.
        assert!((one.gb_seconds - 0.175).abs() < 1e-9, "{}", one.gb_seconds);
        assert!((one.ses - 0.0001).abs() < 1e-12);
        let expected = 10.0 * 0.625e-6 + 4.0 * 0.125e-6 + 8.0 * 0.4e-6 + 3.0 * 0.2e-6 + 0.175 * 0.0000133334 + 0.0001;
        assert!((one.total() - expected).abs() < 1e-12, "{} vs {expected}", one.total());
        assert!((one.without_email() - (expected - 0.0001)).abs() < 1e-12);
        // Batches of 10: a tenth of the invocations and of the event source's requests.
        let ten = run_cost(&uses, 10, &lambda, &PRICES);
        assert!((ten.invocations - 0.3).abs() < 1e-12);
        assert!((ten.sqs_requests - 2.6).abs() < 1e-12);
        assert!(ten.total() < one.total());
        assert_eq!(ten.write_units, one.write_units);
        let half = one.divided(2.0);
        assert!((half.total() * 2.0 - one.total()).abs() < 1e-15);
        assert_eq!(half.write_units, 5.0);
        // A scheduled invocation: no event source requests, nothing divided by the batch size.
        let sweep = FunctionUse {
            function: "resume".into(),
            scheduled_invocations: 1,
            ..FunctionUse::default()
        };
        let c = run_cost(&[sweep], 10, &lambda, &PRICES);
        assert_eq!((c.invocations, c.sqs_requests), (1.0, 0.0));
        assert!((c.gb_seconds - 0.01).abs() < 1e-12);
    }

    #[test]
    fn the_alternatives_cost_their_transitions_and_operations() {
        assert!((PRICES.step_functions_run(8.0) * 1e6 - 200.0).abs() < 1e-9);
        assert!((PRICES.durable_run(8.0, 4.0) * 1e6 - 64.8).abs() < 1e-9);
        assert_eq!(PRICES.rows().len(), 8);
    }
}
