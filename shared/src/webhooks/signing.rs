//! Standard Webhooks signing and verification (<https://www.standardwebhooks.com/>):
//! secrets (`whsec_` + base64 of the HMAC-SHA256 key), message ids, the signed content
//! `{msg_id}.{timestamp}.{body}`, and the three `webhook-*` headers of a delivery.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Every webhook secret starts with this; the rest is the base64 of the HMAC key.
pub const SECRET_PREFIX: &str = "whsec_";
/// Every message id starts with this; the rest is 26 lowercase Crockford base32 chars.
pub const MESSAGE_ID_PREFIX: &str = "msg_";
/// Header carrying the message id (the same on every retry of one message).
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the signing time, Unix seconds in decimal.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// How far a signature's timestamp may be from the verifier's clock, either way.
pub const TOLERANCE_SECS: i64 = 300;
/// The spec's bounds on the decoded key length: shorter keys are weak, longer are odd.
pub const KEY_LEN_MIN: usize = 24;
/// See [`KEY_LEN_MIN`].
pub const KEY_LEN_MAX: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// Standard base64 that decodes with or without `=` padding: secrets get pasted both ways.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why signing or verifying failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookError {
    /// The secret is not (`whsec_` +) base64 of a [`KEY_LEN_MIN`]..=[`KEY_LEN_MAX`]-byte key.
    InvalidSecret,
    /// [`signature_header`] was given no secrets to sign with.
    NoSecrets,
    /// `webhook-timestamp` is not a decimal number of seconds.
    InvalidTimestamp,
    /// The timestamp is more than [`TOLERANCE_SECS`] in the past.
    TimestampTooOld,
    /// The timestamp is more than [`TOLERANCE_SECS`] in the future.
    TimestampInFuture,
    /// No `v1,` entry of `webhook-signature` matches.
    InvalidSignature,
}

impl std::fmt::Display for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WebhookError::InvalidSecret => {
                "webhook secret is not whsec_ + base64 of a 24-64 byte key"
            }
            WebhookError::NoSecrets => "no webhook secret to sign with",
            WebhookError::InvalidTimestamp => "webhook-timestamp is not a number of seconds",
            WebhookError::TimestampTooOld => "webhook-timestamp is too old",
            WebhookError::TimestampInFuture => "webhook-timestamp is too far in the future",
            WebhookError::InvalidSignature => "no matching v1 signature in webhook-signature",
        })
    }
}

impl std::error::Error for WebhookError {}

/// A new secret from 32 random bytes: `whsec_` + padded standard base64 (44 chars).
pub fn new_secret(random: [u8; 32]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(random))
}

/// A new message id from 16 random bytes: `msg_` + 26 lowercase Crockford base32 chars
/// (the 128 bits, most significant first, then two zero bits). A valid header value.
pub fn new_message_id(random: [u8; 16]) -> String {
    // 26 chars hold 130 bits: the 128 random ones shifted up past the two padding bits.
    let bits = u128::from_be_bytes(random);
    let mut padded = [0u8; 17];
    padded[0] = (bits >> 126) as u8;
    padded[1..].copy_from_slice(&(bits << 2).to_be_bytes());
    format!("{MESSAGE_ID_PREFIX}{}", crate::ids::base32(&padded, 26))
}

/// Decodes a secret to its HMAC key. The `whsec_` prefix is optional (as in the
/// reference libraries); padding is optional; the key must be 24–64 bytes.
fn decode_secret(secret: &str) -> Result<Vec<u8>, WebhookError> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = LENIENT_B64
        .decode(b64)
        .map_err(|_| WebhookError::InvalidSecret)?;
    if (KEY_LEN_MIN..=KEY_LEN_MAX).contains(&key.len()) {
        Ok(key)
    } else {
        Err(WebhookError::InvalidSecret)
    }
}

fn mac(key: &[u8], msg_id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// One signature entry, `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp_secs}.{body}">`.
pub fn sign(
    secret: &str,
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> Result<String, WebhookError> {
    let key = decode_secret(secret)?;
    let tag = mac(&key, msg_id, &timestamp_secs.to_string(), body);
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// The `webhook-signature` value: one [`sign`] entry per secret, in the order given
/// (newest first by convention), separated by single spaces. During a rotation pass
/// both the new and the old secret so receivers holding either one accept the message.
pub fn signature_header(
    secrets: &[&str],
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> Result<String, WebhookError> {
    if secrets.is_empty() {
        return Err(WebhookError::NoSecrets);
    }
    let entries = secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp_secs, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(entries.join(" "))
}

/// The three headers of one delivery attempt, as `(name, value)` pairs.
pub fn headers(
    secrets: &[&str],
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> Result<[(&'static str, String); 3], WebhookError> {
    Ok([
        (HEADER_ID, msg_id.to_owned()),
        (HEADER_TIMESTAMP, timestamp_secs.to_string()),
        (
            HEADER_SIGNATURE,
            signature_header(secrets, msg_id, timestamp_secs, body)?,
        ),
    ])
}

/// Verifies a received webhook, as a receiver would (our docs' Rust snippet and tests).
///
/// - `timestamp_header` must be decimal digits and within [`TOLERANCE_SECS`] of
///   `now_secs` either way (exactly 300 s off is still accepted).
/// - `signature_header` is split on whitespace; every `v1,<base64>` entry is tried,
///   other versions (`v1a,…`) and undecodable entries are ignored; one match suffices.
/// - The MAC is compared in constant time.
///
/// The signed content uses `timestamp_header` verbatim, as sent.
pub fn verify(
    secret: &str,
    msg_id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_secs: i64,
) -> Result<(), WebhookError> {
    let key = decode_secret(secret)?;
    if timestamp_header.is_empty() || !timestamp_header.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WebhookError::InvalidTimestamp);
    }
    let ts: i64 = timestamp_header
        .parse()
        .map_err(|_| WebhookError::InvalidTimestamp)?;
    let skew = i128::from(now_secs) - i128::from(ts);
    if skew > i128::from(TOLERANCE_SECS) {
        return Err(WebhookError::TimestampTooOld);
    }
    if -skew > i128::from(TOLERANCE_SECS) {
        return Err(WebhookError::TimestampInFuture);
    }
    let expected = mac(&key, msg_id, timestamp_header, body);
    let matched = signature_header
        .split_ascii_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| LENIENT_B64.decode(b64).ok())
        .any(|sig| bool::from(sig.ct_eq(&expected[..])));
    if matched {
        Ok(())
    } else {
        Err(WebhookError::InvalidSignature)
    }
}

#[cfg(test)]
mod tests;
