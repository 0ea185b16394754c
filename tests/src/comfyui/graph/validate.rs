//! ComfyUI's prompt validation (`validate_prompt`, `validate_inputs`), and the scripted
//! `node_errors` of `Script::Invalid` and `Script::NodeErrors`.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::errors::{error, failed_validation, invalid_prompt, invalid_type, not_in_list, refusal};
use super::info::{class_inputs, input_type, is_output_node, loader_input, InputType};
use super::python::{py_float, py_int, py_num, py_str};
use super::{as_link, class_of, execution_order, sorted_ids};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_match_like_comfyui() {
        assert!(types_match(&json!("MODEL"), &InputType::Named("MODEL")));
        assert!(!types_match(&json!("CLIP"), &InputType::Named("MODEL")));
        assert!(types_match(&json!("FLOAT,INT"), &InputType::Named("INT")));
        assert!(types_match(&json!("*"), &InputType::Named("IMAGE")));
        assert!(types_match(&json!("COMBO"), &InputType::Combo(&[])));
    }
}
