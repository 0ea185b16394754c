//! Settings, read once at startup from `KILN_*` environment variables, with `--addr` and
//! `--port` flags on top so a test harness can start several origins side by side.
//!
//! | variable | default | why |
//! |---|---|---|
//! | `KILN_ORIGIN_ADDR` | `127.0.0.1:8788` | where the edge reaches this origin; port 0 picks a free one |
//! | `KILN_ORIGIN_ID` | `origin-1` | names this origin in events and `/health`, so the edge knows who runs a job |
//! | `KILN_EDGE_URL` | `http://127.0.0.1:8787` | where events and outputs are sent |
//! | `KILN_EDGE_TO_ORIGIN_KEYS` | required | `id:secret[,id:secret]`; dispatches must be signed with one of these |
//! | `KILN_ORIGIN_TO_EDGE_KEYS` | required | `id:secret[,id:secret]`; the first signs everything sent to the edge |
//! | `KILN_ENGINE` | `sim` | which engine runs jobs: `sim` (simulated, CPU) or `comfyui` (ComfyUI servers on GPUs) |
//! | `KILN_SLOTS` | `1` (`sim`); the number of ComfyUI URLs (`comfyui`) | jobs run at once (one per GPU slot); a dispatch beyond that gets 503 |
//! | `KILN_SIM_STEP_MS` | `150` | sim pace per denoising step, so progress looks like a real GPU's |
//! | `KILN_SIM_LOAD_MS` | `400` | sim model-load time, paid once per model per process |
//! | `KILN_PUBLIC_URL` | `http://{bound address}` | where the edge reaches this origin, sent in heartbeats; set it when the origin listens on `0.0.0.0` or behind a proxy |
//! | `KILN_HEARTBEAT_MS` | `5000` | heartbeat period (100–10000; keep it under a third of the edge's `LEASE_SECS`); `0` turns heartbeats off, for tests that drive the router alone |
//!
//! The `comfyui` engine's settings (`KILN_COMFYUI_*`: server URLs, model files, sampler
//! settings, timeouts) are read by [`ComfyConfig`], which lists them.
//!
//! Secrets live only inside [`Keyring`], whose `Debug` never shows them, so printing a
//! [`Config`] or a [`ConfigError`] cannot leak one.

use std::net::SocketAddr;
use std::time::Duration;

use kiln_shared::signing::{Keyring, KeyringError};

mod comfyui;

pub use comfyui::ComfyConfig;

pub const ADDR_DEFAULT: &str = "127.0.0.1:8788";
pub const ORIGIN_ID_DEFAULT: &str = "origin-1";
pub const EDGE_URL_DEFAULT: &str = "http://127.0.0.1:8787";
pub const SLOTS_DEFAULT: u32 = 1;
/// More slots than any GPU host has; a typo like `KILN_SLOTS=1000` fails at startup.
pub const SLOTS_MAX: u32 = 64;
pub const SIM_STEP_MS_DEFAULT: u64 = 150;
pub const SIM_LOAD_MS_DEFAULT: u64 = 400;
/// Longer paces only make a slot look hung; refuse them at startup.
pub const SIM_PACE_MS_MAX: u64 = 60_000;
pub const HEARTBEAT_MS_DEFAULT: u64 = 5_000;
/// Faster than this is load on the edge for no gain in freshness.
pub const HEARTBEAT_MS_MIN: u64 = 100;
/// Slower than this and the edge's leases (`LEASE_SECS`, 30 s by default) would lapse
/// after two or three lost beats.
pub const HEARTBEAT_MS_MAX: u64 = 10_000;

/// Everything the origin needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Sent in every event and in `/health`.
    pub origin_id: String,
    /// Base URL of the edge, without a trailing slash.
    pub edge_url: String,
    /// Verifies dispatches from the edge.
    pub edge_to_origin_keys: Keyring,
    /// Signs events and uploads to the edge.
    pub origin_to_edge_keys: Keyring,
    pub engine: EngineKind,
    /// Jobs that may run at once.
    pub slots: u32,
    pub sim: SimConfig,
    /// Set when `engine` is [`EngineKind::ComfyUi`].
    pub comfyui: Option<ComfyConfig>,
    /// Where the edge reaches this origin, without a trailing slash; `None` means
    /// `http://{bound address}`, known only once bound (port 0 picks one).
    pub public_url: Option<String>,
    /// How often to tell the edge this origin is alive; `None` sends no heartbeats.
    pub heartbeat: Option<Duration>,
}

/// The engines this build can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Sim,
    ComfyUi,
}

impl EngineKind {
    const NAMES: &'static [&'static str] = &["sim", "comfyui"];

    fn parse(s: &str) -> Option<Self> {
        match s {
            "sim" => Some(Self::Sim),
            "comfyui" => Some(Self::ComfyUi),
            _ => None,
        }
    }
}

/// The pace of the simulated engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    /// Time per denoising step.
    pub step: Duration,
    /// Time to "load" a model the first time this process uses it.
    pub load: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is required: {why}")]
    Missing {
        var: &'static str,
        why: &'static str,
    },
    /// Never carries the value: keyring values are secrets.
    #[error("{var} is not a valid keyring: {reason}")]
    Keyring {
        var: &'static str,
        reason: KeyringError,
    },
    #[error("{var}={value:?} is not valid: {why}")]
    Invalid {
        var: &'static str,
        value: String,
        why: String,
    },
    #[error("{0}")]
    Usage(String),
}

impl Config {
    /// Reads the process environment and command line.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_sources(|var| std::env::var(var).ok(), std::env::args().skip(1))
    }

    /// Reads settings from `env` (a variable lookup) and `args` (CLI flags, without the
    /// program name); flags win over variables.
    pub fn from_sources(
        env: impl Fn(&str) -> Option<String>,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Self, ConfigError> {
        let get = |var: &str| {
            env(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let mut addr: SocketAddr = parse_var(
            "KILN_ORIGIN_ADDR",
            get("KILN_ORIGIN_ADDR").as_deref(),
            ADDR_DEFAULT,
            "want host:port, e.g. 127.0.0.1:8788",
        )?;
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| ConfigError::Usage(format!("{name} needs a value")))
            };
            match flag.as_str() {
                "--addr" => {
                    let v = value("--addr")?;
                    addr = v
                        .parse()
                        .map_err(|_| ConfigError::Usage(format!("--addr {v:?}: want host:port")))?;
                }
                "--port" => {
                    let v = value("--port")?;
                    let port = v
                        .parse()
                        .map_err(|_| ConfigError::Usage(format!("--port {v:?}: want 0-65535")))?;
                    addr.set_port(port);
                }
                other => {
                    return Err(ConfigError::Usage(format!(
                        "unknown argument {other:?}; flags are --addr HOST:PORT and --port N"
                    )))
                }
            }
        }

        let engine_name = get("KILN_ENGINE").unwrap_or_else(|| "sim".to_owned());
        let engine = EngineKind::parse(&engine_name).ok_or_else(|| ConfigError::Invalid {
            var: "KILN_ENGINE",
            value: engine_name.clone(),
            why: format!("valid engines: {}", EngineKind::NAMES.join(", ")),
        })?;

        let comfyui = match engine {
            EngineKind::ComfyUi => Some(ComfyConfig::from_vars(&get)?),
            EngineKind::Sim => None,
        };
        // One slot per ComfyUI server: each runs one prompt at a time.
        let slots_default = comfyui
            .as_ref()
            .map_or(SLOTS_DEFAULT, |c| c.urls.len() as u32);
        let slots: u32 = parse_var(
            "KILN_SLOTS",
            get("KILN_SLOTS").as_deref(),
            &slots_default.to_string(),
            "want a whole number",
        )?;
        if !(1..=SLOTS_MAX).contains(&slots) {
            return Err(ConfigError::Invalid {
                var: "KILN_SLOTS",
                value: slots.to_string(),
                why: format!("want 1–{SLOTS_MAX}"),
            });
        }
        if comfyui.is_some() && slots != slots_default {
            return Err(ConfigError::Invalid {
                var: "KILN_SLOTS",
                value: slots.to_string(),
                why: format!(
                    "the comfyui engine runs one job per ComfyUI server: {slots_default} \
                     (KILN_COMFYUI_URLS); leave KILN_SLOTS unset"
                ),
            });
        }

        Ok(Self {
            addr,
            origin_id: get("KILN_ORIGIN_ID").unwrap_or_else(|| ORIGIN_ID_DEFAULT.to_owned()),
            edge_url: get("KILN_EDGE_URL")
                .unwrap_or_else(|| EDGE_URL_DEFAULT.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            edge_to_origin_keys: keyring(
                "KILN_EDGE_TO_ORIGIN_KEYS",
                get("KILN_EDGE_TO_ORIGIN_KEYS"),
                "dispatches from the edge are verified with it",
            )?,
            origin_to_edge_keys: keyring(
                "KILN_ORIGIN_TO_EDGE_KEYS",
                get("KILN_ORIGIN_TO_EDGE_KEYS"),
                "events and uploads to the edge are signed with it",
            )?,
            engine,
            slots,
            comfyui,
            sim: SimConfig {
                step: pace(
                    "KILN_SIM_STEP_MS",
                    get("KILN_SIM_STEP_MS"),
                    SIM_STEP_MS_DEFAULT,
                )?,
                load: pace(
                    "KILN_SIM_LOAD_MS",
                    get("KILN_SIM_LOAD_MS"),
                    SIM_LOAD_MS_DEFAULT,
                )?,
            },
            public_url: get("KILN_PUBLIC_URL")
                .map(|url| public_url("KILN_PUBLIC_URL", url))
                .transpose()?,
            heartbeat: heartbeat("KILN_HEARTBEAT_MS", get("KILN_HEARTBEAT_MS"))?,
        })
    }
}

fn parse_var<T: std::str::FromStr>(
    var: &'static str,
    value: Option<&str>,
    default: &str,
    why: &str,
) -> Result<T, ConfigError> {
    let value = value.unwrap_or(default);
    value.parse().map_err(|_| ConfigError::Invalid {
        var,
        value: value.to_owned(),
        why: why.to_owned(),
    })
}

fn keyring(
    var: &'static str,
    value: Option<String>,
    why: &'static str,
) -> Result<Keyring, ConfigError> {
    let value = value.ok_or(ConfigError::Missing { var, why })?;
    Keyring::parse(&value).map_err(|reason| ConfigError::Keyring { var, reason })
}

fn pace(
    var: &'static str,
    value: Option<String>,
    default_ms: u64,
) -> Result<Duration, ConfigError> {
    let ms: u64 = parse_var(
        var,
        value.as_deref(),
        &default_ms.to_string(),
        "want milliseconds",
    )?;
    if ms > SIM_PACE_MS_MAX {
        return Err(ConfigError::Invalid {
            var,
            value: ms.to_string(),
            why: format!("want at most {SIM_PACE_MS_MAX} ms"),
        });
    }
    Ok(Duration::from_millis(ms))
}

/// An `http(s)://host[:port]` base URL; a trailing slash is dropped so paths append.
fn public_url(var: &'static str, url: String) -> Result<String, ConfigError> {
    let authority = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .map(|rest| rest.trim_end_matches('/'));
    let ok = authority.is_some_and(|a| {
        !a.is_empty() && !a.contains(|c: char| c.is_whitespace() || matches!(c, '?' | '#'))
    });
    if !ok {
        return Err(ConfigError::Invalid {
            var,
            value: url,
            why: "want an http(s) URL such as https://gpu-1.example.com:8788".to_owned(),
        });
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn heartbeat(var: &'static str, value: Option<String>) -> Result<Option<Duration>, ConfigError> {
    let ms: u64 = parse_var(
        var,
        value.as_deref(),
        &HEARTBEAT_MS_DEFAULT.to_string(),
        "want milliseconds",
    )?;
    match ms {
        0 => Ok(None),
        HEARTBEAT_MS_MIN..=HEARTBEAT_MS_MAX => Ok(Some(Duration::from_millis(ms))),
        _ => Err(ConfigError::Invalid {
            var,
            value: ms.to_string(),
            why: format!("want {HEARTBEAT_MS_MIN}–{HEARTBEAT_MS_MAX} ms, or 0 for no heartbeats"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET_A: &str = "0123456789abcdef0123456789abcdef";
    const SECRET_B: &str = "fedcba9876543210fedcba9876543210";

    fn from(vars: &[(&str, &str)], args: &[&str]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = HashMap::from([
            (
                "KILN_EDGE_TO_ORIGIN_KEYS".to_owned(),
                format!("e1:{SECRET_A}"),
            ),
            (
                "KILN_ORIGIN_TO_EDGE_KEYS".to_owned(),
                format!("o1:{SECRET_B}"),
            ),
        ]);
        for (k, v) in vars {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Config::from_sources(
            |k| env.get(k).cloned(),
            args.iter().map(|a| (*a).to_owned()),
        )
    }

    #[test]
    fn defaults() {
        let c = from(&[], &[]).unwrap();
        assert_eq!(c.addr.to_string(), ADDR_DEFAULT);
        assert_eq!(c.origin_id, "origin-1");
        assert_eq!(c.edge_url, "http://127.0.0.1:8787");
        assert_eq!((c.engine, c.slots), (EngineKind::Sim, 1));
        assert_eq!(
            c.sim,
            SimConfig {
                step: Duration::from_millis(150),
                load: Duration::from_millis(400)
            }
        );
        assert_eq!(c.public_url, None);
        assert_eq!(c.heartbeat, Some(Duration::from_secs(5)));
    }

    #[test]
    fn comfyui_engine_takes_one_slot_per_server() {
        let c = from(
            &[
                ("KILN_ENGINE", "comfyui"),
                (
                    "KILN_COMFYUI_URLS",
                    "http://10.0.0.1:8188,http://10.0.0.2:8188",
                ),
            ],
            &[],
        )
        .unwrap();
        assert_eq!((c.engine, c.slots), (EngineKind::ComfyUi, 2));
        assert_eq!(c.comfyui.unwrap().urls.len(), 2);
        assert!(from(&[], &[]).unwrap().comfyui.is_none());
    }

    #[test]
    fn public_url_and_heartbeat_settings() {
        let c = from(
            &[
                ("KILN_PUBLIC_URL", "https://gpu-1.example.com:8788/"),
                ("KILN_HEARTBEAT_MS", "100"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            c.public_url.as_deref(),
            Some("https://gpu-1.example.com:8788")
        );
        assert_eq!(c.heartbeat, Some(Duration::from_millis(100)));
        let c = from(&[("KILN_HEARTBEAT_MS", "10000")], &[]).unwrap();
        assert_eq!(c.heartbeat, Some(Duration::from_secs(10)));
        let c = from(&[("KILN_HEARTBEAT_MS", "0")], &[]).unwrap();
        assert_eq!(c.heartbeat, None);
    }

    #[test]
    fn flags_override_the_environment() {
        let c = from(&[("KILN_ORIGIN_ADDR", "0.0.0.0:9000")], &["--port", "0"]).unwrap();
        assert_eq!(c.addr.to_string(), "0.0.0.0:0");
        let c = from(&[], &["--port", "1", "--addr", "127.0.0.1:2"]).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:2");
        let c = from(&[("KILN_EDGE_URL", "http://edge:1/")], &[]).unwrap();
        assert_eq!(c.edge_url, "http://edge:1");
    }

    #[test]
    fn bad_settings_fail_fast_without_echoing_secrets() {
        // (variables, flags, what the error must say)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
        let cases: &[Case] = &[
            (
                &[("KILN_EDGE_TO_ORIGIN_KEYS", "")],
                &[],
                "KILN_EDGE_TO_ORIGIN_KEYS is required",
            ),
            (
                &[("KILN_ORIGIN_TO_EDGE_KEYS", " ")],
                &[],
                "KILN_ORIGIN_TO_EDGE_KEYS is required",
            ),
            (
                &[("KILN_ORIGIN_TO_EDGE_KEYS", "o1:too-short-secret")],
                &[],
                "KILN_ORIGIN_TO_EDGE_KEYS is not a valid keyring",
            ),
            (
                &[("KILN_ENGINE", "gpu")],
                &[],
                "valid engines: sim, comfyui",
            ),
            (
                &[("KILN_ENGINE", "comfyui")],
                &[],
                "KILN_COMFYUI_URLS is required",
            ),
            (
                &[
                    ("KILN_ENGINE", "comfyui"),
                    ("KILN_COMFYUI_URLS", "http://a:1,http://b:1"),
                    ("KILN_SLOTS", "1"),
                ],
                &[],
                "one job per ComfyUI server: 2",
            ),
            (&[("KILN_SLOTS", "0")], &[], "KILN_SLOTS"),
            (&[("KILN_SLOTS", "two")], &[], "KILN_SLOTS"),
            (&[("KILN_SIM_STEP_MS", "-1")], &[], "KILN_SIM_STEP_MS"),
            (&[("KILN_HEARTBEAT_MS", "99")], &[], "KILN_HEARTBEAT_MS"),
            (&[("KILN_HEARTBEAT_MS", "10001")], &[], "KILN_HEARTBEAT_MS"),
            (&[("KILN_HEARTBEAT_MS", "5s")], &[], "KILN_HEARTBEAT_MS"),
            (&[("KILN_PUBLIC_URL", "gpu-1:8788")], &[], "KILN_PUBLIC_URL"),
            (&[("KILN_PUBLIC_URL", "http://")], &[], "KILN_PUBLIC_URL"),
            (
                &[("KILN_PUBLIC_URL", "ftp://gpu-1")],
                &[],
                "KILN_PUBLIC_URL",
            ),
            (
                &[("KILN_PUBLIC_URL", "http://gpu 1")],
                &[],
                "KILN_PUBLIC_URL",
            ),
            (
                &[("KILN_ORIGIN_ADDR", "localhost")],
                &[],
                "KILN_ORIGIN_ADDR",
            ),
            (&[], &["--port"], "--port needs a value"),
            (&[], &["--port", "http"], "--port"),
            (&[], &["--verbose"], "unknown argument"),
        ];
        for (vars, args, want) in cases {
            let err = from(vars, args).unwrap_err().to_string();
            assert!(err.contains(want), "{vars:?} {args:?}: {err}");
            assert!(!err.contains("too-short-secret"), "{err}");
        }
        assert!(!format!("{:?}", from(&[], &[]).unwrap()).contains(SECRET_A));
    }
}
