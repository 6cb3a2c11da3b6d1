//! Modality and VOI transforms, PS3.3 C.11.1 and C.11.2.
//!
//! Every VOI transform maps a modality value `x` to a presentation value normalised to
//! `[0, 1]`; the caller scales to its output depth.

use serde::Serialize;

/// A lookup table from a Modality or VOI LUT Sequence item (PS3.3 C.11.1.1, C.11.2.1.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LookupTable {
    /// Input value mapped to the first entry.
    pub first_mapped: i32,
    /// Bits of each entry (LUT Descriptor value 3).
    pub bits: u16,
    #[serde(skip)]
    pub data: Vec<u16>,
}

impl LookupTable {
    /// Entry for input `x`: inputs below the first mapped value take the first entry, inputs
    /// past the last take the last (C.11.1.1.1).
    pub fn lookup(&self, x: f64) -> u16 {
        let i = (x.floor() - self.first_mapped as f64).clamp(0.0, (self.data.len() - 1) as f64);
        self.data[i as usize]
    }

    /// The largest value an entry can hold.
    pub fn max_output(&self) -> f64 {
        ((1u32 << self.bits) - 1) as f64
    }
}

/// The Modality LUT stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ModalityLut {
    /// Rescale Slope / Intercept (C.11.1.1.2): `y = slope * x + intercept`.
    Rescale { slope: f64, intercept: f64 },
    /// Modality LUT Sequence.
    Lut(LookupTable),
}

impl ModalityLut {
    /// Applies the transform to one stored value.
    pub fn apply(&self, stored: f64) -> f64 {
        match self {
            Self::Rescale { slope, intercept } => slope * stored + intercept,
            Self::Lut(lut) => lut.lookup(stored) as f64,
        }
    }

    /// True for the identity rescale.
    pub fn is_identity(&self) -> bool {
        matches!(self, Self::Rescale { slope, intercept } if *slope == 1.0 && *intercept == 0.0)
    }
}

/// VOI LUT Function (0028,1056).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VoiFunction {
    Linear,
    LinearExact,
    Sigmoid,
}

impl VoiFunction {
    /// The DICOM spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Linear => "LINEAR",
            Self::LinearExact => "LINEAR_EXACT",
            Self::Sigmoid => "SIGMOID",
        }
    }
}

/// One window (Window Center / Window Width pair).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    pub center: f64,
    pub width: f64,
    pub function: VoiFunction,
}

impl Window {
    /// Whether the width is allowed for the function (C.11.2.1.2.1: LINEAR needs width >= 1;
    /// C.11.2.1.3: LINEAR_EXACT and SIGMOID need width > 0).
    pub fn is_valid(&self) -> bool {
        self.center.is_finite()
            && self.width.is_finite()
            && match self.function {
                VoiFunction::Linear => self.width >= 1.0,
                VoiFunction::LinearExact | VoiFunction::Sigmoid => self.width > 0.0,
            }
    }

    /// Maps `x` to `[0, 1]`.
    pub fn apply(&self, x: f64) -> f64 {
        let (c, w) = (self.center, self.width);
        match self.function {
            // PS3.3 C.11.2.1.2.1 (VOI LUT function LINEAR), with y_min = 0, y_max = 1:
            //   x <= c - 0.5 - (w-1)/2 -> 0; x > c - 0.5 + (w-1)/2 -> 1;
            //   else ((x - (c - 0.5)) / (w-1) + 0.5).
            VoiFunction::Linear => {
                if w <= 1.0 {
                    // w == 1 is a threshold at c - 0.5.
                    return if x <= c - 0.5 { 0.0 } else { 1.0 };
                }
                let lo = c - 0.5 - (w - 1.0) / 2.0;
                let hi = c - 0.5 + (w - 1.0) / 2.0;
                if x <= lo {
                    0.0
                } else if x > hi {
                    1.0
                } else {
                    ((x - (c - 0.5)) / (w - 1.0) + 0.5).clamp(0.0, 1.0)
                }
            }
            // PS3.3 C.11.2.1.3.2 (VOI LUT function LINEAR_EXACT):
            //   x <= c - w/2 -> 0; x > c + w/2 -> 1; else (x - c) / w + 0.5.
            VoiFunction::LinearExact => {
                if x <= c - w / 2.0 {
                    0.0
                } else if x > c + w / 2.0 {
                    1.0
                } else {
                    ((x - c) / w + 0.5).clamp(0.0, 1.0)
                }
            }
            // PS3.3 C.11.2.1.3.1 (VOI LUT function SIGMOID):
            //   y = (y_max - y_min) / (1 + exp(-4 (x - c) / w)) + y_min.
            VoiFunction::Sigmoid => 1.0 / (1.0 + (-4.0 * (x - c) / w).exp()),
        }
    }
}

/// One VOI transform offered by the data set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum VoiTransform {
    Window(Window),
    Lut(LookupTable),
}

impl VoiTransform {
    /// Maps a modality value to `[0, 1]`.
    pub fn apply(&self, x: f64) -> f64 {
        match self {
            Self::Window(w) => w.apply(x),
            Self::Lut(lut) => lut.lookup(x) as f64 / lut.max_output(),
        }
    }

    /// A short description for manifests and logs, e.g. `LINEAR c=2047 w=4096`.
    pub fn describe(&self) -> String {
        match self {
            Self::Window(w) => format!("{} c={} w={}", w.function.as_str(), w.center, w.width),
            Self::Lut(l) => format!(
                "LUT n={} first={} bits={}",
                l.data.len(),
                l.first_mapped,
                l.bits
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_matches_the_standard_breakpoints() {
        // c = 2048, w = 4096: 0 at x <= 0 (c - 0.5 - 2047.5), 1 above 4095.
        let w = Window {
            center: 2048.0,
            width: 4096.0,
            function: VoiFunction::Linear,
        };
        assert_eq!(w.apply(0.0), 0.0);
        assert_eq!(w.apply(4096.0), 1.0);
        assert!((w.apply(2047.5) - 0.5).abs() < 1e-12);
        assert!((w.apply(1.0) - 1.0 / 4095.0).abs() < 1e-12);
    }

    #[test]
    fn linear_exact_and_sigmoid() {
        let e = Window {
            center: 100.0,
            width: 50.0,
            function: VoiFunction::LinearExact,
        };
        assert_eq!(e.apply(75.0), 0.0);
        assert!((e.apply(100.0) - 0.5).abs() < 1e-12);
        assert!((e.apply(112.5) - 0.75).abs() < 1e-12);
        let s = Window {
            center: 100.0,
            width: 50.0,
            function: VoiFunction::Sigmoid,
        };
        assert!((s.apply(100.0) - 0.5).abs() < 1e-12);
        assert!((s.apply(125.0) - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-12);
        assert!(s.apply(-1e6) < 1e-9 && s.apply(1e6) > 1.0 - 1e-9);
    }

    #[test]
    fn lut_clamps_outside_its_range() {
        let lut = LookupTable {
            first_mapped: 10,
            bits: 8,
            data: vec![0, 100, 255],
        };
        assert_eq!(lut.lookup(0.0), 0);
        assert_eq!(lut.lookup(11.0), 100);
        assert_eq!(lut.lookup(99.0), 255);
        let t = VoiTransform::Lut(lut);
        assert!((t.apply(11.0) - 100.0 / 255.0).abs() < 1e-12);
    }

    #[test]
    fn invalid_windows_are_flagged() {
        assert!(
            !Window {
                center: 0.0,
                width: 0.5,
                function: VoiFunction::Linear
            }
            .is_valid()
        );
        assert!(
            Window {
                center: 0.0,
                width: 0.5,
                function: VoiFunction::Sigmoid
            }
            .is_valid()
        );
        assert!(
            !Window {
                center: f64::NAN,
                width: 10.0,
                function: VoiFunction::Linear
            }
            .is_valid()
        );
    }
}
