//! A job's progress on stderr: a redrawn bar on a terminal, plain lines otherwise (CI,
//! logs, pipes), nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Plain,
    Quiet,
}

impl Mode {
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Plain
        }
    }
}

/// What a progress line says; a new line is printed only when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Queued(Option<u64>),
    Loading(String),
    Step {
        step: u64,
        total: u64,
        label: String,
    },
    Ended(String),
}

impl State {
    fn of(job: &Value) -> State {
        let progress = &job["progress"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        match job["status"].as_str().unwrap_or_default() {
            "queued" => State::Queued(job["queue_position"].as_u64()),
            "loading_model" => State::Loading(text(&job["model_id"])),
            "processing" => State::Step {
                step: progress["step"].as_u64().unwrap_or(0),
                total: progress["total_steps"].as_u64().unwrap_or(0),
                label: match progress["stage_label"].as_str() {
                    Some(l) if !l.is_empty() => l.to_owned(),
                    _ => text(&progress["stage"]),
                },
            },
            other => State::Ended(other.to_owned()),
        }
    }

    fn line(&self) -> String {
        match self {
            State::Queued(Some(p)) => format!("queued (position {p})"),
            State::Queued(None) => "queued".to_owned(),
            State::Loading(model) if model.is_empty() => "loading model".to_owned(),
            State::Loading(model) => format!("loading model {model}"),
            State::Step { step, total, label } => format!("step {step}/{total} {label}"),
            State::Ended(status) => status.clone(),
        }
    }
}

pub struct Progress {
    mode: Mode,
    bar: Option<ProgressBar>,
    last: Option<State>,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            bar: None,
            last: None,
        }
    }

    /// Shows the job's state, from a job object (an event of its stream).
    pub fn update(&mut self, job: &Value) {
        let mut state = State::of(job);
        // Later events of a queued job carry no position: keep showing the last one.
        if let (State::Queued(None), Some(State::Queued(Some(p)))) = (&state, &self.last) {
            state = State::Queued(Some(*p));
        }
        if self.last.as_ref() == Some(&state) {
            return;
        }
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                // Terminal states are reported by the caller (with outputs or the error).
                if !matches!(state, State::Ended(_)) {
                    eprintln!("{}", state.line());
                }
            }
            Mode::Bar => self.draw(&state),
        }
        self.last = Some(state);
    }

    fn draw(&mut self, state: &State) {
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        match state {
            State::Step { step, total, label } => {
                if !matches!(self.last, Some(State::Step { .. })) {
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{msg} [{bar:30.cyan/blue}] {pos}/{len} steps ({elapsed})",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                }
                bar.set_length(*total);
                bar.set_position(*step);
                bar.set_message(label.clone());
            }
            State::Ended(_) => bar.finish_and_clear(),
            other => {
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(other.line());
            }
        }
    }

    /// Removes the bar (before the final output, or an error).
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_for_each_state() {
        let job = |status: &str, progress: Value| json!({"status": status, "model_id": "flux2-dev", "queue_position": 2, "progress": progress});
        assert_eq!(
            State::of(&job("queued", json!({}))).line(),
            "queued (position 2)"
        );
        assert_eq!(
            State::of(&job("loading_model", json!({}))).line(),
            "loading model flux2-dev"
        );
        assert_eq!(
            State::of(&job(
                "processing",
                json!({"step": 3, "total_steps": 8, "stage": "sampling", "stage_label": "Sampling"})
            ))
            .line(),
            "step 3/8 Sampling"
        );
        assert_eq!(
            State::of(&job(
                "processing",
                json!({"step": 31, "total_steps": 40, "stage": "stage_2", "stage_label": ""})
            ))
            .line(),
            "step 31/40 stage_2"
        );
        assert_eq!(
            State::of(&job("completed", json!({}))),
            State::Ended("completed".into())
        );
    }

    #[test]
    fn repeated_states_are_not_shown_twice() {
        let mut p = Progress::new(Mode::Quiet);
        p.update(&json!({"status": "queued", "queue_position": 3}));
        p.update(&json!({"status": "queued", "queue_position": null}));
        assert_eq!(p.last, Some(State::Queued(Some(3))));
        p.update(&json!({"status": "processing", "progress": {"step": 1, "total_steps": 8, "stage_label": "Sampling"}}));
        assert!(matches!(p.last, Some(State::Step { step: 1, .. })));
    }
}
