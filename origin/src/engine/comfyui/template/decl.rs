//! The template file format (`{"kiln": {…}, "prompt": {…}}`, see the module
//! documentation of [`super`]), parsed into a [`Template`] and checked against itself.

use std::collections::BTreeMap;

use kiln_shared::images;
use serde::Deserialize;
use serde_json::Value;

use super::graph::{dangling_links, link_source, node_input, upstream};
use super::pipeline::{Kind, Param, Pipeline};
use super::{Graph, TemplateError};

// ---- the file format ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    kiln: Declarations,
    prompt: Graph,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Declarations {
    pipeline: String,
    #[serde(default)]
    #[allow(dead_code)]
    about: String,
    output: String,
    has_audio: bool,
    stages: Vec<StageDecl>,
    bindings: BTreeMap<String, Vec<(String, String)>>,
    #[serde(default)]
    references: Option<ReferencesDecl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StageDecl {
    name: String,
    node: String,
    steps: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct ReferencesDecl {
    pub(super) blocks: Vec<ReferenceBlock>,
    pub(super) chain_into: (String, String),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct ReferenceBlock {
    pub(super) image: (String, String),
    pub(super) chain: String,
    pub(super) nodes: Vec<String>,
}

/// Where a binding writes, and whether the placeholder there is a float.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) node: String,
    pub(super) input: String,
    pub(super) float: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Stage {
    pub(super) name: &'static str,
    pub(super) node: String,
    pub(super) steps: Param,
}

/// One parsed, self-checked template.
#[derive(Debug)]
pub struct Template {
    pub(super) pipeline: Pipeline,
    pub(super) graph: Graph,
    pub(super) output: String,
    pub(super) has_audio: bool,
    pub(super) stages: Vec<Stage>,
    pub(super) bindings: Vec<(Param, Vec<Target>)>,
    pub(super) references: Option<ReferencesDecl>,
}

impl Template {
    /// Parses a template file for `pipeline` and checks it against itself (see the
    /// [module documentation](super)); the error lists every inconsistency found.
    pub fn parse(pipeline: Pipeline, text: &str) -> Result<Template, TemplateError> {
        let template = pipeline.name();
        let file: TemplateFile = serde_json::from_str(text)
            .map_err(|source| TemplateError::Parse { template, source })?;
        let TemplateFile {
            kiln,
            prompt: graph,
        } = file;
        let mut problems = Vec::new();

        if kiln.pipeline != template {
            problems.push(format!(
                "`kiln.pipeline` is {:?}, but the file is loaded as {template:?}",
                kiln.pipeline
            ));
        }

        // The graph's shape and links.
        for (id, node) in &graph {
            let class = node.get("class_type").and_then(Value::as_str);
            if class.is_none_or(str::is_empty) {
                problems.push(format!("node {id} has no `class_type` string"));
            }
            match node.get("inputs") {
                Some(Value::Object(inputs)) => {
                    for (name, value) in inputs {
                        if value.is_array() && link_source(value).is_none() {
                            problems.push(format!(
                                "node {id} input `{name}` is a list but not a link [\"node id\", output slot]"
                            ));
                        }
                    }
                }
                _ => problems.push(format!("node {id} has no `inputs` object")),
            }
        }
        problems.extend(dangling_links(&graph));

        // Output and stages.
        if !graph.contains_key(&kiln.output) {
            problems.push(format!(
                "`kiln.output` names node {}, which the graph does not have",
                kiln.output
            ));
        }
        let reachable = upstream(&graph, &kiln.output);
        let expected_names = pipeline.stage_names();
        let names: Vec<&str> = kiln.stages.iter().map(|s| s.name.as_str()).collect();
        if names != expected_names {
            problems.push(format!(
                "`kiln.stages` are named {names:?}; pipeline {template} reports {expected_names:?}"
            ));
        }
        let mut stages = Vec::new();
        for (decl, &name) in kiln.stages.iter().zip(expected_names) {
            if !graph.contains_key(&decl.node) {
                problems.push(format!(
                    "stage {} names node {}, which the graph does not have",
                    decl.name, decl.node
                ));
            } else if !reachable.contains(&decl.node) {
                problems.push(format!(
                    "stage {} node {} is not upstream of the output node {}",
                    decl.name, decl.node, kiln.output
                ));
            }
            match Param::from_name(&decl.steps) {
                Some(p)
                    if (p == Param::Steps || p.is_sigmas()) && pipeline.params().contains(&p) =>
                {
                    stages.push(Stage {
                        name,
                        node: decl.node.clone(),
                        steps: p,
                    })
                }
                _ => problems.push(format!(
                    "stage {} takes its steps from {:?}; it must be `steps` or a sigma setting pipeline {template} supplies",
                    decl.name, decl.steps
                )),
            }
        }

        // Bindings.
        let mut bindings = Vec::new();
        for (name, targets) in &kiln.bindings {
            let Some(param) = Param::from_name(name) else {
                problems.push(format!(
                    "binding `{name}` is not a known parameter; known: {}",
                    Param::ALL.map(Param::name).join(", ")
                ));
                continue;
            };
            if !pipeline.params().contains(&param) {
                problems.push(format!(
                    "binding `{name}`: pipeline {template} does not supply that parameter"
                ));
                continue;
            }
            if targets.is_empty() {
                problems.push(format!("binding `{name}` lists no node inputs"));
            }
            let mut resolved = Vec::new();
            for (node, input) in targets {
                let Some(n) = graph.get(node) else {
                    problems.push(format!(
                        "binding `{name}` names node {node}, which the graph does not have"
                    ));
                    continue;
                };
                let class = n.get("class_type").and_then(Value::as_str).unwrap_or("?");
                let Some(placeholder) = node_input(&graph, node, input) else {
                    problems.push(format!(
                        "binding `{name}` names input `{input}` of node {node} ({class}), which that node does not have"
                    ));
                    continue;
                };
                let float = match (param.kind(), placeholder) {
                    (Kind::Text, Value::String(_)) => false,
                    (Kind::Int, Value::Number(n)) => !(n.is_u64() || n.is_i64()),
                    (Kind::Float, Value::Number(n)) if n.is_f64() => true,
                    (Kind::Float, Value::Number(_)) => {
                        problems.push(format!(
                            "binding `{name}`: node {node} input `{input}` holds an integer placeholder, but `{name}` can be fractional; write it as a float (e.g. 4.0)"
                        ));
                        continue;
                    }
                    (kind, other) => {
                        problems.push(format!(
                            "binding `{name}`: node {node} input `{input}` holds {other}, not a {} placeholder",
                            match kind {
                                Kind::Text => "string",
                                Kind::Int | Kind::Float => "number",
                            }
                        ));
                        continue;
                    }
                };
                resolved.push(Target {
                    node: node.clone(),
                    input: input.clone(),
                    float,
                });
            }
            bindings.push((param, resolved));
        }
        let missing: Vec<&str> = pipeline
            .params()
            .iter()
            .filter(|p| !kiln.bindings.contains_key(p.name()))
            .map(|p| p.name())
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "pipeline {template} supplies parameters no binding places: {}",
                missing.join(", ")
            ));
        }

        // References.
        match (&kiln.references, pipeline == Pipeline::Flux2Reference) {
            (None, true) => problems.push("`kiln.references` is missing".to_owned()),
            (Some(_), false) => problems.push(format!(
                "`kiln.references` is only for {}",
                Pipeline::Flux2Reference.name()
            )),
            (None, false) => {}
            (Some(refs), true) => check_references(&graph, refs, &mut problems),
        }

        if !problems.is_empty() {
            return Err(TemplateError::Invalid { template, problems });
        }
        Ok(Template {
            pipeline,
            graph,
            output: kiln.output,
            has_audio: kiln.has_audio,
            stages,
            bindings,
            references: kiln.references,
        })
    }

    pub fn pipeline(&self) -> Pipeline {
        self.pipeline
    }

    /// The unfilled graph, placeholders and all.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
}

fn check_references(graph: &Graph, refs: &ReferencesDecl, problems: &mut Vec<String>) {
    if refs.blocks.len() != images::INPUT_FILES_MAX {
        problems.push(format!(
            "`kiln.references.blocks` has {} blocks; the API takes up to {} references",
            refs.blocks.len(),
            images::INPUT_FILES_MAX
        ));
    }
    for (i, block) in refs.blocks.iter().enumerate() {
        let n = i + 1;
        let (node, input) = &block.image;
        match node_input(graph, node, input) {
            Some(Value::String(_)) => {}
            Some(_) => problems.push(format!(
                "reference block {n}: node {node} input `{input}` is not a file name string"
            )),
            None => problems.push(format!(
                "reference block {n}: node {node} has no input `{input}`"
            )),
        }
        if !block.nodes.contains(node) || !block.nodes.contains(&block.chain) {
            problems.push(format!(
                "reference block {n}: `nodes` must list its image node {node} and chain node {}",
                block.chain
            ));
        }
        for id in &block.nodes {
            if !graph.contains_key(id) {
                problems.push(format!(
                    "reference block {n} names node {id}, which the graph does not have"
                ));
            }
        }
    }
    let (node, input) = &refs.chain_into;
    match node_input(graph, node, input) {
        None => problems.push(format!(
            "`kiln.references.chain_into` names node {node} input `{input}`, which the graph does not have"
        )),
        Some(value) => {
            let last = refs.blocks.last().map(|b| b.chain.as_str());
            if link_source(value) != last {
                problems.push(format!(
                    "`kiln.references.chain_into` node {node} input `{input}` must link to the last block's chain node"
                ));
            }
        }
    }
}
