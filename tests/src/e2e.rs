//! Helpers of the end-to-end tests (`e2e_aws.rs`): resources per test, definitions, the
//! examples with their contact snapshots, what moto recorded (SES, the CRM command queue), a
//! webhook receiver on 127.0.0.1, log capture, and the permission check.

use crate::harness::{Harness, HarnessOptions};
use crate::local_aws::LocalDeployment;
use crmflow_aws::lambda::FunctionName;
use crmflow_aws::lambda::permissions::{self, Permission, Resource};
use crmflow_core::definition::load::load_programs;
use crmflow_core::definition::{Automation, Program, parse_automation};
use crmflow_core::event::{Event, parse_event};
use crmflow_core::ports::{AutomationCatalog, OutboundCrmCommand, RunStore};
use crmflow_core::run::Run;
use crmflow_core::simulate::RunReport;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One test's deployment on the local server.
pub struct Ctx {
    pub endpoint: String,
    pub h: Harness,
}

/// Creates the test's table, queues and sender identity under a unique prefix and wires the
/// harness to them; `None` (after printing why) when no local endpoint is configured.
pub async fn setup(test: &str, options: HarnessOptions) -> Option<Ctx> {
    let LocalDeployment {
        endpoint,
        sdk,
        resources,
    } = LocalDeployment::create(test).await?;
    let h = Harness::new(&sdk, resources, options).await.expect("harness");
    Some(Ctx { endpoint, h })
}

/// [`setup`], or return from the test (after `setup` printed why) when there is no endpoint.
#[macro_export]
macro_rules! setup_or_skip {
    ($test:expr, $options:expr) => {
        match $crate::e2e::setup($test, $options).await {
            Some(ctx) => ctx,
            None => return,
        }
    };
}

pub fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap_or_else(|e| panic!("bad timestamp {s:?}: {e}"))
}

pub fn automation(yaml: &str) -> Automation {
    parse_automation(yaml).unwrap_or_else(|errors| {
        panic!(
            "definition does not parse:\n{}\n---\n{yaml}",
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        )
    })
}

pub fn program(yaml: &str) -> Program {
    Program::new(automation(yaml)).unwrap_or_else(|errors| {
        panic!(
            "definition does not compile:\n{}",
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        )
    })
}

/// Stores definitions through the DynamoDB catalog.
pub async fn load(h: &Harness, programs: &[Program]) {
    for p in programs {
        h.store().put(p.automation.clone()).await.expect("catalog put");
    }
}

// ---------------------------------------------------------------------------------------------
// The examples

pub fn example_programs() -> Vec<Program> {
    load_programs(&repo().join("examples")).expect("examples load")
}

/// The example events, in time order, each with its contact snapshot merged into the event (on
/// AWS the event carries the snapshot): the raw JSON to send and the parsed event.
pub fn example_events() -> Vec<(String, Event)> {
    let contacts: Vec<Map<String, Value>> =
        serde_json::from_str(&std::fs::read_to_string(repo().join("events/contacts.json")).expect("contacts"))
            .expect("contacts parse");
    let contacts: HashMap<String, Map<String, Value>> = contacts
        .into_iter()
        .map(|c| (c["id"].as_str().expect("contact id").to_string(), c))
        .collect();
    let text = std::fs::read_to_string(repo().join("events/examples.jsonl")).expect("events file");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let raw: Value = serde_json::from_str(line).expect("event JSON");
        let (event, _) = parse_event(&raw).expect("example event parses");
        let merged = match event.subject.contact_id.as_ref().and_then(|c| contacts.get(c)) {
            Some(contact) => with_contact(raw, contact),
            None => raw,
        };
        let (parsed, _) = parse_event(&merged).expect("merged event parses");
        out.push((merged.to_string(), parsed));
    }
    out.sort_by_key(|(_, e)| e.time);
    out
}

/// Puts a contact snapshot into an event of any of the three formats.
pub fn with_contact(mut raw: Value, contact: &Map<String, Value>) -> Value {
    let wrap = |payload: &mut Value, keep: &[&str]| {
        let Some(obj) = payload.as_object_mut() else {
            *payload = json!({ "record": {}, "contact": contact });
            return;
        };
        if !obj.get("record").is_some_and(Value::is_object) {
            let mut record = Map::new();
            for k in obj.keys().cloned().collect::<Vec<_>>() {
                if !keep.contains(&k.as_str())
                    && let Some(v) = obj.remove(&k)
                {
                    record.insert(k, v);
                }
            }
            obj.insert("record".into(), Value::Object(record));
        }
        obj.insert("contact".into(), Value::Object(contact.clone()));
    };
    if raw.get("specversion").is_some() {
        if raw.get("data").is_none() {
            raw["data"] = json!({});
        }
        wrap(&mut raw["data"], &[]);
    } else if raw.get("detail-type").is_some() {
        wrap(&mut raw["detail"], &["subject", "tenant"]);
    } else {
        raw["contact"] = Value::Object(contact.clone());
    }
    raw
}

/// Every run of these automations on AWS, as the simulator reports them.
pub async fn aws_reports(h: &Harness, tenant: &str, automation_ids: &[String]) -> Vec<RunReport> {
    let mut out = Vec::new();
    for id in automation_ids {
        for run in h.store().list_runs(tenant, id, 1000).await.expect("list runs") {
            let history = h.store().history(tenant, &run.run_id).await.expect("history");
            out.push(RunReport::new(&run, &history, &HashMap::new()));
        }
    }
    out.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    out
}

/// One run on AWS, as the simulator reports runs.
pub async fn report_of(h: &Harness, tenant: &str, run_id: &str) -> RunReport {
    let run = load_run(h, tenant, run_id).await;
    let history = h.store().history(tenant, run_id).await.expect("history");
    RunReport::new(&run, &history, &HashMap::new())
}

pub async fn load_run(h: &Harness, tenant: &str, run_id: &str) -> Run {
    h.store()
        .load_run(tenant, run_id)
        .await
        .expect("load run")
        .unwrap_or_else(|| panic!("run {run_id} not found"))
}

/// Step ids and statuses of a report, for comparisons.
pub fn steps(r: &RunReport) -> Vec<(String, String)> {
    r.steps
        .iter()
        .map(|s| (s.step_id.clone(), s.status.as_str().to_string()))
        .collect()
}

/// The AWS runs match the simulated ones: same run ids, automations, statuses and step
/// histories, and every step started at (about) the simulated time.
pub fn assert_same_runs(aws: &[RunReport], sim: &[RunReport]) {
    let mut sim: Vec<&RunReport> = sim.iter().collect();
    sim.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    let ids = |rs: &[&RunReport]| {
        rs.iter()
            .map(|r| format!("{} {}", r.automation_id, r.run_id))
            .collect::<Vec<_>>()
    };
    let aws_refs: Vec<&RunReport> = aws.iter().collect();
    assert_eq!(ids(&aws_refs), ids(&sim), "the same runs");
    for (a, s) in aws.iter().zip(sim) {
        let what = format!("run {} ({} {})", a.run_id, a.automation_id, a.subject.id);
        assert_eq!(
            a.status,
            s.status,
            "{what}: status\naws: {}\nsim: {}",
            a.to_text(),
            s.to_text()
        );
        assert_eq!(
            steps(a),
            steps(s),
            "{what}: steps\naws: {}\nsim: {}",
            a.to_text(),
            s.to_text()
        );
        for (x, y) in a.steps.iter().zip(&s.steps) {
            let drift = x.started_at.duration_since(y.started_at).abs();
            assert!(
                drift < jiff::SignedDuration::from_secs(120),
                "{what}: step {} started at {} on AWS, {} simulated",
                x.step_id,
                x.started_at,
                y.started_at
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What moto recorded

/// An email SES accepted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SentEmail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// The emails sent from `sender` (moto keeps them in `/moto-api/data.json` under `ses`).
pub async fn ses_emails(endpoint: &str, sender: &str) -> Vec<SentEmail> {
    let data: Value = crmflow_aws::http::client_builder()
        .build()
        .unwrap()
        .get(format!("{endpoint}/moto-api/data.json"))
        .send()
        .await
        .expect("moto data")
        .json()
        .await
        .expect("moto data JSON");
    let mut out: Vec<SentEmail> = data["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["source"] == sender)
        .map(|m| SentEmail {
            to: m["destinations"]["ToAddresses"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
                .unwrap_or_default(),
            subject: m["subject"].as_str().unwrap_or_default().to_string(),
            body: m["body"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    out.sort();
    out
}

/// The emails the evaluate and execute functions sent that SES accepted (every `SendEmail`
/// request that reached the server and got a 200, a crashed invocation's included), as recorded
/// on their wires.
pub fn accepted_emails(h: &Harness) -> Vec<(String, String)> {
    // Evaluate sends the emails it performs in place; execute, the others.
    let mut calls = h.function(FunctionName::Evaluate).wire.calls();
    calls.extend(h.function(FunctionName::Execute).wire.calls());
    let mut out: Vec<(String, String)> = calls
        .into_iter()
        .filter(|c| c.operation == "SendEmail" && c.sent && c.status == Some(200))
        .map(|c| (c.keys.join(","), c.subject.unwrap_or_default()))
        .collect();
    out.sort();
    out
}

/// A command read from the CRM command queue, with its `idempotency_key` message attribute.
#[derive(Debug, Clone)]
pub struct CrmMessage {
    pub command: OutboundCrmCommand,
    pub attribute_key: Option<String>,
    pub body: String,
}

/// Reads (and removes) every message on the CRM command queue.
pub async fn crm_commands(h: &Harness) -> Vec<CrmMessage> {
    let url = h.resources().crm_commands_queue_url.clone();
    h.drain_queue(&url)
        .await
        .expect("CRM command queue")
        .into_iter()
        .map(|m| {
            let body = m.body().unwrap_or_default().to_string();
            let command: OutboundCrmCommand = serde_json::from_str(&body).expect("CRM command JSON");
            let attribute_key = m
                .message_attributes()
                .and_then(|a| a.get("idempotency_key"))
                .and_then(|v| v.string_value())
                .map(str::to_string);
            CrmMessage {
                command,
                attribute_key,
                body,
            }
        })
        .collect()
}

/// CRM messages grouped by idempotency key (every message carries its key as an attribute too).
pub fn by_key(messages: &[CrmMessage]) -> BTreeMap<String, Vec<&CrmMessage>> {
    let mut out: BTreeMap<String, Vec<&CrmMessage>> = BTreeMap::new();
    for m in messages {
        assert_eq!(
            m.attribute_key.as_deref(),
            Some(m.command.idempotency_key.as_str()),
            "the idempotency_key attribute matches the body"
        );
        out.entry(m.command.idempotency_key.clone()).or_default().push(m);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A webhook receiver on 127.0.0.1

#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub body: String,
}

pub struct Receiver {
    pub base_url: String,
    pub hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

/// Answers every request with 200 and records it.
pub async fn receiver() -> Receiver {
    receiver_on("127.0.0.1:0").await
}

/// [`receiver`] on a given address (`127.0.0.1:PORT`).
pub async fn receiver_on(address: &str) -> Receiver {
    let listener = tokio::net::TcpListener::bind(address).await.expect("bind");
    let base_url = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(Mutex::new(Vec::new()));
    let recorded = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let header_end = loop {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    if buf.len() > 1 << 20 {
                        return;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
                let mut lines = head.lines();
                let path = lines
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("")
                    .to_string();
                let mut length = 0usize;
                let mut key = None;
                for line in lines {
                    if let Some((name, value)) = line.split_once(':') {
                        match name.trim().to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap_or(0),
                            "idempotency-key" => key = Some(value.trim().to_string()),
                            _ => {}
                        }
                    }
                }
                while buf.len() < header_end + length {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = String::from_utf8_lossy(&buf[header_end..]).to_string();
                recorded.lock().unwrap().push(Hit {
                    path,
                    idempotency_key: key,
                    body,
                });
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .await;
            });
        }
    });
    Receiver { base_url, hits }
}

// ---------------------------------------------------------------------------------------------
// Logs

/// Captures the log lines written on this thread while the guard lives (tests run on a
/// current-thread runtime, so the handlers log here).
pub struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct BufWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for BufWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    pub fn start() -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = BufWriter(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .flatten_event(true)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        LogCapture {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// The JSON log lines so far.
    pub fn lines(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.buf.lock().unwrap())
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Permissions

fn resource_of(h: &Harness, name: &str) -> Option<Resource> {
    let r = h.resources();
    if name == r.table || name.starts_with(&format!("{}/index/", r.table)) {
        Some(Resource::Table)
    } else if name == r.events_queue_url {
        Some(Resource::EventsQueue)
    } else if name == r.step_queue_url {
        Some(Resource::StepQueue)
    } else if name == r.action_queue_url {
        Some(Resource::ActionQueue)
    } else if name == r.crm_commands_queue_url {
        Some(Resource::CrmCommandsQueue)
    } else if name == r.sender {
        Some(Resource::SenderIdentity)
    } else {
        None
    }
}

/// Every AWS operation each function performed (its request counter, and the requests its event
/// source mapping made for it) is allowed by `permissions::required`; and, from the recorded
/// requests, every IAM action each request needs (the items of a transaction included) is
/// allowed on the resource it touched. Returns the operations seen per function.
pub fn assert_permissions(h: &Harness) -> BTreeMap<FunctionName, Vec<String>> {
    let mut problems = Vec::new();
    let mut seen = BTreeMap::new();
    for f in h.functions() {
        let required: Vec<Permission> = permissions::required(f.function);
        let actions: Vec<&str> = required.iter().map(|p| p.action).collect();
        let mut ops = Vec::new();
        for (source, counter) in [("function", &f.counter), ("event source mapping", &f.esm)] {
            for ((service, operation), _) in counter.snapshot() {
                let mapped = permissions::actions_for_operation(&service, &operation);
                let ok = if operation == "TransactWriteItems" {
                    mapped.iter().any(|a| actions.contains(&a.as_str()))
                } else {
                    mapped.iter().all(|a| actions.contains(&a.as_str()))
                };
                if !ok {
                    problems.push(format!(
                        "{}: {source} performed {service}:{operation} (needs {mapped:?}), not in permissions::required",
                        f.function
                    ));
                }
                ops.push(format!("{service}:{operation}"));
            }
        }
        for call in f.wire.calls().iter().filter(|c| c.sent && c.service != "HTTP") {
            for (action, resource) in &call.needs {
                let Some(r) = resource_of(h, resource) else {
                    problems.push(format!(
                        "{}: {} {} touched an unknown resource {resource:?}",
                        f.function, call.service, call.operation
                    ));
                    continue;
                };
                if !required.iter().any(|p| p.action == action && p.resource == r) {
                    problems.push(format!(
                        "{}: {} {} needs {action} on {r:?}, not in permissions::required",
                        f.function, call.service, call.operation
                    ));
                }
            }
        }
        ops.sort();
        ops.dedup();
        seen.insert(f.function, ops);
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "missing permissions:\n{}", problems.join("\n"));
    seen
}

/// The dead-letter queues hold nothing.
pub async fn assert_dead_letter_queues_empty(h: &Harness) {
    for (role, url) in h.resources().dead_letter_queue_urls.clone() {
        let messages = h.drain_queue(&url).await.expect("DLQ");
        assert!(
            messages.is_empty(),
            "{role} dead-letter queue: {:?}",
            messages
                .iter()
                .map(|m| m.body().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        );
    }
}

/// Requests per (service, operation) of a counter snapshot, as printable lines.
pub fn figure_lines(function: &str, counts: &BTreeMap<(String, String), u64>) -> Vec<String> {
    counts
        .iter()
        .map(|((service, op), n)| format!("  {function:<9} {service:<9} {op:<22} {n:>5}"))
        .collect()
}

/// Prints the requests of a test: the functions', and the harness's own.
pub fn print_overhead(h: &Harness) {
    let functions: u64 = h.functions().map(|f| f.counter.total()).sum();
    println!(
        "requests: functions {functions}, harness {} ({:?})",
        h.overhead().total(),
        h.overhead().snapshot()
    );
}
