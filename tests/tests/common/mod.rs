//! The shared end-to-end harness: one real stack (wrangler dev + workerd, origin
//! processes with the sim engine) per test binary, started on free ports on first use
//! and torn down when the binary exits. Tests isolate themselves by registering their
//! own accounts, as separate users of one deployment would.
//!
//! The CLI's end-to-end tests (`cli/tests/cli.rs`) compile this file too (`#[path]`):
//! a crate used here must also be a dev-dependency of `kiln-cli`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use kiln_tests::build;
use kiln_tests::receiver::{Received, Receiver};
use kiln_tests::stack::{Stack, StackConfig};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

pub struct Env {
    pub edge: String,
    pub origin: String,
    /// Every origin's URL, by index (`origin-1` is index 0).
    pub origins: Vec<String>,
    pub edge_to_origin_keys: String,
    pub origin_to_edge_keys: String,
    pub admin_token: String,
    pub stripe_webhook_secret: String,
    control: Mutex<mpsc::Sender<Control>>,
}

/// What a test may ask of the stack's owner thread.
enum Control {
    KillOrigin(usize, mpsc::Sender<()>),
    StartOrigin(usize, mpsc::Sender<Result<(), String>>),
    RestartEdge(mpsc::Sender<Result<(), String>>),
}

impl Env {
    /// Kills origin `i` at once (SIGKILL), as a crash would.
    pub fn kill_origin(&self, i: usize) {
        let (tx, rx) = mpsc::channel();
        self.control
            .lock()
            .unwrap()
            .send(Control::KillOrigin(i, tx))
            .unwrap();
        rx.recv().unwrap();
    }

    /// Stops the edge runtime (wrangler dev / workerd) and starts it again on the same
    /// port and persisted state.
    pub fn restart_edge(&self) {
        let (tx, rx) = mpsc::channel();
        self.control
            .lock()
            .unwrap()
            .send(Control::RestartEdge(tx))
            .unwrap();
        rx.recv().unwrap().expect("restarting the edge");
    }

    /// Starts origin `i` again on its port.
    pub fn start_origin(&self, i: usize) {
        let (tx, rx) = mpsc::channel();
        self.control
            .lock()
            .unwrap()
            .send(Control::StartOrigin(i, tx))
            .unwrap();
        rx.recv().unwrap().expect("restarting the origin");
    }
}

static ENV: OnceLock<Env> = OnceLock::new();

/// The running stack with the default test configuration.
pub fn env() -> &'static Env {
    env_with(StackConfig::test)
}

/// The running stack, started on first use with `config` (each test binary uses one
/// configuration). Started from a thread that lives as long as the test binary,
/// because children receive SIGTERM when the thread that spawned them exits.
pub fn env_with(config: fn(PathBuf) -> StackConfig) -> &'static Env {
    ENV.get_or_init(|| {
        assert!(
            build::edge_bundle().exists() && build::origin_bin().exists(),
            "the edge and origin must be built first: run `cargo xtask test`"
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            remove_stale_stack_dirs();
            let dir = build::target_dir().join(format!("e2e-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            match Stack::start(config(dir.clone())) {
                Ok(mut stack) => {
                    let (ctl_tx, ctl_rx) = mpsc::channel();
                    let _ = tx.send(Ok(Env {
                        edge: stack.edge_url.clone(),
                        origin: stack.origins[0].url.clone(),
                        origins: stack.origins.iter().map(|o| o.url.clone()).collect(),
                        edge_to_origin_keys: stack.edge_to_origin_keys.clone(),
                        origin_to_edge_keys: stack.origin_to_edge_keys.clone(),
                        admin_token: stack.admin_token.clone(),
                        stripe_webhook_secret: stack.stripe_webhook_secret.clone(),
                        control: Mutex::new(ctl_tx),
                    }));
                    // Hold the stack (and this thread) for the life of the process.
                    for msg in ctl_rx {
                        match msg {
                            Control::KillOrigin(i, done) => {
                                stack.kill_origin(i);
                                let _ = done.send(());
                            }
                            Control::StartOrigin(i, done) => {
                                let r = stack.start_origin(i).map_err(|e| format!("{e:#}"));
                                let _ = done.send(r);
                            }
                            Control::RestartEdge(done) => {
                                let r = stack.restart_edge().map_err(|e| format!("{e:#}"));
                                let _ = done.send(r);
                            }
                        }
                    }
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let logs = ["edge.log", "origin-1.log", "origin-2.log"]
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

/// Each test binary keeps its stack's state in `target/e2e-<pid>` (logs to read after a
/// failure) and cannot remove it as it exits; the next run removes the folders of
/// processes that are gone.
fn remove_stale_stack_dirs() {
    let Ok(entries) = std::fs::read_dir(build::target_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("e2e-")) else {
            continue;
        };
        let alive = pid.parse::<u32>().is_ok_and(|p| {
            p == std::process::id() || std::path::Path::new(&format!("/proc/{p}")).exists()
        });
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
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

pub fn delete(path: &str, key: &str) -> Reply {
    reply(
        client()
            .delete(format!("{}{path}", env().edge))
            .bearer_auth(key)
            .send()
            .unwrap(),
    )
}

/// Uploads `bytes` as `name` (`POST /v1/uploads`, multipart `file`).
pub fn upload(key: &str, name: &str, bytes: Vec<u8>) -> Reply {
    use reqwest::blocking::multipart::{Form, Part};
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_owned()));
    reply(
        client()
            .post(format!("{}/v1/uploads", env().edge))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .unwrap(),
    )
}

/// Creates a test-mode (`sk-test-`) key for the account of `key`.
pub fn test_key(key: &str) -> String {
    let r = post("/v1/keys", key, &json!({"label": "tests", "mode": "test"}));
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["api_key"].as_str().unwrap().to_owned()
}

pub fn credits(key: &str) -> Value {
    let r = get("/v1/credits", key);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// The harness's one polling loop: calls `look` until it answers `Ok`, and returns
/// that. `look` answers `Err` with what it saw instead, which the panic shows when
/// `timeout` passes first. The timeout only bounds the wait; nothing asserts how long
/// it took (the machine is shared and noisy).
pub fn poll_until<T>(
    what: &str,
    timeout: Duration,
    mut look: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match look() {
            Ok(done) => return done,
            Err(seen) if Instant::now() >= deadline => {
                panic!("waited {timeout:?} for {what}; last seen: {seen}")
            }
            Err(_) => std::thread::sleep(POLL_EVERY),
        }
    }
}

/// How often [`poll_until`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Polls a job until it reaches a terminal status (bounded; not a timing assertion).
pub fn wait_terminal(key: &str, job_id: &str) -> Value {
    wait_job(key, job_id, "to finish", Duration::from_secs(120), |j| {
        ["completed", "failed", "cancelled"].contains(&j["status"].as_str().unwrap_or(""))
    })
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

/// A server-sent-events client, reading one event at a time.
pub struct Sse {
    reader: std::io::BufReader<Response>,
}

impl Sse {
    /// Opens an event stream; `key` goes in `Authorization` (the path may carry `?key=`
    /// instead). Answers the status and, for 200, the stream.
    pub fn open(path: &str, key: Option<&str>) -> (Reply, Option<Sse>) {
        let client = Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .expect("sse client");
        let mut req = client.get(format!("{}{path}", env().edge));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().unwrap();
        if resp.status().as_u16() != 200 {
            return (reply(resp), None);
        }
        let r = Reply {
            status: 200,
            body: Value::Null,
            headers: resp.headers().clone(),
        };
        (
            r,
            Some(Sse {
                reader: std::io::BufReader::new(resp),
            }),
        )
    }

    /// The next event (name, JSON data), or `None` when the server ended the stream.
    pub fn next(&mut self) -> Option<(String, Value)> {
        use std::io::BufRead;
        let mut event = String::new();
        let mut data = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).ok()?;
            if n == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if event.is_empty() && data.is_empty() {
                    continue;
                }
                let value = serde_json::from_str(&data).unwrap_or(Value::Null);
                return Some((event, value));
            }
            if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim());
            }
        }
    }

    /// Events up to and including the first terminal one (pings left out), or until
    /// the stream ends.
    pub fn until_terminal(&mut self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        while let Some((name, data)) = self.next() {
            if name == "ping" {
                continue;
            }
            let end = ["completed", "failed", "cancelled"].contains(&name.as_str());
            out.push((name, data));
            if end {
                break;
            }
        }
        out
    }
}

/// Submits an image job in async mode and returns its id.
pub fn submit_async(key: &str, body: &Value) -> String {
    let r = post("/v1/images/generations?async_mode=true", key, body);
    assert_eq!(r.status, 202, "{}", r.body);
    r.body["job_id"].as_str().unwrap().to_owned()
}

/// Polls a job until `pred` holds for it (bounded), and returns it.
pub fn wait_for(key: &str, job_id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_job(key, job_id, what, Duration::from_secs(60), pred)
}

fn wait_job(
    key: &str,
    job_id: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    poll_until(&format!("job {job_id}: {what}"), timeout, || {
        let r = get(&format!("/v1/jobs/{job_id}"), key);
        assert_eq!(r.status, 200, "{}", r.body);
        if pred(&r.body) {
            Ok(r.body)
        } else {
            Err(r.body.to_string())
        }
    })
}

/// Polls a webhook receiver until `pred` holds for what it got (bounded), and returns
/// every request it got.
pub fn wait_received(
    rx: &Receiver,
    what: &str,
    pred: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    poll_until(
        &format!("the receiver to get {what}"),
        Duration::from_secs(60),
        || {
            let got = rx.received();
            if pred(&got) {
                Ok(got)
            } else {
                Err(format!(
                    "{:#?}",
                    got.iter()
                        .map(|r| format!("{} {}", r.status, String::from_utf8_lossy(&r.body)))
                        .collect::<Vec<_>>()
                ))
            }
        },
    )
}

/// The µ$ value of a `*_usd` JSON number, exactly (no float arithmetic in asserts).
pub fn micros(v: &Value) -> i64 {
    kiln_shared::money::MicroUsd::parse_usd(&v.to_string())
        .unwrap_or_else(|| panic!("not a USD amount: {v}"))
        .micros()
}

/// ffprobe's view of a video file: codec, size, counted frames, frame rate.
pub fn ffprobe(bytes: &[u8]) -> Value {
    let out = run_ffprobe(
        bytes,
        &[
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,profile,width,height,nb_read_frames,r_frame_rate",
        ],
    );
    out["streams"][0].clone()
}

/// Whether a video file has a sound track, as ffprobe sees it.
pub fn has_audio_stream(bytes: &[u8]) -> bool {
    let out = run_ffprobe(
        bytes,
        &["-select_streams", "a", "-show_entries", "stream=codec_type"],
    );
    out["streams"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["codec_type"] == "audio"))
}

/// Runs ffprobe with `args` on `bytes` (written to a scratch file), JSON out.
fn run_ffprobe(bytes: &[u8], args: &[&str]) -> Value {
    let path = build::target_dir().join(format!("probe-{}.mp4", kiln_tests::random_hex(6)));
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new(kiln_tests::tools::ffprobe_bin())
        .args(["-v", "error"])
        .args(args)
        .args(["-of", "json"])
        .arg(&path)
        .output()
        .expect("ffprobe (installed by `cargo xtask test`)");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
