//! The Probe Durable Object: answers at once and stores nothing. `GET
//! /health/durable-object` round-trips to it, which tells an operator that this edge
//! location reaches Durable Objects and gives the benchmark its baseline: the cost of
//! a minimal Worker → Durable Object call, measured beside the real paths.

pub mod proto;

use worker::{durable_object, DurableObject, Env, Request, Response, State};

use crate::platform::rpc::{self, Message};
use proto::{Ping, Pong};

#[durable_object]
pub struct ProbeDo {}

impl DurableObject for ProbeDo {
    fn new(_state: State, _env: Env) -> Self {
        Self {}
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        rpc::respond(match req.path().as_str() {
            Ping::PATH => rpc::answer::<Ping>(Ok(Pong)),
            other => Err(rpc::unknown_route(other)),
        })
    }
}
