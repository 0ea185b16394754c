//! The model catalog (`GET /v1/models`): every model with its kind, endpoint,
//! workflows, cost rule, parameter schema (JSON Schema) and defaults. Built from the
//! same constants the request parsers enforce, so the catalog cannot drift from them.

use serde_json::{json, Value};

use crate::images;
use crate::video;

/// Every workflow id (`model:mode`), as `GET /v1/jobs/estimate?workflow_id=` takes it.
pub fn workflows() -> Vec<String> {
    let mut out = Vec::new();
    for m in images::MODELS {
        out.push(format!("{m}:txt2img"));
        out.push(format!("{m}:img2img"));
    }
    for m in video::MODELS {
        out.push(format!("{m}:t2v"));
        out.push(format!("{m}:i2v"));
    }
    out
}

/// A typical run time in seconds for a workflow on a GPU, used until real samples
/// exist. `None` for an unknown workflow.
pub fn typical_secs(workflow: &str) -> Option<f64> {
    let (model, mode) = workflow.split_once(':')?;
    match (model, mode) {
        (images::DEFAULT_MODEL, "txt2img") => Some(25.0),
        (images::DEFAULT_MODEL, "img2img") => Some(28.0),
        (video::MODEL_FULL, "t2v") => Some(150.0),
        (video::MODEL_FULL, "i2v") => Some(165.0),
        (video::MODEL_FAST, "t2v") => Some(60.0),
        (video::MODEL_FAST, "i2v") => Some(66.0),
        _ => None,
    }
}

fn image_parameters() -> Value {
    json!({
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string", "minLength": 1, "maxLength": images::PROMPT_CHARS_MAX},
            "model": {"type": "string", "enum": images::MODELS, "default": images::DEFAULT_MODEL},
            "width": {"type": "integer", "minimum": images::SIDE_PX_MIN, "maximum": images::SIDE_PX_MAX,
                      "multipleOf": images::SIDE_PX_STEP, "default": images::SIDE_PX_DEFAULT},
            "height": {"type": "integer", "minimum": images::SIDE_PX_MIN, "maximum": images::SIDE_PX_MAX,
                       "multipleOf": images::SIDE_PX_STEP, "default": images::SIDE_PX_DEFAULT},
            "size": {"type": "string", "pattern": images::SIZE_PATTERN, "description": "\"WxH\", instead of width/height (not with them)"},
            "steps": {"type": "integer", "minimum": images::STEPS_MIN, "maximum": images::STEPS_MAX,
                      "default": images::STEPS_DEFAULT},
            "cfg": {"type": "number", "minimum": images::CFG_MIN, "maximum": images::CFG_MAX,
                    "default": images::CFG_DEFAULT},
            "seed": {"type": "integer", "minimum": -1, "maximum": images::SEED_MAX, "default": -1},
            "input_files": {"type": "array", "items": {"type": "string"}, "maxItems": images::INPUT_FILES_MAX},
            "n": {"type": "integer", "minimum": 1, "maximum": images::N_MAX, "default": 1},
            "response_format": {"type": "string", "enum": ["url", "b64_json"], "default": "url"},
        },
    })
}

fn video_parameters() -> Value {
    let sizes: Vec<Value> = video::SIZES
        .iter()
        .map(|(w, h)| json!({"width": w, "height": h}))
        .collect();
    json!({
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string", "minLength": 1, "maxLength": images::PROMPT_CHARS_MAX},
            "negative_prompt": {"type": "string", "maxLength": video::NEGATIVE_PROMPT_CHARS_MAX, "default": ""},
            "model": {"type": "string", "enum": video::MODELS, "default": video::DEFAULT_MODEL},
            "width": {"type": "integer", "enum": video::SIZES.iter().map(|s| s.0).collect::<Vec<_>>(),
                      "default": video::SIZE_DEFAULT.0},
            "height": {"type": "integer", "enum": video::SIZES.iter().map(|s| s.1).collect::<Vec<_>>(),
                       "default": video::SIZE_DEFAULT.1},
            "num_frames": {"type": "integer", "minimum": video::FRAMES_MIN, "maximum": video::FRAMES_MAX,
                           "description": "of the form 8n+1", "default": video::FRAMES_DEFAULT},
            "fps": {"type": "integer", "enum": [video::FPS], "default": video::FPS},
            "seed": {"type": "integer", "minimum": -1, "maximum": images::SEED_MAX, "default": -1},
            "input_files": {"type": "array", "items": {"type": "string"}, "maxItems": video::INPUT_FILES_MAX},
        },
        "x-sizes": sizes,
        "x-output-scale": video::UPSCALE,
    })
}

/// The catalog; `available(model)` says whether an origin serving it is up now.
pub fn models(available: impl Fn(&str) -> bool) -> Value {
    let image_price = images::PRICE_PER_IMAGE;
    let mut data = Vec::new();
    for m in images::MODELS {
        data.push(json!({
            "id": m,
            "object": "model",
            "kind": "image",
            "name": "FLUX.2 [dev]",
            "endpoint": "/v1/images/generations",
            "workflows": [format!("{m}:txt2img"), format!("{m}:img2img")],
            "cost": {
                "unit": "image",
                "usd_per_unit": image_price.to_usd_json(),
                "rule": format!("${} per image", image_price.to_usd_string()),
            },
            "parameters": image_parameters(),
            "available": available(m),
        }));
    }
    for m in video::MODELS {
        let (name, stages) = if *m == video::MODEL_FULL {
            ("LTX-2.3 (two-stage)", 2)
        } else {
            ("LTX-2.3 fast (distilled)", 1)
        };
        data.push(json!({
            "id": m,
            "object": "model",
            "kind": "video",
            "name": name,
            "endpoint": "/v1/video/generations",
            "workflows": [format!("{m}:t2v"), format!("{m}:i2v")],
            "stages": stages,
            "cost": {
                "unit": "second",
                "usd_per_unit": crate::money::MicroUsd::from_micros(video::MICROS_PER_SECOND as i64).to_usd_json(),
                "rule": format!(
                    "$0.04 per second of video: ceil(num_frames × {} / {}) micro-dollars",
                    video::MICROS_PER_SECOND, video::FPS
                ),
            },
            "parameters": video_parameters(),
            "available": available(m),
        }));
    }
    json!({"object": "list", "data": data})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_has_workflows_with_typical_times() {
        let c = models(|m| m == "flux2-dev");
        let data = c["data"].as_array().unwrap();
        assert_eq!(data.len(), 3);
        assert_eq!(data[0]["available"], true);
        assert_eq!(data[1]["available"], false);
        assert_eq!(data[0]["cost"]["usd_per_unit"], json!(0.02));
        assert_eq!(data[1]["cost"]["usd_per_unit"], json!(0.04));
        for w in workflows() {
            assert!(typical_secs(&w).is_some(), "{w}");
        }
        assert_eq!(typical_secs("sdxl:txt2img"), None);
        assert_eq!(typical_secs("flux2-dev:t2v"), None);
    }
}
