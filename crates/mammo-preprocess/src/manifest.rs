//! Manifest rows: what training reads.

use std::path::Path;

use serde::{Deserialize, Serialize};

use mammo_image::Rect;

use crate::error::{PreprocessError, io_err};
use crate::mapping::SourceMap;

/// One row of `OUT/<size>/manifest.csv`: the RSNA columns, the label, where the PNG is and
/// how it was made (so that lesion coordinates can be mapped into it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManifestRow {
    pub patient_id: String,
    pub image_id: String,
    pub laterality: String,
    pub view: String,
    /// 1 cancer, 0 not, empty unknown.
    pub label: String,
    pub site_id: String,
    pub machine_id: String,
    pub age: String,
    pub density: String,
    pub biopsy: String,
    pub invasive: String,
    #[serde(rename = "BIRADS")]
    pub birads: String,
    pub implant: String,
    pub difficult_negative_case: String,
    /// 1 for generated (synthetic) images, which only ever join training folds.
    pub synthetic: u8,
    /// PNG path relative to the manifest's folder.
    pub path: String,
    pub height: u32,
    pub width: u32,
    pub source_width: u32,
    pub source_height: u32,
    pub decode_reduce: u32,
    pub crop_x0: u32,
    pub crop_y0: u32,
    pub crop_x1: u32,
    pub crop_y1: u32,
    pub flipped: u8,
    /// Output pixels per stored-image pixel.
    pub scale_x: f64,
    pub scale_y: f64,
    pub offset_x: u32,
    pub offset_y: u32,
    pub voi: String,
    pub inverted: u8,
    /// `ok`, `ok-no-breast-found` (whole image kept) or `failed: reason`.
    pub status: String,
    /// For a synthetic row: the one cross-validation fold whose *training* set it joins
    /// (its generator was trained without that fold's validation images); empty: every
    /// fold's. Absent in older manifests.
    #[serde(default)]
    pub synthetic_fold: String,
    /// The dataset's own split (`training`, `test`; VinDr-Mammo, CBIS-DDSM), empty when it has
    /// none. Absent in older manifests.
    #[serde(default)]
    pub split: String,
}

impl ManifestRow {
    pub fn is_ok(&self) -> bool {
        self.status.starts_with("ok")
    }

    /// The row's label through [`crate::rsna::parse_label`], the one parser of every RSNA
    /// spelling (`1`, `1.0`, `True`, ...): `Some(true)` cancer, `Some(false)` not, `None`
    /// unlabelled or not a label.
    pub fn cancer(&self) -> Option<bool> {
        crate::rsna::parse_label(&self.label)
            .ok()
            .flatten()
            .map(|l| l == 1)
    }

    /// How this row's stored DICOM image maps into its PNG (crop, mirror, scale, padding).
    pub fn mapping(&self) -> SourceMap {
        SourceMap {
            crop: Rect {
                x0: self.crop_x0,
                y0: self.crop_y0,
                x1: self.crop_x1,
                y1: self.crop_y1,
            },
            flipped: self.flipped == 1,
            scale_x: self.scale_x,
            scale_y: self.scale_y,
            offset_x: self.offset_x,
            offset_y: self.offset_y,
        }
    }

    /// Where the point `(x, y)` of the stored DICOM image lands in this row's PNG: crop,
    /// optional mirror (about the crop box), scale, then the padding offset.
    pub fn to_output(&self, x: f64, y: f64) -> (f64, f64) {
        self.mapping().to_output(x, y)
    }

    /// A stored-image box `[x0, y0, x1, y1]` in this row's PNG, corners ordered again after a
    /// mirror.
    pub fn box_to_output(&self, b: [f64; 4]) -> [f64; 4] {
        self.mapping().box_to_output(b)
    }
}

/// Reads a manifest written by [`crate::run_batch`] (or by hand, with the same header).
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, PreprocessError> {
    read_manifest_from(crate::rsna::open_csv(path)?, path)
}

/// [`read_manifest`] from any reader; `path` only names the source in errors.
pub fn read_manifest_from(
    source: impl std::io::Read,
    path: &Path,
) -> Result<Vec<ManifestRow>, PreprocessError> {
    let mut reader = csv::Reader::from_reader(source);
    reader
        .deserialize()
        .enumerate()
        .map(|(i, r)| {
            let err = |reason: String| PreprocessError::Csv {
                path: path.into(),
                reason: format!("row {}: {reason}", i + 2),
            };
            let row: ManifestRow = r.map_err(|e| err(e.to_string()))?;
            check_row_paths(&row).map_err(err)?;
            Ok(row)
        })
        .collect()
}

/// Ids become output file names (heat maps, predictions) and `path` is read: an id must be
/// one path component, and a relative `path` must stay inside the manifest's folder.
/// Absolute paths are taken as they are (manifests merged by `mammo gan generate
/// --with-manifest` and the experiment hold them).
fn check_row_paths(row: &ManifestRow) -> Result<(), String> {
    crate::rsna::check_path_id("patient_id", &row.patient_id).map_err(|e| e.to_string())?;
    crate::rsna::check_path_id("image_id", &row.image_id).map_err(|e| e.to_string())?;
    let p = Path::new(&row.path);
    if row.path.contains('\0') {
        return Err(format!("path {:?} holds a NUL byte", row.path));
    }
    if p.is_relative()
        && p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!(
            "path {:?} leaves the manifest's folder ('..'); give it relative to the folder, \
             or absolute",
            row.path
        ));
    }
    Ok(())
}

/// Writes manifest rows as CSV atomically (what `mammo gan generate` uses for its rows).
pub fn write_manifest(path: &Path, rows: &[ManifestRow]) -> Result<(), PreprocessError> {
    write_csv(path, rows)
}

/// Writes rows as CSV atomically.
pub(crate) fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), PreprocessError> {
    mammo_io::write_csv(path, rows).map_err(|e| io_err(path, e.cause))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_labels_read_every_rsna_spelling() {
        let cancer = |label: &str| {
            ManifestRow {
                label: label.into(),
                ..ManifestRow::default()
            }
            .cancer()
        };
        for s in ["1", "1.0", "True", "true", " 1 "] {
            assert_eq!(cancer(s), Some(true), "{s:?}");
        }
        for s in ["0", "0.0", "False", "false"] {
            assert_eq!(cancer(s), Some(false), "{s:?}");
        }
        for s in ["", "2", "yes", "1.5", "NaN"] {
            assert_eq!(cancer(s), None, "{s:?}");
        }
    }

    #[test]
    fn stored_points_map_into_the_png() {
        let mut r = ManifestRow {
            crop_x0: 100,
            crop_x1: 500,
            crop_y0: 50,
            scale_x: 0.5,
            scale_y: 0.5,
            offset_x: 3,
            offset_y: 7,
            ..Default::default()
        };
        assert_eq!(r.to_output(100.0, 50.0), (3.0, 7.0));
        assert_eq!(r.to_output(300.0, 250.0), (103.0, 107.0));
        r.flipped = 1; // mirrored about the crop box: its right edge becomes x = offset
        assert_eq!(r.to_output(500.0, 50.0), (3.0, 7.0));
        assert_eq!(r.to_output(300.0, 250.0), (103.0, 107.0));
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;

    fn manifest_with(patient: &str, image: &str, path: &str) -> String {
        let row = ManifestRow {
            patient_id: patient.into(),
            image_id: image.into(),
            path: path.into(),
            status: "ok".into(),
            ..ManifestRow::default()
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&row).unwrap();
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn manifest_ids_and_paths_stay_in_their_folder() {
        let read = |p: &str, i: &str, path: &str| {
            read_manifest_from(manifest_with(p, i, path).as_bytes(), Path::new("m.csv"))
        };
        assert!(read("10", "100", "10/100.png").is_ok());
        assert!(read("syn-0-00001", "syn-0-00001", "/abs/images/syn-0-00001.png").is_ok());
        let err = read("10", "100", "../../etc/passwd")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("row 2") && err.contains("leaves the manifest's folder"),
            "{err}"
        );
        let err = read("../x", "100", "10/100.png").unwrap_err().to_string();
        assert!(err.contains("row 2") && err.contains("patient_id"), "{err}");
        let err = read("10", "a/b", "10/100.png").unwrap_err().to_string();
        assert!(err.contains("image_id"), "{err}");
    }
}
