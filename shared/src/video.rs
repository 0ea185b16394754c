//! `POST /v1/video/generations` (LTX-2.3): parameter rules, defaults, the stage plan
//! the engines report progress in, and the price.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};
use crate::fields::Fields;
use crate::ids::Filename;
use crate::images::{parse_input_files, parse_prompt, parse_seed, PROMPT_CHARS_MAX};
use crate::jobs::SubmitOptions;
use crate::money::MicroUsd;

/// Two-stage: generate at the base size, then refine at 2×. Higher quality.
pub const MODEL_FULL: &str = "ltx-2.3";
/// One distilled stage straight to 2×. Faster, a little less detail.
pub const MODEL_FAST: &str = "ltx-2.3-fast";
pub const DEFAULT_MODEL: &str = MODEL_FULL;
/// The video models in the catalog.
pub const MODELS: &[&str] = &[MODEL_FULL, MODEL_FAST];

/// The sizes LTX-2.3 is trained for (landscape, portrait, square); output is 2× these.
pub const SIZES: &[(u32, u32)] = &[(960, 544), (544, 960), (768, 768)];
pub const SIZE_DEFAULT: (u32, u32) = (960, 544);
/// The engines upscale by this factor.
pub const UPSCALE: u32 = 2;
pub const FRAMES_MIN: i64 = 25;
pub const FRAMES_MAX: i64 = 241;
pub const FRAMES_DEFAULT: i64 = 121;
/// Frame counts are 8n+1: the model's temporal latent packs 8 frames after the first.
pub const FRAMES_STEP: i64 = 8;
/// Frame rate is fixed; anything else is refused rather than silently changed.
pub const FPS: u32 = 24;
/// $0.04 per second of video, charged per frame: ceil(frames × 40,000 / 24) µ$.
pub const MICROS_PER_SECOND: u64 = 40_000;
/// A negative prompt has the same bound as the prompt.
pub const NEGATIVE_PROMPT_CHARS_MAX: usize = PROMPT_CHARS_MAX;
/// At most one reference image (image-to-video).
pub const INPUT_FILES_MAX: usize = 1;

/// What the engine needs to render a video; the seed is concrete here.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoParams {
    pub prompt: String,
    pub negative_prompt: String,
    pub width: u32,
    pub height: u32,
    pub num_frames: u32,
    pub fps: u32,
    pub seed: u64,
    /// The two-stage pipeline (`ltx-2.3`) or the one-stage distilled one.
    pub two_stage: bool,
}

/// One stage of a video pipeline, as progress reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// `stage_1`, `stage_2`: the `progress.stage` value.
    pub name: &'static str,
    pub steps: u32,
}

impl VideoParams {
    /// The output size: 2× the requested one.
    pub fn output_size(&self) -> (u32, u32) {
        (self.width * UPSCALE, self.height * UPSCALE)
    }

    /// Seconds of video: frames / fps.
    pub fn duration_s(&self) -> f64 {
        f64::from(self.num_frames) / f64::from(self.fps)
    }

    /// The stages the engine runs, in order. Progress counts steps across all stages
    /// (`step` of `total_steps`) and names the current one in `stage`/`stage_label`.
    pub fn stages(&self) -> Vec<Stage> {
        if self.two_stage {
            vec![
                Stage {
                    name: "stage_1",
                    steps: 30,
                },
                Stage {
                    name: "stage_2",
                    steps: 10,
                },
            ]
        } else {
            vec![Stage {
                name: "stage_1",
                steps: 8,
            }]
        }
    }

    pub fn total_steps(&self) -> u32 {
        self.stages().iter().map(|s| s.steps).sum()
    }

    /// A label a person can read, e.g. "Stage 1 of 2: generating at 960×544".
    pub fn stage_label(&self, index: usize) -> String {
        let stages = self.stages();
        let (ow, oh) = self.output_size();
        let what = match (self.two_stage, index) {
            (true, 0) => format!("generating at {}×{}", self.width, self.height),
            (true, _) => format!("refining and upscaling to {ow}×{oh}"),
            (false, _) => format!("generating and upscaling to {ow}×{oh}"),
        };
        format!("Stage {} of {}: {what}", index + 1, stages.len())
    }
}

/// A validated video request. `seed` is `None` when the client asked for a random one.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoRequest {
    pub model: String,
    pub prompt: String,
    pub negative_prompt: String,
    pub width: u32,
    pub height: u32,
    pub num_frames: u32,
    pub seed: Option<u64>,
    pub input_files: Vec<Filename>,
    pub options: SubmitOptions,
}

/// The price of `num_frames` frames: ceil(frames × 40,000 / 24) micro-dollars.
pub fn price(num_frames: u32) -> MicroUsd {
    let n = u64::from(num_frames) * MICROS_PER_SECOND;
    let fps = u64::from(FPS);
    MicroUsd::from_micros(n.div_ceil(fps) as i64)
}

impl VideoRequest {
    /// Parses and validates a request body; the error names the first bad parameter.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let mut f = Fields::from_body(body)?;
        let prompt = parse_prompt(&mut f)?;
        let negative_prompt = f.string("negative_prompt")?.unwrap_or_default();
        let neg_chars = negative_prompt.chars().count();
        if neg_chars > NEGATIVE_PROMPT_CHARS_MAX {
            return Err(ApiError::invalid_param(
                "negative_prompt",
                ErrorCode::InvalidValue,
                format!(
                    "`negative_prompt` must be at most {NEGATIVE_PROMPT_CHARS_MAX} characters (got {neg_chars})."
                ),
            ));
        }
        let model = f
            .string("model")?
            .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        if !MODELS.contains(&model.as_str()) {
            return Err(ApiError::invalid_param(
                "model",
                ErrorCode::ModelNotFound,
                format!(
                    "Unknown video model `{model}`; available: {}.",
                    MODELS.join(", ")
                ),
            ));
        }
        let (width, height) = size(&mut f)?;
        let num_frames = frames(&mut f)?;
        match f.int("fps")? {
            None => {}
            Some(v) if v == i64::from(FPS) => {}
            Some(v) => {
                return Err(ApiError::invalid_param(
                    "fps",
                    ErrorCode::InvalidValue,
                    format!("`fps` is fixed at {FPS} (got {v}); leave it out or send {FPS}."),
                ))
            }
        }
        let seed = parse_seed(&mut f)?;
        let input_files = parse_input_files(&mut f, INPUT_FILES_MAX)?;
        let options = SubmitOptions::parse(&mut f, false)?;
        f.finish()?;
        Ok(Self {
            model,
            prompt,
            negative_prompt,
            width,
            height,
            num_frames,
            seed,
            input_files,
            options,
        })
    }

    /// `ltx-2.3:t2v` or `ltx-2.3:i2v` (and the same for `ltx-2.3-fast`).
    pub fn workflow(&self) -> String {
        let mode = if self.input_files.is_empty() {
            "t2v"
        } else {
            "i2v"
        };
        format!("{}:{mode}", self.model)
    }

    pub fn price(&self) -> MicroUsd {
        price(self.num_frames)
    }

    /// Seconds of video, the unit the price is quoted in.
    pub fn seconds(&self) -> f64 {
        f64::from(self.num_frames) / f64::from(FPS)
    }

    pub fn params(&self, seed: u64) -> VideoParams {
        VideoParams {
            prompt: self.prompt.clone(),
            negative_prompt: self.negative_prompt.clone(),
            width: self.width,
            height: self.height,
            num_frames: self.num_frames,
            fps: FPS,
            seed: self.seed.unwrap_or(seed),
            two_stage: self.model == MODEL_FULL,
        }
    }
}

fn sizes_text() -> String {
    SIZES
        .iter()
        .map(|(w, h)| format!("{w}×{h}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn size(f: &mut Fields) -> Result<(u32, u32), ApiError> {
    let width = f.int("width")?;
    let height = f.int("height")?;
    let (w, h) = (
        width.unwrap_or(i64::from(SIZE_DEFAULT.0)),
        height.unwrap_or(i64::from(SIZE_DEFAULT.1)),
    );
    if let Some(&(w, h)) = SIZES
        .iter()
        .find(|(sw, sh)| i64::from(*sw) == w && i64::from(*sh) == h)
    {
        return Ok((w, h));
    }
    // Name the field the client actually sent wrong; if both were sent, `width`.
    let param = if width.is_none() { "height" } else { "width" };
    Err(ApiError::invalid_param(
        param,
        ErrorCode::InvalidDimensions,
        format!(
            "Video size must be exactly one of {} (got {w}×{h}); the output is 2× that.",
            sizes_text()
        ),
    ))
}

/// The valid frame counts nearest to `n`: one value when `n` is outside the range or
/// exactly between nothing, two when it falls between two valid counts.
pub fn nearest_frame_counts(n: i64) -> Vec<i64> {
    if n <= FRAMES_MIN {
        return vec![FRAMES_MIN];
    }
    if n >= FRAMES_MAX {
        return vec![FRAMES_MAX];
    }
    let below = FRAMES_MIN + (n - FRAMES_MIN) / FRAMES_STEP * FRAMES_STEP;
    if below == n {
        vec![n]
    } else {
        vec![below, below + FRAMES_STEP]
    }
}

fn frames(f: &mut Fields) -> Result<u32, ApiError> {
    let n = match f.int("num_frames")? {
        None => return Ok(FRAMES_DEFAULT as u32),
        Some(n) => n,
    };
    if (FRAMES_MIN..=FRAMES_MAX).contains(&n) && (n - 1) % FRAMES_STEP == 0 {
        return Ok(n as u32);
    }
    let nearest = nearest_frame_counts(n)
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    Err(ApiError::invalid_param(
        "num_frames",
        ErrorCode::InvalidNumFrames,
        format!(
            "`num_frames` must be {FRAMES_MIN}–{FRAMES_MAX} and of the form 8n+1 (got {n}); nearest valid: {nearest}."
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(v: Value) -> Result<VideoRequest, ApiError> {
        VideoRequest::parse(v.to_string().as_bytes())
    }

    #[test]
    fn defaults_and_price() {
        let r = parse(json!({"prompt": "a wave"})).unwrap();
        assert_eq!(
            (r.model.as_str(), r.width, r.height, r.num_frames),
            ("ltx-2.3", 960, 544, 121)
        );
        assert_eq!(r.workflow(), "ltx-2.3:t2v");
        // 121 frames → $0.201667 (ceil of 201,666.67 µ$).
        assert_eq!(r.price(), MicroUsd::from_micros(201_667));
        let p = r.params(5);
        assert_eq!((p.output_size(), p.seed, p.fps), ((1920, 1088), 5, 24));
        assert!(p.two_stage);
        assert_eq!(p.total_steps(), 40);
        assert_eq!(p.stages().len(), 2);
        assert!(p.stage_label(1).contains("Stage 2 of 2"));
    }

    #[test]
    fn prices_round_up_per_frame() {
        assert_eq!(price(24), MicroUsd::from_micros(40_000));
        assert_eq!(price(25), MicroUsd::from_micros(41_667));
        assert_eq!(price(241), MicroUsd::from_micros(401_667));
    }

    #[test]
    fn accepted_variants() {
        let r = parse(
            json!({"prompt": "x", "model": "ltx-2.3-fast", "width": 768, "height": "768",
            "num_frames": 25, "fps": 24, "seed": 3, "negative_prompt": "blur",
            "input_files": ["job_0000000000000000000000000a-0.png"], "replyRef": "r"}),
        )
        .unwrap();
        assert_eq!((r.width, r.height, r.num_frames), (768, 768, 25));
        assert_eq!(r.workflow(), "ltx-2.3-fast:i2v");
        let p = r.params(1);
        assert!(!p.two_stage);
        assert_eq!(
            (p.seed, p.total_steps(), p.output_size()),
            (3, 8, (1536, 1536))
        );
        let r =
            parse(json!({"prompt": "x", "width": 544, "height": 960, "num_frames": 241})).unwrap();
        assert_eq!((r.width, r.height, r.num_frames), (544, 960, 241));
    }

    #[test]
    fn nearest_frame_counts_bracket_the_value() {
        assert_eq!(nearest_frame_counts(100), vec![97, 105]);
        assert_eq!(nearest_frame_counts(10), vec![25]);
        assert_eq!(nearest_frame_counts(300), vec![241]);
        assert_eq!(nearest_frame_counts(26), vec![25, 33]);
    }

    #[test]
    fn invalid_parameters_name_the_param() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!({}), "prompt", "missing_parameter"),
            (json!({"prompt": " "}), "prompt", "invalid_value"),
            (
                json!({"prompt": "x", "negative_prompt": "n".repeat(4001)}),
                "negative_prompt",
                "invalid_value",
            ),
            (
                json!({"prompt": "x", "model": "flux2-dev"}),
                "model",
                "model_not_found",
            ),
            (
                json!({"prompt": "x", "width": 1024, "height": 576}),
                "width",
                "invalid_dimensions",
            ),
            (
                json!({"prompt": "x", "width": 768}),
                "width",
                "invalid_dimensions",
            ),
            (
                json!({"prompt": "x", "height": 960}),
                "height",
                "invalid_dimensions",
            ),
            (
                json!({"prompt": "x", "num_frames": 100}),
                "num_frames",
                "invalid_num_frames",
            ),
            (
                json!({"prompt": "x", "num_frames": 24}),
                "num_frames",
                "invalid_num_frames",
            ),
            (
                json!({"prompt": "x", "num_frames": 249}),
                "num_frames",
                "invalid_num_frames",
            ),
            (
                json!({"prompt": "x", "num_frames": "many"}),
                "num_frames",
                "invalid_type",
            ),
            (json!({"prompt": "x", "fps": 30}), "fps", "invalid_value"),
            (json!({"prompt": "x", "seed": -5}), "seed", "out_of_range"),
            (
                json!({"prompt": "x", "input_files": ["job_0000000000000000000000000a-0.png", "job_0000000000000000000000000a-1.png"]}),
                "input_files",
                "invalid_value",
            ),
            (
                json!({"prompt": "x", "response_format": "b64_json"}),
                "response_format",
                "invalid_value",
            ),
            (
                json!({"prompt": "x", "steps": 20}),
                "steps",
                "unknown_parameter",
            ),
        ];
        for (body, param, code) in cases {
            let err = parse(body.clone()).expect_err(&body.to_string());
            assert_eq!(
                (err.status(), err.param(), err.code().as_str()),
                (400, Some(param), code),
                "{body}"
            );
        }
        let err = parse(json!({"prompt": "x", "num_frames": 100})).unwrap_err();
        assert!(err.message().contains("97 or 105"), "{}", err.message());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::proptest_json::{assert_named_400, object_body};
    use proptest::prelude::*;

    const FIELDS: &[&str] = &[
        "prompt",
        "negative_prompt",
        "model",
        "size",
        "width",
        "height",
        "num_frames",
        "duration",
        "seed",
        "input_files",
        "replyUrl",
        "webhook_url",
        "replyRef",
        "response_format",
        "pollForResult",
        "webhook_events",
        "fps",
    ];

    proptest! {
        /// Any body is a request within every documented bound (size from the list,
        /// 8n+1 frames, a price that matches them), or a 400 naming the parameter.
        #[test]
        fn any_video_body_is_valid_or_a_named_400(body in object_body(FIELDS)) {
            match VideoRequest::parse(&body) {
                Ok(r) => {
                    prop_assert!(MODELS.contains(&r.model.as_str()));
                    prop_assert!(SIZES.contains(&(r.width, r.height)));
                    let n = i64::from(r.num_frames);
                    prop_assert!((FRAMES_MIN..=FRAMES_MAX).contains(&n));
                    prop_assert_eq!((n - 1) % FRAMES_STEP, 0);
                    prop_assert!(r.input_files.len() <= INPUT_FILES_MAX);
                    prop_assert_eq!(r.price(), price(r.num_frames));
                    prop_assert!(r.price().micros() > 0);
                }
                Err(e) => assert_named_400(&e)?,
            }
        }
    }
}
