//! End to end with the comfyui engine: the real edge (workerd), a real origin process
//! with `KILN_ENGINE=comfyui`, and the test ComfyUI server (`kiln_tests::comfyui`, a
//! stand-in for ComfyUI 0.26.0 speaking its recorded protocol, since CI has no GPU and
//! cannot install ComfyUI). An image job, a reference-image job and a two-stage video
//! job run to `completed` with their outputs in R2; a job that fails on the GPU server
//! is refunded; test keys still run on the sim.

mod common;

use std::io::Cursor;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use common::*;
use image::{ImageFormat, Rgba, RgbaImage};
use kiln_tests::comfyui::{FakeComfyUi, FakeOptions, Script};
use kiln_tests::stack::{OriginEngine, StackConfig};
use serde_json::{json, Value};

fn comfy() -> &'static FakeComfyUi {
    static COMFY: OnceLock<FakeComfyUi> = OnceLock::new();
    COMFY.get_or_init(|| FakeComfyUi::start(FakeOptions::default()).expect("test ComfyUI"))
}

fn comfy_stack(dir: std::path::PathBuf) -> StackConfig {
    StackConfig {
        engine: OriginEngine::ComfyUi {
            urls: vec![comfy().url()],
            env: vec![("KILN_COMFYUI_POLL_MS".into(), "200".into())],
        },
        ..StackConfig::test(dir)
    }
}

/// The stack, once its origin says ComfyUI is ready and the edge sees it up. The guard
/// runs this file's tests one at a time: each scripts the one ComfyUI server and reads
/// what it received, which parallel tests would mix up.
fn stack() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = env_with(comfy_stack);
    poll_until(
        "the comfyui origin to be ready",
        Duration::from_secs(60),
        || {
            let h: Value = client()
                .get(format!("{}/health", env.edge))
                .send()
                .and_then(|r| r.json())
                .map_err(|e| e.to_string())?;
            let origin = &h["origins"][0];
            if origin["status"] == "up" && origin["engine"] == "comfyui" {
                Ok(())
            } else {
                Err(h.to_string())
            }
        },
    );
    guard
}

fn upload_png(key: &str, colour: Rgba<u8>) -> String {
    let mut png = Vec::new();
    RgbaImage::from_pixel(64, 48, colour)
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let r = upload(key, "ref.png", png);
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["filename"].as_str().unwrap().to_owned()
}

#[test]
fn an_image_job_runs_on_comfyui_and_its_png_is_served_from_r2() {
    let _one = stack();
    let key = new_account();
    let before = credits(&key);
    let prompts_before = comfy().prompts().len();
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "a kiln at dawn", "width": 768, "height": 512, "steps": 8, "seed": 5}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let job_id = r.body["job_id"].as_str().unwrap();
    let (status, ct, bytes) = download(r.body["data"][0]["url"].as_str().unwrap());
    assert_eq!((status, ct.as_str()), (200, "image/png"));
    assert_eq!(png_size(&bytes), (768, 512));
    let job = get(&format!("/v1/jobs/{job_id}"), &key).body;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["metadata"]["engine"], "comfyui");
    assert_eq!(job["metadata"]["simulated"], false);
    assert_eq!(job["progress"]["total_steps"], 8);
    let after = credits(&key);
    assert_eq!(
        micros(&before["balance_usd"]) - micros(&after["balance_usd"]),
        20_000
    );
    let prompts = comfy().prompts();
    assert_eq!(prompts.len(), prompts_before + 1);
    let sent = prompts.last().unwrap().to_string();
    assert!(sent.contains("a kiln at dawn"), "{sent}");
}

#[test]
fn a_reference_image_job_hands_the_upload_to_comfyui() {
    let _one = stack();
    let key = new_account();
    let file = upload_png(&key, Rgba([220, 30, 30, 255]));
    let uploads_before = comfy().uploads().len();
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "in this style", "input_files": [file], "width": 512, "height": 512, "steps": 8}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, _, bytes) = download(r.body["data"][0]["url"].as_str().unwrap());
    assert_eq!(png_size(&bytes), (512, 512));
    let uploads = comfy().uploads();
    assert_eq!(uploads.len(), uploads_before + 1);
    let got = image::load_from_memory(&uploads.last().unwrap().bytes)
        .unwrap()
        .to_rgba8();
    assert_eq!(got.dimensions(), (64, 48));
    assert_eq!(got.get_pixel(3, 3), &Rgba([220, 30, 30, 255]));
    let graph = comfy().prompts().last().unwrap().to_string();
    assert!(graph.contains("ReferenceLatent"), "{graph}");
}

#[test]
fn a_two_stage_video_completes_with_sound_and_both_stages_in_its_progress() {
    let _one = stack();
    let key = new_account();
    let r = post(
        "/v1/video/generations?async_mode=true",
        &key,
        &json!({"prompt": "waves at dusk", "model": "ltx-2.3", "num_frames": 25, "seed": 3}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let job_id = r.body["job_id"].as_str().unwrap().to_owned();
    let (_, sse) = Sse::open(&format!("/v1/jobs/{job_id}/stream"), Some(&key));
    let events = sse.expect("a stream").until_terminal();
    let stages: Vec<String> = events
        .iter()
        .filter(|(e, _)| e == "processing")
        .map(|(_, v)| v["progress"]["stage"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        stages.iter().any(|s| s == "stage_1") && stages.iter().any(|s| s == "stage_2"),
        "{stages:?}"
    );
    let job = wait_terminal(&key, &job_id);
    assert_eq!(job["status"], "completed", "{job}");
    let out = &job["outputs"][0];
    assert_eq!(
        (out["width"].as_u64(), out["height"].as_u64()),
        (Some(1920), Some(1088))
    );
    assert_eq!(out["has_audio"], true, "{job}");
    let (status, ct, bytes) = download(out["url"].as_str().unwrap());
    assert_eq!((status, ct.as_str()), (200, "video/mp4"));
    let probe = ffprobe(&bytes);
    assert_eq!(probe["nb_read_frames"], "25", "{probe}");
    assert!(has_audio_stream(&bytes), "the MP4 keeps LTX-2.3's sound");
}

#[test]
fn a_job_that_fails_on_the_gpu_server_is_refunded_with_a_readable_message() {
    let _one = stack();
    let key = new_account();
    let before = credits(&key);
    comfy().push_script(Script::ExecutionError { after_steps: 1 });
    let r = post(
        "/v1/images/generations?async_mode=true",
        &key,
        &json!({"prompt": "out of memory, please", "steps": 8}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let job = wait_terminal(&key, r.body["job_id"].as_str().unwrap());
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error_code"], "generation_failed");
    let message = job["error_message"].as_str().unwrap();
    assert!(message.contains("ComfyUI failed in node"), "{message}");
    assert!(!message.contains("Traceback"), "{message}");
    let after = credits(&key);
    assert_eq!(after["balance_usd"], before["balance_usd"], "refunded");
    assert_eq!(after["held_usd"], json!(0));
}

#[test]
fn test_keys_still_run_on_the_sim() {
    let _one = stack();
    let key = new_account();
    let test_key = test_key(&key);
    let prompts_before = comfy().prompts().len();
    let r = post(
        "/v1/images/generations",
        &test_key,
        &json!({"prompt": "no GPU needed", "steps": 8}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let job = get(
        &format!("/v1/jobs/{}", r.body["job_id"].as_str().unwrap()),
        &test_key,
    )
    .body;
    assert_eq!(job["metadata"]["engine"], "sim", "{job}");
    assert_eq!(
        comfy().prompts().len(),
        prompts_before,
        "nothing reached ComfyUI"
    );
}

/// ComfyUI unreachable: the origin's heartbeats say so, the edge shows it down with the
/// reason and takes no job for it (503 `no_capacity`, nothing charged); when ComfyUI is
/// back, so is the origin.
#[test]
fn an_origin_whose_comfyui_is_down_is_shown_down_and_gets_no_jobs() {
    let _one = stack();
    let key = new_account();
    let before = credits(&key);
    comfy().set_down(true);
    let origin = poll_until(
        "the edge to see the origin down",
        Duration::from_secs(60),
        || {
            let h: Value = client()
                .get(format!("{}/health", env().edge))
                .send()
                .and_then(|r| r.json())
                .map_err(|e| e.to_string())?;
            let o = h["origins"][0].clone();
            if o["status"] == "down" && o["problem"].is_string() {
                Ok(o)
            } else {
                Err(h.to_string())
            }
        },
    );
    let problem = origin["problem"].as_str().unwrap();
    assert!(problem.contains("unreachable"), "{problem}");
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "no GPU now", "steps": 8}),
    );
    comfy().set_down(false);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(error_of(&r).0, "no_capacity");
    assert_eq!(credits(&key)["balance_usd"], before["balance_usd"]);
    // Back: `stack()` waits for it, as the next test would.
    drop(_one);
    let _again = stack();
}
