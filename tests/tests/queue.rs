//! End-to-end tests of the dispatcher with two origins of one slot each: fair order
//! across accounts, queue positions, cancel of queued and running jobs, a full status
//! sequence on the event stream, and crash recovery when an origin process is killed
//! mid-job, the sync window's 202 fallback and the hard timeout. The tests share the
//! two slots, so they take turns (`serial`).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::*;
use kiln_tests::stack::StackConfig;
use serde_json::{json, Value};

/// Two origins, one slot each, a short lease so a killed origin is noticed quickly.
fn two_single_slot_origins(dir: PathBuf) -> StackConfig {
    StackConfig {
        origin_ports: vec![None, None],
        origin_slots: 1,
        lease_secs: 3,
        heartbeat_ms: 200,
        // Short windows, so the sync fallback and the hard timeout are seen in seconds.
        sync_wait_secs: 3,
        job_timeout_secs: 12,
        ..StackConfig::test(dir)
    }
}

static SLOTS: Mutex<()> = Mutex::new(());

/// Starts the stack (first time) and takes the two slots for this test.
fn serial() -> MutexGuard<'static, ()> {
    let guard = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    env_with(two_single_slot_origins);
    guard
}

fn slow(prompt: &str, ms: u32) -> Value {
    json!({"prompt": format!("{prompt} [[sim:step_ms={ms}]]"), "steps": 10})
}

fn ms(job: &Value, field: &str) -> i64 {
    job["metadata"]["timings_ms"][field]
        .as_i64()
        .unwrap_or_else(|| panic!("no {field}: {job}"))
}

#[test]
fn two_accounts_are_served_alternately_and_no_origin_runs_two_jobs_at_once() {
    let _slots = serial();
    let (a, b) = (new_account(), new_account());
    // A's first job is long and keeps one origin busy throughout, so the other origin
    // serves the rest one at a time and its start order is the dispatch order.
    let mut jobs: Vec<(String, &str)> = Vec::new();
    let long = json!({"prompt": "a0 [[sim:step_ms=150]]", "steps": 50});
    jobs.push((submit_async(&a, &long), "A"));
    for i in 1..4 {
        jobs.push((submit_async(&a, &slow(&format!("a{i}"), 50)), "A"));
    }
    for i in 0..2 {
        jobs.push((submit_async(&b, &slow(&format!("b{i}"), 50)), "B"));
    }
    // Two run at once; the rest wait in round-robin order: B's first job is next.
    let key_of = |acct: &str| if acct == "A" { &a } else { &b };
    let positions: HashMap<String, Value> = jobs
        .iter()
        .map(|(id, acct)| {
            let j = get(&format!("/v1/jobs/{id}"), key_of(acct)).body;
            (id.clone(), j["queue_position"].clone())
        })
        .collect();
    assert_eq!(positions[&jobs[4].0], json!(1), "{positions:?}");

    let done: Vec<(Value, &str)> = jobs
        .iter()
        .map(|(id, acct)| (wait_terminal(key_of(acct), id), *acct))
        .collect();
    for (j, _) in &done {
        assert_eq!(j["status"], "completed", "{j}");
    }
    // Per origin, each job starts after the previous one completed.
    let mut by_origin: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for (j, _) in &done {
        let origin = j["metadata"]["origin_id"].as_str().unwrap().to_owned();
        by_origin
            .entry(origin)
            .or_default()
            .push((ms(j, "started_at"), ms(j, "completed_at")));
    }
    assert_eq!(by_origin.len(), 2, "both origins worked: {by_origin:?}");
    for (origin, mut runs) in by_origin {
        runs.sort();
        for w in runs.windows(2) {
            assert!(w[1].0 >= w[0].1, "{origin} ran two jobs at once: {runs:?}");
        }
    }
    // In start order: A's first two took the free slots, then B, A, B, A, although A
    // had queued its jobs first.
    let mut order: Vec<(i64, &str)> = done
        .iter()
        .map(|(j, acct)| (ms(j, "started_at"), *acct))
        .collect();
    order.sort();
    let accounts: Vec<&str> = order.iter().map(|(_, a)| *a).collect();
    assert_eq!(accounts, ["A", "A", "B", "A", "B", "A"]);
}

#[test]
fn cancel_of_a_queued_and_of_a_running_job_releases_their_holds() {
    let _slots = serial();
    let key = new_account();
    let running: Vec<String> = (0..2)
        .map(|i| submit_async(&key, &slow(&format!("fill{i}"), 300)))
        .collect();
    let queued = submit_async(&key, &slow("waiting", 10));
    for id in &running {
        wait_for(&key, id, "started", |j| j["status"] != "queued");
    }
    let q = get(&format!("/v1/jobs/{queued}"), &key).body;
    assert_eq!(
        (q["status"].as_str(), q["queue_position"].as_u64()),
        (Some("queued"), Some(1)),
        "{q}"
    );
    assert_eq!(micros(&credits(&key)["held_usd"]), 60_000);

    let r = delete(&format!("/v1/jobs/{queued}"), &key);
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("cancelled")),
        "{}",
        r.body
    );
    assert_eq!(micros(&credits(&key)["held_usd"]), 40_000);
    for id in &running {
        let r = delete(&format!("/v1/jobs/{id}"), &key);
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (200, Some("cancelled")),
            "{}",
            r.body
        );
    }
    let c = credits(&key);
    assert_eq!(
        (c["balance_usd"].clone(), c["held_usd"].clone()),
        (json!(2), json!(0))
    );
    // The GPUs were really freed: a new job runs at once and completes.
    let next = submit_async(&key, &json!({"prompt": "after the cancels"}));
    assert_eq!(wait_terminal(&key, &next)["status"], "completed");
    for id in running.iter().chain([&queued]) {
        assert_eq!(
            get(&format!("/v1/jobs/{id}"), &key).body["status"],
            "cancelled"
        );
    }
}

#[test]
fn a_stream_opened_while_queued_sees_every_status_in_order() {
    let _slots = serial();
    let key = new_account();
    let fillers: Vec<String> = (0..2)
        .map(|i| submit_async(&key, &slow(&format!("fill{i}"), 100)))
        .collect();
    for id in &fillers {
        wait_for(&key, id, "started", |j| j["status"] != "queued");
    }
    let id = submit_async(&key, &json!({"prompt": "watched", "replyRef": "r-1"}));
    let (_, s) = Sse::open(&format!("/v1/jobs/{id}/stream"), Some(&key));
    let events = s.unwrap().until_terminal();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"queued"), "{names:?}");
    assert_eq!(events[0].1["queue_position"], 1, "{}", events[0].1);
    let rank = |n: &str| {
        ["queued", "loading_model", "processing", "completed"]
            .iter()
            .position(|x| *x == n)
    };
    let ranks: Vec<usize> = names
        .iter()
        .map(|n| rank(n).unwrap_or_else(|| panic!("{n}")))
        .collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "out of order: {names:?}"
    );
    for want in ["loading_model", "processing", "completed"] {
        assert!(names.contains(&want), "{want} missing: {names:?}");
    }
    assert_eq!(events.last().unwrap().1["replyRef"], "r-1");
    for f in fillers {
        wait_terminal(&key, &f);
    }
}

#[test]
fn a_killed_origin_loses_its_job_to_the_other_then_jobs_fail_with_a_refund() {
    let _slots = serial();
    let key = new_account();
    let id = submit_async(&key, &slow("survivor", 150));
    let job = wait_for(&key, &id, "processing", |j| j["status"] == "processing");
    let victim = job["metadata"]["origin_id"].as_str().unwrap().to_owned();
    let (victim_ix, other_ix) = if victim == "origin-1" { (0, 1) } else { (1, 0) };
    env().kill_origin(victim_ix);

    let done = wait_terminal(&key, &id);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempt"], 2, "{done}");
    assert_ne!(
        done["metadata"]["origin_id"].as_str(),
        Some(victim.as_str())
    );
    let c = credits(&key);
    assert_eq!(
        (micros(&c["balance_usd"]), c["held_usd"].clone()),
        (1_980_000, json!(0))
    );

    // Now the only origin left dies mid-job: nobody can take over, so the job fails
    // and is refunded.
    let id = submit_async(&key, &slow("orphan", 150));
    wait_for(&key, &id, "processing", |j| j["status"] == "processing");
    let waiting = submit_async(&key, &slow("waiting", 10));
    assert_eq!(
        get(&format!("/v1/jobs/{waiting}"), &key).body["status"],
        "queued"
    );
    env().kill_origin(other_ix);
    let failed = wait_terminal(&key, &id);
    assert_eq!(
        (failed["status"].as_str(), failed["error_code"].as_str()),
        (Some("failed"), Some("origin_lost")),
        "{failed}"
    );
    // The job still waiting in the queue fails too, once no origin has been up for a
    // whole lease, rather than at its hard timeout.
    let unserved = wait_terminal(&key, &waiting);
    assert_eq!(
        (unserved["status"].as_str(), unserved["error_code"].as_str()),
        (Some("failed"), Some("no_capacity")),
        "{unserved}"
    );
    let c = credits(&key);
    assert_eq!(
        (micros(&c["balance_usd"]), c["held_usd"].clone()),
        (1_980_000, json!(0))
    );

    // With every origin down, a new job is refused at once, at no cost. The refusal
    // and `/health` read the same origin status.
    poll_until("every origin to be down", Duration::from_secs(60), || {
        let health = get("/health", "").body;
        let origins = health["origins"].as_array().unwrap();
        let down = !origins.is_empty() && origins.iter().all(|o| o["status"] == "down");
        down.then_some(()).ok_or_else(|| health.to_string())
    });
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "nobody home"}),
    );
    assert_eq!(
        (r.status, error_of(&r).0.as_str()),
        (503, "no_capacity"),
        "{}",
        r.body
    );
    assert_eq!(micros(&credits(&key)["held_usd"]), 0);

    env().start_origin(victim_ix);
    env().start_origin(other_ix);
    let again = submit_async(&key, &json!({"prompt": "back up"}));
    assert_eq!(wait_terminal(&key, &again)["status"], "completed");
}

#[test]
fn a_sync_request_past_its_window_gets_202_with_the_job_and_a_location() {
    let _slots = serial();
    let key = new_account();
    // ~6 s of work against the test stack's 3 s sync window.
    let r = post("/v1/images/generations", &key, &slow("patience", 600));
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["location"], format!("/v1/jobs/{id}").as_str());
    assert!(
        ["loading_model", "processing"].contains(&r.body["status"].as_str().unwrap()),
        "{}",
        r.body
    );
    assert_eq!(r.body["object"], "job");
    // `Prefer: wait=1` waits a second, then answers like async.
    let p = reply(
        client()
            .post(format!("{}/v1/images/generations", env().edge))
            .bearer_auth(&key)
            .header("prefer", "wait=1")
            .json(&slow("brief", 300))
            .send()
            .unwrap(),
    );
    assert_eq!(p.status, 202, "{}", p.body);
    let pid = p.body["job_id"].as_str().unwrap().to_owned();
    assert!(p.body["polling_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v1/jobs/{pid}")));
    assert_eq!(wait_terminal(&key, &id)["status"], "completed");
    assert_eq!(wait_terminal(&key, &pid)["status"], "completed");
}

#[test]
fn a_job_past_its_hard_timeout_fails_with_504_and_is_refunded() {
    let _slots = serial();
    let key = new_account();
    // 20 s of work against the test stack's 12 s hard timeout.
    let id = submit_async(
        &key,
        &json!({"prompt": "forever [[sim:step_ms=1000]]", "steps": 20}),
    );
    let failed = wait_terminal(&key, &id);
    assert_eq!(
        (failed["status"].as_str(), failed["error_code"].as_str()),
        (Some("failed"), Some("generation_timeout")),
        "{failed}"
    );
    let c = credits(&key);
    assert_eq!(
        (c["balance_usd"].clone(), c["held_usd"].clone()),
        (json!(2), json!(0))
    );
    // The origin was told to stop: both slots take new work at once.
    let next: Vec<String> = (0..2)
        .map(|i| submit_async(&key, &slow(&format!("n{i}"), 10)))
        .collect();
    for id in next {
        assert_eq!(wait_terminal(&key, &id)["status"], "completed");
    }
    // Synchronous callers of a timed-out job get 504 in the error shape.
    let job = get(&format!("/v1/jobs/{id}"), &key).body;
    assert!(
        job["error_message"]
            .as_str()
            .unwrap()
            .contains("time limit"),
        "{job}"
    );
}
