//! The server's state, shared by the handlers, the websockets and the executor: the
//! queue, the running prompt, history, files, logs and sockets.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, Notify};

use super::{FakeOptions, PromptTiming, Script, MAX_FILES, MAX_HISTORY};

/// State shared by the handlers, the websockets and the executor.
pub(crate) struct Shared {
    pub(crate) opts: FakeOptions,
    /// The parsed snapshot, model lists still empty.
    pub(crate) snapshot: Map<String, Value>,
    pub(crate) inner: Mutex<Inner>,
    /// Wakes the executor when a prompt is queued.
    pub(crate) wake: Notify,
    pub(crate) down: AtomicBool,
    pub(crate) delay_ms: AtomicU64,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct LoggedUpload {
    pub(super) name: String,
    pub(super) subfolder: String,
    pub(super) kind: String,
    pub(super) bytes: Arc<Vec<u8>>,
}

/// `(type, subfolder, filename)`; the subfolder normalised, `""` at the top.
pub(crate) type FileKey = (String, String, String);

/// One prompt accepted into the queue.
pub(crate) struct Job {
    pub(crate) id: String,
    /// As received (`number` in the body, a float) or the server's counter.
    pub(crate) number: Value,
    pub(crate) graph: Map<String, Value>,
    /// The body's `extra_data` plus `client_id` and `create_time`.
    pub(crate) extra_data: Map<String, Value>,
    /// The outputs that passed validation.
    pub(crate) outputs: Vec<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) script: Script,
    pub(crate) create_time: u64,
}

impl Job {
    /// `[number, prompt_id, graph, extra_data, outputs_to_execute]`.
    pub(crate) fn queue_tuple(&self) -> Value {
        json!([
            self.number,
            self.id,
            self.graph,
            self.extra_data,
            self.outputs
        ])
    }
}

/// How a running prompt is interrupted.
#[derive(Default)]
pub(crate) struct Ctl {
    interrupted: AtomicBool,
    /// Set by [`FakeComfyUi::restart`](super::FakeComfyUi::restart): the run ends without a
    /// trace.
    forgotten: AtomicBool,
    pub(super) notify: Notify,
}

impl Ctl {
    pub(crate) fn forget(&self) {
        self.forgotten.store(true, Ordering::SeqCst);
        self.interrupt();
    }

    pub(crate) fn is_forgotten(&self) -> bool {
        self.forgotten.load(Ordering::SeqCst)
    }

    pub(crate) fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    pub(crate) fn is_set(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

pub(crate) struct Running {
    pub(crate) job: Arc<Job>,
    pub(crate) ctl: Arc<Ctl>,
    /// The node last announced with `executing` (re-sent to a reconnecting client).
    pub(crate) last_node: Option<String>,
    pub(crate) start_time: u64,
}

/// A prompt removed from the queue before it ran (for `/api/jobs`).
pub(crate) struct Dequeued {
    pub(crate) id: String,
    pub(crate) number: Value,
    pub(crate) create_time: u64,
}

#[derive(Debug, Clone)]
pub(crate) enum WsOut {
    Text(String),
    Binary(Vec<u8>),
    Close,
}

pub(crate) struct Socket {
    pub(super) client: String,
    pub(super) tx: mpsc::Sender<WsOut>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) scripts: VecDeque<Script>,
    pub(crate) models: BTreeMap<String, BTreeSet<String>>,
    pub(crate) prompt_log: VecDeque<Value>,
    pub(crate) upload_log: VecDeque<LoggedUpload>,
    pub(crate) cancel_log: VecDeque<String>,
    pub(crate) timings: VecDeque<PromptTiming>,
    /// The prompt that saved each output or temp file still kept.
    pub(crate) file_owner: HashMap<FileKey, String>,
    /// Inputs, outputs and temp files, with their insertion order (oldest dropped first).
    pub(crate) files: HashMap<FileKey, (u64, Arc<Vec<u8>>)>,
    pub(crate) file_seq: u64,
    /// The last counter used per `(subfolder, prefix)` of saved outputs.
    pub(crate) counters: HashMap<(String, String), u32>,
    pub(crate) pending: VecDeque<Arc<Job>>,
    pub(crate) running: Option<Running>,
    /// `(prompt_id, entry)`, oldest first.
    pub(crate) history: VecDeque<(String, Value)>,
    pub(crate) dequeued: VecDeque<Dequeued>,
    pub(crate) next_number: u64,
    pub(crate) ws_accepted: usize,
    pub(crate) sockets: HashMap<u64, Socket>,
    /// The socket that gets a client's events: the latest one with that `clientId`.
    pub(crate) active: HashMap<String, u64>,
    pub(crate) refuse_until: HashMap<String, Instant>,
    pub(crate) next_conn: u64,
}

pub(super) fn push_bounded<T>(q: &mut VecDeque<T>, item: T, max: usize) {
    q.push_back(item);
    while q.len() > max {
        q.pop_front();
    }
}

impl Inner {
    pub(crate) fn queue_remaining(&self) -> usize {
        self.pending.len() + usize::from(self.running.is_some())
    }

    /// Sends to the client's socket; with no client, to every socket when `or_all`.
    pub(crate) fn send(&self, client: Option<&str>, or_all: bool, msg: WsOut) {
        match client {
            Some(c) => {
                if let Some(s) = self.active.get(c).and_then(|conn| self.sockets.get(conn)) {
                    let _ = s.tx.try_send(msg);
                }
            }
            None if or_all => self.broadcast(msg),
            None => {}
        }
    }

    pub(crate) fn broadcast(&self, msg: WsOut) {
        for conn in self.active.values() {
            if let Some(s) = self.sockets.get(conn) {
                let _ = s.tx.try_send(msg.clone());
            }
        }
    }

    /// The `status` event ComfyUI broadcasts on every queue change.
    pub(crate) fn broadcast_status(&self) {
        let n = self.queue_remaining();
        self.broadcast(text_msg(
            "status",
            json!({"status": {"exec_info": {"queue_remaining": n}}}),
        ));
    }

    /// Closes every socket of this client (current and replaced).
    pub(crate) fn close_client_sockets(&mut self, client: &str) {
        let conns: Vec<u64> = self
            .sockets
            .iter()
            .filter(|(_, s)| s.client == client)
            .map(|(c, _)| *c)
            .collect();
        for c in conns {
            if let Some(s) = self.sockets.remove(&c) {
                let _ = s.tx.try_send(WsOut::Close);
            }
        }
        self.active.remove(client);
    }

    pub(crate) fn close_all_sockets(&mut self) {
        for (_, s) in self.sockets.drain() {
            let _ = s.tx.try_send(WsOut::Close);
        }
        self.active.clear();
    }

    pub(crate) fn put_file(&mut self, key: FileKey, bytes: Arc<Vec<u8>>) {
        self.file_owner.remove(&key);
        self.file_seq += 1;
        self.files.insert(key, (self.file_seq, bytes));
        while self.files.len() > MAX_FILES {
            let oldest = self
                .files
                .iter()
                .min_by_key(|(_, (seq, _))| *seq)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.files.remove(&k);
                    self.file_owner.remove(&k);
                }
                None => break,
            }
        }
    }

    /// A file saved by prompt `owner` (its `/view` is timed).
    pub(crate) fn put_output(&mut self, key: FileKey, bytes: Arc<Vec<u8>>, owner: &str) {
        self.put_file(key.clone(), bytes);
        // The newest file is never the one evicted.
        self.file_owner.insert(key, owner.to_string());
    }

    /// Records that the body of a `/view` of `key` was handed to the server.
    pub(crate) fn view_served(&mut self, key: &FileKey, at: Instant) {
        let Some(owner) = self.file_owner.get(key) else {
            return;
        };
        if let Some(t) = self
            .timings
            .iter_mut()
            .rev()
            .find(|t| t.prompt_id == *owner)
        {
            t.view_served = Some(at);
        }
    }

    pub(crate) fn push_history(&mut self, id: String, entry: Value) {
        self.history.retain(|(k, _)| *k != id);
        push_bounded(&mut self.history, (id, entry), MAX_HISTORY);
    }

    /// The next free counter for `prefix` in `subfolder` (1 first), as ComfyUI numbers
    /// saved files.
    pub(crate) fn next_counter(&mut self, subfolder: &str, prefix: &str) -> u32 {
        let c = self
            .counters
            .entry((subfolder.to_string(), prefix.to_string()))
            .or_insert(0);
        *c += 1;
        *c
    }
}

/// A websocket text frame `{"type", "data"}`.
pub(crate) fn text_msg(ty: &str, data: Value) -> WsOut {
    WsOut::Text(json!({"type": ty, "data": data}).to_string())
}
