//! Seeded synthetic screening mammograms written exactly like the RSNA Screening Mammography
//! Breast Cancer Detection dataset: `train.csv` with its 14 columns,
//! `train_images/<patient_id>/<image_id>.dcm`, plus `lesions.csv` with the ground-truth boxes
//! and `phantom.json` with the resolved configuration.
//!
//! Images are made from anatomy and physics, not noise: a compressed breast outline against
//! the chest-wall edge with a skin line and thickness roll-off, pectoral muscle in oblique
//! views, power-law fibroglandular texture scaled by density, quantum noise, a burned-in
//! laterality marker, rare implants, and masses or calcification clusters placed at the same
//! 3-D site in every view of a cancer breast.
//!
//! Everything is a function of the seed: the same configuration gives byte-identical files
//! whatever the thread count.
//!
//! Layers: [`rng`] -> [`anatomy`], [`texture`], [`lesions`] -> [`render`] -> [`study`]
//! (planning) -> [`dicom_write`] -> [`generate`].

pub mod anatomy;
pub mod dicom_write;
pub mod lesions;
pub mod machines;
mod output;
pub mod render;
/// The deterministic RNG (the `mammo-rand` crate).
pub use mammo_rand as rng;
pub mod study;
pub mod texture;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;

pub use output::{LESION_COLUMNS, MachineCount, PhantomSummary, generate};
pub use render::{RenderedImage, render};
pub use study::{DatasetPlanner, ImagePlan, plan_dataset};

/// RSNA's patient-level cancer prevalence in train.csv: 486 of 11,913 patients.
pub const RSNA_PREVALENCE: f64 = 486.0 / 11913.0;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum PhantomError {
    /// A file or folder could not be written or read.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// JPEG 2000 encoding failed.
    #[error("cannot encode image {image_id} as JPEG 2000: {source}")]
    Encode {
        /// The image.
        image_id: u64,
        /// The cause.
        source: mammo_j2k::J2kError,
    },
    /// The DICOM writer refused the object.
    #[error("cannot write DICOM file {path}: {cause}")]
    Dicom {
        /// The file.
        path: PathBuf,
        /// The writer's error.
        #[source]
        cause: mammo_io::Cause,
    },
    /// Another process is writing the output folder.
    #[error(transparent)]
    Locked(#[from] mammo_io::LockError),
    /// A CSV could not be written.
    #[error("cannot write {path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: csv::Error,
    },
    /// The configuration cannot describe a dataset.
    #[error("invalid phantom configuration: {0}")]
    Config(String),
}

/// Image matrix sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizePreset {
    /// Each machine's real detector matrix (2082x2776 to 2560x3328).
    Full,
    /// Each machine's matrix divided by 5 (about 416x556 to 512x666), for quick demos.
    Small,
    /// Exactly this matrix for every machine.
    Custom {
        /// Columns.
        width: u32,
        /// Rows.
        height: u32,
    },
}

impl fmt::Display for SizePreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizePreset::Full => f.write_str("full"),
            SizePreset::Small => f.write_str("small"),
            SizePreset::Custom { width, height } => write!(f, "{width}x{height}"),
        }
    }
}

impl FromStr for SizePreset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(SizePreset::Full),
            "small" => Ok(SizePreset::Small),
            other => {
                let bad = || {
                    format!("size {s:?} is not \"full\", \"small\" or WIDTHxHEIGHT (e.g. 512x640)")
                };
                let (w, h) = other.split_once('x').ok_or_else(bad)?;
                let (width, height): (u32, u32) =
                    (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
                if !(16..=65535).contains(&width) || !(16..=65535).contains(&height) {
                    return Err(format!("size {s:?}: width and height must be 16..=65535"));
                }
                Ok(SizePreset::Custom { width, height })
            }
        }
    }
}

impl Serialize for SizePreset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How visible lesions are. A mass's contrast is its added attenuation over fat (units: the
/// full compressed thickness of fat is 1); over dense tissue, which it displaces, only about a
/// tenth of it shows, as dense breasts mask masses in real mammograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conspicuity {
    /// Subtle: masses about 0.12, calcifications 0.3.
    Low,
    /// Masses about 0.22, calcifications 0.6.
    Medium,
    /// Clearly visible: masses about 0.40, calcifications 1.1.
    High,
    /// As visible as a mass can be (about 0.55: two thirds of the breast's thickness of
    /// tissue a little denser than fibroglandular), masses and clusters 2.5x wider, and
    /// every cancer a mass: for demos and tests where a model trained from scratch on a few
    /// hundred images must learn within minutes on a CPU. Still no brighter than the breast's
    /// own dense tissue, so no global statistic of the image gives a cancer away.
    Obvious,
}

impl Conspicuity {
    /// Lesions are drawn this many times larger than their sampled physical size (1 except
    /// `Obvious`, where masses and clusters are 2.5x wider so that they stay several pixels
    /// across at 128 px).
    pub(crate) fn size_divisor(self) -> f64 {
        match self {
            Conspicuity::Obvious => 1.0 / 2.5,
            _ => 1.0,
        }
    }
}

impl fmt::Display for Conspicuity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conspicuity::Low => "low",
            Conspicuity::Medium => "medium",
            Conspicuity::High => "high",
            Conspicuity::Obvious => "obvious",
        })
    }
}

impl FromStr for Conspicuity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Conspicuity::Low),
            "medium" => Ok(Conspicuity::Medium),
            "high" => Ok(Conspicuity::High),
            "obvious" => Ok(Conspicuity::Obvious),
            _ => Err(format!(
                "conspicuity {s:?} is not low, medium, high or obvious"
            )),
        }
    }
}

/// The BI-RADS density categories (a-d) patients are drawn from. Density masks masses: a mass
/// displaces the tissue under it, so over dense tissue little of its contrast shows (see
/// [`lesions`]). Cancer and normal patients are drawn from the same mix, so the mix changes
/// how often a lesion is visible, never what separates the classes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DensityMix {
    /// Relative weights of categories A, B, C and D (non-negative, not all zero).
    pub weights: [f64; 4],
}

impl DensityMix {
    /// RSNA-like screening population: A 10 %, B 42 %, C 39 %, D 9 %.
    pub const RSNA: DensityMix = DensityMix {
        weights: [0.10, 0.42, 0.39, 0.09],
    };
}

impl Default for DensityMix {
    fn default() -> Self {
        Self::RSNA
    }
}

impl fmt::Display for DensityMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::RSNA {
            return f.write_str("rsna");
        }
        let w = self.weights;
        let present: Vec<usize> = (0..4).filter(|&i| w[i] > 0.0).collect();
        if present.iter().all(|&i| w[i] == w[present[0]]) {
            let letters: String = present.iter().map(|&i| ['A', 'B', 'C', 'D'][i]).collect();
            return f.write_str(&letters);
        }
        write!(f, "{},{},{},{}", w[0], w[1], w[2], w[3])
    }
}

impl FromStr for DensityMix {
    type Err = String;

    /// `rsna`; letters, each equally likely (`AB`: half fatty, half scattered); or four
    /// weights `a,b,c,d` (`0.3,0.5,0.2,0`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("rsna") {
            return Ok(Self::RSNA);
        }
        let bad = || {
            format!(
                "density {s:?} is not rsna, a set of the letters A-D (e.g. AB) or four weights \
                 a,b,c,d (e.g. 0.3,0.5,0.2,0)"
            )
        };
        let mut weights = [0.0; 4];
        if t.contains(',') {
            let parts: Vec<&str> = t.split(',').collect();
            if parts.len() != 4 {
                return Err(bad());
            }
            for (w, p) in weights.iter_mut().zip(parts) {
                *w = p.trim().parse::<f64>().map_err(|_| bad())?;
                if !w.is_finite() || *w < 0.0 {
                    return Err(bad());
                }
            }
        } else {
            for c in t.chars() {
                let i = match c.to_ascii_uppercase() {
                    'A' => 0,
                    'B' => 1,
                    'C' => 2,
                    'D' => 3,
                    _ => return Err(bad()),
                };
                weights[i] = 1.0;
            }
        }
        if weights.iter().sum::<f64>() <= 0.0 {
            return Err(bad());
        }
        Ok(Self { weights })
    }
}

impl Serialize for DensityMix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Conspicuity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What to generate and where.
#[derive(Debug, Clone, Serialize)]
pub struct PhantomConfig {
    /// Output folder (created); receives train.csv, lesions.csv, phantom.json, train_images/.
    pub out: PathBuf,
    /// Number of patients (each has 4 or more images).
    pub patients: usize,
    /// Seed; the same configuration and seed give byte-identical output.
    pub seed: u64,
    /// Patient-level probability of cancer (default [`RSNA_PREVALENCE`]).
    pub prevalence: f64,
    /// Matrix sizes.
    pub size: SizePreset,
    /// Lesion visibility.
    pub conspicuity: Conspicuity,
    /// Breast density categories patients are drawn from.
    pub density: DensityMix,
    /// Worker threads (0 = all cores). Does not change the output.
    pub jobs: usize,
    /// Show a progress bar. Does not change the output.
    pub progress: bool,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        PhantomConfig {
            out: PathBuf::from("phantom-out"),
            patients: 60,
            seed: 0,
            prevalence: RSNA_PREVALENCE,
            size: SizePreset::Small,
            conspicuity: Conspicuity::Medium,
            density: DensityMix::RSNA,
            jobs: 0,
            progress: false,
        }
    }
}

impl PhantomConfig {
    /// Checks the values that no dataset can satisfy.
    pub fn validate(&self) -> Result<(), PhantomError> {
        if !(0.0..=1.0).contains(&self.prevalence) {
            return Err(PhantomError::Config(format!(
                "prevalence {} is outside 0..=1",
                self.prevalence
            )));
        }
        if let SizePreset::Custom { width, height } = self.size
            && (!(16..=65535).contains(&width) || !(16..=65535).contains(&height))
        {
            return Err(PhantomError::Config(format!(
                "size {width}x{height}: width and height must be 16..=65535"
            )));
        }
        Ok(())
    }
}
