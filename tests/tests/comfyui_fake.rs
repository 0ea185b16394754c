//! The ComfyUI stand-in (`kiln_tests::comfyui`) against the recorded 0.26.0 protocol
//! (`shared/reference/comfyui/`): real HTTP and a real websocket client, the example graphs
//! as fixtures. No stack is started.

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_tests::comfyui::{is_canonical_uuid, FakeComfyUi, FakeOptions, Script};
use reqwest::blocking::multipart::{Form, Part};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

const FLUX_T2I: &str = include_str!("../fixtures/comfyui/flux2_t2i.json");
const FLUX_EDIT: &str = include_str!("../fixtures/comfyui/flux2_edit_2refs.json");
const LTX_T2V_FAST: &str = include_str!("../fixtures/comfyui/ltx23_t2v_one_stage_distilled.json");
const EXAMPLES: &[&str] = &[
    FLUX_T2I,
    FLUX_EDIT,
    include_str!("../fixtures/comfyui/flux2_img2img_denoise.json"),
    include_str!("../fixtures/comfyui/ltx23_i2v_one_stage_distilled.json"),
    include_str!("../fixtures/comfyui/ltx23_i2v_two_stage.json"),
    LTX_T2V_FAST,
    include_str!("../fixtures/comfyui/ltx23_t2v_two_stage.json"),
];
const LTX_FAST_CKPT: &str = "ltx-2.3-22b-distilled-1.1.safetensors";

fn start() -> FakeComfyUi {
    FakeComfyUi::start(FakeOptions {
        step_ms: 1,
        ..FakeOptions::default()
    })
    .expect("starting the fake ComfyUI")
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn uuid() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `flux2_t2i` at `w`×`h` with that seed.
fn flux(w: u32, h: u32, seed: u64) -> Value {
    let mut g: Value = serde_json::from_str(FLUX_T2I).unwrap();
    for node in ["6", "7"] {
        g[node]["inputs"]["width"] = json!(w);
        g[node]["inputs"]["height"] = json!(h);
    }
    g["8"]["inputs"]["noise_seed"] = json!(seed);
    g
}

/// `ltx23_t2v_one_stage_distilled`, small: 256×160, 9 frames, Kiln's fast checkpoint.
fn ltx_small() -> Value {
    let mut g: Value = serde_json::from_str(LTX_T2V_FAST).unwrap();
    for node in ["1", "2", "3"] {
        g[node]["inputs"]["ckpt_name"] = json!(LTX_FAST_CKPT);
    }
    g["9"]["inputs"]["width"] = json!(256);
    g["9"]["inputs"]["height"] = json!(160);
    g["9"]["inputs"]["length"] = json!(9);
    g["10"]["inputs"]["frames_number"] = json!(9);
    g
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

fn reply(r: reqwest::blocking::Response) -> Reply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Reply {
        status,
        headers,
        text: r.text().unwrap(),
    }
}

fn get(fake: &FakeComfyUi, path: &str) -> Reply {
    reply(
        client()
            .get(format!("{}{path}", fake.url()))
            .send()
            .unwrap(),
    )
}

fn post(fake: &FakeComfyUi, path: &str, body: &Value) -> Reply {
    reply(
        client()
            .post(format!("{}{path}", fake.url()))
            .json(body)
            .send()
            .unwrap(),
    )
}

/// Queues `graph` for `client_id`; the prompt id and the reply.
fn queue(fake: &FakeComfyUi, graph: &Value, client_id: &str) -> (String, Reply) {
    let pid = uuid();
    let r = post(
        fake,
        "/prompt",
        &json!({"prompt": graph, "client_id": client_id, "prompt_id": pid}),
    );
    (pid, r)
}

fn upload_png(fake: &FakeComfyUi, name: &str, w: u32, h: u32, extra: &[(&str, &str)]) -> Value {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w, h);
        enc.set_color(png::ColorType::Rgb);
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(&vec![(w % 251) as u8; (w * h * 3) as usize])
            .unwrap();
    }
    let mut form = Form::new().part("image", Part::bytes(bytes).file_name(name.to_owned()));
    for (k, v) in extra {
        form = form.text(k.to_string(), v.to_string());
    }
    let r = reply(
        client()
            .post(format!("{}/upload/image", fake.url()))
            .multipart(form)
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

enum Frame {
    Text(Value),
    Binary(Vec<u8>),
    Closed,
}

/// A blocking websocket client.
struct Ws(WebSocket<TcpStream>);

impl Ws {
    fn open(fake: &FakeComfyUi, client_id: &str) -> Result<Ws, String> {
        let stream = TcpStream::connect(("127.0.0.1", fake.port())).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (ws, _) = tungstenite::client(fake.ws_url(client_id), stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r)) => {
                format!("HTTP {}", r.status().as_u16())
            }
            other => other.to_string(),
        })?;
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        Ok(Ws(ws))
    }

    /// The next frame within `timeout`, or `None`.
    fn next(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.0.read() {
                Ok(Message::Text(t)) => {
                    return Some(Frame::Text(serde_json::from_str(&t).unwrap()))
                }
                Ok(Message::Binary(b)) => return Some(Frame::Binary(b.to_vec())),
                Ok(Message::Close(_)) => return Some(Frame::Closed),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return None;
                    }
                }
                Err(_) => return Some(Frame::Closed),
            }
        }
    }

    fn text(&mut self) -> Value {
        match self.next(Duration::from_secs(5)) {
            Some(Frame::Text(v)) => v,
            Some(Frame::Binary(_)) => panic!("a binary frame where text was expected"),
            Some(Frame::Closed) => panic!("the socket closed"),
            None => panic!("no message within 5 s"),
        }
    }

    /// Text messages until `executing {node: null}` for `pid`, and the binary frames.
    fn until_done(&mut self, pid: &str) -> (Vec<Value>, Vec<Vec<u8>>) {
        let (mut texts, mut bins) = (Vec::new(), Vec::new());
        loop {
            match self.next(Duration::from_secs(20)) {
                Some(Frame::Text(v)) => {
                    let done = v["type"] == "executing"
                        && v["data"]["node"].is_null()
                        && v["data"]["prompt_id"] == pid;
                    texts.push(v);
                    if done {
                        return (texts, bins);
                    }
                }
                Some(Frame::Binary(b)) => bins.push(b),
                Some(Frame::Closed) => panic!("the socket closed; got {texts:?}"),
                None => panic!("the run did not end; got {texts:?}"),
            }
        }
    }

    /// Text messages until none comes for `quiet`.
    fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(f) = self.next(quiet) {
            match f {
                Frame::Text(v) => out.push(v),
                Frame::Binary(_) => {}
                Frame::Closed => break,
            }
        }
        out
    }
}

fn types(msgs: &[Value]) -> Vec<&str> {
    msgs.iter().map(|m| m["type"].as_str().unwrap()).collect()
}

fn history(fake: &FakeComfyUi, pid: &str) -> Value {
    let r = get(fake, &format!("/history/{pid}"));
    assert_eq!(r.status, 200);
    r.json()
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    (reader.info().width, reader.info().height)
}

#[test]
fn a_clean_flux_run_streams_the_live_order_and_saves_a_png() {
    let fake = start();
    let cid = uuid();
    let mut ws = Ws::open(&fake, &cid).unwrap();
    let first = ws.text();
    assert_eq!(first["type"], "status");
    assert_eq!(first["data"]["sid"], cid.as_str());
    assert_eq!(first["data"]["status"]["exec_info"]["queue_remaining"], 0);
    // A first client message `feature_flags` is answered in kind.
    ws.0.send(Message::Text(
        json!({"type": "feature_flags", "data": {"supports_preview_metadata": false}})
            .to_string()
            .into(),
    ))
    .unwrap();
    let flags = ws.text();
    assert_eq!(flags["type"], "feature_flags");
    assert_eq!(flags["data"]["supports_preview_metadata"], true);
    // Another client's socket sees the queue, never this prompt's events.
    let mut other = Ws::open(&fake, &uuid()).unwrap();

    let (pid, r) = queue(&fake, &flux(320, 192, 7), &cid);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"prompt_id": pid, "number": 0, "node_errors": {}})
    );
    let (msgs, bins) = ws.until_done(&pid);

    // The transcripts' order: start, cached, per node progress_state + executing, the
    // sampler's progress, executed for the output, then success, status, executing null.
    let events: Vec<&str> = types(&msgs)
        .into_iter()
        .filter(|t| *t != "progress_state" && *t != "progress")
        .collect();
    let mut expected = vec!["status", "status", "execution_start", "execution_cached"];
    expected.extend(std::iter::repeat_n("executing", 13));
    expected.extend(["executed", "execution_success", "status", "executing"]);
    assert_eq!(events, expected, "{msgs:#?}");
    assert_eq!(msgs[3]["data"]["nodes"], json!([]));
    assert_eq!(msgs[3]["data"]["prompt_id"], pid.as_str());
    let executing: Vec<&str> = msgs
        .iter()
        .filter(|m| m["type"] == "executing" && !m["data"]["node"].is_null())
        .map(|m| m["data"]["node"].as_str().unwrap())
        .collect();
    // Every node after its inputs.
    let pos = |n: &str| executing.iter().position(|x| *x == n).unwrap();
    for (before, after) in [
        ("1", "10"),
        ("10", "11"),
        ("7", "11"),
        ("11", "12"),
        ("12", "13"),
    ] {
        assert!(pos(before) < pos(after), "{executing:?}");
    }
    let progress: Vec<(u64, u64)> = msgs
        .iter()
        .filter(|m| m["type"] == "progress")
        .map(|m| {
            assert_eq!(m["data"]["node"], "11");
            assert_eq!(m["data"]["prompt_id"], pid.as_str());
            (
                m["data"]["value"].as_u64().unwrap(),
                m["data"]["max"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(progress, (1..=20).map(|v| (v, 20)).collect::<Vec<_>>());
    // Each progress comes right after a progress_state.
    for (i, m) in msgs.iter().enumerate() {
        if m["type"] == "progress" {
            assert_eq!(msgs[i - 1]["type"], "progress_state");
        }
    }
    let executed = msgs.iter().find(|m| m["type"] == "executed").unwrap();
    let output =
        json!({"images": [{"filename": "t2i_00001_.png", "subfolder": "flux2", "type": "output"}]});
    assert_eq!(
        executed["data"],
        json!({"node": "13", "display_node": "13", "output": output, "prompt_id": pid})
    );
    assert_eq!(
        msgs.last().unwrap()["data"],
        json!({"node": null, "prompt_id": pid})
    );
    // Preview frames: type 1, PNG.
    assert!(!bins.is_empty());
    for b in &bins {
        assert_eq!(&b[..8], &[0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(&b[8..12], b"\x89PNG");
    }

    let h = history(&fake, &pid);
    let entry = &h[&pid];
    assert_eq!(entry["prompt"][0], 0);
    assert_eq!(entry["prompt"][1], pid.as_str());
    assert_eq!(entry["prompt"][2], flux(320, 192, 7));
    assert_eq!(entry["prompt"][3]["client_id"], cid.as_str());
    assert!(entry["prompt"][3]["create_time"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(entry["prompt"][4], json!(["13"]));
    assert_eq!(entry["outputs"], json!({"13": output}));
    assert_eq!(entry["status"]["status_str"], "success");
    assert_eq!(entry["status"]["completed"], true);
    assert_eq!(
        types(
            &entry["status"]["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| json!({"type": m[0]}))
                .collect::<Vec<_>>()
        ),
        ["execution_start", "execution_cached", "execution_success"]
    );
    assert_eq!(
        entry["meta"]["13"],
        json!({"node_id": "13", "display_node": "13", "parent_node": null, "real_node_id": "13"})
    );
    // /api/... serves the same.
    assert_eq!(get(&fake, &format!("/api/history/{pid}")).json(), h);
    let latest = get(&fake, "/history?max_items=1").json();
    assert_eq!(latest.as_object().unwrap().len(), 1);
    assert!(latest.get(&pid).is_some());

    let view = get(
        &fake,
        "/api/view?filename=t2i_00001_.png&subfolder=flux2&type=output",
    );
    assert_eq!(view.status, 200);
    assert_eq!(view.headers["content-type"], "image/png");
    assert_eq!(
        view.headers["content-disposition"],
        "filename=\"t2i_00001_.png\""
    );
    let bytes = client()
        .get(format!(
            "{}/view?filename=t2i_00001_.png&subfolder=flux2&type=output",
            fake.url()
        ))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(png_size(&bytes), (320, 192));

    // Another seed: another picture, the next counter.
    let (pid2, _) = queue(&fake, &flux(320, 192, 8), &cid);
    ws.until_done(&pid2);
    let out2 = &history(&fake, &pid2)[&pid2]["outputs"]["13"]["images"][0];
    assert_eq!(out2["filename"], "t2i_00002_.png");
    let bytes2 = client()
        .get(format!(
            "{}/view?filename=t2i_00002_.png&subfolder=flux2",
            fake.url()
        ))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_ne!(bytes, bytes2);

    let others = other.drain(Duration::from_millis(100));
    assert!(!others.is_empty());
    assert!(types(&others).iter().all(|t| *t == "status"), "{others:?}");
    assert_eq!(fake.ws_connections(), 2);
    assert_eq!(fake.prompts().len(), 2);
}

#[test]
fn malformed_prompts_are_refused_as_comfyui_refuses_them() {
    let fake = start();
    let cid = uuid();
    let mut ws = Ws::open(&fake, &cid).unwrap();
    ws.text();
    let graph = flux(64, 64, 1);
    let err = |r: &Reply| r.json()["error"]["type"].as_str().unwrap().to_string();

    for bad in [
        "A2910FC5-E591-4668-A196-997A8C2ACEDB",
        "a2910fc5e5914668a196997a8c2acedb",
        "x",
    ] {
        let r = post(
            &fake,
            "/prompt",
            &json!({"prompt": graph, "client_id": cid, "prompt_id": bad}),
        );
        assert_eq!(r.status, 400);
        assert_eq!(err(&r), "invalid_prompt_id");
    }
    let r = post(&fake, "/prompt", &json!({"client_id": cid}));
    assert_eq!((r.status, err(&r)), (400, "no_prompt".into()));

    let mut unknown = graph.clone();
    unknown["5"]["class_type"] = json!("NoSuchNode");
    let (_, r) = queue(&fake, &unknown, &cid);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": {"type": "missing_node_type",
            "message": "Node 'NoSuchNode' not found. The custom node may not be installed.",
            "details": "Node ID '#5'",
            "extra_info": {"node_id": "5", "class_type": "NoSuchNode", "node_title": "NoSuchNode"}},
            "node_errors": {}})
    );

    let mut no_output = graph.clone();
    no_output.as_object_mut().unwrap().remove("13");
    let (_, r) = queue(&fake, &no_output, &cid);
    assert_eq!((r.status, err(&r)), (400, "prompt_no_outputs".into()));

    // Per node: a missing input, a link to a missing node, a bad number; only nodes
    // upstream of an output count.
    let mut broken = graph.clone();
    broken["6"]["inputs"]
        .as_object_mut()
        .unwrap()
        .remove("height");
    broken["12"]["inputs"]["vae"] = json!(["99", 0]);
    broken["7"]["inputs"]["steps"] = json!("abc");
    broken["50"] = json!({"class_type": "EmptyImage", "inputs": {"width": -5}});
    let (_, r) = queue(&fake, &broken, &cid);
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["error"]["type"], "prompt_outputs_failed_validation");
    let ne = &body["node_errors"];
    assert_eq!(
        ne["6"]["errors"],
        json!([{"type": "required_input_missing", "message": "Required input is missing",
                "details": "height", "extra_info": {"input_name": "height"}}])
    );
    assert_eq!(ne["6"]["dependent_outputs"], json!(["13"]));
    assert_eq!(ne["6"]["class_type"], "EmptyFlux2LatentImage");
    assert_eq!(ne["12"]["errors"][0]["type"], "bad_linked_input");
    assert_eq!(ne["7"]["errors"][0]["type"], "invalid_input_type");
    assert!(ne.get("50").is_none());

    // A model that is not there.
    fake.remove_model("diffusion_models", "flux2_dev_fp8mixed.safetensors");
    assert_eq!(get(&fake, "/models/diffusion_models").json(), json!([]));
    let info = get(&fake, "/object_info/UNETLoader").json();
    assert_eq!(
        info["UNETLoader"]["input"]["required"]["unet_name"][0],
        json!([])
    );
    let (_, r) = queue(&fake, &graph, &cid);
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["error"]["type"], "prompt_outputs_failed_validation");
    let e = &body["node_errors"]["1"];
    assert_eq!(e["class_type"], "UNETLoader");
    assert_eq!(e["dependent_outputs"], json!(["13"]));
    assert_eq!(e["errors"][0]["type"], "value_not_in_list");
    assert_eq!(
        e["errors"][0]["details"],
        "unet_name: 'flux2_dev_fp8mixed.safetensors' not in []"
    );
    assert_eq!(
        e["errors"][0]["extra_info"]["received_value"],
        "flux2_dev_fp8mixed.safetensors"
    );
    fake.add_model("diffusion_models", "flux2_dev_fp8mixed.safetensors");

    // LoadImage checks its file itself.
    let mut edit: Value = serde_json::from_str(FLUX_EDIT).unwrap();
    edit["30"]["inputs"]["image"] = json!("ref_a.png");
    let (_, r) = queue(&fake, &edit, &cid);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["node_errors"]["20"]["errors"],
        json!([{"type": "custom_validation_failed", "message": "Custom validation failed for node",
                "details": "image - Invalid image file: ref_a.png", "extra_info": {"input_name": "image"}}])
    );

    // None of it reached the websocket, and nothing ran.
    assert_eq!(ws.drain(Duration::from_millis(100)), Vec::<Value>::new());
    assert!(fake.is_idle());
    assert_eq!(
        get(&fake, "/queue").json(),
        json!({"queue_running": [], "queue_pending": []})
    );
    assert_eq!(fake.prompts().len(), 9);
}

#[test]
fn scripted_node_errors_run_and_scripted_invalid_refuses() {
    let fake = start();
    let cid = uuid();
    fake.push_script(Script::NodeErrors);
    fake.push_script(Script::Invalid);
    let (pid, r) = queue(&fake, &flux(64, 64, 1), &cid);
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["prompt_id"], pid.as_str());
    assert_eq!(
        body["node_errors"]["1"]["errors"][0]["type"],
        "value_not_in_list"
    );
    assert!(fake.wait_idle(Duration::from_secs(10)));
    assert_eq!(
        history(&fake, &pid)[&pid]["status"]["status_str"],
        "success"
    );

    let (pid2, r) = queue(&fake, &ltx_small(), &cid);
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["error"]["type"], "prompt_outputs_failed_validation");
    let e = &body["node_errors"]["1"];
    assert_eq!(e["class_type"], "CheckpointLoaderSimple");
    assert_eq!(e["errors"][0]["type"], "value_not_in_list");
    assert_eq!(e["errors"][0]["extra_info"]["input_name"], "ckpt_name");
    assert_eq!(history(&fake, &pid2), json!({}));
    // Then clean again.
    let (_, r) = queue(&fake, &flux(64, 64, 1), &cid);
    assert_eq!(r.json()["node_errors"], json!({}));
    assert!(fake.wait_idle(Duration::from_secs(10)));
}

#[test]
fn an_execution_error_stops_at_the_sampler() {
    let fake = start();
    let cid = uuid();
    let mut ws = Ws::open(&fake, &cid).unwrap();
    fake.push_script(Script::ExecutionError { after_steps: 3 });
    let (pid, r) = queue(&fake, &flux(64, 64, 1), &cid);
    assert_eq!(r.status, 200);
    let (msgs, _) = ws.until_done(&pid);
    let progress: Vec<u64> = msgs
        .iter()
        .filter(|m| m["type"] == "progress")
        .map(|m| m["data"]["value"].as_u64().unwrap())
        .collect();
    assert_eq!(progress, [1, 2, 3]);
    let tail = types(&msgs[msgs.len() - 3..]).join(",");
    assert_eq!(tail, "execution_error,status,executing");
    let err = &msgs[msgs.len() - 3]["data"];
    assert_eq!(err["prompt_id"], pid.as_str());
    assert_eq!(err["node_id"], "11");
    assert_eq!(err["node_type"], "SamplerCustomAdvanced");
    assert_eq!(err["exception_type"], "torch.OutOfMemoryError");
    assert!(err["exception_message"]
        .as_str()
        .unwrap()
        .starts_with("CUDA out of memory. Tried to allocate"));
    assert!(err["traceback"][0]
        .as_str()
        .unwrap()
        .starts_with("  File \""));
    assert!(!types(&msgs).contains(&"executed"));
    let executed = err["executed"].as_array().unwrap();
    assert!(executed.contains(&json!("10")) && !executed.contains(&json!("11")));

    let h = history(&fake, &pid);
    let status = &h[&pid]["status"];
    assert_eq!(status["status_str"], "error");
    assert_eq!(status["completed"], false);
    assert_eq!(status["messages"][2][0], "execution_error");
    assert_eq!(status["messages"][2][1], *err);
    assert_eq!(h[&pid]["outputs"], json!({}));
    let job = get(&fake, &format!("/api/jobs/{pid}")).json();
    assert_eq!(job["status"], "failed");
}

#[test]
fn a_run_waits_for_its_cancel() {
    let fake = start();
    let cid = uuid();
    let mut ws = Ws::open(&fake, &cid).unwrap();
    fake.push_script(Script::UntilCancelled);
    let (pid, r) = queue(&fake, &flux(64, 64, 1), &cid);
    assert_eq!(r.status, 200);
    let (pending, r) = queue(&fake, &flux(64, 64, 2), &cid);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["number"], 1);
    // Wait for step 1.
    loop {
        let m = ws.text();
        if m["type"] == "progress" {
            assert_eq!(m["data"]["value"], 1);
            break;
        }
    }
    assert_eq!(history(&fake, &pid), json!({}));
    assert_eq!(
        get(&fake, "/prompt").json(),
        json!({"exec_info": {"queue_remaining": 2}})
    );
    let q = get(&fake, "/queue").json();
    assert_eq!(q["queue_running"][0][1], pid.as_str());
    assert_eq!(q["queue_pending"][0][1], pending.as_str());
    assert_eq!(
        get(&fake, &format!("/api/jobs/{pid}")).json()["status"],
        "in_progress"
    );

    // A pending prompt is dequeued, and never gets history.
    let r = post(&fake, &format!("/api/jobs/{pending}/cancel"), &json!({}));
    assert_eq!(r.json(), json!({"cancelled": true}));
    // Interrupting another id does nothing.
    let r = post(&fake, "/interrupt", &json!({"prompt_id": pending}));
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    assert!(ws
        .drain(Duration::from_millis(50))
        .iter()
        .all(|m| m["type"] == "status"));
    let r = post(&fake, &format!("/api/jobs/{pid}/cancel"), &json!({}));
    assert_eq!(r.json(), json!({"cancelled": true}));
    let (msgs, _) = ws.until_done(&pid);
    assert_eq!(
        types(&msgs[msgs.len() - 3..]),
        ["execution_interrupted", "status", "executing"]
    );
    let int = &msgs[msgs.len() - 3]["data"];
    assert_eq!(int["prompt_id"], pid.as_str());
    assert_eq!(int["node_id"], "11");
    assert_eq!(int["node_type"], "SamplerCustomAdvanced");
    let h = history(&fake, &pid);
    assert_eq!(h[&pid]["status"]["status_str"], "error");
    assert_eq!(h[&pid]["status"]["completed"], false);
    assert_eq!(h[&pid]["status"]["messages"][2][0], "execution_interrupted");
    assert!(fake.wait_idle(Duration::from_secs(5)));
    assert_eq!(history(&fake, &pending), json!({}));
    let r = post(&fake, &format!("/api/jobs/{pid}/cancel"), &json!({}));
    assert_eq!(r.json(), json!({"cancelled": false}));
    assert_eq!(
        get(&fake, &format!("/api/jobs/{pid}")).json()["status"],
        "cancelled"
    );

    // The deprecated /interrupt works too: 200 with an empty body.
    fake.push_script(Script::UntilCancelled);
    let (pid3, _) = queue(&fake, &flux(64, 64, 3), &cid);
    loop {
        if ws.text()["type"] == "progress" {
            break;
        }
    }
    let r = post(&fake, "/api/interrupt", &json!({"prompt_id": pid3}));
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    let (msgs, _) = ws.until_done(&pid3);
    assert!(types(&msgs).contains(&"execution_interrupted"));
    assert_eq!(
        fake.cancels(),
        [pending.clone(), pending, pid.clone(), pid, pid3]
    );
}

#[test]
fn a_history_only_completion_is_seen_only_in_history() {
    let fake = start();
    let cid = uuid();
    let mut ws = Ws::open(&fake, &cid).unwrap();
    ws.text();
    fake.push_script(Script::HistoryOnly);
    let (pid, r) = queue(&fake, &flux(64, 64, 1), &cid);
    assert_eq!(r.status, 200);
    assert!(fake.wait_idle(Duration::from_secs(10)));
    let msgs = ws.drain(Duration::from_millis(100));
    let t = types(&msgs);
    assert!(t.contains(&"execution_start") && t.contains(&"progress"));
    for absent in ["executed", "execution_success"] {
        assert!(!t.contains(&absent), "{t:?}");
    }
    assert!(!msgs
        .iter()
        .any(|m| m["type"] == "executing" && m["data"]["node"].is_null()));
    assert_eq!(*t.last().unwrap(), "status");
    let h = history(&fake, &pid);
    assert_eq!(h[&pid]["status"]["status_str"], "success");
    assert_eq!(
        h[&pid]["outputs"]["13"]["images"][0]["filename"],
        "t2i_00001_.png"
    );
}

#[test]
fn a_dropped_socket_loses_events_and_refuses_reconnects_for_a_while() {
    let fake = FakeComfyUi::start(FakeOptions {
        step_ms: 10,
        ..FakeOptions::default()
    })
    .unwrap();
    let cid = uuid();
    // A replaced socket gets nothing more, but is closed with its client's others.
    // Each socket's first `status` is queued as it is registered: once read, the socket
    // is the one that gets the client's events.
    let mut old = Ws::open(&fake, &cid).unwrap();
    assert_eq!(old.text()["type"], "status");
    let mut ws = Ws::open(&fake, &cid).unwrap();
    assert_eq!(ws.text()["type"], "status");
    fake.push_script(Script::DropSocket { after_steps: 2 });
    // 60 steps of 10 ms: still running when the client is back.
    let mut graph = flux(64, 64, 1);
    graph["7"]["inputs"]["steps"] = json!(60);
    let (pid, _) = queue(&fake, &graph, &cid);
    let mut progress = Vec::new();
    loop {
        match ws.next(Duration::from_secs(5)) {
            Some(Frame::Text(m)) => {
                if m["type"] == "progress" {
                    progress.push(m["data"]["value"].as_u64().unwrap());
                }
            }
            Some(Frame::Binary(_)) => {}
            Some(Frame::Closed) => break,
            None => panic!("the socket was not closed"),
        }
    }
    assert_eq!(progress, [1, 2]);
    let old_msgs = old.drain(Duration::from_millis(20));
    assert!(
        old_msgs.is_empty(),
        "a replaced socket gets nothing more: {:?}",
        types(&old_msgs)
    );
    assert_eq!(Ws::open(&fake, &cid).err().as_deref(), Some("HTTP 503"));
    // Another client is not refused.
    assert!(Ws::open(&fake, &uuid()).is_ok());
    std::thread::sleep(Duration::from_millis(350));
    let mut back = Ws::open(&fake, &cid).unwrap();
    let first = back.text();
    assert_eq!(first["type"], "status");
    // Mid-run, the reconnected client is told the node it is at (`node` only).
    let again = back.text();
    assert_eq!(again["type"], "executing");
    assert_eq!(again["data"], json!({"node": "11"}));
    assert!(fake.wait_idle(Duration::from_secs(10)));
    let rest = back.drain(Duration::from_millis(50));
    assert_eq!(*types(&rest).last().unwrap(), "executing");
    let h = history(&fake, &pid);
    assert_eq!(h[&pid]["status"]["status_str"], "success");
    assert_eq!(fake.ws_connections(), 4);
}

#[test]
fn a_video_graph_saves_an_mp4_with_sound_and_its_frames() {
    let fake = start();
    let cid = uuid();
    let mut ws = Ws::open(&fake, &cid).unwrap();
    let (pid, r) = queue(&fake, &ltx_small(), &cid);
    assert_eq!(r.status, 200, "{}", r.text);
    let (msgs, _) = ws.until_done(&pid);
    let maxes: Vec<u64> = msgs
        .iter()
        .filter(|m| m["type"] == "progress")
        .map(|m| m["data"]["max"].as_u64().unwrap())
        .collect();
    assert_eq!(maxes, [8; 8], "eight distilled sigmas steps");
    let output = json!({"images": [{"filename": "fast_00001_.mp4", "subfolder": "ltx23", "type": "output"}],
                        "animated": [true]});
    let executed = msgs.iter().find(|m| m["type"] == "executed").unwrap();
    assert_eq!(executed["data"]["node"], "30");
    assert_eq!(executed["data"]["output"], output);
    assert_eq!(history(&fake, &pid)[&pid]["outputs"]["30"], output);

    let r = client()
        .get(format!(
            "{}/view?filename=fast_00001_.mp4&subfolder=ltx23&type=output",
            fake.url()
        ))
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-type"], "video/mp4");
    let bytes = r.bytes().unwrap();
    assert_eq!(&bytes[4..8], b"ftyp");
    let path = std::env::temp_dir().join(format!("kiln-fake-comfyui-test-{}.mp4", uuid()));
    std::fs::write(&path, &bytes).unwrap();
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe");
    let _ = std::fs::remove_file(&path);
    assert!(probe.status.success());
    let streams: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let streams = streams["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(256), Some(160))
    );
    assert_eq!(video["nb_read_frames"], "9");
    assert_eq!(video["pix_fmt"], "yuv420p");
    assert_eq!(video["r_frame_rate"], "24/1");
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
    assert_eq!(audio["codec_name"], "aac");
}

#[test]
fn uploads_object_info_and_server_info() {
    let fake = start();
    let stats = get(&fake, "/system_stats").json();
    assert_eq!(stats["system"]["comfyui_version"], "0.26.0");
    assert_eq!(stats["system"]["embedded_python"], false);
    assert!(stats["system"]["argv"].is_array());
    let dev = &stats["devices"][0];
    assert_eq!(
        dev["name"],
        "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync"
    );
    assert_eq!(dev["type"], "cuda");
    assert_eq!(dev["index"], 0);
    assert_eq!(dev["vram_total"], 80u64 << 30);
    assert_eq!(dev["vram_free"], 79u64 << 30);
    assert_eq!(
        get(&fake, "/api/system_stats").json()["system"],
        stats["system"]
    );

    let info = get(&fake, "/object_info").json();
    assert_eq!(info.as_object().unwrap().len(), 62);
    let req = |class: &str, input: &str| info[class]["input"]["required"][input].clone();
    assert_eq!(
        req("UNETLoader", "unet_name")[0],
        json!(["flux2_dev_fp8mixed.safetensors"])
    );
    assert_eq!(
        req("CheckpointLoaderSimple", "ckpt_name")[0],
        json!(["ltx-2.3-22b-dev-fp8.safetensors", LTX_FAST_CKPT])
    );
    assert_eq!(
        req("LTXAVTextEncoderLoader", "text_encoder")[1]["options"],
        json!([
            "gemma_3_12B_it_fp4_mixed.safetensors",
            "mistral_3_small_flux2_fp8.safetensors"
        ])
    );
    assert_eq!(
        req("LatentUpscaleModelLoader", "model_name")[1]["options"],
        json!(["ltx-2.3-spatial-upscaler-x2-1.1.safetensors"])
    );
    assert_eq!(req("LoadImage", "image")[0], json!([]));
    assert_eq!(get(&fake, "/object_info/NoSuch").json(), json!({}));
    assert_eq!(
        get(&fake, "/api/models/checkpoints").json(),
        req("CheckpointLoaderSimple", "ckpt_name")[0]
    );
    assert_eq!(get(&fake, "/models/nonsense").status, 404);
    assert!(get(&fake, "/models")
        .json()
        .as_array()
        .unwrap()
        .contains(&json!("latent_upscale_models")));

    let a = upload_png(&fake, "ref.png", 8, 8, &[]);
    assert_eq!(
        a,
        json!({"name": "ref.png", "subfolder": "", "type": "input"})
    );
    // Same bytes: the same file. Other bytes: a new name, unless overwriting.
    assert_eq!(upload_png(&fake, "ref.png", 8, 8, &[])["name"], "ref.png");
    assert_eq!(
        upload_png(&fake, "ref.png", 9, 9, &[])["name"],
        "ref (1).png"
    );
    assert_eq!(
        upload_png(&fake, "ref.png", 10, 10, &[])["name"],
        "ref (2).png"
    );
    assert_eq!(
        upload_png(&fake, "ref.png", 11, 11, &[("overwrite", "true")])["name"],
        "ref.png"
    );
    assert_eq!(
        upload_png(
            &fake,
            "r.png",
            8,
            8,
            &[("subfolder", "probe"), ("type", "input")]
        ),
        json!({"name": "r.png", "subfolder": "probe", "type": "input"})
    );
    let ups = fake.uploads();
    assert_eq!(ups.len(), 6);
    assert_eq!(
        (
            ups[5].name.as_str(),
            ups[5].subfolder.as_str(),
            ups[5].kind.as_str()
        ),
        ("r.png", "probe", "input")
    );
    assert_eq!(&ups[5].bytes[..4], b"\x89PNG");
    let images = get(&fake, "/object_info/LoadImage").json()["LoadImage"]["input"]["required"]
        ["image"][0]
        .clone();
    assert_eq!(
        images,
        json!(["probe/r.png", "ref (1).png", "ref (2).png", "ref.png"])
    );

    let v = get(&fake, "/view?filename=r.png&subfolder=probe&type=input");
    assert_eq!(v.status, 200);
    assert_eq!(v.headers["content-disposition"], "filename=\"r.png\"");
    assert_eq!(get(&fake, "/view?filename=../x.png&type=input").status, 400);
    assert_eq!(get(&fake, "/view?filename=/etc/passwd").status, 400);
    assert_eq!(
        get(&fake, "/view?filename=r.png&subfolder=../../etc&type=input").status,
        403
    );
    assert_eq!(get(&fake, "/view?filename=nope.png").status, 404);
    let r = reply(
        client()
            .post(format!("{}/upload/image", fake.url()))
            .multipart(Form::new().text("type", "input"))
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        post(
            &fake,
            "/free",
            &json!({"unload_models": true, "free_memory": true})
        )
        .status,
        200
    );
}

#[test]
fn every_example_graph_validates_and_an_edit_saves_the_reference_size() {
    let fake = start();
    fake.add_model("checkpoints", "ltx-2.3-22b-distilled-fp8.safetensors");
    upload_png(&fake, "ref_a.png", 512, 256, &[]);
    upload_png(&fake, "ref_b.png", 64, 64, &[]);
    let cid = uuid();
    let mut ids = Vec::new();
    for g in EXAMPLES {
        fake.push_script(Script::UntilCancelled);
        let graph: Value = serde_json::from_str(g).unwrap();
        let (pid, r) = queue(&fake, &graph, &cid);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["node_errors"], json!({}));
        ids.push(pid);
    }
    for pid in &ids {
        let r = post(&fake, &format!("/api/jobs/{pid}/cancel"), &json!({}));
        assert_eq!(r.json(), json!({"cancelled": true}));
    }
    assert!(fake.wait_idle(Duration::from_secs(10)));

    // GetImageSize of the first reference, scaled to 0.125 MP in steps of 16: 512×256.
    let mut edit: Value = serde_json::from_str(FLUX_EDIT).unwrap();
    for node in ["21", "31"] {
        edit[node]["inputs"]["megapixels"] = json!(0.125);
    }
    let (pid, r) = queue(&fake, &edit, &cid);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(fake.wait_idle(Duration::from_secs(10)));
    let out = &history(&fake, &pid)[&pid]["outputs"]["13"]["images"][0];
    assert_eq!(out["subfolder"], "flux2");
    let bytes = client()
        .get(format!(
            "{}/view?filename={}&subfolder=flux2",
            fake.url(),
            out["filename"].as_str().unwrap()
        ))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(png_size(&bytes), (512, 256));
}

#[test]
fn a_server_that_is_down_refuses_connections_and_closes_sockets() {
    let fake = start();
    let http = client();
    let url = format!("{}/system_stats", fake.url());
    assert!(http.get(&url).send().unwrap().status().is_success());
    let mut ws = Ws::open(&fake, &uuid()).unwrap();
    ws.text();
    fake.set_down(true);
    // Kept-alive and new connections alike fail.
    assert!(http.get(&url).send().is_err());
    assert!(client().get(&url).send().is_err());
    assert!(Ws::open(&fake, &uuid()).is_err());
    assert!(matches!(
        ws.next(Duration::from_secs(2)),
        Some(Frame::Closed)
    ));
    fake.set_down(false);
    assert!(client().get(&url).send().unwrap().status().is_success());
    assert!(Ws::open(&fake, &uuid()).is_ok());
}

#[test]
fn a_slow_server_answers_late_but_its_socket_does_not_wait() {
    let fake = start();
    fake.set_http_delay(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(get(&fake, "/prompt").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    let mut ws = Ws::open(&fake, &uuid()).unwrap();
    ws.text();
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    fake.set_http_delay(Duration::ZERO);
    let t = Instant::now();
    assert_eq!(get(&fake, "/prompt").status, 200);
    assert!(t.elapsed() < Duration::from_millis(250));
}

#[test]
fn prompt_ids_are_made_canonical_when_absent() {
    let fake = start();
    let r = post(&fake, "/prompt", &json!({"prompt": flux(64, 64, 1)}));
    assert_eq!(r.status, 200);
    let pid = r.json()["prompt_id"].as_str().unwrap().to_string();
    assert!(is_canonical_uuid(&pid));
    assert!(fake.wait_idle(Duration::from_secs(10)));
    // No client: the run still completes and is in history.
    assert_eq!(history(&fake, &pid)[&pid]["status"]["completed"], true);
}

/// `timings()`: when each accepted prompt arrived and when its output was served, in
/// order (no durations are asserted).
#[test]
fn prompt_timings_follow_arrival_and_the_output_view() {
    let fake = start();
    fake.push_script(Script::Invalid);
    let (_, refused) = queue(&fake, &flux(64, 64, 1), "c");
    assert_eq!(refused.status, 400);
    assert!(fake.timings().is_empty(), "a refused prompt has no timing");

    let before = Instant::now();
    let (pid, r) = queue(&fake, &flux(64, 64, 2), "c");
    let after = Instant::now();
    assert_eq!(r.status, 200);
    assert!(fake.wait_idle(Duration::from_secs(10)));
    let [t] = fake.timings().try_into().unwrap();
    assert_eq!(t.prompt_id, pid);
    assert!(before <= t.received && t.received <= after);
    assert_eq!(t.view_served, None, "not fetched yet");

    // Viewing an upload is no prompt's output.
    upload_png(&fake, "in.png", 8, 8, &[]);
    assert_eq!(get(&fake, "/view?filename=in.png&type=input").status, 200);
    assert_eq!(fake.timings()[0].view_served, None);

    let out = &history(&fake, &pid)[&pid]["outputs"]["13"]["images"][0];
    let path = format!(
        "/view?filename={}&subfolder={}&type=output",
        out["filename"].as_str().unwrap(),
        out["subfolder"].as_str().unwrap()
    );
    let before_view = Instant::now();
    assert_eq!(get(&fake, &path).status, 200);
    let after_view = Instant::now();
    let served = fake.timings()[0].view_served.expect("the view is recorded");
    assert!(before_view <= served && served <= after_view);
    // The latest view counts.
    assert_eq!(get(&fake, &path).status, 200);
    assert!(fake.timings()[0].view_served.unwrap() >= served);
}

/// Usable from async tests: its own runtime, started and dropped inside another.
#[tokio::test]
async fn works_inside_a_tokio_test() {
    let fake = start();
    let stats: Value = reqwest::Client::new()
        .get(format!("{}/api/system_stats", fake.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["system"]["comfyui_version"], "0.26.0");
    drop(fake);
}
