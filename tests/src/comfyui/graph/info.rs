//! `/object_info`: the snapshot with the model lists and input images present filled in,
//! and what the node classes are (model loaders, samplers, output nodes, input specs).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

/// The combo inputs filled from a model folder: `(class, input, folder)`.
const MODEL_COMBOS: &[(&str, &str, &str)] = &[
    ("UNETLoader", "unet_name", "diffusion_models"),
    ("CLIPLoader", "clip_name", "text_encoders"),
    ("VAELoader", "vae_name", "vae"),
    ("CheckpointLoaderSimple", "ckpt_name", "checkpoints"),
    ("LTXVAudioVAELoader", "ckpt_name", "checkpoints"),
    ("LTXAVTextEncoderLoader", "ckpt_name", "checkpoints"),
    ("LTXAVTextEncoderLoader", "text_encoder", "text_encoders"),
    ("LoraLoaderModelOnly", "lora_name", "loras"),
    ("LoraLoader", "lora_name", "loras"),
    (
        "LatentUpscaleModelLoader",
        "model_name",
        "latent_upscale_models",
    ),
];

/// The folders ComfyUI 0.26.0 lists at `GET /models` (transcript 2).
pub(crate) const MODEL_FOLDERS: &[&str] = &[
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "latent_upscale_models",
    "custom_nodes",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
    "background_removal",
    "frame_interpolation",
    "geometry_estimation",
    "optical_flow",
    "detection",
];

pub(crate) const SAMPLERS: &[&str] = &[
    "SamplerCustomAdvanced",
    "SamplerCustom",
    "KSampler",
    "KSamplerAdvanced",
];

/// Whether a class is a model loader (what `Script::Invalid` blames).
pub(super) fn loader_input(class: &str) -> Option<&'static str> {
    MODEL_COMBOS
        .iter()
        .find(|(c, _, _)| *c == class)
        .map(|(_, input, _)| *input)
}

/// The snapshot with the loaders' lists set to the files in `models` and `LoadImage.image`
/// to the uploaded inputs.
pub(crate) fn object_info(
    snapshot: &Map<String, Value>,
    models: &BTreeMap<String, BTreeSet<String>>,
    input_images: &[String],
) -> Map<String, Value> {
    let mut info = snapshot.clone();
    for (class, input, folder) in MODEL_COMBOS {
        let mut files: Vec<String> = models
            .get(*folder)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if *class == "VAELoader" {
            // ComfyUI appends its built-in choices after the files.
            files.push("pixel_space".into());
        }
        set_combo(&mut info, class, input, files);
    }
    set_combo(&mut info, "LoadImage", "image", input_images.to_vec());
    info
}

fn set_combo(info: &mut Map<String, Value>, class: &str, input: &str, options: Vec<String>) {
    let Some(inputs) = info.get_mut(class).and_then(|c| c.get_mut("input")) else {
        return;
    };
    for section in ["required", "optional"] {
        let Some(spec) = inputs.get_mut(section).and_then(|s| s.get_mut(input)) else {
            continue;
        };
        let Some(arr) = spec.as_array_mut() else {
            continue;
        };
        let options: Vec<Value> = options.iter().cloned().map(Value::String).collect();
        match arr.first() {
            Some(Value::Array(_)) => arr[0] = Value::Array(options),
            Some(Value::String(t)) if t == "COMBO" => {
                if arr.len() < 2 {
                    arr.push(json!({}));
                }
                if let Some(o) = arr[1].as_object_mut() {
                    o.insert("options".into(), Value::Array(options));
                }
            }
            _ => {}
        }
    }
}

/// The type of an input spec.
pub(super) enum InputType<'a> {
    Combo(&'a [Value]),
    Named(&'a str),
    Other,
}

pub(super) fn input_type(spec: &Value) -> InputType<'_> {
    match spec.get(0) {
        Some(Value::Array(opts)) => InputType::Combo(opts),
        Some(Value::String(t)) if t == "COMBO" => match spec
            .get(1)
            .and_then(|o| o.get("options"))
            .and_then(Value::as_array)
        {
            Some(opts) => InputType::Combo(opts),
            None => InputType::Other,
        },
        Some(Value::String(t)) => InputType::Named(t),
        _ => InputType::Other,
    }
}

/// A class's inputs, required then optional, in `input_order` where given.
pub(super) fn class_inputs(class_info: &Value) -> Vec<(String, bool, Value)> {
    let mut out = Vec::new();
    for (section, required) in [("required", true), ("optional", false)] {
        let Some(specs) = class_info
            .get("input")
            .and_then(|i| i.get(section))
            .and_then(Value::as_object)
        else {
            continue;
        };
        let order: Vec<String> = class_info
            .get("input_order")
            .and_then(|o| o.get(section))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mut names: Vec<String> = order
            .into_iter()
            .filter(|n| specs.contains_key(n))
            .collect();
        for k in specs.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
        for n in names {
            let spec = specs[&n].clone();
            out.push((n, required, spec));
        }
    }
    out
}

pub(crate) fn is_output_node(info: &Map<String, Value>, class: &str) -> bool {
    info.get(class)
        .and_then(|c| c.get("output_node"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Map<String, Value> {
        serde_json::from_str(crate::comfyui::OBJECT_INFO).unwrap()
    }
    #[test]
    fn object_info_fills_model_lists() {
        let mut models = BTreeMap::new();
        models.insert(
            "vae".to_string(),
            BTreeSet::from(["a.safetensors".to_string()]),
        );
        let info = object_info(&snapshot(), &models, &["x.png".into()]);
        assert_eq!(
            info["VAELoader"]["input"]["required"]["vae_name"][0],
            json!(["a.safetensors", "pixel_space"])
        );
        assert_eq!(
            info["LTXAVTextEncoderLoader"]["input"]["required"]["ckpt_name"][1]["options"],
            json!([])
        );
        assert_eq!(
            info["LoadImage"]["input"]["required"]["image"][0],
            json!(["x.png"])
        );
    }
}
