//! One ComfyUI server's HTTP API (`reference`: ComfyUI 0.26.0, §1), each call with a
//! timeout and every answer read into a bounded buffer. The websocket is [`super::ws`].
//!
//! | call | route |
//! |---|---|
//! | [`ComfyClient::system_stats`] | `GET /system_stats` (version, VRAM) |
//! | [`ComfyClient::object_info`] | `GET /object_info/{class}` |
//! | [`ComfyClient::models`] | `GET /models/{folder}` |
//! | [`ComfyClient::upload_image`] | `POST /upload/image` (multipart) |
//! | [`ComfyClient::queue_prompt`] | `POST /prompt` with our `prompt_id` and `client_id` |
//! | [`ComfyClient::history`] | `GET /history/{prompt_id}` |
//! | [`ComfyClient::in_queue`] | `GET /queue` |
//! | [`ComfyClient::view`] | `GET /view?filename=&subfolder=&type=` |
//! | [`ComfyClient::cancel`] | `POST /api/jobs/{prompt_id}/cancel` |

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::template::Graph;

/// JSON answers are small (`/object_info` of one class is a few KiB; a history entry
/// holds the graph and its messages).
pub const JSON_BYTES_MAX: usize = 16 * 1024 * 1024;
/// The largest output file accepted from `/view`: a 10 s 1920×1088 MP4 is tens of MB.
pub const OUTPUT_BYTES_MAX: usize = 1024 * 1024 * 1024;

/// What went wrong talking to ComfyUI.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Not reachable, timed out, or the connection broke.
    #[error("cannot reach ComfyUI at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// `POST /prompt` refused the graph: ComfyUI's error and node errors. `queued`:
    /// a 200 with `node_errors`, where ComfyUI still runs the outputs that passed.
    #[error("ComfyUI refused the workflow: {why}")]
    Refused { why: String, queued: bool },
    /// Any other unexpected answer.
    #[error("ComfyUI answered {what}: {detail}")]
    Unexpected { what: String, detail: String },
}

impl ClientError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }
}

/// `GET /system_stats`, the parts Kiln reads.
#[derive(Debug, Clone, Deserialize)]
pub struct SystemStats {
    pub system: SystemInfo,
    #[serde(default)]
    pub devices: Vec<Device>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SystemInfo {
    #[serde(default)]
    pub comfyui_version: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Device {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub vram_total: u64,
    #[serde(default)]
    pub vram_free: u64,
}

/// Where `POST /upload/image` put a file; `LoadImage.image` takes [`Uploaded::load_name`].
#[derive(Debug, Clone, Deserialize)]
pub struct Uploaded {
    pub name: String,
    #[serde(default)]
    pub subfolder: String,
}

impl Uploaded {
    /// `subfolder/name`, as `LoadImage` takes it (just `name` without a subfolder).
    pub fn load_name(&self) -> String {
        if self.subfolder.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.subfolder, self.name)
        }
    }
}

/// A file an output node wrote, as history and `executed` list it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FileRef {
    pub filename: String,
    #[serde(default)]
    pub subfolder: String,
    #[serde(default = "output_type", rename = "type")]
    pub kind: String,
}

fn output_type() -> String {
    "output".to_owned()
}

/// A finished prompt's `/history` entry, the parts Kiln reads.
#[derive(Debug, Clone, Deserialize)]
pub struct HistoryEntry {
    #[serde(default)]
    pub outputs: serde_json::Map<String, Value>,
    #[serde(default)]
    pub status: HistoryStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryStatus {
    #[serde(default)]
    pub status_str: String,
    #[serde(default)]
    pub completed: bool,
    /// `[[type, data], …]`: the run's WS events, `execution_error` among them.
    #[serde(default)]
    pub messages: Vec<(String, Value)>,
}

impl HistoryEntry {
    /// The files `node` wrote (images and, in 0.26.0, videos too come under `images`).
    pub fn files_of(&self, node: &str) -> Vec<FileRef> {
        files_in(self.outputs.get(node))
    }
}

/// The files in an output dict (`{"images": [...], "animated": [...]}`).
pub fn files_in(output: Option<&Value>) -> Vec<FileRef> {
    let Some(output) = output else {
        return Vec::new();
    };
    ["images", "videos", "gifs"]
        .iter()
        .filter_map(|key| output.get(key))
        .filter_map(|list| serde_json::from_value::<Vec<FileRef>>(list.clone()).ok())
        .flatten()
        .collect()
}

/// A client of one ComfyUI server.
#[derive(Debug, Clone)]
pub struct ComfyClient {
    base: String,
    http: reqwest::Client,
    /// For every call but the file transfers.
    timeout: Duration,
    /// For uploads and `/view`, which move megabytes.
    transfer_timeout: Duration,
}

impl ComfyClient {
    /// `base` is `http://host:port`, without a trailing slash.
    pub fn new(base: &str, timeout: Duration, transfer_timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // Each call sets its own overall timeout.
            .build()
            .unwrap_or_default();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            timeout,
            transfer_timeout,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `ws://host:port/ws?clientId=…`.
    pub fn ws_url(&self, client_id: &str) -> String {
        let rest = self
            .base
            .strip_prefix("http://")
            .map(|r| format!("ws://{r}"))
            .or_else(|| {
                self.base
                    .strip_prefix("https://")
                    .map(|r| format!("wss://{r}"))
            })
            .unwrap_or_else(|| self.base.clone());
        format!("{rest}/ws?clientId={client_id}")
    }

    pub async fn system_stats(&self) -> Result<SystemStats, ClientError> {
        self.get_json("/system_stats").await
    }

    /// One node class's schema: `{}` when the server does not have the class.
    pub async fn object_info(&self, class: &str) -> Result<Value, ClientError> {
        let v: Value = self.get_json(&format!("/object_info/{class}")).await?;
        Ok(v.get(class).cloned().unwrap_or(Value::Null))
    }

    /// The files in `models/<folder>`.
    pub async fn models(&self, folder: &str) -> Result<Vec<String>, ClientError> {
        self.get_json(&format!("/models/{folder}")).await
    }

    /// Uploads a PNG as an input image, overwriting one of the same name.
    pub async fn upload_image(
        &self,
        name: &str,
        subfolder: &str,
        png: Vec<u8>,
    ) -> Result<Uploaded, ClientError> {
        let part = reqwest::multipart::Part::bytes(png)
            .file_name(name.to_owned())
            .mime_str("image/png")
            .map_err(|e| self.unexpected("/upload/image", e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .part("image", part)
            .text("type", "input")
            .text("subfolder", subfolder.to_owned())
            .text("overwrite", "true");
        let req = self
            .http
            .post(self.url("/upload/image"))
            .multipart(form)
            .timeout(self.transfer_timeout);
        let (status, body) = self.send(req, "/upload/image", JSON_BYTES_MAX).await?;
        if !status.is_success() {
            return Err(self.unexpected_status("/upload/image", status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| self.unexpected("/upload/image", e.to_string()))
    }

    /// Queues `graph` as `prompt_id` for the websocket of `client_id`. A 400, or a 200
    /// whose `node_errors` is not empty (some outputs dropped), is
    /// [`ClientError::Refused`] with a summary a person can act on.
    pub async fn queue_prompt(
        &self,
        graph: &Graph,
        prompt_id: &str,
        client_id: &str,
    ) -> Result<(), ClientError> {
        let body = json!({"prompt": graph, "client_id": client_id, "prompt_id": prompt_id});
        let req = self
            .http
            .post(self.url("/prompt"))
            .json(&body)
            .timeout(self.timeout);
        let (status, body) = self.send(req, "/prompt", JSON_BYTES_MAX).await?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match status {
            StatusCode::OK => {
                let errors = answer.get("node_errors");
                if errors
                    .and_then(Value::as_object)
                    .is_some_and(|e| !e.is_empty())
                {
                    return Err(ClientError::Refused {
                        why: describe_refusal(&answer),
                        queued: true,
                    });
                }
                Ok(())
            }
            StatusCode::BAD_REQUEST => Err(ClientError::Refused {
                why: describe_refusal(&answer),
                queued: false,
            }),
            _ => Err(self.unexpected_status("/prompt", status, &body)),
        }
    }

    /// The prompt's history entry, `None` while it is queued or running.
    pub async fn history(&self, prompt_id: &str) -> Result<Option<HistoryEntry>, ClientError> {
        let path = format!("/history/{prompt_id}");
        let v: Value = self.get_json(&path).await?;
        match v.get(prompt_id) {
            None => Ok(None),
            Some(entry) => serde_json::from_value(entry.clone())
                .map(Some)
                .map_err(|e| self.unexpected(&path, e.to_string())),
        }
    }

    /// Whether the prompt is running or waiting in the server's queue (`GET /queue`):
    /// one that is in neither the queue nor the history was lost (ComfyUI restarted).
    pub async fn in_queue(&self, prompt_id: &str) -> Result<bool, ClientError> {
        let queue: Value = self.get_json("/queue").await?;
        let listed = ["queue_running", "queue_pending"].iter().any(|key| {
            queue[key].as_array().is_some_and(|items| {
                items
                    .iter()
                    .any(|item| item.get(1).and_then(Value::as_str) == Some(prompt_id))
            })
        });
        Ok(listed)
    }

    /// An output file's bytes.
    pub async fn view(&self, file: &FileRef) -> Result<Vec<u8>, ClientError> {
        let req = self
            .http
            .get(self.url("/view"))
            .query(&[
                ("filename", file.filename.as_str()),
                ("subfolder", file.subfolder.as_str()),
                ("type", file.kind.as_str()),
            ])
            .timeout(self.transfer_timeout);
        let (status, body) = self.send(req, "/view", OUTPUT_BYTES_MAX).await?;
        if !status.is_success() {
            return Err(self.unexpected_status("/view", status, &body));
        }
        Ok(body)
    }

    /// Interrupts the prompt if it runs, removes it if it waits (idempotent).
    pub async fn cancel(&self, prompt_id: &str) -> Result<(), ClientError> {
        let path = format!("/api/jobs/{prompt_id}/cancel");
        let req = self.http.post(self.url(&path)).timeout(self.timeout);
        let (status, body) = self.send(req, &path, JSON_BYTES_MAX).await?;
        if !status.is_success() {
            return Err(self.unexpected_status(&path, status, &body));
        }
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let req = self.http.get(self.url(path)).timeout(self.timeout);
        let (status, body) = self.send(req, path, JSON_BYTES_MAX).await?;
        if !status.is_success() {
            return Err(self.unexpected_status(path, status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| self.unexpected(path, e.to_string()))
    }

    /// Sends `req` and reads at most `limit` bytes of the answer.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        path: &str,
        limit: usize,
    ) -> Result<(StatusCode, Vec<u8>), ClientError> {
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: self.base.clone(),
            reason: if e.is_timeout() {
                format!("{path} timed out")
            } else {
                format!("{path}: {}", error_chain(&e))
            },
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(self.unexpected(path, format!("an answer over {limit} bytes")));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(unreachable)?;
            if body.len().saturating_add(chunk.len()) > limit {
                return Err(self.unexpected(path, format!("an answer over {limit} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }

    fn unexpected(&self, path: &str, detail: String) -> ClientError {
        ClientError::Unexpected {
            what: format!("{path} unexpectedly"),
            detail,
        }
    }

    fn unexpected_status(&self, path: &str, status: StatusCode, body: &[u8]) -> ClientError {
        ClientError::Unexpected {
            what: format!("{} to {path}", status.as_u16()),
            detail: clip(&String::from_utf8_lossy(body), 300),
        }
    }
}

/// The error and its sources on one line (reqwest's own message hides the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A refusal of `POST /prompt` as one line: the error, then each node's errors, e.g.
/// "Prompt outputs failed validation; node 1 (UNETLoader): Value not in list: unet_name: 'x' not in []".
pub fn describe_refusal(answer: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(error) = answer.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| error.as_str())
            .unwrap_or("error");
        let details = error.get("details").and_then(Value::as_str).unwrap_or("");
        parts.push(if details.is_empty() {
            message.to_owned()
        } else {
            format!("{message}: {details}")
        });
    }
    if let Some(nodes) = answer.get("node_errors").and_then(Value::as_object) {
        for (node, e) in nodes {
            let class = e.get("class_type").and_then(Value::as_str).unwrap_or("?");
            let errors: Vec<String> = e
                .get("errors")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .map(|err| {
                            let message = err.get("message").and_then(Value::as_str).unwrap_or("");
                            let details = err.get("details").and_then(Value::as_str).unwrap_or("");
                            if details.is_empty() {
                                message.to_owned()
                            } else {
                                format!("{message}: {details}")
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            parts.push(format!("node {node} ({class}): {}", errors.join("; ")));
        }
    }
    if parts.is_empty() {
        parts.push("no reason given".to_owned());
    }
    clip(&parts.join("; "), 600)
}

/// `s` cut to at most `max` characters, on a character boundary, marked with `…`.
pub fn clip(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_one_line_naming_the_node() {
        // The 400 recorded live (transcript 1).
        let answer = json!({"error": {"type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
            "node_errors": {"1": {"errors": [{"type": "required_input_missing",
            "message": "Required input is missing", "details": "color",
            "extra_info": {"input_name": "color"}}], "dependent_outputs": ["3"],
            "class_type": "EmptyImage"}}});
        assert_eq!(
            describe_refusal(&answer),
            "Prompt outputs failed validation; node 1 (EmptyImage): Required input is missing: color"
        );
        let answer = json!({"error": {"type": "invalid_prompt_id", "message": "Invalid prompt_id", "details": "x"}});
        assert_eq!(describe_refusal(&answer), "Invalid prompt_id: x");
        assert_eq!(describe_refusal(&json!(null)), "no reason given");
    }

    #[test]
    fn output_files_come_from_images_videos_or_gifs() {
        let out = json!({"images": [{"filename": "vid_00001_.mp4", "subfolder": "probe", "type": "output"}],
                         "animated": [true]});
        assert_eq!(
            files_in(Some(&out)),
            vec![FileRef {
                filename: "vid_00001_.mp4".into(),
                subfolder: "probe".into(),
                kind: "output".into()
            }]
        );
        assert!(files_in(Some(&json!({"text": ["x"]}))).is_empty());
        assert!(files_in(None).is_empty());
    }

    #[test]
    fn clip_cuts_on_character_boundaries() {
        assert_eq!(clip("ééé", 2), "éé…");
        assert_eq!(clip(" ab ", 5), "ab");
    }

    #[test]
    fn websocket_url_follows_the_base() {
        let c = ComfyClient::new(
            "http://10.0.0.5:8188/",
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert_eq!(c.ws_url("abc"), "ws://10.0.0.5:8188/ws?clientId=abc");
    }
}
