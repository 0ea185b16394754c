//! The sim's images: a deterministic PNG of the requested size, drawn from a seed that
//! every parameter feeds (a four-colour gradient, soft diagonal bands, a few soft
//! discs). A stand-in for a model's output that tests can compare byte for byte.
//!
//! img2img ([`render_png_from`] with a reference): the reference is resized to the
//! output size (nearest sample), its transparent parts filled from the procedural render,
//! and the result blended [`REFERENCE_WEIGHT_PERCENT`] % reference, the rest procedural.
//! So an output made from a red reference is mostly red, and the same reference, seed
//! and parameters always give the same bytes.

use image::RgbaImage;
use kiln_shared::images::ImageParams;
use sha2::{Digest, Sha256};

use super::rng::SplitMix64;

/// How much of an img2img output is the reference, in percent.
pub const REFERENCE_WEIGHT_PERCENT: u32 = 70;

/// Renders the image for `params` as PNG bytes: a four-colour gradient, soft diagonal
/// bands and a few soft discs, all drawn from a seed derived from every parameter.
pub fn render_png(params: &ImageParams) -> Result<Vec<u8>, png::EncodingError> {
    render_png_from(params, None)
}

/// [`render_png`], blended with `reference` when there is one (img2img; see the module
/// docs).
pub fn render_png_from(
    params: &ImageParams,
    reference: Option<&RgbaImage>,
) -> Result<Vec<u8>, png::EncodingError> {
    let mut rgb = render_rgb(
        params.width,
        params.height,
        &mut SplitMix64::new(seed_of(params)),
    );
    if let Some(reference) = reference {
        blend_reference(&mut rgb, reference, params.width, params.height);
    }
    let mut out = Vec::with_capacity(rgb.len() / 4);
    let mut encoder = png::Encoder::new(&mut out, params.width, params.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Speed over size: the file is a stand-in and the render must stay fast in debug builds.
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::FilterType::Sub);
    encoder.add_text_chunk(
        "Software".to_owned(),
        "Kiln simulated engine (not a model output)".to_owned(),
    )?;
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(out)
}

/// A 64-bit seed from the parameters' canonical JSON (serde keeps field order fixed),
/// so any change to any parameter gives a different image.
fn seed_of(params: &ImageParams) -> u64 {
    let canonical = serde_json::to_vec(params).expect("ImageParams always serializes");
    let digest = Sha256::digest(&canonical);
    u64::from_le_bytes(
        digest[..8]
            .try_into()
            .expect("a SHA-256 digest has 8 bytes"),
    )
}

/// A colour channel triple, bright and dark extremes avoided.
fn colour(rng: &mut SplitMix64) -> [i64; 3] {
    [rng.range(20, 235), rng.range(20, 235), rng.range(20, 235)]
}

const DISCS_MIN: i64 = 4;
const DISCS_MAX: i64 = 8;

/// Row-major RGB, 3 bytes per pixel. Integer math with fixed-point steps, so a
/// 2048×2048 image renders quickly even without optimizations.
fn render_rgb(width: u32, height: u32, rng: &mut SplitMix64) -> Vec<u8> {
    let (w, h) = (width as i64, height as i64);
    let corners = [colour(rng), colour(rng), colour(rng), colour(rng)];
    // Diagonal bands: the phase advances by (band_dx, band_dy) per pixel in 1/256ths.
    let band_dx = rng.range(40, 400);
    let band_dy = rng.range(-400, 400);
    let band_depth = rng.range(8, 28);

    let mut rgb = vec![0u8; (w * h * 3) as usize];
    for y in 0..h {
        let mut row = [[0i64; 2]; 3];
        for (c, ends) in row.iter_mut().enumerate() {
            let left = lerp(corners[0][c], corners[2][c], y, h - 1);
            let right = lerp(corners[1][c], corners[3][c], y, h - 1);
            // 16.16 fixed point: the start value and the step per pixel.
            *ends = [left << 16, ((right - left) << 16) / (w - 1)];
        }
        let mut phase = y * band_dy;
        let line = &mut rgb[(y * w * 3) as usize..((y + 1) * w * 3) as usize];
        for px in line.chunks_exact_mut(3) {
            let band = (phase >> 8) & 127;
            let shade = if band < 64 { band } else { 127 - band } * band_depth / 64;
            for (c, ends) in row.iter_mut().enumerate() {
                px[c] = ((ends[0] >> 16) + shade).clamp(0, 255) as u8;
                ends[0] += ends[1];
            }
            phase += band_dx;
        }
    }

    for _ in 0..rng.range(DISCS_MIN, DISCS_MAX) {
        let r = rng.range(w.min(h) / 16, w.min(h) / 5);
        let (cx, cy) = (rng.range(0, w - 1), rng.range(0, h - 1));
        let tint = colour(rng);
        let strength = rng.range(120, 230);
        draw_soft_disc(&mut rgb, (w, h), (cx, cy, r), tint, strength);
    }
    rgb
}

/// `image` scaled to `width`×`height` by nearest sample (the source pixel under each
/// output pixel's centre): integer math, fast in debug builds, and deterministic.
pub(crate) fn resize_nearest(image: &RgbaImage, width: u32, height: u32) -> RgbaImage {
    let (sw, sh) = (u64::from(image.width()), u64::from(image.height()));
    let (w, h) = (u64::from(width), u64::from(height));
    let xs: Vec<u32> = (0..w)
        .map(|x| ((2 * x + 1) * sw / (2 * w)) as u32)
        .collect();
    RgbaImage::from_fn(width, height, |x, y| {
        let sy = ((2 * u64::from(y) + 1) * sh / (2 * h)) as u32;
        *image.get_pixel(xs[x as usize], sy)
    })
}

/// Mixes the reference into the procedural `rgb` (see the module docs).
fn blend_reference(rgb: &mut [u8], reference: &RgbaImage, width: u32, height: u32) {
    let fitted = resize_nearest(reference, width, height);
    let weight = REFERENCE_WEIGHT_PERCENT;
    for (px, r) in rgb.chunks_exact_mut(3).zip(fitted.pixels()) {
        let alpha = u32::from(r[3]);
        for c in 0..3 {
            let procedural = u32::from(px[c]);
            let seen = (u32::from(r[c]) * alpha + procedural * (255 - alpha)) / 255;
            px[c] = ((seen * weight + procedural * (100 - weight)) / 100) as u8;
        }
    }
}

fn lerp(a: i64, b: i64, t: i64, t_max: i64) -> i64 {
    a + (b - a) * t / t_max
}

/// Blends `colour` in with opacity `strength`/256 at the centre, fading to nothing at
/// radius `r`.
fn draw_soft_disc(
    rgb: &mut [u8],
    (w, h): (i64, i64),
    (cx, cy, r): (i64, i64, i64),
    colour: [i64; 3],
    strength: i64,
) {
    let r2 = r * r;
    for y in (cy - r).max(0)..(cy + r).min(h) {
        let dy2 = (y - cy) * (y - cy);
        for x in (cx - r).max(0)..(cx + r).min(w) {
            let d2 = dy2 + (x - cx) * (x - cx);
            if d2 >= r2 {
                continue;
            }
            let alpha = strength * (r2 - d2) / r2;
            let i = ((y * w + x) * 3) as usize;
            for c in 0..3 {
                let p = rgb[i + c] as i64;
                rgb[i + c] = (p + (((colour[c] - p) * alpha) >> 8)) as u8;
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::collections::HashSet;

    pub(crate) fn params(prompt: &str, seed: u64, width: u32, height: u32) -> ImageParams {
        ImageParams {
            prompt: prompt.to_owned(),
            width,
            height,
            steps: 20,
            cfg: 4.0,
            seed,
            n: 1,
        }
    }

    fn decode(bytes: &[u8]) -> (u32, u32, png::ColorType) {
        let reader = png::Decoder::new(bytes).read_info().expect("a valid PNG");
        let info = reader.info();
        (info.width, info.height, info.color_type)
    }

    #[test]
    fn same_parameters_give_the_same_bytes() {
        let p = params("a kiln at dusk", 42, 512, 512);
        assert_eq!(render_png(&p).unwrap(), render_png(&p).unwrap());
    }

    #[test]
    fn any_parameter_changes_the_image() {
        let base = params("a kiln at dusk", 42, 512, 512);
        let image = render_png(&base).unwrap();
        let variants = [
            ImageParams {
                seed: 43,
                ..base.clone()
            },
            ImageParams {
                prompt: "a kiln at dawn".into(),
                ..base.clone()
            },
            ImageParams {
                steps: 21,
                ..base.clone()
            },
            ImageParams {
                cfg: 4.5,
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(render_png(&v).unwrap(), image, "{v:?}");
        }
    }

    #[test]
    fn images_have_the_requested_size() {
        for (w, h) in [(512, 512), (512, 1024), (1024, 576), (2048, 2048)] {
            let bytes = render_png(&params("size check", 7, w, h)).unwrap();
            assert_eq!(decode(&bytes), (w, h, png::ColorType::Rgb), "{w}x{h}");
        }
    }

    #[test]
    fn images_are_not_flat() {
        let p = params("variety", 1, 512, 512);
        let rgb = render_rgb(p.width, p.height, &mut SplitMix64::new(seed_of(&p)));
        let distinct: HashSet<&[u8]> = rgb.chunks_exact(3).collect();
        assert!(distinct.len() > 1000, "{} colours", distinct.len());
    }
}
