//! [`Pipeline`], the six workflows, and [`Param`], the values a fill supplies by the
//! names a template's `bindings` use.

use std::ops::RangeInclusive;

use kiln_shared::images;
use kiln_shared::origin::DispatchJob;
use kiln_shared::video;

use crate::engine::STAGE_SAMPLING;

/// One of the six workflows the ComfyUI engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pipeline {
    Flux2Text,
    Flux2Reference,
    LtxT2v,
    LtxI2v,
    LtxFastT2v,
    LtxFastI2v,
}

const STAGE_1: &str = "stage_1";
const STAGE_2: &str = "stage_2";

impl Pipeline {
    pub const ALL: [Pipeline; 6] = [
        Pipeline::Flux2Text,
        Pipeline::Flux2Reference,
        Pipeline::LtxT2v,
        Pipeline::LtxI2v,
        Pipeline::LtxFastT2v,
        Pipeline::LtxFastI2v,
    ];

    /// The pipeline of a job, by its model id and the mode of its workflow
    /// (`flux2-dev:img2img` → [`Pipeline::Flux2Reference`]); `None` for anything else,
    /// including a workflow whose model part is not the job's model id.
    pub fn for_job(job: &DispatchJob) -> Option<Pipeline> {
        let (model, mode) = job.workflow.rsplit_once(':')?;
        if model != job.model_id {
            return None;
        }
        Some(match (model, mode) {
            (images::DEFAULT_MODEL, "txt2img") => Pipeline::Flux2Text,
            (images::DEFAULT_MODEL, "img2img") => Pipeline::Flux2Reference,
            (video::MODEL_FULL, "t2v") => Pipeline::LtxT2v,
            (video::MODEL_FULL, "i2v") => Pipeline::LtxI2v,
            (video::MODEL_FAST, "t2v") => Pipeline::LtxFastT2v,
            (video::MODEL_FAST, "i2v") => Pipeline::LtxFastI2v,
            _ => return None,
        })
    }

    /// The Kiln model it runs.
    pub fn model_id(self) -> &'static str {
        match self {
            Pipeline::Flux2Text | Pipeline::Flux2Reference => images::DEFAULT_MODEL,
            Pipeline::LtxT2v | Pipeline::LtxI2v => video::MODEL_FULL,
            Pipeline::LtxFastT2v | Pipeline::LtxFastI2v => video::MODEL_FAST,
        }
    }

    /// The template file stem.
    pub fn name(self) -> &'static str {
        match self {
            Pipeline::Flux2Text => "flux2_t2i",
            Pipeline::Flux2Reference => "flux2_ref",
            Pipeline::LtxT2v => "ltx23_t2v",
            Pipeline::LtxI2v => "ltx23_i2v",
            Pipeline::LtxFastT2v => "ltx23_fast_t2v",
            Pipeline::LtxFastI2v => "ltx23_fast_i2v",
        }
    }

    /// Whether it makes a video (LTX-2.3) rather than an image (FLUX.2).
    pub fn is_video(self) -> bool {
        !matches!(self, Pipeline::Flux2Text | Pipeline::Flux2Reference)
    }

    /// Whether it is the two-stage `ltx-2.3` pipeline.
    pub fn two_stage(self) -> bool {
        matches!(self, Pipeline::LtxT2v | Pipeline::LtxI2v)
    }

    /// How many input images a job of this pipeline gives.
    pub fn input_images(self) -> RangeInclusive<usize> {
        match self {
            Pipeline::Flux2Text | Pipeline::LtxT2v | Pipeline::LtxFastT2v => 0..=0,
            Pipeline::Flux2Reference => 1..=images::INPUT_FILES_MAX,
            Pipeline::LtxI2v | Pipeline::LtxFastI2v => 1..=video::INPUT_FILES_MAX,
        }
    }

    /// The stage names progress reports, in order.
    pub fn stage_names(self) -> &'static [&'static str] {
        if !self.is_video() {
            &[STAGE_SAMPLING]
        } else if self.two_stage() {
            &[STAGE_1, STAGE_2]
        } else {
            &[STAGE_1]
        }
    }

    /// The parameters a fill of this pipeline supplies; its template binds every one.
    pub fn params(self) -> &'static [Param] {
        use Param::*;
        match self {
            Pipeline::Flux2Text | Pipeline::Flux2Reference => &[
                Prompt,
                Width,
                Height,
                Steps,
                Cfg,
                Seed,
                FilenamePrefix,
                Flux2Unet,
                Flux2TextEncoder,
                Flux2Vae,
                Flux2Sampler,
            ],
            Pipeline::LtxT2v => &[
                Prompt,
                NegativePrompt,
                Width,
                Height,
                Frames,
                Fps,
                Seed,
                Stage2Seed,
                FilenamePrefix,
                LtxCheckpoint,
                LtxTextEncoder,
                LtxLora,
                LtxLoraStrength,
                LtxUpscaler,
                LtxSampler,
                LtxStage1Sigmas,
                LtxStage2Sigmas,
            ],
            Pipeline::LtxI2v => &[
                Prompt,
                NegativePrompt,
                Width,
                Height,
                OutputWidth,
                OutputHeight,
                Frames,
                Fps,
                Seed,
                Stage2Seed,
                FilenamePrefix,
                InputImage,
                LtxCheckpoint,
                LtxTextEncoder,
                LtxLora,
                LtxLoraStrength,
                LtxUpscaler,
                LtxSampler,
                LtxStage1Sigmas,
                LtxStage2Sigmas,
            ],
            Pipeline::LtxFastT2v => &[
                Prompt,
                NegativePrompt,
                Width,
                Height,
                Frames,
                Fps,
                Seed,
                FilenamePrefix,
                LtxFastCheckpoint,
                LtxTextEncoder,
                LtxUpscaler,
                LtxSampler,
                LtxFastSigmas,
            ],
            Pipeline::LtxFastI2v => &[
                Prompt,
                NegativePrompt,
                Width,
                Height,
                OutputWidth,
                OutputHeight,
                Frames,
                Fps,
                Seed,
                FilenamePrefix,
                InputImage,
                LtxFastCheckpoint,
                LtxTextEncoder,
                LtxUpscaler,
                LtxSampler,
                LtxFastSigmas,
            ],
        }
    }

    /// The built-in template's text.
    pub fn builtin_source(self) -> &'static str {
        match self {
            Pipeline::Flux2Text => include_str!("../../../../comfyui/templates/flux2_t2i.json"),
            Pipeline::Flux2Reference => {
                include_str!("../../../../comfyui/templates/flux2_ref.json")
            }
            Pipeline::LtxT2v => include_str!("../../../../comfyui/templates/ltx23_t2v.json"),
            Pipeline::LtxI2v => include_str!("../../../../comfyui/templates/ltx23_i2v.json"),
            Pipeline::LtxFastT2v => {
                include_str!("../../../../comfyui/templates/ltx23_fast_t2v.json")
            }
            Pipeline::LtxFastI2v => {
                include_str!("../../../../comfyui/templates/ltx23_fast_i2v.json")
            }
        }
    }

    pub(super) fn index(self) -> usize {
        Pipeline::ALL
            .iter()
            .position(|&p| p == self)
            .unwrap_or_default()
    }
}

/// A value a fill supplies, by the name a template's `bindings` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Param {
    /// The job's prompt.
    Prompt,
    /// The job's negative prompt, or `ltx_negative_prompt` when it is blank.
    NegativePrompt,
    /// The requested width and height (FLUX.2: the image; LTX-2.3: stage 1).
    Width,
    Height,
    /// The video's output size, 2× the requested one.
    OutputWidth,
    OutputHeight,
    /// `num_frames`.
    Frames,
    Fps,
    Steps,
    Cfg,
    /// The job's seed, + the image index.
    Seed,
    /// Seed + 1, for stage 2 of the two-stage pipeline.
    Stage2Seed,
    FilenamePrefix,
    /// The one image of image-to-video, as `LoadImage.image` takes it.
    InputImage,
    Flux2Unet,
    Flux2TextEncoder,
    Flux2Vae,
    Flux2Sampler,
    LtxCheckpoint,
    LtxFastCheckpoint,
    LtxTextEncoder,
    LtxLora,
    LtxLoraStrength,
    LtxUpscaler,
    LtxSampler,
    LtxStage1Sigmas,
    LtxStage2Sigmas,
    LtxFastSigmas,
}

/// The JSON type a parameter's value has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Int,
    Float,
}

impl Param {
    pub const ALL: [Param; 28] = [
        Param::Prompt,
        Param::NegativePrompt,
        Param::Width,
        Param::Height,
        Param::OutputWidth,
        Param::OutputHeight,
        Param::Frames,
        Param::Fps,
        Param::Steps,
        Param::Cfg,
        Param::Seed,
        Param::Stage2Seed,
        Param::FilenamePrefix,
        Param::InputImage,
        Param::Flux2Unet,
        Param::Flux2TextEncoder,
        Param::Flux2Vae,
        Param::Flux2Sampler,
        Param::LtxCheckpoint,
        Param::LtxFastCheckpoint,
        Param::LtxTextEncoder,
        Param::LtxLora,
        Param::LtxLoraStrength,
        Param::LtxUpscaler,
        Param::LtxSampler,
        Param::LtxStage1Sigmas,
        Param::LtxStage2Sigmas,
        Param::LtxFastSigmas,
    ];

    /// The name a template's `bindings` use (the [`ModelFiles`] / [`SamplerSettings`]
    /// field name for a setting).
    ///
    /// [`ModelFiles`]: crate::engine::comfyui::settings::ModelFiles
    /// [`SamplerSettings`]: crate::engine::comfyui::settings::SamplerSettings
    pub fn name(self) -> &'static str {
        match self {
            Param::Prompt => "prompt",
            Param::NegativePrompt => "negative_prompt",
            Param::Width => "width",
            Param::Height => "height",
            Param::OutputWidth => "output_width",
            Param::OutputHeight => "output_height",
            Param::Frames => "frames",
            Param::Fps => "fps",
            Param::Steps => "steps",
            Param::Cfg => "cfg",
            Param::Seed => "seed",
            Param::Stage2Seed => "stage2_seed",
            Param::FilenamePrefix => "filename_prefix",
            Param::InputImage => "input_image",
            Param::Flux2Unet => "flux2_unet",
            Param::Flux2TextEncoder => "flux2_text_encoder",
            Param::Flux2Vae => "flux2_vae",
            Param::Flux2Sampler => "flux2_sampler",
            Param::LtxCheckpoint => "ltx_checkpoint",
            Param::LtxFastCheckpoint => "ltx_fast_checkpoint",
            Param::LtxTextEncoder => "ltx_text_encoder",
            Param::LtxLora => "ltx_lora",
            Param::LtxLoraStrength => "ltx_lora_strength",
            Param::LtxUpscaler => "ltx_upscaler",
            Param::LtxSampler => "ltx_sampler",
            Param::LtxStage1Sigmas => "ltx_stage1_sigmas",
            Param::LtxStage2Sigmas => "ltx_stage2_sigmas",
            Param::LtxFastSigmas => "ltx_fast_sigmas",
        }
    }

    pub fn from_name(name: &str) -> Option<Param> {
        Param::ALL.into_iter().find(|p| p.name() == name)
    }

    pub(super) fn kind(self) -> Kind {
        match self {
            Param::Width
            | Param::Height
            | Param::OutputWidth
            | Param::OutputHeight
            | Param::Frames
            | Param::Fps
            | Param::Steps
            | Param::Seed
            | Param::Stage2Seed => Kind::Int,
            Param::Cfg | Param::LtxLoraStrength => Kind::Float,
            _ => Kind::Text,
        }
    }

    /// Whether it is a sigma schedule, whose step count a stage can report.
    pub(super) fn is_sigmas(self) -> bool {
        matches!(
            self,
            Param::LtxStage1Sigmas | Param::LtxStage2Sigmas | Param::LtxFastSigmas
        )
    }
}
