//! Typed calls to Durable Objects. Every message a Durable Object takes is a type that
//! declares, once, which object serves it, its route there, and the type of its reply
//! (see each object's `proto` module). Callers hold a [`Client`] for one object and can
//! only send that object's messages; the object reads the same type back with [`read`]
//! and answers with [`answer`], so both sides agree by construction.
//!
//! On the wire a call is `POST https://do.internal{PATH}` with the message as JSON; a
//! non-2xx answer in the API's error shape comes back as that [`ApiError`].

use std::marker::PhantomData;

use kiln_shared::ApiError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use worker::{Headers, Method, Request, RequestInit, Response, Stub};

use crate::platform::error::{EdgeError, EdgeResult};
use crate::platform::http::json;

/// A message to a Durable Object.
pub trait Message: Serialize + DeserializeOwned {
    /// The Durable Object class that serves it.
    type Object;
    /// Its route on that object.
    const PATH: &'static str;
    /// What the object answers.
    type Reply: Serialize + DeserializeOwned;
}

/// A stub of one Durable Object of class `O`, speaking `O`'s messages.
pub struct Client<O> {
    stub: Stub,
    object: PhantomData<O>,
}

impl<O> Client<O> {
    pub fn new(stub: Stub) -> Self {
        Self {
            stub,
            object: PhantomData,
        }
    }

    /// Sends `msg` and reads its reply.
    pub async fn call<M: Message<Object = O>>(&self, msg: &M) -> EdgeResult<M::Reply> {
        let mut resp = self.send(msg).await?;
        let status = resp.status_code();
        let text = resp.text().await?;
        if (200..300).contains(&status) {
            return Ok(serde_json::from_str(&text)?);
        }
        Err(relayed_error(M::PATH, status, &text))
    }

    /// Sends `msg` and returns the object's response as it is (event streams). A non-2xx
    /// answer is read as an error, as [`Client::call`] does.
    pub async fn open<M: Message<Object = O>>(&self, msg: &M) -> EdgeResult<Response> {
        let mut resp = self.send(msg).await?;
        let status = resp.status_code();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let text = resp.text().await?;
        Err(relayed_error(M::PATH, status, &text))
    }

    async fn send<M: Message<Object = O>>(&self, msg: &M) -> EdgeResult<Response> {
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(serde_json::to_string(msg)?.into()));
        let req = Request::new_with_init(&format!("https://do.internal{}", M::PATH), &init)?;
        Ok(self.stub.fetch_with_request(req).await?)
    }
}

/// An error answer of a Durable Object: the API error it carries, or a runtime error.
fn relayed_error(path: &str, status: u16, text: &str) -> EdgeError {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    match parsed.as_ref().and_then(|v| ApiError::from_json(status, v)) {
        Some(api) => api.into(),
        None => worker::Error::RustError(format!("{path} answered {status}: {text}")).into(),
    }
}

/// Reads a message sent with [`Client::call`]. A malformed internal call is a bug,
/// reported as a runtime error.
pub async fn read<M: Message>(req: &mut Request) -> EdgeResult<M> {
    Ok(req.json::<M>().await?)
}

/// The response that carries `reply` to a [`Client::call`] of `M`.
pub fn answer<M: Message>(reply: EdgeResult<M::Reply>) -> EdgeResult<Response> {
    json(200, &reply?)
}

/// Declares a message: `message!(Object, Type => "/path", Reply);`.
#[macro_export]
macro_rules! message {
    ($object:ty, $msg:ty => $path:literal, $reply:ty) => {
        impl $crate::platform::rpc::Message for $msg {
            type Object = $object;
            const PATH: &'static str = $path;
            type Reply = $reply;
        }
    };
}

/// A Durable Object's `fetch` answer: its route's response, or the error in the API's
/// shape (which [`Client::call`] reads back).
pub fn respond(result: EdgeResult<Response>) -> worker::Result<Response> {
    Ok(result.unwrap_or_else(EdgeError::into_response))
}

/// Creates a Durable Object's tables (`CREATE … IF NOT EXISTS`). Creation only fails
/// on a broken runtime; it is logged, and the first query reports it to the caller.
pub fn create_tables(sql: &worker::SqlStorage, object: &str, schema: &[&str]) {
    for ddl in schema {
        if let Err(e) = sql.exec(ddl, None) {
            worker::console_error!("{object} schema: {e}");
        }
    }
}

/// The answer to a path no message declares (a bug in the caller).
pub fn unknown_route(path: &str) -> EdgeError {
    ApiError::route_not_found("DO", path).into()
}
