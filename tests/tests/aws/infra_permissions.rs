//! The deployment template (`infra/template.yaml`) against the code: each function's IAM role
//! holds exactly `crmflow_aws::lambda::permissions::required(function)` (no missing permission, no
//! extra one) plus writing to its own log group; no action has a `*`; only execute may send
//! email; every SQS event source reports batch item failures; every queue has a dead-letter
//! queue (`maxReceiveCount` ≥ 5) and a visibility timeout of at least 6 × its consumer's timeout;
//! every function gets the environment `FunctionConfig` needs; the table has the keys, index and
//! TTL attribute the DynamoDB adapter uses; the api function sits behind a throttled HTTP API
//! (payload 2.0) whose access log goes to a log group with a retention.
//!
//! The template uses only the long form of intrinsic functions (`Ref`, `Fn::GetAtt`, `Fn::Sub`),
//! so a plain YAML parser reads it as it is.

use crmflow_aws::dynamodb::{EXPIRES_AT, GSI1, GSI1PK, GSI1SK, PK, SK};
use crmflow_aws::lambda::permissions::{Permission, Resource, required};
use crmflow_aws::lambda::{FunctionConfig, FunctionName};
use crmflow_tests::local_aws::MAX_RECEIVE_COUNT;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");

/// Every variable `FunctionConfig` reads (shared/src/lambda/config.rs, crate crmflow-aws).
const KNOWN_VARIABLES: [&str; 10] = [
    "CRMFLOW_TABLE_NAME",
    "CRMFLOW_STEP_QUEUE_URL",
    "CRMFLOW_ACTION_QUEUE_URL",
    "CRMFLOW_EVENTS_QUEUE_URL",
    "CRMFLOW_CRM_COMMANDS_QUEUE_URL",
    "CRMFLOW_SENDER_ADDRESS",
    "CRMFLOW_NOTIFY_URLS",
    "CRMFLOW_RETENTION_DAYS",
    "CRMFLOW_ALLOW_PRIVATE_WEBHOOKS",
    "CRMFLOW_DRY_RUN",
];

struct Template {
    root: Value,
}

impl Template {
    fn load() -> Template {
        let text = std::fs::read_to_string(TEMPLATE).unwrap_or_else(|e| panic!("reading {TEMPLATE}: {e}"));
        let root: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{TEMPLATE}: invalid YAML: {e}"));
        assert!(
            !text.lines().any(|l| {
                let l = l.trim_start();
                !l.starts_with('#') && (l.contains(": !") || l.starts_with("- !"))
            }),
            "{TEMPLATE}: use the long form of intrinsic functions (Ref, Fn::GetAtt, Fn::Sub), not `!` tags"
        );
        Template { root }
    }

    fn resources(&self) -> &Map<String, Value> {
        self.root["Resources"].as_object().expect("Resources")
    }

    fn resource(&self, id: &str) -> &Value {
        self.resources()
            .get(id)
            .unwrap_or_else(|| panic!("no resource {id} in the template"))
    }

    fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.resources().iter().filter(move |(_, r)| r["Type"] == ty)
    }

    /// A function property, falling back to `Globals.Function`.
    fn function_property<'a>(&'a self, function: &'a Value, name: &str) -> Option<&'a Value> {
        function["Properties"]
            .get(name)
            .or_else(|| self.root.pointer(&format!("/Globals/Function/{name}")))
    }

    /// The SAM function built from binary `name`.
    fn function(&self, name: FunctionName) -> (&String, &Value) {
        let found: Vec<_> = self
            .of_type("AWS::Serverless::Function")
            .filter(|(_, f)| f.pointer("/Metadata/BuildProperties/Binary") == Some(&json!(name.as_str())))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one function with Metadata.BuildProperties.Binary = {name}"
        );
        found[0]
    }

    fn environment<'a>(&'a self, function: &'a Value) -> &'a Map<String, Value> {
        function
            .pointer("/Properties/Environment/Variables")
            .and_then(Value::as_object)
            .expect("Environment.Variables")
    }

    /// Logical ids of the queues and the table, read from the functions' wiring.
    fn resource_ids(&self) -> BTreeMap<Resource, String> {
        let mut ids: BTreeMap<Resource, String> = BTreeMap::new();
        let mut note = |resource: Resource, id: String, from: String| {
            if let Some(previous) = ids.insert(resource, id.clone()) {
                assert_eq!(
                    previous, id,
                    "{from}: {resource:?} is {id} here but {previous} elsewhere"
                );
            }
        };
        for name in FunctionName::ALL {
            let (fid, function) = self.function(name);
            for (variable, resource) in [
                ("CRMFLOW_TABLE_NAME", Resource::Table),
                ("CRMFLOW_STEP_QUEUE_URL", Resource::StepQueue),
                ("CRMFLOW_ACTION_QUEUE_URL", Resource::ActionQueue),
                ("CRMFLOW_CRM_COMMANDS_QUEUE_URL", Resource::CrmCommandsQueue),
                ("CRMFLOW_EVENTS_QUEUE_URL", Resource::EventsQueue),
            ] {
                if let Some(value) = self.environment(function).get(variable) {
                    let id = ref_of(value).unwrap_or_else(|| panic!("{fid}: {variable} must be a Ref, got {value}"));
                    note(resource, id.to_string(), format!("{fid} {variable}"));
                }
            }
            for (event, queue) in sqs_events(function) {
                let id =
                    getatt_arn(queue).unwrap_or_else(|| panic!("{fid} {event}: Queue must be Fn::GetAtt [Q, Arn]"));
                if name == FunctionName::Intake {
                    note(Resource::EventsQueue, id.to_string(), format!("{fid} {event}"));
                }
            }
        }
        for resource in [
            Resource::Table,
            Resource::EventsQueue,
            Resource::StepQueue,
            Resource::ActionQueue,
            Resource::CrmCommandsQueue,
        ] {
            assert!(ids.contains_key(&resource), "no function is wired to the {resource:?}");
        }
        ids
    }
}

fn ref_of(value: &Value) -> Option<&str> {
    value.get("Ref").and_then(Value::as_str)
}

/// `X` of `{"Fn::GetAtt": [X, "Arn"]}` (or `"X.Arn"`).
fn getatt_arn(value: &Value) -> Option<&str> {
    match value.get("Fn::GetAtt")? {
        Value::Array(parts) if parts.len() == 2 && parts[1] == "Arn" => parts[0].as_str(),
        Value::String(s) => s.strip_suffix(".Arn"),
        _ => None,
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => vec![],
    }
}

fn list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => vec![],
        other => vec![other],
    }
}

fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// (event name, queue) of each SQS event of a SAM function.
fn sqs_events(function: &Value) -> Vec<(&String, &Value)> {
    function
        .pointer("/Properties/Events")
        .and_then(Value::as_object)
        .map(|events| {
            events
                .iter()
                .filter(|(_, e)| e["Type"] == "SQS")
                .map(|(name, e)| (name, &e["Properties"]["Queue"]))
                .collect()
        })
        .unwrap_or_default()
}

/// What a policy statement's `Resource` entry names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Known(Resource),
    LogGroup(String),
    Other(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Known(r) => write!(f, "{r:?}"),
            Target::LogGroup(id) => write!(f, "log group {id}"),
            Target::Other(what) => f.write_str(what),
        }
    }
}

fn target(value: &Value, ids: &BTreeMap<Resource, String>, template: &Template) -> Target {
    if let Some(id) = getatt_arn(value) {
        if let Some((resource, _)) = ids.iter().find(|(_, rid)| *rid == id) {
            return Target::Known(*resource);
        }
        if template
            .resources()
            .get(id)
            .is_some_and(|r| r["Type"] == "AWS::Logs::LogGroup")
        {
            return Target::LogGroup(id.to_string());
        }
        return Target::Other(format!("the ARN of {id}"));
    }
    if let Some(sub) = value.get("Fn::Sub") {
        let (pattern, vars) = match sub {
            Value::String(s) => (s.as_str(), None),
            Value::Array(parts) => (parts[0].as_str().unwrap_or(""), parts.get(1)),
            _ => ("", None),
        };
        // The table's GSI1 (the management API's listings), and nothing else under the table.
        if let Some(table) = ids.get(&Resource::Table)
            && pattern == format!("${{{table}.Arn}}/index/{GSI1}")
        {
            return Target::Known(Resource::TableIndex);
        }
        let prefix = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/";
        if let Some(identity) = pattern.strip_prefix(prefix) {
            // The identity must come from the sender parameters, whichever way it is spelt.
            let source = match identity.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
                Some(var) => vars
                    .and_then(|v| v.get(var))
                    .map(Value::to_string)
                    .unwrap_or_else(|| var.to_string()),
                None => identity.to_string(),
            };
            if source.contains("SenderIdentity") || source.contains("SenderAddress") {
                return Target::Known(Resource::SenderIdentity);
            }
        }
        return Target::Other(format!("Fn::Sub {sub}"));
    }
    Target::Other(value.to_string())
}

/// The IAM policy documents of a role: inline ones, and any attached from elsewhere (which
/// this template should not have).
fn role_documents<'a>(template: &'a Template, role_id: &str) -> Vec<&'a Value> {
    let role = template.resource(role_id);
    let mut docs: Vec<&Value> = list(&role["Properties"]["Policies"])
        .into_iter()
        .map(|p| &p["PolicyDocument"])
        .collect();
    for r in template.resources().values() {
        if matches!(r["Type"].as_str(), Some("AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy"))
            && list(&r["Properties"]["Roles"])
                .iter()
                .any(|v| ref_of(v) == Some(role_id))
        {
            docs.push(&r["Properties"]["PolicyDocument"]);
        }
    }
    docs
}

#[test]
fn each_role_holds_exactly_the_required_permissions() {
    let template = Template::load();
    let ids = template.resource_ids();
    let mut problems = String::new();
    for name in FunctionName::ALL {
        let (fid, function) = template.function(name);
        let role_id = function["Properties"]
            .get("Role")
            .and_then(getatt_arn)
            .unwrap_or_else(|| panic!("{fid}: Role must be Fn::GetAtt [<its role>, Arn]"));
        let role = template.resource(role_id);
        assert_eq!(
            role["Type"], "AWS::IAM::Role",
            "{fid}: {role_id} is not an AWS::IAM::Role"
        );
        assert!(
            function["Properties"].get("Policies").is_none(),
            "{fid}: has Policies beside an explicit Role (SAM would ignore them)"
        );
        assert!(
            role["Properties"].get("ManagedPolicyArns").is_none(),
            "{role_id}: managed policies would add permissions this test cannot see"
        );
        let trust = role["Properties"]["AssumeRolePolicyDocument"].to_string();
        assert!(
            trust.contains("lambda.amazonaws.com"),
            "{role_id}: not assumable by Lambda"
        );
        let log_group = function
            .pointer("/Properties/LoggingConfig/LogGroup")
            .and_then(ref_of)
            .unwrap_or_else(|| panic!("{fid}: LoggingConfig.LogGroup must be a Ref to its log group"));

        let mut granted: BTreeSet<(String, Target)> = BTreeSet::new();
        for doc in role_documents(&template, role_id) {
            for statement in list(&doc["Statement"]) {
                let sid = statement["Sid"].as_str().unwrap_or("?");
                assert_eq!(
                    statement["Effect"], "Allow",
                    "{role_id} {sid}: only Allow statements expected"
                );
                assert!(
                    statement.get("NotAction").is_none() && statement.get("NotResource").is_none(),
                    "{role_id} {sid}: NotAction/NotResource grant more than they name"
                );
                for action in strings(&statement["Action"]) {
                    for resource in list(&statement["Resource"]) {
                        granted.insert((action.clone(), target(resource, &ids, &template)));
                    }
                }
            }
        }

        // Logs: exactly CreateLogStream + PutLogEvents on its own group.
        let logs: BTreeSet<_> = granted
            .iter()
            .filter(|(a, _)| a.starts_with("logs:"))
            .cloned()
            .collect();
        let expected_logs: BTreeSet<_> = ["logs:CreateLogStream", "logs:PutLogEvents"]
            .iter()
            .map(|a| (a.to_string(), Target::LogGroup(log_group.to_string())))
            .collect();
        if logs != expected_logs {
            let _ = writeln!(
                problems,
                "{name} ({role_id}): logs permissions {logs:?}, expected {expected_logs:?}"
            );
        }

        let want: BTreeSet<(String, Target)> = required(name)
            .into_iter()
            .map(|Permission { action, resource }| (action.to_string(), Target::Known(resource)))
            .collect();
        let have: BTreeSet<_> = granted.into_iter().filter(|(a, _)| !a.starts_with("logs:")).collect();
        for (action, resource) in want.difference(&have) {
            let _ = writeln!(problems, "{name} ({role_id}): missing {action} on {resource}");
        }
        for (action, resource) in have.difference(&want) {
            let _ = writeln!(problems, "{name} ({role_id}): extra {action} on {resource}");
        }
    }
    assert!(
        problems.is_empty(),
        "the template's roles differ from permissions::required:\n{problems}"
    );
}

/// Every IAM statement in the template: (where, statement).
fn all_statements(template: &Template) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (id, r) in template.resources() {
        let props = &r["Properties"];
        let mut docs: Vec<&Value> = vec![&props["AssumeRolePolicyDocument"], &props["PolicyDocument"]];
        docs.extend(list(&props["Policies"]).into_iter().map(|p| &p["PolicyDocument"]));
        for doc in docs {
            for statement in list(&doc["Statement"]) {
                out.push((id.clone(), statement));
            }
        }
    }
    out
}

/// Only execute and evaluate (the emails it performs in place) may send email.
#[test]
fn no_wildcard_action_and_only_evaluate_and_execute_send_email() {
    let template = Template::load();
    let senders = [FunctionName::Evaluate, FunctionName::Execute];
    let sender_roles: Vec<String> = senders
        .iter()
        .map(|&name| {
            let (_, function) = template.function(name);
            getatt_arn(&function["Properties"]["Role"]).expect("a Role").to_string()
        })
        .collect();
    let statements = all_statements(&template);
    assert!(!statements.is_empty());
    for (id, statement) in statements {
        for action in strings(&statement["Action"]) {
            assert!(!action.contains('*'), "{id}: wildcard action {action}");
            if action.to_ascii_lowercase().starts_with("ses:") {
                assert!(
                    sender_roles.contains(&id.to_string()),
                    "{id}: {action}: only evaluate and execute may send email"
                );
            }
        }
        assert!(statement.get("NotAction").is_none(), "{id}: NotAction");
    }
    for name in FunctionName::ALL {
        let has_ses = required(name).iter().any(|p| p.action.starts_with("ses:"));
        assert_eq!(
            has_ses,
            senders.contains(&name),
            "{name}: permissions::required and email"
        );
    }
}

#[test]
fn sqs_consumers_report_batch_item_failures_on_their_queue() {
    let template = Template::load();
    let ids = template.resource_ids();
    for name in FunctionName::ALL {
        let (fid, function) = template.function(name);
        let consumed: BTreeSet<Resource> = required(name)
            .into_iter()
            .filter(|p| p.action == "sqs:ReceiveMessage")
            .map(|p| p.resource)
            .collect();
        let events = sqs_events(function);
        let mapped: BTreeSet<Resource> = events
            .iter()
            .map(|(event, queue)| {
                let id = getatt_arn(queue).unwrap_or_else(|| panic!("{fid} {event}: Queue must be Fn::GetAtt"));
                *ids.iter()
                    .find(|(_, rid)| rid.as_str() == id)
                    .unwrap_or_else(|| panic!("{fid} {event}: {id} is not one of the crmflow queues"))
                    .0
            })
            .collect();
        assert_eq!(
            mapped, consumed,
            "{fid}: SQS event sources vs the queues it may consume"
        );
        for (event, _) in &events {
            let props = &function["Properties"]["Events"][event.as_str()]["Properties"];
            assert!(
                strings(&props["FunctionResponseTypes"])
                    .iter()
                    .any(|t| t == "ReportBatchItemFailures"),
                "{fid} {event}: FunctionResponseTypes must include ReportBatchItemFailures (partial batch responses)"
            );
            let batch = number(props.get("BatchSize")).unwrap_or(10);
            assert!((1..=10).contains(&batch), "{fid} {event}: BatchSize {batch}");
            assert!(
                props.pointer("/ScalingConfig/MaximumConcurrency").is_some(),
                "{fid} {event}: ScalingConfig.MaximumConcurrency bounds the function's concurrency"
            );
        }
        if name == FunctionName::Resume {
            let events = function["Properties"]["Events"].as_object().expect("resume Events");
            assert!(
                events
                    .values()
                    .any(|e| e["Type"] == "Schedule" && e["Properties"]["Schedule"] == "rate(1 minute)"),
                "{fid}: needs a rate(1 minute) schedule (the sweep horizon is 60 s)"
            );
        }
    }
}

#[test]
fn every_queue_has_a_dead_letter_queue_and_a_long_enough_visibility_timeout() {
    let template = Template::load();
    let queues: BTreeMap<&String, &Value> = template.of_type("AWS::SQS::Queue").collect();
    let mut dead_letter_targets = BTreeSet::new();
    for (id, queue) in &queues {
        let props = &queue["Properties"];
        assert_ne!(
            props.get("FifoQueue"),
            Some(&json!(true)),
            "{id}: FIFO queues refuse per-message DelaySeconds"
        );
        if let Some(policy) = props.get("RedrivePolicy") {
            let target = getatt_arn(&policy["deadLetterTargetArn"])
                .unwrap_or_else(|| panic!("{id}: deadLetterTargetArn must be Fn::GetAtt [DLQ, Arn]"));
            assert!(
                queues.contains_key(&target.to_string()),
                "{id}: dead-letter queue {target} missing"
            );
            assert_ne!(target, id.as_str(), "{id}: its own dead-letter queue");
            let max = number(policy.get("maxReceiveCount")).unwrap_or(0);
            assert!(
                max >= u64::from(MAX_RECEIVE_COUNT),
                "{id}: maxReceiveCount {max} < {MAX_RECEIVE_COUNT}"
            );
            dead_letter_targets.insert(target.to_string());
        }
    }
    for id in queues.keys() {
        assert!(
            queues[id]["Properties"].get("RedrivePolicy").is_some() || dead_letter_targets.contains(id.as_str()),
            "{id}: neither has a redrive policy nor is a dead-letter queue"
        );
        if dead_letter_targets.contains(id.as_str()) {
            assert!(
                queues[id]["Properties"].get("RedrivePolicy").is_none(),
                "{id}: a dead-letter queue with a redrive policy of its own"
            );
        }
    }
    // The four crmflow queues each have their own dead-letter queue.
    let ids = template.resource_ids();
    let mut seen = BTreeSet::new();
    for resource in [
        Resource::EventsQueue,
        Resource::StepQueue,
        Resource::ActionQueue,
        Resource::CrmCommandsQueue,
    ] {
        let queue = queues[&ids[&resource]];
        let dlq = getatt_arn(&queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
            .unwrap_or_else(|| panic!("{resource:?} has no dead-letter queue"));
        assert!(
            seen.insert(dlq.to_string()),
            "{dlq} is the dead-letter queue of two queues"
        );
    }
    // Visibility timeout ≥ 6 × the consumer's timeout.
    for name in FunctionName::ALL {
        let (fid, function) = template.function(name);
        let timeout = number(template.function_property(function, "Timeout")).unwrap_or(3);
        for (event, queue) in sqs_events(function) {
            let qid = getatt_arn(queue).expect("queue");
            let visibility = number(queues[&qid.to_string()]["Properties"].get("VisibilityTimeout")).unwrap_or(30);
            assert!(
                visibility >= 6 * timeout,
                "{qid}: VisibilityTimeout {visibility} < 6 × {fid} Timeout {timeout} ({event})"
            );
        }
    }
}

#[test]
fn every_function_gets_the_environment_its_config_needs() {
    let template = Template::load();
    for name in FunctionName::ALL {
        let (fid, function) = template.function(name);
        let env = template.environment(function);
        for variable in env.keys().filter(|k| k.starts_with("CRMFLOW_")) {
            assert!(
                KNOWN_VARIABLES.contains(&variable.as_str()),
                "{fid}: unknown variable {variable}"
            );
        }
        assert!(
            !env.contains_key("CRMFLOW_ALLOW_PRIVATE_WEBHOOKS"),
            "{fid}: private webhooks are for local testing only"
        );
        let config = FunctionConfig::from_lookup(name, |k| {
            env.get(k).map(|_| match k {
                "CRMFLOW_RETENTION_DAYS" => "30".to_string(),
                "CRMFLOW_NOTIFY_URLS" => "{}".to_string(),
                "CRMFLOW_DRY_RUN" => "false".to_string(),
                _ => "set".to_string(),
            })
        });
        if let Err(e) = config {
            panic!("{fid}: its environment does not satisfy FunctionConfig: {e}");
        }
        // Only what the function reads (email settings only where email is sent).
        let sends_email = required(name).iter().any(|p| p.action.starts_with("ses:"));
        assert_eq!(
            env.contains_key("CRMFLOW_SENDER_ADDRESS"),
            sends_email,
            "{fid}: CRMFLOW_SENDER_ADDRESS"
        );
        assert_eq!(
            template.function_property(function, "Runtime"),
            Some(&json!("provided.al2023")),
            "{fid}: Runtime"
        );
        assert_eq!(
            template.function_property(function, "Handler"),
            Some(&json!("bootstrap"))
        );
        assert_eq!(
            function.pointer("/Metadata/BuildMethod"),
            Some(&json!("rust-cargolambda"))
        );
    }
}

#[test]
fn the_table_matches_the_dynamodb_adapter() {
    let template = Template::load();
    let ids = template.resource_ids();
    let table = template.resource(&ids[&Resource::Table]);
    assert_eq!(table["Type"], "AWS::DynamoDB::Table");
    let props = &table["Properties"];
    assert_eq!(props["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        props["KeySchema"],
        json!([{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": SK, "KeyType": "RANGE"}])
    );
    let types: BTreeMap<String, String> = list(&props["AttributeDefinitions"])
        .iter()
        .map(|d| {
            (
                d["AttributeName"].as_str().unwrap().to_string(),
                d["AttributeType"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for key in [PK, SK, GSI1PK, GSI1SK] {
        assert_eq!(types.get(key).map(String::as_str), Some("S"), "attribute {key}");
    }
    let indexes = list(&props["GlobalSecondaryIndexes"]);
    assert_eq!(indexes.len(), 1);
    assert_eq!(indexes[0]["IndexName"], GSI1);
    assert_eq!(
        indexes[0]["KeySchema"],
        json!([{"AttributeName": GSI1PK, "KeyType": "HASH"}, {"AttributeName": GSI1SK, "KeyType": "RANGE"}])
    );
    assert_eq!(indexes[0]["Projection"]["ProjectionType"], "KEYS_ONLY");
    assert_eq!(
        props["TimeToLiveSpecification"],
        json!({"AttributeName": EXPIRES_AT, "Enabled": true})
    );
    assert_eq!(
        props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(props["SSESpecification"]["SSEEnabled"], true);
    assert_eq!(
        table["DeletionPolicy"], "Retain",
        "runs and definitions outlive the stack"
    );
}

#[test]
fn the_http_functions_are_behind_a_throttled_and_logged_http_api() {
    let template = Template::load();
    let mut apis = BTreeSet::new();
    let mut routes = BTreeSet::new();
    for function_name in [FunctionName::Api, FunctionName::Simulate] {
        let (fid, function) = template.function(function_name);
        let events = function["Properties"]["Events"].as_object().expect("Events");
        assert!(!events.is_empty(), "{fid}: no events");
        for (name, event) in events {
            let props = &event["Properties"];
            routes.insert((
                function_name,
                props["Method"].as_str().unwrap_or("").to_owned(),
                props["Path"].as_str().unwrap_or("").to_owned(),
            ));
            apis.insert(http_api_event(fid, name, event));
        }
    }
    // The api function takes every route under /api/ but the test route, which goes to the
    // simulate function (the more specific route wins in an HTTP API).
    assert_eq!(
        routes,
        BTreeSet::from([
            (FunctionName::Api, "ANY".to_owned(), "/api/{proxy+}".to_owned()),
            (
                FunctionName::Simulate,
                "POST".to_owned(),
                crmflow_api::test_run::PATH.to_owned()
            ),
        ])
    );
    assert_eq!(apis.len(), 1, "one HTTP API");
    for api in apis {
        let resource = template.resource(&api);
        assert_eq!(resource["Type"], "AWS::Serverless::HttpApi", "{api}");
        let props = &resource["Properties"];
        for limit in ["ThrottlingBurstLimit", "ThrottlingRateLimit"] {
            assert!(
                props["DefaultRouteSettings"].get(limit).is_some(),
                "{api}: DefaultRouteSettings.{limit} (route throttling)"
            );
        }
        let log_group = getatt_arn(&props["AccessLogSettings"]["DestinationArn"])
            .unwrap_or_else(|| panic!("{api}: AccessLogSettings.DestinationArn must be Fn::GetAtt [<log group>, Arn]"));
        let group = template.resource(log_group);
        assert_eq!(group["Type"], "AWS::Logs::LogGroup", "{api}: access logs");
        assert!(
            group["Properties"].get("RetentionInDays").is_some(),
            "{log_group}: the access log needs a retention"
        );
        let format = props["AccessLogSettings"]["Format"].as_str().unwrap_or("");
        assert!(format.contains("$context.requestId"), "{api}: the access log format");
        assert!(
            !format.to_ascii_lowercase().contains("authorization"),
            "{api}: the access log must not hold credentials"
        );
    }
}

/// Checks one HttpApi event of an HTTP function; returns the HTTP API's id.
fn http_api_event(fid: &str, name: &str, event: &Value) -> String {
    assert_eq!(event["Type"], "HttpApi", "{fid} {name}: invoked only by the HTTP API");
    let props = &event["Properties"];
    let api = ref_of(&props["ApiId"]).unwrap_or_else(|| panic!("{fid} {name}: ApiId must be a Ref"));
    assert!(
        props["PayloadFormatVersion"].is_null() || props["PayloadFormatVersion"] == "2.0",
        "{fid} {name}: payload format 2.0 (what lambda_http reads)"
    );
    let path = props["Path"].as_str().unwrap_or("");
    assert!(
        path.starts_with("/api/"),
        "{fid} {name}: Path {path:?} is not the API's"
    );
    api.to_string()
}
