//! What Kiln learns from an uploaded image's bytes — never from its name or its declared
//! `Content-Type`: the format (from the magic bytes), the canvas size (from the headers)
//! and the number of frames. [`probe`] refuses what is not one of the five accepted
//! formats (415) and, before anything decodes a pixel, decompression bombs and headers
//! that cannot be read (400).
//!
//! This runs in the edge Worker, where a panic resets the whole wasm instance: every
//! read is a checked `get`, every offset a saturating or checked sum, and every loop
//! advances through the input, so it ends with the data.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};

/// The longest side accepted, in pixels.
pub const SIDE_MAX: u32 = 16_384;

/// The largest canvas accepted, in pixels (40 megapixels: 8192×4096 passes, 8192×8192
/// does not). Decoding needs about 4 bytes a pixel, so this bounds a decoded frame to
/// about 160 MB.
pub const PIXELS_MAX: u64 = 40_000_000;

/// An accepted image format, as recognised from the bytes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    /// A PNG with an `acTL` chunk before its first `IDAT` (animated PNG).
    Apng,
    Jpeg,
    Webp,
    Gif,
}

impl ImageFormat {
    /// Every format, in the order error messages list them.
    pub const ALL: &'static [ImageFormat] = &[
        ImageFormat::Png,
        ImageFormat::Apng,
        ImageFormat::Jpeg,
        ImageFormat::Webp,
        ImageFormat::Gif,
    ];

    /// The format's name as the API spells it (and as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Apng => "apng",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
        }
    }

    /// The file extension to store it under (an APNG is a `.png`).
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png | ImageFormat::Apng => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
        }
    }

    /// The media type to serve it with.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Apng => "image/apng",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
        }
    }

    /// The name people know the format by, for messages.
    fn label(self) -> &'static str {
        match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Apng => "APNG",
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Webp => "WebP",
            ImageFormat::Gif => "GIF",
        }
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`probe`] read from an image: always `1 <= width, height <= SIDE_MAX`,
/// `width * height <= PIXELS_MAX` and `frame_count >= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Probe {
    pub format: ImageFormat,
    /// The canvas (logical screen) width, in pixels.
    pub width: u32,
    /// The canvas height, in pixels.
    pub height: u32,
    /// 1 for a still image; the number of frames of an animated one.
    pub frame_count: u32,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_SOI: &[u8] = b"\xff\xd8\xff";

/// Reads an uploaded image's format, canvas size and frame count from its bytes.
///
/// - 415 `unsupported_media_type` when the bytes are none of PNG, APNG, JPEG, WebP or
///   GIF; the message names what they look like when that can be told (a PDF, text…).
/// - 400 `image_too_large` when the canvas (or a GIF frame) is over [`SIDE_MAX`] a side
///   or [`PIXELS_MAX`] in all: a decompression bomb, refused before decoding.
/// - 400 `invalid_image` when the header is truncated or corrupt, a side is 0, or an
///   animation declares no frames.
pub fn probe(bytes: &[u8]) -> Result<Probe, ApiError> {
    let shape = if bytes.starts_with(PNG_SIGNATURE) {
        png_shape(bytes)?
    } else if bytes.starts_with(JPEG_SOI) {
        Shape::still(ImageFormat::Jpeg)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Shape::animated(ImageFormat::Gif, gif_frames(bytes)?)
    } else if bytes.get(..4) == Some(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        webp_shape(bytes)?
    } else {
        return Err(ApiError::unsupported_media(format!(
            "Unsupported file: {}. Accepted image formats: PNG, APNG, JPEG, WebP and GIF \
             (recognised from the file's bytes, not its name or type).",
            what_is(bytes)
        )));
    };
    let (width, height) = dimensions(&shape, bytes)?;
    check_canvas(shape.format, width, height)?;
    Ok(Probe {
        format: shape.format,
        width,
        height,
        frame_count: shape.frame_count,
    })
}

/// What the structural walk of a format found, before the dimensions are read.
struct Shape {
    format: ImageFormat,
    frame_count: u32,
    /// A lossy (`VP8 `) WebP: the top two bits of each 16-bit size field are the
    /// upscaling hint (RFC 6386 §9.1), not part of the size.
    vp8_sizes: bool,
}

impl Shape {
    fn still(format: ImageFormat) -> Self {
        Self::animated(format, 1)
    }

    fn animated(format: ImageFormat, frame_count: u32) -> Self {
        Shape {
            format,
            frame_count,
            vp8_sizes: false,
        }
    }
}

/// The canvas size from the headers, read by `imagesize`.
fn dimensions(shape: &Shape, bytes: &[u8]) -> Result<(u32, u32), ApiError> {
    let expected = match shape.format {
        ImageFormat::Png | ImageFormat::Apng => imagesize::ImageType::Png,
        ImageFormat::Jpeg => imagesize::ImageType::Jpeg,
        ImageFormat::Webp => imagesize::ImageType::Webp,
        ImageFormat::Gif => imagesize::ImageType::Gif,
    };
    let unreadable = || invalid(shape.format, "its dimensions cannot be read");
    // `imagesize` recognises the same magic bytes as `probe`; checked rather than assumed.
    if imagesize::reader_type(Cursor::new(bytes)).ok() != Some(expected) {
        return Err(unreadable());
    }
    let size = imagesize::blob_size(bytes).map_err(|_| unreadable())?;
    let (mut width, mut height) = (
        u32::try_from(size.width).map_err(|_| unreadable())?,
        u32::try_from(size.height).map_err(|_| unreadable())?,
    );
    if shape.vp8_sizes {
        width &= 0x3fff;
        height &= 0x3fff;
    }
    Ok((width, height))
}

fn check_canvas(format: ImageFormat, width: u32, height: u32) -> Result<(), ApiError> {
    if width == 0 || height == 0 {
        return Err(invalid(
            format,
            &format!("it declares a size of {width}×{height} pixels"),
        ));
    }
    check_size(format, "image", width, height)
}

/// Refuses a canvas or frame over [`SIDE_MAX`] a side or [`PIXELS_MAX`] in all.
fn check_size(format: ImageFormat, what: &str, width: u32, height: u32) -> Result<(), ApiError> {
    if width > SIDE_MAX || height > SIDE_MAX || u64::from(width) * u64::from(height) > PIXELS_MAX {
        return Err(ApiError::bad_request(
            ErrorCode::ImageTooLarge,
            format!(
                "The {} {what} declares {width}×{height} pixels; the most accepted is \
                 {SIDE_MAX} pixels a side and {} megapixels in all.",
                format.label(),
                PIXELS_MAX / 1_000_000
            ),
        ));
    }
    Ok(())
}

fn invalid(format: ImageFormat, detail: &str) -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidImage,
        format!(
            "The {} image is truncated or corrupt: {detail}.",
            format.label()
        ),
    )
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// PNG or APNG: the first chunk must be a whole `IHDR`; an `acTL` before the first
/// `IDAT` makes it an APNG with `num_frames` frames. The walk stops at `IDAT`, `IEND`
/// or the end of the data; every chunk moves it at least 12 bytes on.
fn png_shape(bytes: &[u8]) -> Result<Shape, ApiError> {
    let format = ImageFormat::Png;
    let mut at = PNG_SIGNATURE.len();
    let mut first = true;
    // A chunk's length and type; `at + 8` is within the data once `head` is read.
    while let Some(head) = at.checked_add(8).and_then(|end| bytes.get(at..end)) {
        let (len, kind) = (be_u32(head, 0).unwrap_or_default(), &head[4..8]);
        if len > i32::MAX as u32 {
            return Err(invalid(format, "a chunk declares a length over 2^31 - 1"));
        }
        let start = at + 8;
        let end = usize::try_from(len).ok().and_then(|l| start.checked_add(l));
        let data = end.and_then(|end| bytes.get(start..end));
        if first {
            if kind != b"IHDR" || len != 13 || data.is_none() {
                return Err(invalid(format, "it has no complete IHDR header"));
            }
            first = false;
        }
        match kind {
            b"IDAT" | b"IEND" => break,
            b"acTL" => {
                let frames = data.and_then(|d| (d.len() == 8).then(|| be_u32(d, 0)).flatten());
                return match frames {
                    Some(0) => Err(invalid(ImageFormat::Apng, "its acTL declares 0 frames")),
                    Some(n) => Ok(Shape::animated(ImageFormat::Apng, n)),
                    None => Err(invalid(ImageFormat::Apng, "its acTL chunk is incomplete")),
                };
            }
            _ => {}
        }
        // The data and a 4-byte CRC.
        match end.and_then(|end| end.checked_add(4)) {
            Some(next) => at = next,
            None => break,
        }
    }
    if first {
        return Err(invalid(format, "it has no complete IHDR header"));
    }
    Ok(Shape::still(format))
}

/// A GIF's frames: the image descriptors met walking its blocks, up to the trailer, the
/// end of the data or a byte that starts no block. Each frame's own size is held to
/// the same limits as the canvas.
fn gif_frames(bytes: &[u8]) -> Result<u32, ApiError> {
    let format = ImageFormat::Gif;
    let Some(&screen_flags) = bytes.get(10) else {
        return Err(invalid(
            format,
            "its logical screen descriptor is incomplete",
        ));
    };
    // Header (6) and logical screen descriptor (7), then the global colour table.
    let mut at = 13usize.saturating_add(color_table_len(screen_flags));
    let mut frames = 0u32;
    while let Some(&introducer) = bytes.get(at) {
        match introducer {
            // Trailer.
            0x3b => break,
            // Image descriptor: left, top, width, height (u16 LE each), flags.
            0x2c => {
                let (Some(width), Some(height), Some(&flags)) = (
                    le_u16(bytes, at.saturating_add(5)),
                    le_u16(bytes, at.saturating_add(7)),
                    bytes.get(at.saturating_add(9)),
                ) else {
                    break;
                };
                check_size(format, "frame", width.into(), height.into())?;
                frames = frames.saturating_add(1);
                // The descriptor, its local colour table, the LZW code size byte.
                at = at
                    .saturating_add(10)
                    .saturating_add(color_table_len(flags))
                    .saturating_add(1);
                at = skip_sub_blocks(bytes, at);
            }
            // Extension: introducer, label, then data sub-blocks.
            0x21 => at = skip_sub_blocks(bytes, at.saturating_add(2)),
            _ => break,
        }
    }
    if frames == 0 {
        return Err(invalid(format, "it holds no image"));
    }
    Ok(frames)
}

/// The size of the colour table a GIF descriptor's flags announce.
fn color_table_len(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 0x07) + 1)
    }
}

/// The position after a chain of GIF data sub-blocks (each a length byte and that
/// many bytes, ended by a 0 length) starting at `at`, or past the end of the data.
fn skip_sub_blocks(bytes: &[u8], mut at: usize) -> usize {
    while let Some(&len) = bytes.get(at) {
        at = at.saturating_add(1);
        if len == 0 {
            return at;
        }
        at = at.saturating_add(len.into());
    }
    at
}

/// A WebP's first chunk says what it is: lossy (`VP8 `), lossless (`VP8L`) or extended
/// (`VP8X`), whose animation flag makes its frames the `ANMF` chunks that follow.
fn webp_shape(bytes: &[u8]) -> Result<Shape, ApiError> {
    let format = ImageFormat::Webp;
    let Some(kind) = bytes.get(12..16) else {
        return Err(invalid(format, "it has no image chunk"));
    };
    match kind {
        b"VP8 " => {
            // Frame tag (3 bytes), then the key frame start code.
            if bytes.get(23..26) != Some(b"\x9d\x01\x2a") {
                return Err(invalid(format, "its VP8 frame header is incomplete"));
            }
            Ok(Shape {
                vp8_sizes: true,
                ..Shape::still(format)
            })
        }
        b"VP8L" => {
            if bytes.get(20) != Some(&0x2f) {
                return Err(invalid(format, "its VP8L header is incomplete"));
            }
            Ok(Shape::still(format))
        }
        b"VP8X" => {
            let Some(&flags) = bytes.get(20) else {
                return Err(invalid(format, "its VP8X header is incomplete"));
            };
            if flags & 0x02 == 0 {
                return Ok(Shape::still(format));
            }
            let frames = webp_frames(bytes);
            if frames == 0 {
                return Err(invalid(format, "it is animated but holds no ANMF frame"));
            }
            Ok(Shape::animated(format, frames))
        }
        _ => Err(invalid(format, "its first chunk is not VP8, VP8L or VP8X")),
    }
}

/// The `ANMF` chunks of a RIFF walk from the first chunk to the end of the data; each
/// chunk (a fourcc, a u32 LE size, the data padded to even) moves it at least 8 bytes.
fn webp_frames(bytes: &[u8]) -> u32 {
    let mut at = 12usize;
    let mut frames = 0u32;
    while let Some(head) = at.checked_add(8).and_then(|end| bytes.get(at..end)) {
        let (kind, len) = (&head[..4], le_u32(head, 4).unwrap_or_default());
        if kind == b"ANMF" {
            frames = frames.saturating_add(1);
        }
        let Ok(len) = usize::try_from(len) else {
            break;
        };
        at = at
            .saturating_add(8)
            .saturating_add(len)
            .saturating_add(len & 1);
    }
    frames
}

/// What bytes that are no accepted image look like, for the 415's message.
fn what_is(bytes: &[u8]) -> &'static str {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if bytes.is_empty() {
        return "an empty file";
    }
    if starts(b"%PDF-") {
        return "a PDF";
    }
    let markup = markup_start(bytes);
    if starts_ignore_case(markup, b"<?xml") || starts_ignore_case(markup, b"<svg") {
        return "an SVG/XML document";
    }
    if starts_ignore_case(markup, b"<!doctype html") || starts_ignore_case(markup, b"<html") {
        return "an HTML document";
    }
    if starts(b"BM") && bytes.len() >= 26 && bytes.get(6..10) == Some(&[0; 4]) {
        return "a BMP image";
    }
    if starts(b"II*\0") || starts(b"MM\0*") {
        return "a TIFF image";
    }
    if bytes.get(4..8) == Some(b"ftyp") {
        return match bytes.get(8..12) {
            Some(b"avif" | b"avis") => "an AVIF image",
            Some(b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"mif1" | b"msf1") => {
                "a HEIC/HEIF image"
            }
            _ => "an MP4/QuickTime video or other ISO media file",
        };
    }
    if starts(b"\0\0\0\x0cJXL \r\n\x87\n") || starts(b"\xff\x0a") {
        return "a JPEG XL image";
    }
    if starts(b"\0\0\0\x0cjP  \r\n\x87\n") {
        return "a JPEG 2000 image";
    }
    if starts(b"RIFF") {
        return "a RIFF file that is not WebP (such as WAV or AVI)";
    }
    if starts(b"8BPS") {
        return "a Photoshop document";
    }
    if starts(b"\0\0\x01\0") && bytes.len() >= 22 {
        return "an ICO icon";
    }
    if starts(b"PK\x03\x04") {
        return "a ZIP archive";
    }
    if starts(b"\x1f\x8b") {
        return "a gzip archive";
    }
    if is_text(bytes) {
        return "text";
    }
    "unrecognised bytes"
}

/// The bytes after a UTF-8 byte order mark and leading ASCII whitespace.
fn markup_start(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    bytes.get(skip..).unwrap_or_default()
}

fn starts_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Whether the first KiB is UTF-8 without control characters other than whitespace
/// (a character cut at the end of that KiB is allowed).
fn is_text(bytes: &[u8]) -> bool {
    let head = bytes.get(..1024).unwrap_or(bytes);
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(head.get(..e.valid_up_to()).unwrap_or_default()).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    /// The CRC-32 of PNG chunks (ISO 3309), bit by bit: test fixtures only.
    fn crc32(parts: &[&[u8]]) -> u32 {
        let mut crc = !0u32;
        for &byte in parts.iter().flat_map(|p| p.iter()) {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
        out
    }

    fn ihdr(width: u32, height: u32) -> Vec<u8> {
        let mut data = width.to_be_bytes().to_vec();
        data.extend_from_slice(&height.to_be_bytes());
        // 8-bit greyscale, deflate, adaptive filtering, no interlace.
        data.extend_from_slice(&[8, 0, 0, 0, 0]);
        chunk(b"IHDR", &data)
    }

    /// A zlib stream of one stored block holding `raw`.
    fn zlib_stored(raw: &[u8]) -> Vec<u8> {
        let len = raw.len() as u16;
        let mut out = vec![0x78, 0x01, 0x01];
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(raw);
        let (mut a, mut b) = (1u32, 0u32);
        for &x in raw {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        out.extend_from_slice(&((b << 16) | a).to_be_bytes());
        out
    }

    /// A valid 1×1 greyscale PNG.
    fn png_1x1() -> Vec<u8> {
        let mut out = PNG_SIGNATURE.to_vec();
        out.extend(ihdr(1, 1));
        out.extend(chunk(b"IDAT", &zlib_stored(&[0, 0])));
        out.extend(chunk(b"IEND", &[]));
        out
    }

    fn fctl(sequence: u32) -> Vec<u8> {
        let mut data = sequence.to_be_bytes().to_vec();
        for v in [1u32, 1, 0, 0] {
            data.extend_from_slice(&v.to_be_bytes()); // width, height, x, y
        }
        data.extend_from_slice(&[0, 1, 0, 10, 0, 0]); // delay 1/10 s, dispose, blend
        chunk(b"fcTL", &data)
    }

    /// A valid 1×1 APNG of 2 frames: the default image is the first frame.
    fn apng_2_frames() -> Vec<u8> {
        let mut out = PNG_SIGNATURE.to_vec();
        out.extend(ihdr(1, 1));
        out.extend(chunk(b"acTL", &[0, 0, 0, 2, 0, 0, 0, 0]));
        out.extend(fctl(0));
        out.extend(chunk(b"IDAT", &zlib_stored(&[0, 0])));
        out.extend(fctl(1));
        let mut fdat = 2u32.to_be_bytes().to_vec();
        fdat.extend(zlib_stored(&[0, 0xff]));
        out.extend(chunk(b"fdAT", &fdat));
        out.extend(chunk(b"IEND", &[]));
        out
    }

    /// A PNG whose header declares `width`×`height`, without pixels.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut out = PNG_SIGNATURE.to_vec();
        out.extend(ihdr(width, height));
        out
    }

    /// A baseline JPEG: SOI, a JFIF APP0, a SOF0 of 5×3 (height first), EOI.
    fn jpeg_5x3() -> Vec<u8> {
        let mut out = vec![0xff, 0xd8];
        out.extend_from_slice(&[0xff, 0xe0, 0, 16]);
        out.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        out.extend_from_slice(&[0xff, 0xc0, 0, 17, 8, 0, 3, 0, 5, 3]);
        out.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        out.extend_from_slice(&[0xff, 0xd9]);
        out
    }

    fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = kind.to_vec();
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
        out.extend_from_slice(b"WEBP");
        out.extend(body);
        out
    }

    fn u24(v: u32) -> [u8; 3] {
        let b = v.to_le_bytes();
        [b[0], b[1], b[2]]
    }

    /// A lossless bitstream header: signature, 14-bit width − 1 and height − 1.
    fn vp8l(width: u32, height: u32) -> Vec<u8> {
        let dims = (width - 1) | ((height - 1) << 14);
        let mut data = vec![0x2f];
        data.extend_from_slice(&dims.to_le_bytes());
        riff_chunk(b"VP8L", &data)
    }

    /// A lossy key frame header of `width`×`height` (16-bit fields, scale bits included).
    fn vp8(width: u16, height: u16) -> Vec<u8> {
        let mut data = vec![0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a];
        data.extend_from_slice(&width.to_le_bytes());
        data.extend_from_slice(&height.to_le_bytes());
        riff_chunk(b"VP8 ", &data)
    }

    fn vp8x(flags: u8, width: u32, height: u32) -> Vec<u8> {
        let mut data = vec![flags, 0, 0, 0];
        data.extend_from_slice(&u24(width - 1));
        data.extend_from_slice(&u24(height - 1));
        riff_chunk(b"VP8X", &data)
    }

    fn webp_still() -> Vec<u8> {
        riff(&[vp8x(0, 7, 3), vp8l(7, 3)])
    }

    fn webp_animated(frames: usize) -> Vec<u8> {
        let mut chunks = vec![vp8x(0x02, 8, 6), riff_chunk(b"ANIM", &[0; 6])];
        for _ in 0..frames {
            let mut data = Vec::new();
            data.extend_from_slice(&u24(0)); // x / 2
            data.extend_from_slice(&u24(0)); // y / 2
            data.extend_from_slice(&u24(7)); // width − 1
            data.extend_from_slice(&u24(5)); // height − 1
            data.extend_from_slice(&u24(100)); // duration, ms
            data.push(0);
            data.extend(vp8l(8, 6));
            chunks.push(riff_chunk(b"ANMF", &data));
        }
        riff(&chunks)
    }

    /// A 4×2 GIF89a of `frames` 1×1 frames, each with a graphic control extension, and
    /// a looping NETSCAPE extension first.
    fn gif(frames: usize) -> Vec<u8> {
        let mut out = b"GIF89a".to_vec();
        out.extend_from_slice(&[4, 0, 2, 0, 0x80, 0, 0]);
        out.extend_from_slice(&[0, 0, 0, 0xff, 0xff, 0xff]);
        out.extend_from_slice(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\0\0\0");
        for i in 0..frames {
            out.extend_from_slice(&[0x21, 0xf9, 4, 0, 10, 0, 0, 0]);
            out.extend_from_slice(&[0x2c, i as u8, 0, 0, 0, 1, 0, 1, 0, 0]);
            out.extend_from_slice(&[2, 2, 0x44, 0x01, 0]);
        }
        out.push(0x3b);
        out
    }

    fn ok(format: ImageFormat, width: u32, height: u32, frame_count: u32) -> Result<Probe, u16> {
        Ok(Probe {
            format,
            width,
            height,
            frame_count,
        })
    }

    #[test]
    fn reads_each_format() {
        use ImageFormat::*;
        let cases: Vec<(&str, Vec<u8>, Result<Probe, u16>)> = vec![
            ("1×1 PNG", png_1x1(), ok(Png, 1, 1, 1)),
            (
                "PNG header only",
                png_header(8192, 4096),
                ok(Png, 8192, 4096, 1),
            ),
            ("2-frame APNG", apng_2_frames(), ok(Apng, 1, 1, 2)),
            ("JPEG SOF0", jpeg_5x3(), ok(Jpeg, 5, 3, 1)),
            ("lossless WebP", riff(&[vp8l(7, 3)]), ok(Webp, 7, 3, 1)),
            ("lossy WebP", riff(&[vp8(10, 20)]), ok(Webp, 10, 20, 1)),
            (
                "lossy WebP, scale bits",
                riff(&[vp8(0xc000 | 10, 0x4000 | 20)]),
                ok(Webp, 10, 20, 1),
            ),
            ("still VP8X WebP", webp_still(), ok(Webp, 7, 3, 1)),
            ("animated WebP", webp_animated(2), ok(Webp, 8, 6, 2)),
            ("3-frame GIF", gif(3), ok(Gif, 4, 2, 3)),
            (
                "GIF87a",
                [b"GIF87a", &gif(1)[6..]].concat(),
                ok(Gif, 4, 2, 1),
            ),
            (
                "GIF without trailer",
                gif(2).split_last().unwrap().1.to_vec(),
                ok(Gif, 4, 2, 2),
            ),
            (
                "GIF, junk after trailer",
                [gif(1), vec![0x2c; 40]].concat(),
                ok(Gif, 4, 2, 1),
            ),
            // Refusals: 400 (too large or corrupt) and 415 (not an image).
            ("100000×100000 PNG", png_header(100_000, 100_000), Err(400)),
            ("8192×8192 PNG", png_header(8192, 8192), Err(400)),
            ("16385×1 PNG", png_header(16_385, 1), Err(400)),
            ("0×1 PNG", png_header(0, 1), Err(400)),
            ("truncated PNG", png_1x1()[..20].to_vec(), Err(400)),
            ("PNG signature only", PNG_SIGNATURE.to_vec(), Err(400)),
            (
                "PNG, IDAT first",
                [PNG_SIGNATURE.to_vec(), chunk(b"IDAT", &[0; 13])].concat(),
                Err(400),
            ),
            (
                "APNG of 0 frames",
                [png_header(1, 1), chunk(b"acTL", &[0; 8])].concat(),
                Err(400),
            ),
            ("JPEG without SOF", vec![0xff, 0xd8, 0xff, 0xd9], Err(400)),
            (
                "JPEG of height 0",
                {
                    let mut j = jpeg_5x3();
                    j[25] = 0;
                    j[26] = 0;
                    j
                },
                Err(400),
            ),
            ("GIF header only", b"GIF89a\x04\0\x02\0".to_vec(), Err(400)),
            ("GIF without frames", gif(0), Err(400)),
            (
                "GIF with a 65535×65535 frame",
                {
                    let mut g = gif(1);
                    let d = g.iter().position(|&b| b == 0x2c).unwrap();
                    g[d + 5..d + 9].copy_from_slice(&[0xff; 4]);
                    g
                },
                Err(400),
            ),
            ("animated WebP without ANMF", webp_animated(0), Err(400)),
            (
                "WebP of 100000×100000",
                riff(&[vp8x(0, 100_000, 100_000)]),
                Err(400),
            ),
            (
                "WebP, unknown chunk",
                riff(&[riff_chunk(b"VP9 ", &[0; 10])]),
                Err(400),
            ),
            ("truncated WebP", webp_still()[..22].to_vec(), Err(400)),
            ("empty", vec![], Err(415)),
            (
                "text named photo.png",
                b"hello, this is not an image\n".to_vec(),
                Err(415),
            ),
            (
                "PDF",
                b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj".to_vec(),
                Err(415),
            ),
            (
                "SVG",
                b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
                Err(415),
            ),
            ("RIFF WAV", b"RIFF\x24\0\0\0WAVEfmt ".to_vec(), Err(415)),
            ("GIF88a", b"GIF88a\x01\0\x01\0\0\0\0;".to_vec(), Err(415)),
        ];
        for (name, bytes, expected) in cases {
            let got = probe(&bytes);
            match (&got, &expected) {
                (Ok(p), Ok(e)) => assert_eq!(p, e, "{name}"),
                (Err(e), Err(status)) => assert_eq!(e.status(), *status, "{name}: {e}"),
                _ => panic!("{name}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn refusals_carry_their_codes_and_say_why() {
        let bomb = probe(&png_header(100_000, 100_000)).unwrap_err();
        assert_eq!(bomb.code(), ErrorCode::ImageTooLarge);
        assert_eq!(bomb.to_json()["error"]["type"], "invalid_request_error");
        assert!(bomb.message().contains("100000×100000"), "{bomb}");

        let corrupt = probe(&png_1x1()[..20]).unwrap_err();
        assert_eq!(corrupt.code(), ErrorCode::InvalidImage);
        assert!(corrupt.message().contains("PNG"), "{corrupt}");

        let cases: &[(&[u8], &str)] = &[
            (b"", "an empty file"),
            (b"%PDF-1.4", "a PDF"),
            (
                b"\xef\xbb\xbf  <?xml version=\"1.0\"?><svg/>",
                "an SVG/XML document",
            ),
            (b"<SVG width=\"1\">", "an SVG/XML document"),
            (b"<!DOCTYPE html><html>", "an HTML document"),
            (
                b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x01\0\0\0\x01\0\0\0",
                "a BMP image",
            ),
            (b"II*\0\x08\0\0\0", "a TIFF image"),
            (b"MM\0*\0\0\0\x08", "a TIFF image"),
            (b"\0\0\0\x1cftypheic\0\0\0\0", "a HEIC/HEIF image"),
            (b"\0\0\0\x1cftypavif\0\0\0\0", "an AVIF image"),
            (b"PK\x03\x04\x14\0", "a ZIP archive"),
            (b"plain text, named cat.jpg", "text"),
            ("ünïcödé text".as_bytes(), "text"),
            (b"\0\x01\x02\x03\xfe\xff", "unrecognised bytes"),
        ];
        for &(bytes, what) in cases {
            let e = probe(bytes).unwrap_err();
            assert_eq!(
                (e.status(), e.code()),
                (415, ErrorCode::UnsupportedMediaType)
            );
            assert!(
                e.message().contains(&format!("Unsupported file: {what}.")),
                "{what}: {e}"
            );
            assert!(e.message().contains("PNG, APNG, JPEG, WebP and GIF"), "{e}");
        }
    }

    #[test]
    fn format_names() {
        let rows: Vec<_> = ImageFormat::ALL
            .iter()
            .map(|f| (f.as_str(), f.extension(), f.content_type()))
            .collect();
        assert_eq!(
            rows,
            [
                ("png", "png", "image/png"),
                ("apng", "png", "image/apng"),
                ("jpeg", "jpg", "image/jpeg"),
                ("webp", "webp", "image/webp"),
                ("gif", "gif", "image/gif"),
            ]
        );
        for &f in ImageFormat::ALL {
            let json = serde_json::to_value(f).unwrap();
            assert_eq!(json, f.as_str());
            assert_eq!(serde_json::from_value::<ImageFormat>(json).unwrap(), f);
        }
    }

    /// The hand-built PNG fixtures decode with the `png` crate, to the same sizes.
    #[test]
    fn png_fixtures_agree_with_the_png_crate() {
        for (bytes, frames) in [(png_1x1(), None), (apng_2_frames(), Some(2))] {
            let mut reader = png::Decoder::new(Cursor::new(&bytes)).read_info().unwrap();
            let info = reader.info();
            let p = probe(&bytes).unwrap();
            assert_eq!((p.width, p.height), (info.width, info.height));
            assert_eq!(info.animation_control.map(|a| a.num_frames), frames);
            assert_eq!(p.frame_count, frames.unwrap_or(1));
            let mut buf = vec![0; reader.output_buffer_size()];
            reader.next_frame(&mut buf).unwrap();
        }
    }

    /// Files written by the `png` crate probe as what was written.
    #[test]
    fn png_crate_files_probe_as_written() {
        fn encode(width: u32, height: u32, frames: Option<u32>) -> Vec<u8> {
            let mut out = Vec::new();
            let mut encoder = png::Encoder::new(&mut out, width, height);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            if let Some(n) = frames {
                encoder.set_animated(n, 0).unwrap();
            }
            let mut writer = encoder.write_header().unwrap();
            let pixels = vec![0x7f; (width * height * 4) as usize];
            for _ in 0..frames.unwrap_or(1) {
                writer.write_image_data(&pixels).unwrap();
            }
            writer.finish().unwrap();
            out
        }
        let p = probe(&encode(300, 200, None)).unwrap();
        assert_eq!(p, ok(ImageFormat::Png, 300, 200, 1).unwrap());
        let p = probe(&encode(16, 9, Some(3))).unwrap();
        assert_eq!(p, ok(ImageFormat::Apng, 16, 9, 3).unwrap());
    }

    fn holds(result: Result<Probe, ApiError>) -> Result<(), TestCaseError> {
        match result {
            Ok(p) => {
                prop_assert!((1..=SIDE_MAX).contains(&p.width), "{p:?}");
                prop_assert!((1..=SIDE_MAX).contains(&p.height), "{p:?}");
                prop_assert!(u64::from(p.width) * u64::from(p.height) <= PIXELS_MAX);
                prop_assert!(p.frame_count >= 1);
            }
            Err(e) => {
                let expected = match e.status() {
                    415 => vec![ErrorCode::UnsupportedMediaType],
                    400 => vec![ErrorCode::ImageTooLarge, ErrorCode::InvalidImage],
                    _ => vec![],
                };
                prop_assert!(expected.contains(&e.code()), "{e}");
                prop_assert!(e.message().chars().count() < 300, "{e}");
            }
        }
        Ok(())
    }

    fn fixtures() -> Vec<Vec<u8>> {
        vec![
            png_1x1(),
            apng_2_frames(),
            png_header(8192, 4096),
            jpeg_5x3(),
            riff(&[vp8l(7, 3)]),
            riff(&[vp8(10, 20)]),
            webp_still(),
            webp_animated(2),
            gif(3),
        ]
    }

    /// A fixture with bytes overwritten, inserted or removed, then maybe cut short.
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let edit = (any::<prop::sample::Index>(), any::<u8>(), 0u8..4);
        (
            prop::sample::select(fixtures()),
            prop::collection::vec(edit, 1..8),
            proptest::option::of(any::<prop::sample::Index>()),
        )
            .prop_map(|(mut bytes, edits, cut)| {
                for (at, byte, how) in edits {
                    let len = bytes.len();
                    match how {
                        0 | 1 if len > 0 => bytes[at.index(len)] = byte,
                        2 => bytes.insert(at.index(len + 1), byte),
                        _ if len > 0 => {
                            bytes.remove(at.index(len));
                        }
                        _ => {}
                    }
                }
                if let Some(cut) = cut {
                    bytes.truncate(cut.index(bytes.len() + 1));
                }
                bytes
            })
    }

    /// Any bytes, and bytes after each magic number.
    fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
        let magic = prop::sample::select(vec![
            PNG_SIGNATURE.to_vec(),
            JPEG_SOI.to_vec(),
            b"GIF89a".to_vec(),
            b"RIFF\0\0\0\0WEBPVP8X".to_vec(),
            b"RIFF\0\0\0\0WEBPVP8 ".to_vec(),
            b"RIFF\0\0\0\0WEBPVP8L".to_vec(),
        ]);
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            (magic, prop::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(m, rest)| [m, rest].concat()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_probe_within_limits_or_refuse(bytes in any_bytes()) {
            holds(probe(&bytes))?;
        }

        #[test]
        fn mutated_fixtures_probe_within_limits_or_refuse(bytes in mutated()) {
            holds(probe(&bytes))?;
        }
    }
}
