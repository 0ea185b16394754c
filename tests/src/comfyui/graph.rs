//! The graph side: `/object_info` with the files present filled in, ComfyUI's prompt
//! validation, the execution order, and what a run needs to know from the graph (sampler
//! steps, output sizes, seeds).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::id_order;

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
fn loader_input(class: &str) -> Option<&'static str> {
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
enum InputType<'a> {
    Combo(&'a [Value]),
    Named(&'a str),
    Other,
}

fn input_type(spec: &Value) -> InputType<'_> {
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
fn class_inputs(class_info: &Value) -> Vec<(String, bool, Value)> {
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

fn error(ty: &str, message: &str, details: &str, extra_info: Value) -> Value {
    json!({"type": ty, "message": message, "details": details, "extra_info": extra_info})
}

/// A 400 body: `{"error": …, "node_errors": …}`.
pub(crate) fn refusal(error: Value, node_errors: Map<String, Value>) -> Value {
    json!({"error": error, "node_errors": node_errors})
}

pub(crate) fn no_prompt() -> Value {
    refusal(
        error(
            "no_prompt",
            "No prompt provided",
            "No prompt provided",
            json!({}),
        ),
        Map::new(),
    )
}

pub(crate) fn invalid_prompt(message: &str, details: &str) -> Value {
    refusal(
        error("invalid_prompt", message, details, json!({})),
        Map::new(),
    )
}

pub(crate) fn invalid_prompt_id() -> Value {
    refusal(
        error(
            "invalid_prompt_id",
            "prompt_id must be a valid UUID",
            "prompt_id must be a UUID string in canonical lowercase hyphenated form; omit it to let the server generate one",
            json!({}),
        ),
        Map::new(),
    )
}

fn failed_validation(node_errors: Map<String, Value>) -> Value {
    refusal(
        error(
            "prompt_outputs_failed_validation",
            "Prompt outputs failed validation",
            "",
            json!({}),
        ),
        node_errors,
    )
}

/// Node ids in numeric order.
pub(crate) fn sorted_ids(prompt: &Map<String, Value>) -> Vec<String> {
    let mut ids: Vec<String> = prompt.keys().cloned().collect();
    ids.sort_by(|a, b| id_order(a, b));
    ids
}

pub(crate) fn class_of<'a>(prompt: &'a Map<String, Value>, id: &str) -> &'a str {
    prompt
        .get(id)
        .and_then(|n| n.get("class_type"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `["<id>", <slot>]`.
pub(crate) fn as_link(v: &Value) -> Option<(&str, usize)> {
    let a = v.as_array()?;
    if a.len() != 2 {
        return None;
    }
    Some((a[0].as_str()?, usize::try_from(a[1].as_u64()?).ok()?))
}

/// What passed validation.
pub(crate) struct Validated {
    pub(crate) outputs: Vec<String>,
    /// Non-empty when some outputs failed and others passed (the request still succeeds).
    pub(crate) node_errors: Map<String, Value>,
}

/// ComfyUI's `validate_prompt`: `Err` is the 400 body. `image_exists` answers `LoadImage`'s
/// own check of its `image` value.
pub(crate) fn validate(
    info: &Map<String, Value>,
    prompt: &Map<String, Value>,
    partial: Option<&[String]>,
    image_exists: &dyn Fn(&str) -> bool,
) -> Result<Validated, Value> {
    let mut outputs = Vec::new();
    for id in sorted_ids(prompt) {
        let node = &prompt[&id];
        let Some(class) = node.get("class_type").and_then(Value::as_str) else {
            return Err(invalid_prompt(
                "Cannot execute because a node is missing the class_type property.",
                &format!("Node ID '#{id}'"),
            ));
        };
        if !info.contains_key(class) {
            let title = node
                .get("_meta")
                .and_then(|m| m.get("title"))
                .and_then(Value::as_str)
                .unwrap_or(class);
            return Err(refusal(
                error(
                    "missing_node_type",
                    &format!("Node '{class}' not found. The custom node may not be installed."),
                    &format!("Node ID '#{id}'"),
                    json!({"node_id": id, "class_type": class, "node_title": title}),
                ),
                Map::new(),
            ));
        }
        if is_output_node(info, class) && partial.is_none_or(|p| p.contains(&id)) {
            outputs.push(id);
        }
    }
    if outputs.is_empty() {
        return Err(refusal(
            error("prompt_no_outputs", "Prompt has no outputs", "", json!({})),
            Map::new(),
        ));
    }

    let mut v = Validator {
        info,
        prompt,
        image_exists,
        validated: HashMap::new(),
        order: Vec::new(),
        visiting: HashSet::new(),
    };
    let mut good = Vec::new();
    let mut node_errors = Map::new();
    for o in &outputs {
        if v.node(o) {
            good.push(o.clone());
            continue;
        }
        // As ComfyUI: every failed node validated so far gets this output as dependent.
        for id in &v.order {
            let (ok, reasons) = &v.validated[id];
            if *ok || reasons.is_empty() {
                continue;
            }
            let entry = node_errors.entry(id.clone()).or_insert_with(|| {
                json!({"errors": reasons, "dependent_outputs": [], "class_type": class_of(prompt, id)})
            });
            if let Some(d) = entry
                .get_mut("dependent_outputs")
                .and_then(Value::as_array_mut)
            {
                d.push(json!(o));
            }
        }
    }
    if good.is_empty() {
        return Err(failed_validation(node_errors));
    }
    if let Err(cycle) = execution_order(prompt, &good) {
        let mut errs = Map::new();
        for id in cycle {
            errs.insert(
                id.clone(),
                json!({"errors": [error("dependency_cycle", "Dependency cycle detected", &id, json!({}))],
                       "dependent_outputs": good, "class_type": class_of(prompt, &id)}),
            );
        }
        return Err(failed_validation(errs));
    }
    Ok(Validated {
        outputs: good,
        node_errors,
    })
}

/// The `node_errors` entry of a scripted `value_not_in_list` on a loader (or on the first
/// node with a literal input): for `Script::Invalid` and `Script::NodeErrors`.
pub(crate) fn scripted_node_errors(
    info: &Map<String, Value>,
    prompt: &Map<String, Value>,
    outputs: &[String],
) -> Map<String, Value> {
    let ids = sorted_ids(prompt);
    let pick = ids
        .iter()
        .find_map(|id| loader_input(class_of(prompt, id)).map(|i| (id.clone(), i.to_string())))
        .or_else(|| {
            ids.iter().find_map(|id| {
                let inputs = prompt[id].get("inputs")?.as_object()?;
                let (name, _) = inputs.iter().find(|(_, v)| !v.is_array())?;
                Some((id.clone(), name.clone()))
            })
        });
    let Some((id, input)) = pick else {
        return Map::new();
    };
    let class = class_of(prompt, &id);
    let received = prompt[&id]
        .get("inputs")
        .and_then(|i| i.get(&input))
        .cloned()
        .unwrap_or(Value::Null);
    let options: Vec<Value> = info
        .get(class)
        .map(class_inputs)
        .unwrap_or_default()
        .into_iter()
        .find(|(n, _, _)| *n == input)
        .and_then(|(_, _, spec)| match input_type(&spec) {
            InputType::Combo(o) => Some(o.to_vec()),
            _ => None,
        })
        .unwrap_or_default();
    let err = not_in_list(&input, &received, &options, json!([options, {}]));
    let mut m = Map::new();
    m.insert(
        id.clone(),
        json!({"errors": [err], "dependent_outputs": outputs, "class_type": class}),
    );
    m
}

/// Python's `repr` of a value, enough for error details.
fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// Python's `str` of a value.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

fn not_in_list(input: &str, val: &Value, options: &[Value], config: Value) -> Value {
    let (list_info, config) = if options.len() > 20 {
        (format!("(list of length {})", options.len()), Value::Null)
    } else {
        (py_repr(&Value::Array(options.to_vec())), config)
    };
    error(
        "value_not_in_list",
        "Value not in list",
        &format!("{input}: '{}' not in {list_info}", py_str(val)),
        json!({"input_name": input, "input_config": config, "received_value": val}),
    )
}

/// Formats a number as Python prints an int or a float.
fn py_num(x: f64, is_int: bool) -> String {
    if is_int {
        format!("{}", x as i128)
    } else if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

struct Validator<'a> {
    info: &'a Map<String, Value>,
    prompt: &'a Map<String, Value>,
    image_exists: &'a dyn Fn(&str) -> bool,
    /// Per node: valid, and its own errors.
    validated: HashMap<String, (bool, Vec<Value>)>,
    /// Nodes in the order they were validated.
    order: Vec<String>,
    visiting: HashSet<String>,
}

impl Validator<'_> {
    /// ComfyUI's `validate_inputs` for one node and, through its links, its upstream.
    fn node(&mut self, id: &str) -> bool {
        if let Some((ok, _)) = self.validated.get(id) {
            return *ok;
        }
        if !self.visiting.insert(id.to_string()) {
            // A cycle: reported after validation, from the execution order.
            return true;
        }
        let prompt = self.prompt;
        let class = class_of(prompt, id);
        let class_info = &self.info[class];
        let empty = Map::new();
        let inputs = prompt[id]
            .get("inputs")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let mut errors = Vec::new();
        let mut valid = true;
        // Inputs that the node checks itself (ComfyUI skips the list check for them).
        let custom: &[&str] = if class == "LoadImage" {
            &["image"]
        } else {
            &[]
        };

        for (name, required, spec) in class_inputs(class_info) {
            let Some(val) = inputs.get(&name) else {
                if required {
                    errors.push(error(
                        "required_input_missing",
                        "Required input is missing",
                        &name,
                        json!({"input_name": name}),
                    ));
                }
                continue;
            };
            let ty = input_type(&spec);
            if let Value::Array(_) = val {
                let Some((src, slot)) = as_link(val).filter(|(src, _)| prompt.contains_key(*src))
                else {
                    errors.push(error(
                        "bad_linked_input",
                        "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                        &name,
                        json!({"input_name": name, "input_config": spec, "received_value": val}),
                    ));
                    continue;
                };
                let src_class = class_of(prompt, src);
                let received = self
                    .info
                    .get(src_class)
                    .and_then(|c| c.get("output"))
                    .and_then(|o| o.get(slot))
                    .cloned();
                let Some(received) = received else {
                    errors.push(error(
                        "bad_linked_input",
                        "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                        &name,
                        json!({"input_name": name, "input_config": spec, "received_value": val}),
                    ));
                    continue;
                };
                if !types_match(&received, &ty) {
                    let want = spec.get(0).map(py_str).unwrap_or_default();
                    errors.push(error(
                        "return_type_mismatch",
                        "Return type mismatch between linked nodes",
                        &format!("{name}, {} != {want}", py_str(&received)),
                        json!({"input_name": name, "input_config": spec,
                               "received_type": received, "linked_node": val}),
                    ));
                    continue;
                }
                if !self.node(src) {
                    valid = false;
                }
                continue;
            }
            let val = match val.get("__value__") {
                Some(inner) if val.is_object() => inner,
                _ => val,
            };
            let number = match ty {
                InputType::Named("INT") => match py_int(val) {
                    Ok(n) => Some((n as f64, true)),
                    Err(ex) => {
                        errors.push(invalid_type(&name, "INT", val, &spec, &ex));
                        continue;
                    }
                },
                InputType::Named("FLOAT") => match py_float(val) {
                    Ok(x) => Some((x, false)),
                    Err(ex) => {
                        errors.push(invalid_type(&name, "FLOAT", val, &spec, &ex));
                        continue;
                    }
                },
                _ => None,
            };
            if custom.contains(&name.as_str()) {
                continue;
            }
            let opts = spec.get(1);
            if let Some((x, is_int)) = number {
                let min = opts.and_then(|o| o.get("min")).and_then(Value::as_f64);
                let max = opts.and_then(|o| o.get("max")).and_then(Value::as_f64);
                if let Some(min) = min.filter(|m| x < *m) {
                    errors.push(error(
                        "value_smaller_than_min",
                        &format!(
                            "Value {} smaller than min of {}",
                            py_num(x, is_int),
                            py_num(min, is_int)
                        ),
                        &name,
                        json!({"input_name": name, "input_config": spec, "received_value": val}),
                    ));
                    continue;
                }
                if let Some(max) = max.filter(|m| x > *m) {
                    errors.push(error(
                        "value_bigger_than_max",
                        &format!(
                            "Value {} bigger than max of {}",
                            py_num(x, is_int),
                            py_num(max, is_int)
                        ),
                        &name,
                        json!({"input_name": name, "input_config": spec, "received_value": val}),
                    ));
                    continue;
                }
            }
            if let InputType::Combo(options) = ty {
                if !options.contains(val) {
                    errors.push(not_in_list(&name, val, options, spec.clone()));
                    continue;
                }
            }
        }

        if class == "LoadImage" {
            if let Some(image) = inputs.get("image").filter(|v| !v.is_array()) {
                let name = py_str(image);
                if !(self.image_exists)(&name) {
                    errors.push(error(
                        "custom_validation_failed",
                        "Custom validation failed for node",
                        &format!("image - Invalid image file: {name}"),
                        json!({"input_name": "image"}),
                    ));
                }
            }
        }

        let ok = valid && errors.is_empty();
        self.validated.insert(id.to_string(), (ok, errors));
        self.order.push(id.to_string());
        ok
    }
}

fn invalid_type(name: &str, ty: &str, val: &Value, spec: &Value, ex: &str) -> Value {
    error(
        "invalid_input_type",
        &format!("Failed to convert an input value to a {ty} value"),
        &format!("{name}, {}, {ex}", py_str(val)),
        json!({"input_name": name, "input_config": spec, "received_value": val,
               "exception_message": ex}),
    )
}

/// Python's `int(v)`.
fn py_int(v: &Value) -> Result<i128, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().map(|f| f.trunc() as i128))
            .ok_or_else(|| format!("invalid literal for int() with base 10: '{n}'")),
        Value::Bool(b) => Ok(i128::from(*b)),
        Value::String(s) => s
            .trim()
            .parse::<i128>()
            .map_err(|_| format!("invalid literal for int() with base 10: '{s}'")),
        Value::Null => Err(
            "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'"
                .into(),
        ),
        _ => Err(
            "int() argument must be a string, a bytes-like object or a real number, not 'dict'"
                .into(),
        ),
    }
}

/// Python's `float(v)`.
fn py_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| "bad number".to_string()),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("could not convert string to float: '{s}'")),
        Value::Null => {
            Err("float() argument must be a string or a real number, not 'NoneType'".into())
        }
        _ => Err("float() argument must be a string or a real number, not 'dict'".into()),
    }
}

/// ComfyUI's `validate_node_input`: equal, `*`, or overlapping comma-separated unions; any
/// combo accepts a combo.
fn types_match(received: &Value, want: &InputType) -> bool {
    let recv = match received {
        Value::String(s) => s.as_str(),
        Value::Array(_) => "COMBO",
        _ => return false,
    };
    let want = match want {
        InputType::Combo(_) => return recv == "COMBO" || recv == "*",
        InputType::Named(t) => *t,
        InputType::Other => return true,
    };
    if want.starts_with("COMFY_") || recv == want || recv == "*" || want == "*" {
        return true;
    }
    let wants: HashSet<&str> = want.split(',').map(str::trim).collect();
    recv.split(',').map(str::trim).any(|t| wants.contains(t))
}

/// The nodes upstream of `outputs` (outputs included) in an order that runs every node
/// after its inputs, lower ids first where free; `Err` holds the nodes on a cycle.
pub(crate) fn execution_order(
    prompt: &Map<String, Value>,
    outputs: &[String],
) -> Result<Vec<String>, Vec<String>> {
    let deps = |id: &str| -> Vec<String> {
        prompt
            .get(id)
            .and_then(|n| n.get("inputs"))
            .and_then(Value::as_object)
            .map(|inputs| {
                inputs
                    .values()
                    .filter_map(as_link)
                    .filter(|(src, _)| prompt.contains_key(*src))
                    .map(|(src, _)| src.to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut needed: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = outputs.to_vec();
    while let Some(id) = stack.pop() {
        if needed.insert(id.clone()) {
            stack.extend(deps(&id));
        }
    }
    let mut waiting: HashMap<String, HashSet<String>> = needed
        .iter()
        .map(|id| (id.clone(), deps(id).into_iter().collect()))
        .collect();
    let mut order = Vec::new();
    loop {
        let mut ready: Vec<String> = waiting
            .iter()
            .filter(|(_, d)| d.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        if ready.is_empty() {
            break;
        }
        ready.sort_by(|a, b| id_order(a, b));
        let next = ready.remove(0);
        waiting.remove(&next);
        for d in waiting.values_mut() {
            d.remove(&next);
        }
        order.push(next);
    }
    if waiting.is_empty() {
        Ok(order)
    } else {
        let mut cycle: Vec<String> = waiting.into_keys().collect();
        cycle.sort_by(|a, b| id_order(a, b));
        Err(cycle)
    }
}

/// Reads the graph for what a run needs; `load_image` gives an input image's size.
pub(crate) struct Reader<'a> {
    pub(crate) prompt: &'a Map<String, Value>,
    pub(crate) load_image: &'a dyn Fn(&str) -> Option<(u32, u32)>,
}

/// Width, height, and images in the batch (or frames of a video).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub(crate) w: u32,
    pub(crate) h: u32,
    pub(crate) n: u32,
}

/// LTX latents hold `(length - 1) / 8 + 1` frames, decoded to `8n + 1`.
fn ltx_frames(length: i64) -> u32 {
    let l = length.max(1);
    (((l - 1) / 8) * 8 + 1) as u32
}

const DEPTH: u32 = 64;

impl Reader<'_> {
    fn input(&self, id: &str, name: &str) -> Option<&Value> {
        self.prompt.get(id)?.get("inputs")?.get(name)
    }

    fn class(&self, id: &str) -> &str {
        class_of(self.prompt, id)
    }

    /// An INT input: a literal, or what a `PrimitiveInt` or `GetImageSize` gives.
    pub(crate) fn int(&self, id: &str, name: &str) -> Option<i64> {
        self.int_value(self.input(id, name)?, DEPTH)
    }

    fn int_value(&self, v: &Value, depth: u32) -> Option<i64> {
        if let Some((src, slot)) = as_link(v) {
            let depth = depth.checked_sub(1)?;
            return match self.class(src) {
                "PrimitiveInt" => self.int_value(self.input(src, "value")?, depth),
                "GetImageSize" => {
                    let d = self.image(self.input(src, "image")?, depth)?;
                    Some(i64::from([d.w, d.h, d.n][slot.min(2)]))
                }
                _ => None,
            };
        }
        py_int(v).ok().and_then(|n| i64::try_from(n).ok())
    }

    pub(crate) fn float(&self, id: &str, name: &str) -> Option<f64> {
        let v = self.input(id, name)?;
        if as_link(v).is_some() {
            return self.int_value(v, DEPTH).map(|n| n as f64);
        }
        py_float(v).ok()
    }

    /// The size of the images an IMAGE link carries.
    pub(crate) fn image(&self, link: &Value, depth: u32) -> Option<Dims> {
        let (src, slot) = as_link(link)?;
        let depth = depth.checked_sub(1)?;
        let dim = |n: &str| self.int(src, n).and_then(|x| u32::try_from(x).ok());
        match self.class(src) {
            "EmptyImage" => Some(Dims {
                w: dim("width")?,
                h: dim("height")?,
                n: dim("batch_size").unwrap_or(1),
            }),
            "LoadImage" => {
                let name = self.input(src, "image")?.as_str()?;
                let (w, h) = (self.load_image)(name)?;
                Some(Dims { w, h, n: 1 })
            }
            "ImageScale" => {
                let d = self.image(self.input(src, "image")?, depth)?;
                let (w, h) = (dim("width").unwrap_or(0), dim("height").unwrap_or(0));
                let (w, h) = match (w, h) {
                    (0, 0) => (d.w, d.h),
                    (0, h) => (scale(d.w, f64::from(h) / f64::from(d.h.max(1))), h),
                    (w, 0) => (w, scale(d.h, f64::from(w) / f64::from(d.w.max(1)))),
                    wh => wh,
                };
                Some(Dims { w, h, n: d.n })
            }
            "ImageScaleBy" => {
                let d = self.image(self.input(src, "image")?, depth)?;
                let by = self.float(src, "scale_by").unwrap_or(1.0);
                Some(Dims {
                    w: scale(d.w, by),
                    h: scale(d.h, by),
                    n: d.n,
                })
            }
            "ImageScaleToTotalPixels" => {
                let d = self.image(self.input(src, "image")?, depth)?;
                let mp = self.float(src, "megapixels").unwrap_or(1.0);
                let steps = f64::from(dim("resolution_steps").unwrap_or(1).max(1));
                let by = (mp * 1024.0 * 1024.0 / (f64::from(d.w) * f64::from(d.h)).max(1.0)).sqrt();
                let side = |x: u32| ((f64::from(x) * by / steps).round() * steps).max(steps) as u32;
                Some(Dims {
                    w: side(d.w),
                    h: side(d.h),
                    n: d.n,
                })
            }
            "ImageInvert" | "LTXVPreprocess" => self.image(self.input(src, "image")?, depth),
            "VAEDecode" | "VAEDecodeTiled" if slot == 0 => {
                self.latent(self.input(src, "samples")?, depth)
            }
            _ => None,
        }
    }

    /// The pixel size and batch (or frames) a LATENT link decodes to.
    fn latent(&self, link: &Value, depth: u32) -> Option<Dims> {
        let (src, slot) = as_link(link)?;
        let depth = depth.checked_sub(1)?;
        let dim = |n: &str| self.int(src, n).and_then(|x| u32::try_from(x).ok());
        let follow = |input: &str| self.latent(self.input(src, input)?, depth);
        match self.class(src) {
            "EmptyFlux2LatentImage" | "EmptyLatentImage" => Some(Dims {
                w: dim("width")?,
                h: dim("height")?,
                n: dim("batch_size").unwrap_or(1),
            }),
            "EmptyLTXVLatentVideo" | "LTXVImgToVideo" => Some(Dims {
                w: dim("width")?,
                h: dim("height")?,
                n: ltx_frames(self.int(src, "length").unwrap_or(97)),
            }),
            "SamplerCustomAdvanced" | "SamplerCustom" | "KSampler" | "KSamplerAdvanced" => {
                follow("latent_image")
            }
            "VAEEncode" => self.image(self.input(src, "pixels")?, depth),
            "LTXVConcatAVLatent" => follow("video_latent"),
            "LTXVSeparateAVLatent" if slot == 0 => follow("av_latent"),
            "LTXVImgToVideoInplace" | "LTXVAddGuide" => follow("latent"),
            "LTXVCropGuides" if slot == 2 => follow("latent"),
            "LTXVLatentUpsampler" => follow("samples").map(|d| Dims {
                w: d.w.saturating_mul(2),
                h: d.h.saturating_mul(2),
                n: d.n,
            }),
            _ => None,
        }
    }

    /// How many steps a sampler node runs.
    pub(crate) fn sampler_steps(&self, id: &str) -> u32 {
        let steps = match self.class(id) {
            "KSampler" | "KSamplerAdvanced" => self.int(id, "steps"),
            _ => self
                .input(id, "sigmas")
                .and_then(|l| self.sigma_steps(l, DEPTH)),
        };
        steps.unwrap_or(1).clamp(1, 10_000) as u32
    }

    fn sigma_steps(&self, link: &Value, depth: u32) -> Option<i64> {
        let (src, slot) = as_link(link)?;
        let depth = depth.checked_sub(1)?;
        match self.class(src) {
            "ManualSigmas" => {
                let s = self.input(src, "sigmas")?.as_str()?;
                let n = s
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|t| t.parse::<f64>().is_ok())
                    .count() as i64;
                Some((n - 1).max(0))
            }
            "SplitSigmasDenoise" => {
                let n = self.sigma_steps(self.input(src, "sigmas")?, depth)?;
                let denoise = self.float(src, "denoise").unwrap_or(1.0);
                let low = (n as f64 * denoise).round() as i64;
                Some(if slot == 1 { low } else { n - low })
            }
            _ => self.int(src, "steps"),
        }
    }

    /// The size of what a `SaveImage` / `PreviewImage` / `SaveImageWebsocket` node saves.
    pub(crate) fn saved_image(&self, id: &str) -> Dims {
        let d = self
            .input(id, "images")
            .and_then(|l| self.image(l, DEPTH))
            .unwrap_or(Dims { w: 64, h: 64, n: 1 });
        Dims {
            w: d.w.clamp(1, super::media::MAX_SIDE),
            h: d.h.clamp(1, super::media::MAX_SIDE),
            n: d.n.clamp(1, 16),
        }
    }

    /// What a `SaveVideo` node saves: size and frames, fps, and whether it has audio.
    pub(crate) fn saved_video(&self, id: &str) -> (Dims, f64, bool) {
        let create = self
            .input(id, "video")
            .and_then(as_link)
            .map(|(src, _)| src)
            .filter(|src| self.class(src) == "CreateVideo");
        let Some(create) = create else {
            return (Dims { w: 64, h: 64, n: 9 }, 24.0, false);
        };
        let d = self
            .input(create, "images")
            .and_then(|l| self.image(l, DEPTH))
            .unwrap_or(Dims { w: 64, h: 64, n: 9 });
        let fps = self.float(create, "fps").unwrap_or(24.0).clamp(1.0, 120.0);
        let audio = self.input(create, "audio").is_some();
        let d = Dims {
            w: d.w.clamp(2, super::media::MAX_SIDE),
            h: d.h.clamp(2, super::media::MAX_SIDE),
            n: d.n.clamp(1, super::media::MAX_FRAMES),
        };
        (d, fps, audio)
    }

    /// The seed of the first `RandomNoise` (or a `KSampler`'s), 0 without one.
    pub(crate) fn seed(&self) -> u64 {
        for id in sorted_ids(self.prompt) {
            let name = match self.class(&id) {
                "RandomNoise" => "noise_seed",
                "KSampler" | "SamplerCustom" => "seed",
                "KSamplerAdvanced" => "noise_seed",
                _ => continue,
            };
            if let Some(v) = self.input(&id, name) {
                if let Some(n) = v.as_u64() {
                    return n;
                }
                if let Some(n) = self.int_value(v, DEPTH) {
                    return n as u64;
                }
            }
        }
        0
    }
}

fn scale(x: u32, by: f64) -> u32 {
    (f64::from(x) * by).round().max(1.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Map<String, Value> {
        serde_json::from_str(super::super::OBJECT_INFO).unwrap()
    }

    #[test]
    fn types_match_like_comfyui() {
        assert!(types_match(&json!("MODEL"), &InputType::Named("MODEL")));
        assert!(!types_match(&json!("CLIP"), &InputType::Named("MODEL")));
        assert!(types_match(&json!("FLOAT,INT"), &InputType::Named("INT")));
        assert!(types_match(&json!("*"), &InputType::Named("IMAGE")));
        assert!(types_match(&json!("COMBO"), &InputType::Combo(&[])));
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

    #[test]
    fn steps_and_sizes_come_from_the_graph() {
        let prompt: Map<String, Value> = serde_json::from_value(json!({
            "1": {"class_type": "ManualSigmas", "inputs": {"sigmas": "1.0, 0.5, 0.25, 0.0"}},
            "2": {"class_type": "SamplerCustomAdvanced", "inputs": {"sigmas": ["1", 0], "latent_image": ["3", 0]}},
            "3": {"class_type": "EmptyLTXVLatentVideo", "inputs": {"width": 256, "height": 160, "length": 12, "batch_size": 1}},
            "4": {"class_type": "LTXVLatentUpsampler", "inputs": {"samples": ["2", 0]}},
            "5": {"class_type": "VAEDecodeTiled", "inputs": {"samples": ["4", 0]}},
            "6": {"class_type": "Flux2Scheduler", "inputs": {"steps": 20}},
            "7": {"class_type": "SplitSigmasDenoise", "inputs": {"sigmas": ["6", 0], "denoise": 0.6}},
            "8": {"class_type": "SamplerCustomAdvanced", "inputs": {"sigmas": ["7", 1]}},
        }))
        .unwrap();
        let r = Reader {
            prompt: &prompt,
            load_image: &|_| None,
        };
        assert_eq!(r.sampler_steps("2"), 3);
        assert_eq!(r.sampler_steps("8"), 12);
        assert_eq!(
            r.image(&json!(["5", 0]), DEPTH),
            Some(Dims {
                w: 512,
                h: 320,
                n: 9
            })
        );
    }
}
