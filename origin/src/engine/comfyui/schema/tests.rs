use serde_json::json;

use super::*;
use crate::engine::comfyui::settings::{ModelFiles, SamplerSettings};
use crate::engine::comfyui::template::{Pipeline, Templates};

pub(crate) fn snapshot() -> Value {
    serde_json::from_str(include_str!(
        "../../../../comfyui/object_info-0.26.0-selected.json"
    ))
    .expect("the snapshot is JSON")
}

/// The snapshot as a server with the default model files installed lists it.
pub(crate) fn installed() -> Value {
    with_model_files(&snapshot(), &ModelFiles::default().all())
}

fn sample(pipeline: Pipeline) -> Graph {
    let templates = Templates::builtin().expect("the built-in templates load");
    templates
        .samples(&ModelFiles::default(), &SamplerSettings::default())
        .into_iter()
        .find(|(p, _)| *p == pipeline)
        .expect("every pipeline has a sample")
        .1
        .graph
}

fn id_of(graph: &Graph, class: &str) -> String {
    graph
        .iter()
        .find(|(_, n)| n["class_type"] == class)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("no {class} node"))
}

fn set(graph: &mut Graph, class: &str, input: &str, value: Value) {
    let id = id_of(graph, class);
    graph[&id]["inputs"][input] = value;
}

type Mutation = fn(&mut Graph);

#[test]
fn the_checker_catches_each_kind_of_problem() {
    use Pipeline::{Flux2Text as F, LtxI2v as L};
    // (what, pipeline, mutation, class of the node at fault, words of the message)
    let cases: &[(&str, Pipeline, Mutation, &str, &str)] = &[
        (
            "unknown class",
            F,
            |g| g["13"]["class_type"] = json!("SaveImageSomewhere"),
            "SaveImageSomewhere",
            "unknown node class `SaveImageSomewhere`",
        ),
        (
            "missing required input",
            F,
            |g| {
                let id = id_of(g, "EmptyFlux2LatentImage");
                g[&id]["inputs"].as_object_mut().unwrap().remove("batch_size");
            },
            "EmptyFlux2LatentImage",
            "required input `batch_size` is missing",
        ),
        (
            "unknown input",
            F,
            |g| set(g, "EmptyFlux2LatentImage", "depth", json!(3)),
            "EmptyFlux2LatentImage",
            "has no input `depth`",
        ),
        (
            "string for INT",
            F,
            |g| set(g, "EmptyFlux2LatentImage", "width", json!("1024")),
            "EmptyFlux2LatentImage",
            "input `width` must be an integer (INT)",
        ),
        (
            "float for INT",
            F,
            |g| set(g, "RandomNoise", "noise_seed", json!(1.5)),
            "RandomNoise",
            "input `noise_seed` must be an integer (INT)",
        ),
        (
            "string for FLOAT",
            F,
            |g| set(g, "FluxGuidance", "guidance", json!("4")),
            "FluxGuidance",
            "input `guidance` must be a number (FLOAT)",
        ),
        (
            "number for STRING",
            F,
            |g| set(g, "CLIPTextEncode", "text", json!(5)),
            "CLIPTextEncode",
            "input `text` must be a string (STRING)",
        ),
        (
            "string for BOOLEAN",
            L,
            |g| set(g, "LTXVImgToVideoInplace", "bypass", json!("no")),
            "LTXVImgToVideoInplace",
            "input `bypass` must be true or false (BOOLEAN)",
        ),
        (
            "INT above max",
            F,
            |g| set(g, "EmptyFlux2LatentImage", "width", json!(20000)),
            "EmptyFlux2LatentImage",
            "input `width` is 20000, above the INT maximum 16384",
        ),
        (
            "INT below min",
            F,
            |g| set(g, "RandomNoise", "noise_seed", json!(-1)),
            "RandomNoise",
            "input `noise_seed` is -1, below the INT minimum 0",
        ),
        (
            "FLOAT above max",
            L,
            |g| set(g, "CreateVideo", "fps", json!(500.0)),
            "CreateVideo",
            "input `fps` is 500.0, above the FLOAT maximum 120.0",
        ),
        (
            "legacy combo value",
            F,
            |g| set(g, "UNETLoader", "weight_dtype", json!("fp4")),
            "UNETLoader",
            "input `weight_dtype` is \"fp4\", which is not one of the values the server lists: \"default\"",
        ),
        (
            "legacy combo value (ImageScale.crop)",
            L,
            |g| set(g, "ImageScale", "crop", json!("sideways")),
            "ImageScale",
            "input `crop` is \"sideways\"",
        ),
        (
            "COMBO-form value",
            F,
            |g| set(g, "KSamplerSelect", "sampler_name", json!("nope")),
            "KSamplerSelect",
            "input `sampler_name` is \"nope\", which is not one of the values the server lists: \"euler\"",
        ),
        (
            "COMBO-form value (SaveVideo.codec)",
            L,
            |g| set(g, "SaveVideo", "codec", json!("av1")),
            "SaveVideo",
            "input `codec` is \"av1\"",
        ),
        (
            "model file not installed (legacy form)",
            F,
            |g| set(g, "UNETLoader", "unet_name", json!("other.safetensors")),
            "UNETLoader",
            "input `unet_name` is \"other.safetensors\"",
        ),
        (
            "model file not installed (COMBO form)",
            L,
            |g| set(g, "LatentUpscaleModelLoader", "model_name", json!("x4.safetensors")),
            "LatentUpscaleModelLoader",
            "input `model_name` is \"x4.safetensors\"",
        ),
        (
            "link to a missing node",
            F,
            |g| set(g, "SamplerCustomAdvanced", "noise", json!(["99", 0])),
            "SamplerCustomAdvanced",
            "input `noise` links to node 99, which the graph does not have",
        ),
        (
            "link slot out of range",
            F,
            |g| {
                let src = id_of(g, "SamplerCustomAdvanced");
                set(g, "VAEDecode", "samples", json!([src, 2]));
            },
            "VAEDecode",
            "(SamplerCustomAdvanced), which has 2 output(s)",
        ),
        (
            "link type mismatch",
            F,
            |g| {
                let src = id_of(g, "KSamplerSelect");
                set(g, "VAEDecode", "samples", json!([src, 0]));
            },
            "VAEDecode",
            "input `samples` takes LATENT but is linked to output 0 of node 9 (KSamplerSelect), which gives SAMPLER",
        ),
        (
            "link to the wrong output of a multi-output node",
            L,
            |g| {
                let src = id_of(g, "CheckpointLoaderSimple");
                set(g, "VAEDecodeTiled", "vae", json!([src, 0]));
            },
            "VAEDecodeTiled",
            "input `vae` takes VAE but is linked to output 0 of node 1 (CheckpointLoaderSimple), which gives MODEL",
        ),
        (
            "a list that is not a link",
            F,
            |g| set(g, "VAEDecode", "samples", json!(["11"])),
            "VAEDecode",
            "input `samples` is a list but not a link",
        ),
        (
            "literal where a link is needed",
            F,
            |g| set(g, "VAEDecode", "vae", json!("flux2-vae.safetensors")),
            "VAEDecode",
            "input `vae` takes a VAE from another node",
        ),
        (
            "LoadImage.image not a string",
            L,
            |g| set(g, "LoadImage", "image", json!(7)),
            "LoadImage",
            "input `image` must be a file name string",
        ),
    ];
    let info = installed();
    for (what, pipeline, mutate, class, words) in cases {
        let mut graph = sample(*pipeline);
        check(&graph, &info).unwrap_or_else(|p| panic!("{what}: the sample fails before: {p:?}"));
        mutate(&mut graph);
        let problems = check(&graph, &info).expect_err(what);
        assert_eq!(problems.len(), 1, "{what}: {problems:#?}");
        assert_eq!(problems[0].class_type, *class, "{what}");
        assert!(
            problems[0].message.contains(words),
            "{what}: {:?} does not contain {words:?}",
            problems[0].message
        );
    }
}

#[test]
fn every_problem_is_reported_and_displayed_with_its_node() {
    let mut graph = sample(Pipeline::Flux2Text);
    set(&mut graph, "EmptyFlux2LatentImage", "width", json!(20000));
    set(&mut graph, "KSamplerSelect", "sampler_name", json!("nope"));
    graph["13"]["inputs"]
        .as_object_mut()
        .unwrap()
        .remove("filename_prefix");
    let problems = check(&graph, &installed()).unwrap_err();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(shown.contains(
        &"node 6 (EmptyFlux2LatentImage): input `width` is 20000, above the INT maximum 16384"
            .to_owned()
    ));
    assert!(shown
        .contains(&"node 13 (SaveImage): required input `filename_prefix` is missing".to_owned()));
}

#[test]
fn load_image_takes_any_file_name_the_server_has_not_listed() {
    let graph = sample(Pipeline::LtxFastI2v);
    let id = id_of(&graph, "LoadImage");
    assert_ne!(graph[&id]["inputs"]["image"], json!("example.png"));
    check(&graph, &installed()).unwrap();
}

#[test]
fn model_lists_are_filled_in_both_combo_forms() {
    let raw = snapshot();
    let files = [
        (ModelFolder::Vae, "v.safetensors"),
        (ModelFolder::Checkpoints, "c.safetensors"),
        (ModelFolder::TextEncoders, "t.safetensors"),
        (ModelFolder::Checkpoints, "c.safetensors"),
    ];
    let info = with_model_files(&raw, &files);
    // Legacy form: the list keeps what the server had and gains the file once.
    assert_eq!(
        info["VAELoader"]["input"]["required"]["vae_name"][0],
        json!(["pixel_space", "v.safetensors"])
    );
    assert_eq!(
        info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0],
        json!(["c.safetensors"])
    );
    // COMBO form.
    let te = &info["LTXAVTextEncoderLoader"]["input"]["required"];
    assert_eq!(te["ckpt_name"][1]["options"], json!(["c.safetensors"]));
    assert_eq!(te["text_encoder"][1]["options"], json!(["t.safetensors"]));
    assert_eq!(
        info["LTXVAudioVAELoader"]["input"]["required"]["ckpt_name"][1]["options"],
        json!(["c.safetensors"])
    );
    // A folder with no files leaves its lists alone.
    assert_eq!(
        info["UNETLoader"]["input"]["required"]["unet_name"][0],
        json!([])
    );
    assert_eq!(
        info["CLIPLoader"]["input"]["required"]["clip_name"][0],
        json!(["t.safetensors"])
    );
    // Every table entry names an input the snapshot has.
    for (class, input, _) in model_inputs() {
        assert!(
            raw.pointer(&format!("/{class}/input/required/{input}"))
                .is_some(),
            "{class}.{input}"
        );
    }
}

#[test]
fn without_the_model_files_only_the_model_inputs_fail() {
    let raw = snapshot();
    let templates = Templates::builtin().unwrap();
    for (pipeline, filled) in templates.samples(&ModelFiles::default(), &SamplerSettings::default())
    {
        let problems = check(&filled.graph, &raw).unwrap_err();
        for p in &problems {
            assert!(
                model_inputs()
                    .iter()
                    .any(|(c, i, _)| p.class_type == *c && p.message.contains(&format!("`{i}`"))),
                "{pipeline:?}: {p}"
            );
            assert!(
                p.message.contains("lists no values")
                    || p.message.contains("not one of the values"),
                "{p}"
            );
        }
    }
}

#[test]
fn link_types_match_as_comfyui_matches_them() {
    for (out, input, ok) in [
        ("IMAGE", "IMAGE", true),
        ("LATENT", "IMAGE", false),
        ("*", "MODEL", true),
        ("MODEL", "*", true),
        ("IMAGE,MASK", "MASK", true),
        ("IMAGE, MASK", "LATENT,MASK", true),
        ("IMAGE,MASK", "LATENT", false),
    ] {
        assert_eq!(types_match(out, input), ok, "{out} -> {input}");
    }
}

#[test]
fn dynamic_combo_sub_inputs_and_v3_types_pass() {
    let graph: Graph = serde_json::from_value(json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ResizeImageMaskNode", "inputs": {
            "input": ["1", 0], "scale_method": "lanczos",
            "resize_type": "scale dimensions", "resize_type.width": 32, "resize_type.height": 32,
            "resize_type.crop": "center"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}
    }))
    .unwrap();
    let info = snapshot();
    let result = check(&graph, &info);
    // Whatever else the snapshot demands of these nodes, the dotted inputs, the V3
    // input and the V3 output are not the problem.
    if let Err(problems) = result {
        for p in problems {
            assert!(!p.message.contains("resize_type."), "{p}");
            assert!(!p.message.contains("COMFY_"), "{p}");
        }
    }
}
