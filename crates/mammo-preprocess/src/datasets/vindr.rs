//! VinDr-Mammo as PhysioNet publishes it: `breast-level_annotations.csv` (one row per image:
//! `study_id, series_id, image_id, laterality, view_position, height, width, breast_birads,
//! breast_density, split`), `finding_annotations.csv` (one row per finding, the same columns
//! plus `finding_categories, finding_birads, xmin, ymin, xmax, ymax`) and the images at
//! `images/<study_id>/<image_id>.dicom` (`.dcm` is accepted too).
//!
//! - Patient id: `study_id` (the dataset has one exam per woman and no patient column).
//! - Label: VinDr has no pathology. Breast BI-RADS 4 and 5 (suspicious, biopsy advised) ->
//!   1; BI-RADS 1, 2 and 3 -> 0. The label therefore means "a radiologist called it
//!   suspicious", not "cancer"; the BI-RADS itself is kept in the manifest's `BIRADS`.
//! - Density: `DENSITY A`..`DENSITY D` -> `A`..`D`; split: `training` / `test` as given.
//! - Boxes: every finding row with coordinates (rows of `No Finding` have none), in the
//!   DICOM's pixels as the dataset gives them (floats). `finding_categories` is a Python-style
//!   list (`['Mass', 'Suspicious Calcification']`): a mass makes the box a mass, else a
//!   suspicious calcification a calcification, else it is a finding; the categories are kept
//!   in `description`, the finding's BI-RADS in `birads`. A missing `finding_annotations.csv`
//!   is a warning (no boxes).

use std::collections::HashMap;

use super::{Dataset, ImageRecord, Table, find_file, parse_laterality};
use crate::error::PreprocessError;
use mammo_dataset::check_path_id;
use mammo_dataset::{LesionBox, LesionKind};

/// `BI-RADS 4` (or `4`) -> 4.
fn birads_number(v: &str) -> Option<u32> {
    let v = v.trim();
    let v = v
        .strip_prefix("BI-RADS")
        .or_else(|| v.strip_prefix("BIRADS"))
        .unwrap_or(v);
    v.trim().parse().ok()
}

/// The list of a `finding_categories` cell.
fn categories(v: &str) -> Vec<String> {
    v.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|s| s.trim().trim_matches(['\'', '"']).trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub(super) fn load(ds: &mut Dataset) -> Result<(), PreprocessError> {
    let root = ds.root.clone();
    let breast = find_file(&root, &["breast-level_annotations.csv"]).ok_or_else(|| {
        PreprocessError::Csv {
            path: root.join("breast-level_annotations.csv"),
            cause: "not found (VinDr-Mammo's breast-level table)".into(),
        }
    })?;
    let t = Table::read(&breast)?;
    let c_study = t.require(&["study_id"])?;
    let c_image = t.require(&["image_id"])?;
    let c_lat = t.require(&["laterality"])?;
    let c_view = t.require(&["view_position"])?;
    let c_birads = t.require(&["breast_birads"])?;
    let c_density = t.col(&["breast_density"]);
    let c_split = t.col(&["split"]);
    let mut index: HashMap<String, usize> = HashMap::new();
    for i in 0..t.rows.len() {
        if t.blank(i) {
            continue;
        }
        let study = t.get(i, Some(c_study)).to_string();
        let image = t.get(i, Some(c_image)).to_string();
        check_path_id("study_id", &study).map_err(|e| t.row_err(i, e))?;
        check_path_id("image_id", &image).map_err(|e| t.row_err(i, e))?;
        let laterality = parse_laterality(t.get(i, Some(c_lat))).map_err(|e| t.row_err(i, e))?;
        let birads_text = t.get(i, Some(c_birads));
        let birads = birads_number(birads_text)
            .filter(|b| (1..=5).contains(b))
            .ok_or_else(|| {
                t.row_err(
                    i,
                    format!("breast_birads {birads_text:?} is not BI-RADS 1 to 5"),
                )
            })?;
        let density = t.get(i, c_density);
        let density = density
            .strip_prefix("DENSITY")
            .unwrap_or(density)
            .trim()
            .to_string();
        if !matches!(density.as_str(), "" | "A" | "B" | "C" | "D") {
            return Err(t.row_err(i, format!("breast_density {density:?} is not A to D")));
        }
        let dir = root.join("images").join(&study);
        let dicom = ["dicom", "dcm"]
            .iter()
            .map(|ext| dir.join(format!("{image}.{ext}")))
            .find(|p| p.is_file())
            .unwrap_or_else(|| dir.join(format!("{image}.dicom")));
        if index.insert(image.clone(), ds.images.len()).is_some() {
            return Err(t.row_err(i, format!("image_id {image} appears twice")));
        }
        ds.images.push(ImageRecord {
            patient_id: study,
            image_id: image,
            laterality,
            view: t.get(i, Some(c_view)).to_ascii_uppercase(),
            label: Some(u8::from(birads >= 4)),
            birads: birads.to_string(),
            density,
            split: t.get(i, c_split).to_string(),
            dicom,
            ..Default::default()
        });
    }

    let Some(findings) = find_file(&root, &["finding_annotations.csv"]) else {
        ds.warnings.push(format!(
            "{}: no finding_annotations.csv, so no lesion boxes",
            root.display()
        ));
        return Ok(());
    };
    let f = Table::read(&findings)?;
    let c_image = f.require(&["image_id"])?;
    let c_cat = f.col(&["finding_categories"]);
    let c_fb = f.col(&["finding_birads"]);
    let coords = [
        f.require(&["xmin"])?,
        f.require(&["ymin"])?,
        f.require(&["xmax"])?,
        f.require(&["ymax"])?,
    ];
    for i in 0..f.rows.len() {
        if f.blank(i) {
            continue;
        }
        let texts = coords.map(|c| f.get(i, Some(c)));
        if texts.iter().all(|s| s.is_empty()) {
            continue; // "No Finding"
        }
        let mut v = [0.0; 4];
        for (k, (text, name)) in texts
            .iter()
            .zip(["xmin", "ymin", "xmax", "ymax"])
            .enumerate()
        {
            v[k] = text
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| f.row_err(i, format!("{name} {text:?} is not a number")))?;
        }
        if v[0] > v[2] || v[1] > v[3] {
            return Err(f.row_err(i, format!("box {v:?} has xmin > xmax or ymin > ymax")));
        }
        let image = f.get(i, Some(c_image));
        let Some(&k) = index.get(image) else {
            return Err(f.row_err(
                i,
                format!("image_id {image:?} is not in breast-level_annotations.csv"),
            ));
        };
        let r = &ds.images[k];
        let cats = categories(f.get(i, c_cat));
        let kind = if cats.iter().any(|c| c.eq_ignore_ascii_case("mass")) {
            LesionKind::Mass
        } else if cats
            .iter()
            .any(|c| c.to_ascii_lowercase().contains("calcification"))
        {
            LesionKind::Calcification
        } else {
            LesionKind::Finding
        };
        ds.lesions.push(LesionBox {
            image_id: r.image_id.clone(),
            patient_id: r.patient_id.clone(),
            laterality: r.laterality.clone(),
            view: r.view.clone(),
            kind,
            x0: v[0],
            y0: v[1],
            x1: v[2],
            y1: v[3],
            pathology: String::new(),
            birads: birads_number(f.get(i, c_fb))
                .map(|b| b.to_string())
                .unwrap_or_default(),
            description: cats.join("; "),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_parse() {
        assert_eq!(birads_number("BI-RADS 4"), Some(4));
        assert_eq!(birads_number("5"), Some(5));
        assert_eq!(birads_number("BI-RADS"), None);
        assert_eq!(
            categories("['Mass', 'Suspicious Calcification']"),
            ["Mass", "Suspicious Calcification"]
        );
        assert_eq!(categories("[\"No Finding\"]"), ["No Finding"]);
        assert!(categories("[]").is_empty());
    }
}
