//! What an operator chooses for the ComfyUI engine besides the server URLs: the model
//! files each pipeline loads and the sampler settings of each pipeline. Every field has
//! a `KILN_COMFYUI_*` variable ([`crate::config`]) and defaults to the file names of the
//! official releases and the settings of ComfyUI's own templates (see each constant).

/// A model file and the ComfyUI model folder it lives in (`models/<folder>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModelFolder {
    DiffusionModels,
    TextEncoders,
    Vae,
    Checkpoints,
    Loras,
    LatentUpscaleModels,
}

impl ModelFolder {
    /// The folder name, as `GET /models/{folder}` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelFolder::DiffusionModels => "diffusion_models",
            ModelFolder::TextEncoders => "text_encoders",
            ModelFolder::Vae => "vae",
            ModelFolder::Checkpoints => "checkpoints",
            ModelFolder::Loras => "loras",
            ModelFolder::LatentUpscaleModels => "latent_upscale_models",
        }
    }
}

/// FLUX.2 [dev] diffusion model, fp8 mixed (33 GB), `Comfy-Org/flux2-dev`.
pub const FLUX2_UNET_DEFAULT: &str = "flux2_dev_fp8mixed.safetensors";
/// FLUX.2's Mistral 3 Small text encoder, fp8 (16.8 GB; the bf16 one is 33 GB),
/// `Comfy-Org/flux2-dev`.
pub const FLUX2_TEXT_ENCODER_DEFAULT: &str = "mistral_3_small_flux2_fp8.safetensors";
/// FLUX.2's VAE (320 MB), `Comfy-Org/flux2-dev`.
pub const FLUX2_VAE_DEFAULT: &str = "flux2-vae.safetensors";
/// The sampler of ComfyUI's FLUX.2 templates.
pub const FLUX2_SAMPLER_DEFAULT: &str = "euler";

/// LTX-2.3 22B dev, fp8 (27 GB), `Lightricks/LTX-2.3-fp8`: the `ltx-2.3` pipeline, as in
/// ComfyUI's `video_ltx2_3_t2v` / `_i2v` templates.
pub const LTX_CHECKPOINT_DEFAULT: &str = "ltx-2.3-22b-dev-fp8.safetensors";
/// LTX-2.3 22B distilled 1.1 (bf16), `Lightricks/LTX-2.3`: the `ltx-2.3-fast` pipeline.
/// Official file name; an fp8 distilled file can be named instead.
pub const LTX_FAST_CHECKPOINT_DEFAULT: &str = "ltx-2.3-22b-distilled-1.1.safetensors";
/// Gemma 3 12B, fp4 mixed (9.5 GB), `Comfy-Org/ltx-2`: LTX-2.3's text encoder.
pub const LTX_TEXT_ENCODER_DEFAULT: &str = "gemma_3_12B_it_fp4_mixed.safetensors";
/// The distilled LoRA the two-stage template puts on the dev model, `Comfy-Org/ltx-2.3`.
pub const LTX_LORA_DEFAULT: &str =
    "ltx_2.3_22b_distilled_1.1_lora_dynamic_fro09_avg_rank_111_bf16.safetensors";
/// The ×2 spatial latent upscaler (950 MB), `Lightricks/LTX-2.3`.
pub const LTX_UPSCALER_DEFAULT: &str = "ltx-2.3-spatial-upscaler-x2-1.1.safetensors";
/// The distilled LoRA's strength in the two-stage template.
pub const LTX_LORA_STRENGTH_DEFAULT: f64 = 0.5;
/// LTX-2.3's 8-step distilled schedule (Lightricks `constants.py`), used by stage 1 of
/// `ltx-2.3` and by `ltx-2.3-fast`.
pub const LTX_STAGE1_SIGMAS_DEFAULT: &str =
    "1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0";
/// Stage 2 (refining at 2×) of ComfyUI's two-stage template.
pub const LTX_STAGE2_SIGMAS_DEFAULT: &str = "0.85, 0.7250, 0.4219, 0.0";
/// The sampler of every LTX-2.3 stage in ComfyUI's templates.
pub const LTX_SAMPLER_DEFAULT: &str = "euler";
/// The two-stage template's negative prompt, used when a job gives none.
pub const LTX_NEGATIVE_PROMPT_DEFAULT: &str =
    "pc game, console game, video game, cartoon, childish, ugly";

/// The model files of every pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    pub flux2_unet: String,
    pub flux2_text_encoder: String,
    pub flux2_vae: String,
    pub ltx_checkpoint: String,
    pub ltx_fast_checkpoint: String,
    pub ltx_text_encoder: String,
    pub ltx_lora: String,
    pub ltx_upscaler: String,
}

impl Default for ModelFiles {
    fn default() -> Self {
        Self {
            flux2_unet: FLUX2_UNET_DEFAULT.to_owned(),
            flux2_text_encoder: FLUX2_TEXT_ENCODER_DEFAULT.to_owned(),
            flux2_vae: FLUX2_VAE_DEFAULT.to_owned(),
            ltx_checkpoint: LTX_CHECKPOINT_DEFAULT.to_owned(),
            ltx_fast_checkpoint: LTX_FAST_CHECKPOINT_DEFAULT.to_owned(),
            ltx_text_encoder: LTX_TEXT_ENCODER_DEFAULT.to_owned(),
            ltx_lora: LTX_LORA_DEFAULT.to_owned(),
            ltx_upscaler: LTX_UPSCALER_DEFAULT.to_owned(),
        }
    }
}

impl ModelFiles {
    /// The files the Kiln model `model_id` loads, with their folders; none for a model
    /// the engine does not run.
    pub fn for_model(&self, model_id: &str) -> Vec<(ModelFolder, &str)> {
        match model_id {
            kiln_shared::images::DEFAULT_MODEL => vec![
                (ModelFolder::DiffusionModels, self.flux2_unet.as_str()),
                (ModelFolder::TextEncoders, self.flux2_text_encoder.as_str()),
                (ModelFolder::Vae, self.flux2_vae.as_str()),
            ],
            kiln_shared::video::MODEL_FULL => vec![
                (ModelFolder::Checkpoints, self.ltx_checkpoint.as_str()),
                (ModelFolder::TextEncoders, self.ltx_text_encoder.as_str()),
                (ModelFolder::Loras, self.ltx_lora.as_str()),
                (ModelFolder::LatentUpscaleModels, self.ltx_upscaler.as_str()),
            ],
            kiln_shared::video::MODEL_FAST => vec![
                (ModelFolder::Checkpoints, self.ltx_fast_checkpoint.as_str()),
                (ModelFolder::TextEncoders, self.ltx_text_encoder.as_str()),
                (ModelFolder::LatentUpscaleModels, self.ltx_upscaler.as_str()),
            ],
            _ => Vec::new(),
        }
    }

    /// Every configured file with its folder (what a server serving all three models
    /// needs; the health check asks [`ModelFiles::for_model`] per served model).
    pub fn all(&self) -> Vec<(ModelFolder, &str)> {
        vec![
            (ModelFolder::DiffusionModels, self.flux2_unet.as_str()),
            (ModelFolder::TextEncoders, self.flux2_text_encoder.as_str()),
            (ModelFolder::Vae, self.flux2_vae.as_str()),
            (ModelFolder::Checkpoints, self.ltx_checkpoint.as_str()),
            (ModelFolder::Checkpoints, self.ltx_fast_checkpoint.as_str()),
            (ModelFolder::TextEncoders, self.ltx_text_encoder.as_str()),
            (ModelFolder::Loras, self.ltx_lora.as_str()),
            (ModelFolder::LatentUpscaleModels, self.ltx_upscaler.as_str()),
        ]
    }
}

/// The sampler settings of every pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerSettings {
    pub flux2_sampler: String,
    pub ltx_sampler: String,
    /// Comma-separated sigmas, as `ManualSigmas` takes them; the step count is one
    /// less than the number of values.
    pub ltx_stage1_sigmas: String,
    pub ltx_stage2_sigmas: String,
    pub ltx_fast_sigmas: String,
    pub ltx_lora_strength: f64,
    pub ltx_negative_prompt: String,
}

impl Default for SamplerSettings {
    fn default() -> Self {
        Self {
            flux2_sampler: FLUX2_SAMPLER_DEFAULT.to_owned(),
            ltx_sampler: LTX_SAMPLER_DEFAULT.to_owned(),
            ltx_stage1_sigmas: LTX_STAGE1_SIGMAS_DEFAULT.to_owned(),
            ltx_stage2_sigmas: LTX_STAGE2_SIGMAS_DEFAULT.to_owned(),
            ltx_fast_sigmas: LTX_STAGE1_SIGMAS_DEFAULT.to_owned(),
            ltx_lora_strength: LTX_LORA_STRENGTH_DEFAULT,
            ltx_negative_prompt: LTX_NEGATIVE_PROMPT_DEFAULT.to_owned(),
        }
    }
}

/// The steps a comma-separated sigma schedule makes: values − 1. `None` unless every
/// value is a finite number, there are at least two, and they never increase.
pub fn sigma_steps(sigmas: &str) -> Option<u32> {
    let values: Vec<f64> = sigmas
        .split(',')
        .map(|v| v.trim().parse::<f64>().ok().filter(|f| f.is_finite()))
        .collect::<Option<_>>()?;
    if values.len() < 2 || values.windows(2).any(|w| w[1] > w[0]) {
        return None;
    }
    u32::try_from(values.len() - 1).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_schedules_count_their_steps() {
        assert_eq!(sigma_steps(LTX_STAGE1_SIGMAS_DEFAULT), Some(8));
        assert_eq!(sigma_steps(LTX_STAGE2_SIGMAS_DEFAULT), Some(3));
        for bad in ["", "1.0", "1.0, x", "0.5, 0.9", "1.0,,0.0", "NaN, 0.0"] {
            assert_eq!(sigma_steps(bad), None, "{bad:?}");
        }
    }
}
