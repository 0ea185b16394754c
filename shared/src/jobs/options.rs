//! The submission options shared by the generation endpoints: webhooks (`replyUrl`,
//! `replyRef`, `webhook_events`), `response_format` and `pollForResult`.

use serde::{Deserialize, Serialize};

use super::{POLLS_MAX, REPLY_REF_LEN_MAX};
use crate::error::{ApiError, ErrorCode};
use crate::fields::Fields;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    Url,
    B64Json,
}

/// Submission options shared by the generation endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitOptions {
    pub reply_url: Option<String>,
    /// The field the URL came in (`replyUrl` or `webhook_url`), for error messages.
    pub reply_url_param: String,
    pub reply_ref: Option<String>,
    pub response_format: ResponseFormat,
    /// `pollForResult`: wait up to this many 3 s polls before answering.
    pub poll_for_result: Option<u32>,
    /// `webhook_events`: which optional webhook events `replyUrl` gets.
    pub webhook_events: crate::webhooks::EventFilter,
}

impl SubmitOptions {
    pub fn parse(f: &mut Fields, allow_b64: bool) -> Result<Self, ApiError> {
        let (reply_url, reply_url_param) = match f.string_alias(&["replyUrl", "webhook_url"])? {
            None => (None, "replyUrl".to_owned()),
            Some((name, url)) => (Some(check_reply_url(&name, url)?), name),
        };
        let reply_ref = f.string("replyRef")?;
        if let Some(r) = &reply_ref {
            if r.chars().count() > REPLY_REF_LEN_MAX {
                return Err(ApiError::invalid_param(
                    "replyRef",
                    ErrorCode::InvalidValue,
                    format!("`replyRef` must be at most {REPLY_REF_LEN_MAX} characters."),
                ));
            }
        }
        let response_format = match f.string("response_format")?.as_deref() {
            None | Some("url") => ResponseFormat::Url,
            Some("b64_json") if allow_b64 => ResponseFormat::B64Json,
            Some(other) => {
                return Err(ApiError::invalid_param(
                    "response_format",
                    ErrorCode::InvalidValue,
                    format!("`response_format` must be \"url\" or \"b64_json\" (got {other:?})."),
                ))
            }
        };
        let poll_for_result = match f.int("pollForResult")? {
            None => None,
            Some(n) if (1..=POLLS_MAX).contains(&n) => Some(n as u32),
            Some(n) => {
                return Err(ApiError::invalid_param(
                    "pollForResult",
                    ErrorCode::OutOfRange,
                    format!("`pollForResult` must be between 1 and {POLLS_MAX} (got {n})."),
                ))
            }
        };
        let webhook_events = match f.string_list("webhook_events")? {
            None => crate::webhooks::EventFilter::default(),
            Some(values) => crate::webhooks::parse_event_filter(&values).map_err(|m| {
                ApiError::invalid_param("webhook_events", ErrorCode::InvalidValue, m)
            })?,
        };
        Ok(Self {
            reply_url,
            reply_url_param,
            reply_ref,
            response_format,
            poll_for_result,
            webhook_events,
        })
    }
}

/// The shape of a webhook URL ([`crate::webhooks::check_shape`]); the edge checks the
/// destination itself against its allow-list at submission and at every attempt.
fn check_reply_url(param: &str, url: String) -> Result<String, ApiError> {
    crate::webhooks::check_shape(&url).map_err(|why| {
        ApiError::invalid_param(param, ErrorCode::InvalidValue, format!("`{param}`: {why}"))
    })?;
    Ok(url)
}
