//! The Kiln API over HTTP: JSON calls, uploads, a job's event stream, downloads.

use std::path::Path;
use std::time::Duration;

use futures_util::{Stream, StreamExt, TryStreamExt};
use reqwest::{RequestBuilder, Url};
use serde_json::Value;
use sse_stream::{Sse, SseByteStream};

use crate::config::Config;
use crate::error::{network, CliError};

/// How long an ordinary call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an upload (up to 20 MB) may take.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// Silence after which a connection counts as dead. Event streams send a `ping` every
/// 15 s, so a stream this quiet is broken (and is opened again).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Api {
    http: reqwest::Client,
    base: Url,
    key: Option<String>,
}

impl Api {
    pub fn new(config: &Config) -> Result<Api, CliError> {
        let base = Url::parse(&config.base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "the base URL {:?} is not an http:// or https:// URL",
                    config.base_url
                ))
            })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("kiln-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| CliError::Other(format!("cannot set up HTTP: {e}")))?;
        Ok(Api {
            http,
            base,
            key: config.api_key.clone(),
        })
    }

    /// The URL of `segments` under the base URL, each segment escaped.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn key(&self) -> Result<&str, CliError> {
        self.key.as_deref().ok_or_else(|| {
            CliError::Usage(
                "no API key: set KILN_API_KEY, put api_key in ~/.config/kiln/config.toml, or pass --api-key"
                    .to_owned(),
            )
        })
    }

    fn authed(&self, req: RequestBuilder) -> Result<RequestBuilder, CliError> {
        Ok(req.bearer_auth(self.key()?))
    }

    pub async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, CliError> {
        let req = self.http.get(self.url(segments)).query(query);
        self.call(self.authed(req)?.timeout(CALL_TIMEOUT)).await
    }

    pub async fn post(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let mut req = self.http.post(self.url(segments)).query(query);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.call(self.authed(req)?.timeout(CALL_TIMEOUT)).await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<Value, CliError> {
        let req = self.http.delete(self.url(segments));
        self.call(self.authed(req)?.timeout(CALL_TIMEOUT)).await
    }

    /// `POST /v1/uploads` with the file as the multipart field `file`.
    pub async fn upload(&self, path: &Path) -> Result<Value, CliError> {
        let bytes = std::fs::read(path)
            .map_err(|e| CliError::Other(format!("cannot read {}: {e}", path.display())))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload".to_owned());
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name),
        );
        let req = self.http.post(self.url(&["v1", "uploads"])).multipart(form);
        self.call(self.authed(req)?.timeout(UPLOAD_TIMEOUT)).await
    }

    /// Sends a request and reads its JSON answer; a non-2xx answer is the API's error.
    async fn call(&self, req: RequestBuilder) -> Result<Value, CliError> {
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| network("reading the answer", &e))?;
        if !status.is_success() {
            return Err(CliError::from_response(status.as_u16(), &text));
        }
        serde_json::from_str(&text).map_err(|_| CliError::Http {
            status: status.as_u16(),
            body: format!("not JSON: {}", text.chars().take(200).collect::<String>()),
        })
    }

    fn unreachable(&self, e: &reqwest::Error) -> CliError {
        network(
            &format!(
                "cannot reach Kiln at {}",
                self.base.as_str().trim_end_matches('/')
            ),
            e,
        )
    }

    /// Opens `GET /v1/jobs/{id}/stream` (the key in the `Authorization` header) and
    /// answers its events.
    pub async fn job_events(
        &self,
        job_id: &str,
    ) -> Result<impl Stream<Item = Result<Sse, sse_stream::Error>> + Unpin, CliError> {
        let req = self
            .http
            .get(self.url(&["v1", "jobs", job_id, "stream"]))
            .header("Accept", "text/event-stream");
        let resp = self
            .authed(req)?
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(CliError::from_response(status.as_u16(), &text));
        }
        Ok(SseByteStream::new(resp.bytes_stream()).boxed())
    }

    /// Downloads `url` (an output: no key needed) to `dest`, through a `.part` file so
    /// an interrupted download leaves no truncated file under the real name. Answers
    /// the bytes written.
    pub async fn download(&self, url: &str, dest: &Path) -> Result<u64, CliError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| network(&format!("downloading {url}"), &e))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(CliError::from_response(status.as_u16(), &text));
        }
        let part = dest.with_extension(
            dest.extension()
                .map(|e| format!("{}.part", e.to_string_lossy()))
                .unwrap_or_else(|| "part".to_owned()),
        );
        let write_err =
            |e: std::io::Error| CliError::Other(format!("cannot write {}: {e}", part.display()));
        let mut file = std::fs::File::create(&part).map_err(write_err)?;
        let mut written = 0u64;
        let mut body = resp
            .bytes_stream()
            .map_err(|e| network(&format!("downloading {url}"), &e));
        let result: Result<(), CliError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                std::io::Write::write_all(&mut file, &chunk).map_err(write_err)?;
                written += chunk.len() as u64;
            }
            file.sync_all().map_err(write_err)
        }
        .await;
        if let Err(e) = result {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        std::fs::rename(&part, dest)
            .map_err(|e| CliError::Other(format!("cannot write {}: {e}", dest.display())))?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(base: &str) -> Result<Api, CliError> {
        Api::new(&Config::new(base, None))
    }

    #[test]
    fn urls_keep_the_base_path_and_escape_segments() {
        let a = api("https://kiln.example").unwrap();
        assert_eq!(
            a.url(&["v1", "credits"]).as_str(),
            "https://kiln.example/v1/credits"
        );
        let a = api("https://kiln.example/api/").unwrap();
        assert_eq!(
            a.url(&["v1", "jobs", "job_1/../x?y"]).as_str(),
            "https://kiln.example/api/v1/jobs/job_1%2F..%2Fx%3Fy"
        );
    }

    #[test]
    fn bad_base_urls_are_usage_errors() {
        for bad in ["127.0.0.1:8787", "ftp://kiln.example", "not a url"] {
            assert!(matches!(api(bad), Err(CliError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn a_missing_key_says_where_to_put_one() {
        let e = api("http://127.0.0.1:8787").unwrap().key().unwrap_err();
        assert!(e.to_string().contains("KILN_API_KEY"));
        assert_eq!(e.exit_code(), 2);
    }
}
