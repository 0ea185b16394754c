//! Filling a template for one job: the values the job supplies, set at the bound
//! inputs; the unused reference blocks and every node not upstream of the output
//! removed; and the checks of the sampler settings a fill uses.

use std::collections::BTreeMap;

use kiln_shared::images::ImageParams;
use kiln_shared::jobs::JobParams;
use kiln_shared::video::{self, VideoParams};
use serde_json::Value;

use super::decl::Template;
use super::graph::{dangling_links, link, node_input_mut, upstream};
use super::pipeline::{Param, Pipeline};
use super::{FillRequest, Filled, StagePlan, TemplateError};
use crate::engine::comfyui::settings::{sigma_steps, SamplerSettings};
use crate::engine::STAGE_SAMPLING_LABEL;

impl Template {
    /// Fills the template for one job (see [`Templates::fill`](super::Templates::fill)).
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
