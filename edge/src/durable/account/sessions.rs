//! Dashboard sessions: a session is opened with one of the account's live keys and
//! acts as that key (its kind, its rate-limit bucket) until it expires, is closed, or
//! the key is revoked. Only the token's hash is stored.

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::proto::*;
use super::AccountDo;
use crate::platform::clock::now_ms;
use crate::platform::error::EdgeResult;
use kiln_shared::keys::KeyHash;
use kiln_shared::ApiError;

#[derive(Deserialize)]
struct LiveKey {
    id: String,
    hash: KeyHash,
}

impl AccountDo {
    /// Checks the key and stores the session's hash for it; expired sessions of the
    /// account are dropped on the way, so the table holds only live ones.
    pub(super) fn open_session(&self, body: OpenSession) -> EdgeResult<SessionOpened> {
        self.account()?;
        let keys: Vec<LiveKey> = self
            .sql
            .exec(
                "SELECT id, hash FROM keys WHERE hash = ? AND revoked_at_ms IS NULL",
                vec![body.key_hash.as_str().into()],
            )?
            .to_array()?;
        let key = keys
            .into_iter()
            .find(|k| k.hash.matches(&body.key_hash))
            .ok_or_else(ApiError::invalid_key)?;
        let now = now_ms();
        self.sql.exec(
            "DELETE FROM sessions WHERE expires_at_ms <= ?",
            vec![now.into()],
        )?;
        self.sql.exec(
            "INSERT INTO sessions (hash, key_id, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?)",
            vec![
                body.session_hash.as_str().into(),
                key.id.as_str().into(),
                now.into(),
                body.expires_at_ms.into(),
            ],
        )?;
        Ok(SessionOpened { key_id: key.id })
    }

    /// The hash of the live key a live session acts as; 401 otherwise.
    pub(super) fn session_key_hash(&self, session: &KeyHash) -> EdgeResult<KeyHash> {
        #[derive(Deserialize)]
        struct Row {
            session_hash: KeyHash,
            key_hash: KeyHash,
        }
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT s.hash AS session_hash, k.hash AS key_hash FROM sessions s
                 JOIN keys k ON k.id = s.key_id
                 WHERE s.hash = ? AND s.expires_at_ms > ? AND k.revoked_at_ms IS NULL",
                vec![session.as_str().into(), now_ms().into()],
            )?
            .to_array()?;
        rows.into_iter()
            .find(|r| r.session_hash.matches(session))
            .map(|r| r.key_hash)
            .ok_or_else(|| kiln_shared::dashboard::invalid_session().into())
    }

    pub(super) fn authenticate_session(&self, body: AuthenticateSession) -> EdgeResult<Principal> {
        let hash = self.session_key_hash(&body.hash)?;
        self.authenticate(Authenticate {
            hash,
            limit_per_min: body.limit_per_min,
        })
    }

    pub(super) fn close_session(&self, body: CloseSession) -> EdgeResult<Done> {
        let _: Vec<IgnoredAny> = self
            .sql
            .exec(
                "DELETE FROM sessions WHERE hash = ? RETURNING hash",
                vec![body.hash.as_str().into()],
            )?
            .to_array()?;
        Ok(Done)
    }
}
