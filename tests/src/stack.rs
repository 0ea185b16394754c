//! Starts and stops the whole local stack: `wrangler dev` (workerd with local Durable
//! Objects and R2) and N origin processes with the sim engine (or the comfyui engine,
//! pointed at ComfyUI servers: [`OriginEngine`]), wired together with
//! fresh signing keys. Each child runs in its own process group, which is killed on
//! drop; children also get SIGTERM if the process that started them dies.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{build, random_hex, tools, workspace_root};

/// wrangler's first start compiles and boots workerd; allow for a slow, shared machine.
const EDGE_READY_TIMEOUT: Duration = Duration::from_secs(120);
const ORIGIN_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The engine of the stack's origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginEngine {
    Sim,
    /// `KILN_ENGINE=comfyui` with these ComfyUI servers (one slot each; `origin_slots`
    /// does not apply) and any other `KILN_COMFYUI_*` settings.
    ComfyUi {
        urls: Vec<String>,
        env: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone)]
pub struct StackConfig {
    /// `None` picks a free port.
    pub edge_port: Option<u16>,
    /// One entry per origin; `None` picks a free port.
    pub origin_ports: Vec<Option<u16>>,
    /// wrangler's `--persist-to` (Durable Objects, R2), its env file, and logs.
    pub state_dir: PathBuf,
    /// Where child output goes: files in `state_dir` (tests) or this terminal (dev).
    pub logs_to_files: bool,
    pub origin_slots: u32,
    /// What the origins run jobs on.
    pub engine: OriginEngine,
    pub sim_step_ms: u64,
    pub sim_load_ms: u64,
    pub sync_wait_secs: u64,
    pub job_timeout_secs: u64,
    pub rate_limit_per_min: u32,
    /// How often origins send heartbeats to the edge.
    pub heartbeat_ms: u64,
    /// The edge's lease: a running job whose origin is silent this long moves on.
    pub lease_secs: u64,
    /// How often event streams send `ping`.
    pub sse_ping_secs: u64,
    /// How long uploads and outputs are kept.
    pub file_retention_secs: u64,
    /// Webhook destinations allowed despite being private (the SSRF guard's allow-list).
    pub webhook_allow_hosts: String,
    /// Webhook retry delays in ms; empty for the production schedule (5 s … 24 h).
    pub webhook_retry_schedule_ms: String,
    pub origin_bin: PathBuf,
    /// The edge's `shim.mjs` that `wrangler dev` serves (debug or release build).
    pub edge_bundle: PathBuf,
}

impl StackConfig {
    /// What `cargo xtask dev` runs: fixed ports, state kept across runs.
    pub fn dev(edge_port: u16, origin_port: u16, origins: usize) -> Self {
        Self {
            edge_port: Some(edge_port),
            origin_ports: (0..origins as u16).map(|i| Some(origin_port + i)).collect(),
            state_dir: workspace_root().join(".wrangler/state"),
            logs_to_files: false,
            origin_slots: 1,
            engine: OriginEngine::Sim,
            sim_step_ms: 150,
            sim_load_ms: 400,
            sync_wait_secs: 90,
            job_timeout_secs: 600,
            rate_limit_per_min: kiln_shared::ratelimit::LIMIT_PER_MIN_DEFAULT,
            heartbeat_ms: 2_000,
            lease_secs: 30,
            sse_ping_secs: 15,
            file_retention_secs: 7 * 24 * 3600,
            // A receiver on this machine (an n8n or a script) works out of the box.
            webhook_allow_hosts: "127.0.0.1,localhost,::1".into(),
            webhook_retry_schedule_ms: String::new(),
            origin_bin: build::origin_bin(),
            edge_bundle: build::edge_bundle(),
        }
    }

    /// What the end-to-end tests run: free ports, fresh state, a quick sim.
    pub fn test(state_dir: PathBuf) -> Self {
        Self {
            edge_port: None,
            origin_ports: vec![None],
            state_dir,
            logs_to_files: true,
            origin_slots: 16,
            engine: OriginEngine::Sim,
            sim_step_ms: 10,
            sim_load_ms: 50,
            sync_wait_secs: 60,
            job_timeout_secs: 120,
            rate_limit_per_min: kiln_shared::ratelimit::LIMIT_PER_MIN_DEFAULT,
            heartbeat_ms: 250,
            lease_secs: 5,
            sse_ping_secs: 2,
            file_retention_secs: 7 * 24 * 3600,
            webhook_allow_hosts: "127.0.0.1,localhost".into(),
            // Quick retries, so retry behaviour is seen in seconds.
            webhook_retry_schedule_ms: "300,600,1000,1000,1000,1000,1000,1000,1000".into(),
            origin_bin: build::origin_bin(),
            edge_bundle: build::edge_bundle(),
        }
    }

    /// What `cargo xtask bench` runs: release builds, an instant sim, no practical rate
    /// limit, so the numbers are the platform's and not the throttle's.
    pub fn bench(state_dir: PathBuf) -> Self {
        Self {
            origin_slots: 64,
            sim_step_ms: 1,
            sim_load_ms: 0,
            rate_limit_per_min: 1_000_000,
            origin_bin: build::origin_bin_for(build::Profile::Release),
            edge_bundle: build::edge_bundle_for(build::Profile::Release),
            ..Self::test(state_dir)
        }
    }
}

pub struct Origin {
    pub id: String,
    pub url: String,
    child: Option<Child>,
}

pub struct Stack {
    pub edge_url: String,
    pub origins: Vec<Origin>,
    /// The keyrings in force, so tests can sign (and forge) like an origin would.
    pub edge_to_origin_keys: String,
    pub origin_to_edge_keys: String,
    /// The operator token for `/admin/*`.
    pub admin_token: String,
    /// The Stripe endpoint secret, so tests can sign events as Stripe would.
    pub stripe_webhook_secret: String,
    pub config: StackConfig,
    edge: Option<Child>,
}

/// A free loopback port (free when asked; bind it soon).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Own process group (so the whole tree can be killed) and SIGTERM on parent death.
pub fn detach(cmd: &mut Command) {
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe and touches only this (child) process.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

/// SIGTERM to a child started with [`detach`] and its group, SIGKILL after 5 s.
pub fn stop_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let pgid = c.id() as i32;
        // SAFETY: signalling a process group we created.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = c.wait();
    }
}

fn wait_healthy(url: &str, child: &mut Child, timeout: Duration, what: &str) -> Result<()> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(resp) = client.get(format!("{url}/health")).send() {
            if resp.status().is_success() {
                return Ok(());
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited during start-up with {status}");
        }
        if Instant::now() > deadline {
            bail!("{what} did not become healthy at {url} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Stack {
    pub fn start(config: StackConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.state_dir)?;
        let edge_port = match config.edge_port {
            Some(p) => p,
            None => free_port()?,
        };
        let edge_url = format!("http://127.0.0.1:{edge_port}");
        let e2o = format!("k1:{}", random_hex(32));
        let o2e = format!("k1:{}", random_hex(32));
        let mut stack = Stack {
            edge_url: edge_url.clone(),
            origins: Vec::new(),
            edge_to_origin_keys: e2o,
            origin_to_edge_keys: o2e,
            admin_token: format!("adm_{}", random_hex(24)),
            stripe_webhook_secret: format!("whsec_{}", random_hex(24)),
            config: config.clone(),
            edge: None,
        };
        for (i, port) in config.origin_ports.iter().enumerate() {
            let port = match port {
                Some(p) => *p,
                None => free_port()?,
            };
            stack.origins.push(Origin {
                id: format!("origin-{}", i + 1),
                url: format!("http://127.0.0.1:{port}"),
                child: None,
            });
        }
        for i in 0..stack.origins.len() {
            stack.start_origin(i)?;
        }
        stack.start_edge(edge_port)?;
        Ok(stack)
    }

    fn log_target(&self, name: &str) -> Result<(Stdio, Stdio)> {
        if !self.config.logs_to_files {
            return Ok((Stdio::inherit(), Stdio::inherit()));
        }
        let f = File::options()
            .create(true)
            .append(true)
            .open(self.config.state_dir.join(format!("{name}.log")))?;
        Ok((Stdio::from(f.try_clone()?), Stdio::from(f)))
    }

    /// Starts (or restarts) origin `i`.
    pub fn start_origin(&mut self, i: usize) -> Result<()> {
        let (out, err) = self.log_target(&self.origins[i].id)?;
        let o = &self.origins[i];
        let addr = o.url.trim_start_matches("http://").to_owned();
        let mut cmd = Command::new(&self.config.origin_bin);
        cmd.env("KILN_ORIGIN_ADDR", &addr)
            .env("KILN_ORIGIN_ID", &o.id)
            .env("KILN_EDGE_URL", &self.edge_url)
            .env("KILN_EDGE_TO_ORIGIN_KEYS", &self.edge_to_origin_keys)
            .env("KILN_ORIGIN_TO_EDGE_KEYS", &self.origin_to_edge_keys)
            .env("KILN_SIM_STEP_MS", self.config.sim_step_ms.to_string())
            .env("KILN_SIM_LOAD_MS", self.config.sim_load_ms.to_string())
            .env("KILN_HEARTBEAT_MS", self.config.heartbeat_ms.to_string())
            .env("KILN_PUBLIC_URL", &o.url)
            .env_remove("KILN_SLOTS")
            .env_remove("KILN_COMFYUI_URLS")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        match &self.config.engine {
            OriginEngine::Sim => {
                cmd.env("KILN_ENGINE", "sim")
                    .env("KILN_SLOTS", self.config.origin_slots.to_string());
            }
            OriginEngine::ComfyUi { urls, env } => {
                cmd.env("KILN_ENGINE", "comfyui")
                    .env("KILN_COMFYUI_URLS", urls.join(","));
                for (k, v) in env {
                    cmd.env(k, v);
                }
            }
        }
        detach(&mut cmd);
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "starting {} (is it built?)",
                self.config.origin_bin.display()
            )
        })?;
        let url = o.url.clone();
        let id = o.id.clone();
        wait_healthy(&url, &mut child, ORIGIN_READY_TIMEOUT, &id)?;
        self.origins[i].child = Some(child);
        Ok(())
    }

    /// Kills origin `i` at once (SIGKILL), as a crash would.
    pub fn kill_origin(&mut self, i: usize) {
        if let Some(mut c) = self.origins[i].child.take() {
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGKILL);
            }
            let _ = c.wait();
        }
    }

    fn start_edge(&mut self, port: u16) -> Result<()> {
        if !self.config.edge_bundle.exists() {
            bail!(
                "the edge is not built ({}); run `cargo xtask test` or `cargo xtask dev`",
                self.config.edge_bundle.display()
            );
        }
        let origins: Vec<String> = self
            .origins
            .iter()
            .map(|o| format!("{}={}", o.id, o.url))
            .collect();
        let env_file = self.config.state_dir.join("edge.env");
        std::fs::write(
            &env_file,
            format!(
                "ORIGINS=\"{}\"\nEDGE_TO_ORIGIN_KEYS=\"{}\"\nORIGIN_TO_EDGE_KEYS=\"{}\"\nSYNC_WAIT_SECS=\"{}\"\nJOB_TIMEOUT_SECS=\"{}\"\nADMIN_TOKEN=\"{}\"\nSTRIPE_WEBHOOK_SECRET=\"{}\"\nRATE_LIMIT_PER_MIN=\"{}\"\nLEASE_SECS=\"{}\"\nSSE_PING_SECS=\"{}\"\nFILE_RETENTION_SECS=\"{}\"\nWEBHOOK_ALLOW_HOSTS=\"{}\"\nWEBHOOK_RETRY_SCHEDULE_MS=\"{}\"\n",
                origins.join(","),
                self.edge_to_origin_keys,
                self.origin_to_edge_keys,
                self.config.sync_wait_secs,
                self.config.job_timeout_secs,
                self.admin_token,
                self.stripe_webhook_secret,
                self.config.rate_limit_per_min,
                self.config.lease_secs,
                self.config.sse_ping_secs,
                self.config.file_retention_secs,
                self.config.webhook_allow_hosts,
                self.config.webhook_retry_schedule_ms,
            ),
        )?;
        let (out, err) = self.log_target("edge")?;
        let mut cmd = Command::new(tools::wrangler_bin());
        cmd.arg("dev")
            .arg(&self.config.edge_bundle)
            .arg("--config")
            .arg(workspace_root().join("wrangler.toml"))
            .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-port", &free_port()?.to_string()])
            .arg("--persist-to")
            .arg(self.config.state_dir.join("wrangler"))
            .arg("--env-file")
            .arg(&env_file)
            .args([
                "--show-interactive-dev-session=false",
                // `GET /__scheduled` runs the Cron Trigger (the file sweep) on demand.
                "--test-scheduled",
                "--log-level",
                "warn",
            ])
            .current_dir(workspace_root())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env(
                "WRANGLER_LOG_PATH",
                self.config.state_dir.join("wrangler-logs"),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        detach(&mut cmd);
        let mut child = cmd.spawn().context("starting wrangler dev")?;
        wait_healthy(
            &self.edge_url,
            &mut child,
            EDGE_READY_TIMEOUT,
            "the edge (wrangler dev)",
        )?;
        self.edge = Some(child);
        Ok(())
    }

    /// Stops the edge and restarts it on the same port and state (a runtime restart).
    pub fn restart_edge(&mut self) -> Result<()> {
        stop_child(&mut self.edge);
        let port: u16 = self.edge_url.rsplit(':').next().unwrap_or("0").parse()?;
        self.start_edge(port)
    }

    /// Whether every child is still running; the name of the first that is not.
    pub fn exited(&mut self) -> Option<String> {
        if let Some(c) = self.edge.as_mut() {
            if !matches!(c.try_wait(), Ok(None)) {
                return Some("the edge (wrangler dev)".into());
            }
        }
        for o in &mut self.origins {
            if let Some(c) = o.child.as_mut() {
                if !matches!(c.try_wait(), Ok(None)) {
                    return Some(o.id.clone());
                }
            }
        }
        None
    }

    pub fn stop(&mut self) {
        stop_child(&mut self.edge);
        for o in &mut self.origins {
            stop_child(&mut o.child);
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}
