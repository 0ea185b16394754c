//! Stripe top-ups: `Stripe-Signature` verification and the `checkout.session.completed`
//! events Kiln acts on. Pure: the caller passes the clock.
//!
//! Stripe signs `"{t}.{payload}"` with HMAC-SHA256 keyed by the endpoint's `whsec_…`
//! secret (the whole string, as Stripe's libraries do) and sends
//! `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]` (several `v1` during secret rolls).

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::error::{ApiError, ErrorCode};
use crate::ids::AccountId;
use crate::money::MicroUsd;

/// Stripe's default tolerance: older (or future) signatures are replays or clock trouble.
pub const TOLERANCE_SECS: i64 = 300;

/// The credit tiers sold through Checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Starter,
    Pro,
    Max,
}

impl Tier {
    /// Every tier, cheapest first.
    pub const ALL: [Tier; 3] = [Tier::Starter, Tier::Pro, Tier::Max];

    pub fn amount(self) -> MicroUsd {
        match self {
            Tier::Starter => MicroUsd::from_cents(500),
            Tier::Pro => MicroUsd::from_cents(2000),
            Tier::Max => MicroUsd::from_cents(5000),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Starter => "starter",
            Tier::Pro => "pro",
            Tier::Max => "max",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        match s {
            "starter" => Some(Tier::Starter),
            "pro" => Some(Tier::Pro),
            "max" => Some(Tier::Max),
            _ => None,
        }
    }

    fn from_cents(cents: i64) -> Option<Self> {
        Tier::ALL
            .into_iter()
            // Checked: `amount_total` comes from the event and may be any i64.
            .find(|t| cents.checked_mul(10_000) == Some(t.amount().micros()))
    }
}

fn refused(why: &str) -> ApiError {
    ApiError::new(
        400,
        ErrorCode::InvalidSignature,
        format!("Stripe signature refused: {why}."),
    )
}

/// Verifies `Stripe-Signature` for `payload` at `now_unix_secs`.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    payload: &[u8],
    now_unix_secs: i64,
) -> Result<(), ApiError> {
    let header = header.ok_or_else(|| refused("no Stripe-Signature header"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let t = timestamp.ok_or_else(|| refused("no timestamp"))?;
    // `abs_diff`: `t=-9223372036854775808` must be refused, not overflow.
    if now_unix_secs.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
        return Err(refused("timestamp outside the tolerance"));
    }
    let matches = signatures.iter().any(|sig| {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac.verify_slice(sig).is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(refused("no matching v1 signature"))
    }
}

/// Computes a `Stripe-Signature` header (for tests and local tooling).
pub fn sign(secret: &str, payload: &[u8], unix_secs: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{unix_secs}.").as_bytes());
    mac.update(payload);
    format!(
        "t={unix_secs},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// A paid Checkout session that tops up an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUp {
    pub event_id: String,
    pub account: AccountId,
    pub tier: Tier,
}

/// What to do with a verified event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    TopUp(TopUp),
    /// Verified but not one Kiln acts on (other types, unpaid sessions); answered 200
    /// so Stripe stops retrying.
    Ignored {
        event_id: String,
        why: String,
    },
}

/// Reads a verified event. The account comes from `client_reference_id` (how Checkout
/// links a session to a customer of ours) or `metadata.account_id`; the tier from the
/// USD amount paid (a `metadata.tier` that disagrees with it is refused).
pub fn parse_event(payload: &[u8]) -> Result<Event, ApiError> {
    let v: Value = serde_json::from_slice(payload).map_err(ApiError::invalid_json)?;
    let event_id = v["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::invalid_param("id", ErrorCode::InvalidValue, "The event has no id.")
        })?
        .to_owned();
    let ignored = |why: &str| {
        Ok(Event::Ignored {
            event_id: event_id.clone(),
            why: why.to_owned(),
        })
    };
    if v["type"] != "checkout.session.completed" {
        return ignored("event type not handled");
    }
    let session = &v["data"]["object"];
    if session["payment_status"] != "paid" {
        return ignored("session not paid");
    }
    let account = session["client_reference_id"]
        .as_str()
        .or_else(|| session["metadata"]["account_id"].as_str())
        .and_then(AccountId::parse)
        .ok_or_else(|| {
            ApiError::invalid_param(
                "client_reference_id",
                ErrorCode::InvalidValue,
                "The session does not name a Kiln account (client_reference_id).",
            )
        })?;
    // Credit what was paid: the amount decides the tier; metadata may only agree.
    if session["currency"]
        .as_str()
        .is_some_and(|c| !c.eq_ignore_ascii_case("usd"))
    {
        return Err(ApiError::invalid_param(
            "currency",
            ErrorCode::InvalidValue,
            "Top-ups are sold in USD.",
        ));
    }
    let by_amount = session["amount_total"].as_i64().and_then(Tier::from_cents);
    let by_name = session["metadata"]["tier"]
        .as_str()
        .and_then(Tier::from_name);
    let tier = match (by_amount, by_name) {
        (Some(a), Some(n)) if a != n => None,
        (amount, _) => amount,
    }
    .ok_or_else(|| {
        ApiError::invalid_param(
            "amount_total",
            ErrorCode::InvalidValue,
            "The session matches no credit tier.",
        )
    })?;
    Ok(Event::TopUp(TopUp {
        event_id,
        account,
        tier,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_775_219_730;

    fn session(account: &AccountId, extra: Value) -> Vec<u8> {
        let mut object = json!({"client_reference_id": account.as_str(), "payment_status": "paid", "amount_total": 2000});
        if let (Some(o), Some(e)) = (object.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        json!({"id": "evt_1", "type": "checkout.session.completed", "data": {"object": object}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn verifies_signatures_like_stripe() {
        let payload = b"{\"id\":\"evt_1\"}";
        let header = sign(SECRET, payload, NOW);
        assert!(verify(SECRET, Some(&header), payload, NOW + 10).is_ok());
        let rolled = format!("{header},v1={}", "00".repeat(32));
        assert!(verify(SECRET, Some(&rolled), payload, NOW).is_ok());
        let cases = [
            ("missing", None, &payload[..], NOW),
            (
                "wrong secret",
                Some(sign("whsec_other", payload, NOW)),
                &payload[..],
                NOW,
            ),
            (
                "tampered",
                Some(header.clone()),
                &b"{\"id\":\"evt_2\"}"[..],
                NOW,
            ),
            (
                "stale",
                Some(header.clone()),
                &payload[..],
                NOW + TOLERANCE_SECS + 1,
            ),
            ("garbage", Some("t=x,v1=zz".to_owned()), &payload[..], NOW),
        ];
        for (what, h, body, now) in cases {
            assert!(verify(SECRET, h.as_deref(), body, now).is_err(), "{what}");
        }
    }

    #[test]
    fn reads_top_ups_by_metadata_or_amount() {
        let acct = AccountId::generate([1; 10]);
        let pro = parse_event(&session(&acct, json!({}))).unwrap();
        assert_eq!(
            pro,
            Event::TopUp(TopUp {
                event_id: "evt_1".into(),
                account: acct.clone(),
                tier: Tier::Pro
            })
        );
        let mislabelled = session(
            &acct,
            json!({"amount_total": 500, "metadata": {"tier": "max"}}),
        );
        assert_eq!(
            parse_event(&mislabelled).unwrap_err().param(),
            Some("amount_total")
        );
        let euros = session(&acct, json!({"currency": "eur"}));
        assert_eq!(parse_event(&euros).unwrap_err().param(), Some("currency"));
        let max = parse_event(&session(
            &acct,
            json!({"amount_total": 5000, "metadata": {"tier": "max"}}),
        ))
        .unwrap();
        assert!(matches!(
            max,
            Event::TopUp(TopUp {
                tier: Tier::Max,
                ..
            })
        ));
        assert_eq!(Tier::Starter.amount(), MicroUsd::from_micros(5_000_000));
    }

    #[test]
    fn other_events_are_ignored_and_bad_sessions_refused() {
        let acct = AccountId::generate([1; 10]);
        let other =
            json!({"id": "evt_9", "type": "invoice.paid", "data": {"object": {}}}).to_string();
        assert!(matches!(
            parse_event(other.as_bytes()).unwrap(),
            Event::Ignored { .. }
        ));
        let unpaid = session(&acct, json!({"payment_status": "unpaid"}));
        assert!(matches!(
            parse_event(&unpaid).unwrap(),
            Event::Ignored { .. }
        ));
        let odd_amount = session(&acct, json!({"amount_total": 1234}));
        assert_eq!(
            parse_event(&odd_amount).unwrap_err().param(),
            Some("amount_total")
        );
        let no_account = session(&acct, json!({"client_reference_id": "someone"}));
        assert_eq!(
            parse_event(&no_account).unwrap_err().param(),
            Some("client_reference_id")
        );
        assert_eq!(
            parse_event(b"{").unwrap_err().code().as_str(),
            "invalid_json"
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "whsec_test_secret";

    proptest! {
        /// Any `Stripe-Signature` header (extreme timestamps included) is accepted only
        /// when it carries a `v1` HMAC of this payload within the tolerance; otherwise
        /// it is a 400 `invalid_signature`.
        #[test]
        fn any_stripe_signature_header_verifies_or_is_refused(
            header in proptest::option::of(prop_oneof![
                any::<String>(),
                (any::<i64>(), "[0-9a-f]{0,70}").prop_map(|(t, v)| format!("t={t},v1={v}")),
                "t=-?[0-9]{1,25}(,v1=[0-9a-f]{0,64}){0,3}(,v0=[a-z]*)?",
                Just(format!("t={},v1=00", i64::MIN)),
                Just(format!("t={},v1=00", i64::MAX)),
            ]),
            now in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), Just(1_775_219_730i64)],
            payload in any::<Vec<u8>>(),
        ) {
            match verify(SECRET, header.as_deref(), &payload, now) {
                Ok(()) => {
                    let header = header.unwrap();
                    let t: i64 = header.rsplit(',').find_map(|p| p.trim().strip_prefix("t=")).unwrap().parse().unwrap();
                    prop_assert!(now.abs_diff(t) <= TOLERANCE_SECS.unsigned_abs());
                    let want = sign(SECRET, &payload, t);
                    let want_v1 = want.split_once(",v1=").unwrap().1;
                    prop_assert!(header.contains(want_v1));
                }
                Err(e) => prop_assert_eq!((e.status(), e.code().as_str()), (400, "invalid_signature")),
            }
        }

        #[test]
        fn a_signed_payload_verifies_exactly_within_the_tolerance(
            t in any::<i64>(), drift in -1000i64..1000, payload in any::<Vec<u8>>(),
        ) {
            let header = sign(SECRET, &payload, t);
            let now = t.saturating_add(drift);
            let got = verify(SECRET, Some(&header), &payload, now);
            prop_assert_eq!(got.is_ok(), now.abs_diff(t) <= TOLERANCE_SECS.unsigned_abs());
        }
    }
}

#[cfg(test)]
mod event_props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any verified payload is a top-up of a known tier, an ignored event, or a
        /// named 400 (the amount, an extreme one included, never overflows).
        #[test]
        fn any_stripe_event_is_a_tier_ignored_or_a_named_400(
            amount in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), Just(500i64), Just(2000), Just(5000)],
            tier in proptest::option::of(prop_oneof![Just("starter"), Just("pro"), Just("max"), Just("gold")]),
            currency in proptest::option::of(prop_oneof![Just("usd"), Just("USD"), Just("eur")]),
            paid in any::<bool>(),
            body in crate::proptest_json::value(),
        ) {
            let account = AccountId::generate([7; 10]);
            let event = serde_json::json!({
                "id": "evt_1", "type": "checkout.session.completed",
                "data": {"object": {
                    "payment_status": if paid { "paid" } else { "unpaid" },
                    "client_reference_id": account.as_str(),
                    "amount_total": amount, "currency": currency,
                    "metadata": {"tier": tier},
                }},
            });
            match parse_event(event.to_string().as_bytes()) {
                Ok(Event::TopUp(t)) => {
                    prop_assert!(paid);
                    prop_assert_eq!(t.tier.amount().micros(), amount * 10_000);
                }
                Ok(Event::Ignored { .. }) => prop_assert!(!paid),
                Err(e) => prop_assert_eq!(e.status(), 400),
            }
            if let Err(e) = parse_event(body.to_string().as_bytes()) {
                prop_assert_eq!(e.status(), 400);
            }
        }
    }
}
