//! The Probe Durable Object: answers at once and stores nothing. `GET
//! /health/durable-object` round-trips to it, which tells an operator that this edge
//! location reaches Durable Objects and gives the benchmark its baseline: the cost of
//! a minimal Worker → Durable Object call, measured beside the real paths.

use worker::{durable_object, DurableObject, Env, Request, Response, State};

#[durable_object]
pub struct ProbeDo {}

impl DurableObject for ProbeDo {
    fn new(_state: State, _env: Env) -> Self {
        Self {}
    }

    async fn fetch(&self, _req: Request) -> worker::Result<Response> {
        Response::ok("{}")
    }
}
