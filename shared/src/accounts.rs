//! Account registration rules: email normalisation and the trial grant.

use crate::error::ApiError;
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
            "invalid_value",
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
