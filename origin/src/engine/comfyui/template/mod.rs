//! The six ComfyUI workflow templates and how a job fills them.
//!
//! Here: the public API ([`Templates`], [`Template`], [`FillRequest`], [`Filled`]). In
//! `pipeline.rs` the six [`Pipeline`]s and the [`Param`]s a fill supplies; in `decl.rs`
//! the file format and its self-check; in `fill.rs` filling and pruning; in `graph.rs`
//! walking a graph's links.
//!
//! # The files
//!
//! `origin/comfyui/templates/<pipeline>.json`, compiled in with `include_str!`. Each is
//! `{"kiln": {…declarations…}, "prompt": {…an API-format graph…}}`. The `prompt` is a
//! complete graph that ComfyUI 0.26.0 would accept as it stands: every value a job
//! changes holds a placeholder of the right JSON type (`""`, `1024`, `24.0`, the default
//! model file). The `kiln` section says where a job's values go:
//!
//! - `pipeline`: the file stem, checked against the pipeline it is loaded for.
//! - `about`: a sentence for a person; ignored.
//! - `output`: the id of the `SaveImage` / `SaveVideo` node.
//! - `has_audio`: whether the output carries sound (LTX-2.3's audio track).
//! - `stages`: the sampler nodes in run order, `{"name", "node", "steps"}`, where `steps`
//!   names the parameter that decides the step count (`steps` for FLUX.2; for LTX-2.3 the
//!   sigma setting of that stage, whose step count is [`sigma_steps`]). The names must
//!   be `sampling` for images and `stage_1`, `stage_2` for video, because progress
//!   reports them.
//! - `bindings`: parameter name → `[[node id, input name], …]`. Filling sets each listed
//!   input to the parameter's value, as a JSON value ([`Param`] lists the names). It never
//!   edits JSON text, so a prompt with quotes or backslashes stays verbatim. The value
//!   takes the JSON type of the placeholder it replaces: an integer parameter bound to
//!   an integer placeholder is written as an integer, bound to a float placeholder
//!   (`24.0`) as a float. That is how fps goes to `LTXVConditioning.frame_rate` (FLOAT),
//!   `LTXVEmptyLatentAudio.frame_rate` (INT) and `CreateVideo.fps` (FLOAT) from one
//!   binding. A fractional parameter (cfg, LoRA strength) needs a float placeholder.
//! - `references` (FLUX.2 reference edit only): `blocks`, one per possible reference
//!   (four, the API's maximum), each `{"image": [LoadImage id, "image"], "chain":
//!   ReferenceLatent id, "nodes": [its node ids]}`, chained in order; and `chain_into`:
//!   `[node id, input]`, the guider input the chain ends in. With k references, the
//!   nodes of blocks k+1.. are removed and `chain_into` is linked to block k's chain.
//!
//! After filling, every node that is not upstream of `output` is removed.
//!
//! Loading checks each template against itself ([`Template::parse`]): the declarations
//! parse, with no unknown keys; every binding names a known parameter that the
//! pipeline supplies, an existing node and an input that node has, with a placeholder
//! of a fitting type; every parameter the pipeline supplies is bound; the stage and
//! output nodes exist and the stages sit upstream of the output; the stage names are the
//! ones progress reports; every link points at an existing node. Whether the graph fits
//! a server's node schemas is [`super::schema::check`]'s work: [`Templates::samples`]
//! gives one filled graph per pipeline for it at startup.
//!
//! [`sigma_steps`]: super::settings::sigma_steps
//!
//! # The pipelines, and why they look as they do
//!
//! - `flux2_t2i` (`flux2-dev:txt2img`): ComfyUI's `image_flux2_text_to_image` template.
//!   FLUX.2 [dev] is guidance-distilled, so there is no negative prompt and no CFG:
//!   `BasicGuider`, with the job's `cfg` as `FluxGuidance.guidance` (the template's 4 is
//!   the API default). `Flux2Scheduler` gets the steps and the output size (the size
//!   sets its shift).
//! - `flux2_ref` (`flux2-dev:img2img`): ComfyUI's `image_flux2` reference-edit template,
//!   with 1–4 references. Each reference is `LoadImage` → `ImageScaleToTotalPixels`
//!   (lanczos, 1.0 MP, resolution steps 16) → `VAEEncode` → `ReferenceLatent`, the
//!   `ReferenceLatent`s chained from `FluxGuidance` into `BasicGuider`. The noise latent
//!   stays empty. Unlike ComfyUI's template, which sizes the output from the first
//!   reference (`GetImageSize`), the empty latent and the scheduler take the **job's**
//!   width and height: the API takes a size and prices and validates by it, and the
//!   client gets the size it asked for whatever its references measure.
//! - `ltx23_t2v` / `ltx23_i2v` (`ltx-2.3`): ComfyUI's official two-stage LTX-2.3 template.
//!   The dev fp8 checkpoint with the distilled LoRA (`ltx_lora_strength`, 0.5), stage 1
//!   at the requested size W×H with the 8 distilled sigmas, `LTXVLatentUpsampler` ×2,
//!   stage 2 at 2W×2H with the refine sigmas, CFG 1 in both (the LoRA makes the model
//!   distilled, so no real CFG). Stage 2 re-joins the upscaled video latent with the
//!   stage-1 audio latent, as the template does.
//! - `ltx23_fast_t2v` / `ltx23_fast_i2v` (`ltx-2.3-fast`): the distilled checkpoint and
//!   no LoRA, ONE sampling stage at W×H with the distilled sigmas (CFG 1), then the ×2
//!   latent upsampler and decode, with no refine pass. The API promises every video at
//!   2× the requested size, so the upsampler stays; skipping stage 2 is what makes it
//!   fast (a 2W×2H pass costs several times a W×H one), at the price of softer detail
//!   than the refined output.
//! - Video, both models: `num_frames` (already 8n+1) goes to
//!   `EmptyLTXVLatentVideo.length` and `LTXVEmptyLatentAudio.frames_number`, fps to the
//!   three nodes above. The audio is kept: `LTXVAudioVAEDecode` → `CreateVideo.audio` →
//!   `SaveVideo` (mp4, h264). The negative prompt is the job's, or
//!   `ltx_negative_prompt` (the template's) when the job's is empty or blank. The video
//!   decodes with `VAEDecodeTiled(768, 64, 4096, 4)` as in the template.
//! - Image to video: `LoadImage` → `ImageScale` to the OUTPUT size 2W×2H (lanczos,
//!   crop center: the sharpest source for both stages; `LTXVImgToVideoInplace` resizes
//!   it to each latent) → `LTXVPreprocess(18)` → `LTXVImgToVideoInplace`, at 0.7 on the
//!   stage-1 latent and 1.0 on the upscaled latent in two-stage (the template's values),
//!   at 1.0 on the one W×H latent in fast (the first frame is the image).
//! - Seeds: `RandomNoise.noise_seed` is the job's seed; image i of a job with `n` images
//!   uses seed + i (each image is its own prompt, so one image can be retried alone).
//!   Stage 2 of two-stage has its own `RandomNoise`, given seed + 1 (as in the
//!   reference example): the same seed would redraw the same random stream for a
//!   latent of another shape, correlating the two stages' noise for no benefit. Every
//!   addition is checked; a seed that would overflow is refused.
//! - Sampler: `KSamplerSelect` takes `flux2_sampler` / `ltx_sampler` (euler). Steps
//!   reported for LTX-2.3 stages are the sigma counts (8 and 3 by default), not
//!   a nominal figure, so progress reaches 100% exactly.

mod decl;
mod fill;
mod graph;
mod pipeline;

use std::collections::BTreeSet;

use kiln_shared::images::{self, ImageParams};
use kiln_shared::jobs::JobParams;
use kiln_shared::video::{self, VideoParams};
use serde_json::{Map, Value};

use super::settings::{ModelFiles, SamplerSettings};

pub use self::decl::Template;
pub use self::fill::check_settings;
pub use self::pipeline::{Param, Pipeline};

/// An API-format graph: node id → `{"class_type", "inputs", …}`.
pub type Graph = Map<String, Value>;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file is not JSON, or not `{"kiln": {…}, "prompt": {…}}` with known keys.
    #[error("template {template}.json: not a valid template file: {source}")]
    Parse {
        template: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The file parses but contradicts itself; every problem found is listed.
    #[error("template {template}.json is inconsistent: {}", problems.join("; "))]
    Invalid {
        template: &'static str,
        problems: Vec<String>,
    },
    /// The job cannot fill this pipeline (wrong kind of parameters, wrong number of
    /// input images, a seed that overflows, …).
    #[error("cannot fill pipeline {pipeline} for this job: {message}")]
    Job {
        pipeline: &'static str,
        message: String,
    },
    /// A sampler setting is unusable.
    #[error("sampler setting `{setting}` = {value:?} is invalid: {why}")]
    Setting {
        setting: &'static str,
        value: String,
        why: &'static str,
    },
}

/// What a job gives a template.
pub struct FillRequest<'a> {
    pub params: &'a JobParams,
    /// For a job of `n` images, which one (0-based): image i uses seed + i.
    pub image_index: u32,
    /// The job's input images as `LoadImage.image` takes them (`"subfolder/name"`), in
    /// `input_files` order.
    pub inputs: &'a [String],
    pub models: &'a ModelFiles,
    pub samplers: &'a SamplerSettings,
    /// `SaveImage` / `SaveVideo` `filename_prefix`, e.g. `"kiln/job_x-0"`.
    pub filename_prefix: &'a str,
}

/// A filled template.
#[derive(Debug, Clone)]
pub struct Filled {
    /// Ready for `POST /prompt {"prompt": graph}`.
    pub graph: Graph,
    /// The sampler nodes, in run order.
    pub stages: Vec<StagePlan>,
    /// The `SaveImage` / `SaveVideo` node id.
    pub output_node: String,
    /// Whether the MP4 carries LTX-2.3's audio.
    pub has_audio: bool,
}

/// One sampling stage: progress from `node` counts toward it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    /// `sampling`, `stage_1`, `stage_2`.
    pub name: &'static str,
    pub label: String,
    /// The `SamplerCustomAdvanced` node id.
    pub node: String,
    pub steps: u32,
}

/// All six templates, parsed and self-checked once.
#[derive(Debug)]
pub struct Templates {
    templates: Vec<Template>,
}

impl Templates {
    /// The templates compiled into the binary.
    pub fn builtin() -> Result<Templates, TemplateError> {
        let templates = Pipeline::ALL
            .into_iter()
            .map(|p| Template::parse(p, p.builtin_source()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Templates { templates })
    }

    pub fn get(&self, pipeline: Pipeline) -> &Template {
        &self.templates[pipeline.index()]
    }

    /// Fills `pipeline`'s template for one job (one image of it, for images).
    pub fn fill(&self, pipeline: Pipeline, req: &FillRequest<'_>) -> Result<Filled, TemplateError> {
        self.get(pipeline).fill(req)
    }

    /// Every `class_type` any template uses.
    pub fn classes(&self) -> BTreeSet<String> {
        self.templates
            .iter()
            .flat_map(|t| t.graph.values())
            .filter_map(|n| n.get("class_type").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    }

    /// Each pipeline filled with representative parameters (4 references for FLUX.2,
    /// an input image for i2v), for checking against a live server's `/object_info` at
    /// startup. A pipeline the settings cannot fill (bad sigmas or LoRA strength) is
    /// left out: run [`check_settings`] first, or use [`Templates::try_samples`].
    pub fn samples(
        &self,
        models: &ModelFiles,
        samplers: &SamplerSettings,
    ) -> Vec<(Pipeline, Filled)> {
        Pipeline::ALL
            .into_iter()
            .filter_map(|p| self.sample(p, models, samplers).ok().map(|f| (p, f)))
            .collect()
    }

    /// [`Templates::samples`], failing on the first pipeline that cannot be filled.
    pub fn try_samples(
        &self,
        models: &ModelFiles,
        samplers: &SamplerSettings,
    ) -> Result<Vec<(Pipeline, Filled)>, TemplateError> {
        Pipeline::ALL
            .into_iter()
            .map(|p| self.sample(p, models, samplers).map(|f| (p, f)))
            .collect()
    }

    fn sample(
        &self,
        pipeline: Pipeline,
        models: &ModelFiles,
        samplers: &SamplerSettings,
    ) -> Result<Filled, TemplateError> {
        let params = sample_params(pipeline);
        let inputs: Vec<String> = (1..=*pipeline.input_images().end())
            .map(|i| format!("kiln/startup_check_{i}.png"))
            .collect();
        self.fill(
            pipeline,
            &FillRequest {
                params: &params,
                image_index: 0,
                inputs: &inputs,
                models,
                samplers,
                filename_prefix: "kiln/startup_check",
            },
        )
    }
}

/// The API's default parameters for a pipeline, with a fixed prompt and seed.
pub fn sample_params(pipeline: Pipeline) -> JobParams {
    let prompt = "a red fox walking through fresh snow at dawn".to_owned();
    if pipeline.is_video() {
        JobParams::Video(VideoParams {
            prompt,
            negative_prompt: String::new(),
            width: video::SIZE_DEFAULT.0,
            height: video::SIZE_DEFAULT.1,
            num_frames: video::FRAMES_DEFAULT as u32,
            fps: video::FPS,
            seed: 1,
            two_stage: pipeline.two_stage(),
        })
    } else {
        JobParams::Image(ImageParams {
            prompt,
            width: images::SIDE_PX_DEFAULT as u32,
            height: images::SIDE_PX_DEFAULT as u32,
            steps: images::STEPS_DEFAULT as u32,
            cfg: images::CFG_DEFAULT,
            seed: 1,
            n: 1,
        })
    }
}

#[cfg(test)]
mod tests;
