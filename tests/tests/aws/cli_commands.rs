//! `crmflow deploy-automations` and `crmflow runs list|show` against a local AWS emulator:
//! definitions go in through the CLI, events run through the four functions (the local
//! harness: real handlers, real queues and table), and the CLI reads the runs back.
//!
//! ```sh
//! eval "$(scripts/moto.sh start)"
//! cargo test -p crmflow-tests --test aws -- cli_commands::
//! scripts/moto.sh stop
//! ```
//!
//! Without `AWS_ENDPOINT_URL` the test prints "skipped: ..." and returns, unless
//! `CRMFLOW_REQUIRE_LOCAL_AWS=1` (the test scripts set it), which makes that a failure.

use crmflow_tests::harness::{Harness, HarnessOptions};
use crmflow_tests::local_aws::LocalDeployment;
use serde_json::Value;
use std::path::Path;

/// What one `crmflow` command line did.
struct Output {
    code: u8,
    stdout: String,
    stderr: String,
}

/// Runs a `crmflow` command line in process (the environment, endpoint included, is the
/// test's). The commands start their own runtime, so they run on a blocking thread.
async fn crmflow(args: &[&str]) -> Output {
    let args: Vec<std::ffi::OsString> = std::iter::once("crmflow")
        .chain(args.iter().copied())
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
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        }
    })
    .await
    .expect("crmflow panicked")
}

fn stdout(o: &Output) -> String {
    o.stdout.clone()
}

fn stderr(o: &Output) -> String {
    o.stderr.clone()
}

fn definition(version: u32, tag: &str) -> String {
    format!(
        r#"id: cli-welcome
name: Welcome (CLI test)
tenant: t1
version: {version}
status: active
trigger:
  event: lead.created
steps:
  - id: tag-lead
    action:
      type: add_tag
      params: {{ tag: {tag} }}
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_automations_then_list_and_show_runs() {
    let Some(LocalDeployment { sdk, resources, .. }) =
        LocalDeployment::create("deploy_automations_then_list_and_show_runs").await
    else {
        return;
    };
    let table = resources.table.clone();
    let dir = std::env::temp_dir().join(format!("crmflow-{table}"));
    std::fs::create_dir_all(&dir).unwrap();

    // deploy: validates, stores, says what it stored.
    let v1 = write(&dir, "v1.yaml", &definition(1, "new"));
    let out = crmflow(&["deploy-automations", "--table", &table, &v1]).await;
    assert!(out.code == 0, "deploy v1: {}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("deployed   t1/cli-welcome v1 (active)"),
        "{}",
        stdout(&out)
    );

    // Again: nothing to do.
    let out = crmflow(&["deploy-automations", "--table", &table, &v1]).await;
    assert!(out.code == 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("unchanged  t1/cli-welcome v1"),
        "{}",
        stdout(&out)
    );

    // The same version with another definition is refused: versions are immutable.
    let v1_changed = write(&dir, "v1-changed.yaml", &definition(1, "changed"));
    let out = crmflow(&["deploy-automations", "--table", &table, &v1_changed]).await;
    assert_eq!(out.code, 1, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("already deployed with a different definition"),
        "{}",
        stderr(&out)
    );

    // All or nothing: one invalid file and nothing is stored.
    let v2 = write(&dir, "v2.yaml", &definition(2, "new"));
    let broken = write(
        &dir,
        "broken.yaml",
        "id: broken\nname: Broken\ntrigger: {}\nsteps: []\n",
    );
    let out = crmflow(&["deploy-automations", "--table", &table, &v2, &broken]).await;
    assert_eq!(out.code, 1, "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("broken.yaml"), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing deployed"), "{}", stderr(&out));
    let out = crmflow(&["deploy-automations", "--table", &table, &v2]).await;
    assert!(out.code == 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("deployed   t1/cli-welcome v2"),
        "v2 was stored by the failed deploy: {}",
        stdout(&out)
    );

    // Two leads go through the deployment's functions.
    let harness = Harness::new(&sdk, resources, HarnessOptions::default())
        .await
        .expect("harness");
    for (id, lead) in [("e-cli-1", "L1"), ("e-cli-2", "L2")] {
        let event = serde_json::json!({
            "id": id, "type": "lead.created", "tenant": "t1", "time": "2026-03-02T09:00:00Z",
            "subject": {"type": "lead", "id": lead, "contact_id": format!("C-{lead}")},
            "data": {"source": "Website"}
        });
        harness.send_event(&event.to_string()).await.expect("send event");
    }
    let report = harness.pump().await.expect("pump");
    assert!(report.failed.values().all(|n| *n == 0), "{report:?}");

    // runs list: both runs, newest first.
    let out = crmflow(&[
        "runs",
        "list",
        "--table",
        &table,
        "--automation",
        "cli-welcome",
        "--tenant",
        "t1",
    ])
    .await;
    assert!(out.code == 0, "{}", stderr(&out));
    let text = stdout(&out);
    eprintln!("crmflow runs list:\n{text}");
    assert!(text.contains("2 runs of t1/cli-welcome"), "{text}");
    assert_eq!(text.matches("completed").count(), 2, "{text}");
    assert!(text.contains("lead/L1") && text.contains("lead/L2"), "{text}");

    let out = crmflow(&[
        "runs",
        "list",
        "--table",
        &table,
        "--automation",
        "cli-welcome",
        "--tenant",
        "t1",
        "--limit",
        "1",
        "--format",
        "json",
    ])
    .await;
    assert!(out.code == 0, "{}", stderr(&out));
    let runs: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line per run"))
        .collect();
    assert_eq!(runs.len(), 1, "--limit 1");
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["automation_version"], 2);
    let run_id = runs[0]["run_id"].as_str().expect("run_id").to_string();

    // runs show: the timeline, as `crmflow simulate` prints it.
    let out = crmflow(&["runs", "show", "--table", &table, &run_id, "--tenant", "t1"]).await;
    assert!(out.code == 0, "{}", stderr(&out));
    let text = stdout(&out);
    eprintln!("crmflow runs show:\n{text}");
    assert!(
        text.starts_with(&format!("run {run_id}  cli-welcome v2  lead/")),
        "{text}"
    );
    assert!(text.contains("tag-lead"), "{text}");
    assert!(text.contains("=> completed"), "{text}");

    let out = crmflow(&[
        "runs", "show", "--table", &table, &run_id, "--tenant", "t1", "--format", "json",
    ])
    .await;
    assert!(out.code == 0, "{}", stderr(&out));
    let report: Value = serde_json::from_str(stdout(&out).trim()).expect("JSON report");
    assert_eq!(report["run_id"], run_id.as_str());
    assert_eq!(report["status"], "completed");
    let steps = report["steps"].as_array().expect("steps");
    assert!(steps.iter().any(|s| s["step_id"] == "tag-lead"), "{report}");

    // Not found: exit 1 and a message; another tenant does not see the run.
    let out = crmflow(&["runs", "show", "--table", &table, &run_id, "--tenant", "other"]).await;
    assert_eq!(out.code, 1);
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let out = crmflow(&[
        "runs",
        "list",
        "--table",
        &table,
        "--automation",
        "nothing-here",
        "--tenant",
        "t1",
    ])
    .await;
    assert!(out.code == 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("0 runs of t1/nothing-here"), "{}", stdout(&out));

    // A table that does not exist is an error that names it.
    let out = crmflow(&["runs", "list", "--table", "no-such-table-crmflow", "--automation", "x"]).await;
    assert_eq!(out.code, 2);
    assert!(stderr(&out).contains("no-such-table-crmflow"), "{}", stderr(&out));

    let _ = std::fs::remove_dir_all(&dir);
}
