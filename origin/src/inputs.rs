//! A job's input files (`DispatchJob::input_files`: uploads or earlier outputs of the
//! caller, checked by the edge), made ready for an engine (`docs/architecture.md`,
//! "3. Run"): each is fetched from the edge ([`EdgeClient::fetch_input`]) and decoded
//! into one RGBA image. An animation (GIF, APNG, animated WebP) is reduced to its first
//! frame. Decoding is bounded by [`limits`], so a decompression bomb fails the job
//! instead of exhausting memory.
//!
//! Engines see only [`InputImage`]s, never a URL or the edge.

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::jpeg::JpegDecoder;
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::error::{
    ImageFormatHint, LimitError, LimitErrorKind, UnsupportedError, UnsupportedErrorKind,
};
use image::{
    AnimationDecoder, ColorType, DynamicImage, ImageDecoder, ImageError, ImageFormat, Limits,
    RgbaImage,
};
use kiln_shared::ids::Filename;
use kiln_shared::origin::DispatchJob;
use reqwest::StatusCode;

use crate::edge_client::{DeliveryError, EdgeClient};
use crate::engine::{EngineError, InputImage};

/// Wider or taller than this is refused before any pixel is decoded (as uploads are).
pub const SIDE_PX_MAX: u32 = 16_384;
/// All buffers of one decode together, the RGBA conversion included.
pub const ALLOC_BYTES_MAX: u64 = 512 * 1024 * 1024;

/// The decoder limits for untrusted inputs.
pub fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(SIDE_PX_MAX);
    limits.max_image_height = Some(SIDE_PX_MAX);
    limits.max_alloc = Some(ALLOC_BYTES_MAX);
    limits
}

/// Fetches and decodes every input of `job`, in order. A file the edge will not serve,
/// or that does not decode, is an [`EngineError::Failed`] with a message the caller can
/// act on.
pub async fn prepare(edge: &EdgeClient, job: &DispatchJob) -> Result<Vec<InputImage>, EngineError> {
    let mut inputs = Vec::with_capacity(job.input_files.len());
    for filename in &job.input_files {
        let file = edge
            .fetch_input(&job.job_id, filename)
            .await
            .map_err(|e| fetch_failure(filename, &e))?;
        let bytes = file.bytes;
        // Decoding a large image is CPU work for up to a second or so.
        let decoded = tokio::task::spawn_blocking(move || decode_first_frame(&bytes))
            .await
            .map_err(|e| EngineError::Internal(format!("decode task: {e}")))?;
        let image = decoded.map_err(|e| decode_failure(filename, &e))?;
        tracing::info!(
            input = %filename,
            content_type = file.content_type.as_deref().unwrap_or("-"),
            width = image.width(),
            height = image.height(),
            "input fetched"
        );
        inputs.push(InputImage {
            filename: filename.clone(),
            image,
        });
    }
    Ok(inputs)
}

/// The message for an input that cannot be decoded.
pub fn decode_failure(filename: &Filename, e: &ImageError) -> EngineError {
    EngineError::Failed(format!(
        "input file {filename} could not be decoded as an image: {e}. \
         Upload it again as PNG, JPEG, WebP or GIF."
    ))
}

fn fetch_failure(filename: &Filename, e: &DeliveryError) -> EngineError {
    tracing::warn!(error = %e, input = %filename, "input fetch failed");
    let why = match e {
        DeliveryError::Refused { status, .. } if *status == StatusCode::NOT_FOUND => {
            "it no longer exists (was it deleted?)".to_owned()
        }
        DeliveryError::Refused { status, .. } => format!("storage refused it ({status})"),
        DeliveryError::TooLarge { bytes_max, .. } => {
            format!("it is larger than {} MB", bytes_max / 1_000_000)
        }
        DeliveryError::GaveUp { .. } => "storage did not answer; try again".to_owned(),
    };
    EngineError::Failed(format!(
        "input file {filename} could not be fetched: {why}."
    ))
}

/// Decodes PNG, APNG, JPEG, WebP or GIF bytes into one RGBA image: the first frame of an
/// animation (for APNG, the animation's first frame, which may differ from a default
/// image that is only a thumbnail), with JPEG/WebP orientation applied. The format is
/// recognised from the bytes. Bounded by [`limits`].
pub fn decode_first_frame(bytes: &[u8]) -> Result<RgbaImage, ImageError> {
    let cursor = || Cursor::new(bytes);
    match image::guess_format(bytes)? {
        ImageFormat::Png => {
            let decoder = PngDecoder::with_limits(cursor(), limits())?;
            if decoder.is_apng()? {
                if let Some(frame) = decoder.apng()?.into_frames().next() {
                    return Ok(frame?.into_buffer());
                }
                // An animation control chunk but no frame: the default image is all there is.
                return still(PngDecoder::with_limits(cursor(), limits())?);
            }
            still(decoder)
        }
        // The GIF and WebP decoders read the first frame of an animation.
        ImageFormat::Gif => still(GifDecoder::new(cursor())?),
        ImageFormat::WebP => still(WebPDecoder::new(cursor())?),
        ImageFormat::Jpeg => still(JpegDecoder::new(cursor())?),
        other => Err(ImageError::Unsupported(
            UnsupportedError::from_format_and_kind(
                ImageFormatHint::Exact(other),
                UnsupportedErrorKind::Format(ImageFormatHint::Exact(other)),
            ),
        )),
    }
}

/// Decodes one still picture, reserving its buffer and its RGBA copy against the limits
/// before anything is allocated.
fn still(mut decoder: impl ImageDecoder) -> Result<RgbaImage, ImageError> {
    let mut limits = limits();
    limits.check_dimensions(decoder.dimensions().0, decoder.dimensions().1)?;
    limits.reserve(decoder.total_bytes())?;
    if decoder.color_type() != ColorType::Rgba8 {
        let (w, h) = decoder.dimensions();
        let rgba = u64::from(w)
            .checked_mul(u64::from(h))
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| {
                ImageError::Limits(LimitError::from_kind(LimitErrorKind::InsufficientMemory))
            })?;
        limits.reserve(rgba)?;
    }
    let orientation = decoder.orientation()?;
    decoder.set_limits(limits)?;
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    Ok(image.into_rgba8())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use image::codecs::gif::GifEncoder;
    use image::codecs::jpeg::JpegEncoder;
    use image::codecs::webp::WebPEncoder;
    use image::{Delay, Frame, ImageEncoder, Rgba};

    pub(crate) const RED: Rgba<u8> = Rgba([230, 20, 20, 255]);
    pub(crate) const BLUE: Rgba<u8> = Rgba([20, 20, 230, 255]);

    /// A still PNG of one colour.
    pub(crate) fn png_of(colour: Rgba<u8>, width: u32, height: u32) -> Vec<u8> {
        let image = RgbaImage::from_pixel(width, height, colour);
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    /// A GIF of two frames: red, then blue.
    pub(crate) fn animated_gif() -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = GifEncoder::new(&mut out);
            for colour in [RED, BLUE] {
                let frame = Frame::from_parts(
                    RgbaImage::from_pixel(16, 8, colour),
                    0,
                    0,
                    Delay::from_numer_denom_ms(100, 1),
                );
                encoder.encode_frame(frame).unwrap();
            }
        }
        out
    }

    /// An APNG of two frames, red then blue, whose default image is the first frame.
    fn animated_png() -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, 16, 8);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_animated(2, 0).unwrap();
        let mut writer = encoder.write_header().unwrap();
        for colour in [RED, BLUE] {
            let data: Vec<u8> = RgbaImage::from_pixel(16, 8, colour).into_raw();
            writer.write_image_data(&data).unwrap();
        }
        writer.finish().unwrap();
        out
    }

    fn riff_chunk(name: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = name.to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        if body.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn u24(n: u32) -> [u8; 3] {
        let b = n.to_le_bytes();
        [b[0], b[1], b[2]]
    }

    /// A lossless WebP's `VP8L` chunk (header and body) of one colour.
    fn vp8l_chunk(colour: Rgba<u8>, width: u32, height: u32) -> Vec<u8> {
        let mut still = Vec::new();
        WebPEncoder::new_lossless(&mut still)
            .write_image(
                RgbaImage::from_pixel(width, height, colour).as_raw(),
                width,
                height,
                image::ExtendedColorType::Rgba8,
            )
            .unwrap();
        // RIFF header (12 bytes), then the one VP8L chunk.
        assert_eq!(&still[12..16], b"VP8L");
        still[12..].to_vec()
    }

    /// An animated WebP of two full-canvas frames, red then blue, built by hand from
    /// lossless frames (the `image` crate writes no animations).
    fn animated_webp() -> Vec<u8> {
        let (w, h) = (16, 8);
        let mut vp8x = vec![0x02 | 0x10, 0, 0, 0]; // animation, alpha
        vp8x.extend_from_slice(&u24(w - 1));
        vp8x.extend_from_slice(&u24(h - 1));
        let mut body = b"WEBP".to_vec();
        body.extend(riff_chunk(b"VP8X", &vp8x));
        body.extend(riff_chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
        for colour in [RED, BLUE] {
            let mut anmf = Vec::new();
            anmf.extend_from_slice(&u24(0)); // x / 2
            anmf.extend_from_slice(&u24(0)); // y / 2
            anmf.extend_from_slice(&u24(w - 1));
            anmf.extend_from_slice(&u24(h - 1));
            anmf.extend_from_slice(&u24(100)); // duration, ms
            anmf.push(0b10); // no blending, no disposal
            anmf.extend(vp8l_chunk(colour, w, h));
            body.extend(riff_chunk(b"ANMF", &anmf));
        }
        riff_chunk(b"RIFF", &body)
    }

    fn assert_solid(image: &RgbaImage, colour: Rgba<u8>, size: (u32, u32)) {
        assert_eq!(image.dimensions(), size);
        for p in image.pixels() {
            let close = (0..4).all(|c| p[c].abs_diff(colour[c]) <= 8);
            assert!(close, "{p:?} is not {colour:?}");
        }
    }

    #[test]
    fn animations_are_reduced_to_their_first_frame() {
        for (name, bytes) in [
            ("gif", animated_gif()),
            ("apng", animated_png()),
            ("webp", animated_webp()),
        ] {
            let image = decode_first_frame(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_solid(&image, RED, (16, 8));
        }
    }

    #[test]
    fn stills_of_every_format_decode_to_rgba() {
        let rgb = image::RgbImage::from_pixel(24, 12, image::Rgb([230, 20, 20]));
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 95)
            .write_image(rgb.as_raw(), 24, 12, image::ExtendedColorType::Rgb8)
            .unwrap();
        let mut webp = Vec::new();
        WebPEncoder::new_lossless(&mut webp)
            .write_image(rgb.as_raw(), 24, 12, image::ExtendedColorType::Rgb8)
            .unwrap();
        for (name, bytes) in [("png", png_of(RED, 24, 12)), ("jpeg", jpeg), ("webp", webp)] {
            let image = decode_first_frame(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_solid(&image, RED, (24, 12));
        }
    }

    #[test]
    fn transparency_is_kept() {
        let clear = Rgba([1, 2, 3, 0]);
        assert_solid(
            &decode_first_frame(&png_of(clear, 4, 4)).unwrap(),
            clear,
            (4, 4),
        );
    }

    /// CRC-32 (IEEE), as PNG chunks carry it.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A small PNG whose header claims `width`×`height`: a decompression bomb's shape.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = png_of(RED, 4, 4);
        // Signature (8), IHDR length (4) and type (4), then width and height.
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn bombs_are_refused_before_decoding() {
        // Over the side limit, then within it but over the memory limit (1 GiB of RGBA).
        for (w, h) in [(SIDE_PX_MAX + 1, 4), (16_384, 16_384)] {
            let e = decode_first_frame(&png_claiming(w, h)).unwrap_err();
            assert!(matches!(e, ImageError::Limits(_)), "{w}x{h}: {e}");
        }
    }

    #[test]
    fn other_bytes_do_not_decode_and_say_so() {
        let mut truncated = png_of(RED, 64, 64);
        truncated.truncate(truncated.len() / 2);
        for bytes in [
            b"not an image at all".to_vec(),
            truncated,
            b"BM\0\0".to_vec(),
        ] {
            assert!(decode_first_frame(&bytes).is_err());
        }
        let filename = Filename::parse("broken.png").unwrap();
        let e = decode_first_frame(b"garbage").unwrap_err();
        let EngineError::Failed(message) = decode_failure(&filename, &e) else {
            panic!("want a failure the caller reads");
        };
        assert!(
            message.starts_with("input file broken.png could not be decoded as an image: "),
            "{message}"
        );
    }
}
