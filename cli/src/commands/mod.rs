//! What each command does: [`run`] dispatches; `generate` submits and follows
//! generations (uploads of inputs, progress, downloads), `account` is everything else
//! (jobs, keys, webhooks, usage, the CLI's own config).

use serde_json::Value;

use crate::api::Api;
use crate::args::{Command, Generate};
use crate::error::CliError;
use crate::output::{cell, usd};
use crate::progress::Mode;

mod account;
mod generate;

pub use account::{config_set, config_show};
use account::{jobs, keys, usage_table, webhooks};
use generate::{generate_image, generate_video, upload_note};

/// How the command reports: `--json` (the API's JSON on stdout) or text, and whether
/// progress goes to stderr.
pub struct Ctx {
    pub api: Api,
    pub json: bool,
    pub progress: Mode,
}

impl Ctx {
    /// Prints the API's JSON (with `--json`) or the text `human` makes of it.
    pub(super) fn emit(&self, value: &Value, human: impl FnOnce(&Value) -> String) {
        if self.json {
            println!("{}", pretty(value));
        } else {
            let text = human(value);
            if !text.is_empty() {
                println!("{text}");
            }
        }
    }

    /// A line for a person on stderr (not with `--quiet`).
    pub(super) fn note(&self, line: &str) {
        if self.progress != Mode::Quiet {
            eprintln!("{line}");
        }
    }
}

pub(super) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::Generate(Generate::Image(a)) => generate_image(ctx, a).await,
        Command::Generate(Generate::Video(a)) => generate_video(ctx, a).await,
        Command::Jobs(j) => jobs(ctx, j).await,
        Command::Credits => {
            let v = ctx.api.get(&["v1", "credits"], &[]).await?;
            ctx.emit(&v, |v| {
                let kind = if v["is_trial"] == true {
                    "trial"
                } else {
                    "paid"
                };
                format!(
                    "available  {}\nbalance    {}\nheld       {}\naccount    {} ({kind})",
                    usd(&v["available_usd"]),
                    usd(&v["balance_usd"]),
                    usd(&v["held_usd"]),
                    cell(&v["account_id"]),
                )
            });
            Ok(())
        }
        Command::Usage { limit, cursor } => {
            let mut query = Vec::new();
            if let Some(l) = limit {
                query.push(("limit", l.to_string()));
            }
            if let Some(c) = cursor {
                query.push(("cursor", c));
            }
            let v = ctx.api.get(&["v1", "usage"], &query).await?;
            ctx.emit(&v, usage_table);
            if !ctx.json && v["has_more"] == true {
                ctx.note(&format!(
                    "older rows: kiln usage --cursor {}",
                    cell(&v["next_cursor"])
                ));
            }
            Ok(())
        }
        Command::Keys(k) => keys(ctx, k).await,
        Command::Upload { file } => {
            let v = ctx.api.upload(&file).await?;
            if !ctx.json {
                ctx.note(&upload_note(&file, &v));
            }
            ctx.emit(&v, |v| cell(&v["filename"]));
            Ok(())
        }
        Command::Webhooks(w) => webhooks(ctx, w).await,
        // Handled before an API client is made (see `main::run`).
        Command::Config(_) => Ok(()),
    }
}
