//! The dispatcher's decisions, kept pure so they are tested natively: in what order
//! queued jobs are served (round-robin across accounts, so one account's burst does not
//! starve the others), which origin takes a job, and what the queue tells clients.
//!
//! The Dispatcher Durable Object holds the state (SQL rows) and the I/O; it asks these
//! functions what to do.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// A job waiting for a GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub job_id: String,
    pub account_id: String,
    pub model_id: String,
    /// Enqueue order; a re-dispatched job keeps its original number, so it goes first.
    pub seq: i64,
    /// The origin that lost this job; it is not given the job again.
    pub exclude_origin: Option<String>,
}

/// An origin as the dispatcher sees it at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    /// Slots not running or being handed a job right now.
    pub free: u32,
    pub models: Vec<String>,
    pub resident: Vec<String>,
}

impl Candidate {
    fn serves(&self, model: &str) -> bool {
        serves(&self.models, model)
    }
}

/// Whether an origin that lists `models` serves `model`; an empty list serves any.
pub fn serves(models: &[String], model: &str) -> bool {
    models.is_empty() || models.iter().any(|m| m == model)
}

/// Where an origin stands for the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginStatus {
    /// Its heartbeats are fresh.
    Up,
    /// Configured but never heard from: still tried.
    Unknown,
    /// Its heartbeats stopped, or a dispatch to it failed a moment ago.
    Down,
}

impl OriginStatus {
    /// The status at `now` of an origin last heard from at `last_seen_ms` (0: never),
    /// marked down until `down_until_ms`, with leases of `lease_ms`.
    pub fn at(down_until_ms: i64, last_seen_ms: i64, lease_ms: i64, now: i64) -> Self {
        if down_until_ms > now {
            OriginStatus::Down
        } else if last_seen_ms == 0 {
            OriginStatus::Unknown
        } else if now.saturating_sub(last_seen_ms) <= lease_ms {
            OriginStatus::Up
        } else {
            OriginStatus::Down
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OriginStatus::Up => "up",
            OriginStatus::Unknown => "unknown",
            OriginStatus::Down => "down",
        }
    }
}

/// When the dispatcher looks at its queue again, in ms from now: at once when a queued
/// job can be handed out (`ready`), within `tick_ms` while jobs wait, at the earliest
/// lease expiry (`next_lease_ms`, may be negative: overdue) while jobs run, never when
/// idle. Never less than 1 ms.
pub fn next_round_ms(
    queued: bool,
    ready: bool,
    next_lease_ms: Option<i64>,
    tick_ms: i64,
) -> Option<i64> {
    let next = match (queued, next_lease_ms) {
        _ if ready => Some(1),
        (true, Some(l)) => Some(l.min(tick_ms)),
        (true, None) => Some(tick_ms),
        (false, Some(l)) => Some(l),
        (false, None) => None,
    };
    next.map(|ms| ms.max(1))
}

/// The order in which `waiting` will be served. Each account keeps its own FIFO (by
/// `seq`); the next job comes from the account served least recently (`served` holds a
/// counter value per account, absent = never), ties going to the older job.
pub fn fair_order(waiting: &[Waiting], served: &HashMap<String, i64>) -> Vec<usize> {
    let mut per_account: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, w) in waiting.iter().enumerate() {
        per_account.entry(&w.account_id).or_default().push(i);
    }
    for list in per_account.values_mut() {
        list.sort_by_key(|&i| std::cmp::Reverse(waiting[i].seq));
    }
    let mut last: HashMap<&str, i64> = per_account
        .keys()
        .map(|a| (*a, served.get(*a).copied().unwrap_or(i64::MIN)))
        .collect();
    let mut counter = served.values().copied().max().unwrap_or(0);
    let mut order = Vec::with_capacity(waiting.len());
    while order.len() < waiting.len() {
        let account = per_account
            .iter()
            .filter_map(|(a, list)| list.last().map(|&head| (*a, head)))
            .min_by_key(|(a, head)| (last[a], waiting[*head].seq))
            .map(|(a, _)| a)
            .expect("a non-empty queue has a head");
        let head = per_account
            .get_mut(account)
            .and_then(Vec::pop)
            .expect("chosen account has a head");
        counter += 1;
        last.insert(account, counter);
        order.push(head);
    }
    order
}

/// The origin for a job: one with a free slot that serves its model (not the one that
/// lost it), preferring one with the model already loaded, then the most free slots,
/// then the lowest id so the choice is stable.
pub fn pick_origin<'a>(job: &Waiting, origins: &'a [Candidate]) -> Option<&'a Candidate> {
    origins
        .iter()
        .filter(|o| o.free > 0 && o.serves(&job.model_id))
        .filter(|o| job.exclude_origin.as_deref() != Some(o.id.as_str()))
        .min_by(|a, b| {
            let resident = |o: &Candidate| !o.resident.iter().any(|m| m == &job.model_id);
            (resident(a), std::cmp::Reverse(a.free), &a.id).cmp(&(
                resident(b),
                std::cmp::Reverse(b.free),
                &b.id,
            ))
        })
}

/// What to hand out now: `(index into waiting, origin id)` pairs, taking the jobs in
/// fair order and skipping any no origin can take at the moment (other models may
/// still go), each origin's free slots used at most once.
pub fn plan(
    waiting: &[Waiting],
    served: &HashMap<String, i64>,
    origins: &[Candidate],
) -> Vec<(usize, String)> {
    let mut origins = origins.to_vec();
    let mut out = Vec::new();
    for i in fair_order(waiting, served) {
        if origins.iter().all(|o| o.free == 0) {
            break;
        }
        if let Some(id) = pick_origin(&waiting[i], &origins).map(|o| o.id.clone()) {
            if let Some(o) = origins.iter_mut().find(|o| o.id == id) {
                o.free -= 1;
            }
            out.push((i, id));
        }
    }
    out
}

/// Seconds a new job would wait: the jobs ahead of it, spread over the slots, times the
/// typical run time. Zero when a slot is free.
pub fn estimated_wait_secs(pending: u64, running: u64, slots: u64, avg_secs: f64) -> f64 {
    if slots == 0 {
        return 0.0;
    }
    let ahead = pending + running;
    if ahead < slots {
        return 0.0;
    }
    let rounds = (ahead + 1).div_ceil(slots) - 1;
    (rounds as f64 * avg_secs * 10.0).round() / 10.0
}

#[cfg(test)]
mod status_tests {
    use super::*;

    #[test]
    fn origin_status_by_heartbeat_and_back_off() {
        let lease = 30_000;
        let now = 1_000_000;
        assert_eq!(OriginStatus::at(0, 0, lease, now), OriginStatus::Unknown);
        assert_eq!(
            OriginStatus::at(0, now - 1_000, lease, now),
            OriginStatus::Up
        );
        assert_eq!(
            OriginStatus::at(0, now - lease, lease, now),
            OriginStatus::Up
        );
        assert_eq!(
            OriginStatus::at(0, now - lease - 1, lease, now),
            OriginStatus::Down
        );
        // A failed dispatch marks even a fresh or never-seen origin down for a while.
        assert_eq!(
            OriginStatus::at(now + 1, now, lease, now),
            OriginStatus::Down
        );
        assert_eq!(OriginStatus::at(now + 1, 0, lease, now), OriginStatus::Down);
        assert_eq!(OriginStatus::at(now, now, lease, now), OriginStatus::Up);
        assert_eq!(
            OriginStatus::at(0, i64::MIN + 1, lease, i64::MAX),
            OriginStatus::Down
        );
    }

    #[test]
    fn an_empty_model_list_serves_any_model() {
        assert!(serves(&[], "flux2-dev"));
        assert!(serves(&["flux2-dev".into()], "flux2-dev"));
        assert!(!serves(&["ltx-2.3".into()], "flux2-dev"));
    }

    #[test]
    fn the_next_round() {
        let tick = 1_000;
        assert_eq!(next_round_ms(false, false, None, tick), None);
        assert_eq!(next_round_ms(true, true, Some(50_000), tick), Some(1));
        assert_eq!(next_round_ms(true, false, None, tick), Some(tick));
        assert_eq!(next_round_ms(true, false, Some(200), tick), Some(200));
        assert_eq!(next_round_ms(true, false, Some(5_000), tick), Some(tick));
        assert_eq!(next_round_ms(false, false, Some(7_000), tick), Some(7_000));
        // An overdue lease runs the round at once.
        assert_eq!(next_round_ms(false, false, Some(-40), tick), Some(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(job: &str, account: &str, seq: i64) -> Waiting {
        Waiting {
            job_id: job.into(),
            account_id: account.into(),
            model_id: "flux2-dev".into(),
            seq,
            exclude_origin: None,
        }
    }

    fn ids(waiting: &[Waiting], order: &[usize]) -> Vec<String> {
        order.iter().map(|&i| waiting[i].job_id.clone()).collect()
    }

    #[test]
    fn accounts_alternate_whatever_the_arrival_order() {
        let q = vec![
            w("a1", "A", 1),
            w("a2", "A", 2),
            w("a3", "A", 3),
            w("b1", "B", 4),
            w("b2", "B", 5),
            w("c1", "C", 6),
        ];
        let order = fair_order(&q, &HashMap::new());
        assert_eq!(ids(&q, &order), ["a1", "b1", "c1", "a2", "b2", "a3"]);
    }

    #[test]
    fn the_account_served_least_recently_goes_first() {
        let q = vec![
            w("a3", "A", 3),
            w("a4", "A", 4),
            w("b1", "B", 5),
            w("b2", "B", 6),
        ];
        let served = HashMap::from([("A".to_owned(), 2)]);
        let order = fair_order(&q, &served);
        assert_eq!(ids(&q, &order), ["b1", "a3", "b2", "a4"]);
    }

    fn origin(id: &str, free: u32, resident: &[&str]) -> Candidate {
        Candidate {
            id: id.into(),
            free,
            models: vec!["flux2-dev".into(), "ltx-2.3".into()],
            resident: resident.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn picks_a_free_origin_with_the_model_resident() {
        let job = w("a", "A", 1);
        let origins = vec![
            origin("o1", 2, &["ltx-2.3"]),
            origin("o2", 1, &["flux2-dev"]),
            origin("o3", 0, &["flux2-dev"]),
        ];
        assert_eq!(pick_origin(&job, &origins).unwrap().id, "o2");
        let origins = vec![origin("o1", 1, &[]), origin("o2", 3, &[])];
        assert_eq!(pick_origin(&job, &origins).unwrap().id, "o2");
        let mut lost = job.clone();
        lost.exclude_origin = Some("o2".into());
        assert_eq!(pick_origin(&lost, &origins).unwrap().id, "o1");
        let mut video = job;
        video.model_id = "ltx-2.3-fast".into();
        assert!(pick_origin(&video, &origins).is_none());
    }

    #[test]
    fn plan_fills_free_slots_in_fair_order() {
        let q = vec![w("a1", "A", 1), w("a2", "A", 2), w("b1", "B", 3)];
        let origins = vec![origin("o1", 1, &[]), origin("o2", 1, &[])];
        let p = plan(&q, &HashMap::new(), &origins);
        let got: Vec<(String, String)> = p
            .into_iter()
            .map(|(i, o)| (q[i].job_id.clone(), o))
            .collect();
        assert_eq!(
            got,
            [("a1".into(), "o1".into()), ("b1".into(), "o2".into())]
        );
        assert!(plan(&q, &HashMap::new(), &[origin("o1", 0, &[])]).is_empty());
    }

    #[test]
    fn wait_estimate() {
        assert_eq!(estimated_wait_secs(0, 0, 2, 10.0), 0.0);
        assert_eq!(estimated_wait_secs(0, 1, 2, 10.0), 0.0);
        assert_eq!(estimated_wait_secs(0, 2, 2, 10.0), 10.0);
        assert_eq!(estimated_wait_secs(3, 2, 2, 10.0), 20.0);
        assert_eq!(estimated_wait_secs(3, 0, 0, 10.0), 0.0);
    }
}
