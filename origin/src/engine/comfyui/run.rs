//! One job on one ComfyUI server.
//!
//! 1. `loading_model` is reported at once, and stays the job's state until the first
//!    sampler step (ComfyUI loads models inside the loader nodes, so the first step is
//!    the first sign the model is in VRAM).
//! 2. Each input image is uploaded (`POST /upload/image`, as `kiln/<job>-<i>.png`); the
//!    graph uses the name ComfyUI answers with.
//! 3. The websocket is opened before the prompt is queued, so no event is missed.
//! 4. For each graph (an image job makes `n`, the i-th from `seed + i`; a video one):
//!    `POST /prompt` with our own `prompt_id`, then events until the done rule
//!    (`executing` with `node: null`), then `/history/{id}`, the record of the outcome,
//!    and the output from `/view`.
//!    - `progress` of a sampler node becomes `processing` with `step` counted across
//!      the job's stages (and images); other nodes' progress (decoders) is not shown.
//!    - If the websocket drops, it is reopened with the same `clientId` and the history
//!      is read at once; the history is also read whenever [`QUIET`] passes without an
//!      event for the prompt, so a completion is never missed.
//!    - A server that cannot be reached for [`LOST_AFTER`] fails the job, and so does a
//!      prompt that is in neither the history nor the queue (ComfyUI restarted: its
//!      history and queue are in memory only).
//! 5. A stop (the job was cancelled or moved on) or the job timeout sends
//!    `POST /api/jobs/{id}/cancel`; so does dropping the run (the runner aborts an
//!    abandoned job's task), from [`CancelOnDrop`].
//!
//! Failures read as a person can act on them: the node and ComfyUI's one-line message,
//! never the Python traceback.

use std::io::Cursor;
use std::time::{Duration, Instant};

use kiln_shared::ids::Filename;
use kiln_shared::jobs::JobParams;
use kiln_shared::origin::{DispatchJob, OutputMeta};
use tokio::sync::mpsc;

use super::client::{clip, files_in, ClientError, ComfyClient, FileRef, HistoryEntry};
use super::settings::{ModelFiles, SamplerSettings};
use super::template::{FillRequest, Filled, Pipeline, Templates};
use super::ws::{Socket, WsEvent};
use super::Server;
use crate::engine::{EngineError, InputImage, Output, Progress};
use crate::flag::Flag;

/// Without an event about the prompt for this long, the history is read.
pub const QUIET: Duration = Duration::from_secs(2);
/// A server unreachable this long (websocket and HTTP) fails the job.
pub const LOST_AFTER: Duration = Duration::from_secs(30);
/// How long opening the websocket may take.
pub const WS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The subfolder of ComfyUI's `input/` and `output/` that Kiln writes to.
pub const SUBFOLDER: &str = "kiln";

pub(super) struct Run<'a> {
    pub server: &'a Server,
    pub templates: &'a Templates,
    pub pipeline: Pipeline,
    pub models: &'a ModelFiles,
    pub samplers: &'a SamplerSettings,
    pub job_timeout: Duration,
}

/// Where the job's progress stands across its graphs.
struct Steps {
    done_before: u32,
    total: u32,
    last_sent: u32,
}

impl Run<'_> {
    pub async fn run(
        self,
        job: &DispatchJob,
        inputs: &[InputImage],
        progress: mpsc::Sender<Progress>,
        stop: &Flag,
    ) -> Result<Vec<Output>, EngineError> {
        let client = &self.server.client;
        let _ = progress.send(Progress::LoadingModel).await;

        let mut names = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let png = encode_png(input).await?;
            let name = format!("{}-{i}.png", job.job_id);
            let uploaded = client
                .upload_image(&name, SUBFOLDER, png)
                .await
                .map_err(|e| lost(&e))?;
            names.push(uploaded.load_name());
        }

        let images = match &job.params {
            JobParams::Image(p) => p.n.max(1),
            JobParams::Video(_) => 1,
        };
        let mut graphs = Vec::with_capacity(images as usize);
        for i in 0..images {
            let prefix = format!("{SUBFOLDER}/{}-{i}", job.job_id);
            let filled = self
                .templates
                .fill(
                    self.pipeline,
                    &FillRequest {
                        params: &job.params,
                        image_index: i,
                        inputs: &names,
                        models: self.models,
                        samplers: self.samplers,
                        filename_prefix: &prefix,
                    },
                )
                .map_err(|e| EngineError::Failed(format!("The job cannot run: {e}")))?;
            graphs.push(filled);
        }
        let per_graph: u32 = graphs[0].stages.iter().map(|s| s.steps).sum();
        let mut steps = Steps {
            done_before: 0,
            total: per_graph.saturating_mul(images),
            last_sent: 0,
        };

        let client_id = uuid::Uuid::new_v4().to_string();
        let mut socket = Socket::connect(&client.ws_url(&client_id), WS_CONNECT_TIMEOUT)
            .await
            .ok();
        let mut outputs = Vec::with_capacity(graphs.len());
        for (i, filled) in graphs.iter().enumerate() {
            let (file, bytes) = self
                .run_graph(filled, &client_id, &mut socket, &mut steps, &progress, stop)
                .await?;
            outputs.push(output(job, i, filled, &file, bytes)?);
            steps.done_before = steps.done_before.saturating_add(per_graph);
        }
        Ok(outputs)
    }

    /// Queues one graph and follows it to its output file.
    async fn run_graph(
        &self,
        filled: &Filled,
        client_id: &str,
        socket: &mut Option<Socket>,
        steps: &mut Steps,
        progress: &mpsc::Sender<Progress>,
        stop: &Flag,
    ) -> Result<(FileRef, Vec<u8>), EngineError> {
        let client = &self.server.client;
        let prompt_id = uuid::Uuid::new_v4().to_string();
        let mut guard = CancelOnDrop::new(client, &prompt_id);
        match client
            .queue_prompt(&filled.graph, &prompt_id, client_id)
            .await
        {
            Ok(()) => {}
            Err(ClientError::Refused { why, queued }) => {
                // A 200 with node_errors still runs the rest of the graph: the guard
                // cancels it. Nothing was queued after a 400.
                if !queued {
                    guard.disarm();
                }
                return Err(EngineError::Failed(format!(
                    "The GPU server refused the job's workflow: {why}"
                )));
            }
            Err(e) => {
                guard.disarm();
                return Err(lost(&e));
            }
        }
        tracing::info!(%prompt_id, server = client.base(), "prompt queued");

        let deadline = tokio::time::Instant::now() + self.job_timeout;
        let mut lost_since: Option<Instant> = None;
        let mut seen_output: Option<FileRef> = None;
        // The last event about this prompt: quiet for [`QUIET`] and the history is read,
        // even while other events (previews, other prompts) keep the socket busy.
        let mut last_heard = Instant::now();
        let entry = loop {
            let event = tokio::select! {
                biased;
                () = stop.wait() => {
                    // The guard sends the cancel.
                    return Err(EngineError::Stopped);
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(EngineError::Failed(format!(
                        "The job ran longer than the GPU origin allows ({} s) and was stopped.",
                        self.job_timeout.as_secs()
                    )));
                }
                event = next_event(socket) => event,
            };
            let done_or_closed = match event {
                Some(Some(ev)) if ev.prompt_id() == Some(prompt_id.as_str()) => {
                    lost_since = None;
                    last_heard = Instant::now();
                    match ev {
                        WsEvent::Progress { node, value, .. } => {
                            self.report(filled, node.as_deref(), value, steps, progress)
                                .await;
                            false
                        }
                        WsEvent::Executed { node, output, .. } if node == filled.output_node => {
                            seen_output = files_in(Some(&output)).into_iter().next();
                            false
                        }
                        // Done, whatever the outcome: the history says which.
                        WsEvent::Executing { node: None, .. } => true,
                        _ => false,
                    }
                }
                // Another prompt's event, or a preview: nothing to do.
                Some(Some(_)) => false,
                // Closed or broken: reopen, and read the history meanwhile.
                Some(None) => {
                    *socket = None;
                    true
                }
                // Quiet for a while.
                None => true,
            };
            if !done_or_closed && last_heard.elapsed() < QUIET {
                continue;
            }
            if socket.is_none() {
                *socket = Socket::connect(&client.ws_url(client_id), WS_CONNECT_TIMEOUT)
                    .await
                    .ok();
            }
            last_heard = Instant::now();
            match client.history(&prompt_id).await {
                Ok(Some(entry)) => break entry,
                Ok(None) => {
                    lost_since = None;
                    if let Some(entry) = self.unless_lost(&prompt_id).await? {
                        break entry;
                    }
                }
                Err(e) if e.is_unreachable() => {
                    let since = *lost_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= LOST_AFTER {
                        return Err(lost(&e));
                    }
                    // Do not spin on a dead server.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(EngineError::Internal(e.to_string())),
            }
        };
        // The prompt has ended, one way or another: nothing to cancel.
        guard.disarm();
        let file = outcome(&entry, filled, seen_output, stop)?;
        let bytes = client.view(&file).await.map_err(|e| lost(&e))?;
        // The last step, in case a progress event was missed.
        let last = steps
            .done_before
            .saturating_add(filled.stages.iter().map(|s| s.steps).sum());
        if let Some(stage) = filled.stages.last() {
            if steps.last_sent < last {
                steps.last_sent = last;
                let _ = progress
                    .send(Progress::Processing {
                        step: last,
                        total_steps: steps.total,
                        stage: stage.name,
                        stage_label: stage.label.clone(),
                    })
                    .await;
            }
        }
        Ok((file, bytes))
    }

    /// For a prompt not in the history: fails the job if it is not in the queue either
    /// (ComfyUI restarted and forgot it; its history is in memory only), unless it
    /// finished in between (then its history entry).
    async fn unless_lost(&self, prompt_id: &str) -> Result<Option<HistoryEntry>, EngineError> {
        let client = &self.server.client;
        match client.in_queue(prompt_id).await {
            Ok(true) | Err(_) => return Ok(None),
            Ok(false) => {}
        }
        // It may have left the queue for the history since the first look.
        match client.history(prompt_id).await {
            Ok(Some(entry)) => Ok(Some(entry)),
            Ok(None) => Err(EngineError::Failed(
                "The GPU server lost the job (ComfyUI restarted while it ran).".to_owned(),
            )),
            Err(_) => Ok(None),
        }
    }

    /// A sampler node's `progress` as `processing`, counted across stages and images.
    async fn report(
        &self,
        filled: &Filled,
        node: Option<&str>,
        value: u64,
        steps: &mut Steps,
        progress: &mpsc::Sender<Progress>,
    ) {
        let Some(node) = node else { return };
        let mut before = steps.done_before;
        for stage in &filled.stages {
            if stage.node == node {
                let within = u32::try_from(value).unwrap_or(u32::MAX).min(stage.steps);
                let step = before.saturating_add(within);
                if step > steps.last_sent && within > 0 {
                    steps.last_sent = step;
                    let _ = progress
                        .send(Progress::Processing {
                            step,
                            total_steps: steps.total,
                            stage: stage.name,
                            stage_label: stage.label.clone(),
                        })
                        .await;
                }
                return;
            }
            before = before.saturating_add(stage.steps);
        }
    }
}

/// The next websocket event: `Some(Some(_))` an event, `Some(None)` the socket closed,
/// `None` nothing for [`QUIET`] (or no socket).
async fn next_event(socket: &mut Option<Socket>) -> Option<Option<WsEvent>> {
    let Some(s) = socket.as_mut() else {
        tokio::time::sleep(Duration::from_millis(250)).await;
        return None;
    };
    tokio::time::timeout(QUIET, s.next()).await.ok()
}

/// What a finished prompt's history says: its output file, or why it failed.
fn outcome(
    entry: &HistoryEntry,
    filled: &Filled,
    seen: Option<FileRef>,
    stop: &Flag,
) -> Result<FileRef, EngineError> {
    if entry.status.status_str == "success" {
        return entry
            .files_of(&filled.output_node)
            .into_iter()
            .next()
            .or(seen)
            .ok_or_else(|| {
                EngineError::Internal(format!(
                    "the prompt succeeded but node {} listed no file",
                    filled.output_node
                ))
            });
    }
    for (kind, data) in &entry.status.messages {
        match kind.as_str() {
            "execution_error" => return Err(EngineError::Failed(execution_error(data))),
            "execution_interrupted" if stop.is_set() => return Err(EngineError::Stopped),
            "execution_interrupted" => {
                return Err(EngineError::Interrupted(
                    "The job was interrupted on the GPU server by its operator.".to_owned(),
                ))
            }
            _ => {}
        }
    }
    Err(EngineError::Failed(format!(
        "The GPU server ended the job with status {:?} and no error message.",
        entry.status.status_str
    )))
}

/// `execution_error` as one line: the node, ComfyUI's message (first line), and advice
/// for the errors a user can do something about.
pub fn execution_error(data: &serde_json::Value) -> String {
    let s = |k: &str| data.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let node = match data.get("node_id") {
        Some(serde_json::Value::String(id)) => id.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => "?".to_owned(),
    };
    let message = s("exception_message").lines().next().unwrap_or("").trim();
    let mut out = format!(
        "ComfyUI failed in node {node} ({}): {}",
        s("node_type"),
        clip(
            if message.is_empty() {
                s("exception_type")
            } else {
                message
            },
            300
        )
    );
    let kind = s("exception_type");
    if kind.contains("OutOfMemory") || message.contains("out of memory") {
        out.push_str(
            " The GPU ran out of memory: try a smaller size, fewer frames or fewer images.",
        );
    }
    out
}

/// The job's output from a fetched file: PNG size, or the MP4's size, duration and
/// whether it has sound.
fn output(
    job: &DispatchJob,
    index: usize,
    filled: &Filled,
    file: &FileRef,
    bytes: Vec<u8>,
) -> Result<Output, EngineError> {
    let broken =
        |what: String| EngineError::Internal(format!("ComfyUI's output {} {what}", file.filename));
    let meta = match &job.params {
        JobParams::Image(_) => {
            let (width, height) =
                image::ImageReader::with_format(Cursor::new(&bytes), image::ImageFormat::Png)
                    .into_dimensions()
                    .map_err(|e| broken(format!("is not a PNG: {e}")))?;
            let filename = Filename::output(&job.job_id, index, "png");
            OutputMeta {
                content_type: filename.content_type().to_owned(),
                filename,
                width,
                height,
                duration_s: None,
                has_audio: None,
                size_bytes: bytes.len() as u64,
                expires_at_ms: None,
            }
        }
        JobParams::Video(p) => {
            let info =
                probe_mp4(&bytes).map_err(|e| broken(format!("is not a readable MP4: {e}")))?;
            if info.has_audio != filled.has_audio {
                tracing::warn!(
                    has_audio = info.has_audio,
                    "the MP4's sound differs from the template's"
                );
            }
            if info.frames != Some(p.num_frames) {
                tracing::warn!(frames = ?info.frames, want = p.num_frames, "the MP4's frame count differs");
            }
            let filename = Filename::output(&job.job_id, 0, "mp4");
            OutputMeta {
                content_type: filename.content_type().to_owned(),
                filename,
                width: info.width,
                height: info.height,
                duration_s: Some(p.duration_s()),
                has_audio: Some(info.has_audio),
                size_bytes: bytes.len() as u64,
                expires_at_ms: None,
            }
        }
    };
    Ok(Output { meta, bytes })
}

/// What Kiln reads from an MP4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp4Info {
    pub width: u32,
    pub height: u32,
    /// Samples in the video track.
    pub frames: Option<u32>,
    pub has_audio: bool,
}

pub fn probe_mp4(bytes: &[u8]) -> Result<Mp4Info, String> {
    let reader = mp4::Mp4Reader::read_header(Cursor::new(bytes), bytes.len() as u64)
        .map_err(|e| e.to_string())?;
    let mut info = None;
    let mut has_audio = false;
    for track in reader.tracks().values() {
        match track.track_type() {
            Ok(mp4::TrackType::Video) if info.is_none() => {
                info = Some((
                    u32::from(track.width()),
                    u32::from(track.height()),
                    track.sample_count(),
                ));
            }
            Ok(mp4::TrackType::Audio) => has_audio = true,
            _ => {}
        }
    }
    let (width, height, frames) = info.ok_or("it has no video track")?;
    Ok(Mp4Info {
        width,
        height,
        frames: Some(frames),
        has_audio,
    })
}

/// An input as PNG, for `POST /upload/image`.
async fn encode_png(input: &InputImage) -> Result<Vec<u8>, EngineError> {
    let image = input.image.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .map(|()| out)
    })
    .await
    .map_err(|e| EngineError::Internal(format!("encode task: {e}")))?
    .map_err(|e| EngineError::Internal(format!("png encoding: {e}")))
}

/// A lost or unusable server: the user sees that the GPU server failed, the log why.
fn lost(e: &ClientError) -> EngineError {
    tracing::warn!(error = %e, "ComfyUI call failed");
    EngineError::Failed(format!(
        "The GPU server stopped answering while running the job ({}).",
        match e {
            ClientError::Unreachable { .. } => "unreachable",
            _ => "unexpected answer",
        }
    ))
}

/// Cancels the prompt on ComfyUI when dropped armed: on a stop, a timeout, a failure
/// after queueing, or the runner aborting the job's task.
struct CancelOnDrop {
    client: ComfyClient,
    prompt_id: String,
    armed: bool,
}

impl CancelOnDrop {
    fn new(client: &ComfyClient, prompt_id: &str) -> Self {
        Self {
            client: client.clone(),
            prompt_id: prompt_id.to_owned(),
            armed: true,
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (client, prompt_id) = (self.client.clone(), std::mem::take(&mut self.prompt_id));
        runtime.spawn(async move {
            match client.cancel(&prompt_id).await {
                Ok(()) => tracing::info!(%prompt_id, "prompt cancelled on ComfyUI"),
                Err(e) => tracing::warn!(%prompt_id, error = %e, "could not cancel the prompt"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn execution_errors_name_the_node_without_the_traceback() {
        let data = json!({"prompt_id": "p", "node_id": "11", "node_type": "SamplerCustomAdvanced",
            "exception_message": "CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail",
            "exception_type": "torch.OutOfMemoryError", "traceback": ["  File \"x.py\", line 1"]});
        let m = execution_error(&data);
        assert!(m.starts_with("ComfyUI failed in node 11 (SamplerCustomAdvanced): CUDA out of memory. Tried to allocate 2.00 GiB The GPU ran out"), "{m}");
        assert!(!m.contains("File") && !m.contains("more detail"), "{m}");
        let data = json!({"node_id": "1", "node_type": "CheckpointLoaderSimple",
            "exception_message": "", "exception_type": "safetensors_rust.SafetensorError"});
        assert_eq!(
            execution_error(&data),
            "ComfyUI failed in node 1 (CheckpointLoaderSimple): safetensors_rust.SafetensorError"
        );
    }
}
