//! The account's Standard Webhooks signing secrets: one current secret, created on
//! first use; after a rotation the old one keeps signing beside it for a day.

use serde::Deserialize;

use super::proto::*;
use super::AccountDo;
use crate::platform::clock::{now_ms, random_bytes};
use crate::platform::error::EdgeResult;

/// After a rotation, the old webhook secret keeps signing (beside the new one) this long.
pub const WEBHOOK_SECRET_OVERLAP_MS: i64 = 24 * 60 * 60 * 1000;

impl AccountDo {
    /// The signing secrets, creating the first on first use.
    pub(super) fn webhook_secrets(&self) -> EdgeResult<WebhookSecrets> {
        #[derive(Deserialize)]
        struct Row {
            secret: String,
            created_at_ms: i64,
            expires_at_ms: Option<i64>,
        }
        self.account()?;
        let now = now_ms();
        self.sql.exec(
            "DELETE FROM webhook_secrets WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?",
            vec![now.into()],
        )?;
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT secret, created_at_ms, expires_at_ms FROM webhook_secrets
                 ORDER BY created_at_ms DESC",
                None,
            )?
            .to_array()?;
        let (current, previous): (Vec<&Row>, Vec<&Row>) =
            rows.iter().partition(|r| r.expires_at_ms.is_none());
        let (secret, created_at_ms) = match current.first() {
            Some(r) => (r.secret.clone(), r.created_at_ms),
            None => {
                let secret = kiln_shared::webhooks::new_secret(random_bytes());
                self.sql.exec(
                    "INSERT INTO webhook_secrets (secret, created_at_ms) VALUES (?, ?)",
                    vec![secret.as_str().into(), now.into()],
                )?;
                (secret, now)
            }
        };
        Ok(WebhookSecrets {
            current: secret,
            created_at_ms,
            previous: previous.first().map(|r| PreviousSecret {
                secret: r.secret.clone(),
                expires_at_ms: r.expires_at_ms.unwrap_or(now),
            }),
        })
    }

    /// A new current secret; the old one keeps signing for 24 h. A secret rotated out
    /// earlier stops at once (at most two sign at any time).
    pub(super) fn rotate_webhook_secret(&self) -> EdgeResult<WebhookSecrets> {
        let old = self.webhook_secrets()?;
        let now = now_ms();
        let secret = kiln_shared::webhooks::new_secret(random_bytes());
        self.sql.exec(
            "DELETE FROM webhook_secrets WHERE expires_at_ms IS NOT NULL",
            None,
        )?;
        self.sql.exec(
            "UPDATE webhook_secrets SET expires_at_ms = ? WHERE secret = ?",
            vec![
                (now + WEBHOOK_SECRET_OVERLAP_MS).into(),
                old.current.as_str().into(),
            ],
        )?;
        self.sql.exec(
            "INSERT INTO webhook_secrets (secret, created_at_ms) VALUES (?, ?)",
            vec![
                secret.as_str().into(),
                (now + 1).max(old.created_at_ms + 1).into(),
            ],
        )?;
        self.webhook_secrets()
    }
}
