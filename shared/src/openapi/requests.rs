//! Schemas of the request bodies parsed by hand ([`crate::fields::Fields`]), built
//! from the parsers' own constants; the tests parse each example with the parser, and
//! each documented field alone, so a field the parser does not know fails a test.

use serde_json::{json, Map, Value};

use crate::accounts;
use crate::ids;
use crate::images;
use crate::jobs;
use crate::keys;
use crate::video;
use crate::webhooks::EventType;

use super::derived;

/// The lenient-body rules every hand-parsed body shares ([`crate::fields`]).
const LENIENT: &str = "Lenient for no-code tools: a string holding a number is accepted where a number is expected (`\"1024\"`), `\"true\"`/`\"false\"` where a boolean is, and `null` or an empty string counts as absent. Unknown fields are rejected with 400 `unknown_parameter`.";

pub(crate) fn prompt() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": images::PROMPT_CHARS_MAX,
        "pattern": super::PROMPT_PATTERN,
        "description": format!("1–{} characters, not only whitespace; no control characters but line breaks and tabs.", images::PROMPT_CHARS_MAX),
    })
}

/// An optional field of a lenient body: `null`, and for strings `""`, count as absent
/// ([`crate::fields`]), so the schema admits them too.
fn absent_allowed(mut schema: Value) -> Value {
    let Some(ty) = schema
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return schema;
    };
    schema["type"] = json!([ty, "null"]);
    if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
        if ty == "string" {
            values.push(json!(""));
        }
        values.push(Value::Null);
    } else if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        if ty == "string" {
            schema["pattern"] = json!(format!("^$|{pattern}"));
        }
    }
    schema
}

/// Every property but the required ones through [`absent_allowed`].
fn lenient(props: Map<String, Value>, required: &[&str]) -> Map<String, Value> {
    props
        .into_iter()
        .map(|(k, v)| {
            let v = if required.contains(&k.as_str()) {
                v
            } else {
                absent_allowed(v)
            };
            (k, v)
        })
        .collect()
}

/// `not` of these: `size` (a non-empty string) together with `width` or `height` (not
/// null) is 400 `invalid_dimensions` ([`images::ImageRequest::parse`]); `also` adds
/// other pairs that may not come together.
fn exclusive(also: &[[&str; 2]]) -> Value {
    let mut any: Vec<Value> = also.iter().map(|pair| json!({"required": pair})).collect();
    for side in ["width", "height"] {
        any.push(json!({
            "required": ["size", side],
            "properties": {"size": {"type": "string", "minLength": 1}, side: {"not": {"type": "null"}}}
        }));
    }
    json!({"anyOf": any})
}

fn seed() -> Value {
    json!({
        "type": "integer",
        "minimum": -1,
        "maximum": images::SEED_MAX,
        "default": -1,
        "description": "-1 = random (the edge draws one in 0–4294967295); the seed used is returned in the job."
    })
}

fn filename() -> Value {
    json!({"type": "string", "maxLength": ids::FILENAME_LEN_MAX, "pattern": super::FILENAME_PATTERN})
}

fn side() -> Value {
    json!({
        "type": "integer",
        "minimum": images::SIDE_PX_MIN,
        "maximum": images::SIDE_PX_MAX,
        "multipleOf": images::SIDE_PX_STEP,
        "default": images::SIDE_PX_DEFAULT,
    })
}

fn cfg() -> Value {
    json!({
        "type": "number",
        "minimum": images::CFG_MIN,
        "maximum": images::CFG_MAX,
        "default": images::CFG_DEFAULT,
    })
}

/// `replyUrl`'s shape (`webhooks::check_shape`).
fn reply_url(description: &str) -> Value {
    json!({
        "type": "string",
        "maxLength": jobs::REPLY_URL_LEN_MAX,
        "pattern": super::REPLY_URL_PATTERN,
        "description": description,
    })
}

/// The submission options ([`jobs::SubmitOptions`]) every generation body takes.
fn submit_options(props: &mut Map<String, Value>, allow_b64: bool) {
    let formats: Vec<Value> = derived::response_format()
        .as_array()
        .expect("an enum")
        .iter()
        .filter(|f| allow_b64 || *f != "b64_json")
        .cloned()
        .collect();
    props.insert(
        "response_format".into(),
        if allow_b64 {
            json!({"type": "string", "enum": formats, "default": "url",
                   "description": "Applies to the 200 answer: `data[].url` or `data[].b64_json` (base64 PNG)."})
        } else {
            json!({"type": "string", "enum": formats, "default": "url",
                   "description": "Only `url`; `b64_json` is 400 `invalid_value`."})
        },
    );
    props.insert("replyUrl".into(), reply_url(&format!(
        "Where to POST the job's webhooks (alias `webhook_url`; both with different values is 400 `invalid_value`). Must start with `http://` or `https://`, have a host and be at most {} characters (else 400 `invalid_value`, `param` naming the field as sent), and pass the destination rules (no private, loopback, link-local or other non-public address or name, no credentials; allow-list `WEBHOOK_ALLOW_HOSTS`), else 400 `invalid_reply_url` with `param: replyUrl`. Checked after the mode and before the price is held, and again before every delivery attempt.",
        jobs::REPLY_URL_LEN_MAX
    )));
    props.insert("webhook_url".into(), reply_url("Alias of `replyUrl`."));
    props.insert(
        "replyRef".into(),
        json!({
            "type": "string",
            "maxLength": jobs::REPLY_REF_LEN_MAX,
            "description": "Your correlation value, echoed as `replyRef` in the job object and at the top of every webhook body."
        }),
    );
    let mut events = vec![json!("progress"), json!("terminal"), json!("started")];
    events.extend(EventType::ALL.iter().map(|e| json!(e.as_str())));
    props.insert(
        "webhook_events".into(),
        json!({
            "type": "array",
            "items": {"type": "string", "enum": events},
            "examples": [["progress"]],
            "description": "Which optional webhooks `replyUrl` gets. `progress` (or `job.progress`) adds `job.progress`, one per step. `terminal` sends only the terminal event (no `job.started`), unless `started` or `job.started` is also listed. The terminal event names are accepted and change nothing (they are always sent). Any other value is 400 `invalid_value`; a string instead of an array is 400 `invalid_type`. No effect without `replyUrl`."
        }),
    );
    props.insert(
        "pollForResult".into(),
        json!({
            "type": "integer",
            "minimum": 1,
            "maximum": jobs::POLLS_MAX,
            "description": "useapi-style waiting: wait up to `pollForResult` × 3 s, then answer like `async_mode=true`. Ignored when `async_mode=true` or `Prefer: wait=N` is sent."
        }),
    );
}

/// The fields of `POST /v1/images/generations`, before [`lenient`].
fn image_props() -> Map<String, Value> {
    let mut props = Map::new();
    props.insert("prompt".into(), prompt());
    props.insert(
        "model".into(),
        json!({"type": "string", "enum": images::MODELS, "default": images::DEFAULT_MODEL}),
    );
    props.insert("width".into(), side());
    props.insert("height".into(), side());
    props.insert(
        "size".into(),
        json!({
            "type": "string",
            "pattern": images::SIZE_PATTERN,
            "examples": ["1024x768"],
            "description": format!("OpenAI-style `WxH` (`x` or `X`, spaces allowed around the numbers): each side {}–{} and a multiple of {}, written plainly. Instead of `width`/`height`: sending both is 400 `invalid_dimensions`.", images::SIDE_PX_MIN, images::SIDE_PX_MAX, images::SIDE_PX_STEP)
        }),
    );
    props.insert(
        "steps".into(),
        json!({"type": "integer", "minimum": images::STEPS_MIN, "maximum": images::STEPS_MAX, "default": images::STEPS_DEFAULT}),
    );
    props.insert("cfg".into(), cfg());
    props.insert("seed".into(), seed());
    props.insert(
        "input_files".into(),
        json!({
            "type": "array",
            "maxItems": images::INPUT_FILES_MAX,
            "items": filename(),
            "description": format!("img2img: up to {max} reference images, each the `filename` of one of your uploads or outputs (403 `file_not_yours` otherwise, before anything is charged; more than {max} is 400 `invalid_value`).", max = images::INPUT_FILES_MAX)
        }),
    );
    props.insert(
        "n".into(),
        json!({
            "type": "integer",
            "minimum": 1,
            "maximum": images::N_MAX,
            "default": 1,
            "description": format!("How many images, in one job: priced n × ${}; the i-th uses seed + i.", images::PRICE_PER_IMAGE.to_usd_string())
        }),
    );
    submit_options(&mut props, true);
    props
}

/// `POST /v1/images/generations` ([`images::ImageRequest::parse`]).
pub(crate) fn image_generation_request() -> Value {
    json!({
        "type": "object",
        "required": ["prompt"],
        "additionalProperties": false,
        "not": exclusive(&[]),
        "properties": lenient(image_props(), &["prompt"]),
        "description": format!("FLUX.2-dev, ${} per image. {LENIENT}", images::PRICE_PER_IMAGE.to_usd_string()),
        "example": {"prompt": "a kiln at dawn", "width": 1024, "height": 768},
    })
}

/// `POST /v1/video/generations` ([`video::VideoRequest::parse`]).
pub(crate) fn video_generation_request() -> Value {
    let sizes: Vec<String> = video::SIZES
        .iter()
        .map(|(w, h)| format!("{w}×{h}"))
        .collect();
    let outputs: Vec<String> = video::SIZES
        .iter()
        .map(|(w, h)| format!("{}×{}", w * video::UPSCALE, h * video::UPSCALE))
        .collect();
    let mut props = Map::new();
    props.insert("prompt".into(), prompt());
    props.insert(
        "negative_prompt".into(),
        json!({"type": "string", "maxLength": video::NEGATIVE_PROMPT_CHARS_MAX, "default": ""}),
    );
    props.insert(
        "model".into(),
        json!({
            "type": "string",
            "enum": video::MODELS,
            "default": video::DEFAULT_MODEL,
            "description": format!("`{}`: two stages (generate at the requested size, then refine and upscale), higher quality. `{}`: one distilled stage straight to the output size.", video::MODEL_FULL, video::MODEL_FAST)
        }),
    );
    props.insert(
        "width".into(),
        json!({
            "type": "integer",
            "enum": video::SIZES.iter().map(|s| s.0).collect::<Vec<_>>(),
            "default": video::SIZE_DEFAULT.0,
            "description": format!("With `height`, exactly one of {} (else 400 `invalid_dimensions`). The output is {}×: {}.", sizes.join(", "), video::UPSCALE, outputs.join(", "))
        }),
    );
    props.insert(
        "height".into(),
        json!({
            "type": "integer",
            "enum": video::SIZES.iter().map(|s| s.1).collect::<Vec<_>>(),
            "default": video::SIZE_DEFAULT.1,
        }),
    );
    props.insert(
        "num_frames".into(),
        json!({
            "type": "integer",
            "enum": (video::FRAMES_MIN..=video::FRAMES_MAX).step_by(video::FRAMES_STEP as usize).collect::<Vec<_>>(),
            "default": video::FRAMES_DEFAULT,
            "description": format!("{}–{} and of the form {}n+1 ({}, {}, …, {}); else 400 `invalid_num_frames`, whose message names the nearest valid values (100 → 97 or 105).", video::FRAMES_MIN, video::FRAMES_MAX, video::FRAMES_STEP, video::FRAMES_MIN, video::FRAMES_MIN + video::FRAMES_STEP, video::FRAMES_MAX)
        }),
    );
    props.insert(
        "fps".into(),
        json!({"type": "integer", "enum": [video::FPS], "default": video::FPS,
               "description": "Fixed; anything else is 400 `invalid_value`."}),
    );
    props.insert("seed".into(), seed());
    props.insert(
        "input_files".into(),
        json!({
            "type": "array",
            "maxItems": video::INPUT_FILES_MAX,
            "items": filename(),
            "description": format!("Image-to-video: at most {} image, the `filename` of one of your uploads or outputs (403 `file_not_yours` otherwise, before anything is charged; more is 400 `invalid_value`).", video::INPUT_FILES_MAX)
        }),
    );
    submit_options(&mut props, false);
    let price = |frames: u32| video::price(frames).to_usd_string();
    json!({
        "type": "object",
        "required": ["prompt"],
        "additionalProperties": false,
        "anyOf": video_sizes(),
        "description": format!(
            "LTX-2.3 text-to-video (image-to-video with `input_files`), ${} per second of video: ceil(num_frames × {} / {}) micro-dollars ({} frames → ${}; {} → ${}; {} → ${}). Same lenient body rules as images (numbers as strings, null or \"\" = absent); unknown fields (including the image fields `steps`, `cfg`, `size`, `n`) are 400 `unknown_parameter`.",
            crate::MicroUsd::from_micros(video::MICROS_PER_SECOND as i64).to_usd_string(),
            video::MICROS_PER_SECOND, video::FPS,
            video::FRAMES_DEFAULT, price(video::FRAMES_DEFAULT as u32),
            video::FRAMES_MIN, price(video::FRAMES_MIN as u32),
            video::FRAMES_MAX, price(video::FRAMES_MAX as u32),
        ),
        "properties": lenient(props, &["prompt"]),
        "example": {"prompt": "waves at dusk", "model": video::MODEL_FAST, "num_frames": 49},
    })
}

/// `width` and `height` of a video are one of [`video::SIZES`] together; either may be
/// left out only for the default size.
fn video_sizes() -> Value {
    let (w0, h0) = video::SIZE_DEFAULT;
    let mut any = vec![json!({
        "description": format!("{w0}×{h0} (either side may be left out: the default is {w0}×{h0})"),
        "properties": {"width": {"enum": [w0, null]}, "height": {"enum": [h0, null]}}
    })];
    any.extend(
        video::SIZES
            .iter()
            .filter(|s| **s != video::SIZE_DEFAULT)
            .map(|(w, h)| {
                json!({
                    "description": format!("{w}×{h}"),
                    "required": ["width", "height"],
                    "properties": {"width": {"const": w}, "height": {"const": h}}
                })
            }),
    );
    json!(any)
}

/// `POST /flux/v1/{model}` ([`crate::bfl::translate`], then the image parser).
pub(crate) fn bfl_request() -> Value {
    let mut props = image_props();
    props.remove("model");
    props["width"] = with_description(
        side(),
        format!("A multiple of {} (BFL allows 32).", images::SIDE_PX_STEP),
    );
    props["pollForResult"]["description"] =
        json!("Validated (1–20) but without effect: the façade always answers at once.");
    props["webhook_url"]["description"] =
        json!("Kiln's alias of `replyUrl`: Kiln's signed webhooks (Standard Webhooks), not BFL's.");
    props.insert(
        "guidance".into(),
        with_description(cfg(), "Kiln's `cfg`; errors name `cfg`.".into()),
    );
    props.insert(
        "output_format".into(),
        json!({"type": "string", "pattern": "^([pP][nN][gG])?$",
               "description": "Only PNG is produced: `png` in any case, or empty."}),
    );
    props.insert(
        "image_prompt".into(),
        json!({"type": "string", "maxLength": 0,
               "description": "Not available (Redux): only empty or null; an image is 400 `invalid_value`."}),
    );
    let mut props = lenient(props, &["prompt"]);
    // Not through `lenient`: `false` also as a string, in any case.
    props.insert(
        "prompt_upsampling".into(),
        json!({
            "anyOf": [
                {"type": "boolean", "const": false},
                {"type": "null"},
                {"type": "string", "pattern": "^([fF][aA][lL][sS][eE])?$"}
            ],
            "description": "Not offered: only false (`false`, `\"false\"` in any case, empty or null)."
        }),
    );
    json!({
        "type": "object",
        "required": ["prompt"],
        "description": "A BFL-style body, translated into an image request (`ImageGenerationRequest`) for the model in the path: `guidance` is renamed `cfg`, and every other field is passed on with the image endpoint's rules, so Kiln's own fields (`steps`, `cfg`, `size`, `replyUrl`, `webhook_url`, `replyRef`, `webhook_events`, …) work and other BFL fields (`safety_tolerance`, `aspect_ratio`, `raw`, `webhook_secret`, …) are 400 `unknown_parameter`. A `model` field is 400 `unknown_parameter` (the model is in the path). `output_format` other than `png` (or empty), `prompt_upsampling` other than false (`false`, `\"false\"` or empty), a non-empty `image_prompt`, and `guidance` together with `cfg` are 400 `invalid_value`.",
        "properties": props,
        "additionalProperties": false,
        "not": exclusive(&[["guidance", "cfg"]]),
        "example": {"prompt": "draw a rainbow", "width": 1024, "height": 768, "guidance": 3.5, "output_format": "png"},
    })
}

fn with_description(mut schema: Value, description: String) -> Value {
    schema["description"] = json!(description);
    schema
}

/// `POST /v1/keys` ([`keys::KeyCreate::parse`]).
pub(crate) fn key_create_request() -> Value {
    let props = json!({
        "label": {
            "type": "string",
            "maxLength": keys::LABEL_CHARS_MAX,
            "pattern": super::NO_CONTROLS_PATTERN,
            "default": "default",
            "description": format!("At most {} characters, no control characters (else 400 `invalid_value`). `\"\"`/`null` mean the default.", keys::LABEL_CHARS_MAX)
        },
        "mode": {
            "type": "string",
            "enum": ["live", "test"],
            "default": "live",
            "description": "`test` creates an `sk-test-` key (free, test mode). `live` creates an `sk-trial-` key on a trial account, `sk-gen-` on a paid one. Other values: 400 `invalid_value`."
        },
        "rate_limit_per_min": {
            "type": "integer",
            "minimum": 1,
            "maximum": keys::LIMIT_PER_MIN_MAX,
            "description": format!("1–{} (a string holding an integer is accepted too, as everywhere); out of range is 400 `out_of_range`. Can only lower the deployment's RATE_LIMIT_PER_MIN.", keys::LIMIT_PER_MIN_MAX)
        }
    });
    let Value::Object(props) = props else {
        unreachable!("an object")
    };
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "All fields optional; an empty body counts as `{}`. Unknown fields are 400 `unknown_parameter`.",
        "properties": lenient(props, &[]),
        "example": {"label": "n8n", "rate_limit_per_min": 60},
    })
}

/// `POST /v1/accounts` ([`accounts::parse_registration`]).
pub(crate) fn account_request() -> Value {
    json!({
        "type": "object",
        "required": ["email"],
        "additionalProperties": false,
        "properties": {
            "email": {
                "type": "string",
                "maxLength": accounts::EMAIL_LEN_MAX,
                "format": "email",
                "description": "Normalised before the one-trial-per-email check: trimmed, lowercased, `+tag` removed; for gmail.com/googlemail.com dots removed and the domain folded to gmail.com."
            }
        },
        "example": {"email": "you@example.com"},
    })
}

/// `POST /v1/session` ([`crate::dashboard::parse_sign_in`]): exactly one of `email` and
/// `api_key`, where `null` and `""` count as absent.
pub(crate) fn session_request() -> Value {
    // The address rules of POST /v1/accounts; the description is the field's own, below.
    let mut email = account_request()["properties"]["email"].clone();
    email
        .as_object_mut()
        .expect("a schema")
        .remove("description");
    let sent = |field: &str| json!({"required": [field], "properties": {field: {"type": "string", "minLength": 1}}});
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "email": {
                "type": ["string", "null"],
                "anyOf": [{"type": "null"}, {"maxLength": 0}, email],
                "description": "Sign up: a new trial for this address (the rules of POST /v1/accounts)."
            },
            "api_key": {
                "type": ["string", "null"],
                "examples": ["sk-gen-…"],
                "description": "Sign in: one of the account's live keys (401 `invalid_api_key` otherwise)."
            }
        },
        "anyOf": [sent("email"), sent("api_key")],
        "not": {"allOf": [sent("email"), sent("api_key")]},
        "description": "Exactly one of `email` and `api_key` (`null` or `\"\"` counts as absent): neither is 400 `missing_parameter`, both 400 `invalid_value`.",
        "example": {"email": "you@example.com"},
    })
}

/// `POST /admin/accounts/{id}/credits` ([`accounts::Adjustment::parse`]).
pub(crate) fn admin_credit_request() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["amount_usd", "reason"],
        "properties": {
            "amount_usd": {
                "type": ["number", "string"],
                "description": "Dollars, exact: a JSON number or a decimal string, at most six decimals and ten whole digits, optional leading `-`, no exponent in strings. Non-zero; a negative amount may not bring the balance below the held amount (400 `invalid_value`).",
                "examples": ["3.5", -2]
            },
            "reason": {
                "type": "string",
                "minLength": 1,
                "maxLength": accounts::REASON_CHARS_MAX,
                "description": format!("1–{} characters, not only whitespace; kept as the ledger row's note (shown in /v1/usage).", accounts::REASON_CHARS_MAX)
            }
        },
        "example": {"amount_usd": "5.00", "reason": "support refund"},
    })
}
