//! The simulated engine: what development, CI and `sk-test-` keys run on. It behaves like
//! a GPU from the outside — a model load the first time a model is used, one progress
//! event per denoising step at a configurable pace, a real PNG of the requested size
//! ([`image::render_png`]) or a real H.264 MP4 at the 2× output size
//! ([`video::sim_mp4`]) — and is
//! deterministic: the same (prompt, seed, width, height, steps, cfg) always gives the
//! same image, and the same (size, frames, fps, seed) the same video, so tests can
//! compare outputs.
//!
//! # Inputs
//! The sim uses a job's inputs ([`InputImage`]s, already decoded, first frame only)
//! visibly and deterministically, so tests can tell:
//!
//! - **img2img** (workflow `…:img2img`): the output is the first reference resized to
//!   the output size and blended 70 % with the usual procedural render
//!   ([`image::render_png_from`]): a red reference gives a mostly red image. The same
//!   reference, seed and parameters give the same bytes.
//! - **image-to-video** (workflow `…:i2v`): frame 0 is the first input resized to the
//!   output size (2× the requested size); later frames pan right over it at 2 px a frame,
//!   the image mirrored at its edge ([`video::sim_mp4_from_image`]). The MP4 is the same
//!   H.264 stream as text-to-video, at exactly `num_frames` frames.
//!
//! A `…:txt2img` or `…:t2v` job ignores inputs; an `img2img` or `i2v` job without one fails.
//!
//! Image jobs report one stage, `sampling`; video jobs report the stages of
//! [`VideoParams::stages`] in order (`stage_1`, then `stage_2` for two-stage `ltx-2.3`),
//! with `step` counted across all of them.
//!
//! - this file — the engine: stages, pacing, model loads, test triggers, and the outputs
//!   made on the blocking pool;
//! - [`image`] — the PNG renderer;
//! - [`video`] — the H.264 encoder, MP4 muxer and scene renderer;
//! - `rng.rs` — the one pseudo-random generator both draw from.
//!
//! # Test triggers
//! Like Stripe's test card numbers, a marker in the prompt makes the sim misbehave on
//! purpose, so integrators can exercise their failure handling:
//!
//! | prompt contains | effect |
//! |---|---|
//! | `[[sim:fail]]` | the job reports steps 1 to ⌈total_steps/2⌉, then fails with code `generation_failed` and the message "Simulated failure requested by the prompt." (images and videos) |
//! | `[[sim:step_ms=N]]` | each step of this job takes N ms (1–5000) instead of `KILN_SIM_STEP_MS`, so a test can make one job slow (to cancel it) or fast; any other N fails the job at once with `generation_failed` |

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use kiln_shared::ids::Filename;
use kiln_shared::images::{ImageParams, SIDE_PX_MAX, SIDE_PX_MIN};
use kiln_shared::jobs::JobParams;
use kiln_shared::origin::{DispatchJob, OutputMeta};
use kiln_shared::video::{self as video_rules, VideoParams};
use tokio::sync::mpsc;

use ::image::RgbaImage;

use super::{EngineError, InputImage, Output, Progress, STAGE_SAMPLING, STAGE_SAMPLING_LABEL};
use crate::config::SimConfig;
use crate::flag::Flag;

pub mod image;
mod rng;
pub mod video;

/// In a prompt, makes the job fail halfway (see the module docs).
pub const FAIL_TRIGGER: &str = "[[sim:fail]]";
pub const FAIL_MESSAGE: &str = "Simulated failure requested by the prompt.";
/// In a prompt, `[[sim:step_ms=N]]` sets this job's pace per step (see the module docs).
pub const STEP_MS_TRIGGER: &str = "[[sim:step_ms=";
/// Slower than this and a test would hold a slot for minutes.
pub const STEP_MS_TRIGGER_MAX: u64 = 5_000;

/// Every model the sim serves: the image and the video catalog.
pub fn models() -> impl Iterator<Item = &'static str> {
    kiln_shared::images::MODELS
        .iter()
        .chain(video_rules::MODELS)
        .copied()
}

#[derive(Debug)]
pub struct SimEngine {
    pace: SimConfig,
    /// Models "loaded" by this process; later jobs of these skip the load delay.
    resident: Mutex<BTreeSet<String>>,
}

/// One stage of a job as progress reports it.
struct Stage {
    name: &'static str,
    label: String,
    steps: u32,
}

impl SimEngine {
    pub fn new(pace: SimConfig) -> Self {
        Self {
            pace,
            resident: Mutex::new(BTreeSet::new()),
        }
    }

    pub async fn run(
        &self,
        job: &DispatchJob,
        inputs: &[InputImage],
        progress: mpsc::Sender<Progress>,
        stop: &Flag,
    ) -> Result<Vec<Output>, EngineError> {
        let reference = reference(job, inputs)?;
        let (catalog, stages) = match &job.params {
            JobParams::Image(p) => {
                check_image(p)?;
                let sampling = Stage {
                    name: STAGE_SAMPLING,
                    label: STAGE_SAMPLING_LABEL.to_owned(),
                    steps: p.steps,
                };
                (kiln_shared::images::MODELS, vec![sampling])
            }
            JobParams::Video(p) => {
                check_video(p)?;
                let stages = p
                    .stages()
                    .iter()
                    .enumerate()
                    .map(|(i, s)| Stage {
                        name: s.name,
                        label: p.stage_label(i),
                        steps: s.steps,
                    })
                    .collect();
                (video_rules::MODELS, stages)
            }
        };
        if !catalog.contains(&job.model_id.as_str()) {
            return Err(EngineError::Failed(format!(
                "The model `{}` does not run {} jobs; use one of {}.",
                job.model_id,
                match job.params {
                    JobParams::Image(_) => "image",
                    JobParams::Video(_) => "video",
                },
                catalog.join(", ")
            )));
        }
        let prompt = job.params.prompt();
        let step_pace = step_pace(prompt)?.unwrap_or(self.pace.step);

        let _ = progress.send(Progress::LoadingModel).await;
        if !self.is_resident(&job.model_id) {
            pause(self.pace.load, stop).await?;
            self.lock_resident().insert(job.model_id.clone());
        }

        let total_steps: u32 = stages.iter().map(|s| s.steps).sum();
        let fail_at = prompt
            .contains(FAIL_TRIGGER)
            .then(|| total_steps.div_ceil(2));
        let mut step = 0;
        for stage in &stages {
            for _ in 0..stage.steps {
                pause(step_pace, stop).await?;
                step += 1;
                let _ = progress
                    .send(Progress::Processing {
                        step,
                        total_steps,
                        stage: stage.name,
                        stage_label: stage.label.clone(),
                    })
                    .await;
                if fail_at == Some(step) {
                    return Err(EngineError::Failed(FAIL_MESSAGE.to_owned()));
                }
            }
        }

        let output = match &job.params {
            JobParams::Image(p) => {
                // `n` images, the i-th from `seed + i`.
                let mut outputs = Vec::new();
                for i in 0..p.n.max(1) {
                    let one = ImageParams {
                        seed: p.seed.wrapping_add(u64::from(i)),
                        n: 1,
                        ..p.clone()
                    };
                    outputs.push(image_output(job, &one, reference.clone(), i as usize).await?);
                }
                return Ok(outputs);
            }
            JobParams::Video(p) => video_output(job, p, reference, stop).await?,
        };
        Ok(vec![output])
    }

    /// The models loaded by this process, sorted.
    pub fn resident_models(&self) -> Vec<String> {
        self.lock_resident().iter().cloned().collect()
    }

    fn is_resident(&self, model_id: &str) -> bool {
        self.lock_resident().contains(model_id)
    }

    fn lock_resident(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // The set is only ever inserted into, so a panic elsewhere cannot leave it torn.
        self.resident.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The workflow modes that take an input image.
pub const INPUT_MODES: [&str; 2] = ["img2img", "i2v"];

/// The input an `img2img` or `i2v` job works from (its first), `None` for the other
/// modes; a mode that wants one and has none fails.
fn reference(job: &DispatchJob, inputs: &[InputImage]) -> Result<Option<RgbaImage>, EngineError> {
    let mode = job.workflow.rsplit_once(':').map_or("", |(_, mode)| mode);
    if !INPUT_MODES.contains(&mode) {
        return Ok(None);
    }
    match inputs.first() {
        Some(input) => Ok(Some(input.image.clone())),
        None => Err(EngineError::Failed(format!(
            "The workflow `{}` needs an input image in `input_files`.",
            job.workflow
        ))),
    }
}

/// Waits `pace`, or fails with [`EngineError::Stopped`] as soon as `stop` is set.
async fn pause(pace: Duration, stop: &Flag) -> Result<(), EngineError> {
    tokio::select! {
        biased;
        () = stop.wait() => Err(EngineError::Stopped),
        () = tokio::time::sleep(pace) => Ok(()),
    }
}

/// The edge validates sizes; this guard keeps a bad dispatch from allocating gigabytes.
fn check_image(p: &ImageParams) -> Result<(), EngineError> {
    let sides = (SIDE_PX_MIN as u32)..=(SIDE_PX_MAX as u32);
    if !sides.contains(&p.width) || !sides.contains(&p.height) {
        return Err(EngineError::Failed(format!(
            "The simulated engine renders sides of {SIDE_PX_MIN}–{SIDE_PX_MAX} px (got {}×{}).",
            p.width, p.height
        )));
    }
    if !(1..=kiln_shared::images::N_MAX).contains(&i64::from(p.n)) {
        return Err(EngineError::Failed(format!(
            "An image job makes 1–{} images (got {}).",
            kiln_shared::images::N_MAX,
            p.n
        )));
    }
    Ok(())
}

/// As [`check_image`]: the edge's rules, checked again because a video is costly to make.
fn check_video(p: &VideoParams) -> Result<(), EngineError> {
    let frames = i64::from(p.num_frames);
    let ok = video_rules::SIZES.contains(&(p.width, p.height))
        && (video_rules::FRAMES_MIN..=video_rules::FRAMES_MAX).contains(&frames)
        && p.fps == video_rules::FPS;
    if !ok {
        return Err(EngineError::Failed(format!(
            "The simulated engine renders LTX-2.3 sizes at {} fps and {}–{} frames \
             (got {}×{}, {} frames at {} fps).",
            video_rules::FPS,
            video_rules::FRAMES_MIN,
            video_rules::FRAMES_MAX,
            p.width,
            p.height,
            p.num_frames,
            p.fps
        )));
    }
    Ok(())
}

/// The pace a `[[sim:step_ms=N]]` marker asks for, if the prompt has one.
fn step_pace(prompt: &str) -> Result<Option<Duration>, EngineError> {
    let Some(at) = prompt.find(STEP_MS_TRIGGER) else {
        return Ok(None);
    };
    let rest = &prompt[at + STEP_MS_TRIGGER.len()..];
    let ms = rest
        .split_once("]]")
        .and_then(|(n, _)| n.parse::<u64>().ok())
        .filter(|ms| (1..=STEP_MS_TRIGGER_MAX).contains(ms))
        .ok_or_else(|| {
            EngineError::Failed(format!(
                "`{STEP_MS_TRIGGER}N]]` wants N in 1–{STEP_MS_TRIGGER_MAX} milliseconds."
            ))
        })?;
    Ok(Some(Duration::from_millis(ms)))
}

async fn image_output(
    job: &DispatchJob,
    params: &ImageParams,
    reference: Option<RgbaImage>,
    index: usize,
) -> Result<Output, EngineError> {
    let to_render = params.clone();
    // Rendering is CPU-bound for up to a second; keep it off the async workers.
    let bytes =
        tokio::task::spawn_blocking(move || image::render_png_from(&to_render, reference.as_ref()))
            .await
            .map_err(|e| EngineError::Internal(format!("render task: {e}")))?
            .map_err(|e| EngineError::Internal(format!("png encoding: {e}")))?;
    let filename = Filename::output(&job.job_id, index, "png");
    Ok(Output {
        meta: OutputMeta {
            content_type: filename.content_type().to_owned(),
            filename,
            width: params.width,
            height: params.height,
            duration_s: None,
            has_audio: None,
            size_bytes: bytes.len() as u64,
            expires_at_ms: None,
        },
        bytes,
    })
}

/// Encodes the video at the output size. Encoding is CPU work for seconds, so it runs
/// on the blocking pool; a stop abandons it (the thread finishes and its bytes are
/// dropped), which frees the job's slot at once.
async fn video_output(
    job: &DispatchJob,
    params: &VideoParams,
    first: Option<RgbaImage>,
    stop: &Flag,
) -> Result<Output, EngineError> {
    let (width, height) = params.output_size();
    let (frames, fps, seed) = (params.num_frames, params.fps, params.seed);
    let encode = tokio::task::spawn_blocking(move || match first {
        Some(first) => video::sim_mp4_from_image(width, height, frames, fps, &first),
        None => video::sim_mp4(width, height, frames, fps, seed),
    });
    let bytes = tokio::select! {
        biased;
        () = stop.wait() => return Err(EngineError::Stopped),
        encoded = encode => encoded
            .map_err(|e| EngineError::Internal(format!("video encoding: {e}")))?,
    };
    let filename = Filename::output(&job.job_id, 0, "mp4");
    Ok(Output {
        meta: OutputMeta {
            content_type: filename.content_type().to_owned(),
            filename,
            width,
            height,
            duration_s: Some(params.duration_s()),
            // The sim's MP4 is picture only.
            has_audio: Some(false),
            size_bytes: bytes.len() as u64,
            expires_at_ms: None,
        },
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::image::tests::params;
    use kiln_shared::ids::JobId;

    fn job(prompt: &str, steps: u32) -> DispatchJob {
        DispatchJob {
            job_id: JobId::generate(1_775_219_730_000, [3; 10]),
            attempt: 1,
            model_id: "flux2-dev".into(),
            workflow: "flux2-dev:txt2img".into(),
            params: JobParams::Image(ImageParams {
                steps,
                ..params(prompt, 5, 512, 512)
            }),
            input_files: vec![],
            test_mode: true,
        }
    }

    fn video_job(prompt: &str, model: &str) -> DispatchJob {
        DispatchJob {
            model_id: model.into(),
            workflow: format!("{model}:t2v"),
            params: JobParams::Video(VideoParams {
                prompt: prompt.to_owned(),
                negative_prompt: String::new(),
                width: 768,
                height: 768,
                num_frames: 25,
                fps: 24,
                seed: 9,
                two_stage: model == video_rules::MODEL_FULL,
            }),
            ..job(prompt, 1)
        }
    }

    async fn run_until(
        engine: &SimEngine,
        job: &DispatchJob,
        stop: &Flag,
    ) -> (Vec<Progress>, Result<Vec<Output>, EngineError>) {
        run_with(engine, job, &[], stop).await
    }

    async fn run_with(
        engine: &SimEngine,
        job: &DispatchJob,
        inputs: &[InputImage],
        stop: &Flag,
    ) -> (Vec<Progress>, Result<Vec<Output>, EngineError>) {
        let (tx, mut rx) = mpsc::channel(64);
        let result = engine.run(job, inputs, tx, stop).await;
        let mut seen = Vec::new();
        while let Some(p) = rx.recv().await {
            seen.push(p);
        }
        (seen, result)
    }

    async fn run(
        engine: &SimEngine,
        job: &DispatchJob,
    ) -> (Vec<Progress>, Result<Vec<Output>, EngineError>) {
        run_until(engine, job, &Flag::new()).await
    }

    fn fast() -> SimEngine {
        SimEngine::new(SimConfig {
            step: Duration::from_millis(1),
            load: Duration::from_millis(1),
        })
    }

    fn sampling(step: u32, total_steps: u32) -> Progress {
        Progress::Processing {
            step,
            total_steps,
            stage: "sampling",
            stage_label: "Sampling".into(),
        }
    }

    #[tokio::test]
    async fn reports_loading_then_every_step() {
        let engine = fast();
        assert!(engine.resident_models().is_empty());
        for _ in 0..2 {
            // The second run has the model resident and still reports loading_model.
            let (seen, result) = run(&engine, &job("steps", 8)).await;
            let mut want = vec![Progress::LoadingModel];
            want.extend((1..=8).map(|step| sampling(step, 8)));
            assert_eq!(seen, want);
            let outputs = result.unwrap();
            assert_eq!(outputs.len(), 1);
            let meta = &outputs[0].meta;
            assert_eq!(
                meta.filename.as_str(),
                format!("{}-0.png", job("", 8).job_id)
            );
            assert_eq!(
                (meta.width, meta.height, meta.content_type.as_str()),
                (512, 512, "image/png")
            );
            assert_eq!(meta.size_bytes, outputs[0].bytes.len() as u64);
            assert_eq!(engine.resident_models(), vec!["flux2-dev".to_owned()]);
        }
    }

    #[tokio::test]
    async fn the_fail_trigger_fails_halfway() {
        let (seen, result) = run(&fast(), &job("a cat [[sim:fail]]", 9)).await;
        assert_eq!(seen.last(), Some(&sampling(5, 9)));
        match result {
            Err(EngineError::Failed(m)) => assert_eq!(m, FAIL_MESSAGE),
            other => panic!("want a failure, got {other:?}"),
        }
    }

    /// Runs `job` and stops it once its last step is reported, before the encode ends.
    async fn video_steps(job: &DispatchJob) -> Vec<Progress> {
        let (engine, stop) = (fast(), Flag::new());
        let (tx, mut rx) = mpsc::channel(64);
        let total = job.params.total_steps();
        let collect = async {
            let mut seen = Vec::new();
            while let Some(p) = rx.recv().await {
                if matches!(p, Progress::Processing { step, .. } if step == total) {
                    stop.set();
                }
                seen.push(p);
            }
            seen
        };
        let (result, seen) = tokio::join!(engine.run(job, &[], tx, &stop), collect);
        assert!(matches!(result, Err(EngineError::Stopped)), "{result:?}");
        seen
    }

    #[tokio::test]
    async fn video_progress_goes_through_every_stage() {
        for (model, total, want_stages) in [
            ("ltx-2.3", 40, vec![("stage_1", 30), ("stage_2", 10)]),
            ("ltx-2.3-fast", 8, vec![("stage_1", 8)]),
        ] {
            let job = video_job("waves", model);
            let JobParams::Video(p) = &job.params else {
                unreachable!()
            };
            let seen = video_steps(&job).await;
            assert_eq!(seen[0], Progress::LoadingModel);
            let mut want = Vec::new();
            for (i, (stage, steps)) in want_stages.iter().enumerate() {
                for _ in 0..*steps {
                    want.push(Progress::Processing {
                        step: want.len() as u32 + 1,
                        total_steps: total,
                        stage,
                        stage_label: p.stage_label(i),
                    });
                }
            }
            assert_eq!(seen[1..], want[..], "{model}");
        }
    }

    #[tokio::test]
    async fn the_fail_trigger_fails_videos_halfway() {
        let (seen, result) = run(&fast(), &video_job("waves [[sim:fail]]", "ltx-2.3")).await;
        assert!(matches!(result, Err(EngineError::Failed(m)) if m == FAIL_MESSAGE));
        assert!(matches!(
            seen.last(),
            Some(Progress::Processing {
                step: 20,
                total_steps: 40,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn a_model_of_the_wrong_kind_fails() {
        let mut job = video_job("x", "ltx-2.3");
        job.model_id = "flux2-dev".into();
        let (seen, result) = run(&fast(), &job).await;
        assert!(seen.is_empty());
        assert!(matches!(result, Err(EngineError::Failed(m)) if m.contains("flux2-dev")));
    }

    #[test]
    fn the_step_ms_trigger_sets_the_pace() {
        assert_eq!(step_pace("a cat").unwrap(), None);
        assert_eq!(
            step_pace("a cat [[sim:step_ms=200]] at dusk").unwrap(),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            step_pace("[[sim:step_ms=5000]]").unwrap(),
            Some(Duration::from_millis(5000))
        );
        for bad in [
            "[[sim:step_ms=0]]",
            "[[sim:step_ms=5001]]",
            "[[sim:step_ms=fast]]",
            "[[sim:step_ms=-1]]",
            "[[sim:step_ms=10",
        ] {
            assert!(
                matches!(step_pace(bad), Err(EngineError::Failed(_))),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn a_stop_ends_the_job_between_steps() {
        let engine = SimEngine::new(SimConfig {
            step: Duration::from_secs(60),
            load: Duration::from_millis(1),
        });
        let stop = Flag::new();
        let job = job("slow", 20);
        let run = run_until(&engine, &job, &stop);
        let stopper = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            stop.set();
        };
        let ((seen, result), ()) = tokio::join!(run, stopper);
        assert_eq!(seen, vec![Progress::LoadingModel]);
        assert!(matches!(result, Err(EngineError::Stopped)), "{result:?}");
    }

    fn input(colour: [u8; 4], width: u32, height: u32) -> InputImage {
        InputImage {
            filename: Filename::parse("upl_ref.png").unwrap(),
            image: RgbaImage::from_pixel(width, height, ::image::Rgba(colour)),
        }
    }

    fn img2img(prompt: &str) -> DispatchJob {
        DispatchJob {
            workflow: "flux2-dev:img2img".into(),
            input_files: vec![Filename::parse("upl_ref.png").unwrap()],
            ..job(prompt, 2)
        }
    }

    /// The mean of each RGB channel of a PNG.
    fn mean_rgb(png_bytes: &[u8]) -> [u64; 3] {
        let image = ::image::load_from_memory(png_bytes).unwrap().into_rgb8();
        let mut sum = [0u64; 3];
        for p in image.pixels() {
            for c in 0..3 {
                sum[c] += u64::from(p[c]);
            }
        }
        sum.map(|s| s / u64::from(image.width() * image.height()))
    }

    async fn png_of(job: &DispatchJob, inputs: &[InputImage]) -> Vec<u8> {
        let (_, result) = run_with(&fast(), job, inputs, &Flag::new()).await;
        result.unwrap().remove(0).bytes
    }

    #[tokio::test]
    async fn img2img_output_is_dominated_by_the_reference() {
        let red = [input([230, 20, 20, 255], 40, 30)];
        let blue = [input([20, 20, 230, 255], 40, 30)];
        let from_red = png_of(&img2img("a kiln"), &red).await;
        let [r, g, b] = mean_rgb(&from_red);
        assert!(r > 160 && g < 100 && b < 100, "mean {r} {g} {b}");
        let [r, g, b] = mean_rgb(&png_of(&img2img("a kiln"), &blue).await);
        assert!(b > 160 && r < 100 && g < 100, "mean {r} {g} {b}");

        // Same reference, seed and parameters: same bytes. Another seed: other bytes.
        assert_eq!(from_red, png_of(&img2img("a kiln"), &red).await);
        assert_ne!(from_red, png_of(&img2img("a kiln at dawn"), &red).await);
        // The output has the requested size whatever the reference's.
        let meta = ::image::load_from_memory(&from_red).unwrap();
        assert_eq!((meta.width(), meta.height()), (512, 512));
        // Only the first reference counts; txt2img ignores inputs.
        let both = [red[0].clone(), blue[0].clone()];
        assert_eq!(from_red, png_of(&img2img("a kiln"), &both).await);
        let txt2img = png_of(&job("a kiln", 2), &[]).await;
        assert_eq!(txt2img, png_of(&job("a kiln", 2), &red).await);
        assert_ne!(txt2img, from_red);
    }

    #[tokio::test]
    async fn a_transparent_reference_shows_the_procedural_render() {
        let clear = [input([255, 0, 0, 0], 8, 8)];
        let from_clear = png_of(&img2img("glass"), &clear).await;
        let plain = png_of(
            &DispatchJob {
                workflow: "flux2-dev:txt2img".into(),
                ..img2img("glass")
            },
            &[],
        )
        .await;
        assert_eq!(mean_rgb(&from_clear), mean_rgb(&plain));
    }

    #[tokio::test]
    async fn input_modes_without_an_input_fail() {
        let mut video = video_job("waves", "ltx-2.3-fast");
        video.workflow = "ltx-2.3-fast:i2v".into();
        for job in [img2img("x"), video] {
            let (seen, result) = run(&fast(), &job).await;
            assert!(seen.is_empty());
            assert!(
                matches!(&result, Err(EngineError::Failed(m)) if m.contains("needs an input image")),
                "{result:?}"
            );
        }
    }
}
