//! Builds the two deployables: the edge's wasm bundle (worker-build) and the origin
//! binary. Both are incremental, so a warm build takes seconds.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use crate::{run, tools, workspace_root};

/// Builds `edge/build/worker/shim.mjs` (the file wrangler.toml's `main` names).
pub fn edge() -> Result<()> {
    eprintln!("kiln: building the edge (wasm)");
    run(Command::new(tools::worker_build_bin())
        .arg("--dev")
        .arg("--no-opt")
        .current_dir(workspace_root().join("edge"))
        .env("WASM_BINDGEN_BIN", tools::wasm_bindgen_bin())
        .env("ESBUILD_BIN", tools::esbuild_bin()))
}

/// Builds the origin binary and returns its path.
pub fn origin() -> Result<PathBuf> {
    eprintln!("kiln: building the origin");
    run(Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "kiln-origin"])
        .current_dir(workspace_root()))?;
    Ok(origin_bin())
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

pub fn origin_bin() -> PathBuf {
    target_dir().join("debug/kiln-origin")
}

pub fn edge_bundle() -> PathBuf {
    workspace_root().join("edge/build/worker/shim.mjs")
}
