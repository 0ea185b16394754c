//! The six ComfyUI workflow templates and how a job fills them.
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

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::RangeInclusive;

use kiln_shared::images::{self, ImageParams};
use kiln_shared::jobs::JobParams;
use kiln_shared::origin::DispatchJob;
use kiln_shared::video::{self, VideoParams};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::settings::{sigma_steps, ModelFiles, SamplerSettings};
use crate::engine::{STAGE_SAMPLING, STAGE_SAMPLING_LABEL};

/// An API-format graph: node id → `{"class_type", "inputs", …}`.
pub type Graph = Map<String, Value>;

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
            Pipeline::Flux2Text => include_str!("../../../comfyui/templates/flux2_t2i.json"),
            Pipeline::Flux2Reference => include_str!("../../../comfyui/templates/flux2_ref.json"),
            Pipeline::LtxT2v => include_str!("../../../comfyui/templates/ltx23_t2v.json"),
            Pipeline::LtxI2v => include_str!("../../../comfyui/templates/ltx23_i2v.json"),
            Pipeline::LtxFastT2v => {
                include_str!("../../../comfyui/templates/ltx23_fast_t2v.json")
            }
            Pipeline::LtxFastI2v => {
                include_str!("../../../comfyui/templates/ltx23_fast_i2v.json")
            }
        }
    }

    fn index(self) -> usize {
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
enum Kind {
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

    fn kind(self) -> Kind {
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
    fn is_sigmas(self) -> bool {
        matches!(
            self,
            Param::LtxStage1Sigmas | Param::LtxStage2Sigmas | Param::LtxFastSigmas
        )
    }
}

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

// ---- the file format ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    kiln: Declarations,
    prompt: Graph,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Declarations {
    pipeline: String,
    #[serde(default)]
    #[allow(dead_code)]
    about: String,
    output: String,
    has_audio: bool,
    stages: Vec<StageDecl>,
    bindings: BTreeMap<String, Vec<(String, String)>>,
    #[serde(default)]
    references: Option<ReferencesDecl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StageDecl {
    name: String,
    node: String,
    steps: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ReferencesDecl {
    blocks: Vec<ReferenceBlock>,
    chain_into: (String, String),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ReferenceBlock {
    image: (String, String),
    chain: String,
    nodes: Vec<String>,
}

/// Where a binding writes, and whether the placeholder there is a float.
#[derive(Debug, Clone)]
struct Target {
    node: String,
    input: String,
    float: bool,
}

#[derive(Debug, Clone)]
struct Stage {
    name: &'static str,
    node: String,
    steps: Param,
}

/// One parsed, self-checked template.
#[derive(Debug)]
pub struct Template {
    pipeline: Pipeline,
    graph: Graph,
    output: String,
    has_audio: bool,
    stages: Vec<Stage>,
    bindings: Vec<(Param, Vec<Target>)>,
    references: Option<ReferencesDecl>,
}

/// A link `["id", slot]`: the source id, if `value` is one.
fn link_source(value: &Value) -> Option<&str> {
    match value.as_array()?.as_slice() {
        [Value::String(id), slot] if slot.is_u64() => Some(id),
        _ => None,
    }
}

fn link(node: &str) -> Value {
    Value::Array(vec![Value::from(node), Value::from(0u64)])
}

fn node_input<'g>(graph: &'g Graph, node: &str, input: &str) -> Option<&'g Value> {
    graph.get(node)?.get("inputs")?.get(input)
}

fn node_input_mut<'g>(graph: &'g mut Graph, node: &str, input: &str) -> Option<&'g mut Value> {
    graph.get_mut(node)?.get_mut("inputs")?.get_mut(input)
}

/// The ids of every node `from` depends on, itself included.
fn upstream(graph: &Graph, from: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(id) = todo.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(inputs) = graph
            .get(&id)
            .and_then(|n| n.get("inputs"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        for value in inputs.values() {
            if let Some(src) = link_source(value) {
                if graph.contains_key(src) && !seen.contains(src) {
                    todo.push(src.to_owned());
                }
            }
        }
    }
    seen
}

/// Every link whose source node is missing, as "node 11 input `x` → 99".
fn dangling_links(graph: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (id, node) in graph {
        let Some(inputs) = node.get("inputs").and_then(Value::as_object) else {
            continue;
        };
        for (name, value) in inputs {
            if let Some(src) = link_source(value) {
                if !graph.contains_key(src) {
                    out.push(format!(
                        "node {id} input `{name}` links to node {src}, which the graph does not have"
                    ));
                }
            }
        }
    }
    out
}

impl Template {
    /// Parses a template file for `pipeline` and checks it against itself (see the
    /// module documentation); the error lists every inconsistency found.
    pub fn parse(pipeline: Pipeline, text: &str) -> Result<Template, TemplateError> {
        let template = pipeline.name();
        let file: TemplateFile = serde_json::from_str(text)
            .map_err(|source| TemplateError::Parse { template, source })?;
        let TemplateFile {
            kiln,
            prompt: graph,
        } = file;
        let mut problems = Vec::new();

        if kiln.pipeline != template {
            problems.push(format!(
                "`kiln.pipeline` is {:?}, but the file is loaded as {template:?}",
                kiln.pipeline
            ));
        }

        // The graph's shape and links.
        for (id, node) in &graph {
            let class = node.get("class_type").and_then(Value::as_str);
            if class.is_none_or(str::is_empty) {
                problems.push(format!("node {id} has no `class_type` string"));
            }
            match node.get("inputs") {
                Some(Value::Object(inputs)) => {
                    for (name, value) in inputs {
                        if value.is_array() && link_source(value).is_none() {
                            problems.push(format!(
                                "node {id} input `{name}` is a list but not a link [\"node id\", output slot]"
                            ));
                        }
                    }
                }
                _ => problems.push(format!("node {id} has no `inputs` object")),
            }
        }
        problems.extend(dangling_links(&graph));

        // Output and stages.
        if !graph.contains_key(&kiln.output) {
            problems.push(format!(
                "`kiln.output` names node {}, which the graph does not have",
                kiln.output
            ));
        }
        let reachable = upstream(&graph, &kiln.output);
        let expected_names = pipeline.stage_names();
        let names: Vec<&str> = kiln.stages.iter().map(|s| s.name.as_str()).collect();
        if names != expected_names {
            problems.push(format!(
                "`kiln.stages` are named {names:?}; pipeline {template} reports {expected_names:?}"
            ));
        }
        let mut stages = Vec::new();
        for (decl, &name) in kiln.stages.iter().zip(expected_names) {
            if !graph.contains_key(&decl.node) {
                problems.push(format!(
                    "stage {} names node {}, which the graph does not have",
                    decl.name, decl.node
                ));
            } else if !reachable.contains(&decl.node) {
                problems.push(format!(
                    "stage {} node {} is not upstream of the output node {}",
                    decl.name, decl.node, kiln.output
                ));
            }
            match Param::from_name(&decl.steps) {
                Some(p)
                    if (p == Param::Steps || p.is_sigmas()) && pipeline.params().contains(&p) =>
                {
                    stages.push(Stage {
                        name,
                        node: decl.node.clone(),
                        steps: p,
                    })
                }
                _ => problems.push(format!(
                    "stage {} takes its steps from {:?}; it must be `steps` or a sigma setting pipeline {template} supplies",
                    decl.name, decl.steps
                )),
            }
        }

        // Bindings.
        let mut bindings = Vec::new();
        for (name, targets) in &kiln.bindings {
            let Some(param) = Param::from_name(name) else {
                problems.push(format!(
                    "binding `{name}` is not a known parameter; known: {}",
                    Param::ALL.map(Param::name).join(", ")
                ));
                continue;
            };
            if !pipeline.params().contains(&param) {
                problems.push(format!(
                    "binding `{name}`: pipeline {template} does not supply that parameter"
                ));
                continue;
            }
            if targets.is_empty() {
                problems.push(format!("binding `{name}` lists no node inputs"));
            }
            let mut resolved = Vec::new();
            for (node, input) in targets {
                let Some(n) = graph.get(node) else {
                    problems.push(format!(
                        "binding `{name}` names node {node}, which the graph does not have"
                    ));
                    continue;
                };
                let class = n.get("class_type").and_then(Value::as_str).unwrap_or("?");
                let Some(placeholder) = node_input(&graph, node, input) else {
                    problems.push(format!(
                        "binding `{name}` names input `{input}` of node {node} ({class}), which that node does not have"
                    ));
                    continue;
                };
                let float = match (param.kind(), placeholder) {
                    (Kind::Text, Value::String(_)) => false,
                    (Kind::Int, Value::Number(n)) => !(n.is_u64() || n.is_i64()),
                    (Kind::Float, Value::Number(n)) if n.is_f64() => true,
                    (Kind::Float, Value::Number(_)) => {
                        problems.push(format!(
                            "binding `{name}`: node {node} input `{input}` holds an integer placeholder, but `{name}` can be fractional; write it as a float (e.g. 4.0)"
                        ));
                        continue;
                    }
                    (kind, other) => {
                        problems.push(format!(
                            "binding `{name}`: node {node} input `{input}` holds {other}, not a {} placeholder",
                            match kind {
                                Kind::Text => "string",
                                Kind::Int | Kind::Float => "number",
                            }
                        ));
                        continue;
                    }
                };
                resolved.push(Target {
                    node: node.clone(),
                    input: input.clone(),
                    float,
                });
            }
            bindings.push((param, resolved));
        }
        let missing: Vec<&str> = pipeline
            .params()
            .iter()
            .filter(|p| !kiln.bindings.contains_key(p.name()))
            .map(|p| p.name())
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "pipeline {template} supplies parameters no binding places: {}",
                missing.join(", ")
            ));
        }

        // References.
        match (&kiln.references, pipeline == Pipeline::Flux2Reference) {
            (None, true) => problems.push("`kiln.references` is missing".to_owned()),
            (Some(_), false) => problems.push(format!(
                "`kiln.references` is only for {}",
                Pipeline::Flux2Reference.name()
            )),
            (None, false) => {}
            (Some(refs), true) => check_references(&graph, refs, &mut problems),
        }

        if !problems.is_empty() {
            return Err(TemplateError::Invalid { template, problems });
        }
        Ok(Template {
            pipeline,
            graph,
            output: kiln.output,
            has_audio: kiln.has_audio,
            stages,
            bindings,
            references: kiln.references,
        })
    }

    pub fn pipeline(&self) -> Pipeline {
        self.pipeline
    }

    /// The unfilled graph, placeholders and all.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Fills the template for one job (see [`Templates::fill`]).
    pub fn fill(&self, req: &FillRequest<'_>) -> Result<Filled, TemplateError> {
        let pipeline = self.pipeline;
        let values = Values::compute(pipeline, req)?;
        let mut graph = self.graph.clone();
        let broken = |message: String| TemplateError::Invalid {
            template: pipeline.name(),
            problems: vec![message],
        };

        for (param, targets) in &self.bindings {
            let value = values
                .get(*param)
                .ok_or_else(|| broken(format!("nothing supplies `{}`", param.name())))?;
            for t in targets {
                let json = value.to_json(t.float).ok_or_else(|| TemplateError::Job {
                    pipeline: pipeline.name(),
                    message: format!("`{}` is not a finite number", param.name()),
                })?;
                let slot = node_input_mut(&mut graph, &t.node, &t.input).ok_or_else(|| {
                    broken(format!("node {} input `{}` vanished", t.node, t.input))
                })?;
                *slot = json;
            }
        }

        if let Some(refs) = &self.references {
            let k = req.inputs.len();
            if k == 0 || k > refs.blocks.len() {
                return Err(TemplateError::Job {
                    pipeline: pipeline.name(),
                    message: format!("takes 1 to {} reference images, got {k}", refs.blocks.len()),
                });
            }
            for (block, name) in refs.blocks.iter().zip(req.inputs) {
                let slot = node_input_mut(&mut graph, &block.image.0, &block.image.1)
                    .ok_or_else(|| broken(format!("reference node {} vanished", block.image.0)))?;
                *slot = Value::from(name.as_str());
            }
            let (into_node, into_input) = &refs.chain_into;
            let slot = node_input_mut(&mut graph, into_node, into_input)
                .ok_or_else(|| broken(format!("chain end node {into_node} vanished")))?;
            *slot = link(&refs.blocks[k - 1].chain);
            for block in &refs.blocks[k..] {
                for id in &block.nodes {
                    graph.remove(id);
                }
            }
        }

        let keep = upstream(&graph, &self.output);
        graph.retain(|id, _| keep.contains(id));
        let dangling = dangling_links(&graph);
        if !dangling.is_empty() {
            return Err(TemplateError::Invalid {
                template: pipeline.name(),
                problems: dangling,
            });
        }

        let mut stages = Vec::new();
        for (i, stage) in self.stages.iter().enumerate() {
            let steps = match values.get(stage.steps) {
                Some(Supplied::Int(n)) => u32::try_from(*n).ok(),
                Some(Supplied::Text(s)) => sigma_steps(s),
                _ => None,
            }
            .ok_or_else(|| broken(format!("stage {} has no step count", stage.name)))?;
            let label = match req.params {
                JobParams::Video(v) => v.stage_label(i),
                JobParams::Image(_) => STAGE_SAMPLING_LABEL.to_owned(),
            };
            stages.push(StagePlan {
                name: stage.name,
                label,
                node: stage.node.clone(),
                steps,
            });
        }

        Ok(Filled {
            graph,
            stages,
            output_node: self.output.clone(),
            has_audio: self.has_audio,
        })
    }
}

fn check_references(graph: &Graph, refs: &ReferencesDecl, problems: &mut Vec<String>) {
    if refs.blocks.len() != images::INPUT_FILES_MAX {
        problems.push(format!(
            "`kiln.references.blocks` has {} blocks; the API takes up to {} references",
            refs.blocks.len(),
            images::INPUT_FILES_MAX
        ));
    }
    for (i, block) in refs.blocks.iter().enumerate() {
        let n = i + 1;
        let (node, input) = &block.image;
        match node_input(graph, node, input) {
            Some(Value::String(_)) => {}
            Some(_) => problems.push(format!(
                "reference block {n}: node {node} input `{input}` is not a file name string"
            )),
            None => problems.push(format!(
                "reference block {n}: node {node} has no input `{input}`"
            )),
        }
        if !block.nodes.contains(node) || !block.nodes.contains(&block.chain) {
            problems.push(format!(
                "reference block {n}: `nodes` must list its image node {node} and chain node {}",
                block.chain
            ));
        }
        for id in &block.nodes {
            if !graph.contains_key(id) {
                problems.push(format!(
                    "reference block {n} names node {id}, which the graph does not have"
                ));
            }
        }
    }
    let (node, input) = &refs.chain_into;
    match node_input(graph, node, input) {
        None => problems.push(format!(
            "`kiln.references.chain_into` names node {node} input `{input}`, which the graph does not have"
        )),
        Some(value) => {
            let last = refs.blocks.last().map(|b| b.chain.as_str());
            if link_source(value) != last {
                problems.push(format!(
                    "`kiln.references.chain_into` node {node} input `{input}` must link to the last block's chain node"
                ));
            }
        }
    }
}

// ---- the values of one fill ----

#[derive(Debug, Clone)]
enum Supplied {
    Text(String),
    Int(u64),
    Float(f64),
}

impl Supplied {
    /// As JSON, a float where the placeholder is one; `None` for a non-finite float.
    fn to_json(&self, float: bool) -> Option<Value> {
        match self {
            Supplied::Text(s) => Some(Value::from(s.as_str())),
            Supplied::Int(n) if float => Some(Value::from(*n as f64)),
            Supplied::Int(n) => Some(Value::from(*n)),
            Supplied::Float(f) if f.is_finite() => Some(Value::from(*f)),
            Supplied::Float(_) => None,
        }
    }
}

struct Values(BTreeMap<Param, Supplied>);

impl Values {
    fn get(&self, p: Param) -> Option<&Supplied> {
        self.0.get(&p)
    }

    fn compute(pipeline: Pipeline, req: &FillRequest<'_>) -> Result<Values, TemplateError> {
        let job_err = |message: String| TemplateError::Job {
            pipeline: pipeline.name(),
            message,
        };
        let range = pipeline.input_images();
        if !range.contains(&req.inputs.len()) {
            return Err(job_err(format!(
                "takes {} input image(s), got {}",
                if range.start() == range.end() {
                    range.start().to_string()
                } else {
                    format!("{} to {}", range.start(), range.end())
                },
                req.inputs.len()
            )));
        }
        for &p in pipeline.params() {
            check_setting(req.samplers, p)?;
        }
        let m = req.models;
        let s = req.samplers;
        let text = |v: &str| Supplied::Text(v.to_owned());
        let mut v = BTreeMap::new();
        v.insert(Param::FilenamePrefix, text(req.filename_prefix));
        match (req.params, pipeline.is_video()) {
            (JobParams::Image(p), false) => {
                image_values(p, req.image_index, &mut v).map_err(job_err)?
            }
            (JobParams::Video(p), true) => {
                if p.two_stage != pipeline.two_stage() {
                    return Err(job_err(format!(
                        "the job's parameters say two_stage = {}, the pipeline is {}",
                        p.two_stage,
                        if pipeline.two_stage() {
                            "two-stage"
                        } else {
                            "one-stage"
                        }
                    )));
                }
                if req.image_index != 0 {
                    return Err(job_err(format!(
                        "a video job makes one video; image_index must be 0, not {}",
                        req.image_index
                    )));
                }
                video_values(p, s, &mut v).map_err(job_err)?;
            }
            (JobParams::Image(_), true) => {
                return Err(job_err(
                    "this is a video pipeline; the job has image parameters".into(),
                ))
            }
            (JobParams::Video(_), false) => {
                return Err(job_err(
                    "this is an image pipeline; the job has video parameters".into(),
                ))
            }
        }
        if let Some(first) = req.inputs.first() {
            v.insert(Param::InputImage, text(first));
        }
        for (p, file) in [
            (Param::Flux2Unet, &m.flux2_unet),
            (Param::Flux2TextEncoder, &m.flux2_text_encoder),
            (Param::Flux2Vae, &m.flux2_vae),
            (Param::LtxCheckpoint, &m.ltx_checkpoint),
            (Param::LtxFastCheckpoint, &m.ltx_fast_checkpoint),
            (Param::LtxTextEncoder, &m.ltx_text_encoder),
            (Param::LtxLora, &m.ltx_lora),
            (Param::LtxUpscaler, &m.ltx_upscaler),
            (Param::Flux2Sampler, &s.flux2_sampler),
            (Param::LtxSampler, &s.ltx_sampler),
            (Param::LtxStage1Sigmas, &s.ltx_stage1_sigmas),
            (Param::LtxStage2Sigmas, &s.ltx_stage2_sigmas),
            (Param::LtxFastSigmas, &s.ltx_fast_sigmas),
        ] {
            v.insert(p, text(file));
        }
        v.insert(Param::LtxLoraStrength, Supplied::Float(s.ltx_lora_strength));
        Ok(Values(v))
    }
}

fn image_values(
    p: &ImageParams,
    index: u32,
    v: &mut BTreeMap<Param, Supplied>,
) -> Result<(), String> {
    let n = p.n.max(1);
    if index >= n {
        return Err(format!(
            "image_index {index} is out of range: the job makes {n} image(s)"
        ));
    }
    let seed = p.seed.checked_add(u64::from(index)).ok_or_else(|| {
        format!(
            "image {index} would use seed {} + {index}, which overflows",
            p.seed
        )
    })?;
    v.insert(Param::Prompt, Supplied::Text(p.prompt.clone()));
    v.insert(Param::Width, Supplied::Int(u64::from(p.width)));
    v.insert(Param::Height, Supplied::Int(u64::from(p.height)));
    v.insert(Param::Steps, Supplied::Int(u64::from(p.steps)));
    v.insert(Param::Cfg, Supplied::Float(p.cfg));
    v.insert(Param::Seed, Supplied::Int(seed));
    Ok(())
}

fn video_values(
    p: &VideoParams,
    s: &SamplerSettings,
    v: &mut BTreeMap<Param, Supplied>,
) -> Result<(), String> {
    let stage2_seed = p
        .seed
        .checked_add(1)
        .ok_or_else(|| format!("stage 2 would use seed {} + 1, which overflows", p.seed))?;
    let (ow, oh) = match (
        p.width.checked_mul(video::UPSCALE),
        p.height.checked_mul(video::UPSCALE),
    ) {
        (Some(w), Some(h)) => (w, h),
        _ => return Err(format!("size {}×{} is too large", p.width, p.height)),
    };
    let negative = if p.negative_prompt.trim().is_empty() {
        s.ltx_negative_prompt.clone()
    } else {
        p.negative_prompt.clone()
    };
    v.insert(Param::Prompt, Supplied::Text(p.prompt.clone()));
    v.insert(Param::NegativePrompt, Supplied::Text(negative));
    v.insert(Param::Width, Supplied::Int(u64::from(p.width)));
    v.insert(Param::Height, Supplied::Int(u64::from(p.height)));
    v.insert(Param::OutputWidth, Supplied::Int(u64::from(ow)));
    v.insert(Param::OutputHeight, Supplied::Int(u64::from(oh)));
    v.insert(Param::Frames, Supplied::Int(u64::from(p.num_frames)));
    v.insert(Param::Fps, Supplied::Int(u64::from(p.fps)));
    v.insert(Param::Seed, Supplied::Int(p.seed));
    v.insert(Param::Stage2Seed, Supplied::Int(stage2_seed));
    Ok(())
}

/// Checks the sampler settings fills use: each sigma schedule must be at least two
/// finite, non-increasing numbers, and the LoRA strength finite. A fill checks only
/// the ones its pipeline uses.
pub fn check_settings(s: &SamplerSettings) -> Result<(), TemplateError> {
    Param::ALL.into_iter().try_for_each(|p| check_setting(s, p))
}

fn check_setting(s: &SamplerSettings, param: Param) -> Result<(), TemplateError> {
    let sigmas = match param {
        Param::LtxStage1Sigmas => &s.ltx_stage1_sigmas,
        Param::LtxStage2Sigmas => &s.ltx_stage2_sigmas,
        Param::LtxFastSigmas => &s.ltx_fast_sigmas,
        Param::LtxLoraStrength if !s.ltx_lora_strength.is_finite() => {
            return Err(TemplateError::Setting {
                setting: param.name(),
                value: s.ltx_lora_strength.to_string(),
                why: "want a finite number (the template uses 0.5)",
            })
        }
        _ => return Ok(()),
    };
    if sigma_steps(sigmas).is_none() {
        return Err(TemplateError::Setting {
            setting: param.name(),
            value: sigmas.clone(),
            why: "want at least two comma-separated finite numbers that never increase, e.g. \"0.85, 0.725, 0.4219, 0.0\"",
        });
    }
    Ok(())
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
