//! `GET /openapi.json`: the OpenAPI 3.1 document, kept in `docs/openapi.json` beside the
//! prose docs and compiled in so the served copy is always the committed one.

use worker::Response;

use crate::platform::error::EdgeResult;

const DOCUMENT: &str = include_str!("../../../docs/openapi.json");

pub fn handle() -> EdgeResult<Response> {
    let headers = worker::Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::ok(DOCUMENT)?.with_headers(headers))
}
