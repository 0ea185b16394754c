//! `POST /v1/images/generations` (FLUX.2-dev): parameter rules, defaults and price.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};
use crate::fields::Fields;
use crate::ids::Filename;
use crate::jobs::SubmitOptions;
use crate::money::MicroUsd;

pub const DEFAULT_MODEL: &str = "flux2-dev";
/// The image models in the catalog.
pub const MODELS: &[&str] = &[DEFAULT_MODEL];
/// $0.02 per image.
pub const PRICE_PER_IMAGE: MicroUsd = MicroUsd::from_micros(20_000);

/// Long enough for detailed prompts; bounded so a job record stays small.
pub const PROMPT_CHARS_MAX: usize = 4000;
/// The smallest side FLUX.2-dev renders well.
pub const SIDE_PX_MIN: i64 = 512;
/// The largest side that fits one GPU slot's memory budget.
pub const SIDE_PX_MAX: i64 = 2048;
/// The latent grid: sides must be a multiple of this.
pub const SIDE_PX_STEP: i64 = 64;
pub const SIDE_PX_DEFAULT: i64 = 1024;
pub const STEPS_MIN: i64 = 8;
pub const STEPS_MAX: i64 = 50;
pub const STEPS_DEFAULT: i64 = 20;
pub const CFG_MIN: f64 = 1.0;
pub const CFG_MAX: f64 = 10.0;
pub const CFG_DEFAULT: f64 = 4.0;
/// Seeds travel through JSON and JS numbers: keep them exactly representable.
pub const SEED_MAX: i64 = (1 << 53) - 1;
/// img2img takes at most this many reference images.
pub const INPUT_FILES_MAX: usize = 4;
/// One request makes at most this many images (`n`).
pub const N_MAX: i64 = 4;

/// What the engine needs to render an image; the seed is concrete here.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageParams {
    pub prompt: String,
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub cfg: f64,
    pub seed: u64,
    /// How many images: the i-th is rendered with `seed + i`.
    #[serde(default = "one")]
    pub n: u32,
}

fn one() -> u32 {
    1
}

/// A validated image request. `seed` is `None` when the client asked for a random one;
/// the edge draws it so the job can report the seed used.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRequest {
    pub model: String,
    pub prompt: String,
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub cfg: f64,
    pub seed: Option<u64>,
    /// How many images (1–[`N_MAX`]), each priced [`PRICE_PER_IMAGE`].
    pub n: u32,
    pub input_files: Vec<Filename>,
    pub options: SubmitOptions,
}

impl ImageRequest {
    /// Parses and validates a request body; the error names the first bad parameter.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let mut f = Fields::from_body(body)?;
        let prompt = parse_prompt(&mut f)?;
        let model = f
            .string("model")?
            .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        if !MODELS.contains(&model.as_str()) {
            return Err(ApiError::invalid_param(
                "model",
                ErrorCode::ModelNotFound,
                format!(
                    "Unknown image model `{model}`; available: {}.",
                    MODELS.join(", ")
                ),
            ));
        }
        let (width, height) = dimensions(&mut f)?;
        let steps = int_in(&mut f, "steps", STEPS_MIN, STEPS_MAX, STEPS_DEFAULT)?;
        let cfg = match f.float("cfg")? {
            None => CFG_DEFAULT,
            Some(c) if (CFG_MIN..=CFG_MAX).contains(&c) => c,
            Some(c) => {
                return Err(ApiError::invalid_param(
                    "cfg",
                    ErrorCode::OutOfRange,
                    format!("`cfg` must be between {CFG_MIN:.1} and {CFG_MAX:.1} (got {c})."),
                ))
            }
        };
        let seed = parse_seed(&mut f)?;
        let input_files = parse_input_files(&mut f, INPUT_FILES_MAX)?;
        let n = int_in(&mut f, "n", 1, N_MAX, 1)?;
        let options = SubmitOptions::parse(&mut f, true)?;
        f.finish()?;
        Ok(Self {
            model,
            prompt,
            width: width as u32,
            height: height as u32,
            steps: steps as u32,
            cfg,
            seed,
            n: n as u32,
            input_files,
            options,
        })
    }

    /// `flux2-dev:txt2img` or `flux2-dev:img2img`: the workflow the origin runs and
    /// the key under which durations are estimated.
    pub fn workflow(&self) -> String {
        let mode = if self.input_files.is_empty() {
            "txt2img"
        } else {
            "img2img"
        };
        format!("{}:{mode}", self.model)
    }

    /// `n` × [`PRICE_PER_IMAGE`].
    pub fn price(&self) -> MicroUsd {
        MicroUsd::from_micros(PRICE_PER_IMAGE.micros() * i64::from(self.n))
    }

    pub fn params(&self, seed: u64) -> ImageParams {
        ImageParams {
            prompt: self.prompt.clone(),
            width: self.width,
            height: self.height,
            steps: self.steps,
            cfg: self.cfg,
            seed: self.seed.unwrap_or(seed),
            n: self.n,
        }
    }
}

fn dimensions(f: &mut Fields) -> Result<(i64, i64), ApiError> {
    let size = f.string("size")?;
    let width = f.int("width")?;
    let height = f.int("height")?;
    let (width, height) = match size {
        None => (
            width.unwrap_or(SIDE_PX_DEFAULT),
            height.unwrap_or(SIDE_PX_DEFAULT),
        ),
        Some(_) if width.is_some() || height.is_some() => {
            return Err(ApiError::invalid_param(
                "size",
                ErrorCode::InvalidDimensions,
                "Send `size` or `width`/`height`, not both.",
            ))
        }
        Some(size) => {
            let Some((sw, sh)) = parse_size(&size) else {
                return Err(ApiError::invalid_param(
                    "size",
                    ErrorCode::InvalidDimensions,
                    format!("`size` must look like \"1024x768\" (got {size:?})."),
                ));
            };
            check_side("size", sw)?;
            check_side("size", sh)?;
            (sw, sh)
        }
    };
    check_side("width", width)?;
    check_side("height", height)?;
    Ok((width, height))
}

/// The JSON Schema pattern of `size` (OpenAPI document, model catalog): each side one of
/// the valid sides written plainly, spaces allowed around them.
pub const SIZE_PATTERN: &str = "^ *(512|576|640|704|768|832|896|960|1024|1088|1152|1216|1280|1344|1408|1472|1536|1600|1664|1728|1792|1856|1920|1984|2048) *[xX] *(512|576|640|704|768|832|896|960|1024|1088|1152|1216|1280|1344|1408|1472|1536|1600|1664|1728|1792|1856|1920|1984|2048) *$";

/// `size` as `WxH`: two whole numbers written plainly (digits, no sign, no leading
/// zero) around an `x` or `X`, spaces allowed around each. Whether they are valid sides
/// is [`check_side`]'s to say. Together the two accept exactly the OpenAPI document's
/// pattern for `size`.
pub fn parse_size(size: &str) -> Option<(i64, i64)> {
    let (w, h) = size.split_once(['x', 'X'])?;
    let side = |s: &str| {
        let s = s.trim_matches(' ');
        let plain = (1..=4).contains(&s.len())
            && !s.starts_with('0')
            && s.bytes().all(|b| b.is_ascii_digit());
        plain.then(|| s.parse::<i64>().ok()).flatten()
    };
    Some((side(w)?, side(h)?))
}

fn check_side(param: &str, px: i64) -> Result<(), ApiError> {
    if (SIDE_PX_MIN..=SIDE_PX_MAX).contains(&px) && px % SIDE_PX_STEP == 0 {
        return Ok(());
    }
    let lower = (px.clamp(SIDE_PX_MIN, SIDE_PX_MAX) / SIDE_PX_STEP) * SIDE_PX_STEP;
    let upper = (lower + SIDE_PX_STEP).min(SIDE_PX_MAX);
    let hint = if (SIDE_PX_MIN..=SIDE_PX_MAX).contains(&px) {
        format!(" Nearest valid values: {lower} or {upper}.")
    } else {
        String::new()
    };
    Err(ApiError::invalid_param(
        param,
        ErrorCode::InvalidDimensions,
        format!(
            "`{param}` must be {SIDE_PX_MIN}–{SIDE_PX_MAX} and a multiple of {SIDE_PX_STEP} (got {px}).{hint}"
        ),
    ))
}

/// `prompt`: required, 1–4000 characters, not only whitespace, no control characters
/// but line breaks and tabs.
pub(crate) fn parse_prompt(f: &mut Fields) -> Result<String, ApiError> {
    let prompt = f.required_string("prompt")?;
    let prompt_chars = prompt.chars().count();
    if prompt.trim().is_empty() || prompt_chars > PROMPT_CHARS_MAX {
        return Err(ApiError::invalid_param(
            "prompt",
            ErrorCode::InvalidValue,
            format!("`prompt` must be 1–{PROMPT_CHARS_MAX} characters (got {prompt_chars})."),
        ));
    }
    // Line breaks and tabs are text; NUL and other control characters are not.
    if let Some(c) = prompt
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::invalid_param(
            "prompt",
            ErrorCode::InvalidValue,
            format!(
                "`prompt` must not contain control characters (found U+{:04X}).",
                u32::from(c)
            ),
        ));
    }
    Ok(prompt)
}

/// An integer parameter with a range and a default.
pub(crate) fn int_in(
    f: &mut Fields,
    name: &str,
    min: i64,
    max: i64,
    default: i64,
) -> Result<i64, ApiError> {
    match f.int(name)? {
        None => Ok(default),
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(v) => Err(ApiError::invalid_param(
            name,
            ErrorCode::OutOfRange,
            format!("`{name}` must be between {min} and {max} (got {v})."),
        )),
    }
}

/// `seed`: -1 (or absent) for random, else 0..=2^53-1.
pub(crate) fn parse_seed(f: &mut Fields) -> Result<Option<u64>, ApiError> {
    match f.int("seed")? {
        None | Some(-1) => Ok(None),
        Some(s) if (0..=SEED_MAX).contains(&s) => Ok(Some(s as u64)),
        Some(s) => Err(ApiError::invalid_param(
            "seed",
            ErrorCode::OutOfRange,
            format!("`seed` must be -1 (random) or between 0 and {SEED_MAX} (got {s})."),
        )),
    }
}

/// `input_files`: filenames of the caller's uploads or outputs. Ownership is checked
/// by the edge, which knows who owns what.
pub(crate) fn parse_input_files(f: &mut Fields, max: usize) -> Result<Vec<Filename>, ApiError> {
    let names = f.string_list("input_files")?.unwrap_or_default();
    if names.len() > max {
        return Err(ApiError::invalid_param(
            "input_files",
            ErrorCode::InvalidValue,
            format!(
                "At most {max} input file(s) are accepted (got {}).",
                names.len()
            ),
        ));
    }
    names
        .iter()
        .map(|n| {
            Filename::parse(n).ok_or_else(|| {
                ApiError::invalid_param(
                    "input_files",
                    ErrorCode::InvalidValue,
                    format!("{n:?} is not a Kiln filename; use the `filename` from an upload or an output."),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(v: Value) -> Result<ImageRequest, ApiError> {
        ImageRequest::parse(v.to_string().as_bytes())
    }

    #[test]
    fn defaults() {
        let r = parse(json!({"prompt": "a cat"})).unwrap();
        assert_eq!(
            (r.model.as_str(), r.width, r.height, r.steps),
            ("flux2-dev", 1024, 1024, 20)
        );
        assert_eq!((r.cfg, r.seed), (4.0, None));
        assert_eq!(r.workflow(), "flux2-dev:txt2img");
        assert_eq!(r.price(), MicroUsd::from_cents(2));
        assert_eq!(r.params(7).seed, 7);
    }

    #[test]
    fn accepted_variants() {
        let r = parse(
            json!({"prompt": "x", "size": "512x768", "seed": 42, "steps": "8", "cfg": 10,
                             "n": 1, "response_format": "b64_json", "replyRef": "r1"}),
        )
        .unwrap();
        assert_eq!(
            (r.width, r.height, r.seed, r.steps, r.cfg),
            (512, 768, Some(42), 8, 10.0)
        );
        assert_eq!(r.params(1).seed, 42);
        let r =
            parse(json!({"prompt": "x", "input_files": ["job_0000000000000000000000000a-0.png"]}))
                .unwrap();
        assert_eq!(r.workflow(), "flux2-dev:img2img");
    }

    #[test]
    fn invalid_parameters_name_the_param() {
        let long = "p".repeat(PROMPT_CHARS_MAX + 1);
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!({}), "prompt", "missing_parameter"),
            (json!({"prompt": ""}), "prompt", "invalid_value"),
            (json!({"prompt": "   "}), "prompt", "invalid_value"),
            (json!({"prompt": long}), "prompt", "invalid_value"),
            (json!({"prompt": 5}), "prompt", "invalid_type"),
            (
                json!({"prompt": "x", "model": "sdxl"}),
                "model",
                "model_not_found",
            ),
            (
                json!({"prompt": "x", "width": 500}),
                "width",
                "invalid_dimensions",
            ),
            (
                json!({"prompt": "x", "width": 4096}),
                "width",
                "invalid_dimensions",
            ),
            (
                json!({"prompt": "x", "height": 448}),
                "height",
                "invalid_dimensions",
            ),
            (
                json!({"prompt": "x", "height": "tall"}),
                "height",
                "invalid_type",
            ),
            (
                json!({"prompt": "x", "size": "big"}),
                "size",
                "invalid_dimensions",
            ),
            (
                json!({"prompt": "x", "size": "1000x1000"}),
                "size",
                "invalid_dimensions",
            ),
            (
                json!({"prompt": "x", "size": "512x512", "width": 768}),
                "size",
                "invalid_dimensions",
            ),
            // `size` or `width`/`height`, never both, even when they agree.
            (
                json!({"prompt": "x", "size": "512x768", "width": 512}),
                "size",
                "invalid_dimensions",
            ),
            (
                json!({"prompt": "x", "size": "512x768", "height": "768"}),
                "size",
                "invalid_dimensions",
            ),
            (json!({"prompt": "x", "steps": 7}), "steps", "out_of_range"),
            (json!({"prompt": "x", "steps": 51}), "steps", "out_of_range"),
            (json!({"prompt": "x", "cfg": 0.5}), "cfg", "out_of_range"),
            (json!({"prompt": "x", "cfg": 10.5}), "cfg", "out_of_range"),
            (json!({"prompt": "x", "seed": -2}), "seed", "out_of_range"),
            (
                json!({"prompt": "x", "seed": 9007199254740992_i64}),
                "seed",
                "out_of_range",
            ),
            (json!({"prompt": "x", "n": 5}), "n", "out_of_range"),
            (
                json!({"prompt": "x", "input_files": ["a.png", "b.png", "c.png", "d.png", "e.png"]}),
                "input_files",
                "invalid_value",
            ),
            (
                json!({"prompt": "x", "input_files": ["../etc/passwd"]}),
                "input_files",
                "invalid_value",
            ),
            (
                json!({"prompt": "x", "input_files": "a.png"}),
                "input_files",
                "invalid_type",
            ),
            (
                json!({"prompt": "x", "response_format": "jpeg"}),
                "response_format",
                "invalid_value",
            ),
            (
                json!({"prompt": "x", "replyRef": "r".repeat(1025)}),
                "replyRef",
                "invalid_value",
            ),
            (
                json!({"prompt": "x", "replyUrl": "ftp://example.com/hook"}),
                "replyUrl",
                "invalid_value",
            ),
            (
                json!({"prompt": "x", "pollForResult": 21}),
                "pollForResult",
                "out_of_range",
            ),
            (
                json!({"prompt": "x", "colour": "red"}),
                "colour",
                "unknown_parameter",
            ),
        ];
        for (body, param, code) in cases {
            let err = parse(body.clone()).expect_err(&body.to_string());
            assert_eq!(
                (err.status(), err.param(), err.code().as_str()),
                (400, Some(param), code),
                "{body}"
            );
        }
    }

    /// `size` is read exactly as the OpenAPI document's pattern says:
    /// `^ *(side) *[xX] *(side) *$`, a side being 512–2048 in steps of 64.
    #[test]
    fn size_follows_the_documented_pattern() {
        for ok in [
            "512x512",
            "2048X2048",
            " 1024 x 768 ",
            "1984x576",
            "1024x 768",
        ] {
            let r = parse(json!({"prompt": "x", "size": ok})).expect(ok);
            assert!(r.width >= 512 && r.height >= 512, "{ok}");
        }
        for bad in [
            "0512x512",
            "+512x512",
            "512x-512",
            "512x512x512",
            "512*512",
            "512",
            "x512",
            "\t512x512",
            "512x512\n",
            "5 12x512",
            "448x512",
            "2112x512",
            "520x512",
            "99999999999999999999x512",
            "５１２x512",
        ] {
            let err = parse(json!({"prompt": "x", "size": bad})).expect_err(bad);
            assert_eq!(
                (err.param(), err.code().as_str()),
                (Some("size"), "invalid_dimensions"),
                "{bad:?}"
            );
        }
        // `null` and `""` are absent, so they do not count as sending both.
        let r = parse(json!({"prompt": "x", "size": "", "width": 512})).unwrap();
        assert_eq!((r.width, r.height), (512, 1024));
        let r = parse(json!({"prompt": "x", "size": "512x768", "width": null})).unwrap();
        assert_eq!((r.width, r.height), (512, 768));
    }

    #[test]
    fn the_size_pattern_lists_every_valid_side() {
        let sides: Vec<String> = (SIDE_PX_MIN..=SIDE_PX_MAX)
            .step_by(SIDE_PX_STEP as usize)
            .map(|s| s.to_string())
            .collect();
        let alternation = format!("({})", sides.join("|"));
        assert_eq!(
            SIZE_PATTERN,
            format!("^ *{alternation} *[xX] *{alternation} *$")
        );
        // And every number up to 4 digits is a valid side exactly when it is listed.
        for n in 1..10_000 {
            let ok = parse(json!({"prompt": "x", "size": format!("{n}x512")})).is_ok();
            assert_eq!(ok, sides.contains(&n.to_string()), "{n}");
        }
    }

    #[test]
    fn side_errors_suggest_neighbours() {
        let err = parse(json!({"prompt": "x", "width": 1000})).unwrap_err();
        assert!(err.message().contains("960 or 1024"), "{}", err.message());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::proptest_json::{assert_named_400, object_body};
    use proptest::prelude::*;

    const FIELDS: &[&str] = &[
        "prompt",
        "model",
        "size",
        "width",
        "height",
        "steps",
        "cfg",
        "seed",
        "input_files",
        "n",
        "replyUrl",
        "webhook_url",
        "replyRef",
        "response_format",
        "pollForResult",
        "webhook_events",
    ];

    proptest! {
        /// Any body is a request within every documented bound, or a 400 that names the
        /// parameter at fault (or says the body is not JSON).
        #[test]
        fn any_image_body_is_valid_or_a_named_400(body in object_body(FIELDS)) {
            match ImageRequest::parse(&body) {
                Ok(r) => {
                    prop_assert!(MODELS.contains(&r.model.as_str()));
                    let chars = r.prompt.chars().count();
                    prop_assert!(!r.prompt.chars().any(|c| c.is_control() && !"\n\r\t".contains(c)));
                    prop_assert!((1..=PROMPT_CHARS_MAX).contains(&chars));
                    for side in [r.width, r.height] {
                        let side = i64::from(side);
                        prop_assert!((SIDE_PX_MIN..=SIDE_PX_MAX).contains(&side));
                        prop_assert_eq!(side % SIDE_PX_STEP, 0);
                    }
                    prop_assert!((STEPS_MIN..=STEPS_MAX).contains(&i64::from(r.steps)));
                    prop_assert!((CFG_MIN..=CFG_MAX).contains(&r.cfg));
                    prop_assert!(r.seed.is_none_or(|s| s <= SEED_MAX as u64));
                    prop_assert!(r.input_files.len() <= INPUT_FILES_MAX);
                    prop_assert!((1..=N_MAX).contains(&i64::from(r.n)));
                    prop_assert_eq!(r.price().micros(), PRICE_PER_IMAGE.micros() * i64::from(r.n));
                }
                Err(e) => assert_named_400(&e)?,
            }
        }
    }
}
