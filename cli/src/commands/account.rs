//! The account's commands: jobs, keys, webhooks, usage, and the CLI's own config.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::generate::{follow_and_finish, insert_some};
use super::{pretty, Ctx};
use crate::args::{Jobs, Keys, Webhooks};
use crate::config::{self, Config, Source};
use crate::error::CliError;
use crate::output::{cell, job_summary, steps, table, usd};
use crate::progress::Progress;

pub(super) async fn jobs(ctx: &Ctx, cmd: Jobs) -> Result<(), CliError> {
    match cmd {
        Jobs::Get { id } => {
            let v = ctx.api.get(&["v1", "jobs", &id], &[]).await?;
            ctx.emit(&v, job_summary);
        }
        Jobs::Watch { id, download, out } => {
            let dir = match (download, out) {
                (_, Some(d)) => Some(d),
                (true, None) => Some(PathBuf::new()),
                (false, None) => None,
            };
            follow_and_finish(ctx, &id, Progress::new(ctx.progress), dir.as_deref()).await?;
        }
        Jobs::Cancel { id } => {
            let v = ctx.api.delete(&["v1", "jobs", &id]).await?;
            ctx.emit(&v, |v| format!("cancelled {}", cell(&v["id"])));
        }
        Jobs::List => {
            let v = ctx.api.get(&["v1", "jobs", "active"], &[]).await?;
            ctx.emit(&v, |v| {
                let rows: Vec<Vec<String>> = v["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|j| {
                        let status = match j["queue_position"].as_u64() {
                            Some(p) => format!("queued ({p})"),
                            None => cell(&j["status"]),
                        };
                        vec![
                            cell(&j["id"]),
                            status,
                            steps(j),
                            cell(&j["model_id"]),
                            cell(&j["queued_at"]),
                            cell(&j["params"]["prompt"]),
                        ]
                    })
                    .collect();
                if rows.is_empty() {
                    "no active jobs".to_owned()
                } else {
                    table(
                        &["ID", "STATUS", "STEPS", "MODEL", "QUEUED", "PROMPT"],
                        &rows,
                    )
                }
            });
        }
    }
    Ok(())
}

// ---- usage, keys, webhooks -----------------------------------------------------------

pub(super) fn usage_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            if r["type"] == "credit" {
                vec![
                    cell(&r["id"]),
                    cell(&r["ts"]),
                    format!("credit ({})", cell(&r["source"])),
                    usd(&r["amount_usd"]),
                    cell(&r["note"]),
                ]
            } else {
                vec![
                    cell(&r["id"]),
                    cell(&r["ts"]),
                    format!("{} {}", cell(&r["job_type"]), cell(&r["status"])),
                    usd(&r["cost_usd"]),
                    format!("{} {}", cell(&r["job_id"]), cell(&r["prompt_preview"])),
                ]
            }
        })
        .collect();
    if rows.is_empty() {
        return "no usage yet".to_owned();
    }
    table(&["ID", "TIME", "WHAT", "AMOUNT", "DETAIL"], &rows)
}

pub(super) async fn keys(ctx: &Ctx, cmd: Keys) -> Result<(), CliError> {
    match cmd {
        Keys::List => {
            let v = ctx.api.get(&["v1", "keys"], &[]).await?;
            ctx.emit(&v, |v| {
                let rows: Vec<Vec<String>> = v["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|k| {
                        let state = if k["revoked_at"].is_null() {
                            "active".to_owned()
                        } else {
                            format!("revoked {}", cell(&k["revoked_at"]))
                        };
                        vec![
                            cell(&k["id"]),
                            cell(&k["kind"]),
                            cell(&k["label"]),
                            cell(&k["prefix"]),
                            cell(&k["created_at"]),
                            cell(&k["last_used_at"]),
                            state,
                        ]
                    })
                    .collect();
                table(
                    &[
                        "ID",
                        "KIND",
                        "LABEL",
                        "PREFIX",
                        "CREATED",
                        "LAST USED",
                        "STATE",
                    ],
                    &rows,
                )
            });
        }
        Keys::Create {
            label,
            test,
            rate_limit,
        } => {
            let mut body = Map::new();
            insert_some(&mut body, "label", label.map(Value::from));
            if test {
                body.insert("mode".into(), json!("test"));
            }
            insert_some(&mut body, "rate_limit_per_min", rate_limit.map(Value::from));
            let v = ctx
                .api
                .post(&["v1", "keys"], &[], Some(&Value::Object(body)))
                .await?;
            if !ctx.json {
                ctx.note(&format!(
                    "created {} ({} key, label {}); its secret is shown only now:",
                    cell(&v["id"]),
                    cell(&v["kind"]),
                    cell(&v["label"])
                ));
            }
            ctx.emit(&v, |v| cell(&v["api_key"]));
        }
        Keys::Revoke { id } => {
            let v = ctx.api.delete(&["v1", "keys", &id]).await?;
            ctx.emit(&v, |v| format!("revoked {}", cell(&v["id"])));
        }
    }
    Ok(())
}

pub(super) async fn webhooks(ctx: &Ctx, cmd: Webhooks) -> Result<(), CliError> {
    match cmd {
        Webhooks::Secret { rotate } => {
            let v = if rotate {
                ctx.api
                    .post(&["v1", "webhooks", "secret", "rotate"], &[], None)
                    .await?
            } else {
                ctx.api.get(&["v1", "webhooks", "secret"], &[]).await?
            };
            ctx.emit(&v, |v| {
                let mut s = format!(
                    "secret    {}\ncreated   {}",
                    cell(&v["secret"]),
                    cell(&v["created_at"])
                );
                if v["previous"].is_object() {
                    s.push_str(&format!(
                        "\nprevious  {} (also signs until {})",
                        cell(&v["previous"]["secret"]),
                        cell(&v["previous"]["expires_at"])
                    ));
                }
                s
            });
        }
        Webhooks::Deliveries { job } => {
            let v = ctx
                .api
                .get(&["v1", "jobs", &job, "deliveries"], &[])
                .await?;
            ctx.emit(&v, |v| deliveries_text(&job, v));
        }
        Webhooks::Replay { job } => {
            let v = ctx
                .api
                .post(&["v1", "jobs", &job, "webhook"], &[], None)
                .await?;
            ctx.emit(&v, |v| {
                let outcome = match v["status_code"].as_u64() {
                    Some(code) if v["error"].is_null() => format!("answered {code}"),
                    _ => format!("failed: {}", cell(&v["error"])),
                };
                format!(
                    "replayed {} ({}, attempt {}): {outcome} in {} ms",
                    cell(&v["type"]),
                    cell(&v["webhook_id"]),
                    cell(&v["attempt"]),
                    cell(&v["latency_ms"])
                )
            });
        }
    }
    Ok(())
}

pub(super) fn deliveries_text(job: &str, v: &Value) -> String {
    if v["reply_url"].is_null() {
        return format!("job {job} has no webhook URL");
    }
    let events: Vec<Vec<String>> = v["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![
                cell(&e["webhook_id"]),
                cell(&e["type"]),
                cell(&e["state"]),
                cell(&e["attempts"]),
                cell(&e["next_attempt_at"]),
            ]
        })
        .collect();
    let attempts: Vec<Vec<String>> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            vec![
                cell(&a["webhook_id"]),
                cell(&a["attempt"]),
                cell(&a["attempted_at"]),
                cell(&a["status_code"]),
                format!("{} ms", cell(&a["latency_ms"])),
                if a["replay"] == true {
                    "replay".to_owned()
                } else {
                    String::new()
                },
                cell(&a["error"]),
            ]
        })
        .collect();
    format!(
        "webhook URL: {}\n\n{}\n\n{}",
        cell(&v["reply_url"]),
        table(
            &["WEBHOOK ID", "EVENT", "STATE", "ATTEMPTS", "NEXT ATTEMPT"],
            &events
        ),
        table(
            &[
                "WEBHOOK ID",
                "ATTEMPT",
                "AT",
                "STATUS",
                "LATENCY",
                "",
                "ERROR"
            ],
            &attempts
        )
    )
}

// ---- config ----------------------------------------------------------------------------

pub fn config_show(c: &Config, path: Option<&Path>, json: bool) -> Result<(), CliError> {
    let key = c.api_key.as_deref().map(config::masked);
    let from = |s: Option<Source>| match s {
        Some(Source::Flag) => "flag",
        Some(Source::Env) => "env",
        Some(Source::File) => "file",
        Some(Source::Default) => "default",
        None => "none",
    };
    if json {
        let v = json!({
            "base_url": c.base_url, "base_url_from": from(Some(c.base_url_from)),
            "api_key": key, "api_key_from": from(c.api_key_from),
            "config_file": path.map(|p| p.display().to_string()),
            "config_file_exists": path.is_some_and(Path::is_file),
        });
        println!("{}", pretty(&v));
        return Ok(());
    }
    println!(
        "base_url  {}  (from {})",
        c.base_url,
        c.base_url_from.describe("KILN_BASE_URL", path)
    );
    match (&key, c.api_key_from) {
        (Some(k), Some(s)) => {
            println!("api_key   {k}  (from {})", s.describe("KILN_API_KEY", path))
        }
        _ => println!("api_key   none: set KILN_API_KEY or run `kiln config set api_key -`"),
    }
    match path {
        Some(p) if p.is_file() => println!("file      {}", p.display()),
        Some(p) => println!("file      {} (none yet)", p.display()),
        None => println!("file      none (no HOME, XDG_CONFIG_HOME or KILN_CONFIG)"),
    }
    Ok(())
}

pub fn config_set(
    path: Option<&Path>,
    name: &str,
    value: &str,
    json: bool,
) -> Result<(), CliError> {
    let path = path.ok_or_else(|| {
        CliError::Usage("no config file path: set KILN_CONFIG (or HOME)".to_owned())
    })?;
    let value = if value == "-" {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim().to_owned()
    } else {
        value.trim().to_owned()
    };
    match name {
        "api_key" if !value.starts_with("sk-") || value.chars().any(char::is_whitespace) => {
            return Err(CliError::Usage(
                "an API key looks like sk-trial-…, sk-gen-… or sk-test-…".to_owned(),
            ))
        }
        "base_url" => {
            // The same check as every command's.
            crate::api::Api::new(&Config {
                base_url: value.clone(),
                api_key: None,
                base_url_from: Source::Flag,
                api_key_from: None,
            })?;
        }
        _ => {}
    }
    config::set_in_file(path, name, &value)?;
    if json {
        println!(
            "{}",
            pretty(&json!({"config_file": path.display().to_string(), "set": name}))
        );
    } else {
        println!("saved {name} in {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_of_a_job_without_webhook() {
        let v = json!({"object": "list", "job_id": "job_1", "reply_url": null, "events": [], "data": []});
        assert_eq!(deliveries_text("job_1", &v), "job job_1 has no webhook URL");
    }
}
