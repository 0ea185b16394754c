//! The OpenAPI conformance run: Schemathesis (pinned in `tests/python/schemathesis.txt`,
//! installed into `.venv` by [`crate::tools`]) against a live stack's `/openapi.json`,
//! as an outside tool would see Kiln. Settings (seed, examples, checks, what is left
//! out and why) are in `tests/schemathesis.toml`; docs/schemathesis.md explains them.
//!
//! The stack and Schemathesis run in a network namespace of their own that has only a
//! loopback interface ([`in_private_network`]): generated bodies carry `replyUrl`s to
//! arbitrary public hosts, and the edge would otherwise try to deliver webhooks there.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::receiver::Receiver;
use crate::stack::{Stack, StackConfig};
use crate::{build, tools, workspace_root};

/// Set in the environment of the process that runs inside the private network.
pub const IN_NETNS_ENV: &str = "KILN_SCHEMATHESIS_NETNS";

/// The settings file passed to Schemathesis.
pub fn config_file() -> PathBuf {
    workspace_root().join("tests/schemathesis.toml")
}

/// The hooks Schemathesis loads (webhook destinations; see the file).
pub fn hooks_file() -> PathBuf {
    workspace_root().join("tests/python/schemathesis_hooks.py")
}

/// Where the run keeps its stack's state and logs, and Schemathesis's reports.
pub fn work_dir() -> PathBuf {
    build::target_dir().join("schemathesis")
}

/// The stack the run checks: the end-to-end tests' configuration with a rate limit the
/// run cannot reach (it checks the document, not the throttle, and 429 is documented
/// everywhere a key is taken, so it would only hide the answers it replaces).
pub fn stack_config(state_dir: PathBuf) -> StackConfig {
    StackConfig {
        rate_limit_per_min: 1_000_000,
        ..StackConfig::test(state_dir)
    }
}

/// Whether this process runs in a network namespace with only the loopback interface.
pub fn in_private_network() -> bool {
    let Ok(dev) = std::fs::read_to_string("/proc/net/dev") else {
        return false;
    };
    // Two header lines, then one line per interface.
    dev.lines()
        .skip(2)
        .all(|l| l.trim_start().starts_with("lo:"))
}

/// `command` re-run in a new network namespace whose only interface is loopback (up):
/// `unshare --net` as root, else with `--map-root-user` (a user namespace), which needs
/// unprivileged user namespaces.
pub fn private_network_command(program: &Path, args: &[String]) -> Result<Command> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut unshare = Command::new("unshare");
    unshare.arg("--net");
    if !root {
        unshare.arg("--map-root-user");
    }
    let probe = Command::new("unshare")
        .args(unshare.get_args())
        .args(["--", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        bail!(
            "the Schemathesis run needs a private network namespace (`unshare --net`{}), \
             so that webhooks to the public hosts in generated `replyUrl`s go nowhere; \
             this machine does not allow one",
            if root { "" } else { " --map-root-user" }
        );
    }
    unshare
        .args(["--", "sh", "-c", r#"ip link set lo up && exec "$0" "$@""#])
        .arg(program)
        .args(args)
        .env(IN_NETNS_ENV, "1");
    Ok(unshare)
}

/// Registers an account on the stack and makes it an `sk-test-` key: generations with
/// it cost nothing and run on the sim.
pub fn test_key(edge_url: &str) -> Result<String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let post = |path: &str, key: Option<&str>, body: Value| -> Result<Value> {
        let mut req = client.post(format!("{edge_url}{path}")).json(&body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().with_context(|| format!("POST {path}"))?;
        let status = resp.status();
        let body: Value = resp.json().with_context(|| format!("POST {path}: body"))?;
        if !status.is_success() {
            bail!("POST {path} answered {status}: {body}");
        }
        Ok(body)
    };
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let account = post(
        "/v1/accounts",
        None,
        json!({"email": format!("schemathesis-{millis}@kiln.local")}),
    )?;
    let trial = account["api_key"]
        .as_str()
        .context("account without api_key")?;
    let key = post(
        "/v1/keys",
        Some(trial),
        json!({"mode": "test", "label": "schemathesis"}),
    )?;
    key["api_key"]
        .as_str()
        .map(str::to_owned)
        .context("key without api_key")
}

/// Runs Schemathesis against `edge_url` with `key`; its report goes to this terminal
/// (and JUnit XML to `report_dir`). Fails when Schemathesis reports anything.
pub fn run_against(edge_url: &str, key: &str, report_dir: &Path) -> Result<()> {
    let bin = tools::schemathesis_bin();
    if !bin.exists() {
        bail!(
            "{} is missing: run `cargo xtask build` first",
            bin.display()
        );
    }
    std::fs::create_dir_all(report_dir)?;
    // Generated webhook destinations go to this receiver (tests/python/schemathesis_hooks.py).
    let receiver = Receiver::start();
    let status = Command::new(&bin)
        .arg("--config-file")
        .arg(config_file())
        .args(["--no-color", "run"])
        .arg(format!("{edge_url}/openapi.json"))
        .args(["--url", edge_url])
        .args(["--report", "junit"])
        .arg("--report-dir")
        .arg(report_dir)
        .current_dir(report_dir)
        .env(KEY_ENV, key)
        .env("SCHEMATHESIS_HOOKS", hooks_file())
        .env("KILN_SCHEMATHESIS_RECEIVER", receiver.url("/schemathesis"))
        .status()
        .with_context(|| format!("starting {}", bin.display()))?;
    if !status.success() {
        bail!("Schemathesis found failures (its report is above; JUnit XML in {}; the stack's logs in {})",
            report_dir.display(), report_dir.parent().unwrap_or(report_dir).join("stack").display());
    }
    Ok(())
}

/// The environment variable `tests/schemathesis.toml` reads the key from.
pub const KEY_ENV: &str = "KILN_SCHEMATHESIS_KEY";

/// The whole run, inside the private network: a fresh stack, a test key, Schemathesis.
/// The edge and the origin must be built.
pub fn run() -> Result<()> {
    if !in_private_network() {
        bail!("the Schemathesis run must run in a private network namespace (see `private_network_command`)");
    }
    let started = Instant::now();
    let dir = work_dir();
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "kiln: starting a stack for Schemathesis (state and logs in {})",
        dir.join("stack").display()
    );
    let stack = Stack::start(stack_config(dir.join("stack")))?;
    let key = test_key(&stack.edge_url)?;
    let result = run_against(&stack.edge_url, &key, &dir.join("report"));
    drop(stack);
    eprintln!("kiln: the Schemathesis run took {:.0?}", started.elapsed());
    result
}
