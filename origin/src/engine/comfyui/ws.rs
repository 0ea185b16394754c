//! ComfyUI's websocket, `/ws?clientId=` (reference §2): the events of the prompts
//! queued with that `client_id`, as text frames `{"type", "data"}`. Binary frames
//! (previews, `SaveImageWebsocket`) and the events Kiln has no use for (`status`,
//! `progress_state`, `feature_flags`, …) read as [`WsEvent::Other`].

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// No event Kiln reads comes near this; a bigger frame ends the connection.
pub const MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// One websocket event, the parts Kiln reads.
#[derive(Debug, Clone, PartialEq)]
pub enum WsEvent {
    ExecutionStart {
        prompt_id: String,
    },
    /// `node: None` means the prompt is done, whatever its outcome (the done rule).
    Executing {
        prompt_id: String,
        node: Option<String>,
    },
    Progress {
        prompt_id: String,
        node: Option<String>,
        value: u64,
        max: u64,
    },
    Executed {
        prompt_id: String,
        node: String,
        output: Value,
    },
    Success {
        prompt_id: String,
    },
    Error {
        prompt_id: String,
        node_id: String,
        node_type: String,
        exception_type: String,
        exception_message: String,
    },
    Interrupted {
        prompt_id: String,
    },
    Other,
}

impl WsEvent {
    /// The prompt the event is about, if any.
    pub fn prompt_id(&self) -> Option<&str> {
        match self {
            WsEvent::ExecutionStart { prompt_id }
            | WsEvent::Executing { prompt_id, .. }
            | WsEvent::Progress { prompt_id, .. }
            | WsEvent::Executed { prompt_id, .. }
            | WsEvent::Success { prompt_id }
            | WsEvent::Error { prompt_id, .. }
            | WsEvent::Interrupted { prompt_id } => Some(prompt_id),
            WsEvent::Other => None,
        }
    }
}

/// Reads one text frame. Anything unexpected is [`WsEvent::Other`], never an error:
/// the history is the record of what happened.
pub fn parse(text: &str) -> WsEvent {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return WsEvent::Other;
    };
    let data = &v["data"];
    let s = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
    // Node ids are strings in 0.26.0; accept numbers too.
    let node = |key: &str| match data.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let Some(prompt_id) = s("prompt_id") else {
        return WsEvent::Other;
    };
    match v["type"].as_str().unwrap_or("") {
        "execution_start" => WsEvent::ExecutionStart { prompt_id },
        "executing" => WsEvent::Executing {
            prompt_id,
            node: node("node"),
        },
        "progress" => WsEvent::Progress {
            prompt_id,
            node: node("node"),
            value: data["value"].as_u64().unwrap_or(0),
            max: data["max"].as_u64().unwrap_or(0),
        },
        "executed" => match node("node") {
            Some(node) => WsEvent::Executed {
                prompt_id,
                node,
                output: data["output"].clone(),
            },
            None => WsEvent::Other,
        },
        "execution_success" => WsEvent::Success { prompt_id },
        "execution_error" => WsEvent::Error {
            prompt_id,
            node_id: node("node_id").unwrap_or_default(),
            node_type: s("node_type").unwrap_or_default(),
            exception_type: s("exception_type").unwrap_or_default(),
            exception_message: s("exception_message").unwrap_or_default(),
        },
        "execution_interrupted" => WsEvent::Interrupted { prompt_id },
        _ => WsEvent::Other,
    }
}

/// An open websocket to one ComfyUI server.
pub struct Socket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    /// Connects within `timeout`; the error says why not.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, String> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MESSAGE_BYTES_MAX))
            .max_frame_size(Some(MESSAGE_BYTES_MAX));
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), false);
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok((stream, _))) => Ok(Self { stream }),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the websocket did not open in time".to_owned()),
        }
    }

    /// The next event; `None` once the socket is closed or broken.
    pub async fn next(&mut self) -> Option<WsEvent> {
        loop {
            match self.stream.next().await? {
                Ok(Message::Text(text)) => return Some(parse(text.as_str())),
                Ok(Message::Close(_)) | Err(_) => return None,
                // Previews and pings: tungstenite answers pings itself.
                Ok(_) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_events_recorded_live() {
        // Shapes from transcript 1 and 2 (ComfyUI 0.26.0).
        let cases = [
            (
                r#"{"type": "execution_start", "data": {"prompt_id": "p", "timestamp": 1}}"#,
                WsEvent::ExecutionStart {
                    prompt_id: "p".into(),
                },
            ),
            (
                r#"{"type": "executing", "data": {"node": "3", "display_node": "3", "prompt_id": "p"}}"#,
                WsEvent::Executing {
                    prompt_id: "p".into(),
                    node: Some("3".into()),
                },
            ),
            (
                r#"{"type": "executing", "data": {"node": null, "prompt_id": "p"}}"#,
                WsEvent::Executing {
                    prompt_id: "p".into(),
                    node: None,
                },
            ),
            (
                r#"{"type": "progress", "data": {"value": 3, "max": 20, "prompt_id": "p", "node": "11"}}"#,
                WsEvent::Progress {
                    prompt_id: "p".into(),
                    node: Some("11".into()),
                    value: 3,
                    max: 20,
                },
            ),
            (
                r#"{"type": "executed", "data": {"node": "13", "display_node": "13", "output": {"images": []}, "prompt_id": "p"}}"#,
                WsEvent::Executed {
                    prompt_id: "p".into(),
                    node: "13".into(),
                    output: serde_json::json!({"images": []}),
                },
            ),
            (
                r#"{"type": "execution_success", "data": {"prompt_id": "p", "timestamp": 2}}"#,
                WsEvent::Success {
                    prompt_id: "p".into(),
                },
            ),
            (
                r#"{"type": "execution_error", "data": {"prompt_id": "p", "node_id": "1", "node_type": "CheckpointLoaderSimple", "executed": [], "exception_message": "Error while deserializing header: header too large", "exception_type": "safetensors_rust.SafetensorError", "traceback": ["  File x"], "current_inputs": {}, "current_outputs": {}, "timestamp": 3}}"#,
                WsEvent::Error {
                    prompt_id: "p".into(),
                    node_id: "1".into(),
                    node_type: "CheckpointLoaderSimple".into(),
                    exception_type: "safetensors_rust.SafetensorError".into(),
                    exception_message: "Error while deserializing header: header too large".into(),
                },
            ),
            (
                r#"{"type": "execution_interrupted", "data": {"prompt_id": "p", "node_id": "2", "node_type": "ColorTransfer", "executed": [], "timestamp": 4}}"#,
                WsEvent::Interrupted {
                    prompt_id: "p".into(),
                },
            ),
            (
                r#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "x"}}"#,
                WsEvent::Other,
            ),
            (
                r#"{"type": "progress_state", "data": {"prompt_id": "p", "nodes": {}}}"#,
                WsEvent::Other,
            ),
            ("not json", WsEvent::Other),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), want, "{text}");
        }
    }
}
