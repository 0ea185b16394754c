//! What the camera films, as a [`Source`] defined for every integer world column, so a
//! camera panning along it only ever needs new columns at one edge:
//!
//! - [`Scene`]: an endless, seed-dependent landscape (sky, sun, mountains, striped hills
//!   with trees, a road, balloons) — text-to-video;
//! - [`Picture`]: a job's input image at the output size, mirrored at its edges so it
//!   goes on for ever — image-to-video.
//!
//! Only `+ - * /`, `floor` and `sqrt` are used on floats (all exactly specified by IEEE
//! 754), so the pixels are the same on every platform.

use image::RgbaImage;

use crate::engine::sim::image::resize_nearest;
use crate::engine::sim::rng::SplitMix64;

/// A picture area in 8-bit 4:2:0 Y'CbCr, BT.709 studio range.
pub(crate) struct Planes {
    pub width: usize,
    /// `width × height`, row-major.
    pub luma: Vec<u8>,
    /// `width/2 × height/2` each, row-major.
    pub cb: Vec<u8>,
    pub cr: Vec<u8>,
}

impl Planes {
    /// The 384 I_PCM bytes of the 16×16 macroblock at (`mb_x`, `mb_y`): luma, Cb, Cr,
    /// each in raster order.
    pub(crate) fn macroblock(&self, mb_x: u32, mb_y: u32, out: &mut [u8; 384]) {
        let (x, y) = (mb_x as usize * 16, mb_y as usize * 16);
        for row in 0..16 {
            let at = (y + row) * self.width + x;
            out[row * 16..row * 16 + 16].copy_from_slice(&self.luma[at..at + 16]);
        }
        let cw = self.width / 2;
        for row in 0..8 {
            let at = (y / 2 + row) * cw + x / 2;
            out[256 + row * 8..256 + row * 8 + 8].copy_from_slice(&self.cb[at..at + 8]);
            out[320 + row * 8..320 + row * 8 + 8].copy_from_slice(&self.cr[at..at + 8]);
        }
    }
}

pub(crate) type Rgb = [f64; 3];

/// What a camera films: colours defined for every integer world column, so a camera
/// panning along it only ever needs new columns at one edge.
pub(crate) trait Source {
    /// One world column, top to bottom, as linear-ish RGB in 0..=1. `spans` is scratch
    /// space a source may reuse between columns.
    fn column(&self, wx: i64, out: &mut [Rgb], spans: &mut Vec<(f64, f64, Rgb)>);

    /// The area of world columns `x0..x0 + width`, rows `0..height`, as 4:2:0 planes
    /// (chroma from the average of each 2×2 block).
    fn render(&self, x0: i64, width: usize, height: usize) -> Planes {
        assert!(width.is_multiple_of(2) && height.is_multiple_of(2));
        let mut p = Planes {
            width,
            luma: vec![0; width * height],
            cb: vec![0; width * height / 4],
            cr: vec![0; width * height / 4],
        };
        let mut left = vec![[0.0; 3]; height];
        let mut right = vec![[0.0; 3]; height];
        let mut spans = Vec::new();
        let cw = width / 2;
        for cx in 0..cw {
            let x = 2 * cx;
            self.column(x0 + x as i64, &mut left, &mut spans);
            self.column(x0 + x as i64 + 1, &mut right, &mut spans);
            for cy in 0..height / 2 {
                let y = 2 * cy;
                let quad = [left[y], right[y], left[y + 1], right[y + 1]];
                p.luma[y * width + x] = luma(quad[0]);
                p.luma[y * width + x + 1] = luma(quad[1]);
                p.luma[(y + 1) * width + x] = luma(quad[2]);
                p.luma[(y + 1) * width + x + 1] = luma(quad[3]);
                let mut avg = [0.0; 3];
                for c in quad {
                    for i in 0..3 {
                        avg[i] += c[i] * 0.25;
                    }
                }
                let (cb, cr) = chroma(avg);
                p.cb[cy * cw + cx] = cb;
                p.cr[cy * cw + cx] = cr;
            }
        }
        p
    }
}

/// The landscape for one seed, laid out for a view `view_height` pixels tall.
pub(crate) struct Scene {
    h: f64,
    seed: u64,
    phase: [f64; 5],
    sun_x: f64,
    sky_top: Rgb,
    sky_horizon: Rgb,
    sun: Rgb,
    ridge: Rgb,
    ridge_shadow: Rgb,
    snow: Rgb,
    hill_a: Rgb,
    hill_b: Rgb,
    canopy: Rgb,
    trunk: Rgb,
    road: Rgb,
    road_line: Rgb,
    kerb_a: Rgb,
    kerb_b: Rgb,
}

const ROAD_TOP: f64 = 0.84;
const KERB_TOP: f64 = 0.965;
const BALLOON_CELL: f64 = 0.5;
const TREE_CELL: f64 = 0.16;

impl Scene {
    pub(crate) fn new(seed: u64, view_width: u32, view_height: u32) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0x6b69_6c6e_2d73_696d);
        let hue = rng.unit();
        let alt = if rng.unit() < 0.5 { 0.5 } else { 0.33 };
        let mut phase = [0.0; 5];
        for p in &mut phase {
            *p = rng.unit();
        }
        Scene {
            h: f64::from(view_height),
            seed,
            phase,
            sun_x: f64::from(view_width) * (0.55 + 0.3 * rng.unit()),
            sky_top: hsv(hue, 0.65, 0.45),
            sky_horizon: hsv(hue + 0.08, 0.35, 0.98),
            sun: hsv(hue + alt + 0.1, 0.25, 1.0),
            ridge: hsv(hue + alt, 0.35, 0.62),
            ridge_shadow: hsv(hue + alt + 0.03, 0.45, 0.38),
            snow: hsv(hue, 0.05, 0.97),
            hill_a: hsv(hue + 0.5 + alt * 0.4, 0.65, 0.62),
            hill_b: hsv(hue + 0.52 + alt * 0.4, 0.75, 0.48),
            canopy: hsv(hue + 0.45, 0.7, 0.3),
            trunk: hsv(0.07, 0.6, 0.3),
            road: [0.2, 0.2, 0.22],
            road_line: hsv(hue + 0.15, 0.8, 1.0),
            kerb_a: hsv(hue + alt + 0.5, 0.8, 0.85),
            kerb_b: [0.95, 0.95, 0.95],
        }
    }

    fn ridge_y(&self, u: f64) -> f64 {
        let p = &self.phase;
        self.h
            * (0.5
                + 0.06 * wave(u * 0.8 + p[0])
                + 0.03 * wave(u * 2.1 + p[1])
                + 0.012 * wave(u * 5.3 + p[2]))
    }

    fn hill_y(&self, u: f64) -> f64 {
        let p = &self.phase;
        self.h * (0.69 + 0.04 * wave(u * 0.55 + p[3]) + 0.015 * wave(u * 1.9 + p[4]))
    }
}

impl Source for Scene {
    fn column(&self, wx: i64, out: &mut [Rgb], spans: &mut Vec<(f64, f64, Rgb)>) {
        let h = self.h;
        let fx = wx as f64 + 0.5;
        let u = fx / h;
        let ridge_y = self.ridge_y(u);
        let hill_y = self.hill_y(u);
        let road_y = h * ROAD_TOP;
        let kerb_y = h * KERB_TOP;
        let sun_r = h * 0.085;
        let sun_y = h * 0.22;
        let sun_dx = fx - self.sun_x;
        let near_sun = sun_dx.abs() < sun_r * 1.8;
        let dash = frac(fx / (h * 0.22)) < 0.55;
        let kerb = if frac(fx / (h * 0.05)) < 0.5 {
            self.kerb_a
        } else {
            self.kerb_b
        };
        for (y, px) in out.iter_mut().enumerate() {
            let fy = y as f64 + 0.5;
            *px = if fy >= kerb_y {
                kerb
            } else if fy >= road_y {
                if fy < road_y + h * 0.008 || (dash && (fy - h * 0.905).abs() < h * 0.006) {
                    self.road_line
                } else {
                    self.road
                }
            } else if fy >= hill_y {
                let depth = (fy - hill_y) / (road_y - hill_y);
                let stripe = frac((fx + (fy - hill_y) * 1.3) / (h * 0.035)) < 0.5;
                let c = if stripe { self.hill_a } else { self.hill_b };
                scale(c, 1.0 - 0.3 * depth)
            } else if fy >= ridge_y {
                if fy < h * (0.465 + 0.008 * wave(u * 7.0 + self.phase[1])) {
                    self.snow
                } else {
                    let t = clamp01((fy - ridge_y) / (hill_y - ridge_y).max(1.0));
                    mix(self.ridge, self.ridge_shadow, t)
                }
            } else {
                let sky = mix(self.sky_top, self.sky_horizon, clamp01(fy / (h * 0.55)));
                if near_sun {
                    let dy = fy - sun_y;
                    let d = (sun_dx * sun_dx + dy * dy).sqrt();
                    if d < sun_r {
                        self.sun
                    } else if d < sun_r * 1.8 {
                        let g = 1.0 - (d - sun_r) / (sun_r * 0.8);
                        mix(sky, self.sun, 0.5 * g * g)
                    } else {
                        sky
                    }
                } else {
                    sky
                }
            };
        }

        spans.clear();
        // Trees on the hills: a triangular canopy on a trunk.
        let cell = h * TREE_CELL;
        let k0 = (fx / cell).floor() as i64;
        for k in k0 - 1..=k0 + 1 {
            let mut r = SplitMix64::new(
                self.seed ^ 0x7472_6565 ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            if r.unit() >= 0.55 {
                continue;
            }
            let tx = (k as f64 + 0.2 + 0.6 * r.unit()) * cell;
            let th = h * (0.07 + 0.06 * r.unit());
            let base = self.hill_y(tx / h) + h * 0.012;
            let apex = base - th;
            let dx = (fx - tx).abs();
            if dx < th * 0.05 {
                spans.push((base - th * 0.25, base, self.trunk));
            }
            if dx < th * 0.32 {
                spans.push((apex + dx * (0.8 / 0.32), base - th * 0.2, self.canopy));
            }
        }
        // Balloons in the sky, each with a highlight and a string.
        let cell = h * BALLOON_CELL;
        let k0 = (fx / cell).floor() as i64;
        for k in k0 - 1..=k0 + 1 {
            let mut r = SplitMix64::new(
                self.seed ^ 0x6261_6c6c ^ (k as u64).wrapping_mul(0xd1b5_4a32_d192_ed03),
            );
            if r.unit() >= 0.7 {
                continue;
            }
            let cx = (k as f64 + 0.15 + 0.7 * r.unit()) * cell;
            let cy = h * (0.1 + 0.22 * r.unit());
            let rad = h * (0.025 + 0.035 * r.unit());
            let colour = hsv(r.unit(), 0.75, 0.95);
            let dx = fx - cx;
            if dx.abs() < (h * 0.003).max(0.5) {
                spans.push((cy + rad, cy + rad * 2.2, [0.15, 0.15, 0.15]));
            }
            if dx.abs() < rad {
                let half = (rad * rad - dx * dx).sqrt();
                spans.push((cy - half, cy + half, colour));
            }
            let (hx, hy, hr) = (cx - rad * 0.35, cy - rad * 0.35, rad * 0.25);
            let hdx = fx - hx;
            if hdx.abs() < hr {
                let half = (hr * hr - hdx * hdx).sqrt();
                spans.push((hy - half, hy + half, mix(colour, [1.0; 3], 0.6)));
            }
        }
        let len = out.len() as f64;
        for &(top, bottom, colour) in spans.iter() {
            // Rows whose centre y + 0.5 lies in [top, bottom).
            let from = (top - 0.5).max(0.0).min(len).ceil() as usize;
            let to = (bottom - 0.5).max(0.0).min(len).ceil() as usize;
            for px in &mut out[from..to.max(from)] {
                *px = colour;
            }
        }
    }
}

/// An input image resized (nearest sample) to the view, transparent parts over black.
/// World column `x` of `0..width` is image column `x`; beyond, the image repeats
/// mirrored (`width..2·width` is the image flipped), so a pan never leaves it. Rows below
/// the image (the coded picture's padding) repeat its last row.
pub(crate) struct Picture {
    width: usize,
    height: usize,
    /// `width × height`, row-major.
    rgb: Vec<Rgb>,
}

impl Picture {
    pub(crate) fn new(image: &RgbaImage, width: u32, height: u32) -> Self {
        let fitted = resize_nearest(image, width, height);
        let rgb = fitted
            .pixels()
            .map(|p| {
                let alpha = f64::from(p[3]) / 255.0;
                [0, 1, 2].map(|c| f64::from(p[c]) / 255.0 * alpha)
            })
            .collect();
        Picture {
            width: width as usize,
            height: height as usize,
            rgb,
        }
    }
}

impl Source for Picture {
    fn column(&self, wx: i64, out: &mut [Rgb], _spans: &mut Vec<(f64, f64, Rgb)>) {
        let w = self.width as i64;
        let m = wx.rem_euclid(2 * w);
        let x = if m < w { m } else { 2 * w - 1 - m } as usize;
        for (y, px) in out.iter_mut().enumerate() {
            *px = self.rgb[y.min(self.height - 1) * self.width + x];
        }
    }
}

/// Studio-range BT.709 luma of an RGB colour.
pub(crate) fn luma(c: Rgb) -> u8 {
    let y = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    quantise(16.0 + 219.0 * y, 16.0, 235.0)
}

/// Studio-range BT.709 Cb and Cr of an RGB colour.
pub(crate) fn chroma(c: Rgb) -> (u8, u8) {
    let y = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    let cb = (c[2] - y) / 1.8556;
    let cr = (c[0] - y) / 1.5748;
    (
        quantise(128.0 + 224.0 * cb, 16.0, 240.0),
        quantise(128.0 + 224.0 * cr, 16.0, 240.0),
    )
}

fn quantise(v: f64, lo: f64, hi: f64) -> u8 {
    (v.clamp(lo, hi) + 0.5).floor() as u8
}

/// A periodic wave with period 1 and range −1..=1, made of two parabolas (a sine stand-in).
fn wave(x: f64) -> f64 {
    let t = frac(x);
    if t < 0.5 {
        16.0 * t * (0.5 - t)
    } else {
        -16.0 * (t - 0.5) * (1.0 - t)
    }
}

fn frac(x: f64) -> f64 {
    x - x.floor()
}

fn clamp01(x: f64) -> f64 {
    x.clamp(0.0, 1.0)
}

fn mix(a: Rgb, b: Rgb, t: f64) -> Rgb {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn scale(c: Rgb, k: f64) -> Rgb {
    [c[0] * k, c[1] * k, c[2] * k]
}

/// HSV to RGB; `hue` in turns (any real number), `s` and `v` in 0..=1.
fn hsv(hue: f64, s: f64, v: f64) -> Rgb {
    let h6 = frac(hue) * 6.0;
    let sector = h6.floor();
    let f = h6 - sector;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match sector as u32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_translation_invariant_and_in_studio_range() {
        let scene = Scene::new(42, 64, 48);
        let whole = scene.render(-20, 64, 48);
        let part = scene.render(-20 + 32, 16, 48);
        for y in 0..48 {
            assert_eq!(
                whole.luma[y * 64 + 32..y * 64 + 48],
                part.luma[y * 16..y * 16 + 16]
            );
        }
        for y in 0..24 {
            assert_eq!(
                whole.cb[y * 32 + 16..y * 32 + 24],
                part.cb[y * 8..y * 8 + 8]
            );
            assert_eq!(
                whole.cr[y * 32 + 16..y * 32 + 24],
                part.cr[y * 8..y * 8 + 8]
            );
        }
        assert!(whole.luma.iter().all(|&v| (16..=235).contains(&v)));
        assert!(whole
            .cb
            .iter()
            .chain(&whole.cr)
            .all(|&v| (16..=240).contains(&v)));
    }

    #[test]
    fn macroblock_layout() {
        let scene = Scene::new(1, 32, 32);
        let p = scene.render(0, 32, 32);
        let mut mb = [0u8; 384];
        p.macroblock(1, 1, &mut mb);
        assert_eq!(mb[0], p.luma[16 * 32 + 16]);
        assert_eq!(mb[255], p.luma[31 * 32 + 31]);
        assert_eq!(mb[256], p.cb[8 * 16 + 8]);
        assert_eq!(mb[383], p.cr[15 * 16 + 15]);
    }

    #[test]
    fn seeds_change_the_picture() {
        let a = Scene::new(1, 64, 48).render(0, 64, 48);
        let b = Scene::new(2, 64, 48).render(0, 64, 48);
        let differing = a.luma.iter().zip(&b.luma).filter(|(x, y)| x != y).count();
        assert!(differing > a.luma.len() / 4, "{differing}");
    }
}
