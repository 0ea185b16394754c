//! A stand-in for ComfyUI 0.26.0, for testing Kiln's ComfyUI client without ComfyUI.
//!
//! ComfyUI is a GPL-3.0 Python server that is not on PyPI, needs gigabytes of torch wheels
//! and model weights, and wants a GPU: CI can install none of it. [`FakeComfyUi`] speaks the
//! same HTTP and websocket protocol, as recorded live from 0.26.0 in
//! `shared/reference/comfyui/` (README and the two transcripts), so the client can be tested
//! directly (async tests) and end to end (the whole stack), including the failures a real
//! server shows: validation errors, an out-of-memory error mid-run, interrupts, a dropped
//! websocket, a lost completion event, a slow server and an unreachable one.
//!
//! # What it speaks
//!
//! Every route is also served under `/api/…`, as ComfyUI does.
//! - `GET /system_stats`, `GET /features`, `GET /models`, `GET /models/{folder}`.
//! - `GET /object_info[/{class}]`: the live 0.26.0 snapshot of the 62 nodes Kiln uses
//!   (`origin/comfyui/object_info-0.26.0-selected.json`), with the loaders' model lists
//!   and `LoadImage.image` filled from the files present now.
//! - `POST /upload/image` (multipart `image`, `type`, `subfolder`, `overwrite`; a clash with
//!   different bytes becomes `name (1).ext`), `GET /view` (400 for `..` or a leading `/`, 403
//!   for a subfolder that escapes, 404).
//! - `POST /prompt` with ComfyUI's validation: `no_prompt`, `invalid_prompt_id` (not a
//!   canonical lowercase hyphenated UUID), `missing_node_type`, `prompt_no_outputs`, and
//!   per node upstream of an output `required_input_missing`, `bad_linked_input`,
//!   `return_type_mismatch`, `invalid_input_type`, `value_smaller_than_min`,
//!   `value_bigger_than_max`, `value_not_in_list` and `LoadImage`'s
//!   `custom_validation_failed` (400 `prompt_outputs_failed_validation`, nothing on the
//!   websocket). `GET /prompt`.
//! - Execution, one prompt at a time in arrival order (one GPU), with the websocket events
//!   of the transcripts in their order: `execution_start`, `execution_cached`, per node
//!   `progress_state` + `executing`, per sampler step `progress_state` + `progress` and now
//!   and then a binary preview frame (type 1, format 2, a PNG), `executed` for outputs, then
//!   `execution_success` | `execution_error` | `execution_interrupted`, `status`,
//!   `executing {node: null}`. `status` is broadcast on every queue change. Events go to the
//!   prompt's `client_id` socket only (progress, status and interrupts to everyone when a
//!   prompt has none).
//! - `SaveImage` writes a real PNG (size traced through the graph, colour from the seed),
//!   `PreviewImage` one of type `temp`, `SaveImageWebsocket` a binary frame, and `SaveVideo`
//!   a real H.264 MP4 made by `ffmpeg` (size, frame count and fps from the graph, an AAC
//!   track when `CreateVideo` has `audio`), listed under `images` with `animated: [true]`.
//! - `GET /history[/{id}]` (`{}` until the run ends; `?max_items=N`), `POST /history`,
//!   `GET|POST /queue`, `POST /interrupt` (200, empty body), `POST /free`,
//!   `GET /api/jobs[/{id}]`, `POST /api/jobs/{id}/cancel` (`{"cancelled": bool}`).
//! - `GET /ws?clientId=`: `status` with `sid` first; on a reconnect during the client's own
//!   run, `executing {node}` (node only, as ComfyUI sends it); a first client message
//!   `{"type": "feature_flags"}` gets the server's flags. Reconnecting with the same
//!   `clientId` replaces the socket (the old one stays open but gets nothing).
//!
//! # What it simplifies
//!
//! - Only the 62 node classes of the snapshot exist; any other class is `missing_node_type`.
//!   Nothing is computed: nodes take no time except samplers (`step_ms` a step, steps from
//!   `KSampler.steps` or the `sigmas` input: `ManualSigmas`, `Flux2Scheduler`,
//!   `LTXVScheduler`, `SplitSigmasDenoise`), and images are flat colours.
//! - No cache: every run executes every node upstream of its outputs (`execution_cached`
//!   always lists no nodes), and each run writes new files.
//! - The queue is FIFO: `number` is echoed but not used as a priority, `front` is ignored.
//!   Nodes run in a topological order (ids in numeric order where free), not ComfyUI's.
//! - History is written just before the final `execution_success`/`execution_error`/
//!   `execution_interrupted` event (ComfyUI writes it a little after), so a client that
//!   reads `/history` on any of them finds the entry.
//! - A link to a missing node is reported as `bad_linked_input` (ComfyUI raises an exception
//!   there, reported as `exception_during_validation`); a dependency cycle as
//!   `dependency_cycle`.
//! - `/view` ignores `preview` and `channel`. `SaveWEBM` and `SaveAnimatedWEBP` run but save
//!   nothing. Sizes are traced through the graph (`EmptyFlux2LatentImage`,
//!   `EmptyLTXVLatentVideo` with its `length` floored to `8n+1` as ComfyUI does, ×2 after
//!   `LTXVLatentUpsampler`, `GetImageSize` of a scaled upload, …); 64×64 where they cannot be.
//! - Scripted behaviour ([`Script`]) replaces real failures: see each variant.
//! - Bounded: request bodies ≤ 64 MiB, ≤ 64 prompts pending (503 beyond), the last 64
//!   history entries and 256 files kept, images ≤ 4096² and videos ≤ 1000 frames.
//!   Loopback only.
//!
//! # The files
//!
//! Here: [`FakeComfyUi`], its options and scripts, and the bounds above. `state.rs` holds
//! the state the parts share; `http/` the routes; `ws.rs` the websocket; `exec.rs` the
//! executor; `graph/` `/object_info`, validation and what a run reads from a graph;
//! `media.rs` the PNGs and MP4s; `ids.rs` prompt ids, node id order and timestamps.

mod exec;
mod graph;
mod http;
mod ids;
mod media;
mod state;
mod ws;

use crate::background::BackgroundServer;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Map, Value};
use tokio::sync::Notify;

pub use self::ids::is_canonical_uuid;
use self::state::{Inner, Shared};

/// The model files a fresh [`FakeComfyUi`] has: Kiln's defaults for FLUX.2 [dev] and LTX-2.3.
pub const DEFAULT_MODELS: &[(&str, &str)] = &[
    ("diffusion_models", "flux2_dev_fp8mixed.safetensors"),
    ("text_encoders", "mistral_3_small_flux2_fp8.safetensors"),
    ("vae", "flux2-vae.safetensors"),
    ("checkpoints", "ltx-2.3-22b-dev-fp8.safetensors"),
    ("checkpoints", "ltx-2.3-22b-distilled-1.1.safetensors"),
    ("text_encoders", "gemma_3_12B_it_fp4_mixed.safetensors"),
    (
        "loras",
        "ltx_2.3_22b_distilled_1.1_lora_dynamic_fro09_avg_rank_111_bf16.safetensors",
    ),
    (
        "latent_upscale_models",
        "ltx-2.3-spatial-upscaler-x2-1.1.safetensors",
    ),
];

/// The live `/object_info` of the nodes Kiln uses, with empty model lists.
const OBJECT_INFO: &str = include_str!("../../../origin/comfyui/object_info-0.26.0-selected.json");

/// Request bodies (uploads and prompts); ComfyUI's default is 100 MB.
const BODY_LIMIT: usize = 64 << 20;
const MAX_PENDING: usize = 64;
const MAX_HISTORY: usize = 64;
const MAX_FILES: usize = 256;
/// `prompts()`, `uploads()` and `cancels()` keep this many of the latest.
const MAX_LOG: usize = 256;
const MAX_UPLOAD_LOG: usize = 64;
/// Messages queued for one websocket; beyond, new ones are dropped (a client not reading).
const WS_QUEUE: usize = 4096;
/// How long a `DropSocket` script refuses the client's reconnects.
const REFUSE_RECONNECT: Duration = Duration::from_millis(300);

#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// `(folder, file)`: what `/models/{folder}` lists and the loaders accept.
    pub models: Vec<(String, String)>,
    /// `system.comfyui_version`.
    pub version: String,
    pub vram_total: u64,
    pub vram_free: u64,
    /// `devices[0].name`, as ComfyUI spells a GPU.
    pub device_name: String,
    /// The pace of one sampler step.
    pub step_ms: u64,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            models: DEFAULT_MODELS
                .iter()
                .map(|(d, f)| (d.to_string(), f.to_string()))
                .collect(),
            version: "0.26.0".into(),
            vram_total: 80 << 30,
            vram_free: 79 << 30,
            device_name: "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync".into(),
            step_ms: 2,
        }
    }
}

/// What the next accepted or refused `POST /prompt` does (FIFO; [`Script::Clean`] once the
/// queue of scripts is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// Runs the graph to success.
    Clean,
    /// 200 with a non-empty `node_errors` (a loader's `value_not_in_list`, as when one of
    /// several outputs fails validation), then runs like `Clean`, as ComfyUI runs the valid
    /// rest.
    NodeErrors,
    /// 400 `prompt_outputs_failed_validation` with `value_not_in_list` on a loader; nothing
    /// on the websocket.
    Invalid,
    /// Progress up to `after_steps` on the first sampler, then `execution_error` there
    /// (`torch.OutOfMemoryError`, "CUDA out of memory. …", a Python traceback); history
    /// `status_str: "error"`.
    ExecutionError { after_steps: u32 },
    /// Runs step 1 of the first sampler, then waits for `/api/jobs/{id}/cancel` or
    /// `/interrupt`: `execution_interrupted`, history `status_str: "error"`.
    UntilCancelled,
    /// After that many progress steps closes the client's websocket(s) and refuses its
    /// reconnects (503) for ~300 ms; runs on to success. Events while the client has no
    /// socket are lost, as in ComfyUI.
    DropSocket { after_steps: u32 },
    /// Runs to success and writes history but sends no `executed`, `execution_success` or
    /// `executing {node: null}`: a completion seen only in `/history`.
    HistoryOnly,
}

/// A file received by `POST /upload/image`, under the name the server gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub name: String,
    pub subfolder: String,
    /// The upload's `type`: `input` (default), `temp` or `output`.
    pub kind: String,
    pub bytes: Vec<u8>,
}

/// When one accepted `POST /prompt` arrived and when its output was last served, as
/// monotonic instants of this process (for `cargo xtask bench`, which compares them with
/// its own `Instant`s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTiming {
    pub prompt_id: String,
    /// When the `POST /prompt` handler started: the whole body had been read.
    pub received: Instant,
    /// When the body of the latest `GET /view` of a file this prompt saved was handed to
    /// the HTTP server (hyper took the bytes to write them; the socket write follows in
    /// the same task). `None` until then.
    pub view_served: Option<Instant>,
}

/// A running stand-in server; stopped on drop.
pub struct FakeComfyUi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Stops the server (and its thread) when the fake is dropped.
    _server: BackgroundServer,
}

impl FakeComfyUi {
    /// Starts on a free loopback port, with its own tokio runtime on its own thread, so it
    /// serves blocking tests and `#[tokio::test]`s alike.
    pub fn start(options: FakeOptions) -> Result<FakeComfyUi> {
        let snapshot: Map<String, Value> =
            serde_json::from_str(OBJECT_INFO).context("parsing the object_info snapshot")?;
        let mut models: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (folder, file) in &options.models {
            models
                .entry(folder.clone())
                .or_default()
                .insert(file.clone());
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding loopback")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            opts: options,
            snapshot,
            inner: Mutex::new(Inner {
                models,
                ..Inner::default()
            }),
            wake: Notify::new(),
            down: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
        });
        let sh = shared.clone();
        let server = BackgroundServer::start(
            format!("fake-comfyui-{}", addr.port()),
            listener,
            move |listener| async move {
                let app = http::router(sh.clone());
                let server = axum::serve(
                    http::DownListener {
                        inner: listener,
                        shared: sh.clone(),
                    },
                    app,
                );
                tokio::select! {
                    _ = server => {}
                    _ = exec::executor(sh) => {}
                }
            },
        )?;
        Ok(FakeComfyUi {
            addr,
            shared,
            _server: server,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/ws?clientId=<client_id>`.
    pub fn ws_url(&self, client_id: &str) -> String {
        format!("ws://{}/ws?clientId={client_id}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Queues what a later `POST /prompt` does; each accepted or refused prompt takes one.
    pub fn push_script(&self, s: Script) {
        self.shared.lock().scripts.push_back(s);
    }

    /// Every HTTP answer (not the websocket) waits this long first.
    pub fn set_http_delay(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// While down, every new TCP connection is closed unanswered, a kept-alive one is
    /// closed at its next request, and open websockets are closed: the server looks
    /// unreachable but keeps its port. A run in progress goes on (its events are lost).
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
        if down {
            self.shared.lock().close_all_sockets();
        }
    }

    /// Plays a ComfyUI restart: the running prompt stops without a trace, the queue and
    /// the history (kept in memory only by ComfyUI) are emptied, and every websocket is
    /// closed. The port, files and models stay.
    pub fn restart(&self) {
        let mut inner = self.shared.lock();
        if let Some(running) = &inner.running {
            running.ctl.forget();
        }
        inner.pending.clear();
        inner.history.clear();
        inner.close_all_sockets();
    }

    pub fn remove_model(&self, folder: &str, file: &str) {
        let mut inner = self.shared.lock();
        if let Some(files) = inner.models.get_mut(folder) {
            files.remove(file);
        }
    }

    pub fn add_model(&self, folder: &str, file: &str) {
        self.shared
            .lock()
            .models
            .entry(folder.to_string())
            .or_default()
            .insert(file.to_string());
    }

    /// Every `POST /prompt` body received (parsed JSON), oldest first (the latest 256).
    pub fn prompts(&self) -> Vec<Value> {
        self.shared.lock().prompt_log.iter().cloned().collect()
    }

    /// The timing of every accepted `POST /prompt`, oldest first (the latest 256).
    pub fn timings(&self) -> Vec<PromptTiming> {
        self.shared.lock().timings.iter().cloned().collect()
    }

    /// Every upload received, oldest first (the latest 64).
    pub fn uploads(&self) -> Vec<Upload> {
        self.shared
            .lock()
            .upload_log
            .iter()
            .map(|u| Upload {
                name: u.name.clone(),
                subfolder: u.subfolder.clone(),
                kind: u.kind.clone(),
                bytes: u.bytes.to_vec(),
            })
            .collect()
    }

    /// Prompt ids named by `POST /api/jobs/{id}/cancel` or `POST /interrupt
    /// {"prompt_id"}` (whether or not that prompt was still pending or running), and the
    /// running prompt's id for a bare `POST /interrupt` that interrupted one.
    pub fn cancels(&self) -> Vec<String> {
        self.shared.lock().cancel_log.iter().cloned().collect()
    }

    /// Websocket connections accepted so far (refused reconnects do not count).
    pub fn ws_connections(&self) -> usize {
        self.shared.lock().ws_accepted
    }

    /// Whether no prompt is queued or running.
    pub fn is_idle(&self) -> bool {
        let inner = self.shared.lock();
        inner.pending.is_empty() && inner.running.is_none()
    }

    /// Waits (blocking this thread) until no prompt is queued or running; false on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_idle() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The history entry of a finished prompt (`{prompt, outputs, status, meta}`).
    pub fn history_entry(&self, prompt_id: &str) -> Option<Value> {
        self.shared
            .lock()
            .history
            .iter()
            .find(|(id, _)| id == prompt_id)
            .map(|(_, v)| v.clone())
    }
}
