//! The web dashboard, end to end: its session API as a client sees it, and the pages
//! driven in headless Chromium (Debian's `chromium` through `chromedriver`) against the
//! real stack, as a person would use them: sign up, create a key, buy credits (the
//! Stripe webhook driven directly, as Stripe cannot be reached here), generate an image
//! in the playground while its progress bar advances, find it in the gallery, reuse it
//! as an input, and see its webhook deliveries. Each page is screenshotted to
//! `target/dashboard-screenshots/`, weighed (under 100 KB before images), and checked
//! for labels; sign-up is done with the keyboard alone.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client as Wd, ClientBuilder, Locator};
use kiln_tests::receiver::Receiver;
use kiln_tests::{build, random_hex, stack, tools};
use serde_json::{json, Value};

/// Each page, images aside, must arrive in under this many bytes.
const PAGE_BYTES_MAX: u64 = 100 * 1024;

// --- The session API, as any HTTP client sees it ------------------------------------

fn session_post(body: &Value, origin: Option<&str>) -> (Reply, Option<String>) {
    let mut req = client()
        .post(format!("{}/v1/session", env().edge))
        .json(body);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let r = reply(req.send().unwrap());
    let cookie = r
        .headers
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    (r, cookie)
}

/// `kiln_session=…` from a `Set-Cookie` value.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

fn with_cookie(method: reqwest::Method, path: &str, cookie: &str, origin: Option<&str>) -> Reply {
    let mut req = client()
        .request(method, format!("{}{path}", env().edge))
        .header("cookie", cookie)
        .header("content-type", "application/json")
        .body("{}");
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    reply(req.send().unwrap())
}

#[test]
fn the_session_cookie_acts_as_the_key_and_only_from_this_site() {
    let edge = env().edge.clone();
    let email = format!("dash-{}@example.com", random_hex(6));
    let (r, set) = session_post(&json!({"email": email}), Some(&edge));
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.body["api_key"].as_str().unwrap().to_owned();
    let set = set.expect("a Set-Cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    let cookie = cookie_pair(&set);
    assert!(
        !cookie.contains(&key),
        "the cookie is a session token, not the key"
    );

    // The same email again is the trial API.md describes: 409, and no cookie.
    let (again, set_again) = session_post(&json!({"email": email}), None);
    assert_eq!(
        (again.status, error_of(&again).0.as_str()),
        (409, "trial_exists")
    );
    assert!(set_again.is_none());

    let me = with_cookie(reqwest::Method::GET, "/v1/session", &cookie, None);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["via"], "session");
    assert_eq!(me.body["kind"], "trial");
    assert!(me.headers.contains_key("x-ratelimit-limit"));
    let by_cookie = with_cookie(reqwest::Method::GET, "/v1/credits", &cookie, None);
    assert_eq!(by_cookie.body["balance_usd"].as_f64(), Some(2.0));

    // Writes with the cookie must come from this site (CSRF), and a refusal changes nothing.
    for origin in [None, Some("https://evil.example"), Some("null")] {
        let r = with_cookie(reqwest::Method::POST, "/v1/keys", &cookie, origin);
        assert_eq!(
            (r.status, error_of(&r).0.as_str()),
            (403, "cross_origin"),
            "{origin:?}"
        );
    }
    assert_eq!(
        get("/v1/keys", &key).body["data"].as_array().unwrap().len(),
        1
    );
    let made = with_cookie(reqwest::Method::POST, "/v1/keys", &cookie, Some(&edge));
    assert_eq!(made.status, 201, "{}", made.body);
    let (login_csrf, _) = session_post(&json!({"api_key": key}), Some("https://evil.example"));
    assert_eq!(login_csrf.status, 403);

    // No Stripe here: checkout says so and nothing moves.
    let checkout = client()
        .post(format!("{edge}/v1/billing/checkout"))
        .header("cookie", &cookie)
        .header("origin", &edge)
        .json(&json!({"tier": "pro"}))
        .send()
        .unwrap();
    let checkout = reply(checkout);
    assert_eq!(
        (checkout.status, error_of(&checkout).0.as_str()),
        (503, "billing_not_configured")
    );
    let bad_tier = post("/v1/billing/checkout", &key, &json!({"tier": "gold"}));
    assert_eq!(
        (bad_tier.status, error_of(&bad_tier).1.as_deref()),
        (400, Some("tier"))
    );
    assert_eq!(credits(&key)["balance_usd"].as_f64(), Some(2.0));

    // Signing in with a key; bad bodies are refused in the API's shape.
    let (signin, set2) = session_post(&json!({"api_key": key}), None);
    assert_eq!(signin.status, 200, "{}", signin.body);
    let cookie2 = cookie_pair(&set2.unwrap());
    for (body, status) in [
        (json!({}), 400),
        (json!({"api_key": "sk-trial-nope"}), 401),
        (json!({"email": "a@b.co", "api_key": key}), 400),
        (json!({"email": 7}), 400),
    ] {
        let (r, set) = session_post(&body, None);
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.body["error"]["code"].is_string(), "{}", r.body);
        assert!(set.is_none());
    }
    let forged = format!("kiln_session=ks_{}", "a".repeat(48));
    let r = with_cookie(reqwest::Method::GET, "/v1/credits", &forged, None);
    assert_eq!(
        (r.status, error_of(&r).0.as_str()),
        (401, "invalid_session")
    );

    // Signing out ends that session only; revoking the key ends every session on it.
    let out = with_cookie(reqwest::Method::DELETE, "/v1/session", &cookie, Some(&edge));
    assert_eq!(out.status, 200);
    assert!(out.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = with_cookie(reqwest::Method::GET, "/v1/credits", &cookie, None);
    assert_eq!(error_of(&r).0, "invalid_session");
    let key_id = me.body["key_id"].as_str().unwrap();
    assert_eq!(
        with_cookie(reqwest::Method::GET, "/v1/credits", &cookie2, None).status,
        200
    );
    assert_eq!(delete(&format!("/v1/keys/{key_id}"), &key).status, 200);
    let r = with_cookie(reqwest::Method::GET, "/v1/credits", &cookie2, None);
    assert_eq!(error_of(&r).0, "invalid_session");
}

#[test]
fn the_pages_are_static_and_only_run_their_own_files() {
    for path in [
        "/",
        "/app/keys",
        "/app/credits",
        "/app/playground",
        "/app/gallery",
        "/app/webhooks",
    ] {
        let resp = client()
            .get(format!("{}{path}", env().edge))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let csp = resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(resp.text().unwrap().contains("<main id=\"main\""), "{path}");
    }
    // A path with no page is the API's 404, in its error shape.
    let r = reply(
        client()
            .get(format!("{}/app/nothing", env().edge))
            .send()
            .unwrap(),
    );
    assert_eq!((r.status, error_of(&r).0.as_str()), (404, "unknown_route"));
}

// --- The pages, in a browser ---------------------------------------------------------

/// chromedriver and one headless Chromium session, driven synchronously (each step
/// runs to completion on a private runtime, so blocking HTTP calls fit in between).
struct Browser {
    rt: tokio::runtime::Runtime,
    wd: Option<Wd>,
    driver: Option<Child>,
    profile: PathBuf,
    shots: PathBuf,
    base: String,
}

impl Browser {
    fn start(base: &str) -> Self {
        let port = stack::free_port().unwrap();
        let mut cmd = Command::new(tools::chromedriver_bin());
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        stack::detach(&mut cmd);
        let driver = cmd
            .spawn()
            .expect("starting chromedriver (cargo xtask test installs chromium-driver)");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let profile = build::target_dir().join(format!("chromium-profile-{}", random_hex(4)));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools::chromium_bin(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1100",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let wd = loop {
            let mut b =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            b.capabilities(caps.as_object().unwrap().clone());
            match rt.block_on(b.connect(&url)) {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("no WebDriver session from chromedriver: {e}"),
            }
        };
        let shots = build::target_dir().join("dashboard-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Self {
            rt,
            wd: Some(wd),
            driver: Some(driver),
            profile,
            shots,
            base: base.to_owned(),
        }
    }

    fn wd(&self) -> &Wd {
        self.wd.as_ref().unwrap()
    }

    fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.rt
            .block_on(self.wd().goto(&url))
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    fn js(&self, script: &str) -> Value {
        self.rt
            .block_on(self.wd().execute(script, vec![]))
            .unwrap_or_else(|e| panic!("running {script}: {e}"))
    }

    /// Polls `script` (a JS expression) until it is truthy; its value.
    fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.js(&format!("return ({script});"));
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            if Instant::now() > deadline {
                let status = self.js("return document.querySelector('#status')?.textContent");
                self.shot(&format!("failed-{}", what.replace(' ', "-")));
                panic!("timed out waiting for {what} ({script}); page status: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the page's script has loaded its data.
    fn ready(&self, path: &str) {
        self.goto(path);
        self.wait_for(
            &format!("{path} to load"),
            "document.body.dataset.ready === 'true'",
            Duration::from_secs(20),
        );
    }

    fn find(&self, css: &str) -> Element {
        self.rt
            .block_on(self.wd().find(Locator::Css(css)))
            .unwrap_or_else(|e| panic!("finding {css}: {e}"))
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.rt
            .block_on(e.click())
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.rt.block_on(e.clear()).unwrap();
        self.rt
            .block_on(e.send_keys(text))
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Keys sent to whatever has focus, as a keyboard would.
    fn keys(&self, text: &str) {
        let active = self.rt.block_on(self.wd().active_element()).unwrap();
        self.rt.block_on(active.send_keys(text)).unwrap();
    }

    /// Presses Tab until the element `id` has focus (at most 40 times).
    fn tab_to(&self, id: &str) {
        let tab: char = Key::Tab.into();
        for _ in 0..40 {
            if self.js("return document.activeElement && document.activeElement.id") == json!(id) {
                return;
            }
            self.keys(&tab.to_string());
        }
        panic!("Tab never reached #{id}");
    }

    fn shot(&self, name: &str) {
        if let Ok(png) = self.rt.block_on(self.wd().screenshot()) {
            let _ = std::fs::write(self.shots.join(format!("{name}.png")), png);
        }
    }

    /// Bytes this page takes, images and videos aside, and the form controls that have
    /// no label. Weighed cold: every response the page loaded (the document, CSS, JS,
    /// API calls; not event streams) is fetched again bypassing the cache, and its
    /// decoded body counted — an upper bound of what a first visit transfers, which
    /// does not depend on what earlier pages left in the cache.
    fn audit(&self, page: &str) {
        let weight = self.js(
            "const urls = [performance.getEntriesByType('navigation')[0].name];
             for (const r of performance.getEntriesByType('resource')) {
               if (['img', 'video'].includes(r.initiatorType) || r.name.includes('/outputs/')
                   || r.name.includes('/stream')) continue;
               urls.push(r.name);
             }
             return Promise.all(urls.map(async (u) => {
               const resp = await fetch(u, {cache: 'no-store', credentials: 'same-origin'});
               const body = (await resp.arrayBuffer()).byteLength;
               let head = 0;
               resp.headers.forEach((v, k) => { head += k.length + v.length + 4; });
               return [u.replace(location.origin, ''), body + head];
             })).then(parts => ({total: parts.reduce((a, p) => a + p[1], 0), parts}));",
        );
        let total = weight["total"].as_u64().unwrap();
        eprintln!(
            "dashboard: {page} weighs {total} bytes cold, before images: {}",
            weight["parts"]
        );
        assert!(
            total < PAGE_BYTES_MAX,
            "{page} weighs {total} bytes: {}",
            weight["parts"]
        );
        let unlabeled = self.js(
            "return [...document.querySelectorAll('input, select, textarea')]
               .filter(e => e.type !== 'hidden')
               .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
               .map(e => e.id || e.name || e.outerHTML);",
        );
        assert_eq!(unlabeled, json!([]), "{page}: controls without a label");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(wd) = self.wd.take() {
            let _ = self.rt.block_on(wd.close());
        }
        stack::stop_child(&mut self.driver);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_person_signs_up_generates_and_finds_the_result_in_a_browser() {
    let edge = env().edge.clone();
    let receiver = Receiver::start();
    let b = Browser::start(&edge);

    // Sign up with the keyboard alone: Tab to the email field, type, Enter.
    b.goto("/");
    b.wait_for(
        "the home page",
        "document.querySelector('#signup-form')",
        Duration::from_secs(10),
    );
    b.audit("/");
    b.shot("1-home");
    b.tab_to("signup-email");
    let email = format!("browser-{}@example.com", random_hex(6));
    let enter: char = Key::Enter.into();
    b.keys(&format!("{email}{enter}"));
    let key = b.wait_for(
        "the new key",
        "!document.querySelector('#new-key').hidden && document.querySelector('#new-key-value').value",
        Duration::from_secs(20),
    );
    let key = key.as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-trial-"), "{key}");
    b.shot("2-signed-up");

    // The browser holds an HttpOnly, Secure, SameSite=Strict cookie that scripts cannot
    // read, and nothing in its storage.
    let cookies = b.rt.block_on(b.wd().get_all_cookies()).unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name() == "kiln_session")
        .expect("the session cookie is set (Secure works on http://127.0.0.1)");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.secure(), Some(true));
    assert!(!session.value().contains(&key));
    assert_eq!(
        b.js("return document.cookie.includes('kiln_session')"),
        json!(false)
    );
    assert_eq!(
        b.js("return localStorage.length + sessionStorage.length"),
        json!(0)
    );
    let account = credits(&key)["account_id"].as_str().unwrap().to_owned();

    // Keys: create a labeled test-mode key, shown once.
    b.ready("/app/keys");
    b.audit("/app/keys");
    // With the keyboard too: Tab to the label, type, Tab to test mode, Space, Tab to the
    // button, Enter.
    b.tab_to("key-label");
    b.keys("browser-ci");
    b.tab_to("key-test");
    b.keys(" ");
    let tab: char = Key::Tab.into();
    b.keys(&format!("{tab}{enter}"));
    let created = b.wait_for(
        "the created key",
        "!document.querySelector('#created').hidden && document.querySelector('#created-value').value",
        Duration::from_secs(20),
    );
    assert!(
        created.as_str().unwrap().starts_with("sk-test-"),
        "{created}"
    );
    b.wait_for(
        "the key in the list",
        "document.querySelector('#keys-body').textContent.includes('browser-ci')",
        Duration::from_secs(10),
    );
    let labels: Vec<String> = get("/v1/keys", &key).body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["label"].as_str().unwrap().to_owned())
        .collect();
    assert!(labels.contains(&"browser-ci".to_owned()), "{labels:?}");
    b.shot("3-keys");

    // Credits: Stripe is not reachable here, and the page says so; the webhook Stripe
    // would send is then driven directly and the page shows the new balance.
    b.ready("/app/credits");
    b.audit("/app/credits");
    assert_eq!(
        b.js("return document.querySelector('#balance').textContent"),
        json!("$2.00")
    );
    b.click("#buy-form button[type=submit]");
    b.wait_for(
        "the not-configured message",
        "document.querySelector('#status').textContent.includes('Stripe is not configured')",
        Duration::from_secs(20),
    );
    let event = json!({
        "id": format!("evt_{}", random_hex(6)), "type": "checkout.session.completed",
        "data": {"object": {"client_reference_id": account, "payment_status": "paid",
                             "amount_total": 2000, "metadata": {"tier": "pro"}}}
    })
    .to_string();
    let sig = kiln_shared::stripe::sign(&env().stripe_webhook_secret, event.as_bytes(), now_secs());
    let paid = client()
        .post(format!("{edge}/v1/billing/stripe/webhook"))
        .header("content-type", "application/json")
        .header("stripe-signature", sig)
        .body(event)
        .send()
        .unwrap();
    assert_eq!(paid.status().as_u16(), 200);
    b.ready("/app/credits");
    assert_eq!(
        b.js("return document.querySelector('#balance').textContent"),
        json!("$22.00")
    );
    assert_eq!(
        b.js("return document.querySelector('#plan').textContent"),
        json!("Paid")
    );
    b.wait_for(
        "the top-up in the usage",
        "document.querySelector('#usage-body').textContent.includes('top up')",
        Duration::from_secs(5),
    );
    b.shot("4-credits");

    // Playground: an image with a webhook, followed live over the job's event stream.
    b.ready("/app/playground");
    b.audit("/app/playground");
    // The video form follows the catalog: its sizes, and frame counts of the form 8n+1.
    b.click("#kind-video");
    let sizes = b.js("return [...document.querySelectorAll('#size option')].map(o => o.value)");
    assert_eq!(sizes, json!(["960x544", "544x960", "768x768"]));
    b.type_into("#num_frames", "50");
    let hint = b.js("return [document.querySelector('#frames-hint').textContent, document.querySelector('#num_frames').validity.valid]");
    assert!(
        hint[0].as_str().unwrap().contains("nearest are 49 and 57"),
        "{hint}"
    );
    assert_eq!(hint[1], json!(false));
    b.type_into("#num_frames", "49");
    let hint = b.js("return [document.querySelector('#frames-hint').textContent, document.querySelector('#num_frames').validity.valid]");
    assert_eq!(hint[1], json!(true), "{hint}");
    b.js("document.querySelector('#gen-form').scrollIntoView()");
    b.shot("5-playground-video-form");
    b.click("#kind-image");
    b.type_into("#prompt", "a kiln at dusk [[sim:step_ms=150]]");
    b.type_into("#reply_url", &receiver.url("/kiln"));
    let snippet = b.js("return document.querySelector('#snippet-curl').textContent");
    let snippet = snippet.as_str().unwrap();
    assert!(snippet.contains("/v1/images/generations"), "{snippet}");
    assert!(
        snippet.contains("$KILN_API_KEY") && !snippet.contains(&key),
        "{snippet}"
    );
    assert!(b
        .js("return document.querySelector('#snippet-n8n').textContent")
        .as_str()
        .unwrap()
        .contains("n8n-nodes-base.httpRequest"));
    b.click("#generate");
    let mut steps_seen: Vec<i64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut mid_shot = false;
    loop {
        let s = b.js("const d = document.body.dataset;
             return {status: d.jobStatus || null, step: d.lastStep ? Number(d.lastStep) : null,
                     bar: document.querySelector('#progress').value};");
        if let Some(step) = s["step"].as_i64() {
            if steps_seen.last() != Some(&step) {
                steps_seen.push(step);
            }
            if !mid_shot && step >= 5 {
                b.js("document.querySelector('#result-h').scrollIntoView()");
                b.shot("6-playground-progress");
                mid_shot = true;
            }
        }
        if s["status"] == "completed" {
            break;
        }
        assert!(
            !matches!(s["status"].as_str(), Some("failed" | "cancelled")),
            "{s}"
        );
        assert!(Instant::now() < deadline, "the job did not complete: {s}");
        std::thread::sleep(Duration::from_millis(40));
    }
    assert!(
        steps_seen.len() >= 3,
        "the progress bar should advance step by step; saw {steps_seen:?}"
    );
    let job_id = b
        .js("return document.body.dataset.jobId")
        .as_str()
        .unwrap()
        .to_owned();
    let loaded = b.wait_for(
        "the image shown inline",
        "(() => { const i = document.querySelector('#result img'); return i && i.complete && i.naturalWidth; })()",
        Duration::from_secs(20),
    );
    assert!(loaded.as_u64().unwrap() > 0);
    let timing = b.js(
        "const d = document.body.dataset;
         return {first_event_ms: Number(d.firstEventMs), first_shown_ms: Number(d.firstProgressMs),
                 after_queued_ms: d.firstProgressAfterQueuedMs ? Number(d.firstProgressAfterQueuedMs) : null};",
    );
    let shown_after_event =
        timing["first_shown_ms"].as_f64().unwrap() - timing["first_event_ms"].as_f64().unwrap();
    eprintln!(
        "dashboard: first progress update on screen {shown_after_event:.1} ms after the job's first event reached the page; {} ms after the job was queued (edge clock); steps seen {steps_seen:?}",
        timing["after_queued_ms"]
    );
    b.js("document.querySelector('#result-h').scrollIntoView()");
    b.shot("7-playground-result");

    // Gallery: the output is there, with its expiry, and can be reused as an input.
    b.ready("/app/gallery");
    b.audit("/app/gallery");
    let filename = format!("{job_id}-0.png");
    b.wait_for(
        "the output in the gallery",
        &format!("document.querySelector('#outputs').textContent.includes('{filename}')"),
        Duration::from_secs(10),
    );
    assert_eq!(
        b.js("return document.querySelector('#outputs').textContent.includes('Expires')"),
        json!(true)
    );
    b.shot("8-gallery");
    b.click(&format!("#outputs a.reuse[href*='{filename}']"));
    b.wait_for(
        "the playground with the input picked",
        &format!("document.body.dataset.ready === 'true' && document.querySelector('#input-file').value === '{filename}'"),
        Duration::from_secs(20),
    );
    b.type_into("#prompt", "the same kiln, at night");
    b.click("#generate");
    let second = b.wait_for(
        "the img2img job to complete",
        &format!("document.body.dataset.jobId !== '{job_id}' && document.body.dataset.jobStatus === 'completed' && document.body.dataset.jobId"),
        Duration::from_secs(60),
    );
    let second = get(&format!("/v1/jobs/{}", second.as_str().unwrap()), &key);
    assert_eq!(
        second.body["input_files"],
        json!([filename]),
        "{}",
        second.body
    );

    // An image from disk, uploaded from the playground, becomes the input; the gallery
    // lists it among the uploads.
    let (status, _, png) = download(&format!("{edge}/outputs/{filename}"));
    assert_eq!(status, 200);
    let on_disk = build::target_dir().join(format!("dashboard-upload-{}.png", random_hex(4)));
    std::fs::write(&on_disk, png).unwrap();
    b.ready("/app/playground");
    let upload = b.find("#upload");
    b.rt.block_on(upload.send_keys(on_disk.to_str().unwrap()))
        .expect("choosing a file");
    let picked = b.wait_for(
        "the upload picked as the input",
        "document.querySelector('#input-file').value.startsWith('up_') && document.querySelector('#input-file').value",
        Duration::from_secs(20),
    );
    let _ = std::fs::remove_file(&on_disk);
    b.ready("/app/gallery");
    b.wait_for(
        "the upload in the gallery",
        &format!(
            "document.querySelector('#uploads').innerHTML.includes('{}')",
            picked.as_str().unwrap()
        ),
        Duration::from_secs(10),
    );

    // Webhooks: the first job's deliveries, then a replay.
    wait_delivery(&receiver, "job.completed", Duration::from_secs(30));
    b.ready(&format!("/app/webhooks?job={job_id}"));
    b.audit("/app/webhooks");
    b.wait_for(
        "a delivery in the table",
        "document.querySelector('#deliveries-body').textContent.includes('job.completed')",
        Duration::from_secs(20),
    );
    b.click("#reveal");
    b.wait_for(
        "the secret revealed",
        "document.querySelector('#secret').value.startsWith('whsec_') && !document.querySelector('#secret').value.includes('•')",
        Duration::from_secs(10),
    );
    b.click("#replay");
    b.wait_for(
        "the replay in the table",
        "document.querySelector('#deliveries-body').textContent.includes('(replay)')",
        Duration::from_secs(20),
    );
    // Rotate: a new secret is shown, and the old one is said to keep signing.
    let before = b.js("return document.querySelector('#secret').value;");
    b.click("#rotate");
    b.wait_for(
        "the rotated secret beside the previous one",
        &format!(
            "document.querySelector('#secret').value.startsWith('whsec_') \
             && document.querySelector('#secret').value !== {before} \
             && !document.querySelector('#previous').hidden"
        ),
        Duration::from_secs(10),
    );
    b.shot("9-webhooks");

    // Sign out: the cookie no longer works.
    b.click("#sign-out");
    b.wait_for(
        "the home page after signing out",
        "location.pathname === '/' && document.querySelector('#signup-form')",
        Duration::from_secs(10),
    );
    let after = b.js("return fetch('/v1/credits').then(r => r.status);");
    assert_eq!(after, json!(401));
}

/// Waits until the receiver got a delivery whose body mentions `what`.
fn wait_delivery(receiver: &Receiver, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !receiver
        .received()
        .iter()
        .any(|r| String::from_utf8_lossy(&r.body).contains(what))
    {
        assert!(Instant::now() < deadline, "no {what} delivery arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
}
