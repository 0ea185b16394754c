//! The BFL-style façade's request translation (`docs/api.md`, "BFL-compatible API"): a
//! body written for Black Forest Labs' `POST /flux/v1/{model}` becomes a Kiln image
//! request.
//! The edge serves the façade; the rules live here so they are tested natively.

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};

/// BFL fields with a Kiln name of their own.
const RENAMED: &[(&str, &str)] = &[("guidance", "cfg")];

/// Rewrites a BFL body into a Kiln image request for `model`. BFL options Kiln cannot
/// honour are refused by name rather than silently ignored.
pub fn translate(body: &[u8], model: &str) -> Result<Vec<u8>, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(ApiError::invalid_json)?;
    let Value::Object(mut m) = v else {
        return Err(ApiError::invalid_json("the body must be a JSON object"));
    };
    if m.contains_key("model") {
        return Err(ApiError::invalid_param(
            "model",
            ErrorCode::UnknownParameter,
            "The model is part of the path here: POST /flux/v1/{model}.",
        ));
    }
    // No-code tools send empty and null fields, and booleans as strings: read those
    // as "not set" / the boolean, as the generation endpoints do.
    match m.remove("output_format") {
        None | Some(Value::Null) => {}
        Some(Value::String(f)) if f.is_empty() || f.eq_ignore_ascii_case("png") => {}
        Some(other) => {
            return Err(ApiError::invalid_param(
                "output_format",
                ErrorCode::InvalidValue,
                format!("Only \"png\" is produced (got {other})."),
            ))
        }
    }
    match m.remove("prompt_upsampling") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::String(v)) if v.is_empty() || v.eq_ignore_ascii_case("false") => {}
        Some(_) => {
            return Err(ApiError::invalid_param(
                "prompt_upsampling",
                ErrorCode::InvalidValue,
                "Prompt upsampling is not offered; send the prompt you want rendered.",
            ))
        }
    }
    if m.remove("image_prompt")
        .is_some_and(|v| !v.is_null() && v != Value::String(String::new()))
    {
        return Err(ApiError::invalid_param(
            "image_prompt",
            ErrorCode::InvalidValue,
            "Image prompts (Redux) are not available.",
        ));
    }
    if m.contains_key("guidance") && m.contains_key("cfg") {
        return Err(ApiError::invalid_param(
            "guidance",
            ErrorCode::InvalidValue,
            "Send `guidance` (BFL) or `cfg` (Kiln), not both.",
        ));
    }
    let mut out = Map::new();
    for (k, v) in m {
        let name = RENAMED
            .iter()
            .find(|(from, _)| *from == k)
            .map_or(k.as_str(), |(_, to)| to);
        out.insert(name.to_owned(), v);
    }
    out.insert("model".into(), Value::String(model.to_owned()));
    Ok(Value::Object(out).to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::ImageRequest;

    #[test]
    fn bfl_bodies_become_image_requests() {
        let out = translate(
            br#"{"prompt":"a fox","guidance":4,"output_format":"png","prompt_upsampling":"false"}"#,
            "flux2-dev",
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["cfg"], 4);
        assert_eq!(v["model"], "flux2-dev");
        assert!(v.get("guidance").is_none() && v.get("output_format").is_none());
        for (body, param) in [
            (r#"{"prompt":"x","model":"flux2-dev"}"#, "model"),
            (r#"{"prompt":"x","output_format":"jpeg"}"#, "output_format"),
            (
                r#"{"prompt":"x","prompt_upsampling":true}"#,
                "prompt_upsampling",
            ),
            (r#"{"prompt":"x","image_prompt":"aGk="}"#, "image_prompt"),
            (r#"{"prompt":"x","guidance":3,"cfg":3}"#, "guidance"),
        ] {
            let e = translate(body.as_bytes(), "flux2-dev").unwrap_err();
            assert_eq!((e.status(), e.param()), (400, Some(param)), "{body}");
        }
        for body in ["[]", "nope", "\"x\""] {
            let e = translate(body.as_bytes(), "flux2-dev").unwrap_err();
            assert_eq!(e.code().as_str(), "invalid_json", "{body}");
        }
    }

    proptest::proptest! {
        /// Whatever the body, the translation is a JSON object the image rules then
        /// read (and may refuse, by name), or a named 400 itself.
        #[test]
        fn any_bfl_body_translates_or_is_refused_by_name(
            body in crate::proptest_json::object_body(&["prompt", "guidance", "cfg", "width", "height", "seed", "output_format", "prompt_upsampling", "image_prompt", "model", "steps", "webhook_url"]),
            model in proptest::prelude::any::<String>(),
        ) {
            match translate(&body, &model) {
                Ok(out) => {
                    let v: Value = serde_json::from_slice(&out).unwrap();
                    proptest::prop_assert_eq!(v["model"].as_str(), Some(model.as_str()));
                    if let Err(e) = ImageRequest::parse(&out) {
                        crate::proptest_json::assert_named_400(&e)?;
                    }
                }
                Err(e) => proptest::prop_assert_eq!(e.status(), 400),
            }
        }
    }
}
