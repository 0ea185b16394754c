//! Webhook delivery (API.md "Webhooks"): Standard Webhooks signing, the retry schedule,
//! the SSRF guard for `replyUrl`, and the event bodies. Pure: callers pass the clock
//! and random bytes.
//!
//! - **Signing** follows <https://www.standardwebhooks.com/>: a secret is `whsec_` +
//!   base64 of the HMAC-SHA256 key; the signed content is `{msg_id}.{timestamp}.{body}`;
//!   `webhook-signature` holds one space-separated `v1,<base64>` entry per active secret
//!   (after a rotation the new and the old secret both sign).
//! - **Retries**: [`RETRY_SCHEDULE_SECS`] with ±10 % jitter ([`next_delay_ms`]); a 410
//!   stops ([`outcome`]); `Retry-After` is respected ([`parse_retry_after`]).
//! - **Destinations**: [`check_destination`] refuses URLs aimed at loopback, private,
//!   link-local, metadata and other non-public addresses unless the [`AllowList`] (config
//!   `WEBHOOK_ALLOW_HOSTS`) names them.
//! - **Events**: [`EventType`], the `webhook_events` filter ([`parse_event_filter`]) and
//!   the delivered [`body`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

// ---------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------

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

/// Crockford base32, lowercase: unambiguous (no i, l, o, u), URL- and header-safe.
const BASE32: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

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
    let mut out = String::with_capacity(MESSAGE_ID_PREFIX.len() + 26);
    out.push_str(MESSAGE_ID_PREFIX);
    let (mut acc, mut bits) = (0u16, 0u32);
    for b in random {
        acc = (acc << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[usize::from((acc >> bits) & 31)] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(BASE32[usize::from((acc << (5 - bits)) & 31)] as char);
    }
    out
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

// ---------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------

/// Seconds to wait after the 1st, 2nd, … failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 14 h, 20 h, 24 h. Ten attempts in all; after the tenth fails, give up.
pub const RETRY_SCHEDULE_SECS: [u64; 9] = [
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
    20 * 3600,
    24 * 3600,
];
/// A delivery attempt that has not answered after this long counts as failed.
pub const DELIVERY_TIMEOUT_SECS: u64 = 15;
/// Jitter is up to this percentage of the scheduled delay, either way.
pub const JITTER_PERCENT: u64 = 10;
/// The most a `Retry-After` can push a retry out (24 h), and the longest delay
/// [`parse_schedule`] accepts.
pub const DELAY_MS_MAX: u64 = 24 * 3600 * 1000;
/// The most entries [`parse_schedule`] accepts.
pub const SCHEDULE_LEN_MAX: usize = 32;

/// [`RETRY_SCHEDULE_SECS`] in milliseconds, the unit [`next_delay_ms`] works in.
pub fn default_schedule_ms() -> Vec<u64> {
    RETRY_SCHEDULE_SECS.iter().map(|s| s * 1000).collect()
}

/// Parses the `WEBHOOK_RETRY_SCHEDULE_MS` override: comma-separated delays in
/// **milliseconds**, e.g. `"200,400,800"` (whitespace around entries is allowed).
/// `None` — use the default — when the spec is empty, has an empty or non-decimal entry,
/// an entry over [`DELAY_MS_MAX`], or more than [`SCHEDULE_LEN_MAX`] entries.
pub fn parse_schedule(spec: &str) -> Option<Vec<u64>> {
    if spec.trim().is_empty() {
        return None;
    }
    let delays = spec
        .split(',')
        .map(|entry| {
            let entry = entry.trim();
            if entry.is_empty() || !entry.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            entry.parse::<u64>().ok().filter(|&ms| ms <= DELAY_MS_MAX)
        })
        .collect::<Option<Vec<u64>>>()?;
    (delays.len() <= SCHEDULE_LEN_MAX).then_some(delays)
}

/// The delay before the next attempt, or `None` to give up.
///
/// The rule, exactly (all in milliseconds, integer arithmetic):
/// - `failed_attempts == 0`: nothing has failed yet; the first attempt goes now, `Some(0)`
///   (or the `Retry-After` floor below, if one is passed).
/// - `failed_attempts > schedule_ms.len()`: the schedule is spent, `None`.
/// - otherwise `base = schedule_ms[failed_attempts - 1]`, `span = base * 10 / 100`
///   (rounded down), and the jittered delay is
///   `base - span + floor(jitter * (2 * span + 1) / 2^32)`, which runs evenly from
///   `base - span` (`jitter == 0`) through `base` (`jitter == 2^31`) to `base + span`
///   (`jitter == u32::MAX`).
/// - `retry_after_ms` (from [`parse_retry_after`]), if any, is capped at [`DELAY_MS_MAX`]
///   and the result is the larger of it and the jittered delay. It never extends the
///   schedule: a spent schedule gives up whatever `Retry-After` says.
pub fn next_delay_ms(
    failed_attempts: u32,
    schedule_ms: &[u64],
    jitter: u32,
    retry_after_ms: Option<u64>,
) -> Option<u64> {
    let jittered = match failed_attempts {
        0 => 0,
        n => {
            let base = *schedule_ms.get(usize::try_from(n - 1).ok()?)?;
            let span = u128::from(base) * u128::from(JITTER_PERCENT) / 100;
            let offset = (u128::from(jitter) * (2 * span + 1)) >> 32;
            let delay = u128::from(base) - span + offset;
            u64::try_from(delay).unwrap_or(u64::MAX)
        }
    };
    let floor = retry_after_ms.map_or(0, |ms| ms.min(DELAY_MS_MAX));
    Some(jittered.max(floor))
}

/// Parses a `Retry-After` value into milliseconds from `now_ms`: either delta-seconds
/// (`"120"`; absurdly large values saturate) or an IMF-fixdate HTTP-date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`, exactly that form, case-sensitive as RFC 9110
/// says; a date in the past gives 0). Anything else — including the obsolete RFC 850 and
/// asctime date forms — is `None`, and the caller keeps to the schedule.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(secs.saturating_mul(1000));
    }
    let at_secs = parse_imf_fixdate(value)?;
    let delta = i128::from(at_secs) * 1000 - i128::from(now_ms);
    Some(u64::try_from(delta.max(0)).unwrap_or(u64::MAX))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → Unix seconds. The day name must be one of the
/// seven but is not checked against the date (RFC 9110 lets recipients ignore it).
fn parse_imf_fixdate(s: &str) -> Option<i64> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    // "Sun, 06 Nov 1994 08:49:37 GMT" is exactly 29 bytes with fixed separators.
    if b.len() != 29
        || &b[3..5] != b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &b[25..] != b" GMT"
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = &b[range];
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if !DAYS.contains(&&s[0..3]) {
        return None;
    }
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| *m == &s[8..11])? as u32 + 1;
    let year = num(12..16)?;
    let (hh, mm, ss) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if day < 1 || day > i64::from(days_in_month(year, month)) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day as u32) * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's days-from-civil (proleptic Gregorian): days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What a delivery attempt's HTTP status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: delivered; stop.
    Delivered,
    /// 410 Gone: the receiver wants no more; stop without retrying.
    Gone,
    /// Anything else — 1xx, 3xx (redirects are not followed: a redirect could point
    /// past [`check_destination`]), 4xx, 5xx: retry per the schedule. A timeout or network
    /// error is also a retry; the caller has no status to pass then.
    Retry,
}

/// Classifies a delivery attempt's HTTP status.
pub fn outcome(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        410 => Outcome::Gone,
        _ => Outcome::Retry,
    }
}

// ---------------------------------------------------------------------------------------
// Destinations (SSRF guard)
// ---------------------------------------------------------------------------------------

/// Hosts allowed despite the SSRF rules, for local development and tests: config
/// `WEBHOOK_ALLOW_HOSTS`. Empty by default (production).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    /// Exact hostnames, lowercase, without a trailing dot.
    hosts: Vec<String>,
    /// Networks, host bits cleared; a bare IP is a /32 or /128.
    nets: Vec<(IpAddr, u8)>,
}

impl AllowList {
    /// Parses comma-separated entries, each a hostname (`localhost`, matched exactly, not
    /// its subdomains), an IP (`127.0.0.1`, `::1`, `[::1]`) or a CIDR (`10.0.0.0/8`,
    /// `fc00::/7`). Blank entries are skipped; the error names the first bad entry. IPs
    /// must be written plainly: `127.1` or `0x7f000001` would be ambiguous and are refused.
    pub fn parse(spec: &str) -> Result<AllowList, String> {
        let mut list = AllowList::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || {
                format!(
                    "WEBHOOK_ALLOW_HOSTS entry {entry:?} is not a hostname, an IP or a CIDR \
                     (e.g. `localhost`, `127.0.0.1`, `10.0.0.0/8`, `::1`)"
                )
            };
            let (addr, prefix) = match entry.split_once('/') {
                Some((a, p)) => {
                    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad());
                    }
                    (a, Some(p.parse::<u8>().map_err(|_| bad())?))
                }
                None => (entry, None),
            };
            let bare = addr
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(addr);
            if let Ok(ip) = bare.parse::<IpAddr>() {
                let width = if ip.is_ipv4() { 32 } else { 128 };
                let prefix = prefix.unwrap_or(width);
                if prefix > width {
                    return Err(bad());
                }
                list.nets.push((mask(ip, prefix), prefix));
            } else if prefix.is_none()
                && is_hostname(addr)
                && inet_aton(addr.trim_end_matches('.')).is_none()
            {
                list.hosts
                    .push(addr.trim_end_matches('.').to_ascii_lowercase());
            } else {
                return Err(bad());
            }
        }
        Ok(list)
    }

    /// Whether nothing is allowed (the production setting).
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.nets.is_empty()
    }

    fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h == host)
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        let in_net = |ip: IpAddr| {
            self.nets
                .iter()
                .any(|&(net, prefix)| net.is_ipv4() == ip.is_ipv4() && mask(ip, prefix) == net)
        };
        // An IPv4-mapped IPv6 address is also allowed by its IPv4 entry.
        in_net(ip)
            || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| in_net(v4.into())))
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & m))
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & m))
        }
    }
}

/// Letters, digits, `-` and `_` in non-empty dot-separated labels; one trailing dot ok.
fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A webhook URL that passed [`check_destination`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The URL to fetch — fetch this, not the string the client sent, so that what was
    /// checked is what is fetched. WHATWG-normalised: scheme and host lowercase, numeric
    /// IPv4 forms in dotted quad, IPv6 compressed in brackets, percent-encoded host
    /// decoded, trailing dot(s) of the host removed, default port and `#fragment`
    /// dropped, an empty path made `/`.
    pub url: String,
    /// The host as checked: a lowercase ASCII (punycode) name without trailing dot, a
    /// dotted IPv4 address, or an IPv6 address without brackets as `std::net` displays it
    /// (`::ffff:8.8.8.8` for an IPv4-mapped one, where `url` shows `[::ffff:808:808]`).
    pub host: String,
    /// The port the request goes to: the explicit one or the scheme's default.
    pub port: u16,
    /// Whether `host` is an IP address rather than a name.
    pub is_ip: bool,
    /// Whether the destination would have been refused but for the [`AllowList`].
    pub allow_listed: bool,
}

/// Checks a client's `replyUrl` before Kiln stores it and again before each delivery; the
/// `Err` is a human sentence for a 400 (it does not name the parameter).
///
/// Rules: at most [`crate::jobs::REPLY_URL_LEN_MAX`] characters, no whitespace or control
/// characters; `http` or `https`; no userinfo (`user:pass@`); a host; a port, if given,
/// of 1–65535. The URL is parsed by the WHATWG URL standard (the `url` crate), the
/// standard browsers and the Workers runtime follow: `http://2130706433/`,
/// `http://0x7f000001/`, `http://0177.0.0.1/`, `http://127.1/` are all 127.0.0.1,
/// `%`-escapes and Unicode in names are decoded, `\` is `/`. [`Destination::url`] is the
/// canonical serialisation (dotted-quad IPv4, lowercase punycode names), which any URL
/// parser reads with the same host — so what is checked here is what gets fetched.
/// Then, unless the [`AllowList`] names the host or an allow-listed network holds its
/// address, these are refused:
///
/// - IPv4: 0.0.0.0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16 (link-local, cloud
///   metadata), 172.16/12, 192.0.0/24, 192.0.2/24, 192.168/16, 198.18/15,
///   198.51.100/24, 203.0.113/24, 224/4 (multicast), 240/4 (reserved, broadcast).
/// - IPv6: `::` and the rest of `::/96` (IPv4-compatible), `::1`, `::ffff:0:0/96`
///   (IPv4-mapped: the IPv4 rules apply), `64:ff9b::/96` (NAT64: the IPv4 rules apply to
///   the embedded address), `64:ff9b:1::/48`, `100::/64`, `2001::/32` (Teredo),
///   `2001:db8::/32`, `2002::/16` (6to4: the IPv4 rules apply to the embedded address),
///   `fc00::/7` (unique-local, incl. AWS metadata `fd00:ec2::254`), `fe80::/10`,
///   `fec0::/10`, `ff00::/8`.
/// - Names: single-label names (`metadata`, `intranet`: they only resolve through local
///   search domains), `localhost` and names under `localhost`, `local`, `localdomain`,
///   `internal` (incl. `metadata.google.internal`), `home.arpa`, `lan`, `home`, `corp`,
///   `intranet`; and any name that reads as an IPv4 address by `inet_aton` rules (as
///   that address — a second line behind the WHATWG parser, which already converts
///   them).
///
/// A public name that *resolves* to a private address cannot be caught here: Workers do
/// no DNS of their own. In production that is harmless — Cloudflare's `fetch` does not
/// connect to private, loopback or link-local addresses. Deliveries must not follow
/// redirects (see [`Outcome::Retry`]).
pub fn check_destination(url: &str, allow: &AllowList) -> Result<Destination, String> {
    let max = crate::jobs::REPLY_URL_LEN_MAX;
    if url.len() > max {
        return Err(format!("The webhook URL is longer than {max} characters."));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("The webhook URL must not contain spaces or control characters.".into());
    }
    let mut parsed = url::Url::parse(url)
        .map_err(|e| format!("The webhook URL is not a valid absolute http(s) URL ({e})."))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "The webhook URL must use http or https, not `{}`.",
            parsed.scheme()
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("The webhook URL must not contain credentials (`user:pass@`).".into());
    }
    if parsed.port() == Some(0) {
        return Err("The webhook URL's port must be between 1 and 65535.".into());
    }
    let port = parsed
        .port_or_known_default()
        .ok_or("The webhook URL has no port.")?;
    let (host, ip) = match parsed.host() {
        None => return Err("The webhook URL has no host.".into()),
        Some(url::Host::Ipv4(v4)) => (v4.to_string(), Some(IpAddr::V4(v4))),
        Some(url::Host::Ipv6(v6)) => (v6.to_string(), Some(IpAddr::V6(v6))),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                return Err("The webhook URL has no host.".into());
            }
            match inet_aton(&name) {
                Some(v4) => (v4.to_string(), Some(IpAddr::V4(v4))),
                None => (name, None),
            }
        }
    };
    let refusal = match ip {
        Some(ip) => ip_refusal(ip).map(|why| {
            format!(
                "The webhook URL's host {host} is {why}; webhooks are only delivered to public \
                 addresses."
            )
        }),
        None => name_refusal(&host).map(|why| {
            format!(
                "The webhook URL's host {host} is {why}; webhooks are only delivered to public \
                 hosts."
            )
        }),
    };
    let allowed = match ip {
        Some(ip) => allow.allows_ip(ip),
        None => allow.allows_host(&host),
    };
    if let (Some(refusal), false) = (&refusal, allowed) {
        return Err(refusal.clone());
    }
    if !matches!(parsed.host(), Some(url::Host::Ipv6(_))) {
        let current = parsed.host_str().unwrap_or_default();
        if current != host {
            parsed
                .set_host(Some(&host))
                .map_err(|e| format!("The webhook URL's host is not valid ({e})."))?;
        }
    }
    parsed.set_fragment(None);
    Ok(Destination {
        url: parsed.into(),
        host,
        port,
        is_ip: ip.is_some(),
        allow_listed: refusal.is_some(),
    })
}

/// Why an address is not a public destination, or `None` if it is one.
fn ip_refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_refusal(v4),
        IpAddr::V6(v6) => v6_refusal(v6),
    }
}

fn v4_refusal(ip: Ipv4Addr) -> Option<&'static str> {
    const NETS: [([u8; 4], u8, &str); 15] = [
        ([0, 0, 0, 0], 8, "a \"this network\" address (0.0.0.0/8)"),
        ([10, 0, 0, 0], 8, "a private address (10.0.0.0/8)"),
        (
            [100, 64, 0, 0],
            10,
            "a carrier-grade NAT address (100.64.0.0/10)",
        ),
        ([127, 0, 0, 0], 8, "a loopback address (127.0.0.0/8)"),
        (
            [169, 254, 0, 0],
            16,
            "a link-local address (169.254.0.0/16, incl. cloud metadata)",
        ),
        ([172, 16, 0, 0], 12, "a private address (172.16.0.0/12)"),
        (
            [192, 0, 0, 0],
            24,
            "an IETF protocol address (192.0.0.0/24)",
        ),
        ([192, 0, 2, 0], 24, "a documentation address (192.0.2.0/24)"),
        ([192, 168, 0, 0], 16, "a private address (192.168.0.0/16)"),
        (
            [198, 18, 0, 0],
            15,
            "a benchmarking address (198.18.0.0/15)",
        ),
        (
            [198, 51, 100, 0],
            24,
            "a documentation address (198.51.100.0/24)",
        ),
        (
            [203, 0, 113, 0],
            24,
            "a documentation address (203.0.113.0/24)",
        ),
        ([224, 0, 0, 0], 4, "a multicast address (224.0.0.0/4)"),
        ([255, 255, 255, 255], 32, "the broadcast address"),
        ([240, 0, 0, 0], 4, "a reserved address (240.0.0.0/4)"),
    ];
    NETS.iter()
        .find(|(net, prefix, _)| mask(ip.into(), *prefix) == IpAddr::V4(Ipv4Addr::from(*net)))
        .map(|(_, _, why)| *why)
}

fn v6_refusal(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("the unspecified address (::)");
    }
    if ip.is_loopback() {
        return Some("the loopback address (::1)");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_refusal(v4).map(|_| "an IPv4-mapped non-public address");
    }
    if s[..6] == [0; 6] {
        return Some("an IPv4-compatible address (::/96, deprecated)");
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_refusal(embedded(s[6], s[7])).map(|_| "a NAT64 address of a non-public IPv4");
    }
    if s[..3] == [0x64, 0xff9b, 1] {
        return Some("a local-use NAT64 address (64:ff9b:1::/48)");
    }
    if s[..4] == [0x100, 0, 0, 0] {
        return Some("a discard-only address (100::/64)");
    }
    if s[..2] == [0x2001, 0] {
        return Some("a Teredo address (2001::/32)");
    }
    if s[..2] == [0x2001, 0xdb8] {
        return Some("a documentation address (2001:db8::/32)");
    }
    if s[0] == 0x2002 {
        return v4_refusal(embedded(s[1], s[2])).map(|_| "a 6to4 address of a non-public IPv4");
    }
    match s[0] {
        0xfc00..=0xfdff => Some("a unique-local address (fc00::/7)"),
        0xfe80..=0xfebf => Some("a link-local address (fe80::/10)"),
        0xfec0..=0xfeff => Some("a site-local address (fec0::/10)"),
        0xff00..=0xffff => Some("a multicast address (ff00::/8)"),
        _ => None,
    }
}

/// Why a (lowercase, no trailing dot) name is not a public destination.
fn name_refusal(name: &str) -> Option<&'static str> {
    const LOCAL_SUFFIXES: [&str; 9] = [
        "localhost",
        "local",
        "localdomain",
        "internal",
        "home.arpa",
        "lan",
        "home",
        "corp",
        "intranet",
    ];
    if !name.contains('.') {
        return Some(if name == "localhost" {
            "a loopback name"
        } else {
            "a single-label name, which only resolves on a local network"
        });
    }
    LOCAL_SUFFIXES
        .iter()
        .any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.'))
        })
        .then_some("a local or internal name")
}

/// Reads a name as an IPv4 address the way `inet_aton` does: one to four dot-separated
/// parts, each decimal, octal (leading `0`) or hex (`0x`); the last part fills the
/// remaining bytes (`127.1` is 127.0.0.1, `2130706433` is 127.0.0.1).
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(4);
    for part in &parts {
        let (digits, radix) =
            if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                (hex, 16)
            } else if part.len() > 1 && part.starts_with('0') {
                (&part[1..], 8)
            } else {
                (*part, 10)
            };
        if part.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let v = if digits.is_empty() {
            0
        } else {
            u64::from_str_radix(digits, radix).ok()?
        };
        values.push(v);
    }
    let (last, init) = values.split_last()?;
    if init.iter().any(|&v| v > 255) || *last >= 1u64 << (8 * (5 - values.len())) {
        return None;
    }
    let addr = init
        .iter()
        .enumerate()
        .fold(*last, |acc, (i, &v)| acc | v << (8 * (3 - i)));
    Some(Ipv4Addr::from(u32::try_from(addr).ok()?))
}

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

/// The events a job's webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The job left the queue and began running.
    Started,
    /// A progress step; sent only when asked for with `webhook_events: ["progress"]`.
    Progress,
    /// The job finished with outputs.
    Completed,
    /// The job failed.
    Failed,
    /// The job was cancelled.
    Cancelled,
}

impl EventType {
    /// Every event type, in lifecycle order.
    pub const ALL: [EventType; 5] = [
        EventType::Started,
        EventType::Progress,
        EventType::Completed,
        EventType::Failed,
        EventType::Cancelled,
    ];

    /// The wire name: `job.started`, `job.progress`, `job.completed`, `job.failed`,
    /// `job.cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Started => "job.started",
            EventType::Progress => "job.progress",
            EventType::Completed => "job.completed",
            EventType::Failed => "job.failed",
            EventType::Cancelled => "job.cancelled",
        }
    }

    /// The event type with this wire name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// Whether a job whose filter said `progress_wanted` gets this event: all but
    /// [`EventType::Progress`] always, progress only when asked for.
    pub fn is_sent(self, progress_wanted: bool) -> bool {
        self != EventType::Progress || progress_wanted
    }
}

/// Which optional events a job's `replyUrl` gets. Terminal events (`job.completed`,
/// `job.failed`, `job.cancelled`) are always sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFilter {
    /// `job.started`: on by default; `"terminal"` turns it off.
    pub started: bool,
    /// `job.progress`, one per step: off by default; `"progress"` turns it on.
    pub progress: bool,
}

impl Default for EventFilter {
    fn default() -> Self {
        Self {
            started: true,
            progress: false,
        }
    }
}

/// Reads the request field `webhook_events` (absent: [`EventFilter::default`]).
/// Accepted values:
/// - `"progress"` or `"job.progress"`: also send a `job.progress` per step;
/// - `"terminal"`: send only the terminal event (no `job.started`), for receivers that
///   can take one call only, like n8n's Wait node resume URL; `"job.started"` or
///   `"started"` in the same list keeps `job.started`;
/// - `"job.completed"`, `"job.failed"`, `"job.cancelled"`: always on, allowed.
///
/// Duplicates are fine. Anything else is an error message naming the allowed values.
pub fn parse_event_filter(values: &[String]) -> Result<EventFilter, String> {
    let mut progress = false;
    let mut terminal_only = false;
    let mut started_named = false;
    for value in values {
        match value.as_str() {
            "progress" => progress = true,
            "terminal" => terminal_only = true,
            "started" => started_named = true,
            name => match EventType::parse(name) {
                Some(EventType::Progress) => progress = true,
                Some(EventType::Started) => started_named = true,
                Some(_) => {}
                None => {
                    return Err(format!(
                        "`webhook_events` may contain \"progress\", \"terminal\" or the event \
                         names \"job.started\", \"job.progress\", \"job.completed\", \
                         \"job.failed\", \"job.cancelled\"; {value:?} is not one of them."
                    ))
                }
            },
        }
    }
    Ok(EventFilter {
        started: !terminal_only || started_named,
        progress,
    })
}

/// The delivered body, compact JSON with keys in this order:
/// `{"type":"job.completed","replyRef":"…"|null,"job":<job object>}`.
pub fn body(event: EventType, reply_ref: Option<&str>, job: &Value) -> String {
    format!(
        "{{\"type\":{},\"replyRef\":{},\"job\":{}}}",
        Value::from(event.as_str()),
        Value::from(reply_ref),
        job
    )
}

#[cfg(test)]
mod tests {
    use super::*;
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

    // --- signing ---------------------------------------------------------------------

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
                    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76,
                    0x54, 0x32, 0x10,
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
            assert!(tail.bytes().all(|b| BASE32.contains(&b)), "{id}");
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
        use WebhookError::{
            InvalidSignature, InvalidTimestamp, TimestampInFuture, TimestampTooOld,
        };
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

    // --- retries -----------------------------------------------------------------------

    #[test]
    fn the_default_schedule() {
        assert_eq!(
            RETRY_SCHEDULE_SECS,
            [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400]
        );
        assert_eq!(default_schedule_ms()[0], 5000);
        assert_eq!(default_schedule_ms()[8], DELAY_MS_MAX);
    }

    #[test]
    fn schedule_overrides() {
        let max = DELAY_MS_MAX.to_string();
        let over = (DELAY_MS_MAX + 1).to_string();
        let too_many = vec!["1"; SCHEDULE_LEN_MAX + 1].join(",");
        let most = vec!["1"; SCHEDULE_LEN_MAX].join(",");
        let cases: Vec<(&str, Option<Vec<u64>>)> = vec![
            ("200,400,800", Some(vec![200, 400, 800])),
            (" 200 , 400 ", Some(vec![200, 400])),
            ("0", Some(vec![0])),
            (&max, Some(vec![DELAY_MS_MAX])),
            (&most, Some(vec![1; SCHEDULE_LEN_MAX])),
            ("", None),
            ("   ", None),
            (",", None),
            ("200,", None),
            ("200,,400", None),
            ("-5", None),
            ("+5", None),
            ("1.5", None),
            ("5s", None),
            ("0x10", None),
            ("99999999999999999999999", None),
            (&over, None),
            (&too_many, None),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_schedule(spec), want, "{spec:?}");
        }
    }

    #[test]
    fn delays_follow_the_schedule_with_bounded_jitter() {
        let sched = default_schedule_ms();
        let mid = 1u32 << 31;
        type Case = (u32, &'static [u64], u32, Option<u64>, Option<u64>);
        let cases: [Case; 16] = [
            (0, &[1000], 0, None, Some(0)),
            (0, &[1000], 0, Some(700), Some(700)),
            (1, &[1000, 2000], mid, None, Some(1000)),
            (1, &[1000, 2000], 0, None, Some(900)),
            (1, &[1000, 2000], u32::MAX, None, Some(1100)),
            (2, &[1000, 2000], mid, None, Some(2000)),
            (3, &[1000, 2000], mid, None, None),
            (3, &[1000, 2000], mid, Some(5), None),
            (1, &[], mid, None, None),
            (1, &[0], u32::MAX, None, Some(0)),
            (1, &[9], u32::MAX, None, Some(9)), // span rounds down to 0
            (1, &[1000], mid, Some(5000), Some(5000)),
            (1, &[1000], mid, Some(500), Some(1000)),
            (1, &[1000], mid, Some(u64::MAX), Some(DELAY_MS_MAX)),
            (1, &[u64::MAX], mid, None, Some(u64::MAX)),
            (u32::MAX, &[1000], mid, None, None),
        ];
        for (n, s, j, ra, want) in cases {
            assert_eq!(
                next_delay_ms(n, s, j, ra),
                want,
                "n={n} s={s:?} j={j} ra={ra:?}"
            );
        }
        for (i, &base) in sched.iter().enumerate() {
            let n = i as u32 + 1;
            let span = base / 10;
            assert_eq!(next_delay_ms(n, &sched, 0, None), Some(base - span));
            assert_eq!(next_delay_ms(n, &sched, mid, None), Some(base));
            assert_eq!(next_delay_ms(n, &sched, u32::MAX, None), Some(base + span));
            let mut prev = 0;
            for k in 0..=256u64 {
                let j = u32::try_from((u64::from(u32::MAX) * k) / 256).unwrap();
                let d = next_delay_ms(n, &sched, j, None).unwrap();
                assert!(d >= base - span && d <= base + span, "{n} {j} {d}");
                assert!(d >= prev, "jitter is monotonic in its input");
                prev = d;
            }
        }
        assert_eq!(next_delay_ms(10, &sched, mid, None), None);
    }

    #[test]
    fn retry_after_values() {
        // Wed, 21 Oct 2015 07:28:00 GMT
        let at_ms: i64 = 1_445_412_480_000;
        let cases: [(&str, i64, Option<u64>); 24] = [
            ("120", 0, Some(120_000)),
            ("0", 0, Some(0)),
            (" 5 ", 0, Some(5000)),
            ("99999999999999999999999", 0, Some(u64::MAX)),
            ("18446744073709552", 0, Some(u64::MAX)),
            ("-1", 0, None),
            ("1.5", 0, None),
            ("+3", 0, None),
            ("", 0, None),
            ("soon", 0, None),
            (
                "Wed, 21 Oct 2015 07:28:00 GMT",
                at_ms - 60_000,
                Some(60_000),
            ),
            ("Wed, 21 Oct 2015 07:28:00 GMT", at_ms - 1, Some(1)),
            ("Wed, 21 Oct 2015 07:28:00 GMT", at_ms, Some(0)),
            ("Wed, 21 Oct 2015 07:28:00 GMT", at_ms + 10_000, Some(0)),
            (
                "Sun, 06 Nov 1994 08:49:37 GMT",
                784_111_777_000 - 2_000,
                Some(2_000),
            ),
            ("Thu, 29 Feb 2024 23:59:60 GMT", 1_709_251_200_000, Some(0)),
            ("Thu, 01 Jan 1970 00:00:10 GMT", 0, Some(10_000)),
            ("Thu, 29 Feb 2023 00:00:00 GMT", 0, None),
            ("Wed, 32 Oct 2015 07:28:00 GMT", 0, None),
            ("Wed, 21 Foo 2015 07:28:00 GMT", 0, None),
            ("Wed, 21 Oct 2015 24:00:00 GMT", 0, None),
            ("Wed, 21 Oct 2015 07:28:00 UTC", 0, None),
            ("Wednesday, 21-Oct-15 07:28:00 GMT", 0, None),
            ("Wed Oct 21 07:28:00 2015", 0, None),
        ];
        for (value, now, want) in cases {
            assert_eq!(parse_retry_after(value, now), want, "{value:?} at {now}");
        }
        for bad in [
            "wed, 21 Oct 2015 07:28:00 GMT",
            "Wed 21 Oct 2015 07:28:00 GMT ",
            "Xyz, 21 Oct 2015 07:28:00 GMT",
            "Wed, 21 oct 2015 07:28:00 GMT",
            "Wed, 1 Oct 2015 07:28:00 GMT",
            "Wed, 00 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 07:60:00 GMT",
            "Wed, 21 Oct 2015 07:28:61 GMT",
            "Wed, 21 Oct 2015 7:28:00 GMT",
            "Wed, 21 Oct 2015 07:28:00 gmt",
            "Wed, 2a Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 07:28:00 GMTX",
        ] {
            assert_eq!(parse_retry_after(bad, 0), None, "{bad:?}");
        }
    }

    #[test]
    fn days_from_civil_agrees_with_time_rfc3339() {
        for (y, m, d) in [
            (1970, 1, 1),
            (2000, 2, 29),
            (1969, 12, 31),
            (2026, 4, 3),
            (2100, 3, 1),
        ] {
            let ms = days_from_civil(y, m, d) * 86_400_000;
            assert_eq!(
                crate::time::rfc3339(ms),
                format!("{y:04}-{m:02}-{d:02}T00:00:00Z")
            );
        }
    }

    #[test]
    fn outcomes() {
        let cases = [
            (200, Outcome::Delivered),
            (202, Outcome::Delivered),
            (204, Outcome::Delivered),
            (299, Outcome::Delivered),
            (410, Outcome::Gone),
            (100, Outcome::Retry),
            (301, Outcome::Retry),
            (308, Outcome::Retry),
            (400, Outcome::Retry),
            (404, Outcome::Retry),
            (429, Outcome::Retry),
            (500, Outcome::Retry),
            (503, Outcome::Retry),
            (0, Outcome::Retry),
        ];
        for (status, want) in cases {
            assert_eq!(outcome(status), want, "{status}");
        }
    }

    // --- destinations ------------------------------------------------------------------

    fn ok(url: &str) -> Destination {
        check_destination(url, &AllowList::default())
            .unwrap_or_else(|e| panic!("{url} refused: {e}"))
    }

    #[test]
    fn public_urls_pass_and_are_normalised() {
        let urls = [
            ("https://example.com/hook", "https://example.com/hook"),
            ("http://example.com", "http://example.com/"),
            (
                "HTTPS://Hooks.Example.COM:8443/a?b=c#frag",
                "https://hooks.example.com:8443/a?b=c",
            ),
            ("https://example.com:443/x", "https://example.com/x"),
            ("http://example.com:80/x", "http://example.com/x"),
            ("https://example.com./x", "https://example.com/x"),
            ("https://%65xample.com/x", "https://example.com/x"),
            (
                "https://bücher.example/x",
                "https://xn--bcher-kva.example/x",
            ),
            (
                "https://example.com/a%20b?q=%2F",
                "https://example.com/a%20b?q=%2F",
            ),
            ("http://8.8.8.8:8080/x", "http://8.8.8.8:8080/x"),
            ("http://134744072/", "http://8.8.8.8/"),
            (
                "http://[2606:4700:4700::1111]/x",
                "http://[2606:4700:4700::1111]/x",
            ),
            ("http://[::ffff:8.8.8.8]/", "http://[::ffff:808:808]/"),
            (
                "https://a.b.c.example.org:65535/",
                "https://a.b.c.example.org:65535/",
            ),
            (
                "https://localhost.example.com/",
                "https://localhost.example.com/",
            ),
        ];
        for (input, url) in urls {
            let d = ok(input);
            assert_eq!(d.url, url, "{input}");
            assert!(!d.allow_listed, "{input}");
        }
        let parts = [
            ("https://Example.com./x", "example.com", 443, false),
            ("http://example.com/x", "example.com", 80, false),
            ("https://example.com:8443/", "example.com", 8443, false),
            ("http://0x08080808:81/", "8.8.8.8", 81, true),
            ("http://[2606:4700::1111]/", "2606:4700::1111", 80, true),
            ("https://[::ffff:8.8.8.8]/", "::ffff:8.8.8.8", 443, true),
        ];
        for (input, host, port, is_ip) in parts {
            let d = ok(input);
            assert_eq!(
                (d.host.as_str(), d.port, d.is_ip),
                (host, port, is_ip),
                "{input}"
            );
        }
    }

    #[test]
    fn malformed_urls_are_refused() {
        let long = format!(
            "https://example.com/{}",
            "a".repeat(crate::jobs::REPLY_URL_LEN_MAX)
        );
        let cases: Vec<(&str, &str)> = vec![
            ("", "not a valid"),
            ("example.com/hook", "not a valid"),
            ("/hook", "not a valid"),
            ("ftp://example.com/", "http or https"),
            ("file:///etc/passwd", "http or https"),
            ("gopher://example.com/", "http or https"),
            ("javascript:alert(1)", "http or https"),
            ("https://user:pass@example.com/", "credentials"),
            ("https://user@example.com/", "credentials"),
            ("https://:pass@example.com/", "credentials"),
            ("http://", "not a valid"),
            ("http:///path", "single-label"),
            ("https://example.com:0/", "port"),
            ("https://example.com:65536/", "not a valid"),
            ("https://example.com:99999/", "not a valid"),
            ("https://exa mple.com/", "spaces"),
            (" https://example.com/", "spaces"),
            ("https://example.com/\n", "spaces"),
            ("https://example.com/\u{0}", "spaces"),
            ("https://[::1/", "not a valid"),
            ("https://exa<mple.com/", "not a valid"),
            (&long, "longer than"),
        ];
        for (url, want) in cases {
            let err = check_destination(url, &AllowList::default()).unwrap_err();
            assert!(err.contains(want), "{url:?}: {err}");
            assert!(err.starts_with("The webhook URL"), "{url:?}: {err}");
        }
    }

    #[test]
    fn non_public_destinations_are_refused() {
        let cases: &[(&str, &str)] = &[
            // IPv4
            ("http://127.0.0.1/", "loopback"),
            ("http://127.255.255.254:8080/x", "loopback"),
            ("http://10.0.0.1/", "private"),
            ("http://10.255.255.255/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://169.254.0.1/", "link-local"),
            ("http://100.64.0.1/", "carrier-grade"),
            ("http://100.127.255.255/", "carrier-grade"),
            ("http://0.0.0.0/", "this network"),
            ("http://0.1.2.3/", "this network"),
            ("http://224.0.0.1/", "multicast"),
            ("http://239.255.255.250/", "multicast"),
            ("http://240.0.0.1/", "reserved"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://192.0.0.170/", "IETF"),
            ("http://192.0.2.1/", "documentation"),
            ("http://198.51.100.7/", "documentation"),
            ("http://203.0.113.9/", "documentation"),
            ("http://198.18.0.1/", "benchmarking"),
            ("http://198.19.255.255/", "benchmarking"),
            // Numeric forms resolvers accept
            ("http://2130706433/", "127.0.0.1"),
            ("http://0x7f000001/", "127.0.0.1"),
            ("http://0X7F000001/", "127.0.0.1"),
            ("http://0177.0.0.1/", "127.0.0.1"),
            ("http://0177.0.0.01/", "127.0.0.1"),
            ("http://127.1/", "127.0.0.1"),
            ("http://127.0.1/", "127.0.0.1"),
            ("http://0x7f.0x0.0x0.0x1/", "127.0.0.1"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("http://127.0.0.1./", "127.0.0.1"),
            ("http://0/", "0.0.0.0"),
            ("http://0x0/", "0.0.0.0"),
            ("http://017700000001/", "127.0.0.1"),
            ("http://2852039166/", "169.254.169.254"),
            ("http://0xa9fea9fe/", "169.254.169.254"),
            ("http://0251.0376.0251.0376/", "169.254.169.254"),
            ("http://169.254.43518/", "169.254.169.254"),
            ("http://%31%32%37.0.0.1/", "127.0.0.1"),
            ("http://１２７.０.０.１/", "127.0.0.1"),
            ("http://127.0.0.1:80\\@example.com/", "127.0.0.1"),
            ("http://127.0.0.1#@example.com/", "127.0.0.1"),
            ("http://127.0.0.1?@example.com/", "127.0.0.1"),
            ("http://example.com@127.0.0.1/", "credentials"),
            // IPv6
            ("http://[::1]:8080/x", "loopback"),
            ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
            ("http://[::]/", "unspecified"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[febf::1]/", "link-local"),
            ("http://[fc00::1]/", "unique-local"),
            ("http://[fd12:3456::1]/", "unique-local"),
            ("http://[fd00:ec2::254]/latest/meta-data/", "unique-local"),
            ("http://[ff02::1]/", "multicast"),
            ("http://[fec0::1]/", "site-local"),
            ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
            ("http://[::ffff:7f00:1]/", "IPv4-mapped"),
            ("http://[::ffff:169.254.169.254]/", "IPv4-mapped"),
            ("http://[::ffff:10.0.0.1]/", "IPv4-mapped"),
            ("http://[::127.0.0.1]/", "IPv4-compatible"),
            ("http://[::8.8.8.8]/", "IPv4-compatible"),
            ("http://[64:ff9b::7f00:1]/", "NAT64"),
            ("http://[64:ff9b::a9fe:a9fe]/", "NAT64"),
            ("http://[64:ff9b:1::1]/", "NAT64"),
            ("http://[100::1]/", "discard"),
            ("http://[2001::1]/", "Teredo"),
            ("http://[2001:db8::1]/", "documentation"),
            ("http://[2002:7f00:1::1]/", "6to4"),
            ("http://[2002:c0a8:101::1]/", "6to4"),
            // Names
            ("http://localhost/", "loopback name"),
            ("http://LOCALHOST:3000/", "loopback name"),
            ("http://localhost./", "loopback name"),
            ("http://localhost../", "loopback name"),
            ("http://%6c%6f%63%61%6c%68%6f%73%74/", "loopback name"),
            ("http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "loopback name"),
            ("http://api.localhost/", "local or internal"),
            ("http://printer.local/", "local or internal"),
            (
                "http://metadata.google.internal/computeMetadata/v1/",
                "local or internal",
            ),
            ("http://metadata.google.internal./", "local or internal"),
            ("http://db.svc.internal/", "local or internal"),
            ("http://box.localdomain/", "local or internal"),
            ("http://nas.home.arpa/", "local or internal"),
            ("http://router.lan/", "local or internal"),
            ("http://metadata/", "single-label"),
            ("http://intranet/", "single-label"),
            ("http://kubernetes/", "single-label"),
        ];
        for (url, want) in cases {
            let err = check_destination(url, &AllowList::default()).unwrap_err();
            assert!(err.contains(want), "{url}: {err}");
        }
    }

    #[test]
    fn public_addresses_near_private_ranges_pass() {
        for url in [
            "http://9.255.255.255/",
            "http://11.0.0.0/",
            "http://100.63.255.255/",
            "http://100.128.0.0/",
            "http://126.255.255.255/",
            "http://128.0.0.0/",
            "http://169.253.255.255/",
            "http://169.255.0.0/",
            "http://172.15.255.255/",
            "http://172.32.0.0/",
            "http://192.167.255.255/",
            "http://192.169.0.0/",
            "http://198.17.255.255/",
            "http://198.20.0.0/",
            "http://223.255.255.255/",
            "http://1.1.1.1/",
            "http://[2606:4700::1111]/",
            "http://[fbff::1]/",
            "http://[fe7f::1]/",
            "http://[64:ff9b::808:808]/",
            "http://[2002:808:808::1]/",
            "http://[::ffff:1.1.1.1]/",
            "http://example.local.com/",
            "http://internal.example.com/",
            "http://localhostexample.com/",
            "http://my.local-host.io/x",
        ] {
            ok(url);
        }
    }

    #[test]
    fn the_allow_list_lets_named_hosts_and_networks_through() {
        let allow = AllowList::parse(
            " 127.0.0.1, localhost ,10.0.0.0/8,::1, [fd00::]/8 , Receiver.Test. ,",
        )
        .unwrap();
        let cases: [(&str, Option<&str>); 17] = [
            (
                "http://127.0.0.1:8787/hook",
                Some("http://127.0.0.1:8787/hook"),
            ),
            (
                "http://2130706433:8787/hook",
                Some("http://127.0.0.1:8787/hook"),
            ),
            (
                "http://[::ffff:127.0.0.1]/",
                Some("http://[::ffff:7f00:1]/"),
            ),
            ("http://localhost:3000/x", Some("http://localhost:3000/x")),
            ("http://localhost.:3000/x", Some("http://localhost:3000/x")),
            ("http://10.1.2.3/", Some("http://10.1.2.3/")),
            ("http://[::1]:9000/", Some("http://[::1]:9000/")),
            ("http://[fdab::1]/", Some("http://[fdab::1]/")),
            ("http://receiver.test/", Some("http://receiver.test/")),
            ("http://127.0.0.2/", None),
            ("http://11.0.0.1/", Some("http://11.0.0.1/")),
            ("http://192.168.0.1/", None),
            ("http://api.localhost/", None),
            ("http://[fc00::1]/", None),
            ("http://[::2]/", None),
            ("http://169.254.169.254/", None),
            ("http://user:pw@localhost/", None),
        ];
        for (url, want) in cases {
            let got = check_destination(url, &allow);
            match want {
                Some(want) => {
                    let d = got.unwrap_or_else(|e| panic!("{url}: {e}"));
                    assert_eq!(d.url, want, "{url}");
                    let public = ["http://11.0.0.1/", "http://receiver.test/"];
                    assert_eq!(d.allow_listed, !public.contains(&url), "{url}");
                }
                None => assert!(got.is_err(), "{url} passed: {got:?}"),
            }
        }
        assert!(AllowList::default().is_empty());
        assert!(!allow.is_empty());
        assert_eq!(AllowList::parse(" , ").unwrap(), AllowList::default());
        // Host bits of a CIDR are cleared.
        assert_eq!(
            AllowList::parse("10.9.8.7/8").unwrap(),
            AllowList::parse("10.0.0.0/8").unwrap()
        );
        assert!(check_destination("http://[::]/", &AllowList::parse("::/0").unwrap()).is_ok());
        assert!(
            check_destination("http://0.0.0.0/", &AllowList::parse("0.0.0.0/0").unwrap()).is_ok()
        );
    }

    #[test]
    fn bad_allow_list_entries_are_named() {
        for entry in [
            "localhost:8080",
            "10.0.0.0/33",
            "::1/129",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.0/-1",
            "localhost/8",
            "http://localhost",
            "exa mple.com",
            "a..b",
            "[::1",
            "*.example.com",
            "127.1",
            "0x7f000001",
            "2130706433",
            "127.0.0.1.",
        ] {
            let err = AllowList::parse(&format!("127.0.0.1,{entry}")).unwrap_err();
            assert!(err.contains(&format!("{entry:?}")), "{entry}: {err}");
        }
    }

    #[test]
    fn inet_aton_forms() {
        let cases: [(&str, Option<[u8; 4]>); 22] = [
            ("127.0.0.1", Some([127, 0, 0, 1])),
            ("2130706433", Some([127, 0, 0, 1])),
            ("0x7f000001", Some([127, 0, 0, 1])),
            ("0177.0.0.1", Some([127, 0, 0, 1])),
            ("127.1", Some([127, 0, 0, 1])),
            ("127.0.1", Some([127, 0, 0, 1])),
            ("0x7f.1", Some([127, 0, 0, 1])),
            ("10.0x10000", Some([10, 1, 0, 0])),
            ("1.2.65535", Some([1, 2, 255, 255])),
            ("0", Some([0, 0, 0, 0])),
            ("0x", Some([0, 0, 0, 0])),
            ("4294967295", Some([255, 255, 255, 255])),
            ("00", Some([0, 0, 0, 0])),
            ("4294967296", None),
            ("1.2.65536", None),
            ("256.0.0.1", None),
            ("08.0.0.1", None),
            ("0xg.0.0.1", None),
            ("1.2.3.4.5", None),
            ("1..2", None),
            ("", None),
            ("example.com", None),
        ];
        for (s, want) in cases {
            assert_eq!(inet_aton(s), want.map(Ipv4Addr::from), "{s:?}");
        }
    }

    // --- events ------------------------------------------------------------------------

    #[test]
    fn event_names() {
        let names: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(
            names,
            [
                "job.started",
                "job.progress",
                "job.completed",
                "job.failed",
                "job.cancelled"
            ]
        );
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.as_str()), Some(e));
            assert!(e.is_sent(true));
            assert_eq!(e.is_sent(false), e != EventType::Progress);
        }
        assert_eq!(EventType::parse("progress"), None);
        assert_eq!(EventType::parse("JOB.STARTED"), None);
    }

    #[test]
    fn event_filters() {
        /// Values, and the (started, progress) filter they give or an error.
        type Case<'a> = (&'a [&'a str], Result<(bool, bool), ()>);
        let cases: [Case; 14] = [
            (&[], Ok((true, false))),
            (&["progress"], Ok((true, true))),
            (&["job.progress"], Ok((true, true))),
            (
                &[
                    "job.started",
                    "job.completed",
                    "job.failed",
                    "job.cancelled",
                ],
                Ok((true, false)),
            ),
            (&["job.completed", "progress", "progress"], Ok((true, true))),
            (&["terminal"], Ok((false, false))),
            (&["terminal", "progress"], Ok((false, true))),
            (&["terminal", "job.started"], Ok((true, false))),
            (&["started"], Ok((true, false))),
            (&["Progress"], Err(())),
            (&["progres"], Err(())),
            (&[""], Err(())),
            (&["job.*"], Err(())),
            (&["progress", "nope"], Err(())),
        ];
        for (values, want) in cases {
            let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            let got = parse_event_filter(&values);
            match want {
                Ok((started, progress)) => {
                    assert_eq!(got, Ok(EventFilter { started, progress }), "{values:?}")
                }
                Err(()) => {
                    let err = got.unwrap_err();
                    for allowed in [
                        "\"progress\"",
                        "job.started",
                        "job.cancelled",
                        "webhook_events",
                    ] {
                        assert!(err.contains(allowed), "{err}");
                    }
                }
            }
        }
    }

    #[test]
    fn bodies_are_compact_json_in_documented_order() {
        let job = json!({"id": "job_1", "status": "completed"});
        assert_eq!(
            body(EventType::Completed, Some("order-7"), &job),
            r#"{"type":"job.completed","replyRef":"order-7","job":{"id":"job_1","status":"completed"}}"#
        );
        assert_eq!(
            body(EventType::Started, None, &json!({})),
            r#"{"type":"job.started","replyRef":null,"job":{}}"#
        );
        let tricky = "quote\" backslash\\ newline\n ✓";
        let parsed: Value =
            serde_json::from_str(&body(EventType::Failed, Some(tricky), &job)).unwrap();
        assert_eq!(
            parsed,
            json!({"type": "job.failed", "replyRef": tricky, "job": job})
        );
    }
}
