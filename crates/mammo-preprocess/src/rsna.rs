//! The RSNA Screening Mammography `train.csv`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::PreprocessError;

/// One row of `train.csv`. Only `patient_id` and `image_id` are required; every other
/// column is carried through as text when present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RsnaRow {
    #[serde(default)]
    pub site_id: String,
    pub patient_id: String,
    pub image_id: String,
    #[serde(default)]
    pub laterality: String,
    #[serde(default)]
    pub view: String,
    #[serde(default)]
    pub age: String,
    #[serde(default)]
    pub cancer: String,
    #[serde(default)]
    pub biopsy: String,
    #[serde(default)]
    pub invasive: String,
    #[serde(default, rename = "BIRADS")]
    pub birads: String,
    #[serde(default)]
    pub implant: String,
    #[serde(default)]
    pub density: String,
    #[serde(default)]
    pub machine_id: String,
    #[serde(default)]
    pub difficult_negative_case: String,
}

impl RsnaRow {
    /// The label: 1 for cancer, 0 otherwise (empty in test sets).
    pub fn label(&self) -> Option<u8> {
        match self.cancer.trim() {
            "1" => Some(1),
            "0" => Some(0),
            _ => None,
        }
    }
}

/// Reads `train.csv`; fails on a missing required column or a malformed row, naming it.
pub fn read_rsna_csv(path: &Path) -> Result<Vec<RsnaRow>, PreprocessError> {
    let err = |reason: String| PreprocessError::Csv {
        path: path.into(),
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| err(e.to_string()))?;
    let headers = reader.headers().map_err(|e| err(e.to_string()))?.clone();
    for required in ["patient_id", "image_id"] {
        if !headers.iter().any(|h| h == required) {
            return Err(err(format!(
                "no {required} column (columns: {})",
                headers.iter().collect::<Vec<_>>().join(",")
            )));
        }
    }
    let mut rows = Vec::new();
    for (i, rec) in reader.deserialize::<RsnaRow>().enumerate() {
        let row = rec.map_err(|e| err(format!("row {}: {e}", i + 2)))?;
        if row.patient_id.is_empty() || row.image_id.is_empty() {
            return Err(err(format!("row {}: empty patient_id or image_id", i + 2)));
        }
        rows.push(row);
    }
    Ok(rows)
}
