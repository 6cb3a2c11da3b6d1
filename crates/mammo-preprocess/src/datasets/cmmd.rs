//! CMMD (The Chinese Mammography Database, TCIA): the clinical table and the DICOM files
//! the NBIA Data Retriever saves under `CMMD/<ID1>/<study>/<series>/1-1.dcm` (the `CMMD/`
//! level may be the root itself).
//!
//! TCIA publishes the clinical table as an Excel workbook (`CMMD_clinicaldata_revision.xlsx`);
//! this loader reads it saved as CSV (any `*clinicaldata*.csv` in the root, comma or
//! semicolon separated), columns `ID1, LeftRight, Age, number, abnormality, classification,
//! subtype`. One row describes one breast of one patient.
//!
//! - Images: every DICOM under the patient's folder; laterality and view come from the DICOM
//!   header (Image Laterality, View Position), which the table does not give per image. The
//!   image id is the SOP Instance UID (else `<ID1>_<file stem>`).
//! - Label: the row of the image's breast: `Malignant` -> 1, `Benign` -> 0. An image of a
//!   breast the table has no row for (the other breast, or a header without laterality) gets
//!   no label (empty in the manifest, left out of training): CMMD only reports the biopsied
//!   breast, and calling the other one negative would be a guess.
//! - No boxes: CMMD has no lesion annotations.

use std::collections::HashMap;
use std::path::PathBuf;

use rayon::prelude::*;

use super::{Dataset, ImageRecord, Table, dicom_files, parse_laterality};
use crate::error::PreprocessError;
use mammo_dataset::check_path_id;

/// Image Laterality, View Position, SOP Instance UID of one file.
type Header = (Option<String>, Option<String>, Option<String>);

struct BreastRow {
    label: u8,
    age: String,
    abnormality: String,
    subtype: String,
}

pub(super) fn load(ds: &mut Dataset) -> Result<(), PreprocessError> {
    let root = ds.root.clone();
    let candidates = super::files_named(&root, |n| n.contains("clinicaldata"))?;
    let table = candidates
        .iter()
        .find(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
        .ok_or_else(|| PreprocessError::Csv {
            path: root.join("CMMD_clinicaldata_revision.csv"),
            cause: if candidates.is_empty() {
                "not found (CMMD's clinical table, saved as CSV)".into()
            } else {
                format!(
                    "not found; {} is there: save its sheet as CSV beside it",
                    candidates[0].display()
                )
                .into()
            },
        })?;
    let t = Table::read(table)?;
    let c_id = t.require(&["ID1"])?;
    let c_side = t.require(&["LeftRight"])?;
    let c_class = t.require(&["classification"])?;
    let c_age = t.col(&["Age"]);
    let c_abn = t.col(&["abnormality"]);
    let c_sub = t.col(&["subtype"]);
    let mut breasts: HashMap<(String, String), (BreastRow, usize)> = HashMap::new();
    let mut patients: Vec<String> = Vec::new();
    // A patient's age from her first row, for images of a breast without a row.
    let mut ages: HashMap<String, String> = HashMap::new();
    for i in 0..t.rows.len() {
        if t.blank(i) {
            continue;
        }
        let id = t.get(i, Some(c_id)).to_string();
        check_path_id("ID1", &id).map_err(|e| t.row_err(i, e))?;
        let side = parse_laterality(t.get(i, Some(c_side))).map_err(|e| t.row_err(i, e))?;
        let class = t.get(i, Some(c_class));
        let label = match class.to_ascii_lowercase().as_str() {
            "malignant" => 1,
            "benign" => 0,
            _ => {
                return Err(t.row_err(
                    i,
                    format!("classification {class:?} is neither Malignant nor Benign"),
                ));
            }
        };
        if !patients.contains(&id) {
            patients.push(id.clone());
            ages.insert(id.clone(), t.get(i, c_age).to_string());
        }
        let row = BreastRow {
            label,
            age: t.get(i, c_age).to_string(),
            abnormality: t.get(i, c_abn).to_string(),
            subtype: t.get(i, c_sub).to_string(),
        };
        if let Some((_, first)) = breasts.insert((id.clone(), side.clone()), (row, i)) {
            return Err(t.row_err(i, format!("{id} {side} is already on row {}", first + 2)));
        }
    }

    let base = if root.join("CMMD").is_dir() {
        root.join("CMMD")
    } else {
        root.clone()
    };
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for id in &patients {
        let dir = base.join(id);
        let found = if dir.is_dir() {
            dicom_files(&dir)
        } else {
            Vec::new()
        };
        if found.is_empty() {
            ds.warnings.push(format!(
                "{}: {id} is in the clinical table but {} holds no DICOM file",
                t.path.display(),
                dir.display()
            ));
        }
        files.extend(found.into_iter().map(|f| (id.clone(), f)));
    }
    // Headers give each image its breast; read them in parallel, keep the order.
    let headers: Vec<Result<Header, String>> = files
        .par_iter()
        .map(|(_, f)| {
            let inside = std::fs::canonicalize(f)
                .map(|r| r.starts_with(&root))
                .unwrap_or(false);
            if !inside {
                return Err(format!("{}: resolves outside the root", f.display()));
            }
            let img = mammo_dicom::DicomImage::open(f).map_err(|e| e.to_string())?;
            let m = img.meta();
            Ok((
                m.laterality.clone(),
                m.view_position.clone(),
                m.sop_instance_uid.clone(),
            ))
        })
        .collect();
    let mut used: std::collections::HashSet<String> = std::collections::HashSet::new();
    for ((id, file), header) in files.into_iter().zip(headers) {
        let (lat, view, uid) = header.unwrap_or_else(|e| {
            ds.warnings.push(format!("{e} (kept, without a label)"));
            (None, None, None)
        });
        let laterality = lat
            .as_deref()
            .and_then(|l| parse_laterality(l).ok())
            .unwrap_or_default();
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("image")
            .to_string();
        let mut image_id = uid
            .filter(|u| check_path_id("image_id", u).is_ok())
            .unwrap_or_else(|| format!("{id}_{stem}"));
        if check_path_id("image_id", &image_id).is_err() {
            image_id = format!("{id}_image");
        }
        let mut n = 1;
        let first = image_id.clone();
        while !used.insert(image_id.clone()) {
            n += 1;
            image_id = format!("{first}_{n}");
        }
        let row = breasts.get(&(id.clone(), laterality.clone())).map(|r| &r.0);
        let mut other = std::collections::BTreeMap::new();
        if let Some(r) = row {
            for (k, v) in [("abnormality", &r.abnormality), ("subtype", &r.subtype)] {
                if !v.is_empty() {
                    other.insert(k.to_string(), v.clone());
                }
            }
        }
        ds.images.push(ImageRecord {
            patient_id: id.clone(),
            image_id,
            laterality,
            view: view.unwrap_or_default().to_ascii_uppercase(),
            label: row.map(|r| r.label),
            age: row
                .map(|r| r.age.clone())
                .or_else(|| ages.get(&id).cloned())
                .unwrap_or_default(),
            other,
            dicom: file,
            ..Default::default()
        });
    }
    Ok(())
}
