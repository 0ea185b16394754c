//! Installs the tools the edge build needs, pinned, when missing or at the wrong
//! version. Everything comes from crates.io, rustup and the npm registry: worker-build
//! would otherwise download wasm-bindgen and esbuild from hosts that may be
//! unreachable, so it is pointed at local copies through `WASM_BINDGEN_BIN` and
//! `ESBUILD_BIN`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

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

/// One tool installed with `cargo install`.
struct CargoTool {
    krate: &'static str,
    version: String,
}

/// Release-profile overrides for `cargo install`: the tools only run a few seconds per
/// build, so they are compiled at `opt-level=1`, without LTO or debug info, which takes
/// a fraction of a full optimisation's time.
const FAST_INSTALL_PROFILE: [(&str, &str); 4] = [
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1"),
    ("CARGO_PROFILE_RELEASE_LTO", "off"),
    ("CARGO_PROFILE_RELEASE_DEBUG", "0"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
];

/// Whether a failed `cargo install --locked` stopped before compiling anything, i.e.
/// the lockfile shipped in the crate does not resolve against this registry.
pub fn failed_before_compiling(log: &str) -> bool {
    !log.lines()
        .any(|l| l.trim_start().starts_with("Compiling "))
}

fn install_log_dir() -> PathBuf {
    crate::build::target_dir().join("tools")
}

fn cargo_install_once(tool: &CargoTool, locked: bool, log: &Path) -> Result<bool> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["install", tool.krate, "--version", &tool.version]);
    if locked {
        cmd.arg("--locked");
    }
    cmd.envs(FAST_INSTALL_PROFILE)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    let status = cmd
        .status()
        .with_context(|| format!("starting cargo install {}", tool.krate))?;
    Ok(status.success())
}

/// Installs one tool: first with `--locked` (the versions its authors tested); when that
/// lockfile does not resolve against the registry this machine reaches, once more
/// without it. Output goes to `target/tools/<crate>.log`; its tail is shown on failure.
fn cargo_install(tool: &CargoTool) -> Result<()> {
    let started = Instant::now();
    let dir = install_log_dir();
    std::fs::create_dir_all(&dir)?;
    let log = dir.join(format!("{}.log", tool.krate));
    let (krate, version) = (tool.krate, &tool.version);
    if !cargo_install_once(tool, true, &log)? {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if !failed_before_compiling(&text) {
            bail!(
                "installing {krate} {version} failed:\n{}\n(full log: {})",
                tail(&text, 30),
                log.display()
            );
        }
        let reason = text
            .lines()
            .find(|l| l.starts_with("error"))
            .unwrap_or("error: its lockfile does not resolve");
        eprintln!("kiln: {krate} {version} with --locked does not resolve here ({reason}); installing without --locked");
        if !cargo_install_once(tool, false, &log)? {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "installing {krate} {version} failed:\n{}\n(full log: {})",
                tail(&text, 30),
                log.display()
            );
        }
    }
    eprintln!(
        "kiln: installed {krate} {version} in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Installs the missing tools side by side: each crate's build has long stretches that
/// use one core, so two at once finish well before two in a row.
fn cargo_install_all(tools: &[CargoTool]) -> Result<()> {
    if tools.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = tools
        .iter()
        .map(|t| format!("{} {}", t.krate, t.version))
        .collect();
    eprintln!(
        "kiln: installing {} (once per machine, a few minutes; logs in {})",
        names.join(" and "),
        install_log_dir().display()
    );
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = tools
            .iter()
            .map(|t| s.spawn(move || cargo_install(t)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("install thread panicked")))
            })
            .collect()
    });
    results.into_iter().collect()
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
    let mut missing = Vec::new();
    // worker-build prints no version; its crate version is recorded by cargo install.
    let crates2 = std::fs::read_to_string(cargo_home().join(".crates2.json")).unwrap_or_default();
    let wb_ok = worker_build_bin().exists()
        && crates2.contains(&format!("worker-build {WORKER_BUILD_VERSION} "));
    if !wb_ok {
        missing.push(CargoTool {
            krate: "worker-build",
            version: WORKER_BUILD_VERSION.into(),
        });
    }
    let wbg = locked_wasm_bindgen_version()?;
    if installed_version(&wasm_bindgen_bin()).as_deref() != Some(wbg.as_str()) {
        missing.push(CargoTool {
            krate: "wasm-bindgen-cli",
            version: wbg,
        });
    }
    cargo_install_all(&missing)?;
    ensure_ffprobe()?;
    ensure_npm_packages()?;
    ensure_python_client()
}

/// The project-local virtualenv (`.venv`) with the official OpenAI Python client, which
/// the end-to-end tests drive Kiln with, and Schemathesis, which checks the edge against
/// its OpenAPI document.
pub fn venv_python() -> PathBuf {
    workspace_root().join(".venv/bin/python")
}

/// Schemathesis's command line in `.venv`.
pub fn schemathesis_bin() -> PathBuf {
    workspace_root().join(".venv/bin/schemathesis")
}

/// The pinned Python sets installed into `.venv`, each with the one package whose pin
/// the fallback keeps: `tests/python/requirements.txt` (the OpenAI client) and
/// `tests/python/schemathesis.txt`.
const PYTHON_SETS: [(&str, &str); 2] = [
    ("tests/python/requirements.txt", "openai"),
    ("tests/python/schemathesis.txt", "schemathesis"),
];

/// Creates `.venv` and installs the pinned Python sets ([`PYTHON_SETS`]) when missing
/// or stale (the stamp is older than a requirements file). When a pinned set cannot be
/// installed from the registry this machine reaches, installs its main package's own
/// pin with its dependencies resolved, said in one line.
fn ensure_python_client() -> Result<()> {
    let root = workspace_root();
    let stamp = root.join(".venv/.kiln-installed");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let stamped = modified(&stamp);
    let fresh = venv_python().exists()
        && schemathesis_bin().exists()
        && PYTHON_SETS.iter().all(|(file, _)| {
            stamped
                .zip(modified(&root.join(file)))
                .is_some_and(|(s, r)| s >= r)
        });
    if fresh {
        return Ok(());
    }
    eprintln!(
        "kiln: installing the OpenAI Python client and Schemathesis into .venv ({})",
        PYTHON_SETS.map(|(file, _)| file).join(", ")
    );
    if !venv_python().exists() {
        run(Command::new("python3")
            .args(["-m", "venv"])
            .arg(root.join(".venv"))
            .stdin(Stdio::null()))?;
    }
    let pip = |args: &[&str]| {
        Command::new(venv_python())
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(args)
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    for (file, package) in PYTHON_SETS {
        let requirements = root.join(file);
        if pip(&["-r", &requirements.to_string_lossy()]) {
            continue;
        }
        let pin = std::fs::read_to_string(&requirements)?
            .lines()
            .find(|l| l.starts_with(&format!("{package}==")))
            .map(str::to_owned)
            .with_context(|| format!("{file} pins no {package}"))?;
        eprintln!("kiln: the pinned Python set {file} does not install here; installing {pin} with its dependencies resolved");
        if !pip(&[&pin]) {
            bail!("installing {pin} failed (see pip's output above)");
        }
    }
    std::fs::write(&stamp, b"")?;
    Ok(())
}

/// `npm ci` from package-lock.json; when the lockfile cannot be installed from the
/// registry this machine reaches, `npm install` without it, said in one line.
fn ensure_npm_packages() -> Result<()> {
    let root = workspace_root();
    let lock = root.join("package-lock.json");
    let stamp = root.join("node_modules/.kiln-installed");
    let npm_fresh = wrangler_bin().exists()
        && esbuild_bin().exists()
        && std::fs::metadata(&stamp)
            .and_then(|s| s.modified())
            .ok()
            .zip(std::fs::metadata(&lock).and_then(|l| l.modified()).ok())
            .is_some_and(|(s, l)| s >= l);
    if npm_fresh {
        return Ok(());
    }
    eprintln!("kiln: installing npm packages (wrangler) from package-lock.json");
    let npm = |args: &[&str]| {
        Command::new("npm")
            .args(args)
            .args(["--no-audit", "--no-fund"])
            .current_dir(&root)
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !npm(&["ci"]) {
        eprintln!("kiln: npm ci could not install package-lock.json here; installing package.json's pins without the lockfile");
        if !npm(&["install", "--package-lock=false"]) {
            bail!("installing the npm packages failed (see npm's output above)");
        }
    }
    std::fs::write(&stamp, b"")?;
    Ok(())
}

/// `ffprobe`, which the end-to-end tests use to check that video outputs are real H.264.
pub fn ffprobe_bin() -> PathBuf {
    PathBuf::from("ffprobe")
}

/// Installs Debian's `ffmpeg` package (for `ffprobe`) when it is missing.
fn ensure_ffprobe() -> Result<()> {
    let present = Command::new(ffprobe_bin())
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    apt_install(&["ffmpeg"], "ffmpeg (for ffprobe)")
}

/// Debian's Chromium, which the dashboard's browser test drives headless.
pub fn chromium_bin() -> PathBuf {
    // The real binary: /usr/bin/chromium is a wrapper script that reads /etc/chromium.d.
    let real = PathBuf::from("/usr/lib/chromium/chromium");
    if real.exists() {
        real
    } else {
        PathBuf::from("chromium")
    }
}

/// Debian's chromedriver (package `chromium-driver`), the WebDriver server for it.
pub fn chromedriver_bin() -> PathBuf {
    PathBuf::from("chromedriver")
}

/// Installs Debian's `chromium` and `chromium-driver` when either is missing. Only the
/// tests need a browser, so `cargo xtask test` calls this and `dev` and `build` do not.
pub fn ensure_chromium() -> Result<()> {
    let works = |bin: PathBuf| {
        Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works(chromium_bin()) && works(chromedriver_bin()) {
        return Ok(());
    }
    apt_install(
        &["chromium", "chromium-driver", "fonts-liberation"],
        "Chromium and chromedriver (for the dashboard's browser test)",
    )
}

/// Installs Debian packages with apt-get: as root, otherwise through passwordless sudo;
/// never prompts.
fn apt_install(packages: &[&str], what: &str) -> Result<()> {
    eprintln!("kiln: installing {what} with apt-get");
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
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(packages);
    apt(&install).with_context(|| {
        format!(
            "installing {what}; install it by hand (`apt-get install {}`) if this fails",
            packages.join(" ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::failed_before_compiling;

    #[test]
    fn a_lockfile_that_does_not_resolve_fails_before_compiling() {
        let log = "    Updating crates.io index
  Installing wasm-bindgen-cli v0.2.130
error: failed to select a version for the requirement `webpki-roots = \"^1.0.10\"` (locked to 1.0.11)
candidate versions found which didn't match: 1.0.10, 1.0.9, 1.0.8";
        assert!(failed_before_compiling(log));
        let compile_error = "  Installing worker-build v0.8.7
   Compiling proc-macro2 v1.0.95
error[E0599]: no method named `foo`";
        assert!(!failed_before_compiling(compile_error));
    }
}
