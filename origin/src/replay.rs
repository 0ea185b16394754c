//! Replay protection for dispatches. A signature stays valid for
//! [`SKEW_SECS_MAX`](kiln_shared::signing::SKEW_SECS_MAX) either side of our clock, so a
//! captured dispatch could be sent again inside that window; remembering every accepted
//! `(job_id, attempt)` for twice the window makes a replay a 409 instead of a second run.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use kiln_shared::ids::JobId;
use kiln_shared::signing::SKEW_SECS_MAX;

/// How long an accepted dispatch is remembered: a signature is accepted from
/// `SKEW_SECS_MAX` in the past to `SKEW_SECS_MAX` in the future.
pub const REMEMBER_SECS: u64 = 2 * SKEW_SECS_MAX as u64;
/// Far more dispatches than one origin accepts in [`REMEMBER_SECS`]; bounds memory if
/// the edge misbehaves.
pub const ENTRIES_MAX: usize = 100_000;

type Key = (JobId, u32);

/// Accepted dispatches, oldest first.
#[derive(Debug)]
pub struct SeenDispatches {
    seen_at: HashMap<Key, Instant>,
    /// Insertion order, so expiry and eviction pop from the front.
    order: VecDeque<Key>,
    remember: Duration,
    entries_max: usize,
}

impl Default for SeenDispatches {
    fn default() -> Self {
        Self::new(Duration::from_secs(REMEMBER_SECS), ENTRIES_MAX)
    }
}

impl SeenDispatches {
    pub fn new(remember: Duration, entries_max: usize) -> Self {
        assert!(entries_max > 0, "a replay guard must remember something");
        Self {
            seen_at: HashMap::new(),
            order: VecDeque::new(),
            remember,
            entries_max,
        }
    }

    /// Whether this attempt of this job was accepted within the window.
    pub fn contains(&mut self, job_id: &JobId, attempt: u32, now: Instant) -> bool {
        self.expire(now);
        self.seen_at.contains_key(&(job_id.clone(), attempt))
    }

    /// Records an accepted dispatch; the oldest entry goes when the map is full.
    pub fn insert(&mut self, job_id: JobId, attempt: u32, now: Instant) {
        self.expire(now);
        let key = (job_id, attempt);
        if self.seen_at.insert(key.clone(), now).is_some() {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > self.entries_max {
            if let Some(oldest) = self.order.pop_front() {
                self.seen_at.remove(&oldest);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(oldest) = self.order.front() {
            let at = self.seen_at[oldest];
            if now.duration_since(at) < self.remember {
                break;
            }
            self.seen_at.remove(oldest);
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(n: u8) -> JobId {
        JobId::generate(1_775_219_730_000, [n; 10])
    }

    #[test]
    fn remembers_each_attempt_for_the_window() {
        let t0 = Instant::now();
        let mut seen = SeenDispatches::new(Duration::from_secs(600), 10);
        seen.insert(job(1), 1, t0);
        assert!(seen.contains(&job(1), 1, t0 + Duration::from_secs(599)));
        assert!(
            !seen.contains(&job(1), 2, t0),
            "a re-dispatch is a new attempt"
        );
        assert!(!seen.contains(&job(2), 1, t0));
        assert!(!seen.contains(&job(1), 1, t0 + Duration::from_secs(600)));
        assert!(seen.is_empty());
    }

    #[test]
    fn evicts_the_oldest_when_full() {
        let t0 = Instant::now();
        let mut seen = SeenDispatches::new(Duration::from_secs(600), 3);
        for n in 1..=4 {
            seen.insert(job(n), 1, t0);
        }
        assert_eq!(seen.len(), 3);
        assert!(!seen.contains(&job(1), 1, t0));
        assert!(seen.contains(&job(4), 1, t0));
    }
}
