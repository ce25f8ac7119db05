//! All 21 field-rule operators (and a CEL condition), through the decider: a branch
//! `if: {field, op, value}` run once against a record where the rule is true and once where it
//! is false. The same table drives the trigger-condition cases of `simulate_matrix.rs`.

use crmflow_core::condition::Operator;
use crmflow_core::run::StepStatus;
use crmflow_tests::given::*;
use serde_json::{Value, json};

fn branch_def(rule: &str) -> String {
    format!(
        "id: ops\nname: Ops\nstatus: active\ntrigger: {{event: deal.updated}}\nsteps:\n\
- id: check\n  branch:\n    if: {rule}\n    then:\n    - id: yes\n      end: {{reason: 'true'}}\n    else:\n    - id: no\n      end: {{reason: 'false'}}\n"
    )
}

/// Runs the branch for one (data, previous) and returns the branch record's detail and the
/// step taken.
fn branch_on(definition: &str, data: &Value, previous: &Option<Value>) -> (String, String) {
    let mut trig = event_on("evt-1", "deal.updated", OP_NOW, "deal", "D1", Some("C1"), data.clone());
    if let Some(p) = previous {
        trig = with_previous(trig, p.clone());
    }
    let mut h = Harness::new(definition, &trig, json!({"tags": ["vip"]}));
    let d = h.start();
    assert_eq!(d.records.len(), 2, "branch + end: {:?}", records_of(&d));
    assert_eq!(d.records[0].status, StepStatus::Completed);
    (d.records[0].detail.clone(), d.records[1].step_id.clone())
}

#[test]
fn the_table_covers_every_operator() {
    let names: Vec<&str> = op_cases().iter().map(|c| c.op).collect();
    for op in Operator::ALL {
        assert!(names.contains(&op.as_str()), "operator {op} has no case");
    }
    assert_eq!(names.len(), 21);
}

#[test]
fn every_operator_true_and_false_in_a_branch() {
    for c in op_cases() {
        let definition = branch_def(&rule_yaml(&c));
        for (side, data, previous, label, step) in [
            ("true", &c.true_data, &c.true_previous, "took then", "yes"),
            ("false", &c.false_data, &c.false_previous, "took else", "no"),
        ] {
            let (detail, taken) = branch_on(&definition, data, previous);
            assert!(
                detail.starts_with(label),
                "{} ({side}, data {data}, previous {previous:?}): detail {detail:?} should start with {label:?}",
                c.op
            );
            assert!(
                detail.contains(c.op),
                "{} ({side}): the detail names the operator: {detail}",
                c.op
            );
            assert_eq!(taken, step, "{} ({side}): path", c.op);
        }
    }
}

#[test]
fn operator_aliases_behave_like_their_operator() {
    for (alias, field, value, t, f) in [
        (
            "eq",
            "record.stage",
            Some(json!("won")),
            json!({"stage": "won"}),
            json!({"stage": "x"}),
        ),
        (
            "ne",
            "record.stage",
            Some(json!("won")),
            json!({"stage": "x"}),
            json!({"stage": "won"}),
        ),
        (
            "gt",
            "record.amount",
            Some(json!(1)),
            json!({"amount": 2}),
            json!({"amount": 1}),
        ),
        (
            "lte",
            "record.amount",
            Some(json!(1)),
            json!({"amount": 1}),
            json!({"amount": 2}),
        ),
        ("exists", "record.phone", None, json!({"phone": "1"}), json!({})),
        (
            "regex",
            "record.code",
            Some(json!("^a")),
            json!({"code": "abc"}),
            json!({"code": "cba"}),
        ),
    ] {
        let c = op_case(alias, field, value, t, f);
        let definition = branch_def(&rule_yaml(&c));
        assert_eq!(
            branch_on(&definition, &c.true_data, &None).1,
            "yes",
            "{alias}: true side"
        );
        assert_eq!(
            branch_on(&definition, &c.false_data, &None).1,
            "no",
            "{alias}: false side"
        );
    }
}

#[test]
fn missing_fields_follow_the_documented_rules() {
    // A missing field is never equal, always "not equal", contains nothing, is unknown.
    for (op, value, want) in [
        ("equals", Some(json!("x")), "no"),
        ("not_equals", Some(json!("x")), "yes"),
        ("contains", Some(json!("x")), "no"),
        ("not_contains", Some(json!("x")), "yes"),
        ("greater_than", Some(json!(0)), "no"),
        ("in", Some(json!(["x"])), "no"),
        ("not_in", Some(json!(["x"])), "yes"),
        ("is_unknown", None, "yes"),
        ("changed", None, "no"),
        ("within_last_days", Some(json!(7)), "no"),
    ] {
        let c = op_case(op, "record.nothing_here", value, json!({}), json!({}));
        let definition = branch_def(&rule_yaml(&c));
        assert_eq!(
            branch_on(&definition, &json!({}), &None).1,
            want,
            "{op} on a missing field"
        );
    }
}

#[test]
fn cel_condition_in_a_branch() {
    let definition = branch_def(r#"{cel: "record.amount > 100 && 'vip' in contact.tags && record.stage != 'lost'"}"#);
    for (case, data, want) in [
        ("cel true", json!({"amount": 101, "stage": "won"}), "yes"),
        ("cel false: amount", json!({"amount": 100, "stage": "won"}), "no"),
        ("cel false: stage", json!({"amount": 500, "stage": "lost"}), "no"),
    ] {
        let (detail, taken) = branch_on(&definition, &data, &None);
        assert_eq!(taken, want, "{case}: {detail}");
    }
}

#[test]
fn a_cel_error_fails_the_run() {
    // `record.missing` does not exist: a CEL runtime error is an error, not false.
    let definition = branch_def(r#"{cel: "record.missing > 1"}"#);
    let trig = event_on("evt-1", "deal.updated", OP_NOW, "deal", "D1", None, json!({}));
    let mut h = Harness::new(&definition, &trig, json!({}));
    let d = h.start();
    assert_eq!(
        d.run.status,
        crmflow_core::run::RunStatus::Failed,
        "CEL error: run fails"
    );
    assert_eq!(d.records[0].status, StepStatus::Failed, "CEL error: branch failed");
    assert!(
        d.records[0].error.as_deref().unwrap_or("").starts_with("then: "),
        "CEL error names the case: {:?}",
        d.records[0].error
    );
}
