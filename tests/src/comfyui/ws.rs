//! `GET /ws?clientId=`: ComfyUI's event socket.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::ids::uuid4;
use super::state::{text_msg, Shared, Socket, WsOut};
use super::{BODY_LIMIT, WS_QUEUE};

pub(crate) async fn route(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client = q
        .get("clientId")
        .filter(|c| !c.is_empty())
        .cloned()
        .unwrap_or_else(|| uuid4().replace('-', ""));
    {
        let mut inner = sh.lock();
        let now = Instant::now();
        inner.refuse_until.retain(|_, until| *until > now);
        if inner.refuse_until.contains_key(&client) {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    upgrade
        .max_message_size(BODY_LIMIT)
        .on_upgrade(move |socket| session(sh, socket, client))
}

/// The server's answer to a client's `feature_flags`.
fn server_features() -> Value {
    json!({
        "supports_preview_metadata": true,
        "max_upload_size": BODY_LIMIT,
        "extension": {"manager": {"supports_v4": true}},
        "node_replacements": true,
        "assets": false,
    })
}

async fn session(sh: Arc<Shared>, mut socket: WebSocket, client: String) {
    let (tx, mut rx) = mpsc::channel::<WsOut>(WS_QUEUE);
    let conn = {
        let mut inner = sh.lock();
        if sh.down.load(Ordering::SeqCst) {
            return;
        }
        inner.next_conn += 1;
        let conn = inner.next_conn;
        inner.ws_accepted += 1;
        // First the queue state with the session id, then, if this client's prompt is
        // running, the node it is at (ComfyUI sends only `node` here).
        let _ = tx.try_send(text_msg(
            "status",
            json!({"status": {"exec_info": {"queue_remaining": inner.queue_remaining()}}, "sid": client}),
        ));
        if let Some(r) = inner.running.as_ref() {
            if r.job.client_id.as_deref() == Some(client.as_str()) {
                if let Some(node) = &r.last_node {
                    let _ = tx.try_send(text_msg("executing", json!({"node": node})));
                }
            }
        }
        inner.sockets.insert(
            conn,
            Socket {
                client: client.clone(),
                tx,
            },
        );
        inner.active.insert(client.clone(), conn);
        conn
    };
    let mut first = true;
    loop {
        tokio::select! {
            out = rx.recv() => {
                let sent = match out {
                    Some(WsOut::Text(t)) => socket.send(Message::Text(t.into())).await,
                    Some(WsOut::Binary(b)) => socket.send(Message::Binary(b.into())).await,
                    Some(WsOut::Close) | None => {
                        let _ = socket.send(Message::Close(None)).await;
                        break;
                    }
                };
                if sent.is_err() {
                    break;
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    if first && v.get("type").and_then(Value::as_str) == Some("feature_flags") {
                        let reply = json!({"type": "feature_flags", "data": server_features()});
                        if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                    first = false;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => first = false,
            },
        }
    }
    let mut inner = sh.lock();
    inner.sockets.remove(&conn);
    if inner.active.get(&client) == Some(&conn) {
        inner.active.remove(&client);
    }
}
