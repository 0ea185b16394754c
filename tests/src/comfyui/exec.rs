//! The executor: one prompt at a time, in arrival order, with ComfyUI's websocket events,
//! history entries and saved files.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::graph::{self, Reader, SAMPLERS};
use super::ids::now_ms;
use super::state::{text_msg, Ctl, Inner, Job, Running, Shared, WsOut};
use super::{media, Script};

/// Runs queued prompts until the runtime stops.
pub(crate) async fn executor(sh: Arc<Shared>) {
    loop {
        let next = {
            let mut inner = sh.lock();
            if inner.running.is_none() {
                inner.pending.pop_front().map(|job| {
                    let ctl = Arc::new(Ctl::default());
                    inner.running = Some(Running {
                        job: job.clone(),
                        ctl: ctl.clone(),
                        last_node: None,
                        start_time: now_ms(),
                    });
                    // ComfyUI's queue `get` announces the queue too.
                    inner.broadcast_status();
                    (job, ctl)
                })
            } else {
                None
            }
        };
        match next {
            Some((job, ctl)) => run(&sh, job, ctl).await,
            None => sh.wake.notified().await,
        }
    }
}

/// How a run ended.
enum Outcome {
    Success,
    Error(Failure),
    Interrupted(String),
}

struct Failure {
    node: String,
    exception_type: String,
    exception_message: String,
    traceback: Vec<String>,
}

/// One run's bookkeeping.
struct Run<'a> {
    sh: &'a Arc<Shared>,
    job: &'a Job,
    /// History `status.messages`.
    messages: Vec<Value>,
    /// `progress_state` nodes, in the order they started.
    states: Vec<(String, Value)>,
    executed: Vec<String>,
    outputs: Map<String, Value>,
    meta: Map<String, Value>,
    seed: u64,
}

impl Run<'_> {
    fn client(&self) -> Option<&str> {
        self.job.client_id.as_deref()
    }

    /// An event only the prompt's client gets (`executing`, `executed`, `execution_*`).
    fn to_client(&self, inner: &Inner, ty: &str, data: Value) {
        inner.send(self.client(), false, text_msg(ty, data));
    }

    /// An event for the prompt's client, or everyone when it has none (progress).
    fn to_client_or_all(&self, inner: &Inner, msg: WsOut) {
        inner.send(self.client(), true, msg);
    }

    /// Recorded in history and sent to the client.
    fn record(&mut self, ty: &str, data: Value) {
        self.messages.push(json!([ty, data]));
        let inner = self.sh.lock();
        self.to_client(&inner, ty, data);
    }

    fn set_state(&mut self, node: &str, value: f64, max: f64, state: &str) {
        let pid = &self.job.id;
        let entry = json!({"value": value, "max": max, "state": state, "node_id": node,
            "prompt_id": pid, "display_node_id": node, "parent_node_id": null, "real_node_id": node});
        match self.states.iter_mut().find(|(id, _)| id == node) {
            Some((_, v)) => *v = entry,
            None => self.states.push((node.to_string(), entry)),
        }
    }

    fn progress_state_msg(&self) -> WsOut {
        let nodes: Map<String, Value> = self.states.iter().cloned().collect();
        text_msg(
            "progress_state",
            json!({"prompt_id": self.job.id, "nodes": nodes}),
        )
    }

    fn start_node(&mut self, node: &str) {
        self.set_state(node, 0.0, 1.0, "running");
        let mut inner = self.sh.lock();
        self.to_client_or_all(&inner, self.progress_state_msg());
        if let Some(r) = inner.running.as_mut() {
            r.last_node = Some(node.to_string());
        }
        self.to_client(
            &inner,
            "executing",
            json!({"node": node, "display_node": node, "prompt_id": self.job.id}),
        );
    }

    fn step(&mut self, node: &str, value: u32, max: u32, preview: bool) {
        self.set_state(node, f64::from(value), f64::from(max), "running");
        let inner = self.sh.lock();
        self.to_client_or_all(&inner, self.progress_state_msg());
        self.to_client_or_all(
            &inner,
            text_msg(
                "progress",
                json!({"value": value, "max": max, "prompt_id": self.job.id, "node": node}),
            ),
        );
        if preview {
            let frame = media::preview_frame(self.seed ^ u64::from(value));
            self.to_client_or_all(&inner, WsOut::Binary(frame));
        }
    }

    fn finish_node(&mut self, node: &str, output: Option<Value>, send_executed: bool) {
        if let Some(output) = output {
            self.outputs.insert(node.to_string(), output.clone());
            self.meta.insert(
                node.to_string(),
                json!({"node_id": node, "display_node": node, "parent_node": null, "real_node_id": node}),
            );
            if send_executed {
                let inner = self.sh.lock();
                self.to_client(
                    &inner,
                    "executed",
                    json!({"node": node, "display_node": node, "output": output, "prompt_id": self.job.id}),
                );
            }
        }
        self.set_state(node, 1.0, 1.0, "finished");
        let inner = self.sh.lock();
        self.to_client_or_all(&inner, self.progress_state_msg());
        drop(inner);
        self.executed.push(node.to_string());
    }
}

/// Sleeps `ms` unless interrupted first; true when interrupted.
async fn pause(ctl: &Ctl, ms: u64) -> bool {
    if ctl.is_set() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
        _ = ctl.notify.notified() => {}
    }
    ctl.is_set()
}

async fn wait_interrupt(ctl: &Ctl) {
    while !ctl.is_set() {
        ctl.notify.notified().await;
    }
}

fn oom(node: &str, class: &str, vram_total: u64) -> Failure {
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    let total = gib(vram_total);
    Failure {
        node: node.to_string(),
        exception_type: "torch.OutOfMemoryError".into(),
        exception_message: format!(
            "CUDA out of memory. Tried to allocate 18.00 GiB. GPU 0 has a total capacity of {total:.2} GiB \
             of which 1.07 GiB is free. Including non-PyTorch memory, this process has {:.2} GiB memory in use. \
             Of the allocated memory {:.2} GiB is allocated by PyTorch, and 1.21 GiB is reserved by PyTorch but \
             unallocated. If reserved but unallocated memory is large try setting \
             PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.\n",
            total - 1.07,
            total - 2.5,
        ),
        traceback: vec![
            "  File \"/opt/ComfyUI/execution.py\", line 542, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, v3_data=v3_data)\n".into(),
            "  File \"/opt/ComfyUI/execution.py\", line 341, in get_output_data\n    return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION, allow_interrupt=True, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, v3_data=v3_data)\n".into(),
            format!("  File \"/opt/ComfyUI/comfy_extras/nodes_custom_sampler.py\", line 876, in execute\n    samples = guider.sample(noise.generate_noise(latent), latent_image, sampler, sigmas, denoise_mask=noise_mask, callback=callback, disable_pbar=disable_pbar, seed=noise.seed)  # {class}\n"),
            "  File \"/opt/ComfyUI/comfy/ldm/modules/attention.py\", line 598, in attention_pytorch\n    out = comfy.ops.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=False)\n".into(),
        ],
    }
}

fn failure(node: &str, exception_type: &str, message: String) -> Failure {
    Failure {
        node: node.to_string(),
        exception_type: exception_type.into(),
        exception_message: message,
        traceback: vec![format!(
            "  File \"/opt/ComfyUI/execution.py\", line 303, in process_inputs\n    result = f(**inputs)\n"
        )],
    }
}

async fn run(sh: &Arc<Shared>, job: Arc<Job>, ctl: Arc<Ctl>) {
    let seed = {
        let inner = sh.lock();
        let load = |name: &str| input_image_size(&inner, name);
        Reader {
            prompt: &job.graph,
            load_image: &load,
        }
        .seed()
    };
    let mut r = Run {
        sh,
        job: &job,
        messages: Vec::new(),
        states: Vec::new(),
        executed: Vec::new(),
        outputs: Map::new(),
        meta: Map::new(),
        seed,
    };
    let pid = job.id.clone();
    r.record(
        "execution_start",
        json!({"prompt_id": pid, "timestamp": now_ms()}),
    );
    r.record(
        "execution_cached",
        json!({"nodes": [], "prompt_id": pid, "timestamp": now_ms()}),
    );
    let outcome = execute(&mut r, &ctl).await;
    if ctl.is_forgotten() {
        // The server "restarted" meanwhile: no history, no events, as if it never ran.
        sh.lock().running = None;
        return;
    }
    finish(&mut r, outcome);
}

async fn execute(r: &mut Run<'_>, ctl: &Ctl) -> Outcome {
    let job = r.job;
    let sh = r.sh;
    let order = graph::execution_order(&job.graph, &job.outputs).unwrap_or_default();
    let first_sampler = order
        .iter()
        .find(|id| SAMPLERS.contains(&graph::class_of(&job.graph, id)))
        .cloned();
    let history_only = job.script == Script::HistoryOnly;
    let mut steps_total = 0u32;
    let mut dropped = false;
    for node in &order {
        if ctl.is_set() {
            return Outcome::Interrupted(node.clone());
        }
        let class = graph::class_of(&job.graph, node).to_string();
        r.start_node(node);
        let is_first_sampler = first_sampler.as_deref() == Some(node.as_str());
        if first_sampler.is_none() || is_first_sampler {
            match job.script {
                Script::ExecutionError { .. } if first_sampler.is_none() => {
                    return Outcome::Error(oom(node, &class, sh.opts.vram_total));
                }
                Script::UntilCancelled if first_sampler.is_none() => {
                    wait_interrupt(ctl).await;
                    return Outcome::Interrupted(node.clone());
                }
                _ => {}
            }
        }
        if SAMPLERS.contains(&class.as_str()) {
            let steps = {
                let inner = sh.lock();
                let load = |name: &str| input_image_size(&inner, name);
                Reader {
                    prompt: &job.graph,
                    load_image: &load,
                }
                .sampler_steps(node)
            };
            for step in 1..=steps {
                if let Script::ExecutionError { after_steps } = job.script {
                    if is_first_sampler && step > after_steps {
                        return Outcome::Error(oom(node, &class, sh.opts.vram_total));
                    }
                }
                if pause(ctl, sh.opts.step_ms).await {
                    return Outcome::Interrupted(node.clone());
                }
                r.step(node, step, steps, step == 1 || step % 5 == 0);
                steps_total += 1;
                if let Script::DropSocket { after_steps } = job.script {
                    if !dropped && steps_total >= after_steps {
                        dropped = true;
                        if let Some(client) = &job.client_id {
                            let mut inner = sh.lock();
                            inner.close_client_sockets(client);
                            inner
                                .refuse_until
                                .retain(|_, until| *until > Instant::now());
                            inner
                                .refuse_until
                                .insert(client.clone(), Instant::now() + super::REFUSE_RECONNECT);
                        }
                    }
                }
                if is_first_sampler && step == 1 && job.script == Script::UntilCancelled {
                    wait_interrupt(ctl).await;
                    return Outcome::Interrupted(node.clone());
                }
            }
            if is_first_sampler && matches!(job.script, Script::ExecutionError { .. }) {
                return Outcome::Error(oom(node, &class, sh.opts.vram_total));
            }
        }
        let output = match save(sh, job, node, &class, seed_for(r, node)).await {
            Ok(o) => o,
            Err(f) => return Outcome::Error(f),
        };
        r.finish_node(node, output, !history_only);
    }
    Outcome::Success
}

fn seed_for(r: &Run<'_>, node: &str) -> u64 {
    r.seed ^ media::mix(node.len() as u64)
}

/// The size of an input image (`[input]`/`[output]`/`[temp]` annotations allowed).
pub(crate) fn input_image_size(inner: &Inner, name: &str) -> Option<(u32, u32)> {
    let (kind, sub, file) = super::http::annotated_file(name, "input")?;
    let (_, bytes) = inner.files.get(&(kind, sub, file))?;
    media::png_size(bytes)
}

/// What an output node saves: its `executed.output`, or `None` for nodes that save
/// nothing visible in history.
async fn save(
    sh: &Arc<Shared>,
    job: &Job,
    node: &str,
    class: &str,
    seed: u64,
) -> Result<Option<Value>, Failure> {
    match class {
        "SaveImage" | "PreviewImage" | "SaveImageWebsocket" => {}
        "SaveVideo" => {}
        _ => return Ok(None),
    }
    let (image_dims, video) = {
        let inner = sh.lock();
        let load = |name: &str| input_image_size(&inner, name);
        let reader = Reader {
            prompt: &job.graph,
            load_image: &load,
        };
        (reader.saved_image(node), reader.saved_video(node))
    };
    match class {
        "SaveImageWebsocket" => {
            let png = media::png(image_dims.w, image_dims.h, seed);
            let mut frame = Vec::with_capacity(png.len() + 8);
            frame.extend_from_slice(&1u32.to_be_bytes());
            frame.extend_from_slice(&2u32.to_be_bytes());
            frame.extend_from_slice(&png);
            sh.lock()
                .send(job.client_id.as_deref(), true, WsOut::Binary(frame));
            Ok(None)
        }
        "SaveImage" | "PreviewImage" => {
            let (kind, prefix) = if class == "SaveImage" {
                let p = job.graph[node]["inputs"]
                    .get("filename_prefix")
                    .and_then(Value::as_str)
                    .unwrap_or("ComfyUI")
                    .to_string();
                ("output", p)
            } else {
                let mut b = [0u8; 5];
                getrandom::fill(&mut b).expect("OS randomness");
                let tag: String = b.iter().map(|x| char::from(b'a' + x % 26)).collect();
                ("temp", format!("ComfyUI_temp_{tag}"))
            };
            let (sub, base) = split_prefix(&prefix).ok_or_else(|| outside(node, &prefix))?;
            let mut images = Vec::new();
            for i in 0..image_dims.n {
                let (w, h, seed) = (image_dims.w, image_dims.h, seed.wrapping_add(u64::from(i)));
                // Large pictures take a while to encode: off the runtime's workers.
                let bytes = tokio::task::spawn_blocking(move || media::png(w, h, seed))
                    .await
                    .map_err(|e| failure(node, "RuntimeError", format!("png task: {e}")))?;
                let bytes = Arc::new(bytes);
                let mut inner = sh.lock();
                let counter = inner.next_counter(&sub, &base);
                let filename = format!("{base}_{counter:05}_.png");
                inner.put_output((kind.into(), sub.clone(), filename.clone()), bytes, &job.id);
                images.push(json!({"filename": filename, "subfolder": sub, "type": kind}));
            }
            Ok(Some(json!({"images": images})))
        }
        _ => {
            let prefix = job.graph[node]["inputs"]
                .get("filename_prefix")
                .and_then(Value::as_str)
                .unwrap_or("video/ComfyUI")
                .to_string();
            let (sub, base) = split_prefix(&prefix).ok_or_else(|| outside(node, &prefix))?;
            let (d, fps, audio) = video;
            let made =
                tokio::task::spawn_blocking(move || media::mp4(d.w, d.h, d.n, fps, audio, seed))
                    .await
                    .unwrap_or_else(|e| Err(format!("ffmpeg task: {e}")));
            let bytes = made.map_err(|e| failure(node, "RuntimeError", e))?;
            let mut inner = sh.lock();
            let counter = inner.next_counter(&sub, &base);
            let filename = format!("{base}_{counter:05}_.mp4");
            inner.put_output(
                ("output".into(), sub.clone(), filename.clone()),
                Arc::new(bytes),
                &job.id,
            );
            Ok(Some(json!({
                "images": [{"filename": filename, "subfolder": sub, "type": "output"}],
                "animated": [true],
            })))
        }
    }
}

/// `"probe/img"` → `("probe", "img")`; `None` when it leaves the output folder.
fn split_prefix(prefix: &str) -> Option<(String, String)> {
    let (dir, base) = match prefix.rsplit_once('/') {
        Some((d, b)) => (d, b),
        None => ("", prefix),
    };
    let sub = super::http::normalize_subfolder(dir)?;
    if base.is_empty() || base == ".." {
        return None;
    }
    Some((sub, base.to_string()))
}

fn outside(node: &str, prefix: &str) -> Failure {
    failure(
        node,
        "Exception",
        format!(
            "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: {prefix}\n         output_dir: /opt/ComfyUI/output"
        ),
    )
}

/// Writes history, then sends the final events: the outcome, `status`, `executing
/// {node: null}`.
fn finish(r: &mut Run<'_>, outcome: Outcome) {
    let job = r.job;
    let pid = &job.id;
    let history_only = job.script == Script::HistoryOnly;
    let (ty, data, success) = match &outcome {
        Outcome::Success => (
            "execution_success",
            json!({"prompt_id": pid, "timestamp": now_ms()}),
            true,
        ),
        Outcome::Error(f) => {
            let node_inputs = job.graph[&f.node]["inputs"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let current_inputs: Map<String, Value> = node_inputs
                .into_iter()
                .map(|(k, v)| {
                    let shown = match graph::as_link(&v) {
                        Some((src, slot)) => json!(format!(
                            "<{} output {slot} at 0x7f3a{:08x}>",
                            graph::class_of(&job.graph, src),
                            media::mix(src.len() as u64 + slot as u64) as u32
                        )),
                        None => v,
                    };
                    (k, json!([shown]))
                })
                .collect();
            (
                "execution_error",
                json!({"prompt_id": pid, "node_id": f.node,
                       "node_type": graph::class_of(&job.graph, &f.node),
                       "executed": r.executed, "exception_message": f.exception_message,
                       "exception_type": f.exception_type, "traceback": f.traceback,
                       "current_inputs": current_inputs, "current_outputs": r.executed,
                       "timestamp": now_ms()}),
                false,
            )
        }
        Outcome::Interrupted(node) => (
            "execution_interrupted",
            json!({"prompt_id": pid, "node_id": node,
                   "node_type": graph::class_of(&job.graph, node),
                   "executed": r.executed, "timestamp": now_ms()}),
            false,
        ),
    };
    r.messages.push(json!([ty, data]));
    let entry = json!({
        "prompt": job.queue_tuple(),
        "outputs": r.outputs,
        "status": {
            "status_str": if success { "success" } else { "error" },
            "completed": success,
            "messages": r.messages,
        },
        "meta": r.meta,
    });
    let mut inner = r.sh.lock();
    inner.push_history(pid.clone(), entry);
    inner.running = None;
    match outcome {
        Outcome::Success if history_only => {}
        Outcome::Interrupted(_) => inner.send(job.client_id.as_deref(), true, text_msg(ty, data)),
        _ => inner.send(job.client_id.as_deref(), false, text_msg(ty, data)),
    }
    inner.broadcast_status();
    if !history_only {
        inner.send(
            job.client_id.as_deref(),
            false,
            text_msg("executing", json!({"node": null, "prompt_id": pid})),
        );
    }
}
