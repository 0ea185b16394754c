//! Leases and the alarm: each round takes back jobs from silent origins, gives up on
//! queued jobs no origin can serve, then hands out queued jobs; the alarm is set for
//! the next thing due.

use kiln_shared::ids::JobId;
use kiln_shared::queue;

use super::queue::DOWN_BACKOFF_MS;
use super::{DispatcherDo, Slot, RETRY_TICK_MS};
use crate::durable::job::proto::{Lost, LostAnswer};
use crate::platform::bindings;
use crate::platform::clock::now_ms;
use crate::platform::error::EdgeResult;

impl DispatcherDo {
    /// One round of the alarm.
    pub(super) async fn tick(&self) -> EdgeResult<()> {
        self.expire_leases().await?;
        self.fail_unservable().await?;
        self.pump().await
    }

    /// Sets the next alarm ([`queue::next_round_ms`]).
    pub(super) async fn rearm(&self) -> EdgeResult<()> {
        let now = now_ms();
        let queued = self.queued_count()? > 0;
        let lease = self.lease_ms();
        let next_lease = self
            .job_rows(Slot::Running)?
            .iter()
            .map(|r| r.lease_ms + lease - now)
            .min();
        // Jobs that arrived while this round was dispatching, with a slot free for
        // them: hand them out at once rather than on the next tick.
        let ready = queued
            && !queue::plan(&self.waiting()?, &self.served()?, &self.candidates(now)?).is_empty();
        match queue::next_round_ms(queued, ready, next_lease, RETRY_TICK_MS) {
            Some(ms) => self.state.storage().set_alarm(ms).await?,
            None => self.state.storage().delete_alarm().await?,
        }
        Ok(())
    }

    /// Queued jobs that have waited a whole lease while no origin serving their model
    /// was up (or unknown) fail with 503 and a refund, rather than waiting for the hard
    /// timeout. Submissions in that state are refused at once by `enqueue`.
    async fn fail_unservable(&self) -> EdgeResult<()> {
        let now = now_ms();
        let lease = self.lease_ms();
        for row in self.job_rows(Slot::Queued)? {
            if now - row.enqueued_ms <= lease
                || self.any_origin_for(&row.model_id, row.exclude_origin.as_deref(), now)?
            {
                continue;
            }
            let lost = Lost {
                attempt: row.attempt,
                origin_id: String::new(),
                can_retry: false,
                no_origin: true,
            };
            match self.tell_job_lost(&row.job_id, &lost).await {
                Ok(_) => {
                    self.sql.exec(
                        "DELETE FROM jobs WHERE job_id = ? AND state = ?",
                        vec![row.job_id.as_str().into(), Slot::Queued.as_str().into()],
                    )?;
                }
                Err(e) => worker::console_error!("unservable {}: {e:?}", row.job_id),
            }
        }
        Ok(())
    }

    async fn expire_leases(&self) -> EdgeResult<()> {
        let now = now_ms();
        let lease = self.lease_ms();
        for row in self.job_rows(Slot::Running)? {
            if now - row.lease_ms <= lease {
                continue;
            }
            let origin = row.origin_id.clone().unwrap_or_default();
            worker::console_warn!(
                "job {} lost its origin {origin} (no sign of life for {} ms)",
                row.job_id,
                now - row.lease_ms
            );
            // The origin is silent: no more jobs for it until it is heard from again.
            self.sql.exec(
                "UPDATE origins SET down_until_ms = ? WHERE id = ? AND last_seen_ms < ?",
                vec![
                    (now + DOWN_BACKOFF_MS).into(),
                    origin.as_str().into(),
                    (now - lease).into(),
                ],
            )?;
            let lost = Lost {
                attempt: row.attempt,
                origin_id: origin.clone(),
                can_retry: self.any_origin_for(&row.model_id, Some(&origin), now)?,
                no_origin: false,
            };
            match self.tell_job_lost(&row.job_id, &lost).await {
                Ok(LostAnswer {
                    requeue: Some(next),
                }) => {
                    self.sql.exec(
                        "UPDATE jobs SET state = ?, origin_id = NULL, attempt = ?,
                         exclude_origin = ?, payload = ?, lease_ms = 0 WHERE job_id = ?",
                        vec![
                            Slot::Queued.as_str().into(),
                            i64::from(next.attempt).into(),
                            origin.as_str().into(),
                            serde_json::to_string(&next)?.into(),
                            row.job_id.as_str().into(),
                        ],
                    )?;
                }
                Ok(LostAnswer { requeue: None }) => {
                    self.sql.exec(
                        "DELETE FROM jobs WHERE job_id = ?",
                        vec![row.job_id.as_str().into()],
                    )?;
                }
                // The Job DO will be asked again on the next round.
                Err(e) => worker::console_error!("lost {}: {e:?}", row.job_id),
            }
        }
        Ok(())
    }

    /// Tells a job's DO that it cannot run where it was (its origin went silent, or no
    /// origin serves it); the Job DO decides whether it goes back to the queue.
    async fn tell_job_lost(&self, job_id: &JobId, lost: &Lost) -> EdgeResult<LostAnswer> {
        bindings::job(&self.env, job_id)?.call(lost).await
    }
}
