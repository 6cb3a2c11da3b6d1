//! INbreast as its authors distribute it: `INbreast.csv` (semicolon separated; the release's
//! `INbreast.xls` holds the same table and must be saved as CSV), `AllDICOMs/` with files
//! named `<File Name>_<patient hash>_MG_<L|R>_<view>_ANON.dcm`, and `AllXML/<File Name>.xml`,
//! the OsiriX property lists of the contoured findings.
//!
//! Columns read: `Laterality`, `View`, `File Name`, `ACR` (density 1-4), `Bi-Rads`, and
//! `Patient age` when it holds a number (the public table has it removed).
//!
//! - Patient id: the hash in the DICOM's file name (the table's `Patient ID` is removed), so
//!   that folds keep a woman's images together; the `File Name` when there is no DICOM.
//! - Label: from the image's BI-RADS: 4 (4a, 4b, 4c), 5 and 6 -> 1; 1 and 2 -> 0; 3 (probably
//!   benign, short-interval follow-up) -> 0 as well. INbreast's BI-RADS is the radiologist's
//!   reading (6 is biopsy-proven cancer), not pathology for every image; it is kept in the
//!   manifest's `BIRADS` for other cuts.
//! - Boxes: one per ROI of the XML (`Images` -> `ROIs` -> `Point_px`, points `(x, y)` in
//!   pixels, origin top-left): the pixels its points fall in, `[floor(min), floor(max) + 1)`,
//!   so a single-point calcification is a one-pixel box. `Name` `Mass` -> mass, names holding
//!   `calcification` or `cluster` -> calcification, anything else (distortion, asymmetry,
//!   spiculated region) -> finding; the name is kept in `description`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::plist::{Plist, parse_plist};
use super::{Dataset, ImageRecord, Table, dicom_files, find_file, parse_laterality};
use crate::error::PreprocessError;
use mammo_dataset::{LesionBox, LesionKind, check_path_id};

/// The label of an INbreast BI-RADS (`4a` -> 1, `3` -> 0).
pub(crate) fn birads_label(v: &str) -> Result<u8, String> {
    let v = v.trim().to_ascii_lowercase();
    match v.as_str() {
        "1" | "2" | "3" => Ok(0),
        "4" | "4a" | "4b" | "4c" | "5" | "6" => Ok(1),
        _ => Err(format!(
            "Bi-Rads {v:?} is not 1, 2, 3, 4, 4a, 4b, 4c, 5 or 6"
        )),
    }
}

/// `(x, y)` of a `Point_px` string.
fn point(s: &str) -> Option<(f64, f64)> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (x, y) = inner.split_once(',')?;
    let (x, y) = (x.trim().parse::<f64>().ok()?, y.trim().parse::<f64>().ok()?);
    (x.is_finite() && y.is_finite()).then_some((x, y))
}

/// The ROIs of one XML file as (name, box) pairs.
pub(crate) fn xml_boxes(path: &Path) -> Result<Vec<(String, [f64; 4])>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let plist = parse_plist(&bytes, path).map_err(|e| e.to_string())?;
    let err = |reason: String| format!("{}: {reason}", path.display());
    let images = plist
        .get("Images")
        .and_then(Plist::as_array)
        .ok_or_else(|| err("no Images array".into()))?;
    let mut out = Vec::new();
    for (ii, image) in images.iter().enumerate() {
        let Some(rois) = image.get("ROIs").and_then(Plist::as_array) else {
            continue;
        };
        for (ri, roi) in rois.iter().enumerate() {
            let at = format!("Images[{ii}].ROIs[{ri}]");
            let name = roi
                .get("Name")
                .and_then(Plist::as_str)
                .unwrap_or("")
                .to_string();
            let points = roi
                .get("Point_px")
                .and_then(Plist::as_array)
                .ok_or_else(|| err(format!("{at}: no Point_px array")))?;
            if points.is_empty() {
                return Err(err(format!("{at}: Point_px is empty")));
            }
            let mut b = [
                f64::INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NEG_INFINITY,
            ];
            for p in points {
                let (x, y) = p
                    .as_str()
                    .and_then(point)
                    .ok_or_else(|| err(format!("{at}: point {p:?} is not \"(x, y)\"")))?;
                if x < 0.0 || y < 0.0 {
                    return Err(err(format!("{at}: point ({x}, {y}) is negative")));
                }
                b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
            }
            out.push((
                name,
                [
                    b[0].floor(),
                    b[1].floor(),
                    b[2].floor() + 1.0,
                    b[3].floor() + 1.0,
                ],
            ));
        }
    }
    Ok(out)
}

pub(super) fn load(ds: &mut Dataset) -> Result<(), PreprocessError> {
    let root = ds.root.clone();
    let table = find_file(&root, &["INbreast.csv"]).ok_or_else(|| PreprocessError::Csv {
        path: root.join("INbreast.csv"),
        cause: if find_file(&root, &["INbreast.xls", "INbreast.xlsx"]).is_some() {
            "not found; INbreast.xls is there: save it as CSV beside it".into()
        } else {
            "not found (INbreast's table)".into()
        },
    })?;
    let t = Table::read(&table)?;
    let c_lat = t.require(&["Laterality"])?;
    let c_view = t.require(&["View"])?;
    let c_file = t.require(&["File Name", "FileName"])?;
    let c_birads = t.require(&["Bi-Rads", "BIRADS", "BI-RADS"])?;
    let c_acr = t.col(&["ACR"]);
    let c_age = t.col(&["Patient age"]);

    let dicom_dir = find_file(&root, &["AllDICOMs"]).unwrap_or_else(|| root.join("AllDICOMs"));
    let xml_dir = find_file(&root, &["AllXML"]).unwrap_or_else(|| root.join("AllXML"));
    let mut dicoms: HashMap<String, PathBuf> = HashMap::new();
    for f in dicom_files(&dicom_dir) {
        if let Some(name) = f.file_name().and_then(|n| n.to_str()) {
            let key = name.split(['_', '.']).next().unwrap_or(name).to_string();
            dicoms.entry(key).or_insert(f);
        }
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for i in 0..t.rows.len() {
        if t.blank(i) {
            continue;
        }
        let file = t.get(i, Some(c_file)).to_string();
        check_path_id("File Name", &file).map_err(|e| t.row_err(i, e))?;
        if let Some(first) = seen.insert(file.clone(), i) {
            return Err(t.row_err(
                i,
                format!("File Name {file} is already on row {}", first + 2),
            ));
        }
        let laterality = parse_laterality(t.get(i, Some(c_lat))).map_err(|e| t.row_err(i, e))?;
        let view = t.get(i, Some(c_view)).to_ascii_uppercase();
        if view.is_empty() {
            return Err(t.row_err(i, "empty View"));
        }
        let birads = t.get(i, Some(c_birads)).to_ascii_lowercase();
        let label = birads_label(&birads).map_err(|e| t.row_err(i, e))?;
        let acr = t.get(i, c_acr);
        if !matches!(acr, "" | "1" | "2" | "3" | "4") {
            return Err(t.row_err(i, format!("ACR {acr:?} is not 1 to 4")));
        }
        let age = t.get(i, c_age);
        let age = if age.chars().all(|c| c.is_ascii_digit()) {
            age.to_string()
        } else {
            String::new()
        };
        let (dicom, patient) = match dicoms.get(&file) {
            Some(p) => {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let hash = name.split('_').nth(1).unwrap_or("");
                let patient = if check_path_id("patient", hash).is_ok() {
                    hash.to_string()
                } else {
                    file.clone()
                };
                (p.clone(), patient)
            }
            None => {
                ds.warnings.push(format!(
                    "{}: row {}: no {}/{file}_*.dcm",
                    t.path.display(),
                    i + 2,
                    dicom_dir.display()
                ));
                (dicom_dir.join(format!("{file}.dcm")), file.clone())
            }
        };
        let xml = xml_dir.join(format!("{file}.xml"));
        if xml.is_file() {
            let inside = std::fs::canonicalize(&xml)
                .map(|r| r.starts_with(&root))
                .unwrap_or(false);
            if !inside {
                return Err(t.row_err(i, format!("{} resolves outside the root", xml.display())));
            }
            let boxes = xml_boxes(&xml).map_err(|e| t.row_err(i, e))?;
            for (name, [x0, y0, x1, y1]) in boxes {
                let lower = name.to_ascii_lowercase();
                let kind = if lower == "mass" {
                    LesionKind::Mass
                } else if lower.contains("calcification") || lower.contains("cluster") {
                    LesionKind::Calcification
                } else {
                    LesionKind::Finding
                };
                ds.lesions.push(LesionBox {
                    image_id: file.clone(),
                    patient_id: patient.clone(),
                    laterality: laterality.clone(),
                    view: view.clone(),
                    kind,
                    x0,
                    y0,
                    x1,
                    y1,
                    pathology: String::new(),
                    birads: birads.clone(),
                    description: name,
                });
            }
        }
        ds.images.push(ImageRecord {
            patient_id: patient,
            image_id: file,
            laterality,
            view,
            label: Some(label),
            birads,
            density: acr.to_string(),
            age,
            dicom,
            ..Default::default()
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birads_and_points() {
        assert_eq!(birads_label("4a"), Ok(1));
        assert_eq!(birads_label("6"), Ok(1));
        assert_eq!(birads_label("3"), Ok(0));
        assert!(birads_label("7").is_err());
        assert_eq!(point("(1604.000000, 2375.5)"), Some((1604.0, 2375.5)));
        assert_eq!(point("1, 2"), None);
    }
}
