//! `POST /v1/images/edits`: OpenAI's image-edit call, so the official `openai` clients'
//! `images.edit` works against Kiln. A multipart body with the reference image(s) in
//! `image` or `image[]` (1–4, one of the two names), `prompt`, and optionally `size`, `n`, `response_format`
//! and `model` (`flux2-dev`); it runs FLUX.2 img2img with those references. Each image
//! is stored as one of the caller's uploads (deduplicated), then the request goes
//! through the image endpoint's rules, price (`n` × $0.02), hold and modes, and answers
//! in the OpenAI Images shape.

use kiln_shared::files::probe;
use kiln_shared::images::{ImageRequest, INPUT_FILES_MAX};
use kiln_shared::{ApiError, ErrorCode};
use serde_json::{Map, Value};
use worker::{Env, Request, Response};

use super::files::{read_multipart, store_upload, UPLOAD_BYTES_MAX};
use crate::api::auth::Caller;
use crate::platform::error::EdgeResult;

/// Text fields this endpoint reads; anything else is refused by name.
const TEXT_FIELDS: &[&str] = &["prompt", "size", "n", "response_format", "model"];
/// Fields OpenAI clients may send that carry no instruction for Kiln.
const IGNORED_FIELDS: &[&str] = &["user"];

/// `POST /v1/images/edits`.
pub async fn handle_edit(mut req: Request, env: &Env, caller: &Caller) -> EdgeResult<Response> {
    let body_max = UPLOAD_BYTES_MAX * INPUT_FILES_MAX as u64;
    let parts = read_multipart(
        &mut req,
        body_max,
        "Send the edit as multipart/form-data: the image in `image` (or `image[]`) and the `prompt`.",
    )
    .await?;
    let mut images = Vec::new();
    let mut image_names: Vec<String> = Vec::new();
    let mut fields = Map::new();
    for part in parts {
        match part.name.as_str() {
            "image" | "image[]" => {
                if !image_names.contains(&part.name) {
                    image_names.push(part.name.clone());
                }
                images.push(part)
            }
            name if TEXT_FIELDS.contains(&name) => {
                let text = String::from_utf8(part.bytes).map_err(|_| {
                    ApiError::invalid_param(
                        name,
                        ErrorCode::InvalidValue,
                        format!("`{name}` must be text."),
                    )
                })?;
                // `size: auto` is OpenAI's default: the references decide nothing here.
                if name == "size" && text == "auto" {
                    continue;
                }
                fields.insert(name.to_owned(), Value::String(text));
            }
            name if IGNORED_FIELDS.contains(&name) => {}
            name => {
                return Err(ApiError::invalid_param(
                    name,
                    ErrorCode::UnknownParameter,
                    format!(
                        "`{name}` is not a field of this endpoint (a `mask` is not supported)."
                    ),
                )
                .into())
            }
        }
    }
    if image_names.len() > 1 {
        return Err(ApiError::invalid_param(
            "image",
            ErrorCode::InvalidValue,
            "Send the reference images in `image` or in `image[]`, not both.",
        )
        .into());
    }
    if images.is_empty() || images.len() > INPUT_FILES_MAX {
        return Err(ApiError::invalid_param(
            "image",
            if images.is_empty() {
                ErrorCode::MissingParameter
            } else {
                ErrorCode::InvalidValue
            },
            format!("Send 1–{INPUT_FILES_MAX} reference images in `image` (or `image[]`)."),
        )
        .into());
    }
    // Bad input changes nothing: the request is checked (with stand-in names for the
    // images) and every image read before the first one is stored.
    let stand_ins = (0..images.len())
        .map(|i| Value::String(format!("up_check{i}.png")))
        .collect();
    let mut checked = fields.clone();
    checked.insert("input_files".into(), Value::Array(stand_ins));
    ImageRequest::parse(Value::Object(checked).to_string().as_bytes())?;
    let probes = images
        .iter()
        .map(|image| {
            probe(&image.bytes).map_err(|e| {
                if e.param().is_none() {
                    e.with_param("image")
                } else {
                    e
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut input_files = Vec::with_capacity(images.len());
    for (image, probe) in images.into_iter().zip(probes) {
        let recorded = store_upload(env, caller, image.bytes, probe, image.file_name).await?;
        input_files.push(Value::String(recorded.file.filename));
    }
    fields.insert("input_files".into(), Value::Array(input_files));
    let body = Value::Object(fields).to_string().into_bytes();
    crate::api::images::image(req, body, env, caller, false).await
}
