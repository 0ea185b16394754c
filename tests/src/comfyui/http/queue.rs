//! The queue and what became of each prompt: `/history`, `/queue`, `/interrupt` and
//! `/api/jobs`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::{empty, json_resp, ok, raw_json};
use crate::comfyui::state::{push_bounded, Dequeued, Inner, Job, Shared};
use crate::comfyui::MAX_LOG;

/// An object whose keys keep the history's order (serde_json's map would sort them).
fn ordered_object<'a>(entries: impl Iterator<Item = (&'a String, &'a Value)>) -> String {
    let parts: Vec<String> = entries
        .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v))
        .collect();
    format!("{{{}}}", parts.join(","))
}

pub(super) async fn history(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let inner = sh.lock();
    let len = inner.history.len() as i64;
    let max_items = q.get("max_items").and_then(|s| s.parse::<i64>().ok());
    let mut offset = q
        .get("offset")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(-1);
    if offset < 0 {
        offset = match max_items {
            Some(m) => len - m,
            None => 0,
        };
    }
    let take = max_items.map_or(usize::MAX, |m| m.max(0) as usize);
    let body = ordered_object(
        inner
            .history
            .iter()
            .skip(offset.max(0) as usize)
            .take(take)
            .map(|(k, v)| (k, v)),
    );
    raw_json(StatusCode::OK, body)
}

pub(super) async fn history_one(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let inner = sh.lock();
    match inner.history.iter().find(|(k, _)| *k == id) {
        Some((k, v)) => ok(json!({ k.clone(): v })),
        None => ok(json!({})),
    }
}

pub(super) async fn history_post(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = sh.lock();
    if req.get("clear").and_then(Value::as_bool) == Some(true) {
        inner.history.clear();
    }
    if let Some(ids) = req.get("delete").and_then(Value::as_array) {
        let ids: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
        inner.history.retain(|(k, _)| !ids.contains(&k.as_str()));
    }
    empty(StatusCode::OK)
}

pub(super) async fn interrupt(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let target = req
        .get("prompt_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from);
    let mut inner = sh.lock();
    let running = inner
        .running
        .as_ref()
        .map(|r| (r.job.id.clone(), r.ctl.clone()));
    match (target, running) {
        (Some(id), running) => {
            push_bounded(&mut inner.cancel_log, id.clone(), MAX_LOG);
            if let Some((_, ctl)) = running.filter(|(r, _)| *r == id) {
                ctl.interrupt();
            }
        }
        (None, Some((id, ctl))) => {
            push_bounded(&mut inner.cancel_log, id, MAX_LOG);
            ctl.interrupt();
        }
        (None, None) => {}
    }
    empty(StatusCode::OK)
}

/// Removes pending prompts matching `pred`; true when any was removed.
fn dequeue(inner: &mut Inner, pred: impl Fn(&Job) -> bool) -> bool {
    let (gone, kept): (Vec<_>, Vec<_>) = inner.pending.drain(..).partition(|j| pred(j));
    inner.pending = kept.into();
    for j in &gone {
        push_bounded(
            &mut inner.dequeued,
            Dequeued {
                id: j.id.clone(),
                number: j.number.clone(),
                create_time: j.create_time,
            },
            MAX_LOG,
        );
    }
    if !gone.is_empty() {
        inner.broadcast_status();
    }
    !gone.is_empty()
}

pub(super) async fn queue(State(sh): State<Arc<Shared>>) -> Response {
    let inner = sh.lock();
    let running: Vec<Value> = inner.running.iter().map(|r| r.job.queue_tuple()).collect();
    let pending: Vec<Value> = inner.pending.iter().map(|j| j.queue_tuple()).collect();
    ok(json!({"queue_running": running, "queue_pending": pending}))
}

pub(super) async fn queue_post(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = sh.lock();
    if req.get("clear").and_then(Value::as_bool) == Some(true) {
        dequeue(&mut inner, |_| true);
    }
    if let Some(ids) = req.get("delete").and_then(Value::as_array) {
        let ids: Vec<String> = ids
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        dequeue(&mut inner, |j| ids.contains(&j.id));
    }
    empty(StatusCode::OK)
}

/// A job as `/api/jobs` shows it.
fn job_view(inner: &Inner, id: &str, full: bool) -> Option<Value> {
    let base = |job: &Job, status: &str| {
        json!({"id": job.id, "status": status, "priority": job.number,
               "create_time": job.create_time, "outputs_count": 0})
    };
    if let Some(r) = inner.running.as_ref().filter(|r| r.job.id == id) {
        let mut v = base(&r.job, "in_progress");
        v["execution_start_time"] = json!(r.start_time);
        if full {
            v["workflow"] = json!({"prompt": r.job.graph, "extra_data": r.job.extra_data});
        }
        return Some(v);
    }
    if let Some(j) = inner.pending.iter().find(|j| j.id == id) {
        let mut v = base(j, "pending");
        if full {
            v["workflow"] = json!({"prompt": j.graph, "extra_data": j.extra_data});
        }
        return Some(v);
    }
    if let Some((_, h)) = inner.history.iter().find(|(k, _)| k == id) {
        let status = &h["status"];
        let messages = status["messages"].as_array().cloned().unwrap_or_default();
        let last = messages.last().cloned().unwrap_or(Value::Null);
        let state = match (status["status_str"].as_str(), last[0].as_str()) {
            (Some("success"), _) => "completed",
            (_, Some("execution_interrupted")) => "cancelled",
            _ => "failed",
        };
        let count: usize = h["outputs"]
            .as_object()
            .map(|o| {
                o.values()
                    .map(|v| v["images"].as_array().map_or(0, Vec::len))
                    .sum()
            })
            .unwrap_or(0);
        let mut v = json!({"id": id, "status": state, "priority": h["prompt"][0],
            "create_time": h["prompt"][3]["create_time"],
            "execution_start_time": messages.first().map(|m| m[1]["timestamp"].clone()),
            "execution_end_time": last[1]["timestamp"], "outputs_count": count});
        if state == "failed" {
            v["execution_error"] = last[1].clone();
        }
        if full {
            v["outputs"] = h["outputs"].clone();
            v["execution_status"] = status.clone();
            v["workflow"] = json!({"prompt": h["prompt"][2], "extra_data": h["prompt"][3]});
        }
        return Some(v);
    }
    inner.dequeued.iter().find(|d| d.id == id).map(|d| {
        json!({"id": d.id, "status": "cancelled", "priority": d.number,
               "create_time": d.create_time, "outputs_count": 0})
    })
}

pub(super) async fn jobs(State(sh): State<Arc<Shared>>) -> Response {
    let inner = sh.lock();
    let mut ids: Vec<String> = inner.pending.iter().map(|j| j.id.clone()).collect();
    ids.extend(inner.running.iter().map(|r| r.job.id.clone()));
    ids.extend(inner.history.iter().map(|(k, _)| k.clone()));
    ids.extend(inner.dequeued.iter().map(|d| d.id.clone()));
    let mut all: Vec<Value> = ids
        .iter()
        .filter_map(|id| job_view(&inner, id, false))
        .collect();
    all.sort_by_key(|v| std::cmp::Reverse(v["create_time"].as_u64().unwrap_or(0)));
    all.dedup_by(|a, b| a["id"] == b["id"]);
    let total = all.len();
    ok(
        json!({"jobs": all, "pagination": {"offset": 0, "limit": null, "total": total, "has_more": false}}),
    )
}

pub(super) async fn job(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let inner = sh.lock();
    match job_view(&inner, &id, true) {
        Some(v) => ok(v),
        None => json_resp(StatusCode::NOT_FOUND, &json!({"error": "Job not found"})),
    }
}

pub(super) async fn cancel_job(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut inner = sh.lock();
    push_bounded(&mut inner.cancel_log, id.clone(), MAX_LOG);
    let cancelled = match inner.running.as_ref().filter(|r| r.job.id == id) {
        Some(r) => {
            r.ctl.interrupt();
            true
        }
        None => dequeue(&mut inner, |j| j.id == id),
    };
    ok(json!({"cancelled": cancelled}))
}
