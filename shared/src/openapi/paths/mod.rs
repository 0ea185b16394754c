//! Every public operation, one function each, grouped by tag.

mod accounts;
mod admin;
mod billing;
mod catalog;
mod compat;
mod dashboard;
mod files;
mod generation;
mod jobs;
mod keys;
mod service;
mod usage;
mod webhooks;

use super::op::Op;

/// Every operation, in the order the document lists them.
pub(crate) fn operations() -> Vec<Op> {
    vec![
        accounts::create_account(),
        accounts::get_credits(),
        keys::list_keys(),
        keys::create_key(),
        keys::revoke_key(),
        keys::reveal_key(),
        usage::list_usage(),
        generation::create_image(),
        generation::create_video(),
        jobs::get_job(),
        jobs::cancel_job(),
        jobs::list_active_jobs(),
        jobs::stream_job(),
        jobs::stream_user_jobs(),
        webhooks::list_job_deliveries(),
        webhooks::replay_job_webhook(),
        webhooks::get_webhook_secret(),
        webhooks::rotate_webhook_secret(),
        compat::bfl_submit(),
        compat::bfl_get_result(),
        jobs::estimate_job(),
        files::get_output(),
        files::head_output(),
        billing::stripe_webhook(),
        admin::admin_adjust_credits(),
        admin::admin_ledger_bench(),
        catalog::list_models(),
        catalog::get_queue_status(),
        service::get_health(),
        service::get_health_durable_object(),
        service::get_open_api(),
        service::get_llms_txt(),
        files::upload_file(),
        files::list_uploads(),
        files::list_generations(),
        files::delete_upload(),
        files::delete_generation(),
        admin::sweep_files(),
        generation::edit_image(),
        dashboard::open_session(),
        dashboard::get_session(),
        dashboard::close_session(),
        dashboard::create_checkout(),
    ]
}

pub(crate) use files::upload_form;

mod prelude {
    pub(crate) use super::super::components::{internal_error, limit_param, small_body_responses};
    pub(crate) use super::super::op::{
        err, header_refs, json_body, json_example, overlay, param_refs, schema_ref, Auth::*,
        Method::*, Op,
    };
    pub(crate) use super::generation::{submission_responses, SUBMITTED_HEADERS};
    pub(crate) use super::jobs::job_id_param;
    pub(crate) use super::upload_form;
    pub(crate) use crate::ErrorCode::*;
}
