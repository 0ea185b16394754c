//! End-to-end tests of the job lifecycle on the default stack (one origin, many slots):
//! video generation checked with ffprobe, cancel of a running job, event streams,
//! active jobs, estimates, the catalog, the queue status and health.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use kiln_shared::ids::JobId;
use kiln_shared::origin::cancel_path;
use kiln_shared::signing::Keyring;
use serde_json::{json, Value};

/// A prompt directive of the sim engine: this job's steps take `ms` each.
fn slow(prompt: &str, ms: u32) -> String {
    format!("{prompt} [[sim:step_ms={ms}]]")
}

/// The edge's cancel of job `id` on `origin`, signed as the edge signs it: 200 while
/// the origin still holds an attempt of the job (it stops it), 404 once it holds none.
/// For a job the edge already stopped there it changes nothing: it asks about it.
fn stop_on_origin(origin: &str, id: &str) -> Reply {
    let path = cancel_path(&JobId::parse(id).unwrap());
    let ring = Keyring::parse(&env().edge_to_origin_keys).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed = ring.sign(now as i64, "DELETE", &path, b"");
    let mut req = client().delete(format!("{origin}{path}"));
    for (k, v) in signed.pairs() {
        req = req.header(k, v);
    }
    reply(req.send().unwrap())
}

#[test]
fn a_video_job_returns_an_h264_mp4_at_twice_the_size_with_the_frame_count() {
    let key = new_account();
    let before = credits(&key);
    let r = post(
        "/v1/video/generations",
        &key,
        &json!({"prompt": "waves at dusk", "model": "ltx-2.3-fast", "num_frames": 25, "seed": 7}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let job_id = r.body["job_id"].as_str().unwrap().to_owned();
    let url = r.body["data"][0]["url"].as_str().unwrap().to_owned();
    let (status, ct, bytes) = download(&url);
    assert_eq!((status, ct.as_str()), (200, "video/mp4"));
    let probe = ffprobe(&bytes);
    assert_eq!(probe["codec_name"], "h264", "{probe}");
    assert_eq!(
        (probe["width"].as_u64(), probe["height"].as_u64()),
        (Some(1920), Some(1088))
    );
    assert_eq!(probe["nb_read_frames"], "25", "{probe}");
    assert_eq!(probe["r_frame_rate"], "24/1", "{probe}");

    let job = get(&format!("/v1/jobs/{job_id}"), &key).body;
    assert_eq!(
        (
            job["job_type"].as_str(),
            job["status"].as_str(),
            job["model_id"].as_str()
        ),
        (Some("video"), Some("completed"), Some("ltx-2.3-fast"))
    );
    assert_eq!(job["outputs"][0]["content_type"], "video/mp4");
    assert_eq!(job["outputs"][0]["width"], 1920);
    assert_eq!(job["params"]["num_frames"], 25);
    // 25 frames = 25/24 s at $0.04/s → ceil(41,666.67) µ$.
    assert_eq!(micros(&job["cost_usd"]), 41_667);
    let after = credits(&key);
    assert_eq!(
        micros(&before["balance_usd"]) - micros(&after["balance_usd"]),
        41_667
    );
    assert_eq!(after["held_usd"], json!(0));
}

#[test]
fn other_video_sizes_are_upscaled_too() {
    let key = new_account();
    for (w, h, frames) in [(544, 960, 33), (768, 768, 25)] {
        let r = post(
            "/v1/video/generations",
            &key,
            &json!({"prompt": "a lighthouse", "model": "ltx-2.3-fast", "width": w, "height": h,
                    "num_frames": frames}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let (_, _, bytes) = download(r.body["data"][0]["url"].as_str().unwrap());
        let probe = ffprobe(&bytes);
        assert_eq!(
            (probe["width"].as_u64(), probe["height"].as_u64()),
            (Some(2 * w), Some(2 * h)),
            "{probe}"
        );
        assert_eq!(probe["nb_read_frames"], frames.to_string(), "{probe}");
    }
}

#[test]
fn invalid_video_parameters_get_400_naming_the_param_and_cost_nothing() {
    let key = new_account();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "prompt", "missing_parameter"),
        (
            json!({"prompt": "x", "model": "flux2-dev"}),
            "model",
            "model_not_found",
        ),
        (
            json!({"prompt": "x", "width": 1280, "height": 720}),
            "width",
            "invalid_dimensions",
        ),
        (
            json!({"prompt": "x", "height": 960}),
            "height",
            "invalid_dimensions",
        ),
        (
            json!({"prompt": "x", "num_frames": 100}),
            "num_frames",
            "invalid_num_frames",
        ),
        (
            json!({"prompt": "x", "num_frames": 17}),
            "num_frames",
            "invalid_num_frames",
        ),
        (
            json!({"prompt": "x", "num_frames": 249}),
            "num_frames",
            "invalid_num_frames",
        ),
        (json!({"prompt": "x", "fps": 30}), "fps", "invalid_value"),
        (
            json!({"prompt": "x", "seed": "lucky"}),
            "seed",
            "invalid_type",
        ),
        (
            json!({"prompt": "x", "input_files": ["job_0000000000000000000000000a-0.png",
                                                  "job_0000000000000000000000000a-1.png"]}),
            "input_files",
            "invalid_value",
        ),
        (
            json!({"prompt": "x", "steps": 30}),
            "steps",
            "unknown_parameter",
        ),
    ];
    for (body, param, code) in cases {
        let r = post("/v1/video/generations", &key, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(
            error_of(&r),
            (code.to_owned(), Some(param.to_owned())),
            "{body}"
        );
    }
    let r = post(
        "/v1/video/generations",
        &key,
        &json!({"prompt": "x", "num_frames": 100}),
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("97 or 105"),
        "{}",
        r.body
    );
    let c = credits(&key);
    assert_eq!(
        (c["balance_usd"].clone(), c["held_usd"].clone()),
        (json!(2), json!(0))
    );
    let active = get("/v1/jobs/active", &key);
    assert_eq!(active.body["data"], json!([]), "{}", active.body);
    // Only the trial grant is on the ledger: no charge, no refund.
    let usage = get("/v1/usage", &key).body;
    assert_eq!(usage["data"].as_array().map(Vec::len), Some(1), "{usage}");
    assert_eq!(usage["data"][0]["source"], "grant", "{usage}");
}

#[test]
fn cancelling_a_running_job_stops_it_and_releases_the_hold() {
    let key = new_account();
    let id = submit_async(
        &key,
        &json!({"prompt": slow("a slow cat", 200), "steps": 40}),
    );
    wait_for(&key, &id, "started processing", |j| {
        j["status"] == "processing"
    });
    assert_eq!(micros(&credits(&key)["held_usd"]), 20_000);

    let r = reply(
        client()
            .delete(format!("{}/v1/jobs/{id}", env().edge))
            .bearer_auth(&key)
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    let c = credits(&key);
    assert_eq!(
        (c["balance_usd"].clone(), c["held_usd"].clone()),
        (json!(2), json!(0))
    );
    // The origin stopped: once it holds no attempt of the job it sends nothing more
    // for it, and the job stays cancelled, with nothing more applied.
    poll_until(
        "the origin to let go of the job",
        Duration::from_secs(60),
        || {
            let answers: Vec<u16> = env()
                .origins
                .iter()
                .map(|o| stop_on_origin(o, &id).status)
                .collect();
            if answers.iter().all(|s| *s == 404) {
                Ok(())
            } else {
                Err(format!("origins answered {answers:?}"))
            }
        },
    );
    let job = get(&format!("/v1/jobs/{id}"), &key).body;
    assert_eq!(
        (job["status"].as_str(), job["outputs"].clone()),
        (Some("cancelled"), json!([]))
    );
    assert_eq!(get("/v1/jobs/active", &key).body["data"], json!([]));

    // A second cancel, and a cancel of another account's job, change nothing.
    let again = reply(
        client()
            .delete(format!("{}/v1/jobs/{id}", env().edge))
            .bearer_auth(&key)
            .send()
            .unwrap(),
    );
    assert_eq!(
        (again.status, error_of(&again).0.as_str()),
        (409, "job_ended")
    );
    let other = new_account();
    let theirs = reply(
        client()
            .delete(format!("{}/v1/jobs/{id}", env().edge))
            .bearer_auth(&other)
            .send()
            .unwrap(),
    );
    assert_eq!(
        (theirs.status, error_of(&theirs).0.as_str()),
        (404, "job_not_found")
    );
    let usage = get("/v1/usage", &key).body;
    assert_eq!(micros(&credits(&key)["balance_usd"]), 2_000_000, "{usage}");
}

#[test]
fn active_lists_running_jobs_only() {
    let key = new_account();
    let id = submit_async(&key, &json!({"prompt": slow("busy", 100)}));
    let active = get("/v1/jobs/active", &key);
    assert_eq!(active.status, 200, "{}", active.body);
    let ids: Vec<&str> = active.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    assert_eq!(
        get("/v1/jobs/active", &new_account()).body["data"],
        json!([])
    );
    wait_terminal(&key, &id);
    assert_eq!(get("/v1/jobs/active", &key).body["data"], json!([]));
}

#[test]
fn a_job_stream_shows_both_video_stages_and_ends_with_the_result() {
    let key = new_account();
    let r = post(
        "/v1/video/generations?async_mode=true",
        &key,
        &json!({"prompt": slow("two stages", 20), "model": "ltx-2.3", "num_frames": 25,
                "replyRef": "order-42"}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["job_id"].as_str().unwrap().to_owned();
    // The key may also travel as `?key=`, for EventSource clients.
    let (head, stream) = Sse::open(&format!("/v1/jobs/{id}/stream?key={key}"), None);
    assert_eq!(head.status, 200, "{}", head.body);
    assert!(head.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = stream.unwrap().until_terminal();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.last(), Some(&"completed"), "{names:?}");
    let stages: Vec<&str> = events
        .iter()
        .filter(|(n, _)| n == "processing")
        .filter_map(|(_, d)| d["progress"]["stage"].as_str())
        .collect();
    assert!(
        stages.contains(&"stage_1") && stages.contains(&"stage_2"),
        "{stages:?}"
    );
    let first_stage_2 = stages.iter().position(|s| *s == "stage_2").unwrap();
    assert!(
        stages[first_stage_2..].iter().all(|s| *s == "stage_2"),
        "{stages:?}"
    );
    let steps: Vec<u64> = events
        .iter()
        .filter(|(n, _)| n == "processing")
        .filter_map(|(_, d)| d["progress"]["step"].as_u64())
        .collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");
    let (_, done) = events.last().unwrap();
    assert_eq!(done["replyRef"], "order-42");
    assert_eq!(done["outputs"][0]["content_type"], "video/mp4");
    assert_eq!(done["progress"]["total_steps"], 40);

    // A late subscriber gets the current (terminal) state first, then the stream ends.
    let (_, late) = Sse::open(&format!("/v1/jobs/{id}/stream"), Some(&key));
    let mut late = late.unwrap();
    let (name, data) = late.next().unwrap();
    assert_eq!(
        (name.as_str(), data["id"].as_str()),
        ("completed", Some(id.as_str()))
    );
    assert!(late.next().is_none());
}

#[test]
fn a_subscriber_joining_mid_run_gets_the_current_state_first_and_pings() {
    let key = new_account();
    let id = submit_async(&key, &json!({"prompt": slow("mid-run", 150), "steps": 30}));
    wait_for(&key, &id, "started processing", |j| {
        j["status"] == "processing"
    });
    let (_, s) = Sse::open(&format!("/v1/jobs/{id}/stream"), Some(&key));
    let mut s = s.unwrap();
    let (name, data) = s.next().unwrap();
    assert_eq!(name, "processing");
    assert!(data["progress"]["step"].as_u64().unwrap() >= 1, "{data}");
    // The test stack pings every 2 s; the job runs ~4.5 s.
    let mut saw_ping = false;
    while let Some((name, _)) = s.next() {
        saw_ping |= name == "ping";
        if name == "completed" {
            break;
        }
    }
    assert!(saw_ping, "no ping during a 4 s job");
}

#[test]
fn streams_need_a_key_and_hide_other_accounts_jobs() {
    let key = new_account();
    let id = submit_async(&key, &json!({"prompt": "mine"}));
    let (r, s) = Sse::open(&format!("/v1/jobs/{id}/stream"), None);
    assert!(s.is_none());
    assert_eq!(
        (r.status, error_of(&r).0.as_str()),
        (401, "missing_api_key")
    );
    let (r, _) = Sse::open(&format!("/v1/jobs/{id}/stream?key=sk-gen-nope"), None);
    assert_eq!(r.status, 401);
    let (r, _) = Sse::open(&format!("/v1/jobs/{id}/stream"), Some(&new_account()));
    assert_eq!((r.status, error_of(&r).0.as_str()), (404, "job_not_found"));
    let (r, _) = Sse::open("/v1/jobs/stream/user", None);
    assert_eq!(r.status, 401);
    // `?key=` is for event streams only.
    let r = get(&format!("/v1/jobs/{id}?key={key}"), "");
    assert_eq!(r.status, 401);
}

#[test]
fn the_user_stream_carries_every_job_of_the_account() {
    let key = new_account();
    let (head, s) = Sse::open("/v1/jobs/stream/user", Some(&key));
    assert_eq!(head.status, 200);
    let mut s = s.unwrap();
    let a = submit_async(&key, &json!({"prompt": "first"}));
    let b = submit_async(&key, &json!({"prompt": "second"}));
    let mut completed = std::collections::HashSet::new();
    let mut seen_for: std::collections::HashMap<String, Vec<String>> = Default::default();
    while completed.len() < 2 {
        let (name, data) = s.next().expect("the user stream stays open");
        if name == "ping" {
            continue;
        }
        let job = data["id"].as_str().unwrap().to_owned();
        assert!(job == a || job == b, "another account's job: {data}");
        seen_for.entry(job.clone()).or_default().push(name.clone());
        if name == "completed" {
            completed.insert(job);
        }
    }
    for (job, names) in seen_for {
        assert!(names.contains(&"processing".to_owned()), "{job}: {names:?}");
    }
}

#[test]
fn estimates_come_from_completed_jobs() {
    let key = new_account();
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "for the estimate"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let e = reply(
        client()
            .get(format!(
                "{}/v1/jobs/estimate?workflow_id=flux2-dev:txt2img",
                env().edge
            ))
            .send()
            .unwrap(),
    );
    assert_eq!(e.status, 200, "{}", e.body);
    assert!(e.body["sample_count"].as_u64().unwrap() >= 1, "{}", e.body);
    assert!(e.body["avg_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(e.body["source"], "recent_jobs");
    for bad in [
        "",
        "?workflow_id=sdxl:txt2img",
        "?workflow_id=flux2-dev:t2v",
    ] {
        let r = reply(
            client()
                .get(format!("{}/v1/jobs/estimate{bad}", env().edge))
                .send()
                .unwrap(),
        );
        assert_eq!(
            (r.status, error_of(&r)),
            (400, ("unknown_workflow".into(), Some("workflow_id".into())))
        );
    }
    let fresh = reply(
        client()
            .get(format!(
                "{}/v1/jobs/estimate?workflow_id=ltx-2.3:i2v",
                env().edge
            ))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (
            fresh.body["sample_count"].as_u64(),
            fresh.body["source"].as_str()
        ),
        (Some(0), Some("typical"))
    );
}

#[test]
fn the_catalog_lists_models_with_costs_schemas_and_availability() {
    let r = reply(
        client()
            .get(format!("{}/v1/models", env().edge))
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let models = r.body["data"].as_array().unwrap();
    let ids: Vec<&str> = models.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, ["flux2-dev", "ltx-2.3", "ltx-2.3-fast"]);
    for m in models {
        assert_eq!(m["available"], true, "{m}");
        assert!(m["parameters"]["properties"]["prompt"].is_object(), "{m}");
        assert!(m["cost"]["rule"].as_str().is_some(), "{m}");
    }
    assert_eq!(models[0]["cost"]["usd_per_unit"], json!(0.02));
    assert_eq!(
        models[1]["parameters"]["properties"]["num_frames"]["default"],
        121
    );
}

#[test]
fn queue_status_and_health_describe_the_pool() {
    let q = reply(
        client()
            .get(format!("{}/v1/queue/status", env().edge))
            .send()
            .unwrap(),
    );
    assert_eq!(q.status, 200, "{}", q.body);
    assert!(["idle", "busy"].contains(&q.body["status"].as_str().unwrap()));
    for f in ["queue_running", "queue_pending"] {
        assert!(q.body[f].as_u64().is_some(), "{}", q.body);
    }
    assert!(q.body["estimated_wait_seconds"].as_f64().is_some());
    let h = reply(
        client()
            .get(format!("{}/health", env().edge))
            .send()
            .unwrap(),
    );
    let o = &h.body["origins"][0];
    assert_eq!(
        (o["id"].as_str(), o["status"].as_str()),
        (Some("origin-1"), Some("up")),
        "{}",
        h.body
    );
    assert_eq!(o["slots"], 16);
    assert!(o["last_heartbeat_at"].as_str().is_some(), "{o}");
    let models: Vec<&str> = o["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    assert!(models.contains(&"ltx-2.3"), "{o}");
}

/// Every operation in the served OpenAPI document exists on the edge: the route
/// resolves and takes that method (the answer may be 401, 400 or 404 for the dummy ids,
/// but never `unknown_route` or 405).
#[test]
fn every_documented_operation_is_routed() {
    let doc = reply(
        client()
            .get(format!("{}/openapi.json", env().edge))
            .send()
            .unwrap(),
    );
    assert_eq!(doc.status, 200);
    let paths = doc.body["paths"].as_object().expect("paths");
    assert!(
        paths.contains_key("/v1/video/generations") && paths.contains_key("/v1/jobs/{id}/stream")
    );
    let mut checked = 0;
    for (path, ops) in paths {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in ops.as_object().unwrap().keys() {
            let Ok(m) = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            if !["GET", "POST", "PUT", "DELETE", "HEAD"].contains(&m.as_str()) {
                continue;
            }
            let r = reply(
                client()
                    .request(m.clone(), format!("{}{concrete}", env().edge))
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .unwrap(),
            );
            let code = r.body["error"]["code"].as_str().unwrap_or("");
            assert!(
                code != "unknown_route" && r.status != 405,
                "{m} {path} is documented but not routed: {} {}",
                r.status,
                r.body
            );
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} operations documented");
}

/// `/llms.txt` is the committed `docs/llms.txt`, as UTF-8 text.
#[test]
fn llms_txt_is_served() {
    let r = client()
        .get(format!("{}/llms.txt", env().edge))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/plain; charset=utf-8"
    );
    let committed =
        std::fs::read_to_string(kiln_tests::workspace_root().join("docs/llms.txt")).unwrap();
    assert_eq!(r.text().unwrap(), committed);
}

#[test]
fn many_subscribers_of_one_job_all_see_it_end() {
    let key = new_account();
    let id = submit_async(&key, &json!({"prompt": slow("crowd", 100)}));
    let watchers: Vec<_> = (0..4)
        .map(|_| {
            let (key, id) = (key.clone(), id.clone());
            std::thread::spawn(move || {
                let (_, s) = Sse::open(&format!("/v1/jobs/{id}/stream"), Some(&key));
                s.unwrap().until_terminal()
            })
        })
        .collect();
    for w in watchers {
        let events = w.join().unwrap();
        let (name, data) = events.last().unwrap();
        assert_eq!(
            (name.as_str(), data["id"].as_str()),
            ("completed", Some(id.as_str()))
        );
    }
}
