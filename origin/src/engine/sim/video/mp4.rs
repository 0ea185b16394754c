//! A minimal ISO-BMFF (MP4) muxer for one H.264 video track: `ftyp`, then `moov` (so the
//! file can be played while it downloads), then one `mdat` holding every sample as a
//! single chunk (ISO/IEC 14496-12 and 14496-15).

use super::h264::{CONSTRAINT_FLAGS, LEVEL_IDC, PROFILE_IDC};

/// Everything the `moov` box describes.
pub(crate) struct Track<'a> {
    /// Display size in pixels (after cropping).
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Size in bytes of each sample (access unit) in `mdat`, in decoding order.
    pub sample_sizes: &'a [u32],
    /// 1-based numbers of the samples that are IDR pictures.
    pub sync_samples: &'a [u32],
    /// The SPS and PPS NAL units (header byte included, escaped, no length prefix).
    pub sps: &'a [u8],
    pub pps: &'a [u8],
}

/// Ticks per frame; the media timescale is `fps * TICKS_PER_FRAME`.
const TICKS_PER_FRAME: u32 = 1000;

/// The whole file: `ftyp`, `moov`, then `mdat` with `payload` (the samples back to back).
pub(crate) fn mux(track: &Track<'_>, payload: &[u8]) -> Vec<u8> {
    let total: u64 = track.sample_sizes.iter().map(|&s| u64::from(s)).sum();
    assert_eq!(
        total,
        payload.len() as u64,
        "sample sizes must cover the payload"
    );

    let mut ftyp = Vec::with_capacity(32);
    put_box(&mut ftyp, b"ftyp", |b| {
        b.extend_from_slice(b"isom"); // major_brand
        b.extend_from_slice(&512u32.to_be_bytes()); // minor_version
        for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
            b.extend_from_slice(brand);
        }
    });

    let large = payload.len() as u64 + 8 > u64::from(u32::MAX);
    let mdat_header_len = if large { 16 } else { 8 };
    // The chunk offset does not change the size of `moov`: lay it out once to learn its
    // size, then again with the real offset.
    let moov_len = moov(track, 0).len();
    let data_offset = (ftyp.len() + moov_len + mdat_header_len) as u64;
    let moov = moov(track, data_offset);
    debug_assert_eq!(moov.len(), moov_len);

    let mut out = Vec::with_capacity(data_offset as usize + payload.len());
    out.extend_from_slice(&ftyp);
    out.extend_from_slice(&moov);
    if large {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(b"mdat");
        out.extend_from_slice(&(payload.len() as u64 + 16).to_be_bytes());
    } else {
        out.extend_from_slice(&(payload.len() as u32 + 8).to_be_bytes());
        out.extend_from_slice(b"mdat");
    }
    out.extend_from_slice(payload);
    out
}

fn moov(t: &Track<'_>, data_offset: u64) -> Vec<u8> {
    let timescale = t
        .fps
        .checked_mul(TICKS_PER_FRAME)
        .expect("fps too large for the MP4 timescale");
    let duration = u32::try_from(u64::from(TICKS_PER_FRAME) * t.sample_sizes.len() as u64)
        .expect("too many frames for a version 0 MP4 duration");
    let frames = u32::try_from(t.sample_sizes.len()).expect("too many frames");
    let mut out = Vec::with_capacity(1024 + 4 * t.sample_sizes.len());
    put_box(&mut out, b"moov", |b| {
        full_box(b, b"mvhd", 0, 0, |b| {
            u32s(b, &[0, 0, timescale, duration]); // creation, modification, timescale, duration
            u32s(b, &[0x0001_0000]); // rate 1.0
            b.extend_from_slice(&0x0100u16.to_be_bytes()); // volume 1.0
            b.extend_from_slice(&[0; 2 + 8]); // reserved
            u32s(b, &UNITY_MATRIX);
            b.extend_from_slice(&[0; 24]); // pre_defined
            u32s(b, &[2]); // next_track_ID
        });
        put_box(b, b"trak", |b| {
            // flags: track_enabled | track_in_movie
            full_box(b, b"tkhd", 0, 3, |b| {
                u32s(b, &[0, 0, 1, 0, duration]); // creation, modification, track_ID, reserved
                b.extend_from_slice(&[0; 8]); // reserved
                b.extend_from_slice(&[0; 8]); // layer, alternate_group, volume, reserved
                u32s(b, &UNITY_MATRIX);
                u32s(b, &[t.width << 16, t.height << 16]); // 16.16 fixed point
            });
            put_box(b, b"mdia", |b| {
                full_box(b, b"mdhd", 0, 0, |b| {
                    u32s(b, &[0, 0, timescale, duration]);
                    b.extend_from_slice(&0x55c4u16.to_be_bytes()); // language "und"
                    b.extend_from_slice(&[0; 2]); // pre_defined
                });
                full_box(b, b"hdlr", 0, 0, |b| {
                    u32s(b, &[0]); // pre_defined
                    b.extend_from_slice(b"vide");
                    b.extend_from_slice(&[0; 12]); // reserved
                    b.extend_from_slice(b"VideoHandler\0");
                });
                put_box(b, b"minf", |b| {
                    full_box(b, b"vmhd", 0, 1, |b| b.extend_from_slice(&[0; 8]));
                    put_box(b, b"dinf", |b| {
                        full_box(b, b"dref", 0, 0, |b| {
                            u32s(b, &[1]);
                            full_box(b, b"url ", 0, 1, |_| {}); // media in this file
                        });
                    });
                    put_box(b, b"stbl", |b| stbl(b, t, frames, data_offset));
                });
            });
        });
    });
    out
}

fn stbl(b: &mut Vec<u8>, t: &Track<'_>, frames: u32, data_offset: u64) {
    full_box(b, b"stsd", 0, 0, |b| {
        u32s(b, &[1]); // entry_count
        put_box(b, b"avc1", |b| {
            b.extend_from_slice(&[0; 6]); // reserved
            b.extend_from_slice(&1u16.to_be_bytes()); // data_reference_index
            b.extend_from_slice(&[0; 16]); // pre_defined, reserved
            b.extend_from_slice(&(t.width as u16).to_be_bytes());
            b.extend_from_slice(&(t.height as u16).to_be_bytes());
            u32s(b, &[0x0048_0000, 0x0048_0000, 0]); // 72 dpi, 72 dpi, reserved
            b.extend_from_slice(&1u16.to_be_bytes()); // frame_count
            let mut name = [0u8; 32]; // compressorname: a Pascal string
            let text = b"Kiln sim H.264";
            name[0] = text.len() as u8;
            name[1..=text.len()].copy_from_slice(text);
            b.extend_from_slice(&name);
            b.extend_from_slice(&0x0018u16.to_be_bytes()); // depth
            b.extend_from_slice(&(-1i16).to_be_bytes()); // pre_defined
            put_box(b, b"avcC", |b| {
                b.push(1); // configurationVersion
                b.push(PROFILE_IDC);
                b.push(CONSTRAINT_FLAGS); // profile_compatibility
                b.push(LEVEL_IDC);
                b.push(0xfc | 3); // lengthSizeMinusOne = 3
                b.push(0xe0 | 1); // numOfSequenceParameterSets
                b.extend_from_slice(&(t.sps.len() as u16).to_be_bytes());
                b.extend_from_slice(t.sps);
                b.push(1); // numOfPictureParameterSets
                b.extend_from_slice(&(t.pps.len() as u16).to_be_bytes());
                b.extend_from_slice(t.pps);
            });
            put_box(b, b"colr", |b| {
                b.extend_from_slice(b"nclx");
                for v in [1u16, 1, 1] {
                    b.extend_from_slice(&v.to_be_bytes()); // BT.709 primaries, transfer, matrix
                }
                b.push(0); // full_range_flag = 0
            });
            put_box(b, b"pasp", |b| u32s(b, &[1, 1]));
        });
    });
    full_box(b, b"stts", 0, 0, |b| {
        if frames == 0 {
            u32s(b, &[0]);
        } else {
            u32s(b, &[1, frames, TICKS_PER_FRAME]);
        }
    });
    full_box(b, b"stss", 0, 0, |b| {
        u32s(b, &[t.sync_samples.len() as u32]);
        u32s(b, t.sync_samples);
    });
    full_box(b, b"stsc", 0, 0, |b| {
        if frames == 0 {
            u32s(b, &[0]);
        } else {
            u32s(b, &[1, 1, frames, 1]); // one chunk holding every sample
        }
    });
    full_box(b, b"stsz", 0, 0, |b| {
        u32s(b, &[0, frames]); // sample_size 0: sizes follow
        u32s(b, t.sample_sizes);
    });
    let chunks = u32::from(frames > 0);
    match u32::try_from(data_offset) {
        Ok(offset) => full_box(b, b"stco", 0, 0, |b| {
            u32s(b, &[chunks]);
            if chunks == 1 {
                u32s(b, &[offset]);
            }
        }),
        Err(_) => full_box(b, b"co64", 0, 0, |b| {
            u32s(b, &[chunks]);
            if chunks == 1 {
                b.extend_from_slice(&data_offset.to_be_bytes());
            }
        }),
    }
}

const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn u32s(b: &mut Vec<u8>, values: &[u32]) {
    for v in values {
        b.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends a box: 32-bit size, four-character type, then what `body` writes.
fn put_box(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    body(out);
    let size = u32::try_from(out.len() - at).expect("box over 4 GiB");
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
}

/// A box with version and flags.
fn full_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    put_box(out, kind, |b| {
        b.extend_from_slice(&((u32::from(version) << 24) | flags).to_be_bytes());
        body(b);
    });
}
