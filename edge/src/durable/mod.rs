//! The Durable Objects, one folder or file each. Each is the only writer of its state;
//! its `proto` module declares its routes and typed messages once, and the rest of the
//! edge reaches it through the client in [`crate::platform::bindings`].
//!
//! - [`account`] — one per account: keys, balance, holds, ledger, idempotency records,
//!   rate-limit buckets, webhook secrets.
//! - [`job`] — one per job: its lifecycle, waiters, event stream, webhook outbox.
//! - [`dispatcher`] — one per origin pool: origin registry, fair queue, leases, estimates.
//! - [`user_stream`] — one per account: the account's event stream.
//! - [`email`] — one per normalised email: one trial per address.
//! - [`probe`] — a no-op, for health checks and benchmarks.

pub mod account;
pub mod dispatcher;
pub mod email;
pub mod job;
pub mod probe;
pub mod user_stream;
