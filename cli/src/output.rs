//! Human output: tables, amounts, job summaries. (`--json` prints the API's JSON instead.)

use serde_json::Value;

/// Columns aligned on the widest cell; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A `*_usd` amount: `$1.98`, `$2.00`, `$0.201667`, `-$3.50`.
pub fn usd(v: &Value) -> String {
    if !v.is_number() {
        return "-".to_owned();
    }
    let text = v.to_string();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", text.as_str()),
    };
    let decimals = digits.split_once('.').map_or(0, |(_, d)| d.len());
    let padded = match decimals {
        0 => format!("{digits}.00"),
        1 => format!("{digits}0"),
        _ => digits.to_owned(),
    };
    format!("{sign}${padded}")
}

/// A JSON value as a table cell: strings bare, null as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `3/8` from a job's progress.
pub fn steps(job: &Value) -> String {
    let p = &job["progress"];
    format!("{}/{}", cell(&p["step"]), cell(&p["total_steps"]))
}

/// A job as a few lines for a person.
pub fn job_summary(job: &Value) -> String {
    let mut lines = vec![format!(
        "{}  {}  {} {}",
        cell(&job["id"]),
        cell(&job["status"]),
        cell(&job["job_type"]),
        cell(&job["model_id"])
    )];
    let mut field = |name: &str, value: String| lines.push(format!("  {name:<10} {value}"));
    if let Some(p) = job["queue_position"].as_u64() {
        field("queue", format!("position {p}"));
    }
    field(
        "progress",
        format!("{} {}", steps(job), cell(&job["progress"]["stage_label"])),
    );
    if let Some(prompt) = job["params"]["prompt"].as_str() {
        field("prompt", prompt.to_owned());
    }
    let params = &job["params"];
    if params["width"].is_number() {
        field(
            "size",
            format!("{}x{}", cell(&params["width"]), cell(&params["height"])),
        );
    }
    if job["seed"].is_number() {
        field("seed", cell(&job["seed"]));
    }
    field("cost", usd(&job["cost_usd"]));
    for out in job["outputs"].as_array().into_iter().flatten() {
        field(
            "output",
            format!(
                "{} ({}x{}, {})",
                cell(&out["url"]),
                cell(&out["width"]),
                cell(&out["height"]),
                cell(&out["content_type"])
            ),
        );
    }
    if !job["error_code"].is_null() {
        field(
            "error",
            format!(
                "{} ({})",
                cell(&job["error_message"]),
                cell(&job["error_code"])
            ),
        );
    }
    for at in ["queued_at", "started_at", "completed_at"] {
        if !job[at].is_null() {
            field(at.trim_end_matches("_at"), cell(&job[at]));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["ID", "STATUS", "MODEL"],
            &[
                vec!["job_1".into(), "queued".into(), "flux2-dev".into()],
                vec!["job_22".into(), "processing".into(), "-".into()],
            ],
        );
        assert_eq!(
            t,
            "ID      STATUS      MODEL\njob_1   queued      flux2-dev\njob_22  processing  -"
        );
    }

    #[test]
    fn amounts() {
        assert_eq!(usd(&json!(1.98)), "$1.98");
        assert_eq!(usd(&json!(2)), "$2.00");
        assert_eq!(usd(&json!(0.5)), "$0.50");
        assert_eq!(usd(&json!(0.201667)), "$0.201667");
        assert_eq!(usd(&json!(-3.5)), "-$3.50");
        assert_eq!(usd(&json!(0)), "$0.00");
        assert_eq!(usd(&Value::Null), "-");
    }

    #[test]
    fn a_job_summary() {
        let job = json!({"id": "job_1", "status": "failed", "job_type": "image", "model_id": "flux2-dev",
            "progress": {"step": 4, "total_steps": 8, "stage_label": "Failed"},
            "params": {"prompt": "a kiln", "width": 768, "height": 512}, "seed": 7, "cost_usd": 0.02,
            "outputs": [], "error_code": "generation_failed", "error_message": "Boom.",
            "queued_at": "2026-04-03T12:35:00Z", "started_at": null, "completed_at": null});
        let s = job_summary(&job);
        assert!(s.starts_with("job_1  failed  image flux2-dev\n"), "{s}");
        assert!(s.contains("progress   4/8 Failed"), "{s}");
        assert!(s.contains("size       768x512"), "{s}");
        assert!(s.contains("error      Boom. (generation_failed)"), "{s}");
        assert!(
            s.contains("queued     2026-04-03T12:35:00Z") && !s.contains("started"),
            "{s}"
        );
    }
}
