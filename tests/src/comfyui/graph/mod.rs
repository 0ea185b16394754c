//! The graph side: `/object_info` with the files present filled in, ComfyUI's prompt
//! validation, the execution order, and what a run needs to know from the graph (sampler
//! steps, output sizes, seeds).
//!
//! Here: reading node ids, classes and links, and the execution order. In `info.rs`
//! `/object_info` and the node classes it knows; in `validate.rs` ComfyUI's prompt
//! validation, with its error bodies in `errors.rs` and Python's conversions in
//! `python.rs`; in `reader.rs` what a run reads from the graph.

mod errors;
mod info;
mod python;
mod reader;
mod validate;

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value};

pub(crate) use self::errors::{invalid_prompt, invalid_prompt_id, no_prompt, refusal};
pub(crate) use self::info::{object_info, MODEL_FOLDERS, SAMPLERS};
pub(crate) use self::reader::Reader;
pub(crate) use self::validate::{scripted_node_errors, validate};
use super::ids::id_order;

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
