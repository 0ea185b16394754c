//! The comfyui engine against the test ComfyUI server (`kiln_tests::comfyui`, a
//! stand-in for ComfyUI 0.26.0 that speaks its recorded protocol) and the edge double:
//! what the edge receives for each way a ComfyUI run can go, what ComfyUI receives, and
//! what `/health` and heartbeats say about the servers.

use std::collections::HashMap;
use std::io::Cursor;
use std::time::Duration;

use image::{ImageFormat, Rgba, RgbaImage};
use kiln_origin::config::Config;
use kiln_shared::ids::Filename;
use kiln_shared::jobs::JobParams;
use kiln_shared::origin::{DispatchJob, OriginEvent};
use kiln_tests::comfyui::{is_canonical_uuid, FakeComfyUi, FakeOptions, Script};
use serde_json::Value;

use crate::helpers::*;

/// An origin config for the comfyui engine with `comfy` as its one server, polled
/// quickly so tests see health changes at once.
fn comfy_config(edge_url: &str, comfy: &FakeComfyUi, vars: &[(&str, &str)]) -> Config {
    let url = comfy.url();
    let mut all = vec![
        ("KILN_ENGINE", "comfyui"),
        ("KILN_COMFYUI_URLS", url.as_str()),
        ("KILN_COMFYUI_POLL_MS", "100"),
        ("KILN_COMFYUI_REQUEST_SECS", "5"),
        ("KILN_HEARTBEAT_MS", "100"),
    ];
    all.extend_from_slice(vars);
    config_with(edge_url, 1, 5, &all)
}

fn fake() -> FakeComfyUi {
    FakeComfyUi::start(FakeOptions::default()).expect("the test ComfyUI server starts")
}

/// Waits until the origin's `/health` satisfies `want`; returns that answer.
async fn health_where(origin: &Origin, want: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            last = origin.health().await;
            if want(&last) {
                return last.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("health never matched; last: {last}"))
}

async fn ready(origin: &Origin) -> Value {
    health_where(origin, |h| h["status"] == "ok").await
}

/// A real (not test-mode) image job.
fn image_job(prompt: &str, steps: u32, width: u32, height: u32) -> DispatchJob {
    DispatchJob {
        test_mode: false,
        ..job(prompt, steps, width, height)
    }
}

fn real(mut job: DispatchJob) -> DispatchJob {
    job.test_mode = false;
    job
}

fn progress_of(received: &[Received]) -> Vec<(u32, u32, String)> {
    events(received)
        .iter()
        .filter_map(|e| match &e.event {
            OriginEvent::Processing {
                step,
                total_steps,
                stage,
                ..
            } => Some((*step, *total_steps, stage.clone())),
            _ => None,
        })
        .collect()
}

/// Waits for the job's first `processing` event: it is running on the GPU.
async fn first_step(edge: &mut EdgeDouble) {
    loop {
        let r = edge.next().await;
        if matches!(r, Received::Event(_, ref e) if matches!(e.event, OriginEvent::Processing { .. }))
        {
            return;
        }
    }
}

fn terminal(received: &[Received]) -> OriginEvent {
    events(received).last().expect("events").event.clone()
}

fn failure_message(received: &[Received]) -> String {
    match terminal(received) {
        OriginEvent::Failed { code, message } => {
            assert_eq!(code, "generation_failed");
            message
        }
        other => panic!("expected failed, got {other:?}"),
    }
}

fn uploads(received: &[Received]) -> Vec<(String, Vec<u8>)> {
    received
        .iter()
        .filter_map(|r| match r {
            Received::Upload { path, bytes, .. } => Some((path.clone(), bytes.clone())),
            _ => None,
        })
        .collect()
}

/// The node of `class` in a queued prompt body (`{"prompt": graph, …}`).
fn nodes_of<'a>(body: &'a Value, class: &str) -> Vec<&'a Value> {
    body["prompt"]
        .as_object()
        .expect("a graph")
        .values()
        .filter(|n| n["class_type"] == class)
        .collect()
}

#[tokio::test]
async fn an_image_job_runs_on_comfyui_with_progress_and_its_png() {
    let comfy = fake();
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(comfy_config(&edge.url, &comfy, &[])).await;
    let health = ready(&origin).await;
    assert_eq!(health["engine"], "comfyui", "{health}");
    assert_eq!(health["simulated"], false);
    let server = &health["comfyui"][0];
    assert_eq!(server["ready"], true, "{health}");
    assert_eq!(server["comfyui_version"], "0.26.0");
    assert!(server["vram_total_gb"].as_f64().unwrap() > 1.0, "{health}");
    assert!(server["model_files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["present"] == true));

    let job = image_job("a red fox in snow, \"quoted\" \\ and }", 6, 768, 512);
    assert_eq!(origin.dispatch(&job).await, 202);
    let received = edge.until_terminal().await;
    assert_well_signed_and_numbered(&received);

    let all = events(&received);
    assert!(
        matches!(all[0].event, OriginEvent::LoadingModel { .. }),
        "{all:?}"
    );
    let steps = progress_of(&received);
    assert_eq!(
        steps,
        (1..=6)
            .map(|s| (s, 6, "sampling".to_owned()))
            .collect::<Vec<_>>()
    );
    match terminal(&received) {
        OriginEvent::Completed {
            outputs,
            engine,
            simulated,
        } => {
            assert_eq!((engine.as_str(), simulated), ("comfyui", false));
            assert_eq!(outputs.len(), 1);
            assert_eq!((outputs[0].width, outputs[0].height), (768, 512));
            assert_eq!(outputs[0].content_type, "image/png");
            assert_eq!(outputs[0].has_audio, None);
        }
        other => panic!("{other:?}"),
    }
    let files = uploads(&received);
    assert_eq!(files.len(), 1);
    let size = image::ImageReader::with_format(Cursor::new(&files[0].1), ImageFormat::Png)
        .into_dimensions()
        .unwrap();
    assert_eq!(size, (768, 512));

    // What ComfyUI was asked: the job's values in the template's nodes.
    let prompts = comfy.prompts();
    assert_eq!(prompts.len(), 1);
    let body = &prompts[0];
    assert_eq!(
        nodes_of(body, "CLIPTextEncode")[0]["inputs"]["text"],
        "a red fox in snow, \"quoted\" \\ and }"
    );
    assert_eq!(nodes_of(body, "RandomNoise")[0]["inputs"]["noise_seed"], 42);
    assert_eq!(nodes_of(body, "Flux2Scheduler")[0]["inputs"]["steps"], 6);
    assert_eq!(
        nodes_of(body, "EmptyFlux2LatentImage")[0]["inputs"]["width"],
        768
    );
    let prompt_id = body["prompt_id"].as_str().unwrap();
    assert!(is_canonical_uuid(prompt_id), "{prompt_id}");
    assert!(body["client_id"].is_string());
    origin.wait_until_idle().await;
}

#[tokio::test]
async fn several_images_run_as_one_prompt_each_with_seed_plus_i() {
    let comfy = fake();
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(comfy_config(&edge.url, &comfy, &[])).await;
    ready(&origin).await;
    let mut job = image_job("three foxes", 4, 512, 512);
    if let JobParams::Image(p) = &mut job.params {
        p.n = 3;
    }
    assert_eq!(origin.dispatch(&job).await, 202);
    let received = edge.until_terminal().await;
    let steps = progress_of(&received);
    assert_eq!(
        steps.last(),
        Some(&(12, 12, "sampling".to_owned())),
        "{steps:?}"
    );
    assert!(steps.windows(2).all(|w| w[0].0 < w[1].0), "{steps:?}");
    match terminal(&received) {
        OriginEvent::Completed { outputs, .. } => {
            let names: Vec<&str> = outputs.iter().map(|o| o.filename.as_str()).collect();
            assert_eq!(names.len(), 3);
            assert!(names[2].ends_with("-2.png"), "{names:?}");
        }
        other => panic!("{other:?}"),
    }
    let seeds: Vec<Value> = comfy
        .prompts()
        .iter()
        .map(|b| nodes_of(b, "RandomNoise")[0]["inputs"]["noise_seed"].clone())
        .collect();
    assert_eq!(seeds, [42, 43, 44]);
    let files = uploads(&received);
    assert_ne!(files[0].1, files[1].1, "different seeds, different images");
}

fn png_of(colour: Rgba<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    RgbaImage::from_pixel(40, 24, colour)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

#[tokio::test]
async fn reference_images_are_uploaded_and_the_graph_uses_the_names_comfyui_gives() {
    let comfy = fake();
    let inputs: HashMap<String, Vec<u8>> = [
        ("upl_a.png".to_owned(), png_of(Rgba([200, 10, 10, 255]))),
        ("upl_b.png".to_owned(), png_of(Rgba([10, 200, 10, 255]))),
    ]
    .into();
    let mut edge = EdgeDouble::start_with(EdgeBehaviour {
        inputs,
        ..EdgeBehaviour::default()
    })
    .await;
    let origin = Origin::start(comfy_config(&edge.url, &comfy, &[])).await;
    ready(&origin).await;
    let mut job = image_job("blend these", 4, 512, 512);
    job.workflow = "flux2-dev:img2img".to_owned();
    job.input_files = vec![
        Filename::parse("upl_a.png").unwrap(),
        Filename::parse("upl_b.png").unwrap(),
    ];
    assert_eq!(origin.dispatch(&job).await, 202);
    let received = edge.until_terminal().await;
    assert!(
        matches!(terminal(&received), OriginEvent::Completed { .. }),
        "{:?}",
        terminal(&received)
    );

    let uploaded = comfy.uploads();
    assert_eq!(uploaded.len(), 2);
    let first = image::load_from_memory(&uploaded[0].bytes)
        .unwrap()
        .to_rgba8();
    assert_eq!(first.dimensions(), (40, 24));
    assert_eq!(first.get_pixel(0, 0), &Rgba([200, 10, 10, 255]));
    let body = &comfy.prompts()[0];
    let loads: Vec<String> = nodes_of(body, "LoadImage")
        .iter()
        .map(|n| n["inputs"]["image"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = uploaded
        .iter()
        .map(|u| format!("{}/{}", u.subfolder, u.name))
        .collect();
    let mut sorted = loads.clone();
    sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(sorted, want_sorted);
    assert_eq!(nodes_of(body, "ReferenceLatent").len(), 2);
}

#[tokio::test]
async fn a_two_stage_video_reports_both_stages_and_keeps_its_sound() {
    let comfy = fake();
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(comfy_config(&edge.url, &comfy, &[])).await;
    ready(&origin).await;
    let job = real(video_job("waves at dusk", kiln_shared::video::MODEL_FULL));
    assert_eq!(origin.dispatch(&job).await, 202);
    let received = edge.until_terminal().await;
    let steps = progress_of(&received);
    let stages: Vec<&str> = steps.iter().map(|s| s.2.as_str()).collect();
    assert!(
        stages.contains(&"stage_1") && stages.contains(&"stage_2"),
        "{steps:?}"
    );
    assert_eq!(
        steps.last(),
        Some(&(11, 11, "stage_2".to_owned())),
        "{steps:?}"
    );
    match terminal(&received) {
        OriginEvent::Completed { outputs, .. } => {
            let o = &outputs[0];
            assert_eq!((o.width, o.height), (1920, 1088));
            assert_eq!(o.content_type, "video/mp4");
            assert_eq!(o.has_audio, Some(true));
            assert_eq!(o.duration_s, Some(25.0 / 24.0));
        }
        other => panic!("{other:?}"),
    }
    let body = &comfy.prompts()[0];
    assert_eq!(
        nodes_of(body, "EmptyLTXVLatentVideo")[0]["inputs"]["length"],
        25
    );
    assert_eq!(
        nodes_of(body, "LTXVEmptyLatentAudio")[0]["inputs"]["frames_number"],
        25
    );
    assert_eq!(nodes_of(body, "SamplerCustomAdvanced").len(), 2);
}

/// Each way ComfyUI can refuse or fail a job: the job fails with a message that names
/// the node and never carries a traceback, and ComfyUI is left with nothing running.
#[tokio::test]
async fn failures_become_failed_jobs_a_person_can_read() {
    let comfy = fake();
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(comfy_config(&edge.url, &comfy, &[])).await;
    ready(&origin).await;
    // (script, what the message must say)
    let cases: &[(Script, &str)] = &[
        (Script::NodeErrors, "refused the job's workflow"),
        (Script::Invalid, "refused the job's workflow"),
        (
            Script::ExecutionError { after_steps: 2 },
            "ComfyUI failed in node",
        ),
    ];
    for (script, want) in cases {
        comfy.push_script(script.clone());
        let job = image_job("this will not work", 4, 512, 512);
        assert_eq!(origin.dispatch(&job).await, 202, "{script:?}");
        let received = edge.until_terminal().await;
        let message = failure_message(&received);
        assert!(message.contains(want), "{script:?}: {message}");
        assert!(
            !message.contains("Traceback") && !message.contains("File \""),
            "{script:?}: {message}"
        );
        assert!(uploads(&received).is_empty(), "{script:?}");
        origin.wait_until_idle().await;
        assert!(comfy.wait_idle(WAIT), "{script:?}: ComfyUI still busy");
    }
    // A 200 with node_errors still runs the valid rest: Kiln cancels it (and only it:
    // the 400 queued nothing, the execution error ended its prompt).
    let node_errors_prompt = comfy.prompts()[0]["prompt_id"].clone();
    assert_eq!(comfy.cancels(), [node_errors_prompt.as_str().unwrap()]);
}

#[tokio::test]
async fn a_cancel_interrupts_the_prompt_on_comfyui() {
    let comfy = fake();
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(comfy_config(&edge.url, &comfy, &[])).await;
    ready(&origin).await;
    comfy.push_script(Script::UntilCancelled);
    let job = image_job("a long one", 20, 512, 512);
    assert_eq!(origin.dispatch(&job).await, 202);
    // Running on the GPU: the first step arrived.
    first_step(&mut edge).await;
    let (status, _) = origin.cancel(&job.job_id, true).await;
    assert_eq!(status, 200);
    assert!(comfy.wait_idle(WAIT), "the prompt was interrupted");
    let prompt_id = comfy.prompts()[0]["prompt_id"].as_str().unwrap().to_owned();
    assert_eq!(comfy.cancels(), [prompt_id]);
    origin.wait_until_idle().await;
    assert!(
        edge.drain().iter().all(|r| !r.is_terminal()),
        "a cancelled job reports no result"
    );
}

/// The websocket drops mid-job, or the completion is only in `/history`: the job still
/// completes, from the history.
#[tokio::test]
async fn completions_missed_on_the_websocket_are_read_from_history() {
    let comfy = fake();
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(comfy_config(&edge.url, &comfy, &[])).await;
    ready(&origin).await;
    for script in [Script::DropSocket { after_steps: 2 }, Script::HistoryOnly] {
        comfy.push_script(script.clone());
        let job = image_job("resync", 6, 512, 512);
        assert_eq!(origin.dispatch(&job).await, 202);
        let received = edge.until_terminal().await;
        match terminal(&received) {
            OriginEvent::Completed { outputs, .. } => assert_eq!(outputs.len(), 1, "{script:?}"),
            other => panic!("{script:?}: {other:?}"),
        }
        assert_eq!(uploads(&received).len(), 1, "{script:?}");
        // The last step is reported even when its event was missed.
        assert_eq!(
            progress_of(&received).last().map(|p| p.0),
            Some(6),
            "{script:?}"
        );
        origin.wait_until_idle().await;
    }
}

/// After a drop mid-job the websocket is opened again, so progress goes on live.
#[tokio::test]
async fn a_dropped_websocket_is_reopened_and_progress_goes_on() {
    let comfy = FakeComfyUi::start(FakeOptions {
        step_ms: 50,
        ..FakeOptions::default()
    })
    .unwrap();
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(comfy_config(&edge.url, &comfy, &[])).await;
    ready(&origin).await;
    let before = comfy.ws_connections();
    comfy.push_script(Script::DropSocket { after_steps: 2 });
    let job = image_job("resync live", 40, 512, 512);
    assert_eq!(origin.dispatch(&job).await, 202);
    let received = edge.until_terminal().await;
    assert!(matches!(terminal(&received), OriginEvent::Completed { .. }));
    assert!(comfy.ws_connections() >= before + 2, "reconnected");
    let steps: Vec<u32> = progress_of(&received).iter().map(|p| p.0).collect();
    assert!(
        steps.iter().any(|s| (3..40).contains(s)),
        "steps after the drop arrived live: {steps:?}"
    );
}

/// The GPU host's operator interrupts the prompt in ComfyUI: the job ends `cancelled`
/// (the edge refunds it), not failed.
#[tokio::test]
async fn an_operator_interrupt_ends_the_job_cancelled() {
    let comfy = fake();
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(comfy_config(&edge.url, &comfy, &[])).await;
    ready(&origin).await;
    comfy.push_script(Script::UntilCancelled);
    let job = image_job("interrupt me", 20, 512, 512);
    assert_eq!(origin.dispatch(&job).await, 202);
    first_step(&mut edge).await;
    let status = reqwest::Client::new()
        .post(format!("{}/interrupt", comfy.url()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let received = edge.until_terminal().await;
    match terminal(&received) {
        OriginEvent::Failed { code, message } => {
            assert_eq!(code, "cancelled");
            assert!(
                message.contains("interrupted on the GPU server"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    origin.wait_until_idle().await;
}

/// ComfyUI restarts while the job runs and forgets it (its queue and history live in
/// memory): the job fails at once instead of holding the GPU slot until the timeout.
#[tokio::test]
async fn a_job_comfyui_forgot_in_a_restart_fails_at_once() {
    let comfy = fake();
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(comfy_config(&edge.url, &comfy, &[])).await;
    ready(&origin).await;
    comfy.push_script(Script::UntilCancelled);
    let job = image_job("forgotten", 20, 512, 512);
    assert_eq!(origin.dispatch(&job).await, 202);
    first_step(&mut edge).await;
    comfy.restart();
    let received = edge.until_terminal().await;
    let message = failure_message(&received);
    assert!(message.contains("ComfyUI restarted"), "{message}");
    origin.wait_until_idle().await;
}

/// Unreachable, slow, the wrong version, a model file missing: the origin says it is
/// unhealthy, with the reason, in `/health` and in heartbeats, and refuses dispatches
/// with 503 (the job stays queued at the edge); it recovers when the server does.
#[tokio::test]
async fn an_unusable_server_makes_the_origin_unhealthy_until_it_recovers() {
    let comfy = fake();
    let mut edge = EdgeDouble::start(0).await;
    let origin = Origin::start(comfy_config(
        &edge.url,
        &comfy,
        &[("KILN_COMFYUI_REQUEST_SECS", "1")],
    ))
    .await;
    ready(&origin).await;
    edge.heartbeat_where(|b| b.healthy).await;

    comfy.set_down(true);
    let h = health_where(&origin, |h| h["status"] == "unhealthy").await;
    assert!(
        h["problem"]
            .as_str()
            .unwrap()
            .contains("cannot reach ComfyUI"),
        "{h}"
    );
    assert_eq!(h["comfyui"][0]["reachable"], false);
    let beat = edge.heartbeat_where(|b| !b.healthy).await;
    let problem = beat.problem.unwrap();
    assert!(problem.contains("unreachable"), "{problem}");
    assert!(
        !problem.contains("127.0.0.1"),
        "no internal address: {problem}"
    );
    assert_eq!(origin.dispatch(&image_job("x", 4, 512, 512)).await, 503);
    // Test-mode jobs run on the sim and need no GPU.
    assert_eq!(origin.dispatch(&job("test mode", 2, 512, 512)).await, 202);
    let received = edge.until_terminal().await;
    match terminal(&received) {
        OriginEvent::Completed {
            engine, simulated, ..
        } => {
            assert_eq!((engine.as_str(), simulated), ("sim", true))
        }
        other => panic!("{other:?}"),
    }
    origin.wait_until_idle().await;
    comfy.set_down(false);
    ready(&origin).await;

    comfy.set_http_delay(Duration::from_millis(1500));
    let h = health_where(&origin, |h| h["status"] == "unhealthy").await;
    assert!(h["problem"].as_str().unwrap().contains("timed out"), "{h}");
    comfy.set_http_delay(Duration::ZERO);
    ready(&origin).await;

    comfy.remove_model("vae", "flux2-vae.safetensors");
    let h = health_where(&origin, |h| h["status"] == "unhealthy").await;
    assert!(
        h["problem"]
            .as_str()
            .unwrap()
            .contains("flux2-vae.safetensors is missing from models/vae"),
        "{h}"
    );
    let files = h["comfyui"][0]["model_files"].as_array().unwrap().clone();
    assert!(files
        .iter()
        .any(|m| m["file"] == "flux2-vae.safetensors" && m["present"] == false));
    comfy.add_model("vae", "flux2-vae.safetensors");
    ready(&origin).await;
    assert!(comfy.prompts().is_empty(), "nothing reached ComfyUI");
}

#[tokio::test]
async fn a_server_of_another_version_is_not_used() {
    let comfy = FakeComfyUi::start(FakeOptions {
        version: "0.27.0".to_owned(),
        ..FakeOptions::default()
    })
    .unwrap();
    let edge = EdgeDouble::start(0).await;
    let origin = Origin::start(comfy_config(&edge.url, &comfy, &[])).await;
    let h = health_where(&origin, |h| {
        h["comfyui"][0]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("0.27.0"))
    })
    .await;
    assert_eq!(h["status"], "unhealthy", "{h}");
    assert!(
        h["problem"].as_str().unwrap().contains("install 0.26.0"),
        "{h}"
    );
}

#[tokio::test]
async fn an_origin_serving_only_images_needs_only_the_flux_files() {
    let comfy = fake();
    comfy.remove_model("checkpoints", "ltx-2.3-22b-dev-fp8.safetensors");
    let edge = EdgeDouble::start(0).await;
    let origin = Origin::start(comfy_config(
        &edge.url,
        &comfy,
        &[("KILN_COMFYUI_MODELS", "flux2-dev")],
    ))
    .await;
    let h = ready(&origin).await;
    assert_eq!(h["models"], serde_json::json!(["flux2-dev"]));
}
