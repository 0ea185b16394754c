//! `POST /v1/images/generations` (FLUX.2-dev): validate with kiln-shared, then the
//! submit flow ([`super::submit`]).

use kiln_shared::images::ImageRequest;
use kiln_shared::jobs::JobParams;
use worker::{Env, Request, Response};

use super::submit::{random_seed, submit, Submission};
use crate::api::auth::Caller;
use crate::platform::error::EdgeResult;

/// `POST /v1/images/generations`.
pub async fn handle_image(
    req: Request,
    body: Vec<u8>,
    env: &Env,
    caller: &Caller,
) -> EdgeResult<Response> {
    image(req, body, env, caller, false).await
}

/// An image job; with `force_async`, answered like `?async_mode=true` whatever the
/// request says (the BFL-style façade).
pub async fn image(
    req: Request,
    body: Vec<u8>,
    env: &Env,
    caller: &Caller,
    force_async: bool,
) -> EdgeResult<Response> {
    let image = ImageRequest::parse(&body)?;
    let s = Submission {
        model_id: image.model.clone(),
        workflow: image.workflow(),
        params: JobParams::Image(image.params(random_seed())),
        input_files: image.input_files.clone(),
        price: image.price(),
        options: image.options,
    };
    submit(req, env, caller, s, force_async).await
}
