//! `manifest.csv`: one row per image, what every stage after preprocessing reads. The row is
//! typed ([`ManifestRow`]); the CSV's text form is parsed once, here, with errors naming the
//! file, the row and the value.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use mammo_image::Rect;

use crate::error::{DatasetError, RowError};
use crate::ids::check_path_id;
use crate::label::{label_text, parse_label};
use crate::mapping::SourceMap;

/// What preprocessing made of an image. Written `ok`, `ok-no-breast-found` or
/// `failed: reason`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Status {
    /// Processed, cropped to the breast.
    #[default]
    Ok,
    /// Processed, but no breast was found, so the whole image was kept.
    NoBreastFound,
    /// Not processed; no PNG exists.
    Failed(String),
}

impl Status {
    /// A PNG exists for the row: [`Status::Ok`] or [`Status::NoBreastFound`].
    pub fn is_ok(&self) -> bool {
        !matches!(self, Status::Failed(_))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok => f.write_str("ok"),
            Status::NoBreastFound => f.write_str("ok-no-breast-found"),
            Status::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ok" => Ok(Status::Ok),
            "ok-no-breast-found" => Ok(Status::NoBreastFound),
            "failed" => Ok(Status::Failed(String::new())),
            _ => match s.strip_prefix("failed: ") {
                Some(reason) => Ok(Status::Failed(reason.into())),
                None => Err(format!(
                    "status {s:?} is not ok, ok-no-breast-found or failed: <reason>"
                )),
            },
        }
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

/// One row of `OUT/<size>/manifest.csv`: the RSNA columns, the label, where the PNG is and
/// how it was made (so that lesion coordinates can be mapped into it). The CSV columns are
/// the fields, in this order; `label` is written `1`, `0` or empty, flags `1` or `0`, and a
/// value of another form is an error naming its row and column ([`read_manifest`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManifestRow {
    pub patient_id: String,
    pub image_id: String,
    pub laterality: String,
    pub view: String,
    /// `Some(true)` cancer, `Some(false)` not, `None` unknown; read through [`parse_label`],
    /// so every RSNA spelling.
    #[serde(with = "label_column")]
    pub label: Option<bool>,
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
    /// A generated (synthetic) image, which only ever joins training folds.
    #[serde(
        serialize_with = "flag_column::serialize",
        deserialize_with = "flag_column::synthetic"
    )]
    pub synthetic: bool,
    /// PNG path relative to the manifest's folder (or absolute, in merged manifests).
    pub path: String,
    pub height: u32,
    pub width: u32,
    pub source_width: u32,
    pub source_height: u32,
    pub decode_reduce: u32,
    /// The crop box in stored-image pixels ([`Self::crop`]).
    pub crop_x0: u32,
    pub crop_y0: u32,
    pub crop_x1: u32,
    pub crop_y1: u32,
    /// Mirrored about the crop box.
    #[serde(
        serialize_with = "flag_column::serialize",
        deserialize_with = "flag_column::flipped"
    )]
    pub flipped: bool,
    /// Output pixels per stored-image pixel.
    pub scale_x: f64,
    pub scale_y: f64,
    pub offset_x: u32,
    pub offset_y: u32,
    pub voi: String,
    #[serde(
        serialize_with = "flag_column::serialize",
        deserialize_with = "flag_column::inverted"
    )]
    pub inverted: bool,
    pub status: Status,
    /// For a synthetic row: the one cross-validation fold whose *training* set it joins (its
    /// generator was trained without that fold's validation images); `None`: every fold's.
    /// Absent in older manifests.
    #[serde(default, with = "fold_column")]
    pub synthetic_fold: Option<usize>,
    /// The dataset's own split (`training`, `test`; VinDr-Mammo, CBIS-DDSM), empty when it
    /// has none. Absent in older manifests.
    #[serde(default)]
    pub split: String,
}

impl ManifestRow {
    /// A PNG exists for the row.
    pub fn is_ok(&self) -> bool {
        self.status.is_ok()
    }

    /// Labelled cancer.
    pub fn is_cancer(&self) -> bool {
        self.label == Some(true)
    }

    /// The crop box in stored-image pixels.
    pub fn crop(&self) -> Rect {
        Rect {
            x0: self.crop_x0,
            y0: self.crop_y0,
            x1: self.crop_x1,
            y1: self.crop_y1,
        }
    }

    /// How this row's stored DICOM image maps into its PNG (crop, mirror, scale, padding).
    pub fn mapping(&self) -> SourceMap {
        SourceMap {
            crop: self.crop(),
            flipped: self.flipped,
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

    /// The PNG's path: [`Self::path`] below the manifest's folder `base` (an absolute path is
    /// kept as it is).
    pub fn png_path(&self, base: &Path) -> PathBuf {
        base.join(&self.path)
    }

    /// What a row must hold beyond its columns' forms: ids that can name files, a path that
    /// stays in the manifest's folder, a synthetic fold only on a synthetic row.
    pub fn check(&self) -> Result<(), RowError> {
        check_path_id("patient_id", &self.patient_id)?;
        check_path_id("image_id", &self.image_id)?;
        check_png_path(&self.path)?;
        match self.synthetic_fold {
            Some(fold) if !self.synthetic => Err(RowError::FoldNotSynthetic {
                image_id: self.image_id.clone(),
                fold,
            }),
            _ => Ok(()),
        }
    }
}

/// `label`: [`parse_label`] on reading, [`label_text`] on writing.
mod label_column {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(label_text(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        let text = String::deserialize(d)?;
        parse_label("label", &text).map_err(de::Error::custom)
    }
}

/// A 0/1 column as a `bool`; a reader per column, so that an error names it.
mod flag_column {
    use super::*;

    pub fn serialize<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(u8::from(*v))
    }

    fn read<'de, D: Deserializer<'de>>(d: D, column: &str) -> Result<bool, D::Error> {
        match u8::deserialize(d)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(de::Error::custom(format!(
                "{column} value {v} is not 0 or 1"
            ))),
        }
    }

    pub fn synthetic<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        read(d, "synthetic")
    }

    pub fn flipped<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        read(d, "flipped")
    }

    pub fn inverted<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        read(d, "inverted")
    }
}

/// `synthetic_fold`: a fold number, or empty.
mod fold_column {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<usize>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(k) => s.collect_str(k),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim() {
            "" => Ok(None),
            t => t.parse().map(Some).map_err(|_| {
                de::Error::custom(format!(
                    "synthetic_fold {t:?} is not a fold number (nor empty)"
                ))
            }),
        }
    }
}

/// `path` is read: a relative one must stay inside the manifest's folder. Absolute paths are
/// taken as they are (manifests merged by `mammo gan generate --with-manifest` and the
/// experiment hold them).
fn check_png_path(path: &str) -> Result<(), RowError> {
    if path.contains('\0') {
        return Err(RowError::PathNul { path: path.into() });
    }
    let p = Path::new(path);
    if p.is_relative()
        && p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(RowError::PathLeaves { path: path.into() });
    }
    Ok(())
}

/// Reads a manifest written by preprocessing or the GAN (or by hand, with the same header).
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, DatasetError> {
    let file = std::fs::File::open(path)
        .map_err(|e| DatasetError::File(mammo_io::FileError::new("read", path, e)))?;
    read_manifest_from(std::io::BufReader::new(file), path)
}

/// [`read_manifest`] from any reader; `path` only names the source in errors.
pub fn read_manifest_from(
    source: impl std::io::Read,
    path: &Path,
) -> Result<Vec<ManifestRow>, DatasetError> {
    let mut reader = csv::Reader::from_reader(source);
    let header = reader.headers().cloned().unwrap_or_default();
    reader
        .deserialize::<ManifestRow>()
        .enumerate()
        .map(|(i, r)| {
            let err = |cause: RowError| DatasetError::Row {
                path: path.into(),
                row: i + 2,
                cause,
            };
            let row = r.map_err(|e| err(RowError::from_csv(e, &header)))?;
            row.check().map_err(err)?;
            Ok(row)
        })
        .collect()
}

/// Writes manifest rows as CSV, atomically.
pub fn write_manifest(path: &Path, rows: &[ManifestRow]) -> Result<(), DatasetError> {
    Ok(mammo_io::write_csv(path, rows)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_of(rows: &[ManifestRow]) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in rows {
            w.serialize(r).unwrap();
        }
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    fn read(text: &str) -> Result<Vec<ManifestRow>, DatasetError> {
        read_manifest_from(text.as_bytes(), Path::new("m.csv"))
    }

    fn row(patient: &str, image: &str, path: &str) -> ManifestRow {
        ManifestRow {
            patient_id: patient.into(),
            image_id: image.into(),
            path: path.into(),
            ..ManifestRow::default()
        }
    }

    /// `row`'s CSV with `column` set to `value`.
    fn with_column(row: &ManifestRow, column: &str, value: &str) -> String {
        let text = csv_of(std::slice::from_ref(row));
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let i = header.split(',').position(|c| c == column).unwrap();
        let mut values: Vec<&str> = lines.next().unwrap().split(',').collect();
        values[i] = value;
        format!("{header}\n{}\n", values.join(","))
    }

    #[test]
    fn the_csv_form_is_the_columns_preprocessing_has_always_written() {
        let r = ManifestRow {
            label: Some(true),
            synthetic: true,
            synthetic_fold: Some(3),
            flipped: true,
            crop_x0: 1,
            crop_y0: 2,
            crop_x1: 30,
            crop_y1: 40,
            status: Status::NoBreastFound,
            ..row("10", "100", "10/100.png")
        };
        let text = csv_of(std::slice::from_ref(&r));
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "patient_id,image_id,laterality,view,label,site_id,machine_id,age,density,biopsy,\
             invasive,BIRADS,implant,difficult_negative_case,synthetic,path,height,width,\
             source_width,source_height,decode_reduce,crop_x0,crop_y0,crop_x1,crop_y1,flipped,\
             scale_x,scale_y,offset_x,offset_y,voi,inverted,status,synthetic_fold,split"
        );
        assert_eq!(
            lines.next().unwrap(),
            "10,100,,,1,,,,,,,,,,1,10/100.png,0,0,0,0,0,1,2,30,40,1,0.0,0.0,0,0,,0,\
             ok-no-breast-found,3,"
        );
        assert_eq!(read(&text).unwrap(), [r]);
        // An older manifest, without the last two columns, reads with their defaults.
        let old: Vec<&str> = text
            .lines()
            .map(|l| l.rsplitn(3, ',').last().unwrap())
            .collect();
        let got = read(&old.join("\n")).unwrap();
        assert_eq!((got[0].synthetic_fold, got[0].split.as_str()), (None, ""));
    }

    #[test]
    fn labels_statuses_and_folds_are_typed_on_reading() {
        let base = row("10", "100", "a.png");
        for (label, want) in [("1.0", Some(true)), ("False", Some(false)), ("", None)] {
            let got = read(&with_column(&base, "label", label)).unwrap();
            assert_eq!(got[0].label, want, "{label:?}");
        }
        for (status, want) in [
            ("ok", Status::Ok),
            ("ok-no-breast-found", Status::NoBreastFound),
            (
                "failed: no pixel data",
                Status::Failed("no pixel data".into()),
            ),
        ] {
            let got = read(&with_column(&base, "status", status)).unwrap();
            assert_eq!(got[0].status, want);
        }
        let bad = |column: &str, value: &str| {
            read(&with_column(&base, column, value))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad("status", "done"),
            "m.csv: row 2: status \"done\" is not ok, ok-no-breast-found or failed: <reason>"
        );
        assert_eq!(
            bad("label", "2"),
            "m.csv: row 2: label value \"2\" is not a label \
             (0, 1, 0.0, 1.0, True, False, or empty)"
        );
        assert_eq!(
            bad("synthetic_fold", "x"),
            "m.csv: row 2: synthetic_fold \"x\" is not a fold number (nor empty)"
        );
        assert_eq!(
            bad("synthetic_fold", "2"),
            "m.csv: row 2: image 100 has synthetic_fold 2 but is not synthetic"
        );
        assert_eq!(
            bad("flipped", "7"),
            "m.csv: row 2: flipped value 7 is not 0 or 1"
        );
        assert!(bad("height", "tall").starts_with("m.csv: row 2: column height: "));
    }

    #[test]
    fn ids_and_paths_stay_in_their_folder() {
        let read_row = |p: &str, i: &str, path: &str| read(&csv_of(&[row(p, i, path)]));
        assert!(read_row("10", "100", "10/100.png").is_ok());
        assert!(read_row("syn-0-00001", "syn-0-00001", "/abs/images/syn-0-00001.png").is_ok());
        let err = read_row("10", "100", "../../etc/passwd")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("row 2") && err.contains("leaves the manifest's folder"),
            "{err}"
        );
        let err = read_row("../x", "100", "10/100.png")
            .unwrap_err()
            .to_string();
        assert!(err.contains("row 2") && err.contains("patient_id"), "{err}");
        let err = read_row("10", "a/b", "10/100.png").unwrap_err().to_string();
        assert!(err.contains("image_id"), "{err}");
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
        r.flipped = true; // mirrored about the crop box: its right edge becomes x = offset
        assert_eq!(r.to_output(500.0, 50.0), (3.0, 7.0));
        assert_eq!(r.to_output(300.0, 250.0), (103.0, 107.0));
    }
}
