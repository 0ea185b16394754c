//! What each command does.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::api::Api;
use crate::args::{Command, Generate, ImageArgs, Jobs, Keys, SubmitArgs, VideoArgs, Webhooks};
use crate::config::{self, Config, Source};
use crate::error::CliError;
use crate::output::{cell, job_summary, steps, table, usd};
use crate::progress::{Mode, Progress};
use crate::watch;

/// How the command reports: `--json` (the API's JSON on stdout) or text, and whether
/// progress goes to stderr.
pub struct Ctx {
    pub api: Api,
    pub json: bool,
    pub progress: Mode,
}

impl Ctx {
    /// Prints the API's JSON (with `--json`) or the text `human` makes of it.
    fn emit(&self, value: &Value, human: impl FnOnce(&Value) -> String) {
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
    fn note(&self, line: &str) {
        if self.progress != Mode::Quiet {
            eprintln!("{line}");
        }
    }
}

fn pretty(v: &Value) -> String {
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

fn upload_note(file: &Path, v: &Value) -> String {
    format!(
        "uploaded {} ({} {}x{}, {} bytes{}), use it with --input {}",
        file.display(),
        cell(&v["format"]),
        cell(&v["width"]),
        cell(&v["height"]),
        cell(&v["size_bytes"]),
        if v["deduplicated"] == true {
            ", already uploaded"
        } else {
            ""
        },
        cell(&v["filename"]),
    )
}

// ---- generate ------------------------------------------------------------------------

async fn generate_image(ctx: &Ctx, a: ImageArgs) -> Result<(), CliError> {
    let mut body = Map::new();
    body.insert("prompt".into(), json!(a.prompt));
    if let Some(s) = a.size {
        body.insert("width".into(), json!(s.width));
        body.insert("height".into(), json!(s.height));
    }
    insert_some(&mut body, "steps", a.steps.map(|v| json!(v)));
    insert_some(&mut body, "seed", a.seed.map(|v| json!(v)));
    insert_some(&mut body, "cfg", a.cfg.map(|v| json!(v)));
    insert_some(&mut body, "n", a.n.map(|v| json!(v)));
    let inputs = resolve_inputs(ctx, &a.input).await?;
    if !inputs.is_empty() {
        body.insert("input_files".into(), json!(inputs));
    }
    submit(ctx, "images", body, &a.submit).await
}

async fn generate_video(ctx: &Ctx, a: VideoArgs) -> Result<(), CliError> {
    let mut body = Map::new();
    body.insert("prompt".into(), json!(a.prompt));
    insert_some(&mut body, "model", a.model.map(|v| json!(v)));
    if let Some(s) = a.size {
        body.insert("width".into(), json!(s.width));
        body.insert("height".into(), json!(s.height));
    }
    insert_some(&mut body, "num_frames", a.frames.map(|v| json!(v)));
    insert_some(&mut body, "seed", a.seed.map(|v| json!(v)));
    insert_some(
        &mut body,
        "negative_prompt",
        a.negative_prompt.map(|v| json!(v)),
    );
    let inputs = resolve_inputs(ctx, a.input.as_slice()).await?;
    if !inputs.is_empty() {
        body.insert("input_files".into(), json!(inputs));
    }
    submit(ctx, "video", body, &a.submit).await
}

fn insert_some(body: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    if let Some(v) = value {
        body.insert(name.to_owned(), v);
    }
}

/// `--input` values as Kiln filenames: a local file is uploaded first; otherwise a
/// Kiln filename (`up_….png`, `job_…-0.png`) is used as it is.
async fn resolve_inputs(ctx: &Ctx, inputs: &[String]) -> Result<Vec<String>, CliError> {
    let mut names = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if path.is_file() {
            let v = ctx.api.upload(path).await?;
            ctx.note(&upload_note(path, &v));
            names.push(
                v["filename"]
                    .as_str()
                    .ok_or_else(|| CliError::Other("the upload answered no filename".into()))?
                    .to_owned(),
            );
        } else if is_kiln_filename(input) {
            names.push(input.clone());
        } else {
            return Err(CliError::Usage(format!(
                "--input {input}: no such file, and not the filename of an upload or output (up_….png, job_…-0.png)"
            )));
        }
    }
    Ok(names)
}

pub fn is_kiln_filename(name: &str) -> bool {
    (name.starts_with("up_") || name.starts_with("job_"))
        && name.contains('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Submits a generation in async mode, follows it, and finishes as `finish` does.
async fn submit(
    ctx: &Ctx,
    kind: &str,
    mut body: Map<String, Value>,
    s: &SubmitArgs,
) -> Result<(), CliError> {
    insert_some(
        &mut body,
        "replyUrl",
        s.webhook_url.clone().map(Value::from),
    );
    insert_some(&mut body, "replyRef", s.reply_ref.clone().map(Value::from));
    let accepted = ctx
        .api
        .post(
            &["v1", kind, "generations"],
            &[("async_mode", "true")],
            Some(&Value::Object(body)),
        )
        .await?;
    let job_id = accepted["job_id"]
        .as_str()
        .ok_or_else(|| CliError::Other(format!("the API answered no job id: {accepted}")))?
        .to_owned();
    ctx.note(&format!("job {job_id} submitted"));
    let mut progress = Progress::new(ctx.progress);
    // The answer has the job's place in the queue; the stream may not (it is read later).
    progress.update(&json!({"status": "queued", "queue_position": accepted["queue_position"]}));
    let dir = (!s.no_download).then(|| s.out.clone().unwrap_or_default());
    follow_and_finish(ctx, &job_id, progress, dir.as_deref()).await
}

/// Follows a job to its end. Completed: downloads its outputs into `download` (an
/// empty path is the current directory) or prints their URLs, and prints the paths, or
/// the job with `--json`. Failed or cancelled: the job's error, exit 1 (with `--json`,
/// the job is printed first).
async fn follow_and_finish(
    ctx: &Ctx,
    job_id: &str,
    mut progress: Progress,
    download: Option<&Path>,
) -> Result<(), CliError> {
    let job = watch::follow(&ctx.api, job_id, &mut progress).await?;
    progress.finish();
    if job["status"] != "completed" {
        if ctx.json {
            println!("{}", pretty(&job));
        }
        return Err(CliError::job_ended(&job));
    }
    ctx.note(&completed_note(&job));
    let outputs: Vec<&Value> = job["outputs"].as_array().into_iter().flatten().collect();
    let mut lines = Vec::new();
    for out in outputs {
        let url = out["url"]
            .as_str()
            .ok_or_else(|| CliError::Other(format!("an output without a URL: {out}")))?;
        match download {
            Some(dir) => {
                let path = dir.join(safe_filename(out, url)?);
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        CliError::Other(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                ctx.api.download(url, &path).await?;
                lines.push(path.display().to_string());
            }
            None => lines.push(url.to_owned()),
        }
    }
    if ctx.json {
        println!("{}", pretty(&job));
    } else {
        for line in lines {
            println!("{line}");
        }
    }
    Ok(())
}

/// `job job_… completed in 4.2 s ($0.02)`.
fn completed_note(job: &Value) -> String {
    let t = &job["metadata"]["timings_ms"];
    let took = match (t["queued_at"].as_u64(), t["completed_at"].as_u64()) {
        (Some(q), Some(c)) if c >= q => format!(" in {:.1} s", (c - q) as f64 / 1000.0),
        _ => String::new(),
    };
    format!(
        "job {} completed{took} ({})",
        cell(&job["id"]),
        usd(&job["cost_usd"])
    )
}

/// The output's filename, as a plain name (never a path) to save it under.
fn safe_filename(out: &Value, url: &str) -> Result<String, CliError> {
    let name = out["filename"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| url.rsplit('/').next().map(str::to_owned))
        .unwrap_or_default();
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(CliError::Other(format!(
            "the output {url} has an unusable filename {name:?}"
        )));
    }
    Ok(name)
}

// ---- jobs ----------------------------------------------------------------------------

async fn jobs(ctx: &Ctx, cmd: Jobs) -> Result<(), CliError> {
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

fn usage_table(v: &Value) -> String {
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

async fn keys(ctx: &Ctx, cmd: Keys) -> Result<(), CliError> {
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

async fn webhooks(ctx: &Ctx, cmd: Webhooks) -> Result<(), CliError> {
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

fn deliveries_text(job: &str, v: &Value) -> String {
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
    fn kiln_filenames() {
        assert!(is_kiln_filename("up_k3v9abc.png"));
        assert!(is_kiln_filename("job_01jqabc-0.png"));
        assert!(!is_kiln_filename("cat.png"));
        assert!(!is_kiln_filename("up_x/../../etc/passwd"));
        assert!(!is_kiln_filename("up_nodot"));
    }

    #[test]
    fn outputs_are_saved_under_a_plain_name() {
        let out = json!({"filename": "job_1-0.png"});
        assert_eq!(
            safe_filename(&out, "http://x/outputs/job_1-0.png").unwrap(),
            "job_1-0.png"
        );
        // Without a filename, the URL's last segment.
        assert_eq!(
            safe_filename(&json!({}), "http://x/outputs/job_2-0.mp4").unwrap(),
            "job_2-0.mp4"
        );
        for bad in ["../etc/passwd", ".hidden", "a/b.png", ""] {
            assert!(
                safe_filename(&json!({"filename": bad}), "http://x/").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_completion_note() {
        let job = json!({"id": "job_1", "cost_usd": 0.02,
            "metadata": {"timings_ms": {"queued_at": 1000, "completed_at": 5250}}});
        assert_eq!(completed_note(&job), "job job_1 completed in 4.2 s ($0.02)");
        assert_eq!(
            completed_note(&json!({"id": "job_1", "cost_usd": 0})),
            "job job_1 completed ($0.00)"
        );
    }

    #[test]
    fn deliveries_of_a_job_without_webhook() {
        let v = json!({"object": "list", "job_id": "job_1", "reply_url": null, "events": [], "data": []});
        assert_eq!(deliveries_text("job_1", &v), "job job_1 has no webhook URL");
    }
}
