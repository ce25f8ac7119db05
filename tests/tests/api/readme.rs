//! The README's API examples, run as written: every `curl` line of the "Management API" block,
//! against `crmflow serve --automations examples`, checked against the comment under it.

use std::io::Write;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What `crmflow serve` writes, sent on as it comes.
struct Lines(mpsc::Sender<String>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `crmflow serve --port 0 --automations examples --api-key KEY` in this process, on a thread
/// of its own (it serves until the test process ends); its `http://127.0.0.1:PORT`.
fn serve(key: &str) -> String {
    let (sender, receiver) = mpsc::channel();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let args: Vec<std::ffi::OsString> = [
        "crmflow",
        "serve",
        "--port",
        "0",
        "--automations",
        examples,
        "--api-key",
        key,
    ]
    .map(Into::into)
    .into();
    std::thread::spawn(move || {
        let (mut out, mut err) = (Lines(sender), std::io::sink());
        crmflow_cli::run(
            args,
            &mut crmflow_cli::Io {
                out: &mut out,
                err: &mut err,
            },
        )
    });
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(text) = receiver.recv_timeout(Duration::from_millis(100)) {
            printed.push_str(&text);
        }
        if let Some(url) = printed
            .strip_prefix("crmflow API on ")
            .and_then(|rest| rest.split_once("/api/v1 "))
        {
            return url.0.to_owned();
        }
    }
    panic!("crmflow serve did not start: {printed:?}");
}

/// One example: the command, and the comment under it (the status, then the body or a part).
struct Example {
    command: String,
    expected: String,
}

/// The `curl` commands of the first `sh` block under "## Management API", each with the
/// comment lines that follow it.
fn examples(readme: &str) -> Vec<Example> {
    let section = readme
        .split_once("\n## Management API\n")
        .expect("the README's API section")
        .1;
    let block = section.split_once("```sh\n").expect("a sh block").1;
    let block = block.split_once("```").expect("the block's end").0;
    let mut examples: Vec<Example> = Vec::new();
    let mut continued = false;
    for line in block.lines() {
        if continued {
            let last = examples.last_mut().expect("a command goes on");
            last.command.push('\n');
            last.command.push_str(line);
        } else if line.starts_with("curl ") {
            examples.push(Example {
                command: line.to_owned(),
                expected: String::new(),
            });
        } else if let (Some(comment), Some(last)) = (line.strip_prefix('#'), examples.last_mut()) {
            last.expected.push_str(comment.trim());
        }
        let command = examples.last().map(|e| e.command.as_str()).unwrap_or_default();
        continued = line.starts_with("curl ") || continued;
        continued = continued && (line.ends_with('\\') || command.matches('\'').count() % 2 == 1);
    }
    examples
}

/// The `"field":value` pairs of an expected body, without the elided (`…`) ones.
fn fragments(expected: &str) -> Vec<&str> {
    expected
        .split([',', '{', '}', '[', ']'])
        .map(str::trim)
        .filter(|p| p.starts_with('"') && p.contains("\":") && !p.ends_with(':') && !p.contains('…'))
        .collect()
}

/// Runs an example through bash (with `KEY` set and the README's port replaced by the served
/// one); its status and body.
fn run(example: &Example, base: &str, key: &str) -> (String, String) {
    let command = example
        .command
        .replacen("curl ", "curl -sS -w '\\n%{http_code}' ", 1)
        .replace("http://127.0.0.1:8080", base);
    let output = Command::new("bash")
        .args(["-c", &command])
        .env("KEY", key)
        .output()
        .expect("bash and curl run (the README's examples use curl)");
    assert!(
        output.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.to_owned(), body.to_owned())
}

#[test]
fn readme_curl_examples_work() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let examples = examples(&readme);
    assert!(examples.len() >= 5, "the API section shows its curl examples");
    let key = format!("cfk_readme_{}", uuid::Uuid::new_v4().simple());
    let base = serve(&key);
    for example in &examples {
        let status = example.expected.get(..3).unwrap_or_default();
        assert!(
            status.bytes().all(|b| b.is_ascii_digit()),
            "the comment under {:?} starts with the status",
            example.command
        );
        let wanted = fragments(&example.expected);
        // The engine runs beside the API: what a posted event starts may take a moment to show.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (got, body) = run(example, &base, &key);
            let missing: Vec<&&str> = wanted.iter().filter(|f| !body.contains(**f)).collect();
            if got == status && missing.is_empty() {
                break;
            }
            let retry = !example.command.contains(" -d ") && Instant::now() < deadline;
            assert!(
                retry,
                "{}\n=> {got} {body}\nexpected {status}, missing {missing:?}",
                example.command
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn examples_are_read_with_their_comments() {
    let readme = "x\n## Management API\n```sh\ncrmflow serve\n# not this\ncurl -s a \\\n  -d '{\"a\":\n 1}' u\n# 202 {\"id\":\"e\",\"n\":1,\"x\":\"…\"}\ncurl b\n```\n";
    let found = examples(readme);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].command, "curl -s a \\\n  -d '{\"a\":\n 1}' u");
    assert_eq!(fragments(&found[0].expected), ["\"id\":\"e\"", "\"n\":1"]);
    assert_eq!(found[1].expected, "");
}
