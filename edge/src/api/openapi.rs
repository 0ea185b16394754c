//! `GET /openapi.json`: the OpenAPI 3.1 document, and `GET /llms.txt`: the same API
//! summarised for language models. Both are generated from the code by
//! `cargo xtask openapi` (`kiln_shared::openapi`, a feature the Worker does not build),
//! kept in `docs/` beside the prose docs, and compiled in so the served copy is always
//! the committed one.

use worker::Response;

use crate::platform::error::EdgeResult;

const DOCUMENT: &str = include_str!("../../../docs/openapi.json");
const LLMS_TXT: &str = include_str!("../../../docs/llms.txt");

pub fn handle() -> EdgeResult<Response> {
    text(DOCUMENT, "application/json")
}

pub fn handle_llms_txt() -> EdgeResult<Response> {
    text(LLMS_TXT, "text/plain; charset=utf-8")
}

fn text(body: &str, content_type: &str) -> EdgeResult<Response> {
    let headers = worker::Headers::new();
    headers.set("content-type", content_type)?;
    Ok(Response::ok(body)?.with_headers(headers))
}
