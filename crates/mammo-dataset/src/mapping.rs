//! Coordinates between a stored DICOM image and a processed output (a manifest row's PNG,
//! a model input): the crop, the optional mirror about the crop box, the scale and the
//! padding offset, both ways. Coordinates are continuous: `(0, 0)` is the top-left corner of
//! the top-left pixel, as for DICOM spatial coordinates (PS3.3 C.18.6.1.2).

use mammo_image::Rect;
use serde::{Deserialize, Serialize};

/// The geometry of one processed output: what a manifest row records as `crop_*`,
/// `flipped`, `scale_*` and `offset_*`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SourceMap {
    /// Crop box in stored-image pixels.
    pub crop: Rect,
    /// Mirrored about the crop box.
    pub flipped: bool,
    /// Output pixels per stored-image pixel.
    pub scale_x: f64,
    pub scale_y: f64,
    /// Top-left of the image inside the (padded) output.
    pub offset_x: u32,
    pub offset_y: u32,
}

impl SourceMap {
    /// Where the stored-image point `(x, y)` lands in the output.
    pub fn to_output(&self, x: f64, y: f64) -> (f64, f64) {
        let dx = if self.flipped {
            self.crop.x1 as f64 - x
        } else {
            x - self.crop.x0 as f64
        };
        (
            self.offset_x as f64 + self.scale_x * dx,
            self.offset_y as f64 + self.scale_y * (y - self.crop.y0 as f64),
        )
    }

    /// The inverse of [`Self::to_output`]: the stored-image point under output `(x, y)`.
    pub fn to_source(&self, x: f64, y: f64) -> (f64, f64) {
        let dx = (x - self.offset_x as f64) / self.scale_x;
        let sx = if self.flipped {
            self.crop.x1 as f64 - dx
        } else {
            self.crop.x0 as f64 + dx
        };
        (
            sx,
            self.crop.y0 as f64 + (y - self.offset_y as f64) / self.scale_y,
        )
    }

    /// A stored-image box `[x0, y0, x1, y1]` in the output, corners ordered again after a
    /// mirror.
    pub fn box_to_output(&self, [x0, y0, x1, y1]: [f64; 4]) -> [f64; 4] {
        let (xa, ya) = self.to_output(x0, y0);
        let (xb, yb) = self.to_output(x1, y1);
        [xa.min(xb), ya.min(yb), xa.max(xb), ya.max(yb)]
    }

    /// An output box back in stored-image pixels, corners ordered, clipped to the crop box
    /// (the padding around the image has no source pixels).
    pub fn box_to_source(&self, [x0, y0, x1, y1]: [f64; 4]) -> [f64; 4] {
        let (xa, ya) = self.to_source(x0, y0);
        let (xb, yb) = self.to_source(x1, y1);
        let c = &self.crop;
        let cx = |v: f64| v.clamp(c.x0 as f64, c.x1 as f64);
        let cy = |v: f64| v.clamp(c.y0 as f64, c.y1 as f64);
        [
            cx(xa.min(xb)),
            cy(ya.min(yb)),
            cx(xa.max(xb)),
            cy(ya.max(yb)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_go_to_the_output_and_back() {
        for flipped in [false, true] {
            let m = SourceMap {
                crop: Rect {
                    x0: 100,
                    y0: 40,
                    x1: 900,
                    y1: 1240,
                },
                flipped,
                scale_x: 0.04,
                scale_y: 0.04,
                offset_x: 3,
                offset_y: 0,
            };
            let b = [300.0, 500.0, 420.0, 610.0];
            let out = m.box_to_output(b);
            assert!(out[0] < out[2] && out[1] < out[3]);
            let back = m.box_to_source(out);
            for (a, e) in back.iter().zip(b) {
                assert!((a - e).abs() < 1e-9, "{back:?} vs {b:?}");
            }
            // The padding left of the image maps outside the crop and is clipped to it.
            let pad = m.box_to_source([0.0, 0.0, 2.0, 2.0]);
            assert!(pad[0] >= 100.0 && pad[2] <= 900.0, "{pad:?}");
        }
        // Mirrored: the output's left edge is the crop's right edge.
        let m = SourceMap {
            crop: Rect {
                x0: 10,
                y0: 0,
                x1: 110,
                y1: 100,
            },
            flipped: true,
            scale_x: 1.0,
            scale_y: 1.0,
            offset_x: 0,
            offset_y: 0,
        };
        assert_eq!(m.to_source(0.0, 5.0), (110.0, 5.0));
        assert_eq!(m.to_output(110.0, 5.0), (0.0, 5.0));
    }
}
