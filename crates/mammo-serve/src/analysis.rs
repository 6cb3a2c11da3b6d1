//! One study through the run's fold ensemble: each uploaded DICOM opened from memory,
//! prepared with the run's saved preprocessing, explained by every fold (the library's
//! [`mammo_explain::explain_ensemble`]), its heat map and boxes mapped back to the source
//! image, and the breasts' probabilities aggregated as the run's metric does (the mean of a
//! breast's images, as `mammo predict --rsna-test`).

use std::path::Path;

use axum::body::Bytes;
use burn::tensor::Device;
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;
use mammo_dataset::SourceMap;
use mammo_dicom::{DicomImage, Photometric, TransferSyntaxKind, VoiTransform};
use mammo_explain::{
    Explainer, Method, centered_box, explain_ensemble, render::jet, threshold_box,
};
use mammo_image::{Filter, GrayImage, resize};
use mammo_preprocess::PipelineConfig;
use mammo_train::data::model_input;
use mammo_train::{Run, Select, dicom_pipeline, prepare_dicom};
use serde::Serialize;

use crate::ServeError;

/// Longest side of the picture shown in the page and burned into the Secondary Capture.
pub const DISPLAY_MAX: u32 = 1024;

/// The CAM method `mammo serve` shows (`mammo explain`'s default).
pub const METHOD: Method = Method::GradCam;

/// Fraction of the map's maximum for the threshold box (`mammo explain --threshold`'s
/// default).
pub const THRESHOLD: f32 = 0.5;

/// One uploaded file: its bytes and the name the client gave it (only ever shown, never
/// used as a path).
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub bytes: Bytes,
}

/// What the client sees of the model that answered.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The run folder's name.
    pub run: String,
    pub architecture: String,
    /// `[height, width]` of the model input.
    pub input_size: [usize; 2],
    /// The folds in the ensemble.
    pub folds: Vec<usize>,
    /// `last` or `best` weights.
    pub select: String,
    pub method: String,
    pub layer: String,
    /// Side of the centred box in model-input pixels (a fifth of the input width).
    pub box_size: usize,
    pub threshold: f32,
    /// How a breast's probability is made from its images'.
    pub aggregation: String,
    pub version: String,
}

/// The run's fold models, ready to explain, and the preprocessing DICOMs need.
pub struct Engine {
    explainers: Vec<Explainer>,
    pipeline: PipelineConfig,
    layer: usize,
    input_size: [usize; 2],
    model_cfg: mammo_models::ModelConfig,
    pub info: ModelInfo,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("info", &self.info).finish()
    }
}

/// A view as the page and the DICOM writers need it: the source picture at display size in
/// modality values, the default window, and the heat map on the same grid.
#[derive(Debug, Clone)]
pub struct Display {
    pub width: u32,
    pub height: u32,
    /// Modality values (stored values through the Modality LUT), row-major.
    pub values: Vec<f32>,
    /// The file's first VOI window (`center`, `width`, VOI LUT Function), else the min-max
    /// window of `values`.
    pub window_center: f64,
    pub window_width: f64,
    pub voi_function: String,
    /// The file's first VOI transform, when it has one (a LUT included), for burning in.
    pub voi: Option<VoiTransform>,
    /// MONOCHROME1: low values are bright.
    pub invert: bool,
    /// Heat map in `[0, 1]` on the display grid; negative where the model saw no source
    /// pixel (outside the breast crop).
    pub heat: Vec<f32>,
}

impl Display {
    /// The picture in `[0, 1]` (1 = white) through the default window.
    pub fn grey(&self) -> Vec<f32> {
        let (lo, hi) = (
            self.window_center - self.window_width / 2.0,
            self.window_center + self.window_width / 2.0,
        );
        self.values
            .iter()
            .map(|&v| {
                let g = match &self.voi {
                    Some(t) => t.apply(v as f64),
                    None => ((v as f64 - lo) / (hi - lo).max(f64::MIN_POSITIVE)).clamp(0.0, 1.0),
                } as f32;
                if self.invert { 1.0 - g } else { g }
            })
            .collect()
    }

    /// The heat map as RGBA, jet-coloured, transparent where the model saw nothing.
    pub fn heat_rgba(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.heat.len() * 4);
        for &h in &self.heat {
            if h < 0.0 {
                out.extend_from_slice(&[0, 0, 0, 0]);
            } else {
                let [r, g, b] = jet(h);
                out.extend_from_slice(&[r, g, b, 255]);
            }
        }
        out
    }
}

/// The result for one uploaded image.
#[derive(Debug, Clone)]
pub struct ImageAnalysis {
    /// The client's name for the file (for messages and the page only).
    pub name: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub series_instance_uid: Option<String>,
    pub laterality: Option<String>,
    pub view: Option<String>,
    pub probability: f64,
    pub fold_probabilities: Vec<f64>,
    /// Centred box at the heat map's peak, `[x0, y0, x1, y1]` in source pixels (continuous
    /// coordinates: `(0, 0)` is the top-left corner of the top-left pixel).
    pub box_source: [f64; 4],
    /// Largest region above [`THRESHOLD`] x the maximum, in source pixels.
    pub threshold_box_source: Option<[f64; 4]>,
    pub columns: u32,
    pub rows: u32,
    pub display: Display,
}

/// A breast's probability: the mean of its images'.
#[derive(Debug, Clone, Serialize)]
pub struct Breast {
    pub laterality: String,
    pub probability: f64,
    /// Indices into the study's images.
    pub images: Vec<usize>,
}

/// One analysed study.
#[derive(Debug, Clone)]
pub struct Study {
    pub study_instance_uid: String,
    pub images: Vec<ImageAnalysis>,
    pub breasts: Vec<Breast>,
    /// Patient and study attributes of the first image, copied into the results.
    pub copied: Vec<InMemElement>,
}

/// Patient and General Study module attributes the results carry over from the source
/// (PS3.3 C.7.1.1, C.7.2.1), with the character set their text is in.
pub const COPIED_TAGS: [Tag; 10] = [
    tags::SPECIFIC_CHARACTER_SET,
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::STUDY_ID,
    tags::ACCESSION_NUMBER,
];

/// A name safe to show: at most 120 characters, control characters replaced.
pub fn shown_name(name: Option<&str>, index: usize) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n
            .chars()
            .take(120)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect(),
        None => format!("upload {}", index + 1),
    }
}

/// Opens an upload from memory: 415 for DICOM whose transfer syntax cannot be decoded,
/// 400 for anything else that is not a readable DICOM image.
pub fn open_upload(upload: &Upload) -> Result<DicomImage, ServeError> {
    let unsupported = |uid: &str| ServeError::UnsupportedTransferSyntax {
        name: upload.name.clone(),
        uid: uid.to_owned(),
    };
    match DicomImage::from_bytes(&upload.name, &upload.bytes, mammo_dicom::max_frame_pixels()) {
        Ok(image) => {
            let ts = &image.meta().transfer_syntax;
            if !mammo_dicom::can_decode_transfer_syntax(ts) {
                return Err(unsupported(ts));
            }
            Ok(image)
        }
        Err(source) => match mammo_dicom::transfer_syntax_of(&upload.bytes) {
            Some(uid) if !mammo_dicom::can_decode_transfer_syntax(&uid) => Err(unsupported(&uid)),
            _ => Err(ServeError::NotDicom {
                name: upload.name.clone(),
                source,
            }),
        },
    }
}

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = obj.element_opt(tag).ok().flatten()?.to_str().ok()?;
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!s.is_empty()).then(|| s.to_owned())
}

impl Engine {
    /// Loads every trained fold of the run at `dir` (`select`'s weights, the run's choice
    /// unless given) for explaining on `device`, and the run's DICOM preprocessing.
    pub fn load(dir: &Path, select: Option<Select>, device: &Device) -> Result<Self, ServeError> {
        let run = Run::open(dir)?;
        let which = select.unwrap_or(run.config.select);
        let folds = run.trained_folds(which);
        if folds.is_empty() {
            return Err(mammo_train::TrainError::NotARun {
                path: dir.into(),
                reason: format!("no fold has {} yet", which.weights_file()),
            }
            .into());
        }
        let mut explainers = Vec::with_capacity(folds.len());
        for &k in &folds {
            let model = run.load_fold_model(k, which, device)?;
            explainers.push(Explainer::new(model, run.model.clone(), device));
        }
        let pipeline =
            dicom_pipeline(&run).map_err(|cause| mammo_train::TrainError::NoSettings {
                path: dir.into(),
                cause,
            })?;
        let layer = explainers[0].layer_index(None)?;
        let layer_name = explainers[0].feature_layers()[layer].clone();
        let input_size = run.info.input_size;
        let info = ModelInfo {
            run: dir
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            architecture: run.model.architecture.clone(),
            input_size,
            folds,
            select: match which {
                Select::Best => "best".into(),
                Select::Last => "last".into(),
            },
            method: METHOD.name().into(),
            layer: layer_name,
            box_size: (input_size[1] / 5).max(1),
            threshold: THRESHOLD,
            aggregation: "mean of the breast's images' probabilities".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        Ok(Self {
            explainers,
            pipeline,
            layer,
            input_size,
            model_cfg: run.model,
            info,
        })
    }

    /// Analyses the uploads as one study (they must share a Study Instance UID).
    pub fn analyse(&self, uploads: &[Upload]) -> Result<Study, ServeError> {
        if uploads.is_empty() {
            return Err(ServeError::BadRequest(
                "no DICOM file in the request (send multipart/form-data with one or more files)"
                    .into(),
            ));
        }
        // Every file is checked before the model runs on any.
        let opened: Vec<DicomImage> = uploads.iter().map(open_upload).collect::<Result<_, _>>()?;
        let mut study_uid: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        for (u, image) in uploads.iter().zip(&opened) {
            let obj: &InMemDicomObject = image.object();
            let uid = text(obj, tags::STUDY_INSTANCE_UID).ok_or_else(|| {
                ServeError::BadRequest(format!("{}: no Study Instance UID", u.name))
            })?;
            match &study_uid {
                None => study_uid = Some(uid),
                Some(s) if *s != uid => {
                    return Err(ServeError::BadRequest(format!(
                        "{}: Study Instance UID {uid} differs from the first file's {s}: send one \
                         study per request",
                        u.name
                    )));
                }
                Some(_) => {}
            }
            let sop = text(obj, tags::SOP_INSTANCE_UID).ok_or_else(|| {
                ServeError::BadRequest(format!("{}: no SOP Instance UID", u.name))
            })?;
            if !seen.insert(sop.clone()) {
                return Err(ServeError::BadRequest(format!(
                    "{}: SOP Instance UID {sop} sent twice",
                    u.name
                )));
            }
        }
        let study_instance_uid = study_uid.expect("at least one upload");
        let first: &InMemDicomObject = opened[0].object();
        let copied = COPIED_TAGS
            .iter()
            .filter_map(|&t| first.element_opt(t).ok().flatten().cloned())
            .collect();
        let images = uploads
            .iter()
            .zip(&opened)
            .map(|(u, image)| self.analyse_image(&u.name, image))
            .collect::<Result<Vec<_>, _>>()?;
        let breasts = breasts(&images);
        Ok(Study {
            study_instance_uid,
            images,
            breasts,
            copied,
        })
    }

    fn analyse_image(&self, name: &str, image: &DicomImage) -> Result<ImageAnalysis, ServeError> {
        let prepared =
            prepare_dicom(&self.pipeline, image, None).map_err(|source| ServeError::Prepare {
                name: name.to_owned(),
                source: Box::new(source),
            })?;
        let [h, w] = self.input_size;
        let x = model_input(&prepared.pixels, h, w, &self.model_cfg);
        let ens = explain_ensemble(&self.explainers, &x, h, w, self.layer, &[METHOD])?;
        let e = &ens.explanations[0];
        let b = centered_box(&e.heat, w, h, self.info.box_size, self.info.box_size);
        let map = &prepared.mapping;
        let box_source = map.box_to_source([b.x0, b.y0, b.x1, b.y1]);
        let threshold_box_source = threshold_box(&e.heat, w, h, THRESHOLD)
            .map(|t| map.box_to_source([t.x0, t.y0, t.x1, t.y1]));
        let display = display(name, image, map, &e.heat, [h, w])?;
        let obj: &InMemDicomObject = image.object();
        let meta = image.meta();
        Ok(ImageAnalysis {
            name: name.to_owned(),
            sop_class_uid: text(obj, tags::SOP_CLASS_UID).unwrap_or_default(),
            sop_instance_uid: text(obj, tags::SOP_INSTANCE_UID).unwrap_or_default(),
            series_instance_uid: text(obj, tags::SERIES_INSTANCE_UID),
            laterality: prepared
                .laterality
                .clone()
                .or_else(|| meta.laterality.clone()),
            view: meta.view_position.clone(),
            probability: ens.probability,
            fold_probabilities: ens.member_probabilities,
            box_source,
            threshold_box_source,
            columns: meta.columns,
            rows: meta.rows,
            display,
        })
    }
}

/// Per laterality (`L`, `R`, in that order), the mean of its images' probabilities; images
/// without a laterality belong to no breast.
pub fn breasts(images: &[ImageAnalysis]) -> Vec<Breast> {
    ["L", "R"]
        .iter()
        .filter_map(|&side| {
            let idx: Vec<usize> = images
                .iter()
                .enumerate()
                .filter(|(_, i)| i.laterality.as_deref() == Some(side))
                .map(|(k, _)| k)
                .collect();
            (!idx.is_empty()).then(|| Breast {
                laterality: side.into(),
                probability: idx.iter().map(|&k| images[k].probability).sum::<f64>()
                    / idx.len() as f64,
                images: idx,
            })
        })
        .collect()
}

/// The display grid for a `columns x rows` image: at most [`DISPLAY_MAX`] on the long side.
pub fn display_size(columns: u32, rows: u32) -> (u32, u32) {
    let scale = (DISPLAY_MAX as f64 / columns.max(rows) as f64).min(1.0);
    (
        ((columns as f64 * scale).round() as u32).max(1),
        ((rows as f64 * scale).round() as u32).max(1),
    )
}

/// Bilinear sample of a `[h, w]` map at continuous `(x, y)` (pixel centres at `i + 0.5`).
fn sample(map: &[f32], h: usize, w: usize, x: f64, y: f64) -> f32 {
    let fx = (x - 0.5).clamp(0.0, (w - 1) as f64);
    let fy = (y - 0.5).clamp(0.0, (h - 1) as f64);
    let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (tx, ty) = ((fx - x0 as f64) as f32, (fy - y0 as f64) as f32);
    let top = map[y0 * w + x0] * (1.0 - tx) + map[y0 * w + x1] * tx;
    let bottom = map[y1 * w + x0] * (1.0 - tx) + map[y1 * w + x1] * tx;
    top * (1.0 - ty) + bottom * ty
}

/// The heat map (on the model input grid `[h, w]`) on a `dw x dh` display grid of a
/// `columns x rows` source: each display pixel's centre taken to the source, through `map`
/// into the model input, sampled bilinearly; `-1` outside the crop.
pub fn heat_on_display(
    heat: &[f32],
    [h, w]: [usize; 2],
    map: &SourceMap,
    (columns, rows): (u32, u32),
    (dw, dh): (u32, u32),
) -> Vec<f32> {
    let (fx, fy) = (columns as f64 / dw as f64, rows as f64 / dh as f64);
    let c = map.crop;
    let mut out = Vec::with_capacity(dw as usize * dh as usize);
    for j in 0..dh {
        let sy = (j as f64 + 0.5) * fy;
        for i in 0..dw {
            let sx = (i as f64 + 0.5) * fx;
            let inside =
                sx >= c.x0 as f64 && sx < c.x1 as f64 && sy >= c.y0 as f64 && sy < c.y1 as f64;
            out.push(if inside {
                let (ox, oy) = map.to_output(sx, sy);
                sample(heat, h, w, ox, oy)
            } else {
                -1.0
            });
        }
    }
    out
}

/// Decodes the source at about display size (JPEG 2000 at a reduced resolution), through
/// the Modality LUT, area-averaged to the display grid, with the heat map on that grid.
fn display(
    name: &str,
    image: &DicomImage,
    map: &SourceMap,
    heat: &[f32],
    input: [usize; 2],
) -> Result<Display, ServeError> {
    let meta = image.meta();
    let (dw, dh) = display_size(meta.columns, meta.rows);
    let mut reduce = 0;
    if meta.kind == TransferSyntaxKind::Jpeg2000 {
        while reduce < 5 && (meta.columns.max(meta.rows) >> (reduce + 1)) >= DISPLAY_MAX {
            reduce += 1;
        }
    }
    let frame = image
        .decode(0, reduce)
        .map_err(|source| ServeError::NotDicom {
            name: name.to_owned(),
            source,
        })?;
    let lut = &meta.modality_lut;
    let values: Vec<f32> = frame
        .data
        .iter()
        .map(|&v| lut.apply(v as f64) as f32)
        .collect();
    let small = resize(
        &GrayImage::new(frame.width, frame.height, values),
        dw,
        dh,
        Filter::Area,
    );
    let (lo, hi) = small
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let voi = meta.voi.first().cloned();
    let (window_center, window_width, voi_function) = match &voi {
        Some(VoiTransform::Window(w)) => (w.center, w.width, w.function.as_str().to_owned()),
        _ => (
            (lo as f64 + hi as f64) / 2.0,
            (hi as f64 - lo as f64).max(1.0),
            "LINEAR_EXACT".to_owned(),
        ),
    };
    Ok(Display {
        width: dw,
        height: dh,
        heat: heat_on_display(heat, input, map, (meta.columns, meta.rows), (dw, dh)),
        values: small.data,
        window_center,
        window_width,
        voi_function,
        voi,
        invert: meta.photometric == Photometric::Monochrome1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mammo_image::Rect;

    #[test]
    fn display_grid_keeps_the_aspect() {
        assert_eq!(display_size(3328, 4096), (832, 1024));
        assert_eq!(display_size(200, 260), (200, 260));
    }

    #[test]
    fn heat_follows_the_mirror_and_is_empty_outside_the_crop() {
        // A 4x4 model input whose left column is hot; the source is mirrored into it, so
        // the heat must land on the source's right side of the crop.
        let mut heat = vec![0f32; 16];
        for y in 0..4 {
            heat[y * 4] = 1.0;
        }
        let map = SourceMap {
            crop: Rect {
                x0: 0,
                y0: 0,
                x1: 8,
                y1: 8,
            },
            flipped: true,
            scale_x: 0.5,
            scale_y: 0.5,
            offset_x: 0,
            offset_y: 0,
        };
        let d = heat_on_display(&heat, [4, 4], &map, (10, 8), (10, 8));
        assert_eq!(d[8], -1.0, "column 8 is outside the crop");
        assert!(d[7] > 0.99, "right edge of the crop is hot: {}", d[7]);
        assert!(d[0] < 0.01, "left edge is cold: {}", d[0]);
    }

    fn image(laterality: &str, p: f64) -> ImageAnalysis {
        ImageAnalysis {
            name: String::new(),
            sop_class_uid: String::new(),
            sop_instance_uid: String::new(),
            series_instance_uid: None,
            laterality: (!laterality.is_empty()).then(|| laterality.into()),
            view: None,
            probability: p,
            fold_probabilities: vec![p],
            box_source: [0.0; 4],
            threshold_box_source: None,
            columns: 1,
            rows: 1,
            display: Display {
                width: 1,
                height: 1,
                values: vec![0.0],
                window_center: 0.0,
                window_width: 1.0,
                voi_function: "LINEAR".into(),
                voi: None,
                invert: false,
                heat: vec![0.0],
            },
        }
    }

    #[test]
    fn a_breast_is_the_mean_of_its_images() {
        let b = breasts(&[
            image("R", 0.2),
            image("L", 0.1),
            image("R", 0.4),
            image("", 0.9),
        ]);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].laterality.as_str(), b[0].images.clone()),
            ("L", vec![1])
        );
        assert_eq!(b[1].images, vec![0, 2]);
        assert!((b[1].probability - 0.3).abs() < 1e-12);
    }

    #[test]
    fn names_are_shown_safely() {
        assert_eq!(shown_name(Some("a\u{1b}[31m.dcm"), 0), "a?[31m.dcm");
        assert_eq!(shown_name(None, 2), "upload 3");
        assert_eq!(shown_name(Some(&"x".repeat(500)), 0).len(), 120);
    }
}
