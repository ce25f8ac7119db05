//! Function configuration, read from environment variables (set by the IaC template).
//!
//! | variable | used by | meaning |
//! |---|---|---|
//! | `CRMFLOW_TABLE_NAME` | all | the DynamoDB table |
//! | `CRMFLOW_STEP_QUEUE_URL` | all | the step queue (inputs for evaluate) |
//! | `CRMFLOW_ACTION_QUEUE_URL` | evaluate | the action queue (work for execute) |
//! | `CRMFLOW_EVENTS_QUEUE_URL` | api | the events queue (what intake reads), for posted events |
//! | `CRMFLOW_CRM_COMMANDS_QUEUE_URL` | evaluate, execute | the outbound CRM command queue |
//! | `CRMFLOW_SENDER_ADDRESS` | execute | the default `From` address (an SES-verified identity) |
//! | `CRMFLOW_NOTIFY_URLS` | execute | JSON object, notification channel → URL (optional) |
//! | `CRMFLOW_RETENTION_DAYS` | all | days finished runs are kept (TTL), default 30 |
//! | `CRMFLOW_DRY_RUN` | intake, evaluate, execute, api | `true` runs the whole deployment dry: no effect is performed, each is recorded in its run's history (default `false`) |
//! | `CRMFLOW_ALLOW_PRIVATE_WEBHOOKS` | execute | `true` lets webhooks reach private/loopback addresses (local testing only) |
//!
//! AWS clients honour `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`), so the functions can
//! run against a local AWS-protocol server.

use crmflow_core::engine::EngineConfig;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FunctionName {
    Intake,
    Evaluate,
    Execute,
    Resume,
    /// The management API, behind an API Gateway HTTP API.
    Api,
    /// The management API's test route (an automation run on a sample event, on a private
    /// simulator), behind the same HTTP API.
    Simulate,
}

impl FunctionName {
    pub const ALL: [FunctionName; 6] = [
        FunctionName::Intake,
        FunctionName::Evaluate,
        FunctionName::Execute,
        FunctionName::Resume,
        FunctionName::Api,
        FunctionName::Simulate,
    ];

    /// The functions of the engine, driven by queues and the timer schedule (all but the two of
    /// the HTTP API).
    pub const ENGINE: [FunctionName; 4] = [
        FunctionName::Intake,
        FunctionName::Evaluate,
        FunctionName::Execute,
        FunctionName::Resume,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FunctionName::Intake => "intake",
            FunctionName::Evaluate => "evaluate",
            FunctionName::Execute => "execute",
            FunctionName::Resume => "resume",
            FunctionName::Api => "api",
            FunctionName::Simulate => "simulate",
        }
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct FunctionConfig {
    pub function: FunctionName,
    pub table_name: String,
    pub step_queue_url: String,
    pub action_queue_url: String,
    /// The events queue: only the api function sends to it (intake consumes it through its
    /// event source mapping).
    pub events_queue_url: Option<String>,
    pub crm_commands_queue_url: Option<String>,
    pub sender_address: Option<String>,
    pub notify_urls: BTreeMap<String, String>,
    pub retention_days: u32,
    pub allow_private_webhooks: bool,
    /// `CRMFLOW_DRY_RUN=true`: the whole deployment runs dry (every run is a dry run: effects
    /// are recorded in the history, never performed).
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl FunctionConfig {
    pub fn from_env(function: FunctionName) -> Result<Self, ConfigError> {
        Self::from_lookup(function, |k| std::env::var(k).ok())
    }

    /// Reads the configuration through `lookup` (testable without touching the environment).
    pub fn from_lookup(function: FunctionName, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &'static str| lookup(k).filter(|v| !v.trim().is_empty());
        let required = |k: &'static str| {
            get(k).ok_or(ConfigError {
                variable: k,
                message: "must be set".to_string(),
            })
        };
        let table_name = required("CRMFLOW_TABLE_NAME")?;
        // The simulate function sends nothing.
        let step_queue_url = if function == FunctionName::Simulate {
            get("CRMFLOW_STEP_QUEUE_URL").unwrap_or_default()
        } else {
            required("CRMFLOW_STEP_QUEUE_URL")?
        };
        // Intake starts the runs it creates as evaluate would (with evaluate's queues).
        let action_queue_url = if matches!(function, FunctionName::Intake | FunctionName::Evaluate) {
            required("CRMFLOW_ACTION_QUEUE_URL")?
        } else {
            get("CRMFLOW_ACTION_QUEUE_URL").unwrap_or_default()
        };
        let events_queue_url = match function {
            FunctionName::Api => Some(required("CRMFLOW_EVENTS_QUEUE_URL")?),
            _ => None,
        };
        let crm_commands_queue_url = match function {
            FunctionName::Intake | FunctionName::Evaluate | FunctionName::Execute => {
                Some(required("CRMFLOW_CRM_COMMANDS_QUEUE_URL")?)
            }
            _ => None,
        };
        let sender_address = match function {
            FunctionName::Evaluate | FunctionName::Execute => Some(required("CRMFLOW_SENDER_ADDRESS")?),
            _ => None,
        };
        let notify_urls = match get("CRMFLOW_NOTIFY_URLS") {
            Some(json) => serde_json::from_str(&json).map_err(|e| ConfigError {
                variable: "CRMFLOW_NOTIFY_URLS",
                message: format!("expected a JSON object of channel → URL strings: {e}"),
            })?,
            None => BTreeMap::new(),
        };
        let retention_days = match get("CRMFLOW_RETENTION_DAYS") {
            Some(v) => v.parse().map_err(|_| ConfigError {
                variable: "CRMFLOW_RETENTION_DAYS",
                message: format!("expected a whole number of days, got {v:?}"),
            })?,
            None => 30,
        };
        let allow_private_webhooks = get("CRMFLOW_ALLOW_PRIVATE_WEBHOOKS").is_some_and(|v| v == "true");
        let dry_run = match get("CRMFLOW_DRY_RUN").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError {
                    variable: "CRMFLOW_DRY_RUN",
                    message: format!("expected true or false, got {other:?}"),
                });
            }
        };
        Ok(FunctionConfig {
            function,
            table_name,
            step_queue_url,
            action_queue_url,
            events_queue_url,
            crm_commands_queue_url,
            sender_address,
            notify_urls,
            retention_days,
            allow_private_webhooks,
            dry_run,
        })
    }

    /// The engine settings these variables give.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            notify_urls: self.notify_urls.clone(),
            dry_run: self.dry_run,
            ..EngineConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn execute_needs_a_sender_and_names_the_variable() {
        let lookup = env(&[
            ("CRMFLOW_TABLE_NAME", "t"),
            ("CRMFLOW_STEP_QUEUE_URL", "s"),
            ("CRMFLOW_CRM_COMMANDS_QUEUE_URL", "c"),
        ]);
        let err = FunctionConfig::from_lookup(FunctionName::Execute, lookup).unwrap_err();
        assert_eq!(err.variable, "CRMFLOW_SENDER_ADDRESS");
    }

    #[test]
    fn dry_run_is_true_or_false_and_reaches_the_engine() {
        let base = [("CRMFLOW_TABLE_NAME", "t"), ("CRMFLOW_STEP_QUEUE_URL", "s")];
        let read = |value: Option<&str>| {
            let mut pairs = base.to_vec();
            pairs.extend(value.map(|v| ("CRMFLOW_DRY_RUN", v)));
            FunctionConfig::from_lookup(FunctionName::Resume, env(&pairs))
        };
        assert!(!read(None).unwrap().engine_config().dry_run, "off by default");
        assert!(read(Some("true")).unwrap().engine_config().dry_run);
        assert!(!read(Some("false")).unwrap().engine_config().dry_run);
        let err = read(Some("yes")).unwrap_err();
        assert_eq!(err.variable, "CRMFLOW_DRY_RUN");
        assert!(err.message.contains("\"yes\""), "{}", err.message);
    }

    #[test]
    fn intake_needs_evaluates_queues_to_start_runs() {
        let base = [
            ("CRMFLOW_TABLE_NAME", "t"),
            ("CRMFLOW_STEP_QUEUE_URL", "s"),
            ("CRMFLOW_RETENTION_DAYS", "7"),
        ];
        let err = FunctionConfig::from_lookup(FunctionName::Intake, env(&base)).unwrap_err();
        assert_eq!(err.variable, "CRMFLOW_ACTION_QUEUE_URL");
        let with_actions = [base[0], base[1], base[2], ("CRMFLOW_ACTION_QUEUE_URL", "a")];
        let err = FunctionConfig::from_lookup(FunctionName::Intake, env(&with_actions)).unwrap_err();
        assert_eq!(err.variable, "CRMFLOW_CRM_COMMANDS_QUEUE_URL");
        let all = [
            base[0],
            base[1],
            base[2],
            ("CRMFLOW_ACTION_QUEUE_URL", "a"),
            ("CRMFLOW_CRM_COMMANDS_QUEUE_URL", "c"),
        ];
        let cfg = FunctionConfig::from_lookup(FunctionName::Intake, env(&all)).unwrap();
        assert_eq!(cfg.retention_days, 7);
        assert_eq!(
            (cfg.action_queue_url.as_str(), cfg.crm_commands_queue_url.as_deref()),
            ("a", Some("c"))
        );
        assert!(cfg.sender_address.is_none());
    }

    #[test]
    fn the_api_needs_the_events_queue() {
        let base = [("CRMFLOW_TABLE_NAME", "t"), ("CRMFLOW_STEP_QUEUE_URL", "s")];
        let err = FunctionConfig::from_lookup(FunctionName::Api, env(&base)).unwrap_err();
        assert_eq!(err.variable, "CRMFLOW_EVENTS_QUEUE_URL");
        let with = [base[0], base[1], ("CRMFLOW_EVENTS_QUEUE_URL", "e")];
        let cfg = FunctionConfig::from_lookup(FunctionName::Api, env(&with)).unwrap();
        assert_eq!(cfg.events_queue_url.as_deref(), Some("e"));
        assert!(cfg.crm_commands_queue_url.is_none() && cfg.sender_address.is_none());
    }

    #[test]
    fn bad_notify_urls_is_an_error_naming_the_variable() {
        let err = FunctionConfig::from_lookup(
            FunctionName::Resume,
            env(&[
                ("CRMFLOW_TABLE_NAME", "t"),
                ("CRMFLOW_STEP_QUEUE_URL", "s"),
                ("CRMFLOW_NOTIFY_URLS", "[1]"),
            ]),
        )
        .unwrap_err();
        assert_eq!(err.variable, "CRMFLOW_NOTIFY_URLS");
    }
}
