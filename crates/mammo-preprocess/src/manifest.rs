//! Manifest rows: what training reads.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{PreprocessError, io_err};

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
}

impl ManifestRow {
    pub fn is_ok(&self) -> bool {
        self.status.starts_with("ok")
    }

    /// Where the point `(x, y)` of the stored DICOM image lands in this row's PNG: crop,
    /// optional mirror (about the crop box), scale, then the padding offset.
    pub fn to_output(&self, x: f64, y: f64) -> (f64, f64) {
        let dx = if self.flipped == 1 {
            self.crop_x1 as f64 - x
        } else {
            x - self.crop_x0 as f64
        };
        (
            self.offset_x as f64 + self.scale_x * dx,
            self.offset_y as f64 + self.scale_y * (y - self.crop_y0 as f64),
        )
    }

    /// A stored-image box `[x0, y0, x1, y1]` in this row's PNG, corners ordered again after a
    /// mirror.
    pub fn box_to_output(&self, [x0, y0, x1, y1]: [f64; 4]) -> [f64; 4] {
        let (xa, ya) = self.to_output(x0, y0);
        let (xb, yb) = self.to_output(x1, y1);
        [xa.min(xb), ya.min(yb), xa.max(xb), ya.max(yb)]
    }
}

/// Reads a manifest written by [`crate::run_batch`] (or by hand, with the same header).
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, PreprocessError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| PreprocessError::Csv {
        path: path.into(),
        reason: e.to_string(),
    })?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, r)| {
            r.map_err(|e| PreprocessError::Csv {
                path: path.into(),
                reason: format!("row {}: {e}", i + 2),
            })
        })
        .collect()
}

/// Writes manifest rows as CSV atomically (what `mammo gan generate` uses for its rows).
pub fn write_manifest(path: &Path, rows: &[ManifestRow]) -> Result<(), PreprocessError> {
    write_csv(path, rows)
}

/// Writes rows as CSV atomically.
pub(crate) fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), PreprocessError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| io_err(path, e))?;
    }
    let bytes = w.into_inner().map_err(|e| io_err(path, e))?;
    mammo_image::write_atomic(path, &bytes).map_err(|e| io_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

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
