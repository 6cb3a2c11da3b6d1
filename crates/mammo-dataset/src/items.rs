//! The images a model trains and is validated on: a manifest's usable rows as labelled
//! [`Item`]s, and their cross-validation folds.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, RowError};
use crate::manifest::{ManifestRow, read_manifest};

/// One usable image of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub image_id: String,
    pub patient_id: String,
    pub laterality: String,
    /// 1 cancer, 0 not (the form metrics take).
    pub label: u8,
    pub synthetic: bool,
    /// A synthetic item made for the training of this fold only (`None`: every fold).
    pub synthetic_fold: Option<usize>,
    /// Absolute (or manifest-relative resolved) PNG path.
    pub path: PathBuf,
}

/// The usable rows of a manifest and what was left out.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub manifest: PathBuf,
    pub items: Vec<Item>,
    /// `[height, width]` shared by every image.
    pub size: [usize; 2],
    /// Rows skipped because preprocessing failed for them.
    pub skipped_failed: usize,
}

impl Dataset {
    /// Reads `manifest.csv` (from preprocessing, or generated rows). Rows that failed
    /// preprocessing are skipped and counted; a row without a label, or of a size that differs
    /// from the first row's, is an error naming the row.
    pub fn from_manifest(path: &Path) -> Result<Self, DatasetError> {
        Self::from_rows(path, &read_manifest(path)?)
    }

    /// [`Self::from_manifest`] from rows already read from `path`.
    pub fn from_rows(path: &Path, rows: &[ManifestRow]) -> Result<Self, DatasetError> {
        let base = path.parent().unwrap_or(Path::new("."));
        let bad = |i: usize, cause: RowError| DatasetError::Row {
            path: path.into(),
            row: i + 2,
            cause,
        };
        let mut items = Vec::with_capacity(rows.len());
        let mut size: Option<[usize; 2]> = None;
        let mut skipped_failed = 0;
        for (i, r) in rows.iter().enumerate() {
            if !r.is_ok() {
                skipped_failed += 1;
                continue;
            }
            let label = r.label.ok_or_else(|| {
                bad(
                    i,
                    RowError::Unlabelled {
                        image_id: r.image_id.clone(),
                    },
                )
            })?;
            let s = [r.height as usize, r.width as usize];
            match size {
                None => size = Some(s),
                Some(first) if first != s => {
                    let image_id = r.image_id.clone();
                    return Err(bad(
                        i,
                        RowError::Size {
                            image_id,
                            size: s,
                            first,
                        },
                    ));
                }
                _ => {}
            }
            // Rows built in code get the checks `read_manifest` gives every row it reads.
            r.check().map_err(|e| bad(i, e))?;
            items.push(Item {
                image_id: r.image_id.clone(),
                patient_id: r.patient_id.clone(),
                laterality: r.laterality.clone(),
                label: label.into(),
                synthetic: r.synthetic,
                synthetic_fold: r.synthetic_fold,
                path: r.png_path(base),
            });
        }
        let size = size.ok_or_else(|| DatasetError::Empty { path: path.into() })?;
        Ok(Self {
            manifest: path.to_path_buf(),
            items,
            size,
            skipped_failed,
        })
    }

    pub fn positives(&self) -> usize {
        self.items.iter().filter(|i| i.label == 1).count()
    }
}

/// How images are assigned to cross-validation folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Stratified by label and grouped by patient: all images of one patient share a fold.
    Patient,
    /// Stratified by label per image, as in the paper (a patient's other views can land in
    /// validation).
    Image,
}

/// The fold of each item, the one place folds are made: `Some(k)` for real images, `None`
/// for synthetic ones (they only ever join training sets, never validation). A pure function
/// of the real items' labels (and patients, for [`Split::Patient`]), `k` and `seed`.
pub fn assign_folds(
    items: &[Item],
    split: Split,
    k: usize,
    seed: u64,
) -> Result<Vec<Option<usize>>, DatasetError> {
    let real: Vec<usize> = (0..items.len()).filter(|&i| !items[i].synthetic).collect();
    let labels: Vec<u8> = real.iter().map(|&i| items[i].label).collect();
    let folds = match split {
        Split::Image => mammo_eval::stratified_kfold(&labels, k, seed),
        Split::Patient => {
            let groups: Vec<&str> = real.iter().map(|&i| items[i].patient_id.as_str()).collect();
            mammo_eval::stratified_group_kfold(&labels, &groups, k, seed)
        }
    }
    .map_err(|cause| DatasetError::Folds { k, cause })?;
    let mut out = vec![None; items.len()];
    for (&i, f) in real.iter().zip(folds) {
        out[i] = Some(f);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Status;

    fn row(i: usize, label: Option<bool>) -> ManifestRow {
        ManifestRow {
            patient_id: format!("p{}", i / 2),
            image_id: format!("i{i}"),
            label,
            path: format!("p{}/i{i}.png", i / 2),
            height: 8,
            width: 6,
            ..ManifestRow::default()
        }
    }

    #[test]
    fn usable_rows_become_items_and_bad_ones_are_named() {
        let mut rows: Vec<_> = (0..6).map(|i| row(i, Some(i % 3 == 0))).collect();
        rows[4].status = Status::Failed("no pixel data".into());
        let d = Dataset::from_rows(Path::new("/d/m.csv"), &rows).unwrap();
        assert_eq!((d.items.len(), d.skipped_failed, d.size), (5, 1, [8, 6]));
        assert_eq!(d.positives(), 2);
        assert_eq!(d.items[1].path, Path::new("/d/p0/i1.png"));

        rows[2].label = None;
        let e = Dataset::from_rows(Path::new("m.csv"), &rows).unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.csv: row 4: image i2 has no label; training needs 0 or 1"
        );
        rows[2].label = Some(false);
        rows[3].width = 7;
        let e = Dataset::from_rows(Path::new("m.csv"), &rows).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("m.csv: row 5: image i3 is 7x8 but earlier images are 6x8"),
            "{e}"
        );
        let failed: Vec<_> = rows
            .iter()
            .map(|r| ManifestRow {
                status: Status::Failed(String::new()),
                ..r.clone()
            })
            .collect();
        let e = Dataset::from_rows(Path::new("m.csv"), &failed).unwrap_err();
        assert_eq!(e.to_string(), "m.csv: no usable rows");
    }

    #[test]
    fn folds_keep_patients_together_and_synthetic_items_out() {
        let mut rows: Vec<_> = (0..40).map(|i| row(i, Some(i % 4 == 0))).collect();
        rows[39].synthetic = true;
        let d = Dataset::from_rows(Path::new("m.csv"), &rows).unwrap();
        let folds = assign_folds(&d.items, Split::Patient, 4, 7).unwrap();
        assert_eq!(folds[39], None);
        for i in (0..38).step_by(2) {
            assert_eq!(folds[i], folds[i + 1], "patient p{}", i / 2);
        }
        assert_eq!(folds, assign_folds(&d.items, Split::Patient, 4, 7).unwrap());
        let e = assign_folds(&d.items, Split::Image, 1, 7).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot make 1 folds: 1 folds requested: at least 2 are needed"
        );
    }
}
