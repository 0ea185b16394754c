//! Installs the tools the edge build needs, pinned, when missing or at the wrong
//! version. Everything comes from crates.io, rustup and the npm registry: worker-build
//! would otherwise download wasm-bindgen and esbuild from hosts that may be
//! unreachable, so it is pointed at local copies through `WASM_BINDGEN_BIN` and
//! `ESBUILD_BIN`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::{output, run, workspace_root};

/// worker-build's minor version must match the `worker` crate's (0.8).
pub const WORKER_BUILD_VERSION: &str = "0.8.7";

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        })
}

fn cargo_bin(name: &str) -> PathBuf {
    cargo_home().join("bin").join(name)
}

pub fn worker_build_bin() -> PathBuf {
    cargo_bin("worker-build")
}

pub fn wasm_bindgen_bin() -> PathBuf {
    cargo_bin("wasm-bindgen")
}

pub fn esbuild_bin() -> PathBuf {
    workspace_root().join("node_modules/.bin/esbuild")
}

pub fn wrangler_bin() -> PathBuf {
    workspace_root().join("node_modules/.bin/wrangler")
}

/// The wasm-bindgen version Cargo.lock pins; the CLI must match it exactly.
pub fn locked_wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock"))
        .context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_owned());
            }
        }
    }
    anyhow::bail!("wasm-bindgen is not in Cargo.lock")
}

fn installed_version(bin: &PathBuf) -> Option<String> {
    // `worker-build --version` exits non-zero; `wasm-bindgen --version` prints "wasm-bindgen X".
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_owned)
}

fn cargo_install(krate: &str, version: &str) -> Result<()> {
    eprintln!("kiln: installing {krate} {version} (once per machine, a few minutes)");
    run(Command::new(env!("CARGO")).args(["install", krate, "--version", version, "--locked"]))
}

/// Installs whatever is missing. Quiet and quick when everything is present.
pub fn ensure() -> Result<()> {
    let targets =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !targets
        .lines()
        .any(|t| t.trim() == "wasm32-unknown-unknown")
    {
        eprintln!("kiln: adding the wasm32-unknown-unknown target");
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    // worker-build prints no version; its crate version is recorded by cargo install.
    let crates2 = std::fs::read_to_string(cargo_home().join(".crates2.json")).unwrap_or_default();
    let wb_ok = worker_build_bin().exists()
        && crates2.contains(&format!("worker-build {WORKER_BUILD_VERSION} "));
    if !wb_ok {
        cargo_install("worker-build", WORKER_BUILD_VERSION)?;
    }
    let wbg = locked_wasm_bindgen_version()?;
    if installed_version(&wasm_bindgen_bin()).as_deref() != Some(wbg.as_str()) {
        cargo_install("wasm-bindgen-cli", &wbg)?;
    }
    ensure_ffprobe()?;
    let root = workspace_root();
    let lock = root.join("package-lock.json");
    let stamp = root.join("node_modules/.package-lock.json");
    let npm_fresh = wrangler_bin().exists()
        && esbuild_bin().exists()
        && std::fs::metadata(&stamp)
            .and_then(|s| s.modified())
            .ok()
            .zip(std::fs::metadata(&lock).and_then(|l| l.modified()).ok())
            .is_some_and(|(s, l)| s >= l);
    if !npm_fresh {
        eprintln!("kiln: installing npm packages (wrangler) from package-lock.json");
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&root))?;
    }
    Ok(())
}

/// `ffprobe`, which the end-to-end tests use to check that video outputs are real H.264.
pub fn ffprobe_bin() -> PathBuf {
    PathBuf::from("ffprobe")
}

/// Installs Debian's `ffmpeg` package (for `ffprobe`) when it is missing: as root with
/// apt-get, otherwise through passwordless sudo; never prompts.
fn ensure_ffprobe() -> Result<()> {
    let present = Command::new(ffprobe_bin())
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!("kiln: installing ffmpeg (for ffprobe) with apt-get");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let apt = |args: &[&str]| -> Result<()> {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "apt-get"]);
            c
        };
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null());
        run(&mut cmd)
    };
    apt(&["update", "-qq"])?;
    apt(&["install", "-y", "-qq", "--no-install-recommends", "ffmpeg"])
        .context("installing ffmpeg; install it by hand (`apt-get install ffmpeg`) if this fails")
}
