//! The `comfyui` engine's settings (`KILN_ENGINE=comfyui`), all from `KILN_COMFYUI_*`
//! variables. Only the URLs are required; every model file and sampler setting defaults
//! to the official file names and ComfyUI's own templates
//! ([`crate::engine::comfyui::settings`]).
//!
//! | variable | default | what |
//! |---|---|---|
//! | `KILN_COMFYUI_URLS` | required | `http://host:port[,http://host:port…]`: one ComfyUI server per GPU, one job slot each |
//! | `KILN_COMFYUI_MODELS` | `flux2-dev,ltx-2.3,ltx-2.3-fast` | the Kiln models this origin serves; only their files are required |
//! | `KILN_COMFYUI_FLUX2_UNET` | `flux2_dev_fp8mixed.safetensors` | `models/diffusion_models` |
//! | `KILN_COMFYUI_FLUX2_TEXT_ENCODER` | `mistral_3_small_flux2_fp8.safetensors` | `models/text_encoders` |
//! | `KILN_COMFYUI_FLUX2_VAE` | `flux2-vae.safetensors` | `models/vae` |
//! | `KILN_COMFYUI_FLUX2_SAMPLER` | `euler` | FLUX.2's `KSamplerSelect` |
//! | `KILN_COMFYUI_LTX_CHECKPOINT` | `ltx-2.3-22b-dev-fp8.safetensors` | `models/checkpoints`, `ltx-2.3` |
//! | `KILN_COMFYUI_LTX_FAST_CHECKPOINT` | `ltx-2.3-22b-distilled-1.1.safetensors` | `models/checkpoints`, `ltx-2.3-fast` |
//! | `KILN_COMFYUI_LTX_TEXT_ENCODER` | `gemma_3_12B_it_fp4_mixed.safetensors` | `models/text_encoders` |
//! | `KILN_COMFYUI_LTX_LORA` | `ltx_2.3_22b_distilled_1.1_lora_dynamic_fro09_avg_rank_111_bf16.safetensors` | `models/loras`, `ltx-2.3` |
//! | `KILN_COMFYUI_LTX_UPSCALER` | `ltx-2.3-spatial-upscaler-x2-1.1.safetensors` | `models/latent_upscale_models` |
//! | `KILN_COMFYUI_LTX_LORA_STRENGTH` | `0.5` | the distilled LoRA on the dev model (0–2) |
//! | `KILN_COMFYUI_LTX_STAGE1_SIGMAS` | the 8-step distilled schedule | `ltx-2.3` stage 1 |
//! | `KILN_COMFYUI_LTX_STAGE2_SIGMAS` | `0.85, 0.7250, 0.4219, 0.0` | `ltx-2.3` stage 2 |
//! | `KILN_COMFYUI_LTX_FAST_SIGMAS` | the 8-step distilled schedule | `ltx-2.3-fast` |
//! | `KILN_COMFYUI_LTX_SAMPLER` | `euler` | every LTX-2.3 stage |
//! | `KILN_COMFYUI_LTX_NEGATIVE_PROMPT` | the template's | used when a job gives none (an empty value keeps the default) |
//! | `KILN_COMFYUI_REQUEST_SECS` | `30` | timeout of each API call (1–600) |
//! | `KILN_COMFYUI_TRANSFER_SECS` | `300` | timeout of an upload or output download (1–3600) |
//! | `KILN_COMFYUI_JOB_SECS` | `1800` | the longest one prompt may run before it is cancelled (10–86400) |
//! | `KILN_COMFYUI_POLL_MS` | `5000` | how often each server's health is read (100–60000) |

use std::time::Duration;

use crate::engine::comfyui::settings::{self, ModelFiles, SamplerSettings};

use super::ConfigError;

/// The models the comfyui engine can serve.
pub const SERVABLE: &[&str] = &[
    kiln_shared::images::DEFAULT_MODEL,
    kiln_shared::video::MODEL_FULL,
    kiln_shared::video::MODEL_FAST,
];

#[derive(Debug, Clone, PartialEq)]
pub struct ComfyConfig {
    /// Base URLs without a trailing slash, one per GPU.
    pub urls: Vec<String>,
    /// Kiln model ids served, in [`SERVABLE`] order.
    pub serve: Vec<String>,
    pub models: ModelFiles,
    pub samplers: SamplerSettings,
    pub request_timeout: Duration,
    pub transfer_timeout: Duration,
    pub job_timeout: Duration,
    pub poll: Duration,
}

impl ComfyConfig {
    pub(super) fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let urls_var = "KILN_COMFYUI_URLS";
        let urls = get(urls_var).ok_or(ConfigError::Missing {
            var: urls_var,
            why: "the comfyui engine needs its ComfyUI servers, e.g. http://127.0.0.1:8188",
        })?;
        let urls: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| comfy_url(urls_var, u))
            .collect::<Result<_, _>>()?;
        if urls.is_empty() || urls.len() > super::SLOTS_MAX as usize {
            return Err(invalid(urls_var, &urls.join(","), "want 1–64 URLs"));
        }
        if (1..urls.len()).any(|i| urls[..i].contains(&urls[i])) {
            return Err(invalid(
                urls_var,
                &urls.join(","),
                "a server is listed twice",
            ));
        }

        let serve = match get("KILN_COMFYUI_MODELS") {
            None => SERVABLE.iter().map(|m| (*m).to_owned()).collect(),
            Some(list) => {
                let wanted: Vec<&str> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .collect();
                if let Some(bad) = wanted.iter().find(|m| !SERVABLE.contains(m)) {
                    return Err(invalid(
                        "KILN_COMFYUI_MODELS",
                        bad,
                        &format!("servable models: {}", SERVABLE.join(", ")),
                    ));
                }
                SERVABLE
                    .iter()
                    .filter(|m| wanted.contains(m))
                    .map(|m| (*m).to_owned())
                    .collect()
            }
        };

        let d = ModelFiles::default();
        let file = |var: &'static str, default: String| -> Result<String, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) if is_file_name(&v) => Ok(v),
                Some(v) => Err(invalid(
                    var,
                    &v,
                    "want a file name as ComfyUI lists it in models/<folder> (subfolders \
                     with '/', no '..')",
                )),
            }
        };
        let models = ModelFiles {
            flux2_unet: file("KILN_COMFYUI_FLUX2_UNET", d.flux2_unet)?,
            flux2_text_encoder: file("KILN_COMFYUI_FLUX2_TEXT_ENCODER", d.flux2_text_encoder)?,
            flux2_vae: file("KILN_COMFYUI_FLUX2_VAE", d.flux2_vae)?,
            ltx_checkpoint: file("KILN_COMFYUI_LTX_CHECKPOINT", d.ltx_checkpoint)?,
            ltx_fast_checkpoint: file("KILN_COMFYUI_LTX_FAST_CHECKPOINT", d.ltx_fast_checkpoint)?,
            ltx_text_encoder: file("KILN_COMFYUI_LTX_TEXT_ENCODER", d.ltx_text_encoder)?,
            ltx_lora: file("KILN_COMFYUI_LTX_LORA", d.ltx_lora)?,
            ltx_upscaler: file("KILN_COMFYUI_LTX_UPSCALER", d.ltx_upscaler)?,
        };

        let s = SamplerSettings::default();
        let sigmas = |var: &'static str, default: String| -> Result<String, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) if settings::sigma_steps(&v).is_some_and(|n| n <= 200) => Ok(v),
                Some(v) => Err(invalid(
                    var,
                    &v,
                    "want 2–201 comma-separated numbers that never increase, e.g. 0.85, 0.725, 0.4219, 0.0",
                )),
            }
        };
        let sampler = |var: &'static str, default: String| -> Result<String, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v)
                    if !v.is_empty()
                        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    Ok(v)
                }
                Some(v) => Err(invalid(
                    var,
                    &v,
                    "want a KSamplerSelect sampler name such as euler",
                )),
            }
        };
        let strength = match get("KILN_COMFYUI_LTX_LORA_STRENGTH") {
            None => s.ltx_lora_strength,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|f| (0.0..=2.0).contains(f))
                .ok_or_else(|| invalid("KILN_COMFYUI_LTX_LORA_STRENGTH", &v, "want 0–2"))?,
        };
        let samplers = SamplerSettings {
            flux2_sampler: sampler("KILN_COMFYUI_FLUX2_SAMPLER", s.flux2_sampler)?,
            ltx_sampler: sampler("KILN_COMFYUI_LTX_SAMPLER", s.ltx_sampler)?,
            ltx_stage1_sigmas: sigmas("KILN_COMFYUI_LTX_STAGE1_SIGMAS", s.ltx_stage1_sigmas)?,
            ltx_stage2_sigmas: sigmas("KILN_COMFYUI_LTX_STAGE2_SIGMAS", s.ltx_stage2_sigmas)?,
            ltx_fast_sigmas: sigmas("KILN_COMFYUI_LTX_FAST_SIGMAS", s.ltx_fast_sigmas)?,
            ltx_lora_strength: strength,
            ltx_negative_prompt: get("KILN_COMFYUI_LTX_NEGATIVE_PROMPT")
                .unwrap_or(s.ltx_negative_prompt),
        };

        Ok(Self {
            urls,
            serve,
            models,
            samplers,
            request_timeout: secs(get, "KILN_COMFYUI_REQUEST_SECS", 30, 1..=600)?,
            transfer_timeout: secs(get, "KILN_COMFYUI_TRANSFER_SECS", 300, 1..=3600)?,
            job_timeout: secs(get, "KILN_COMFYUI_JOB_SECS", 1800, 10..=86_400)?,
            poll: millis(get, "KILN_COMFYUI_POLL_MS", 5000, 100..=60_000)?,
        })
    }
}

fn invalid(var: &'static str, value: &str, why: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.to_owned(),
        why: why.to_owned(),
    }
}

/// `http://host:port` without a trailing slash. ComfyUI has no TLS or auth of its own,
/// so it is reached over loopback or a private network, never `https`.
fn comfy_url(var: &'static str, url: &str) -> Result<String, ConfigError> {
    let rest = url.strip_prefix("http://").map(|r| r.trim_end_matches('/'));
    let ok = rest.is_some_and(|a| {
        !a.is_empty()
            && !a.contains(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '@'))
    });
    if !ok {
        return Err(invalid(
            var,
            url,
            "want http://host:port, e.g. http://127.0.0.1:8188 (ComfyUI on the GPU host)",
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// A model file name as ComfyUI lists it: relative, `/` for subfolders, no `..`.
fn is_file_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 255
        && !v.starts_with('/')
        && !v
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        && !v.chars().any(|c| c.is_control() || c == '\\')
}

fn secs(
    get: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    number(get, var, default, range, "seconds").map(Duration::from_secs)
}

fn millis(
    get: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    number(get, var, default, range, "ms").map(Duration::from_millis)
}

fn number(
    get: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, ConfigError> {
    let Some(v) = get(var) else {
        return Ok(default);
    };
    v.parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            invalid(
                var,
                &v,
                &format!("want {}–{} {unit}", range.start(), range.end()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<ComfyConfig, ConfigError> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ComfyConfig::from_vars(&|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_official_files_and_template_settings() {
        let c = from(&[(
            "KILN_COMFYUI_URLS",
            "http://127.0.0.1:8188/, http://10.0.0.2:8188",
        )])
        .unwrap();
        assert_eq!(c.urls, ["http://127.0.0.1:8188", "http://10.0.0.2:8188"]);
        assert_eq!(c.serve, SERVABLE);
        assert_eq!(c.models, ModelFiles::default());
        assert_eq!(c.samplers, SamplerSettings::default());
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.job_timeout, Duration::from_secs(1800));
        assert_eq!(c.poll, Duration::from_secs(5));
    }

    #[test]
    fn settings_override_the_defaults() {
        let c = from(&[
            ("KILN_COMFYUI_URLS", "http://gpu:8188"),
            ("KILN_COMFYUI_MODELS", "ltx-2.3-fast, flux2-dev"),
            ("KILN_COMFYUI_FLUX2_UNET", "flux2/flux2-dev.safetensors"),
            (
                "KILN_COMFYUI_LTX_STAGE2_SIGMAS",
                "0.909375, 0.725, 0.421875, 0.0",
            ),
            ("KILN_COMFYUI_LTX_LORA_STRENGTH", "0.6"),
            ("KILN_COMFYUI_JOB_SECS", "600"),
        ])
        .unwrap();
        assert_eq!(c.serve, ["flux2-dev", "ltx-2.3-fast"]);
        assert_eq!(c.models.flux2_unet, "flux2/flux2-dev.safetensors");
        assert_eq!(
            c.samplers.ltx_stage2_sigmas,
            "0.909375, 0.725, 0.421875, 0.0"
        );
        assert_eq!(c.samplers.ltx_lora_strength, 0.6);
        assert_eq!(c.job_timeout, Duration::from_secs(600));
    }

    #[test]
    fn bad_settings_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "KILN_COMFYUI_URLS is required"),
            (
                &[("KILN_COMFYUI_URLS", "https://gpu:8188")],
                "KILN_COMFYUI_URLS",
            ),
            (&[("KILN_COMFYUI_URLS", "gpu:8188")], "KILN_COMFYUI_URLS"),
            (
                &[("KILN_COMFYUI_URLS", "http://gpu:8188/api")],
                "KILN_COMFYUI_URLS",
            ),
            (
                &[("KILN_COMFYUI_URLS", "http://a:1,http://a:1")],
                "listed twice",
            ),
            (&[("KILN_COMFYUI_MODELS", "sdxl")], "KILN_COMFYUI_MODELS"),
            (
                &[("KILN_COMFYUI_FLUX2_VAE", "../x.safetensors")],
                "KILN_COMFYUI_FLUX2_VAE",
            ),
            (
                &[("KILN_COMFYUI_LTX_FAST_SIGMAS", "1.0")],
                "KILN_COMFYUI_LTX_FAST_SIGMAS",
            ),
            (
                &[("KILN_COMFYUI_LTX_SAMPLER", "euler a")],
                "KILN_COMFYUI_LTX_SAMPLER",
            ),
            (
                &[("KILN_COMFYUI_LTX_LORA_STRENGTH", "3")],
                "KILN_COMFYUI_LTX_LORA_STRENGTH",
            ),
            (
                &[("KILN_COMFYUI_REQUEST_SECS", "0")],
                "KILN_COMFYUI_REQUEST_SECS",
            ),
            (&[("KILN_COMFYUI_POLL_MS", "5s")], "KILN_COMFYUI_POLL_MS"),
        ];
        for (vars, want) in cases {
            let mut all = vec![("KILN_COMFYUI_URLS", "http://127.0.0.1:8188")];
            all.retain(|(k, _)| !vars.iter().any(|(v, _)| v == k));
            if !vars.is_empty() || !want.contains("required") {
                all.extend_from_slice(vars);
            } else {
                all.clear();
            }
            let err = from(&all).unwrap_err().to_string();
            assert!(err.contains(want), "{vars:?}: {err}");
        }
    }
}
