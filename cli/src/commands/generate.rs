//! `kiln generate image|video`: inputs uploaded (or named), the job submitted, its
//! progress followed, its outputs downloaded next to you.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::{pretty, Ctx};
use crate::args::{ImageArgs, SubmitArgs, VideoArgs};
use crate::error::CliError;
use crate::output::{cell, usd};
use crate::progress::Progress;
use crate::watch;

pub(super) fn upload_note(file: &Path, v: &Value) -> String {
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

pub(super) async fn generate_image(ctx: &Ctx, a: ImageArgs) -> Result<(), CliError> {
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

pub(super) async fn generate_video(ctx: &Ctx, a: VideoArgs) -> Result<(), CliError> {
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

pub(super) fn insert_some(body: &mut Map<String, Value>, name: &str, value: Option<Value>) {
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
pub(super) async fn follow_and_finish(
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
pub(super) fn completed_note(job: &Value) -> String {
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
pub(super) fn safe_filename(out: &Value, url: &str) -> Result<String, CliError> {
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
}
