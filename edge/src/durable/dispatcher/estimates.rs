//! Run-time estimates from recent completed jobs, and the queue's status.

use kiln_shared::queue::{self, OriginStatus};
use serde::Deserialize;

use super::proto::*;
use super::{DispatcherDo, Slot};
use crate::platform::clock::now_ms;
use crate::platform::error::EdgeResult;

#[derive(Deserialize)]
struct Avg {
    avg_ms: Option<f64>,
    n: u64,
}

impl DispatcherDo {
    pub(super) fn estimate(&self, req: GetEstimate) -> EdgeResult<Estimate> {
        let rows: Vec<Avg> = self
            .sql
            .exec(
                "SELECT AVG(ms) AS avg_ms, COUNT(*) AS n FROM durations WHERE workflow = ?",
                vec![req.workflow.as_str().into()],
            )?
            .to_array()?;
        Ok(match rows.first() {
            Some(a) if a.n > 0 => Estimate {
                avg_seconds: a.avg_ms.map(|ms| (ms / 100.0).round() / 10.0),
                sample_count: a.n,
            },
            _ => Estimate {
                avg_seconds: None,
                sample_count: 0,
            },
        })
    }

    pub(super) fn queue_status(&self) -> EdgeResult<QueueStatus> {
        let now = now_ms();
        let queued = Slot::Queued.as_str();
        let running = self
            .count(
                "SELECT COUNT(*) AS n FROM jobs WHERE state != ?",
                vec![queued.into()],
            )?
            .unsigned_abs();
        let pending = self.queued_count()?.unsigned_abs();
        let slots: u64 = self
            .origin_rows()?
            .iter()
            .filter(|o| self.origin_status(o, now) != OriginStatus::Down)
            .map(|o| o.slots.max(0).unsigned_abs())
            .sum();
        // The typical job: the mean over every workflow's recent samples.
        let avg: Vec<Avg> = self
            .sql
            .exec(
                "SELECT AVG(ms) AS avg_ms, COUNT(*) AS n FROM durations",
                None,
            )?
            .to_array()?;
        let avg_secs = avg
            .first()
            .and_then(|a| a.avg_ms)
            .map(|ms| ms / 1000.0)
            .unwrap_or(kiln_shared::catalog::typical_secs("flux2-dev:txt2img").unwrap_or(25.0));
        Ok(QueueStatus {
            status: if running + pending == 0 {
                "idle"
            } else {
                "busy"
            }
            .to_owned(),
            queue_running: running,
            queue_pending: pending,
            estimated_wait_seconds: queue::estimated_wait_secs(pending, running, slots, avg_secs),
            slots,
        })
    }
}
