//! What a job's webhook receives: the [`EventType`]s, the `webhook_events` filter
//! ([`parse_event_filter`]) and the delivered [`body`].

use serde_json::Value;

/// The events a job's webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The job left the queue and began running.
    Started,
    /// A progress step; sent only when asked for with `webhook_events: ["progress"]`.
    Progress,
    /// The job finished with outputs.
    Completed,
    /// The job failed.
    Failed,
    /// The job was cancelled.
    Cancelled,
}

impl EventType {
    /// Every event type, in lifecycle order.
    pub const ALL: [EventType; 5] = [
        EventType::Started,
        EventType::Progress,
        EventType::Completed,
        EventType::Failed,
        EventType::Cancelled,
    ];

    /// The wire name: `job.started`, `job.progress`, `job.completed`, `job.failed`,
    /// `job.cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Started => "job.started",
            EventType::Progress => "job.progress",
            EventType::Completed => "job.completed",
            EventType::Failed => "job.failed",
            EventType::Cancelled => "job.cancelled",
        }
    }

    /// The event type with this wire name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// Whether a job whose filter said `progress_wanted` gets this event: all but
    /// [`EventType::Progress`] always, progress only when asked for.
    pub fn is_sent(self, progress_wanted: bool) -> bool {
        self != EventType::Progress || progress_wanted
    }
}

/// Which optional events a job's `replyUrl` gets. Terminal events (`job.completed`,
/// `job.failed`, `job.cancelled`) are always sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFilter {
    /// `job.started`: on by default; `"terminal"` turns it off.
    pub started: bool,
    /// `job.progress`, one per step: off by default; `"progress"` turns it on.
    pub progress: bool,
}

impl Default for EventFilter {
    fn default() -> Self {
        Self {
            started: true,
            progress: false,
        }
    }
}

/// Reads the request field `webhook_events` (absent: [`EventFilter::default`]).
/// Accepted values:
/// - `"progress"` or `"job.progress"`: also send a `job.progress` per step;
/// - `"terminal"`: send only the terminal event (no `job.started`), for receivers that
///   can take one call only, like n8n's Wait node resume URL; `"job.started"` or
///   `"started"` in the same list keeps `job.started`;
/// - `"job.completed"`, `"job.failed"`, `"job.cancelled"`: always on, allowed.
///
/// Duplicates are fine. Anything else is an error message naming the allowed values.
pub fn parse_event_filter(values: &[String]) -> Result<EventFilter, String> {
    let mut progress = false;
    let mut terminal_only = false;
    let mut started_named = false;
    for value in values {
        match value.as_str() {
            "progress" => progress = true,
            "terminal" => terminal_only = true,
            "started" => started_named = true,
            name => match EventType::parse(name) {
                Some(EventType::Progress) => progress = true,
                Some(EventType::Started) => started_named = true,
                Some(_) => {}
                None => {
                    return Err(format!(
                        "`webhook_events` may contain \"progress\", \"terminal\" or the event \
                         names \"job.started\", \"job.progress\", \"job.completed\", \
                         \"job.failed\", \"job.cancelled\"; {value:?} is not one of them."
                    ))
                }
            },
        }
    }
    Ok(EventFilter {
        started: !terminal_only || started_named,
        progress,
    })
}

/// The delivered body, compact JSON with keys in this order:
/// `{"type":"job.completed","replyRef":"…"|null,"job":<job object>}`.
pub fn body(event: EventType, reply_ref: Option<&str>, job: &Value) -> String {
    format!(
        "{{\"type\":{},\"replyRef\":{},\"job\":{}}}",
        Value::from(event.as_str()),
        Value::from(reply_ref),
        job
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_names() {
        let names: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(
            names,
            [
                "job.started",
                "job.progress",
                "job.completed",
                "job.failed",
                "job.cancelled"
            ]
        );
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.as_str()), Some(e));
            assert!(e.is_sent(true));
            assert_eq!(e.is_sent(false), e != EventType::Progress);
        }
        assert_eq!(EventType::parse("progress"), None);
        assert_eq!(EventType::parse("JOB.STARTED"), None);
    }

    #[test]
    fn event_filters() {
        /// Values, and the (started, progress) filter they give or an error.
        type Case<'a> = (&'a [&'a str], Result<(bool, bool), ()>);
        let cases: [Case; 14] = [
            (&[], Ok((true, false))),
            (&["progress"], Ok((true, true))),
            (&["job.progress"], Ok((true, true))),
            (
                &[
                    "job.started",
                    "job.completed",
                    "job.failed",
                    "job.cancelled",
                ],
                Ok((true, false)),
            ),
            (&["job.completed", "progress", "progress"], Ok((true, true))),
            (&["terminal"], Ok((false, false))),
            (&["terminal", "progress"], Ok((false, true))),
            (&["terminal", "job.started"], Ok((true, false))),
            (&["started"], Ok((true, false))),
            (&["Progress"], Err(())),
            (&["progres"], Err(())),
            (&[""], Err(())),
            (&["job.*"], Err(())),
            (&["progress", "nope"], Err(())),
        ];
        for (values, want) in cases {
            let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            let got = parse_event_filter(&values);
            match want {
                Ok((started, progress)) => {
                    assert_eq!(got, Ok(EventFilter { started, progress }), "{values:?}")
                }
                Err(()) => {
                    let err = got.unwrap_err();
                    for allowed in [
                        "\"progress\"",
                        "job.started",
                        "job.cancelled",
                        "webhook_events",
                    ] {
                        assert!(err.contains(allowed), "{err}");
                    }
                }
            }
        }
    }

    #[test]
    fn bodies_are_compact_json_in_documented_order() {
        let job = json!({"id": "job_1", "status": "completed"});
        assert_eq!(
            body(EventType::Completed, Some("order-7"), &job),
            r#"{"type":"job.completed","replyRef":"order-7","job":{"id":"job_1","status":"completed"}}"#
        );
        assert_eq!(
            body(EventType::Started, None, &json!({})),
            r#"{"type":"job.started","replyRef":null,"job":{}}"#
        );
        let tricky = "quote\" backslash\\ newline\n ✓";
        let parsed: Value =
            serde_json::from_str(&body(EventType::Failed, Some(tricky), &job)).unwrap();
        assert_eq!(
            parsed,
            json!({"type": "job.failed", "replyRef": tricky, "job": job})
        );
    }
}
