//! End-to-end tests of webhook delivery (`replyUrl` / `replyRef`) against the real
//! stack, with a local receiver standing in for the customer's endpoint (see
//! `kiln_tests::receiver`). The test stack retries in hundreds of milliseconds instead
//! of the production schedule, and allow-lists 127.0.0.1 so the receiver is reachable.
//! Signatures are checked with the independent `standardwebhooks` crate.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use kiln_tests::receiver::{Answer, Received, Receiver};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// The restart test stops the edge: it runs alone, the others share.
static EDGE: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared_edge() -> std::sync::RwLockReadGuard<'static, ()> {
    EDGE.read().unwrap_or_else(|e| e.into_inner())
}

fn secret(key: &str) -> String {
    let r = get("/v1/webhooks/secret", key);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["secret"].as_str().unwrap().to_owned()
}

/// Verifies a delivery with the Standard Webhooks reference crate.
fn verify(secret: &str, r: &Received) -> Result<(), String> {
    let wh = standardwebhooks::Webhook::new(secret).map_err(|e| format!("{e:?}"))?;
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, r.header(name).parse().unwrap());
    }
    wh.verify(&r.body, &headers).map_err(|e| format!("{e:?}"))
}

fn of_type<'a>(got: &'a [Received], t: &str) -> Vec<&'a Received> {
    got.iter().filter(|r| r.json()["type"] == t).collect()
}

fn deliveries(key: &str, id: &str) -> Value {
    let r = get(&format!("/v1/jobs/{id}/deliveries"), key);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// The delivery log of job `id` once the edge is done with its webhooks, beside every
/// request `rx` (the job's only receiver) got. Done means the log has the job's
/// terminal event and no event is `pending`: each was delivered, gone or gave up, so
/// none is sent again. The receiver records a request just after answering it, so this
/// also waits until it has recorded as many as the log has attempts; then the two
/// must agree, and a request the log does not show (a duplicate) fails the test.
fn settled(key: &str, id: &str, rx: &Receiver) -> (Value, Vec<Received>) {
    let log = poll_until("the job's webhooks to settle", WAIT, || {
        let log = deliveries(key, id);
        let events = log["events"].as_array().unwrap();
        let terminal = events.iter().any(|e| {
            ["job.completed", "job.failed", "job.cancelled"].contains(&e["type"].as_str().unwrap())
        });
        let attempts = log["data"].as_array().unwrap().len();
        if terminal
            && events.iter().all(|e| e["state"] != "pending")
            && rx.received().len() >= attempts
        {
            Ok(log)
        } else {
            Err(log.to_string())
        }
    });
    let got = rx.received();
    assert_eq!(
        got.len(),
        log["data"].as_array().unwrap().len(),
        "the receiver got requests the delivery log does not show: {got:?}\n{log}"
    );
    (log, got)
}

/// Each event of a settled log: (type, state, attempts, next attempt).
fn events_of(log: &Value) -> Vec<(String, String, u64, Value)> {
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["state"].as_str().unwrap().to_owned(),
                e["attempts"].as_u64().unwrap(),
                e["next_attempt_at"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_completed_job_is_delivered_once_signed_with_reply_ref_and_outputs() {
    let _edge = shared_edge();
    let rx = Receiver::start();
    let key = new_account();
    let r = post(
        "/v1/images/generations?async_mode=true",
        &key,
        &json!({"prompt": "a signed cat", "replyUrl": rx.url("/hooks/kiln"), "replyRef": "order-7"}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["job_id"].as_str().unwrap().to_owned();
    // Once the log has every event final, nothing more is sent: a duplicate would be
    // an extra attempt in the log, or a request to the receiver the log does not show.
    let (log, got) = settled(&key, &id, &rx);
    let done = of_type(&got, "job.completed");
    assert_eq!(done.len(), 1, "delivered more than once: {got:?}");
    let done = done[0];
    assert_eq!(
        (done.method.as_str(), done.path.as_str()),
        ("POST", "/hooks/kiln")
    );
    verify(&secret(&key), done).unwrap();
    let body = done.json();
    assert_eq!(body["replyRef"], "order-7");
    assert_eq!(body["job"]["id"], id.as_str());
    assert_eq!(body["job"]["status"], "completed");
    assert_eq!(body["job"]["replyRef"], "order-7");
    let url = body["job"]["outputs"][0]["url"].as_str().unwrap();
    assert_eq!(download(url).0, 200);
    // job.started came first, with its own webhook-id; no progress events unasked.
    let started = of_type(&got, "job.started");
    assert_eq!(started.len(), 1, "{got:?}");
    assert!(started[0].at <= done.at);
    assert_ne!(started[0].header("webhook-id"), done.header("webhook-id"));
    assert!(of_type(&got, "job.progress").is_empty());
    // The delivery log agrees: each event delivered at its first attempt.
    let states: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["delivered", "delivered"], "{log}");
    assert!(events_of(&log).iter().all(|e| e.2 == 1), "{log}");
    assert_eq!(got.len(), 2, "{got:?}");
}

#[test]
fn progress_events_come_only_when_asked() {
    let _edge = shared_edge();
    let rx = Receiver::start();
    let key = new_account();
    let r = post(
        "/v1/images/generations?async_mode=true",
        &key,
        &json!({"prompt": "steps", "steps": 8, "replyUrl": rx.url("/p"),
                "webhook_events": ["progress"]}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let got = wait_received(&rx, "job.completed", |g| {
        !of_type(g, "job.completed").is_empty()
    });
    assert!(!of_type(&got, "job.progress").is_empty(), "{got:?}");
    let bad = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "x", "replyUrl": rx.url("/p"), "webhook_events": ["sometimes"]}),
    );
    assert_eq!(
        (bad.status, error_of(&bad)),
        (400, ("invalid_value".into(), Some("webhook_events".into())))
    );
}

#[test]
fn a_receiver_failing_twice_gets_the_event_on_the_third_try_with_one_webhook_id() {
    let _edge = shared_edge();
    let rx = Receiver::start();
    rx.script_for("job.completed", [500u16, 500]);
    let key = new_account();
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "persistence", "replyUrl": rx.url("/retry"), "replyRef": "r"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["job_id"].as_str().unwrap().to_owned();
    let got = wait_received(&rx, "a delivered job.completed", |g| {
        of_type(g, "job.completed").iter().any(|r| r.status == 200)
    });
    let tries = of_type(&got, "job.completed");
    let statuses: Vec<u16> = tries.iter().map(|t| t.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
    let first_id = tries[0].header("webhook-id");
    assert!(tries.iter().all(|t| t.header("webhook-id") == first_id));
    assert!(
        tries.iter().all(|t| t.body == tries[0].body),
        "the body changed between retries"
    );
    let s = secret(&key);
    for t in &tries {
        verify(&s, t).unwrap();
    }
    // The log shows every attempt of that event: status, latency, error.
    let log = deliveries(&key, &id);
    let attempts: Vec<&Value> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["webhook_id"] == first_id)
        .collect();
    let logged: Vec<u64> = attempts
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(logged, [500, 500, 200], "{log}");
    let numbers: Vec<u64> = attempts
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3], "{log}");
    for a in &attempts {
        assert!(
            a["latency_ms"].as_i64().is_some() && a["attempted_at"].as_str().is_some(),
            "{a}"
        );
    }
    assert_eq!(attempts[0]["error"], "answered 500");
}

#[test]
fn gone_stops_retries_and_retry_after_is_respected() {
    let _edge = shared_edge();
    let rx = Receiver::start();
    rx.script([Answer {
        status: 503,
        headers: vec![("retry-after".into(), "2".into())],
    }]);
    let key = new_account();
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "later please", "replyUrl": rx.url("/ra")}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let got = wait_received(&rx, "two job.started tries", |g| {
        of_type(g, "job.started").len() >= 2
    });
    let started = of_type(&got, "job.started");
    let gap = started[1].at - started[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "Retry-After: 2 ignored: retried after {gap:?}"
    );

    let gone = Receiver::start();
    gone.script([410u16, 410, 410]);
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "unsubscribed", "replyUrl": gone.url("/gone")}),
    );
    let id = r.body["job_id"].as_str().unwrap().to_owned();
    wait_received(&gone, "two events", |g| g.len() >= 2);
    // Both events are final in the log: `gone` after one attempt, no retry scheduled,
    // and the receiver got exactly the attempts the log shows.
    let (log, got) = settled(&key, &id, &gone);
    assert_eq!(got.len(), 2, "retried after 410: {got:?}");
    assert!(
        log["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["state"] == "gone"),
        "{log}"
    );
    assert!(
        events_of(&log)
            .iter()
            .all(|e| (e.2, &e.3) == (1, &Value::Null)),
        "retried after 410: {log}"
    );
}

#[test]
fn private_and_odd_reply_urls_are_refused_at_submission_and_cost_nothing() {
    let _edge = shared_edge();
    let key = new_account();
    let cases = [
        "http://10.0.0.1/hook",
        "http://192.168.1.20:8080/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://[fe80::1]/hook",
        "http://0x0a000001/hook",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://printer.local/hook",
        "http://user:pass@example.com/hook",
        "ftp://example.com/hook",
        "file:///etc/passwd",
    ];
    for url in cases {
        for field in ["replyUrl", "webhook_url"] {
            let r = post(
                "/v1/images/generations",
                &key,
                &json!({"prompt": "x", field: url}),
            );
            assert_eq!(r.status, 400, "{field}={url}: {}", r.body);
            let (code, param) = error_of(&r);
            assert_eq!(param.as_deref(), Some(field), "{url}: {}", r.body);
            assert!(
                ["invalid_reply_url", "invalid_value"].contains(&code.as_str()),
                "{url}: {}",
                r.body
            );
        }
        let v = post(
            "/v1/video/generations",
            &key,
            &json!({"prompt": "x", "replyUrl": url}),
        );
        assert_eq!(v.status, 400, "video {url}: {}", v.body);
    }
    let c = credits(&key);
    assert_eq!(
        (c["balance_usd"].clone(), c["held_usd"].clone()),
        (json!(2), json!(0))
    );
    assert_eq!(get("/v1/jobs/active", &key).body["data"], json!([]));
    // A public destination is accepted (it is never reached: the job is test-mode free
    // and the address is reserved for documentation).
    let ok = post(
        "/v1/images/generations?async_mode=true",
        &key,
        &json!({"prompt": "x", "replyUrl": "https://hooks.example.com/kiln"}),
    );
    assert_eq!(ok.status, 202, "{}", ok.body);
}

#[test]
fn replay_resends_the_terminal_event_with_its_id_and_body_and_a_fresh_signature() {
    let _edge = shared_edge();
    let rx = Receiver::start();
    let key = new_account();
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "again", "replyUrl": rx.url("/replay"), "replyRef": "rr"}),
    );
    let id = r.body["job_id"].as_str().unwrap().to_owned();
    let got = wait_received(&rx, "job.completed", |g| {
        !of_type(g, "job.completed").is_empty()
    });
    let original = of_type(&got, "job.completed")[0].clone();
    // `webhook-timestamp` is in whole seconds: let the clock pass the original's second,
    // so the replay's must be later.
    let signed_at: u64 = original.header("webhook-timestamp").parse().unwrap();
    poll_until("the clock to pass the original's second", WAIT, || {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if now > signed_at {
            Ok(())
        } else {
            Err(format!("now {now}, signed at {signed_at}"))
        }
    });
    let rep = post(&format!("/v1/jobs/{id}/webhook"), &key, &json!({}));
    assert_eq!(rep.status, 200, "{}", rep.body);
    assert_eq!(
        (
            rep.body["status_code"].as_u64(),
            rep.body["replay"].as_bool()
        ),
        (Some(200), Some(true))
    );
    let got = wait_received(&rx, "the replay", |g| {
        of_type(g, "job.completed").len() >= 2
    });
    let replayed = of_type(&got, "job.completed")[1].clone();
    assert_eq!(replayed.header("webhook-id"), original.header("webhook-id"));
    assert_eq!(replayed.body, original.body);
    assert!(
        replayed.header("webhook-timestamp").parse::<i64>().unwrap()
            > original.header("webhook-timestamp").parse::<i64>().unwrap()
    );
    assert_ne!(
        replayed.header("webhook-signature"),
        original.header("webhook-signature")
    );
    verify(&secret(&key), &replayed).unwrap();
    assert_eq!(rep.body["webhook_id"], original.header("webhook-id"));

    // Replay needs a finished job with a replyUrl, of your own account.
    let plain = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "no hook"}),
    );
    let pid = plain.body["job_id"].as_str().unwrap();
    let r = post(&format!("/v1/jobs/{pid}/webhook"), &key, &json!({}));
    assert_eq!((r.status, error_of(&r).0.as_str()), (409, "no_reply_url"));
    let other = new_account();
    let r = post(&format!("/v1/jobs/{id}/webhook"), &other, &json!({}));
    assert_eq!((r.status, error_of(&r).0.as_str()), (404, "job_not_found"));
    let r = get(&format!("/v1/jobs/{id}/deliveries"), &other);
    assert_eq!(r.status, 404);
}

#[test]
fn a_rotated_secret_keeps_signing_beside_the_new_one() {
    let _edge = shared_edge();
    let rx = Receiver::start();
    let key = new_account();
    let old = secret(&key);
    assert!(old.starts_with("whsec_"));
    assert_eq!(secret(&key), old, "the secret is stable until rotated");
    let rotated = post("/v1/webhooks/secret/rotate", &key, &json!({}));
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated.body["previous"]["secret"], old.as_str());
    assert!(rotated.body["previous"]["expires_at"].as_str().is_some());
    post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "two keys", "replyUrl": rx.url("/rot")}),
    );
    let got = wait_received(&rx, "job.completed", |g| {
        !of_type(g, "job.completed").is_empty()
    });
    let d = of_type(&got, "job.completed")[0];
    assert_eq!(
        d.header("webhook-signature").split(' ').count(),
        2,
        "{:?}",
        d.headers
    );
    verify(&new, d).unwrap();
    verify(&old, d).unwrap();
    assert!(verify(&secret(&new_account()), d).is_err());
}

#[test]
fn a_receiver_down_across_an_edge_restart_still_gets_the_event() {
    let _alone = EDGE.write().unwrap_or_else(|e| e.into_inner());
    let mut rx = Receiver::start();
    rx.close();
    let key = new_account();
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "durable", "replyUrl": rx.url("/late"), "replyRef": "late-1"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["job_id"].as_str().unwrap().to_owned();
    // Wait until the outbox has failed at least once, so the event is mid-retry.
    poll_until("an attempt of job.completed", WAIT, || {
        let log = deliveries(&key, &id);
        let attempted = log["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["type"] == "job.completed");
        attempted.then_some(()).ok_or_else(|| log.to_string())
    });
    env().restart_edge();
    rx.reopen();
    let got = wait_received(&rx, "job.completed after the restart", |g| {
        !of_type(g, "job.completed").is_empty()
    });
    let d = of_type(&got, "job.completed")[0];
    assert_eq!(d.json()["replyRef"], "late-1");
    verify(&secret(&key), d).unwrap();
}

#[test]
fn the_bfl_style_facade_polls_to_ready_and_delivers_webhooks() {
    let _edge = shared_edge();
    let rx = Receiver::start();
    let key = new_account();
    let r = post(
        "/flux/v1/flux2-dev",
        &key,
        &json!({"prompt": "draw a rainbow", "width": 1024, "height": 768, "guidance": 3.5,
                "output_format": "png", "webhook_url": rx.url("/bfl"), "replyRef": "bfl-1"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let polling = r.body["polling_url"].as_str().unwrap().to_owned();
    assert!(
        polling.ends_with(&format!("/flux/v1/get_result?id={id}")),
        "{polling}"
    );
    let path = polling
        .split_once("/flux/")
        .map(|(_, p)| format!("/flux/{p}"))
        .unwrap();
    let ready = poll_until("get_result to answer Ready", WAIT, || {
        let g = get(&path, &key);
        assert_eq!(g.status, 200, "{}", g.body);
        match g.body["status"].as_str().unwrap() {
            "Ready" => Ok(g.body),
            "Pending" => Err(g.body.to_string()),
            other => panic!("{other}: {}", g.body),
        }
    });
    let (status, _, png) = download(ready["result"]["sample"].as_str().unwrap());
    assert_eq!((status, png_size(&png)), (200, (1024, 768)));
    let got = wait_received(&rx, "job.completed", |g| {
        !of_type(g, "job.completed").is_empty()
    });
    let d = of_type(&got, "job.completed")[0];
    assert_eq!(
        (
            d.json()["replyRef"].as_str(),
            d.json()["job"]["params"]["cfg"].as_f64()
        ),
        (Some("bfl-1"), Some(3.5))
    );
    verify(&secret(&key), d).unwrap();

    for (path, body, param) in [
        ("/flux/v1/flux-pro-1.1", json!({"prompt": "x"}), "model"),
        (
            "/flux/v1/flux2-dev",
            json!({"prompt": "x", "output_format": "jpeg"}),
            "output_format",
        ),
        (
            "/flux/v1/flux2-dev",
            json!({"prompt": "x", "prompt_upsampling": true}),
            "prompt_upsampling",
        ),
        (
            "/flux/v1/flux2-dev",
            json!({"prompt": "x", "width": 1000}),
            "width",
        ),
        (
            "/flux/v1/flux2-dev",
            json!({"prompt": "x", "webhook_url": "http://10.1.2.3/h"}),
            "webhook_url",
        ),
        (
            "/flux/v1/flux2-dev",
            json!({"prompt": "x", "guidance": 3, "cfg": 4}),
            "guidance",
        ),
    ] {
        let r = post(path, &key, &body);
        assert_eq!(
            (r.status, error_of(&r).1.as_deref()),
            (400, Some(param)),
            "{path} {body}: {}",
            r.body
        );
    }
    // What no-code tools send for "not set" is read as not set.
    let lenient = post(
        "/flux/v1/flux2-dev",
        &key,
        &json!({"prompt": "x", "output_format": "", "prompt_upsampling": "false",
                "image_prompt": null, "replyUrl": "HTTPS://hooks.example.com/x"}),
    );
    assert_eq!(lenient.status, 200, "{}", lenient.body);
    let r = get("/flux/v1/get_result?id=job_nope", &key);
    assert_eq!(r.status, 404);
}

/// The n8n pattern: `replyUrl` is the Wait node's one-shot resume URL, so it must get
/// exactly one call, the terminal one.
#[test]
fn terminal_only_sends_just_the_result_for_one_shot_receivers() {
    let _edge = shared_edge();
    let rx = Receiver::start();
    let key = new_account();
    let r = post(
        "/v1/images/generations?async_mode=true",
        &key,
        &json!({"prompt": "resume me", "replyUrl": rx.url("/webhook-waiting/123"),
                "replyRef": "exec-123", "webhook_events": ["terminal"]}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["job_id"].as_str().unwrap().to_owned();
    // The log, once final, has the one event and its one attempt; the receiver got
    // exactly what the log shows.
    let (log, got) = settled(&key, &id, &rx);
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["job.completed"]);
    assert_eq!(
        events_of(&log),
        [("job.completed".into(), "delivered".into(), 1, Value::Null)],
        "{log}"
    );
}
