//! A local stand-in for the AWS machinery around the four functions, for end-to-end tests
//! against a local AWS-protocol server (moto) or any account the SDK configuration points at.
//!
//! What AWS does and the harness imitates:
//! - **SQS event source mappings** ([`Harness::poll`], [`Harness::pump`]): `ReceiveMessage`
//!   (batches of up to 10, every system attribute, so `ApproximateReceiveCount` is set), an
//!   `aws_lambda_events` [`SqsEvent`] with `eventSourceARN`, the handler
//!   ([`SqsConsumer::handle_batch`], as each function's main calls it), then `DeleteMessageBatch` for the records not listed in
//!   `batchItemFailures`. Failed records stay in the queue: their visibility is set to 0 so the
//!   test does not wait, the virtual clock moves on by the queue's visibility timeout
//!   ([`HarnessOptions::visibility_timeout`]), and the queue's redrive policy moves a record to
//!   its dead-letter queue after `maxReceiveCount` receives.
//! - **The resume schedule** ([`Harness::sweep`], [`Harness::advance_to`]): the sweep runs at
//!   the virtual time. Sweeps every minute in between would find nothing, so the harness moves
//!   the sweep cursor forward to the earliest pending timer instead of running them (a real
//!   sweep's fixed cost is reported by the tests as requests per sweep).
//!
//! Each function has its own engine ([`Wired`]), wired by its module in `crmflow_aws::lambda` from a
//! [`FunctionConfig`] read from an environment map, its own [`RequestCounter`] (the function's
//! AWS requests) and its own [`Wire`]: the HTTP client of its SDK clients, which records every
//! request with the IAM actions and resources it needs and can **crash** the function right after
//! a chosen request took effect (see [`Wire::arm_crash`]). A crashed invocation sends nothing
//! more, and its whole batch goes back to the queue, as when a Lambda invocation dies.
//!
//! Time is a [`HarnessClock`]: real time plus an offset that the tests move forward, so short
//! waits (SQS `DelaySeconds`, real seconds) and long waits (DynamoDB timers, swept at a virtual
//! time) both work.
//!
//! The wires of one harness send one AWS request at a time (see [`Wire`]): moto does not
//! isolate concurrent requests the way AWS does.

use crate::cost::item_images::{ItemImages, TableSchema};
use crate::cost::ledger::CostLedger;
use crate::local_aws::LocalResources;
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
    QueueAttributeName,
};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest as SdkRequest, HttpResponse as SdkResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use crmflow_aws::dynamodb::DynamoStore;
use crmflow_aws::lambda::config::{FunctionConfig, FunctionName};
use crmflow_aws::lambda::{self, SqsConsumer};
use crmflow_aws::request_counter::RequestCounter;
use crmflow_aws::sdk::{dynamodb_client, sqs_client};
use crmflow_aws::timers::{TimerStore, minute_floor};
use crmflow_core::command::HttpRequest;
use crmflow_core::engine::{Evaluate, Execute, Intake, Resume};
use crmflow_core::ports::{Clock, EffectError, HttpClient as HttpPort, HttpResponse};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Clock

/// Real time plus an offset: time flows (SQS delays are real seconds) and jumps when a test
/// moves it forward.
#[derive(Debug, Default)]
pub struct HarnessClock {
    offset_ms: AtomicI64,
}

impl HarnessClock {
    /// A clock that reads `start` now.
    pub fn starting_at(start: Timestamp) -> Self {
        let clock = HarnessClock::default();
        clock.set(start);
        clock
    }

    /// From now on the clock reads `t` (and flows on from there).
    pub fn set(&self, t: Timestamp) {
        let offset = t.as_millisecond() - Timestamp::now().as_millisecond();
        self.offset_ms.store(offset, Ordering::SeqCst);
    }

    /// Moves the clock forward (or back) by `d`.
    pub fn advance(&self, d: SignedDuration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Moves the clock to `t` unless it is already past it.
    pub fn advance_to(&self, t: Timestamp) {
        if self.now() < t {
            self.set(t);
        }
    }
}

impl Clock for HarnessClock {
    fn now(&self) -> Timestamp {
        let ms = Timestamp::now().as_millisecond() + self.offset_ms.load(Ordering::SeqCst);
        Timestamp::from_millisecond(ms).unwrap_or_else(|_| Timestamp::now())
    }
}

// ---------------------------------------------------------------------------------------------
// Wire: the HTTP client of a function's SDK clients

/// One request a function made (or tried to make after it crashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireCall {
    /// `DynamoDB`, `SQS`, `SESv2`, or `HTTP` for the function's own outbound HTTP (webhooks).
    pub service: String,
    /// The SDK operation (`TransactWriteItems`, `SendMessage`, ...), or `webhook`.
    pub operation: String,
    /// The IAM actions the request needs, each with the resource it touches (a table name, a
    /// queue URL, a sender address): one per item for `TransactWriteItems` and `BatchWriteItem`.
    pub needs: Vec<(String, String)>,
    /// The DynamoDB partition keys the request names (items, keys, queried partitions).
    pub keys: Vec<String>,
    /// False when the function had crashed before: the request was never sent.
    pub sent: bool,
    /// The HTTP status of the answer (`None`: no answer, or the request was not sent). A crash
    /// point records the answer the function never saw.
    pub status: Option<u16>,
    /// For `SendEmail`, the subject (the recipients are in `keys`).
    pub subject: Option<String>,
}

/// A crash point: the `nth` (1-based) call counted from when it was armed, among the calls
/// whose operation is `operation` (all calls when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashPoint {
    pub nth: u32,
    pub operation: Option<String>,
}

#[derive(Debug, Default)]
struct WireState {
    calls: Vec<WireCall>,
    armed: Option<CrashPoint>,
    matched_since_armed: u32,
    /// Crashed and not revived: nothing more is sent.
    dead: bool,
    /// What crashed, until the harness takes it.
    crash: Option<String>,
}

enum Verdict {
    Send,
    SendThenCrash(String),
    Dead,
}

impl WireState {
    /// Records a call about to be made; returns what to do and the record's index.
    fn begin(&mut self, mut call: WireCall) -> (Verdict, usize) {
        let verdict = self.decide(&mut call);
        self.calls.push(call);
        (verdict, self.calls.len() - 1)
    }

    fn finish(&mut self, index: usize, status: Option<u16>) {
        if let Some(call) = self.calls.get_mut(index) {
            call.status = status;
        }
    }

    fn decide(&mut self, call: &mut WireCall) -> Verdict {
        if self.dead {
            call.sent = false;
            return Verdict::Dead;
        }
        let mut verdict = Verdict::Send;
        if let Some(point) = &self.armed
            && point.operation.as_ref().is_none_or(|op| *op == call.operation)
        {
            self.matched_since_armed += 1;
            if self.matched_since_armed == point.nth {
                verdict = Verdict::SendThenCrash(format!(
                    "{} {} (call {} after arming)",
                    call.service, call.operation, point.nth
                ));
                self.armed = None;
            }
        }
        verdict
    }
}

/// The HTTP client given to one function's SDK clients (and wrapped around its outbound HTTP
/// port): sends with reqwest, records every request, and injects crashes. Clones share state.
///
/// The wires of one harness share a gate that lets one AWS request at a time through. A real
/// service applies each request atomically; moto does not isolate concurrent requests (a
/// transaction that fails restores a copy of the table taken when it began, undoing what
/// concurrent requests wrote meanwhile), which would show lost updates that AWS never makes.
/// Invocations still run concurrently and interleave between their requests, which is where
/// the engine's own races are.
#[derive(Debug, Clone)]
pub struct Wire {
    state: Arc<Mutex<WireState>>,
    http: reqwest::Client,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Default for Wire {
    fn default() -> Self {
        Self::new(Arc::default())
    }
}

impl Wire {
    /// A wire sending through `gate` (shared by the wires whose requests must not overlap).
    pub fn new(gate: Arc<tokio::sync::Mutex<()>>) -> Self {
        let http = crmflow_aws::http::client_builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("the wire's HTTP client");
        Wire {
            state: Arc::default(),
            http,
            gate,
        }
    }

    /// Crash right after the `nth` matching call from now on took effect: its answer is lost,
    /// the caller sees an error, and every later call fails without being sent until the
    /// harness takes the crash ([`Wire::take_crash`]).
    pub fn arm_crash(&self, point: CrashPoint) {
        let mut s = lock(&self.state);
        s.armed = Some(point);
        s.matched_since_armed = 0;
    }

    pub fn disarm(&self) {
        lock(&self.state).armed = None;
    }

    /// Is a crash point armed and not reached yet?
    pub fn armed(&self) -> bool {
        lock(&self.state).armed.is_some()
    }

    /// What crashed since the last call (and revives the function).
    pub fn take_crash(&self) -> Option<String> {
        let mut s = lock(&self.state);
        s.dead = false;
        s.crash.take()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<WireCall> {
        lock(&self.state).calls.clone()
    }

    pub fn clear_calls(&self) {
        lock(&self.state).calls.clear();
    }

    fn begin(&self, call: WireCall) -> (Verdict, usize) {
        lock(&self.state).begin(call)
    }

    fn finish(&self, index: usize, status: Option<u16>) {
        lock(&self.state).finish(index, status);
    }

    fn crashed(&self, what: String) {
        let mut s = lock(&self.state);
        s.dead = true;
        s.crash = Some(what);
    }
}

fn injected(what: &str) -> ConnectorError {
    ConnectorError::other(format!("injected fault: {what}").into(), None)
}

impl HttpClient for Wire {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for Wire {
    fn call(&self, request: SdkRequest) -> HttpConnectorFuture {
        let call = describe_request(&request);
        let (verdict, index) = self.begin(call);
        let wire = self.clone();
        HttpConnectorFuture::new(async move {
            let crash = match verdict {
                Verdict::Dead => return Err(injected("the function crashed earlier in this invocation")),
                Verdict::Send => None,
                Verdict::SendThenCrash(what) => Some(what),
            };
            let response = wire.forward(request).await;
            wire.finish(index, response.as_ref().ok().map(|r| r.status().as_u16()));
            if let Some(what) = crash {
                // The request reached the server (and took effect); the function dies now.
                tracing::warn!(crash = %what, "injected crash after a request took effect");
                wire.crashed(what.clone());
                return Err(injected(&format!("crashed after {what}")));
            }
            response
        })
    }
}

impl Wire {
    async fn forward(&self, request: SdkRequest) -> Result<SdkResponse, ConnectorError> {
        let method = reqwest::Method::from_bytes(request.method().as_bytes())
            .map_err(|e| ConnectorError::other(e.into(), None))?;
        let mut builder = self.http.request(method, request.uri());
        for (name, value) in request.headers() {
            builder = builder.header(name, value);
        }
        if let Some(bytes) = request.body().bytes() {
            builder = builder.body(bytes.to_vec());
        }
        let _turn = self.gate.lock().await;
        let response = builder.send().await.map_err(|e| {
            if e.is_timeout() {
                ConnectorError::timeout(e.into())
            } else {
                ConnectorError::io(e.into())
            }
        })?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let body = response.bytes().await.map_err(|e| ConnectorError::io(e.into()))?;
        let status = aws_smithy_runtime_api::http::StatusCode::try_from(status)
            .map_err(|e| ConnectorError::other(e.into(), None))?;
        let mut out = SdkResponse::new(status, SdkBody::from(body.to_vec()));
        for (k, v) in headers {
            out.headers_mut().append(k, v);
        }
        Ok(out)
    }
}

/// Service, operation, IAM needs and partition keys of an SDK request (JSON protocols: the
/// operation is in `X-Amz-Target`; SES v2 is REST).
fn describe_request(request: &SdkRequest) -> WireCall {
    let target = request.headers().get("x-amz-target").unwrap_or_default().to_string();
    let body: Value = request
        .body()
        .bytes()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null);
    let (service, operation) = if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
        ("DynamoDB", op.to_string())
    } else if let Some(op) = target.strip_prefix("AmazonSQS.") {
        ("SQS", op.to_string())
    } else {
        let path = request.uri().split("://").nth(1).unwrap_or(request.uri());
        let path = path.find('/').map(|i| &path[i..]).unwrap_or("/");
        let path = path.split('?').next().unwrap_or(path);
        let op = match (request.method(), path) {
            ("POST", "/v2/email/outbound-emails") => "SendEmail".to_string(),
            ("POST", "/v2/email/identities") => "CreateEmailIdentity".to_string(),
            (m, p) => format!("{m} {p}"),
        };
        ("SESv2", op)
    };
    let mut needs = Vec::new();
    let mut keys = Vec::new();
    let mut subject = None;
    let pk_of = |item: &Value| item.pointer("/PK/S").and_then(Value::as_str).map(str::to_string);
    let str_at = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    match service {
        "DynamoDB" => match operation.as_str() {
            "TransactWriteItems" => {
                for item in body["TransactItems"].as_array().into_iter().flatten() {
                    for (kind, action, key_field) in [
                        ("Put", "PutItem", "Item"),
                        ("Update", "UpdateItem", "Key"),
                        ("Delete", "DeleteItem", "Key"),
                        ("ConditionCheck", "ConditionCheckItem", "Key"),
                    ] {
                        if let Some(x) = item.get(kind) {
                            needs.push((format!("dynamodb:{action}"), str_at(x, "/TableName")));
                            keys.extend(x.get(key_field).and_then(pk_of));
                        }
                    }
                }
            }
            // IAM authorises BatchWriteItem as itself (unlike a transaction, whose items need
            // their own actions).
            "BatchWriteItem" => {
                for (table, requests) in body["RequestItems"].as_object().into_iter().flatten() {
                    needs.push(("dynamodb:BatchWriteItem".to_string(), table.clone()));
                    for r in requests.as_array().into_iter().flatten() {
                        keys.extend(r.pointer("/PutRequest/Item").and_then(pk_of));
                        keys.extend(r.pointer("/DeleteRequest/Key").and_then(pk_of));
                    }
                }
            }
            "BatchGetItem" => {
                for (table, _) in body["RequestItems"].as_object().into_iter().flatten() {
                    needs.push(("dynamodb:BatchGetItem".to_string(), table.clone()));
                }
            }
            op => {
                needs.push((format!("dynamodb:{op}"), str_at(&body, "/TableName")));
                keys.extend(body.get("Item").and_then(pk_of));
                keys.extend(body.get("Key").and_then(pk_of));
                if op == "Query" {
                    keys.extend(
                        body.pointer("/ExpressionAttributeValues/:pk/S")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    );
                }
            }
        },
        "SQS" => {
            let action = if operation == "SendMessageBatch" {
                "SendMessage".to_string()
            } else if operation == "DeleteMessageBatch" {
                "DeleteMessage".to_string()
            } else if operation == "ChangeMessageVisibilityBatch" {
                "ChangeMessageVisibility".to_string()
            } else {
                operation.clone()
            };
            needs.push((format!("sqs:{action}"), str_at(&body, "/QueueUrl")));
        }
        _ => {
            let identity = str_at(&body, "/FromEmailAddress");
            needs.push((format!("ses:{operation}"), identity));
            // For emails: the recipients and the subject.
            subject = body
                .pointer("/Content/Simple/Subject/Data")
                .and_then(Value::as_str)
                .map(str::to_string);
            keys.extend(
                body.pointer("/Destination/ToAddresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string),
            );
        }
    }
    WireCall {
        service: service.to_string(),
        operation,
        needs,
        keys,
        sent: true,
        status: None,
        subject,
    }
}

/// The execute function's outbound HTTP port, recorded on its wire (so webhooks take part in
/// crash points like AWS calls do).
struct WireHttp {
    inner: Arc<dyn HttpPort>,
    wire: Wire,
}

#[async_trait]
impl HttpPort for WireHttp {
    async fn send(&self, request: &HttpRequest, idempotency_key: &str) -> Result<HttpResponse, EffectError> {
        let call = WireCall {
            service: "HTTP".to_string(),
            operation: "webhook".to_string(),
            needs: Vec::new(),
            keys: vec![idempotency_key.to_string()],
            sent: true,
            status: None,
            subject: None,
        };
        let (verdict, index) = self.wire.begin(call);
        let crash = match verdict {
            Verdict::Dead => {
                return Err(EffectError::transient(
                    "injected fault: the function crashed earlier in this invocation",
                ));
            }
            Verdict::Send => None,
            Verdict::SendThenCrash(what) => Some(what),
        };
        let response = self.inner.send(request, idempotency_key).await;
        self.wire.finish(index, response.as_ref().ok().map(|r| r.status));
        match crash {
            Some(what) => {
                self.wire.crashed(what.clone());
                Err(EffectError::transient(format!("injected fault: crashed after {what}")))
            }
            None => response,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Harness

/// How duplicate deliveries are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Duplicates {
    #[default]
    None,
    /// Every message is delivered twice: after its first successful delivery it is not deleted
    /// but made visible again (as when an invocation times out after doing its work).
    Redeliver,
}

/// Settings of a [`Harness`].
#[derive(Debug, Clone)]
pub struct HarnessOptions {
    /// Where the virtual clock starts (and the sweep cursor).
    pub start: Timestamp,
    /// Virtual time that passes before a failed record is delivered again: the queue's
    /// visibility timeout. `None`: the IaC template's values (6 × the consumer's timeout: events
    /// and step queues 180 s, action queue 720 s).
    pub visibility_timeout: Option<SignedDuration>,
    /// Records per `ReceiveMessage` (the mappings' batch size), 1..=10.
    pub batch_size: i32,
    /// Concurrent invocations per function while pumping.
    pub concurrency: usize,
    pub duplicates: Duplicates,
    /// `CRMFLOW_ALLOW_PRIVATE_WEBHOOKS=true` for execute (webhooks to a local receiver).
    pub allow_private_webhooks: bool,
    /// `CRMFLOW_NOTIFY_URLS`.
    pub notify_urls: BTreeMap<String, String>,
    /// How long a pump waits for delayed messages (short waits) before giving up.
    pub settle_timeout: Duration,
    /// Overrides the engines' effect claim lease (seconds), to reach expired claims quickly.
    pub claim_lease_seconds: Option<i64>,
}

impl HarnessOptions {
    /// The visibility timeout of the queue `function` consumes.
    pub fn visibility_timeout_of(&self, function: FunctionName) -> SignedDuration {
        self.visibility_timeout.unwrap_or(match function {
            FunctionName::Execute => SignedDuration::from_secs(720),
            _ => SignedDuration::from_secs(180),
        })
    }
}

impl Default for HarnessOptions {
    fn default() -> Self {
        HarnessOptions {
            start: Timestamp::now(),
            visibility_timeout: None,
            batch_size: 10,
            concurrency: 1,
            duplicates: Duplicates::None,
            allow_private_webhooks: false,
            notify_urls: BTreeMap::new(),
            settle_timeout: Duration::from_secs(60),
            claim_lease_seconds: None,
        }
    }
}

/// A function's engine, wired as its main wires it (then given the harness's clock, lease and
/// webhook wire).
#[derive(Clone)]
pub enum Wired {
    Intake(Intake),
    Evaluate(Evaluate),
    Execute(Execute),
    Resume(Resume),
}

impl Wired {
    fn new(
        config: &FunctionConfig,
        sdk: &SdkConfig,
        counter: &RequestCounter,
        clock: Arc<HarnessClock>,
        options: &HarnessOptions,
        wire: &Wire,
    ) -> Result<Wired, String> {
        let counter = Some(counter);
        Ok(match config.function {
            FunctionName::Intake => {
                let mut engine = lambda::intake::engine(config, sdk, counter).map_err(|e| e.to_string())?;
                engine.clock = clock.clone();
                // Its starter, wired as the intake function wires it, on the harness's clock.
                let mut starter = lambda::evaluate::engine(config, sdk, counter).map_err(|e| e.to_string())?;
                starter.clock = clock;
                if let Some(lease) = options.claim_lease_seconds {
                    starter.config.claim_lease_seconds = lease;
                }
                engine.starter = Some(Arc::new(starter));
                Wired::Intake(engine)
            }
            FunctionName::Evaluate => {
                let mut engine = lambda::evaluate::engine(config, sdk, counter).map_err(|e| e.to_string())?;
                engine.clock = clock;
                if let Some(lease) = options.claim_lease_seconds {
                    engine.config.claim_lease_seconds = lease;
                }
                Wired::Evaluate(engine)
            }
            FunctionName::Execute => {
                let mut engine = lambda::execute::engine(config, sdk, counter).map_err(|e| e.to_string())?;
                engine.intake.clock = clock;
                if let Some(lease) = options.claim_lease_seconds {
                    engine.intake.config.claim_lease_seconds = lease;
                }
                engine.http = Arc::new(WireHttp {
                    inner: engine.http.clone(),
                    wire: wire.clone(),
                });
                Wired::Execute(engine)
            }
            FunctionName::Resume => {
                let mut engine = lambda::resume::engine(config, sdk, counter);
                engine.clock = clock;
                Wired::Resume(engine)
            }
            // Driven by HTTP requests, not by the harness (see tests/tests/aws/api.rs).
            FunctionName::Api | FunctionName::Simulate => {
                return Err("the harness drives the engine functions only".to_string());
            }
        })
    }

    /// Invokes an SQS consumer with a batch, as its event source mapping does.
    async fn handle_batch(&self, event: SqsEvent) -> Result<SqsBatchResponse, String> {
        Ok(match self {
            Wired::Intake(e) => e.handle_batch(event).await,
            Wired::Evaluate(e) => e.handle_batch(event).await,
            Wired::Execute(e) => e.handle_batch(event).await,
            Wired::Resume(_) => return Err("resume consumes no queue".to_string()),
        })
    }
}

/// One function: its engine, its request counter, the event source mapping's own request
/// counter (receives and deletes on its behalf) and its wire.
#[derive(Clone)]
pub struct FunctionHarness {
    pub function: FunctionName,
    pub config: FunctionConfig,
    pub engine: Wired,
    /// The function's AWS requests, by (service, operation).
    pub counter: RequestCounter,
    /// What the function's AWS requests cost, by (service, operation): a ledger that sees every
    /// request the counter counts (an interceptor the counter carries).
    pub ledger: CostLedger,
    /// Requests the event source mapping made for this function: `ReceiveMessage` calls that
    /// returned messages and `DeleteMessageBatch` calls.
    pub esm: RequestCounter,
    pub wire: Wire,
    /// The queue the function consumes (none for resume) and its ARN.
    pub queue_url: Option<String>,
    pub queue_arn: Option<String>,
    esm_sqs: aws_sdk_sqs::Client,
}

/// What a [`Harness::pump`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PumpReport {
    /// Records handled per function (deliveries, redeliveries included).
    pub handled: BTreeMap<FunctionName, usize>,
    /// Records reported in `batchItemFailures`, or lost in a crash, per function.
    pub failed: BTreeMap<FunctionName, usize>,
    /// The crashes that happened.
    pub crashes: Vec<String>,
}

impl PumpReport {
    /// Adds `other`'s records, failures and crashes.
    pub fn merge(&mut self, other: PumpReport) {
        for (f, n) in other.handled {
            *self.handled.entry(f).or_default() += n;
        }
        for (f, n) in other.failed {
            *self.failed.entry(f).or_default() += n;
        }
        self.crashes.extend(other.crashes);
    }
}

struct Inner {
    resources: LocalResources,
    clock: Arc<HarnessClock>,
    functions: BTreeMap<FunctionName, FunctionHarness>,
    /// Uncounted clients for the test's own reads and writes.
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    store: DynamoStore,
    options: HarnessOptions,
    /// Message ids already delivered once (duplicates mode).
    delivered_once: Mutex<HashSet<String>>,
    /// The harness's own requests (polls included), not the functions'.
    overhead: RequestCounter,
}

/// The four functions wired to one deployment's resources, with event source mappings and a
/// resume schedule driven by the test. Clones share everything.
#[derive(Clone)]
pub struct Harness {
    inner: Arc<Inner>,
}

fn aws_error(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// The environment of a function, as the IaC template sets it.
fn environment(
    function: FunctionName,
    res: &LocalResources,
    options: &HarnessOptions,
) -> Result<HashMap<&'static str, String>, String> {
    let mut env = HashMap::from([
        ("CRMFLOW_TABLE_NAME", res.table.clone()),
        ("CRMFLOW_STEP_QUEUE_URL", res.step_queue_url.clone()),
    ]);
    if matches!(function, FunctionName::Intake | FunctionName::Evaluate) {
        env.insert("CRMFLOW_ACTION_QUEUE_URL", res.action_queue_url.clone());
    }
    if matches!(
        function,
        FunctionName::Intake | FunctionName::Evaluate | FunctionName::Execute
    ) {
        env.insert("CRMFLOW_CRM_COMMANDS_QUEUE_URL", res.crm_commands_queue_url.clone());
    }
    if matches!(function, FunctionName::Evaluate | FunctionName::Execute) {
        env.insert("CRMFLOW_SENDER_ADDRESS", res.sender.clone());
    }
    if function == FunctionName::Execute && options.allow_private_webhooks {
        env.insert("CRMFLOW_ALLOW_PRIVATE_WEBHOOKS", "true".to_string());
    }
    // Evaluate sends a notification to a channel without a URL to the CRM itself.
    if matches!(function, FunctionName::Evaluate | FunctionName::Execute) && !options.notify_urls.is_empty() {
        env.insert(
            "CRMFLOW_NOTIFY_URLS",
            serde_json::to_string(&options.notify_urls).map_err(|e| e.to_string())?,
        );
    }
    Ok(env)
}

impl Harness {
    /// Wires the four functions to `resources` (made by
    /// [`crate::local_aws::create_local_resources`]). `sdk` is the plain configuration
    /// (endpoint, region, credentials); each function gets a copy with its own [`Wire`].
    pub async fn new(sdk: &SdkConfig, resources: LocalResources, options: HarnessOptions) -> Result<Harness, String> {
        let clock = Arc::new(HarnessClock::starting_at(options.start));
        let overhead = RequestCounter::new();
        let sqs = sqs_client(sdk, Some(&overhead));
        let dynamodb = dynamodb_client(sdk, Some(&overhead));
        // The ledgers of the functions and of the harness's own store share the item images,
        // so that a write is billed on the item as it is (definitions and the sweep cursor,
        // written by the harness, included).
        let images = ItemImages::new();
        let tracking = RequestCounter::new().with_interceptor(CostLedger::new(TableSchema::crmflow(), images.clone()));
        let store = DynamoStore::new(sdk, Some(&tracking), &resources.table, 30);
        let mut functions = BTreeMap::new();
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        for function in FunctionName::ENGINE {
            let env = environment(function, &resources, &options)?;
            let config = FunctionConfig::from_lookup(function, |k| env.get(k).cloned()).map_err(|e| e.to_string())?;
            let wire = Wire::new(gate.clone());
            let function_sdk = sdk.to_builder().http_client(wire.clone()).build();
            let ledger = CostLedger::new(TableSchema::crmflow(), images.clone());
            let counter = RequestCounter::new().with_interceptor(ledger.clone());
            let engine = Wired::new(&config, &function_sdk, &counter, clock.clone(), &options, &wire)?;
            let queue_url = match function {
                FunctionName::Intake => Some(resources.events_queue_url.clone()),
                FunctionName::Evaluate => Some(resources.step_queue_url.clone()),
                FunctionName::Execute => Some(resources.action_queue_url.clone()),
                FunctionName::Resume | FunctionName::Api | FunctionName::Simulate => None,
            };
            let queue_arn = match &queue_url {
                Some(url) => Some(queue_arn(&sqs, url).await?),
                None => None,
            };
            let esm = RequestCounter::new();
            functions.insert(
                function,
                FunctionHarness {
                    function,
                    config,
                    engine,
                    counter,
                    ledger,
                    esm_sqs: sqs_client(sdk, Some(&overhead)),
                    esm,
                    wire,
                    queue_url,
                    queue_arn,
                },
            );
        }
        // As if the sweeper had been running: the first sweep starts here, not a day back.
        store
            .set_sweep_cursor(minute_floor(options.start))
            .await
            .map_err(|e| aws_error("setting the sweep cursor", e))?;
        Ok(Harness {
            inner: Arc::new(Inner {
                resources,
                clock,
                functions,
                sqs,
                dynamodb,
                store,
                options,
                delivered_once: Mutex::default(),
                overhead,
            }),
        })
    }

    pub fn resources(&self) -> &LocalResources {
        &self.inner.resources
    }

    pub fn clock(&self) -> &Arc<HarnessClock> {
        &self.inner.clock
    }

    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub fn options(&self) -> &HarnessOptions {
        &self.inner.options
    }

    pub fn function(&self, function: FunctionName) -> &FunctionHarness {
        &self.inner.functions[&function]
    }

    pub fn functions(&self) -> impl Iterator<Item = &FunctionHarness> {
        self.inner.functions.values()
    }

    /// An uncounted store on the deployment's table (to load definitions, read runs): its
    /// requests are attributed to no function, its ledger only keeps the item images.
    pub fn store(&self) -> &DynamoStore {
        &self.inner.store
    }

    /// An uncounted SQS client.
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.inner.sqs
    }

    /// An uncounted DynamoDB client.
    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.inner.dynamodb
    }

    /// The harness's own requests (event source mapping polls, sweep cursor moves, scans for
    /// pending timers, queue inspection), not attributed to any function.
    pub fn overhead(&self) -> &RequestCounter {
        &self.inner.overhead
    }

    /// Every request the functions made plus the harness's own.
    pub fn total_requests(&self) -> u64 {
        self.overhead().total() + self.functions().map(|f| f.counter.total()).sum::<u64>()
    }

    /// Clears every function's request counters, ledgers and wire records.
    pub fn reset_counters(&self) {
        for f in self.functions() {
            f.counter.reset();
            f.ledger.reset();
            f.esm.reset();
            f.wire.clear_calls();
        }
    }

    /// Sends a raw event body to the events queue (as the CRM would).
    pub async fn send_event(&self, body: &str) -> Result<(), String> {
        self.inner
            .sqs
            .send_message()
            .queue_url(&self.inner.resources.events_queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| aws_error("SendMessage to the events queue", describe_sdk_error(&e)))?;
        Ok(())
    }

    /// One event source mapping poll for `function`: receive a batch, invoke, delete what
    /// succeeded. The report counts the records handled (none: the queue looked empty).
    pub async fn poll(&self, function: FunctionName) -> Result<PumpReport, String> {
        let f = self.function(function);
        let (Some(url), Some(arn)) = (&f.queue_url, &f.queue_arn) else {
            return Err(format!("{function} does not consume a queue"));
        };
        #[allow(deprecated)]
        let received = f
            .esm_sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(self.inner.options.batch_size.clamp(1, 10))
            .visibility_timeout(30)
            .wait_time_seconds(0)
            .attribute_names(QueueAttributeName::All)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_error("ReceiveMessage", describe_sdk_error(&e)))?;
        let messages = received.messages.unwrap_or_default();
        let mut report = PumpReport::default();
        if messages.is_empty() {
            return Ok(report);
        }
        // Only receives that returned messages are counted: a real mapping long-polls, so its
        // empty receives cost the same whatever the traffic.
        f.esm.record("SQS", "ReceiveMessage");
        let region = self
            .inner
            .sqs
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string());
        let records: Vec<SqsMessage> = messages
            .iter()
            .map(|m| {
                let mut r = SqsMessage::default();
                r.message_id = m.message_id().map(str::to_string);
                r.receipt_handle = m.receipt_handle().map(str::to_string);
                r.body = m.body().map(str::to_string);
                r.md5_of_body = m.md5_of_body().map(str::to_string);
                r.attributes = m
                    .attributes()
                    .map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect())
                    .unwrap_or_default();
                r.event_source_arn = Some(arn.clone());
                r.event_source = Some("aws:sqs".to_string());
                r.aws_region = Some(region.clone());
                r
            })
            .collect();
        let mut event = SqsEvent::default();
        event.records = records;
        let response = f.engine.handle_batch(event).await?;
        let crash = f.wire.take_crash();
        let failed: HashSet<String> = match &crash {
            // The invocation died: the whole batch goes back.
            Some(_) => messages
                .iter()
                .filter_map(|m| m.message_id().map(str::to_string))
                .collect(),
            None => response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect(),
        };
        let mut delete = Vec::new();
        let mut release = Vec::new();
        {
            let mut once = lock(&self.inner.delivered_once);
            for m in &messages {
                let id = m.message_id().unwrap_or_default().to_string();
                let handle = m.receipt_handle().unwrap_or_default().to_string();
                // Failed records go back; in duplicates mode, so does a first successful delivery.
                let redeliver = self.inner.options.duplicates == Duplicates::Redeliver;
                if failed.contains(&id) || redeliver && once.insert(id) {
                    release.push(handle);
                } else {
                    delete.push(handle);
                }
            }
        }
        for (i, chunk) in delete.chunks(10).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(j, h)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(format!("{i}-{j}"))
                        .receipt_handle(h)
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            f.esm.record("SQS", "DeleteMessageBatch");
            let out = f
                .esm_sqs
                .delete_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| aws_error("DeleteMessageBatch", describe_sdk_error(&e)))?;
            if !out.failed().is_empty() {
                return Err(format!("DeleteMessageBatch: {} entries failed", out.failed().len()));
            }
        }
        // Not something the event source mapping does: it leaves failed records invisible until
        // their visibility timeout ends. The harness makes them visible at once and moves the
        // virtual clock on by the timeout instead.
        for (i, chunk) in release.chunks(10).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(j, h)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(format!("{i}-{j}"))
                        .receipt_handle(h)
                        .visibility_timeout(0)
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.inner
                .sqs
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| aws_error("ChangeMessageVisibilityBatch", describe_sdk_error(&e)))?;
        }
        if !failed.is_empty() {
            self.inner
                .clock
                .advance(self.inner.options.visibility_timeout_of(function));
        }
        report.handled.insert(function, messages.len());
        if !failed.is_empty() {
            report.failed.insert(function, failed.len());
        }
        report.crashes.extend(crash);
        Ok(report)
    }

    /// `concurrency` polls of `function` at once.
    async fn poll_concurrently(&self, function: FunctionName) -> Result<PumpReport, String> {
        let n = self.inner.options.concurrency.max(1);
        if n == 1 {
            return self.poll(function).await;
        }
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let h = self.clone();
            set.spawn(async move { h.poll(function).await });
        }
        let mut report = PumpReport::default();
        let mut error = None;
        while let Some(joined) = set.join_next().await {
            match joined.map_err(|e| e.to_string()).and_then(|r| r) {
                Ok(r) => report.merge(r),
                Err(e) => error = Some(e),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Messages in these queues: visible + in flight + delayed.
    pub async fn pending_messages(&self, urls: &[&str]) -> Result<u64, String> {
        let mut total = 0;
        for url in urls {
            let out = self
                .inner
                .sqs
                .get_queue_attributes()
                .queue_url(*url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
                .send()
                .await
                .map_err(|e| aws_error("GetQueueAttributes", describe_sdk_error(&e)))?;
            for v in out.attributes.unwrap_or_default().values() {
                total += v.parse::<u64>().unwrap_or(0);
            }
        }
        Ok(total)
    }

    /// Polls intake, evaluate and execute until the three queues are empty, waiting (in real
    /// time) for delayed messages, at most [`HarnessOptions::settle_timeout`] in all.
    pub async fn pump(&self) -> Result<PumpReport, String> {
        let deadline = tokio::time::Instant::now() + self.inner.options.settle_timeout;
        let mut report = PumpReport::default();
        // Nothing the functions do feeds the events queue: once it is empty, it stays empty.
        let mut events_left = true;
        loop {
            let mut handled = 0;
            for function in [FunctionName::Intake, FunctionName::Evaluate, FunctionName::Execute] {
                if function == FunctionName::Intake && !events_left {
                    continue;
                }
                let r = self.poll_concurrently(function).await?;
                let n = r.handled.values().sum::<usize>();
                if function == FunctionName::Intake && n == 0 {
                    events_left = false;
                }
                handled += n;
                report.merge(r);
            }
            if handled > 0 {
                continue;
            }
            // All three looked empty; only the step queue gets delayed messages (short waits,
            // swept timers) and messages in flight would be another poller's.
            let step = [self.inner.resources.step_queue_url.as_str()];
            let pending = self.pending_messages(&step).await?;
            if pending == 0 {
                return Ok(report);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "the queues did not drain within {:?} ({pending} messages pending on the step queue)",
                    self.inner.options.settle_timeout,
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The earliest pending long timer (a test-side Scan, not counted).
    pub async fn next_timer_due(&self) -> Result<Option<Timestamp>, String> {
        let mut earliest: Option<Timestamp> = None;
        let mut start = None;
        loop {
            let out = self
                .inner
                .dynamodb
                .scan()
                .table_name(&self.inner.resources.table)
                .filter_expression("begins_with(#pk, :due)")
                .expression_attribute_names("#pk", "PK")
                .expression_attribute_values(":due", AttributeValue::S("DUE#".into()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| aws_error("Scan", describe_sdk_error(&e)))?;
            for item in out.items.unwrap_or_default() {
                if let Some(AttributeValue::S(due)) = item.get("due_at")
                    && let Ok(t) = due.parse::<Timestamp>()
                {
                    earliest = Some(earliest.map_or(t, |e| e.min(t)));
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(earliest),
            }
        }
    }

    /// One run of the resume function at the current virtual time. The sweep cursor is first
    /// moved forward to the current minute, or to the earliest pending timer's minute if that is
    /// earlier: the sweeps that would have run every minute in between find nothing. Returns how
    /// many timers were moved (0 after an injected crash, which is then taken).
    pub async fn sweep(&self) -> Result<usize, String> {
        let next = self.next_timer_due().await?;
        Ok(self.run_sweep(next).await?.0)
    }

    /// A sweep, knowing the earliest pending timer; returns the timers moved and the crash, if
    /// one was injected.
    async fn run_sweep(&self, next_due: Option<Timestamp>) -> Result<(usize, Option<String>), String> {
        let now = self.now();
        let from = match next_due {
            Some(due) => due.min(now),
            None => now,
        };
        self.inner
            .store
            .set_sweep_cursor(minute_floor(from))
            .await
            .map_err(|e| aws_error("moving the sweep cursor", e))?;
        let f = self.function(FunctionName::Resume);
        let payload = json!({
            "version": "0",
            "id": uuid::Uuid::now_v7().to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": now.to_string(),
            "detail": {},
        });
        let Wired::Resume(engine) = &f.engine else {
            return Err("the resume function is not wired as resume".to_string());
        };
        let result = lambda::resume::handle(engine, payload).await;
        if let Some(crash) = f.wire.take_crash() {
            return Ok((0, Some(crash)));
        }
        let value = result.map_err(|e| format!("resume: {e}"))?;
        Ok((value["moved"].as_u64().unwrap_or(0) as usize, None))
    }

    /// Moves the virtual clock to `t`, firing every long timer due by then in due order: a sweep
    /// at each due time, then a pump.
    pub async fn advance_to(&self, t: Timestamp) -> Result<PumpReport, String> {
        let mut report = PumpReport::default();
        let mut stuck = 0;
        let mut previous = None;
        for _ in 0..10_000 {
            match self.next_timer_due().await? {
                Some(due) if due <= t => {
                    // A sweep may crash (fault injection): the next one must move the timer.
                    stuck = if previous == Some(due) { stuck + 1 } else { 0 };
                    if stuck > 3 {
                        let cursor = self.inner.store.sweep_cursor().await.map_err(|e| e.to_string())?;
                        return Err(format!(
                            "advance_to: the timer due {due} is not swept (sweep cursor {cursor:?}, now {})",
                            self.now()
                        ));
                    }
                    previous = Some(due);
                    self.inner.clock.advance_to(due);
                    let (_, crash) = self.run_sweep(Some(due)).await?;
                    report.crashes.extend(crash);
                    report.merge(self.pump().await?);
                }
                _ => {
                    // No sweep at `t` itself: it would move the timers due within the next
                    // minute as delayed messages, to wait for in real time.
                    self.inner.clock.advance_to(t);
                    return Ok(report);
                }
            }
        }
        Err("advance_to: timers kept coming due".to_string())
    }

    /// Receives (and deletes) every message of a queue, e.g. the CRM command queue or a
    /// dead-letter queue. Uncounted.
    pub async fn drain_queue(&self, url: &str) -> Result<Vec<aws_sdk_sqs::types::Message>, String> {
        let mut out = Vec::new();
        loop {
            #[allow(deprecated)]
            let received = self
                .inner
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .wait_time_seconds(0)
                .attribute_names(QueueAttributeName::All)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| aws_error("ReceiveMessage", describe_sdk_error(&e)))?;
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(out);
            }
            for m in &messages {
                self.inner
                    .sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .map_err(|e| aws_error("DeleteMessage", describe_sdk_error(&e)))?;
            }
            out.extend(messages);
        }
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws_error("GetQueueAttributes", describe_sdk_error(&e)))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| format!("{url}: no QueueArn"))
}

fn describe_sdk_error<E: std::error::Error + 'static>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(err).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_jumps_and_flows() {
        let start: Timestamp = "2026-03-02T09:00:00Z".parse().unwrap();
        let clock = HarnessClock::starting_at(start);
        let a = clock.now();
        assert!(a >= start && a < start + SignedDuration::from_secs(5));
        clock.advance(SignedDuration::from_hours(48));
        assert!(clock.now() >= start + SignedDuration::from_hours(48));
        clock.advance_to(start);
        assert!(
            clock.now() >= start + SignedDuration::from_hours(48),
            "advance_to never goes back"
        );
    }

    #[test]
    fn crash_point_counts_matching_calls() {
        let call = |op: &str| WireCall {
            service: "SQS".into(),
            operation: op.into(),
            needs: vec![],
            keys: vec![],
            sent: true,
            status: None,
            subject: None,
        };
        let mut s = WireState {
            armed: Some(CrashPoint {
                nth: 2,
                operation: Some("SendMessage".into()),
            }),
            ..WireState::default()
        };
        assert!(matches!(s.begin(call("SendMessage")).0, Verdict::Send));
        assert!(matches!(s.begin(call("GetItem")).0, Verdict::Send));
        assert!(matches!(s.begin(call("SendMessage")).0, Verdict::SendThenCrash(_)));
        assert!(s.armed.is_none());
        s.dead = true;
        assert!(matches!(s.begin(call("SendMessage")).0, Verdict::Dead));
        assert!(!s.calls.last().unwrap().sent);
    }
}
