//! Behaviour of conditions as a whole: operators, nesting, wire format, CEL, explanations.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn now() -> jiff::Timestamp {
    "2024-06-15T12:00:00Z".parse().unwrap()
}

fn scope(root: Value) -> Scope {
    Scope::new(root, now())
}

fn parse(condition: Value) -> Condition {
    match Condition::from_value(&condition) {
        Ok(c) => c,
        Err(e) => panic!("{condition} should parse: {e}"),
    }
}

fn eval(condition: Value, root: Value) -> bool {
    parse(condition).evaluate(&scope(root)).unwrap()
}

/// A rule on `record.x` against a record whose `x` is `field` (`None`: no `x`).
fn check(field: Option<Value>, op: &str, value: Value) -> bool {
    let record = match field {
        Some(v) => json!({ "x": v }),
        None => json!({}),
    };
    let mut rule = json!({"field": "record.x", "op": op});
    if !value.is_null() {
        rule["value"] = value;
    }
    eval(rule, json!({ "record": record }))
}

fn parse_error(condition: Value) -> ConditionParseError {
    match Condition::from_value(&condition) {
        Ok(c) => panic!("{condition} should not parse, got {c:?}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------- operators

#[test]
fn equals_compares_numbers_numerically_and_strings_exactly() {
    assert!(check(Some(json!(1)), "equals", json!(1.0)));
    assert!(check(Some(json!(200000)), "equals", json!("200000")));
    assert!(check(Some(json!("200000")), "equals", json!(200000)));
    assert!(!check(Some(json!(200001)), "equals", json!(200000)));
    assert!(check(Some(json!("Closed Won")), "equals", json!("Closed Won")));
    assert!(!check(Some(json!("closed won")), "equals", json!("Closed Won")));
    assert!(!check(Some(json!(true)), "equals", json!("true")));
    assert!(check(Some(json!(["a", 1])), "equals", json!(["a", 1.0])));
    assert!(!check(None, "equals", json!("x")));
    assert!(
        eval(
            json!({"field": "x", "op": "equals", "value": null}),
            json!({"record": {"x": null}})
        ),
        "explicit null equals a null field"
    );
    assert!(!eval(
        json!({"field": "x", "op": "equals", "value": null}),
        json!({"record": {}})
    ));
}

#[test]
fn not_equals_is_the_negation_of_equals() {
    assert!(check(Some(json!("Open")), "not_equals", json!("Closed")));
    assert!(!check(Some(json!(5)), "not_equals", json!("5")));
    assert!(check(None, "not_equals", json!("Closed")), "missing is not equal");
}

#[test]
fn ordering_operators_on_numbers() {
    assert!(check(Some(json!(250000)), "greater_than", json!(200000)));
    assert!(!check(Some(json!(200000)), "greater_than", json!(200000)));
    assert!(check(Some(json!(200000)), "greater_than_or_equal", json!(200000)));
    assert!(check(Some(json!(1.5)), "less_than", json!(2)));
    assert!(!check(Some(json!(2)), "less_than", json!(2)));
    assert!(check(Some(json!(2)), "less_than_or_equal", json!(2.0)));
    assert!(check(Some(json!("300")), "greater_than", json!(25)), "numeric string");
    assert!(check(Some(json!(-3)), "less_than", json!("-2.5")));
}

#[test]
fn ordering_operators_on_dates() {
    assert!(check(
        Some(json!("2024-06-02T09:00:00Z")),
        "greater_than",
        json!("2024-06-01")
    ));
    assert!(check(
        Some(json!("2024-06-01")),
        "less_than",
        json!("2024-06-01T00:00:01Z")
    ));
    assert!(check(
        Some(json!("2024-06-01T02:00:00+02:00")),
        "greater_than_or_equal",
        json!("2024-06-01")
    ));
    assert!(check(
        Some(json!("2024-05-31")),
        "less_than_or_equal",
        json!("2024-06-01")
    ));
}

#[test]
fn ordering_type_mismatches_and_missing_are_false() {
    assert!(!check(Some(json!("high")), "greater_than", json!(3)));
    assert!(!check(Some(json!("high")), "less_than", json!(3)));
    assert!(!check(Some(json!("2024-06-01")), "greater_than", json!(3)));
    assert!(!check(Some(json!(true)), "greater_than", json!(0)));
    assert!(!check(Some(json!([5])), "greater_than", json!(3)));
    assert!(!check(None, "greater_than", json!(3)));
    assert!(!check(None, "less_than_or_equal", json!(3)));
}

#[test]
fn contains_on_strings_and_lists() {
    assert!(check(Some(json!("Acme Corp")), "contains", json!("Corp")));
    assert!(!check(Some(json!("Acme Corp")), "contains", json!("corp")));
    assert!(check(Some(json!(["vip", "beta"])), "contains", json!("vip")));
    assert!(check(Some(json!([1, 2, 3])), "contains", json!(2.0)));
    assert!(!check(Some(json!(["vip"])), "contains", json!("vi")));
    assert!(!check(Some(json!(42)), "contains", json!("4")));
    assert!(!check(None, "contains", json!("x")));

    assert!(check(Some(json!("Acme")), "not_contains", json!("Corp")));
    assert!(!check(Some(json!(["vip"])), "not_contains", json!("vip")));
    assert!(check(None, "not_contains", json!("x")));
}

#[test]
fn starts_with_and_ends_with() {
    assert!(check(Some(json!("+44 20 7946")), "starts_with", json!("+44")));
    assert!(!check(Some(json!("+1 555")), "starts_with", json!("+44")));
    assert!(check(Some(json!("jo@acme.com")), "ends_with", json!("@acme.com")));
    assert!(!check(Some(json!("jo@ACME.com")), "ends_with", json!("@acme.com")));
    assert!(!check(Some(json!(["@acme.com"])), "ends_with", json!("@acme.com")));
    assert!(!check(None, "starts_with", json!("+44")));
}

#[test]
fn in_and_not_in() {
    assert!(check(Some(json!("high")), "in", json!(["high", "critical"])));
    assert!(!check(Some(json!("low")), "in", json!(["high", "critical"])));
    assert!(check(Some(json!("3")), "in", json!([1, 2, 3])), "numeric string");
    assert!(
        check(Some(json!(["beta", "vip"])), "in", json!(["vip", "partner"])),
        "a list field is in when any element is"
    );
    assert!(!check(Some(json!(["beta"])), "in", json!(["vip"])));
    assert!(!check(Some(json!([])), "in", json!(["vip"])));
    assert!(!check(None, "in", json!(["vip"])));

    assert!(check(Some(json!("low")), "not_in", json!(["high"])));
    assert!(!check(Some(json!(["vip"])), "not_in", json!(["vip"])));
    assert!(check(None, "not_in", json!(["vip"])));
}

#[test]
fn is_known_and_is_unknown() {
    for known in [json!("a"), json!(0), json!(false), json!([]), json!({})] {
        assert!(check(Some(known.clone()), "is_known", Value::Null), "{known}");
        assert!(!check(Some(known.clone()), "is_unknown", Value::Null), "{known}");
    }
    for unknown in [None, Some(json!(null)), Some(json!(""))] {
        assert!(!check(unknown.clone(), "is_known", Value::Null), "{unknown:?}");
        assert!(check(unknown.clone(), "is_unknown", Value::Null), "{unknown:?}");
    }
}

#[test]
fn between_is_inclusive_for_numbers_and_dates() {
    assert!(check(Some(json!(10)), "between", json!([10, 20])));
    assert!(check(Some(json!(20)), "between", json!([10, 20])));
    assert!(check(Some(json!("15.5")), "between", json!([10, 20])));
    assert!(!check(Some(json!(20.01)), "between", json!([10, 20])));
    assert!(!check(Some(json!(9)), "between", json!([10, 20])));
    assert!(check(
        Some(json!("2024-06-10T08:00:00Z")),
        "between",
        json!(["2024-06-01", "2024-06-30"])
    ));
    assert!(!check(
        Some(json!("2024-07-01")),
        "between",
        json!(["2024-06-01", "2024-06-30"])
    ));
    assert!(!check(Some(json!("n/a")), "between", json!([10, 20])));
    assert!(!check(None, "between", json!([10, 20])));
}

#[test]
fn changed_family_reads_previous() {
    let root = json!({
        "record": {"stage": "Closed Won", "amount": 100, "owner": "ann", "address": {"city": "Oslo"}},
        "previous": {"stage": "Negotiation", "amount": "100", "address": {"city": "Bergen"}}
    });
    let run = |c: Value| eval(c, root.clone());

    assert!(run(json!({"field": "record.stage", "op": "changed"})));
    assert!(run(json!({"field": "stage", "op": "changed"})), "relative path");
    assert!(!run(json!({"field": "owner", "op": "changed"})), "not in previous");
    assert!(
        !run(json!({"field": "amount", "op": "changed"})),
        "same value (numerically) is not a change"
    );
    assert!(run(json!({"field": "record.address.city", "op": "changed"})));

    assert!(run(
        json!({"field": "stage", "op": "changed_from", "value": "Negotiation"})
    ));
    assert!(!run(
        json!({"field": "stage", "op": "changed_from", "value": "Closed Won"})
    ));
    assert!(run(
        json!({"field": "stage", "op": "changed_to", "value": "Closed Won"})
    ));
    assert!(!run(
        json!({"field": "stage", "op": "changed_to", "value": "Negotiation"})
    ));
    assert!(!run(json!({"field": "owner", "op": "changed_to", "value": "ann"})));
    assert!(run(
        json!({"field": "address.city", "op": "changed_to", "value": "Oslo"})
    ));

    // A field cleared by the update: present in previous, missing now.
    let cleared = json!({"record": {}, "previous": {"phone": "+47 1234"}});
    assert!(eval(json!({"field": "phone", "op": "changed"}), cleared.clone()));
    assert!(eval(
        json!({"field": "phone", "op": "changed_from", "value": "+47 1234"}),
        cleared
    ));
    // No previous at all (e.g. a create event).
    assert!(!eval(
        json!({"field": "stage", "op": "changed"}),
        json!({"record": {"stage": "New"}})
    ));
}

#[test]
fn within_last_days_and_more_than_days_ago_use_scope_now() {
    // now = 2024-06-15T12:00:00Z
    assert!(check(Some(json!("2024-06-14T12:00:00Z")), "within_last_days", json!(7)));
    assert!(
        check(Some(json!("2024-06-08T12:00:00Z")), "within_last_days", json!(7)),
        "boundary"
    );
    assert!(!check(
        Some(json!("2024-06-08T11:59:59Z")),
        "within_last_days",
        json!(7)
    ));
    assert!(
        check(Some(json!("2024-06-10")), "within_last_days", json!(7)),
        "plain date"
    );
    assert!(
        !check(Some(json!("2024-06-16")), "within_last_days", json!(7)),
        "future"
    );
    assert!(check(
        Some(json!("2024-06-15T00:00:00Z")),
        "within_last_days",
        json!(0.5)
    ));
    assert!(!check(
        Some(json!("2024-06-14T23:59:59Z")),
        "within_last_days",
        json!(0.5)
    ));
    assert!(!check(Some(json!("yesterday")), "within_last_days", json!(7)));
    assert!(!check(None, "within_last_days", json!(7)));

    assert!(check(Some(json!("2024-06-01")), "more_than_days_ago", json!(7)));
    assert!(
        !check(Some(json!("2024-06-08T12:00:00Z")), "more_than_days_ago", json!(7)),
        "boundary"
    );
    assert!(check(
        Some(json!("2024-06-08T11:59:59Z")),
        "more_than_days_ago",
        json!(7)
    ));
    assert!(!check(Some(json!("2024-06-14")), "more_than_days_ago", json!(7)));
    assert!(!check(None, "more_than_days_ago", json!(7)));
    // Huge day counts reach past the earliest instant without failing.
    assert!(check(Some(json!("2024-06-01")), "within_last_days", json!(1e12)));
    assert!(!check(Some(json!("2024-06-01")), "more_than_days_ago", json!(1e12)));

    // The same condition, evaluated with another `now`, gives another answer.
    let condition = parse(json!({"field": "x", "op": "within_last_days", "value": 1}));
    let root = json!({"record": {"x": "2024-06-15T00:00:00Z"}});
    let later = Scope::new(root.clone(), "2024-06-20T00:00:00Z".parse().unwrap());
    assert!(condition.evaluate(&scope(root)).unwrap());
    assert!(!condition.evaluate(&later).unwrap());
}

#[test]
fn matches_searches_with_a_regex() {
    assert!(check(Some(json!("Order #12345")), "matches", json!(r"#\d{5}")));
    assert!(!check(Some(json!("Order #12")), "matches", json!(r"#\d{5}")));
    assert!(!check(Some(json!("x Order")), "matches", json!("^Order")));
    assert!(check(Some(json!("ORDER")), "regex", json!("(?i)^order$")));
    assert!(!check(Some(json!(12345)), "matches", json!(r"\d+")), "not a string");
    assert!(!check(None, "matches", json!(".*")));
}

#[test]
fn aliases_parse_to_canonical_operators() {
    let cases = [
        ("eq", Operator::Equals),
        ("neq", Operator::NotEquals),
        ("ne", Operator::NotEquals),
        ("gt", Operator::GreaterThan),
        ("gte", Operator::GreaterThanOrEqual),
        ("lt", Operator::LessThan),
        ("lte", Operator::LessThanOrEqual),
        ("not_in", Operator::NotIn),
        ("regex", Operator::Matches),
        ("exists", Operator::IsKnown),
        ("not_exists", Operator::IsUnknown),
    ];
    for (alias, op) in cases {
        let value = match op.as_str() {
            "not_in" => json!(["a"]),
            "matches" => json!("a"),
            "is_known" | "is_unknown" => Value::Null,
            _ => json!(1),
        };
        let mut input = json!({"field": "x", "operator": alias});
        if !value.is_null() {
            input["value"] = value;
        }
        let Condition::Rule(rule) = parse(input) else {
            panic!("{alias} should give a rule");
        };
        assert_eq!(rule.operator, op, "{alias}");
        let out = serde_json::to_value(Condition::Rule(rule)).unwrap();
        assert_eq!(out["op"], json!(op.as_str()), "serialized canonically");
    }
    assert!(check(Some(json!(5)), "gte", json!(5)));
    assert!(check(Some(json!("a")), "exists", Value::Null));
    assert!(check(None, "not_exists", Value::Null));
}

// ---------------------------------------------------------------- nesting and shorthand

#[test]
fn all_any_not_nest() {
    let root = json!({"record": {"stage": "Open", "amount": 500}, "contact": {"tags": ["vip"]}});
    let condition = json!({
        "all": [
            {"any": [
                {"field": "stage", "op": "equals", "value": "Closed"},
                {"field": "contact.tags", "op": "contains", "value": "vip"}
            ]},
            {"not": {"field": "amount", "op": "lt", "value": 100}}
        ]
    });
    assert!(eval(condition, root.clone()));
    assert!(!eval(
        json!({"not": {"all": [{"stage": "Open"}, {"field": "amount", "op": "gt", "value": 1}]}}),
        root.clone()
    ));
    assert!(eval(json!({"all": []}), root.clone()), "all of nothing");
    assert!(!eval(json!({"any": []}), root.clone()), "any of nothing");
    assert!(eval(json!({"not": {"any": []}}), root.clone()));
    // A list is all of its items.
    assert_eq!(
        parse(json!([{"stage": "Open"}, {"cel": "true"}])),
        Condition::All(vec![parse(json!({"stage": "Open"})), parse(json!({"cel": "true"}))])
    );
    assert!(!eval(json!([{"stage": "Open"}, {"cel": "false"}]), root));
}

#[test]
fn evaluation_short_circuits() {
    let root = json!({"record": {}});
    // The failing expression is never reached.
    assert!(eval(
        json!({"any": [{"cel": "true"}, {"cel": "record.nope"}]}),
        root.clone()
    ));
    assert!(!eval(
        json!({"all": [{"cel": "false"}, {"cel": "record.nope"}]}),
        root.clone()
    ));
    // Reached: the error surfaces.
    let c = parse(json!({"any": [{"cel": "false"}, {"cel": "record.nope"}]}));
    assert!(c.evaluate(&scope(root.clone())).is_err());
    assert!(c.explain(&scope(root)).is_err());
}

#[test]
fn equality_shorthand_is_all_of_equals() {
    let condition = parse(json!({"priority": "critical", "source": "Website"}));
    let Condition::All(rules) = &condition else {
        panic!("shorthand should be All, got {condition:?}");
    };
    assert_eq!(rules.len(), 2);
    assert!(
        rules
            .iter()
            .all(|r| matches!(r, Condition::Rule(r) if r.operator == Operator::Equals))
    );

    let matching = json!({"record": {"priority": "critical", "source": "Website"}});
    let other = json!({"record": {"priority": "critical", "source": "Email"}});
    assert!(condition.evaluate(&scope(matching)).unwrap());
    assert!(!condition.evaluate(&scope(other)).unwrap());

    // Keys are field paths, rooted or relative.
    assert!(eval(
        json!({"event.type": "case.created", "contact.country": "NO"}),
        json!({"event": {"type": "case.created"}, "contact": {"country": "NO"}})
    ));
    // `{}` is always true, even on an empty scope.
    assert_eq!(parse(json!({})), Condition::always());
    assert!(eval(json!({}), json!({})));
    // The public flat API shape deserializes through serde.
    #[derive(serde::Deserialize)]
    struct Trigger {
        event: String,
        conditions: Condition,
    }
    let trigger: Trigger =
        serde_json::from_value(json!({"event": "case.created", "conditions": {"priority": "critical"}})).unwrap();
    assert_eq!(trigger.event, "case.created");
    assert!(
        trigger
            .conditions
            .evaluate(&scope(json!({"record": {"priority": "critical"}})))
            .unwrap()
    );
}

// ---------------------------------------------------------------- parse errors

#[test]
fn parse_errors_name_the_path() {
    let e = parse_error(json!({"all": [
        {"field": "a", "op": "equals", "value": 1},
        {"field": "b", "op": "eqals", "value": 1}
    ]}));
    assert_eq!(e.path, "all[1].op");
    assert!(
        e.message
            .starts_with("unknown operator \"eqals\"; expected one of equals,"),
        "{e}"
    );
    assert!(e.to_string().starts_with("all[1].op: unknown operator \"eqals\""));

    let e = parse_error(json!({"any": [{"field": "a", "operator": "matches", "value": "(unclosed"}]}));
    assert_eq!(e.path, "any[0].value");
    assert!(e.message.contains("invalid regex"), "{e}");

    let e = parse_error(json!({"not": {"cel": "record.amount >"}}));
    assert_eq!(e.path, "not.cel");
    assert!(e.message.starts_with("invalid CEL expression: "), "{e}");
    assert!(e.message.contains("Syntax error"), "the parser message: {e}");
    assert!(e.message.contains("(line 1, column 16)"), "{e}");

    let e = parse_error(json!([{}, {"expression": "1 +"}]));
    assert_eq!(e.path, "[1].expression");

    let e = parse_error(json!({"field": "a", "op": "equals", "value": 1, "vaule": 2}));
    assert_eq!(e.path, "vaule");
    assert!(e.message.contains("unknown key \"vaule\""), "{e}");
    let e = parse_error(json!({"field": "a", "op": "equals", "x": 1, "y": 2}));
    assert!(e.message.contains("unknown keys \"x\", \"y\""), "{e}");

    let e = parse_error(json!({"all": [{"field": "n", "op": "between", "value": 5}]}));
    assert_eq!(e.path, "all[0].value");
    assert!(e.message.contains("between needs a list [low, high]"), "{e}");
    let e = parse_error(json!({"field": "n", "op": "between", "value": [1, 2, 3]}));
    assert_eq!(e.path, "value");
    let e = parse_error(json!({"field": "n", "op": "between", "value": [1, "soon"]}));
    assert_eq!(e.path, "value");
}

#[test]
fn value_shapes_are_checked_per_operator() {
    let cases = [
        (json!({"field": "a", "op": "gt"}), "value", "missing"),
        (
            json!({"field": "a", "op": "gt", "value": "high"}),
            "value",
            "greater_than needs a number",
        ),
        (
            json!({"field": "a", "op": "gt", "value": null}),
            "value",
            "greater_than needs",
        ),
        (
            json!({"field": "a", "op": "in", "value": "x"}),
            "value",
            "in needs a list",
        ),
        (
            json!({"field": "a", "op": "starts_with", "value": 1}),
            "value",
            "needs a string",
        ),
        (
            json!({"field": "a", "op": "changed", "value": "x"}),
            "value",
            "use changed_to",
        ),
        (
            json!({"field": "a", "op": "is_known", "value": 1}),
            "value",
            "takes no value",
        ),
        (
            json!({"field": "a", "op": "within_last_days", "value": -1}),
            "value",
            "days >= 0",
        ),
        (
            json!({"field": "a", "op": "more_than_days_ago", "value": "7"}),
            "value",
            "days >= 0",
        ),
        (
            json!({"field": "a", "op": "matches", "value": 3}),
            "value",
            "regular expression",
        ),
        (json!({"field": "a"}), "op", "needs an operator"),
        (
            json!({"field": "a", "op": "eq", "operator": "eq", "value": 1}),
            "operator",
            "both",
        ),
        (
            json!({"field": "a", "op": 3, "value": 1}),
            "op",
            "expected an operator name",
        ),
        (
            json!({"field": 3, "op": "eq", "value": 1}),
            "field",
            "expected a field path",
        ),
        (
            json!({"field": "a..b", "op": "eq", "value": 1}),
            "field",
            "empty segment",
        ),
        (json!({"a..b": 1}), "a..b", "empty segment"),
        (json!({"all": {"a": 1}}), "all", "expected a list of conditions"),
        (json!({"cel": 5}), "cel", "expected a CEL expression string"),
        (json!({"cel": "  "}), "cel", "empty CEL expression"),
        (json!({"all": [], "priority": 1}), "priority", "unexpected key"),
        (json!({"all": [], "any": []}), "", "found all and any"),
        (json!("priority == 1"), "", "expected a condition"),
        (json!({"not": 3}), "not", "found a number"),
    ];
    for (input, path, fragment) in cases {
        let e = parse_error(input.clone());
        assert_eq!(e.path, path, "{input}: {e}");
        assert!(e.message.contains(fragment), "{input}: {e}");
    }
    // A `null` value is no value for operators taking none.
    assert!(Condition::from_value(&json!({"field": "a", "op": "changed", "value": null})).is_ok());
}

// ---------------------------------------------------------------- serde

#[test]
fn serializes_canonical_forms_and_round_trips() {
    let input = json!([
        {"priority": "critical"},
        {"any": [
            {"field": "amount", "operator": "gte", "value": 10},
            {"not": {"expression": "has(record.vip)"}},
            {"field": "email", "op": "exists"}
        ]}
    ]);
    let condition = parse(input);
    let out = serde_json::to_value(&condition).unwrap();
    assert_eq!(
        out,
        json!({"all": [
            {"all": [{"field": "priority", "op": "equals", "value": "critical"}]},
            {"any": [
                {"field": "amount", "op": "greater_than_or_equal", "value": 10},
                {"not": {"cel": "has(record.vip)"}},
                {"field": "email", "op": "is_known"}
            ]}
        ]})
    );
    assert_eq!(parse(out.clone()), condition);
    let back: Condition = serde_json::from_value(out).unwrap();
    assert_eq!(back, condition);
}

#[test]
fn deserializes_from_yaml_with_path_in_errors() {
    let yaml = "any:\n  - field: record.amount\n    op: gt\n    value: 200000\n  - cel: \"'VIP' in contact.tags\"\n";
    let condition: Condition = serde_saphyr::from_str(yaml).unwrap();
    let root = json!({"record": {"amount": 1}, "contact": {"tags": ["VIP"]}});
    assert!(condition.evaluate(&scope(root)).unwrap());

    let bad = "all:\n  - field: stage\n    op: eqals\n    value: Won\n";
    let error = serde_saphyr::from_str::<Condition>(bad).unwrap_err().to_string();
    assert!(error.contains("all[0].op: unknown operator \"eqals\""), "{error}");

    let error = serde_json::from_value::<Condition>(json!(5)).unwrap_err().to_string();
    assert!(
        error.starts_with("expected a condition"),
        "empty path: just the message: {error}"
    );
}

#[test]
fn json_schema_describes_every_form() {
    let schema = schemars::schema_for!(Condition);
    let json = serde_json::to_value(&schema).unwrap();
    let forms = json["anyOf"].as_array().expect("anyOf of forms");
    assert_eq!(forms.len(), 8);
    let rule = forms
        .iter()
        .find(|f| f["properties"]["field"].is_object())
        .expect("a field rule form");
    let names: Vec<&str> = rule["properties"]["op"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in ["equals", "greater_than", "matches", "gt", "exists", "not_exists"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    // Recursion goes through a reference to the Condition definition itself.
    assert_eq!(forms[0]["items"]["$ref"], json!("#"));
}

// ---------------------------------------------------------------- CEL

#[test]
fn cel_sees_the_scope_variables() {
    let root = json!({
        "record": {"amount": 250000, "ratio": 0.75, "stage": "Open", "owner": {"name": "Ann"}},
        "contact": {"tags": ["VIP", "beta"], "email": "Jo@Acme.com"},
        "event": {"type": "deal.updated", "data": {"score": 42}},
        "trigger": {"type": "deal.created"},
        "previous": {"stage": "Lead"},
        "steps": {"approval": {"output": {"approved": true}}},
        "run": {"automation_version": 3}
    });
    for source in [
        "record.amount > 200000 && 'VIP' in contact.tags",
        "record.amount == 250000",
        "record.ratio > 0.5 && record.ratio < 1.0",
        "type(record.amount) == int && type(record.ratio) == double",
        "record.owner.name == 'Ann'",
        "event.data.score >= 40 && event.type.startsWith('deal.')",
        "trigger.type == 'deal.created'",
        "previous.stage == 'Lead' && record.stage != previous.stage",
        "steps.approval.output.approved",
        "run.automation_version == 3",
        "contact.tags.exists(t, t == 'beta') && size(contact.tags) == 2",
        "contact.email.lowerAscii().endsWith('@acme.com')",
        "record.stage in ['Open', 'Closed']",
    ] {
        let c = parse(json!({ "cel": source }));
        assert_eq!(c.evaluate(&scope(root.clone())), Ok(true), "{source}");
    }
    assert!(!eval(json!({"cel": "record.amount < 200000"}), root));
}

#[test]
fn cel_now_is_the_scope_instant() {
    let root = json!({"record": {"created_at": "2024-06-14T12:00:00Z"}});
    for source in [
        "now == timestamp('2024-06-15T12:00:00Z')",
        "now - timestamp(record.created_at) == duration('24h')",
        "now - timestamp(record.created_at) < duration('48h')",
        "now.getFullYear() == 2024",
    ] {
        assert!(eval(json!({ "cel": source }), root.clone()), "{source}");
    }
    let later = Scope::new(root, "2030-01-01T00:00:00Z".parse().unwrap());
    let c = parse(json!({"cel": "now - timestamp(record.created_at) < duration('48h')"}));
    assert_eq!(c.evaluate(&later), Ok(false));
}

#[test]
fn cel_has_and_missing_roots() {
    let root = json!({"record": {"email": "a@b.c"}});
    assert!(eval(json!({"cel": "has(record.email)"}), root.clone()));
    assert!(!eval(json!({"cel": "has(record.phone)"}), root.clone()));
    // Missing roots are empty maps.
    for source in [
        "!has(contact.tags)",
        "!has(steps.approval)",
        "size(previous) == 0",
        "!has(run.id) && !has(trigger.type) && !has(event.type)",
    ] {
        assert!(eval(json!({ "cel": source }), root.clone()), "{source}");
    }
    // A comprehension variable may reuse a root's name; a name the scope lacks is undeclared.
    assert!(eval(json!({"cel": "[1, 2].exists(record, record > 1)"}), root.clone()));
    assert!(
        parse(json!({"cel": "nowhere == 1"}))
            .evaluate(&scope(root.clone()))
            .is_err()
    );
    assert!(eval(json!({"cel": "!has(record.x)"}), json!({})));
    assert!(eval(json!({"cel": "!has(record.x)"}), json!({"record": null})));
    // Other top-level keys are variables too; a null one is null.
    assert!(eval(
        json!({"cel": "extra.a == 1 && other == null"}),
        json!({"extra": {"a": 1}, "other": null})
    ));
    // `now` always is the scope's instant.
    assert!(eval(
        json!({"cel": "now == timestamp('2024-06-15T12:00:00Z')"}),
        json!({"now": "1999-01-01T00:00:00Z"})
    ));
}

#[test]
fn cel_errors_and_non_bool_results() {
    let root = json!({"record": {"amount": 5}});
    let c = parse(json!({"cel": "record.amount + 1"}));
    match c.evaluate(&scope(root.clone())) {
        Err(ConditionError::NotBool { expression, found }) => {
            assert_eq!(expression, "record.amount + 1");
            assert_eq!(found, "int 6");
        }
        other => panic!("expected NotBool, got {other:?}"),
    }
    let c = parse(json!({"cel": "record.missing == 1"}));
    match c.evaluate(&scope(root.clone())) {
        Err(ConditionError::Cel { expression, message }) => {
            assert_eq!(expression, "record.missing == 1");
            assert!(message.contains("missing"), "{message}");
            assert!(message.contains("has("), "{message}");
        }
        other => panic!("expected a CEL error, got {other:?}"),
    }
    let c = parse(json!({"cel": "1 / (record.amount - 5) == 1"}));
    let error = c.evaluate(&scope(root.clone())).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("CEL expression `1 / (record.amount - 5) == 1` failed")
    );
    let c = parse(json!({"cel": "'a' > 1"}));
    assert!(c.evaluate(&scope(root)).is_err());
}

#[test]
fn cel_expression_api() {
    let expression = CelExpression::new("x * 2.0").unwrap();
    assert_eq!(expression.source(), "x * 2.0");
    assert_eq!(
        expression.evaluate_with_bindings([("x", CelValue::Float(21.0))]),
        Ok(CelValue::Float(42.0))
    );
    // CEL does not mix int and double in arithmetic.
    assert!(expression.evaluate_with_bindings([("x", CelValue::Int(21))]).is_err());
    let value = expression
        .evaluate_with_bindings([("x", json_to_cel(&json!(1.5)))])
        .unwrap();
    assert_eq!(cel_to_json(&value), Ok(json!(3.0)));
    assert!(
        expression
            .evaluate_with_bindings(Vec::<(String, CelValue)>::new())
            .is_err()
    );

    let listing = CelExpression::new("record.items.map(i, i.qty)").unwrap();
    let value = listing
        .evaluate_value(&scope(json!({"record": {"items": [{"qty": 2}, {"qty": 3}]}})))
        .unwrap();
    assert_eq!(cel_to_json(&value), Ok(json!([2, 3])));

    assert_eq!(
        CelExpression::new("a == 1").unwrap(),
        CelExpression::new("a == 1").unwrap()
    );
    assert_ne!(
        CelExpression::new("a == 1").unwrap(),
        CelExpression::new("a==1").unwrap()
    );
    let e = CelExpression::new("a ==").unwrap_err();
    assert_eq!(e.path, "cel");

    assert_eq!(json_to_cel(&json!(u64::MAX)), CelValue::UInt(u64::MAX));
    assert_eq!(json_to_cel(&json!(-7)), CelValue::Int(-7));
    assert_eq!(json_to_cel(&json!(7.0)), CelValue::Float(7.0));
}

// ---------------------------------------------------------------- explanations

#[test]
fn explanations_show_values_and_deciding_children() {
    let root = json!({"record": {"amount": 250000, "stage": "Open"}, "previous": {"stage": "Lead"}});
    let s = scope(root);
    let explain = |c: Value| parse(c).explain(&s).unwrap();

    assert_eq!(
        explain(json!({"field": "record.amount", "op": "gt", "value": 200000})),
        (true, "record.amount (250000) greater_than 200000 → true".to_owned())
    );
    assert_eq!(
        explain(json!({"all": [
            {"field": "record.amount", "op": "gt", "value": 1},
            {"field": "record.stage", "op": "equals", "value": "Closed Won"}
        ]})),
        (
            false,
            "all of 2 → false (record.stage (\"Open\") equals \"Closed Won\" → false)".to_owned()
        )
    );
    assert_eq!(
        explain(json!({"any": [{"field": "x", "op": "exists"}, {"cel": "record.amount > 5"}]})),
        (true, "any of 2 → true (cel `record.amount > 5` → true)".to_owned())
    );
    assert_eq!(
        explain(json!({"any": [{"field": "x", "op": "exists"}]})),
        (false, "any of 1 → false (x (missing) is_known → false)".to_owned())
    );
    assert_eq!(
        explain(json!({"not": {"field": "stage", "op": "changed_to", "value": "Open"}})),
        (
            false,
            "not (stage (\"Open\"; previous \"Lead\") changed_to \"Open\" → true) → false".to_owned()
        )
    );
    assert_eq!(explain(json!({})), (true, "all of 0 → true".to_owned()));
}

#[test]
fn explanations_stay_bounded() {
    let long = "y".repeat(5000);
    let rules: Vec<Value> = (0..200)
        .map(|i| json!({"field": format!("f{i}"), "op": "equals", "value": long}))
        .collect();
    let root = json!({"record": {"f0": "z".repeat(5000)}});
    let (result, text) = parse(json!({"any": rules})).explain(&scope(root)).unwrap();
    assert!(!result);
    assert!(text.chars().count() <= MAX_EXPLANATION_CHARS, "{}", text.len());
    assert!(text.starts_with("any of 200 → false (f0 (\"zzz"));
    assert!(text.ends_with('…'));
}

// ---------------------------------------------------------------- hand-built rules

#[test]
fn rules_built_in_code_are_validated_and_evaluated() {
    let field = FieldPath::parse("record.n").unwrap();
    assert!(FieldRule::new(field.clone(), Operator::Between, Some(json!(3))).is_err());
    let mut rule = FieldRule::new(field.clone(), Operator::Between, Some(json!([1, 5]))).unwrap();
    let s = scope(json!({"record": {"n": 3}}));
    assert_eq!(rule.evaluate(&s), Ok(true));
    // Changing the value behind validation's back is an evaluation error, not a panic.
    rule.value = Some(json!("oops"));
    assert!(matches!(rule.evaluate(&s), Err(ConditionError::InvalidRule { .. })));

    let mut regex = FieldRule::new(field.clone(), Operator::Matches, Some(json!("^a"))).unwrap();
    let s = scope(json!({"record": {"n": "abc"}}));
    assert_eq!(regex.evaluate(&s), Ok(true));
    regex.value = Some(json!("c$"));
    assert_eq!(regex.evaluate(&s), Ok(true), "recompiled after the change");
    regex.value = Some(json!("^b"));
    assert_eq!(regex.evaluate(&s), Ok(false));
    regex.value = Some(json!("("));
    assert!(regex.evaluate(&s).is_err());

    let mut days = FieldRule::new(field, Operator::WithinLastDays, Some(json!(1))).unwrap();
    days.value = None;
    assert!(days.evaluate(&scope(json!({"record": {"n": "2024-06-15"}}))).is_err());
}

#[test]
fn conditions_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Condition>();
    assert_send_sync::<Scope>();
    assert_send_sync::<ConditionError>();
    assert_send_sync::<ConditionParseError>();
}

// ---------------------------------------------------------------- properties

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|n| json!(n)),
        (-100i64..100).prop_map(|n| json!(n.to_string())),
        "[a-c]{0,3}".prop_map(Value::String),
        prop_oneof![Just("2024-06-01"), Just("2024-06-15T00:00:00Z"), Just("2023-01-01")].prop_map(|s| json!(s)),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    let ops = prop_oneof![
        Just("equals"),
        Just("not_equals"),
        Just("gt"),
        Just("lte"),
        Just("contains"),
        Just("in"),
        Just("is_known"),
        Just("changed"),
        Just("between"),
        Just("within_last_days"),
        Just("matches"),
    ];
    (ops, "[ab]", scalar(), scalar()).prop_map(|(op, field, a, b)| {
        let value = match op {
            "in" => Some(json!([a, b])),
            "between" => Some(json!([1, 10])),
            "within_last_days" => Some(json!(7)),
            "matches" => Some(json!("a+")),
            "is_known" | "changed" => None,
            "gt" | "lte" => Some(json!(3)),
            _ => Some(a),
        };
        let mut rule = json!({"field": field, "op": op});
        if let Some(value) = value {
            rule["value"] = value;
        }
        rule
    })
}

fn condition_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|c| json!({ "all": c })),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|c| json!({ "any": c })),
            inner.prop_map(|c| json!({ "not": c })),
        ]
    })
}

proptest! {
    #[test]
    fn not_is_the_negation(condition in condition_json(), a in scalar(), b in scalar(), p in scalar()) {
        let root = json!({"record": {"a": a, "b": b}, "previous": {"a": p}});
        let s = scope(root);
        let c = parse(condition);
        let negated = Condition::Not(Box::new(c.clone()));
        prop_assert_eq!(negated.evaluate(&s).unwrap(), !c.evaluate(&s).unwrap());
        let (explained, _) = c.explain(&s).unwrap();
        prop_assert_eq!(explained, c.evaluate(&s).unwrap());
    }

    #[test]
    fn serialization_round_trips(condition in condition_json()) {
        let c = parse(condition);
        let out = serde_json::to_value(&c).unwrap();
        prop_assert_eq!(parse(out), c);
    }

    #[test]
    fn equals_is_symmetric_for_numbers(
        x in prop_oneof![any::<i64>().prop_map(|n| json!(n)), any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|n| json!(n)), (-5i64..5).prop_map(|n| json!(n.to_string()))],
        y in prop_oneof![any::<i64>().prop_map(|n| json!(n)), (-5i64..5).prop_map(|n| json!(n)), (-5i64..5).prop_map(|n| json!(n as f64))],
    ) {
        let forward = check(Some(x.clone()), "equals", y.clone());
        let backward = check(Some(y.clone()), "equals", x.clone());
        prop_assert_eq!(forward, backward);
        // And consistent with ordering: equal numbers are neither greater nor less.
        if forward {
            prop_assert!(!check(Some(x.clone()), "gt", y.clone()));
            prop_assert!(!check(Some(x), "lt", y));
        }
    }

    #[test]
    fn arbitrary_cel_sources_never_panic(source in r#"[a-z0-9 .,()\[\]{}'"!?:<>=+*/%&|_-]{0,24}"#) {
        if let Ok(expression) = CelExpression::new(source) {
            let _ = expression.evaluate(&scope(json!({"record": {"a": 1, "b": "x"}})));
        }
    }

    #[test]
    fn parsing_arbitrary_json_never_panics(value in arbitrary_json()) {
        if let Ok(c) = Condition::from_value(&value) {
            let s = scope(json!({"record": value}));
            let _ = c.explain(&s);
        }
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("field".to_owned()),
        Just("op".to_owned()),
        Just("value".to_owned()),
        Just("all".to_owned()),
        Just("not".to_owned()),
        Just("cel".to_owned()),
        "[a-z.]{0,4}",
    ];
    let op_names = prop_oneof![
        Just(json!("between")),
        Just(json!("matches")),
        Just(json!("in")),
        Just(json!("within_last_days")),
        Just(json!("changed")),
        Just(json!("record.a ==")),
        Just(json!("has(record.a)")),
    ];
    let leaf = prop_oneof![scalar(), op_names];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `reads` names every root a condition looks up: the scope without the other roots gives the
/// same result and explanation.
#[test]
fn a_scope_without_the_roots_a_condition_does_not_read_gives_the_same_result() {
    let root = json!({
        "trigger": {"type": "lead.created", "data": {"score": 1}},
        "event": {"type": "lead.updated"},
        "record": {"score": 42, "tier": "gold"},
        "previous": {"score": 40},
        "contact": {"email": "a@example.com", "tags": ["vip"]},
        "steps": {"s": {"status": "completed"}},
        "run": {"id": "r1"},
        "now": "2024-06-15T12:00:00Z",
    });
    let conditions = [
        json!({"field": "score", "op": "greater_than", "value": 10}),
        json!({"field": "score", "op": "changed"}),
        json!({"field": "trigger.data.score", "op": "equals", "value": 1}),
        json!({"any": [{"field": "tier", "op": "in", "value": ["gold"]}, {"field": "contact.tags", "op": "contains", "value": "vip"}]}),
        json!({"not": {"field": "event.type", "op": "equals", "value": "lead.updated"}}),
        json!({"cel": "record.score % 3 == 0"}),
        json!({"cel": "trigger.type == 'lead.created' && has(run.id)"}),
        json!({"cel": "event.type.startsWith('lead') && now > timestamp('2020-01-01T00:00:00Z')"}),
    ];
    let roots = [
        "trigger", "event", "record", "previous", "contact", "steps", "run", "now",
    ];
    for condition in conditions {
        let parsed = parse(condition.clone());
        let mut reduced = serde_json::Map::new();
        for key in roots.into_iter().filter(|r| parsed.reads(r)) {
            reduced.insert(key.to_string(), root[key].clone());
        }
        let full = parsed.explain(&scope(root.clone())).unwrap();
        let partial = parsed.explain(&scope(Value::Object(reduced))).unwrap();
        assert_eq!(full, partial, "{condition}");
    }
}
