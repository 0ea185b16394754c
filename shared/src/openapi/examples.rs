//! Examples made by the code itself: jobs built with [`JobState`] and its events and
//! shown with [`JobState::to_view`], keys made with [`ApiKey::generate`], the catalog of
//! [`crate::catalog::models`]. The tests also validate every job view here against the
//! document's schemas, so an example cannot show a shape the code does not make.

use serde_json::{json, Value};

use crate::ids::{AccountId, Filename, JobId};
use crate::images::ImageParams;
use crate::jobs::{FailureCode, JobParams, JobState, NewJob};
use crate::keys::{ApiKey, KeyKind};
use crate::origin::{EventEnvelope, OriginEvent, OutputMeta};
use crate::time::rfc3339;
use crate::video::VideoParams;
use crate::MicroUsd;

/// The edge's public origin in examples.
pub(crate) const BASE_URL: &str = "https://api.kiln.example";
/// 2026-04-03T12:35:00Z, when the examples' jobs are submitted.
const T0_MS: i64 = 1_775_219_700_000;
/// How long outputs are kept in the examples.
const RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

pub(crate) fn account_id() -> AccountId {
    AccountId::generate([2; 10])
}

pub(crate) fn trial_key() -> ApiKey {
    ApiKey::generate(KeyKind::Trial, &account_id(), [5; 20])
}

pub(crate) fn at(offset_ms: i64) -> String {
    rfc3339(T0_MS + offset_ms)
}

fn new_job(params: JobParams, model: &str, workflow: &str, random: u8) -> JobState {
    JobState::new(
        NewJob {
            id: JobId::generate(T0_MS as u64, [random; 10]),
            account_id: account_id(),
            test_mode: false,
            model_id: model.into(),
            workflow: workflow.into(),
            params: params.clone(),
            input_files: vec![],
            cost: match &params {
                JobParams::Image(_) => crate::images::PRICE_PER_IMAGE,
                JobParams::Video(p) => crate::video::price(p.num_frames),
            },
            reply_url: None,
            reply_ref: Some("order-42".into()),
            base_url: BASE_URL.into(),
            webhook_progress: false,
            webhook_started: true,
        },
        T0_MS,
    )
}

/// A queued FLUX.2-dev job (txt2img, 1024×768).
pub(crate) fn image_job() -> JobState {
    new_job(
        JobParams::Image(ImageParams {
            prompt: "a kiln at dawn".into(),
            width: 1024,
            height: 768,
            steps: crate::images::STEPS_DEFAULT as u32,
            cfg: crate::images::CFG_DEFAULT,
            seed: 1_234_567,
            n: 1,
        }),
        crate::images::DEFAULT_MODEL,
        "flux2-dev:txt2img",
        7,
    )
}

/// A queued LTX-2.3 job (two stages, 121 frames at 960×544).
pub(crate) fn video_job() -> JobState {
    new_job(
        JobParams::Video(VideoParams {
            prompt: "waves at dusk".into(),
            negative_prompt: String::new(),
            width: crate::video::SIZE_DEFAULT.0,
            height: crate::video::SIZE_DEFAULT.1,
            num_frames: crate::video::FRAMES_DEFAULT as u32,
            fps: crate::video::FPS,
            seed: 42,
            two_stage: true,
        }),
        crate::video::MODEL_FULL,
        "ltx-2.3:t2v",
        9,
    )
}

fn apply(job: &mut JobState, seq: u32, event: OriginEvent) {
    let env = EventEnvelope {
        origin_id: "origin-1".into(),
        attempt: job.attempt,
        seq,
        event,
    };
    job.apply(&env, T0_MS + 2_000 * i64::from(seq))
        .expect("the example's events apply in order");
}

/// The job through its statuses, as `GET /v1/jobs/{id}` and the streams show it:
/// queued, loading_model, processing, completed, and (from processing) failed and
/// cancelled.
pub(crate) fn lifecycle(mut job: JobState) -> Vec<Value> {
    let mut views = vec![job.to_view(BASE_URL, Some(1))];
    let model_id = job.model_id.clone();
    apply(&mut job, 1, OriginEvent::LoadingModel { model_id });
    views.push(job.to_view(BASE_URL, None));
    let total_steps = job.params.total_steps();
    let (stage, stage_label) = match &job.params {
        JobParams::Image(_) => ("sampling".to_owned(), "Sampling".to_owned()),
        JobParams::Video(p) => (p.stages()[0].name.to_owned(), p.stage_label(0)),
    };
    apply(
        &mut job,
        2,
        OriginEvent::Processing {
            step: 1,
            total_steps,
            stage,
            stage_label,
        },
    );
    views.push(job.to_view(BASE_URL, None));
    let mut failed = job.clone();
    let mut cancelled = job.clone();
    let output = match &job.params {
        JobParams::Image(p) => OutputMeta {
            filename: Filename::output(&job.id, 0, "png"),
            content_type: "image/png".into(),
            width: p.width,
            height: p.height,
            duration_s: None,
            has_audio: None,
            size_bytes: 1_482_113,
            expires_at_ms: None,
        },
        JobParams::Video(p) => OutputMeta {
            filename: Filename::output(&job.id, 0, "mp4"),
            content_type: "video/mp4".into(),
            width: p.output_size().0,
            height: p.output_size().1,
            duration_s: Some(p.duration_s()),
            has_audio: Some(true),
            size_bytes: 9_731_002,
            expires_at_ms: None,
        },
    };
    apply(
        &mut job,
        3,
        OriginEvent::Completed {
            outputs: vec![output],
            engine: "sim".into(),
            simulated: true,
        },
    );
    job.set_expiry(RETENTION_MS);
    views.push(job.to_view(BASE_URL, None));
    failed.fail(
        FailureCode::OriginLost,
        "The GPU running the job stopped answering.",
        T0_MS + 20_000,
    );
    views.push(failed.to_view(BASE_URL, None));
    cancelled.cancel(T0_MS + 20_000);
    views.push(cancelled.to_view(BASE_URL, None));
    views
}

/// Every view of both example jobs.
#[cfg(test)]
pub(crate) fn job_views() -> Vec<Value> {
    let mut all = lifecycle(image_job());
    all.extend(lifecycle(video_job()));
    all
}

/// The completed image job.
pub(crate) fn completed_image_job() -> Value {
    lifecycle(image_job()).swap_remove(3)
}

/// The completed video job.
pub(crate) fn completed_video_job() -> Value {
    lifecycle(video_job()).swap_remove(3)
}

pub(crate) fn queued_image_job() -> Value {
    lifecycle(image_job()).swap_remove(0)
}

/// `POST /v1/accounts`'s answer.
pub(crate) fn account_created() -> Value {
    let key = trial_key();
    json!({
        "account_id": account_id(),
        "email": "you@example.com",
        "is_trial": true,
        "balance_usd": crate::accounts::TRIAL_GRANT.to_usd_json(),
        "api_key": key.reveal(),
        "key": {"id": "key_8d2k4m6p9r1t3v5x", "label": "default", "prefix": key.display_prefix()},
    })
}

/// `GET /v1/credits`'s answer after the example image job's hold.
pub(crate) fn credits() -> Value {
    let held = crate::images::PRICE_PER_IMAGE;
    let balance = crate::accounts::TRIAL_GRANT;
    json!({
        "account_id": account_id(),
        "balance_usd": balance.to_usd_json(),
        "held_usd": held.to_usd_json(),
        "available_usd": MicroUsd::from_micros(balance.micros() - held.micros()).to_usd_json(),
        "is_trial": true,
        "last_used_at": at(0),
    })
}
