//! Builds the two deployables: the edge's wasm bundle (worker-build) and the origin
//! binary. Both are incremental, so a warm build takes seconds.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use crate::{run, tools, workspace_root};

/// Debug builds for development and tests (fast to build); release for benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

/// Builds `edge/build/worker/shim.mjs` (the file wrangler.toml's `main` names).
pub fn edge(profile: Profile) -> Result<()> {
    eprintln!("kiln: building the edge (wasm, {profile:?})");
    let flag = match profile {
        Profile::Debug => "--dev",
        Profile::Release => "--release",
    };
    run(Command::new(tools::worker_build_bin())
        .arg(flag)
        .arg("--no-opt")
        .current_dir(workspace_root().join("edge"))
        .env("WASM_BINDGEN_BIN", tools::wasm_bindgen_bin())
        .env("ESBUILD_BIN", tools::esbuild_bin()))
}

/// Builds the origin binary and returns its path.
pub fn origin(profile: Profile) -> Result<PathBuf> {
    eprintln!("kiln: building the origin ({profile:?})");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", "kiln-origin"]);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    run(cmd.current_dir(workspace_root()))?;
    Ok(origin_bin_for(profile))
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The debug origin binary, which the tests run.
pub fn origin_bin() -> PathBuf {
    origin_bin_for(Profile::Debug)
}

pub fn origin_bin_for(profile: Profile) -> PathBuf {
    match profile {
        Profile::Debug => target_dir().join("debug/kiln-origin"),
        Profile::Release => target_dir().join("release/kiln-origin"),
    }
}

pub fn edge_bundle() -> PathBuf {
    workspace_root().join("edge/build/worker/shim.mjs")
}
