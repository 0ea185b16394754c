//! The money: the account's creation with its grant, holds and their settlement,
//! Stripe top-ups, operator adjustments, and the ledger that records each movement.

use kiln_shared::money::MicroUsd;
use kiln_shared::{ApiError, ErrorCode};
use serde::de::IgnoredAny;
use serde::Deserialize;
use worker::SqlStorageValue;

use super::proto::*;
use super::{opt, AccountDo};
use crate::platform::clock::now_ms;
use crate::platform::error::EdgeResult;

/// Characters of the prompt kept in the ledger, enough to recognise a job in usage.
const PROMPT_PREVIEW_CHARS_MAX: usize = 80;

#[derive(Deserialize)]
struct AmountRow {
    amount: i64,
}

impl AccountDo {
    fn balances(&self) -> EdgeResult<Balances> {
        let a = self.account()?;
        Ok(Balances {
            balance: MicroUsd::from_micros(a.balance),
            held: MicroUsd::from_micros(a.held),
        })
    }

    fn ledger(
        &self,
        ts_ms: i64,
        kind: LedgerKind,
        amount: i64,
        job_id: Option<&str>,
        note: Option<&str>,
    ) -> EdgeResult<()> {
        self.sql.exec(
            "INSERT INTO ledger (ts_ms, kind, amount, job_id, note) VALUES (?, ?, ?, ?, ?)",
            vec![
                ts_ms.into(),
                kind.as_str().into(),
                amount.into(),
                opt(job_id),
                opt(note),
            ],
        )?;
        Ok(())
    }

    pub(super) fn init(&self, body: Init) -> EdgeResult<Created> {
        if self.account().is_ok() {
            return Err(ApiError::conflict(
                ErrorCode::AccountExists,
                "This account already exists.",
            )
            .into());
        }
        let now = now_ms();
        self.sql.exec(
            "INSERT INTO account (id, email, balance, held, is_trial, created_at_ms) VALUES (?, ?, ?, 0, ?, ?)",
            vec![
                body.account_id.as_str().into(),
                opt(body.email.as_deref()),
                body.grant.micros().into(),
                i64::from(body.is_trial).into(),
                now.into(),
            ],
        )?;
        let note = if body.is_trial {
            "trial credit"
        } else {
            "initial credit"
        };
        self.ledger(
            now,
            LedgerKind::Grant,
            body.grant.micros(),
            None,
            Some(note),
        )?;
        self.insert_key(&body.key, None, now)?;
        Ok(Created {
            account_id: body.account_id,
        })
    }

    pub(super) fn get_account(&self) -> EdgeResult<Account> {
        let a = self.account()?;
        Ok(Account {
            account_id: a.id,
            balance: MicroUsd::from_micros(a.balance),
            held: MicroUsd::from_micros(a.held),
            is_trial: a.is_trial != 0,
            last_used_at_ms: a.last_used_at_ms,
        })
    }

    pub(super) fn hold(&self, body: Hold) -> EdgeResult<Balances> {
        let amount = body.amount.micros();
        if amount < 0 {
            return Err(worker::Error::RustError("hold of a negative amount".into()).into());
        }
        let existing: Vec<AmountRow> = self
            .sql
            .exec(
                "SELECT amount FROM holds WHERE job_id = ?",
                vec![body.job_id.as_str().into()],
            )?
            .to_array()?;
        if amount > 0 && existing.is_empty() {
            let taken: Vec<IgnoredAny> = self
                .sql
                .exec(
                    "UPDATE account SET held = held + ?1 WHERE balance - held >= ?1 RETURNING held",
                    vec![amount.into()],
                )?
                .to_array()?;
            if taken.is_empty() {
                let available = self.balances()?.available();
                return Err(ApiError::new(
                    402,
                    ErrorCode::InsufficientCredits,
                    format!(
                        "This request costs {} but your available balance is {available}. Top up to continue.",
                        body.amount,
                    ),
                )
                .into());
            }
            let now = now_ms();
            self.sql.exec(
                "INSERT INTO holds (job_id, amount, state, created_at_ms) VALUES (?, ?, ?, ?)",
                vec![
                    body.job_id.as_str().into(),
                    amount.into(),
                    HoldState::Held.as_str().into(),
                    now.into(),
                ],
            )?;
            let preview: String = body
                .prompt_preview
                .chars()
                .take(PROMPT_PREVIEW_CHARS_MAX)
                .collect();
            self.sql.exec(
                "INSERT INTO ledger (ts_ms, kind, amount, job_id, job_type, model_id, units, prompt_preview)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    now.into(),
                    LedgerKind::Hold.as_str().into(),
                    amount.into(),
                    body.job_id.as_str().into(),
                    body.job_type.as_str().into(),
                    body.model_id.as_str().into(),
                    body.units.into(),
                    preview.into(),
                ],
            )?;
        }
        self.balances()
    }

    /// Ends a hold exactly once; a second settle of the same job changes nothing.
    pub(super) fn settle(&self, body: Settle) -> EdgeResult<Settled> {
        let now = now_ms();
        let new_state = if body.capture {
            HoldState::Captured
        } else {
            HoldState::Released
        };
        let ended: Vec<AmountRow> = self
            .sql
            .exec(
                "UPDATE holds SET state = ?, settled_at_ms = ? WHERE job_id = ? AND state = ? RETURNING amount",
                vec![
                    new_state.as_str().into(),
                    now.into(),
                    body.job_id.as_str().into(),
                    HoldState::Held.as_str().into(),
                ],
            )?
            .to_array()?;
        let Some(hold) = ended.into_iter().next() else {
            return Ok(Settled { settled: false });
        };
        let job_id = Some(body.job_id.as_str());
        if body.capture {
            self.sql.exec(
                "UPDATE account SET balance = balance - ?1, held = held - ?1",
                vec![hold.amount.into()],
            )?;
            self.ledger(now, LedgerKind::Capture, hold.amount, job_id, None)?;
        } else {
            self.sql.exec(
                "UPDATE account SET held = held - ?1",
                vec![hold.amount.into()],
            )?;
            self.ledger(
                now,
                LedgerKind::Release,
                hold.amount,
                job_id,
                Some("refund"),
            )?;
        }
        Ok(Settled { settled: true })
    }

    pub(super) fn usage(&self, body: ListUsage) -> EdgeResult<Usage> {
        let (limit, cursor) = (body.page.limit, body.page.before_seq);
        let shown = [
            LedgerKind::Hold,
            LedgerKind::Grant,
            LedgerKind::Topup,
            LedgerKind::Adjustment,
        ];
        let rows: Vec<UsageEntry> = self
            .sql
            .exec(
                "SELECT l.seq, l.ts_ms, l.kind, l.amount, l.job_id, l.job_type, l.model_id, l.units,
                        l.prompt_preview, l.note, h.state AS hold_state, h.settled_at_ms
                 FROM ledger l LEFT JOIN holds h ON l.kind = ?3 AND h.job_id = l.job_id
                 WHERE l.kind IN (?3, ?4, ?5, ?6) AND (?1 IS NULL OR l.seq < ?1)
                 ORDER BY l.seq DESC LIMIT ?2",
                vec![
                    cursor.map(SqlStorageValue::from).unwrap_or(SqlStorageValue::Null),
                    i64::from(limit + 1).into(),
                    shown[0].as_str().into(),
                    shown[1].as_str().into(),
                    shown[2].as_str().into(),
                    shown[3].as_str().into(),
                ],
            )?
            .to_array()?;
        let limit = limit as usize;
        let has_more = rows.len() > limit;
        Ok(Usage {
            entries: rows.into_iter().take(limit).collect(),
            has_more,
        })
    }

    /// Applies a Stripe payment once per event id; a trial account becomes paid and
    /// receives an `sk-gen-` key (revealed once through `POST /v1/keys/{id}/reveal`).
    pub(super) fn top_up(&self, body: TopUp) -> EdgeResult<ToppedUp> {
        let account = self.account()?;
        let now = now_ms();
        let fresh: Vec<IgnoredAny> = self
            .sql
            .exec(
                "INSERT INTO stripe_events (event_id, at_ms) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING event_id",
                vec![body.event_id.as_str().into(), now.into()],
            )?
            .to_array()?;
        if fresh.is_empty() {
            return Ok(ToppedUp {
                applied: false,
                converted: false,
                gen_key_id: None,
            });
        }
        self.sql.exec(
            "UPDATE account SET balance = balance + ?, is_trial = 0",
            vec![body.amount.micros().into()],
        )?;
        let note = format!("stripe {} ({})", body.event_id, body.tier);
        self.ledger(
            now,
            LedgerKind::Topup,
            body.amount.micros(),
            None,
            Some(&note),
        )?;
        let converted = account.is_trial != 0;
        if converted {
            self.insert_key(&body.gen_key, Some(&body.gen_key_secret), now)?;
        }
        Ok(ToppedUp {
            applied: true,
            converted,
            gen_key_id: converted.then_some(body.gen_key.id),
        })
    }

    pub(super) fn adjust(&self, body: Adjust) -> EdgeResult<Balances> {
        let acct = self.account()?;
        // Checked: the balance stays within the ledger's range (below 2^53) or the
        // adjustment is refused.
        let new_balance = MicroUsd::from_micros(acct.balance)
            .checked_add(body.amount)
            .map(MicroUsd::micros);
        if body.amount == MicroUsd::ZERO || new_balance.is_none_or(|b| b < acct.held) {
            return Err(ApiError::invalid_param(
                "amount_usd",
                ErrorCode::InvalidValue,
                format!(
                    "The adjustment must be non-zero and leave the balance at least the held amount ({}) and within the ledger's range.",
                    MicroUsd::from_micros(acct.held)
                ),
            )
            .into());
        }
        let now = now_ms();
        self.sql.exec(
            "UPDATE account SET balance = balance + ?",
            vec![body.amount.micros().into()],
        )?;
        self.ledger(
            now,
            LedgerKind::Adjustment,
            body.amount.micros(),
            None,
            Some(&body.reason),
        )?;
        self.balances()
    }
}
