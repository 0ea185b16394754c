//! The simulated engine: what development, CI and `sk-test-` keys run on. It behaves like
//! a GPU from the outside — a model load the first time a model is used, one progress
//! event per denoising step at a configurable pace, a real PNG of the requested size —
//! and is deterministic: the same (prompt, seed, width, height, steps, cfg) always gives
//! the same bytes, so tests can compare outputs.
//!
//! # Test triggers
//! Like Stripe's test card numbers, a marker in the prompt makes the sim misbehave on
//! purpose, so integrators can exercise their failure handling:
//!
//! | prompt contains | effect |
//! |---|---|
//! | `[[sim:fail]]` | the job reports steps 1 to ⌈steps/2⌉, then fails with code `generation_failed` and the message "Simulated failure requested by the prompt." |

use std::collections::HashSet;
use std::sync::Mutex;

use kiln_shared::ids::Filename;
use kiln_shared::images::{ImageParams, SIDE_PX_MAX, SIDE_PX_MIN};
use kiln_shared::jobs::JobParams;
use kiln_shared::origin::{DispatchJob, OutputMeta};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{EngineError, Output, Progress};
use crate::config::SimConfig;

/// In a prompt, makes the job fail halfway (see the module docs).
pub const FAIL_TRIGGER: &str = "[[sim:fail]]";
pub const FAIL_MESSAGE: &str = "Simulated failure requested by the prompt.";

#[derive(Debug)]
pub struct SimEngine {
    pace: SimConfig,
    /// Models "loaded" by this process; later jobs of these skip the load delay.
    resident: Mutex<HashSet<String>>,
}

impl SimEngine {
    pub fn new(pace: SimConfig) -> Self {
        Self {
            pace,
            resident: Mutex::new(HashSet::new()),
        }
    }

    pub async fn run(
        &self,
        job: &DispatchJob,
        progress: mpsc::Sender<Progress>,
    ) -> Result<Vec<Output>, EngineError> {
        let JobParams::Image(params) = &job.params;
        // The edge validates sizes; this guard keeps a bad dispatch from allocating
        // gigabytes.
        let sides = (SIDE_PX_MIN as u32)..=(SIDE_PX_MAX as u32);
        if !sides.contains(&params.width) || !sides.contains(&params.height) {
            return Err(EngineError::Failed(format!(
                "The simulated engine renders sides of {SIDE_PX_MIN}–{SIDE_PX_MAX} px (got {}×{}).",
                params.width, params.height
            )));
        }

        let _ = progress.send(Progress::LoadingModel).await;
        if !self.is_resident(&job.model_id) {
            tokio::time::sleep(self.pace.load).await;
            self.lock_resident().insert(job.model_id.clone());
        }

        let fail_at = params
            .prompt
            .contains(FAIL_TRIGGER)
            .then(|| params.steps.div_ceil(2));
        for step in 1..=params.steps {
            tokio::time::sleep(self.pace.step).await;
            let _ = progress
                .send(Progress::Sampling {
                    step,
                    total_steps: params.steps,
                })
                .await;
            if fail_at == Some(step) {
                return Err(EngineError::Failed(FAIL_MESSAGE.to_owned()));
            }
        }

        let to_render = params.clone();
        // Rendering is CPU-bound for up to a second; keep it off the async workers.
        let bytes = tokio::task::spawn_blocking(move || render_png(&to_render))
            .await
            .map_err(|e| EngineError::Internal(format!("render task: {e}")))?
            .map_err(|e| EngineError::Internal(format!("png encoding: {e}")))?;
        let filename = Filename::output(&job.job_id, 0, "png");
        Ok(vec![Output {
            meta: OutputMeta {
                content_type: filename.content_type().to_owned(),
                filename,
                width: params.width,
                height: params.height,
                duration_s: None,
                size_bytes: bytes.len() as u64,
            },
            bytes,
        }])
    }

    fn is_resident(&self, model_id: &str) -> bool {
        self.lock_resident().contains(model_id)
    }

    fn lock_resident(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // The set is only ever inserted into, so a panic elsewhere cannot leave it torn.
        self.resident.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Renders the image for `params` as PNG bytes: a four-colour gradient, soft diagonal
/// bands and a few soft discs, all drawn from a seed derived from every parameter.
pub fn render_png(params: &ImageParams) -> Result<Vec<u8>, png::EncodingError> {
    let rgb = render_rgb(
        params.width,
        params.height,
        &mut SplitMix64(seed_of(params)),
    );
    let mut out = Vec::with_capacity(rgb.len() / 4);
    let mut encoder = png::Encoder::new(&mut out, params.width, params.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Speed over size: the file is a stand-in and the render must stay fast in debug builds.
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::FilterType::Sub);
    encoder.add_text_chunk(
        "Software".to_owned(),
        "Kiln simulated engine (not a model output)".to_owned(),
    )?;
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(out)
}

/// A 64-bit seed from the parameters' canonical JSON (serde keeps field order fixed),
/// so any change to any parameter gives a different image.
fn seed_of(params: &ImageParams) -> u64 {
    let canonical = serde_json::to_vec(params).expect("ImageParams always serializes");
    let digest = Sha256::digest(&canonical);
    u64::from_le_bytes(
        digest[..8]
            .try_into()
            .expect("a SHA-256 digest has 8 bytes"),
    )
}

/// SplitMix64: tiny, fast and well distributed; plenty for picking colours.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `lo..=hi` for drawing.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn colour(&mut self) -> [i64; 3] {
        [
            self.range(20, 235),
            self.range(20, 235),
            self.range(20, 235),
        ]
    }
}

const DISCS_MIN: i64 = 4;
const DISCS_MAX: i64 = 8;

/// Row-major RGB, 3 bytes per pixel. Integer math with fixed-point steps, so a
/// 2048×2048 image renders quickly even without optimizations.
fn render_rgb(width: u32, height: u32, rng: &mut SplitMix64) -> Vec<u8> {
    let (w, h) = (width as i64, height as i64);
    let corners = [rng.colour(), rng.colour(), rng.colour(), rng.colour()];
    // Diagonal bands: the phase advances by (band_dx, band_dy) per pixel in 1/256ths.
    let band_dx = rng.range(40, 400);
    let band_dy = rng.range(-400, 400);
    let band_depth = rng.range(8, 28);

    let mut rgb = vec![0u8; (w * h * 3) as usize];
    for y in 0..h {
        let mut row = [[0i64; 2]; 3];
        for (c, ends) in row.iter_mut().enumerate() {
            let left = lerp(corners[0][c], corners[2][c], y, h - 1);
            let right = lerp(corners[1][c], corners[3][c], y, h - 1);
            // 16.16 fixed point: the start value and the step per pixel.
            *ends = [left << 16, ((right - left) << 16) / (w - 1)];
        }
        let mut phase = y * band_dy;
        let line = &mut rgb[(y * w * 3) as usize..((y + 1) * w * 3) as usize];
        for px in line.chunks_exact_mut(3) {
            let band = (phase >> 8) & 127;
            let shade = if band < 64 { band } else { 127 - band } * band_depth / 64;
            for (c, ends) in row.iter_mut().enumerate() {
                px[c] = ((ends[0] >> 16) + shade).clamp(0, 255) as u8;
                ends[0] += ends[1];
            }
            phase += band_dx;
        }
    }

    for _ in 0..rng.range(DISCS_MIN, DISCS_MAX) {
        let r = rng.range(w.min(h) / 16, w.min(h) / 5);
        let (cx, cy) = (rng.range(0, w - 1), rng.range(0, h - 1));
        let colour = rng.colour();
        let strength = rng.range(120, 230);
        draw_soft_disc(&mut rgb, (w, h), (cx, cy, r), colour, strength);
    }
    rgb
}

fn lerp(a: i64, b: i64, t: i64, t_max: i64) -> i64 {
    a + (b - a) * t / t_max
}

/// Blends `colour` in with opacity `strength`/256 at the centre, fading to nothing at
/// radius `r`.
fn draw_soft_disc(
    rgb: &mut [u8],
    (w, h): (i64, i64),
    (cx, cy, r): (i64, i64, i64),
    colour: [i64; 3],
    strength: i64,
) {
    let r2 = r * r;
    for y in (cy - r).max(0)..(cy + r).min(h) {
        let dy2 = (y - cy) * (y - cy);
        for x in (cx - r).max(0)..(cx + r).min(w) {
            let d2 = dy2 + (x - cx) * (x - cx);
            if d2 >= r2 {
                continue;
            }
            let alpha = strength * (r2 - d2) / r2;
            let i = ((y * w + x) * 3) as usize;
            for c in 0..3 {
                let p = rgb[i + c] as i64;
                rgb[i + c] = (p + (((colour[c] - p) * alpha) >> 8)) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use kiln_shared::ids::JobId;

    fn params(prompt: &str, seed: u64, width: u32, height: u32) -> ImageParams {
        ImageParams {
            prompt: prompt.to_owned(),
            width,
            height,
            steps: 20,
            cfg: 4.0,
            seed,
        }
    }

    fn decode(bytes: &[u8]) -> (u32, u32, png::ColorType) {
        let reader = png::Decoder::new(bytes).read_info().expect("a valid PNG");
        let info = reader.info();
        (info.width, info.height, info.color_type)
    }

    #[test]
    fn same_parameters_give_the_same_bytes() {
        let p = params("a kiln at dusk", 42, 512, 512);
        assert_eq!(render_png(&p).unwrap(), render_png(&p).unwrap());
    }

    #[test]
    fn any_parameter_changes_the_image() {
        let base = params("a kiln at dusk", 42, 512, 512);
        let image = render_png(&base).unwrap();
        let variants = [
            ImageParams {
                seed: 43,
                ..base.clone()
            },
            ImageParams {
                prompt: "a kiln at dawn".into(),
                ..base.clone()
            },
            ImageParams {
                steps: 21,
                ..base.clone()
            },
            ImageParams {
                cfg: 4.5,
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(render_png(&v).unwrap(), image, "{v:?}");
        }
    }

    #[test]
    fn images_have_the_requested_size() {
        for (w, h) in [(512, 512), (512, 1024), (1024, 576), (2048, 2048)] {
            let bytes = render_png(&params("size check", 7, w, h)).unwrap();
            assert_eq!(decode(&bytes), (w, h, png::ColorType::Rgb), "{w}x{h}");
        }
    }

    #[test]
    fn images_are_not_flat() {
        let p = params("variety", 1, 512, 512);
        let rgb = render_rgb(p.width, p.height, &mut SplitMix64(seed_of(&p)));
        let distinct: HashSet<&[u8]> = rgb.chunks_exact(3).collect();
        assert!(distinct.len() > 1000, "{} colours", distinct.len());
    }

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

    async fn run(
        engine: &SimEngine,
        job: &DispatchJob,
    ) -> (Vec<Progress>, Result<Vec<Output>, EngineError>) {
        let (tx, mut rx) = mpsc::channel(64);
        let result = engine.run(job, tx).await;
        let mut seen = Vec::new();
        while let Some(p) = rx.recv().await {
            seen.push(p);
        }
        (seen, result)
    }

    fn fast() -> SimEngine {
        SimEngine::new(SimConfig {
            step: Duration::from_millis(1),
            load: Duration::from_millis(1),
        })
    }

    #[tokio::test]
    async fn reports_loading_then_every_step() {
        let engine = fast();
        for _ in 0..2 {
            // The second run has the model resident and still reports loading_model.
            let (seen, result) = run(&engine, &job("steps", 8)).await;
            let mut want = vec![Progress::LoadingModel];
            want.extend((1..=8).map(|step| Progress::Sampling {
                step,
                total_steps: 8,
            }));
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
        }
    }

    #[tokio::test]
    async fn the_fail_trigger_fails_halfway() {
        let (seen, result) = run(&fast(), &job("a cat [[sim:fail]]", 9)).await;
        assert_eq!(
            seen.last(),
            Some(&Progress::Sampling {
                step: 5,
                total_steps: 9
            })
        );
        match result {
            Err(EngineError::Failed(m)) => assert_eq!(m, FAIL_MESSAGE),
            other => panic!("want a failure, got {other:?}"),
        }
    }
}
