//! Stored values -> presentation values: Modality LUT, VOI LUT, Presentation LUT shape
//! (MONOCHROME1 inversion), PS3.4 N.2 grayscale pipeline.

use serde::Serialize;

use crate::decode::StoredFrame;
use crate::lut::{ModalityLut, VoiFunction, VoiTransform, Window};
use crate::meta::{ImageMeta, Photometric};

/// Which VOI transform to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum VoiChoice {
    /// The first window (or VOI LUT) the data set offers, as viewers show by default; the
    /// min-max window when it offers none.
    #[default]
    First,
    /// No VOI from the data set: a linear window over the frame's minimum and maximum
    /// modality values.
    None,
    /// The n-th transform the data set offers (0-based); an error when it has fewer.
    Index(usize),
}

impl std::str::FromStr for VoiChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "first" => Ok(Self::First),
            "none" => Ok(Self::None),
            other => other.parse::<usize>().map(Self::Index).map_err(|_| {
                format!("VOI choice {other:?} is not 'first', 'none' or a window index")
            }),
        }
    }
}

impl std::fmt::Display for VoiChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::First => f.write_str("first"),
            Self::None => f.write_str("none"),
            Self::Index(i) => write!(f, "{i}"),
        }
    }
}

/// A rendered grayscale frame: presentation values in `[0, 1]`, 1 = white (dense tissue in
/// a mammogram), row-major.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
    /// Which VOI transform was applied, e.g. `SIGMOID c=2047 w=4000` or `MINMAX 12..3980`.
    pub voi_used: String,
    /// Whether a MONOCHROME1 inversion was applied.
    pub inverted: bool,
}

/// Renders stored values like a DICOM viewer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Renderer {
    pub voi: VoiChoice,
}

/// Why a frame cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("Photometric Interpretation {0} is not grayscale")]
    NotGrayscale(String),
    #[error("{0} samples per pixel: only grayscale images are rendered")]
    SamplesPerPixel(u16),
    #[error("VOI transform {requested} requested, the image offers {available}")]
    NoSuchVoi { requested: usize, available: usize },
}

/// Inputs with more distinct stored values than this are mapped per pixel, not by table.
const MAX_TABLE: i64 = 1 << 20;

impl Renderer {
    pub fn new(voi: VoiChoice) -> Self {
        Self { voi }
    }

    /// Renders one frame. Fails for colour images and for a VOI index the data set lacks.
    pub fn render(&self, meta: &ImageMeta, frame: &StoredFrame) -> Result<Rendered, RenderError> {
        let inverted = match &meta.photometric {
            Photometric::Monochrome1 => true,
            Photometric::Monochrome2 => false,
            Photometric::Other(p) => return Err(RenderError::NotGrayscale(p.clone())),
        };
        if frame.samples_per_pixel != 1 {
            return Err(RenderError::SamplesPerPixel(frame.samples_per_pixel));
        }
        let (smin, smax) = frame.min_max();
        let modality = &meta.modality_lut;
        let use_min_max = match self.voi {
            VoiChoice::None => true,
            VoiChoice::First => meta.voi.is_empty(),
            VoiChoice::Index(_) => false,
        };
        let (voi, voi_used) = if use_min_max {
            let (lo, hi) = modality_range(modality, frame, smin, smax);
            let window = Window {
                center: (lo + hi) / 2.0,
                width: (hi - lo).max(f64::MIN_POSITIVE),
                function: VoiFunction::LinearExact,
            };
            (
                VoiTransform::Window(window),
                format!("MINMAX {}..{}", fmt_num(lo), fmt_num(hi)),
            )
        } else {
            let i = match self.voi {
                VoiChoice::Index(i) => i,
                _ => 0,
            };
            let t = meta.voi.get(i).cloned().ok_or(RenderError::NoSuchVoi {
                requested: i,
                available: meta.voi.len(),
            })?;
            let used = t.describe();
            (t, used)
        };
        let present = |s: i32| -> f32 {
            let y = voi.apply(modality.apply(s as f64)) as f32;
            if inverted { 1.0 - y } else { y }
        };
        let range = smax as i64 - smin as i64 + 1;
        let data: Vec<f32> = if range <= MAX_TABLE {
            let table: Vec<f32> = (smin..=smax).map(present).collect();
            frame
                .data
                .iter()
                .map(|&s| table[(s - smin) as usize])
                .collect()
        } else {
            frame.data.iter().map(|&s| present(s)).collect()
        };
        Ok(Rendered {
            width: frame.width,
            height: frame.height,
            data,
            voi_used,
            inverted,
        })
    }
}

/// Smallest and largest modality value of the frame. A LINEAR_EXACT window over this range
/// maps the minimum to 0 and the maximum to 1.
fn modality_range(modality: &ModalityLut, frame: &StoredFrame, smin: i32, smax: i32) -> (f64, f64) {
    match modality {
        // Monotone: the ends map to the ends.
        ModalityLut::Rescale { .. } => {
            let (a, b) = (modality.apply(smin as f64), modality.apply(smax as f64));
            (a.min(b), a.max(b))
        }
        ModalityLut::Lut(_) => frame
            .data
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &s| {
                let m = modality.apply(s as f64);
                (lo.min(m), hi.max(m))
            }),
    }
}

/// A number for logs: at most 6 decimals, trailing zeros dropped.
fn fmt_num(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Quantises presentation values to `bits` (1..=16) with rounding.
pub fn quantize(values: &[f32], bits: u32) -> Vec<u16> {
    let max = ((1u32 << bits) - 1) as f32;
    values
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * max + 0.5) as u16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_errors_say_what_is_wrong() {
        assert_eq!(
            RenderError::NotGrayscale("RGB".into()).to_string(),
            "Photometric Interpretation RGB is not grayscale"
        );
        assert_eq!(
            RenderError::SamplesPerPixel(3).to_string(),
            "3 samples per pixel: only grayscale images are rendered"
        );
        assert_eq!(
            RenderError::NoSuchVoi {
                requested: 2,
                available: 1
            }
            .to_string(),
            "VOI transform 2 requested, the image offers 1"
        );
    }
}
