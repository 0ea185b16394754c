//! The files a run saves: real PNGs (png crate) and real MP4s (`ffmpeg`).

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) const MAX_SIDE: u32 = 4096;
pub(crate) const MAX_FRAMES: u32 = 1000;

/// A well-mixed 64-bit hash (splitmix64), for colours from seeds.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An RGB PNG of `w`×`h`: a flat colour from `seed` with a faint diagonal ramp, written
/// row by row.
pub(crate) fn png(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let (w, h) = (w.clamp(1, MAX_SIDE), h.clamp(1, MAX_SIDE));
    let c = mix(seed).to_le_bytes();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().expect("png header into a Vec");
    {
        let mut stream = writer.stream_writer().expect("png stream into a Vec");
        let mut row = vec![0u8; w as usize * 3];
        for y in 0..h {
            for x in 0..w {
                let ramp = ((x + y) / 16 % 8) as u8;
                let i = x as usize * 3;
                row[i] = c[0].wrapping_add(ramp);
                row[i + 1] = c[1];
                row[i + 2] = c[2].wrapping_sub(ramp);
            }
            stream.write_all(&row).expect("png rows into a Vec");
        }
        stream.finish().expect("png end into a Vec");
    }
    drop(writer);
    out
}

/// The size in a PNG's header.
pub(crate) fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().ok()?;
    let info = reader.info();
    Some((info.width, info.height))
}

/// A binary preview frame: type 1 (image), format 2 (PNG), then a tiny PNG.
pub(crate) fn preview_frame(seed: u64) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&1u32.to_be_bytes());
    f.extend_from_slice(&2u32.to_be_bytes());
    f.extend_from_slice(&png(8, 8, seed));
    f
}

/// An H.264 MP4 (yuv420p) of exactly `frames` frames of `w`×`h` at `fps`, with an AAC tone
/// when `audio`, made by `ffmpeg` from its test sources. Blocking.
pub(crate) fn mp4(
    w: u32,
    h: u32,
    frames: u32,
    fps: f64,
    audio: bool,
    seed: u64,
) -> Result<Vec<u8>, String> {
    static N: AtomicU64 = AtomicU64::new(0);
    // libx264 with yuv420p wants even sides.
    let (w, h) = (
        (w.clamp(2, MAX_SIDE) + 1) & !1,
        (h.clamp(2, MAX_SIDE) + 1) & !1,
    );
    let frames = frames.clamp(1, MAX_FRAMES);
    let rate = format!("{}/1000", (fps * 1000.0).round().max(1.0) as u64);
    let path = std::env::temp_dir().join(format!(
        "kiln-fake-comfyui-{}-{}.mp4",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={w}x{h}:rate={rate}"),
        ]);
    if audio {
        let secs = f64::from(frames) * 1000.0 / (fps * 1000.0).round().max(1.0);
        let freq = 220 + mix(seed) % 660;
        cmd.args([
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency={freq}:sample_rate=48000:duration={secs:.3}"),
        ]);
    }
    cmd.args(["-frames:v", &frames.to_string()]).args([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ]);
    if audio {
        cmd.args(["-c:a", "aac", "-b:a", "64k"]);
    }
    cmd.args(["-movflags", "+faststart"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let result = match cmd.output() {
        Ok(out) if out.status.success() => {
            std::fs::read(&path).map_err(|e| format!("reading ffmpeg's output: {e}"))
        }
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let err: String = err.chars().take(2000).collect();
            Err(format!("ffmpeg failed ({}): {err}", out.status))
        }
        Err(e) => Err(format!("running ffmpeg: {e}")),
    };
    let _ = std::fs::remove_file(&path);
    result
}
