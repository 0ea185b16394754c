//! The document against the code: references resolve, every request example and
//! documented field goes through the real parser, and what the code serializes
//! (jobs, the catalog, errors, webhook bodies) validates against the schemas.

use serde_json::{json, Value};

use super::*;
use crate::{ApiError, ErrorCode};

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
    }
}

#[test]
fn operation_ids_are_unique() {
    let mut seen = std::collections::HashSet::new();
    for op in paths::operations() {
        assert!(
            seen.insert(op.operation_id().to_owned()),
            "{}",
            op.operation_id()
        );
    }
}

#[test]
fn the_written_form_is_stable() {
    let a = document_json();
    assert_eq!(a, document_json());
    assert!(a.ends_with("}\n"));
    let again: Value = serde_json::from_str(&a).unwrap();
    assert_eq!(again, document());
}

#[test]
fn keyed_operations_share_the_keyed_rules() {
    let doc = document();
    for op in paths::operations() {
        let o = &doc["paths"][op.path][op.method.as_str()];
        if !op.auth.keyed() {
            continue;
        }
        for status in ["401", "429"] {
            assert!(
                o["responses"].get(status).is_some(),
                "{} lacks {status}",
                op.path
            );
        }
        for (status, resp) in o["responses"].as_object().unwrap() {
            if status == "401" || resp.get("$ref").is_some() {
                continue;
            }
            for h in op::RATE_LIMIT_HEADERS {
                assert!(
                    resp["headers"].get(h).is_some(),
                    "{} {status} lacks {h}",
                    op.path
                );
            }
        }
    }
}

// --- Request bodies: the document's examples and fields go through the parsers. ---

type Parser = fn(&[u8]) -> Result<(), ApiError>;

fn parse_image(b: &[u8]) -> Result<(), ApiError> {
    crate::images::ImageRequest::parse(b).map(drop)
}

fn parse_video(b: &[u8]) -> Result<(), ApiError> {
    crate::video::VideoRequest::parse(b).map(drop)
}

fn parse_bfl(b: &[u8]) -> Result<(), ApiError> {
    let translated = crate::bfl::translate(b, crate::images::DEFAULT_MODEL)?;
    parse_image(&translated)
}

fn parse_key(b: &[u8]) -> Result<(), ApiError> {
    crate::keys::KeyCreate::parse(b).map(drop)
}

fn parse_account(b: &[u8]) -> Result<(), ApiError> {
    crate::accounts::parse_registration(b).map(drop)
}

fn parse_session(b: &[u8]) -> Result<(), ApiError> {
    crate::dashboard::parse_sign_in(b).map(drop)
}

fn parse_adjustment(b: &[u8]) -> Result<(), ApiError> {
    crate::accounts::Adjustment::parse(b).map(drop)
}

/// Each hand-parsed body: its schema and its parser.
const PARSED: &[(&str, Parser)] = &[
    ("ImageGenerationRequest", parse_image),
    ("VideoGenerationRequest", parse_video),
    ("BflRequest", parse_bfl),
    ("KeyCreateRequest", parse_key),
    ("AccountRequest", parse_account),
    ("SessionRequest", parse_session),
    ("AdminCreditRequest", parse_adjustment),
];

fn schema(name: &str) -> Value {
    doc()["components"]["schemas"][name].clone()
}

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[test]
fn request_examples_parse_with_the_parsers() {
    for (name, parse) in PARSED {
        let s = schema(name);
        let example = &s["example"];
        assert!(example.is_object(), "{name} has no example");
        if let Err(e) = parse(&body(example)) {
            panic!("{name}'s example {example} is refused: {e}");
        }
    }
}

#[test]
fn operation_examples_parse_with_the_parsers() {
    let doc = document();
    let by_schema: std::collections::HashMap<&str, Parser> = PARSED.iter().copied().collect();
    let mut checked = 0;
    for op in paths::operations() {
        let media = &doc["paths"][op.path][op.method.as_str()]["requestBody"]["content"]
            ["application/json"];
        let Some(name) = media["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
        else {
            continue;
        };
        let (Some(parse), Some(example)) = (by_schema.get(name), media.get("example")) else {
            continue;
        };
        if let Err(e) = parse(&body(example)) {
            panic!("{}'s example {example} is refused: {e}", op.path);
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} operation examples checked");
}

/// A value the schema allows, when it says one.
fn sample(prop: &Value) -> Option<Value> {
    if let Some(d) = prop.get("default") {
        return Some(d.clone());
    }
    if let Some(e) = prop["examples"].as_array().and_then(|e| e.first()) {
        return Some(e.clone());
    }
    prop["enum"]
        .as_array()
        .and_then(|e| e.iter().find(|v| !v.is_null()).cloned())
}

/// A field the document lists but the parser does not know would be refused as
/// `unknown_parameter`; one the parser knows but the document does not is refused by
/// `additionalProperties: false` in the document.
#[test]
fn every_documented_field_is_one_the_parser_reads() {
    for (name, parse) in PARSED {
        let s = schema(name);
        let example = s["example"].as_object().unwrap().clone();
        let mut tried = 0;
        for (field, prop) in s["properties"].as_object().unwrap() {
            let Some(value) = sample(prop) else { continue };
            let mut b = example.clone();
            b.insert(field.clone(), value.clone());
            if let Err(e) = parse(&body(&Value::Object(b))) {
                assert!(
                    e.code() != ErrorCode::UnknownParameter,
                    "{name}.{field} = {value}: {e}"
                );
            }
            tried += 1;
        }
        let optional = s["properties"].as_object().unwrap().len() > example.len();
        assert!(
            tried > 0 || !optional,
            "{name}: no field has a sample value"
        );
        if s["additionalProperties"] == false {
            let mut b = example.clone();
            b.insert("not_a_field".into(), json!(1));
            let e = parse(&body(&Value::Object(b))).unwrap_err();
            assert_eq!(e.code(), ErrorCode::UnknownParameter, "{name}");
        }
    }
}

#[test]
fn the_documented_bounds_are_the_parsers() {
    // One step past each documented bound of the image request is refused, the bound
    // itself accepted: the numbers in the document are the parser's.
    let s = schema("ImageGenerationRequest");
    for field in ["width", "height", "steps", "cfg", "n", "seed"] {
        let p = &s["properties"][field];
        for (bound, step) in [("minimum", -1), ("maximum", 1)] {
            let b = &p[bound];
            let at = json!({"prompt": "p", field: b});
            assert!(parse_image(&body(&at)).is_ok(), "{field} = {b}");
            let past = match b.as_i64() {
                Some(i) => json!(i + step * p["multipleOf"].as_i64().unwrap_or(1)),
                None => json!(b.as_f64().unwrap() + step as f64 * 0.5),
            };
            let out = json!({"prompt": "p", field: past});
            assert!(parse_image(&body(&out)).is_err(), "{field} = {past}");
        }
    }
    let v = schema("VideoGenerationRequest");
    for frames in [
        &v["properties"]["num_frames"]["minimum"],
        &v["properties"]["num_frames"]["maximum"],
    ] {
        assert!(parse_video(&body(&json!({"prompt": "p", "num_frames": frames}))).is_ok());
    }
    let widths = v["properties"]["width"]["enum"].as_array().unwrap();
    let heights = v["properties"]["height"]["enum"].as_array().unwrap();
    for (w, h) in widths.iter().zip(heights) {
        assert!(parse_video(&body(&json!({"prompt": "p", "width": w, "height": h}))).is_ok());
    }
}

// --- What the code serializes validates against the document's schemas. ---

/// A small JSON Schema check: the keywords the document uses for response bodies
/// (`$ref`, `type`, `enum`, `const`, `required`, `properties`, `additionalProperties`,
/// `items`, `oneOf`, `anyOf`, `allOf`, `minimum`, `maximum`). Returns the first fault.
fn validate(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let target = doc.pointer(r.strip_prefix('#').unwrap()).unwrap();
        return validate(doc, target, v, at);
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {v} is not {t}"));
        }
    }
    if let Some(e) = schema["enum"].as_array() {
        if !e.contains(v) {
            return Err(format!("{at}: {v} not in {schema}"));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            return Err(format!("{at}: {v} is not {c}"));
        }
    }
    if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), v.as_f64()) {
        if n < min {
            return Err(format!("{at}: {n} < {min}"));
        }
    }
    if let (Some(max), Some(n)) = (schema["maximum"].as_f64(), v.as_f64()) {
        if n > max {
            return Err(format!("{at}: {n} > {max}"));
        }
    }
    if let Some(not) = schema.get("not") {
        if validate(doc, not, v, at).is_ok() {
            return Err(format!("{at}: {v} matches `not` {not}"));
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            validate(doc, s, v, at)?;
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(any) = schema[key].as_array() {
            let passing = any
                .iter()
                .filter(|s| validate(doc, s, v, at).is_ok())
                .count();
            if passing == 0 || (key == "oneOf" && passing > 1) {
                return Err(format!("{at}: {passing} of {key} match {v}"));
            }
        }
    }
    if let Value::Object(m) = v {
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            if !m.contains_key(r) {
                return Err(format!("{at}: missing {r}"));
            }
        }
        let props = schema["properties"].as_object();
        for (k, x) in m {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(doc, s, x, &format!("{at}.{k}"))?,
                None if schema["additionalProperties"] == false
                    || (props.is_some()
                        && (schema["type"] == "object"
                            || schema["type"]
                                .as_array()
                                .is_some_and(|t| t.contains(&json!("object"))))
                        && schema.get("additionalProperties").is_none()) =>
                {
                    // A key the document does not list: the document is incomplete.
                    return Err(format!("{at}: {k} is not documented"));
                }
                None => {}
            }
        }
    }
    if let (Value::String(text), Some(s)) = (v, schema.get("contentSchema")) {
        let parsed: Value =
            serde_json::from_str(text).map_err(|e| format!("{at}: not JSON: {e}"))?;
        validate(doc, s, &parsed, at)?;
    }
    if let (Value::Array(items), Some(s)) = (v, schema.get("items")) {
        for (i, x) in items.iter().enumerate() {
            validate(doc, s, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// The document, built once for the many checks below.
fn doc() -> &'static Value {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOC.get_or_init(document)
}

fn check(name: &str, v: &Value) {
    let doc = doc();
    let s = json!({"$ref": format!("#/components/schemas/{name}")});
    if let Err(e) = validate(doc, &s, v, name) {
        panic!("{e}\n{}", serde_json::to_string_pretty(v).unwrap());
    }
}

use super::examples::job_views;

#[test]
fn every_schema_example_matches_its_schema() {
    let mut checked = 0;
    for (name, schema) in doc()["components"]["schemas"].as_object().unwrap() {
        if let Some(example) = schema.get("example") {
            check(name, example);
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} examples");
}

#[test]
fn job_views_match_the_job_schema() {
    for v in job_views() {
        check("Job", &v);
    }
}

#[test]
fn stream_events_match_the_event_schema() {
    // The edge's frames: `event: <job.status>` with `data: <job.to_view()>`, and pings.
    for v in job_views() {
        let item = json!({"event": v["status"], "data": v.to_string()});
        check("JobStreamEvent", &item);
    }
    let ts = crate::time::rfc3339(1_775_219_715_000);
    let ping = json!({"event": "ping", "data": json!({"ts": ts}).to_string()});
    check("JobStreamEvent", &ping);
    let wrong = json!({"event": "pong", "data": "{}"});
    assert!(validate(doc(), &schema("JobStreamEvent"), &wrong, "").is_err());
}

#[test]
fn webhook_bodies_match_the_payload_schema() {
    for v in job_views() {
        for e in crate::webhooks::EventType::ALL {
            let b = crate::webhooks::body(e, Some("order-42"), &v);
            check("WebhookPayload", &serde_json::from_str(&b).unwrap());
        }
    }
}

#[test]
fn the_catalog_matches_the_model_list_schema() {
    check("ModelList", &crate::catalog::models(|m| m == "flux2-dev"));
}

#[test]
fn every_error_matches_the_error_schema() {
    for &code in ErrorCode::ALL {
        for status in [
            400, 401, 402, 403, 404, 409, 410, 413, 415, 416, 429, 500, 503, 504,
        ] {
            let e = ApiError::new(status, code, "m");
            check("Error", &e.to_json());
            check("Error", &e.with_param("p").to_json());
        }
    }
}

#[test]
fn every_answered_code_is_declared() {
    // Every code an operation lists is one of `ErrorCode`'s (they are built from it),
    // and every code the public API can answer appears in some operation.
    let doc = document();
    let text = doc["paths"].to_string() + &doc["components"]["responses"].to_string();
    let internal = [
        ErrorCode::DuplicateDispatch,
        ErrorCode::AccountExists,
        ErrorCode::RequestTimeout,
        ErrorCode::OriginLost,
        ErrorCode::Cancelled,
        ErrorCode::UnknownRoute,
        ErrorCode::MethodNotAllowed,
    ];
    let missing: Vec<&str> = ErrorCode::ALL
        .iter()
        .filter(|c| !internal.contains(c))
        .filter(|c| !text.contains(&format!("\"{}\"", c.as_str())))
        .map(|c| c.as_str())
        .collect();
    assert!(missing.is_empty(), "no operation answers {missing:?}");
}

#[test]
fn the_catalog_parameters_agree_with_the_request_schemas() {
    // `GET /v1/models` states each model's parameters too; both come from the parsers'
    // constants, and must say the same bounds, choices and defaults.
    let catalog = crate::catalog::models(|_| true);
    for model in catalog["data"].as_array().unwrap() {
        let request = match model["kind"].as_str() {
            Some("image") => schema("ImageGenerationRequest"),
            Some("video") => schema("VideoGenerationRequest"),
            other => panic!("kind {other:?}"),
        };
        for (field, p) in model["parameters"]["properties"].as_object().unwrap() {
            let documented = &request["properties"][field];
            assert!(
                documented.is_object(),
                "{field} is not in the request schema"
            );
            for key in [
                "minimum",
                "maximum",
                "multipleOf",
                "default",
                "enum",
                "maxLength",
                "maxItems",
            ] {
                let Some(v) = p.get(key) else { continue };
                // An optional field's enum also holds `""`/`null` (absent); a field
                // documented by the list of its values has that list's bounds.
                let values: Option<Vec<&Value>> = documented.get("enum").map(|e| {
                    e.as_array()
                        .unwrap()
                        .iter()
                        .filter(|v| !v.is_null() && **v != json!(""))
                        .collect()
                });
                let found = match (key, &values) {
                    ("enum", Some(values)) => Some(json!(values)),
                    ("minimum", Some(values)) if documented.get(key).is_none() => {
                        values.first().map(|v| (*v).clone())
                    }
                    ("maximum", Some(values)) if documented.get(key).is_none() => {
                        values.last().map(|v| (*v).clone())
                    }
                    _ => documented.get(key).cloned(),
                };
                assert_eq!(Some(v), found.as_ref(), "{} {field}.{key}", model["id"]);
            }
        }
    }
}

/// The document's patterns say what the parsers take: over arbitrary strings (with the
/// controls, Unicode spaces and digits the patterns single out), a value matches its
/// field's pattern (and length bounds) exactly when the parser accepts it.
mod patterns {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;

    /// A field's pattern and length bounds, read from the document.
    struct Rule {
        pattern: Regex,
        min: usize,
        max: usize,
    }

    impl Rule {
        fn of(field: &Value) -> Rule {
            let pattern = field["pattern"].as_str().expect("a pattern");
            Rule {
                pattern: Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}")),
                min: field["minLength"].as_u64().unwrap_or(0) as usize,
                max: field["maxLength"].as_u64().unwrap_or(u64::MAX) as usize,
            }
        }

        fn admits(&self, s: &str) -> bool {
            let n = s.chars().count();
            (self.min..=self.max).contains(&n) && self.pattern.is_match(s)
        }
    }

    fn text() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            '\0', '\t', '\n', '\r', '\u{0b}', '\u{1f}', ' ', '\u{7f}', '\u{85}', '\u{9f}',
            '\u{a0}', '\u{2028}', '\u{3000}', '\u{feff}', 'x', 'X', 'u', '_', '0', '1', '5', '6',
            '7', '8', '9', '2', '4', 'a', 'é',
        ]);
        let piece = prop_oneof![
            3 => special.prop_map(|c| c.to_string()),
            1 => any::<char>().prop_map(|c| c.to_string()),
            2 => prop::sample::select(vec!["u_", "512", "1024", "768", "2048", "auto", "x", " "])
                .prop_map(str::to_owned),
        ];
        prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
    }

    fn image_request(field: &str, value: &str) -> bool {
        let mut body = json!({"prompt": "x"});
        body[field] = json!(value);
        crate::images::ImageRequest::parse(body.to_string().as_bytes()).is_ok()
    }

    proptest! {
        #[test]
        fn cursor(s in text()) {
            let usage = &doc()["paths"]["/v1/usage"]["get"]["parameters"];
            let cursor = usage.as_array().unwrap().iter().find(|p| p["name"] == "cursor").unwrap();
            let rule = Rule::of(&cursor["schema"]);
            let parsed = crate::query::UsagePage::parse(None, Some(&s)).is_ok();
            prop_assert_eq!(rule.admits(&s), parsed, "{:?}", s);
        }

        #[test]
        fn prompt(s in text()) {
            let rule = Rule::of(&schema("ImageGenerationRequest")["properties"]["prompt"]);
            prop_assert_eq!(rule.admits(&s), image_request("prompt", &s), "{:?}", s);
        }

        #[test]
        fn size(s in text()) {
            let rule = Rule::of(&schema("ImageGenerationRequest")["properties"]["size"]);
            prop_assert_eq!(rule.admits(&s), image_request("size", &s), "{:?}", s);
        }

        #[test]
        fn label(s in text()) {
            let rule = Rule::of(&schema("KeyCreateRequest")["properties"]["label"]);
            let body = json!({"label": s}).to_string();
            let parsed = crate::keys::KeyCreate::parse(body.as_bytes()).is_ok();
            prop_assert_eq!(rule.admits(&s), parsed, "{:?}", s);
        }
    }
}
