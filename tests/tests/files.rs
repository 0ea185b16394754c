//! End-to-end: uploads (`POST /v1/uploads`, `GET /v1/uploads/mine`,
//! `DELETE /v1/uploads/{id}`) against the real stack. Formats are recognised from the
//! bytes, never from the name; the same bytes twice are one file; limits answer in the
//! API's error shape and store nothing.

mod common;

use std::io::Cursor;

use common::*;
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, ImageFormat, Rgba, RgbaImage};
use reqwest::blocking::multipart::{Form, Part};
use serde_json::Value;

/// How many files a list (`/v1/uploads/mine`, `/v1/generations/mine`) shows.
fn listed(path: &str, key: &str) -> usize {
    let list = get(path, key);
    assert_eq!(list.status, 200, "{}", list.body);
    list.body["data"].as_array().unwrap().len()
}

fn pixels(w: u32, h: u32, seed: u8) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        Rgba([(x as u8).wrapping_add(seed), y as u8, seed, 255])
    })
}

fn encode(img: &RgbaImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => image::DynamicImage::ImageRgba8(img.clone())
            .to_rgb8()
            .write_to(&mut out, format)
            .unwrap(),
        _ => img.write_to(&mut out, format).unwrap(),
    }
    out.into_inner()
}

fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgba);
    let mut writer = enc.write_header().unwrap();
    writer
        .write_image_data(pixels(w, h, seed).as_raw())
        .unwrap();
    drop(writer);
    out
}

fn animated_gif(w: u32, h: u32, frames: u8) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        enc.set_repeat(Repeat::Infinite).unwrap();
        for i in 0..frames {
            let frame = Frame::from_parts(
                pixels(w, h, i * 40),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            );
            enc.encode_frame(frame).unwrap();
        }
    }
    out
}

/// A PNG whose header declares `w`×`h` (a decompression bomb when huge): signature,
/// IHDR with a valid CRC, one empty IDAT, IEND.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut typed = kind.to_vec();
        typed.extend_from_slice(data);
        out.extend_from_slice(&typed);
        out.extend_from_slice(&crc32(&typed).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[]);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Format, width, height, frame count.
type Probe<'a> = (&'a str, u64, u64, u64);

fn probe_of(r: &Reply) -> (String, u64, u64, u64) {
    (
        r.body["format"].as_str().unwrap_or_default().to_owned(),
        r.body["width"].as_u64().unwrap_or(0),
        r.body["height"].as_u64().unwrap_or(0),
        r.body["frame_count"].as_u64().unwrap_or(0),
    )
}

#[test]
fn each_format_is_recognised_from_its_bytes_with_its_probe() {
    let key = new_account();
    let cases: Vec<(&str, Vec<u8>, Probe)> = vec![
        ("a.png", png(64, 48, 1), ("png", 64, 48, 1)),
        (
            "b.jpg",
            encode(&pixels(40, 30, 2), ImageFormat::Jpeg),
            ("jpeg", 40, 30, 1),
        ),
        ("c.gif", animated_gif(20, 10, 3), ("gif", 20, 10, 3)),
        (
            "d.webp",
            encode(&pixels(33, 17, 4), ImageFormat::WebP),
            ("webp", 33, 17, 1),
        ),
        // The name says nothing: a JPEG called .png is a JPEG.
        (
            "lies.png",
            encode(&pixels(16, 16, 5), ImageFormat::Jpeg),
            ("jpeg", 16, 16, 1),
        ),
    ];
    for (name, bytes, (format, w, h, frames)) in cases {
        let r = upload(&key, name, bytes.clone());
        assert_eq!(r.status, 201, "{name}: {}", r.body);
        assert_eq!(
            probe_of(&r),
            (format.to_owned(), w, h, frames),
            "{name}: {}",
            r.body
        );
        assert_eq!(r.body["size_bytes"].as_u64(), Some(bytes.len() as u64));
        assert_eq!(r.body["original_filename"], name);
        assert_eq!(r.body["deduplicated"], false);
        let id = r.body["id"].as_str().unwrap();
        assert!(id.starts_with("up_"), "{}", r.body);
        let filename = r.body["filename"].as_str().unwrap();
        assert!(
            filename.starts_with(id)
                && filename.ends_with(&format!(
                    ".{}",
                    if format == "jpeg" { "jpg" } else { format }
                )),
            "{}",
            r.body
        );
    }
    assert_eq!(listed("/v1/uploads/mine?limit=100", &key), 5);
}

#[test]
fn the_same_bytes_twice_are_one_file() {
    let key = new_account();
    let bytes = png(32, 32, 9);
    let first = upload(&key, "one.png", bytes.clone());
    assert_eq!(first.status, 201, "{}", first.body);
    let second = upload(&key, "two.png", bytes.clone());
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["deduplicated"], true);
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(second.body["filename"], first.body["filename"]);
    // Another account's copy is its own file.
    let other = upload(&new_account(), "one.png", bytes);
    assert_eq!(other.body["deduplicated"], false);
    assert_ne!(other.body["id"], first.body["id"]);
    assert_eq!(listed("/v1/uploads/mine", &key), 1);
}

#[test]
fn refused_uploads_get_the_error_shape_and_store_nothing() {
    let key = new_account();
    let too_big = vec![0u8; 21_000_000];
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("big.png", too_big, 413, "payload_too_large"),
        (
            "notes.png",
            b"just some text, not an image\n".to_vec(),
            415,
            "unsupported_media_type",
        ),
        ("empty.png", Vec::new(), 415, "unsupported_media_type"),
        (
            "bomb.png",
            png_declaring(100_000, 100_000),
            400,
            "image_too_large",
        ),
    ];
    for (name, bytes, status, code) in cases {
        let r = upload(&key, name, bytes);
        assert_eq!(r.status, status, "{name}: {}", r.body);
        assert_eq!(error_of(&r).0, code, "{name}: {}", r.body);
    }
    // Not multipart, and no `file` field.
    let r = post("/v1/uploads", &key, &serde_json::json!({"file": "x"}));
    assert_eq!(
        (r.status, error_of(&r).0.as_str()),
        (415, "unsupported_media_type"),
        "{}",
        r.body
    );
    // The form has one field, `file`: another field or two files are 400s, and so is a
    // form with no part at all, which cannot be read (RFC 2046 wants one part).
    let multipart = |form: Form| {
        reply(
            client()
                .post(format!("{}/v1/uploads", env().edge))
                .bearer_auth(&key)
                .multipart(form)
                .send()
                .unwrap(),
        )
    };
    let file = || Part::bytes(png(8, 8, 1)).file_name("a.png");
    let forms: Vec<(Form, &str, Option<&str>)> = vec![
        (Form::new(), "invalid_body", None),
        (
            Form::new().text("other", "x"),
            "unknown_parameter",
            Some("other"),
        ),
        (
            Form::new().part("file", file()).text("purpose", "x"),
            "unknown_parameter",
            Some("purpose"),
        ),
        (
            Form::new().part("file", file()).part("file", file()),
            "invalid_value",
            Some("file"),
        ),
    ];
    for (form, code, param) in forms {
        let r = multipart(form);
        assert_eq!(
            (r.status, error_of(&r)),
            (400, (code.into(), param.map(str::to_owned))),
            "{}",
            r.body
        );
    }
    let list = get("/v1/uploads/mine", &key);
    assert_eq!(list.body["data"], Value::Array(vec![]), "{}", list.body);
}

#[test]
fn uploads_are_listed_newest_first_and_deleted_by_their_owner_only() {
    let key = new_account();
    let ids: Vec<String> = (0..3)
        .map(|i| {
            let r = upload(&key, "x.png", png(8, 8, i));
            assert_eq!(r.status, 201, "{}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let page = get("/v1/uploads/mine?limit=2", &key);
    let newest: Vec<&str> = page.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(newest, [ids[2].as_str(), ids[1].as_str()], "{}", page.body);
    assert_eq!(page.body["has_more"], true);
    let rest = get("/v1/uploads/mine?limit=2&offset=2", &key);
    assert_eq!(rest.body["data"][0]["id"], ids[0].as_str());
    assert_eq!(rest.body["has_more"], false);
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("offset=-1", "offset"),
    ] {
        let r = get(&format!("/v1/uploads/mine?{query}"), &key);
        assert_eq!(
            (r.status, error_of(&r).1),
            (400, Some(param.to_owned())),
            "{query}: {}",
            r.body
        );
    }

    // Someone else's id is not found for them, and stays.
    let other = new_account();
    let r = delete(&format!("/v1/uploads/{}", ids[0]), &other);
    assert_eq!(
        (r.status, error_of(&r).0.as_str()),
        (404, "file_not_found"),
        "{}",
        r.body
    );
    let r = delete(&format!("/v1/uploads/{}", ids[0]), &key);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = delete(&format!("/v1/uploads/{}", ids[0]), &key);
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(listed("/v1/uploads/mine", &key), 2);
}

#[test]
fn outputs_are_listed_as_generations_and_deleted_by_their_owner() {
    let key = new_account();
    let r = post(
        "/v1/images/generations",
        &key,
        &serde_json::json!({"prompt": "a listed output", "width": 512, "height": 768}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let url = r.body["data"][0]["url"].as_str().unwrap().to_owned();
    let job_id = r.body["job_id"].as_str().unwrap().to_owned();
    let list = get("/v1/generations/mine", &key);
    assert_eq!(list.status, 200, "{}", list.body);
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{}", list.body);
    let out = &data[0];
    assert_eq!(
        (out["url"].as_str(), out["job_id"].as_str()),
        (Some(url.as_str()), Some(job_id.as_str()))
    );
    assert_eq!(
        (
            out["width"].as_u64(),
            out["height"].as_u64(),
            out["format"].as_str()
        ),
        (Some(512), Some(768), Some("png"))
    );
    let filename = out["filename"].as_str().unwrap().to_owned();

    // Another account sees none, and cannot delete it.
    let other = new_account();
    assert_eq!(
        get("/v1/generations/mine", &other).body["data"],
        Value::Array(vec![])
    );
    let r = delete(&format!("/v1/generations/{filename}"), &other);
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(download(&url).0, 200);

    let r = delete(&format!("/v1/generations/{filename}"), &key);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(download(&url).0, 404);
    assert_eq!(
        get("/v1/generations/mine", &key).body["data"],
        Value::Array(vec![])
    );
    // The job keeps its record.
    let job = get(&format!("/v1/jobs/{job_id}"), &key);
    assert_eq!(job.body["status"], "completed", "{}", job.body);
}

/// A solid-colour PNG.
fn solid_png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = RgbaImage::from_pixel(w, h, Rgba([rgb[0], rgb[1], rgb[2], 255]));
    encode(&img, ImageFormat::Png)
}

/// The mean red, green and blue of a PNG.
fn mean_rgb(bytes: &[u8]) -> [f64; 3] {
    let img = image::load_from_memory_with_format(bytes, ImageFormat::Png)
        .unwrap()
        .to_rgb8();
    let mut sum = [0f64; 3];
    for p in img.pixels() {
        for c in 0..3 {
            sum[c] += f64::from(p[c]);
        }
    }
    let n = f64::from(img.width() * img.height());
    sum.map(|s| s / n)
}

#[test]
fn img2img_uses_the_callers_upload_and_lists_it() {
    let key = new_account();
    let up = upload(&key, "red.png", solid_png(256, 256, [230, 20, 20]));
    assert_eq!(up.status, 201, "{}", up.body);
    let filename = up.body["filename"].as_str().unwrap().to_owned();
    let r = post(
        "/v1/images/generations",
        &key,
        &serde_json::json!({"prompt": "the same, redder", "width": 512, "height": 512, "input_files": [filename]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let job = get(
        &format!("/v1/jobs/{}", r.body["job_id"].as_str().unwrap()),
        &key,
    );
    assert_eq!(
        job.body["input_files"],
        serde_json::json!([filename]),
        "{}",
        job.body
    );
    assert_eq!(job.body["params"]["width"], 512);
    let (status, _, bytes) = download(r.body["data"][0]["url"].as_str().unwrap());
    assert_eq!(status, 200);
    assert_eq!(png_size(&bytes), (512, 512));
    // The sim derives an img2img output from its reference: mostly red.
    let [red, green, blue] = mean_rgb(&bytes);
    assert!(
        red > green + 60.0 && red > blue + 60.0,
        "mean {red} {green} {blue}"
    );

    // An output of the caller's is an input too.
    let out = r.body["data"][0]["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let again = post(
        "/v1/images/generations?async_mode=true",
        &key,
        &serde_json::json!({"prompt": "again", "input_files": [out]}),
    );
    assert_eq!(again.status, 202, "{}", again.body);
    let done = wait_terminal(&key, again.body["job_id"].as_str().unwrap());
    assert_eq!(done["status"], "completed", "{done}");
}

#[test]
fn another_accounts_file_is_403_and_costs_nothing() {
    let owner = new_account();
    let up = upload(&owner, "mine.png", png(64, 64, 7));
    let filename = up.body["filename"].as_str().unwrap().to_owned();
    let thief = new_account();
    let before = credits(&thief);
    for (path, body) in [
        (
            "/v1/images/generations",
            serde_json::json!({"prompt": "x", "input_files": [filename]}),
        ),
        (
            "/v1/video/generations",
            serde_json::json!({"prompt": "x", "input_files": [filename]}),
        ),
        (
            "/v1/images/generations",
            serde_json::json!({"prompt": "x", "input_files": ["up_nosuchfileatall.png"]}),
        ),
    ] {
        let r = post(path, &thief, &body);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert_eq!(
            error_of(&r),
            ("file_not_yours".into(), Some("input_files".into())),
            "{}",
            r.body
        );
    }
    let after = credits(&thief);
    assert_eq!(
        micros(&after["balance_usd"]),
        micros(&before["balance_usd"])
    );
    assert_eq!(micros(&after["held_usd"]), 0);
    assert_eq!(
        get("/v1/usage", &thief).body["data"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "only the trial grant"
    );
}

#[test]
fn image_to_video_takes_exactly_one_input() {
    let key = new_account();
    let a = upload(&key, "a.png", solid_png(96, 96, [20, 200, 40])).body["filename"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = upload(&key, "b.png", solid_png(96, 96, [20, 40, 200])).body["filename"]
        .as_str()
        .unwrap()
        .to_owned();
    let two = post(
        "/v1/video/generations",
        &key,
        &serde_json::json!({"prompt": "x", "model": "ltx-2.3-fast", "num_frames": 25, "input_files": [a, b]}),
    );
    assert_eq!(
        (two.status, error_of(&two).1),
        (400, Some("input_files".into())),
        "{}",
        two.body
    );
    let r = post(
        "/v1/video/generations?async_mode=true",
        &key,
        &serde_json::json!({"prompt": "grass in wind", "model": "ltx-2.3-fast", "num_frames": 25, "input_files": [a]}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let done = wait_terminal(&key, r.body["job_id"].as_str().unwrap());
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["input_files"], serde_json::json!([a]));
    let (status, _, mp4) = download(done["outputs"][0]["url"].as_str().unwrap());
    assert_eq!(status, 200);
    let probe = ffprobe(&mp4);
    assert_eq!(probe["codec_name"], "h264", "{probe}");
    // Video players seek with ranges: 206 with exactly those bytes.
    let url = done["outputs"][0]["url"].as_str().unwrap();
    let resp = client()
        .get(url)
        .header("range", "bytes=100-1099")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "video/mp4");
    assert_eq!(headers["content-length"], "1000");
    assert_eq!(
        headers["content-range"].to_str().unwrap(),
        format!("bytes 100-1099/{}", mp4.len())
    );
    assert!(headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(resp.bytes().unwrap().to_vec(), mp4[100..1100]);
}

#[test]
fn n_images_are_one_job_priced_n_times() {
    let key = new_account();
    let before = credits(&key);
    let r = post(
        "/v1/images/generations",
        &key,
        &serde_json::json!({"prompt": "three of a kind", "n": 3, "width": 512, "height": 512, "seed": 7}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let urls: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), 3, "{}", r.body);
    let images: Vec<Vec<u8>> = urls.iter().map(|u| download(u).2).collect();
    assert!(
        images[0] != images[1] && images[1] != images[2],
        "each image has its own seed"
    );
    let after = credits(&key);
    assert_eq!(
        micros(&before["balance_usd"]) - micros(&after["balance_usd"]),
        60_000
    );
    let usage = get("/v1/usage?limit=1", &key);
    assert_eq!(usage.body["data"][0]["units"], 3.0, "{}", usage.body);
    assert_eq!(listed("/v1/generations/mine", &key), 3);
}

#[test]
fn edits_refuse_bad_parts_by_name_and_charge_nothing() {
    let key = new_account();
    let before = credits(&key);
    let edit = |form: Form| {
        reply(
            client()
                .post(format!("{}/v1/images/edits", env().edge))
                .bearer_auth(&key)
                .multipart(form)
                .send()
                .unwrap(),
        )
    };
    let cases: Vec<(Form, u16, &str, Option<&str>)> = vec![
        (
            Form::new().text("prompt", "x"),
            400,
            "missing_parameter",
            Some("image"),
        ),
        (
            Form::new()
                .part(
                    "image",
                    Part::bytes(b"not an image".to_vec()).file_name("a.png"),
                )
                .text("prompt", "x"),
            415,
            "unsupported_media_type",
            Some("image"),
        ),
        (
            Form::new()
                .part("image", Part::bytes(png(16, 16, 1)).file_name("a.png"))
                .text("prompt", "x")
                .part("mask", Part::bytes(png(16, 16, 2))),
            400,
            "unknown_parameter",
            Some("mask"),
        ),
        (
            Form::new()
                .part("image", Part::bytes(png(16, 16, 1)).file_name("a.png"))
                .text("prompt", "x")
                .text("n", "5"),
            400,
            "out_of_range",
            Some("n"),
        ),
        (
            Form::new()
                .part("image", Part::bytes(png(16, 16, 1)).file_name("a.png"))
                .part("image[]", Part::bytes(png(16, 16, 2)).file_name("b.png"))
                .text("prompt", "x"),
            400,
            "invalid_value",
            Some("image"),
        ),
        (
            Form::new()
                .part("image", Part::bytes(png(16, 16, 1)).file_name("a.png"))
                .text("prompt", ""),
            400,
            "invalid_value",
            Some("prompt"),
        ),
        (
            Form::new()
                .part("image", Part::bytes(png(16, 16, 1)).file_name("a.png"))
                .text("prompt", "x")
                .text("size", "100x100"),
            400,
            "invalid_dimensions",
            Some("size"),
        ),
        (
            Form::new()
                .part("image", Part::bytes(png(16, 16, 1)).file_name("a.png"))
                .part(
                    "image",
                    Part::bytes(b"GIF89a\x01".to_vec()).file_name("b.gif"),
                )
                .text("prompt", "x"),
            400,
            "invalid_image",
            Some("image"),
        ),
    ];
    for (form, status, code, param) in cases {
        let r = edit(form);
        assert_eq!(
            (r.status, error_of(&r)),
            (status, (code.to_owned(), param.map(str::to_owned))),
            "{}",
            r.body
        );
    }
    let after = credits(&key);
    assert_eq!(
        micros(&after["balance_usd"]),
        micros(&before["balance_usd"])
    );
    assert_eq!(micros(&after["held_usd"]), 0);
    // Refused before any image is stored: no upload is left behind.
    assert_eq!(listed("/v1/uploads/mine", &key), 0);
}
