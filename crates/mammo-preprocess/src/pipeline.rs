//! One image through the pipeline: decode (reduced when it can), render, crop, flip, fit.

use std::path::{Path, PathBuf};

use mammo_dicom::{
    DicomError, DicomImage, RenderError, Renderer, TransferSyntaxKind, VoiChoice, quantize,
};
use mammo_image::{
    CropParams, Filter, GrayImage, Placement, Rect, Side, detect_breast, fit_and_pad,
};
use serde::{Deserialize, Serialize};

use mammo_dataset::SourceMap;

/// An output size, `height x width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSize {
    pub height: u32,
    pub width: u32,
}

impl OutputSize {
    /// A `side` x `side` output.
    pub fn square(side: u32) -> Self {
        Self {
            height: side,
            width: side,
        }
    }

    /// Folder name: `512` for square sizes, `512x384` (HxW) otherwise.
    pub fn label(&self) -> String {
        if self.height == self.width {
            self.height.to_string()
        } else {
            format!("{}x{}", self.height, self.width)
        }
    }
}

/// Mirror so the breast lies on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FlipTo {
    /// Right breasts are mirrored, so every chest wall is on the left.
    Left,
    #[default]
    None,
}

impl std::str::FromStr for FlipTo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "left" => Ok(Self::Left),
            "none" => Ok(Self::None),
            o => Err(format!("--flip-to {o:?}: expected left or none")),
        }
    }
}

fn voi_ser<S: serde::Serializer>(v: &VoiChoice, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}
fn voi_de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<VoiChoice, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

/// Settings of the per-image pipeline; saved beside every output as `preprocess.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineConfig {
    /// Output sizes (one PNG each).
    pub sizes: Vec<OutputSize>,
    /// Crop to the breast.
    pub crop: bool,
    pub crop_params: CropParams,
    /// VOI: `first` window of the file (min-max when it has none), `none` (min-max), or an index.
    #[serde(serialize_with = "voi_ser", deserialize_with = "voi_de")]
    pub voi: VoiChoice,
    /// PNG depth, 8 or 16.
    pub bits: u32,
    pub flip_to: FlipTo,
    pub filter: Filter,
    /// Keep the aspect ratio and pad (true), or stretch to the size (false).
    pub keep_aspect: bool,
    /// Decode JPEG 2000 at reduced resolution when every output is at most half the source.
    pub reduced_decode: bool,
    /// When cropping, the reduced decode assumes the breast spans at least this fraction of
    /// the image in the limiting direction, so the crop is never upsampled by much.
    pub min_crop_fraction: f64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            sizes: vec![OutputSize {
                height: 512,
                width: 512,
            }],
            crop: true,
            crop_params: CropParams::default(),
            voi: VoiChoice::First,
            bits: 8,
            flip_to: FlipTo::None,
            filter: Filter::Area,
            keep_aspect: true,
            reduced_decode: true,
            min_crop_fraction: 0.75,
        }
    }
}

impl PipelineConfig {
    /// Algorithm 1's "original" stage: the stored image rendered over its own minimum and
    /// maximum (no VOI window, no crop, no flip), resized to each of `sizes` (square).
    pub fn original_stage(sizes: &[u32]) -> Self {
        Self {
            sizes: sizes.iter().map(|&r| OutputSize::square(r)).collect(),
            crop: false,
            voi: VoiChoice::None,
            flip_to: FlipTo::None,
            ..Self::default()
        }
    }

    /// Algorithm 1's "processed" stage: cropped to the breast, the data set's first VOI
    /// window, every breast turned to face the same side, resized to each of `sizes`.
    pub fn processed_stage(sizes: &[u32]) -> Self {
        Self {
            sizes: sizes.iter().map(|&r| OutputSize::square(r)).collect(),
            crop: true,
            voi: VoiChoice::First,
            flip_to: FlipTo::Left,
            ..Self::default()
        }
    }

    /// Values no image can be processed with.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.sizes.is_empty() {
            return Err(SettingsError::NoSize);
        }
        if let Some(s) = self
            .sizes
            .iter()
            .find(|s| s.height == 0 || s.width == 0 || s.height > 16384 || s.width > 16384)
        {
            return Err(SettingsError::SizeOutOfRange(*s));
        }
        if !matches!(self.bits, 8 | 16) {
            return Err(SettingsError::Bits(self.bits));
        }
        if !(0.05..=1.0).contains(&self.min_crop_fraction) {
            return Err(SettingsError::MinCropFraction(self.min_crop_fraction));
        }
        Ok(())
    }
}

/// Preprocessing settings no image can be processed with ([`PipelineConfig::validate`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("no output size")]
    NoSize,
    #[error("output size {}x{} out of range", .0.height, .0.width)]
    SizeOutOfRange(OutputSize),
    #[error("--bits {0}: 8 or 16")]
    Bits(u32),
    #[error("min_crop_fraction {0} outside 0.05..=1")]
    MinCropFraction(f64),
}

/// One output of one image.
#[derive(Debug, Clone)]
pub struct SizedOutput {
    pub size: OutputSize,
    pub pixels: Vec<u16>,
    /// Output pixels per source pixel and where the image sits, so that a point `(x, y)` of
    /// the stored image maps to `offset + scale * (x - crop.x0)` (or `crop.x1 - x` when
    /// flipped).
    pub placement: Placement,
}

/// What the pipeline made of one image.
#[derive(Debug, Clone)]
pub struct Processed {
    pub source_width: u32,
    pub source_height: u32,
    pub reduce: u32,
    /// Crop box in stored-image pixels (the whole image when not cropping).
    pub crop: Rect,
    /// Whether a breast was found (false: the whole image was kept).
    pub breast_found: bool,
    pub flipped: bool,
    pub voi_used: String,
    pub inverted: bool,
    pub laterality: Option<String>,
    pub outputs: Vec<SizedOutput>,
}

impl Processed {
    /// How stored-image pixels map into output `i` (and back).
    pub fn mapping(&self, i: usize) -> SourceMap {
        let p = &self.outputs[i].placement;
        SourceMap {
            crop: self.crop,
            flipped: self.flipped,
            scale_x: p.scale_x,
            scale_y: p.scale_y,
            offset_x: p.offset_x,
            offset_y: p.offset_y,
        }
    }
}

/// The largest reduce factor that keeps every output a downsampling of the (cropped) source.
pub fn choose_reduce(cfg: &PipelineConfig, columns: u32, rows: u32) -> u32 {
    if !cfg.reduced_decode {
        return 0;
    }
    let a = if cfg.crop { cfg.min_crop_fraction } else { 1.0 };
    let fits = |r: u32| {
        let (w, h) = (
            columns as f64 / (1u64 << r) as f64 * a,
            rows as f64 / (1u64 << r) as f64 * a,
        );
        cfg.sizes.iter().all(|s| {
            if cfg.keep_aspect {
                // the binding direction must still shrink
                (s.width as f64 / w).min(s.height as f64 / h) <= 1.0
            } else {
                s.width as f64 <= w && s.height as f64 <= h
            }
        })
    };
    let mut r = 0;
    while r < 10 && fits(r + 1) {
        r += 1;
    }
    r
}

/// Why one image could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The file could not be read, or its pixels decoded.
    #[error(transparent)]
    Dicom(#[from] DicomError),
    /// The decoded pixels cannot be shown as a grey image.
    #[error("cannot render {}: {cause}", path.display())]
    Render { path: PathBuf, cause: RenderError },
}

/// Runs the pipeline on one file. `laterality_hint` (from the CSV) wins over the DICOM tag
/// for flipping; without either the chest-wall side the breast detector finds decides
/// (film borders and edge strips cut off), or, when it finds no breast, the heavier half.
pub fn process_image(
    path: &Path,
    cfg: &PipelineConfig,
    laterality_hint: Option<&str>,
) -> Result<Processed, ProcessError> {
    let image = DicomImage::open(path)?;
    process_dicom(&image, cfg, laterality_hint)
}

/// [`process_image`] on an image already opened (from a file or from memory with
/// [`DicomImage::from_bytes`]); errors name [`DicomImage::path`].
pub fn process_dicom(
    image: &DicomImage,
    cfg: &PipelineConfig,
    laterality_hint: Option<&str>,
) -> Result<Processed, ProcessError> {
    let path = image.path();
    let meta = image.meta();
    let reduce = if meta.kind == TransferSyntaxKind::Jpeg2000 {
        choose_reduce(cfg, meta.columns, meta.rows)
    } else {
        0
    };
    let stored = image.decode(0, reduce)?;
    let rendered = Renderer::new(cfg.voi)
        .render(meta, &stored)
        .map_err(|cause| ProcessError::Render {
            path: path.into(),
            cause,
        })?;
    let factor = (1u32 << stored.reduce) as f64;
    let img = GrayImage::new(rendered.width, rendered.height, rendered.data);

    // The detector also finds the chest-wall side, which flipping needs when neither the
    // CSV nor the header gives the laterality.
    let needs_side = cfg.flip_to == FlipTo::Left;
    let region = if cfg.crop || needs_side {
        detect_breast(&img, &cfg.crop_params)
    } else {
        None
    };
    let chest_wall = region.as_ref().map(|r| r.chest_wall);
    let (img, crop_reduced, breast_found) = match region.filter(|_| cfg.crop) {
        Some(region) => {
            let out = region.apply(&img);
            (out, region.bbox, true)
        }
        None => {
            let full = Rect::full(img.width, img.height);
            (img, full, false)
        }
    };
    // Crop box back in stored-image pixels.
    let crop = crop_reduced.scaled(factor, factor, meta.columns, meta.rows);

    let laterality = laterality_hint
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| meta.laterality.clone());
    let flipped = match cfg.flip_to {
        FlipTo::None => false,
        FlipTo::Left => match laterality.as_deref() {
            Some("R") => true,
            Some("L") => false,
            _ => chest_wall.unwrap_or_else(|| img.heavier_side()) == Side::Right,
        },
    };
    let img = if flipped { img.flip_horizontal() } else { img };

    let outputs = cfg
        .sizes
        .iter()
        .map(|&size| {
            let (out, mut placement) = fit_and_pad(
                &img,
                size.width,
                size.height,
                cfg.filter,
                cfg.keep_aspect,
                cfg.flip_to == FlipTo::Left,
                0.0,
            );
            // Express the scale per stored-image pixel.
            placement.scale_x /= factor;
            placement.scale_y /= factor;
            SizedOutput {
                size,
                pixels: quantize(&out.data, cfg.bits),
                placement,
            }
        })
        .collect();
    Ok(Processed {
        source_width: meta.columns,
        source_height: meta.rows,
        reduce: stored.reduce,
        crop,
        breast_found,
        flipped,
        voi_used: rendered.voi_used,
        inverted: rendered.inverted,
        laterality,
        outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_saved_before_strip_width_still_load() {
        let mut saved = serde_json::to_value(PipelineConfig::default()).unwrap();
        let crop = saved["crop_params"].as_object_mut().unwrap();
        assert!(crop.remove("strip_width").is_some());
        crop.insert("margin".into(), serde_json::json!(0.01));
        let loaded: PipelineConfig = serde_json::from_value(saved).unwrap();
        assert_eq!(
            loaded.crop_params,
            CropParams {
                margin: 0.01,
                ..Default::default()
            }
        );
    }

    #[test]
    fn reduce_policy() {
        let mut cfg = PipelineConfig {
            crop: false,
            ..Default::default()
        };
        // 3328 rows x 2560 cols to 512: scale 0.154, so 2^2 = 4 keeps 832x640 >= 512.
        assert_eq!(choose_reduce(&cfg, 2560, 3328), 2);
        cfg.crop = true; // 0.75 allowance: 832*0.75 = 624 >= 512 still
        assert_eq!(choose_reduce(&cfg, 2560, 3328), 2);
        cfg.sizes = vec![
            OutputSize {
                height: 256,
                width: 256,
            },
            OutputSize {
                height: 512,
                width: 512,
            },
        ];
        assert_eq!(choose_reduce(&cfg, 2560, 3328), 2, "largest size binds");
        cfg.sizes = vec![OutputSize {
            height: 2048,
            width: 2048,
        }];
        assert_eq!(
            choose_reduce(&cfg, 2560, 3328),
            0,
            "output not at most half the source"
        );
        cfg.reduced_decode = false;
        cfg.sizes = vec![OutputSize {
            height: 64,
            width: 64,
        }];
        assert_eq!(choose_reduce(&cfg, 2560, 3328), 0);
    }
}
