//! The registry of origins: configured ones, heartbeats, status, free slots, and the
//! signed cancel sent to the origin running a withdrawn job.

use std::collections::HashMap;
use std::time::Duration;

use kiln_shared::ids::JobId;
use kiln_shared::origin::{cancel_path, Heartbeat};
use kiln_shared::queue::{serves, Candidate, OriginStatus};
use serde::Deserialize;
use worker::Method;

use super::proto::{Ack, OriginView};
use super::{DispatcherDo, OriginRow, Slot};
use crate::platform::clock::now_ms;
use crate::platform::config;
use crate::platform::error::EdgeResult;
use crate::platform::http::{fetch_with_timeout, request};

/// How long a cancel waits for the origin to confirm it stopped.
const CANCEL_TIMEOUT_MS: u64 = 5_000;

impl DispatcherDo {
    /// Origins named in `ORIGINS`: registered (their URL wins over heartbeats), and
    /// those that left the configuration without ever sending a heartbeat forgotten.
    pub(super) fn register_configured_origins(&self) -> EdgeResult<()> {
        let configured = config::origins(&self.env).unwrap_or_default();
        for (id, url) in &configured {
            self.sql.exec(
                "INSERT INTO origins (id, url, from_config) VALUES (?, ?, 1)
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, from_config = 1",
                vec![id.as_str().into(), url.as_str().into()],
            )?;
        }
        let keep: Vec<String> = configured.iter().map(|(id, _)| id.clone()).collect();
        let keep_json = serde_json::to_string(&keep)?;
        self.sql.exec(
            "DELETE FROM origins WHERE from_config = 1 AND last_seen_ms = 0
             AND id NOT IN (SELECT value FROM json_each(?))",
            vec![keep_json.into()],
        )?;
        Ok(())
    }

    pub(super) fn origin_rows(&self) -> EdgeResult<Vec<OriginRow>> {
        Ok(self
            .sql
            .exec(
                "SELECT id, url, slots, engine, simulated, models, resident, vram_free_gb,
                        last_seen_ms, down_until_ms, full_until_ms, problem
                 FROM origins ORDER BY id",
                None,
            )?
            .to_array()?)
    }

    pub(super) fn origins(&self) -> EdgeResult<Vec<OriginView>> {
        let now = now_ms();
        let busy = self.busy_per_origin()?;
        self.origin_rows()?
            .into_iter()
            .map(|o| {
                Ok(OriginView {
                    status: self.origin_status(&o, now),
                    busy: busy.get(&o.id).copied().unwrap_or(0),
                    slots: u32::try_from(o.slots).unwrap_or(0),
                    engine: o.engine.clone(),
                    simulated: o.simulated.map(|s| s != 0),
                    models: serde_json::from_str(&o.models)?,
                    resident_models: serde_json::from_str(&o.resident)?,
                    vram_free_gb: o.vram_free_gb,
                    problem: o.problem.clone(),
                    last_heartbeat_at: (o.last_seen_ms > 0)
                        .then(|| kiln_shared::time::rfc3339(o.last_seen_ms)),
                    id: o.id,
                    url: o.url,
                })
            })
            .collect()
    }

    fn busy_per_origin(&self) -> EdgeResult<HashMap<String, u32>> {
        #[derive(Deserialize)]
        struct Busy {
            origin_id: String,
            n: u32,
        }
        let rows: Vec<Busy> = self
            .sql
            .exec(
                "SELECT origin_id, COUNT(*) AS n FROM jobs
                 WHERE state IN (?, ?) AND origin_id IS NOT NULL
                 GROUP BY origin_id",
                vec![
                    Slot::Dispatching.as_str().into(),
                    Slot::Running.as_str().into(),
                ],
            )?
            .to_array()?;
        Ok(rows.into_iter().map(|b| (b.origin_id, b.n)).collect())
    }

    /// Origins that may be offered jobs now (up or unknown), with their free slots.
    pub(super) fn candidates(&self, now: i64) -> EdgeResult<Vec<Candidate>> {
        let busy = self.busy_per_origin()?;
        let mut out = Vec::new();
        for o in self.origin_rows()? {
            if self.origin_status(&o, now) == OriginStatus::Down {
                continue;
            }
            let used = busy.get(&o.id).copied().unwrap_or(0);
            let free = if o.full_until_ms > now {
                0
            } else {
                u32::try_from(o.slots).unwrap_or(0).saturating_sub(used)
            };
            out.push(Candidate {
                models: serde_json::from_str(&o.models)?,
                resident: serde_json::from_str(&o.resident)?,
                id: o.id,
                free,
            });
        }
        Ok(out)
    }

    /// Whether some origin other than `except` that serves `model` is up or unknown.
    pub(super) fn any_origin_for(
        &self,
        model: &str,
        except: Option<&str>,
        now: i64,
    ) -> EdgeResult<bool> {
        Ok(self
            .candidates(now)?
            .iter()
            .any(|c| Some(c.id.as_str()) != except && serves(&c.models, model)))
    }

    pub(super) async fn heartbeat(&self, hb: Heartbeat) -> EdgeResult<Ack> {
        let now = now_ms();
        let url = hb.url.trim_end_matches('/').to_owned();
        // An origin that says it cannot run jobs (its GPU servers are down, missing
        // models, …) is down until a heartbeat says otherwise; each unhealthy beat
        // extends that by a lease, so silence after it still reads as down.
        let (down_until, problem) = if hb.healthy {
            (0, None)
        } else {
            let why = hb
                .problem
                .clone()
                .unwrap_or_else(|| "the origin reports itself unhealthy".to_owned());
            (now.saturating_add(self.lease_ms()), Some(why))
        };
        self.sql.exec(
            "INSERT INTO origins (id, url, slots, engine, simulated, models, resident,
                                  vram_free_gb, last_seen_ms, down_until_ms, full_until_ms,
                                  problem)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)
             ON CONFLICT (id) DO UPDATE SET
               url = CASE WHEN origins.from_config = 1 THEN origins.url ELSE excluded.url END,
               slots = excluded.slots,
               engine = excluded.engine, simulated = excluded.simulated,
               models = excluded.models, resident = excluded.resident,
               vram_free_gb = excluded.vram_free_gb, last_seen_ms = excluded.last_seen_ms,
               down_until_ms = excluded.down_until_ms, full_until_ms = 0,
               problem = excluded.problem",
            vec![
                hb.origin_id.as_str().into(),
                url.into(),
                i64::from(hb.slots).into(),
                hb.engine.as_str().into(),
                i64::from(hb.simulated).into(),
                serde_json::to_string(&hb.models)?.into(),
                serde_json::to_string(&hb.resident_models)?.into(),
                hb.vram_free_gb.into(),
                now.into(),
                down_until.into(),
                problem.into(),
            ],
        )?;
        for r in &hb.running {
            self.sql.exec(
                "UPDATE jobs SET lease_ms = ? WHERE job_id = ? AND origin_id = ? AND attempt = ?
                 AND state = ?",
                vec![
                    now.into(),
                    r.job_id.as_str().into(),
                    hb.origin_id.as_str().into(),
                    i64::from(r.attempt).into(),
                    Slot::Running.as_str().into(),
                ],
            )?;
        }
        if hb.healthy && hb.busy < hb.slots && self.queued_count()? > 0 {
            self.pump_soon().await?;
        }
        Ok(Ack)
    }

    /// Sends the origin running `job_id` a signed DELETE; whether it confirmed.
    pub(super) async fn stop_on_origin(&self, origin_id: &str, job_id: &JobId) -> bool {
        let Some(url) = self
            .origin_rows()
            .ok()
            .and_then(|rows| rows.into_iter().find(|o| o.id == origin_id).map(|o| o.url))
        else {
            return false;
        };
        let path = cancel_path(job_id);
        let keys = match config::edge_to_origin_keys(&self.env) {
            Ok(k) => k,
            Err(_) => return false,
        };
        let signed = keys.sign(now_ms() / 1000, "DELETE", &path, b"");
        let req = match request(
            &format!("{url}{path}"),
            Method::Delete,
            &signed.pairs(),
            None,
        ) {
            Ok(r) => r,
            Err(_) => return false,
        };
        match fetch_with_timeout(req, Duration::from_millis(CANCEL_TIMEOUT_MS)).await {
            Ok(Some(resp)) => resp.status_code() == 200,
            other => {
                worker::console_warn!("cancel of {job_id} on {origin_id}: {:?}", other.is_ok());
                false
            }
        }
    }
}
