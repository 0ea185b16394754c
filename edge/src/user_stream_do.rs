//! The account's event stream (`GET /v1/jobs/stream/user`): one Durable Object per
//! account that fans out the events of all its jobs. Job DOs publish every state change
//! here; nothing is stored (a client that reconnects gets its active jobs' current
//! state first, read from the jobs themselves).

use kiln_shared::ApiError;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, State};

use crate::config;
use crate::error::{EdgeError, EdgeResult};
use crate::http::{internal_body, json};
use crate::sse::Hub;

#[durable_object]
pub struct UserStreamDo {
    env: Env,
    hub: Hub,
}

/// `POST /subscribe`: open a stream that starts with these frames.
#[derive(Serialize, Deserialize)]
pub struct Subscribe {
    pub first: Vec<String>,
}

/// `POST /publish`: one frame for every subscriber.
#[derive(Serialize, Deserialize)]
pub struct Publish {
    pub frame: String,
}

/// The answer to a publish: whether anyone is listening.
#[derive(Serialize, Deserialize)]
pub struct Published {
    pub subscribers: bool,
}

impl DurableObject for UserStreamDo {
    fn new(_state: State, env: Env) -> Self {
        Self {
            env,
            hub: Hub::default(),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let path = req.path();
        let result: EdgeResult<Response> = match (req.method(), path.as_str()) {
            (Method::Post, "/subscribe") => match internal_body::<Subscribe>(&mut req).await {
                Ok(s) => self
                    .hub
                    .subscribe(&s.first, false, config::sse_ping_secs(&self.env)),
                Err(e) => Err(e),
            },
            (Method::Post, "/publish") => match internal_body::<Publish>(&mut req).await {
                Ok(p) => {
                    self.hub.publish(&p.frame, false);
                    json(
                        200,
                        &Published {
                            subscribers: !self.hub.is_empty(),
                        },
                    )
                }
                Err(e) => Err(e),
            },
            _ => Err(ApiError::route_not_found("DO", &path).into()),
        };
        Ok(result.unwrap_or_else(EdgeError::into_response))
    }
}

pub fn user_stream_stub(env: &Env, account_id: &str) -> EdgeResult<worker::Stub> {
    Ok(env
        .durable_object("USER_STREAMS")?
        .id_from_name(account_id)?
        .get_stub()?)
}
