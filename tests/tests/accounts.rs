//! End-to-end: accounts, keys and the credit ledger on the real stack — holds under
//! concurrency, refunds, idempotency, Stripe top-ups, revocation, rate limits, usage,
//! operator adjustments and test-mode keys.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{json, Value};

fn admin_adjust(account_id: &str, amount: Value, reason: &str) -> Reply {
    reply(
        client()
            .post(format!(
                "{}/admin/accounts/{account_id}/credits",
                env().edge
            ))
            .bearer_auth(&env().admin_token)
            .json(&json!({"amount_usd": amount, "reason": reason}))
            .send()
            .unwrap(),
    )
}

fn account_id(key: &str) -> String {
    credits(key)["account_id"].as_str().unwrap().to_owned()
}

fn post_with(path: &str, key: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    let mut req = client()
        .post(format!("{}{path}", env().edge))
        .bearer_auth(key)
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req.send().unwrap())
}

#[test]
fn fifty_concurrent_submissions_on_ten_images_of_credit() {
    let key = new_account();
    let id = account_id(&key);
    let r = admin_adjust(&id, json!(-1.8), "leave exactly ten images of credit");
    assert_eq!(
        (r.status, r.body["balance_usd"].clone()),
        (200, json!(0.2)),
        "{}",
        r.body
    );

    let handles: Vec<_> = (0..50)
        .map(|i| {
            let key = key.clone();
            std::thread::spawn(move || {
                post(
                    "/v1/images/generations?async_mode=true",
                    &key,
                    &json!({"prompt": format!("burst {i}"), "size": "512x512", "steps": 8}),
                )
            })
        })
        .collect();
    let replies: Vec<Reply> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let accepted: Vec<&Reply> = replies.iter().filter(|r| r.status == 202).collect();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 402).collect();
    assert_eq!(
        (accepted.len(), refused.len()),
        (10, 40),
        "statuses: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in &refused {
        assert_eq!(error_of(r).0, "insufficient_credits");
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("$0.02") && msg.contains("$0"),
            "states required and available: {msg}"
        );
    }
    let mut completed = 0;
    for r in &accepted {
        let job = wait_terminal(&key, r.body["job_id"].as_str().unwrap());
        if job["status"] == "completed" {
            completed += 1;
        }
    }
    assert_eq!(completed, 10);
    let c = credits(&key);
    assert_eq!(
        (c["balance_usd"].clone(), c["held_usd"].clone()),
        (json!(0), json!(0)),
        "{c}"
    );
}

#[test]
fn a_job_that_fails_on_the_origin_is_refunded_and_usage_shows_it() {
    let key = new_account();
    let before = credits(&key);
    let failed = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "[[sim:fail]]", "size": "512x512", "steps": 8}),
    );
    assert_eq!(failed.status, 500, "{}", failed.body);
    let ok = post(
        "/v1/images/generations",
        &key,
        &json!({"prompt": "works", "size": "512x512", "steps": 8}),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let after = credits(&key);
    assert_eq!(
        after["balance_usd"],
        json!(1.98),
        "only the completed job is charged: {before} → {after}"
    );
    assert_eq!(after["held_usd"], json!(0));

    let usage = get("/v1/usage", &key).body;
    let rows = usage["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{usage}");
    assert_eq!(
        (rows[0]["type"].as_str(), rows[0]["status"].as_str()),
        (Some("charge"), Some("charged"))
    );
    assert_eq!(rows[0]["job_id"], ok.body["job_id"]);
    assert_eq!(
        (rows[1]["status"].as_str(), rows[1]["refunded"].as_bool()),
        (Some("refunded"), Some(true))
    );
    assert_eq!(rows[1]["prompt_preview"], "[[sim:fail]]");
    assert_eq!(
        (rows[2]["type"].as_str(), rows[2]["amount_usd"].clone()),
        (Some("credit"), json!(2))
    );

    // Cursor pagination walks the same rows one at a time.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get(&format!("/v1/usage?limit=1&cursor={cursor}"), &key).body;
        seen.push(page["data"][0]["id"].clone());
        if page["has_more"] != true {
            break;
        }
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(
        seen,
        rows.iter().map(|r| r["id"].clone()).collect::<Vec<_>>()
    );
}

#[test]
fn idempotency_key_returns_the_first_response_and_charges_once() {
    let key = new_account();
    let body = json!({"prompt": "only once", "size": "512x512", "steps": 8});
    let first = post_with(
        "/v1/images/generations",
        &key,
        &[("Idempotency-Key", "order-1")],
        &body,
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let again = post_with(
        "/v1/images/generations",
        &key,
        &[("Idempotency-Key", "order-1")],
        &body,
    );
    assert_eq!((again.status, &again.body), (200, &first.body));
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(
        again.headers["x-kiln-job-id"],
        first.headers["x-kiln-job-id"]
    );
    assert_eq!(credits(&key)["balance_usd"], json!(1.98));

    let other = post_with(
        "/v1/images/generations",
        &key,
        &[("Idempotency-Key", "order-1")],
        &json!({"prompt": "something else"}),
    );
    assert_eq!(
        (other.status, error_of(&other).0.as_str()),
        (409, "idempotency_conflict")
    );
    let bad = post_with(
        "/v1/images/generations",
        &key,
        &[("Idempotency-Key", "has space")],
        &body,
    );
    assert_eq!(
        (bad.status, error_of(&bad).1.as_deref()),
        (400, Some("Idempotency-Key"))
    );
    // A request that failed validation is not remembered: the key can be used again.
    let invalid = post_with(
        "/v1/images/generations",
        &key,
        &[("Idempotency-Key", "order-2")],
        &json!({"prompt": ""}),
    );
    assert_eq!(invalid.status, 400);
    let valid = post_with(
        "/v1/images/generations",
        &key,
        &[("Idempotency-Key", "order-2")],
        &json!({"prompt": ""}),
    );
    assert_eq!(valid.status, 400);
    assert_eq!(credits(&key)["balance_usd"], json!(1.98));

    // Key creation is idempotent too: one key, shown the same way twice.
    let k1 = post_with(
        "/v1/keys",
        &key,
        &[("Idempotency-Key", "key-1")],
        &json!({"label": "ci"}),
    );
    let k2 = post_with(
        "/v1/keys",
        &key,
        &[("Idempotency-Key", "key-1")],
        &json!({"label": "ci"}),
    );
    assert_eq!((k1.status, k2.status), (201, 201));
    assert_eq!(k1.body["id"], k2.body["id"]);
    let listed = get("/v1/keys", &key).body;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed}");
}

#[test]
fn keys_are_listed_without_secrets_and_revocation_is_immediate() {
    let key = new_account();
    let created = post("/v1/keys", &key, &json!({"label": "n8n"}));
    assert_eq!(created.status, 201, "{}", created.body);
    let second = created.body["api_key"].as_str().unwrap().to_owned();
    assert!(second.starts_with("sk-trial-"));
    assert_eq!(get("/v1/credits", &second).status, 200);

    let list = get("/v1/keys", &key).body;
    let text = list.to_string();
    assert!(
        !text.contains(&second) && !text.contains(&key),
        "secrets never listed: {text}"
    );
    let n8n = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "n8n")
        .unwrap();
    assert!(n8n["last_used_at"].is_string(), "{n8n}");

    let revoked = delete(
        &format!("/v1/keys/{}", created.body["id"].as_str().unwrap()),
        &key,
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let after = get("/v1/credits", &second);
    assert_eq!(
        (after.status, error_of(&after).0.as_str()),
        (401, "invalid_api_key")
    );
    let gen = post("/v1/images/generations", &second, &json!({"prompt": "x"}));
    assert_eq!(gen.status, 401);
    assert_eq!(
        delete(
            &format!("/v1/keys/{}", created.body["id"].as_str().unwrap()),
            &key
        )
        .status,
        404
    );
    assert_eq!(
        get("/v1/credits", &key).status,
        200,
        "the other key still works"
    );
}

#[test]
fn invalid_key_and_usage_requests_get_400_and_change_nothing() {
    let key = new_account();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"label": "x".repeat(65)}), "label", "invalid_value"),
        (json!({"mode": "prod"}), "mode", "invalid_value"),
        (
            json!({"rate_limit_per_min": 0}),
            "rate_limit_per_min",
            "out_of_range",
        ),
        (json!({"owner": "me"}), "owner", "unknown_parameter"),
    ];
    for (body, param, code) in cases {
        let r = post("/v1/keys", &key, &body);
        assert_eq!(
            (r.status, error_of(&r)),
            (400, (code.to_owned(), Some(param.to_owned()))),
            "{body}"
        );
    }
    assert_eq!(
        get("/v1/keys", &key).body["data"].as_array().unwrap().len(),
        1
    );
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("cursor=zzz", "cursor"),
    ] {
        let r = get(&format!("/v1/usage?{query}"), &key);
        assert_eq!(
            (r.status, error_of(&r).1.as_deref()),
            (400, Some(param)),
            "{query}"
        );
    }
}

#[test]
fn rate_limited_keys_get_429_with_retry_after() {
    let key = new_account();
    let limited = post(
        "/v1/keys",
        &key,
        &json!({"label": "slow", "rate_limit_per_min": 3}),
    )
    .body["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    for remaining in ["2", "1", "0"] {
        let r = get("/v1/credits", &limited);
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["x-ratelimit-limit"], "3");
        assert_eq!(r.headers["x-ratelimit-remaining"], remaining);
        assert!(r.headers.contains_key("x-ratelimit-reset"));
    }
    let r = get("/v1/credits", &limited);
    assert_eq!((r.status, error_of(&r).0.as_str()), (429, "rate_limited"));
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 1
    );
    assert_eq!(get("/v1/credits", &key).status, 200, "limits are per key");
}

fn stripe_event(id: &str, account: &str, amount_cents: i64) -> String {
    json!({
        "id": id, "type": "checkout.session.completed",
        "data": {"object": {"client_reference_id": account, "payment_status": "paid", "amount_total": amount_cents}}
    })
    .to_string()
}

fn send_stripe(payload: &str, signature: Option<String>) -> Reply {
    let mut req = client()
        .post(format!("{}/v1/billing/stripe/webhook", env().edge))
        .header("content-type", "application/json")
        .body(payload.to_owned());
    if let Some(sig) = signature {
        req = req.header("stripe-signature", sig);
    }
    reply(req.send().unwrap())
}

#[test]
fn stripe_top_ups_credit_once_and_forgeries_change_nothing() {
    let key = new_account();
    let id = account_id(&key);
    let secret = &env().stripe_webhook_secret;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let event = stripe_event(&format!("evt_{}", kiln_tests::random_hex(6)), &id, 2000);

    let refused = [
        ("unsigned", None),
        (
            "forged",
            Some(kiln_shared::stripe::sign(
                "whsec_not_ours",
                event.as_bytes(),
                now,
            )),
        ),
        (
            "stale",
            Some(kiln_shared::stripe::sign(
                secret,
                event.as_bytes(),
                now - 301,
            )),
        ),
        (
            "tampered",
            Some(kiln_shared::stripe::sign(
                secret,
                stripe_event("evt_x", &id, 5000).as_bytes(),
                now,
            )),
        ),
    ];
    for (what, sig) in refused {
        let r = send_stripe(&event, sig);
        assert_eq!(
            (r.status, error_of(&r).0.as_str()),
            (400, "invalid_signature"),
            "{what}: {}",
            r.body
        );
    }
    assert_eq!(credits(&key)["balance_usd"], json!(2));

    let ok = send_stripe(
        &event,
        Some(kiln_shared::stripe::sign(secret, event.as_bytes(), now)),
    );
    assert_eq!(
        (ok.status, ok.body["applied"].as_bool()),
        (200, Some(true)),
        "{}",
        ok.body
    );
    // Stripe retries (and replays, re-signed) carry the same event id: applied once.
    let replay = send_stripe(
        &event,
        Some(kiln_shared::stripe::sign(secret, event.as_bytes(), now + 1)),
    );
    assert_eq!(
        (replay.status, replay.body["applied"].as_bool()),
        (200, Some(false))
    );
    let c = credits(&key);
    assert_eq!(
        (c["balance_usd"].clone(), c["is_trial"].clone()),
        (json!(22), json!(false)),
        "{c}"
    );

    // The account is paid now and has an sk-gen- key to reveal, once.
    let keys = get("/v1/keys", &key).body;
    let gen = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "gen")
        .expect("gen key")
        .clone();
    assert_eq!(gen["reveal_available"], true);
    let path = format!("/v1/keys/{}/reveal", gen["id"].as_str().unwrap());
    let revealed = post(&path, &key, &json!({}));
    assert_eq!(revealed.status, 200, "{}", revealed.body);
    let gen_key = revealed.body["api_key"].as_str().unwrap();
    assert!(gen_key.starts_with("sk-gen-"));
    assert_eq!(get("/v1/credits", gen_key).status, 200);
    assert_eq!(post(&path, &key, &json!({})).status, 404, "shown once");

    let unknown_tier = stripe_event("evt_odd", &id, 1234);
    let r = send_stripe(
        &unknown_tier,
        Some(kiln_shared::stripe::sign(
            secret,
            unknown_tier.as_bytes(),
            now,
        )),
    );
    assert_eq!(r.status, 400);
    let nobody = stripe_event("evt_nobody", "acct_0000000000000000", 500);
    let r = send_stripe(
        &nobody,
        Some(kiln_shared::stripe::sign(secret, nobody.as_bytes(), now)),
    );
    assert_eq!(
        (r.status, error_of(&r).0.as_str()),
        (404, "account_not_found")
    );
    assert_eq!(credits(&key)["balance_usd"], json!(22));
}

#[test]
fn admin_adjustments_need_the_token_and_valid_amounts() {
    let key = new_account();
    let id = account_id(&key);
    let wrong = reply(
        client()
            .post(format!("{}/admin/accounts/{id}/credits", env().edge))
            .bearer_auth("not-the-token")
            .json(&json!({"amount_usd": 5, "reason": "x"}))
            .send()
            .unwrap(),
    );
    assert_eq!(wrong.status, 401);
    let cases = [
        (json!({"amount_usd": "abc", "reason": "x"}), "amount_usd"),
        (
            json!({"amount_usd": 0.0000001, "reason": "x"}),
            "amount_usd",
        ),
        (json!({"amount_usd": 0, "reason": "x"}), "amount_usd"),
        (json!({"amount_usd": -2.01, "reason": "x"}), "amount_usd"),
        (json!({"amount_usd": 1}), "reason"),
        (json!({"amount_usd": 1, "reason": ""}), "reason"),
    ];
    for (body, param) in cases {
        let r = reply(
            client()
                .post(format!("{}/admin/accounts/{id}/credits", env().edge))
                .bearer_auth(&env().admin_token)
                .json(&body)
                .send()
                .unwrap(),
        );
        assert_eq!(
            (r.status, error_of(&r).1.as_deref()),
            (400, Some(param)),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(credits(&key)["balance_usd"], json!(2));
    let r = admin_adjust(&id, json!("3.5"), "goodwill credit");
    assert_eq!((r.status, r.body["balance_usd"].clone()), (200, json!(5.5)));
    let usage = get("/v1/usage", &key).body;
    assert_eq!(
        (
            usage["data"][0]["source"].as_str(),
            usage["data"][0]["note"].as_str()
        ),
        (Some("adjustment"), Some("goodwill credit"))
    );
    let missing = admin_adjust("acct_0000000000000000", json!(1), "x");
    assert_eq!(missing.status, 404);
}

#[test]
fn test_mode_keys_run_on_the_sim_engine_for_free() {
    let key = new_account();
    let test_key = test_key(&key);
    assert!(test_key.starts_with("sk-test-"));
    let r = post(
        "/v1/images/generations",
        &test_key,
        &json!({"prompt": "free", "size": "512x512", "steps": 8}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["x-credits-remaining-usd"], "2");
    let job = get(
        &format!("/v1/jobs/{}", r.body["job_id"].as_str().unwrap()),
        &test_key,
    )
    .body;
    assert_eq!(
        (job["test_mode"].as_bool(), job["cost_usd"].clone()),
        (Some(true), json!(0))
    );
    assert_eq!(job["metadata"]["engine"], "sim");
    let c = credits(&key);
    assert_eq!(
        (c["balance_usd"].clone(), c["held_usd"].clone()),
        (json!(2), json!(0))
    );
}
