//! `cargo xtask bench`: numbers that matter for Kiln, each beside a baseline measured in
//! the same run on the same machine, so a slow or busy machine shows up in both columns
//! instead of in a false regression.
//!
//! Section `origin` ([`origin`]), the release origin alone:
//! - The origin's own overhead per job on the `comfyui` engine, with kiln-tests' fake
//!   ComfyUI answering at once and an edge stand-in: dispatch received → `POST /prompt`
//!   sent (in), and output fetched → terminal event at the edge (out), median and p99,
//!   beside a bare axum round trip.
//!
//! Section `edge`, a fresh stack (workerd and a sim origin):
//! - Submit path: latency of `POST /v1/images/generations?async_mode=true` (key check,
//!   validation, hold on the Account DO, Job DO creation, signed dispatch to the
//!   origin), median and p99, beside `GET /health/durable-object` (Worker → no-op DO).
//! - Ledger: holds per second on one account, driven from inside the Worker
//!   (`POST /admin/ledger-bench`), beside the same loop against the no-op DO.
//!
//! Release builds, free ports, loopback only, bounded counts. `--only origin|edge` runs
//! one section (`origin` needs no edge build).

mod origin;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kiln_tests::build::{self, Profile};
use kiln_tests::stack::{Stack, StackConfig};
use kiln_tests::tools;
use reqwest::blocking::Client;
use serde_json::{json, Value};

/// Requests per latency series by default: enough for a stable p99 on this machine.
const REQUESTS_DEFAULT: usize = 300;
/// Requests per series discarded before measuring (JIT, DO start-up, connection pool).
const WARMUP: usize = 30;
/// Holds per ledger request (the route's bound keeps a Worker request under its
/// subrequest limit), and requests per measurement.
const LEDGER_HOLDS: i64 = 400;
const LEDGER_ROUNDS: i64 = 5;

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    let idx = ((sorted_ms.len() as f64 - 1.0) * p).round() as usize;
    sorted_ms[idx.min(sorted_ms.len() - 1)]
}

struct Series {
    median_ms: f64,
    p99_ms: f64,
}

/// Median and p99 of samples in milliseconds (at least one).
fn series(mut ms: Vec<f64>) -> Series {
    ms.sort_by(f64::total_cmp);
    Series {
        median_ms: percentile(&ms, 0.5),
        p99_ms: percentile(&ms, 0.99),
    }
}

fn measure(n: usize, mut call: impl FnMut() -> Result<()>) -> Result<Series> {
    for _ in 0..WARMUP {
        call()?;
    }
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        call()?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(series(ms))
}

fn expect(resp: reqwest::blocking::Response, status: u16, what: &str) -> Result<Value> {
    let got = resp.status().as_u16();
    let body: Value = resp.json().unwrap_or(Value::Null);
    if got != status {
        bail!("{what}: expected {status}, got {got}: {body}");
    }
    Ok(body)
}

pub fn run(args: &[String]) -> Result<()> {
    let requests: usize = crate::flag(args, "--requests", REQUESTS_DEFAULT)?;
    let jobs: usize = crate::flag(args, "--jobs", origin::JOBS_DEFAULT)?;
    let only: String = crate::flag(args, "--only", "all".to_owned())?;
    let (edge_part, origin_part) = match only.as_str() {
        "all" => (true, true),
        "edge" => (true, false),
        "origin" => (false, true),
        other => bail!("--only {other:?}: want origin or edge"),
    };
    if requests == 0 {
        bail!("--requests must be at least 1");
    }
    if !(1..=origin::JOBS_MAX).contains(&jobs) {
        bail!("--jobs must be 1–{}", origin::JOBS_MAX);
    }
    if edge_part {
        tools::ensure()?;
        build::edge(Profile::Release)?;
    }
    build::origin(Profile::Release)?;
    let dir = build::target_dir().join("bench");
    let _ = std::fs::remove_dir_all(&dir);
    let mut report = serde_json::Map::new();
    let mut lines = Vec::new();
    // First, while nothing else of ours runs.
    if origin_part {
        let m = origin::measure(jobs, &dir.join("origin"))?;
        report.insert("origin_overhead".into(), m.report);
        lines.extend(m.lines);
    }
    if edge_part {
        let (fields, edge_lines) = edge_sections(requests, &dir)?;
        report.extend(fields);
        if !lines.is_empty() {
            lines.push(String::new());
        }
        lines.extend(edge_lines);
    }

    println!();
    println!(
        "Kiln bench (release builds, {} cores, load average {})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        origin::loadavg().map_or("?".to_owned(), |l| format!("{l:.2}")),
    );
    println!();
    for line in &lines {
        println!("{line}");
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&Value::Object(report))?,
    )?;
    println!();
    println!("  report: {}", dir.join("report.json").display());
    Ok(())
}

/// Submit latency and ledger throughput on a fresh stack (local workerd, a sim origin).
fn edge_sections(
    requests: usize,
    dir: &std::path::Path,
) -> Result<(serde_json::Map<String, Value>, Vec<String>)> {
    let stack = Stack::start(StackConfig::bench(dir.join("stack")))?;
    let edge = stack.edge_url.clone();
    let client = Client::builder().timeout(Duration::from_secs(60)).build()?;

    let account = expect(
        client
            .post(format!("{edge}/v1/accounts"))
            .json(&json!({"email": format!("bench-{}@kiln.local", kiln_tests::random_hex(4))}))
            .send()?,
        201,
        "registering the bench account",
    )?;
    let key = account["api_key"].as_str().context("api_key")?.to_owned();
    let account_id = account["account_id"]
        .as_str()
        .context("account_id")?
        .to_owned();
    expect(
        client
            .post(format!("{edge}/admin/accounts/{account_id}/credits"))
            .bearer_auth(&stack.admin_token)
            .json(&json!({"amount_usd": 1000, "reason": "benchmark credit"}))
            .send()?,
        200,
        "crediting the bench account",
    )?;

    eprintln!("kiln: measuring (each series {requests} requests after {WARMUP} warm-up)");
    let baseline = measure(requests, || {
        expect(
            client.get(format!("{edge}/health/durable-object")).send()?,
            200,
            "probe",
        )
        .map(drop)
    })?;
    let submit = measure(requests, || {
        expect(
            client
                .post(format!("{edge}/v1/images/generations?async_mode=true"))
                .bearer_auth(&key)
                .json(&json!({"prompt": "benchmark", "size": "512x512", "steps": 8}))
                .send()?,
            202,
            "submit",
        )
        .map(drop)
    })?;

    // Rates over several bounded requests: total operations over total time.
    let ledger_rate = |target: &str, concurrency: i64| -> Result<(f64, f64)> {
        let (mut ops, mut first_ms, mut second_ms) = (0.0, 0.0, 0.0);
        for _ in 0..LEDGER_ROUNDS {
            let r = expect(
                client
                    .post(format!("{edge}/admin/ledger-bench"))
                    .bearer_auth(&stack.admin_token)
                    .json(&json!({"account_id": account_id, "holds": LEDGER_HOLDS, "concurrency": concurrency, "target": target}))
                    .send()?,
                200,
                "ledger bench",
            )?;
            ops += LEDGER_HOLDS as f64;
            first_ms += r["hold_elapsed_ms"]
                .as_f64()
                .or(r["elapsed_ms"].as_f64())
                .unwrap_or(0.0);
            second_ms += r["release_elapsed_ms"].as_f64().unwrap_or(0.0);
        }
        let per_sec = |ms: f64| if ms > 0.0 { ops * 1000.0 / ms } else { 0.0 };
        Ok((per_sec(first_ms), per_sec(second_ms)))
    };
    let mut ledger = Vec::new();
    for concurrency in [1, 32] {
        let (holds_per_sec, releases_per_sec) = ledger_rate("ledger", concurrency)?;
        let (probe_per_sec, _) = ledger_rate("probe", concurrency)?;
        ledger.push(json!({
            "concurrency": concurrency,
            "holds_per_sec": holds_per_sec,
            "releases_per_sec": releases_per_sec,
            "baseline_do_calls_per_sec": probe_per_sec,
        }));
    }

    let mut lines = vec![
        "  edge: a fresh stack (local workerd, a sim origin)".to_owned(),
        format!("  latency over {requests} requests        median      p99"),
        format!(
            "  baseline: Worker → no-op DO        {:>7.2} ms {:>7.2} ms",
            baseline.median_ms, baseline.p99_ms
        ),
        format!(
            "  submit (async image job)           {:>7.2} ms {:>7.2} ms",
            submit.median_ms, submit.p99_ms
        ),
        String::new(),
        format!(
            "  ledger, one account ({} ops)     holds/s  releases/s  baseline DO calls/s",
            LEDGER_HOLDS * LEDGER_ROUNDS
        ),
    ];
    for row in &ledger {
        lines.push(format!(
            "  concurrency {:>3}                  {:>8.0}  {:>10.0}  {:>19.0}",
            row["concurrency"].as_i64().unwrap_or(0),
            row["holds_per_sec"].as_f64().unwrap_or(0.0),
            row["releases_per_sec"].as_f64().unwrap_or(0.0),
            row["baseline_do_calls_per_sec"].as_f64().unwrap_or(0.0),
        ));
    }
    let report = json!({
        "requests": requests,
        "baseline_do_round_trip_ms": {"median": baseline.median_ms, "p99": baseline.p99_ms},
        "submit_ms": {"median": submit.median_ms, "p99": submit.p99_ms},
        "ledger": ledger,
    });
    drop(stack);
    let Value::Object(fields) = report else {
        unreachable!("a JSON object")
    };
    Ok((fields, lines))
}
