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

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// Builds the edge bundle into `edge/build/<debug|release>/`, one folder per profile, so
/// a release build (the benchmark's) never replaces the debug build a running
/// `cargo xtask dev` serves. wrangler.toml's `main` names the release bundle (what
/// `wrangler deploy` ships); the local stack names its bundle itself.
pub fn edge(profile: Profile) -> Result<()> {
    eprintln!("kiln: building the edge (wasm, {profile:?})");
    let flag = match profile {
        Profile::Debug => "--dev",
        Profile::Release => "--release",
    };
    run(Command::new(tools::worker_build_bin())
        .arg(flag)
        .arg("--no-opt")
        .args(["--out-dir", &format!("build/{}", profile.dir())])
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
    target_dir().join(profile.dir()).join("kiln-origin")
}

/// The debug edge bundle, which the tests and `cargo xtask dev` run.
pub fn edge_bundle() -> PathBuf {
    edge_bundle_for(Profile::Debug)
}

pub fn edge_bundle_for(profile: Profile) -> PathBuf {
    workspace_root()
        .join("edge/build")
        .join(profile.dir())
        .join("worker/shim.mjs")
}
