//! Invalid definitions and malformed events: every class gets a clear error naming its path,
//! and no input makes the parsers panic.

use crmflow_core::definition::{DefinitionError, parse_automation};
use crmflow_core::event::{parse_event, parse_events_text};
use proptest::prelude::*;

fn errors(yaml: &str) -> Vec<DefinitionError> {
    match parse_automation(yaml) {
        Ok(a) => panic!("expected errors, got a valid automation {}", a.id),
        Err(e) => e,
    }
}

/// Asserts one of the errors has `path` and a message containing `needle`.
fn assert_error(yaml: &str, path: &str, needle: &str) {
    let errs = errors(yaml);
    assert!(
        errs.iter().any(|e| e.path == path && e.message.contains(needle)),
        "expected an error at `{path}` containing {needle:?}, got: {errs:#?}"
    );
}

const HEAD: &str = "name: t\nstatus: active\ntrigger: { event: lead.created }\n";

#[test]
fn yaml_syntax() {
    let errs = errors("name: [unclosed");
    assert!(errs[0].message.starts_with("invalid YAML"), "{errs:?}");
}

#[test]
fn json_syntax_names_line_and_column() {
    let errs = errors("{\"name\": \"x\",\n \"trigger\": }");
    assert!(errs[0].message.contains("line 2"), "{errs:?}");
}

#[test]
fn not_a_mapping() {
    assert_error("- a\n- b\n", "", "must be an object");
}

#[test]
fn unknown_top_level_field() {
    assert_error(&format!("{HEAD}stepz: []\n"), "stepz", "unknown field `stepz`");
}

#[test]
fn missing_trigger() {
    assert_error("name: t\nsteps: [{id: a, end: {}}]\n", "", "missing field `trigger`");
}

#[test]
fn unknown_step_type() {
    assert_error(
        &format!("{HEAD}steps:\n  - id: a\n    wiat: {{ duration: 1h }}\n"),
        "steps[0].wiat",
        "unknown field `wiat`",
    );
}

#[test]
fn step_without_a_type_and_with_two() {
    assert_error(&format!("{HEAD}steps:\n  - id: a\n"), "steps[0]", "has no step type");
    assert_error(
        &format!("{HEAD}steps:\n  - id: a\n    end: {{}}\n    goto: a\n"),
        "steps[0]",
        "has 2 step types",
    );
}

#[test]
fn unknown_action_type() {
    assert_error(
        &format!("{HEAD}steps:\n  - id: a\n    action: {{ type: send_pigeon, params: {{}} }}\n"),
        "steps[0].action.type",
        "unknown variant `send_pigeon`",
    );
}

#[test]
fn unknown_action_parameter() {
    assert_error(
        &format!("{HEAD}steps:\n  - id: a\n    action: {{ type: add_tag, params: {{ tags: x }} }}\n"),
        "steps[0].action.params.tags",
        "unknown field `tags`, expected `tag`",
    );
}

#[test]
fn flat_form_errors_name_the_actions_list() {
    let json = r#"{"name": "x", "trigger": {"event": "case.created"}, "actions": [{"type": "assign_to_queue", "params": {"queue": "q"}}], "status": "active"}"#;
    assert_error(json, "actions[0].params.queue", "unknown field `queue`");
    let json = r#"{"name": "x", "trigger": {"event": "case.created"}, "actions": [{"type": "assign", "params": {}}]}"#;
    assert_error(json, "actions[0].params", "exactly one of `user_id` or `queue_id`");
}

#[test]
fn duplicate_step_ids_in_nested_paths() {
    let yaml = format!(
        "{HEAD}steps:\n  - id: a\n    branch:\n      if: {{ priority: high }}\n      then:\n        - id: a\n          end: {{}}\n"
    );
    assert_error(
        &yaml,
        "steps[0].branch.then[0].id",
        "duplicate step id \"a\" (first used at steps[0])",
    );
}

#[test]
fn goto_target_that_does_not_exist() {
    assert_error(
        &format!("{HEAD}steps:\n  - id: a\n    goto: nowhere\n"),
        "steps[0].goto",
        "goto target \"nowhere\" does not exist",
    );
}

#[test]
fn bad_duration() {
    assert_error(
        &format!("{HEAD}steps:\n  - id: a\n    wait: {{ duration: 3 dyas }}\n"),
        "steps[0].wait.duration",
        "invalid duration \"3 dyas\"",
    );
    assert_error(
        &format!("{HEAD}steps:\n  - id: a\n    wait: {{ duration: -1h }}\n"),
        "steps[0].wait.duration",
        "",
    );
}

#[test]
fn bad_time_zones() {
    assert_error(
        &format!("{HEAD}steps:\n  - id: a\n  - id: b\n    wait: {{ until: \"2026-03-08T09:00[Europe/Berln]\" }}\n")
            .replace("  - id: a\n", "  - id: a\n    end: {}\n"),
        "steps[1].wait.until",
        "unknown time zone \"Europe/Berln\"",
    );
    assert_error(
        &format!("{HEAD}timezone: Mars/Olympus\nsteps: [{{id: a, end: {{}}}}]\n"),
        "timezone",
        "unknown time zone",
    );
}

#[test]
fn conditions_that_do_not_parse() {
    assert_error(
        "name: t\ntrigger: { event: lead.created, conditions: { field: x, op: eqals, value: 1 } }\nsteps: [{id: a, end: {}}]\n",
        "trigger.conditions",
        "unknown operator \"eqals\"",
    );
    assert_error(
        &format!("{HEAD}steps:\n  - id: a\n    branch:\n      if: {{ cel: \"record.x >\" }}\n      then: []\n"),
        "steps[0].branch.if",
        "invalid CEL expression",
    );
    assert_error(
        &format!(
            "{HEAD}steps:\n  - id: a\n    branch:\n      if: {{ field: email, op: matches, value: \"([a-z\" }}\n      then: []\n"
        ),
        "steps[0].branch.if",
        "regex",
    );
}

#[test]
fn templates_that_do_not_compile() {
    assert_error(
        &format!(
            "{HEAD}steps:\n  - id: a\n    action: {{ type: send_email, params: {{ subject: \"{{{{ contact.name \", text: hi }} }}\n"
        ),
        "steps[0].action.params.subject",
        "template syntax error",
    );
    assert_error(
        &format!(
            "{HEAD}steps:\n  - id: a\n    action: {{ type: update_contact, params: {{ fields: {{ seen: \"{{% if %}}\" }} }} }}\n"
        ),
        "steps[0].action.params.fields.seen",
        "syntax error",
    );
    // a misspelt filter in a branch no test contact reaches is still refused at load
    assert_error(
        &format!(
            "{HEAD}steps:\n  - id: a\n    action: {{ type: send_email, params: {{ subject: hi, text: \"{{% if contact.vip %}}{{{{ contact.name | uppr }}}}{{% endif %}}\" }} }}\n"
        ),
        "steps[0].action.params.text",
        "unknown template filter `uppr` (line 1)",
    );
}

#[test]
fn split_percentages_must_add_up() {
    let yaml = format!(
        "{HEAD}steps:\n  - id: s\n    split:\n      paths:\n        - {{ percent: 50, steps: [] }}\n        - {{ percent: 30, steps: [] }}\n"
    );
    assert_error(&yaml, "steps[0].split.paths", "add up to 80, not 100");
}

#[test]
fn enrollment_after_needs_a_period() {
    assert_error(
        &format!("{HEAD}enrollment: {{ reenroll: after }}\nsteps: [{{id: a, end: {{}}}}]\n"),
        "enrollment.after",
        "required",
    );
}

#[test]
fn invalid_event_type_in_trigger() {
    assert_error(
        "name: t\ntrigger: { event: \"lead created\" }\nsteps: [{id: a, end: {}}]\n",
        "trigger.event",
        "invalid event type",
    );
}

#[test]
fn several_structural_errors_are_all_reported() {
    let yaml = format!("{HEAD}steps:\n  - id: a\n    goto: x\n  - id: a\n    goto: y\n");
    let errs = errors(&yaml);
    assert!(errs.len() >= 3, "duplicate id and two bad gotos: {errs:#?}");
}

// ---- events ----

fn event_error(json: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).expect("test JSON");
    match parse_event(&value) {
        Ok((e, _)) => panic!("expected an error, got event {}", e.id),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_events_name_the_field() {
    let cases = [
        (
            r#"{"type":"lead.created","time":"2026-01-01T00:00:00Z","subject":{"type":"lead","id":"L1"}}"#,
            "id",
        ),
        (
            r#"{"id":"e","time":"2026-01-01T00:00:00Z","subject":{"type":"lead","id":"L1"}}"#,
            "type",
        ),
        (
            r#"{"id":"e","type":"lead.created","time":"yesterday","subject":{"type":"lead","id":"L1"}}"#,
            "time",
        ),
        (
            r#"{"id":"e","type":"lead.created","time":"2026-01-01T00:00:00Z"}"#,
            "subject",
        ),
        (
            r#"{"id":"e","type":"lead.created","time":"2026-01-01T00:00:00Z","subject":{"type":"lead"}}"#,
            "subject.id",
        ),
        (
            r#"{"id":"e","type":"lead created","time":"2026-01-01T00:00:00Z","subject":{"type":"lead","id":"L1"}}"#,
            "type",
        ),
        (
            r#"{"id":"e","type":"lead.created","time":"2026-01-01T00:00:00Z","subject":{"type":"lead","id":"L1"},"data":[1]}"#,
            "data",
        ),
        (
            r#"{"specversion":"0.3","id":"a","source":"s","type":"t","time":"2026-01-01T00:00:00Z"}"#,
            "specversion",
        ),
        (
            r#"{"specversion":"1.0","id":"a","type":"lead.created","time":"2026-01-01T00:00:00Z","subject":"lead/L1"}"#,
            "source",
        ),
        (
            r#"{"specversion":"1.0","id":"a","source":"s","type":"lead.created","time":"2026-01-01T00:00:00Z","subject":"lead/L1","data_base64":"AA=="}"#,
            "data_base64",
        ),
        (
            r#"{"version":"0","id":"x","detail-type":"lead.created","source":"crm","time":"2026-01-01T00:00:00Z","detail":{"record":{}}}"#,
            "detail.subject",
        ),
    ];
    for (json, path) in cases {
        let message = event_error(json);
        assert!(
            message.starts_with(&format!("{path}:")),
            "{json}\n  expected the error to start with `{path}:`, got: {message}"
        );
    }
}

#[test]
fn event_files_report_each_bad_line_and_keep_the_good_ones() {
    let text = "{\"id\":\"a\",\"type\":\"x.y\",\"time\":\"2026-01-01T00:00:00Z\",\"subject\":{\"type\":\"lead\",\"id\":\"L1\"}}\nnot json\n{\"id\":\"b\"}\n";
    let results = parse_events_text(text);
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok());
    let e1 = results[1].as_ref().unwrap_err().to_string();
    let e2 = results[2].as_ref().unwrap_err().to_string();
    assert!(e1.starts_with("line 2"), "{e1}");
    assert!(e2.starts_with("line 3"), "{e2}");
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        "[a-z.:/ _-]{0,12}".prop_map(serde_json::Value::String),
        Just(serde_json::json!("2026-03-08T09:00:00Z")),
        Just(serde_json::json!("lead.created")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("id".to_string()),
            Just("type".to_string()),
            Just("time".to_string()),
            Just("subject".to_string()),
            Just("data".to_string()),
            Just("name".to_string()),
            Just("trigger".to_string()),
            Just("event".to_string()),
            Just("steps".to_string()),
            Just("wait".to_string()),
            Just("action".to_string()),
            Just("params".to_string()),
            Just("specversion".to_string()),
            Just("detail-type".to_string()),
            Just("detail".to_string()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_never_panic_on_arbitrary_json(value in arbitrary_json()) {
        let _ = parse_event(&value);
        let _ = crmflow_core::definition::load::from_value(&value);
        let text = value.to_string();
        let _ = parse_events_text(&text);
        let _ = parse_automation(&text);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = parse_events_text(&text);
        let _ = parse_automation(&text);
    }
}

/// The fixtures scripts/check-schema.sh validates against the published schema: the loader
/// accepts the valid ones and rejects the invalid ones, so schema and loader agree on them.
#[test]
fn definition_fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/definitions");
    for (folder, valid) in [("valid", true), ("invalid", false)] {
        let loaded = crmflow_core::definition::load_automations(&dir.join(folder)).unwrap();
        assert!(!loaded.is_empty(), "no fixtures in {folder}");
        for (file, result) in loaded {
            assert_eq!(result.is_ok(), valid, "{}: {result:?}", file.display());
        }
    }
}
