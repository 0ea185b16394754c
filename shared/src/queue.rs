//! The dispatcher's decisions, kept pure so they are tested natively: in what order
//! queued jobs are served (round-robin across accounts, so one account's burst does not
//! starve the others), which origin takes a job, and what the queue tells clients.
//!
//! The Dispatcher Durable Object holds the state (SQL rows) and the I/O; it asks these
//! functions what to do.

use std::collections::{BTreeMap, HashMap};

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
        self.models.is_empty() || self.models.iter().any(|m| m == model)
    }
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
