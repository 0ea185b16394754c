//! `POST /v1/jobs`, `DELETE /v1/jobs/{job_id}`, `GET /health` and the error shape,
//! through the router alone.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kiln_origin::startup::{app, AppState};
use kiln_shared::origin::{cancel_path, OriginHealth, DISPATCH_PATH};
use kiln_shared::signing::{Keyring, SKEW_SECS_MAX};

use crate::helpers::*;

/// Jobs accepted here hold their slot for minutes, so a test can fill every slot.
const STEP_MS_SLOW: u64 = 60_000;

fn state(slots: u32) -> AppState {
    AppState::new(&config(NO_EDGE_URL, slots, STEP_MS_SLOW))
}

#[tokio::test]
async fn health_describes_the_origin() {
    let (status, body) = call(
        &app(state(2)),
        Request::get("/health").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let health: OriginHealth = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(
        health,
        OriginHealth {
            status: "ok".into(),
            origin_id: "origin-test".into(),
            engine: "sim".into(),
            simulated: true,
            slots: 2,
            busy: 0,
            models: vec!["flux2-dev".into(), "ltx-2.3".into(), "ltx-2.3-fast".into()],
            resident_models: vec![],
            vram_free_gb: None,
            problem: None,
            comfyui: None,
        }
    );
    assert!(body["vram_free_gb"].is_null(), "{body}");
}

#[tokio::test]
async fn a_signed_dispatch_is_accepted_once_per_attempt() {
    let state = state(4);
    let app = app(state.clone());
    let mut job = job("a kiln at dusk", 20, 1024, 1024);

    let (status, body) = call(&app, dispatch(&job)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"accepted": true, "origin_id": "origin-test"})
    );
    assert_eq!(state.busy(), 1);

    // A replay, even freshly signed, is refused.
    let (status, body) = call(&app, dispatch(&job)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_api_error(&body, "duplicate_dispatch");

    // A re-dispatch after the job lost its origin is a new attempt. It supersedes the
    // first, which is stopped: the edge ignores the first attempt's events from now on.
    job.attempt = 2;
    let (status, body) = call(&app, dispatch(&job)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let running: Vec<_> = state
        .running
        .list()
        .into_iter()
        .map(|r| r.attempt)
        .collect();
    assert_eq!((state.busy(), running), (1, vec![2]));
}

#[tokio::test]
async fn a_full_origin_answers_503_and_takes_the_job_later() {
    let state = state(1);
    let app = app(state.clone());
    let first = job("first", 20, 512, 512);
    let held = state.slots.clone().try_acquire_owned().unwrap();
    let (status, body) = call(&app, dispatch(&first)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_api_error(&body, "no_capacity");
    assert_eq!(body["error"]["type"], "service_unavailable_error");

    // The edge retries a refused dispatch with the same attempt: not a replay.
    drop(held);
    let (status, body) = call(&app, dispatch(&first)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(state.busy(), 1);

    let (status, body) = call(&app, dispatch(&job("second", 20, 512, 512))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_api_error(&body, "no_capacity");
}

#[tokio::test]
async fn badly_signed_dispatches_are_refused() {
    let app = app(state(4));
    let body = serde_json::to_vec(&job("x", 20, 512, 512)).unwrap();
    let now = now_secs();
    let ring = edge_to_origin();
    let stranger = Keyring::parse("edge-9:0123456789abcdef0123456789abcdef").unwrap();
    let same_id_other_secret =
        Keyring::parse("edge-2026:ffffffffffffffffffffffffffffffff").unwrap();
    let changed = {
        let mut r = signed_request(&ring, now, DISPATCH_PATH, DISPATCH_PATH, body.clone());
        *r.body_mut() = Body::from(
            String::from_utf8(body.clone())
                .unwrap()
                .replace("\"seed\":42", "\"seed\":43"),
        );
        r
    };
    let unsigned = Request::post(DISPATCH_PATH)
        .header("content-type", "application/json")
        .body(Body::from(body.clone()))
        .unwrap();
    let path = DISPATCH_PATH;
    let cases = [
        ("unsigned", unsigned),
        (
            "unknown key id",
            signed_request(&stranger, now, path, path, body.clone()),
        ),
        (
            "wrong secret",
            signed_request(&same_id_other_secret, now, path, path, body.clone()),
        ),
        ("changed body", changed),
        (
            "stale timestamp",
            signed_request(&ring, now - SKEW_SECS_MAX - 1, path, path, body.clone()),
        ),
        (
            "future timestamp",
            signed_request(&ring, now + SKEW_SECS_MAX + 60, path, path, body.clone()),
        ),
        (
            "query added after signing",
            signed_request(&ring, now, "/v1/jobs?priority=high", path, body.clone()),
        ),
    ];
    for (what, request) in cases {
        let (status, body) = call(&app, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_api_error(&body, "invalid_signature");
        assert_eq!(body["error"]["type"], "authentication_error", "{what}");
    }
}

#[tokio::test]
async fn a_signed_body_that_is_not_a_dispatch_is_400() {
    let app = app(state(1));
    for body in [&b"{not json"[..], b"{\"job_id\": \"job_1\"}", b""] {
        let request = signed_request(
            &edge_to_origin(),
            now_secs(),
            DISPATCH_PATH,
            DISPATCH_PATH,
            body.to_vec(),
        );
        let (status, json) = call(&app, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
        assert_api_error(&json, "invalid_json");
    }
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let body = vec![b' '; 1024 * 1024 + 1];
    let request = signed_request(
        &edge_to_origin(),
        now_secs(),
        DISPATCH_PATH,
        DISPATCH_PATH,
        body,
    );
    let (status, json) = call(&app(state(1)), request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
    assert_api_error(&json, "payload_too_large");
}

#[tokio::test]
async fn unknown_routes_and_methods_have_the_api_error_shape() {
    let app = app(state(1));
    let cases = [
        ("GET", "/v1/nothing", StatusCode::NOT_FOUND, "unknown_route"),
        ("POST", "/", StatusCode::NOT_FOUND, "unknown_route"),
        (
            "GET",
            DISPATCH_PATH,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "DELETE",
            "/health",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "GET",
            "/v1/jobs/job_0000000000000000000000000a",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, path, want_status, want_code) in cases {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(&app, request).await;
        assert_eq!(status, want_status, "{method} {path}: {body}");
        assert_api_error(&body, want_code);
    }
}

#[tokio::test]
async fn a_signed_cancel_stops_the_job_and_frees_its_slot_before_answering() {
    let state = state(1);
    let app = app(state.clone());
    let running = job("cancel me", 20, 512, 512);
    assert_eq!(call(&app, dispatch(&running)).await.0, StatusCode::ACCEPTED);
    assert_eq!(state.busy(), 1);

    let (status, body) = call(&app, cancel(&running.job_id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!({"cancelled": true}));
    assert_eq!(state.busy(), 0);

    let (status, body) = call(&app, cancel(&running.job_id)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_api_error(&body, "job_not_found");
    let (status, body) = call(&app, dispatch(&job("next", 20, 512, 512))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn cancels_of_jobs_not_here_are_404() {
    let app = app(state(1));
    let path = "/v1/jobs/not-a-job-id";
    let malformed =
        signed_method_request("DELETE", &edge_to_origin(), now_secs(), path, path, vec![]);
    for request in [cancel(&job("never sent", 20, 512, 512).job_id), malformed] {
        let (status, body) = call(&app, request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_api_error(&body, "job_not_found");
        assert_eq!(body["error"]["type"], "not_found_error");
    }
}

#[tokio::test]
async fn badly_signed_cancels_are_refused_and_the_job_runs_on() {
    let state = state(1);
    let app = app(state.clone());
    let running = job("keep me", 20, 512, 512);
    assert_eq!(call(&app, dispatch(&running)).await.0, StatusCode::ACCEPTED);
    let path = cancel_path(&running.job_id);
    let other = cancel_path(&job("other", 20, 512, 512).job_id);
    let (ring, now) = (edge_to_origin(), now_secs());
    let unsigned = Request::delete(&path).body(Body::empty()).unwrap();
    let cases = [
        ("unsigned", unsigned),
        ("signed as a POST", {
            let mut r = signed_method_request("POST", &ring, now, &path, &path, vec![]);
            *r.method_mut() = axum::http::Method::DELETE;
            r
        }),
        (
            "signed for another job",
            signed_method_request("DELETE", &ring, now, &path, &other, vec![]),
        ),
        (
            "stale timestamp",
            signed_method_request(
                "DELETE",
                &ring,
                now - SKEW_SECS_MAX - 1,
                &path,
                &path,
                vec![],
            ),
        ),
        (
            "origin-to-edge key",
            signed_method_request(
                "DELETE",
                &Keyring::parse(ORIGIN_TO_EDGE_KEYS).unwrap(),
                now,
                &path,
                &path,
                vec![],
            ),
        ),
    ];
    for (what, request) in cases {
        let (status, body) = call(&app, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_api_error(&body, "invalid_signature");
    }
    assert_eq!(state.busy(), 1, "the job still runs");
}
