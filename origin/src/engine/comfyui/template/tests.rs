use std::collections::BTreeMap;

use kiln_shared::ids::JobId;
use kiln_shared::origin::DispatchJob;
use serde_json::json;

use super::*;
use crate::engine::comfyui::schema::{check, with_model_files};
use crate::engine::comfyui::settings::sigma_steps;
use crate::engine::{STAGE_SAMPLING, STAGE_SAMPLING_LABEL};

fn templates() -> Templates {
    Templates::builtin().expect("the built-in templates load")
}

fn installed() -> Value {
    let snapshot: Value = serde_json::from_str(include_str!(
        "../../../../comfyui/object_info-0.26.0-selected.json"
    ))
    .unwrap();
    with_model_files(&snapshot, &ModelFiles::default().all())
}

fn image_params(prompt: &str) -> ImageParams {
    ImageParams {
        prompt: prompt.to_owned(),
        width: 768,
        height: 1280,
        steps: 33,
        cfg: 6.5,
        seed: 123_456,
        n: 1,
    }
}

fn video_params(prompt: &str, two_stage: bool) -> VideoParams {
    VideoParams {
        prompt: prompt.to_owned(),
        negative_prompt: String::new(),
        width: 544,
        height: 960,
        num_frames: 97,
        fps: 24,
        seed: 777,
        two_stage,
    }
}

fn params_for(pipeline: Pipeline, prompt: &str) -> JobParams {
    if pipeline.is_video() {
        JobParams::Video(video_params(prompt, pipeline.two_stage()))
    } else {
        JobParams::Image(image_params(prompt))
    }
}

fn inputs_for(pipeline: Pipeline) -> Vec<String> {
    (1..=*pipeline.input_images().start())
        .map(|i| format!("jobs/in_{i}.png"))
        .collect()
}

/// Model files and sampler settings unlike every default, so a placeholder left in a
/// graph shows.
fn custom_models() -> ModelFiles {
    ModelFiles {
        flux2_unet: "m-unet.safetensors".into(),
        flux2_text_encoder: "m-flux-te.safetensors".into(),
        flux2_vae: "m-vae.safetensors".into(),
        ltx_checkpoint: "m-ltx-dev.safetensors".into(),
        ltx_fast_checkpoint: "m-ltx-fast.safetensors".into(),
        ltx_text_encoder: "m-gemma.safetensors".into(),
        ltx_lora: "m-lora.safetensors".into(),
        ltx_upscaler: "m-up.safetensors".into(),
    }
}

fn custom_samplers() -> SamplerSettings {
    SamplerSettings {
        flux2_sampler: "dpmpp_2m".into(),
        ltx_sampler: "euler_ancestral".into(),
        ltx_stage1_sigmas: "1.0, 0.9, 0.8, 0.5, 0.0".into(),
        ltx_stage2_sigmas: "0.8, 0.6, 0.4, 0.2, 0.1, 0.0".into(),
        ltx_fast_sigmas: "1.0, 0.7, 0.3, 0.0".into(),
        ltx_lora_strength: 0.625,
        ltx_negative_prompt: "default negative".into(),
    }
}

fn fill(pipeline: Pipeline, params: &JobParams, inputs: &[String]) -> Filled {
    fill_with(pipeline, params, inputs, 0).unwrap()
}

fn fill_with(
    pipeline: Pipeline,
    params: &JobParams,
    inputs: &[String],
    image_index: u32,
) -> Result<Filled, TemplateError> {
    templates().fill(
        pipeline,
        &FillRequest {
            params,
            image_index,
            inputs,
            models: &custom_models(),
            samplers: &custom_samplers(),
            filename_prefix: "kiln/job_x-0",
        },
    )
}

/// The inputs of every node of a class, in id order.
fn all<'g>(graph: &'g Graph, class: &str) -> Vec<&'g Map<String, Value>> {
    graph
        .values()
        .filter(|n| n["class_type"] == class)
        .map(|n| n["inputs"].as_object().unwrap())
        .collect()
}

fn one<'g>(graph: &'g Graph, class: &str) -> &'g Map<String, Value> {
    let nodes = all(graph, class);
    assert_eq!(nodes.len(), 1, "one {class}");
    nodes[0]
}

fn ids(graph: &Graph, class: &str) -> Vec<String> {
    graph
        .iter()
        .filter(|(_, n)| n["class_type"] == class)
        .map(|(id, _)| id.clone())
        .collect()
}

/// The pixel size of the video latent at a node, following the video path back to
/// its `EmptyLTXVLatentVideo` (×2 through each upsampler).
fn video_size(graph: &Graph, id: &str, depth: u32) -> (u64, u64) {
    assert!(depth < 32, "no EmptyLTXVLatentVideo upstream of {id}");
    let node = &graph[id];
    let inputs = &node["inputs"];
    let up = |input: &str| {
        let src = inputs[input][0].as_str().unwrap();
        video_size(graph, src, depth + 1)
    };
    match node["class_type"].as_str().unwrap() {
        "EmptyLTXVLatentVideo" => (
            inputs["width"].as_u64().unwrap(),
            inputs["height"].as_u64().unwrap(),
        ),
        "LTXVLatentUpsampler" => {
            let (w, h) = up("samples");
            (w * 2, h * 2)
        }
        "SamplerCustomAdvanced" => up("latent_image"),
        "LTXVConcatAVLatent" => up("video_latent"),
        "LTXVSeparateAVLatent" => up("av_latent"),
        "LTXVImgToVideoInplace" => up("latent"),
        "VAEDecodeTiled" => up("samples"),
        other => panic!("unexpected {other} on the video latent path"),
    }
}

fn float(v: &Value) -> f64 {
    assert!(v.is_f64(), "{v} is not written as a float");
    v.as_f64().unwrap()
}

fn int(v: &Value) -> u64 {
    assert!(v.is_u64(), "{v} is not written as an integer");
    v.as_u64().unwrap()
}

#[test]
fn the_builtin_templates_load_and_name_their_pipelines() {
    let t = templates();
    let mut names = BTreeSet::new();
    for p in Pipeline::ALL {
        assert_eq!(t.get(p).pipeline(), p);
        assert!(names.insert(p.name()), "{p:?}");
    }
    let classes = t.classes();
    let info = installed();
    for class in &classes {
        assert!(info.get(class).is_some(), "{class} is not in the snapshot");
    }
    for class in [
        "SaveImage",
        "SaveVideo",
        "LTXVLatentUpsampler",
        "ReferenceLatent",
    ] {
        assert!(classes.contains(class), "{class}");
    }
}

#[test]
fn every_sample_passes_the_checker() {
    let info = installed();
    let t = templates();
    let samples = t.samples(&ModelFiles::default(), &SamplerSettings::default());
    assert_eq!(
        samples.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        Pipeline::ALL.to_vec()
    );
    for (pipeline, filled) in &samples {
        if let Err(problems) = check(&filled.graph, &info) {
            panic!(
                "{pipeline:?}:\n{}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        assert!(
            filled.graph.contains_key(&filled.output_node),
            "{pipeline:?}"
        );
        // The FLUX.2 reference sample uses all four references, i2v its image.
        let loads = all(&filled.graph, "LoadImage").len();
        assert_eq!(loads, *pipeline.input_images().end(), "{pipeline:?}");
    }
}

#[test]
fn every_pipeline_filled_with_custom_settings_passes_the_checker() {
    let models = custom_models();
    let snapshot: Value = serde_json::from_str(include_str!(
        "../../../../comfyui/object_info-0.26.0-selected.json"
    ))
    .unwrap();
    let info = with_model_files(&snapshot, &models.all());
    for pipeline in Pipeline::ALL {
        let params = params_for(pipeline, "a lighthouse");
        let filled = fill(pipeline, &params, &inputs_for(pipeline));
        check(&filled.graph, &info).unwrap_or_else(|p| panic!("{pipeline:?}: {p:#?}"));
    }
}

#[test]
fn flux2_reference_takes_one_to_four_references() {
    let info = installed();
    let params = JobParams::Image(image_params("put the cat on the sofa"));
    for k in 1..=4usize {
        let inputs: Vec<String> = (0..k).map(|i| format!("jobs/ref {i}.png")).collect();
        let filled = templates()
            .fill(
                Pipeline::Flux2Reference,
                &FillRequest {
                    params: &params,
                    image_index: 0,
                    inputs: &inputs,
                    models: &ModelFiles::default(),
                    samplers: &SamplerSettings::default(),
                    filename_prefix: "kiln/job_x-0",
                },
            )
            .unwrap();
        let g = &filled.graph;
        check(g, &info).unwrap_or_else(|p| panic!("{k} references: {p:#?}"));
        let loaded: Vec<&str> = all(g, "LoadImage")
            .iter()
            .map(|n| n["image"].as_str().unwrap())
            .collect();
        assert_eq!(loaded, inputs);
        for class in ["ImageScaleToTotalPixels", "VAEEncode", "ReferenceLatent"] {
            assert_eq!(all(g, class).len(), k, "{class} with {k} references");
        }
        // The chain: FluxGuidance → ReferenceLatent ×k → BasicGuider, in order.
        let guider = one(g, "BasicGuider");
        let mut at = guider["conditioning"][0].as_str().unwrap().to_owned();
        let mut seen = 0;
        while g[&at]["class_type"] == "ReferenceLatent" {
            seen += 1;
            assert!(seen <= 4);
            at = g[&at]["inputs"]["conditioning"][0]
                .as_str()
                .unwrap()
                .to_owned();
        }
        assert_eq!(seen, k);
        assert_eq!(g[&at]["class_type"], "FluxGuidance");
        // The job's size, not the references'.
        assert!(ids(g, "GetImageSize").is_empty());
        let latent = one(g, "EmptyFlux2LatentImage");
        assert_eq!((int(&latent["width"]), int(&latent["height"])), (768, 1280));
        let sched = one(g, "Flux2Scheduler");
        assert_eq!((int(&sched["width"]), int(&sched["height"])), (768, 1280));
    }
    for bad in [0usize, 5] {
        let inputs: Vec<String> = (0..bad).map(|i| format!("r{i}.png")).collect();
        let err = fill_with(Pipeline::Flux2Reference, &params, &inputs, 0).unwrap_err();
        assert!(
            err.to_string().contains("takes 1 to 4 input image(s)"),
            "{err}"
        );
    }
}

#[test]
fn image_i_of_n_uses_seed_plus_i() {
    let mut p = image_params("a fox");
    p.n = 4;
    let params = JobParams::Image(p.clone());
    for i in 0..4u32 {
        for pipeline in [Pipeline::Flux2Text, Pipeline::Flux2Reference] {
            let filled = fill_with(pipeline, &params, &inputs_for(pipeline), i).unwrap();
            let noise = one(&filled.graph, "RandomNoise");
            assert_eq!(int(&noise["noise_seed"]), p.seed + u64::from(i));
        }
    }
    let err = fill_with(Pipeline::Flux2Text, &params, &[], 4).unwrap_err();
    assert!(
        err.to_string().contains("image_index 4 is out of range"),
        "{err}"
    );
    let top = JobParams::Image(ImageParams {
        seed: u64::MAX,
        ..p
    });
    let at_max = fill_with(Pipeline::Flux2Text, &top, &[], 0).unwrap();
    assert_eq!(
        int(&one(&at_max.graph, "RandomNoise")["noise_seed"]),
        u64::MAX
    );
    let err = fill_with(Pipeline::Flux2Text, &top, &[], 1).unwrap_err();
    assert!(err.to_string().contains("overflows"), "{err}");
}

#[test]
fn flux2_graphs_carry_every_parameter() {
    for pipeline in [Pipeline::Flux2Text, Pipeline::Flux2Reference] {
        let params = params_for(pipeline, "a red fox");
        let filled = fill(pipeline, &params, &inputs_for(pipeline));
        let g = &filled.graph;
        assert_eq!(one(g, "CLIPTextEncode")["text"], "a red fox");
        let latent = one(g, "EmptyFlux2LatentImage");
        assert_eq!((int(&latent["width"]), int(&latent["height"])), (768, 1280));
        let sched = one(g, "Flux2Scheduler");
        assert_eq!(int(&sched["steps"]), 33);
        assert_eq!((int(&sched["width"]), int(&sched["height"])), (768, 1280));
        assert_eq!(float(&one(g, "FluxGuidance")["guidance"]), 6.5);
        assert_eq!(int(&one(g, "RandomNoise")["noise_seed"]), 123_456);
        assert_eq!(one(g, "KSamplerSelect")["sampler_name"], "dpmpp_2m");
        assert_eq!(one(g, "UNETLoader")["unet_name"], "m-unet.safetensors");
        assert_eq!(one(g, "CLIPLoader")["clip_name"], "m-flux-te.safetensors");
        assert_eq!(one(g, "VAELoader")["vae_name"], "m-vae.safetensors");
        assert_eq!(one(g, "SaveImage")["filename_prefix"], "kiln/job_x-0");
        assert_eq!(filled.output_node, ids(g, "SaveImage")[0]);
        assert!(!filled.has_audio);
        assert!(
            ids(g, "CFGGuider").is_empty(),
            "no negative prompt for FLUX.2"
        );
        assert_eq!(
            filled.stages,
            vec![StagePlan {
                name: STAGE_SAMPLING,
                label: STAGE_SAMPLING_LABEL.to_owned(),
                node: ids(g, "SamplerCustomAdvanced")[0].clone(),
                steps: 33,
            }]
        );
    }
    // A cfg of 4 is still written as the FLOAT 4.0.
    let mut p = image_params("x");
    p.cfg = 4.0;
    let filled = fill(Pipeline::Flux2Text, &JobParams::Image(p), &[]);
    let guidance = serde_json::to_string(&one(&filled.graph, "FluxGuidance")["guidance"]).unwrap();
    assert_eq!(guidance, "4.0");
}

#[test]
fn ltx_graphs_carry_every_parameter() {
    let s = custom_samplers();
    for pipeline in Pipeline::ALL.into_iter().filter(|p| p.is_video()) {
        let params = params_for(pipeline, "waves at night");
        let JobParams::Video(v) = &params else {
            unreachable!()
        };
        let inputs = inputs_for(pipeline);
        let filled = fill(pipeline, &params, &inputs);
        let g = &filled.graph;
        let what = format!("{pipeline:?}");

        let texts: BTreeSet<&str> = all(g, "CLIPTextEncode")
            .iter()
            .map(|n| n["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            texts,
            BTreeSet::from(["waves at night", "default negative"]),
            "{what}"
        );
        let cond = one(g, "LTXVConditioning");
        assert_eq!(float(&cond["frame_rate"]), 24.0, "{what}");
        let audio = one(g, "LTXVEmptyLatentAudio");
        assert_eq!(int(&audio["frame_rate"]), 24, "{what}");
        assert_eq!(int(&audio["frames_number"]), 97, "{what}");
        let empty = one(g, "EmptyLTXVLatentVideo");
        assert_eq!(int(&empty["length"]), 97, "{what}");
        assert_eq!(
            (int(&empty["width"]), int(&empty["height"])),
            (544, 960),
            "{what}"
        );
        assert_eq!(float(&one(g, "CreateVideo")["fps"]), 24.0, "{what}");
        let save = one(g, "SaveVideo");
        assert_eq!(save["filename_prefix"], "kiln/job_x-0");
        assert_eq!(
            (&save["format"], &save["codec"]),
            (&json!("mp4"), &json!("h264"))
        );
        assert_eq!(filled.output_node, ids(g, "SaveVideo")[0]);
        assert!(filled.has_audio, "{what}");
        // The audio reaches the file.
        let created = one(g, "CreateVideo");
        let audio_src = created["audio"][0].as_str().unwrap();
        assert_eq!(g[audio_src]["class_type"], "LTXVAudioVAEDecode");

        let checkpoint = if pipeline.two_stage() {
            "m-ltx-dev.safetensors"
        } else {
            "m-ltx-fast.safetensors"
        };
        assert_eq!(one(g, "CheckpointLoaderSimple")["ckpt_name"], checkpoint);
        assert_eq!(one(g, "LTXVAudioVAELoader")["ckpt_name"], checkpoint);
        let te = one(g, "LTXAVTextEncoderLoader");
        assert_eq!(te["ckpt_name"], checkpoint);
        assert_eq!(te["text_encoder"], "m-gemma.safetensors");
        assert_eq!(
            one(g, "LatentUpscaleModelLoader")["model_name"],
            "m-up.safetensors"
        );
        for sampler in all(g, "KSamplerSelect") {
            assert_eq!(sampler["sampler_name"], "euler_ancestral", "{what}");
        }
        for guider in all(g, "CFGGuider") {
            assert_eq!(float(&guider["cfg"]), 1.0, "{what}");
        }

        let samplers = ids(g, "SamplerCustomAdvanced");
        let seeds: BTreeSet<u64> = all(g, "RandomNoise")
            .iter()
            .map(|n| int(&n["noise_seed"]))
            .collect();
        let sigmas: Vec<&str> = all(g, "ManualSigmas")
            .iter()
            .map(|n| n["sigmas"].as_str().unwrap())
            .collect();
        if pipeline.two_stage() {
            assert_eq!(samplers.len(), 2, "{what}");
            assert_eq!(seeds, BTreeSet::from([777, 778]), "{what}");
            let lora = one(g, "LoraLoaderModelOnly");
            assert_eq!(lora["lora_name"], "m-lora.safetensors");
            assert_eq!(float(&lora["strength_model"]), 0.625);
            let stages: Vec<_> = filled.stages.iter().map(|s| s.node.clone()).collect();
            assert_eq!(
                g[&stages[0]]["inputs"]["sigmas"][0],
                json!(stage_sigma_node(g, &s.ltx_stage1_sigmas))
            );
            assert_eq!(
                g[&stages[1]]["inputs"]["sigmas"][0],
                json!(stage_sigma_node(g, &s.ltx_stage2_sigmas))
            );
            assert_eq!(sigmas.len(), 2);
            // Stage 1 at W×H, stage 2 at 2W×2H.
            assert_eq!(video_size(g, &stages[0], 0), (544, 960), "{what}");
            assert_eq!(video_size(g, &stages[1], 0), (1088, 1920), "{what}");
        } else {
            assert_eq!(samplers.len(), 1, "{what}: exactly one sampling pass");
            assert_eq!(seeds, BTreeSet::from([777]), "{what}");
            assert!(ids(g, "LoraLoaderModelOnly").is_empty(), "{what}: no LoRA");
            assert_eq!(sigmas, vec![s.ltx_fast_sigmas.as_str()], "{what}");
            assert_eq!(video_size(g, &samplers[0], 0), (544, 960), "{what}");
        }
        // Whatever the pipeline, the decoded video is 2W×2H.
        let decode = ids(g, "VAEDecodeTiled");
        let (ow, oh) = v.output_size();
        assert_eq!(
            video_size(g, &decode[0], 0),
            (ow.into(), oh.into()),
            "{what}"
        );
        assert_eq!(all(g, "LTXVLatentUpsampler").len(), 1, "{what}");

        let loads = all(g, "LoadImage");
        if inputs.is_empty() {
            assert!(loads.is_empty(), "{what}: t2v loads no image");
            assert!(ids(g, "ImageScale").is_empty(), "{what}");
        } else {
            assert_eq!(loads[0]["image"], json!(inputs[0]), "{what}");
            let scale = one(g, "ImageScale");
            assert_eq!(
                (int(&scale["width"]), int(&scale["height"])),
                (1088, 1920),
                "{what}"
            );
            let strengths: Vec<f64> = all(g, "LTXVImgToVideoInplace")
                .iter()
                .map(|n| float(&n["strength"]))
                .collect();
            let want: &[f64] = if pipeline.two_stage() {
                &[0.7, 1.0]
            } else {
                &[1.0]
            };
            assert_eq!(strengths, want, "{what}");
        }

        // Stage plans: the sigma counts of the settings, and the API's labels.
        let sigma_settings: &[&str] = if pipeline.two_stage() {
            &[&s.ltx_stage1_sigmas, &s.ltx_stage2_sigmas]
        } else {
            &[&s.ltx_fast_sigmas]
        };
        assert_eq!(filled.stages.len(), sigma_settings.len(), "{what}");
        for (i, (stage, sigmas)) in filled.stages.iter().zip(sigma_settings).enumerate() {
            assert_eq!(stage.name, ["stage_1", "stage_2"][i]);
            assert_eq!(stage.label, v.stage_label(i));
            assert_eq!(Some(stage.steps), sigma_steps(sigmas), "{what}");
            assert_eq!(g[&stage.node]["class_type"], "SamplerCustomAdvanced");
        }
    }
}

/// The id of the ManualSigmas node holding `sigmas`.
fn stage_sigma_node(g: &Graph, sigmas: &str) -> String {
    g.iter()
        .find(|(_, n)| n["class_type"] == "ManualSigmas" && n["inputs"]["sigmas"] == sigmas)
        .map(|(id, _)| id.clone())
        .unwrap()
}

#[test]
fn default_settings_report_the_templates_step_counts() {
    let t = templates();
    let by: BTreeMap<&str, Vec<u32>> = t
        .samples(&ModelFiles::default(), &SamplerSettings::default())
        .into_iter()
        .map(|(p, f)| (p.name(), f.stages.iter().map(|s| s.steps).collect()))
        .collect();
    assert_eq!(by["flux2_t2i"], [20]);
    assert_eq!(by["ltx23_t2v"], [8, 3]);
    assert_eq!(by["ltx23_fast_i2v"], [8]);
}

#[test]
fn the_negative_prompt_is_the_jobs_unless_blank() {
    for (given, used) in [
        ("", "default negative"),
        ("   ", "default negative"),
        ("blurry", "blurry"),
    ] {
        let mut v = video_params("p", true);
        v.negative_prompt = given.to_owned();
        let filled = fill(Pipeline::LtxT2v, &JobParams::Video(v), &[]);
        let cond = one(&filled.graph, "LTXVConditioning");
        let neg = cond["negative"][0].as_str().unwrap();
        assert_eq!(filled.graph[neg]["inputs"]["text"], used, "{given:?}");
    }
}

#[test]
fn prompts_are_kept_verbatim() {
    let nasty = "He said \"hi\" \\ back\\slash \"} {\"x\": 1}\n\t{{prompt}} ${prompt} ünïcødé";
    for pipeline in Pipeline::ALL {
        let params = params_for(pipeline, nasty);
        let filled = fill(pipeline, &params, &inputs_for(pipeline));
        let g = &filled.graph;
        let node = ids(g, "CLIPTextEncode")
            .into_iter()
            .find(|id| g[id]["inputs"]["text"] == nasty);
        assert!(node.is_some(), "{pipeline:?}: the prompt is not verbatim");
        // And the graph survives the trip to the server as JSON.
        let back: Graph = serde_json::from_str(&serde_json::to_string(g).unwrap()).unwrap();
        assert_eq!(&back, g);
    }
}

#[test]
fn jobs_that_do_not_fit_the_pipeline_are_refused() {
    let image = JobParams::Image(image_params("x"));
    let full = JobParams::Video(video_params("x", true));
    let fast = JobParams::Video(video_params("x", false));
    let one_input = vec!["in.png".to_owned()];
    let cases: &[(Pipeline, &JobParams, &[String], u32, &str)] = &[
        (
            Pipeline::LtxT2v,
            &image,
            &[],
            0,
            "the job has image parameters",
        ),
        (
            Pipeline::Flux2Text,
            &full,
            &[],
            0,
            "the job has video parameters",
        ),
        (Pipeline::LtxT2v, &fast, &[], 0, "two_stage = false"),
        (Pipeline::LtxFastT2v, &full, &[], 0, "two_stage = true"),
        (
            Pipeline::LtxI2v,
            &full,
            &[],
            0,
            "takes 1 input image(s), got 0",
        ),
        (
            Pipeline::LtxT2v,
            &full,
            &one_input,
            0,
            "takes 0 input image(s), got 1",
        ),
        (
            Pipeline::Flux2Text,
            &image,
            &one_input,
            0,
            "takes 0 input image(s), got 1",
        ),
        (Pipeline::LtxT2v, &full, &[], 1, "image_index must be 0"),
    ];
    for (pipeline, params, inputs, index, words) in cases {
        let err = fill_with(*pipeline, params, inputs, *index).unwrap_err();
        assert!(
            matches!(err, TemplateError::Job { .. }) && err.to_string().contains(words),
            "{pipeline:?}: {err}"
        );
    }
}

#[test]
fn bad_sampler_settings_are_refused() {
    let t = templates();
    let mut s = SamplerSettings {
        ltx_stage2_sigmas: "0.5, 0.9".into(),
        ..SamplerSettings::default()
    };
    let err = check_settings(&s).unwrap_err();
    assert!(err.to_string().contains("`ltx_stage2_sigmas`"), "{err}");
    assert!(t.try_samples(&ModelFiles::default(), &s).is_err());
    // samples() leaves out only the pipelines that use the bad schedule.
    let left: Vec<Pipeline> = t
        .samples(&ModelFiles::default(), &s)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        left,
        [
            Pipeline::Flux2Text,
            Pipeline::Flux2Reference,
            Pipeline::LtxFastT2v,
            Pipeline::LtxFastI2v
        ]
    );
    let err = fill_with(
        Pipeline::LtxI2v,
        &JobParams::Video(video_params("x", true)),
        &["i.png".into()],
        0,
    );
    assert!(err.is_ok(), "the custom settings of fill_with are valid");
    let err = t
        .fill(
            Pipeline::LtxT2v,
            &FillRequest {
                params: &JobParams::Video(video_params("x", true)),
                image_index: 0,
                inputs: &[],
                models: &ModelFiles::default(),
                samplers: &s,
                filename_prefix: "p",
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            TemplateError::Setting {
                setting: "ltx_stage2_sigmas",
                ..
            }
        ),
        "{err}"
    );
    s = SamplerSettings {
        ltx_lora_strength: f64::NAN,
        ..SamplerSettings::default()
    };
    assert!(check_settings(&s)
        .unwrap_err()
        .to_string()
        .contains("ltx_lora_strength"));
}

#[test]
fn pipelines_are_chosen_by_model_and_mode() {
    let job = |model: &str, workflow: &str| DispatchJob {
        job_id: JobId::generate(1_775_219_730_000, [3; 10]),
        attempt: 1,
        model_id: model.into(),
        workflow: workflow.into(),
        params: JobParams::Image(image_params("x")),
        input_files: vec![],
        test_mode: false,
    };
    for (model, workflow, want) in [
        ("flux2-dev", "flux2-dev:txt2img", Some(Pipeline::Flux2Text)),
        (
            "flux2-dev",
            "flux2-dev:img2img",
            Some(Pipeline::Flux2Reference),
        ),
        ("ltx-2.3", "ltx-2.3:t2v", Some(Pipeline::LtxT2v)),
        ("ltx-2.3", "ltx-2.3:i2v", Some(Pipeline::LtxI2v)),
        (
            "ltx-2.3-fast",
            "ltx-2.3-fast:t2v",
            Some(Pipeline::LtxFastT2v),
        ),
        (
            "ltx-2.3-fast",
            "ltx-2.3-fast:i2v",
            Some(Pipeline::LtxFastI2v),
        ),
        ("ltx-2.3", "ltx-2.3-fast:t2v", None),
        ("flux2-dev", "flux2-dev:t2v", None),
        ("flux2-dev", "flux2-dev", None),
        ("sdxl", "sdxl:txt2img", None),
    ] {
        assert_eq!(Pipeline::for_job(&job(model, workflow)), want, "{workflow}");
    }
    // The workflow strings the API makes.
    let req = kiln_shared::video::VideoRequest::parse(br#"{"prompt":"x","model":"ltx-2.3-fast"}"#)
        .unwrap();
    assert_eq!(
        Pipeline::for_job(&job(&req.model, &req.workflow())),
        Some(Pipeline::LtxFastT2v)
    );
    let req = kiln_shared::images::ImageRequest::parse(br#"{"prompt":"x"}"#).unwrap();
    assert_eq!(
        Pipeline::for_job(&job(&req.model, &req.workflow())),
        Some(Pipeline::Flux2Text)
    );
}

/// `flux2_t2i.json` (or `flux2_ref.json`) changed by `edit`, then parsed.
fn parse_edited(
    pipeline: Pipeline,
    edit: impl FnOnce(&mut Value),
) -> Result<Template, TemplateError> {
    let mut doc: Value = serde_json::from_str(pipeline.builtin_source()).unwrap();
    edit(&mut doc);
    Template::parse(pipeline, &serde_json::to_string(&doc).unwrap())
}

#[test]
fn inconsistent_templates_are_refused() {
    type Edit = fn(&mut Value);
    let cases: &[(&str, Pipeline, Edit, &str)] = &[
        (
            "binding to a missing node",
            Pipeline::Flux2Text,
            |d| d["kiln"]["bindings"]["seed"] = json!([["99", "noise_seed"]]),
            "binding `seed` names node 99, which the graph does not have",
        ),
        (
            "binding to a missing input",
            Pipeline::Flux2Text,
            |d| d["kiln"]["bindings"]["seed"] = json!([["8", "seed"]]),
            "binding `seed` names input `seed` of node 8 (RandomNoise), which that node does not have",
        ),
        (
            "unknown parameter",
            Pipeline::Flux2Text,
            |d| d["kiln"]["bindings"]["guidance"] = json!([["5", "guidance"]]),
            "binding `guidance` is not a known parameter",
        ),
        (
            "parameter the pipeline lacks",
            Pipeline::Flux2Text,
            |d| d["kiln"]["bindings"]["fps"] = json!([["5", "guidance"]]),
            "pipeline flux2_t2i does not supply that parameter",
        ),
        (
            "unbound parameter",
            Pipeline::Flux2Text,
            |d| {
                d["kiln"]["bindings"].as_object_mut().unwrap().remove("seed");
            },
            "supplies parameters no binding places: seed",
        ),
        (
            "binding over a link",
            Pipeline::Flux2Text,
            |d| d["kiln"]["bindings"]["prompt"] = json!([["4", "clip"]]),
            "holds [\"2\",0], not a string placeholder",
        ),
        (
            "fractional parameter on an integer placeholder",
            Pipeline::Flux2Text,
            |d| d["prompt"]["5"]["inputs"]["guidance"] = json!(4),
            "holds an integer placeholder, but `cfg` can be fractional",
        ),
        (
            "missing output node",
            Pipeline::Flux2Text,
            |d| d["kiln"]["output"] = json!("77"),
            "`kiln.output` names node 77",
        ),
        (
            "missing stage node",
            Pipeline::LtxT2v,
            |d| d["kiln"]["stages"][1]["node"] = json!("88"),
            "stage stage_2 names node 88",
        ),
        (
            "stage off the output's path",
            Pipeline::LtxFastT2v,
            |d| {
                d["prompt"]["99"] = d["prompt"]["16"].clone();
                d["kiln"]["stages"][0]["node"] = json!("99");
            },
            "stage stage_1 node 99 is not upstream of the output node 30",
        ),
        (
            "wrong stage names",
            Pipeline::LtxFastT2v,
            |d| d["kiln"]["stages"][0]["name"] = json!("sampling"),
            "reports [\"stage_1\"]",
        ),
        (
            "stage steps from a non-schedule",
            Pipeline::LtxFastT2v,
            |d| d["kiln"]["stages"][0]["steps"] = json!("fps"),
            "must be `steps` or a sigma setting",
        ),
        (
            "dangling link",
            Pipeline::Flux2Text,
            |d| d["prompt"]["12"]["inputs"]["vae"] = json!(["31", 0]),
            "node 12 input `vae` links to node 31, which the graph does not have",
        ),
        (
            "wrong pipeline name",
            Pipeline::Flux2Text,
            |d| d["kiln"]["pipeline"] = json!("flux2_ref"),
            "`kiln.pipeline` is \"flux2_ref\"",
        ),
        (
            "reference chain not ending in the guider",
            Pipeline::Flux2Reference,
            |d| d["kiln"]["references"]["chain_into"] = json!(["10", "model"]),
            "must link to the last block's chain node",
        ),
        (
            "reference block missing a node",
            Pipeline::Flux2Reference,
            |d| d["kiln"]["references"]["blocks"][2]["nodes"][1] = json!("49"),
            "reference block 3 names node 49",
        ),
        (
            "references on the wrong pipeline",
            Pipeline::Flux2Text,
            |d| {
                d["kiln"]["references"] = json!({"blocks": [], "chain_into": ["10", "conditioning"]})
            },
            "`kiln.references` is only for flux2_ref",
        ),
    ];
    for (what, pipeline, edit, words) in cases {
        let err = parse_edited(*pipeline, edit)
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(
            matches!(err, TemplateError::Invalid { .. }) && err.to_string().contains(words),
            "{what}: {err}"
        );
    }
}

#[test]
fn malformed_template_files_are_refused() {
    let unknown_key = parse_edited(Pipeline::Flux2Text, |d| d["kiln"]["bindingz"] = json!({}));
    let err = unknown_key.err().unwrap();
    assert!(
        matches!(err, TemplateError::Parse { .. }) && err.to_string().contains("bindingz"),
        "{err}"
    );
    for text in ["", "{", "[]", r#"{"kiln": {}}"#] {
        let err = Template::parse(Pipeline::Flux2Text, text).err().unwrap();
        assert!(
            matches!(err, TemplateError::Parse { .. }),
            "{text:?}: {err}"
        );
        assert!(
            err.to_string().starts_with("template flux2_t2i.json:"),
            "{err}"
        );
    }
}

#[test]
fn the_templates_themselves_are_valid_graphs() {
    // Unfilled, with their placeholders, each template's graph is a runnable example:
    // the reference edit with all four references.
    let info = installed();
    for p in Pipeline::ALL {
        check(templates().get(p).graph(), &info).unwrap_or_else(|e| panic!("{p:?}: {e:#?}"));
    }
}
