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
}

impl ManifestRow {
    pub fn is_ok(&self) -> bool {
        self.status.starts_with("ok")
    }
}

/// Reads a manifest written by [`crate::run_batch`] (or by hand, with the same header).
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, PreprocessError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| PreprocessError::Csv { path: path.into(), reason: e.to_string() })?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| PreprocessError::Csv { path: path.into(), reason: format!("row {}: {e}", i + 2) }))
        .collect()
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
