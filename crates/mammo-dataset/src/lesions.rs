//! `lesions.csv`: ground-truth boxes in stored-image pixels, keyed by image id, in the
//! phantom's format. The dataset loaders write it ([`write_lesions_csv`]); `mammo explain
//! --truth` and the experiment read it ([`lesion_boxes_by_image`]) and map each box into a
//! processed PNG with [`ManifestRow::box_to_output`](crate::ManifestRow::box_to_output) (crop
//! box, mirror, scale, offset).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{DatasetError, RowError};

/// What a lesion box outlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LesionKind {
    Mass,
    Calcification,
    /// Anything else a reader boxed (architectural distortion, asymmetry, ...).
    Finding,
}

impl LesionKind {
    /// The `lesion_type` of `lesions.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mass => "mass",
            Self::Calcification => "calcification",
            Self::Finding => "finding",
        }
    }

    /// The kind a `lesion_type` names by its prefix (`mass...`, `calc...`, else a finding).
    pub fn from_lesion_type(lesion_type: &str) -> Self {
        if lesion_type.starts_with("mass") {
            Self::Mass
        } else if lesion_type.starts_with("calc") {
            Self::Calcification
        } else {
            Self::Finding
        }
    }
}

/// A lesion box in pixels of the stored (source DICOM) image: column x, row y, origin at the
/// top-left pixel, `[x0, x1) x [y0, y1)` as in the phantom's `lesions.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LesionBox {
    pub image_id: String,
    pub patient_id: String,
    pub laterality: String,
    pub view: String,
    pub kind: LesionKind,
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
    /// `MALIGNANT`, `BENIGN`, ... where the dataset proves it, else empty.
    pub pathology: String,
    /// The finding's own BI-RADS, where the dataset gives one.
    pub birads: String,
    /// The dataset's words for it (VinDr categories, INbreast ROI name, CBIS shape / type).
    pub description: String,
}

/// Columns of the phantom's `lesions.csv` (`mammo phantom`): the image, where it is, the
/// box in stored-image pixels and `contrast`, the lesion's peak added attenuation in units
/// where the full compressed thickness of fat is 1.
pub const PHANTOM_LESION_COLUMNS: [&str; 10] = [
    "image_id",
    "patient_id",
    "laterality",
    "view",
    "lesion_type",
    "x0",
    "y0",
    "x1",
    "y1",
    "contrast",
];

/// Columns of the `lesions.csv` the loaders write: the phantom's ten (`contrast` empty: no
/// dataset measures it), then what the datasets say about each box.
pub const LESION_CSV_COLUMNS: [&str; 13] = extend(
    PHANTOM_LESION_COLUMNS,
    ["pathology", "birads", "description"],
);

const fn extend(base: [&'static str; 10], more: [&'static str; 3]) -> [&'static str; 13] {
    let mut out = [""; 13];
    let mut i = 0;
    while i < 10 {
        out[i] = base[i];
        i += 1;
    }
    while i < 13 {
        out[i] = more[i - 10];
        i += 1;
    }
    out
}

/// Writes `lesions` as `lesions.csv` at `path`, atomically. Coordinates are written as the
/// shortest decimal that reads back to the same number (`12`, `12.5`).
pub fn write_lesions_csv(path: &Path, lesions: &[LesionBox]) -> Result<(), DatasetError> {
    let file_err = |e: csv::Error| mammo_io::FileError::new("write", path, e);
    let file = mammo_io::AtomicFile::create(path)
        .map_err(|e| mammo_io::FileError::new("write", path, e))?;
    let mut w = csv::Writer::from_writer(file);
    w.write_record(LESION_CSV_COLUMNS).map_err(file_err)?;
    for l in lesions {
        w.write_record([
            l.image_id.as_str(),
            &l.patient_id,
            &l.laterality,
            &l.view,
            l.kind.as_str(),
            &l.x0.to_string(),
            &l.y0.to_string(),
            &l.x1.to_string(),
            &l.y1.to_string(),
            "",
            &l.pathology,
            &l.birads,
            &l.description,
        ])
        .map_err(file_err)?;
    }
    mammo_io::commit_csv(w).map_err(|e| mammo_io::FileError::new("write", path, e))?;
    Ok(())
}

/// The boxes of a `lesions.csv` by image id: `[x0, y0, x1, y1]` in stored-image pixels, in
/// file order. Errors name the file and the row ([`read_lesions_csv`]).
pub fn lesion_boxes_by_image(path: &Path) -> Result<HashMap<String, Vec<[f64; 4]>>, DatasetError> {
    let mut out: HashMap<String, Vec<[f64; 4]>> = HashMap::new();
    for l in read_lesions_csv(path)? {
        out.entry(l.image_id)
            .or_default()
            .push([l.x0, l.y0, l.x1, l.y1]);
    }
    Ok(out)
}

/// Reads a `lesions.csv` (the phantom's or [`write_lesions_csv`]'s) back into boxes. Only
/// `image_id` and the four coordinates are required; the kind follows `lesion_type`
/// ([`LesionKind::from_lesion_type`]), an empty `description` is the `lesion_type`. Fields are
/// trimmed; rows with every field empty are skipped.
pub fn read_lesions_csv(path: &Path) -> Result<Vec<LesionBox>, DatasetError> {
    let file = std::fs::File::open(path).map_err(|e| mammo_io::FileError::new("read", path, e))?;
    read_lesions_from(std::io::BufReader::new(file), path)
}

/// [`read_lesions_csv`] from any reader; `path` only names the source in errors.
pub fn read_lesions_from(
    source: impl std::io::Read,
    path: &Path,
) -> Result<Vec<LesionBox>, DatasetError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(source);
    let parse_err = |e: csv::Error| mammo_io::FileError::new("parse", path, e);
    let header: Vec<String> = reader
        .headers()
        .map_err(parse_err)?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let require = |name: &'static str| {
        col(name).ok_or_else(|| DatasetError::MissingColumn {
            path: path.into(),
            column: name,
            columns: header.join(","),
        })
    };
    let (id, x0, y0, x1, y1) = (
        require("image_id")?,
        require("x0")?,
        require("y0")?,
        require("x1")?,
        require("y1")?,
    );
    let (patient, lat, view, ty) = (
        col("patient_id"),
        col("laterality"),
        col("view"),
        col("lesion_type"),
    );
    let (pathology, birads, description) = (col("pathology"), col("birads"), col("description"));
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let row = i + 2;
        let rec = rec.map_err(|error| {
            mammo_io::FileError::new("parse", path, mammo_io::CsvRowError { row, error })
        })?;
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("");
        let num = |c: usize, column: &'static str| {
            let value = get(Some(c));
            value
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| DatasetError::Row {
                    path: PathBuf::from(path),
                    row,
                    cause: RowError::NotANumber {
                        column,
                        value: value.to_string(),
                    },
                })
        };
        let lesion_type = get(ty);
        out.push(LesionBox {
            image_id: get(Some(id)).to_string(),
            patient_id: get(patient).to_string(),
            laterality: get(lat).to_string(),
            view: get(view).to_string(),
            kind: LesionKind::from_lesion_type(lesion_type),
            x0: num(x0, "x0")?,
            y0: num(y0, "y0")?,
            x1: num(x1, "x1")?,
            y1: num(y1, "y1")?,
            pathology: get(pathology).to_string(),
            birads: get(birads).to_string(),
            description: match get(description) {
                "" => lesion_type,
                d => d,
            }
            .to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<LesionBox>, DatasetError> {
        read_lesions_from(text.as_bytes(), Path::new("lesions.csv"))
    }

    #[test]
    fn the_phantom_columns_read_with_kind_and_description_from_the_lesion_type() {
        let rows = read(
            "image_id,patient_id,laterality,view,lesion_type,x0,y0,x1,y1,contrast\n\
             7, 1 ,L,CC,mass_spiculated,10,5.5,20,15,0.2\n\
             ,,,,,,,,,\n\
             8,1,R,MLO,calcification_cluster,1,2,3,4,0.1\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2, "the blank row is skipped");
        assert_eq!(rows[0].patient_id, "1", "fields are trimmed");
        assert_eq!(rows[0].kind, LesionKind::Mass);
        assert_eq!(rows[0].description, "mass_spiculated");
        assert_eq!(
            [rows[0].x0, rows[0].y0, rows[0].x1, rows[0].y1],
            [10.0, 5.5, 20.0, 15.0]
        );
        assert_eq!(rows[1].kind, LesionKind::Calcification);
        assert_eq!(
            LesionKind::from_lesion_type("asymmetry"),
            LesionKind::Finding
        );
    }

    #[test]
    fn what_is_written_reads_back() {
        let dir = std::env::temp_dir().join(format!("mammo-lesions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lesions.csv");
        let boxes = vec![LesionBox {
            image_id: "i1".into(),
            patient_id: "p1".into(),
            laterality: "L".into(),
            view: "CC".into(),
            kind: LesionKind::Calcification,
            x0: 1.0,
            y0: 2.25,
            x1: 30.0,
            y1: 40.5,
            pathology: "MALIGNANT".into(),
            birads: "5".into(),
            description: "PLEOMORPHIC, with a comma".into(),
        }];
        write_lesions_csv(&path, &boxes).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&LESION_CSV_COLUMNS.join(",")), "{text}");
        assert!(text.contains(",1,2.25,30,40.5,,MALIGNANT,"), "{text}");
        assert_eq!(read_lesions_csv(&path).unwrap(), boxes);
        let by_image = lesion_boxes_by_image(&path).unwrap();
        assert_eq!(by_image["i1"], vec![[1.0, 2.25, 30.0, 40.5]]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_column_or_a_bad_number_is_named() {
        let e = read("image_id,x0,y0,x1\n1,2,3,4\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "lesions.csv: no y1 column (columns: image_id,x0,y0,x1)"
        );
        let e = read("image_id,x0,y0,x1,y1\n1,2,3,4,5\n2,2,inf,4,5\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "lesions.csv: row 3: y0 \"inf\" is not a number"
        );
        let e = read("image_id,x0,y0,x1,y1\n1,2,abc,4,5\n").unwrap_err();
        assert!(matches!(
            e,
            DatasetError::Row {
                row: 2,
                cause: RowError::NotANumber { column: "y0", .. },
                ..
            }
        ));
    }
}
