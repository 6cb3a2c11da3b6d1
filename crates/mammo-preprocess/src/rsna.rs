//! The RSNA Screening Mammography `train.csv`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use mammo_dataset::{PathIdError, check_path_id, parse_label};

use crate::error::{Cause, PreprocessError};

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
    /// The label: 1 for cancer, 0 otherwise; `None` when the column is empty (test sets).
    /// Rows from [`read_rsna_csv`] hold only spellings [`parse_label`] accepts.
    pub fn label(&self) -> Option<u8> {
        parse_label("cancer", &self.cancer)
            .ok()
            .flatten()
            .map(u8::from)
    }
}

/// The views RSNA's train.csv holds, and the other ACR / DICOM mammography view codes a
/// screening export may carry. Any other view is a warning, not an error: sites vary.
pub const KNOWN_VIEWS: [&str; 10] = [
    "CC", "MLO", "ML", "LM", "LMO", "AT", "XCCL", "XCCM", "FB", "SIO",
];

/// The id checks every RSNA CSV row gets (train.csv and test.csv): `patient_id` and
/// `image_id` can each be one path component ([`check_path_id`]).
pub(crate) fn check_row_ids(patient_id: &str, image_id: &str) -> Result<(), PathIdError> {
    check_path_id("patient_id", patient_id)?;
    check_path_id("image_id", image_id)
}

/// The last checks every RSNA CSV row gets: an unknown view is a warning (row `line` of
/// `path`, ending with what was done with it, `kept`), and, when given `seen`, an `image_id`
/// already in it is an error naming the row it was first on.
pub(crate) fn check_row_view_and_id(
    path: &Path,
    line: usize,
    view: &str,
    image_id: &str,
    kept: &str,
    seen: Option<&mut std::collections::HashMap<String, usize>>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    if !view.is_empty() && !KNOWN_VIEWS.contains(&view.to_ascii_uppercase().as_str()) {
        warnings.push(format!(
            "{}: row {line}: unknown view {view:?} (known: {}); {kept}",
            path.display(),
            KNOWN_VIEWS.join(", ")
        ));
    }
    match seen.and_then(|seen| seen.insert(image_id.to_string(), line)) {
        Some(first) => Err(format!("image_id {image_id} already on row {first}")),
        None => Ok(()),
    }
}

/// Opens a CSV file (train.csv, test.csv, a manifest) for reading; an error names it.
pub(crate) fn open_csv(path: &Path) -> Result<std::io::BufReader<std::fs::File>, PreprocessError> {
    std::fs::File::open(path)
        .map(std::io::BufReader::new)
        .map_err(|e| PreprocessError::Csv {
            path: path.into(),
            cause: e.into(),
        })
}

/// A CSV reader over `source` (fields trimmed) whose header has every `required` column;
/// otherwise an error naming the columns it has, then `hint`. `path` names the source.
pub(crate) fn csv_with_columns<R: std::io::Read>(
    source: R,
    path: &Path,
    required: &[&str],
    hint: &str,
) -> Result<csv::Reader<R>, PreprocessError> {
    let err = |cause: Cause| PreprocessError::Csv {
        path: path.into(),
        cause,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(source);
    let headers = reader.headers().map_err(|e| err(e.into()))?;
    if let Some(missing) = required.iter().find(|&&r| !headers.iter().any(|h| h == r)) {
        return Err(err(format!(
            "no {missing} column (columns: {}){hint}",
            headers.iter().collect::<Vec<_>>().join(",")
        )
        .into()));
    }
    Ok(reader)
}

/// A read train.csv: its rows, all checked, and what looked odd but was kept.
#[derive(Debug, Clone, Default)]
pub struct RsnaTable {
    pub rows: Vec<RsnaRow>,
    /// Problems that RSNA-style data really has (an unknown view), one per row, naming it.
    pub warnings: Vec<String>,
}

/// Reads and checks `train.csv`. Fails, naming the row (1-based, the header is row 1), on a
/// missing required column, a malformed row, an id that cannot be a file name
/// ([`check_path_id`]), a `cancer` value that is not a label ([`parse_label`]), a laterality
/// other than `L` or `R`, or an `image_id` seen before. An unknown view is a warning.
pub fn read_rsna_csv(path: &Path) -> Result<RsnaTable, PreprocessError> {
    read_rsna_csv_from(open_csv(path)?, path)
}

/// [`read_rsna_csv`] from any reader; `path` only names the source in errors.
pub fn read_rsna_csv_from(
    source: impl std::io::Read,
    path: &Path,
) -> Result<RsnaTable, PreprocessError> {
    let mut reader = RsnaReader::new(source, path, true)?;
    let rows = reader.by_ref().collect::<Result<_, _>>()?;
    Ok(RsnaTable {
        rows,
        warnings: reader.warnings,
    })
}

/// train.csv row by row, each row checked as [`read_rsna_csv`] checks it (an `image_id`
/// seen before only when made with `duplicates`), so that a batch can read the rows as it
/// goes instead of holding them all.
pub(crate) struct RsnaReader<R: std::io::Read> {
    rows: csv::DeserializeRecordsIntoIter<R, RsnaRow>,
    path: PathBuf,
    index: usize,
    seen: Option<std::collections::HashMap<String, usize>>,
    /// Unknown views so far, one per row.
    pub warnings: Vec<String>,
}

impl<R: std::io::Read> RsnaReader<R> {
    /// Reads the header; fails when a required column is missing.
    pub fn new(source: R, path: &Path, duplicates: bool) -> Result<Self, PreprocessError> {
        let reader = csv_with_columns(source, path, &["patient_id", "image_id"], "")?;
        Ok(Self {
            rows: reader.into_deserialize(),
            path: path.to_path_buf(),
            index: 0,
            seen: duplicates.then(std::collections::HashMap::new),
            warnings: Vec::new(),
        })
    }

    fn check(&mut self, line: usize, rec: csv::Result<RsnaRow>) -> Result<RsnaRow, Cause> {
        let mut row = rec?;
        check_row_ids(&row.patient_id, &row.image_id)?;
        parse_label("cancer", &row.cancer)?;
        row.laterality = match row.laterality.to_ascii_uppercase().as_str() {
            "" => String::new(),
            "L" => "L".into(),
            "R" => "R".into(),
            other => {
                return Err(format!("laterality {other:?} is neither L nor R (nor empty)").into());
            }
        };
        check_row_view_and_id(
            &self.path,
            line,
            &row.view,
            &row.image_id,
            "kept as is",
            self.seen.as_mut(),
            &mut self.warnings,
        )?;
        Ok(row)
    }
}

impl<R: std::io::Read> Iterator for RsnaReader<R> {
    type Item = Result<RsnaRow, PreprocessError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rec = self.rows.next()?;
        let line = self.index + 2;
        self.index += 1;
        Some(self.check(line, rec).map_err(|cause| PreprocessError::Row {
            path: self.path.clone(),
            row: line,
            cause,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "site_id,patient_id,image_id,laterality,view,age,cancer\n";

    fn read(body: &str) -> Result<RsnaTable, String> {
        let dir = std::env::temp_dir().join(format!(
            "mammo-rsna-{}-{:x}",
            std::process::id(),
            (body.len() as u64 * 2654435761) ^ body.bytes().map(u64::from).sum::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("train.csv");
        std::fs::write(&p, format!("{HEADER}{body}")).unwrap();
        let r = read_rsna_csv(&p).map_err(|e| e.to_string());
        std::fs::remove_dir_all(&dir).unwrap();
        r
    }

    #[test]
    fn a_bad_row_keeps_its_typed_cause() {
        let text = format!("{HEADER}1,10,11,L,CC,50,yes\n");
        let e = read_rsna_csv_from(text.as_bytes(), Path::new("t.csv")).unwrap_err();
        assert!(matches!(e, PreprocessError::Row { row: 2, .. }), "{e:?}");
        let cause = std::error::Error::source(&e).expect("a source");
        assert!(
            cause.downcast_ref::<mammo_dataset::LabelError>().is_some(),
            "{cause:?}"
        );
        assert!(
            e.to_string()
                .starts_with("cannot read t.csv: row 2: cancer value \"yes\""),
            "{e}"
        );
    }

    #[test]
    fn ids_that_leave_their_root_are_refused_naming_the_row() {
        for bad in [
            "../../escape",
            "..",
            ".",
            "a/b",
            "a\\b",
            "/abs",
            "c:x",
            "a\u{0}b",
            "",
        ] {
            let body = format!("1,10,11,L,CC,50,0\n1,{bad},12,L,CC,50,0\n");
            let e = read(&body).expect_err(bad);
            assert!(
                e.contains("row 3") && e.contains("patient_id"),
                "{bad:?}: {e}"
            );
            assert!(!e.contains('\u{0}'), "NUL in the message: {e:?}");
            let body = format!("1,10,{bad},L,CC,50,0\n");
            let e = read(&body).expect_err(bad);
            assert!(
                e.contains("row 2") && e.contains("image_id"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn path_id_errors_are_typed() {
        assert_eq!(
            check_path_id("image_id", ""),
            Err(PathIdError::Empty { field: "image_id" })
        );
        assert_eq!(
            check_path_id("image_id", ".."),
            Err(PathIdError::Dots {
                field: "image_id",
                value: "..".into()
            })
        );
        let e = check_path_id("patient_id", "a/b").unwrap_err();
        assert_eq!(
            e,
            PathIdError::Char {
                field: "patient_id",
                value: "a/b".into(),
                found: '/'
            }
        );
        assert_eq!(
            e.to_string(),
            "patient_id \"a/b\" holds '/', which cannot be part of a file name here"
        );
        assert_eq!(check_path_id("image_id", "12345"), Ok(()));
    }

    #[test]
    fn labels_take_rsna_spellings_and_nothing_else() {
        let t = read(
            "1,10,1,L,CC,50,1\n1,10,2,L,CC,50,0.0\n1,10,3,L,CC,50,True\n1,10,4,L,CC,50,false\n\
             1,10,5,L,CC,50,\n",
        )
        .unwrap();
        let labels: Vec<_> = t.rows.iter().map(RsnaRow::label).collect();
        assert_eq!(labels, [Some(1), Some(0), Some(1), Some(0), None]);
        for bad in ["yes", "2", "0.5", "-1", "nan"] {
            let e = read(&format!("1,10,1,L,CC,50,{bad}\n")).expect_err(bad);
            assert!(e.contains("row 2") && e.contains("cancer"), "{bad}: {e}");
        }
    }

    #[test]
    fn laterality_views_and_duplicates() {
        let e = read("1,10,1,X,CC,50,0\n").unwrap_err();
        assert!(e.contains("row 2") && e.contains("laterality"), "{e}");
        let t = read("1,10,1,l,CC,50,0\n1,10,2,,CC,50,0\n").unwrap();
        assert_eq!(t.rows[0].laterality, "L");
        assert!(t.warnings.is_empty());
        let e = read("1,10,1,L,CC,50,0\n1,11,1,R,CC,50,0\n").unwrap_err();
        assert!(e.contains("row 3") && e.contains("already on row 2"), "{e}");
        let t = read("1,10,1,L,ZZ,50,0\n").unwrap();
        assert_eq!(t.warnings.len(), 1);
        assert!(t.warnings[0].contains("row 2") && t.warnings[0].contains("ZZ"));
    }
}
