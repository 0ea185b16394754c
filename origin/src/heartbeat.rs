//! Heartbeats: every `KILN_HEARTBEAT_MS`, and once at startup, the origin `POST`s a
//! signed [`Heartbeat`](kiln_shared::origin::Heartbeat) to the edge's
//! [`HEARTBEAT_PATH`](kiln_shared::origin::HEARTBEAT_PATH): who it is, where it is
//! reached, its slots, models (loaded or not) and every job attempt in progress. The
//! edge registers origins from these and renews the leases of the jobs listed.
//!
//! A heartbeat is tried once with a short timeout; the next one is the retry. Failures
//! never stop the origin; they are logged as a warning when they start and at most once
//! a minute while they last (debug otherwise), and the recovery is logged once.

use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use crate::flag::Flag;
use crate::startup::AppState;

/// While heartbeats keep failing, how often that is worth a warning.
pub const WARN_EVERY_SECS: u64 = 60;

/// Sends a heartbeat now and then every `every`, until `stop` is set.
pub async fn send_every(state: AppState, url: String, every: Duration, stop: Flag) {
    let mut ticks = tokio::time::interval(every);
    // After a slow edge, carry on at the normal pace rather than in a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failures: u32 = 0;
    let mut warned_at: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            () = stop.wait() => return,
            _ = ticks.tick() => {}
        }
        let beat = state.heartbeat(&url);
        let sent = tokio::select! {
            biased;
            () = stop.wait() => return,
            sent = state.runner.edge.send_heartbeat(&beat) => sent,
        };
        match sent {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(failures, "heartbeats reach the edge again");
                }
                failures = 0;
                warned_at = None;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let warn_due =
                    warned_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(WARN_EVERY_SECS));
                if warn_due {
                    tracing::warn!(error = %e, failures, "heartbeat not delivered");
                    warned_at = Some(Instant::now());
                } else {
                    tracing::debug!(error = %e, failures, "heartbeat not delivered");
                }
            }
        }
    }
}
