use super::*;
use serde_json::json;

fn ok(v: Value) -> (Event, EventFormat) {
    parse_event(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn fail(v: Value) -> String {
    match parse_event(&v) {
        Ok(e) => panic!("{v} should fail, got {e:?}"),
        Err(e) => e.to_string(),
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn file(name: &str) -> &'static str {
    match name {
        "native" => include_str!("testdata/native.json"),
        "cloudevents" => include_str!("testdata/cloudevents.json"),
        "eventbridge" => include_str!("testdata/eventbridge.json"),
        "mixed" => include_str!("testdata/mixed.jsonl"),
        _ => unreachable!(),
    }
}

fn native() -> Value {
    json!({"id": "e1", "type": "lead.created", "time": "2026-03-08T09:00:00Z", "subject": {"type": "lead", "id": "L1"}})
}

fn with(mut base: Value, key: &str, v: Value) -> Value {
    base[key] = v;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

#[test]
fn native_envelope() {
    let v: Value = serde_json::from_str(file("native")).unwrap();
    let (e, f) = ok(v);
    assert_eq!(f, EventFormat::Native);
    assert_eq!(e.id, "evt-001");
    assert_eq!(e.event_type, "opportunity.stage_changed");
    assert_eq!(e.tenant, "acme");
    assert_eq!(e.time, ts("2026-03-08T09:00:00Z")); // +01:00 normalised to UTC
    assert_eq!(e.subject.record_key(), "opportunity/O1");
    assert_eq!(e.subject.contact_key().as_deref(), Some("contact/C1"));
    assert_eq!(e.data["stage"], "negotiation");
    assert_eq!(e.previous.as_ref().unwrap()["stage"], "proposal");
    assert_eq!(e.contact.as_ref().unwrap()["timezone"], "Europe/Berlin");

    let (e, _) = ok(native());
    assert_eq!(e.tenant, "default");
    assert!(e.data.is_empty());
    assert_eq!(e.previous, None);
    assert_eq!(e.subject.contact_key(), None);
    // subject shorthand and contact id from the record
    let (e, _) = ok(with(
        with(native(), "subject", json!("lead/L1")),
        "data",
        json!({"contact_id": "C7"}),
    ));
    assert_eq!(
        e.subject,
        Subject {
            record_type: "lead".into(),
            id: "L1".into(),
            contact_id: Some("C7".into())
        }
    );
}

#[test]
fn native_errors_name_the_field() {
    assert_eq!(fail(without(native(), "id")), "id: missing");
    assert_eq!(fail(with(native(), "id", json!(""))), "id: must not be empty");
    assert_eq!(
        fail(with(native(), "id", json!(7))),
        "id: expected a string, got a number"
    );
    assert_eq!(fail(without(native(), "type")), "type: missing");
    assert_eq!(
        fail(with(native(), "type", json!("lead created"))),
        "type: invalid event type \"lead created\": only letters, digits and _ . : - are allowed"
    );
    assert_eq!(fail(without(native(), "time")), "time: missing");
    assert_eq!(
        fail(with(native(), "time", json!("yesterday"))),
        "time: invalid RFC 3339 timestamp \"yesterday\""
    );
    assert_eq!(
        fail(with(native(), "time", json!("2026-03-08T09:00:00"))),
        "time: invalid RFC 3339 timestamp \"2026-03-08T09:00:00\""
    );
    assert_eq!(fail(without(native(), "subject")), "subject: missing");
    assert_eq!(
        fail(with(native(), "subject", json!({"type": "lead"}))),
        "subject.id: missing"
    );
    assert_eq!(
        fail(with(native(), "subject", json!({"type": "lead", "id": 5}))),
        "subject.id: expected a string, got a number"
    );
    assert!(
        fail(with(native(), "subject", json!("L1"))).starts_with("subject: expected \"<record type>/<record id>\"")
    );
    assert!(
        fail(with(
            native(),
            "subject",
            json!({"type": "lead", "id": "L1", "kind": "x"})
        ))
        .starts_with("subject.kind: unknown field")
    );
    assert_eq!(
        fail(with(native(), "data", json!([1]))),
        "data: expected a JSON object, got an array"
    );
    assert_eq!(
        fail(with(native(), "previous", json!("x"))),
        "previous: expected a JSON object, got a string"
    );
    assert_eq!(fail(with(native(), "tenant", json!(""))), "tenant: must not be empty");
    assert!(fail(with(native(), "source", json!("crm"))).starts_with("source: unknown field"));
    assert_eq!(fail(json!([1])), "$: expected a JSON object, got an array");
}

#[test]
fn cloudevents() {
    let v: Value = serde_json::from_str(file("cloudevents")).unwrap();
    let (e, f) = ok(v);
    assert_eq!(f, EventFormat::CloudEvents);
    assert_eq!(e.id, "evt-002");
    assert_eq!(e.event_type, "lead.created");
    assert_eq!(e.tenant, "acme");
    assert_eq!(
        e.subject,
        Subject {
            record_type: "lead".into(),
            id: "L1".into(),
            contact_id: Some("C1".into())
        }
    );
    assert_eq!(e.data["score"], 72);
    assert_eq!(e.previous, Some(json!({"score": 40}).as_object().unwrap().clone()));
    assert_eq!(e.contact.as_ref().unwrap()["first_name"], "Ada");

    // No subject: record type from the type, id from the data; plain data is the record.
    let (e, _) = ok(
        json!({"specversion": "1.0", "id": "x", "source": "/crm", "type": "deal.won",
                           "time": "2026-03-08T09:00:00Z", "data": {"id": 42, "amount": 5, "contact_id": "C2"}}),
    );
    assert_eq!(e.subject.record_key(), "deal/42");
    assert_eq!(e.subject.contact_id.as_deref(), Some("C2"));
    assert_eq!(e.tenant, "default");
    assert_eq!(e.data["amount"], 5);
    assert_eq!(e.previous, None);
    // ... or from data.record.id
    let (e, _) = ok(
        json!({"specversion": "1.0", "id": "x", "source": "/crm", "type": "deal.won",
                           "time": "2026-03-08T09:00:00Z", "data": {"record": {"id": "D1"}, "contact": {"id": "C3"}}}),
    );
    assert_eq!(e.subject.record_key(), "deal/D1");
    assert_eq!(e.subject.contact_key().as_deref(), Some("contact/C3"));
    // +json content types are fine; unknown extension attributes are ignored
    let (e, _) = ok(
        json!({"specversion": "1.0", "id": "x", "source": "/crm", "type": "ping", "subject": "system/s/1",
                           "time": "2026-03-08T09:00:00Z", "datacontenttype": "application/cloudevents+json; charset=utf-8", "traceparent": "00-abc"}),
    );
    assert_eq!(e.subject.record_type, "system");
    assert_eq!(e.subject.id, "s/1");
}

#[test]
fn cloudevents_errors() {
    let base = json!({"specversion": "1.0", "id": "x", "source": "/crm", "type": "lead.created",
                      "time": "2026-03-08T09:00:00Z", "subject": "lead/L1"});
    assert!(ok(base.clone()).1 == EventFormat::CloudEvents);
    assert_eq!(
        fail(with(base.clone(), "specversion", json!("0.3"))),
        "specversion: unsupported CloudEvents version \"0.3\" (crmflow accepts \"1.0\")"
    );
    assert_eq!(
        fail(with(base.clone(), "specversion", json!(1.0))),
        "specversion: expected the string \"1.0\", got a number"
    );
    assert_eq!(fail(without(base.clone(), "id")), "id: missing");
    assert_eq!(fail(without(base.clone(), "source")), "source: missing");
    assert_eq!(fail(without(base.clone(), "type")), "type: missing");
    assert!(fail(without(base.clone(), "time")).starts_with("time: missing"));
    assert!(
        fail(with(base.clone(), "data_base64", json!("AAAA")))
            .starts_with("data_base64: binary event data is not supported")
    );
    assert!(
        fail(with(base.clone(), "datacontenttype", json!("text/xml")))
            .starts_with("datacontenttype: unsupported content type \"text/xml\"")
    );
    assert_eq!(
        fail(with(base.clone(), "data", json!("hello"))),
        "data: expected a JSON object, got a string"
    );
    assert_eq!(
        fail(with(base.clone(), "data", json!({"record": {}, "previous": 3}))),
        "data.previous: expected a JSON object, got a number"
    );
    assert!(fail(with(base.clone(), "data", json!({"record": {}, "extra": 1}))).starts_with("data.extra: unknown key"));
    assert!(fail(without(base.clone(), "subject")).starts_with("subject: missing, and data has no"));
    assert!(
        fail(with(
            without(base.clone(), "subject"),
            "data",
            json!({"record": {"x": 1}})
        ))
        .contains("data.record has no")
    );
    assert_eq!(
        fail(with(base.clone(), "contactid", json!(5))),
        "contactid: expected a string, got a number"
    );
}

#[test]
fn eventbridge() {
    let v: Value = serde_json::from_str(file("eventbridge")).unwrap();
    let (e, f) = ok(v);
    assert_eq!(f, EventFormat::EventBridge);
    assert_eq!(e.id, "6a7e8feb-b491-4cf7-a9f1-bf3703467718");
    assert_eq!(e.event_type, "lead.created");
    assert_eq!(e.tenant, "acme");
    assert_eq!(
        e.subject,
        Subject {
            record_type: "lead".into(),
            id: "L1".into(),
            contact_id: Some("C1".into())
        }
    );
    assert_eq!(e.data["score"], 72);
    // unwrapped detail: subject and tenant are not record fields
    let (e, _) = ok(
        json!({"id": "x", "detail-type": "ticket.opened", "time": "2026-03-08T09:00:00Z",
                           "detail": {"subject": "ticket/T9", "tenant": "t1", "priority": "high"}}),
    );
    assert_eq!(e.subject.record_key(), "ticket/T9");
    assert_eq!(e.tenant, "t1");
    assert_eq!(Value::Object(e.data), json!({"priority": "high"}));
    // derived subject
    let (e, _) =
        ok(json!({"id": "x", "detail-type": "ticket.opened", "time": "2026-03-08T09:00:00Z", "detail": {"id": 9}}));
    assert_eq!(e.subject.record_key(), "ticket/9");
}

#[test]
fn eventbridge_errors() {
    let base = json!({"id": "x", "detail-type": "lead.created", "time": "2026-03-08T09:00:00Z",
                      "detail": {"subject": {"type": "lead", "id": "L1"}}});
    assert!(ok(base.clone()).1 == EventFormat::EventBridge);
    assert_eq!(
        fail(with(base.clone(), "detail-type", json!(""))),
        "detail-type: must not be empty"
    );
    assert!(
        fail(with(base.clone(), "detail-type", json!("Lead Created"))).starts_with("detail-type: invalid event type")
    );
    assert_eq!(fail(without(base.clone(), "detail")), "detail: missing");
    assert_eq!(fail(without(base.clone(), "id")), "id: missing");
    assert_eq!(
        fail(with(base.clone(), "detail", json!({"subject": {"type": "lead"}}))),
        "detail.subject.id: missing"
    );
    assert_eq!(
        fail(with(base.clone(), "detail", json!({"subject": "lead/L1", "tenant": 3}))),
        "detail.tenant: expected a string, got a number"
    );
    assert!(fail(with(base, "detail", json!({"x": 1}))).starts_with("detail.subject: missing"));
}

#[test]
fn scope_value_and_round_trip() {
    let v: Value = serde_json::from_str(file("native")).unwrap();
    let (e, _) = ok(v);
    let scope = e.to_scope_value();
    assert_eq!(
        scope,
        json!({"id": "evt-001", "type": "opportunity.stage_changed", "tenant": "acme", "time": "2026-03-08T09:00:00Z",
               "subject": {"type": "opportunity", "id": "O1", "contact_id": "C1"},
               "data": {"stage": "negotiation", "amount": 12000}, "previous": {"stage": "proposal"}})
    );
    assert_eq!(ok(native()).0.to_scope_value()["previous"], Value::Null);
    // The serde form is the native envelope and round-trips.
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["time"], "2026-03-08T09:00:00Z");
    let back: Event = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, e);
    assert_eq!(ok(json).0, e);
    // The scope value deserializes back (without the contact snapshot).
    let back: Event = serde_json::from_value(scope).unwrap();
    assert_eq!(back.contact, None);
    assert_eq!(back.subject, e.subject);
    let schema = serde_json::to_value(schemars::schema_for!(Event)).unwrap();
    assert_eq!(schema["properties"]["time"]["format"], "date-time");
}

#[test]
fn type_patterns() {
    let e = ok(with(native(), "type", json!("contact.tag.added"))).0;
    assert!(e.type_matches("contact.tag.added"));
    assert!(e.type_matches("contact.*"));
    assert!(e.type_matches("contact.tag.*"));
    assert!(e.type_matches("*"));
    assert!(!e.type_matches("contact"));
    assert!(!e.type_matches("lead.*"));
    assert!(!e.type_matches("contact.tag"));
    assert!(!e.type_matches("Contact.*"));
    let e = ok(with(native(), "type", json!("contact"))).0;
    assert!(!e.type_matches("contact.*"));
}

#[test]
fn text_formats() {
    // single object
    let r = parse_events_text(file("cloudevents"));
    assert_eq!(r.len(), 1);
    assert!(r[0].is_ok());
    // array, with per-element errors
    let text = serde_json::to_string(&json!([native(), without(native(), "type"), 5])).unwrap();
    let r = parse_events_text(&text);
    assert_eq!(r.len(), 3);
    assert!(r[0].is_ok());
    assert_eq!(r[1].as_ref().unwrap_err().to_string(), "[1].type: missing");
    assert_eq!(
        r[2].as_ref().unwrap_err().to_string(),
        "[2]: expected a JSON object, got a number"
    );
    // JSON lines, all three formats, blank line skipped, numbered from 1
    let r = parse_events_text(file("mixed"));
    assert_eq!(r.len(), 6, "{r:?}");
    let ids: Vec<&str> = r
        .iter()
        .filter_map(|e| e.as_ref().ok())
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(ids, ["e1", "e2", "e3"]);
    assert_eq!(r[1].as_ref().unwrap().subject.record_key(), "lead/42");
    assert_eq!(r[3].as_ref().unwrap_err().to_string(), "line 5: type: missing");
    assert_eq!(
        r[4].as_ref().unwrap_err().to_string(),
        "line 6: time: invalid RFC 3339 timestamp \"yesterday\""
    );
    assert!(
        r[5].as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("line 7: EOF while parsing a value at column"),
        "{:?}",
        r[5]
    );
    // syntax errors
    let r = parse_events_text("{\"id\": \"a\"}\n\noops\n");
    assert_eq!(
        r[1].as_ref().unwrap_err().to_string(),
        "line 3: expected value at column 1"
    );
    let r = parse_events_text("{\n  \"id\": \"a\",\n  oops\n}");
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].as_ref().unwrap_err().to_string(),
        "line 3: key must be a string at column 3"
    );
    let r = parse_events_text("[\n {\"id\": 1},\n ]");
    assert_eq!(r.len(), 1);
    assert!(r[0].as_ref().unwrap_err().path.starts_with("line 3"), "{r:?}");
    assert!(parse_events_text("").is_empty());
    assert!(parse_events_text("  \n\n ").is_empty());
    assert_eq!(parse_events_text("\u{feff}[]").len(), 0);
}

#[test]
fn never_panics_on_arbitrary_json() {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z./:\\[\\]0-9 -]{0,12}".prop_map(Value::from),
        Just(Value::from("2026-03-08T09:00:00Z")),
        Just(Value::from("1.0")),
    ];
    let keys = prop_oneof![
        Just("id".to_string()),
        Just("type".to_string()),
        Just("time".to_string()),
        Just("subject".to_string()),
        Just("data".to_string()),
        Just("specversion".to_string()),
        Just("detail-type".to_string()),
        Just("detail".to_string()),
        Just("record".to_string()),
        Just("source".to_string()),
        "[a-z]{1,3}"
    ];
    let value = leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    proptest!(ProptestConfig::with_cases(512), |(v in value)| {
        let _ = parse_event(&v);
        let text = v.to_string();
        let _ = parse_events_text(&text);
        let _ = parse_events_text(&text[..text.len() / 2]);
    });
}

#[test]
fn many_json_lines_parse_as_each_line_alone_in_order_with_their_line_numbers() {
    // More lines than PARALLEL_LINES, so the lines are parsed in chunks on several threads.
    let mut text = String::new();
    let mut expected = Vec::new();
    for n in 0..(PARALLEL_LINES * 2 + 7) {
        let line = match n % 5 {
            0 => json!({"id": format!("e{n}"), "type": "lead.created", "time": "2026-03-02T09:00:00Z",
                "subject": {"type": "lead", "id": format!("L{n}")}, "data": {"score": n, "z": {"b": 1, "a": 2}},
                "previous": {"score": 1}, "contact": {"email": "a@example.com", "id": "C1"}})
            .to_string(),
            1 => json!({"id": format!("e{n}"), "type": "lead.created", "time": "2026-03-02T09:00:00Z",
                "subject": {"type": "lead", "id": "L1"}, "data": [1]})
            .to_string(),
            2 => json!({"specversion": "1.0", "id": format!("c{n}"), "type": "lead.created", "source": "crm",
                "time": "2026-03-02T09:00:00Z", "subject": "lead/L2", "data": {"id": "L2"}})
            .to_string(),
            3 => "{not json".to_string(),
            _ => String::new(),
        };
        if !line.trim().is_empty() {
            expected.push(match serde_json::from_str::<Value>(&line) {
                Ok(v) => parse_event(&v)
                    .map(|(e, _)| e)
                    .map_err(|e| prefix_error(&format!("line {}", n + 1), ": ", e)),
                Err(e) => Err(json_error(&e, Some(n + 1))),
            });
        }
        text.push_str(&line);
        text.push('\n');
    }
    let parsed = parse_events_text(&text);
    assert_eq!(parsed.len(), expected.len());
    assert_eq!(parsed, expected);
    assert!(parsed.iter().any(Result::is_ok) && parsed.iter().any(Result::is_err));
    assert_eq!(
        parsed[0].as_ref().map(|e| e.data["z"].to_string()),
        Ok("{\"b\":1,\"a\":2}".to_string())
    );
}

#[test]
fn an_owned_value_parses_as_a_borrowed_one() {
    for v in [
        json!({"id": "e1", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
            "subject": {"type": "lead", "id": "L1"}, "data": {"score": 1, "contact_id": "C9"}, "contact": {"id": "C1"}}),
        json!({"id": "e1", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
            "subject": {"type": "lead", "id": "L1"}, "data": {}, "previous": 3}),
        json!({"id": "e1", "type": "lead.created", "time": "2026-03-02T09:00:00Z",
            "subject": {"type": "lead", "id": "L1"}, "contact": null, "extra": 1}),
        json!({"specversion": "1.0", "id": "c1", "type": "lead.created", "source": "crm",
            "time": "2026-03-02T09:00:00Z", "subject": "lead/L2"}),
        json!([1]),
    ] {
        assert_eq!(parse_event_owned(v.clone()), parse_event(&v), "{v}");
    }
}

#[test]
fn same_record_key_is_equality_of_record_keys() {
    let subject = |record_type: &str, id: &str| Subject {
        record_type: record_type.to_string(),
        id: id.to_string(),
        contact_id: None,
    };
    let subjects = [
        subject("lead", "L1"),
        subject("lead", "L2"),
        subject("contact", "L1"),
        subject("a/b", "c"),
        subject("a", "b/c"),
        subject("", "lead/L1"),
        subject("lead", ""),
    ];
    for a in &subjects {
        for b in &subjects {
            assert_eq!(a.same_record_key(b), a.record_key() == b.record_key(), "{a:?} {b:?}");
        }
    }
}
