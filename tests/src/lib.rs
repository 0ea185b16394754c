//! The local Kiln stack, shared by `cargo xtask` and the end-to-end tests so both start
//! exactly the same thing.
//!
//! - [`tools`] — installs what a fresh machine lacks (wasm target, pinned worker-build,
//!   wasm-bindgen-cli at the Cargo.lock version, npm packages).
//! - [`background`] — a test server on its own thread and runtime, stopped on drop.
//! - [`build`] — builds the edge bundle and the origin binary.
//! - [`comfyui`] — a stand-in ComfyUI 0.26.0 server for testing the origin's ComfyUI client.
//! - [`edge_double`] — a stand-in for the edge's internal endpoints, with which
//!   `cargo xtask bench` times the origin on its own.
//! - [`schemathesis`] — the OpenAPI conformance run against a live stack.
//! - [`stack`] — starts `wrangler dev` (workerd) and N origins on chosen or free ports,
//!   with fresh signing keys, and stops them (whole process groups) on drop.

pub mod background;
pub mod build;
pub mod comfyui;
pub mod edge_double;
pub mod receiver;
pub mod schemathesis;
pub mod stack;
pub mod tools;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Runs a command to completion, failing with its name and status.
pub fn run(cmd: &mut Command) -> Result<()> {
    let desc = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {desc}"))?;
    if !status.success() {
        bail!("{desc} failed with {status}");
    }
    Ok(())
}

/// Runs a command and returns its stdout, or `None` when it cannot run or fails.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Hex of `n` random bytes, for secrets.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("OS randomness");
    hex::encode(buf)
}
