//! The edge stand-in (`kiln_tests::edge_double`) that `cargo xtask bench` times the origin
//! with: it checks signatures as the edge does, acknowledges, and records arrivals in
//! order (no durations are asserted). No stack is started.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kiln_shared::ids::JobId;
use kiln_shared::origin::{events_path, EventEnvelope, OriginEvent, HEARTBEAT_PATH};
use kiln_shared::signing::Keyring;
use kiln_tests::edge_double::EdgeStandIn;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{json, Value};

const KEYS: &str = "bench:0123456789abcdef0123456789abcdef";
const OTHER_KEYS: &str = "bench:ffffffffffffffffffffffffffffffff";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn signed(keys: &str, method: &str, url: &str, path: &str, body: Vec<u8>) -> RequestBuilder {
    let signed = Keyring::parse(keys)
        .unwrap()
        .sign(now(), method, path, &body);
    let client = Client::new();
    let mut req = match method {
        "PUT" => client.put(format!("{url}{path}")),
        _ => client.post(format!("{url}{path}")),
    }
    .body(body);
    for (name, value) in signed.pairs() {
        req = req.header(name, value);
    }
    req
}

fn event(seq: u32, event: OriginEvent) -> Vec<u8> {
    serde_json::to_vec(&EventEnvelope {
        origin_id: "bench-origin".into(),
        attempt: 1,
        seq,
        event,
    })
    .unwrap()
}

#[test]
fn it_acknowledges_signed_calls_records_arrivals_and_refuses_bad_signatures() {
    let edge = EdgeStandIn::start(KEYS).unwrap();
    let url = edge.url();
    let job = JobId::generate(1_700_000_000_000, [7; 10]);
    let events = events_path(&job);

    assert_eq!(
        Client::new()
            .get(format!("{url}/noop"))
            .send()
            .unwrap()
            .status(),
        200
    );
    let beat = serde_json::to_vec(&json!({"origin_id": "bench-origin"})).unwrap();
    let r = signed(KEYS, "POST", &url, HEARTBEAT_PATH, beat)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(edge.heartbeats(), 1);

    let loading = event(
        1,
        OriginEvent::LoadingModel {
            model_id: "flux2-dev".into(),
        },
    );
    let r = signed(KEYS, "POST", &url, &events, loading).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().unwrap(),
        json!({"applied": true, "stop": false})
    );
    assert!(edge
        .wait_terminal(job.as_str(), Duration::from_millis(50))
        .is_err());

    let put_path = format!("/internal/origin/jobs/{job}/outputs/{job}-0.png");
    let before = Instant::now();
    let r = signed(KEYS, "PUT", &url, &put_path, vec![1, 2, 3])
        .header("content-type", "image/png")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let completed = event(
        2,
        OriginEvent::Completed {
            outputs: vec![],
            engine: "comfyui".into(),
            simulated: false,
        },
    );
    let r = signed(KEYS, "POST", &url, &events, completed)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = Instant::now();

    let seen = edge
        .wait_terminal(job.as_str(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(seen.events, 2);
    let [upload] = seen.uploads.as_slice() else {
        panic!("{:?}", seen.uploads)
    };
    assert_eq!(
        (upload.size_bytes, upload.content_type.as_str()),
        (3, "image/png")
    );
    let (at, ev) = seen.terminal.unwrap();
    assert!(matches!(ev, OriginEvent::Completed { .. }));
    assert!(before <= upload.at && upload.at <= at && at <= after);
    assert!(edge.refused().is_empty());

    // Another keyring's signature, and none at all, are refused and listed.
    let r = signed(
        OTHER_KEYS,
        "POST",
        &url,
        &events,
        event(
            3,
            OriginEvent::Failed {
                code: "x".into(),
                message: "y".into(),
            },
        ),
    )
    .send()
    .unwrap();
    assert_eq!(r.status(), 401);
    let r = Client::new()
        .put(format!("{url}{put_path}"))
        .body(vec![0])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(edge.refused().len(), 2);
    assert_eq!(edge.job(job.as_str()).unwrap().events, 2);
}
