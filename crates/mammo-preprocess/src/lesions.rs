//! `lesions.csv`: ground-truth boxes in stored-image pixels, keyed by image id, in the
//! phantom's format (`mammo explain --truth` and the experiment read it through
//! [`lesion_boxes_by_image`], then map each box into a PNG with
//! [`mammo_dataset::ManifestRow::box_to_output`]: crop box, mirror, scale, offset).

use std::path::Path;

use crate::datasets::{LesionBox, LesionKind};
use crate::error::{PreprocessError, io_err};

/// Columns of the `lesions.csv` the loaders write: the phantom's ten (`contrast` empty: no
/// dataset measures it), then what the datasets say about each box.
pub const LESION_CSV_COLUMNS: [&str; 13] = [
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
    "pathology",
    "birads",
    "description",
];

/// Writes `lesions` as `lesions.csv` at `path`, atomically. Coordinates are written as the
/// shortest decimal that reads back to the same number (`12`, `12.5`).
pub fn write_lesions_csv(path: &Path, lesions: &[LesionBox]) -> Result<(), PreprocessError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(LESION_CSV_COLUMNS)
        .map_err(|e| io_err(path, e))?;
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
        .map_err(|e| io_err(path, e))?;
    }
    let bytes = w.into_inner().map_err(|e| io_err(path, e))?;
    mammo_image::write_atomic(path, &bytes).map_err(|e| io_err(path, e))
}

/// The boxes of a `lesions.csv` by image id: `[x0, y0, x1, y1]` in stored-image pixels, in
/// file order. Errors name the file and the row ([`read_lesions_csv`]).
pub fn lesion_boxes_by_image(
    path: &Path,
) -> Result<std::collections::HashMap<String, Vec<[f64; 4]>>, PreprocessError> {
    let mut out: std::collections::HashMap<String, Vec<[f64; 4]>> =
        std::collections::HashMap::new();
    for l in read_lesions_csv(path)? {
        out.entry(l.image_id)
            .or_default()
            .push([l.x0, l.y0, l.x1, l.y1]);
    }
    Ok(out)
}

/// Reads a `lesions.csv` (the phantom's or [`write_lesions_csv`]'s) back into boxes. The
/// kind follows `lesion_type`'s prefix (`mass...`, `calc...`, else a finding).
pub fn read_lesions_csv(path: &Path) -> Result<Vec<LesionBox>, PreprocessError> {
    let t = crate::datasets::Table::read(path)?;
    let [id, x0, y0, x1, y1] = ["image_id", "x0", "y0", "x1", "y1"];
    let (id, x0, y0, x1, y1) = (
        t.require(&[id])?,
        t.require(&[x0])?,
        t.require(&[y0])?,
        t.require(&[x1])?,
        t.require(&[y1])?,
    );
    let col = |n: &str| t.col(&[n]);
    let (patient, lat, view, ty) = (
        col("patient_id"),
        col("laterality"),
        col("view"),
        col("lesion_type"),
    );
    let (pathology, birads, description) = (col("pathology"), col("birads"), col("description"));
    let mut out = Vec::with_capacity(t.rows.len());
    for i in 0..t.rows.len() {
        if t.blank(i) {
            continue;
        }
        let num = |c: usize, name: &str| {
            let v = t.get(i, Some(c));
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| t.row_err(i, format!("{name} {v:?} is not a number")))
        };
        let lesion_type = t.get(i, ty);
        let kind = if lesion_type.starts_with("mass") {
            LesionKind::Mass
        } else if lesion_type.starts_with("calc") {
            LesionKind::Calcification
        } else {
            LesionKind::Finding
        };
        let description = match t.get(i, description) {
            "" => lesion_type,
            d => d,
        };
        out.push(LesionBox {
            image_id: t.get(i, Some(id)).to_string(),
            patient_id: t.get(i, patient).to_string(),
            laterality: t.get(i, lat).to_string(),
            view: t.get(i, view).to_string(),
            kind,
            x0: num(x0, "x0")?,
            y0: num(y0, "y0")?,
            x1: num(x1, "x1")?,
            y1: num(y1, "y1")?,
            pathology: t.get(i, pathology).to_string(),
            birads: t.get(i, birads).to_string(),
            description: description.to_string(),
        });
    }
    Ok(out)
}
