//! What the API layer and the Durable Objects stand on: the runtime, not Kiln's rules.
//!
//! - [`bindings`] — one typed client per Durable Object binding; each binding named once.
//! - [`rpc`] — typed calls to Durable Objects: a message declares its path and reply.
//! - [`http`] — JSON responses, bounded body reads, outbound requests with timeouts.
//! - [`sse`] — event-stream frames and the subscriber hub.
//! - [`clock`] — the Workers clock and randomness.
//! - [`config`] — Worker vars and secrets.
//! - [`error`] — the edge's error type and the API error response.

pub mod bindings;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod rpc;
pub mod sse;
