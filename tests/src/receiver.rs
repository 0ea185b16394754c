//! A webhook receiver for the end-to-end tests: a test double of the customer's HTTP
//! endpoint (an n8n Wait node, a Make scenario, a backend), which cannot be installed
//! here. It listens on a loopback port, answers each request with the next scripted
//! status (then 200), and records every request it got. It can also be taken down and
//! brought back, to play a receiver that is down for a while: while down it keeps its
//! port (so nothing else can take it) but drops every connection unanswered, which the
//! sender sees as a network failure.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// The status it was answered with.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A scripted answer: a status and extra headers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl From<u16> for Answer {
    fn from(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Shared {
    /// Scripted answers, each for the requests whose body contains the text (or all).
    script: Mutex<VecDeque<(Option<String>, Answer)>>,
    got: Mutex<Vec<Received>>,
}

pub struct Receiver {
    port: u16,
    shared: Arc<Shared>,
    /// Cleared on drop: the accept loop ends.
    running: Arc<AtomicBool>,
    /// While set, connections are dropped without an answer.
    down: Arc<AtomicBool>,
}

impl Receiver {
    /// Starts listening on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let r = Self {
            port,
            shared: Arc::new(Shared::default()),
            running: Arc::new(AtomicBool::new(true)),
            down: Arc::new(AtomicBool::new(false)),
        };
        let (shared, running, down) = (r.shared.clone(), r.running.clone(), r.down.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if !running.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                if down.load(Ordering::SeqCst) {
                    drop(stream);
                    continue;
                }
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &shared);
                });
            }
        });
        r
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next requests get these statuses, in order; after them, 200.
    pub fn script(&self, answers: impl IntoIterator<Item = impl Into<Answer>>) {
        let mut s = self.shared.script.lock().unwrap();
        s.extend(answers.into_iter().map(|a| (None, a.into())));
    }

    /// Like [`Receiver::script`], for requests whose body contains `text` only.
    pub fn script_for(&self, text: &str, answers: impl IntoIterator<Item = impl Into<Answer>>) {
        let mut s = self.shared.script.lock().unwrap();
        s.extend(
            answers
                .into_iter()
                .map(|a| (Some(text.to_owned()), a.into())),
        );
    }

    /// Takes the receiver down: every connection is dropped unanswered until
    /// [`Receiver::reopen`].
    pub fn close(&mut self) {
        self.down.store(true, Ordering::SeqCst);
    }

    /// Brings the receiver back.
    pub fn reopen(&mut self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
        // Wake the accept loop so it ends and releases the port.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn handle(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let answer = {
        let mut script = shared.script.lock().unwrap();
        let text = String::from_utf8_lossy(&body);
        let pos = script
            .iter()
            .position(|(f, _)| f.as_deref().is_none_or(|f| text.contains(f)));
        pos.and_then(|i| script.remove(i))
            .map(|(_, a)| a)
            .unwrap_or_else(|| 200.into())
    };
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {} X\r\ncontent-length: 2\r\ncontent-type: application/json\r\nconnection: close\r\n",
        answer.status
    );
    for (k, v) in &answer.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n{}");
    out.write_all(head.as_bytes())?;
    out.flush()?;
    shared.got.lock().unwrap().push(Received {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
        status: answer.status,
    });
    Ok(())
}
