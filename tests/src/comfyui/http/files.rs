//! Files: `POST /upload/image` and `GET /view`, and the subfolder and annotated-name
//! rules both follow.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use serde_json::json;

use super::{empty, ok};
use crate::comfyui::state::{push_bounded, FileKey, LoggedUpload, Shared};
use crate::comfyui::MAX_UPLOAD_LOG;

/// A subfolder relative to a type's folder, normalised (`""` at the top); `None` when it
/// would leave that folder.
pub(crate) fn normalize_subfolder(s: &str) -> Option<String> {
    if s.starts_with('/') || s.contains('\\') || s.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for p in s.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// `"sub/name.png [output]"` → `("output", "sub", "name.png")`, `default_kind` without an
/// annotation.
pub(crate) fn annotated_file(name: &str, default_kind: &str) -> Option<(String, String, String)> {
    let mut kind = default_kind;
    let mut name = name;
    for k in ["input", "output", "temp"] {
        if let Some(n) = name.strip_suffix(&format!(" [{k}]")) {
            kind = k;
            name = n;
        }
    }
    let full = normalize_subfolder(name)?;
    let (sub, file) = match full.rsplit_once('/') {
        Some((s, f)) => (s.to_string(), f.to_string()),
        None => (String::new(), full),
    };
    if file.is_empty() {
        return None;
    }
    Some((kind.to_string(), sub, file))
}

pub(super) async fn upload_image(State(sh): State<Arc<Shared>>, mut mp: Multipart) -> Response {
    let mut image: Option<(String, Vec<u8>)> = None;
    let (mut kind, mut subfolder, mut overwrite) = ("input".to_string(), String::new(), false);
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return empty(StatusCode::BAD_REQUEST),
        };
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "image" => {
                let file = field.file_name().unwrap_or("").to_string();
                match field.bytes().await {
                    Ok(b) => image = Some((file, b.to_vec())),
                    Err(_) => return empty(StatusCode::BAD_REQUEST),
                }
            }
            "type" | "subfolder" | "overwrite" => {
                let Ok(text) = field.text().await else {
                    return empty(StatusCode::BAD_REQUEST);
                };
                match name.as_str() {
                    "type" => kind = text,
                    "subfolder" => subfolder = text,
                    _ => overwrite = text == "true" || text == "1",
                }
            }
            _ => {}
        }
    }
    let Some((file, bytes)) = image else {
        return empty(StatusCode::BAD_REQUEST);
    };
    let file = file.rsplit(['/', '\\']).next().unwrap_or("").to_string();
    if file.is_empty() || file == "." || file == ".." {
        return empty(StatusCode::BAD_REQUEST);
    }
    if !["input", "temp", "output"].contains(&kind.as_str()) {
        return empty(StatusCode::BAD_REQUEST);
    }
    let Some(sub) = normalize_subfolder(&subfolder) else {
        return empty(StatusCode::BAD_REQUEST);
    };
    let bytes = Arc::new(bytes);
    let mut inner = sh.lock();
    let mut name = file.clone();
    if !overwrite {
        // Python's os.path.splitext: the extension starts at the last dot, not a leading one.
        let (stem, ext) = match file.rfind('.') {
            Some(i) if i > 0 => file.split_at(i),
            _ => (file.as_str(), ""),
        };
        let mut i = 1;
        while let Some((_, existing)) = inner.files.get(&(kind.clone(), sub.clone(), name.clone()))
        {
            if **existing == *bytes || i > 10_000 {
                break;
            }
            name = format!("{stem} ({i}){ext}");
            i += 1;
        }
    }
    inner.put_file((kind.clone(), sub.clone(), name.clone()), bytes.clone());
    push_bounded(
        &mut inner.upload_log,
        LoggedUpload {
            name: name.clone(),
            subfolder: sub.clone(),
            kind: kind.clone(),
            bytes,
        },
        MAX_UPLOAD_LOG,
    );
    ok(json!({"name": name, "subfolder": sub, "type": kind}))
}

fn content_type(file: &str) -> &'static str {
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

pub(super) async fn view(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(filename) = q.get("filename") else {
        return empty(StatusCode::NOT_FOUND);
    };
    let mut kind = q.get("type").map(String::as_str).unwrap_or("output");
    let mut filename = filename.as_str();
    for k in ["input", "output", "temp"] {
        if let Some(f) = filename.strip_suffix(&format!(" [{k}]")) {
            kind = k;
            filename = f;
        }
    }
    if filename.is_empty() || filename.starts_with('/') || filename.contains("..") {
        return empty(StatusCode::BAD_REQUEST);
    }
    if !["input", "output", "temp"].contains(&kind) {
        return empty(StatusCode::BAD_REQUEST);
    }
    let sub = q.get("subfolder").map(String::as_str).unwrap_or("");
    let Some(sub) = normalize_subfolder(sub) else {
        return empty(StatusCode::FORBIDDEN);
    };
    let full = if sub.is_empty() {
        filename.to_string()
    } else {
        format!("{sub}/{filename}")
    };
    let Some((_, sub, file)) = annotated_file(&full, kind) else {
        return empty(StatusCode::NOT_FOUND);
    };
    let key = (kind.to_string(), sub, file.clone());
    let bytes = {
        let inner = sh.lock();
        match inner.files.get(&key) {
            Some((_, b)) => b.clone(),
            None => return empty(StatusCode::NOT_FOUND),
        }
    };
    let body = TimedBody {
        bytes: Some(Bytes::from(bytes.to_vec())),
        served: Some((sh.clone(), key)),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type(&file).to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("filename=\"{}\"", file.replace('"', "")),
            ),
        ],
        Body::new(body),
    )
        .into_response()
}

/// A `/view` body (one frame) that records, in the prompt's
/// [`PromptTiming`](crate::comfyui::PromptTiming), the instant hyper polls its bytes to
/// write them: as close to "the answer was sent" as an axum handler can see (the socket
/// write follows in the same task, on loopback at once for the small files a benchmark
/// fetches).
struct TimedBody {
    bytes: Option<Bytes>,
    served: Option<(Arc<Shared>, FileKey)>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let Some(bytes) = this.bytes.take() else {
            return Poll::Ready(None);
        };
        if let Some((sh, key)) = this.served.take() {
            let at = Instant::now();
            sh.lock().view_served(&key, at);
        }
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subfolders_stay_inside() {
        assert_eq!(normalize_subfolder("").as_deref(), Some(""));
        assert_eq!(normalize_subfolder("a/./b/").as_deref(), Some("a/b"));
        assert_eq!(normalize_subfolder("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize_subfolder("../x"), None);
        assert_eq!(normalize_subfolder("/etc"), None);
    }

    #[test]
    fn annotated_names() {
        assert_eq!(
            annotated_file("probe/ref.png", "input"),
            Some(("input".into(), "probe".into(), "ref.png".into()))
        );
        assert_eq!(
            annotated_file("x.png [output]", "input"),
            Some(("output".into(), "".into(), "x.png".into()))
        );
    }
}
