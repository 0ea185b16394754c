//! Every route of the edge in one table. Handlers live in one module per resource.
//! Routes marked as keyed are authenticated here, before their handler runs, so every
//! authenticated response — errors included — carries the `X-RateLimit-*` headers, and
//! a caller over its limit gets 429 with `Retry-After` without reaching a handler.

use kiln_shared::{ApiError, ErrorCode};
use worker::{Env, Method, Request, Response};

use super::{
    accounts, admin, bfl, billing, catalog, checkout, credits, edits, files, health, idempotency,
    images, jobs, keys, openapi, origin, outputs, session, streams, submit, usage, video, webhooks,
};
use crate::api::auth::{authenticate, Caller};
use crate::durable::account::proto::FileKind;
use crate::platform::error::{EdgeError, EdgeResult};

/// Routes anyone may call (their own checks, if any, are inside: signatures, tokens).
enum Public<'a> {
    Health,
    HealthDurableObject,
    OpenApi,
    LlmsTxt,
    Accounts,
    Output(&'a str),
    StripeWebhook,
    AdminCredits(&'a str),
    AdminLedgerBench,
    AdminSweep,
    OriginEvents(&'a str),
    OriginOutput(&'a str, &'a str),
    OriginHeartbeat,
    OriginInput(&'a str, &'a str),
    Models,
    QueueStatus,
    JobEstimate,
    /// Sign in or out; `GET` is keyed ([`Keyed::Session`]).
    Session,
}

/// Routes that need an API key.
enum Keyed<'a> {
    Credits,
    Usage,
    Keys,
    Key(&'a str),
    KeyReveal(&'a str),
    ImageGenerations,
    VideoGenerations,
    Job(&'a str),
    JobsActive,
    JobStream(&'a str),
    UserStream,
    JobDeliveries(&'a str),
    JobWebhook(&'a str),
    WebhookSecret,
    WebhookSecretRotate,
    BflSubmit(&'a str),
    BflResult,
    ImageEdits,
    Uploads,
    UploadsMine,
    Upload(&'a str),
    GenerationsMine,
    Generation(&'a str),
    Session,
    Checkout,
}

impl Keyed<'_> {
    /// Event streams also take the key as `?key=` (browsers' EventSource cannot send
    /// headers).
    fn key_in_query(&self) -> bool {
        matches!(self, Keyed::JobStream(_) | Keyed::UserStream)
    }
}

enum Resolved<'a> {
    Public(Public<'a>),
    Keyed(Keyed<'a>),
}

use Method::{Delete, Get, Head, Post, Put};

/// The route for a path, and the methods it accepts.
fn resolve<'a>(segments: &[&'a str]) -> Option<(Resolved<'a>, &'static [Method])> {
    use Resolved::{Keyed as K, Public as P};
    Some(match segments {
        ["health"] => (P(Public::Health), &[Get]),
        ["health", "durable-object"] => (P(Public::HealthDurableObject), &[Get]),
        ["openapi.json"] => (P(Public::OpenApi), &[Get]),
        ["llms.txt"] => (P(Public::LlmsTxt), &[Get]),
        ["v1", "accounts"] => (P(Public::Accounts), &[Post]),
        ["v1", "session"] => (P(Public::Session), &[Get, Post, Delete]),
        ["v1", "billing", "checkout"] => (K(Keyed::Checkout), &[Post]),
        ["outputs", name] => (P(Public::Output(name)), &[Get, Head]),
        ["v1", "billing", "stripe", "webhook"] => (P(Public::StripeWebhook), &[Post]),
        ["admin", "accounts", id, "credits"] => (P(Public::AdminCredits(id)), &[Post]),
        ["admin", "ledger-bench"] => (P(Public::AdminLedgerBench), &[Post]),
        ["admin", "files", "sweep"] => (P(Public::AdminSweep), &[Post]),
        ["internal", "origin", "jobs", id, "events"] => (P(Public::OriginEvents(id)), &[Post]),
        ["internal", "origin", "jobs", id, "outputs", name] => {
            (P(Public::OriginOutput(id, name)), &[Put])
        }
        ["internal", "origin", "heartbeat"] => (P(Public::OriginHeartbeat), &[Post]),
        ["internal", "origin", "jobs", id, "inputs", name] => {
            (P(Public::OriginInput(id, name)), &[Get])
        }
        ["v1", "models"] => (P(Public::Models), &[Get]),
        ["v1", "queue", "status"] => (P(Public::QueueStatus), &[Get]),
        ["v1", "jobs", "estimate"] => (P(Public::JobEstimate), &[Get]),
        ["v1", "credits"] => (K(Keyed::Credits), &[Get]),
        ["v1", "usage"] => (K(Keyed::Usage), &[Get]),
        ["v1", "keys"] => (K(Keyed::Keys), &[Get, Post]),
        ["v1", "keys", id] => (K(Keyed::Key(id)), &[Delete]),
        ["v1", "keys", id, "reveal"] => (K(Keyed::KeyReveal(id)), &[Post]),
        ["v1", "images", "generations"] => (K(Keyed::ImageGenerations), &[Post]),
        ["v1", "images", "edits"] => (K(Keyed::ImageEdits), &[Post]),
        ["v1", "video", "generations"] => (K(Keyed::VideoGenerations), &[Post]),
        ["v1", "jobs", "active"] => (K(Keyed::JobsActive), &[Get]),
        ["v1", "jobs", "stream", "user"] => (K(Keyed::UserStream), &[Get]),
        ["v1", "jobs", id, "stream"] => (K(Keyed::JobStream(id)), &[Get]),
        ["v1", "jobs", id, "deliveries"] => (K(Keyed::JobDeliveries(id)), &[Get]),
        ["v1", "jobs", id, "webhook"] => (K(Keyed::JobWebhook(id)), &[Post]),
        ["v1", "webhooks", "secret"] => (K(Keyed::WebhookSecret), &[Get]),
        ["flux", "v1", "get_result"] => (K(Keyed::BflResult), &[Get]),
        ["flux", "v1", model] => (K(Keyed::BflSubmit(model)), &[Post]),
        ["v1", "webhooks", "secret", "rotate"] => (K(Keyed::WebhookSecretRotate), &[Post]),
        ["v1", "jobs", id] => (K(Keyed::Job(id)), &[Get, Delete]),
        ["v1", "uploads"] => (K(Keyed::Uploads), &[Post]),
        ["v1", "uploads", "mine"] => (K(Keyed::UploadsMine), &[Get]),
        ["v1", "uploads", id] => (K(Keyed::Upload(id)), &[Delete]),
        ["v1", "generations", "mine"] => (K(Keyed::GenerationsMine), &[Get]),
        ["v1", "generations", name] => (K(Keyed::Generation(name)), &[Delete]),
        _ => return None,
    })
}

pub async fn route(req: Request, env: Env) -> Response {
    // `Request::method` reads every method it has no variant for (QUERY, PROPFIND, …)
    // as GET; the method as sent decides, so those are 405 like any other.
    let sent = req.inner().method();
    let method = req.method();
    let known = method.as_ref() == sent;
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = match resolve(&segments) {
        None => Err(ApiError::route_not_found(&sent, &path).into()),
        Some((_, allowed)) if !known || !allowed.contains(&method) => {
            return method_not_allowed(&sent, &path, allowed);
        }
        Some((Resolved::Public(route), _)) => public(route, req, env).await,
        Some((Resolved::Keyed(route), _)) => keyed(route, req, env).await,
    };
    result.unwrap_or_else(EdgeError::into_response)
}

/// 405 in the API's error shape, with the `Allow` header RFC 9110 requires.
fn method_not_allowed(method: &str, path: &str, allowed: &[Method]) -> Response {
    let resp = EdgeError::from(ApiError::method_not_allowed(method, path)).into_response();
    let allow = allow_header(allowed);
    if let Err(e) = resp.headers().set("allow", &allow) {
        worker::console_error!("setting Allow: {e}");
    }
    resp
}

/// The `Allow` value for a route's methods: `GET, HEAD`.
fn allow_header(allowed: &[Method]) -> String {
    allowed
        .iter()
        .map(|m| m.as_ref())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn public(route: Public<'_>, req: Request, env: Env) -> EdgeResult<Response> {
    match route {
        Public::Health => health::handle(&env).await,
        Public::HealthDurableObject => health::handle_durable_object(&env).await,
        Public::OpenApi => openapi::handle(),
        Public::LlmsTxt => openapi::handle_llms_txt(),
        Public::Accounts => accounts::handle_register(req, &env).await,
        Public::Output(name) => outputs::handle_get(&req, &env, name).await,
        Public::StripeWebhook => billing::handle_stripe_webhook(req, &env).await,
        Public::AdminCredits(id) => admin::handle_credits(req, &env, id).await,
        Public::AdminLedgerBench => admin::handle_ledger_bench(req, &env).await,
        Public::AdminSweep => admin::handle_sweep(&req, &env).await,
        Public::OriginEvents(id) => origin::handle_event(req, &env, id).await,
        Public::OriginOutput(id, name) => origin::handle_output(req, &env, id, name).await,
        Public::OriginHeartbeat => origin::handle_heartbeat(req, &env).await,
        Public::OriginInput(id, name) => origin::handle_input(req, &env, id, name).await,
        Public::Models => catalog::handle_models(&env).await,
        Public::QueueStatus => catalog::handle_queue_status(&env).await,
        Public::JobEstimate => jobs::handle_estimate(&req, &env).await,
        Public::Session => match req.method() {
            Get => keyed(Keyed::Session, req, env).await,
            Delete => session::handle_close(req, &env).await,
            _ => session::handle_open(req, &env).await,
        },
    }
}

async fn keyed(route: Keyed<'_>, req: Request, env: Env) -> EdgeResult<Response> {
    let caller = authenticate(&req, &env, route.key_in_query()).await?;
    let resp = if caller.rate.allowed {
        handle_keyed(route, req, &env, &caller)
            .await
            .unwrap_or_else(EdgeError::into_response)
    } else {
        let e = ApiError::new(
            429,
            ErrorCode::RateLimited,
            format!(
                "Too many requests for this API key; retry after {} s.",
                caller.rate.retry_after_secs
            ),
        );
        let resp = EdgeError::Api(e).into_response();
        resp.headers()
            .set("retry-after", &caller.rate.retry_after_secs.to_string())?;
        resp
    };
    let h = resp.headers();
    h.set("x-ratelimit-limit", &caller.rate.limit.to_string())?;
    h.set("x-ratelimit-remaining", &caller.rate.remaining.to_string())?;
    h.set("x-ratelimit-reset", &caller.rate.reset_secs.to_string())?;
    Ok(resp)
}

async fn handle_keyed(
    route: Keyed<'_>,
    req: Request,
    env: &Env,
    caller: &Caller,
) -> EdgeResult<Response> {
    match (route, req.method()) {
        (Keyed::Credits, _) => credits::handle_get(caller).await,
        (Keyed::Usage, _) => usage::handle_list(&req, caller).await,
        (Keyed::Keys, Get) => keys::handle_list(caller).await,
        (Keyed::Keys, _) => {
            idempotency::run(req, caller, keys::BODY_BYTES_MAX, |_, body| {
                keys::handle_create(body, caller)
            })
            .await
        }
        (Keyed::Key(id), _) => keys::handle_revoke(caller, id).await,
        (Keyed::KeyReveal(id), _) => keys::handle_reveal(caller, id).await,
        (Keyed::ImageGenerations, _) => {
            idempotency::run(req, caller, submit::BODY_BYTES_MAX, |req, body| {
                images::handle_image(req, body, env, caller)
            })
            .await
        }
        (Keyed::VideoGenerations, _) => {
            idempotency::run(req, caller, submit::BODY_BYTES_MAX, |req, body| {
                video::handle_video(req, body, env, caller)
            })
            .await
        }
        (Keyed::Job(id), Delete) => jobs::handle_cancel(&req, env, caller, id).await,
        (Keyed::Job(id), _) => jobs::handle_get(&req, env, caller, id).await,
        (Keyed::JobsActive, _) => jobs::handle_active(&req, env, caller).await,
        (Keyed::JobStream(id), _) => streams::handle_job(env, caller, id).await,
        (Keyed::UserStream, _) => streams::handle_user(env, caller).await,
        (Keyed::JobDeliveries(id), _) => webhooks::handle_deliveries(env, caller, id).await,
        (Keyed::JobWebhook(id), _) => webhooks::handle_replay(env, caller, id).await,
        (Keyed::WebhookSecret, _) => webhooks::handle_get(caller).await,
        (Keyed::WebhookSecretRotate, _) => {
            idempotency::run(req, caller, submit::BODY_BYTES_MAX, |_, _| {
                webhooks::handle_rotate(caller)
            })
            .await
        }
        (Keyed::BflSubmit(model), _) => {
            idempotency::run(req, caller, submit::BODY_BYTES_MAX, |req, body| {
                bfl::handle_submit(req, body, env, caller, model)
            })
            .await
        }
        (Keyed::BflResult, _) => bfl::handle_result(&req, env, caller).await,
        (Keyed::ImageEdits, _) => edits::handle_edit(req, env, caller).await,
        (Keyed::Uploads, _) => files::handle_upload(req, env, caller).await,
        (Keyed::UploadsMine, _) => files::handle_list(&req, caller, FileKind::Upload).await,
        (Keyed::Upload(id), _) => files::handle_delete(env, caller, FileKind::Upload, id).await,
        (Keyed::GenerationsMine, _) => files::handle_list(&req, caller, FileKind::Output).await,
        (Keyed::Generation(name), _) => {
            files::handle_delete(env, caller, FileKind::Output, name).await
        }
        (Keyed::Session, _) => session::handle_get(caller).await,
        (Keyed::Checkout, _) => {
            idempotency::run(req, caller, checkout::BODY_BYTES_MAX, |req, body| {
                checkout::handle_create(req, body, env, caller)
            })
            .await
        }
    }
}

/// The public origin of the edge (`https://api.kiln.dev`), for absolute URLs.
pub fn base_url(req: &Request) -> EdgeResult<String> {
    Ok(req.url()?.origin().ascii_serialization())
}
