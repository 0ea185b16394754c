//! End-to-end: the image path of `docs/api.md` through every real part — key check,
//! validation and pricing, Job Durable Object, signed dispatch, the origin's sim
//! engine, signed events and upload, R2, `/outputs`, and the job object.

mod common;

use common::*;
use serde_json::{json, Value};

#[test]
fn sync_generation_returns_a_png_of_the_requested_size() {
    let key = new_account();
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "a kiln at dawn", "width": 768, "height": 512, "steps": 8}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["created"]
            .as_i64()
            .is_some_and(|t| t > 1_700_000_000),
        "{}",
        r.body
    );
    let job_id = r.body["job_id"].as_str().expect("job_id");
    let url = r.body["data"][0]["url"].as_str().expect("data[0].url");
    assert_eq!(r.headers["x-kiln-job-id"], job_id);
    assert_eq!(r.headers["x-credits-remaining-usd"], "1.98");

    let (status, content_type, bytes) = download(url);
    assert_eq!((status, content_type.as_str()), (200, "image/png"));
    assert_eq!(png_size(&bytes), (768, 512));

    let job = get(&format!("/v1/jobs/{job_id}"), &key).body;
    assert_eq!(job["status"], "completed");
    assert_eq!(job["outputs"][0]["url"], url);
    assert_eq!(
        (
            job["outputs"][0]["width"].as_u64(),
            job["outputs"][0]["height"].as_u64()
        ),
        (Some(768), Some(512))
    );
    assert_eq!(job["cost_usd"], json!(0.02));
    assert_eq!(job["metadata"]["engine"], "sim");
    assert_eq!(job["metadata"]["simulated"], true);
    for ts in ["queued_at", "started_at", "completed_at"] {
        assert!(
            job[ts].as_str().is_some_and(|t| t.ends_with('Z')),
            "{ts}: {job}"
        );
    }
    // The hold was captured: $2.00 − $0.02, nothing left held.
    let c = credits(&key);
    assert_eq!(
        (c["balance_usd"].clone(), c["held_usd"].clone()),
        (json!(1.98), json!(0))
    );
}

#[test]
fn async_generation_is_polled_to_completed() {
    let key = new_account();
    let r = post(
        "/v1/images/generations?async_mode=true",
        &key,
        &json!({"prompt": "async kiln", "size": "512x512", "seed": 7, "replyRef": "order-17"}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["status"], "queued");
    let job_id = r.body["job_id"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["location"], format!("/v1/jobs/{job_id}").as_str());

    let job = wait_terminal(&key, &job_id);
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["seed"], 7);
    assert_eq!(job["replyRef"], "order-17");
    assert_eq!(job["progress"]["step"], job["progress"]["total_steps"]);
    let (_, _, bytes) = download(job["outputs"][0]["url"].as_str().unwrap());
    assert_eq!(png_size(&bytes), (512, 512));
}

#[test]
fn the_same_prompt_and_seed_render_the_same_image() {
    let key = new_account();
    let body =
        json!({"prompt": "determinism", "width": 512, "height": 512, "seed": 42, "steps": 8});
    let urls: Vec<String> = (0..2)
        .map(|_| {
            let r = post("/v1/images/generations", &key, &body);
            assert_eq!(r.status, 200, "{}", r.body);
            r.body["data"][0]["url"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_ne!(urls[0], urls[1]);
    assert_eq!(download(&urls[0]).2, download(&urls[1]).2);
    let other = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "determinism", "width": 512, "height": 512, "seed": 43, "steps": 8}),
    );
    assert_ne!(
        download(other.body["data"][0]["url"].as_str().unwrap()).2,
        download(&urls[0]).2
    );
}

#[test]
fn b64_json_carries_the_png_inline() {
    use base64::Engine as _;
    let key = new_account();
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "inline", "size": "512x640", "response_format": "b64_json", "steps": 8}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let b64 = r.body["data"][0]["b64_json"].as_str().expect("b64_json");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(png_size(&bytes), (512, 640));
}

#[test]
fn outputs_support_ranges_and_caching() {
    let key = new_account();
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "ranges", "size": "512x512", "steps": 8}),
    );
    let url = r.body["data"][0]["url"].as_str().unwrap().to_owned();
    let whole = download(&url).2;
    let resp = client()
        .get(&url)
        .header("range", "bytes=0-7")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes 0-7/{}", whole.len()).as_str()
    );
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(resp.bytes().unwrap().to_vec(), whole[..8].to_vec());
    let beyond = reply(
        client()
            .get(&url)
            .header("range", format!("bytes={}-", whole.len() + 10))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (beyond.status, error_of(&beyond).0.as_str()),
        (416, "range_not_satisfiable")
    );
    let etag = client().get(&url).send().unwrap().headers()["etag"].clone();
    let cached = client()
        .get(&url)
        .header("if-none-match", etag)
        .send()
        .unwrap();
    assert_eq!(cached.status().as_u16(), 304);
    let missing = reply(
        client()
            .get(format!(
                "{}/outputs/job_00000000000000000000000000-0.png",
                env().edge
            ))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (missing.status, error_of(&missing).0.as_str()),
        (404, "file_not_found")
    );
}

#[test]
fn a_failing_generation_answers_500_and_refunds() {
    let key = new_account();
    let before = credits(&key);
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "please [[sim:fail]]", "size": "512x512", "steps": 8}),
    );
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(error_of(&r).0, "generation_failed");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("refunded"));
    let job = get(
        &format!("/v1/jobs/{}", r.headers["x-kiln-job-id"].to_str().unwrap()),
        &key,
    )
    .body;
    assert_eq!(job["status"], "failed");
    assert_eq!(credits(&key)["balance_usd"], before["balance_usd"]);
    assert_eq!(credits(&key)["held_usd"], json!(0));
}

#[test]
fn missing_or_invalid_keys_get_401() {
    let edge = &env().edge;
    let body = json!({"prompt": "x"});
    let forged = kiln_shared::keys::ApiKey::generate(
        kiln_shared::keys::KeyKind::Trial,
        &kiln_shared::ids::AccountId::generate([1; 10]),
        [2; 20],
    );
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no header", None, "missing_api_key"),
        ("wrong scheme", Some("Basic abc".into()), "missing_api_key"),
        (
            "malformed key",
            Some("Bearer sk-nope".into()),
            "invalid_api_key",
        ),
        (
            "unknown account",
            Some(format!("Bearer {}", forged.reveal())),
            "invalid_api_key",
        ),
    ];
    for (what, header, code) in cases {
        for path in ["/v1/images/generations", "/v1/credits"] {
            let mut req = if path == "/v1/credits" {
                client().get(format!("{edge}{path}"))
            } else {
                client().post(format!("{edge}{path}")).json(&body)
            };
            if let Some(h) = &header {
                req = req.header("authorization", h);
            }
            let r = reply(req.send().unwrap());
            assert_eq!(r.status, 401, "{what} {path}: {}", r.body);
            assert_eq!(error_of(&r).0, code, "{what} {path}");
        }
    }
    // A real key with its secret changed is refused too.
    let key = new_account();
    let mut tampered = key.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(get("/v1/credits", &tampered).status, 401);
}

#[test]
fn invalid_parameters_get_400_naming_the_param_and_cost_nothing() {
    let key = new_account();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "prompt", "missing_parameter"),
        (json!({"prompt": ""}), "prompt", "invalid_value"),
        (
            json!({"prompt": "x".repeat(4001)}),
            "prompt",
            "invalid_value",
        ),
        (
            json!({"prompt": "x", "model": "sdxl"}),
            "model",
            "model_not_found",
        ),
        (
            json!({"prompt": "x", "width": 1000}),
            "width",
            "invalid_dimensions",
        ),
        (
            json!({"prompt": "x", "height": 4096}),
            "height",
            "invalid_dimensions",
        ),
        (
            json!({"prompt": "x", "width": "wide"}),
            "width",
            "invalid_type",
        ),
        (
            json!({"prompt": "x", "size": "1x1"}),
            "size",
            "invalid_dimensions",
        ),
        (json!({"prompt": "x", "steps": 60}), "steps", "out_of_range"),
        (json!({"prompt": "x", "cfg": 11}), "cfg", "out_of_range"),
        (json!({"prompt": "x", "seed": -5}), "seed", "out_of_range"),
        (json!({"prompt": "x", "n": 5}), "n", "out_of_range"),
        (
            json!({"prompt": "x", "response_format": "gif"}),
            "response_format",
            "invalid_value",
        ),
        (
            json!({"prompt": "x", "replyRef": "r".repeat(1025)}),
            "replyRef",
            "invalid_value",
        ),
        (
            json!({"prompt": "x", "input_files": ["a.png", "b.png", "c.png", "d.png", "e.png"]}),
            "input_files",
            "invalid_value",
        ),
        (
            json!({"prompt": "x", "guidance": 3}),
            "guidance",
            "unknown_parameter",
        ),
    ];
    for (body, param, code) in cases {
        let r = post("/v1/images/generations", &key, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(
            error_of(&r),
            (code.to_owned(), Some(param.to_owned())),
            "{body}"
        );
    }
    let c = credits(&key);
    assert_eq!(
        (c["balance_usd"].clone(), c["held_usd"].clone()),
        (json!(2), json!(0))
    );
}

/// `Prefer` follows RFC 7240: never an error. Past 90 s a wait counts as 90, `wait=0`
/// answers at once, and a wait that is not a whole number is ignored (the request is
/// then synchronous), as is every other preference.
#[test]
fn prefer_is_honoured_where_it_can_be_and_otherwise_ignored() {
    let key = test_key(&new_account());
    let submit = |prefer: &str| {
        reply(
            client()
                .post(format!("{}/v1/images/generations", env().edge))
                .bearer_auth(&key)
                .header("prefer", prefer)
                .json(&json!({"prompt": "a kiln", "steps": 8}))
                .send()
                .unwrap(),
        )
    };
    for (prefer, status) in [
        ("wait=500", 200),
        ("wait=soon", 200),
        ("wait=-1", 200),
        ("wait=18446744073709551616", 200),
        ("respond-async, return=minimal", 200),
        ("", 200),
        ("wait=0", 202),
    ] {
        let r = submit(prefer);
        assert_eq!(r.status, status, "{prefer:?}: {}", r.body);
        if status == 200 {
            assert!(
                r.body["data"][0]["url"].is_string(),
                "{prefer:?}: {}",
                r.body
            );
        } else {
            // `wait=0` answers like `async_mode=true`.
            assert!(r.body["polling_url"].is_string(), "{prefer:?}: {}", r.body);
        }
    }
}

#[test]
fn bad_bodies_and_unknown_routes_get_the_error_shape() {
    let key = new_account();
    let edge = &env().edge;
    let raw = |method: reqwest::Method, path: &str, body: &str| {
        reply(
            client()
                .request(method, format!("{edge}{path}"))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
                .unwrap(),
        )
    };
    let cases = [
        (
            reqwest::Method::POST,
            "/v1/images/generations",
            "{not json",
            400,
            "invalid_json",
        ),
        (
            reqwest::Method::POST,
            "/v1/images/generations",
            "[1,2]",
            400,
            "invalid_json",
        ),
        (
            reqwest::Method::POST,
            "/v1/images/generations",
            "",
            400,
            "invalid_json",
        ),
        (
            reqwest::Method::GET,
            "/v1/nothing-here",
            "",
            404,
            "unknown_route",
        ),
        (
            reqwest::Method::DELETE,
            "/v1/images/generations",
            "",
            405,
            "method_not_allowed",
        ),
        (
            reqwest::Method::GET,
            "/v1/jobs/not-a-job",
            "",
            404,
            "job_not_found",
        ),
        (
            reqwest::Method::GET,
            "/v1/jobs/job_00000000000000000000000000",
            "",
            404,
            "job_not_found",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let r = raw(method.clone(), path, body);
        assert_eq!(
            (r.status, error_of(&r).0.as_str()),
            (status, code),
            "{method} {path} {body:?}: {}",
            r.body
        );
    }
    assert_eq!(credits(&key)["balance_usd"], json!(2));
}

#[test]
fn jobs_of_other_accounts_are_not_visible() {
    let alice = new_account();
    let bob = new_account();
    let r = post(
        "/v1/images/generations?async_mode=true",
        &alice,
        &json!({"prompt": "mine", "size": "512x512"}),
    );
    let job_id = r.body["job_id"].as_str().unwrap();
    let peek = get(&format!("/v1/jobs/{job_id}"), &bob);
    assert_eq!(
        (peek.status, error_of(&peek).0.as_str()),
        (404, "job_not_found")
    );
    wait_terminal(&alice, job_id);
}

#[test]
fn health_lists_the_origin_and_its_engine() {
    let r = reply(
        client()
            .get(format!("{}/health", env().edge))
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok");
    let origin = &r.body["origins"][0];
    assert_eq!(
        (origin["status"].as_str(), origin["engine"].as_str()),
        (Some("up"), Some("sim"))
    );
    assert_eq!(origin["simulated"], true);
    let o = reply(
        client()
            .get(format!("{}/health", env().origin))
            .send()
            .unwrap(),
    );
    assert_eq!((o.status, o.body["engine"].as_str()), (200, Some("sim")));
}

#[test]
fn registration_allows_one_trial_per_email() {
    let email = format!("Trial.Person+{}@Example.com", kiln_tests::random_hex(4));
    let edge = &env().edge;
    let register = |e: &str| {
        reply(
            client()
                .post(format!("{edge}/v1/accounts"))
                .json(&json!({"email": e}))
                .send()
                .unwrap(),
        )
    };
    let first = register(&email);
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(first.body["api_key"]
        .as_str()
        .unwrap()
        .starts_with("sk-trial-"));
    assert_eq!(first.body["balance_usd"], json!(2));
    // The same mailbox written differently is still the same mailbox.
    let base = email.split('+').next().unwrap().to_lowercase();
    let again = register(&format!("  {base}@example.COM "));
    assert_eq!(
        (again.status, error_of(&again)),
        (409, ("trial_exists".into(), Some("email".into())))
    );
    for bad in [json!({}), json!({"email": "nope"}), json!({"email": 5})] {
        let r = reply(
            client()
                .post(format!("{edge}/v1/accounts"))
                .json(&bad)
                .send()
                .unwrap(),
        );
        assert_eq!(
            (r.status, error_of(&r).1.as_deref()),
            (400, Some("email")),
            "{bad}"
        );
    }
}
