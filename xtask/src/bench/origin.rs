//! The origin's own overhead per job (`cargo xtask bench`, section `origin`).
//!
//! The release origin process runs the `comfyui` engine against kiln-tests'
//! [`FakeComfyUi`] (`step_ms` 0: the "GPU" answers at once) and reports to an
//! [`EdgeStandIn`] (verifies signatures, answers at once). Jobs are dispatched one at a
//! time, signed as the edge signs them. Three clocks are read, all `Instant`s of this one
//! process (the fake and the stand-in run on their own threads here):
//!
//! - `t0`: just before the dispatch (`POST /v1/jobs`) is sent;
//! - the fake's `received` (its `POST /prompt` handler started) and `view_served` (the
//!   output's `/view` body was handed to hyper);
//! - the stand-in's arrival of the terminal event (`completed`).
//!
//! **in** = `received − t0`: the dispatch's HTTP hop, signature check and admission,
//! the job's task, the websocket opened to ComfyUI, the graph filled, `POST /prompt` sent.
//! **out** = `terminal − view_served`: the output read off the socket and checked (PNG
//! size), the last progress events delivered, the output `PUT` to the edge (the output
//! transfer), the slot released, the `completed` event sent.
//! Not counted: `POST /prompt` → `/view` served, the fake's run (a debug build, as the
//! whole xtask is: encoding the 512×512 PNG alone took about 50 ms of it on a busy 2-core
//! machine) and the origin following its websocket and reading `/history`; it is shown,
//! with the whole job, for context.
//!
//! Beside them, in the same loop (one before each job, so both see the same load), a bare
//! axum round trip: `GET /noop` on the stand-in, the same reqwest client. The goal: in +
//! out under 20 ms plus the output transfer.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use kiln_shared::ids::JobId;
use kiln_shared::images::ImageParams;
use kiln_shared::jobs::JobParams;
use kiln_shared::origin::{DispatchJob, OriginEvent, DISPATCH_PATH};
use kiln_shared::signing::Keyring;
use kiln_tests::build::{self, Profile};
use kiln_tests::comfyui::{FakeComfyUi, FakeOptions};
use kiln_tests::edge_double::{EdgeStandIn, JobSeen};
use kiln_tests::random_hex;
use kiln_tests::stack::{detach, free_port, stop_child};
use reqwest::blocking::Client;
use serde_json::{json, Value};

use super::{series, Series};

/// Jobs measured by default, after [`WARMUP`].
pub const JOBS_DEFAULT: usize = 100;
/// The most `--jobs` accepts: a bound on the run's length (about a minute here).
pub const JOBS_MAX: usize = 1000;
/// Jobs run first and not measured (connection pools, the first websocket, page cache).
pub const WARMUP: usize = 10;
/// The goal for in + out, beside the output transfer.
pub const GOAL_MS: f64 = 20.0;
const SIDE: u32 = 512;
const STEPS: u32 = 8;
/// A bound, never a timing assertion: a broken origin fails the bench instead of hanging.
const WAIT: Duration = Duration::from_secs(60);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The origin process, stopped (with its process group) on drop.
struct OriginProcess(Option<Child>);

impl Drop for OriginProcess {
    fn drop(&mut self) {
        stop_child(&mut self.0);
    }
}

pub struct Measured {
    pub report: Value,
    pub lines: Vec<String>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The 1-minute load average, where the machine has one.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn job(seed: u64) -> Result<DispatchJob> {
    let hex = random_hex(10);
    let mut random = [0u8; 10];
    for (i, b) in random.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
    }
    let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    Ok(DispatchJob {
        job_id: JobId::generate(unix_ms, random),
        attempt: 1,
        model_id: "flux2-dev".to_owned(),
        workflow: "flux2-dev:txt2img".to_owned(),
        params: JobParams::Image(ImageParams {
            prompt: "benchmark: a kiln at dawn".to_owned(),
            width: SIDE,
            height: SIDE,
            steps: STEPS,
            cfg: 4.0,
            seed,
            n: 1,
        }),
        input_files: vec![],
        test_mode: false,
    })
}

/// Waits for the origin's `/health` to say `"status": "ok"` (ComfyUI checked and ready)
/// and for its first heartbeat at the stand-in.
fn wait_ready(client: &Client, url: &str, child: &mut Child, edge: &EdgeStandIn) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last = Value::Null;
    loop {
        if let Ok(resp) = client.get(format!("{url}/health")).send() {
            last = resp.json().unwrap_or(Value::Null);
            if last["status"] == "ok" && edge.heartbeats() > 0 {
                return Ok(());
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!("the origin exited during start-up with {status}");
        }
        if Instant::now() > deadline {
            bail!("the origin was not ready within {READY_TIMEOUT:?}: /health said {last}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One job's instants, after its terminal event.
struct Sample {
    in_ms: f64,
    /// Between in and out: the fake's run (a debug build) and the origin following it.
    prompt_to_view_ms: f64,
    out_ms: f64,
    view_to_upload_ms: f64,
    upload_to_terminal_ms: f64,
    total_ms: f64,
    output_bytes: u64,
}

fn sample(fake: &FakeComfyUi, seen: &JobSeen, job_id: &str, t0: Instant) -> Result<Sample> {
    let Some((terminal_at, event)) = &seen.terminal else {
        bail!("{job_id}: no terminal event");
    };
    let OriginEvent::Completed { outputs, .. } = event else {
        bail!("{job_id}: the job did not complete: {event:?}");
    };
    let [output] = outputs.as_slice() else {
        bail!("{job_id}: want one output, got {outputs:?}");
    };
    if (output.width, output.height) != (SIDE, SIDE) {
        bail!("{job_id}: the output is {}×{}", output.width, output.height);
    }
    let [upload] = seen.uploads.as_slice() else {
        bail!("{job_id}: want one output upload, got {:?}", seen.uploads);
    };
    // The origin names each output prefix after the job: `kiln/<job_id>-0`.
    let prompt_id = fake
        .prompts()
        .iter()
        .rev()
        .find(|p| p["prompt"].to_string().contains(job_id))
        .and_then(|p| p["prompt_id"].as_str().map(str::to_owned))
        .with_context(|| format!("{job_id}: no POST /prompt names it"))?;
    let timing = fake
        .timings()
        .into_iter()
        .find(|t| t.prompt_id == prompt_id)
        .with_context(|| format!("{job_id}: the fake has no timing for prompt {prompt_id}"))?;
    let view_served = timing
        .view_served
        .with_context(|| format!("{job_id}: its output was never fetched"))?;
    Ok(Sample {
        in_ms: ms(timing.received.duration_since(t0)),
        prompt_to_view_ms: ms(view_served.duration_since(timing.received)),
        out_ms: ms(terminal_at.duration_since(view_served)),
        view_to_upload_ms: ms(upload.at.duration_since(view_served)),
        upload_to_terminal_ms: ms(terminal_at.duration_since(upload.at)),
        total_ms: ms(terminal_at.duration_since(t0)),
        output_bytes: upload.size_bytes,
    })
}

fn json_series(s: &Series) -> Value {
    json!({"median": s.median_ms, "p99": s.p99_ms})
}

pub fn measure(jobs: usize, dir: &Path) -> Result<Measured> {
    let load_before = loadavg();
    std::fs::create_dir_all(dir)?;
    let fake = FakeComfyUi::start(FakeOptions {
        step_ms: 0,
        ..FakeOptions::default()
    })?;
    let e2o = format!("bench:{}", random_hex(32));
    let o2e = format!("bench:{}", random_hex(32));
    let edge = EdgeStandIn::start(&o2e)?;
    let e2o_keys = Keyring::parse(&e2o).map_err(|e| anyhow::anyhow!("{e}"))?;
    let origin_url = format!("http://127.0.0.1:{}", free_port()?);
    let log_path = dir.join("origin.log");
    let log = File::create(&log_path)?;
    let mut cmd = Command::new(build::origin_bin_for(Profile::Release));
    cmd.env("KILN_ORIGIN_ADDR", origin_url.trim_start_matches("http://"))
        .env("KILN_ORIGIN_ID", "bench-origin")
        .env("KILN_PUBLIC_URL", &origin_url)
        .env("KILN_EDGE_URL", edge.url())
        .env("KILN_EDGE_TO_ORIGIN_KEYS", &e2o)
        .env("KILN_ORIGIN_TO_EDGE_KEYS", &o2e)
        .env("KILN_ENGINE", "comfyui")
        .env("KILN_COMFYUI_URLS", fake.url())
        .env("KILN_COMFYUI_POLL_MS", "100")
        .env("KILN_HEARTBEAT_MS", "1000")
        .env_remove("KILN_SLOTS")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    detach(&mut cmd);
    let mut origin = OriginProcess(Some(cmd.spawn().context("starting the release origin")?));
    let client = Client::builder().timeout(Duration::from_secs(60)).build()?;
    {
        let child = origin.0.as_mut().expect("just started");
        wait_ready(&client, &origin_url, child, &edge)
            .with_context(|| format!("see {}", log_path.display()))?;
    }

    eprintln!(
        "kiln: measuring the origin's overhead ({jobs} jobs after {WARMUP} warm-up, each beside a bare axum round trip)"
    );
    let noop = format!("{}/noop", edge.url());
    let (mut baseline, mut samples) = (Vec::with_capacity(jobs), Vec::with_capacity(jobs));
    for i in 0..WARMUP + jobs {
        let t = Instant::now();
        let resp = client.get(&noop).send()?;
        let status = resp.status().as_u16();
        resp.bytes()?;
        let round_trip = ms(t.elapsed());
        if status != 200 {
            bail!("GET /noop: {status}");
        }

        let job = job(i as u64)?;
        let job_id = job.job_id.to_string();
        let body = serde_json::to_vec(&job)?;
        let signed = e2o_keys.sign(now_secs(), "POST", DISPATCH_PATH, &body);
        let mut req = client
            .post(format!("{origin_url}{DISPATCH_PATH}"))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in signed.pairs() {
            req = req.header(name, value);
        }
        let t0 = Instant::now();
        let resp = req.send()?;
        let status = resp.status().as_u16();
        if status != 202 {
            let body = resp.text().unwrap_or_default();
            bail!("dispatch {job_id}: expected 202, got {status}: {body}");
        }
        let seen = edge
            .wait_terminal(&job_id, WAIT)
            .with_context(|| format!("see {}", log_path.display()))?;
        let s = sample(&fake, &seen, &job_id, t0)?;
        if i >= WARMUP {
            baseline.push(round_trip);
            samples.push(s);
        }
    }
    if let Some(r) = edge.refused().first() {
        bail!("the stand-in refused an origin call for its signature: {r}");
    }
    if let Some(status) = origin.0.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
        bail!("the origin exited during the benchmark with {status}");
    }
    let heartbeats = edge.heartbeats();
    drop(origin);
    let load_after = loadavg();

    let pick = |f: fn(&Sample) -> f64| series(samples.iter().map(f).collect());
    let base = series(baseline);
    let in_ = pick(|s| s.in_ms);
    let out = pick(|s| s.out_ms);
    let prompt_to_view = pick(|s| s.prompt_to_view_ms);
    let view_to_upload = pick(|s| s.view_to_upload_ms);
    let upload_to_terminal = pick(|s| s.upload_to_terminal_ms);
    let total = pick(|s| s.total_ms);
    let mut sizes: Vec<u64> = samples.iter().map(|s| s.output_bytes).collect();
    sizes.sort_unstable();
    let size_median = sizes[sizes.len() / 2];
    let in_plus_out = in_.median_ms + out.median_ms;
    let verdict = if in_plus_out < GOAL_MS {
        "met (the output transfer included)"
    } else {
        "not met: see the split of out"
    };
    let load = |l: Option<f64>| l.map_or("?".to_owned(), |l| format!("{l:.2}"));

    let row = |name: &str, s: &Series| {
        format!("  {name:<36}{:>8.2} ms {:>8.2} ms", s.median_ms, s.p99_ms)
    };
    let lines = vec![
        format!(
            "  origin overhead per job, comfyui engine, fake ComfyUI answering at once ({jobs} jobs; load {} → {})",
            load(load_before),
            load(load_after)
        ),
        format!("  {:<36}{:>8}    {:>8}", "", "median", "p99"),
        row("baseline: bare axum round trip", &base),
        row("in: dispatch sent → POST /prompt", &in_),
        row("out: /view served → completed", &out),
        row("  of which /view → output PUT", &view_to_upload),
        row("  of which output PUT → completed", &upload_to_terminal),
        row("not counted: POST /prompt → /view", &prompt_to_view),
        row("whole job (dispatch → completed)", &total),
        format!(
            "  in − baseline {:.2} ms, out − baseline {:.2} ms (medians); output {SIDE}×{SIDE} PNG, {size_median} bytes",
            in_.median_ms - base.median_ms,
            out.median_ms - base.median_ms,
        ),
        format!(
            "  goal in + out < {GOAL_MS:.0} ms plus the output transfer: {in_plus_out:.2} ms (medians), {verdict}"
        ),
    ];
    let report = json!({
        "jobs": jobs,
        "warmup": WARMUP,
        "job": format!("flux2-dev:txt2img {SIDE}x{SIDE}, {STEPS} steps, n 1, test_mode false"),
        "engine": "comfyui against kiln-tests' FakeComfyUi (step_ms 0), edge stand-in",
        "baseline_axum_round_trip_ms": json_series(&base),
        "in_ms": json_series(&in_),
        "out_ms": json_series(&out),
        "out_view_to_upload_ms": json_series(&view_to_upload),
        "out_upload_to_terminal_ms": json_series(&upload_to_terminal),
        "prompt_to_view_ms": json_series(&prompt_to_view),
        "job_total_ms": json_series(&total),
        "in_minus_baseline_median_ms": in_.median_ms - base.median_ms,
        "out_minus_baseline_median_ms": out.median_ms - base.median_ms,
        "in_plus_out_median_ms": in_plus_out,
        "goal_ms": GOAL_MS,
        "output": {"width": SIDE, "height": SIDE, "median_bytes": size_median,
                   "min_bytes": sizes[0], "max_bytes": sizes[sizes.len() - 1]},
        "heartbeats": heartbeats,
        "loadavg_1m": {"before": load_before, "after": load_after},
    });
    Ok(Measured { report, lines })
}
