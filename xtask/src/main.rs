//! `cargo xtask <command>`: the one place that knows how to install, build and start
//! Kiln. Everything a fresh machine lacks is installed on first use.
//!
//! - `dev [--edge-port 8787] [--origin-port 8788] [--origins N] [--engine sim|comfyui]
//!   [--comfyui-url URL]…` — the whole stack locally with the sim engine (or the comfyui
//!   engine against existing ComfyUI servers), a development account, and a curl line
//!   that works.
//! - `test` — formatting, lints (native and wasm), unit tests, then end-to-end tests
//!   against the real stack on free ports. `.ci/run` runs exactly this.
//! - `build [--release]` — installs what is missing and builds the edge and the origin
//!   (debug, as `dev` and `test` do; `--release` for a deploy), without starting anything.
//! - `bench [--only origin|edge] [--jobs N] [--requests N]` — release builds: the origin's
//!   own overhead per job (comfyui engine against a fake ComfyUI that answers at once)
//!   beside a bare axum round trip; then, on a fresh stack, ledger throughput on one
//!   account and submit-path latency, each beside a minimal Worker → Durable Object
//!   round trip.
//! - `openapi` — writes `docs/openapi.json` and `docs/llms.txt` from the code
//!   (`kiln_shared::openapi`); `test` fails when the committed files differ.
//! - `schemathesis` — the OpenAPI conformance run alone: Schemathesis against a fresh
//!   stack's `/openapi.json` (docs/schemathesis.md).

mod bench;
mod openapi;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kiln_tests::build::Profile;
use kiln_tests::stack::{OriginEngine, Stack, StackConfig};
use kiln_tests::{build, run, schemathesis, tools, workspace_root};
use serde_json::{json, Value};

const USAGE: &str = "usage: cargo xtask dev [--edge-port 8787] [--origin-port 8788] [--origins N]
                       [--engine sim|comfyui] [--comfyui-url http://127.0.0.1:8188]…
       cargo xtask test
       cargo xtask schemathesis
       cargo xtask build [--release]
       cargo xtask bench [--only origin|edge] [--jobs N] [--requests N]
       cargo xtask openapi";

fn main() {
    if let Err(e) = real_main() {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("dev") => dev(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("openapi") if args.len() == 1 => openapi::write(),
        Some("schemathesis-inner") => schemathesis_run(),
        Some("schemathesis") if args.len() == 1 => {
            tools::ensure()?;
            build::edge(Profile::Debug)?;
            build::origin(Profile::Debug)?;
            schemathesis_run()
        }
        Some("build") => {
            let profile = match &args[1..] {
                [] => Profile::Debug,
                [flag] if flag == "--release" => Profile::Release,
                _ => bail!("{USAGE}"),
            };
            tools::ensure()?;
            build::edge(profile)?;
            build::origin(profile)?;
            eprintln!(
                "kiln: built {} and {}",
                build::edge_bundle_for(profile).display(),
                build::origin_bin_for(profile).display()
            );
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

pub(crate) fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{name} needs a value\n{USAGE}")),
    }
}

fn dev(args: &[String]) -> Result<()> {
    let edge_port: u16 = flag(args, "--edge-port", 8787)?;
    let origin_port: u16 = flag(args, "--origin-port", 8788)?;
    let origins: usize = flag(args, "--origins", 1)?;
    if origins == 0 {
        bail!("--origins must be at least 1");
    }
    let engine = dev_engine(args)?;
    if origins > 1 && engine != OriginEngine::Sim {
        bail!("with --engine comfyui one origin drives every server: give each GPU's ComfyUI with --comfyui-url instead of --origins");
    }
    tools::ensure()?;
    build::edge(Profile::Debug)?;
    build::origin(Profile::Debug)?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;

    let engine_name = match &engine {
        OriginEngine::Sim => "sim engine".to_owned(),
        OriginEngine::ComfyUi { urls, .. } => format!("comfyui engine: {}", urls.join(", ")),
    };
    let mut stack = Stack::start(StackConfig {
        engine,
        ..StackConfig::dev(edge_port, origin_port, origins)
    })?;
    let api_key = dev_account(&stack.edge_url)?;
    let dev_json = json!({
        "edge_url": stack.edge_url,
        "origin_url": stack.origins[0].url,
        "origin_urls": stack.origins.iter().map(|o| o.url.clone()).collect::<Vec<_>>(),
        "api_key": api_key,
        "admin_token": stack.admin_token,
    });
    let kiln_dir = workspace_root().join(".kiln");
    std::fs::create_dir_all(&kiln_dir)?;
    std::fs::write(
        kiln_dir.join("dev.json"),
        serde_json::to_string_pretty(&dev_json)?,
    )?;

    println!();
    println!("Kiln is running ({engine_name}). Ctrl-C stops everything.");
    if engine_name.starts_with("comfyui") {
        println!("  The origin's /health says whether ComfyUI is ready (version, models, VRAM);");
        println!("  sk-test- keys still run on the sim.");
    }
    println!("  edge:      {}", stack.edge_url);
    println!(
        "  dashboard: {}/ (sign in with the API key below)",
        stack.edge_url
    );
    for o in &stack.origins {
        println!("  origin:    {} ({})", o.url, o.id);
    }
    println!("  API key:   {api_key}");
    println!("  (also in .kiln/dev.json)");
    println!();
    println!("Try it:");
    println!(
        "  curl -s {}/v1/images/generations -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' -d '{{\"prompt\": \"a kiln at dawn\", \"width\": 1024, \"height\": 768}}'",
        stack.edge_url
    );
    println!("A video (LTX-2.3, 5 s at 1920×1088), queued, then followed live:");
    println!(
        "  curl -s '{}/v1/video/generations?async_mode=true' -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' -d '{{\"prompt\": \"waves at dusk\"}}'",
        stack.edge_url
    );
    println!(
        "  curl -N '{}/v1/jobs/<job_id>/stream?key={api_key}'",
        stack.edge_url
    );
    println!();

    while !stop.load(Ordering::SeqCst) {
        if let Some(which) = stack.exited() {
            stack.stop();
            bail!("{which} exited; stopping the stack");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("\nstopping…");
    stack.stop();
    Ok(())
}

/// `--engine sim|comfyui` and the `--comfyui-url` list (repeatable or comma-separated);
/// other `KILN_COMFYUI_*` settings come from the environment, which the origins inherit.
fn dev_engine(args: &[String]) -> Result<OriginEngine> {
    let engine: String = flag(args, "--engine", "sim".to_owned())?;
    let urls: Vec<String> = args
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "--comfyui-url")
        .map(|(i, _)| {
            args.get(i + 1)
                .cloned()
                .context("--comfyui-url needs a URL")
        })
        .collect::<Result<Vec<_>>>()?
        .iter()
        .flat_map(|u| u.split(','))
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    match engine.as_str() {
        "sim" if urls.is_empty() => Ok(OriginEngine::Sim),
        "sim" => bail!("--comfyui-url needs --engine comfyui"),
        "comfyui" if urls.is_empty() => {
            bail!("--engine comfyui needs --comfyui-url http://HOST:PORT (one per GPU)")
        }
        "comfyui" => Ok(OriginEngine::ComfyUi {
            urls,
            env: Vec::new(),
        }),
        other => bail!("--engine {other:?}: want sim or comfyui"),
    }
}

/// Reuses the key in `.kiln/dev.json` while it still works (state persists across runs),
/// otherwise registers a new development account.
fn dev_account(edge_url: &str) -> Result<String> {
    let client = reqwest::blocking::Client::new();
    let saved: Option<String> = std::fs::read_to_string(workspace_root().join(".kiln/dev.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v["api_key"].as_str().map(str::to_owned));
    if let Some(key) = saved {
        let ok = client
            .get(format!("{edge_url}/v1/credits"))
            .bearer_auth(&key)
            .send()
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(key);
        }
    }
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let resp = client
        .post(format!("{edge_url}/v1/accounts"))
        .json(&json!({"email": format!("dev-{millis}@kiln.local")}))
        .send()?;
    let status = resp.status();
    let body: Value = resp.json()?;
    if !status.is_success() {
        bail!("creating the development account failed: {status} {body}");
    }
    body["api_key"]
        .as_str()
        .map(str::to_owned)
        .context("account response without api_key")
}

/// The Schemathesis run (kiln_tests::schemathesis), in a private network namespace:
/// this binary runs again inside one (`schemathesis-inner`, with
/// `KILN_SCHEMATHESIS_NETNS` set), and starts the stack and Schemathesis there.
fn schemathesis_run() -> Result<()> {
    if std::env::var_os(schemathesis::IN_NETNS_ENV).is_some() {
        return schemathesis::run();
    }
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    run(&mut schemathesis::private_network_command(
        &exe,
        &["schemathesis-inner".to_owned()],
    )?)
}

fn cargo() -> Command {
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(workspace_root());
    c
}

fn test(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("{USAGE}");
    }
    let started = Instant::now();
    tools::ensure()?;
    tools::ensure_chromium()?;
    eprintln!("kiln: checking formatting and lints");
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--quiet",
        "--workspace",
        "--exclude",
        "kiln-edge",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args([
        "clippy",
        "--quiet",
        "-p",
        "kiln-edge",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ]))?;
    build::edge(Profile::Debug)?;
    build::origin(Profile::Debug)?;
    eprintln!("kiln: unit and end-to-end tests");
    run(cargo().args(["test", "--workspace", "--exclude", "kiln-edge"]))?;
    // Last: the OpenAPI conformance run against a fresh stack (docs/schemathesis.md).
    schemathesis_run()?;
    eprintln!("kiln: all checks passed in {:.0?}", started.elapsed());
    Ok(())
}
