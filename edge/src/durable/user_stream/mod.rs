//! The account's event stream (`GET /v1/jobs/stream/user`): one Durable Object per
//! account that fans out the events of all its jobs. Job DOs publish every state change
//! here; nothing is stored (a client that reconnects gets its active jobs' current
//! state first, read from the jobs themselves).

pub mod proto;

use worker::{durable_object, DurableObject, Env, Request, Response, State};

use crate::platform::config;
use crate::platform::error::EdgeResult;
use crate::platform::rpc::{self, Message};
use crate::platform::sse::Hub;
use proto::{Publish, Published, Subscribe};

#[durable_object]
pub struct UserStreamDo {
    env: Env,
    hub: Hub,
}

impl DurableObject for UserStreamDo {
    fn new(_state: State, env: Env) -> Self {
        Self {
            env,
            hub: Hub::default(),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        rpc::respond(self.route(&mut req).await)
    }
}

impl UserStreamDo {
    async fn route(&self, req: &mut Request) -> EdgeResult<Response> {
        match req.path().as_str() {
            Subscribe::PATH => {
                let s: Subscribe = rpc::read(req).await?;
                self.hub
                    .subscribe(&s.first, false, config::sse_ping_secs(&self.env))
            }
            Publish::PATH => {
                let p: Publish = rpc::read(req).await?;
                self.hub.publish(&p.frame, false);
                rpc::answer::<Publish>(Ok(Published {
                    subscribers: !self.hub.is_empty(),
                }))
            }
            other => Err(rpc::unknown_route(other)),
        }
    }
}
