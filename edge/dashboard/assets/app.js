// Kiln dashboard. Plain JS, no build step, no framework. Every call is a public API
// call (docs/openapi.json) authenticated by the HttpOnly session cookie, which this
// script never sees; an API key shown after creation lives only in this page's memory.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) e.append(c);
  return e;
};
const usd = (n) => (n === null || n === undefined ? "–" : "$" + Number(n).toFixed(n !== 0 && Math.abs(n) < 0.01 ? 6 : 2));
const when = (t) => (t ? new Date(t).toLocaleString() : "–");

function status(message, isError = false) {
  const s = $("#status");
  if (!s) return;
  s.textContent = message || "";
  s.classList.toggle("error", isError);
}

class ApiError extends Error {
  constructor(httpStatus, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${httpStatus}`);
    this.status = httpStatus;
    this.code = e.code;
  }
}

// fetch for the API: same-origin, so the browser sends the session cookie and, on
// POST and DELETE, the Origin header the edge checks (CSRF).
async function api(path, { method = "GET", body, form } = {}) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (form) init.body = form;
  else if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!resp.ok) throw new ApiError(resp.status, json);
  return json;
}

function fail(e) {
  status(e.message, true);
  if (e.status === 401 && document.body.dataset.page !== "home") location.assign("/");
}

// Copy buttons: data-copy names the element whose value or text is copied.
document.addEventListener("click", async (ev) => {
  const b = ev.target.closest("[data-copy]");
  if (!b) return;
  const src = document.getElementById(b.dataset.copy);
  const text = "value" in src ? src.value : src.textContent;
  try {
    await navigator.clipboard.writeText(text);
    status("Copied.");
  } catch (_) {
    if (src.select) src.select();
    status("Select the text and copy it (the clipboard is not available here).");
  }
});

// --- Sign up / sign in -------------------------------------------------------------

function home() {
  api("/v1/session").then(() => { $("#signed-in").hidden = false; }, () => {});
  $("#signup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const s = await api("/v1/session", { method: "POST", body: { email: $("#signup-email").value } });
      $("#new-key-value").value = s.api_key;
      $("#new-key").hidden = false;
      status(`Trial started: ${usd(s.balance_usd)} of credit. You are signed in.`);
      $("#new-key-value").focus();
    } catch (e) { fail(e); }
  });
  $("#signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("#signin-key");
    try {
      await api("/v1/session", { method: "POST", body: { api_key: input.value.trim() } });
      input.value = "";
      location.assign("/app/playground");
    } catch (e) { fail(e); }
  });
}

// --- Keys ---------------------------------------------------------------------------

async function keysPage(session) {
  const render = async () => {
    const list = await api("/v1/keys");
    const body = $("#keys-body");
    body.replaceChildren();
    for (const k of list.data) {
      const actions = el("td");
      if (!k.revoked_at) {
        let armed = false;
        const revoke = el("button", {
          type: "button",
          text: "Revoke",
          "aria-label": `Revoke key ${k.label} (${k.prefix})`,
          onclick: async () => {
            if (!armed) {
              armed = true;
              revoke.textContent = k.id === session.key_id ? "Confirm: revoke and sign out" : "Confirm revoke";
              return;
            }
            try {
              await api(`/v1/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
              status(`Key ${k.label} revoked.`);
              await render();
            } catch (e) { fail(e); }
          },
        });
        actions.append(revoke);
      }
      if (k.reveal_available) {
        actions.append(" ", el("button", {
          type: "button",
          text: "Reveal",
          "aria-label": `Reveal key ${k.label}`,
          onclick: async () => {
            try {
              const r = await api(`/v1/keys/${encodeURIComponent(k.id)}/reveal`, { method: "POST" });
              showCreated(r.api_key);
              await render();
            } catch (e) { fail(e); }
          },
        }));
      }
      const state = k.revoked_at ? `revoked ${when(k.revoked_at)}` : k.id === session.key_id ? "active (this session)" : "active";
      body.append(el("tr", {},
        el("td", { text: k.label }),
        el("td", { class: "mono", text: k.prefix }),
        el("td", { text: k.kind === "test" ? "test mode" : k.kind }),
        el("td", { text: when(k.created_at) }),
        el("td", { text: when(k.last_used_at) }),
        el("td", { text: state }),
        actions));
    }
  };
  const showCreated = (secret) => {
    $("#created-value").value = secret;
    $("#created").hidden = false;
    $("#created-value").focus();
  };
  $("#key-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { label: $("#key-label").value || "default" };
    if ($("#key-test").checked) body.mode = "test";
    try {
      const k = await api("/v1/keys", { method: "POST", body });
      showCreated(k.api_key);
      status(`Key ${k.label} created.`);
      $("#key-label").value = "";
      await render();
    } catch (e) { fail(e); }
  });
  await render();
}

// --- Credits ------------------------------------------------------------------------

async function creditsPage() {
  const c = await api("/v1/credits");
  $("#balance").textContent = usd(c.balance_usd);
  $("#held").textContent = usd(c.held_usd);
  $("#available").textContent = usd(c.available_usd);
  $("#plan").textContent = c.is_trial ? "Trial" : "Paid";
  const q = new URLSearchParams(location.search).get("checkout");
  if (q === "success") status("Payment received: the credit appears as soon as Stripe confirms it.");
  if (q === "cancelled") status("Checkout cancelled; nothing was charged.");
  let cursor = null;
  const more = async () => {
    const page = await api(`/v1/usage?limit=25${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    for (const u of page.data) {
      const charge = u.type === "charge";
      const what = charge
        ? `${u.job_type} · ${u.model_id}${u.prompt_preview ? ` · “${u.prompt_preview}”` : ""}`
        : `${u.source.replace("_", " ")}${u.note ? ` · ${u.note}` : ""}`;
      const amount = charge ? `−${usd(u.cost_usd)}` : usd(u.amount_usd);
      const state = charge ? (u.refunded ? "refunded" : u.status) : "credited";
      $("#usage-body").append(el("tr", {},
        el("td", { text: when(u.ts) }), el("td", { text: what }), el("td", { text: amount }),
        el("td", { text: state }), el("td", { class: "mono", text: u.job_id || "" })));
    }
    cursor = page.next_cursor;
    $("#usage-more").hidden = !page.has_more;
  };
  $("#usage-more").addEventListener("click", () => more().catch(fail));
  $("#buy-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const tier = new FormData(ev.target).get("tier");
    try {
      const s = await api("/v1/billing/checkout", { method: "POST", body: { tier } });
      location.assign(s.url);
    } catch (e) { fail(e); }
  });
  await more();
}

// --- Playground ---------------------------------------------------------------------

const IMAGE_SIZES = [[1024, 1024], [1024, 768], [768, 1024], [1344, 768], [768, 1344], [1536, 1024], [1024, 1536], [512, 512], [768, 768], [2048, 2048]];

async function playgroundPage() {
  const catalog = await api("/v1/models");
  const models = catalog.data;
  const form = $("#gen-form");
  const kind = () => form.elements.kind.value;
  const model = () => models.find((m) => m.id === $("#model").value);
  let inputFiles = [];

  const setNumber = (id, p) => {
    const i = $("#" + id);
    if (!p) return;
    if (p.minimum !== undefined) i.min = p.minimum;
    if (p.maximum !== undefined) i.max = p.maximum;
    if (p.default !== undefined) i.value = p.default;
  };
  const fillModel = () => {
    const m = model();
    const p = m.parameters.properties;
    const sizes = m.kind === "video"
      ? m.parameters["x-sizes"].map((s) => [s.width, s.height])
      : IMAGE_SIZES;
    const defW = p.width.default, defH = p.height.default;
    $("#size").replaceChildren(...sizes.map(([w, h]) => el("option", {
      value: `${w}x${h}`, text: `${w} × ${h}`, selected: w === defW && h === defH,
    })));
    sizeHint();
    setNumber("seed", p.seed);
    if (m.kind === "image") { setNumber("steps", p.steps); setNumber("cfg", p.cfg); setNumber("n", p.n); }
    else { setNumber("num_frames", p.num_frames); framesHint(); }
    $("#input-file").dataset.max = p.input_files.maxItems;
    costHint();
    snippets();
  };
  const fillKind = () => {
    const k = kind();
    $("#model").replaceChildren(...models.filter((m) => m.kind === k).map((m) => el("option", {
      value: m.id, text: `${m.name || m.id} (${usd(m.cost.usd_per_unit)} per ${m.cost.unit})${m.available ? "" : " – no GPU up"}`,
    })));
    for (const d of document.querySelectorAll("[data-kind]")) {
      d.hidden = d.dataset.kind !== k;
      for (const i of d.querySelectorAll("input")) i.disabled = d.hidden;
    }
    fillModel();
  };
  const sizeHint = () => {
    const m = model();
    const p = m.parameters.properties;
    const scale = m.parameters["x-output-scale"] || 2;
    const [w, h] = $("#size").value.split("x").map(Number);
    $("#size-hint").textContent = m.kind === "video"
      ? `One of the model's sizes; the output is upscaled ${scale}× (${w} × ${h} → ${w * scale} × ${h * scale}).`
      : `${p.width.minimum}–${p.width.maximum} px per side, multiples of ${p.width.multipleOf}.`;
  };
  // LTX makes frames in groups of 8 after the first: 25, 33, 41, … 241.
  const framesHint = () => {
    const i = $("#num_frames");
    const n = Number(i.value);
    const lo = Number(i.min), hi = Number(i.max);
    let msg = `${lo}–${hi} frames, of the form 8n+1 (the model renders the first frame, then groups of 8): 25, 33, 41, … 121, … ${hi}. At 24 fps.`;
    if (Number.isInteger(n) && n >= lo && n <= hi && (n - 1) % 8 === 0) {
      msg += ` ${n} frames = ${(n / 24).toFixed(2)} s of video.`;
      i.setCustomValidity("");
    } else {
      const below = Math.max(lo, Math.floor((n - 1) / 8) * 8 + 1), above = Math.min(hi, below + 8);
      const m = Number.isFinite(n) ? ` ${n} is not valid: the nearest are ${below} and ${above}.` : "";
      msg += m;
      i.setCustomValidity(m || "Enter a frame count.");
    }
    $("#frames-hint").textContent = msg;
    costHint();
  };
  const costHint = () => {
    const m = model();
    const c = m.kind === "image"
      ? (Number($("#n").value) || 1) * m.cost.usd_per_unit
      // The catalog's rule: ceil(num_frames × micro-dollars per second / fps).
      : Math.ceil((Number($("#num_frames").value) || 0) * Math.round(m.cost.usd_per_unit * 1e6)
          / m.parameters.properties.fps.default) / 1e6;
    $("#generate").textContent = `Generate (${usd(c)})`;
  };

  const request = () => {
    const m = model();
    const [w, h] = $("#size").value.split("x").map(Number);
    const body = { prompt: $("#prompt").value, model: m.id, width: w, height: h, seed: Number($("#seed").value) };
    if (m.kind === "image") {
      body.steps = Number($("#steps").value);
      body.cfg = Number($("#cfg").value);
      body.n = Number($("#n").value);
    } else {
      body.num_frames = Number($("#num_frames").value);
      if ($("#negative_prompt").value) body.negative_prompt = $("#negative_prompt").value;
    }
    if (inputFiles.length) body.input_files = inputFiles;
    if ($("#reply_url").value) body.replyUrl = $("#reply_url").value;
    return { path: m.endpoint, body };
  };
  const snippets = () => {
    const { path, body } = request();
    const url = location.origin + path;
    const json = JSON.stringify(body, null, 2);
    $("#snippet-curl").textContent =
      `curl -s ${url} \\\n  -H "Authorization: Bearer $KILN_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '${JSON.stringify(body).replace(/'/g, "'\\''")}'`;
    $("#snippet-python").textContent =
      `import os\nimport requests\n\nresp = requests.post(\n    "${url}",\n    headers={"Authorization": f"Bearer {os.environ['KILN_API_KEY']}"},\n    json=${json.replace(/\n/g, "\n    ")},\n    timeout=100,  # waits up to 90 s, then answers 202 with the job\n)\nresp.raise_for_status()\nprint(resp.json())`;
    $("#snippet-n8n").textContent = JSON.stringify({
      nodes: [{
        name: `Kiln ${m_kind(path)}`,
        type: "n8n-nodes-base.httpRequest",
        typeVersion: 4.2,
        position: [0, 0],
        parameters: {
          method: "POST",
          url,
          sendHeaders: true,
          headerParameters: { parameters: [{ name: "Authorization", value: "=Bearer {{ $env.KILN_API_KEY }}" }] },
          sendBody: true,
          specifyBody: "json",
          jsonBody: JSON.stringify(body),
          options: { timeout: 100000 },
        },
      }],
      connections: {},
    }, null, 2);
  };
  const m_kind = (path) => (path.includes("video") ? "video" : "image");

  const loadInputs = async () => {
    const [outs, ups] = await Promise.all([api("/v1/generations/mine?limit=50"), api("/v1/uploads/mine?limit=50")]);
    const files = [...outs.data, ...ups.data].filter((f) => f.content_type.startsWith("image/"));
    const sel = $("#input-file");
    sel.replaceChildren(el("option", { value: "", text: "None (from text only)" }),
      ...files.map((f) => el("option", { value: f.filename, text: `${f.original_filename || f.filename} (${f.width}×${f.height}, ${f.object})` })));
    const wanted = new URLSearchParams(location.search).get("input");
    if (wanted) {
      if (![...sel.options].some((o) => o.value === wanted)) sel.append(el("option", { value: wanted, text: wanted }));
      sel.value = wanted;
      inputFiles = [wanted];
      status(`Using ${wanted} as the input image.`);
    }
  };

  form.elements.kind.forEach((r) => r.addEventListener("change", fillKind));
  $("#model").addEventListener("change", fillModel);
  $("#size").addEventListener("change", sizeHint);
  $("#num_frames").addEventListener("input", framesHint);
  $("#n").addEventListener("input", costHint);
  $("#input-file").addEventListener("change", (ev) => { inputFiles = ev.target.value ? [ev.target.value] : []; snippets(); });
  $("#upload").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    const fd = new FormData();
    fd.append("file", file);
    try {
      status(`Uploading ${file.name}…`);
      const up = await api("/v1/uploads", { method: "POST", form: fd });
      const sel = $("#input-file");
      sel.append(el("option", { value: up.filename, text: `${up.original_filename || up.filename} (upload)` }));
      sel.value = up.filename;
      inputFiles = [up.filename];
      status(`Uploaded ${file.name}${up.deduplicated ? " (already uploaded)" : ""}: it is the input image.`);
      snippets();
    } catch (e) { fail(e); }
  });
  form.addEventListener("input", snippets);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const { path, body } = request();
    status("");
    $("#result").replaceChildren();
    try {
      const accepted = await api(`${path}?async_mode=true`, { method: "POST", body });
      follow(accepted.job_id);
    } catch (e) { fail(e); }
  });

  fillKind();
  await loadInputs().catch(fail);
  snippets();
}

// Follows a job's event stream. The timings (performance.now(), ms) are kept on <body>
// so the browser test can report how soon the first update showed: data-first-event-ms
// (the first event arrived), data-first-progress-ms (it was on screen), and
// data-first-progress-after-queued-ms (on screen, against the job's queued_at clock).
function follow(jobId) {
  const bar = $("#progress"), text = $("#progress-text");
  const d = document.body.dataset;
  delete d.firstEventMs; delete d.firstProgressMs; delete d.firstProgressAfterQueuedMs;
  d.jobId = jobId; d.jobStatus = "queued"; d.progressUpdates = "0";
  bar.removeAttribute("value");
  text.textContent = `Job ${jobId} submitted.`;
  const es = new EventSource(`/v1/jobs/${encodeURIComponent(jobId)}/stream`);
  let updates = 0;
  const show = (job, ev) => {
    if (d.firstEventMs === undefined) d.firstEventMs = performance.now().toFixed(1);
    const p = job.progress || {};
    if (ev === "queued") {
      bar.removeAttribute("value");
      text.textContent = job.queue_position ? `Queued: position ${job.queue_position}.` : "Queued.";
    } else if (ev === "loading_model") {
      bar.removeAttribute("value");
      text.textContent = `Loading the model${p.stage_label ? ` (${p.stage_label})` : ""}…`;
    } else if (ev === "processing") {
      bar.max = p.total_steps || 1;
      bar.value = p.step || 0;
      text.textContent = `${p.stage_label || p.stage || "Processing"}: step ${p.step}/${p.total_steps}`;
    } else if (ev === "completed") {
      bar.max = 1; bar.value = 1;
      text.textContent = `Completed${job.seed !== undefined ? ` (seed ${job.seed})` : ""}, ${usd(job.cost_usd)}.`;
      showResult(job);
    } else {
      bar.max = 1; bar.value = 0;
      text.textContent = `${ev}: ${job.error_message || ""}`;
      status(job.error_message || `Job ${ev}.`, ev === "failed");
    }
    updates += 1;
    d.progressUpdates = String(updates);
    d.jobStatus = ev;
    if (ev === "processing") d.lastStep = String(p.step);
    if (d.firstProgressMs === undefined) {
      requestAnimationFrame(() => {
        d.firstProgressMs = performance.now().toFixed(1);
        const queued = job.metadata && job.metadata.timings_ms && job.metadata.timings_ms.queued_at;
        if (queued) d.firstProgressAfterQueuedMs = String(Date.now() - queued);
      });
    }
  };
  for (const name of ["queued", "loading_model", "processing", "completed", "failed", "cancelled"]) {
    es.addEventListener(name, (m) => {
      show(JSON.parse(m.data), name);
      if (["completed", "failed", "cancelled"].includes(name)) es.close();
    });
  }
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) status("The event stream closed.", true);
  };
}

function showResult(job) {
  const box = $("#result");
  box.replaceChildren();
  for (const o of job.outputs || []) {
    const media = o.content_type.startsWith("video/")
      ? el("video", { src: o.url, controls: true, width: o.width, height: o.height, "aria-label": `Video output ${o.filename}` })
      : el("img", { src: o.url, width: o.width, height: o.height, alt: `Output ${o.filename} for “${(job.params && job.params.prompt) || ""}”` });
    box.append(el("figure", {}, media, el("figcaption", {},
      el("a", { href: o.url, text: o.filename }), ` · expires ${when(o.expires_at)} · `,
      el("a", { href: `/app/playground?input=${encodeURIComponent(o.filename)}`, text: "Use as input" }))));
  }
}

// --- Gallery ------------------------------------------------------------------------

async function galleryPage() {
  const [outs, ups] = await Promise.all([api("/v1/generations/mine?limit=100"), api("/v1/uploads/mine?limit=100")]);
  const item = (f) => {
    const video = f.content_type.startsWith("video/");
    const media = video
      ? el("video", { class: "thumb", src: f.url, controls: true, preload: "metadata", "aria-label": f.filename })
      : el("img", { class: "thumb", src: f.url, loading: "lazy", width: f.width, height: f.height, alt: f.original_filename || f.filename });
    const li = el("li", {}, media,
      el("p", {}, el("a", { href: f.url, text: f.original_filename || f.filename })),
      el("p", { text: `${f.width}×${f.height} · ${f.format} · created ${when(f.created_at)}` }),
      el("p", { text: `Expires ${when(f.expires_at)}` }));
    if (!video) li.append(el("a", { class: "reuse", href: `/app/playground?input=${encodeURIComponent(f.filename)}`, text: "Use as input", "aria-label": `Use ${f.filename} as input` }));
    return li;
  };
  $("#outputs").replaceChildren(...outs.data.map(item));
  $("#uploads").replaceChildren(...ups.data.map(item));
  if (!outs.data.length) $("#outputs").append(el("li", { text: "No outputs yet: try the playground." }));
  if (!ups.data.length) $("#uploads").append(el("li", { text: "No uploads yet." }));
}

// --- Webhooks -----------------------------------------------------------------------

async function webhooksPage() {
  let secret = null;
  const showSecret = (s) => {
    secret = s;
    $("#secret").value = s.secret;
    $("#reveal").textContent = "Hide";
    const prev = $("#previous");
    prev.hidden = !s.previous;
    if (s.previous) prev.textContent = `The previous secret also signs until ${when(s.previous.expires_at)}.`;
  };
  $("#reveal").addEventListener("click", async () => {
    if (secret && $("#reveal").textContent === "Hide") {
      $("#secret").value = "whsec_••••••••";
      $("#reveal").textContent = "Reveal";
      return;
    }
    try { showSecret(await api("/v1/webhooks/secret")); } catch (e) { fail(e); }
  });
  $("#rotate").addEventListener("click", async () => {
    try {
      showSecret(await api("/v1/webhooks/secret/rotate", { method: "POST" }));
      status("Secret rotated; the old one keeps signing for 24 hours.");
    } catch (e) { fail(e); }
  });

  // Recent jobs: those behind your outputs and your charges.
  const [outs, usage] = await Promise.all([api("/v1/generations/mine?limit=50"), api("/v1/usage?limit=50")]);
  const jobs = [];
  for (const id of [...outs.data.map((f) => f.job_id), ...usage.data.map((u) => u.job_id)]) {
    if (id && !jobs.includes(id)) jobs.push(id);
  }
  const sel = $("#job-id");
  sel.replaceChildren(...jobs.map((id) => el("option", { value: id, text: id })));
  const wanted = new URLSearchParams(location.search).get("job");
  if (wanted) {
    if (!jobs.includes(wanted)) sel.prepend(el("option", { value: wanted, text: wanted }));
    sel.value = wanted;
  }
  const show = async () => {
    const id = sel.value;
    if (!id) return;
    const d = await api(`/v1/jobs/${encodeURIComponent(id)}/deliveries`);
    $("#reply-url").textContent = d.reply_url ? `Delivered to ${d.reply_url}` : "This job has no replyUrl, so nothing is delivered.";
    $("#deliveries-body").replaceChildren(...d.data.map((a) => el("tr", {},
      el("td", { text: when(a.attempted_at) }),
      el("td", { text: a.type + (a.replay ? " (replay)" : "") }),
      el("td", { text: String(a.attempt) }),
      el("td", { text: a.status_code === null ? "–" : String(a.status_code) }),
      el("td", { text: a.latency_ms === null ? "–" : `${a.latency_ms} ms` }),
      el("td", { text: a.error || "" }))));
    if (!d.data.length) $("#deliveries-body").append(el("tr", {}, el("td", { colspan: 6, text: "No attempts yet." })));
    $("#replay").disabled = !d.reply_url;
  };
  $("#job-form").addEventListener("submit", (ev) => { ev.preventDefault(); show().catch(fail); });
  $("#replay").addEventListener("click", async () => {
    try {
      await api(`/v1/jobs/${encodeURIComponent(sel.value)}/webhook`, { method: "POST" });
      status("Replay sent.");
      await show();
    } catch (e) { fail(e); }
  });
  if (sel.value) await show();
}

// --- Start --------------------------------------------------------------------------

const PAGES = { keys: keysPage, credits: creditsPage, playground: playgroundPage, gallery: galleryPage, webhooks: webhooksPage };

async function start() {
  const page = document.body.dataset.page;
  if (page === "home") return home();
  const out = $("#sign-out");
  out.addEventListener("click", async () => {
    try { await api("/v1/session", { method: "DELETE" }); } finally { location.assign("/"); }
  });
  let session;
  try { session = await api("/v1/session"); } catch (e) { return fail(e); }
  if (session.kind === "test") status("Test mode: this session's key runs on the simulated engine and costs nothing.");
  try {
    await PAGES[page](session);
    document.body.dataset.ready = "true";
  } catch (e) { fail(e); }
}

start();
