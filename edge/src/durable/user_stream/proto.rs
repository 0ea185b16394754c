//! The UserStream DO's messages.

use serde::{Deserialize, Serialize};

use super::UserStreamDo;

/// Open a stream that starts with these frames; answered with the event stream itself
/// (use `Client::open`).
#[derive(Serialize, Deserialize)]
pub struct Subscribe {
    pub first: Vec<String>,
}

/// One frame for every subscriber.
#[derive(Serialize, Deserialize)]
pub struct Publish {
    pub frame: String,
}

/// Whether anyone is listening.
#[derive(Serialize, Deserialize)]
pub struct Published {
    pub subscribers: bool,
}

crate::message!(UserStreamDo, Subscribe => "/subscribe", ());
crate::message!(UserStreamDo, Publish => "/publish", Published);
