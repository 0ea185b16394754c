//! `Idempotency-Key` records: the first response of each key, replayed for a repeat of
//! the same request within a day; a different request under the same key is a 409.

use kiln_shared::idempotency::{self, TTL_MS};
use serde::Deserialize;

use super::proto::*;
use super::AccountDo;
use crate::platform::clock::now_ms;
use crate::platform::error::EdgeResult;

/// A request that began this long ago and never finished (its Worker died) no longer
/// blocks its Idempotency-Key: longer than the longest synchronous wait.
const IDEM_STALE_MS: i64 = 10 * 60 * 1000;

/// Where a key's request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum IdemState {
    InProgress,
    Done,
}

#[derive(Deserialize)]
struct IdemRow {
    fingerprint: String,
    state: IdemState,
    status: Option<u16>,
    body: Option<String>,
    headers: Option<String>,
    created_at_ms: i64,
}

impl AccountDo {
    pub(super) fn idem_begin(&self, body: IdemBegin) -> EdgeResult<IdemOutcome> {
        let now = now_ms();
        self.sql.exec(
            "DELETE FROM idem WHERE created_at_ms < ?",
            vec![(now - TTL_MS).into()],
        )?;
        let rows: Vec<IdemRow> = self
            .sql
            .exec(
                "SELECT fingerprint, state, status, body, headers, created_at_ms FROM idem WHERE key = ?",
                vec![body.key.as_str().into()],
            )?
            .to_array()?;
        match rows.into_iter().next() {
            Some(r) if r.fingerprint != body.fingerprint => Err(idempotency::conflict().into()),
            Some(r) if r.state == IdemState::Done => Ok(IdemOutcome::Replay {
                status: r.status.unwrap_or(200),
                body: r.body.unwrap_or_default(),
                headers: r
                    .headers
                    .and_then(|h| serde_json::from_str(&h).ok())
                    .unwrap_or_default(),
            }),
            Some(r) if now - r.created_at_ms < IDEM_STALE_MS => {
                Err(idempotency::in_progress().into())
            }
            stale_or_new => {
                if stale_or_new.is_some() {
                    self.sql.exec(
                        "DELETE FROM idem WHERE key = ?",
                        vec![body.key.as_str().into()],
                    )?;
                }
                self.sql.exec(
                    "INSERT INTO idem (key, fingerprint, state, created_at_ms) VALUES (?, ?, 'in_progress', ?)",
                    vec![body.key.as_str().into(), body.fingerprint.as_str().into(), now.into()],
                )?;
                Ok(IdemOutcome::Proceed)
            }
        }
    }

    pub(super) fn idem_finish(&self, body: IdemFinish) -> EdgeResult<Done> {
        self.sql.exec(
            "UPDATE idem SET state = 'done', status = ?, body = ?, headers = ? WHERE key = ?",
            vec![
                i64::from(body.status).into(),
                body.body.into(),
                serde_json::to_string(&body.headers)?.into(),
                body.key.as_str().into(),
            ],
        )?;
        Ok(Done)
    }

    pub(super) fn idem_abort(&self, body: IdemAbort) -> EdgeResult<Done> {
        self.sql.exec(
            "DELETE FROM idem WHERE key = ? AND state = 'in_progress'",
            vec![body.key.as_str().into()],
        )?;
        Ok(Done)
    }
}
