//! Every route of the edge in one table. Handlers live in one module per resource;
//! whatever they return, the client gets either their response or an error in the
//! API's shape (unknown routes and wrong methods included).

use kiln_shared::ApiError;
use worker::{Env, Method, Request, Response};

use crate::error::EdgeResult;
use crate::{accounts, credits, health, images, jobs, openapi, origin_callbacks, outputs};

/// A matched path, with its parameters.
enum Route<'a> {
    Health,
    OpenApi,
    Accounts,
    Credits,
    ImageGenerations,
    Job(&'a str),
    Output(&'a str),
    OriginEvents(&'a str),
    OriginOutput(&'a str, &'a str),
}

use Method::{Get, Head, Post, Put};

/// The route for a path, and the methods it accepts.
fn resolve<'a>(segments: &[&'a str]) -> Option<(Route<'a>, &'static [Method])> {
    Some(match segments {
        ["health"] => (Route::Health, &[Get]),
        ["openapi.json"] => (Route::OpenApi, &[Get]),
        ["v1", "accounts"] => (Route::Accounts, &[Post]),
        ["v1", "credits"] => (Route::Credits, &[Get]),
        ["v1", "images", "generations"] => (Route::ImageGenerations, &[Post]),
        ["v1", "jobs", id] => (Route::Job(id), &[Get]),
        ["outputs", name] => (Route::Output(name), &[Get, Head]),
        ["internal", "origin", "jobs", id, "events"] => (Route::OriginEvents(id), &[Post]),
        ["internal", "origin", "jobs", id, "outputs", name] => {
            (Route::OriginOutput(id, name), &[Put])
        }
        _ => return None,
    })
}

pub async fn route(req: Request, env: Env) -> Response {
    let method = req.method();
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = match resolve(&segments) {
        None => Err(ApiError::route_not_found(method.as_ref(), &path).into()),
        Some((_, allowed)) if !allowed.contains(&method) => {
            Err(ApiError::method_not_allowed(method.as_ref(), &path).into())
        }
        Some((route, _)) => dispatch(route, req, env).await,
    };
    result.unwrap_or_else(crate::error::EdgeError::into_response)
}

async fn dispatch(route: Route<'_>, req: Request, env: Env) -> EdgeResult<Response> {
    match route {
        Route::Health => health::handle(&env).await,
        Route::OpenApi => openapi::handle(),
        Route::Accounts => accounts::handle_register(req, &env).await,
        Route::Credits => credits::handle_get(&req, &env).await,
        Route::ImageGenerations => images::handle_generate(req, &env).await,
        Route::Job(id) => jobs::handle_get(&req, &env, id).await,
        Route::Output(name) => outputs::handle_get(&req, &env, name).await,
        Route::OriginEvents(id) => origin_callbacks::handle_event(req, &env, id).await,
        Route::OriginOutput(id, name) => origin_callbacks::handle_output(req, &env, id, name).await,
    }
}

/// The public origin of the edge (`https://api.kiln.dev`), for absolute URLs.
pub fn base_url(req: &Request) -> EdgeResult<String> {
    Ok(req.url()?.origin().ascii_serialization())
}
