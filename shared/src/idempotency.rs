//! `Idempotency-Key`: the same key with the same request within [`TTL_MS`] returns the
//! first response; the same key with a different request is a 409.

use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};

pub const HEADER: &str = "Idempotency-Key";
/// How long a key is remembered.
pub const TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// UUIDs and the like fit with room to spare.
pub const KEY_LEN_MAX: usize = 255;

/// A client-chosen idempotency key: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let ok = !s.is_empty() && s.len() <= KEY_LEN_MAX && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ApiError::invalid_param(
                HEADER,
                ErrorCode::InvalidValue,
                format!("`{HEADER}` must be 1–{KEY_LEN_MAX} visible ASCII characters."),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What makes two requests "the same": method, path (with query) and body.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

pub fn conflict() -> ApiError {
    ApiError::conflict(
        ErrorCode::IdempotencyConflict,
        "This Idempotency-Key was already used with a different request.",
    )
    .with_param(HEADER)
}

pub fn in_progress() -> ApiError {
    ApiError::conflict(
        ErrorCode::IdempotencyInProgress,
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    )
    .with_param(HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(IdempotencyKey::parse("8e03978e-40d5-43e8-bc93-6894a57f9324").is_ok());
        for bad in ["", "has space", "tab\t", &"k".repeat(256), "é"] {
            assert_eq!(
                IdempotencyKey::parse(bad).unwrap_err().param(),
                Some(HEADER),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn fingerprints_differ_by_any_part() {
        let base = fingerprint("POST", "/v1/keys", b"{}");
        assert_eq!(base, fingerprint("POST", "/v1/keys", b"{}"));
        assert_ne!(base, fingerprint("POST", "/v1/keys", b"{ }"));
        assert_ne!(base, fingerprint("POST", "/v1/images/generations", b"{}"));
        assert_ne!(base, fingerprint("PUT", "/v1/keys", b"{}"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_idempotency_key_is_kept_exactly_or_a_named_400(s in prop_oneof![
            any::<String>(),
            "[!-~]{0,300}",
            "[ -~]{1,20}",
        ]) {
            let want = !s.is_empty() && s.len() <= KEY_LEN_MAX && s.bytes().all(|b| b.is_ascii_graphic());
            match IdempotencyKey::parse(&s) {
                Ok(k) => {
                    prop_assert!(want);
                    prop_assert_eq!(k.as_str(), s.as_str());
                }
                Err(e) => {
                    prop_assert!(!want);
                    prop_assert_eq!((e.status(), e.param()), (400, Some(HEADER)));
                }
            }
        }
    }
}
