//! End-to-end tests of the `kiln` CLI: the real binary against the real stack (started
//! by the shared harness, `tests/tests/common/mod.rs`), each test with its own account
//! and scratch directory, and no config file of the machine's user.

#[path = "../../tests/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{env, new_account, png_size, submit_async, wait_for};
use serde_json::{json, Value};

/// A fresh directory under the target dir, to run the CLI in.
fn scratch() -> PathBuf {
    let dir = kiln_tests::build::target_dir()
        .join("cli-e2e")
        .join(kiln_tests::random_hex(6));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `kiln ARGS` in `dir`, configured by the environment only.
fn kiln_cmd(key: &str, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.args(args)
        .current_dir(dir)
        .env("KILN_BASE_URL", &env().edge)
        .env("KILN_API_KEY", key)
        // Never the config file of whoever runs the tests.
        .env("KILN_CONFIG", dir.join("absent-config.toml"))
        .stdin(Stdio::null());
    cmd
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn kiln(key: &str, dir: &Path, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = kiln_cmd(key, dir, args).output().expect("running kiln");
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    // The key is never printed, whatever happens.
    assert!(
        key.is_empty() || !(run.stdout.contains(key) || run.stderr.contains(key)),
        "the key was printed: {}{}",
        run.stdout,
        run.stderr
    );
    run
}

/// `kiln ARGS` that must succeed.
fn kiln_ok(key: &str, dir: &Path, args: &[&str]) -> Run {
    let r = kiln(key, dir, args);
    assert_eq!(
        r.code, 0,
        "kiln {args:?} failed\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r
}

/// `kiln --json ARGS` that must succeed, parsed.
fn kiln_json(key: &str, dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let r = kiln_ok(key, dir, &all);
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("kiln {args:?} --json printed no JSON ({e}): {}", r.stdout))
}

/// The `step N/T` lines of a progress output.
fn step_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("step ")).collect()
}

/// A small PNG made here, to upload.
fn png_bytes(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        let mut w = enc.write_header().unwrap();
        let data: Vec<u8> = (0..width * height * 3).map(|i| (i % 251) as u8).collect();
        w.write_image_data(&data).unwrap();
    }
    out
}

#[test]
fn generate_image_saves_a_png_of_the_size_and_shows_steps() {
    let key = new_account();
    let dir = scratch();
    // Slow steps, so the stream sees them (the test stack's sim is otherwise instant).
    let r = kiln_ok(
        &key,
        &dir,
        &[
            "generate",
            "image",
            "a kiln [[sim:step_ms=250]]",
            "--size",
            "768x512",
            "--steps",
            "8",
        ],
    );
    // stdout: the saved file's path, one line.
    let saved: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(saved.len(), 1, "{}", r.stdout);
    let path = dir.join(saved[0]);
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("job_") && name.ends_with("-0.png"),
        "{name}"
    );
    assert_eq!(png_size(&std::fs::read(&path).unwrap()), (768, 512));
    // No partial download is left behind.
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    // stderr: plain progress lines (not a terminal), with the steps.
    let steps = step_lines(&r.stderr);
    assert!(!steps.is_empty(), "no step lines in:\n{}", r.stderr);
    for line in &steps {
        assert!(line.contains("/8 ") && line.ends_with("Sampling"), "{line}");
    }
    assert!(r.stderr.contains("submitted"), "{}", r.stderr);
    assert!(r.stderr.contains("completed"), "{}", r.stderr);
}

#[test]
fn generate_json_prints_the_completed_job() {
    let key = new_account();
    let dir = scratch();
    let job = kiln_json(
        &key,
        &dir,
        &[
            "generate", "image", "a kiln", "--steps", "8", "--seed", "42", "--out", "pics",
        ],
    );
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["seed"], 42);
    assert_eq!(job["params"]["steps"], 8);
    let file = job["outputs"][0]["filename"].as_str().unwrap();
    let bytes = std::fs::read(dir.join("pics").join(file)).unwrap();
    assert_eq!(png_size(&bytes), (1024, 1024));
    // The same job through `jobs get --json`.
    let id = job["id"].as_str().unwrap();
    let got = kiln_json(&key, &dir, &["jobs", "get", id]);
    assert_eq!(got["id"], id);
    assert_eq!(got["status"], "completed");
    // And as text.
    let r = kiln_ok(&key, &dir, &["jobs", "get", id]);
    assert!(
        r.stdout.starts_with(&format!("{id}  completed")),
        "{}",
        r.stdout
    );
}

#[test]
fn a_bad_key_exits_non_zero_with_the_api_message() {
    let dir = scratch();
    // A well-formed key of no account.
    let bad = format!("sk-trial-{}{}", "A".repeat(16), "B".repeat(32));
    let api = common::get("/v1/credits", &bad);
    assert_eq!(api.status, 401);
    let message = api.body["error"]["message"].as_str().unwrap().to_owned();
    for args in [
        vec!["credits"],
        vec!["generate", "image", "a kiln"],
        vec!["--json", "keys", "list"],
    ] {
        let r = kiln(&bad, &dir, &args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert_eq!(
            r.stderr.trim_end(),
            format!("kiln: {message} (invalid_api_key, HTTP 401)"),
            "{args:?}"
        );
        assert!(r.stdout.is_empty(), "{}", r.stdout);
    }
    // No key at all: a usage error that says where to put one.
    let r = kiln("", &dir, &["credits"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("KILN_API_KEY"), "{}", r.stderr);
    // An API error with a parameter: named in the same line.
    let key = new_account();
    let r = kiln(
        &key,
        &dir,
        &["generate", "image", "a kiln", "--size", "1000x768"],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("kiln: ")
            && r.stderr
                .contains("(invalid_dimensions, param width, HTTP 400)"),
        "{}",
        r.stderr
    );
    // Nothing listening: one clear line.
    let r = kiln_cmd(&key, &dir, &["credits"])
        .env("KILN_BASE_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr.starts_with("kiln: cannot reach Kiln at http://127.0.0.1:9")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn credits_usage_and_keys() {
    let key = new_account();
    let dir = scratch();
    let c = kiln_json(&key, &dir, &["credits"]);
    assert_eq!(common::micros(&c["balance_usd"]), 2_000_000);
    assert_eq!(c["is_trial"], true);
    let r = kiln_ok(&key, &dir, &["credits"]);
    assert!(r.stdout.contains("available  $2.00"), "{}", r.stdout);

    kiln_json(&key, &dir, &["generate", "image", "a kiln", "--steps", "8"]);
    let u = kiln_json(&key, &dir, &["usage", "--limit", "1"]);
    assert_eq!(u["data"].as_array().unwrap().len(), 1);
    assert_eq!(u["data"][0]["type"], "charge");
    assert_eq!(u["has_more"], true);
    let r = kiln_ok(&key, &dir, &["usage"]);
    assert!(
        r.stdout.contains("image ") && r.stdout.contains("$0.02"),
        "{}",
        r.stdout
    );

    // Keys: create (the secret on stdout, alone), list, revoke.
    let r = kiln_ok(&key, &dir, &["keys", "create", "--label", "ci", "--test"]);
    let secret = r.stdout.trim().to_owned();
    assert!(secret.starts_with("sk-test-"), "{}", r.stdout);
    let listed = kiln_json(&key, &dir, &["keys", "list"]);
    let ci = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "ci")
        .unwrap()
        .clone();
    assert_eq!(ci["kind"], "test");
    let id = ci["id"].as_str().unwrap();
    let r = kiln_ok(&key, &dir, &["keys", "list"]);
    assert!(
        r.stdout.contains(id) && r.stdout.contains("LABEL"),
        "{}",
        r.stdout
    );
    // The new key works through the CLI, then stops working once revoked.
    kiln_json(&secret, &dir, &["credits"]);
    let r = kiln_ok(&key, &dir, &["keys", "revoke", id]);
    assert_eq!(r.stdout.trim(), format!("revoked {id}"));
    let r = kiln(&secret, &dir, &["credits"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("invalid_api_key"), "{}", r.stderr);
}

#[test]
fn upload_then_generate_with_input() {
    let key = new_account();
    let dir = scratch();
    std::fs::write(dir.join("ref.png"), png_bytes(96, 64)).unwrap();
    let r = kiln_ok(&key, &dir, &["upload", "ref.png"]);
    let filename = r.stdout.trim().to_owned();
    assert!(
        filename.starts_with("up_") && filename.ends_with(".png"),
        "{}",
        r.stdout
    );
    let up = kiln_json(&key, &dir, &["upload", "ref.png"]);
    assert_eq!(up["filename"], filename.as_str());
    assert_eq!(up["deduplicated"], true);
    assert_eq!(
        (up["width"].as_u64(), up["height"].as_u64()),
        (Some(96), Some(64))
    );

    // By its Kiln filename.
    let job = kiln_json(
        &key,
        &dir,
        &[
            "generate",
            "image",
            "the same, at night",
            "--steps",
            "8",
            "--input",
            &filename,
        ],
    );
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["input_files"], json!([filename]));
    assert_eq!(job["workflow_id"], "flux2-dev:img2img");
    // A local file: uploaded first (the same bytes: the same upload).
    let job = kiln_json(
        &key,
        &dir,
        &[
            "generate",
            "image",
            "again",
            "--steps",
            "8",
            "--input",
            "ref.png",
            "--no-download",
        ],
    );
    assert_eq!(job["input_files"], json!([filename]));
    // Neither a file nor a Kiln filename: a usage error before anything is sent.
    let r = kiln(
        &key,
        &dir,
        &["generate", "image", "x", "--input", "missing.png"],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing.png"), "{}", r.stderr);
    // Not an image: the API's 415, in one line.
    std::fs::write(dir.join("notes.txt"), "hello").unwrap();
    let r = kiln(&key, &dir, &["upload", "notes.txt"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("(unsupported_media_type, HTTP 415)"),
        "{}",
        r.stderr
    );
}

#[test]
fn cancel_list_and_watch_a_slow_job() {
    let key = new_account();
    let dir = scratch();
    let id = submit_async(
        &key,
        &json!({"prompt": "a slow kiln [[sim:step_ms=500]]", "steps": 40}),
    );
    wait_for(&key, &id, "to start", |j| j["status"] == "processing");
    let active = kiln_json(&key, &dir, &["jobs", "list"]);
    assert_eq!(active["data"][0]["id"], id.as_str());
    let r = kiln_ok(&key, &dir, &["jobs", "list"]);
    assert!(
        r.stdout.contains(&id) && r.stdout.contains("processing"),
        "{}",
        r.stdout
    );

    let r = kiln_ok(&key, &dir, &["jobs", "cancel", &id]);
    assert_eq!(r.stdout.trim(), format!("cancelled {id}"));
    let job = kiln_json(&key, &dir, &["jobs", "get", &id]);
    assert_eq!(job["status"], "cancelled");
    // Cancelling again: the API's 409.
    let r = kiln(&key, &dir, &["jobs", "cancel", &id]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("(job_ended, HTTP 409)"), "{}", r.stderr);
    // Watching an ended job: its end at once; cancelled is a failure.
    let r = kiln(&key, &dir, &["jobs", "watch", &id]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim_end(),
        format!("kiln: job {id} cancelled: The job was cancelled. (cancelled)")
    );
    let r = kiln(&key, &dir, &["--json", "jobs", "watch", &id]);
    assert_eq!(r.code, 1);
    let job: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(job["status"], "cancelled");
    assert!(kiln_json(&key, &dir, &["jobs", "list"])["data"]
        .as_array()
        .unwrap()
        .is_empty());
    // An unknown job.
    let r = kiln(&key, &dir, &["jobs", "get", "job_nope"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("(job_not_found, HTTP 404)"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_failed_job_exits_non_zero_with_its_message() {
    let key = new_account();
    let dir = scratch();
    let r = kiln(
        &key,
        &dir,
        &["generate", "image", "a kiln [[sim:fail]]", "--steps", "8"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap();
    assert!(
        last.starts_with("kiln: job job_")
            && last.ends_with(
                "failed: Simulated failure requested by the prompt. (generation_failed)"
            ),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn ctrl_c_while_watching_leaves_the_job_running() {
    let key = new_account();
    let dir = scratch();
    let mut child = kiln_cmd(
        &key,
        &dir,
        &[
            "generate",
            "image",
            "a slow kiln [[sim:step_ms=500]]",
            "--steps",
            "40",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Wait for the first step, then press Ctrl-C (SIGINT).
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no step in: {seen}"
        );
        seen.push_str(&line);
        if line.starts_with("step ") {
            break;
        }
    }
    let id = seen
        .split_whitespace()
        .find(|w| w.starts_with("job_"))
        .unwrap()
        .to_owned();
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(
        rest.contains(&format!(
            "kiln: job {id} is still running; follow it with: kiln jobs watch {id}"
        )),
        "{rest}"
    );
    // The job goes on.
    std::thread::sleep(Duration::from_millis(600));
    let job = kiln_json(&key, &dir, &["jobs", "get", &id]);
    assert_eq!(job["status"], "processing", "{job}");
    kiln_ok(&key, &dir, &["jobs", "cancel", &id]);
}

#[test]
fn generate_video() {
    let key = new_account();
    let dir = scratch();
    let job = kiln_json(
        &key,
        &dir,
        &[
            "generate",
            "video",
            "waves at dusk",
            "--model",
            "ltx-2.3-fast",
            "--frames",
            "25",
            "--size",
            "768x768",
        ],
    );
    assert_eq!(job["status"], "completed", "{job}");
    let out = &job["outputs"][0];
    assert_eq!(
        (out["width"].as_u64(), out["height"].as_u64()),
        (Some(1536), Some(1536))
    );
    let bytes = std::fs::read(dir.join(out["filename"].as_str().unwrap())).unwrap();
    assert_eq!(bytes.len() as u64, out["size_bytes"].as_u64().unwrap());
}

#[test]
fn webhooks_secret_and_deliveries() {
    let key = new_account();
    let dir = scratch();
    let s = kiln_json(&key, &dir, &["webhooks", "secret"]);
    let first = s["secret"].as_str().unwrap().to_owned();
    assert!(first.starts_with("whsec_"));
    let rotated = kiln_json(&key, &dir, &["webhooks", "secret", "--rotate"]);
    assert_eq!(rotated["previous"]["secret"], first.as_str());
    let r = kiln_ok(&key, &dir, &["webhooks", "secret"]);
    assert!(
        r.stdout.contains("previous") && r.stdout.contains(&first),
        "{}",
        r.stdout
    );

    // A job with a webhook to a local receiver: its log, and a replay.
    let receiver = kiln_tests::receiver::Receiver::start();
    let hook = receiver.url("/hooks");
    let job = kiln_json(
        &key,
        &dir,
        &[
            "generate",
            "image",
            "a kiln",
            "--steps",
            "8",
            "--no-download",
            "--webhook-url",
            &hook,
        ],
    );
    let id = job["id"].as_str().unwrap();
    common::wait_received(&receiver, "the terminal event", |got| {
        got.iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("job.completed"))
    });
    let d = kiln_json(&key, &dir, &["webhooks", "deliveries", id]);
    assert_eq!(d["reply_url"], hook.as_str());
    assert!(d["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "job.completed"));
    let r = kiln_ok(&key, &dir, &["webhooks", "deliveries", id]);
    assert!(r.stdout.contains("job.completed"), "{}", r.stdout);
    let replay = kiln_json(&key, &dir, &["webhooks", "replay", id]);
    assert_eq!(replay["replay"], true);
    assert_eq!(replay["type"], "job.completed");
    // A job without a webhook: the API's 409.
    let plain = kiln_json(
        &key,
        &dir,
        &["generate", "image", "x", "--steps", "8", "--no-download"],
    );
    let r = kiln(
        &key,
        &dir,
        &["webhooks", "replay", plain["id"].as_str().unwrap()],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("(no_reply_url, HTTP 409)"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_config_file_and_what_beats_it() {
    let key = new_account();
    let dir = scratch();
    let config = dir.join("kiln.toml");
    let bare = |args: &[&str]| {
        let mut cmd = kiln_cmd(&key, &dir, args);
        cmd.env_remove("KILN_API_KEY")
            .env_remove("KILN_BASE_URL")
            .env("KILN_CONFIG", &config);
        cmd
    };
    // The key from stdin (out of the shell's history), the URL as an argument.
    let mut set_key = bare(&["config", "set", "api_key", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut set_key.stdin.take().unwrap(),
        format!("{key}\n").as_bytes(),
    )
    .unwrap();
    assert!(set_key.wait().unwrap().success());
    assert!(bare(&["config", "set", "base_url", &env().edge])
        .status()
        .unwrap()
        .success());

    // Everything from the file.
    let out = bare(&["--json", "credits"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(c["is_trial"], true);
    let out = bare(&["config", "show"]).output().unwrap();
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(!shown.contains(&key), "the key was printed: {shown}");
    assert!(
        shown.contains("sk-trial-…") && shown.contains("from the config file"),
        "{shown}"
    );

    // The environment beats the file; the flag beats both.
    let bad = format!("sk-trial-{}{}", "A".repeat(16), "B".repeat(32));
    let out = bare(&["credits"])
        .env("KILN_API_KEY", &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_api_key"));
    let out = bare(&["credits", "--api-key", &key])
        .env("KILN_API_KEY", &bad)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bare(&["credits"])
        .env("KILN_BASE_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach Kiln at http://127.0.0.1:9")
    );
}
