//! End-to-end: the official OpenAI Python client (`openai`, pinned in
//! `tests/python/requirements.txt`, installed into `.venv` by `cargo xtask`) calls
//! `images.edit` against the real stack, as a user of that client would, and gets
//! usable image URLs.

mod common;

use common::*;

#[test]
fn the_official_openai_client_edits_an_image() {
    let python = kiln_tests::tools::venv_python();
    assert!(
        python.exists(),
        "run `cargo xtask test` (it installs .venv)"
    );
    let key = new_account();
    let before = credits(&key);
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, 64, 64);
        enc.set_color(png::ColorType::Rgba);
        enc.write_header()
            .unwrap()
            .write_image_data(&[180; 64 * 64 * 4])
            .unwrap();
    }
    let path =
        kiln_tests::build::target_dir().join(format!("edit-{}.png", kiln_tests::random_hex(4)));
    std::fs::write(&path, &png_bytes).unwrap();
    let script = kiln_tests::workspace_root().join("tests/python/openai_edit.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(&env().edge)
        .arg(&key)
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("2"), "{stdout}");
    for url in lines {
        let (status, content_type, bytes) = download(url);
        assert_eq!((status, content_type.as_str()), (200, "image/png"), "{url}");
        assert_eq!(png_size(&bytes), (512, 512));
    }
    // Two images: charged 2 × $0.02; the reference became one of the caller's uploads.
    let after = credits(&key);
    assert_eq!(
        micros(&before["balance_usd"]) - micros(&after["balance_usd"]),
        40_000
    );
    assert_eq!(
        get("/v1/uploads/mine", &key).body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
