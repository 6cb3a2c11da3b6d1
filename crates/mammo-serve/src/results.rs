//! One analysed study as the client gets it: the JSON answer, and per view the heat map
//! (PNG), the display pixels and the Secondary Capture, plus the study's SR; optionally
//! written to `--out`.

use std::path::Path;

use serde_json::json;

use crate::ServeError;
use crate::analysis::{Engine, Study, Upload};
use crate::dicom_out::{self, ResultUids};

/// Files of one view.
#[derive(Debug, Clone)]
pub struct ViewFiles {
    /// Heat map on the display grid, RGBA PNG, transparent outside the breast crop.
    pub heatmap_png: Vec<u8>,
    /// Display-grid modality values, little-endian `f32`, row-major (for windowing in the
    /// page).
    pub pixels_f32: Vec<u8>,
    pub secondary_capture: Vec<u8>,
}

/// A finished study, kept in memory for its download links.
#[derive(Debug, Clone)]
pub struct StudyResult {
    /// Random id of this result (32 hex digits); the only thing a URL looks up.
    pub id: String,
    pub json: serde_json::Value,
    pub views: Vec<ViewFiles>,
    pub sr: Vec<u8>,
    pub uids: ResultUids,
}

fn png_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>, ServeError> {
    let err = |e: png::EncodingError| ServeError::Write {
        what: "heat map PNG",
        cause: e.into(),
    };
    let mut bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut bytes, width, height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(err)?;
    w.write_image_data(rgba).map_err(err)?;
    w.finish().map_err(err)?;
    Ok(bytes)
}

/// Analyses `uploads` as one study on `engine` and makes every result file; with `out`,
/// also writes them under `out/<SR series UID>/`.
pub fn analyse(
    engine: &Engine,
    uploads: &[Upload],
    out: Option<&Path>,
) -> Result<StudyResult, ServeError> {
    let study = engine.analyse(uploads)?;
    let uids = ResultUids::new(study.images.len());
    let when = dicom_out::now_da_tm();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let model = format!(
        "mammo {} fold ensemble ({} folds, {} weights), {} at {}",
        engine.info.architecture,
        engine.info.folds.len(),
        engine.info.select,
        engine.info.method,
        engine.info.layer
    );
    let mut views = Vec::with_capacity(study.images.len());
    for (i, im) in study.images.iter().enumerate() {
        let d = &im.display;
        views.push(ViewFiles {
            heatmap_png: png_rgba(d.width, d.height, &d.heat_rgba())?,
            pixels_f32: d.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            secondary_capture: dicom_out::secondary_capture(&study, i, &uids, &when)?,
        });
    }
    let sr = dicom_out::structured_report(&study, &model, &uids, &when)?;
    let json = answer(&id, &study, engine, &uids);
    if let Some(dir) = out {
        write_out(dir, &uids, &views, &sr, &json)?;
    }
    Ok(StudyResult {
        id,
        json,
        views,
        sr,
        uids,
    })
}

fn answer(id: &str, study: &Study, engine: &Engine, uids: &ResultUids) -> serde_json::Value {
    let base = format!("/api/v1/results/{id}");
    let images: Vec<serde_json::Value> = study
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| {
            let d = &im.display;
            json!({
                "index": i,
                "file": im.name,
                "sop_instance_uid": im.sop_instance_uid,
                "laterality": im.laterality,
                "view": im.view,
                "probability": im.probability,
                "fold_probabilities": im.fold_probabilities,
                "box": im.box_source,
                "threshold_box": im.threshold_box_source,
                "columns": im.columns,
                "rows": im.rows,
                "heatmap": format!("{base}/images/{i}/heatmap.png"),
                "display": {
                    "width": d.width,
                    "height": d.height,
                    "pixels": format!("{base}/images/{i}/pixels.f32"),
                    "window_center": d.window_center,
                    "window_width": d.window_width,
                    "voi_function": d.voi_function,
                    "invert": d.invert,
                },
                "secondary_capture": {
                    "url": format!("{base}/images/{i}/secondary-capture.dcm"),
                    "sop_instance_uid": uids.sc_instances[i],
                },
            })
        })
        .collect();
    json!({
        "id": id,
        "study_instance_uid": study.study_instance_uid,
        "images": images,
        "breasts": study.breasts,
        "model": engine.info,
        "secondary_capture_series_instance_uid": uids.sc_series,
        "structured_report": {
            "url": format!("{base}/structured-report.dcm"),
            "series_instance_uid": uids.sr_series,
            "sop_instance_uid": uids.sr_instance,
        },
        "result": base,
    })
}

/// `dir/<SR series UID>/`: `result.json`, `sr.dcm`, `sc_<n>.dcm`, `heatmap_<n>.png`; every
/// name made here, none from the client. Each file written atomically.
fn write_out(
    dir: &Path,
    uids: &ResultUids,
    views: &[ViewFiles],
    sr: &[u8],
    json: &serde_json::Value,
) -> Result<(), ServeError> {
    let folder = dir.join(&uids.sr_series);
    let io = |path: &Path, source| ServeError::Io {
        path: path.into(),
        source,
    };
    std::fs::create_dir_all(&folder).map_err(|e| io(&folder, e))?;
    let write = |name: String, bytes: &[u8]| {
        let path = folder.join(name);
        mammo_image::write_atomic(&path, bytes).map_err(|e| io(&path, e))
    };
    let text = serde_json::to_vec_pretty(json).expect("JSON values serialise");
    write("result.json".into(), &text)?;
    write("sr.dcm".into(), sr)?;
    for (i, v) in views.iter().enumerate() {
        write(format!("sc_{}.dcm", i + 1), &v.secondary_capture)?;
        write(format!("heatmap_{}.png", i + 1), &v.heatmap_png)?;
    }
    Ok(())
}
