//! Strategies for property tests of request bodies: JSON objects whose keys are mostly
//! the fields an endpoint reads, with values of every JSON type and the edge cases
//! clients send (huge and negative numbers, numbers as strings, empty strings, NUL
//! bytes, nesting), plus bodies that are not JSON objects at all (other JSON, invalid
//! UTF-8, nothing).

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Number, Value};

use crate::error::ApiError;

/// Any JSON value, biased towards the edge cases of each type.
pub fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(-1i64),
            Just(0),
            Just(1),
            Just(1 << 53),
            Just((1 << 53) + 1),
            -5000i64..5000,
        ]
        .prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("finite", Number::from_f64)
            .prop_map(Value::Number),
        prop_oneof![
            Just(1e300),
            Just(-1e300),
            Just(0.5),
            Just(1024.0),
            Just(1e-300)
        ]
        .prop_filter_map("finite", Number::from_f64)
        .prop_map(Value::Number),
        any::<String>().prop_map(Value::String),
        prop_oneof![
            Just(String::new()),
            Just(" ".to_owned()),
            Just("\u{0}".to_owned()),
            Just("-1".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just("1024x768".to_owned()),
            Just("true".to_owned()),
            Just("https://127.0.0.1/x".to_owned()),
            "[0-9]{1,25}",
            "-?[0-9]{1,5}(\\.[0-9]{1,8})?",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request body: usually a JSON object over `fields` (and a stray unknown key now
/// and then), sometimes anything else a client might send.
pub fn object_body(fields: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        8 => prop::sample::select(fields).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    let object =
        prop::collection::btree_map(key, value(), 0..fields.len().max(1) + 1).prop_map(|m| {
            Value::Object(m.into_iter().collect::<Map<_, _>>())
                .to_string()
                .into_bytes()
        });
    prop_oneof![
        12 => object,
        1 => value().prop_map(|v| v.to_string().into_bytes()),
        1 => any::<Vec<u8>>(),
        1 => Just(Vec::new()),
        1 => Just(b"{\"prompt\": \"\xff\xfe\"}".to_vec()),
        1 => Just(b"{\"prompt\": \"a\\u0000b\"}".to_vec()),
    ]
}

/// The documented refusal of a request body: a 400 that names the parameter at fault,
/// or says the body is not JSON (`invalid_json`).
pub fn assert_named_400(e: &ApiError) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.status(), 400, "{:?}", e);
    prop_assert!(
        e.param().is_some() || e.code().as_str() == "invalid_json",
        "{:?}",
        e
    );
    Ok(())
}
