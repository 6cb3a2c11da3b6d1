//! Anti-aliased resampling and letterboxing.
//!
//! Resampling is separable: one pass over rows, one over columns, each output sample a
//! normalised weighted sum of input samples. When shrinking, the kernel is stretched by the
//! scale factor so that it integrates over the whole footprint of the output pixel (no
//! aliasing), as in Pillow and OpenCV's INTER_AREA.

use serde::{Deserialize, Serialize};

use crate::GrayImage;

/// Resampling kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Filter {
    /// Exact area averaging when shrinking (each output pixel is the mean of the input area
    /// it covers); bilinear when enlarging.
    #[default]
    Area,
    /// Lanczos, a = 3, stretched when shrinking.
    Lanczos3,
}

impl std::str::FromStr for Filter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "area" => Ok(Self::Area),
            "lanczos" | "lanczos3" => Ok(Self::Lanczos3),
            o => Err(format!("unknown filter {o:?} (area, lanczos3)")),
        }
    }
}

/// For each output index: first input index and the weights from there.
struct Taps {
    start: Vec<usize>,
    len: Vec<usize>,
    weights: Vec<f32>, // flattened, `max_len` per output
    max_len: usize,
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-9 {
        1.0
    } else {
        let p = std::f64::consts::PI * x;
        p.sin() / p
    }
}

fn taps(src: usize, dst: usize, filter: Filter) -> Taps {
    let scale = src as f64 / dst as f64; // > 1 when shrinking
    let mut all: Vec<(usize, Vec<f64>)> = Vec::with_capacity(dst);
    for o in 0..dst {
        let center = (o as f64 + 0.5) * scale; // in input coordinates (pixel edges at integers)
        let (first, ws): (usize, Vec<f64>) = match filter {
            Filter::Area if scale >= 1.0 => {
                // overlap of [o*scale, (o+1)*scale) with each input pixel [i, i+1)
                let (a, b) = (o as f64 * scale, (o as f64 + 1.0) * scale);
                let i0 = a.floor() as usize;
                let i1 = (b.ceil() as usize).min(src);
                let ws = (i0..i1)
                    .map(|i| (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0))
                    .collect();
                (i0, ws)
            }
            Filter::Area => {
                // bilinear (triangle) for enlarging
                kernel_taps(center, 1.0, src, |x| (1.0 - x.abs()).max(0.0))
            }
            Filter::Lanczos3 => {
                let s = scale.max(1.0);
                kernel_taps(center, 3.0 * s, src, |x| {
                    let t = x / s;
                    if t.abs() < 3.0 {
                        sinc(t) * sinc(t / 3.0)
                    } else {
                        0.0
                    }
                })
            }
        };
        all.push((first, ws));
    }
    let max_len = all.iter().map(|(_, w)| w.len()).max().unwrap_or(1).max(1);
    let mut t = Taps {
        start: Vec::with_capacity(dst),
        len: Vec::with_capacity(dst),
        weights: vec![0.0; dst * max_len],
        max_len,
    };
    for (o, (first, ws)) in all.into_iter().enumerate() {
        let sum: f64 = ws.iter().sum();
        let norm = if sum.abs() > 1e-12 { 1.0 / sum } else { 0.0 };
        for (k, w) in ws.iter().enumerate() {
            t.weights[o * max_len + k] = (w * norm) as f32;
        }
        t.start.push(first);
        t.len.push(ws.len());
    }
    t
}

/// Taps of a symmetric kernel of the given support around `center` (input coordinates),
/// with edge samples clamped by dropping taps outside the image.
fn kernel_taps(center: f64, support: f64, src: usize, k: impl Fn(f64) -> f64) -> (usize, Vec<f64>) {
    let lo = ((center - support - 0.5).floor().max(0.0)) as usize;
    let hi = (((center + support - 0.5).ceil() as usize) + 1).min(src);
    let ws = (lo..hi).map(|i| k(i as f64 + 0.5 - center)).collect();
    (lo, ws)
}

/// Resamples to exactly `width x height` (aspect not kept; see [`fit_and_pad`]).
pub fn resize(img: &GrayImage, width: u32, height: u32, filter: Filter) -> GrayImage {
    assert!(width > 0 && height > 0, "resize to an empty image");
    if (width, height) == (img.width, img.height) {
        return img.clone();
    }
    let (sw, sh) = (img.width as usize, img.height as usize);
    let (dw, dh) = (width as usize, height as usize);
    // Horizontal pass: sh rows of dw.
    let tx = taps(sw, dw, filter);
    let mut mid = vec![0f32; sh * dw];
    for y in 0..sh {
        let row = &img.data[y * sw..(y + 1) * sw];
        let out = &mut mid[y * dw..(y + 1) * dw];
        for (o, v) in out.iter_mut().enumerate() {
            let s = tx.start[o];
            let ws = &tx.weights[o * tx.max_len..o * tx.max_len + tx.len[o]];
            *v = ws
                .iter()
                .zip(&row[s..s + ws.len()])
                .map(|(w, p)| w * p)
                .sum();
        }
    }
    // Vertical pass: accumulate whole rows for cache-friendly access.
    let ty = taps(sh, dh, filter);
    let mut data = vec![0f32; dw * dh];
    for o in 0..dh {
        let out = &mut data[o * dw..(o + 1) * dw];
        let s = ty.start[o];
        for k in 0..ty.len[o] {
            let w = ty.weights[o * ty.max_len + k];
            let src = &mid[(s + k) * dw..(s + k + 1) * dw];
            for (d, &p) in out.iter_mut().zip(src) {
                *d += w * p;
            }
        }
    }
    GrayImage::new(width, height, data)
}

/// Where a resized image sits inside a letterboxed output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// Output pixels per input pixel, horizontally and vertically.
    pub scale_x: f64,
    pub scale_y: f64,
    /// Top-left of the resized image in the output.
    pub offset_x: u32,
    pub offset_y: u32,
    /// Size of the resized image (without padding).
    pub inner_width: u32,
    pub inner_height: u32,
}

impl Placement {
    /// Maps an input point to output coordinates.
    pub fn map(&self, x: f64, y: f64) -> (f64, f64) {
        (
            x * self.scale_x + self.offset_x as f64,
            y * self.scale_y + self.offset_y as f64,
        )
    }
}

/// Resizes to fit inside `width x height` keeping the aspect ratio, then pads with `pad`.
/// `keep_aspect = false` stretches to fill instead. The image is centred vertically and
/// placed against the left edge when `align_left` (the chest wall after a flip to left),
/// centred otherwise.
pub fn fit_and_pad(
    img: &GrayImage,
    width: u32,
    height: u32,
    filter: Filter,
    keep_aspect: bool,
    align_left: bool,
    pad: f32,
) -> (GrayImage, Placement) {
    if !keep_aspect {
        let out = resize(img, width, height, filter);
        let p = Placement {
            scale_x: width as f64 / img.width as f64,
            scale_y: height as f64 / img.height as f64,
            offset_x: 0,
            offset_y: 0,
            inner_width: width,
            inner_height: height,
        };
        return (out, p);
    }
    let s = (width as f64 / img.width as f64).min(height as f64 / img.height as f64);
    let iw = ((img.width as f64 * s).round() as u32).clamp(1, width);
    let ih = ((img.height as f64 * s).round() as u32).clamp(1, height);
    let inner = resize(img, iw, ih, filter);
    let ox = if align_left { 0 } else { (width - iw) / 2 };
    let oy = (height - ih) / 2;
    let mut data = vec![pad; width as usize * height as usize];
    for y in 0..ih as usize {
        let dst = (y + oy as usize) * width as usize + ox as usize;
        data[dst..dst + iw as usize]
            .copy_from_slice(&inner.data[y * iw as usize..(y + 1) * iw as usize]);
    }
    let p = Placement {
        scale_x: iw as f64 / img.width as f64,
        scale_y: ih as f64 / img.height as f64,
        offset_x: ox,
        offset_y: oy,
        inner_width: iw,
        inner_height: ih,
    };
    (GrayImage::new(width, height, data), p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_is_exact_block_mean_for_integer_factors() {
        let data: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let img = GrayImage::new(4, 4, data);
        let out = resize(&img, 2, 2, Filter::Area);
        // blocks: [0,1,4,5] -> 2.5, [2,3,6,7] -> 4.5, [8,9,12,13] -> 10.5, [10,11,14,15] -> 12.5
        assert_eq!(out.data, vec![2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn area_preserves_mean_for_fractional_factors() {
        let (w, h) = (97, 61);
        let data: Vec<f32> = (0..w * h)
            .map(|i| ((i * 7919) % 101) as f32 / 100.0)
            .collect();
        let img = GrayImage::new(w, h, data.clone());
        let out = resize(&img, 30, 20, Filter::Area);
        let m_in: f64 = data.iter().map(|&v| v as f64).sum::<f64>() / data.len() as f64;
        let m_out: f64 = out.data.iter().map(|&v| v as f64).sum::<f64>() / out.data.len() as f64;
        assert!((m_in - m_out).abs() < 1e-3, "{m_in} {m_out}");
    }

    #[test]
    fn shrinking_a_checkerboard_gives_grey_not_aliasing() {
        let (w, h) = (200, 200);
        let data: Vec<f32> = (0..w * h).map(|i| ((i % w + i / w) % 2) as f32).collect();
        let img = GrayImage::new(w, h, data);
        for filter in [Filter::Area, Filter::Lanczos3] {
            let out = resize(&img, 37, 37, filter);
            let (lo, hi) = out
                .data
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            assert!(lo > 0.4 && hi < 0.6, "{filter:?}: {lo}..{hi}");
        }
    }

    #[test]
    fn constant_stays_constant_and_lanczos_keeps_ramps() {
        let img = GrayImage::filled(50, 30, 0.7);
        for f in [Filter::Area, Filter::Lanczos3] {
            for (w, h) in [(20, 11), (80, 45)] {
                assert!(
                    resize(&img, w, h, f)
                        .data
                        .iter()
                        .all(|&v| (v - 0.7).abs() < 1e-5)
                );
            }
        }
        let ramp = GrayImage::new(64, 1, (0..64).map(|x| x as f32).collect());
        let up = resize(&ramp, 128, 1, Filter::Lanczos3);
        // interior samples lie on the ramp: out x -> input (x + 0.5) / 2 - 0.5
        for x in 10..118 {
            let want = (x as f32 + 0.5) / 2.0 - 0.5;
            assert!(
                (up.data[x] - want).abs() < 0.02,
                "{x}: {} vs {want}",
                up.data[x]
            );
        }
    }

    #[test]
    fn fit_and_pad_keeps_aspect() {
        let img = GrayImage::filled(100, 200, 1.0);
        let (out, p) = fit_and_pad(&img, 64, 64, Filter::Area, true, true, 0.0);
        assert_eq!((out.width, out.height), (64, 64));
        assert_eq!(
            (p.inner_width, p.inner_height, p.offset_x, p.offset_y),
            (32, 64, 0, 0)
        );
        assert!((out.get(31, 10) - 1.0).abs() < 1e-6);
        assert_eq!(out.get(32, 10), 0.0);
        let (_, c) = fit_and_pad(&img, 64, 64, Filter::Area, true, false, 0.0);
        assert_eq!(c.offset_x, 16);
        assert_eq!(c.map(100.0, 200.0), (48.0, 64.0));
    }
}
