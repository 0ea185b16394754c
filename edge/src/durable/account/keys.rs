//! Keys: authentication with its rate-limit token, and the key list. Only hashes are
//! stored; a key Kiln creates for the account (the `sk-gen-` key of a first payment)
//! keeps its secret until it is revealed once.

use kiln_shared::keys::{KeyHash, KeyKind};
use kiln_shared::ratelimit::Bucket;
use kiln_shared::{ApiError, ErrorCode};
use serde::de::IgnoredAny;
use serde::Deserialize;
use worker::SqlStorageValue;

use super::proto::*;
use super::{opt, AccountDo};
use crate::platform::clock::now_ms;
use crate::platform::error::EdgeResult;

#[derive(Deserialize)]
struct KeyRow {
    id: String,
    hash: KeyHash,
    kind: KeyKind,
    rate_limit_per_min: Option<u32>,
}

#[derive(Deserialize)]
struct BucketRow {
    tokens_milli: i64,
    updated_ms: i64,
}

#[derive(Deserialize)]
struct KeyListRow {
    id: String,
    kind: KeyKind,
    label: String,
    prefix: String,
    created_at_ms: i64,
    last_used_at_ms: Option<i64>,
    revoked_at_ms: Option<i64>,
    reveal_pending: i64,
    rate_limit_per_min: Option<u32>,
}

impl From<KeyListRow> for KeyRecord {
    fn from(k: KeyListRow) -> Self {
        KeyRecord {
            id: k.id,
            kind: k.kind,
            label: k.label,
            prefix: k.prefix,
            created_at_ms: k.created_at_ms,
            last_used_at_ms: k.last_used_at_ms,
            revoked_at_ms: k.revoked_at_ms,
            reveal_available: k.reveal_pending != 0,
            rate_limit_per_min: k.rate_limit_per_min,
        }
    }
}

const KEY_LIST_COLUMNS: &str =
    "id, kind, label, prefix, created_at_ms, last_used_at_ms, revoked_at_ms,
     (reveal_secret IS NOT NULL) AS reveal_pending, rate_limit_per_min";

impl AccountDo {
    pub(super) fn insert_key(
        &self,
        key: &NewKey,
        reveal_secret: Option<&str>,
        now: i64,
    ) -> EdgeResult<()> {
        self.sql.exec(
            "INSERT INTO keys (id, hash, kind, label, prefix, created_at_ms, reveal_secret, rate_limit_per_min)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                key.id.as_str().into(),
                key.hash.as_str().into(),
                key.kind.as_str().into(),
                key.label.as_str().into(),
                key.prefix.as_str().into(),
                now.into(),
                opt(reveal_secret),
                key.rate_limit_per_min
                    .map(|n| SqlStorageValue::from(i64::from(n)))
                    .unwrap_or(SqlStorageValue::Null),
            ],
        )?;
        Ok(())
    }

    /// Checks a key hash and takes a rate-limit token. Revoked keys fail at once: the
    /// answer is never cached outside this object.
    pub(super) fn authenticate(&self, body: Authenticate) -> EdgeResult<Principal> {
        let presented = body.hash;
        let rows: Vec<KeyRow> = self
            .sql
            .exec(
                "SELECT id, hash, kind, rate_limit_per_min FROM keys WHERE hash = ? AND revoked_at_ms IS NULL",
                vec![presented.as_str().into()],
            )?
            .to_array()?;
        let key = rows
            .into_iter()
            .find(|k| k.hash.matches(&presented))
            .ok_or_else(ApiError::invalid_key)?;
        let account = self.account()?;
        let now = now_ms();
        let limit = key
            .rate_limit_per_min
            .map_or(body.limit_per_min, |k| k.min(body.limit_per_min));
        let buckets: Vec<BucketRow> = self
            .sql
            .exec(
                "SELECT tokens_milli, updated_ms FROM rate WHERE key_id = ?",
                vec![key.id.as_str().into()],
            )?
            .to_array()?;
        let bucket = buckets
            .into_iter()
            .next()
            .map(|b| Bucket {
                tokens_milli: b.tokens_milli,
                updated_ms: b.updated_ms,
            })
            .unwrap_or_else(|| Bucket::full(limit, now));
        let (bucket, decision) = bucket.take(limit, now);
        self.sql.exec(
            "INSERT INTO rate (key_id, tokens_milli, updated_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(key_id) DO UPDATE SET tokens_milli = ?2, updated_ms = ?3",
            vec![
                key.id.as_str().into(),
                bucket.tokens_milli.into(),
                bucket.updated_ms.into(),
            ],
        )?;
        if decision.allowed {
            self.sql.exec(
                "UPDATE keys SET last_used_at_ms = ? WHERE id = ?",
                vec![now.into(), key.id.as_str().into()],
            )?;
            self.sql
                .exec("UPDATE account SET last_used_at_ms = ?", vec![now.into()])?;
        }
        Ok(Principal {
            account_id: account.id,
            key_id: key.id,
            kind: key.kind,
            rate: decision.into(),
        })
    }

    fn key_records(&self, id: Option<&str>) -> EdgeResult<Vec<KeyRecord>> {
        let rows: Vec<KeyListRow> = self
            .sql
            .exec(
                &format!(
                    "SELECT {KEY_LIST_COLUMNS} FROM keys WHERE (?1 IS NULL OR id = ?1)
                     ORDER BY created_at_ms, id"
                ),
                vec![opt(id)],
            )?
            .to_array()?;
        Ok(rows.into_iter().map(KeyRecord::from).collect())
    }

    pub(super) fn list_keys(&self) -> EdgeResult<Keys> {
        Ok(Keys {
            keys: self.key_records(None)?,
        })
    }

    pub(super) fn create_key(&self, body: CreateKey) -> EdgeResult<KeyRecord> {
        self.account()?;
        self.insert_key(&body.key, None, now_ms())?;
        self.key_records(Some(&body.key.id))?
            .pop()
            .ok_or_else(|| ApiError::internal().into())
    }

    pub(super) fn revoke_key(&self, body: RevokeKey) -> EdgeResult<Revoked> {
        let id = body.id;
        let revoked: Vec<IgnoredAny> = self
            .sql
            .exec(
                "UPDATE keys SET revoked_at_ms = ?, reveal_secret = NULL WHERE id = ? AND revoked_at_ms IS NULL RETURNING id",
                vec![now_ms().into(), id.as_str().into()],
            )?
            .to_array()?;
        if revoked.is_empty() {
            return Err(
                ApiError::not_found(ErrorCode::KeyNotFound, "No active key with this id.").into(),
            );
        }
        self.sql.exec(
            "DELETE FROM rate WHERE key_id = ?",
            vec![id.as_str().into()],
        )?;
        Ok(Revoked { id })
    }

    /// Hands out a key created for the account (the `sk-gen-` key of a first payment)
    /// exactly once, then forgets the secret.
    pub(super) fn reveal_key(&self, body: RevealKey) -> EdgeResult<Revealed> {
        #[derive(Deserialize)]
        struct Secret {
            reveal_secret: String,
        }
        let id = body.id;
        let rows: Vec<Secret> = self
            .sql
            .exec(
                "SELECT reveal_secret FROM keys WHERE id = ? AND reveal_secret IS NOT NULL AND revoked_at_ms IS NULL",
                vec![id.as_str().into()],
            )?
            .to_array()?;
        // No await between the read and the wipe: two reveals cannot both succeed.
        self.sql.exec(
            "UPDATE keys SET reveal_secret = NULL WHERE id = ?",
            vec![id.as_str().into()],
        )?;
        match rows.into_iter().next() {
            Some(s) => Ok(Revealed {
                id,
                api_key: s.reveal_secret,
            }),
            None => Err(ApiError::not_found(
                ErrorCode::KeyNotFound,
                "No key with this id is waiting to be revealed; secrets are shown once.",
            )
            .into()),
        }
    }
}
