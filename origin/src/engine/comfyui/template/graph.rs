//! Walking an API-format graph: links, node inputs, the nodes upstream of one, and
//! links to missing nodes.

use std::collections::HashSet;

use serde_json::Value;

use super::Graph;

/// A link `["id", slot]`: the source id, if `value` is one.
pub(super) fn link_source(value: &Value) -> Option<&str> {
    match value.as_array()?.as_slice() {
        [Value::String(id), slot] if slot.is_u64() => Some(id),
        _ => None,
    }
}

pub(super) fn link(node: &str) -> Value {
    Value::Array(vec![Value::from(node), Value::from(0u64)])
}

pub(super) fn node_input<'g>(graph: &'g Graph, node: &str, input: &str) -> Option<&'g Value> {
    graph.get(node)?.get("inputs")?.get(input)
}

pub(super) fn node_input_mut<'g>(
    graph: &'g mut Graph,
    node: &str,
    input: &str,
) -> Option<&'g mut Value> {
    graph.get_mut(node)?.get_mut("inputs")?.get_mut(input)
}

/// The ids of every node `from` depends on, itself included.
pub(super) fn upstream(graph: &Graph, from: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(id) = todo.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(inputs) = graph
            .get(&id)
            .and_then(|n| n.get("inputs"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        for value in inputs.values() {
            if let Some(src) = link_source(value) {
                if graph.contains_key(src) && !seen.contains(src) {
                    todo.push(src.to_owned());
                }
            }
        }
    }
    seen
}

/// Every link whose source node is missing, as "node 11 input `x` → 99".
pub(super) fn dangling_links(graph: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (id, node) in graph {
        let Some(inputs) = node.get("inputs").and_then(Value::as_object) else {
            continue;
        };
        for (name, value) in inputs {
            if let Some(src) = link_source(value) {
                if !graph.contains_key(src) {
                    out.push(format!(
                        "node {id} input `{name}` links to node {src}, which the graph does not have"
                    ));
                }
            }
        }
    }
    out
}
