//! `cargo xtask openapi`: writes `docs/openapi.json` and `docs/llms.txt` from the code
//! (`kiln_shared::openapi`). The edge serves both files as committed (`include_str!`),
//! and the test below fails when either differs from what the code generates.

use std::path::PathBuf;

use anyhow::{Context, Result};
use kiln_tests::workspace_root;

/// The generated files: path under the workspace root, and contents.
pub(crate) fn generated() -> Vec<(PathBuf, String)> {
    vec![
        (
            PathBuf::from("docs/openapi.json"),
            kiln_shared::openapi::document_json(),
        ),
        (
            PathBuf::from("docs/llms.txt"),
            kiln_shared::openapi::llms_txt(),
        ),
    ]
}

pub(crate) fn write() -> Result<()> {
    let root = workspace_root();
    for (path, text) in generated() {
        std::fs::write(root.join(&path), &text)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("kiln: wrote {} ({} bytes)", path.display(), text.len());
    }
    Ok(())
}

/// Every route of the edge's router (`edge/src/api/router.rs`, fn `resolve`) as
/// (method, path with `{}` for each variable segment), read from its source.
#[cfg(test)]
fn router_routes(source: &str) -> Vec<(String, String)> {
    let start = source.find("fn resolve").expect("router.rs has fn resolve");
    let end = source[start..]
        .find("_ => return None")
        .expect("resolve ends with `_ => return None`")
        + start;
    let mut routes = Vec::new();
    let mut rest = &source[start..end];
    // Each arm: `[segments] => (…, &[Methods])`.
    while let Some(open) = rest.find("\n        [") {
        rest = &rest[open + "\n        [".len()..];
        let close = rest.find(']').expect("a pattern closes");
        let path: String = rest[..close]
            .split(',')
            .map(|seg| {
                let seg = seg.trim();
                match seg.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    Some(lit) => format!("/{lit}"),
                    None => "/{}".to_owned(),
                }
            })
            .collect();
        let methods_at = rest.find("&[").expect("an arm lists its methods") + 2;
        let methods_end = rest[methods_at..].find(']').unwrap() + methods_at;
        for m in rest[methods_at..methods_end].split(',') {
            routes.push((m.trim().to_lowercase(), path.clone()));
        }
        rest = &rest[methods_end..];
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_router_is_documented_and_no_other() {
        let source = std::fs::read_to_string(workspace_root().join("edge/src/api/router.rs"))
            .expect("reading the router");
        let mut routes: Vec<(String, String)> = router_routes(&source)
            .into_iter()
            // The origin ↔ edge protocol is signed between Kiln's own machines.
            .filter(|(_, path)| !path.starts_with("/internal/"))
            .collect();
        routes.sort();
        assert!(routes.len() > 30, "read only {} routes", routes.len());
        let doc = kiln_shared::openapi::document();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let generic: String = path
                .split('/')
                .skip(1)
                .map(|seg| {
                    if seg.starts_with('{') {
                        "/{}".to_owned()
                    } else {
                        format!("/{seg}")
                    }
                })
                .collect();
            for method in item.as_object().unwrap().keys() {
                documented.push((method.clone(), generic.clone()));
            }
        }
        documented.sort();
        assert_eq!(
            routes, documented,
            "the router's routes (left) and the document's (right) differ"
        );
    }

    #[test]
    fn committed_documents_are_the_generated_ones() {
        let root = workspace_root();
        let mut stale = Vec::new();
        for (path, text) in generated() {
            let committed = std::fs::read_to_string(root.join(&path)).unwrap_or_default();
            if committed != text {
                stale.push(path.display().to_string());
            }
        }
        assert!(
            stale.is_empty(),
            "{} differ from what the code generates; run `cargo xtask openapi` and commit the result",
            stale.join(" and ")
        );
    }
}
