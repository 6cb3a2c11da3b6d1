//! Boxes from a heat map (the paper's centered box at the peak, or threshold + largest
//! connected component) and how well they localise known lesions.

use serde::{Deserialize, Serialize};

/// Axis-aligned box in pixel coordinates, `x1`/`y1` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl From<[f64; 4]> for BBox {
    /// `[x0, y0, x1, y1]`.
    fn from([x0, y0, x1, y1]: [f64; 4]) -> Self {
        Self { x0, y0, x1, y1 }
    }
}

impl BBox {
    pub fn area(&self) -> f64 {
        (self.x1 - self.x0).max(0.0) * (self.y1 - self.y0).max(0.0)
    }

    pub fn contains(&self, x: f64, y: f64) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }

    pub fn iou(&self, other: &BBox) -> f64 {
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// Position `(x, y)` of the largest value (first in row-major order on ties).
pub fn peak(map: &[f32], w: usize) -> (usize, usize) {
    let i = map
        .iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > map[best] { i } else { best });
    (i % w, i / w)
}

/// The paper's box: `size_w` x `size_h` pixels centred on the peak, shifted to stay inside
/// the image.
pub fn centered_box(map: &[f32], w: usize, h: usize, size_w: usize, size_h: usize) -> BBox {
    let (px, py) = peak(map, w);
    let (bw, bh) = (size_w.min(w) as f64, size_h.min(h) as f64);
    let x0 = (px as f64 + 0.5 - bw / 2.0).clamp(0.0, w as f64 - bw);
    let y0 = (py as f64 + 0.5 - bh / 2.0).clamp(0.0, h as f64 - bh);
    BBox {
        x0,
        y0,
        x1: x0 + bw,
        y1: y0 + bh,
    }
}

/// Bounding box of the largest 8-connected region with values >= `fraction` x max, or `None`
/// for an all-zero map.
pub fn threshold_box(map: &[f32], w: usize, h: usize, fraction: f32) -> Option<BBox> {
    let max = map.iter().copied().fold(0f32, f32::max);
    if max <= 0.0 {
        return None;
    }
    let on: Vec<bool> = map.iter().map(|&v| v >= fraction * max).collect();
    let mut seen = vec![false; on.len()];
    let mut best: Option<(usize, BBox)> = None;
    let mut stack = Vec::new();
    for start in 0..on.len() {
        if !on[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut n, mut bx) = (
            0usize,
            BBox {
                x0: f64::MAX,
                y0: f64::MAX,
                x1: 0.0,
                y1: 0.0,
            },
        );
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            n += 1;
            bx.x0 = bx.x0.min(x as f64);
            bx.y0 = bx.y0.min(y as f64);
            bx.x1 = bx.x1.max(x as f64 + 1.0);
            bx.y1 = bx.y1.max(y as f64 + 1.0);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if on[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        if best.as_ref().is_none_or(|(m, _)| n > *m) {
            best = Some((n, bx));
        }
    }
    best.map(|(_, b)| b)
}

/// Localisation of one explained image against its ground-truth lesion boxes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Localisation {
    /// The heat map's peak falls inside a lesion box (pointing game).
    pub pointing_hit: bool,
    /// Best IoU of the predicted box with any lesion box.
    pub iou: f64,
}

pub fn localise(peak_xy: (usize, usize), predicted: &BBox, truth: &[BBox]) -> Localisation {
    let (px, py) = (peak_xy.0 as f64 + 0.5, peak_xy.1 as f64 + 0.5);
    Localisation {
        pointing_hit: truth.iter().any(|t| t.contains(px, py)),
        iou: truth.iter().map(|t| predicted.iou(t)).fold(0.0, f64::max),
    }
}

/// Scores over a set of explained images with lesions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LocalisationSummary {
    pub images: usize,
    pub pointing_game: f64,
    pub mean_iou: f64,
    pub hit_rate_iou_0_1: f64,
    pub hit_rate_iou_0_3: f64,
}

pub fn summarise(scores: &[Localisation]) -> LocalisationSummary {
    let n = scores.len().max(1) as f64;
    let frac =
        |f: &dyn Fn(&Localisation) -> bool| scores.iter().filter(|s| f(s)).count() as f64 / n;
    LocalisationSummary {
        images: scores.len(),
        pointing_game: frac(&|s| s.pointing_hit),
        mean_iou: scores.iter().map(|s| s.iou).sum::<f64>() / n,
        hit_rate_iou_0_1: frac(&|s| s.iou >= 0.1),
        hit_rate_iou_0_3: frac(&|s| s.iou >= 0.3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centered_box_stays_inside() {
        let mut map = vec![0f32; 100];
        map[9] = 1.0; // (9, 0): top-right corner
        let b = centered_box(&map, 10, 10, 4, 4);
        assert_eq!(
            b,
            BBox {
                x0: 6.0,
                y0: 0.0,
                x1: 10.0,
                y1: 4.0
            }
        );
        map[9] = 0.0;
        map[55] = 1.0; // (5, 5)
        assert_eq!(
            centered_box(&map, 10, 10, 3, 3),
            BBox {
                x0: 4.0,
                y0: 4.0,
                x1: 7.0,
                y1: 7.0
            }
        );
    }

    #[test]
    fn threshold_box_takes_the_largest_component() {
        let mut map = vec![0f32; 64];
        map[0] = 1.0; // lone peak
        for y in 4..7 {
            for x in 3..6 {
                map[y * 8 + x] = 0.5;
            }
        }
        let b = threshold_box(&map, 8, 8, 0.3).unwrap();
        assert_eq!(
            b,
            BBox {
                x0: 3.0,
                y0: 4.0,
                x1: 6.0,
                y1: 7.0
            }
        );
        assert!(threshold_box(&[0.0; 4], 2, 2, 0.1).is_none());
    }

    #[test]
    fn iou_and_pointing() {
        let a = BBox {
            x0: 0.0,
            y0: 0.0,
            x1: 2.0,
            y1: 2.0,
        };
        let b = BBox {
            x0: 1.0,
            y0: 1.0,
            x1: 3.0,
            y1: 3.0,
        };
        assert!((a.iou(&b) - 1.0 / 7.0).abs() < 1e-12);
        let l = localise((1, 1), &a, &[b]);
        assert!(l.pointing_hit && (l.iou - 1.0 / 7.0).abs() < 1e-12);
        let s = summarise(&[
            l,
            Localisation {
                pointing_hit: false,
                iou: 0.5,
            },
        ]);
        assert_eq!(
            (s.pointing_game, s.hit_rate_iou_0_1, s.hit_rate_iou_0_3),
            (0.5, 1.0, 0.5)
        );
    }
}
