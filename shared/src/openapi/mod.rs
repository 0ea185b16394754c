//! The OpenAPI 3.1 document of Kiln's public API (`docs/openapi.json`, served at
//! `/openapi.json`) and `docs/llms.txt` (served at `/llms.txt`), built from the code:
//!
//! - schemas of the wire types here derive `utoipa::ToSchema` ([`derived`]);
//! - request bodies that are parsed by hand ([`crate::fields::Fields`]) have their schema
//!   built from the parser's own constants ([`requests`]), and a test parses each
//!   schema's example with the real parser;
//! - every error answer lists the [`ErrorCode`](crate::ErrorCode)s it can carry, and the
//!   `Error` schema's `code` is the enum of them all;
//! - the rules every keyed route shares (security, `X-RateLimit-*`, 401, 429) and the
//!   `?key=` of the event streams are applied in one place ([`op`]).
//!
//! One function per operation and per schema, so an edit to one is an edit to one
//! function:
//!
//! - operation `createImage` → `paths/generation.rs`, `fn create_image` (the file is the
//!   operation's first tag, the function its `operationId` in snake case), listed in
//!   order in `paths/mod.rs`. Its JSON is the Operation Object as it appears in the
//!   document, minus what [`op::Op::finish`] adds: `security`, and on keyed routes 401,
//!   429, the `X-RateLimit-*` headers and (streams) the `key` parameter. An error answer
//!   is `err(&[codes…], json!({"description": …}))`, which adds the narrowed `Error` body.
//!   The fragments operations repeat are built by [`op`]'s helpers (`json_body`,
//!   `json_example`, `schema_ref`, `header_refs`, `param_refs`); the answers a family of
//!   operations shares, by a function in its file (`submission_responses` in
//!   `paths/generation.rs`, `output_responses` in `paths/files.rs`) or in
//!   `components.rs` when several files share them (`small_body_responses`,
//!   `internal_error`), over which an operation lays its own answers with `overlay`;
//! - schema `Job` → `schemas.rs`, `fn job`; request bodies → `requests.rs`; derived
//!   wire types → `derived.rs`; stream events → `streams.rs`; code-made examples →
//!   `examples.rs`;
//! - shared responses, headers, parameters, security schemes → `components.rs`; the
//!   top-level `webhooks` → `webhooks.rs`; `info`, tags → here.
//!
//! The written file has its keys sorted below the top level (stable whatever the build's
//! serde_json features), so compare it with another version as JSON, not as text.
//! `cargo xtask openapi` writes `docs/openapi.json` and `docs/llms.txt`; a test fails
//! when the committed ones differ.
//!
//! Built only with the `openapi` feature, so the edge's wasm does not carry it.

mod components;
mod derived;
mod examples;
mod llms;
mod op;
mod paths;
mod requests;
mod schemas;
mod streams;
mod webhooks;

#[cfg(test)]
mod tests;

use serde_json::{json, Map, Value};

pub use llms::llms_txt;

/// [`crate::ids::Filename`]: `[a-z0-9_-]+` then `.` and a 1–5 character extension.
pub(crate) const FILENAME_PATTERN: &str = "^[a-z0-9_-]+\\.[a-z0-9]{1,5}$";
/// [`crate::ids::JobId`]: `job_` and 26 lowercase Crockford base32 characters.
pub(crate) const JOB_ID_PATTERN: &str = "^job_[0-9a-hjkmnp-tv-z]{26}$";

// Character classes are spelled out (controls are Unicode Cc, U+0000–001F and
// U+007F–009F; whitespace is Unicode White_Space), never `\s`, which ECMA 262 and the
// tools that read the document understand differently.

/// A label: no control characters ([`crate::keys::KeyCreate::parse`]).
pub(crate) const NO_CONTROLS_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";
/// A prompt ([`crate::fields`]' prompt check): no control characters but `\t`, `\n`,
/// `\r`, and not only whitespace.
pub(crate) const PROMPT_PATTERN: &str = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$";
/// `replyUrl`'s shape as far as a pattern can tell ([`crate::webhooks::check_shape`]):
/// `http(s)://`, a host without `@` (no credentials), no whitespace or controls.
pub(crate) const REPLY_URL_PATTERN: &str = "^[hH][tT][tT][pP][sS]?://[^/?#@\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+([/?#][^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*)?$";

/// The document's version (`info.version`).
pub const VERSION: &str = "0.5.0";

/// The document as JSON, keys in a stable (sorted) order.
pub fn document() -> Value {
    let responses: Map<String, Value> = components::responses()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let mut paths = Map::new();
    for op in paths::operations() {
        let item = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        let method = op.method.as_str();
        assert!(
            item.get(method).is_none(),
            "{} {} declared twice",
            method,
            op.path
        );
        item[method] = op.finish(&responses);
    }
    let mut schemas = Map::new();
    for (name, schema) in schemas::schemas() {
        assert!(
            schemas.insert(name.to_owned(), schema).is_none(),
            "schema {name} declared twice"
        );
    }
    let doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Kiln API",
            "version": VERSION,
            "description": DESCRIPTION,
        },
        "servers": [
            {"url": "http://127.0.0.1:8787", "description": "Local stack (`cargo xtask dev`)"}
        ],
        "security": [{"bearerAuth": []}],
        "tags": TAGS
            .iter()
            .map(|(name, description)| match description {
                Some(d) => json!({"name": name, "description": d}),
                None => json!({"name": name}),
            })
            .collect::<Vec<_>>(),
        "paths": paths,
        "webhooks": webhooks::webhooks(),
        "components": {
            "securitySchemes": pairs(components::security_schemes()),
            "schemas": schemas,
            "responses": responses,
            "headers": pairs(components::headers()),
            "parameters": pairs(components::parameters()),
        },
    });
    canonical(doc)
}

/// The document's top-level fields in the order people read them.
const TOP_LEVEL: [&str; 8] = [
    "openapi",
    "info",
    "servers",
    "security",
    "tags",
    "paths",
    "webhooks",
    "components",
];

/// `docs/openapi.json`: pretty, the top-level fields in [`TOP_LEVEL`] order and every
/// other object's keys sorted, one trailing newline.
pub fn document_json() -> String {
    let doc = document();
    let fields = doc.as_object().expect("the document is an object");
    assert_eq!(
        fields.len(),
        TOP_LEVEL.len(),
        "a top-level field without a place"
    );
    let mut out = String::from("{\n");
    for (i, name) in TOP_LEVEL.iter().enumerate() {
        let value = serde_json::to_string_pretty(&fields[*name]).expect("JSON serializes");
        // JSON strings hold no raw line breaks, so this indents lines, not text.
        let value = value.replace('\n', "\n  ");
        let comma = if i + 1 < TOP_LEVEL.len() { "," } else { "" };
        out.push_str(&format!("  \"{name}\": {value}{comma}\n"));
    }
    out.push_str("}\n");
    out
}

pub(crate) const DESCRIPTION: &str = "Kiln's public API as implemented. JSON in and out; errors in the OpenAI shape (`Error`). Unknown routes answer 404 `unknown_route` and known routes with another method 405 `method_not_allowed` (with an `Allow` header listing the path's methods), both in that shape. Money is shown as `*_usd` decimal numbers; times are RFC 3339 UTC. Routes that take an API key (bearerAuth) are rate-limited per key (token bucket, RATE_LIMIT_PER_MIN per minute, default 600, lowered per key by `rate_limit_per_min`); every response after a successful key check, errors included, carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`, and a key over its limit gets 429 `rate_limited` with `Retry-After`. Generation (images and video) is queued: a job waits in a fair queue until a GPU origin has a free slot; follow it by polling `GET /v1/jobs/{id}` or with the server-sent-event streams, which also accept the key as `?key=`. A job submitted with a `replyUrl` (alias `webhook_url`) gets its events POSTed there, signed per Standard Webhooks with the account's `whsec_` secret (see the top-level `webhooks` and the `WebhookPayload` schema); `GET /v1/jobs/{id}/deliveries` lists every attempt and `POST /v1/jobs/{id}/webhook` replays the terminal event. `POST /flux/v1/{model}` and `GET /flux/v1/get_result` are a BFL-style façade over the same image jobs. Prose docs: docs/api.md (section Webhooks) and docs/integrations/README.md; a summary for language models at `/llms.txt`.";

/// The tags, in the order the document lists them, with their descriptions.
pub(crate) const TAGS: &[(&str, Option<&str>)] = &[
    ("accounts", Some("Sign-up: an account and its first key.")),
    ("keys", Some("The account's API keys.")),
    ("usage", Some("Balance and the ledger.")),
    (
        "generation",
        Some("Images and video: each request is a queued job."),
    ),
    ("jobs", Some("Follow, list and cancel jobs; event streams.")),
    (
        "webhooks",
        Some("Webhook signing secret, delivery log and replay."),
    ),
    (
        "compat",
        Some("BFL-style façade (`/flux/v1`) over the image endpoint."),
    ),
    (
        "files",
        Some("Uploads and outputs: listing, deleting, downloading."),
    ),
    ("billing", Some("Stripe top-ups.")),
    (
        "admin",
        Some("Operator routes (ADMIN_TOKEN); not for API clients."),
    ),
    (
        "catalog",
        Some("Models, the queue, estimates: no key needed."),
    ),
    ("service", Some("Health and this document.")),
];

fn pairs(list: Vec<(&'static str, Value)>) -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in list {
        assert!(map.insert(k.to_owned(), v).is_none(), "{k} declared twice");
    }
    map
}

/// The same value with every object's keys sorted, whatever serde_json's map type is,
/// so the written file never depends on build features or declaration order.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}
