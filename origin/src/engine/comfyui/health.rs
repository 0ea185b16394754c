//! Whether a ComfyUI server can take jobs. A check reads `GET /system_stats` (reachable,
//! version, GPU, VRAM); a full check also reads `GET /models/{folder}` for every model
//! file the served models need and `GET /object_info/{class}` for every node class the
//! templates use, and checks each template, filled as a job would fill it, against that
//! schema ([`super::schema::check`]). A server is **ready** when it is reachable, runs
//! [`PINNED_VERSION`], has every file, and every template fits. The full check runs
//! while a server is not ready and every [`FULL_CHECK_EVERY`] rounds otherwise (a file
//! deleted, ComfyUI upgraded in place).

use std::collections::{BTreeMap, BTreeSet};

use kiln_shared::origin::{ComfyServerHealth, ModelFileHealth};
use serde_json::Value;

use super::{schema, ComfyEngine, Server, PINNED_VERSION};

/// At the default 5 s poll, a full check every minute while all is well.
pub const FULL_CHECK_EVERY: u64 = 12;
/// At most this many problems are listed in `problem`; the log has them all.
const PROBLEMS_SHOWN: usize = 3;

/// What the last check of one server found.
#[derive(Debug, Clone, Default)]
pub struct ServerState {
    pub reachable: bool,
    pub ready: bool,
    pub problem: Option<String>,
    pub version: Option<String>,
    pub device: Option<String>,
    pub vram_total: Option<u64>,
    pub vram_free: Option<u64>,
    pub model_files: Vec<ModelFileHealth>,
    pub checked_at_ms: Option<i64>,
}

impl ServerState {
    pub fn unchecked() -> Self {
        Self {
            problem: Some("not checked yet".to_owned()),
            ..Self::default()
        }
    }

    pub fn view(&self, url: &str, busy: bool) -> ComfyServerHealth {
        let gb = |b: u64| (b as f64 / 1e9 * 100.0).round() / 100.0;
        ComfyServerHealth {
            url: url.to_owned(),
            reachable: self.reachable,
            ready: self.ready,
            busy,
            problem: self.problem.clone(),
            comfyui_version: self.version.clone(),
            device: self.device.clone(),
            vram_total_gb: self.vram_total.map(gb),
            vram_free_gb: self.vram_free.map(gb),
            model_files: self.model_files.clone(),
            checked_at: self.checked_at_ms.map(kiln_shared::time::rfc3339),
        }
    }
}

/// Checks `server` and records the result; logs when readiness changes.
pub async fn check(server: &Server, engine: &ComfyEngine, round: u64) {
    let url = server.client.base().to_owned();
    let before = server.state().clone();
    let mut next = before.clone();
    next.checked_at_ms = Some(crate::unix_ms_now());
    match server.client.system_stats().await {
        Err(e) => {
            next.reachable = false;
            next.ready = false;
            next.problem = Some(e.to_string());
        }
        Ok(stats) => {
            next.reachable = true;
            // The first accelerator; ComfyUI started with `--cpu` (or without a working
            // driver) lists only `cpu`, and real jobs there would take hours.
            let gpu = stats.devices.iter().find(|d| d.kind != "cpu");
            next.device = gpu.map(|d| d.name.clone());
            next.vram_total = gpu.map(|d| d.vram_total);
            next.vram_free = gpu.map(|d| d.vram_free);
            let version = stats.system.comfyui_version;
            let changed = before.version.as_deref() != Some(version.as_str());
            next.version = Some(version.clone());
            if gpu.is_none() {
                next.ready = false;
                next.problem = Some(format!(
                    "ComfyUI at {url} has no GPU (it lists only the CPU): check the NVIDIA \
                     driver and that ComfyUI was not started with --cpu"
                ));
            } else if version != PINNED_VERSION {
                next.ready = false;
                next.problem = Some(format!(
                    "ComfyUI at {url} runs version {version:?}; Kiln's templates are built for \
                     {PINNED_VERSION} (node inputs change between releases): install {PINNED_VERSION}"
                ));
            } else if !before.ready || changed || round.is_multiple_of(FULL_CHECK_EVERY) {
                let problems = full_check(server, engine, &mut next).await;
                next.ready = problems.is_empty();
                next.problem = summarize(&problems);
                for p in &problems {
                    tracing::debug!(server = %url, problem = %p, "ComfyUI check");
                }
            }
        }
    }
    match (before.ready, next.ready) {
        (false, true) => tracing::info!(server = %url, "ComfyUI server ready"),
        (_, false) if before.problem != next.problem => tracing::warn!(
            server = %url,
            problem = next.problem.as_deref().unwrap_or(""),
            "ComfyUI server not ready"
        ),
        _ => {}
    }
    *server.state() = next;
}

/// Model files, node classes, and the templates against the live schema; every problem.
async fn full_check(
    server: &Server,
    engine: &ComfyEngine,
    next: &mut super::health::ServerState,
) -> Vec<String> {
    let url = server.client.base();
    let mut problems = Vec::new();
    let templates = match engine.templates() {
        Ok(t) => t,
        Err(e) => return vec![format!("the built-in workflow templates are broken: {e}")],
    };
    let files: BTreeSet<(super::settings::ModelFolder, &str)> = engine
        .models()
        .iter()
        .flat_map(|m| engine.model_files().for_model(m))
        .collect();
    let mut listed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for folder in files
        .iter()
        .map(|(f, _)| f.as_str())
        .collect::<BTreeSet<_>>()
    {
        match server.client.models(folder).await {
            Ok(list) => {
                listed.insert(folder, list);
            }
            Err(e) => return vec![e.to_string()],
        }
    }
    next.model_files = files
        .iter()
        .map(|(folder, file)| ModelFileHealth {
            folder: folder.as_str().to_owned(),
            file: (*file).to_owned(),
            present: listed
                .get(folder.as_str())
                .is_some_and(|l| l.iter().any(|f| f == file)),
        })
        .collect();
    for m in next.model_files.iter().filter(|m| !m.present) {
        problems.push(format!(
            "model file {} is missing from models/{} on {url}",
            m.file, m.folder
        ));
    }

    let mut object_info = serde_json::Map::new();
    for class in templates.classes() {
        match server.client.object_info(&class).await {
            Ok(Value::Null) => problems.push(format!(
                "ComfyUI at {url} has no node class {class} (a core node of {PINNED_VERSION})"
            )),
            Ok(info) => {
                object_info.insert(class, info);
            }
            Err(e) => return vec![e.to_string()],
        }
    }
    let object_info = Value::Object(object_info);
    // A bad sampler setting (a sigma schedule, the LoRA strength) fails every sample.
    let samples = match templates.try_samples(engine.model_files(), engine.samplers()) {
        Ok(samples) => samples,
        Err(e) => {
            problems.push(e.to_string());
            return problems;
        }
    };
    for (pipeline, filled) in samples {
        if !engine.serves(pipeline.model_id()) {
            continue;
        }
        if let Err(found) = schema::check(&filled.graph, &object_info) {
            for p in found {
                // A missing model file is already said above, more plainly.
                if p.message.contains("not in")
                    && problems.iter().any(|q| q.contains("missing from models/"))
                {
                    continue;
                }
                problems.push(format!(
                    "template {} does not fit ComfyUI at {url}: {p}",
                    pipeline.name()
                ));
            }
        }
    }
    problems
}

fn summarize(problems: &[String]) -> Option<String> {
    if problems.is_empty() {
        return None;
    }
    let mut shown = problems[..problems.len().min(PROBLEMS_SHOWN)].join("; ");
    if problems.len() > PROBLEMS_SHOWN {
        shown.push_str(&format!(" (and {} more)", problems.len() - PROBLEMS_SHOWN));
    }
    Some(shown)
}
