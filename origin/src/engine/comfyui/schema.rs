//! Checks an API-format graph against a ComfyUI server's `/object_info`, the way the
//! server's own `/prompt` validation does, but returning every problem at once and
//! without a server: at startup against the live `/object_info` (does this server have
//! the nodes and model files the templates need?), and in tests against the 0.26.0
//! snapshot in `origin/comfyui/`.
//!
//! What is checked, per node: the class exists; every required input is present; no
//! input the class does not have; each literal matches its declared type (INT: a JSON
//! integer within min/max; FLOAT: a number within min/max; STRING; BOOLEAN; a combo: one
//! of the listed values, in both the legacy `[["a", "b"], {…}]` and the
//! `["COMBO", {"options": […]}]` forms); each link `["id", slot]` names an existing node,
//! a slot that node's class has, and an output whose type fits the input (equal, `*`, or
//! overlapping comma-separated lists, as ComfyUI's `validate_node_input`). Stricter than
//! ComfyUI, which converts `"5"` to an INT: a template should say what it means.
//! Not checked: INT `step` (ComfyUI does not either), hidden inputs, cycles.
//!
//! `LoadImage.image` only needs to be a string: the file is uploaded per job, and the
//! server checks it.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

use super::settings::ModelFolder;
use super::template::Graph;

/// One thing wrong with one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub node: String,
    pub class_type: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node {} ({}): {}",
            self.node, self.class_type, self.message
        )
    }
}

/// The loader inputs that list model files, and the folder each lists.
pub fn model_inputs() -> &'static [(&'static str, &'static str, ModelFolder)] {
    &[
        ("UNETLoader", "unet_name", ModelFolder::DiffusionModels),
        ("CLIPLoader", "clip_name", ModelFolder::TextEncoders),
        ("VAELoader", "vae_name", ModelFolder::Vae),
        (
            "CheckpointLoaderSimple",
            "ckpt_name",
            ModelFolder::Checkpoints,
        ),
        ("LTXVAudioVAELoader", "ckpt_name", ModelFolder::Checkpoints),
        (
            "LTXAVTextEncoderLoader",
            "ckpt_name",
            ModelFolder::Checkpoints,
        ),
        (
            "LTXAVTextEncoderLoader",
            "text_encoder",
            ModelFolder::TextEncoders,
        ),
        ("LoraLoaderModelOnly", "lora_name", ModelFolder::Loras),
        ("LoraLoader", "lora_name", ModelFolder::Loras),
        (
            "LatentUpscaleModelLoader",
            "model_name",
            ModelFolder::LatentUpscaleModels,
        ),
    ]
}

/// `object_info` with `files` added to the model lists of the loader inputs
/// ([`model_inputs`]), as a server with those files installed would list them. Values
/// already listed stay; a class or input the JSON lacks is skipped.
pub fn with_model_files(object_info: &Value, files: &[(ModelFolder, &str)]) -> Value {
    let mut info = object_info.clone();
    for &(class, input, folder) in model_inputs() {
        for section in ["required", "optional"] {
            let Some(spec) = info.pointer_mut(&format!("/{class}/input/{section}/{input}")) else {
                continue;
            };
            let Some(list) = combo_options_mut(spec) else {
                continue;
            };
            for &(f, name) in files {
                if f == folder && !list.iter().any(|v| v.as_str() == Some(name)) {
                    list.push(Value::from(name));
                }
            }
        }
    }
    info
}

/// The option list of a combo input spec, in either form.
fn combo_options_mut(spec: &mut Value) -> Option<&mut Vec<Value>> {
    let spec = spec.as_array_mut()?;
    if spec.first()?.is_array() {
        return spec.first_mut()?.as_array_mut();
    }
    if spec.first()?.as_str() != Some("COMBO") {
        return None;
    }
    if spec.len() < 2 {
        spec.push(Value::Object(Map::new()));
    }
    let opts = spec.get_mut(1)?.as_object_mut()?;
    opts.entry("options")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
}

/// What an input takes, from its `/object_info` spec.
enum InputType<'a> {
    Int,
    Float,
    Text,
    Boolean,
    Combo(&'a [Value]),
    /// `*` and ComfyUI's V3 pseudo-types (`COMFY_MATCHTYPE_V3`, …): anything goes.
    Any,
    /// A type only a link can give (MODEL, IMAGE, …).
    Linked(&'a str),
}

struct InputSpec<'a> {
    ty: InputType<'a>,
    /// The type name links are matched against.
    link_type: &'a str,
    options: Option<&'a Map<String, Value>>,
}

fn parse_spec(spec: &Value) -> Option<InputSpec<'_>> {
    let arr = spec.as_array()?;
    let options = arr.get(1).and_then(Value::as_object);
    let first = arr.first()?;
    if let Some(list) = first.as_array() {
        return Some(InputSpec {
            ty: InputType::Combo(list),
            link_type: "COMBO",
            options,
        });
    }
    let name = first.as_str()?;
    let ty = match name {
        "INT" => InputType::Int,
        "FLOAT" => InputType::Float,
        "STRING" => InputType::Text,
        "BOOLEAN" => InputType::Boolean,
        "COMBO" => InputType::Combo(
            options
                .and_then(|o| o.get("options"))
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        ),
        "*" => InputType::Any,
        t if t.starts_with("COMFY_") => InputType::Any,
        t => InputType::Linked(t),
    };
    Some(InputSpec {
        ty,
        link_type: name,
        options,
    })
}

/// ComfyUI's `validate_node_input`, non-strict.
fn types_match(output: &str, input: &str) -> bool {
    if output == input {
        return true;
    }
    let outs: Vec<&str> = output.split(',').map(str::trim).collect();
    let ins: Vec<&str> = input.split(',').map(str::trim).collect();
    outs.contains(&"*") || ins.contains(&"*") || outs.iter().any(|t| ins.contains(t))
}

/// The type name of output `slot` of a class (a list of values is a combo).
fn output_type(info: &Value, slot: usize) -> Option<String> {
    let out = info.get("output")?.as_array()?.get(slot)?;
    Some(match out {
        Value::String(s) => s.clone(),
        Value::Array(_) => "COMBO".to_owned(),
        other => other.to_string(),
    })
}

fn compare(value: &Value, bound: &Value) -> Option<Ordering> {
    let int = |v: &Value| {
        v.as_i64()
            .map(i128::from)
            .or_else(|| v.as_u64().map(i128::from))
    };
    match (int(value), int(bound)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => value.as_f64()?.partial_cmp(&bound.as_f64()?),
    }
}

fn describe(value: &Value) -> String {
    let s = value.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// Checks `graph` against `object_info` (`{class: {"input": {"required", "optional"},
/// "output": [types], …}}`); the error lists every problem, in node id order.
pub fn check(graph: &Graph, object_info: &Value) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    for (id, node) in graph {
        let class = node
            .get("class_type")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let mut problem = |message: String| {
            problems.push(Problem {
                node: id.clone(),
                class_type: class.to_owned(),
                message,
            })
        };
        let Some(info) = object_info.get(class).filter(|v| v.is_object()) else {
            problem(format!(
                "unknown node class `{class}`: the server has no such node (a custom node not installed, or another ComfyUI version)"
            ));
            continue;
        };
        let empty = Map::new();
        let inputs = match node.get("inputs") {
            None => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => {
                problem("`inputs` is not an object".to_owned());
                continue;
            }
        };
        let section = |name: &str| {
            info.get("input")
                .and_then(|i| i.get(name))
                .and_then(Value::as_object)
                .unwrap_or(&empty)
        };
        let (required, optional) = (section("required"), section("optional"));
        for name in required.keys() {
            if !inputs.contains_key(name) {
                problem(format!("required input `{name}` is missing"));
            }
        }
        for (name, value) in inputs {
            let Some(spec) = required.get(name).or_else(|| optional.get(name)) else {
                if is_dynamic_sub_input(name, required, optional) {
                    continue;
                }
                let known: Vec<&str> = required
                    .keys()
                    .chain(optional.keys())
                    .map(String::as_str)
                    .collect();
                problem(format!(
                    "has no input `{name}` (it takes: {})",
                    known.join(", ")
                ));
                continue;
            };
            let Some(spec) = parse_spec(spec) else {
                problem(format!(
                    "the server's spec of input `{name}` is not understood: {}",
                    describe(spec)
                ));
                continue;
            };
            if let Some(message) = check_input(graph, object_info, class, name, &spec, value) {
                problem(message);
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// A DynamicCombo's nested input, `"<combo>.<name>"`: the server checks it against
/// the option chosen, which its `/object_info` does not spell out.
fn is_dynamic_sub_input(
    name: &str,
    required: &Map<String, Value>,
    optional: &Map<String, Value>,
) -> bool {
    let Some((head, _)) = name.split_once('.') else {
        return false;
    };
    required
        .get(head)
        .or_else(|| optional.get(head))
        .and_then(|s| s.get(0))
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with("COMFY_DYNAMICCOMBO"))
}

/// What is wrong with one input's value, if anything.
fn check_input(
    graph: &Graph,
    object_info: &Value,
    class: &str,
    name: &str,
    spec: &InputSpec<'_>,
    value: &Value,
) -> Option<String> {
    if let Value::Array(parts) = value {
        let (src, slot) = match parts.as_slice() {
            [Value::String(src), slot] if slot.is_u64() => (src, slot.as_u64()?),
            _ => {
                return Some(format!(
                    "input `{name}` is a list but not a link [\"node id\", output slot]: {}",
                    describe(value)
                ))
            }
        };
        let Some(src_node) = graph.get(src) else {
            return Some(format!(
                "input `{name}` links to node {src}, which the graph does not have"
            ));
        };
        let src_class = src_node
            .get("class_type")
            .and_then(Value::as_str)
            .unwrap_or("?");
        // An unknown source class is reported on that node.
        let src_info = object_info.get(src_class).filter(|v| v.is_object())?;
        let outputs = src_info
            .get("output")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let Some(out_type) = usize::try_from(slot)
            .ok()
            .and_then(|s| output_type(src_info, s))
        else {
            return Some(format!(
                "input `{name}` links to output {slot} of node {src} ({src_class}), which has {outputs} output(s)"
            ));
        };
        // A V3 pseudo-type output (`COMFY_MATCHTYPE_V3`) takes its type from its input.
        if matches!(spec.ty, InputType::Any)
            || out_type.starts_with("COMFY_")
            || types_match(&out_type, spec.link_type)
        {
            return None;
        }
        return Some(format!(
            "input `{name}` takes {} but is linked to output {slot} of node {src} ({src_class}), which gives {out_type}",
            spec.link_type
        ));
    }

    if class == "LoadImage" && name == "image" {
        return (!value.is_string()).then(|| {
            format!(
                "input `image` must be a file name string, not {}",
                describe(value)
            )
        });
    }

    let range = |kind: &str| -> Option<String> {
        let opts = spec.options?;
        if let Some(min) = opts.get("min") {
            if compare(value, min) == Some(Ordering::Less) {
                return Some(format!(
                    "input `{name}` is {value}, below the {kind} minimum {min}"
                ));
            }
        }
        if let Some(max) = opts.get("max") {
            if compare(value, max) == Some(Ordering::Greater) {
                return Some(format!(
                    "input `{name}` is {value}, above the {kind} maximum {max}"
                ));
            }
        }
        None
    };
    let wrong = |what: &str| {
        Some(format!(
            "input `{name}` must be {what}, not {}",
            describe(value)
        ))
    };
    match &spec.ty {
        InputType::Int => {
            if value.is_i64() || value.is_u64() {
                range("INT")
            } else {
                wrong("an integer (INT)")
            }
        }
        InputType::Float => {
            if value.is_number() {
                range("FLOAT")
            } else {
                wrong("a number (FLOAT)")
            }
        }
        InputType::Text => (!value.is_string())
            .then(|| wrong("a string (STRING)"))
            .flatten(),
        InputType::Boolean => (!value.is_boolean())
            .then(|| wrong("true or false (BOOLEAN)"))
            .flatten(),
        InputType::Combo(options) => {
            if options.contains(value) {
                None
            } else if options.is_empty() {
                Some(format!(
                    "input `{name}` is {}, but the server lists no values for it (a model list is empty when its folder has no files)",
                    describe(value)
                ))
            } else {
                let shown: Vec<String> = options.iter().take(12).map(describe).collect();
                let more = options.len().saturating_sub(shown.len());
                Some(format!(
                    "input `{name}` is {}, which is not one of the values the server lists: {}{}",
                    describe(value),
                    shown.join(", "),
                    if more > 0 { format!(" (and {more} more)") } else { String::new() }
                ))
            }
        }
        InputType::Any => None,
        InputType::Linked(t) => Some(format!(
            "input `{name}` takes a {t} from another node (a link [\"node id\", slot]), not the literal {}",
            describe(value)
        )),
    }
}

#[cfg(test)]
mod tests;
