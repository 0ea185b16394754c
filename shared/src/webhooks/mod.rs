//! Webhook delivery (`docs/api.md` "Webhooks"; `docs/architecture.md` "9. Webhooks"):
//! Standard Webhooks signing, the retry schedule, the SSRF guard for `replyUrl`, and the
//! event bodies. Pure: callers pass the clock and random bytes. Every item is re-exported
//! here, so callers name `webhooks::verify`, not the file it lives in.
//!
//! - `signing.rs` — **signing** follows <https://www.standardwebhooks.com/>: a secret is
//!   `whsec_` + base64 of the HMAC-SHA256 key; the signed content is
//!   `{msg_id}.{timestamp}.{body}`; `webhook-signature` holds one space-separated
//!   `v1,<base64>` entry per active secret (after a rotation the new and the old secret
//!   both sign). [`headers`] builds a delivery's three headers, [`verify`] checks them as
//!   a receiver would.
//! - `retry.rs` — **retries**: [`RETRY_SCHEDULE_SECS`] with ±10 % jitter
//!   ([`next_delay_ms`]); a 410 stops ([`outcome`]); `Retry-After` is respected
//!   ([`parse_retry_after`]).
//! - `destination.rs` — **destinations**: [`check_destination`] refuses URLs aimed at
//!   loopback, private, link-local, metadata and other non-public addresses unless the
//!   [`AllowList`] (config `WEBHOOK_ALLOW_HOSTS`) names them.
//! - `events.rs` — **events**: [`EventType`], the `webhook_events` filter
//!   ([`parse_event_filter`]) and the delivered [`body`].

mod destination;
mod events;
mod retry;
mod signing;

pub use destination::{check_destination, check_shape, AllowList, Destination};
pub use events::{body, parse_event_filter, EventFilter, EventType};
pub use retry::{
    after_attempt, default_schedule_ms, next_delay_ms, outcome, parse_retry_after, parse_schedule,
    Attempt, DeliveryState, Outcome, DELAY_MS_MAX, DELIVERY_TIMEOUT_SECS, JITTER_PERCENT,
    RETRY_SCHEDULE_SECS, SCHEDULE_LEN_MAX,
};
pub use signing::{
    headers, new_message_id, new_secret, sign, signature_header, verify, WebhookError, HEADER_ID,
    HEADER_SIGNATURE, HEADER_TIMESTAMP, KEY_LEN_MAX, KEY_LEN_MIN, MESSAGE_ID_PREFIX, SECRET_PREFIX,
    TOLERANCE_SECS,
};
