//! `GET /prompt` and `POST /prompt`: validation, the scripted answers, and queueing.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::files::annotated_file;
use super::{info_now, json_resp, ok};
use crate::comfyui::graph;
use crate::comfyui::ids::{is_canonical_uuid, now_ms, uuid4};
use crate::comfyui::state::{push_bounded, Job, Shared};
use crate::comfyui::{PromptTiming, Script, MAX_LOG, MAX_PENDING};

pub(super) async fn prompt_info(State(sh): State<Arc<Shared>>) -> Response {
    let n = sh.lock().queue_remaining();
    ok(json!({"exec_info": {"queue_remaining": n}}))
}

pub(super) async fn post_prompt(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    // The whole body has been read: the prompt has arrived.
    let received = Instant::now();
    let req = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return json_resp(
                StatusCode::BAD_REQUEST,
                &graph::invalid_prompt("Invalid JSON", "The body must be a JSON object"),
            )
        }
    };
    let script = {
        let mut inner = sh.lock();
        push_bounded(&mut inner.prompt_log, Value::Object(req.clone()), MAX_LOG);
        inner.scripts.pop_front().unwrap_or(Script::Clean)
    };
    let bad = |v: Value| json_resp(StatusCode::BAD_REQUEST, &v);
    let Some(prompt) = req.get("prompt") else {
        return bad(graph::no_prompt());
    };
    let Some(prompt) = prompt.as_object() else {
        return bad(graph::invalid_prompt(
            "The prompt must be an object of nodes",
            "",
        ));
    };
    let prompt_id = match req.get("prompt_id") {
        None => uuid4(),
        Some(Value::String(s)) if is_canonical_uuid(s) => s.clone(),
        Some(_) => return bad(graph::invalid_prompt_id()),
    };
    let partial: Option<Vec<String>> = req
        .get("partial_execution_targets")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        });

    let info = info_now(&sh);
    let validated = {
        let inner = sh.lock();
        let exists = |name: &str| {
            annotated_file(name, "input").is_some_and(|key| inner.files.contains_key(&key))
        };
        graph::validate(&info, prompt, partial.as_deref(), &exists)
    };
    let validated = match validated {
        Ok(v) => v,
        Err(body) => return bad(body),
    };
    let node_errors = match script {
        Script::Invalid => {
            let errs = graph::scripted_node_errors(&info, prompt, &validated.outputs);
            return bad(graph::refusal(
                json!({"type": "prompt_outputs_failed_validation",
                       "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}),
                errs,
            ));
        }
        Script::NodeErrors => graph::scripted_node_errors(&info, prompt, &validated.outputs),
        _ => validated.node_errors,
    };

    let mut inner = sh.lock();
    if inner.pending.len() >= MAX_PENDING {
        return json_resp(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": {"type": "queue_full", "message": "The fake server's queue is full",
                              "details": "", "extra_info": {}}, "node_errors": {}}),
        );
    }
    let number = match req.get("number") {
        Some(n) => {
            let x = match n {
                Value::String(s) => s.trim().parse::<f64>().ok(),
                other => other.as_f64(),
            };
            match x {
                Some(x) => json!(x),
                None => {
                    return bad(graph::invalid_prompt("number must be a number", ""));
                }
            }
        }
        None => {
            let n = inner.next_number as i64;
            inner.next_number += 1;
            if req.get("front").and_then(Value::as_bool) == Some(true) {
                json!(-n)
            } else {
                json!(n)
            }
        }
    };
    let create_time = now_ms();
    let mut extra_data = req
        .get("extra_data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(c) = req.get("client_id") {
        extra_data.insert("client_id".into(), c.clone());
    }
    extra_data.insert("create_time".into(), json!(create_time));
    let job = Job {
        id: prompt_id.clone(),
        number: number.clone(),
        graph: prompt.clone(),
        client_id: req
            .get("client_id")
            .and_then(Value::as_str)
            .map(String::from),
        extra_data,
        outputs: validated.outputs,
        script,
        create_time,
    };
    push_bounded(
        &mut inner.timings,
        PromptTiming {
            prompt_id: prompt_id.clone(),
            received,
            view_served: None,
        },
        MAX_LOG,
    );
    inner.pending.push_back(Arc::new(job));
    inner.broadcast_status();
    drop(inner);
    sh.wake.notify_one();
    ok(json!({"prompt_id": prompt_id, "number": number, "node_errors": node_errors}))
}
