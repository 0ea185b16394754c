//! What a run reads from the graph: sampler steps, the sizes of images, latents and
//! saved outputs, and the seed.

use serde_json::{Map, Value};

use super::python::{py_float, py_int};
use super::{as_link, class_of, sorted_ids};

/// Reads the graph for what a run needs; `load_image` gives an input image's size.
pub(crate) struct Reader<'a> {
    pub(crate) prompt: &'a Map<String, Value>,
    pub(crate) load_image: &'a dyn Fn(&str) -> Option<(u32, u32)>,
}

/// Width, height, and images in the batch (or frames of a video).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub(crate) w: u32,
    pub(crate) h: u32,
    pub(crate) n: u32,
}

/// LTX latents hold `(length - 1) / 8 + 1` frames, decoded to `8n + 1`.
fn ltx_frames(length: i64) -> u32 {
    let l = length.max(1);
    (((l - 1) / 8) * 8 + 1) as u32
}

const DEPTH: u32 = 64;

impl Reader<'_> {
    fn input(&self, id: &str, name: &str) -> Option<&Value> {
        self.prompt.get(id)?.get("inputs")?.get(name)
    }

    fn class(&self, id: &str) -> &str {
        class_of(self.prompt, id)
    }

    /// An INT input: a literal, or what a `PrimitiveInt` or `GetImageSize` gives.
    pub(crate) fn int(&self, id: &str, name: &str) -> Option<i64> {
        self.int_value(self.input(id, name)?, DEPTH)
    }

    fn int_value(&self, v: &Value, depth: u32) -> Option<i64> {
        if let Some((src, slot)) = as_link(v) {
            let depth = depth.checked_sub(1)?;
            return match self.class(src) {
                "PrimitiveInt" => self.int_value(self.input(src, "value")?, depth),
                "GetImageSize" => {
                    let d = self.image(self.input(src, "image")?, depth)?;
                    Some(i64::from([d.w, d.h, d.n][slot.min(2)]))
                }
                _ => None,
            };
        }
        py_int(v).ok().and_then(|n| i64::try_from(n).ok())
    }

    pub(crate) fn float(&self, id: &str, name: &str) -> Option<f64> {
        let v = self.input(id, name)?;
        if as_link(v).is_some() {
            return self.int_value(v, DEPTH).map(|n| n as f64);
        }
        py_float(v).ok()
    }

    /// The size of the images an IMAGE link carries.
    pub(crate) fn image(&self, link: &Value, depth: u32) -> Option<Dims> {
        let (src, slot) = as_link(link)?;
        let depth = depth.checked_sub(1)?;
        let dim = |n: &str| self.int(src, n).and_then(|x| u32::try_from(x).ok());
        match self.class(src) {
            "EmptyImage" => Some(Dims {
                w: dim("width")?,
                h: dim("height")?,
                n: dim("batch_size").unwrap_or(1),
            }),
            "LoadImage" => {
                let name = self.input(src, "image")?.as_str()?;
                let (w, h) = (self.load_image)(name)?;
                Some(Dims { w, h, n: 1 })
            }
            "ImageScale" => {
                let d = self.image(self.input(src, "image")?, depth)?;
                let (w, h) = (dim("width").unwrap_or(0), dim("height").unwrap_or(0));
                let (w, h) = match (w, h) {
                    (0, 0) => (d.w, d.h),
                    (0, h) => (scale(d.w, f64::from(h) / f64::from(d.h.max(1))), h),
                    (w, 0) => (w, scale(d.h, f64::from(w) / f64::from(d.w.max(1)))),
                    wh => wh,
                };
                Some(Dims { w, h, n: d.n })
            }
            "ImageScaleBy" => {
                let d = self.image(self.input(src, "image")?, depth)?;
                let by = self.float(src, "scale_by").unwrap_or(1.0);
                Some(Dims {
                    w: scale(d.w, by),
                    h: scale(d.h, by),
                    n: d.n,
                })
            }
            "ImageScaleToTotalPixels" => {
                let d = self.image(self.input(src, "image")?, depth)?;
                let mp = self.float(src, "megapixels").unwrap_or(1.0);
                let steps = f64::from(dim("resolution_steps").unwrap_or(1).max(1));
                let by = (mp * 1024.0 * 1024.0 / (f64::from(d.w) * f64::from(d.h)).max(1.0)).sqrt();
                let side = |x: u32| ((f64::from(x) * by / steps).round() * steps).max(steps) as u32;
                Some(Dims {
                    w: side(d.w),
                    h: side(d.h),
                    n: d.n,
                })
            }
            "ImageInvert" | "LTXVPreprocess" => self.image(self.input(src, "image")?, depth),
            "VAEDecode" | "VAEDecodeTiled" if slot == 0 => {
                self.latent(self.input(src, "samples")?, depth)
            }
            _ => None,
        }
    }

    /// The pixel size and batch (or frames) a LATENT link decodes to.
    fn latent(&self, link: &Value, depth: u32) -> Option<Dims> {
        let (src, slot) = as_link(link)?;
        let depth = depth.checked_sub(1)?;
        let dim = |n: &str| self.int(src, n).and_then(|x| u32::try_from(x).ok());
        let follow = |input: &str| self.latent(self.input(src, input)?, depth);
        match self.class(src) {
            "EmptyFlux2LatentImage" | "EmptyLatentImage" => Some(Dims {
                w: dim("width")?,
                h: dim("height")?,
                n: dim("batch_size").unwrap_or(1),
            }),
            "EmptyLTXVLatentVideo" | "LTXVImgToVideo" => Some(Dims {
                w: dim("width")?,
                h: dim("height")?,
                n: ltx_frames(self.int(src, "length").unwrap_or(97)),
            }),
            "SamplerCustomAdvanced" | "SamplerCustom" | "KSampler" | "KSamplerAdvanced" => {
                follow("latent_image")
            }
            "VAEEncode" => self.image(self.input(src, "pixels")?, depth),
            "LTXVConcatAVLatent" => follow("video_latent"),
            "LTXVSeparateAVLatent" if slot == 0 => follow("av_latent"),
            "LTXVImgToVideoInplace" | "LTXVAddGuide" => follow("latent"),
            "LTXVCropGuides" if slot == 2 => follow("latent"),
            "LTXVLatentUpsampler" => follow("samples").map(|d| Dims {
                w: d.w.saturating_mul(2),
                h: d.h.saturating_mul(2),
                n: d.n,
            }),
            _ => None,
        }
    }

    /// How many steps a sampler node runs.
    pub(crate) fn sampler_steps(&self, id: &str) -> u32 {
        let steps = match self.class(id) {
            "KSampler" | "KSamplerAdvanced" => self.int(id, "steps"),
            _ => self
                .input(id, "sigmas")
                .and_then(|l| self.sigma_steps(l, DEPTH)),
        };
        steps.unwrap_or(1).clamp(1, 10_000) as u32
    }

    fn sigma_steps(&self, link: &Value, depth: u32) -> Option<i64> {
        let (src, slot) = as_link(link)?;
        let depth = depth.checked_sub(1)?;
        match self.class(src) {
            "ManualSigmas" => {
                let s = self.input(src, "sigmas")?.as_str()?;
                let n = s
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|t| t.parse::<f64>().is_ok())
                    .count() as i64;
                Some((n - 1).max(0))
            }
            "SplitSigmasDenoise" => {
                let n = self.sigma_steps(self.input(src, "sigmas")?, depth)?;
                let denoise = self.float(src, "denoise").unwrap_or(1.0);
                let low = (n as f64 * denoise).round() as i64;
                Some(if slot == 1 { low } else { n - low })
            }
            _ => self.int(src, "steps"),
        }
    }

    /// The size of what a `SaveImage` / `PreviewImage` / `SaveImageWebsocket` node saves.
    pub(crate) fn saved_image(&self, id: &str) -> Dims {
        let d = self
            .input(id, "images")
            .and_then(|l| self.image(l, DEPTH))
            .unwrap_or(Dims { w: 64, h: 64, n: 1 });
        Dims {
            w: d.w.clamp(1, crate::comfyui::media::MAX_SIDE),
            h: d.h.clamp(1, crate::comfyui::media::MAX_SIDE),
            n: d.n.clamp(1, 16),
        }
    }

    /// What a `SaveVideo` node saves: size and frames, fps, and whether it has audio.
    pub(crate) fn saved_video(&self, id: &str) -> (Dims, f64, bool) {
        let create = self
            .input(id, "video")
            .and_then(as_link)
            .map(|(src, _)| src)
            .filter(|src| self.class(src) == "CreateVideo");
        let Some(create) = create else {
            return (Dims { w: 64, h: 64, n: 9 }, 24.0, false);
        };
        let d = self
            .input(create, "images")
            .and_then(|l| self.image(l, DEPTH))
            .unwrap_or(Dims { w: 64, h: 64, n: 9 });
        let fps = self.float(create, "fps").unwrap_or(24.0).clamp(1.0, 120.0);
        let audio = self.input(create, "audio").is_some();
        let d = Dims {
            w: d.w.clamp(2, crate::comfyui::media::MAX_SIDE),
            h: d.h.clamp(2, crate::comfyui::media::MAX_SIDE),
            n: d.n.clamp(1, crate::comfyui::media::MAX_FRAMES),
        };
        (d, fps, audio)
    }

    /// The seed of the first `RandomNoise` (or a `KSampler`'s), 0 without one.
    pub(crate) fn seed(&self) -> u64 {
        for id in sorted_ids(self.prompt) {
            let name = match self.class(&id) {
                "RandomNoise" => "noise_seed",
                "KSampler" | "SamplerCustom" => "seed",
                "KSamplerAdvanced" => "noise_seed",
                _ => continue,
            };
            if let Some(v) = self.input(&id, name) {
                if let Some(n) = v.as_u64() {
                    return n;
                }
                if let Some(n) = self.int_value(v, DEPTH) {
                    return n as u64;
                }
            }
        }
        0
    }
}

fn scale(x: u32, by: f64) -> u32 {
    (f64::from(x) * by).round().max(1.0) as u32
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn steps_and_sizes_come_from_the_graph() {
        let prompt: Map<String, Value> = serde_json::from_value(json!({
            "1": {"class_type": "ManualSigmas", "inputs": {"sigmas": "1.0, 0.5, 0.25, 0.0"}},
            "2": {"class_type": "SamplerCustomAdvanced", "inputs": {"sigmas": ["1", 0], "latent_image": ["3", 0]}},
            "3": {"class_type": "EmptyLTXVLatentVideo", "inputs": {"width": 256, "height": 160, "length": 12, "batch_size": 1}},
            "4": {"class_type": "LTXVLatentUpsampler", "inputs": {"samples": ["2", 0]}},
            "5": {"class_type": "VAEDecodeTiled", "inputs": {"samples": ["4", 0]}},
            "6": {"class_type": "Flux2Scheduler", "inputs": {"steps": 20}},
            "7": {"class_type": "SplitSigmasDenoise", "inputs": {"sigmas": ["6", 0], "denoise": 0.6}},
            "8": {"class_type": "SamplerCustomAdvanced", "inputs": {"sigmas": ["7", 1]}},
        }))
        .unwrap();
        let r = Reader {
            prompt: &prompt,
            load_image: &|_| None,
        };
        assert_eq!(r.sampler_steps("2"), 3);
        assert_eq!(r.sampler_steps("8"), 12);
        assert_eq!(
            r.image(&json!(["5", 0]), DEPTH),
            Some(Dims {
                w: 512,
                h: 320,
                n: 9
            })
        );
    }
}
