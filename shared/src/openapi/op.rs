//! One operation of the document, and the rules every operation of a kind shares:
//! keyed routes get their security, `X-RateLimit-*` on every answer after the key
//! check, 401 and 429; event streams take `?key=`; error answers carry the `Error`
//! schema with `code` narrowed to the codes that answer can carry.

use serde_json::{json, Map, Value};

use crate::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Delete,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Head => "head",
            Method::Post => "post",
            Method::Delete => "delete",
        }
    }
}

/// Who may call an operation (the router's `Public` and `Keyed` tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// No key (its own checks, if any, are in its description).
    Public,
    /// `Authorization: Bearer sk-…`, rate-limited per key.
    Key,
    /// As [`Auth::Key`], or the key as `?key=` (event streams: EventSource sends no headers).
    KeyOrQuery,
    /// The operator's `ADMIN_TOKEN`.
    Admin,
    /// Stripe's `Stripe-Signature`.
    Stripe,
}

impl Auth {
    pub(crate) fn keyed(self) -> bool {
        matches!(self, Auth::Key | Auth::KeyOrQuery)
    }

    fn security(self) -> Value {
        match self {
            Auth::Public => json!([]),
            Auth::Key => json!([{"bearerAuth": []}]),
            Auth::KeyOrQuery => json!([{"bearerAuth": []}, {"queryKey": []}]),
            Auth::Admin => json!([{"adminToken": []}]),
            Auth::Stripe => json!([{"stripeSignature": []}]),
        }
    }
}

/// One operation: its route, who may call it, and its Operation Object as written (the
/// shared rules are applied by [`Op::finish`]).
pub(crate) struct Op {
    pub method: Method,
    pub path: &'static str,
    pub auth: Auth,
    pub operation: Value,
}

/// The rate-limit headers every keyed answer after the key check carries.
pub(crate) const RATE_LIMIT_HEADERS: [&str; 3] = [
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
];

/// Shared responses that already carry the rate-limit headers, or (401) must not.
const KEYED_RESPONSES: [&str; 4] = [
    "Unauthorized",
    "TooManyRequests",
    "JobNotFound",
    "KeyedInternalError",
];

impl Op {
    pub(crate) fn new(method: Method, path: &'static str, auth: Auth, operation: Value) -> Self {
        Self {
            method,
            path,
            auth,
            operation,
        }
    }

    #[cfg(test)]
    pub(crate) fn operation_id(&self) -> &str {
        self.operation["operationId"].as_str().unwrap_or_default()
    }

    /// The Operation Object with the rules of its kind applied. `responses` are the
    /// document's shared responses, for inlining one that lacks the rate-limit headers.
    pub(crate) fn finish(&self, shared: &Map<String, Value>) -> Value {
        let mut op = self.operation.clone();
        op["security"] = self.auth.security();
        if self.auth == Auth::KeyOrQuery {
            let params = op["parameters"].as_array_mut();
            let key = json!({
                "name": "key",
                "in": "query",
                "required": false,
                "schema": {"type": "string"},
                "description": "The API key, for clients that cannot send `Authorization` (EventSource). Read only when no `Authorization` header is sent."
            });
            match params {
                Some(p) => p.push(key),
                None => op["parameters"] = json!([key]),
            }
        }
        if !self.auth.keyed() {
            return op;
        }
        let responses = op["responses"]
            .as_object_mut()
            .expect("every operation has responses");
        responses
            .entry("401")
            .or_insert_with(|| json!({"$ref": "#/components/responses/Unauthorized"}));
        responses
            .entry("429")
            .or_insert_with(|| json!({"$ref": "#/components/responses/TooManyRequests"}));
        for (_, resp) in responses.iter_mut() {
            if let Some(name) = resp["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/responses/"))
            {
                if KEYED_RESPONSES.contains(&name) {
                    continue;
                }
                *resp = shared.get(name).cloned().unwrap_or(Value::Null);
            }
            add_headers(resp, &RATE_LIMIT_HEADERS);
        }
        op
    }
}

/// Adds references to shared headers (`components.headers`) to a response.
pub(crate) fn add_headers(resp: &mut Value, names: &[&str]) {
    let headers = resp
        .as_object_mut()
        .expect("a response is an object")
        .entry("headers")
        .or_insert_with(|| json!({}));
    for name in names {
        headers[*name] = header_ref(name);
    }
}

// Builders of the fragments operations and schemas repeat; each returns the JSON as it
// stands in the document.

/// A reference to a shared header (`components.headers`).
fn header_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/headers/{name}")})
}

/// A response's `headers`: references to shared headers, one per name.
pub(crate) fn header_refs(names: &[&str]) -> Value {
    let headers: Map<String, Value> = names
        .iter()
        .map(|name| ((*name).to_owned(), header_ref(name)))
        .collect();
    Value::Object(headers)
}

/// An operation's `parameters`: references to shared parameters (`components.parameters`).
pub(crate) fn param_refs(names: &[&str]) -> Value {
    names
        .iter()
        .map(|name| json!({"$ref": format!("#/components/parameters/{name}")}))
        .collect()
}

/// A reference to a schema (`components.schemas`).
pub(crate) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The `content` of a JSON request body or response: `schema`, without an example.
pub(crate) fn json_body(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

/// The `content` of a JSON request body or response: `schema`, with an example.
pub(crate) fn json_example(schema: Value, example: Value) -> Value {
    json!({"application/json": {"schema": schema, "example": example}})
}

/// `base` with the fields of `own` added, each replacing the one of the same name in
/// `base`: the answers (or properties) several operations (or schemas) share, then the
/// one's own.
pub(crate) fn overlay(mut base: Value, own: Value) -> Value {
    let fields = base.as_object_mut().expect("overlay onto an object");
    let Value::Object(own) = own else {
        panic!("overlay of an object")
    };
    fields.extend(own);
    base
}

/// An error answer: `response` (its description, headers) with the `Error` body whose
/// `code` is one of `codes`.
pub(crate) fn err(codes: &[ErrorCode], mut response: Value) -> Value {
    assert!(!codes.is_empty(), "an error answer names its codes");
    response["content"] = json!({"application/json": {"schema": error_schema(codes)}});
    response
}

/// The `Error` schema narrowed to some codes.
pub(crate) fn error_schema(codes: &[ErrorCode]) -> Value {
    let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    json!({
        "allOf": [
            {"$ref": "#/components/schemas/Error"},
            {"properties": {"error": {"properties": {"code": {"enum": names}}}}}
        ]
    })
}
