//! Image transforms for mammograms, independent of DICOM and of any deep-learning engine.
//!
//! Images are single-channel `f32` in `[0, 1]` ([`GrayImage`]). Every transform is a pure
//! function of its inputs; none draws random numbers.

mod crop;
mod png_io;
mod resize;

pub use crop::{BreastRegion, CropParams, detect_breast};
// The file plumbing moved to mammo-io; re-exported for the crates that read images anyway.
pub use mammo_io::{
    AtomicFile, LOCK_FILE, LockError, OutputLock, is_temp_name, recover_dir, swap_dir,
    sweep_temp_files, write_atomic,
};
pub use png_io::{
    GrayPng, MAX_PNG_PIXELS, PngError, PngSize, png_dimensions, read_png_gray, read_png_gray_from,
    write_png_gray,
};
pub use resize::{Filter, Placement, fit_and_pad, resize};

use serde::{Deserialize, Serialize};

/// A single-channel image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

impl GrayImage {
    /// Wraps `data`; panics when its length is not `width * height` (a programming error).
    pub fn new(width: u32, height: u32, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            width as usize * height as usize,
            "{width}x{height} image with {} values",
            data.len()
        );
        Self {
            width,
            height,
            data,
        }
    }

    /// A constant image.
    pub fn filled(width: u32, height: u32, value: f32) -> Self {
        Self::new(width, height, vec![value; width as usize * height as usize])
    }

    #[inline]
    pub fn get(&self, x: u32, y: u32) -> f32 {
        self.data[y as usize * self.width as usize + x as usize]
    }

    /// The pixels inside `rect` (clamped to the image).
    pub fn crop(&self, rect: Rect) -> GrayImage {
        let r = rect.clamp_to(self.width, self.height);
        let (w, h) = (r.width(), r.height());
        let mut data = Vec::with_capacity(w as usize * h as usize);
        for y in r.y0..r.y1 {
            let row = y as usize * self.width as usize;
            data.extend_from_slice(&self.data[row + r.x0 as usize..row + r.x1 as usize]);
        }
        GrayImage::new(w, h, data)
    }

    /// Mirror left-right.
    pub fn flip_horizontal(&self) -> GrayImage {
        let w = self.width as usize;
        let mut data = self.data.clone();
        for row in data.chunks_exact_mut(w) {
            row.reverse();
        }
        GrayImage::new(self.width, self.height, data)
    }

    /// Mean value of the left and right halves; which side holds more signal.
    pub fn heavier_side(&self) -> Side {
        let w = self.width as usize;
        let half = w / 2;
        let (mut left, mut right) = (0f64, 0f64);
        for row in self.data.chunks_exact(w) {
            left += row[..half].iter().map(|&v| v as f64).sum::<f64>();
            right += row[w - half..].iter().map(|&v| v as f64).sum::<f64>();
        }
        if right > left {
            Side::Right
        } else {
            Side::Left
        }
    }
}

/// Left or right half of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Left,
    Right,
}

/// A pixel rectangle, `x0..x1` by `y0..y1` (end-exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rect {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Rect {
    pub fn full(width: u32, height: u32) -> Self {
        Self {
            x0: 0,
            y0: 0,
            x1: width,
            y1: height,
        }
    }
    pub fn width(&self) -> u32 {
        self.x1.saturating_sub(self.x0)
    }
    pub fn height(&self) -> u32 {
        self.y1.saturating_sub(self.y0)
    }
    /// Intersection over union with `other` (0 when either is empty and they do not meet).
    pub fn iou(&self, other: &Rect) -> f64 {
        let ix = self.x1.min(other.x1).saturating_sub(self.x0.max(other.x0)) as f64;
        let iy = self.y1.min(other.y1).saturating_sub(self.y0.max(other.y0)) as f64;
        let inter = ix * iy;
        let area = |r: &Rect| r.width() as f64 * r.height() as f64;
        let union = area(self) + area(other) - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
    pub fn clamp_to(&self, width: u32, height: u32) -> Rect {
        let x0 = self.x0.min(width);
        let y0 = self.y0.min(height);
        Rect {
            x0,
            y0,
            x1: self.x1.clamp(x0, width),
            y1: self.y1.clamp(y0, height),
        }
    }
    /// This rectangle in a grid `factor` times finer (rounding outward), clamped.
    pub fn scaled(&self, fx: f64, fy: f64, width: u32, height: u32) -> Rect {
        Rect {
            x0: (self.x0 as f64 * fx).floor() as u32,
            y0: (self.y0 as f64 * fy).floor() as u32,
            x1: (self.x1 as f64 * fx).ceil() as u32,
            y1: (self.y1 as f64 * fy).ceil() as u32,
        }
        .clamp_to(width, height)
    }
}
