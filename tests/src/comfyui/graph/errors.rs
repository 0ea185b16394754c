//! The error bodies ComfyUI's prompt validation answers with.

use serde_json::{json, Map, Value};

use super::python::{py_repr, py_str};

pub(super) fn error(ty: &str, message: &str, details: &str, extra_info: Value) -> Value {
    json!({"type": ty, "message": message, "details": details, "extra_info": extra_info})
}

/// A 400 body: `{"error": …, "node_errors": …}`.
pub(crate) fn refusal(error: Value, node_errors: Map<String, Value>) -> Value {
    json!({"error": error, "node_errors": node_errors})
}

pub(crate) fn no_prompt() -> Value {
    refusal(
        error(
            "no_prompt",
            "No prompt provided",
            "No prompt provided",
            json!({}),
        ),
        Map::new(),
    )
}

pub(crate) fn invalid_prompt(message: &str, details: &str) -> Value {
    refusal(
        error("invalid_prompt", message, details, json!({})),
        Map::new(),
    )
}

pub(crate) fn invalid_prompt_id() -> Value {
    refusal(
        error(
            "invalid_prompt_id",
            "prompt_id must be a valid UUID",
            "prompt_id must be a UUID string in canonical lowercase hyphenated form; omit it to let the server generate one",
            json!({}),
        ),
        Map::new(),
    )
}

pub(super) fn failed_validation(node_errors: Map<String, Value>) -> Value {
    refusal(
        error(
            "prompt_outputs_failed_validation",
            "Prompt outputs failed validation",
            "",
            json!({}),
        ),
        node_errors,
    )
}

pub(super) fn not_in_list(input: &str, val: &Value, options: &[Value], config: Value) -> Value {
    let (list_info, config) = if options.len() > 20 {
        (format!("(list of length {})", options.len()), Value::Null)
    } else {
        (py_repr(&Value::Array(options.to_vec())), config)
    };
    error(
        "value_not_in_list",
        "Value not in list",
        &format!("{input}: '{}' not in {list_info}", py_str(val)),
        json!({"input_name": input, "input_config": config, "received_value": val}),
    )
}

pub(super) fn invalid_type(name: &str, ty: &str, val: &Value, spec: &Value, ex: &str) -> Value {
    error(
        "invalid_input_type",
        &format!("Failed to convert an input value to a {ty} value"),
        &format!("{name}, {}, {ex}", py_str(val)),
        json!({"input_name": name, "input_config": spec, "received_value": val,
               "exception_message": ex}),
    )
}
