//! Planning: who the patients are, which images they have, which breasts have cancer, and
//! where each lesion lies in every view. Planning is cheap and fully determined by the seed;
//! rendering (the expensive part) then works on each [`ImagePlan`] independently.
//!
//! Randomness is keyed by (seed, patient index, image index), never by a shared stream, so
//! the plan and every image are identical whatever the thread count.

use std::collections::HashSet;
use std::f64::consts::TAU;

use rayon::prelude::*;

use crate::anatomy::{BreastGeometry, Laterality, View};
use crate::lesions::{Lesion, LesionType};
use crate::machines::{Machine, machines};
use crate::rng::{Rng, uid_2_25};
use crate::{Conspicuity, PhantomConfig, SizePreset};

/// BI-RADS breast density (ACR 5th edition categories a-d).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Density {
    /// Almost entirely fatty.
    A,
    /// Scattered fibroglandular densities.
    B,
    /// Heterogeneously dense.
    C,
    /// Extremely dense.
    D,
}

impl Density {
    /// The letter written to train.csv.
    pub fn as_str(self) -> &'static str {
        match self {
            Density::A => "A",
            Density::B => "B",
            Density::C => "C",
            Density::D => "D",
        }
    }

    /// Threshold shift of the texture field: more positive = more glandular tissue.
    pub fn gland_bias(self) -> f64 {
        match self {
            Density::A => -1.6,
            Density::B => -0.8,
            Density::C => 0.0,
            Density::D => 0.8,
        }
    }
}

/// Everything needed to write one row of train.csv and to render and write one file.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// Dataset seed.
    pub seed: u64,
    /// Keys of the image's random streams: (patient index, image index within patient).
    pub keys: (u64, u64),
    /// site_id.
    pub site_id: u32,
    /// patient_id (also PatientID).
    pub patient_id: u64,
    /// image_id (file name).
    pub image_id: u64,
    /// Laterality.
    pub laterality: Laterality,
    /// View.
    pub view: View,
    /// Age in years (None: empty in the CSV, absent in the file).
    pub age: Option<u32>,
    /// Cancer in this breast.
    pub cancer: bool,
    /// Biopsied breast.
    pub biopsy: bool,
    /// Invasive cancer.
    pub invasive: bool,
    /// BI-RADS assessment of the breast, if reported.
    pub birads: Option<u8>,
    /// Breast implant.
    pub implant: bool,
    /// True density used for rendering.
    pub density: Density,
    /// Whether density is written to the CSV.
    pub density_reported: bool,
    /// Acquisition device.
    pub machine: &'static Machine,
    /// difficult_negative_case.
    pub difficult_negative: bool,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Pixel spacing of this matrix, mm.
    pub pixel_mm: f64,
    /// Breast geometry of this view.
    pub geometry: BreastGeometry,
    /// Spectral exponent of the texture.
    pub texture_beta: f64,
    /// Per-image variation of the VOI windows (about 1).
    pub window_jitter: f64,
    /// Malignant lesions (rows of lesions.csv).
    pub lesions: Vec<Lesion>,
    /// Benign findings, drawn but not listed (they make negatives harder).
    pub benign: Vec<Lesion>,
    /// Study Instance UID (one per patient).
    pub study_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// SOP Instance UID.
    pub sop_uid: String,
    /// Instance Number within the study.
    pub instance_number: u32,
}

/// Matrix of a machine under a size preset.
pub fn matrix(machine: &Machine, size: SizePreset) -> (u32, u32) {
    let even = |v: f64| ((v / 2.0).round() as u32 * 2).max(2);
    match size {
        SizePreset::Full => (machine.width, machine.height),
        SizePreset::Small => (
            even(machine.width as f64 / 5.0),
            even(machine.height as f64 / 5.0),
        ),
        SizePreset::Custom { width, height } => (width, height),
    }
}

const TAG_IDS: u64 = 0x4944_5300;
const TAG_PATIENT: u64 = 0x5041_5400;
const TAG_IMAGE: u64 = 0x494D_4700;
const TAG_LESION: u64 = 0x4C45_5300;
const TAG_UID: u64 = 0x5549_4400;

/// Plans the whole dataset; images are ordered by patient_id, then acquisition.
pub fn plan_dataset(cfg: &PhantomConfig) -> Vec<ImagePlan> {
    let planner = DatasetPlanner::new(cfg);
    planner.plan(cfg, planner.patients())
}

/// The dataset's plan in a form whose size is a few ids per image: who the patients are (in
/// output order) and the image ids that had to be redrawn. [`plan`](Self::plan) then plans
/// any run of patients in full, identical to what [`plan_dataset`] returns for them, so that
/// a writer holds one run of [`ImagePlan`]s at a time, not the whole set's.
#[derive(Debug, Clone)]
pub struct DatasetPlanner {
    /// `(patient index, patient_id)`, sorted by patient_id: the output order.
    patients: Vec<(u64, u64)>,
    /// `(patient index, image index) -> image_id` for the rare image whose drawn id collided
    /// with an earlier patient's.
    redrawn: std::collections::HashMap<(u64, usize), u64>,
    images: usize,
}

/// Patients planned at once while the ids are checked.
const PLAN_CHUNK: usize = 1024;

impl DatasetPlanner {
    /// Draws the patient ids, then plans every patient once (in chunks, dropped as it goes)
    /// to resolve image-id collisions, in patient-index order.
    pub fn new(cfg: &PhantomConfig) -> Self {
        let mut ids = Rng::from_keys(cfg.seed, &[TAG_IDS]);
        let hi = 65_535u64.max(10_000 + 4 * cfg.patients as u64);
        let mut seen = HashSet::new();
        let patient_ids: Vec<u64> = (0..cfg.patients)
            .map(|_| {
                loop {
                    let id = ids.int_in(10_000, hi);
                    if seen.insert(id) {
                        break id;
                    }
                }
            })
            .collect();
        // image_id is drawn per patient; resolve the rare collision deterministically.
        let mut image_ids = HashSet::new();
        let mut redrawn = std::collections::HashMap::new();
        let mut images = 0;
        for (c, chunk) in patient_ids.chunks(PLAN_CHUNK).enumerate() {
            let planned: Vec<Vec<ImagePlan>> = chunk
                .par_iter()
                .enumerate()
                .map(|(i, &pid)| plan_patient(cfg, (c * PLAN_CHUNK + i) as u64, pid))
                .collect();
            for (i, patient) in planned.into_iter().enumerate() {
                let k = (c * PLAN_CHUNK + i) as u64;
                for (j, mut im) in patient.into_iter().enumerate() {
                    let mut attempt = 0;
                    while !image_ids.insert(im.image_id) {
                        attempt += 1;
                        im.image_id = Rng::from_keys(
                            cfg.seed,
                            &[TAG_IDS, im.patient_id, im.image_id, attempt],
                        )
                        .int_in(10_000_000, 2_147_483_647);
                    }
                    if attempt > 0 {
                        redrawn.insert((k, j), im.image_id);
                    }
                    images += 1;
                }
            }
        }
        let mut patients: Vec<(u64, u64)> = patient_ids
            .into_iter()
            .enumerate()
            .map(|(k, pid)| (k as u64, pid))
            .collect();
        patients.sort_by_key(|&(_, pid)| pid);
        Self {
            patients,
            redrawn,
            images,
        }
    }

    /// `(patient index, patient_id)` in output order (by patient_id).
    pub fn patients(&self) -> &[(u64, u64)] {
        &self.patients
    }

    /// Images in the whole dataset.
    pub fn images(&self) -> usize {
        self.images
    }

    /// The images of `patients` (a run of [`patients`](Self::patients)), in that order, then
    /// acquisition; planned in parallel.
    pub fn plan(&self, cfg: &PhantomConfig, patients: &[(u64, u64)]) -> Vec<ImagePlan> {
        let planned: Vec<Vec<ImagePlan>> = patients
            .par_iter()
            .map(|&(k, pid)| {
                let mut images = plan_patient(cfg, k, pid);
                for (j, im) in images.iter_mut().enumerate() {
                    if let Some(&id) = self.redrawn.get(&(k, j)) {
                        im.image_id = id;
                    }
                }
                images
            })
            .collect();
        planned.into_iter().flatten().collect()
    }
}

/// A breast of one patient, with its per-breast findings.
struct Breast {
    laterality: Laterality,
    size: f64,
    beta: f64,
    cancer: bool,
    recalled: bool,
    biopsy: bool,
    invasive: bool,
    birads: Option<u8>,
    lesion: Option<(LesionType, f64)>,
    benign: Option<(LesionType, f64)>,
}

fn plan_patient(cfg: &PhantomConfig, index: u64, patient_id: u64) -> Vec<ImagePlan> {
    let mut rng = Rng::from_keys(cfg.seed, &[TAG_PATIENT, index]);
    let shares: Vec<f64> = machines().iter().map(|m| m.share).collect();
    let machine = &machines()[rng.weighted(&shares)];
    let (width, height) = matrix(machine, cfg.size);
    let pixel_mm = machine.pixel_mm
        * 0.5
        * (machine.width as f64 / width as f64 + machine.height as f64 / height as f64);
    let age =
        (!rng.chance(0.001)).then(|| (58.0 + 10.0 * rng.normal()).round().clamp(26.0, 89.0) as u32);
    let density =
        [Density::A, Density::B, Density::C, Density::D][rng.weighted(&cfg.density.weights)];
    let density_reported = machine.site_id == 1 && !rng.chance(0.03);
    let implant = rng.chance(0.014);
    let cancer_patient = rng.chance(cfg.prevalence);
    let bilateral = cancer_patient && rng.chance(0.02);
    let cancer_side = if rng.chance(0.5) {
        Laterality::L
    } else {
        Laterality::R
    };
    let recalled_patient = !cancer_patient && rng.chance(0.12);
    let recalled_side = if rng.chance(0.5) {
        Laterality::L
    } else {
        Laterality::R
    };
    let base_size = (1.0 + 0.1 * rng.normal()).clamp(0.78, 1.18);

    let (mass_c, calc_c) = match cfg.conspicuity {
        Conspicuity::Low => (0.12, 0.30),
        Conspicuity::Medium => (0.22, 0.60),
        Conspicuity::High => (0.40, 1.10),
        Conspicuity::Obvious => (0.55, 2.50),
    };
    let breasts: Vec<Breast> = [Laterality::L, Laterality::R]
        .into_iter()
        .map(|lat| {
            let cancer = cancer_patient && (bilateral || lat == cancer_side);
            let recalled = recalled_patient && lat == recalled_side;
            let lesion = cancer.then(|| {
                let kinds = [
                    LesionType::MassRound,
                    LesionType::MassIrregular,
                    LesionType::MassSpiculated,
                    LesionType::CalcificationCluster,
                ];
                // 'obvious' draws masses only: at 128 px a calcification cluster's specks are
                // sub-pixel, which no from-scratch model learns from a few hundred images.
                let n = if cfg.conspicuity == Conspicuity::Obvious {
                    3
                } else {
                    4
                };
                let kind = kinds[rng.weighted(&[0.15, 0.30, 0.25, 0.30][..n])];
                let c = if kind == LesionType::CalcificationCluster {
                    calc_c
                } else {
                    mass_c
                };
                (kind, c * rng.range(0.8, 1.2))
            });
            let benign = (recalled && rng.chance(0.7) || !cancer && rng.chance(0.03)).then(|| {
                if rng.chance(0.6) {
                    (LesionType::MassRound, mass_c * rng.range(0.7, 1.1))
                } else {
                    (
                        LesionType::CalcificationCluster,
                        calc_c * rng.range(0.5, 0.8),
                    )
                }
            });
            let invasive = match lesion {
                Some((LesionType::CalcificationCluster, _)) => rng.chance(0.45),
                Some(_) => rng.chance(0.8),
                None => false,
            };
            let biopsy = cancer || (recalled && rng.chance(0.15)) || rng.chance(0.003);
            let birads = if machine.site_id == 1 {
                if cancer || recalled {
                    Some(0)
                } else if rng.chance(0.04) {
                    None
                } else {
                    Some(if rng.chance(0.8) { 1 } else { 2 })
                }
            } else if (cancer || recalled) && rng.chance(0.5) {
                Some(0)
            } else {
                None
            };
            Breast {
                laterality: lat,
                size: base_size * rng.range(0.95, 1.05),
                beta: rng.range(2.7, 3.2),
                cancer,
                recalled,
                biopsy,
                invasive,
                birads,
                lesion,
                benign,
            }
        })
        .collect();

    // Views: the four standard ones, then occasional extra or repeated acquisitions.
    let mut views = vec![
        (Laterality::L, View::CC),
        (Laterality::L, View::MLO),
        (Laterality::R, View::CC),
        (Laterality::R, View::MLO),
    ];
    let extras = rng.weighted(&[0.72, 0.14, 0.09, 0.05]);
    for _ in 0..extras {
        let lat = if rng.chance(0.5) {
            Laterality::L
        } else {
            Laterality::R
        };
        let view = [View::CC, View::MLO, View::ML, View::LM, View::AT]
            [rng.weighted(&[0.42, 0.43, 0.06, 0.05, 0.04])];
        views.push((lat, view));
    }

    let study_uid = uid_2_25(cfg.seed, &[TAG_UID, index]);
    let mut images: Vec<ImagePlan> = views
        .iter()
        .enumerate()
        .map(|(j, &(lat, view))| {
            let breast = &breasts[lat as usize];
            let mut irng = Rng::from_keys(cfg.seed, &[TAG_IMAGE, index, j as u64]);
            let image_id = irng.int_in(10_000_000, 2_147_483_647);
            let geometry =
                BreastGeometry::sample(&mut irng, width, height, view, lat, breast.size, implant);
            ImagePlan {
                seed: cfg.seed,
                keys: (index, j as u64),
                site_id: machine.site_id,
                patient_id,
                image_id,
                laterality: lat,
                view,
                age,
                cancer: breast.cancer,
                biopsy: breast.biopsy,
                invasive: breast.invasive,
                birads: breast.birads,
                implant,
                density,
                density_reported,
                machine,
                difficult_negative: recalled_patient,
                width,
                height,
                pixel_mm,
                geometry,
                texture_beta: breast.beta + irng.range(-0.05, 0.05),
                window_jitter: 1.0 + 0.03 * irng.normal().clamp(-2.0, 2.0),
                lesions: Vec::new(),
                benign: Vec::new(),
                study_uid: study_uid.clone(),
                series_uid: uid_2_25(cfg.seed, &[TAG_UID, index, j as u64, 1]),
                sop_uid: uid_2_25(cfg.seed, &[TAG_UID, index, j as u64, 2]),
                instance_number: j as u32 + 1,
            }
        })
        .collect();

    for breast in &breasts {
        let members: Vec<usize> = (0..images.len())
            .filter(|&j| images[j].laterality == breast.laterality)
            .collect();
        for (slot, finding) in [(0u64, breast.lesion), (1, breast.benign)] {
            let Some((kind, contrast)) = finding else {
                continue;
            };
            let placed = place_lesion(
                cfg.seed,
                index,
                slot,
                breast.laterality,
                kind,
                contrast,
                pixel_mm * cfg.conspicuity.size_divisor(),
                &images,
                &members,
            );
            for (j, lesion) in members.iter().zip(placed) {
                if slot == 0 {
                    images[*j].lesions.push(lesion);
                } else {
                    images[*j].benign.push(lesion);
                }
            }
        }
        debug_assert!(!breast.recalled || !breast.cancer);
    }
    images
}

/// Finds one 3-D site for a lesion of a breast and projects it into every view of that
/// breast (`members`), so that all views agree on distance from the nipple and clock
/// position. Sites are retried, and the lesion shrunk, until every view's box lies in
/// parenchyma (away from skin, muscle and implant).
#[allow(clippy::too_many_arguments)]
fn place_lesion(
    seed: u64,
    patient: u64,
    slot: u64,
    lat: Laterality,
    kind: LesionType,
    contrast: f64,
    pixel_mm: f64,
    images: &[ImagePlan],
    members: &[usize],
) -> Vec<Lesion> {
    let mut rng = Rng::from_keys(seed, &[TAG_LESION, patient, lat as u64, slot]);
    let radius_mm = match kind {
        LesionType::CalcificationCluster => rng.range(2.5, 6.0),
        _ => (0.5 * (15f64.ln() + 0.35 * rng.normal()).exp()).clamp(3.0, 20.0),
    };
    let limit = members
        .iter()
        .map(|&j| images[j].geometry.a.min(images[j].geometry.b))
        .fold(f64::MAX, f64::min);
    let mut radius = (radius_mm / pixel_mm).min(0.16 * limit).max(1.0);
    for attempt in 0..120u64 {
        if attempt > 0 && attempt % 20 == 0 {
            radius = (radius * 0.8).max(0.8);
        }
        let (depth, radial, clock) = if attempt < 119 {
            (
                rng.range(0.25, 0.8),
                0.75 * rng.uniform().sqrt(),
                rng.range(0.0, TAU),
            )
        } else {
            (0.5, 0.0, 0.0)
        };
        let lesions: Vec<Lesion> = members
            .iter()
            .map(|&j| {
                let im = &images[j];
                let (x, y) = im.geometry.project(im.view, depth, radial, clock);
                let mut shape_rng =
                    Rng::from_keys(seed, &[TAG_LESION, patient, j as u64, slot, attempt]);
                Lesion::sample(&mut shape_rng, kind, x, y, radius, contrast)
            })
            .collect();
        let fits = members.iter().zip(&lesions).all(|(&j, l)| {
            let b = l.bbox();
            images[j]
                .geometry
                .box_in_parenchyma(b.x0, b.y0, b.x1, b.y1, 0.9)
        });
        if fits {
            return lesions;
        }
    }
    // Nothing fits (only on absurdly small matrices): a one-pixel lesion on the axis.
    members
        .iter()
        .map(|&j| {
            let im = &images[j];
            let (x, y) = im.geometry.project(im.view, 0.5, 0.0, 0.0);
            let mut shape_rng = Rng::from_keys(seed, &[TAG_LESION, patient, j as u64, slot, 999]);
            Lesion::sample(&mut shape_rng, kind, x, y, 0.8, contrast)
        })
        .collect()
}
