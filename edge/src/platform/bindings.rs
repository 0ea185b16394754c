//! One typed client per Durable Object binding. Each binding's name (as in
//! `wrangler.toml`) and each object's naming rule appear here and nowhere else.

use kiln_shared::ids::{AccountId, JobId};
use worker::Env;

use crate::durable::account::AccountDo;
use crate::durable::dispatcher::DispatcherDo;
use crate::durable::email::EmailDo;
use crate::durable::job::JobDo;
use crate::durable::probe::ProbeDo;
use crate::durable::user_stream::UserStreamDo;
use crate::platform::error::EdgeResult;
use crate::platform::rpc::Client;

/// The one origin pool today; its Dispatcher DO is named after it.
pub const POOL: &str = "default";

fn client<O>(env: &Env, binding: &str, name: &str) -> EdgeResult<Client<O>> {
    let stub = env
        .durable_object(binding)?
        .id_from_name(name)?
        .get_stub()?;
    Ok(Client::new(stub))
}

/// The account's Account DO (binding `ACCOUNTS`), named by the account id.
pub fn account(env: &Env, id: &AccountId) -> EdgeResult<Client<AccountDo>> {
    client(env, "ACCOUNTS", id.as_str())
}

/// The job's Job DO (binding `JOBS`), named by the job id.
pub fn job(env: &Env, id: &JobId) -> EdgeResult<Client<JobDo>> {
    client(env, "JOBS", id.as_str())
}

/// The pool's Dispatcher DO (binding `DISPATCHER`).
pub fn dispatcher(env: &Env) -> EdgeResult<Client<DispatcherDo>> {
    client(env, "DISPATCHER", POOL)
}

/// The account's event-stream DO (binding `USER_STREAMS`), named by the account id.
pub fn user_stream(env: &Env, id: &AccountId) -> EdgeResult<Client<UserStreamDo>> {
    client(env, "USER_STREAMS", id.as_str())
}

/// The Email DO of a normalised address (binding `EMAILS`).
pub fn email(env: &Env, normalised: &str) -> EdgeResult<Client<EmailDo>> {
    client(env, "EMAILS", normalised)
}

/// The one Probe DO (binding `PROBES`).
pub fn probe(env: &Env) -> EdgeResult<Client<ProbeDo>> {
    client(env, "PROBES", "probe")
}
