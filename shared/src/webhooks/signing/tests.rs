use super::*;
use crate::webhooks::{body, EventType};
use serde_json::json;

// The Standard Webhooks specification's published test vector.
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TS: i64 = 1_614_265_330;
const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const NOW: i64 = 1_775_219_730;

fn secret(fill: u8) -> String {
    new_secret([fill; 32])
}

#[test]
fn signs_the_spec_test_vector() {
    assert_eq!(
        sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY).unwrap(),
        SPEC_SIG
    );
    assert_eq!(
        verify(
            SPEC_SECRET,
            SPEC_ID,
            "1614265330",
            SPEC_SIG,
            SPEC_BODY,
            SPEC_TS
        ),
        Ok(())
    );
    // The svix/standardwebhooks Rust crate's own vector, too.
    assert_eq!(
        sign(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            br#"{"email":"test@example.com","username":"test_user"}"#
        )
        .unwrap(),
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    );
}

#[test]
fn new_secrets_are_prefixed_base64_of_the_random_bytes() {
    let s = new_secret([0xab; 32]);
    assert!(s.starts_with(SECRET_PREFIX));
    assert_eq!(s.len(), SECRET_PREFIX.len() + 44);
    assert_eq!(decode_secret(&s).unwrap(), vec![0xab; 32]);
    assert_ne!(new_secret([1; 32]), new_secret([2; 32]));
}

#[test]
fn secret_forms() {
    let key = STANDARD.encode([7u8; 32]);
    let unpadded = key.trim_end_matches('=').to_owned();
    let sized = |n: usize| format!("whsec_{}", STANDARD.encode(vec![1u8; n]));
    let cases: [(&str, String, bool); 9] = [
        ("prefixed", format!("whsec_{key}"), true),
        (
            "bare base64, as the reference libraries accept",
            key.clone(),
            true,
        ),
        ("unpadded", format!("whsec_{unpadded}"), true),
        ("24-byte key", sized(24), true),
        ("64-byte key", sized(64), true),
        ("23-byte key", sized(23), false),
        ("65-byte key", sized(65), false),
        ("not base64", "whsec_not*base64!".into(), false),
        ("empty", "whsec_".into(), false),
    ];
    for (what, secret, ok) in cases {
        let got = sign(&secret, "msg_1", NOW, b"{}");
        assert_eq!(got.is_ok(), ok, "{what}: {got:?}");
        if !ok {
            assert_eq!(got, Err(WebhookError::InvalidSecret), "{what}");
            assert_eq!(
                verify(&secret, "msg_1", &NOW.to_string(), "v1,AA==", b"{}", NOW),
                Err(WebhookError::InvalidSecret),
                "{what}"
            );
        }
    }
    // With and without the prefix or padding: the same key, the same signature.
    assert_eq!(
        sign(&format!("whsec_{key}"), "m", NOW, b"x"),
        sign(&unpadded, "m", NOW, b"x")
    );
}

#[test]
fn message_ids() {
    let cases: [([u8; 16], &str); 3] = [
        ([0; 16], "msg_00000000000000000000000000"),
        ([0xff; 16], "msg_zzzzzzzzzzzzzzzzzzzzzzzzzw"),
        (
            [
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
                0x32, 0x10,
            ],
            "msg_04hmasw9nf6yzzpwqac7cn1j20",
        ),
    ];
    for (random, want) in cases {
        assert_eq!(new_message_id(random), want);
    }
    for fill in 0..=255u8 {
        let id = new_message_id([fill; 16]);
        let tail = id.strip_prefix(MESSAGE_ID_PREFIX).unwrap();
        assert_eq!(tail.len(), 26);
        assert!(
            tail.bytes().all(|b| crate::ids::ALPHABET.contains(&b)),
            "{id}"
        );
        assert!(http::HeaderValue::from_str(&id).is_ok());
    }
    assert_ne!(new_message_id([1; 16]), new_message_id([2; 16]));
}

#[test]
fn signature_header_has_one_entry_per_secret_in_order() {
    let (new, old) = (secret(1), secret(2));
    let h = signature_header(&[&new, &old], "msg_1", NOW, b"{}").unwrap();
    let entries: Vec<&str> = h.split(' ').collect();
    assert_eq!(
        entries,
        [
            sign(&new, "msg_1", NOW, b"{}").unwrap(),
            sign(&old, "msg_1", NOW, b"{}").unwrap()
        ]
    );
    for s in [&new, &old] {
        assert_eq!(verify(s, "msg_1", &NOW.to_string(), &h, b"{}", NOW), Ok(()));
    }
    assert_eq!(
        verify(&secret(3), "msg_1", &NOW.to_string(), &h, b"{}", NOW),
        Err(WebhookError::InvalidSignature)
    );
    assert_eq!(
        signature_header(&[], "msg_1", NOW, b"{}"),
        Err(WebhookError::NoSecrets)
    );
    assert_eq!(
        signature_header(&[&new, "whsec_bad"], "msg_1", NOW, b"{}"),
        Err(WebhookError::InvalidSecret)
    );
    let hs = headers(&[&new], "msg_1", NOW, b"{}").unwrap();
    assert_eq!(hs[0], (HEADER_ID, "msg_1".to_owned()));
    assert_eq!(hs[1], (HEADER_TIMESTAMP, NOW.to_string()));
    assert_eq!(hs[2].0, HEADER_SIGNATURE);
    assert_eq!(hs[2].1, sign(&new, "msg_1", NOW, b"{}").unwrap());
}

#[test]
fn verify_refuses_every_change_and_bad_header() {
    use WebhookError::{InvalidSignature, InvalidTimestamp, TimestampInFuture, TimestampTooOld};
    const BODY: &[u8] = br#"{"a":1}"#;
    let s = secret(9);
    let sig_at = |t: i64| sign(&s, "msg_1", t, BODY).unwrap();
    let check = |ts: &str, sig: &str| verify(&s, "msg_1", ts, sig, BODY, NOW);
    let good = sig_at(NOW);
    let ts = NOW.to_string();
    assert_eq!(check(&ts, &good), Ok(()));

    // Anything signed differently: body, id, timestamp, secret.
    let other_secret = sign(&secret(8), "msg_1", NOW, BODY).unwrap();
    let changed = [
        ("body", sign(&s, "msg_1", NOW, br#"{"a":2}"#).unwrap()),
        ("id", sign(&s, "msg_2", NOW, BODY).unwrap()),
        ("timestamp", sig_at(NOW + 1)),
        ("secret", other_secret),
    ];
    for (what, sig) in changed {
        assert_eq!(check(&ts, &sig), Err(InvalidSignature), "{what}");
    }

    // The timestamp header: tolerance either way, inclusive at exactly 300 s.
    let tol = TOLERANCE_SECS;
    for (offset, want) in [
        (-tol - 1, Err(TimestampTooOld)),
        (-tol, Ok(())),
        (tol, Ok(())),
        (tol + 1, Err(TimestampInFuture)),
    ] {
        let t = NOW + offset;
        assert_eq!(check(&t.to_string(), &sig_at(t)), want, "{offset}");
    }
    for bad in [
        "",
        "soon",
        "+1775219730",
        " 1775219730",
        "1775219730.0",
        "-5",
        "99999999999999999999",
    ] {
        assert_eq!(check(bad, &good), Err(InvalidTimestamp), "{bad:?}");
    }

    // The signature header: only `v1,` entries count, one match is enough.
    let b64 = good.strip_prefix("v1,").unwrap();
    let raw = STANDARD.decode(b64).unwrap();
    let headers = [
        ("empty", String::new(), Err(InvalidSignature)),
        ("bare v1,", "v1,".into(), Err(InvalidSignature)),
        ("truncated", good[..12].into(), Err(InvalidSignature)),
        (
            "truncated MAC",
            format!("v1,{}", STANDARD.encode(&raw[..16])),
            Err(InvalidSignature),
        ),
        ("v2", format!("v2,{b64}"), Err(InvalidSignature)),
        (
            "asymmetric v1a",
            format!("v1a,{b64}"),
            Err(InvalidSignature),
        ),
        ("no version", b64.into(), Err(InvalidSignature)),
        (
            "hex",
            format!("v1,{}", hex::encode(&raw)),
            Err(InvalidSignature),
        ),
        (
            "comma list",
            format!("v1,AAAA,{good}"),
            Err(InvalidSignature),
        ),
        (
            "after junk",
            format!("v1a,xyz v1,!!! v1,AAAA {good}"),
            Ok(()),
        ),
        (
            "before another",
            format!("{good} v1,{}", STANDARD.encode([0u8; 32])),
            Ok(()),
        ),
        ("extra whitespace", format!("  v1,AAAA \t {good}  "), Ok(())),
        ("unpadded", good.trim_end_matches('=').into(), Ok(())),
    ];
    for (what, header, want) in headers {
        assert_eq!(check(&ts, &header), want, "{what}");
    }

    // Extreme clocks do not overflow.
    let max = i64::MAX.to_string();
    assert_eq!(
        verify(&s, "m", &max, &good, b"", i64::MIN),
        Err(TimestampInFuture)
    );
    assert_eq!(
        verify(&s, "m", "0", &good, b"", i64::MAX),
        Err(TimestampTooOld)
    );
}

#[test]
fn signs_bytes_not_just_utf8() {
    let s = secret(4);
    let body = [0xff, 0x00, 0xfe];
    let sig = sign(&s, "msg_1", NOW, &body).unwrap();
    assert_eq!(
        verify(&s, "msg_1", &NOW.to_string(), &sig, &body, NOW),
        Ok(())
    );
}

// --- cross-check with the `standardwebhooks` crate ----------------------------------

fn unix_now() -> i64 {
    // The reference verifier reads the real clock, so these tests must too.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn their_headers(id: &str, ts: i64, sig: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("webhook-id", id.parse().unwrap());
    h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    h.insert("webhook-signature", sig.parse().unwrap());
    h
}

#[test]
fn the_reference_crate_verifies_what_we_sign() {
    let now = unix_now();
    let (new, old) = (new_secret([0x5a; 32]), new_secret([0xa5; 32]));
    let id = new_message_id([0x42; 16]);
    let job = json!({"id": "job_x", "status": "completed", "outputs": ["a.png"]});
    let payload = body(EventType::Completed, Some("ref ✓"), &job);
    let theirs_new = standardwebhooks::Webhook::new(&new).unwrap();
    let theirs_old = standardwebhooks::Webhook::new(&old).unwrap();
    let theirs_other = standardwebhooks::Webhook::new(&new_secret([1; 32])).unwrap();

    let single = signature_header(&[&new], &id, now, payload.as_bytes()).unwrap();
    let h = their_headers(&id, now, &single);
    assert!(theirs_new.verify(payload.as_bytes(), &h).is_ok());
    assert!(theirs_old.verify(payload.as_bytes(), &h).is_err());

    let rotated = signature_header(&[&new, &old], &id, now, payload.as_bytes()).unwrap();
    let h = their_headers(&id, now, &rotated);
    assert!(theirs_new.verify(payload.as_bytes(), &h).is_ok());
    assert!(theirs_old.verify(payload.as_bytes(), &h).is_ok());
    assert!(theirs_other.verify(payload.as_bytes(), &h).is_err());
    assert!(theirs_new.verify(b"{}", &h).is_err());

    // Their `sign` and ours agree byte for byte, on a spread of inputs.
    for i in 0..32u8 {
        let s = new_secret([i.wrapping_mul(37); 32]);
        let id = new_message_id([i; 16]);
        let payload = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(usize::from(i)));
        let ts = 1_600_000_000 + i64::from(i) * 7919;
        let theirs = standardwebhooks::Webhook::new(&s).unwrap();
        assert_eq!(
            theirs.sign(&id, ts, payload.as_bytes()).unwrap(),
            sign(&s, &id, ts, payload.as_bytes()).unwrap()
        );
    }
}

#[test]
fn we_verify_what_the_reference_crate_signs() {
    let now = unix_now();
    let s = new_secret([0x33; 32]);
    let theirs = standardwebhooks::Webhook::new(&s).unwrap();
    let payload = br#"{"type":"job.started","replyRef":null,"job":{}}"#;
    let sig = theirs.sign("msg_abc", now, payload).unwrap();
    assert_eq!(
        verify(&s, "msg_abc", &now.to_string(), &sig, payload, now),
        Ok(())
    );
    // Two signatures as a rotating sender would send them; either secret verifies.
    let other = new_secret([0x44; 32]);
    let sig2 = standardwebhooks::Webhook::new(&other)
        .unwrap()
        .sign("msg_abc", now, payload)
        .unwrap();
    let both = format!("{sig2} {sig}");
    for s in [&s, &other] {
        assert_eq!(
            verify(s, "msg_abc", &now.to_string(), &both, payload, now),
            Ok(())
        );
    }
    // And the spec vector through their verifier's signer.
    let spec = standardwebhooks::Webhook::new(SPEC_SECRET).unwrap();
    assert_eq!(spec.sign(SPEC_ID, SPEC_TS, SPEC_BODY).unwrap(), SPEC_SIG);
}
