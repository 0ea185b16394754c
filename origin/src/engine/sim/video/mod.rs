//! Real video files for the sim engine: a small, dependency-free H.264 encoder and an
//! MP4 muxer.
//!
//! [`sim_mp4`] films a procedural landscape (see [`scene`]) with a camera panning right
//! at 2 pixels per frame; [`sim_mp4_from_image`] (image-to-video) films a job's input
//! image instead: frame 0 is the input at the output size, and the camera then drifts
//! right over it the same way, the image mirrored at its right edge. The stream is H.264 Constrained Baseline (profile 66 with
//! constraint_set0/1), level 5.1, CAVLC, 8-bit 4:2:0, BT.709 studio range, in an MP4 with
//! `moov` before `mdat`:
//!
//! - frame 0 is an IDR picture whose macroblocks are all I_PCM (raw samples, ~384 bytes
//!   per macroblock: about 3.2 MB at 1920×1088);
//! - every later frame is a P picture that copies the previous frame shifted by 2 pixels
//!   (one motion vector, (8, 0) in quarter samples, no residual: P_Skip inside the picture,
//!   P_L0_16x16 along the top row and left column), so it costs a few hundred bytes;
//! - the coded picture is one macroblock column wider than the output and cropped on the
//!   right (SPS frame cropping). The hidden column is where the smear of edge-clamped
//!   motion compensation goes; every 8th frame re-sends it as I_PCM with the landscape's
//!   next 16 columns, before the smear could reach the visible picture. The decoded
//!   picture is therefore exactly the landscape at world offset 2·t for frame t, with no
//!   edge artefacts (≈ 26 KB per refresh at 1088 rows).
//!
//! Sizes: `width` and `height` must be even (4:2:0 cropping works in 2-pixel units) and
//! at most 8192; anything that is not a multiple of 16 is handled by cropping. Level 5.1
//! allows up to 36 864 macroblocks per coded frame (e.g. 1936×1088 uses 8 228); larger
//! sizes still decode in practice (ffmpeg does not check) but exceed the signalled level.
//! An I_PCM first frame is also larger than the level's strict per-picture size limit; no
//! real decoder enforces it.

mod bits;
mod h264;
mod mp4;
mod scene;

use h264::{MbCoding, Mv, SeqParams, SliceKind, PCM_BYTES};
use image::RgbaImage;
use scene::{Picture, Planes, Scene, Source};

/// Pan speed in luma pixels per frame. Even, so chroma vectors are whole samples too.
const PAN: u32 = 2;
/// Frames between refreshes of the hidden column: the smear moves `PAN` pixels a frame
/// and must not cross the 16 hidden pixels.
const REFRESH_INTERVAL: u32 = 16 / PAN;

/// Encodes a deterministic H.264 MP4 of `frames` frames at `fps`, `width`×`height`.
///
/// The same arguments always give the same bytes; different seeds give visibly different
/// landscapes. `frames` may be 0 (an empty track). Panics if `width` or `height` is zero,
/// odd or above 8192, if `fps` is zero, or if `frames` or `fps` exceed 4 294 967.
pub fn sim_mp4(width: u32, height: u32, frames: u32, fps: u32, seed: u64) -> Vec<u8> {
    encode(&Scene::new(seed, width, height), width, height, frames, fps)
}

/// As [`sim_mp4`], filming `first` (resized to `width`×`height`, nearest sample) instead
/// of the landscape: frame 0 is the image, later frames pan right over it, mirrored at
/// its edge. The same arguments always give the same bytes.
pub fn sim_mp4_from_image(
    width: u32,
    height: u32,
    frames: u32,
    fps: u32,
    first: &RgbaImage,
) -> Vec<u8> {
    encode(
        &Picture::new(first, width, height),
        width,
        height,
        frames,
        fps,
    )
}

/// The coded picture of frame 0 (`coded_w`×`coded_h`, the hidden column and the padding
/// rows included): the source at world offset 0.
pub(crate) fn first_picture(source: &impl Source, coded_w: usize, coded_h: usize) -> Planes {
    source.render(0, coded_w, coded_h)
}

fn encode(source: &impl Source, width: u32, height: u32, frames: u32, fps: u32) -> Vec<u8> {
    assert!(
        width > 0 && height > 0 && width.is_multiple_of(2) && height.is_multiple_of(2),
        "sim_mp4: width and height must be even and non-zero, got {width}x{height}"
    );
    assert!(
        width <= 8192 && height <= 8192,
        "sim_mp4: {width}x{height} is too large (at most 8192 per side)"
    );
    assert!(fps > 0, "sim_mp4: fps must be positive");
    assert!(
        u64::from(frames) * 1000 <= u64::from(u32::MAX)
            && u64::from(fps) * 1000 <= u64::from(u32::MAX),
        "sim_mp4: {frames} frames at {fps} fps do not fit the MP4 timescale"
    );

    // One macroblock column more than the picture needs: the hidden refresh column.
    let mb_width = width.div_ceil(16) + 1;
    let mb_height = height.div_ceil(16);
    let sp = SeqParams {
        mb_width,
        mb_height,
        crop_right: mb_width * 16 - width,
        crop_bottom: mb_height * 16 - height,
        fps,
    };
    let (coded_w, coded_h) = (mb_width as usize * 16, mb_height as usize * 16);
    let pan = Mv {
        x: 4 * PAN as i32,
        y: 0,
    };

    let mut payload = Vec::with_capacity(coded_w * coded_h * 3 / 2 + coded_h * 16 + 4096);
    let mut sample_sizes = Vec::with_capacity(frames as usize);
    for t in 0..frames {
        let start = payload.len();
        if t == 0 {
            let picture = first_picture(source, coded_w, coded_h);
            let rbsp = h264::slice_rbsp(&sp, SliceKind::Idr { idr_pic_id: 0 }, |x, y, pcm| {
                picture.macroblock(x, y, pcm);
                MbCoding::Pcm
            });
            bits::push_length_prefixed_nal(&mut payload, 3, 5, &rbsp);
        } else {
            let refresh = t.is_multiple_of(REFRESH_INTERVAL).then(|| {
                source.render(
                    i64::from(PAN) * i64::from(t) + coded_w as i64 - 16,
                    16,
                    coded_h,
                )
            });
            let choose = |x: u32, y: u32, pcm: &mut [u8; PCM_BYTES]| match &refresh {
                Some(column) if x == mb_width - 1 => {
                    column.macroblock(0, y, pcm);
                    MbCoding::Pcm
                }
                _ => MbCoding::Inter(pan),
            };
            let rbsp = h264::slice_rbsp(&sp, SliceKind::P { frame_num: t }, choose);
            bits::push_length_prefixed_nal(&mut payload, 2, 1, &rbsp);
        }
        sample_sizes.push(u32::try_from(payload.len() - start).expect("frame over 4 GiB"));
    }

    let sps = bits::nal_unit(3, 7, &h264::sps_rbsp(&sp));
    let pps = bits::nal_unit(3, 8, &h264::pps_rbsp());
    let sync_samples: &[u32] = if frames > 0 { &[1] } else { &[] };
    mp4::mux(
        &mp4::Track {
            width,
            height,
            fps,
            sample_sizes: &sample_sizes,
            sync_samples,
            sps: &sps,
            pps: &pps,
        },
        &payload,
    )
}

#[cfg(test)]
mod tests;
