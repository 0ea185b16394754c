//! End-to-end: file retention on a stack that keeps files for a few seconds. Every
//! upload and output carries `expires_at`; past it the file answers 410 `expired` (and
//! cannot be a job's input), the scheduled sweep (the Cron Trigger, run through
//! `wrangler dev --test-scheduled`) deletes its bytes, and the job keeps its record.

mod common;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use kiln_tests::stack::StackConfig;
use reqwest::blocking::multipart::{Form, Part};
use serde_json::json;

/// Long enough to use a file right after creating it, short enough to wait out.
const RETENTION_SECS: u64 = 6;

fn config(dir: PathBuf) -> StackConfig {
    StackConfig {
        file_retention_secs: RETENTION_SECS,
        ..StackConfig::test(dir)
    }
}

fn stack() -> &'static Env {
    env_with(config)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn tiny_png() -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 4, 4);
    enc.set_color(png::ColorType::Rgba);
    enc.write_header()
        .unwrap()
        .write_image_data(&[200; 64])
        .unwrap();
    out
}

/// Seconds from now until an RFC 3339 time (UTC, second precision).
fn secs_until(rfc3339: &str) -> i64 {
    let t = unix_secs(rfc3339);
    t - now_secs()
}

/// `2026-11-26T13:40:00Z` → Unix seconds (days-from-civil).
fn unix_secs(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss) = (n(11..13), n(14..16), n(17..19));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400 + hh * 3600 + mm * 60 + ss
}

#[test]
fn files_expire_answer_410_and_are_swept_while_the_job_keeps_its_record() {
    let env = stack();
    let key = new_account();
    let form = Form::new().part("file", Part::bytes(tiny_png()).file_name("t.png"));
    let up = reply(
        client()
            .post(format!("{}/v1/uploads", env.edge))
            .bearer_auth(&key)
            .multipart(form)
            .send()
            .unwrap(),
    );
    assert_eq!(up.status, 201, "{}", up.body);
    let upload = up.body["filename"].as_str().unwrap().to_owned();
    let left = secs_until(up.body["expires_at"].as_str().unwrap());
    assert!(
        (0..=RETENTION_SECS as i64 + 1).contains(&left),
        "{}",
        up.body
    );

    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "short-lived", "width": 512, "height": 512}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let job_id = r.body["job_id"].as_str().unwrap().to_owned();
    let url = r.body["data"][0]["url"].as_str().unwrap().to_owned();
    let job = get(&format!("/v1/jobs/{job_id}"), &key);
    let expires = job.body["outputs"][0]["expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        secs_until(&expires) <= RETENTION_SECS as i64 + 1,
        "{}",
        job.body
    );
    assert_eq!(download(&url).0, 200);
    let listed = get("/v1/generations/mine", &key);
    assert_eq!(
        listed.body["data"][0]["expires_at"],
        expires.as_str(),
        "{}",
        listed.body
    );

    // Past its expires_at: 410 in the error shape, gone from the lists, and no longer
    // an input.
    let gone = poll_until("the output expires", Duration::from_secs(30), || {
        let r = reply(client().get(&url).send().unwrap());
        if r.status == 410 {
            Ok(r)
        } else {
            Err(format!("{}", r.status))
        }
    });
    assert_eq!(error_of(&gone).0, "expired", "{}", gone.body);
    poll_until(
        "the upload leaves the list",
        Duration::from_secs(30),
        || {
            let l = get("/v1/uploads/mine", &key);
            if l.body["data"] == json!([]) {
                Ok(())
            } else {
                Err(l.body.to_string())
            }
        },
    );
    let r = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "x", "input_files": [upload]}),
    );
    assert_eq!(
        (r.status, error_of(&r)),
        (410, ("expired".into(), Some("input_files".into()))),
        "{}",
        r.body
    );

    // The sweep empties the expired files; they keep answering 410.
    let swept = reply(
        client()
            .get(format!("{}/__scheduled?cron=*/15+*+*+*+*", env.edge))
            .send()
            .unwrap(),
    );
    assert_eq!(swept.status, 200);
    let r = reply(client().get(&url).send().unwrap());
    assert_eq!(
        (r.status, error_of(&r).0.as_str()),
        (410, "expired"),
        "{}",
        r.body
    );
    let job = get(&format!("/v1/jobs/{job_id}"), &key);
    assert_eq!(job.body["status"], "completed");
    assert_eq!(
        job.body["outputs"][0]["expires_at"],
        expires.as_str(),
        "{}",
        job.body
    );
}
