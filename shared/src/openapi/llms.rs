//! `docs/llms.txt`, served at `/llms.txt` (<https://llmstxt.org>): what Kiln is, auth,
//! a first request and every endpoint, for language models. Built from the OpenAPI
//! document: the summaries, tags, security schemes and examples are the document's.

use std::fmt::Write;

use serde_json::Value;

use super::op::Auth;

/// What Kiln is, in a paragraph (the document's `info.description` says how it behaves).
const SUMMARY: &str = "Kiln is an HTTP API for generative media: images with FLUX.2-dev and video with LTX-2.3, rendered on GPUs. Every generation is a job in a fair queue; a request can wait for the result, or answer at once and let you poll, follow a server-sent-event stream, or receive signed webhooks. JSON in and out, errors in the OpenAI shape, prepaid credits in USD.";

/// The text of `/llms.txt`.
pub fn llms_txt() -> String {
    let doc = super::document();
    let info = &doc["info"];
    let server = doc["servers"][0]["url"].as_str().unwrap_or_default();
    let schemas = &doc["components"]["schemas"];
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# {}\n", info["title"].as_str().unwrap_or_default());
    let _ = writeln!(w, "> {SUMMARY}\n");
    let _ = writeln!(w, "{}\n", info["description"].as_str().unwrap_or_default());
    let _ = writeln!(
        w,
        "The OpenAPI {} document is at `/openapi.json` (version {}); this file is generated from it.\n",
        doc["openapi"].as_str().unwrap_or_default(),
        info["version"].as_str().unwrap_or_default()
    );

    let _ = writeln!(w, "## Auth\n");
    let schemes = &doc["components"]["securitySchemes"];
    for (name, intro) in [
        ("bearerAuth", "API key"),
        ("queryKey", "API key in the query"),
    ] {
        let _ = writeln!(
            w,
            "- {intro}: {}",
            schemes[name]["description"].as_str().unwrap_or_default()
        );
    }
    let _ = writeln!(
        w,
        "- A key comes with a new account: `POST /v1/accounts` (no key needed) answers with the account's first key (`api_key`), shown once.\n"
    );

    let _ = writeln!(w, "## A first request\n");
    let account = compact(&schemas["AccountRequest"]["example"]);
    let image = compact(&schemas["ImageGenerationRequest"]["example"]);
    let _ = writeln!(
        w,
        "```sh\nKILN_URL={server}   # or your deployment's URL\n# 1. An account and its first key (shown once):\ncurl -s \"$KILN_URL/v1/accounts\" -H 'Content-Type: application/json' -d '{account}'\n# 2. An image, waiting for the result (OpenAI Images shape; `data[0].url` is the PNG):\ncurl -s \"$KILN_URL/v1/images/generations\" -H \"Authorization: Bearer $KILN_API_KEY\" -H 'Content-Type: application/json' -d '{image}'\n# 3. Or queue it (202 with `job_id`) and follow the job:\ncurl -s \"$KILN_URL/v1/images/generations?async_mode=true\" -H \"Authorization: Bearer $KILN_API_KEY\" -H 'Content-Type: application/json' -d '{image}'\ncurl -N \"$KILN_URL/v1/jobs/<job_id>/stream?key=$KILN_API_KEY\"\n```\n"
    );

    let _ = writeln!(w, "## Endpoints\n");
    let ops = super::paths::operations();
    for tag in &doc["tags"].as_array().cloned().unwrap_or_default() {
        let name = tag["name"].as_str().unwrap_or_default();
        let in_tag: Vec<_> = ops
            .iter()
            .filter(|op| op.operation["tags"][0] == name)
            .collect();
        if in_tag.is_empty() {
            continue;
        }
        let _ = write!(w, "### {name}\n\n");
        if let Some(d) = tag["description"].as_str() {
            let _ = write!(w, "{d}\n\n");
        }
        for op in in_tag {
            let summary = doc["paths"][op.path][op.method.as_str()]["summary"]
                .as_str()
                .unwrap_or_default();
            let auth = match op.auth {
                Auth::Public => " (no key)",
                Auth::Key => "",
                Auth::KeyOrQuery => " (key as header or `?key=`)",
                Auth::Admin => " (operator token)",
                Auth::Stripe => " (Stripe signature)",
            };
            let _ = writeln!(
                w,
                "- `{} {}`: {summary}{auth}",
                op.method.as_str().to_uppercase(),
                op.path
            );
        }
        let _ = writeln!(w);
    }

    let _ = writeln!(w, "## Errors\n");
    let _ = writeln!(
        w,
        "{}\n\nExample:\n\n```json\n{}\n```",
        schemas["Error"]["description"].as_str().unwrap_or_default(),
        serde_json::to_string_pretty(&schemas["Error"]["example"]).unwrap_or_default()
    );
    out
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
