//! The real images a GAN learns from: PNGs named by a manifest (rows with the chosen label,
//! never synthetic ones) or found in a folder, resized to the training resolution and held in
//! memory as `[-1, 1]` floats, split by patient into training and held-out sets.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use mammo_image::{Filter, GrayImage};

use crate::error::{GanError, Result};

/// Where the real images come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImageSource {
    /// A `mammo preprocess` manifest; rows with this label (`None`: all), status ok, not
    /// synthetic.
    Manifest {
        path: PathBuf,
        /// Only rows with this label (`Some(true)`: cancer); `None`: every labelled or
        /// unlabelled row.
        label: Option<bool>,
    },
    /// Every `.png` under a folder (recursively); each file is its own patient.
    Folder(PathBuf),
}

/// One real image's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealImage {
    pub image_id: String,
    pub patient_id: String,
    pub path: PathBuf,
}

/// A set of images at one size, `[n, channels, res, res]` row-major in `[-1, 1]`.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub images: Vec<RealImage>,
    pub values: Vec<f32>,
    pub res: usize,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.images.len()
    }
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
    pub fn image(&self, i: usize) -> &[f32] {
        let p = self.res * self.res;
        &self.values[i * p..(i + 1) * p]
    }
}

/// Training and held-out images.
#[derive(Debug, Clone)]
pub struct RealData {
    pub train: ImageSet,
    pub holdout: ImageSet,
}

/// Lists the images of a source.
pub fn list_images(source: &ImageSource) -> Result<Vec<RealImage>> {
    match source {
        ImageSource::Manifest { path, label } => {
            let rows = mammo_dataset::read_manifest(path)?;
            let base = path.parent().unwrap_or(Path::new("."));
            let mut out = Vec::new();
            for r in rows {
                if !r.is_ok() || r.synthetic || label.is_some_and(|w| r.label != Some(w)) {
                    continue;
                }
                out.push(RealImage {
                    path: r.png_path(base),
                    image_id: r.image_id,
                    patient_id: r.patient_id,
                });
            }
            if out.is_empty() {
                return Err(GanError::Data {
                    path: path.clone(),
                    reason: format!(
                        "no usable rows{}",
                        label.map_or(String::new(), |l| format!(" with label {l}"))
                    ),
                });
            }
            Ok(out)
        }
        ImageSource::Folder(dir) => {
            let mut files = Vec::new();
            walk(dir, &mut files)?;
            files.sort();
            if files.is_empty() {
                return Err(GanError::Data {
                    path: dir.clone(),
                    reason: "no .png files".into(),
                });
            }
            Ok(files
                .into_iter()
                .map(|p| {
                    let id = p
                        .strip_prefix(dir)
                        .unwrap_or(&p)
                        .with_extension("")
                        .to_string_lossy()
                        .replace(std::path::MAIN_SEPARATOR, "/");
                    RealImage {
                        image_id: id.clone(),
                        patient_id: id,
                        path: p,
                    }
                })
                .collect())
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(|e| GanError::io("list", dir, e))? {
        let p = e.map_err(|e| GanError::io("list", dir, e))?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads and resizes `images` to `res` x `res` (area filter) in `[-1, 1]`.
pub fn load_set(images: Vec<RealImage>, res: usize) -> Result<ImageSet> {
    let per = res * res;
    let mut values = vec![0f32; images.len() * per];
    values
        .par_chunks_mut(per)
        .zip(images.par_iter())
        .try_for_each(|(out, img)| -> Result<()> {
            let mammo_image::GrayPng {
                height: h,
                width: w,
                bit_depth: bits,
                samples: px,
            } = mammo_image::read_png_gray(&img.path).map_err(|cause| GanError::Image {
                path: img.path.clone(),
                cause,
            })?;
            let max = ((1u32 << bits) - 1) as f32;
            let g = GrayImage::new(w, h, px.iter().map(|&v| v as f32 / max).collect());
            let g = if (w as usize, h as usize) == (res, res) {
                g
            } else {
                mammo_image::resize(&g, res as u32, res as u32, Filter::Area)
            };
            for (o, v) in out.iter_mut().zip(&g.data) {
                *o = v.clamp(0.0, 1.0) * 2.0 - 1.0;
            }
            Ok(())
        })?;
    Ok(ImageSet {
        images,
        values,
        res,
    })
}

/// Splits by patient: a patient is held out when a hash of its id and the seed falls below
/// `fraction`, so the split does not depend on row order and grows stably with the data.
pub fn split_by_patient(
    images: Vec<RealImage>,
    fraction: f64,
    seed: u64,
) -> (Vec<RealImage>, Vec<RealImage>) {
    images.into_iter().partition(|img| {
        let h = img
            .patient_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
            });
        (mammo_rand::derive(seed, &[h]) as f64 / u64::MAX as f64) >= fraction
    })
}

/// Lists, splits and loads a source.
pub fn load_real(
    source: &ImageSource,
    res: usize,
    holdout_fraction: f64,
    seed: u64,
) -> Result<RealData> {
    let all = list_images(source)?;
    let (train, holdout) = split_by_patient(all, holdout_fraction, seed);
    if train.len() < 2 {
        return Err(GanError::Data {
            path: source_path(source).to_path_buf(),
            reason: format!(
                "only {} training image(s) after holding out {holdout_fraction} of the patients",
                train.len()
            ),
        });
    }
    Ok(RealData {
        train: load_set(train, res)?,
        holdout: load_set(holdout, res)?,
    })
}

pub fn source_path(source: &ImageSource) -> &Path {
    match source {
        ImageSource::Manifest { path, .. } => path,
        ImageSource::Folder(p) => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_patients_together_and_is_order_free() {
        let imgs: Vec<RealImage> = (0..200)
            .map(|i| RealImage {
                image_id: format!("{i}"),
                patient_id: format!("p{}", i / 2),
                path: PathBuf::new(),
            })
            .collect();
        let (train, hold) = split_by_patient(imgs.clone(), 0.25, 3);
        assert!((30..70).contains(&hold.len()), "{}", hold.len());
        for h in &hold {
            assert!(train.iter().all(|t| t.patient_id != h.patient_id));
        }
        let mut rev = imgs;
        rev.reverse();
        let (_, hold2) = split_by_patient(rev, 0.25, 3);
        let mut a: Vec<_> = hold.iter().map(|i| &i.image_id).collect();
        let mut b: Vec<_> = hold2.iter().map(|i| &i.image_id).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }
}
