//! The job attempts this origin is working on: what heartbeats list, what a cancel
//! finds, what shutdown waits for.
//!
//! An admitted attempt gets a [`JobSlot`], which holds its GPU slot (a semaphore
//! permit) and keeps it listed here. The slot is released as soon as the engine's work
//! is over — before the terminal event, so the edge's next dispatch finds it free —
//! while the attempt stays listed until its terminal event is delivered or given up on.
//! Dropping the [`JobSlot`] (normally, on stop, or in a panic) releases and unlists.

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_shared::ids::JobId;
use kiln_shared::origin::RunningJob;
use tokio::sync::{watch, OwnedSemaphorePermit};

use crate::flag::Flag;

type Key = (JobId, u32);

/// What the registry keeps per attempt: the two flags others wait on or set.
#[derive(Debug, Clone)]
struct Entry {
    /// Set by a cancel, an edge's `stop` answer or a newer attempt: abandon the job.
    stop: Flag,
    /// Set once the attempt gave its GPU slot back.
    released: Flag,
}

/// Every attempt in progress, ordered by job id then attempt.
#[derive(Debug)]
pub struct RunningJobs {
    /// A watch channel so shutdown can wait for the map to empty.
    jobs: watch::Sender<BTreeMap<Key, Entry>>,
}

impl Default for RunningJobs {
    fn default() -> Self {
        Self {
            jobs: watch::Sender::new(BTreeMap::new()),
        }
    }
}

impl RunningJobs {
    /// Lists an admitted attempt; it keeps `permit` until [`JobSlot::release`] or drop.
    pub fn admit(
        self: &Arc<Self>,
        job_id: JobId,
        attempt: u32,
        permit: OwnedSemaphorePermit,
    ) -> JobSlot {
        let entry = Entry {
            stop: Flag::new(),
            released: Flag::new(),
        };
        let key = (job_id, attempt);
        self.jobs.send_modify(|jobs| {
            jobs.insert(key.clone(), entry.clone());
        });
        JobSlot {
            jobs: Arc::clone(self),
            key,
            permit: Some(permit),
            stop: entry.stop,
            released: entry.released,
        }
    }

    pub fn contains(&self, job_id: &JobId, attempt: u32) -> bool {
        self.jobs.borrow().contains_key(&(job_id.clone(), attempt))
    }

    /// Every attempt in progress, for heartbeats.
    pub fn list(&self) -> Vec<RunningJob> {
        self.jobs
            .borrow()
            .keys()
            .map(|(job_id, attempt)| RunningJob {
                job_id: job_id.clone(),
                attempt: *attempt,
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.borrow().is_empty()
    }

    /// Tells every attempt of `job_id` to stop. Returns their "slot released" flags,
    /// empty when this origin has no attempt of that job.
    pub fn stop(&self, job_id: &JobId) -> Vec<Flag> {
        self.stop_where(job_id, |_| true)
    }

    /// Tells attempts of `job_id` older than `attempt` to stop: the edge has moved the
    /// job on, so their events would be ignored anyway.
    pub fn stop_older(&self, job_id: &JobId, attempt: u32) -> Vec<Flag> {
        self.stop_where(job_id, |a| a < attempt)
    }

    fn stop_where(&self, job_id: &JobId, which: impl Fn(u32) -> bool) -> Vec<Flag> {
        let jobs = self.jobs.borrow();
        let from = (job_id.clone(), 0);
        jobs.range(from..)
            .take_while(|((id, _), _)| id == job_id)
            .filter(|((_, attempt), _)| which(*attempt))
            .map(|(_, entry)| {
                entry.stop.set();
                entry.released.clone()
            })
            .collect()
    }

    /// Resolves once no attempt is listed.
    pub async fn wait_until_empty(&self) {
        let mut rx = self.jobs.subscribe();
        // `self` holds the sender, so the wait can only end with the map empty.
        let _ = rx.wait_for(BTreeMap::is_empty).await;
    }

    fn remove(&self, key: &Key, stop: &Flag) {
        self.jobs.send_if_modified(|jobs| {
            // Only this attempt's own entry: a later admission of the same key (a replay
            // after the replay window) has its own flags.
            let ours = jobs.get(key).is_some_and(|e| e.stop.same_as(stop));
            ours && jobs.remove(key).is_some()
        });
    }
}

/// One admitted attempt's hold on a GPU slot and on its place in [`RunningJobs`].
#[derive(Debug)]
pub struct JobSlot {
    jobs: Arc<RunningJobs>,
    key: Key,
    permit: Option<OwnedSemaphorePermit>,
    stop: Flag,
    released: Flag,
}

impl JobSlot {
    /// Set when the attempt must be abandoned; the runner and engine wait on it, and
    /// the runner sets it itself when the edge answers an event with `stop`.
    pub fn stop(&self) -> &Flag {
        &self.stop
    }

    /// Gives the GPU slot back; the attempt stays listed until this is dropped.
    pub fn release(&mut self) {
        if self.permit.take().is_some() {
            self.released.set();
        }
    }
}

impl Drop for JobSlot {
    fn drop(&mut self) {
        self.release();
        self.jobs.remove(&self.key, &self.stop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    fn job(n: u8) -> JobId {
        JobId::generate(1_775_219_730_000, [n; 10])
    }

    #[tokio::test]
    async fn a_slot_is_released_before_it_is_unlisted() {
        let jobs = Arc::new(RunningJobs::default());
        let slots = Arc::new(Semaphore::new(1));
        let mut slot = jobs.admit(job(1), 1, slots.clone().try_acquire_owned().unwrap());
        assert_eq!(slots.available_permits(), 0);
        assert!(jobs.contains(&job(1), 1));
        slot.release();
        assert_eq!(slots.available_permits(), 1);
        assert_eq!(jobs.list().len(), 1, "listed until its result is delivered");
        drop(slot);
        assert!(jobs.is_empty());
        jobs.wait_until_empty().await;
    }

    #[tokio::test]
    async fn stop_reaches_every_attempt_of_the_job_and_only_that_job() {
        let jobs = Arc::new(RunningJobs::default());
        let slots = Arc::new(Semaphore::new(4));
        let admit =
            |id, attempt| jobs.admit(id, attempt, slots.clone().try_acquire_owned().unwrap());
        let (a1, a2, b1) = (admit(job(1), 1), admit(job(1), 2), admit(job(2), 1));
        assert_eq!(
            jobs.list()
                .iter()
                .map(|r| (r.job_id.clone(), r.attempt))
                .collect::<Vec<_>>(),
            vec![(job(1), 1), (job(1), 2), (job(2), 1)]
        );

        assert_eq!(jobs.stop_older(&job(1), 2).len(), 1);
        assert!(a1.stop().is_set() && !a2.stop().is_set());
        let released = jobs.stop(&job(1));
        assert_eq!(released.len(), 2);
        assert!(a2.stop().is_set() && !b1.stop().is_set());
        assert!(jobs.stop(&job(3)).is_empty());

        drop((a1, a2));
        for flag in released {
            flag.wait().await;
        }
        assert_eq!(jobs.list().len(), 1);
        assert_eq!(slots.available_permits(), 3);
    }
}
