//! The test side of RSNA Screening Mammography: `test.csv` and
//! `test_images/<patient_id>/<image_id>.dcm`, predicted per breast. Kaggle scores one
//! probability per `prediction_id`, which is `{patient_id}_{laterality}`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::batch::check_under;
use crate::error::{Cause, InputPathError, PreprocessError, io_err};
use crate::rsna::{check_row_ids, check_row_view_and_id, csv_with_columns, open_csv};

/// One image of `test.csv`, checked. The other columns (`site_id`, `age`, `implant`,
/// `machine_id`) are not needed to predict and are not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsnaTestRow {
    pub patient_id: String,
    pub image_id: String,
    /// `L` or `R`.
    pub laterality: String,
    pub view: String,
    /// `{patient_id}_{laterality}`: the breast, and the submission's row.
    pub prediction_id: String,
}

/// `test.csv` as serde sees it; every column but the three required ones may be absent.
#[derive(Debug, Deserialize)]
struct RawRow {
    patient_id: String,
    image_id: String,
    laterality: String,
    #[serde(default)]
    view: String,
    #[serde(default)]
    prediction_id: String,
}

/// The breast an image belongs to, as Kaggle names it.
pub fn prediction_id(patient_id: &str, laterality: &str) -> String {
    format!("{patient_id}_{laterality}")
}

/// Reads and checks an RSNA `test.csv`. Fails, naming the row (1-based, the header is row
/// 1), on a missing `patient_id`, `image_id` or `laterality` column, a malformed row, an id
/// that cannot be a file name ([`check_path_id`](mammo_dataset::check_path_id): nothing may
/// name a file outside `test_images/`), a laterality other than `L` or `R` (any case), an
/// `image_id` seen before, or a `prediction_id` other than `{patient_id}_{laterality}` (an
/// empty one is filled in).
/// A file without rows is an error too. An unknown view is a warning.
pub fn read_rsna_test_csv_from(
    source: impl std::io::Read,
    path: &Path,
) -> Result<(Vec<RsnaTestRow>, Vec<String>), PreprocessError> {
    let err = |cause: Cause| PreprocessError::Csv {
        path: path.into(),
        cause,
    };
    let mut reader = csv_with_columns(
        source,
        path,
        &["patient_id", "image_id", "laterality"],
        "; an RSNA test.csv has site_id, patient_id, image_id, laterality, view, age, implant, \
         machine_id, prediction_id",
    )?;
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, rec) in reader.deserialize::<RawRow>().enumerate() {
        let line = i + 2;
        let row_err = |cause: Cause| PreprocessError::Row {
            path: path.into(),
            row: line,
            cause,
        };
        let raw = rec.map_err(|e| row_err(e.into()))?;
        check_row_ids(&raw.patient_id, &raw.image_id).map_err(|e| row_err(e.into()))?;
        let laterality = match raw.laterality.to_ascii_uppercase().as_str() {
            "L" => "L",
            "R" => "R",
            other => {
                return Err(row_err(format!(
                    "laterality {other:?} is neither L nor R (each breast is predicted on its own)"
                ).into()));
            }
        };
        let expected = prediction_id(&raw.patient_id, laterality);
        if !raw.prediction_id.is_empty() && raw.prediction_id != expected {
            return Err(row_err(
                format!(
                    "prediction_id {:?} is not patient_id_laterality {expected:?}",
                    raw.prediction_id
                )
                .into(),
            ));
        }
        check_row_view_and_id(
            path,
            line,
            &raw.view,
            &raw.image_id,
            "predicted all the same",
            Some(&mut seen),
            &mut warnings,
        )
        .map_err(|e| row_err(e.into()))?;
        rows.push(RsnaTestRow {
            patient_id: raw.patient_id,
            image_id: raw.image_id,
            laterality: laterality.into(),
            view: raw.view,
            prediction_id: expected,
        });
    }
    if rows.is_empty() {
        return Err(err("no rows: nothing to predict".into()));
    }
    Ok((rows, warnings))
}

/// An RSNA-layout test set: `DIR/test.csv` read and checked, and `DIR/test_images/`.
#[derive(Debug, Clone)]
pub struct RsnaTestSet {
    /// `DIR/test.csv`.
    pub csv: PathBuf,
    /// `DIR/test_images`, canonical: every image must resolve inside it.
    pub images: PathBuf,
    /// In the order of `test.csv`.
    pub rows: Vec<RsnaTestRow>,
    /// What looked odd but was kept (an unknown view), each naming its row.
    pub warnings: Vec<String>,
}

impl RsnaTestSet {
    /// Reads `dir/test.csv` ([`read_rsna_test_csv_from`]'s checks) and finds
    /// `dir/test_images/`. Images are not opened here: a missing or broken one is that
    /// image's failure ([`RsnaTestSet::dicom`]), not the set's.
    pub fn open(dir: &Path) -> Result<Self, PreprocessError> {
        let csv = dir.join("test.csv");
        let (rows, warnings) = read_rsna_test_csv_from(open_csv(&csv)?, &csv)?;
        let images = dir.join("test_images");
        let images = std::fs::canonicalize(&images).map_err(|e| io_err(&images, e))?;
        if !images.is_dir() {
            return Err(io_err(&images, "not a folder"));
        }
        Ok(Self {
            csv,
            images,
            rows,
            warnings,
        })
    }

    /// `test_images/<patient_id>/<image_id>.dcm` of `row`, once it is known to resolve
    /// (symbolic links followed) inside `test_images/`; otherwise why not, naming the file.
    pub fn dicom(&self, row: &RsnaTestRow) -> Result<PathBuf, InputPathError> {
        let file = self
            .images
            .join(&row.patient_id)
            .join(format!("{}.dcm", row.image_id));
        check_under(&file, &self.images, "test_images")?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "site_id,patient_id,image_id,laterality,view,age,implant,machine_id,prediction_id\n";

    fn read(body: &str) -> Result<Vec<RsnaTestRow>, String> {
        read_rsna_test_csv_from(body.as_bytes(), Path::new("/t/test.csv"))
            .map(|(rows, _)| rows)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_kaggles_columns_and_fills_the_prediction_id() {
        let rows = read(&format!(
            "{HEADER}2,10008,736471439,L,MLO,81,0,21,10008_L\n2,10008,1591370361,l,CC,81,0,21,\n"
        ))
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].prediction_id, "10008_L");
        assert_eq!(rows[1].laterality, "L");
        assert_eq!(rows[1].prediction_id, "10008_L");
        // Only the three columns prediction needs are required, in any order.
        let rows = read("laterality,image_id,patient_id\nR,5,4\n").unwrap();
        assert_eq!(rows[0].prediction_id, "4_R");
    }

    #[test]
    fn errors_name_the_file_the_row_and_the_value() {
        let e = read(&format!(
            "{HEADER}2,10,1,L,CC,50,0,21,10_L\n2,10,2,R,CC,50,0,21,10_L\n"
        ))
        .unwrap_err();
        assert_eq!(
            e,
            "cannot read /t/test.csv: row 3: prediction_id \"10_L\" is not patient_id_laterality \
             \"10_R\""
        );
        let e = read("patient_id,image_id\n1,2\n").unwrap_err();
        assert!(
            e.starts_with(
                "cannot read /t/test.csv: no laterality column (columns: patient_id,image_id)"
            ),
            "{e}"
        );
        let e = read(&format!("{HEADER}2,10,1,B,CC,50,0,21,\n")).unwrap_err();
        assert!(e.contains("row 2: laterality \"B\""), "{e}");
        let e = read(&format!("{HEADER}2,10,1,,CC,50,0,21,\n")).unwrap_err();
        assert!(e.contains("row 2: laterality \"\""), "{e}");
        let e = read(&format!(
            "{HEADER}2,10,1,L,CC,50,0,21,\n2,11,1,R,CC,50,0,21,\n"
        ))
        .unwrap_err();
        assert!(e.contains("row 3: image_id 1 already on row 2"), "{e}");
        let e = read(&format!("{HEADER}2,10,1,L\n")).unwrap_err();
        assert!(e.contains("row 2"), "{e}");
        let e = read(HEADER).unwrap_err();
        assert!(e.ends_with("no rows: nothing to predict"), "{e}");
    }

    #[test]
    fn ids_that_leave_test_images_are_refused() {
        for bad in [
            "..", ".", "../x", "a/b", "a\\b", "/abs", "c:x", "a\u{0}b", "",
        ] {
            let e = read(&format!("{HEADER}2,{bad},1,L,CC,50,0,21,\n")).expect_err(bad);
            assert!(
                e.contains("row 2: ") && e.contains("patient_id"),
                "{bad:?}: {e}"
            );
            let e = read(&format!("{HEADER}2,10,{bad},L,CC,50,0,21,\n")).expect_err(bad);
            assert!(
                e.contains("row 2: ") && e.contains("image_id"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn unknown_views_warn() {
        let (_, w) = read_rsna_test_csv_from(
            format!("{HEADER}2,10,1,L,ZZ,50,0,21,\n").as_bytes(),
            Path::new("t.csv"),
        )
        .unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("row 2") && w[0].contains("ZZ"), "{w:?}");
    }

    #[cfg(unix)]
    #[test]
    fn images_resolve_inside_test_images_or_fail_alone() {
        let dir = std::env::temp_dir().join(format!("mammo-rsna-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let set = dir.join("set");
        std::fs::create_dir_all(set.join("test_images/10")).unwrap();
        std::fs::write(dir.join("secret.dcm"), b"x").unwrap();
        std::fs::write(set.join("test_images/10/1.dcm"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.join("secret.dcm"), set.join("test_images/10/2.dcm"))
            .unwrap();
        std::fs::write(
            set.join("test.csv"),
            format!("{HEADER}2,10,1,L,CC,50,0,21,\n2,10,2,L,MLO,50,0,21,\n2,10,3,R,CC,50,0,21,\n"),
        )
        .unwrap();
        let t = RsnaTestSet::open(&set).unwrap();
        assert!(
            t.dicom(&t.rows[0])
                .unwrap()
                .ends_with("test_images/10/1.dcm")
        );
        let e = t.dicom(&t.rows[1]).unwrap_err();
        assert!(matches!(e, InputPathError::Outside { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("outside test_images"), "{e}");
        let e = t.dicom(&t.rows[2]).unwrap_err();
        assert!(matches!(e, InputPathError::NotFound { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.ends_with("10/3.dcm: no such file"), "{e}");
        std::fs::remove_dir_all(set.join("test_images")).unwrap();
        let e = RsnaTestSet::open(&set).unwrap_err().to_string();
        assert!(e.contains("test_images"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
