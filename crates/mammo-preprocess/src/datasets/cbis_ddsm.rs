//! CBIS-DDSM as TCIA publishes it: the four case-description tables
//! (`mass_case_description_train_set.csv`, `calc_case_description_test_set.csv`, ...) in the
//! root, and the images as the NBIA Data Retriever saves them, either in the "classic" folders
//! the tables name (`Mass-Training_P_00001_LEFT_CC/<study uid>/<series uid>/000000.dcm`) or in
//! the later "descriptive" folders (`Mass-Training_P_00001_LEFT_CC/<date>-DDSM-<n>/1.000000-full
//! mammogram images-<n>/1-1.dcm`), directly under the root or under `CBIS-DDSM/`.
//!
//! Columns read (the mass and calc tables differ: `breast_density` / `breast density`, `mass
//! shape` / `calc type`; both are accepted): `patient_id`, `left or right breast`, `image
//! view`, `abnormality type`, `assessment`, `pathology`, `image file path`, `cropped image file
//! path`, `ROI mask file path`.
//!
//! - One image record per full mammogram (its folder name, `Mass-Training_P_00001_LEFT_CC`,
//!   is the image id: the same breast view appears once under `Mass-` and once under `Calc-`
//!   when it has both, as two files), one lesion box per table row.
//! - Label: `MALIGNANT` -> 1, `BENIGN` and `BENIGN_WITHOUT_CALLBACK` -> 0; an image with
//!   several abnormalities is 1 when any is malignant. BI-RADS: the highest `assessment`.
//! - Split: `training` / `test` from the folder name (`-Training_` / `-Test_`).
//! - Box: the bounding box of the nonzero pixels of the ROI mask, `[x0, x1) x [y0, y1)`.
//!   The tables are known to swap the mask and the cropped image on some rows, and the
//!   descriptive folders do not match the tables' file names, so the mask is the first of
//!   (ROI mask path, cropped image path, every DICOM of the ROI's folder) whose pixels are
//!   binary (two values, one of them 0). A row whose mask cannot be found or read keeps its
//!   image and label and is a warning.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Dataset, ImageRecord, Table, dicom_files, safe_join};
use crate::error::PreprocessError;
use mammo_dataset::check_path_id;
use mammo_dataset::{LesionBox, LesionKind};

/// The bounding box `[x0, y0, x1, y1]` (half-open) of the nonzero pixels of a mask DICOM;
/// `Ok(None)` when the image is not binary (a grayscale crop, not a mask). An empty mask or
/// an unreadable file is an error naming the file.
pub fn mask_box(path: &Path) -> Result<Option<[u32; 4]>, String> {
    let img = mammo_dicom::DicomImage::open(path).map_err(|e| e.to_string())?;
    let frame = img.decode(0, 0).map_err(|e| e.to_string())?;
    let (lo, hi) = frame.min_max();
    if lo != 0 || frame.samples_per_pixel != 1 {
        return Ok(None);
    }
    if hi == 0 {
        return Err(format!("{}: the mask is empty", path.display()));
    }
    let w = frame.width as usize;
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, &v) in frame.data.iter().enumerate() {
        if v == 0 {
            continue;
        }
        if v != hi {
            return Ok(None);
        }
        let (x, y) = (i % w, i / w);
        x0 = x0.min(x);
        x1 = x1.max(x + 1);
        y0 = y0.min(y);
        y1 = y1.max(y + 1);
    }
    Ok(Some([x0 as u32, y0 as u32, x1 as u32, y1 as u32]))
}

/// Where a table's relative path is on disk: under the root, or under `root/CBIS-DDSM/`.
fn resolve(root: &Path, rel: &Path) -> Option<PathBuf> {
    [root.to_path_buf(), root.join("CBIS-DDSM")]
        .into_iter()
        .map(|base| base.join(rel.strip_prefix(root).unwrap_or(rel)))
        .find(|p| p.is_file())
}

/// The folder of a case (`Mass-Training_P_00001_LEFT_CC_1`) under the root or `CBIS-DDSM/`.
fn case_dir(root: &Path, case: &str) -> Option<PathBuf> {
    [root.join(case), root.join("CBIS-DDSM").join(case)]
        .into_iter()
        .find(|p| p.is_dir())
}

/// The first component of a table path: the case folder.
fn case_of(rel: &str) -> &str {
    rel.split(['/', '\\'])
        .find(|p| !p.is_empty() && *p != ".")
        .unwrap_or(rel)
}

struct RoiJob {
    table: usize,
    row: usize,
    candidates: Vec<PathBuf>,
    lesion: LesionBox,
}

pub(super) fn load(ds: &mut Dataset) -> Result<(), PreprocessError> {
    let root = ds.root.clone();
    let tables = super::files_named(&root, |n| {
        n.contains("case_description") && n.ends_with(".csv")
    })?;
    if tables.is_empty() {
        return Err(PreprocessError::Csv {
            path: root.clone(),
            cause: "no CBIS-DDSM case description table (mass_case_description_train_set.csv, \
                     calc_case_description_test_set.csv, ...) in this folder"
                .into(),
        });
    }
    let mut by_image: HashMap<String, (usize, String)> = HashMap::new();
    let mut jobs = Vec::new();
    let mut read = Vec::new();
    for (ti, path) in tables.iter().enumerate() {
        let t = Table::read(path)?;
        let c_patient = t.require(&["patient_id"])?;
        let c_side = t.require(&["left or right breast"])?;
        let c_view = t.require(&["image view"])?;
        let c_type = t.require(&["abnormality type"])?;
        let c_path = t.require(&["pathology"])?;
        let c_image = t.require(&["image file path"])?;
        let c_roi = t.require(&["ROI mask file path"])?;
        let c_crop = t.col(&["cropped image file path"]);
        let c_density = t.col(&["breast_density", "breast density"]);
        let c_assess = t.col(&["assessment"]);
        let c_desc1 = t.col(&["mass shape", "calc type"]);
        let c_desc2 = t.col(&["mass margins", "calc distribution"]);
        for i in 0..t.rows.len() {
            if t.blank(i) {
                continue;
            }
            let field = |c: usize| t.get(i, Some(c));
            let patient = field(c_patient).to_string();
            check_path_id("patient_id", &patient).map_err(|e| t.row_err(i, e))?;
            let laterality = super::parse_laterality(field(c_side)).map_err(|e| t.row_err(i, e))?;
            let view = field(c_view).to_ascii_uppercase();
            if view.is_empty() {
                return Err(t.row_err(i, "empty image view"));
            }
            let label = match field(c_path).to_ascii_uppercase().as_str() {
                "MALIGNANT" => 1,
                "BENIGN" | "BENIGN_WITHOUT_CALLBACK" => 0,
                other => {
                    return Err(t.row_err(
                        i,
                        format!(
                            "pathology {other:?} is not MALIGNANT, BENIGN or \
                             BENIGN_WITHOUT_CALLBACK"
                        ),
                    ));
                }
            };
            let kind = match field(c_type).to_ascii_lowercase().as_str() {
                "mass" => LesionKind::Mass,
                "calcification" => LesionKind::Calcification,
                other => {
                    return Err(t.row_err(
                        i,
                        format!("abnormality type {other:?} is neither mass nor calcification"),
                    ));
                }
            };
            let image_rel = field(c_image);
            let image_path = safe_join(&root, image_rel)
                .map_err(|e| t.row_err(i, format!("image file path: {e}")))?;
            let image_id = case_of(image_rel).to_string();
            check_path_id("image_id (the image's folder)", &image_id)
                .map_err(|e| t.row_err(i, e))?;
            let roi_rel = field(c_roi);
            let roi_path = safe_join(&root, roi_rel)
                .map_err(|e| t.row_err(i, format!("ROI mask file path: {e}")))?;
            let crop_path = match t.get(i, c_crop) {
                "" => None,
                rel => Some(
                    safe_join(&root, rel)
                        .map_err(|e| t.row_err(i, format!("cropped image file path: {e}")))?,
                ),
            };
            let assessment = t.get(i, c_assess).to_string();
            if !assessment.is_empty() && !assessment.chars().all(|c| c.is_ascii_digit()) {
                return Err(t.row_err(i, format!("assessment {assessment:?} is not a number")));
            }
            let split = if image_id.contains("-Training") {
                "training"
            } else if image_id.contains("-Test") {
                "test"
            } else {
                ""
            };

            match by_image.get(&image_id) {
                Some(&(k, ref first)) => {
                    let r: &mut ImageRecord = &mut ds.images[k];
                    if r.patient_id != patient || r.laterality != laterality || r.view != view {
                        return Err(t.row_err(
                            i,
                            format!(
                                "image {image_id} is {} {} {} on {first}, {patient} {laterality} \
                                 {view} here",
                                r.patient_id, r.laterality, r.view
                            ),
                        ));
                    }
                    r.label = r.label.max(Some(label));
                    if assessment.parse::<u32>().ok() > r.birads.parse::<u32>().ok() {
                        r.birads = assessment.clone();
                    }
                }
                None => {
                    let dicom = match resolve(&root, &image_path) {
                        Some(p) => p,
                        None => {
                            let found = case_dir(&root, &image_id)
                                .map(|d| dicom_files(&d))
                                .unwrap_or_default();
                            if found.len() == 1 {
                                found[0].clone()
                            } else {
                                ds.warnings.push(format!(
                                    "{}: row {}: {} not found{}",
                                    path.display(),
                                    i + 2,
                                    image_rel,
                                    if found.is_empty() {
                                        String::new()
                                    } else {
                                        format!(
                                            ", and its folder holds {} DICOM files",
                                            found.len()
                                        )
                                    }
                                ));
                                image_path.clone()
                            }
                        }
                    };
                    ds.images.push(ImageRecord {
                        patient_id: patient.clone(),
                        image_id: image_id.clone(),
                        laterality: laterality.clone(),
                        view: view.clone(),
                        label: Some(label),
                        birads: assessment.clone(),
                        density: t.get(i, c_density).to_string(),
                        split: split.into(),
                        dicom,
                        ..Default::default()
                    });
                    by_image.insert(
                        image_id.clone(),
                        (
                            ds.images.len() - 1,
                            format!("{} row {}", path.display(), i + 2),
                        ),
                    );
                }
            }

            let mut candidates: Vec<PathBuf> = [Some(&roi_path), crop_path.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|p| resolve(&root, p))
                .collect();
            if candidates.is_empty()
                && let Some(dir) = case_dir(&root, case_of(roi_rel))
            {
                candidates = dicom_files(&dir);
            }
            let description = [t.get(i, c_desc1), t.get(i, c_desc2)]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            jobs.push(RoiJob {
                table: ti,
                row: i,
                candidates,
                lesion: LesionBox {
                    image_id: image_id.clone(),
                    patient_id: patient,
                    laterality,
                    view,
                    kind,
                    x0: 0.0,
                    y0: 0.0,
                    x1: 0.0,
                    y1: 0.0,
                    pathology: field(c_path).to_ascii_uppercase(),
                    birads: assessment,
                    description,
                },
            });
        }
        read.push(t.path);
    }

    // Masks are full-size images: read them in parallel, keep the table order.
    let results: Vec<Result<LesionBox, String>> = jobs
        .into_par_iter()
        .map(|job| {
            let at = format!("{}: row {}", read[job.table].display(), job.row + 2);
            let mut problems = Vec::new();
            for c in &job.candidates {
                let inside = std::fs::canonicalize(c)
                    .map(|r| r.starts_with(&root))
                    .unwrap_or(false);
                if !inside {
                    problems.push(format!("{} resolves outside the root", c.display()));
                    continue;
                }
                match mask_box(c) {
                    Ok(Some([x0, y0, x1, y1])) => {
                        return Ok(LesionBox {
                            x0: x0 as f64,
                            y0: y0 as f64,
                            x1: x1 as f64,
                            y1: y1 as f64,
                            ..job.lesion
                        });
                    }
                    Ok(None) => problems.push(format!("{} is not a binary mask", c.display())),
                    Err(e) => problems.push(e),
                }
            }
            if job.candidates.is_empty() {
                problems.push("no ROI mask file found".into());
            }
            Err(format!(
                "{at}: no box for {} ({})",
                job.lesion.image_id,
                problems.join("; ")
            ))
        })
        .collect();
    for r in results {
        match r {
            Ok(b) => ds.lesions.push(b),
            Err(w) => ds.warnings.push(w),
        }
    }
    Ok(())
}
