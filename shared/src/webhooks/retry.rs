//! When to try a delivery again: the retry schedule ([`RETRY_SCHEDULE_SECS`], or the
//! `WEBHOOK_RETRY_SCHEDULE_MS` override), its ±10 % jitter, the `Retry-After` floor, and
//! what an attempt's HTTP status means ([`outcome`]).

use std::borrow::Cow;
use std::time::UNIX_EPOCH;

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
/// (`"120"`; absurdly large values saturate) or an HTTP-date in any of the three forms
/// RFC 9110 (section 5.6.7) says recipients must accept, read by the `httpdate` crate:
///
/// - IMF-fixdate, `"Wed, 21 Oct 2015 07:28:00 GMT"`;
/// - the obsolete RFC 850 form, `"Wednesday, 21-Oct-15 07:28:00 GMT"` (two-digit years
///   below 70 are 20xx);
/// - the obsolete asctime form, `"Wed Oct 21 07:28:00 2015"`.
///
/// Names are case-sensitive, the day name must be the date's, the year 1970–9999, and a
/// leap second (`23:59:60`) is read as the second after `23:59:59`. A date in the past
/// gives 0. Anything else is `None`, and the caller keeps to the schedule.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(secs.saturating_mul(1000));
    }
    let delta = i128::from(http_date_ms(value)?) - i128::from(now_ms);
    Some(u64::try_from(delta.max(0)).unwrap_or(u64::MAX))
}

/// An HTTP-date as Unix milliseconds. `httpdate` refuses second 60, which RFC 9110
/// allows for a leap second, so such a date is read as the second before it, plus one.
fn http_date_ms(value: &str) -> Option<i64> {
    // In all three forms the seconds are the only field followed by a space.
    let (date, leap_ms) = if value.contains(":60 ") {
        (Cow::Owned(value.replacen(":60 ", ":59 ", 1)), 1000)
    } else {
        (Cow::Borrowed(value), 0)
    };
    let at = httpdate::parse_http_date(&date).ok()?;
    let ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis();
    Some(i64::try_from(ms).ok()? + leap_ms)
}

/// What a delivery attempt's HTTP status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: delivered; stop.
    Delivered,
    /// 410 Gone: the receiver wants no more; stop without retrying.
    Gone,
    /// Anything else — 1xx, 3xx (redirects are not followed: a redirect could point
    /// past [`check_destination`](super::check_destination)), 4xx, 5xx: retry per the
    /// schedule. A timeout or network error is also a retry; the caller has no status to
    /// pass then.
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

/// Where an event's delivery stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answered.
    Delivered,
    /// The receiver answered 410: it wants no more.
    Gone,
    /// The schedule ran out, or the destination is not allowed.
    GaveUp,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Gone => "gone",
            DeliveryState::GaveUp => "gave_up",
        }
    }
}

/// One attempt as the outbox saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's status; `None` when nothing answered (timeout, network error) or
    /// nothing was sent.
    pub status: Option<u16>,
    /// The destination was refused by [`check_destination`](super::check_destination)
    /// at this attempt: nothing was sent, and no later attempt can succeed.
    pub refused: bool,
    /// The `Retry-After` the receiver sent, in ms ([`parse_retry_after`]).
    pub retry_after_ms: Option<u64>,
}

/// Where an event stands after its `attempts`-th scheduled attempt, and when pending,
/// the delay before the next one ([`next_delay_ms`] with `jitter`).
pub fn after_attempt(
    attempt: Attempt,
    attempts: u32,
    schedule_ms: &[u64],
    jitter: u32,
) -> (DeliveryState, Option<u64>) {
    let outcome = match attempt.status {
        Some(status) => outcome(status),
        None if attempt.refused => return (DeliveryState::GaveUp, None),
        None => Outcome::Retry,
    };
    match outcome {
        Outcome::Delivered => (DeliveryState::Delivered, None),
        Outcome::Gone => (DeliveryState::Gone, None),
        Outcome::Retry => {
            match next_delay_ms(attempts, schedule_ms, jitter, attempt.retry_after_ms) {
                Some(delay) => (DeliveryState::Pending, Some(delay)),
                None => (DeliveryState::GaveUp, None),
            }
        }
    }
}

#[cfg(test)]
mod tests;
