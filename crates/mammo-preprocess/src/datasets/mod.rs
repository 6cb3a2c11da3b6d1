//! Public mammography datasets, each read from its documented layout into one shape: typed
//! image records (what becomes a manifest row) and lesion boxes in stored-image pixels (what
//! becomes `lesions.csv`, the file `mammo explain --truth` scores against).
//!
//! | kind        | layout under the root                                                    |
//! |-------------|--------------------------------------------------------------------------|
//! | `rsna`      | `train.csv`, `train_images/<patient_id>/<image_id>.dcm`                  |
//! | `cbis-ddsm` | `*case_description*.csv` (TCIA), the TCIA folders, optionally in `CBIS-DDSM/` |
//! | `vindr`     | `breast-level_annotations.csv`, `finding_annotations.csv`, `images/<study_id>/<image_id>.dicom` |
//! | `cmmd`      | the clinical table as CSV, `CMMD/<ID1>/.../*.dcm` (or `<ID1>/...`)       |
//! | `inbreast`  | `INbreast.csv`, `AllDICOMs/<File Name>_*.dcm`, `AllXML/<File Name>.xml`  |
//!
//! Every path taken from a table is checked to stay under the root ([`safe_join`]); a
//! malformed row is an error naming the file and the row (1-based, the header is row 1);
//! what is missing on disk (a DICOM, a mask) is a warning here and a reported failure of that
//! one image in the batch.

mod cbis_ddsm;
mod cmmd;
mod inbreast;
mod plist;
mod vindr;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::error::{Cause, PreprocessError};
use crate::rsna::{RsnaRow, read_rsna_csv};
use mammo_dataset::{LesionBox, check_path_id};

pub use cbis_ddsm::mask_box;
pub use plist::{Plist, PlistError, parse_plist};

/// The datasets `mammo preprocess --dataset` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum DatasetKind {
    /// RSNA Screening Mammography (and `mammo phantom`'s output).
    Rsna,
    /// CBIS-DDSM (TCIA): scanned film, pathology-proven masses and calcifications.
    CbisDdsm,
    /// VinDr-Mammo (PhysioNet): breast-level BI-RADS and density, finding boxes.
    Vindr,
    /// CMMD, the Chinese Mammography Database (TCIA): biopsy-confirmed breast labels.
    Cmmd,
    /// INbreast: full-field digital, BI-RADS per image, contoured findings.
    Inbreast,
}

impl DatasetKind {
    /// Every kind, in the order the command line lists them.
    pub const ALL: [DatasetKind; 5] = [
        Self::CbisDdsm,
        Self::Vindr,
        Self::Cmmd,
        Self::Inbreast,
        Self::Rsna,
    ];

    /// The name `--dataset` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsna => "rsna",
            Self::CbisDdsm => "cbis-ddsm",
            Self::Vindr => "vindr",
            Self::Cmmd => "cmmd",
            Self::Inbreast => "inbreast",
        }
    }
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .or(match s.as_str() {
                "cbis" | "cbis_ddsm" | "cbisddsm" => Some(Self::CbisDdsm),
                "vindr-mammo" | "vindr_mammo" => Some(Self::Vindr),
                _ => None,
            })
            .ok_or_else(|| {
                format!(
                    "--dataset {s:?}: expected one of {}",
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }
}

/// One image of a dataset: what its manifest row will say and where its DICOM is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImageRecord {
    /// One path component (the PNG goes to `<size>/<patient_id>/<image_id>.png`).
    pub patient_id: String,
    /// One path component, unique in the dataset; the key of `lesions.csv`.
    pub image_id: String,
    /// `L`, `R`, or empty (then the pipeline reads it from the DICOM header).
    pub laterality: String,
    /// `CC`, `MLO`, ... as the dataset spells it; may be empty.
    pub view: String,
    /// 1 positive, 0 negative, `None` unknown; each loader's rule is on its module.
    pub label: Option<u8>,
    /// The BI-RADS assessment as the dataset gives it (`4`, `4a`, ...), or empty.
    pub birads: String,
    /// Breast density as the dataset gives it (ACR `1`-`4` or `A`-`D`), or empty.
    pub density: String,
    /// The dataset's own split (`training`, `test`), or empty.
    pub split: String,
    pub age: String,
    /// Other columns carried into the manifest where it has a place for them (`site_id`,
    /// `machine_id`, `biopsy`, `invasive`, `implant`, `difficult_negative_case`).
    pub other: BTreeMap<String, String>,
    /// The DICOM file, under the dataset's root (it may be missing: the batch reports it).
    pub dicom: PathBuf,
}

impl ImageRecord {
    /// The record as a train.csv row, the shape the batch driver carries into the manifest.
    pub fn to_rsna_row(&self) -> RsnaRow {
        let other = |k: &str| self.other.get(k).cloned().unwrap_or_default();
        RsnaRow {
            site_id: other("site_id"),
            patient_id: self.patient_id.clone(),
            image_id: self.image_id.clone(),
            laterality: self.laterality.clone(),
            view: self.view.clone(),
            age: self.age.clone(),
            cancer: self.label.map(|l| l.to_string()).unwrap_or_default(),
            biopsy: other("biopsy"),
            invasive: other("invasive"),
            birads: self.birads.clone(),
            implant: other("implant"),
            density: self.density.clone(),
            machine_id: other("machine_id"),
            difficult_negative_case: other("difficult_negative_case"),
        }
    }
}

/// A dataset read from its root.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub kind: DatasetKind,
    /// The root, canonical.
    pub root: PathBuf,
    pub images: Vec<ImageRecord>,
    pub lesions: Vec<LesionBox>,
    /// What was kept despite a problem (a mask that could not be read, a DICOM not found),
    /// each naming the file and, where there is one, the row.
    pub warnings: Vec<String>,
}

/// Reads the dataset of `kind` under `root` (see the module docs for each layout).
pub fn load_dataset(kind: DatasetKind, root: &Path) -> Result<Dataset, PreprocessError> {
    let root = std::fs::canonicalize(root).map_err(|e| crate::error::io_err(root, e))?;
    if !root.is_dir() {
        return Err(crate::error::io_err(&root, "not a folder"));
    }
    let mut ds = Dataset {
        kind,
        root: root.clone(),
        images: Vec::new(),
        lesions: Vec::new(),
        warnings: Vec::new(),
    };
    match kind {
        DatasetKind::Rsna => load_rsna(&mut ds)?,
        DatasetKind::CbisDdsm => cbis_ddsm::load(&mut ds)?,
        DatasetKind::Vindr => vindr::load(&mut ds)?,
        DatasetKind::Cmmd => cmmd::load(&mut ds)?,
        DatasetKind::Inbreast => inbreast::load(&mut ds)?,
    }
    let mut seen = std::collections::HashSet::new();
    for r in &ds.images {
        // Loaders build ids to these rules; a failure here is a loader bug, said plainly.
        check_path_id("patient_id", &r.patient_id)
            .and_then(|_| check_path_id("image_id", &r.image_id))
            .map_err(|e| PreprocessError::Loader {
                kind,
                cause: e.into(),
            })?;
        if !seen.insert(r.image_id.as_str()) {
            return Err(PreprocessError::Loader {
                kind,
                cause: format!("image_id {} twice", r.image_id).into(),
            });
        }
    }
    Ok(ds)
}

/// RSNA: `train.csv` and `train_images/<patient_id>/<image_id>.dcm`; the label is the
/// `cancer` column. A `lesions.csv` beside `train.csv` (the phantom's) is read too.
/// The files directly in `root` whose lower-cased name `wanted` accepts, sorted.
fn files_named(
    root: &Path,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<PathBuf>, PreprocessError> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| crate::error::io_err(root, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .map(str::to_ascii_lowercase)
                .is_some_and(|n| wanted(&n))
        })
        .collect();
    found.sort();
    Ok(found)
}

fn load_rsna(ds: &mut Dataset) -> Result<(), PreprocessError> {
    let table = read_rsna_csv(&ds.root.join("train.csv"))?;
    ds.warnings.extend(table.warnings);
    for row in table.rows {
        let mut other = BTreeMap::new();
        for (k, v) in [
            ("site_id", &row.site_id),
            ("machine_id", &row.machine_id),
            ("biopsy", &row.biopsy),
            ("invasive", &row.invasive),
            ("implant", &row.implant),
            ("difficult_negative_case", &row.difficult_negative_case),
        ] {
            if !v.is_empty() {
                other.insert(k.to_string(), v.clone());
            }
        }
        ds.images.push(ImageRecord {
            dicom: ds
                .root
                .join("train_images")
                .join(&row.patient_id)
                .join(format!("{}.dcm", row.image_id)),
            label: row.label(),
            patient_id: row.patient_id,
            image_id: row.image_id,
            laterality: row.laterality,
            view: row.view,
            birads: row.birads,
            density: row.density,
            age: row.age,
            split: String::new(),
            other,
        });
    }
    let lesions = ds.root.join("lesions.csv");
    if lesions.is_file() {
        let boxes = mammo_dataset::read_lesions_csv(&lesions)?;
        ds.lesions.extend(boxes);
    }
    Ok(())
}

/// Joins a relative path from a table onto `root`, refusing what could leave it: empty,
/// absolute (`/x`, `\x`, `C:x`), a `..` component, NUL or another control character. `/`
/// and `\` both separate components. Symbolic links are the batch's check (it resolves each
/// file and requires it under the root).
pub fn safe_join(root: &Path, rel: &str) -> Result<PathBuf, RelPathError> {
    let err = |kind| RelPathError {
        path: rel.to_string(),
        kind,
    };
    if rel.is_empty() {
        return Err(err(RelPathProblem::Empty));
    }
    if let Some(c) = rel.chars().find(|c| c.is_control()) {
        return Err(err(RelPathProblem::Control(c)));
    }
    if rel.starts_with('/') || rel.starts_with('\\') || rel.contains(':') {
        return Err(err(RelPathProblem::Absolute));
    }
    let mut out = root.to_path_buf();
    for part in rel.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err(err(RelPathProblem::LeavesRoot)),
            p => out.push(p),
        }
    }
    if out.components().any(|c| matches!(c, Component::ParentDir)) || out == root {
        return Err(err(RelPathProblem::NoFile));
    }
    Ok(out)
}

/// A table's relative path that [`safe_join`] refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct RelPathError {
    pub path: String,
    pub kind: RelPathProblem,
}

/// What is wrong with a [`RelPathError`]'s path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelPathProblem {
    Empty,
    Control(char),
    Absolute,
    LeavesRoot,
    NoFile,
}

impl RelPathError {
    fn message(&self) -> String {
        let rel = &self.path;
        match self.kind {
            RelPathProblem::Empty => "empty path".into(),
            RelPathProblem::Control(c) => format!("path {rel:?} holds {c:?}"),
            RelPathProblem::Absolute => {
                format!("path {rel:?} is absolute; give it relative to the dataset's root")
            }
            RelPathProblem::LeavesRoot => {
                format!("path {rel:?} leaves the dataset's root ('..')")
            }
            RelPathProblem::NoFile => format!("path {rel:?} names no file under the root"),
        }
    }
}

/// The DICOM files under `dir`, sorted, without following symbolic links to folders (files
/// that are links are listed; the batch checks where they lead).
pub(crate) fn dicom_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let p = e.path();
            if t.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x.eq_ignore_ascii_case("dcm") || x.eq_ignore_ascii_case("dicom"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A CSV table read whole: its header and rows, with errors naming the file and row.
pub(crate) struct Table {
    pub path: PathBuf,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Reads `path`; the delimiter is `;` when the header line holds more `;` than `,`
    /// (INbreast's CSV), else `,`. Fields are trimmed; fully empty rows are dropped.
    pub fn read(path: &Path) -> Result<Self, PreprocessError> {
        let bytes = std::fs::read(path).map_err(|e| PreprocessError::Csv {
            path: path.into(),
            cause: e.into(),
        })?;
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let count = |c: u8| first.iter().filter(|&&b| b == c).count();
        let delimiter = if count(b';') > count(b',') {
            b';'
        } else {
            b','
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(bytes.as_slice());
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| PreprocessError::Csv {
                path: path.into(),
                cause: e.into(),
            })?
            .iter()
            .map(|h| h.trim().trim_start_matches('\u{feff}').trim().to_string())
            .collect();
        let mut rows = Vec::new();
        for (i, rec) in reader.records().enumerate() {
            let rec = rec.map_err(|e| PreprocessError::Row {
                path: path.into(),
                row: i + 2,
                cause: e.into(),
            })?;
            rows.push(rec.iter().map(|f| f.trim().to_string()).collect::<Vec<_>>());
        }
        Ok(Self {
            path: path.into(),
            headers,
            rows,
        })
    }

    /// The index of the first column whose name, compared without case, spaces and
    /// underscores, is one of `names` (documented variants of one column).
    pub fn col(&self, names: &[&str]) -> Option<usize> {
        let norm = |s: &str| {
            s.chars()
                .filter(|c| !matches!(c, ' ' | '_' | '-'))
                .flat_map(char::to_lowercase)
                .collect::<String>()
        };
        names.iter().find_map(|n| {
            let n = norm(n);
            self.headers.iter().position(|h| norm(h) == n)
        })
    }

    /// [`Self::col`], or an error listing the columns there are.
    pub fn require(&self, names: &[&str]) -> Result<usize, PreprocessError> {
        self.col(names).ok_or_else(|| {
            self.err(format!(
                "no {} column (columns: {})",
                names[0],
                self.headers.join(",")
            ))
        })
    }

    /// A file-level error.
    pub fn err(&self, cause: impl Into<Cause>) -> PreprocessError {
        PreprocessError::Csv {
            path: self.path.clone(),
            cause: cause.into(),
        }
    }

    /// An error about data row `i` (0-based): "row i+2".
    pub fn row_err(&self, i: usize, cause: impl Into<Cause>) -> PreprocessError {
        PreprocessError::Row {
            path: self.path.clone(),
            row: i + 2,
            cause: cause.into(),
        }
    }

    /// Field `col` of data row `i` ("" when the row is short).
    pub fn get(&self, i: usize, col: Option<usize>) -> &str {
        col.and_then(|c| self.rows[i].get(c))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Whether data row `i` is all empty.
    pub fn blank(&self, i: usize) -> bool {
        self.rows[i].iter().all(String::is_empty)
    }
}

/// `L`/`R` from the spellings datasets use (`L`, `LEFT`, `Left`, ...).
pub(crate) fn parse_laterality(v: &str) -> Result<String, String> {
    match v.trim().to_ascii_uppercase().as_str() {
        "L" | "LEFT" => Ok("L".into()),
        "R" | "RIGHT" => Ok("R".into()),
        other => Err(format!("laterality {other:?} is neither L nor R")),
    }
}

/// A file in `dir` whose name is `name` compared without case: datasets are unpacked on
/// case-insensitive file systems as often as not.
pub(crate) fn find_file(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    names.iter().find_map(|n| {
        entries
            .iter()
            .find(|p| {
                p.file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| f.eq_ignore_ascii_case(n))
            })
            .cloned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_their_names() {
        for k in DatasetKind::ALL {
            assert_eq!(k.as_str().parse::<DatasetKind>(), Ok(k));
        }
        assert_eq!("CBIS-DDSM".parse(), Ok(DatasetKind::CbisDdsm));
        let e = "ddsm".parse::<DatasetKind>().unwrap_err();
        assert!(e.contains("cbis-ddsm, vindr, cmmd, inbreast, rsna"), "{e}");
    }

    #[test]
    fn table_paths_stay_under_the_root() {
        let root = Path::new("/data/set");
        assert_eq!(
            safe_join(root, "a/b\\c.dcm").unwrap(),
            Path::new("/data/set/a/b/c.dcm")
        );
        assert_eq!(
            safe_join(root, "./a//b.dcm").unwrap(),
            Path::new("/data/set/a/b.dcm")
        );
        use RelPathProblem::*;
        for (bad, why) in [
            ("", Empty),
            ("/etc/passwd", Absolute),
            ("\\x", Absolute),
            ("C:\\x", Absolute),
            ("a/../../b", LeavesRoot),
            ("..", LeavesRoot),
            ("a\u{0}b", Control('\0')),
            ("a\nb", Control('\n')),
            (".", NoFile),
            ("./", NoFile),
        ] {
            let e = safe_join(root, bad).unwrap_err();
            assert_eq!((e.path.as_str(), e.kind), (bad, why), "{bad:?}");
        }
        assert_eq!(
            safe_join(root, "a/../../b").unwrap_err().to_string(),
            "path \"a/../../b\" leaves the dataset's root ('..')"
        );
    }
}
