//! End-to-end: the edge ↔ origin signing of `docs/architecture.md` on the real processes. Forged,
//! stale, tampered and replayed requests are refused in both directions and change
//! nothing.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use kiln_shared::ids::{Filename, JobId};
use kiln_shared::origin::{events_path, output_path, DISPATCH_PATH};
use kiln_shared::signing::{Keyring, SKEW_SECS_MAX};
use serde_json::json;

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends `body` to `url` with signature headers made by `ring` at `ts` over `signed_body`.
fn send(
    method: reqwest::Method,
    url: &str,
    path: &str,
    ring: &Keyring,
    ts: i64,
    signed_body: &[u8],
    body: &[u8],
) -> Reply {
    let h = ring.sign(ts, method.as_str(), path, signed_body);
    let mut req = client()
        .request(method, url)
        .body(body.to_vec())
        .header("content-type", "application/json");
    for (k, v) in h.pairs() {
        req = req.header(k, v);
    }
    reply(req.send().unwrap())
}

#[test]
fn the_edge_refuses_forged_stale_and_tampered_origin_events() {
    let key = new_account();
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "signed", "size": "512x512", "steps": 8}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let job_id = JobId::parse(r.body["job_id"].as_str().unwrap()).unwrap();

    let real = Keyring::parse(&env().origin_to_edge_keys).unwrap();
    let forged = Keyring::parse("k1:ffffffffffffffffffffffffffffffffffffffff").unwrap();
    let path = events_path(&job_id);
    let url = format!("{}{path}", env().edge);
    let event = json!({"origin_id": "origin-1", "attempt": 1, "seq": 99,
                       "event": {"type": "failed", "code": "generation_failed", "message": "forged"}})
    .to_string();
    let tampered = event.replace("forged", "tampered");
    let now = now_secs();

    let unsigned = reply(client().post(&url).body(event.clone()).send().unwrap());
    assert_eq!(unsigned.status, 401, "unsigned: {}", unsigned.body);
    let cases = [
        (
            "forged key",
            &forged,
            now,
            event.as_bytes(),
            event.as_bytes(),
        ),
        (
            "stale",
            &real,
            now - SKEW_SECS_MAX - 5,
            event.as_bytes(),
            event.as_bytes(),
        ),
        (
            "from the future",
            &real,
            now + SKEW_SECS_MAX + 5,
            event.as_bytes(),
            event.as_bytes(),
        ),
        (
            "tampered body",
            &real,
            now,
            event.as_bytes(),
            tampered.as_bytes(),
        ),
    ];
    for (what, ring, ts, signed, sent) in cases {
        let r = send(reqwest::Method::POST, &url, &path, ring, ts, signed, sent);
        assert_eq!(
            (r.status, error_of(&r).0.as_str()),
            (401, "invalid_signature"),
            "{what}: {}",
            r.body
        );
    }
    // A correctly signed event is accepted by the check (and ignored: the job has ended).
    let ok = send(
        reqwest::Method::POST,
        &url,
        &path,
        &real,
        now,
        event.as_bytes(),
        event.as_bytes(),
    );
    assert_eq!(
        (ok.status, ok.body["applied"].as_bool()),
        (200, Some(false)),
        "{}",
        ok.body
    );

    let job = get(&format!("/v1/jobs/{job_id}"), &key).body;
    assert_eq!(job["status"], "completed", "{job}");

    // A forged upload cannot overwrite or add an output.
    let file = Filename::output(&job_id, 1, "png");
    let upload_path = output_path(&job_id, &file);
    let upload_url = format!("{}{upload_path}", env().edge);
    let r = send(
        reqwest::Method::PUT,
        &upload_url,
        &upload_path,
        &forged,
        now,
        b"evil",
        b"evil",
    );
    assert_eq!(r.status, 401);
    assert_eq!(download(&format!("{}/outputs/{file}", env().edge)).0, 404);
}

#[test]
fn the_origin_refuses_forged_stale_and_replayed_dispatches() {
    let real = Keyring::parse(&env().edge_to_origin_keys).unwrap();
    let forged = Keyring::parse("k1:ffffffffffffffffffffffffffffffffffffffff").unwrap();
    let url = format!("{}{DISPATCH_PATH}", env().origin);
    let job_id = JobId::generate(1, [7; 10]);
    let body = json!({
        "job_id": job_id, "attempt": 1, "model_id": "flux2-dev", "workflow": "flux2-dev:txt2img",
        "params": {"job_type": "image", "prompt": "x", "width": 512, "height": 512, "steps": 8, "cfg": 4.0, "seed": 1},
        "input_files": [], "test_mode": true
    })
    .to_string();
    let now = now_secs();
    let cases = [
        ("forged key", &forged, now),
        ("stale", &real, now - SKEW_SECS_MAX - 5),
    ];
    for (what, ring, ts) in cases {
        let r = send(
            reqwest::Method::POST,
            &url,
            DISPATCH_PATH,
            ring,
            ts,
            body.as_bytes(),
            body.as_bytes(),
        );
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert!(r.body["error"]["code"].is_string(), "{what}: {}", r.body);
    }
    let h = real.sign(now, "POST", DISPATCH_PATH, body.as_bytes());
    let dispatch = || {
        let mut req = client().post(&url).body(body.clone());
        for (k, v) in h.pairs() {
            req = req.header(k, v);
        }
        reply(req.send().unwrap())
    };
    assert_eq!(dispatch().status, 202, "a valid dispatch is accepted");
    let replay = dispatch();
    assert_eq!(
        replay.status, 409,
        "the same signed dispatch again is a replay: {}",
        replay.body
    );
}

#[test]
fn origins_register_by_signed_heartbeat_only() {
    use kiln_shared::origin::HEARTBEAT_PATH;
    let real = Keyring::parse(&env().origin_to_edge_keys).unwrap();
    let forged = Keyring::parse("k1:ffffffffffffffffffffffffffffffffffffffff").unwrap();
    let url = format!("{}{HEARTBEAT_PATH}", env().edge);
    // An origin no configuration names; it serves no catalog model, so the shared
    // stack never hands it a job.
    let beat = |id: &str| {
        json!({"origin_id": id, "url": "http://127.0.0.1:9", "engine": "sim", "simulated": true,
               "slots": 2, "busy": 0, "models": ["none"], "resident_models": [], "running": []})
        .to_string()
    };
    let listed = |id: &str| -> bool {
        let h = reply(
            client()
                .get(format!("{}/health", env().edge))
                .send()
                .unwrap(),
        );
        h.body["origins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == id)
    };
    let body = beat("origin-forged");
    let r = send(
        reqwest::Method::POST,
        &url,
        HEARTBEAT_PATH,
        &forged,
        now_secs(),
        body.as_bytes(),
        body.as_bytes(),
    );
    assert_eq!(
        (r.status, error_of(&r).0.as_str()),
        (401, "invalid_signature")
    );
    let unsigned = reply(client().post(&url).body(body.clone()).send().unwrap());
    assert_eq!(unsigned.status, 401);
    assert!(!listed("origin-forged"));

    let body = beat("origin-by-heartbeat");
    let r = send(
        reqwest::Method::POST,
        &url,
        HEARTBEAT_PATH,
        &real,
        now_secs(),
        body.as_bytes(),
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let h = reply(
        client()
            .get(format!("{}/health", env().edge))
            .send()
            .unwrap(),
    );
    let o = h.body["origins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "origin-by-heartbeat")
        .cloned()
        .unwrap_or_else(|| panic!("not registered: {}", h.body));
    assert_eq!(
        (o["status"].as_str(), o["slots"].as_u64()),
        (Some("up"), Some(2)),
        "{o}"
    );
}
