use super::h264::{self, MbCoding, Mv, SeqParams, SliceKind};
use super::*;
use image::RgbaImage;

/// Top-level boxes of `data` as (type, body).
fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        assert!(data.len() - at >= 8, "truncated box header at {at}");
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().unwrap();
        assert!(
            size >= 8 && at + size <= data.len(),
            "bad box size {size} at {at}"
        );
        out.push((kind, &data[at + 8..at + size]));
        at += size;
    }
    out
}

/// The body of the box reached by a path of types, e.g. `["moov", "trak"]`. Full boxes
/// keep their version/flags; sample entries are descended into by `child_offset`.
fn find<'a>(data: &'a [u8], path: &[&str]) -> &'a [u8] {
    let mut body = data;
    for (i, name) in path.iter().enumerate() {
        let found = boxes(body)
            .into_iter()
            .find(|(kind, _)| kind == name.as_bytes())
            .unwrap_or_else(|| panic!("no {name} box in {:?}", &path[..i]));
        body = found.1;
        // Containers whose children start after a fixed header.
        body = match *name {
            "stsd" => &body[8..],
            "avc1" => &body[78..],
            "dref" => &body[8..],
            _ => body,
        };
    }
    body
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

const STBL: [&str; 5] = ["moov", "trak", "mdia", "minf", "stbl"];

fn stbl_box<'a>(file: &'a [u8], name: &str) -> &'a [u8] {
    let mut path = STBL.to_vec();
    path.push(name);
    find(file, &path)
}

/// The samples of the file, from stsz and stco.
fn samples(file: &[u8]) -> Vec<&[u8]> {
    let stsz = stbl_box(file, "stsz");
    let stco = stbl_box(file, "stco");
    assert_eq!(be32(stsz, 4), 0, "per-sample sizes");
    let count = be32(stsz, 8) as usize;
    let mut at = if count > 0 { be32(stco, 8) as usize } else { 0 };
    (0..count)
        .map(|i| {
            let size = be32(stsz, 12 + 4 * i) as usize;
            let s = &file[at..at + size];
            at += size;
            s
        })
        .collect()
}

/// The NAL units of a sample with 4-byte length prefixes.
fn nal_units(sample: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < sample.len() {
        let len = be32(sample, at) as usize;
        out.push(&sample[at + 4..at + 4 + len]);
        at += 4 + len;
    }
    assert_eq!(at, sample.len());
    out
}

struct BitReader {
    data: Vec<u8>,
    pos: usize,
}

impl BitReader {
    /// Reads an escaped NAL payload (after the header byte), removing emulation prevention.
    fn new(escaped: &[u8]) -> Self {
        let mut data = Vec::new();
        let mut zeros = 0;
        for &b in escaped {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            data.push(b);
            zeros = if b == 0 { zeros + 1 } else { 0 };
        }
        BitReader { data, pos: 0 }
    }
    fn u(&mut self, n: u32) -> u32 {
        let mut v = 0;
        for _ in 0..n {
            let bit = (self.data[self.pos / 8] >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        v
    }
    fn ue(&mut self) -> u32 {
        let mut zeros = 0;
        while self.u(1) == 0 {
            zeros += 1;
        }
        ((1u64 << zeros) - 1 + u64::from(self.u(zeros))) as u32
    }
}

/// (profile, constraint byte, level, display width, display height) from an SPS NAL unit.
fn parse_sps(sps: &[u8]) -> (u32, u32, u32, u32, u32) {
    assert_eq!(sps[0], 0x67);
    let mut r = BitReader::new(&sps[1..]);
    let (profile, constraints, level) = (r.u(8), r.u(8), r.u(8));
    assert_eq!(r.ue(), 0); // sps id
    r.ue(); // log2_max_frame_num_minus4
    assert_eq!(r.ue(), 2); // poc type
    assert_eq!(r.ue(), 1); // max_num_ref_frames
    assert_eq!(r.u(1), 0);
    let w_mbs = r.ue() + 1;
    let h_mbs = r.ue() + 1;
    assert_eq!(r.u(1), 1); // frame_mbs_only
    assert_eq!(r.u(1), 1); // direct_8x8
    let (mut w, mut h) = (w_mbs * 16, h_mbs * 16);
    if r.u(1) == 1 {
        let (l, rt, t, b) = (r.ue(), r.ue(), r.ue(), r.ue());
        w -= 2 * (l + rt);
        h -= 2 * (t + b);
    }
    (profile, constraints, level, w, h)
}

#[test]
fn deterministic_and_seed_dependent() {
    let a = sim_mp4(64, 48, 9, 24, 7);
    let b = sim_mp4(64, 48, 9, 24, 7);
    assert_eq!(a, b);
    let c = sim_mp4(64, 48, 9, 24, 8);
    assert_ne!(a, c);
}

#[test]
fn box_structure_and_frame_counts() {
    let sizes = [(64, 48, 9, 24), (320, 240, 17, 30), (100, 70, 3, 25)];
    // Text-to-video, then image-to-video: the same stream structure.
    let cases = sizes
        .iter()
        .map(|&(w, h, frames, fps)| (w, h, frames, fps, sim_mp4(w, h, frames, fps, 3)))
        .chain(sizes.iter().map(|&(w, h, frames, fps)| {
            let file = sim_mp4_from_image(w, h, frames, fps, &halves(50, 30));
            (w, h, frames, fps, file)
        }));
    for (w, h, frames, fps, file) in cases {
        let top: Vec<[u8; 4]> = boxes(&file).iter().map(|(k, _)| *k).collect();
        assert_eq!(top, [*b"ftyp", *b"moov", *b"mdat"]);
        let ftyp = find(&file, &["ftyp"]);
        assert_eq!(&ftyp[..4], b"isom");
        assert!(ftyp[8..].chunks(4).any(|b| b == b"avc1"));

        let mvhd = find(&file, &["moov", "mvhd"]);
        assert_eq!(be32(mvhd, 12), fps * 1000, "movie timescale");
        assert_eq!(be32(mvhd, 16), frames * 1000, "movie duration");
        let mdhd = find(&file, &["moov", "trak", "mdia", "mdhd"]);
        assert_eq!(
            (be32(mdhd, 12), be32(mdhd, 16)),
            (fps * 1000, frames * 1000)
        );
        let hdlr = find(&file, &["moov", "trak", "mdia", "hdlr"]);
        assert_eq!(&hdlr[8..12], b"vide");
        let tkhd = find(&file, &["moov", "trak", "tkhd"]);
        assert_eq!((be32(tkhd, 76), be32(tkhd, 80)), (w << 16, h << 16));

        let stts = stbl_box(&file, "stts");
        assert_eq!(be32(stts, 4), 1);
        assert_eq!((be32(stts, 8), be32(stts, 12)), (frames, 1000));
        let stss = stbl_box(&file, "stss");
        assert_eq!((be32(stss, 4), be32(stss, 8)), (1, 1));
        let stsc = stbl_box(&file, "stsc");
        assert_eq!((be32(stsc, 4), be32(stsc, 12)), (1, frames));

        let avc1 = find(&file, &["moov", "trak", "mdia", "minf", "stbl", "stsd"]);
        let avc1 = boxes(avc1)[0];
        assert_eq!(&avc1.0, b"avc1");
        let dims = (
            u16::from_be_bytes([avc1.1[24], avc1.1[25]]),
            u16::from_be_bytes([avc1.1[26], avc1.1[27]]),
        );
        assert_eq!(dims, (w as u16, h as u16));
        let avcc = find(
            &file,
            &[
                "moov", "trak", "mdia", "minf", "stbl", "stsd", "avc1", "avcC",
            ],
        );
        assert_eq!(&avcc[..5], &[1, 66, 0xc0, 51, 0xff]);
        assert_eq!(avcc[5], 0xe1);
        let sps_len = u16::from_be_bytes([avcc[6], avcc[7]]) as usize;
        let sps = &avcc[8..8 + sps_len];
        assert_eq!(parse_sps(sps), (66, 0xc0, 51, w, h));
        assert_eq!(avcc[8 + sps_len], 1);
        let pps_len = u16::from_be_bytes([avcc[9 + sps_len], avcc[10 + sps_len]]) as usize;
        assert_eq!(avcc[11 + sps_len], 0x68);
        assert_eq!(11 + sps_len + pps_len, avcc.len());

        // The samples tile mdat exactly; each is one slice NAL unit.
        let mdat = find(&file, &["mdat"]);
        let samples = samples(&file);
        assert_eq!(samples.len(), frames as usize);
        assert_eq!(samples.iter().map(|s| s.len()).sum::<usize>(), mdat.len());
        assert_eq!(
            be32(stbl_box(&file, "stco"), 8) as usize,
            file.len() - mdat.len()
        );
        for (i, s) in samples.iter().enumerate() {
            let nals = nal_units(s);
            assert_eq!(nals.len(), 1);
            let want = if i == 0 { 0x65 } else { 0x41 };
            assert_eq!(nals[0][0], want, "NAL header of frame {i}");
            for w3 in nals[0].windows(3) {
                assert!(
                    !(w3[0] == 0 && w3[1] == 0 && w3[2] <= 2),
                    "start code emulation"
                );
            }
        }
        // An I_PCM frame is ≈ 384 bytes per macroblock; P frames are small unless they
        // refresh the hidden column.
        let mbs = (w.div_ceil(16) + 1) * h.div_ceil(16);
        assert!(samples[0].len() >= mbs as usize * 384);
        assert!(samples[1].len() < 200, "{}", samples[1].len());
    }
}

/// An input image whose left half is red and right half blue.
fn halves(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, _| {
        if x < width / 2 {
            image::Rgba([230, 20, 20, 255])
        } else {
            image::Rgba([20, 20, 230, 255])
        }
    })
}

/// The coded size of a `width`×`height` picture: the hidden column and padding rows too.
fn coded_size(width: u32, height: u32) -> (usize, usize) {
    (
        (width.div_ceil(16) as usize + 1) * 16,
        height.div_ceil(16) as usize * 16,
    )
}

#[test]
fn image_to_video_starts_on_the_input_resized() {
    let input = halves(50, 30);
    for (w, h) in [(64, 48), (100, 70)] {
        let (coded_w, coded_h) = coded_size(w, h);
        let frame0 = first_picture(&scene::Picture::new(&input, w, h), coded_w, coded_h);
        let fitted = crate::engine::sim::image::resize_nearest(&input, w, h);
        let rgb = |x: u32, y: u32| {
            let p = fitted.get_pixel(x, y);
            [0, 1, 2].map(|c| f64::from(p[c]) / 255.0)
        };
        for y in 0..h {
            for x in 0..w {
                let at = y as usize * coded_w + x as usize;
                assert_eq!(frame0.luma[at], scene::luma(rgb(x, y)), "({x}, {y})");
            }
        }
        // Chroma: each 2×2 block is one colour, except where the halves meet.
        let cw = coded_w / 2;
        for cy in 0..(h / 2) as usize {
            for cx in 0..(w / 2) as usize {
                let (x, y) = (2 * cx as u32, 2 * cy as u32);
                if fitted.get_pixel(x, y) != fitted.get_pixel(x + 1, y) {
                    continue;
                }
                let (cb, cr) = scene::chroma(rgb(x, y));
                assert_eq!((frame0.cb[cy * cw + cx], frame0.cr[cy * cw + cx]), (cb, cr));
            }
        }
        // Red on the left, blue on the right.
        assert!(frame0.cr[0] > 200 && frame0.cb[0] < 128);
        assert!(frame0.cb[(w / 2 - 1) as usize] > 200);
    }
}

#[test]
fn image_to_video_drifts_over_the_mirrored_input() {
    let input = halves(50, 30);
    let picture = scene::Picture::new(&input, 64, 48);
    // Column 64 (just past the right edge) is column 63 mirrored, and so on.
    let past = picture.render(64, 2, 48);
    let edge = picture.render(62, 2, 48);
    for y in 0..48 {
        assert_eq!(past.luma[y * 2], edge.luma[y * 2 + 1]);
        assert_eq!(past.luma[y * 2 + 1], edge.luma[y * 2]);
    }
    // Deterministic, and the input shows.
    let a = sim_mp4_from_image(64, 48, 9, 24, &input);
    assert!(a == sim_mp4_from_image(64, 48, 9, 24, &input));
    let green = RgbaImage::from_pixel(8, 8, image::Rgba([20, 200, 20, 255]));
    assert!(a != sim_mp4_from_image(64, 48, 9, 24, &green));
    assert!(a != sim_mp4(64, 48, 9, 24, 3));
}

#[test]
fn zero_frames_give_an_empty_track() {
    let file = sim_mp4(32, 32, 0, 24, 1);
    assert_eq!(be32(stbl_box(&file, "stsz"), 8), 0);
    assert_eq!(find(&file, &["mdat"]).len(), 0);
}

#[test]
#[should_panic(expected = "must be even")]
fn odd_sizes_are_refused() {
    sim_mp4(65, 48, 1, 24, 1);
}

#[test]
fn full_hd_encodes_quickly_enough() {
    let started = std::time::Instant::now();
    let file = sim_mp4(1920, 1088, 25, 24, 5);
    let took = started.elapsed();
    assert_eq!(samples(&file).len(), 25);
    assert!(
        file.len() > 3_000_000 && file.len() < 4_000_000,
        "{}",
        file.len()
    );
    // Generous even for unoptimised debug builds on a slow machine.
    assert!(took.as_secs() < 30, "{took:?}");
}

// ---- Checks against a real decoder (run with `cargo test -- --ignored`; need ffmpeg) ----

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("kiln-video-{}-{name}", std::process::id()))
}

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Decodes `path` with ffmpeg into yuv420p frames, asserting it reports nothing at all.
fn decode(path: &std::path::Path) -> Vec<u8> {
    let out = run(
        "ffmpeg",
        &[
            "-v",
            "warning",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffmpeg: {stderr}"
    );
    out.stdout
}

#[test]
#[ignore = "needs ffmpeg and ffprobe on PATH"]
fn ffmpeg_decodes_exactly_the_scene() {
    for (w, h, frames, fps) in [
        (64, 48, 9, 24),
        (100, 70, 12, 25),
        (320, 240, 30, 24),
        (1920, 1088, 121, 24),
        (1088, 1920, 25, 24),
        (1536, 1536, 25, 30),
    ] {
        let file = sim_mp4(w, h, frames, fps, 11);
        let path = temp_path(&format!("{w}x{h}.mp4"));
        std::fs::write(&path, &file).unwrap();
        let probe = run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-count_frames",
                "-show_entries",
                "stream=codec_name,profile,width,height,nb_read_frames,r_frame_rate,nb_frames",
                "-of",
                "csv=p=0",
                path.to_str().unwrap(),
            ],
        );
        let text = String::from_utf8_lossy(&probe.stdout).trim().to_string();
        assert!(
            probe.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&probe.stderr)
        );
        assert_eq!(
            text,
            format!("h264,Constrained Baseline,{w},{h},{fps}/1,{frames},{frames}")
        );

        let raw = decode(&path);
        let frame_len = (w * h * 3 / 2) as usize;
        assert_eq!(raw.len(), frame_len * frames as usize);
        let scene = scene::Scene::new(11, w, h);
        for t in 0..frames {
            let want = scene.render(i64::from(PAN * t), w as usize, h as usize);
            let got = &raw[t as usize * frame_len..][..frame_len];
            let (y, rest) = got.split_at((w * h) as usize);
            let (cb, cr) = rest.split_at(rest.len() / 2);
            assert!(
                y == want.luma && cb == want.cb && cr == want.cr,
                "{w}x{h} frame {t}"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
#[ignore = "needs ffmpeg on PATH"]
fn ffmpeg_decodes_image_to_video_as_the_input_then_a_drift() {
    let input = halves(333, 200);
    for (w, h, frames) in [(64, 48, 20), (1536, 864, 25)] {
        let file = sim_mp4_from_image(w, h, frames, 24, &input);
        let path = temp_path(&format!("i2v-{w}x{h}.mp4"));
        std::fs::write(&path, &file).unwrap();
        let raw = decode(&path);
        let frame_len = (w * h * 3 / 2) as usize;
        assert_eq!(raw.len(), frame_len * frames as usize);
        let picture = scene::Picture::new(&input, w, h);
        for t in 0..frames {
            let want = picture.render(i64::from(PAN * t), w as usize, h as usize);
            let got = &raw[t as usize * frame_len..][..frame_len];
            let (y, rest) = got.split_at((w * h) as usize);
            let (cb, cr) = rest.split_at(rest.len() / 2);
            assert!(
                y == want.luma && cb == want.cb && cr == want.cr,
                "{w}x{h} frame {t}"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
}

/// Random motion fields and intra macroblocks: the decoder must agree with a direct
/// simulation of whole-sample motion compensation, which checks motion vector prediction
/// and P_Skip inference in every neighbourhood case.
#[test]
#[ignore = "needs ffmpeg on PATH"]
fn ffmpeg_agrees_on_random_motion_fields() {
    let (mb_w, mb_h) = (6u32, 5u32);
    let (w, h) = (mb_w as usize * 16, mb_h as usize * 16);
    let sp = SeqParams {
        mb_width: mb_w,
        mb_height: mb_h,
        crop_right: 0,
        crop_bottom: 0,
        fps: 24,
    };
    let scene = scene::Scene::new(99, w as u32, h as u32);
    let mut state = 0x1234_5678_u64;
    let mut rand = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let mut current = scene.render(0, w, h);
    let mut payload = Vec::new();
    let mut sizes = Vec::new();
    let mut expected = Vec::new();
    let push = |p: &scene::Planes, e: &mut Vec<u8>| {
        e.extend_from_slice(&p.luma);
        e.extend_from_slice(&p.cb);
        e.extend_from_slice(&p.cr);
    };
    let rbsp = h264::slice_rbsp(&sp, SliceKind::Idr { idr_pic_id: 0 }, |x, y, pcm| {
        current.macroblock(x, y, pcm);
        MbCoding::Pcm
    });
    bits::push_length_prefixed_nal(&mut payload, 3, 5, &rbsp);
    sizes.push(payload.len() as u32);
    push(&current, &mut expected);
    for t in 1..40u32 {
        let fresh = scene.render(i64::from(t) * 160, w, h);
        // Mostly one shared vector (so P_Skip happens), sometimes random ones, sometimes
        // intra; vectors are multiples of 8 quarter samples (whole chroma samples).
        let shared = Mv {
            x: (rand(9) as i32 - 4) * 8,
            y: (rand(9) as i32 - 4) * 8,
        };
        let mut plan = Vec::new();
        for _ in 0..mb_w * mb_h {
            plan.push(match rand(10) {
                0 => None,
                1..=3 => Some(Mv {
                    x: (rand(9) as i32 - 4) * 8,
                    y: (rand(9) as i32 - 4) * 8,
                }),
                4 => Some(Mv::default()),
                _ => Some(shared),
            });
        }
        let rbsp = h264::slice_rbsp(&sp, SliceKind::P { frame_num: t }, |x, y, pcm| {
            match plan[(y * mb_w + x) as usize] {
                None => {
                    fresh.macroblock(x, y, pcm);
                    MbCoding::Pcm
                }
                Some(mv) => MbCoding::Inter(mv),
            }
        });
        let start = payload.len();
        bits::push_length_prefixed_nal(&mut payload, 2, 1, &rbsp);
        sizes.push((payload.len() - start) as u32);
        // Simulate the decoder.
        let prev = current;
        let mut next = scene::Planes {
            width: w,
            luma: vec![0; w * h],
            cb: vec![0; w * h / 4],
            cr: vec![0; w * h / 4],
        };
        for (i, choice) in plan.iter().enumerate() {
            let (mx, my) = (i % mb_w as usize * 16, i / mb_w as usize * 16);
            let clamp = |v: i64, len: usize| v.clamp(0, len as i64 - 1) as usize;
            for yy in my..my + 16 {
                for xx in mx..mx + 16 {
                    next.luma[yy * w + xx] = match choice {
                        None => fresh.luma[yy * w + xx],
                        Some(mv) => {
                            let sx = clamp(xx as i64 + i64::from(mv.x / 4), w);
                            let sy = clamp(yy as i64 + i64::from(mv.y / 4), h);
                            prev.luma[sy * w + sx]
                        }
                    };
                }
            }
            let cw = w / 2;
            for yy in my / 2..my / 2 + 8 {
                for xx in mx / 2..mx / 2 + 8 {
                    let (b, r) = match choice {
                        None => (fresh.cb[yy * cw + xx], fresh.cr[yy * cw + xx]),
                        Some(mv) => {
                            let sx = clamp(xx as i64 + i64::from(mv.x / 8), cw);
                            let sy = clamp(yy as i64 + i64::from(mv.y / 8), h / 2);
                            (prev.cb[sy * cw + sx], prev.cr[sy * cw + sx])
                        }
                    };
                    next.cb[yy * cw + xx] = b;
                    next.cr[yy * cw + xx] = r;
                }
            }
        }
        push(&next, &mut expected);
        current = next;
    }
    let sps = bits::nal_unit(3, 7, &h264::sps_rbsp(&sp));
    let pps = bits::nal_unit(3, 8, &h264::pps_rbsp());
    let file = mp4::mux(
        &mp4::Track {
            width: w as u32,
            height: h as u32,
            fps: 24,
            sample_sizes: &sizes,
            sync_samples: &[1],
            sps: &sps,
            pps: &pps,
        },
        &payload,
    );
    let path = temp_path("random-motion.mp4");
    std::fs::write(&path, &file).unwrap();
    let raw = decode(&path);
    std::fs::remove_file(&path).unwrap();
    let frame_len = w * h * 3 / 2;
    assert_eq!(raw.len(), expected.len());
    for (t, (got, want)) in raw
        .chunks(frame_len)
        .zip(expected.chunks(frame_len))
        .enumerate()
    {
        assert!(got == want, "frame {t} differs");
    }
}
