//! The Probe DO's one message.

use serde::{Deserialize, Serialize};

use super::ProbeDo;

/// Answered at once with `Pong`: one Worker → Durable Object round trip.
#[derive(Serialize, Deserialize)]
pub struct Ping;

#[derive(Serialize, Deserialize)]
pub struct Pong;

crate::message!(ProbeDo, Ping => "/ping", Pong);
