//! The API commands of `crmflow` (`automations ...`, `runs ...`) against the router served on a
//! loopback port: real HTTP, through the command's own client.

use crate::support::Api;
use serde_json::{Value, json};
use std::ffi::OsString;

struct Output {
    code: u8,
    stdout: String,
    stderr: String,
}

/// The API on 127.0.0.1 (a free port), served until the test ends; its base URL.
async fn serve(api: &Api) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, api.router.clone()).into_future());
    format!("http://{address}/api/v1")
}

/// Runs `crmflow ARGS --api-url URL --api-key KEY` in process, on a blocking thread (the command
/// starts its own runtime).
async fn crmflow(url: &str, key: &str, args: &[&str]) -> Output {
    let args: Vec<OsString> = std::iter::once("crmflow")
        .chain(args.iter().copied())
        .chain(["--api-url", url, "--api-key", key])
        .map(Into::into)
        .collect();
    tokio::task::spawn_blocking(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = crmflow_cli::run(
            args,
            &mut crmflow_cli::Io {
                out: &mut out,
                err: &mut err,
            },
        );
        Output {
            code,
            stdout: String::from_utf8(out).unwrap(),
            stderr: String::from_utf8(err).unwrap(),
        }
    })
    .await
    .unwrap()
}

fn ok(out: &Output) -> &str {
    assert_eq!(out.code, 0, "stderr: {}\nstdout: {}", out.stderr, out.stdout);
    &out.stdout
}

const APPROVAL: &str = "id: approval
name: Approval
status: active
trigger: { event: opportunity.created }
steps:
  - id: review
    human_task: { title: Approve? }
  - id: approved?
    branch:
      if: { field: steps.review.output.approved, op: equals, value: true }
      then: [ { id: yes, end: { reason: approved } } ]
      else: [ { id: no, end: { reason: rejected } } ]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automations_commands_create_list_get_and_change_status() {
    let api = Api::new();
    let url = serve(&api).await;
    let dir = std::env::temp_dir().join(format!("crmflow-cli-api-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("approval.yaml");
    std::fs::write(&file, APPROVAL).unwrap();
    let file = file.to_str().unwrap();
    let acme = api.acme.clone();

    let out = crmflow(&url, &acme, &["automations", "create", file]).await;
    assert!(ok(&out).starts_with("created approval  v1  active"), "{}", out.stdout);
    // The same id again: the API's 409, shown as an error, exit 1.
    let out = crmflow(&url, &acme, &["automations", "create", file]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: 409 Conflict: automation \"approval\" exists"),
        "{}",
        out.stderr
    );

    let out = crmflow(&url, &acme, &["automations", "pause", "approval"]).await;
    assert!(ok(&out).contains("paused"), "{}", out.stdout);
    let out = crmflow(&url, &acme, &["automations", "list", "--status", "paused"]).await;
    assert!(
        ok(&out).contains("approval  v1  paused") && out.stdout.contains("1 automations"),
        "{}",
        out.stdout
    );
    let out = crmflow(
        &url,
        &acme,
        &["automations", "list", "--status", "active", "--format", "json"],
    )
    .await;
    let page: Value = serde_json::from_str(ok(&out)).unwrap();
    assert_eq!(page["items"], json!([]));
    let out = crmflow(&url, &acme, &["automations", "resume", "approval"]).await;
    assert!(ok(&out).contains("active"), "{}", out.stdout);
    let out = crmflow(&url, &acme, &["automations", "archive", "approval"]).await;
    assert!(ok(&out).contains("archived"), "{}", out.stdout);
    let out = crmflow(&url, &acme, &["automations", "resume", "approval"]).await;
    assert_eq!(out.code, 1, "archived is final: {}", out.stdout);
    assert!(
        out.stderr.contains("409") && out.stderr.contains("cannot go from archived to active"),
        "{}",
        out.stderr
    );

    let out = crmflow(&url, &acme, &["automations", "get", "approval", "--version", "1"]).await;
    let view: Value = serde_json::from_str(ok(&out)).unwrap();
    assert_eq!(
        (view["id"].as_str(), view["status"].as_str()),
        (Some("approval"), Some("archived"))
    );

    // Another tenant's key sees nothing; an unknown key is refused.
    let globex = api.globex.clone();
    let out = crmflow(&url, &globex, &["automations", "get", "approval"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("error: 404"), "{}", out.stderr);
    let out = crmflow(&url, "cfk_nope", &["automations", "list"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("error: 401 Unauthorized"), "{}", out.stderr);

    // A definition the API refuses: each field at fault, by path.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"name": "x", "trigger": {"event": 5}}"#).unwrap();
    let out = crmflow(&url, &acme, &["automations", "create", bad.to_str().unwrap()]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: 400 Invalid request: the definition is not valid"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("\n  trigger.event: "), "{}", out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_commands_list_show_complete_cancel_and_retry() {
    let api = Api::new();
    let url = serve(&api).await;
    let acme = api.acme.clone();
    let created = api
        .as_acme(
            axum::http::Method::POST,
            "/api/v1/automations",
            Some(
                &crmflow_core::definition::load::parse_text(APPROVAL)
                    .unwrap()
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{:#}", created.body);
    let mut runs = Vec::new();
    for record in ["O1", "O2"] {
        let event = json!({"id": format!("e-{record}"), "type": "opportunity.created", "tenant": "acme",
                           "time": "2026-03-02T14:00:00Z", "subject": {"type": "opportunity", "id": record}});
        runs.extend(api.enroll(event).await);
    }
    api.evaluate_queued().await;
    let [first, second] = <[String; 2]>::try_from(runs).unwrap();

    let out = crmflow(&url, &acme, &["runs", "list", "--automation", "approval"]).await;
    assert!(ok(&out).contains("2 runs of approval"), "{}", out.stdout);
    assert_eq!(out.stdout.matches("waiting").count(), 2, "{}", out.stdout);
    let out = crmflow(
        &url,
        &acme,
        &[
            "runs",
            "list",
            "--automation",
            "approval",
            "--limit",
            "1",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(ok(&out).lines().count(), 1, "{}", out.stdout);

    let out = crmflow(&url, &acme, &["runs", "show", &first, "--automation", "approval"]).await;
    assert!(
        ok(&out).starts_with(&format!("run {first}  approval v1  opportunity/")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("review") && out.stdout.contains("=> waiting"),
        "{}",
        out.stdout
    );

    let output = r#"{"approved": true}"#;
    let args = [
        "runs",
        "complete-task",
        &first,
        "--automation",
        "approval",
        "--output",
        output,
    ];
    let out = crmflow(&url, &acme, &args).await;
    assert_eq!(
        ok(&out).trim(),
        format!("202 complete-task of run {first} (task review)")
    );
    api.evaluate_queued().await;
    let out = crmflow(
        &url,
        &acme,
        &["runs", "show", &first, "--automation", "approval", "--format", "json"],
    )
    .await;
    let run: Value = serde_json::from_str(ok(&out)).unwrap();
    assert_eq!(run["status"], "completed");
    assert!(
        run["outcome"].as_str().unwrap().ends_with(": approved"),
        "the output drove the branch: {run:#}"
    );

    // The run has ended: the API's 409, shown as an error.
    let out = crmflow(&url, &acme, &["runs", "cancel", &first, "--automation", "approval"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("error: 409 Conflict: run "), "{}", out.stderr);
    let out = crmflow(&url, &acme, &["runs", "cancel", &second, "--automation", "approval"]).await;
    assert_eq!(ok(&out).trim(), format!("202 cancel of run {second}"));
    let out = crmflow(
        &url,
        &acme,
        &["runs", "complete-task", "nope", "--automation", "approval"],
    )
    .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("error: 404 Not Found"), "{}", out.stderr);
    let out = crmflow(
        &url,
        &acme,
        &[
            "runs",
            "complete-task",
            &second,
            "--automation",
            "approval",
            "--output",
            "[1]",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "a bad --output is refused before any request");
    assert!(out.stderr.contains("--output: must be a JSON object"), "{}", out.stderr);

    // retry: a failed run resumes; this one completed, so the API refuses (4xx) either way.
    let out = crmflow(
        &url,
        &acme,
        &[
            "runs",
            "retry",
            &first,
            "--automation",
            "approval",
            "--resend-uncertain",
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.starts_with("error: 4"), "{}", out.stderr);
}

#[tokio::test]
async fn without_a_key_or_a_reachable_api_the_command_stops() {
    let out = tokio::task::spawn_blocking(|| {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args = [
            "crmflow",
            "automations",
            "list",
            "--api-url",
            "http://127.0.0.1:9",
            "--api-key",
            "k",
        ];
        let code = crmflow_cli::run(
            args.map(OsString::from),
            &mut crmflow_cli::Io {
                out: &mut out,
                err: &mut err,
            },
        );
        (code, String::from_utf8(err).unwrap())
    })
    .await
    .unwrap();
    assert_eq!(out.0, 2);
    assert!(out.1.contains("GET http://127.0.0.1:9/api/v1/automations"), "{}", out.1);
}
