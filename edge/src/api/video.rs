//! `POST /v1/video/generations` (LTX-2.3): validate with kiln-shared, then the submit
//! flow ([`super::submit`]).

use kiln_shared::jobs::JobParams;
use kiln_shared::video::VideoRequest;
use worker::{Env, Request, Response};

use super::submit::{random_seed, submit, Submission};
use crate::api::auth::Caller;
use crate::platform::error::EdgeResult;

/// `POST /v1/video/generations`.
pub async fn handle_video(
    req: Request,
    body: Vec<u8>,
    env: &Env,
    caller: &Caller,
) -> EdgeResult<Response> {
    let video = VideoRequest::parse(&body)?;
    let s = Submission {
        model_id: video.model.clone(),
        workflow: video.workflow(),
        params: JobParams::Video(video.params(random_seed())),
        input_files: video.input_files.clone(),
        price: video.price(),
        options: video.options,
    };
    submit(req, env, caller, s, false).await
}
