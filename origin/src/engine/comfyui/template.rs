//! Workflow templates and how a job fills them. (Interface stub, replaced by the real
//! templates.)

use std::collections::BTreeSet;

use kiln_shared::jobs::JobParams;
use kiln_shared::origin::DispatchJob;

use super::settings::{ModelFiles, SamplerSettings};

pub type Graph = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pipeline {
    Flux2Text,
    Flux2Reference,
    LtxT2v,
    LtxI2v,
    LtxFastT2v,
    LtxFastI2v,
}

impl Pipeline {
    pub const ALL: [Pipeline; 6] = [
        Pipeline::Flux2Text,
        Pipeline::Flux2Reference,
        Pipeline::LtxT2v,
        Pipeline::LtxI2v,
        Pipeline::LtxFastT2v,
        Pipeline::LtxFastI2v,
    ];
    pub fn for_job(_job: &DispatchJob) -> Option<Pipeline> {
        None
    }
    pub fn name(self) -> &'static str {
        "stub"
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug)]
pub struct Templates;

impl Templates {
    pub fn builtin() -> Result<Templates, TemplateError> {
        Ok(Templates)
    }
    pub fn fill(&self, _p: Pipeline, _r: &FillRequest<'_>) -> Result<Filled, TemplateError> {
        Err(TemplateError::Invalid("stub".into()))
    }
    pub fn classes(&self) -> BTreeSet<String> {
        BTreeSet::new()
    }
    pub fn samples(&self, _m: &ModelFiles, _s: &SamplerSettings) -> Vec<(Pipeline, Filled)> {
        Vec::new()
    }
}

pub struct FillRequest<'a> {
    pub params: &'a JobParams,
    pub image_index: u32,
    pub inputs: &'a [String],
    pub models: &'a ModelFiles,
    pub samplers: &'a SamplerSettings,
    pub filename_prefix: &'a str,
}

#[derive(Debug, Clone)]
pub struct Filled {
    pub graph: Graph,
    pub stages: Vec<StagePlan>,
    pub output_node: String,
    pub has_audio: bool,
}

#[derive(Debug, Clone)]
pub struct StagePlan {
    pub name: &'static str,
    pub label: String,
    pub node: String,
    pub steps: u32,
}
