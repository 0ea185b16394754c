//! Account registration rules: email normalisation and the trial grant.

use crate::error::{ApiError, ErrorCode};
use crate::fields::Fields;
use crate::money::MicroUsd;

/// Every new account starts with this much trial credit.
pub const TRIAL_GRANT: MicroUsd = MicroUsd::from_cents(200);
/// RFC 5321's limit on a forward path.
pub const EMAIL_LEN_MAX: usize = 254;

/// Normalises an email so one mailbox maps to one trial: trimmed, lowercased,
/// `+tag` removed, and for Gmail dots removed and `googlemail.com` folded into
/// `gmail.com` (Gmail ignores both).
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::invalid_param(
            "email",
            ErrorCode::InvalidValue,
            "`email` must be a valid email address.",
        )
    };
    let email = raw.trim().to_lowercase();
    if email.len() > EMAIL_LEN_MAX || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if local.is_empty() || local.contains('@') || !domain_ok {
        return Err(invalid());
    }
    let local = local.split('+').next().unwrap_or(local);
    let (local, domain) = match domain {
        "gmail.com" | "googlemail.com" => (local.replace('.', ""), "gmail.com"),
        _ => (local.to_owned(), domain),
    };
    if local.is_empty() {
        return Err(invalid());
    }
    Ok(format!("{local}@{domain}"))
}

/// `POST /v1/accounts`: the normalised email of the trial to register.
pub fn parse_registration(body: &[u8]) -> Result<String, ApiError> {
    let mut f = Fields::from_body(body)?;
    let email = f.required_string("email")?;
    f.finish()?;
    normalize_email(&email)
}

/// Reasons are read by people auditing the ledger.
pub const REASON_CHARS_MAX: usize = 500;

/// `POST /admin/accounts/{id}/credits`: a signed dollar amount and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub amount: MicroUsd,
    pub reason: String,
}

impl Adjustment {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let mut f = Fields::from_body(body)?;
        let amount_text = f.decimal_text("amount_usd")?.ok_or_else(|| {
            ApiError::invalid_param(
                "amount_usd",
                ErrorCode::MissingParameter,
                "`amount_usd` is required.",
            )
        })?;
        let amount = MicroUsd::parse_usd(&amount_text).ok_or_else(|| {
            ApiError::invalid_param(
                "amount_usd",
                ErrorCode::InvalidValue,
                "`amount_usd` must be a dollar amount with at most six decimals.",
            )
        })?;
        let reason = f.required_string("reason")?;
        if reason.trim().is_empty() || reason.chars().count() > REASON_CHARS_MAX {
            return Err(ApiError::invalid_param(
                "reason",
                ErrorCode::InvalidValue,
                format!("`reason` must be 1–{REASON_CHARS_MAX} characters."),
            ));
        }
        f.finish()?;
        Ok(Self { amount, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mailbox_one_form() {
        for (raw, want) in [
            ("Ada@Example.com", "ada@example.com"),
            ("  ada+kiln@example.com ", "ada@example.com"),
            ("a.d.a+x@googlemail.com", "ada@gmail.com"),
            ("A.Da@gmail.com", "ada@gmail.com"),
            ("first.last@example.co.uk", "first.last@example.co.uk"),
        ] {
            assert_eq!(normalize_email(raw).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn invalid_addresses() {
        for raw in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            "+tag@example.com",
            "ada@.example.com",
            "ada@exa_mple.com",
        ] {
            let err = normalize_email(raw).expect_err(raw);
            assert_eq!((err.status(), err.param()), (400, Some("email")), "{raw}");
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::money::MICRO_USD_MAX;
    use crate::proptest_json::{assert_named_400, object_body};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_registration_is_a_normalised_email_or_a_named_400(body in prop_oneof![
            object_body(&["email"]),
            "[A-Za-z0-9.+_-]{0,12}@[a-z0-9.-]{0,12}"
                .prop_map(|e| serde_json::json!({"email": e}).to_string().into_bytes()),
        ]) {
            match parse_registration(&body) {
                Ok(email) => {
                    prop_assert!(email.len() <= EMAIL_LEN_MAX);
                    prop_assert_eq!(email.matches('@').count(), 1);
                    prop_assert_eq!(normalize_email(&email).ok(), Some(email.clone()));
                }
                Err(e) => assert_named_400(&e)?,
            }
        }

        #[test]
        fn any_adjustment_is_an_exact_bounded_amount_or_a_named_400(
            body in object_body(&["amount_usd", "reason"]),
        ) {
            match Adjustment::parse(&body) {
                Ok(a) => {
                    prop_assert!(a.amount.micros().abs() <= MICRO_USD_MAX);
                    prop_assert!(!a.reason.trim().is_empty());
                    prop_assert!(a.reason.chars().count() <= REASON_CHARS_MAX);
                }
                Err(e) => assert_named_400(&e)?,
            }
        }
    }
}
