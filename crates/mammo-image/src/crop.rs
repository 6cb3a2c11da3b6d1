//! Finding the breast: Otsu threshold on a downsampled copy, largest 8-connected component,
//! bounding box plus a margin. Everything outside the (dilated) component, such as burned-in
//! laterality markers, labels and collimator edges, is blanked.

use serde::{Deserialize, Serialize};

use crate::resize::{Filter, resize};
use crate::{GrayImage, Rect};

/// Settings of the breast detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CropParams {
    /// Longest side of the copy the threshold and components are computed on.
    pub work_size: u32,
    /// Margin added around the component, as a fraction of the image's longer side.
    pub margin: f64,
    /// A component smaller than this fraction of the image is "no breast found".
    pub min_area: f64,
    /// Blank pixels outside the dilated component (markers inside the bounding box).
    pub mask_outside: bool,
}

impl Default for CropParams {
    fn default() -> Self {
        Self {
            work_size: 256,
            margin: 0.01,
            min_area: 0.02,
            mask_outside: true,
        }
    }
}

/// What [`detect_breast`] found.
#[derive(Debug, Clone)]
pub struct BreastRegion {
    /// Bounding box of the breast plus margin, in the input image's pixels.
    pub bbox: Rect,
    /// Otsu threshold, in input units.
    pub threshold: f32,
    /// Fraction of the image the component covers.
    pub area_fraction: f64,
    /// Dilated component mask on the working grid.
    mask: Vec<bool>,
    mask_w: u32,
    mask_h: u32,
    params: CropParams,
}

/// Finds the breast; `None` when nothing large enough stands out from the background.
pub fn detect_breast(img: &GrayImage, params: &CropParams) -> Option<BreastRegion> {
    let long = img.width.max(img.height);
    let scale = (params.work_size as f64 / long as f64).min(1.0);
    let (ww, wh) = (
        ((img.width as f64 * scale).round() as u32).max(1),
        ((img.height as f64 * scale).round() as u32).max(1),
    );
    let small = if (ww, wh) == (img.width, img.height) {
        img.clone()
    } else {
        resize(img, ww, wh, Filter::Area)
    };
    let threshold = otsu(&small.data);
    let fg: Vec<bool> = small.data.iter().map(|&v| v > threshold).collect();
    let (component, area) = largest_component(&fg, ww as usize, wh as usize)?;
    let area_fraction = area as f64 / fg.len() as f64;
    if area_fraction < params.min_area {
        return None;
    }
    // Otsu splits tissue from background, but the thin periphery of a compressed breast
    // falls off toward the background level and lands below it. Grow the component into
    // every connected pixel clearly above the background's noise.
    let low = background_edge(&small.data, threshold);
    let grown = grow_within(&component, &small.data, low, ww as usize, wh as usize);
    // Fill holes so dark fat inside the breast is not blanked.
    let filled = fill_holes(&grown, ww as usize, wh as usize);
    let margin_px = (params.margin * ww.max(wh) as f64).ceil() as usize;
    let mask = dilate(&filled, ww as usize, wh as usize, margin_px.max(1));
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..wh as usize {
        for x in 0..ww as usize {
            if mask[y * ww as usize + x] {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
    }
    let coarse = Rect {
        x0: x0 as u32,
        y0: y0 as u32,
        x1: x1 as u32,
        y1: y1 as u32,
    };
    let bbox = coarse.scaled(
        img.width as f64 / ww as f64,
        img.height as f64 / wh as f64,
        img.width,
        img.height,
    );
    Some(BreastRegion {
        bbox,
        threshold,
        area_fraction,
        mask,
        mask_w: ww,
        mask_h: wh,
        params: *params,
    })
}

impl BreastRegion {
    /// Crops `img` (the image the region was detected on) to the box and blanks what lies
    /// outside the breast when the parameters say so.
    pub fn apply(&self, img: &GrayImage) -> GrayImage {
        let mut out = img.crop(self.bbox);
        if self.params.mask_outside {
            let fx = self.mask_w as f64 / img.width as f64;
            let fy = self.mask_h as f64 / img.height as f64;
            let w = out.width as usize;
            for (i, v) in out.data.iter_mut().enumerate() {
                let x = (i % w) as u32 + self.bbox.x0;
                let y = (i / w) as u32 + self.bbox.y0;
                let mx = ((x as f64 + 0.5) * fx) as usize;
                let my = ((y as f64 + 0.5) * fy) as usize;
                let m = self.mask[my.min(self.mask_h as usize - 1) * self.mask_w as usize
                    + mx.min(self.mask_w as usize - 1)];
                if !m {
                    *v = 0.0;
                }
            }
        }
        out
    }
}

/// Otsu's threshold (1979) over a 256-bin histogram of the value range.
pub(crate) fn otsu(values: &[f32]) -> f32 {
    let (lo, hi) = values
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return lo;
    }
    let bins = 256usize;
    let mut hist = vec![0u64; bins];
    let k = (bins - 1) as f32 / (hi - lo);
    for &v in values {
        hist[((v - lo) * k) as usize] += 1;
    }
    let total = values.len() as f64;
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0f64, 0f64, -1f64, 0usize);
    for (t, &c) in hist.iter().enumerate() {
        w0 += c as f64;
        if w0 == 0.0 {
            continue;
        }
        let w1 = total - w0;
        if w1 == 0.0 {
            break;
        }
        sum0 += t as f64 * c as f64;
        let m0 = sum0 / w0;
        let m1 = (sum_all - sum0) / w1;
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    // Values in bins <= best_t are background.
    lo + (best_t as f32 + 1.0) / k
}

/// A level just above the background: the median of the values below the Otsu threshold
/// plus six robust standard deviations (1.4826 MAD), at least 2 % of the way to the
/// threshold. Robust statistics, because that class also holds the breast's dim periphery.
fn background_edge(values: &[f32], otsu: f32) -> f32 {
    let mut bg: Vec<f32> = values.iter().copied().filter(|&v| v <= otsu).collect();
    if bg.is_empty() {
        return otsu;
    }
    let mid = bg.len() / 2;
    let median = *bg.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1;
    let mut dev: Vec<f32> = bg.iter().map(|&v| (v - median).abs()).collect();
    let mad = *dev.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1;
    let edge = (median + 6.0 * 1.4826 * mad).max(median + 0.02 * (otsu - median));
    edge.min(otsu)
}

/// 8-connected flood fill from `stack`: `admit(q)` decides whether a neighbour joins (and
/// records that it did); returns how many pixels were popped.
fn flood(
    stack: &mut Vec<usize>,
    w: usize,
    h: usize,
    mut admit: impl FnMut(usize) -> bool,
) -> usize {
    let mut popped = 0;
    while let Some(p) = stack.pop() {
        popped += 1;
        let (x, y) = (p % w, p / w);
        for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
            for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                let q = ny * w + nx;
                if q != p && admit(q) {
                    stack.push(q);
                }
            }
        }
    }
    popped
}

/// Pixels above `low` that are 8-connected to `seed`, plus the seed itself.
fn grow_within(seed: &[bool], values: &[f32], low: f32, w: usize, h: usize) -> Vec<bool> {
    let mut out = seed.to_vec();
    let mut stack: Vec<usize> = (0..seed.len()).filter(|&i| seed[i]).collect();
    flood(&mut stack, w, h, |q| {
        let join = !out[q] && values[q] > low;
        out[q] |= join;
        join
    });
    out
}

/// The largest 8-connected component of `fg` and its size.
fn largest_component(fg: &[bool], w: usize, h: usize) -> Option<(Vec<bool>, usize)> {
    let mut label = vec![0u32; fg.len()];
    let mut next = 0u32;
    let (mut best_label, mut best_size) = (0u32, 0usize);
    let mut stack = Vec::new();
    for start in 0..fg.len() {
        if !fg[start] || label[start] != 0 {
            continue;
        }
        next += 1;
        label[start] = next;
        stack.push(start);
        let size = flood(&mut stack, w, h, |q| {
            let join = fg[q] && label[q] == 0;
            if join {
                label[q] = next;
            }
            join
        });
        if size > best_size {
            best_size = size;
            best_label = next;
        }
    }
    (best_size > 0).then(|| (label.iter().map(|&l| l == best_label).collect(), best_size))
}

/// Marks as foreground every background pixel not 4-connected to the border.
fn fill_holes(mask: &[bool], w: usize, h: usize) -> Vec<bool> {
    let mut outside = vec![false; mask.len()];
    let mut stack: Vec<usize> = Vec::new();
    for x in 0..w {
        stack.push(x);
        stack.push((h - 1) * w + x);
    }
    for y in 0..h {
        stack.push(y * w);
        stack.push(y * w + w - 1);
    }
    while let Some(p) = stack.pop() {
        if mask[p] || outside[p] {
            continue;
        }
        outside[p] = true;
        let (x, y) = (p % w, p / w);
        if x > 0 {
            stack.push(p - 1);
        }
        if x + 1 < w {
            stack.push(p + 1);
        }
        if y > 0 {
            stack.push(p - w);
        }
        if y + 1 < h {
            stack.push(p + w);
        }
    }
    outside.iter().map(|&o| !o).collect()
}

/// Square dilation by `r` pixels (separable running max).
fn dilate(mask: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    let mut tmp = vec![false; mask.len()];
    for y in 0..h {
        let row = &mask[y * w..(y + 1) * w];
        // prefix counts make each window query O(1)
        let mut prefix = vec![0u32; w + 1];
        for x in 0..w {
            prefix[x + 1] = prefix[x] + row[x] as u32;
        }
        for x in 0..w {
            let (a, b) = (x.saturating_sub(r), (x + r + 1).min(w));
            tmp[y * w + x] = prefix[b] > prefix[a];
        }
    }
    let mut out = vec![false; mask.len()];
    for x in 0..w {
        let mut prefix = vec![0u32; h + 1];
        for y in 0..h {
            prefix[y + 1] = prefix[y] + tmp[y * w + x] as u32;
        }
        for y in 0..h {
            let (a, b) = (y.saturating_sub(r), (y + r + 1).min(h));
            out[y * w + x] = prefix[b] > prefix[a];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bright half-disc against the left edge, a small bright "marker" in the top-right
    /// corner, dark background.
    fn phantom(w: u32, h: u32) -> GrayImage {
        let mut data = vec![0.02f32; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (
                    x as f32 / (0.6 * w as f32),
                    (y as f32 - h as f32 / 2.0) / (0.4 * h as f32),
                );
                if dx * dx + dy * dy < 1.0 {
                    data[(y * w + x) as usize] = 0.55 + 0.1 * ((x + y) % 7) as f32 / 7.0;
                }
                if x > w - 30 && x < w - 10 && y > 10 && y < 25 {
                    data[(y * w + x) as usize] = 1.0;
                }
            }
        }
        GrayImage::new(w, h, data)
    }

    #[test]
    fn otsu_splits_two_modes() {
        let mut v = vec![0.1f32; 500];
        v.extend(vec![0.8f32; 300]);
        let t = otsu(&v);
        assert!(t > 0.1 && t < 0.8, "{t}");
    }

    #[test]
    fn finds_the_breast_and_drops_the_marker() {
        let img = phantom(400, 500);
        let region = detect_breast(&img, &CropParams::default()).expect("breast");
        let b = region.bbox;
        // Half-disc spans x in [0, 240), y in [50, 450); margin is 1% of 500 = 5 px.
        assert_eq!(b.x0, 0);
        assert!((238..=250).contains(&b.x1), "{b:?}");
        assert!(
            (40..=52).contains(&b.y0) && (448..=462).contains(&b.y1),
            "{b:?}"
        );
        let out = region.apply(&img);
        assert_eq!((out.width, out.height), (b.width(), b.height()));
        assert!(out.data.iter().all(|&v| v < 0.99), "marker survived");
    }

    #[test]
    fn marker_inside_the_box_is_blanked() {
        let mut img = phantom(400, 500);
        // A marker below the breast but inside its column span, far from the disc.
        for y in 470..490 {
            for x in 20..60 {
                img.data[y * 400 + x] = 1.0;
            }
        }
        let region = detect_breast(&img, &CropParams::default()).unwrap();
        assert!(
            region.bbox.y1 < 470,
            "box grew to the marker: {:?}",
            region.bbox
        );
        let with_marker_row = CropParams {
            mask_outside: true,
            ..Default::default()
        };
        let r2 = detect_breast(&img, &with_marker_row).unwrap();
        let out = r2.apply(&img);
        assert!(out.data.iter().all(|&v| v < 0.99));
    }

    #[test]
    fn dim_periphery_is_kept() {
        // Tissue at 0.6 inside radius 0.7, falling off linearly to 0.08 at the skin line
        // (radius 1), over a 0.02 +- 0.005 background: Otsu alone would cut the fall-off.
        let (w, h) = (300u32, 400u32);
        let mut data = vec![0f32; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (
                    x as f32 / (0.8 * w as f32),
                    (y as f32 - h as f32 / 2.0) / (0.45 * h as f32),
                );
                let r = (dx * dx + dy * dy).sqrt();
                let noise = 0.005 * (((x * 7 + y * 13) % 5) as f32 - 2.0) / 2.0;
                data[(y * w + x) as usize] = noise
                    + if r < 0.7 {
                        0.6
                    } else if r < 1.0 {
                        0.08 + 0.52 * (1.0 - r) / 0.3
                    } else {
                        0.02
                    };
            }
        }
        let img = GrayImage::new(w, h, data);
        let region = detect_breast(&img, &CropParams::default()).unwrap();
        // the skin line is at x = 240 on the middle row
        assert!(region.bbox.x1 >= 240, "{:?}", region.bbox);
        let out = region.apply(&img);
        let mid = (h / 2 - region.bbox.y0) as usize;
        let row = &out.data[mid * out.width as usize..(mid + 1) * out.width as usize];
        for (x, &v) in row.iter().enumerate().take(238) {
            assert!(v >= 0.07, "breast pixel at x = {x} blanked ({v})");
        }
    }

    #[test]
    fn blank_image_has_no_breast() {
        assert!(detect_breast(&GrayImage::filled(100, 100, 0.3), &CropParams::default()).is_none());
    }
}
