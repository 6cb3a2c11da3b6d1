//! Finding the breast on a digital or digitised-film mammogram.
//!
//! The method is the usual mammography preprocessing recipe of a background threshold,
//! a morphological opening that cuts off thin edge structures, and the largest connected
//! component (as in, e.g., J. Nagi, S. Abdul Kareem, F. Nagi, S. K. Ahmed, "Automated
//! breast profile segmentation for ROI detection using digital mammograms", IEEE EMBS
//! IECBES 2010, pp. 87-92: threshold, opening to remove labels and artefacts, largest
//! region), on a copy about 256 px long:
//!
//! 1. Background threshold: the triangle method (G. W. Zack, W. E. Rogers, S. A. Latt,
//!    *J. Histochem. Cytochem.* 25(7):741-753, 1977) from the mode of the darker class of
//!    Otsu's split (N. Otsu, *IEEE Trans. SMC* 9(1):62-66, 1979) to the brightest bin. It
//!    lands at the foot of the background peak, so the whole breast, fatty periphery and
//!    low-contrast tissue included, is foreground, whatever the window (LINEAR, SIGMOID,
//!    none) and bit depth. MONOCHROME1 is inverted by the renderer before this runs.
//! 2. Border-strip removal: an opening by a square of side `strip_width` of the longer
//!    side, with everything beyond the image counted as background. Film borders, scanner
//!    edge strips, lines and label strokes narrower than that vanish, and so do thin
//!    bridges through which they touch the breast; the breast, much wider, keeps its shape.
//! 3. The largest 8-connected component of the opened mask is the breast's core. It grows
//!    back into the foreground it was cut from (geodesic dilation, L. Vincent, *IEEE Trans.
//!    Image Process.* 2(2):176-201, 1993), but no further than half the opening's radius:
//!    an opening by a square keeps straight and gently curved outlines and shaves only
//!    sharp tips (the nipple) and thin parts, which that recovers, while a strip the breast
//!    touches is entered by at most that much. Holes are filled so dark fat inside the
//!    breast stays.
//! 4. The chest wall is on the side holding more of the breast mask, and the box is the
//!    mask's bounding box plus a margin. Pixels outside the (dilated) mask, such as
//!    laterality markers and labels inside the box, are blanked.

use serde::{Deserialize, Serialize};

use crate::resize::{Filter, resize};
use crate::{GrayImage, Rect, Side};

/// Settings of the breast detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CropParams {
    /// Longest side of the copy the threshold and components are computed on.
    pub work_size: u32,
    /// Margin added around the breast, as a fraction of the image's longer side (at least
    /// one pixel of the working copy).
    pub margin: f64,
    /// A component smaller than this fraction of the image is "no breast found".
    pub min_area: f64,
    /// Blank pixels outside the dilated component (markers inside the bounding box).
    pub mask_outside: bool,
    /// Film borders, edge strips, lines and bridges up to this fraction of the longer side
    /// wide are cut off the breast (the width of the opening).
    #[serde(default = "default_strip_width")]
    pub strip_width: f64,
}

fn default_strip_width() -> f64 {
    0.04
}

impl Default for CropParams {
    fn default() -> Self {
        Self {
            work_size: 256,
            // The threshold sits at the foot of the background peak, so the skin line is
            // already in the mask: no margin beyond one working pixel is needed.
            margin: 0.0,
            min_area: 0.02,
            mask_outside: true,
            strip_width: default_strip_width(),
        }
    }
}

/// What [`detect_breast`] found.
#[derive(Debug, Clone)]
pub struct BreastRegion {
    /// Bounding box of the breast plus margin, in the input image's pixels.
    pub bbox: Rect,
    /// Background threshold (triangle method), in input units.
    pub threshold: f32,
    /// Fraction of the image the breast covers.
    pub area_fraction: f64,
    /// The side of the image the chest wall is on (the side holding more of the breast).
    pub chest_wall: Side,
    /// Dilated breast mask on the working grid.
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
    let (w, h) = (ww as usize, wh as usize);
    let hist = Histogram::of(&small.data)?;
    let threshold = hist.upper_edge(hist.triangle_bin(hist.otsu_bin()));
    let fg: Vec<bool> = small.data.iter().map(|&v| v > threshold).collect();

    // Cut thin structures off: opening by a square of radius r.
    let r = ((params.strip_width * ww.max(wh) as f64 / 2.0).ceil() as usize).max(1);
    let opened = dilate(&erode(&fg, w, h, r), w, h, r);
    // Nothing survives the opening only when the whole foreground is thinner than a
    // strip; then the foreground as it is is all there is.
    let (core, _) = largest_component(&opened, w, h).or_else(|| largest_component(&fg, w, h))?;
    // Grow back into the foreground, at most r/2 from the core.
    let reach: Vec<bool> = dilate(&core, w, h, r.div_ceil(2))
        .iter()
        .zip(&fg)
        .map(|(&a, &b)| a && b)
        .collect();
    let grown = grow_within(&core, &reach, w, h);
    let filled = fill_holes(&grown, w, h);
    let area = filled.iter().filter(|&&m| m).count();
    let area_fraction = area as f64 / filled.len() as f64;
    if area_fraction < params.min_area {
        return None;
    }
    let chest_wall = mask_side(&filled, w, h);
    let margin_px = (params.margin * ww.max(wh) as f64).ceil() as usize;
    let mask = dilate(&filled, w, h, margin_px.max(1));
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if mask[y * w + x] {
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
        chest_wall,
        mask,
        mask_w: ww,
        mask_h: wh,
        params: *params,
    })
}

/// The half of the image (left or right) holding more of `mask`; a tie is left.
fn mask_side(mask: &[bool], w: usize, h: usize) -> Side {
    let half = w / 2;
    let (mut left, mut right) = (0usize, 0usize);
    for y in 0..h {
        let row = &mask[y * w..(y + 1) * w];
        left += row[..half].iter().filter(|&&m| m).count();
        right += row[w - half..].iter().filter(|&&m| m).count();
    }
    if right > left {
        Side::Right
    } else {
        Side::Left
    }
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

/// A 256-bin histogram over the value range.
struct Histogram {
    counts: Vec<u64>,
    lo: f32,
    /// Bins per unit value.
    k: f32,
}

impl Histogram {
    const BINS: usize = 256;

    /// `None` for a constant (or empty) image.
    fn of(values: &[f32]) -> Option<Self> {
        let (lo, hi) = values
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let k = (Self::BINS - 1) as f32 / (hi - lo);
        let mut counts = vec![0u64; Self::BINS];
        for &v in values {
            counts[((v - lo) * k) as usize] += 1;
        }
        Some(Self { counts, lo, k })
    }

    /// The value above which a pixel lies beyond `bin`.
    fn upper_edge(&self, bin: usize) -> f32 {
        self.lo + (bin as f32 + 1.0) / self.k
    }

    /// Otsu's threshold (1979): the last bin of the darker class.
    fn otsu_bin(&self) -> usize {
        let total: f64 = self.counts.iter().map(|&c| c as f64).sum();
        let sum_all: f64 = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, &c)| i as f64 * c as f64)
            .sum();
        let (mut w0, mut sum0, mut best, mut best_t) = (0f64, 0f64, -1f64, 0usize);
        for (t, &c) in self.counts.iter().enumerate() {
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
        best_t
    }

    /// The triangle threshold (Zack et al. 1977) of the background peak: the peak is the
    /// fullest bin at or below `class_end` (the darker class), the line runs from it to the
    /// last non-empty bin, and the threshold is the bin lying furthest below that line. The
    /// counts are first averaged over 5 bins, so that the empty bins between the levels of
    /// a coarsely quantised background do not pass for its foot.
    fn triangle_bin(&self, class_end: usize) -> usize {
        let raw = &self.counts;
        let n = raw.len();
        let c: Vec<f64> = (0..n)
            .map(|b| {
                let (a, z) = (b.saturating_sub(2), (b + 2).min(n - 1));
                raw[a..=z].iter().sum::<u64>() as f64 / (z - a + 1) as f64
            })
            .collect();
        let mut peak = 0;
        for b in 0..=class_end.min(n - 1) {
            if c[b] > c[peak] {
                peak = b;
            }
        }
        let end = (0..n).rev().find(|&b| raw[b] > 0).unwrap_or(peak);
        if end <= peak {
            return peak;
        }
        let slope = (c[end] - c[peak]) / (end - peak) as f64;
        let (mut best, mut best_bin) = (f64::MIN, peak);
        for (b, &count) in c.iter().enumerate().take(end + 1).skip(peak) {
            // vertical distance below the line: proportional to the perpendicular one
            let below = c[peak] + slope * (b - peak) as f64 - count;
            if below > best {
                best = below;
                best_bin = b;
            }
        }
        best_bin
    }
}

/// Otsu's threshold (1979) over a 256-bin histogram of the value range.
#[cfg(test)]
fn otsu(values: &[f32]) -> f32 {
    match Histogram::of(values) {
        Some(h) => h.upper_edge(h.otsu_bin()),
        None => values.first().copied().unwrap_or(0.0),
    }
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

/// The pixels of `allowed` 8-connected to `seed`, plus the seed itself.
fn grow_within(seed: &[bool], allowed: &[bool], w: usize, h: usize) -> Vec<bool> {
    let mut out = seed.to_vec();
    let mut stack: Vec<usize> = (0..seed.len()).filter(|&i| seed[i]).collect();
    flood(&mut stack, w, h, |q| {
        let join = !out[q] && allowed[q];
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

/// Square erosion by `r` pixels (separable running minimum), counting everything beyond
/// the image as background, so a strip along an edge erodes from that edge too.
fn erode(mask: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    let full = 2 * r + 1;
    let mut tmp = vec![false; mask.len()];
    let mut prefix = vec![0u32; w.max(h) + 1];
    for y in 0..h {
        for x in 0..w {
            prefix[x + 1] = prefix[x] + mask[y * w + x] as u32;
        }
        for x in r..w.saturating_sub(r) {
            tmp[y * w + x] = (prefix[x + r + 1] - prefix[x - r]) as usize == full;
        }
    }
    let mut out = vec![false; mask.len()];
    for x in 0..w {
        for y in 0..h {
            prefix[y + 1] = prefix[y] + tmp[y * w + x] as u32;
        }
        for y in r..h.saturating_sub(r) {
            out[y * w + x] = (prefix[y + r + 1] - prefix[y - r]) as usize == full;
        }
    }
    out
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
        // Half-disc spans x in [0, 240), y in [50, 450); the margin is one working pixel.
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
    fn triangle_finds_the_foot_of_the_background_peak() {
        // 600 background pixels at 0-0.02, a long flat tail of tissue from 0.1 to 1.
        let tissue = (0..400).map(|i| 0.1 + 0.9 * i as f32 / 399.0);
        // a quantised background: three levels with empty bins between them
        let mut v: Vec<f32> = (0..600).map(|i| 0.02 * (i % 3) as f32 / 2.0).collect();
        v.extend(tissue.clone());
        let h = Histogram::of(&v).unwrap();
        let t = h.upper_edge(h.triangle_bin(h.otsu_bin()));
        assert!(t > 0.02 && t < 0.1, "{t}");
        // a noisy one, roughly bell-shaped
        let mut v: Vec<f32> = (0..600)
            .map(|i| 0.01 + 0.01 * ((i * 37 % 11) as f32 + (i * 53 % 7) as f32 - 8.0) / 8.0)
            .collect();
        v.extend(tissue);
        let h = Histogram::of(&v).unwrap();
        let t = h.upper_edge(h.triangle_bin(h.otsu_bin()));
        assert!(t > 0.02 && t < 0.1, "{t}");
    }

    #[test]
    fn erosion_counts_the_outside_as_background() {
        // a 3-wide strip along the left edge and a 9x9 block
        let (w, h) = (20usize, 12usize);
        let mut m = vec![false; w * h];
        for y in 0..h {
            for x in 0..3 {
                m[y * w + x] = true;
            }
        }
        for y in 2..11 {
            for x in 8..17 {
                m[y * w + x] = true;
            }
        }
        let e = erode(&m, w, h, 2);
        assert!(
            (0..h).all(|y| (0..3).all(|x| !e[y * w + x])),
            "strip survived"
        );
        assert_eq!(e.iter().filter(|&&b| b).count(), 25, "block's 5x5 core");
        let opened = dilate(&e, w, h, 2);
        assert_eq!(opened.iter().filter(|&&b| b).count(), 81, "block restored");
    }

    /// The half-disc phantom on film: a bright border all round, a bright scanner strip
    /// fading inward along the chest-wall edge above and below the breast, a label block
    /// touching the breast.
    fn film(w: u32, h: u32) -> GrayImage {
        let mut img = phantom(w, h);
        let (wu, hu) = (w as usize, h as usize);
        for y in 0..hu {
            for x in 0..wu {
                let v = &mut img.data[y * wu + x];
                if x < 4 || y < 4 || x >= wu - 4 || y >= hu - 4 {
                    *v = 0.95;
                } else if x < 16 && !(50..450).contains(&(y * 500 / hu)) {
                    *v = v.max(0.5 * (1.0 - x as f32 / 16.0));
                }
            }
        }
        // label above the disc's upper outline, touching it
        for y in 70..82 {
            for x in 100..140 {
                img.data[y * wu + x] = 1.0;
            }
        }
        img
    }

    #[test]
    fn film_border_strips_and_label_stay_out() {
        let img = film(400, 500);
        let region = detect_breast(&img, &CropParams::default()).expect("breast");
        let b = region.bbox;
        // Half-disc: x in [0, 240), y in [50, 450); the border, strips and label add at
        // most half the opening's radius (6 working pixels, 12 px here) and a pixel.
        assert!(b.x0 == 0 && (238..=256).contains(&b.x1), "{b:?}");
        assert!(
            (34..=52).contains(&b.y0) && (448..=466).contains(&b.y1),
            "{b:?}"
        );
        assert_eq!(region.chest_wall, Side::Left);
        let mirrored = detect_breast(&img.flip_horizontal(), &CropParams::default()).unwrap();
        assert_eq!(mirrored.chest_wall, Side::Right);
        assert_eq!(mirrored.bbox.x1, 400);
        assert_eq!(mirrored.bbox.x0, 400 - b.x1);
    }

    #[test]
    fn blank_image_has_no_breast() {
        assert!(detect_breast(&GrayImage::filled(100, 100, 0.3), &CropParams::default()).is_none());
    }
}
