//! End-to-end: hostile requests against the real stack. Each row is a request a
//! careless or malicious client can send — out-of-range ranges, extreme signature
//! timestamps, huge and negative numbers, empty and duplicated headers, invalid UTF-8,
//! NUL bytes, wrong content types — and the answer it must get: a 4xx in the API's error
//! shape (or, for a range RFC 9110 says to clamp, the clamped 206), never a 5xx.
//!
//! A panic in the Worker resets its wasm instance and with it every Durable Object's
//! memory, which would cut live event streams; so a user stream opened before the table
//! must still deliver a job's events after it.

mod common;

use common::*;
use kiln_shared::origin::DISPATCH_PATH;
use reqwest::blocking::RequestBuilder;
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::json;

/// A request of the table and what it must answer.
struct Case {
    name: &'static str,
    request: RequestBuilder,
    status: u16,
    /// The error `code` (and `param`, when given) of a 4xx.
    code: Option<&'static str>,
    param: Option<&'static str>,
}

fn case(name: &'static str, request: RequestBuilder, status: u16, code: &'static str) -> Case {
    Case {
        name,
        request,
        status,
        code: Some(code),
        param: None,
    }
}

fn param_case(
    name: &'static str,
    request: RequestBuilder,
    code: &'static str,
    param: &'static str,
) -> Case {
    Case {
        name,
        request,
        status: 400,
        code: Some(code),
        param: Some(param),
    }
}

fn edge(method: Method, path: &str) -> RequestBuilder {
    client().request(method, format!("{}{path}", env().edge))
}

fn keyed(method: Method, path: &str, key: &str) -> RequestBuilder {
    edge(method, path).bearer_auth(key)
}

fn json_post(path: &str, key: &str, body: &str) -> RequestBuilder {
    keyed(Method::POST, path, key)
        .header("content-type", "application/json")
        .body(body.to_owned())
}

/// The origin's key id for requests it signs to the edge (`id:secret,…`).
fn origin_key_id() -> String {
    let keys = &env().origin_to_edge_keys;
    keys.split(':').next().unwrap().to_owned()
}

fn edge_key_id() -> String {
    let keys = &env().edge_to_origin_keys;
    keys.split(':').next().unwrap().to_owned()
}

fn signed_with_timestamp(request: RequestBuilder, key_id: &str, ts: &str) -> RequestBuilder {
    request
        .header("x-kiln-key-id", key_id)
        .header("x-kiln-timestamp", ts)
        .header("x-kiln-signature", "00")
        .header("content-type", "application/json")
        .body("{}")
}

fn table(key: &str, output_path: &str) -> Vec<Case> {
    let out = |range: &str| edge(Method::GET, output_path).header("range", range);
    let stripe = |sig: &str| {
        edge(Method::POST, "/v1/billing/stripe/webhook")
            .header("stripe-signature", sig)
            .header("content-type", "application/json")
            .body("{}")
    };
    let image = |body: &str| json_post("/v1/images/generations?async_mode=true", key, body);
    let video = |body: &str| json_post("/v1/video/generations?async_mode=true", key, body);
    let heartbeat = edge(Method::POST, "/internal/origin/heartbeat");
    let obs_text = HeaderValue::from_bytes(b"Bearer sk-trial-\xff\xfe").unwrap();
    let origin = env().origin.clone();
    vec![
        // Range (RFC 9110 §14): served within the file or 416, whatever the numbers.
        case(
            "range ends before it starts",
            out("bytes=5-2"),
            416,
            "range_not_satisfiable",
        ),
        case(
            "range starts past any file",
            out("bytes=99999999999999999999999-"),
            416,
            "range_not_satisfiable",
        ),
        case(
            "range starts past this file",
            out("bytes=18446744073709551615-"),
            416,
            "range_not_satisfiable",
        ),
        case(
            "empty suffix range",
            out("bytes=-0"),
            416,
            "range_not_satisfiable",
        ),
        // Stripe-Signature: extreme, empty and duplicated.
        case(
            "stripe timestamp i64::MIN",
            stripe("t=-9223372036854775808,v1=00"),
            400,
            "invalid_signature",
        ),
        case(
            "stripe timestamp i64::MAX",
            stripe("t=9223372036854775807,v1=00"),
            400,
            "invalid_signature",
        ),
        case(
            "stripe timestamp past i64",
            stripe("t=99999999999999999999999,v1=00"),
            400,
            "invalid_signature",
        ),
        case(
            "stripe signature empty",
            stripe(""),
            400,
            "invalid_signature",
        ),
        case(
            "stripe signature duplicated",
            stripe("t=1,v1=00").header("stripe-signature", "t=2,v1=11"),
            400,
            "invalid_signature",
        ),
        // X-Kiln-* signing headers on the edge and on the origin.
        case(
            "edge: signature timestamp i64::MIN",
            signed_with_timestamp(heartbeat, &origin_key_id(), "-9223372036854775808"),
            401,
            "invalid_signature",
        ),
        case(
            "edge: signature timestamp i64::MAX",
            signed_with_timestamp(
                edge(Method::POST, "/internal/origin/jobs/job_x/events"),
                &origin_key_id(),
                "9223372036854775807",
            ),
            401,
            "invalid_signature",
        ),
        case(
            "edge: signature headers empty",
            edge(Method::POST, "/internal/origin/heartbeat")
                .header("x-kiln-key-id", "")
                .header("x-kiln-timestamp", "")
                .header("x-kiln-signature", ""),
            401,
            "invalid_signature",
        ),
        case(
            "origin: signature timestamp i64::MIN",
            signed_with_timestamp(
                client().post(format!("{origin}{DISPATCH_PATH}")),
                &edge_key_id(),
                "-9223372036854775808",
            ),
            401,
            "invalid_signature",
        ),
        case(
            "origin: signature timestamp i64::MAX",
            signed_with_timestamp(
                client().delete(format!(
                    "{origin}{DISPATCH_PATH}/job_00000000000000000000000000"
                )),
                &edge_key_id(),
                "9223372036854775807",
            ),
            401,
            "invalid_signature",
        ),
        // Authorization: empty, duplicated, bytes outside ASCII.
        case(
            "bearer without a key",
            edge(Method::GET, "/v1/credits").header("authorization", "Bearer "),
            401,
            "missing_api_key",
        ),
        case(
            "authorization duplicated",
            edge(Method::GET, "/v1/credits")
                .header("authorization", format!("Bearer {key}"))
                .header("authorization", format!("Bearer {key}")),
            401,
            "invalid_api_key",
        ),
        case(
            "authorization with non-ASCII bytes",
            edge(Method::GET, "/v1/credits").header("authorization", obs_text),
            401,
            "invalid_api_key",
        ),
        case(
            "stream key of invalid UTF-8",
            edge(Method::GET, "/v1/jobs/stream/user?key=%FF%FE"),
            401,
            "invalid_api_key",
        ),
        // Idempotency-Key: empty, duplicated, non-ASCII.
        param_case(
            "idempotency key empty",
            image(r#"{"prompt":"x"}"#).header("idempotency-key", ""),
            "invalid_value",
            "Idempotency-Key",
        ),
        param_case(
            "idempotency key duplicated",
            image(r#"{"prompt":"x"}"#)
                .header("idempotency-key", "a")
                .header("idempotency-key", "b"),
            "invalid_value",
            "Idempotency-Key",
        ),
        param_case(
            "idempotency key with non-ASCII bytes",
            image(r#"{"prompt":"x"}"#).header(
                "idempotency-key",
                HeaderValue::from_bytes(b"k\xe9y").unwrap(),
            ),
            "invalid_value",
            "Idempotency-Key",
        ),
        // `Prefer` is never an error (RFC 7240 §2): images.rs checks its values.
        // Query parameters.
        param_case(
            "async_mode of invalid UTF-8",
            json_post(
                "/v1/images/generations?async_mode=%FF",
                key,
                r#"{"prompt":"x"}"#,
            ),
            "invalid_value",
            "async_mode",
        ),
        param_case(
            "usage limit past u64",
            keyed(Method::GET, "/v1/usage?limit=18446744073709551616", key),
            "out_of_range",
            "limit",
        ),
        param_case(
            "usage limit negative",
            keyed(Method::GET, "/v1/usage?limit=-1", key),
            "out_of_range",
            "limit",
        ),
        param_case(
            "usage cursor i64::MIN",
            keyed(Method::GET, "/v1/usage?cursor=u_-9223372036854775808", key),
            "invalid_value",
            "cursor",
        ),
        param_case(
            "usage cursor with NUL",
            keyed(Method::GET, "/v1/usage?cursor=u_1%00", key),
            "invalid_value",
            "cursor",
        ),
        // JSON fields: huge, negative, fractional, numbers as huge strings.
        param_case(
            "width 1e300",
            image(r#"{"prompt":"x","width":1e300}"#),
            "invalid_type",
            "width",
        ),
        param_case(
            "width i64::MIN",
            image(r#"{"prompt":"x","width":-9223372036854775808}"#),
            "invalid_dimensions",
            "width",
        ),
        param_case(
            "width past u64",
            image(r#"{"prompt":"x","width":18446744073709551616}"#),
            "invalid_type",
            "width",
        ),
        param_case(
            "height as a huge string",
            image(r#"{"prompt":"x","height":"99999999999999999999"}"#),
            "invalid_type",
            "height",
        ),
        param_case(
            "size with huge sides",
            image(r#"{"prompt":"x","size":"99999999999999999999x1"}"#),
            "invalid_dimensions",
            "size",
        ),
        param_case(
            "steps i64::MAX",
            image(r#"{"prompt":"x","steps":9223372036854775807}"#),
            "out_of_range",
            "steps",
        ),
        param_case(
            "seed 2^53 + 1",
            image(r#"{"prompt":"x","seed":9007199254740993}"#),
            "out_of_range",
            "seed",
        ),
        param_case(
            "seed -2",
            image(r#"{"prompt":"x","seed":-2}"#),
            "out_of_range",
            "seed",
        ),
        param_case(
            "pollForResult 2^32",
            image(r#"{"prompt":"x","pollForResult":4294967296}"#),
            "out_of_range",
            "pollForResult",
        ),
        param_case(
            "cfg NaN as a string",
            image(r#"{"prompt":"x","cfg":"NaN"}"#),
            "invalid_type",
            "cfg",
        ),
        param_case(
            "num_frames i64::MAX",
            video(r#"{"prompt":"x","num_frames":9223372036854775807}"#),
            "invalid_num_frames",
            "num_frames",
        ),
        param_case(
            "num_frames negative",
            video(r#"{"prompt":"x","num_frames":-1}"#),
            "invalid_num_frames",
            "num_frames",
        ),
        param_case(
            "key rate limit past u32",
            json_post("/v1/keys", key, r#"{"rate_limit_per_min":4294967297}"#),
            "out_of_range",
            "rate_limit_per_min",
        ),
        param_case(
            "prompt of NUL only",
            image("{\"prompt\":\"\\u0000\"}"),
            "invalid_value",
            "prompt",
        ),
        // Bodies that are not JSON objects.
        case(
            "body of invalid UTF-8",
            keyed(Method::POST, "/v1/images/generations", key)
                .header("content-type", "application/json")
                .body(b"{\"prompt\":\"\xff\xfe\"}".to_vec()),
            400,
            "invalid_json",
        ),
        case(
            "body with a raw NUL byte",
            keyed(Method::POST, "/v1/images/generations", key)
                .header("content-type", "application/json")
                .body(b"{\"prompt\":\"a\0b\"}".to_vec()),
            400,
            "invalid_json",
        ),
        case(
            "body nested 10000 deep",
            json_post("/v1/images/generations", key, &"[".repeat(10_000)),
            400,
            "invalid_json",
        ),
        case(
            "registration of invalid UTF-8",
            edge(Method::POST, "/v1/accounts").body(b"\xc3\x28".to_vec()),
            400,
            "invalid_json",
        ),
        // Wrong content types.
        case(
            "multipart body to a JSON endpoint",
            keyed(Method::POST, "/v1/images/generations", key)
                .header("content-type", "multipart/form-data; boundary=x")
                .body("--x--"),
            415,
            "unsupported_media_type",
        ),
        case(
            "image body to a JSON endpoint",
            edge(Method::POST, "/v1/accounts")
                .header("content-type", "image/png")
                .body(vec![0x89, b'P', b'N', b'G']),
            415,
            "unsupported_media_type",
        ),
        // Methods a path does not take.
        case(
            "DELETE on credits",
            keyed(Method::DELETE, "/v1/credits", key),
            405,
            "method_not_allowed",
        ),
        case(
            "PUT on an output",
            edge(Method::PUT, output_path),
            405,
            "method_not_allowed",
        ),
        // A method the runtime has no name for is not read as GET.
        case(
            "QUERY on credits",
            keyed(Method::from_bytes(b"QUERY").unwrap(), "/v1/credits", key),
            405,
            "method_not_allowed",
        ),
        case(
            "QUERY on health",
            edge(Method::from_bytes(b"QUERY").unwrap(), "/health"),
            405,
            "method_not_allowed",
        ),
        case(
            "PROPFIND on an output",
            edge(Method::from_bytes(b"PROPFIND").unwrap(), output_path),
            405,
            "method_not_allowed",
        ),
    ]
}

/// Checks one row: the status, and for a 4xx the API's error shape with its code.
fn check(c: Case) {
    let resp = c
        .request
        .send()
        .unwrap_or_else(|e| panic!("{}: {e}", c.name));
    let r = reply(resp);
    assert_eq!(r.status, c.status, "{}: {}", c.name, r.body);
    let Some(code) = c.code else { return };
    let (got_code, got_param) = error_of(&r);
    assert_eq!(got_code, code, "{}: {}", c.name, r.body);
    if let Some(param) = c.param {
        assert_eq!(got_param.as_deref(), Some(param), "{}: {}", c.name, r.body);
    }
    if c.status == 405 {
        let allow = r.headers.get("allow").and_then(|v| v.to_str().ok());
        assert!(
            allow.is_some_and(|a| !a.is_empty()),
            "{}: 405 without Allow",
            c.name
        );
    }
}

#[test]
fn hostile_requests_get_4xx_and_never_reset_the_worker() {
    let key = new_account();
    // An output to aim ranges at.
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "a target"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let url = r.body["data"][0]["url"].as_str().unwrap().to_owned();
    let output_path = url.strip_prefix(&env().edge).unwrap().to_owned();
    let before = credits(&key);

    // A subscriber connected before the table.
    let (head, stream) = Sse::open("/v1/jobs/stream/user", Some(&key));
    assert_eq!(head.status, 200);
    let mut stream = stream.unwrap();

    for c in table(&key, &output_path) {
        check(c);
    }

    // Nothing was charged or held by any of it.
    let after = credits(&key);
    assert_eq!(
        micros(&after["balance_usd"]),
        micros(&before["balance_usd"]),
        "{after}"
    );
    assert_eq!(micros(&after["held_usd"]), 0, "{after}");

    // The subscriber still gets the events of a job submitted after the table.
    let id = submit_async(&key, &json!({"prompt": "after the storm"}));
    let mut names = Vec::new();
    loop {
        let (name, data) = stream
            .next()
            .expect("the user stream survived the hostile table");
        if data["id"].as_str() == Some(id.as_str()) {
            names.push(name.clone());
            if name == "completed" {
                break;
            }
        }
    }
    assert!(names.contains(&"processing".to_owned()), "{names:?}");
}

#[test]
fn ranges_are_clamped_or_served_exactly() {
    let key = new_account();
    let r = post("/v1/images/generations", &key, &json!({"prompt": "bytes"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let url = r.body["data"][0]["url"].as_str().unwrap().to_owned();
    let (_, _, whole) = download(&url);
    let size = whole.len();
    let ranged = |range: &str| {
        let resp = client().get(&url).header("range", range).send().unwrap();
        let status = resp.status().as_u16();
        let content_range = resp
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, content_range, resp.bytes().unwrap().to_vec())
    };
    // A last position past the end is clamped to the last byte (RFC 9110 §14.1.1).
    let (status, cr, bytes) = ranged("bytes=0-18446744073709551615");
    assert_eq!(
        (status, cr.as_str()),
        (206, format!("bytes 0-{}/{size}", size - 1).as_str())
    );
    assert_eq!(bytes, whole);
    let (status, cr, bytes) = ranged("bytes=10-19");
    assert_eq!((status, cr), (206, format!("bytes 10-19/{size}")));
    assert_eq!(bytes, whole[10..20]);
    let (status, _, bytes) = ranged("bytes=-99999999999999999999999");
    assert_eq!(status, 206);
    assert_eq!(bytes, whole);
    let (status, cr, _) = ranged(&format!("bytes={size}-"));
    assert_eq!((status, cr), (416, format!("bytes */{size}")));
    // Units and forms this server does not serve fall back to the whole file.
    for range in ["items=0-1", "bytes=0-1,4-5", "bytes=x-y"] {
        let (status, _, bytes) = ranged(range);
        assert_eq!((status, bytes.len()), (200, size), "{range}");
    }
}
