//! The shared end-to-end harness: one real stack (wrangler dev + workerd, origin
//! processes with the sim engine) per test binary, started on free ports on first use
//! and torn down when the binary exits. Tests isolate themselves by registering their
//! own accounts, as separate users of one deployment would.

#![allow(dead_code)]

use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kiln_tests::build;
use kiln_tests::stack::{Stack, StackConfig};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

pub struct Env {
    pub edge: String,
    pub origin: String,
    pub edge_to_origin_keys: String,
    pub origin_to_edge_keys: String,
    pub admin_token: String,
    pub stripe_webhook_secret: String,
}

static ENV: OnceLock<Env> = OnceLock::new();

/// The running stack. Started from a thread that lives as long as the test binary,
/// because children receive SIGTERM when the thread that spawned them exits.
pub fn env() -> &'static Env {
    ENV.get_or_init(|| {
        assert!(
            build::edge_bundle().exists() && build::origin_bin().exists(),
            "the edge and origin must be built first: run `cargo xtask test`"
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let dir = build::target_dir().join(format!("e2e-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            match Stack::start(StackConfig::test(dir.clone())) {
                Ok(stack) => {
                    let _ = tx.send(Ok(Env {
                        edge: stack.edge_url.clone(),
                        origin: stack.origins[0].url.clone(),
                        edge_to_origin_keys: stack.edge_to_origin_keys.clone(),
                        origin_to_edge_keys: stack.origin_to_edge_keys.clone(),
                        admin_token: stack.admin_token.clone(),
                        stripe_webhook_secret: stack.stripe_webhook_secret.clone(),
                    }));
                    // Hold the stack (and this thread) for the life of the process.
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let logs = ["edge.log", "origin-1.log"]
                        .iter()
                        .map(|f| {
                            let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                            let tail: String = text
                                .chars()
                                .rev()
                                .take(3000)
                                .collect::<Vec<_>>()
                                .into_iter()
                                .rev()
                                .collect();
                            format!("--- {f} ---\n{tail}")
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    let _ = tx.send(Err(format!("{e:#}\n{logs}")));
                }
            }
        });
        rx.recv()
            .expect("stack thread")
            .unwrap_or_else(|e| panic!("starting the stack: {e}"))
    })
}

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client")
}

/// A response read whole: status, headers we care about, JSON body (or null).
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

pub fn reply(resp: Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        body,
        headers,
    }
}

/// Registers a fresh trial account and returns its API key.
pub fn new_account() -> String {
    let email = format!("e2e-{}@example.com", kiln_tests::random_hex(8));
    let r = reply(
        client()
            .post(format!("{}/v1/accounts", env().edge))
            .json(&json!({"email": email}))
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["api_key"].as_str().unwrap().to_owned()
}

pub fn post(path: &str, key: &str, body: &Value) -> Reply {
    reply(
        client()
            .post(format!("{}{path}", env().edge))
            .bearer_auth(key)
            .json(body)
            .send()
            .unwrap(),
    )
}

pub fn get(path: &str, key: &str) -> Reply {
    reply(
        client()
            .get(format!("{}{path}", env().edge))
            .bearer_auth(key)
            .send()
            .unwrap(),
    )
}

pub fn credits(key: &str) -> Value {
    let r = get("/v1/credits", key);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Polls a job until it reaches a terminal status (bounded; not a timing assertion).
pub fn wait_terminal(key: &str, job_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = get(&format!("/v1/jobs/{job_id}"), key);
        assert_eq!(r.status, 200, "{}", r.body);
        if ["completed", "failed", "cancelled"].contains(&r.body["status"].as_str().unwrap_or("")) {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "job {job_id} did not finish: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Downloads a URL's bytes and content type.
pub fn download(url: &str) -> (u16, String, Vec<u8>) {
    let resp = client().get(url).send().unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ct, resp.bytes().unwrap().to_vec())
}

/// Decodes a PNG's dimensions (and proves it is a valid PNG).
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a valid PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    (info.width, info.height)
}

/// Asserts an error body has the API's shape and returns (code, param).
pub fn error_of(r: &Reply) -> (String, Option<String>) {
    let e = &r.body["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error without message: {}",
        r.body
    );
    assert!(
        e["type"].as_str().is_some(),
        "error without type: {}",
        r.body
    );
    (
        e["code"].as_str().unwrap_or_default().to_owned(),
        e["param"].as_str().map(str::to_owned),
    )
}
