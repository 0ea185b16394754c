//! Edge ↔ origin request signing (`docs/architecture.md`, "Edge ↔ origin signing").
//!
//! `X-Kiln-Signature` = hex HMAC-SHA256 over `timestamp \n METHOD \n path \n
//! hex(sha256(body))`, keyed by a secret named by `X-Kiln-Key-Id`. Each direction has
//! its own keyring; a keyring holds up to [`KEYRING_LEN_MAX`] keys so a secret can be
//! rotated with the old one still accepted. Signatures older or newer than
//! [`SKEW_SECS_MAX`] are refused; replays inside that window are refused by the
//! receiver, which sees each job id and event sequence number once.

use crate::error::ErrorCode;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const HEADER_KEY_ID: &str = "X-Kiln-Key-Id";
pub const HEADER_TIMESTAMP: &str = "X-Kiln-Timestamp";
pub const HEADER_SIGNATURE: &str = "X-Kiln-Signature";

/// How far a signature's timestamp may be from the receiver's clock.
pub const SKEW_SECS_MAX: i64 = 300;
/// Current and previous key: enough for rotation, small enough to audit.
pub const KEYRING_LEN_MAX: usize = 2;

type HmacSha256 = Hmac<Sha256>;

/// A named shared secret. `Debug` never shows the secret.
#[derive(Clone)]
pub struct SigningKey {
    id: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.id)
    }
}

/// The keys of one direction; the first signs, all verify.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<SigningKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringError {
    Empty,
    TooMany,
    Malformed(String),
}

impl std::fmt::Display for KeyringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyringError::Empty => f.write_str("keyring is empty"),
            KeyringError::TooMany => write!(f, "keyring holds more than {KEYRING_LEN_MAX} keys"),
            KeyringError::Malformed(e) => write!(
                f,
                "keyring entry is malformed: {e} (want `id:secret,id:secret`)"
            ),
        }
    }
}

/// Secrets shorter than this are refused: 32 bytes of text is the floor for HMAC keys here.
pub const SECRET_LEN_MIN: usize = 32;

impl Keyring {
    /// Parses `id:secret[,id:secret]`, the form used in configuration.
    pub fn parse(spec: &str) -> Result<Self, KeyringError> {
        let mut keys = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, secret) = entry
                .split_once(':')
                .ok_or_else(|| KeyringError::Malformed("missing `:`".into()))?;
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(KeyringError::Malformed(format!("bad key id {id:?}")));
            }
            if secret.len() < SECRET_LEN_MIN {
                return Err(KeyringError::Malformed(format!(
                    "secret for {id} is shorter than {SECRET_LEN_MIN} characters"
                )));
            }
            keys.push(SigningKey {
                id: id.to_owned(),
                secret: secret.as_bytes().to_vec(),
            });
        }
        match keys.len() {
            0 => Err(KeyringError::Empty),
            n if n > KEYRING_LEN_MAX => Err(KeyringError::TooMany),
            _ => Ok(Self { keys }),
        }
    }

    /// Signs a request; returns the three headers to send.
    pub fn sign(&self, unix_secs: i64, method: &str, path: &str, body: &[u8]) -> SignedHeaders {
        let key = &self.keys[0];
        SignedHeaders {
            key_id: key.id.clone(),
            timestamp: unix_secs.to_string(),
            signature: hex::encode(mac(&key.secret, unix_secs, method, path, body)),
        }
    }

    /// Verifies a request's headers against its method, path and body.
    pub fn verify(
        &self,
        now_unix_secs: i64,
        headers: &ReceivedHeaders<'_>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let (Some(key_id), Some(ts), Some(sig)) =
            (headers.key_id, headers.timestamp, headers.signature)
        else {
            return Err(SignatureError::Missing);
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or(SignatureError::UnknownKey)?;
        let ts: i64 = ts.parse().map_err(|_| SignatureError::Malformed)?;
        // `abs_diff`: a timestamp near i64::MIN or MAX must not overflow the check.
        if now_unix_secs.abs_diff(ts) > SKEW_SECS_MAX.unsigned_abs() {
            return Err(SignatureError::Stale);
        }
        let sig = hex::decode(sig).map_err(|_| SignatureError::Malformed)?;
        let mut m = HmacSha256::new_from_slice(&key.secret).expect("HMAC takes any key length");
        m.update(canonical(ts, method, path, body).as_bytes());
        // verify_slice compares in constant time.
        m.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
    }
}

fn canonical(unix_secs: i64, method: &str, path: &str, body: &[u8]) -> String {
    format!(
        "{unix_secs}\n{}\n{path}\n{}",
        method.to_ascii_uppercase(),
        hex::encode(Sha256::digest(body))
    )
}

fn mac(secret: &[u8], unix_secs: i64, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(canonical(unix_secs, method, path, body).as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The headers a signer attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub key_id: String,
    pub timestamp: String,
    pub signature: String,
}

impl SignedHeaders {
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (HEADER_KEY_ID, &self.key_id),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_SIGNATURE, &self.signature),
        ]
    }
}

/// The signature headers as received, any of which may be missing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceivedHeaders<'a> {
    pub key_id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    UnknownKey,
    Stale,
    Mismatch,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureError::Missing => "signature headers missing",
            SignatureError::Malformed => "signature headers malformed",
            SignatureError::UnknownKey => "unknown signing key id",
            SignatureError::Stale => "signature timestamp outside the allowed skew",
            SignatureError::Mismatch => "signature does not match",
        })
    }
}

impl std::error::Error for SignatureError {}
impl std::error::Error for KeyringError {}

impl From<SignatureError> for crate::ApiError {
    fn from(e: SignatureError) -> Self {
        crate::ApiError::new(
            401,
            ErrorCode::InvalidSignature,
            format!("Request signature refused: {e}."),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_775_219_730;
    const K1: &str = "k1:0123456789abcdef0123456789abcdef";
    const K0: &str = "k0:fedcba9876543210fedcba9876543210";

    fn received(h: &SignedHeaders) -> ReceivedHeaders<'_> {
        ReceivedHeaders {
            key_id: Some(&h.key_id),
            timestamp: Some(&h.timestamp),
            signature: Some(&h.signature),
        }
    }

    #[test]
    fn a_signed_request_verifies() {
        let ring = Keyring::parse(K1).unwrap();
        let h = ring.sign(NOW, "POST", "/v1/jobs", b"{}");
        assert_eq!(
            ring.verify(NOW + 10, &received(&h), "post", "/v1/jobs", b"{}"),
            Ok(())
        );
    }

    #[test]
    fn any_change_is_refused() {
        let ring = Keyring::parse(K1).unwrap();
        let other = Keyring::parse("k1:ffffffffffffffffffffffffffffffff").unwrap();
        let h = ring.sign(NOW, "POST", "/v1/jobs", b"{\"a\":1}");
        type Case<'a> = (
            &'a str,
            Keyring,
            i64,
            &'a str,
            &'a str,
            &'a [u8],
            SignatureError,
        );
        let cases: [Case; 6] = [
            (
                "body",
                ring.clone(),
                NOW,
                "POST",
                "/v1/jobs",
                b"{\"a\":2}",
                SignatureError::Mismatch,
            ),
            (
                "path",
                ring.clone(),
                NOW,
                "POST",
                "/v1/jobz",
                b"{\"a\":1}",
                SignatureError::Mismatch,
            ),
            (
                "method",
                ring.clone(),
                NOW,
                "PUT",
                "/v1/jobs",
                b"{\"a\":1}",
                SignatureError::Mismatch,
            ),
            (
                "stale",
                ring.clone(),
                NOW + SKEW_SECS_MAX + 1,
                "POST",
                "/v1/jobs",
                b"{\"a\":1}",
                SignatureError::Stale,
            ),
            (
                "future",
                ring.clone(),
                NOW - SKEW_SECS_MAX - 1,
                "POST",
                "/v1/jobs",
                b"{\"a\":1}",
                SignatureError::Stale,
            ),
            (
                "key",
                other,
                NOW,
                "POST",
                "/v1/jobs",
                b"{\"a\":1}",
                SignatureError::Mismatch,
            ),
        ];
        for (what, ring, now, method, path, body, want) in cases {
            assert_eq!(
                ring.verify(now, &received(&h), method, path, body),
                Err(want),
                "{what}"
            );
        }
    }

    #[test]
    fn timestamp_is_covered() {
        let ring = Keyring::parse(K1).unwrap();
        let mut h = ring.sign(NOW, "POST", "/p", b"");
        h.timestamp = (NOW + 1).to_string();
        assert_eq!(
            ring.verify(NOW, &received(&h), "POST", "/p", b""),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rotation_accepts_both_keys_and_refuses_unknown_ids() {
        let old = Keyring::parse(K0).unwrap();
        let rotated = Keyring::parse(&format!("{K1},{K0}")).unwrap();
        let h = old.sign(NOW, "GET", "/health", b"");
        assert_eq!(
            rotated.verify(NOW, &received(&h), "GET", "/health", b""),
            Ok(())
        );
        let only_new = Keyring::parse(K1).unwrap();
        assert_eq!(
            only_new.verify(NOW, &received(&h), "GET", "/health", b""),
            Err(SignatureError::UnknownKey)
        );
    }

    #[test]
    fn missing_or_malformed_headers() {
        let ring = Keyring::parse(K1).unwrap();
        let none = ReceivedHeaders::default();
        assert_eq!(
            ring.verify(NOW, &none, "GET", "/", b""),
            Err(SignatureError::Missing)
        );
        let bad = ReceivedHeaders {
            key_id: Some("k1"),
            timestamp: Some("soon"),
            signature: Some("00"),
        };
        assert_eq!(
            ring.verify(NOW, &bad, "GET", "/", b""),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn keyring_config() {
        assert_eq!(Keyring::parse("").unwrap_err(), KeyringError::Empty);
        assert!(matches!(
            Keyring::parse("k1:short"),
            Err(KeyringError::Malformed(_))
        ));
        assert!(matches!(
            Keyring::parse("nocolon"),
            Err(KeyringError::Malformed(_))
        ));
        let three = format!("{K1},{K0},k2:0123456789abcdef0123456789abcdef");
        assert_eq!(Keyring::parse(&three).unwrap_err(), KeyringError::TooMany);
        assert!(!format!("{:?}", Keyring::parse(K1).unwrap()).contains("0123"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    const K1: &str = "k1:0123456789abcdef0123456789abcdef";

    fn header() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            any::<String>(),
            any::<i64>().prop_map(|n| n.to_string()),
            Just(i64::MIN.to_string()),
            Just(i64::MAX.to_string()),
            "-?[0-9]{0,25}",
            "[0-9a-f]{0,70}",
            Just("k1".to_owned()),
        ])
    }

    proptest! {
        /// Any `X-Kiln-*` headers are accepted only when they are a valid signature
        /// within the skew; everything else is one of the named refusals.
        #[test]
        fn any_signing_headers_verify_or_are_refused_by_name(
            key_id in header(), timestamp in header(), signature in header(),
            now in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), Just(1_775_219_730i64)],
        ) {
            let ring = Keyring::parse(K1).unwrap();
            let received = ReceivedHeaders {
                key_id: key_id.as_deref(),
                timestamp: timestamp.as_deref(),
                signature: signature.as_deref(),
            };
            let result = ring.verify(now, &received, "POST", "/internal/origin/heartbeat", b"{}");
            if let Err(e) = result {
                prop_assert_eq!(crate::ApiError::from(e).status(), 401);
            } else {
                // Only a forgery-free path gets here: the right key, a fresh timestamp
                // and the HMAC the keyring itself computes.
                let ts: i64 = timestamp.unwrap().parse().unwrap();
                prop_assert!(now.abs_diff(ts) <= SKEW_SECS_MAX.unsigned_abs());
                let want = ring.sign(ts, "POST", "/internal/origin/heartbeat", b"{}");
                prop_assert_eq!(signature.as_deref(), Some(want.signature.as_str()));
            }
        }

        #[test]
        fn a_signature_verifies_exactly_within_the_skew(
            signed_at in any::<i64>(), drift in any::<i64>(),
        ) {
            let ring = Keyring::parse(K1).unwrap();
            let h = ring.sign(signed_at, "DELETE", "/jobs/job_x", b"");
            let now = signed_at.saturating_add(drift);
            let received = ReceivedHeaders {
                key_id: Some(&h.key_id),
                timestamp: Some(&h.timestamp),
                signature: Some(&h.signature),
            };
            let got = ring.verify(now, &received, "DELETE", "/jobs/job_x", b"");
            if now.abs_diff(signed_at) <= SKEW_SECS_MAX.unsigned_abs() {
                prop_assert_eq!(got, Ok(()));
            } else {
                prop_assert_eq!(got, Err(SignatureError::Stale));
            }
        }
    }
}
