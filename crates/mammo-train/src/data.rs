//! Training data: manifest rows to labelled items, fold assignment, the per-epoch sample
//! order (positives oversampled, flips), and image batches as normalised `f32`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use mammo_models::ModelConfig;
use mammo_rand::Rng;

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};

pub use mammo_dataset::{Dataset, Item, assign_folds};

/// One training sample of an epoch: which item, and how it is altered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub item: usize,
    pub aug: Augment,
}

/// How a training sample is altered: flipped, then translated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    pub hflip: bool,
    pub vflip: bool,
    /// Translation down and right, as fractions of the image's height and width.
    pub shift: [f32; 2],
}

impl Augment {
    /// The identity (validation and inference).
    pub const NONE: Augment = Augment {
        hflip: false,
        vflip: false,
        shift: [0.0, 0.0],
    };
}

/// The training order of `epoch` of `fold`: every training item once (a synthetic item made
/// for another fold's training is left out), positives
/// `oversample_positives` times, shuffled; each sample flipped with probabilities `hflip` and
/// `vflip` and translated by up to `shift`. A pure function of (seed, fold, epoch), so a
/// resumed run sees the same order. A setting at 0 draws nothing, so adding one leaves the
/// order and flips of runs without it as they were.
pub fn epoch_samples(
    items: &[Item],
    folds: &[Option<usize>],
    fold: usize,
    epoch: usize,
    cfg: &TrainConfig,
) -> Vec<Sample> {
    let mut order = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if folds[i] == Some(fold) || item.synthetic_fold.is_some_and(|k| k != fold) {
            continue;
        }
        let times = if item.label == 1 {
            cfg.oversample_positives
        } else {
            1
        };
        order.extend(std::iter::repeat_n(i, times));
    }
    let mut rng = Rng::from_keys(cfg.seed, &[0x0074_7261_696e, fold as u64, epoch as u64]);
    rng.shuffle(&mut order);
    order
        .into_iter()
        .map(|item| {
            let hflip = cfg.hflip > 0.0 && rng.uniform() < cfg.hflip;
            let vflip = cfg.vflip > 0.0 && rng.uniform() < cfg.vflip;
            let mut shift = [0f32; 2];
            if cfg.shift > 0.0 {
                for s in &mut shift {
                    *s = ((2.0 * rng.uniform() - 1.0) * cfg.shift) as f32;
                }
            }
            Sample {
                item,
                aug: Augment {
                    hflip,
                    vflip,
                    shift,
                },
            }
        })
        .collect()
}

/// Items of the validation fold, in manifest order.
pub fn validation_items(folds: &[Option<usize>], fold: usize) -> Vec<usize> {
    (0..folds.len())
        .filter(|&i| folds[i] == Some(fold))
        .collect()
}

/// A grey image read from PNG as `[0, 1]` floats.
pub fn read_image(path: &Path) -> Result<(usize, usize, Vec<f32>)> {
    let png = mammo_image::read_png_gray(path).map_err(|e| TrainError::Image {
        path: path.into(),
        cause: e.into(),
    })?;
    Ok((
        png.height as usize,
        png.width as usize,
        unit_range(&png.samples, png.bit_depth),
    ))
}

/// Decoded training images held in memory up to a byte budget (`mammo train --cache-mb`),
/// keyed by path: for a set that fits, the epochs after the first read no PNG. It never
/// evicts: the first images read fill it, the rest are read from disk every time. A budget of
/// 0 keeps nothing. Values are kept as stored (2 bytes a pixel) and scaled on the way out, so
/// a cached batch is bit-identical to a read one.
#[derive(Debug, Default)]
pub struct ImageCache {
    budget: usize,
    used: AtomicUsize,
    images: RwLock<HashMap<PathBuf, Arc<CachedImage>>>,
}

#[derive(Debug)]
struct CachedImage {
    height: usize,
    width: usize,
    bits: u32,
    values: Vec<u16>,
}

impl ImageCache {
    /// A cache that holds at most `budget_bytes` of pixel data.
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget: budget_bytes,
            ..Self::default()
        }
    }

    /// Bytes of pixel data held.
    pub fn used_bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Images held.
    pub fn len(&self) -> usize {
        self.images.read().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`read_image`] through the cache.
    pub fn read(&self, path: &Path) -> Result<(usize, usize, Vec<f32>)> {
        if self.budget == 0 {
            return read_image(path);
        }
        if let Some(c) = self.images.read().ok().and_then(|m| m.get(path).cloned()) {
            return Ok((c.height, c.width, unit_range(&c.values, c.bits)));
        }
        let mammo_image::GrayPng {
            height: h,
            width: w,
            bit_depth: bits,
            samples: values,
        } = mammo_image::read_png_gray(path).map_err(|e| TrainError::Image {
            path: path.into(),
            cause: e.into(),
        })?;
        let pixels = unit_range(&values, bits);
        let bytes = values.len() * 2;
        // Reserve the bytes first, so threads racing to fill the cache cannot overshoot it.
        let reserved = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes <= self.budget;
        let kept = reserved
            && self.images.write().is_ok_and(|mut m| {
                if m.contains_key(path) {
                    return false;
                }
                m.insert(
                    path.to_path_buf(),
                    Arc::new(CachedImage {
                        height: h as usize,
                        width: w as usize,
                        bits,
                        values,
                    }),
                );
                true
            });
        if !kept {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
        }
        Ok((h as usize, w as usize, pixels))
    }
}

/// Stored PNG values of depth `bits` scaled to `[0, 1]`.
pub fn unit_range(values: &[u16], bits: u32) -> Vec<f32> {
    let max = ((1u32 << bits) - 1) as f32;
    values.iter().map(|&v| v as f32 / max).collect()
}

/// One `h` x `w` image of `[0, 1]` pixels as the model's input (`in_chans` normalised
/// planes, not flipped): what inference and explanation feed a model.
pub fn model_input(pixels: &[f32], h: usize, w: usize, model: &ModelConfig) -> Vec<f32> {
    let mut x = vec![0f32; model.in_chans * h * w];
    normalise_into(pixels, h, w, false, model, &mut x);
    x
}

/// Normalises `[0, 1]` pixels with the model's mean/std into `out` (`in_chans` planes),
/// flipping horizontally if asked.
pub fn normalise_into(
    pixels: &[f32],
    h: usize,
    w: usize,
    flip: bool,
    model: &ModelConfig,
    out: &mut [f32],
) {
    let aug = Augment {
        hflip: flip,
        ..Augment::NONE
    };
    augment_into(pixels, h, w, aug, model, out);
}

/// [`normalise_into`] with `aug` applied: flips, then a translation by `aug.shift` (rounded
/// to whole pixels) that fills the border it uncovers with black (pixel value 0).
pub fn augment_into(
    pixels: &[f32],
    h: usize,
    w: usize,
    aug: Augment,
    model: &ModelConfig,
    out: &mut [f32],
) {
    let plane = h * w;
    let dy = (aug.shift[0] * h as f32).round() as isize;
    let dx = (aug.shift[1] * w as f32).round() as isize;
    // Output columns x0..x1 come from columns x0 - dx..x1 - dx of the flipped image; the
    // rest is border.
    let x0 = dx.clamp(0, w as isize) as usize;
    let x1 = (w as isize + dx).clamp(0, w as isize) as usize;
    let (s0, s1) = ((x0 as isize - dx) as usize, (x1 as isize - dx) as usize);
    for c in 0..model.in_chans {
        let (m, s) = (model.mean[c], model.std[c]);
        let black = (0.0 - m) / s;
        let dst = &mut out[c * plane..(c + 1) * plane];
        for y in 0..h {
            let row = &mut dst[y * w..(y + 1) * w];
            let sy = y as isize - dy;
            if !(0..h as isize).contains(&sy) {
                row.fill(black);
                continue;
            }
            let sy = if aug.vflip {
                h - 1 - sy as usize
            } else {
                sy as usize
            };
            let src = &pixels[sy * w..(sy + 1) * w];
            row[..x0].fill(black);
            row[x1..].fill(black);
            let row = &mut row[x0..x1];
            if aug.hflip {
                // Column j of the mirrored row is column w - 1 - j of the stored one.
                for (d, v) in row.iter_mut().zip(src[w - s1..w - s0].iter().rev()) {
                    *d = (v - m) / s;
                }
            } else {
                for (d, v) in row.iter_mut().zip(&src[s0..s1]) {
                    *d = (v - m) / s;
                }
            }
        }
    }
}

/// A batch ready for the model: `[n, in_chans, h, w]` values and labels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    pub n: usize,
    pub values: Vec<f32>,
    pub labels: Vec<u8>,
}

/// Reads (through `cache`) and normalises the samples' images in parallel. Every image must
/// have the dataset's size.
pub fn load_batch(
    items: &[Item],
    samples: &[Sample],
    size: [usize; 2],
    model: &ModelConfig,
    cache: &ImageCache,
) -> Result<Batch> {
    let [h, w] = size;
    let per = model.in_chans * h * w;
    let mut values = vec![0f32; samples.len() * per];
    values
        .par_chunks_mut(per)
        .zip(samples.par_iter())
        .try_for_each(|(out, s)| {
            let item = &items[s.item];
            let (ih, iw, px) = cache.read(&item.path)?;
            if [ih, iw] != size {
                return Err(TrainError::Image {
                    path: item.path.clone(),
                    cause: format!("is {iw}x{ih}, the manifest says {w}x{h}").into(),
                });
            }
            augment_into(&px, h, w, s.aug, model, out);
            Ok(())
        })?;
    Ok(Batch {
        n: samples.len(),
        values,
        labels: samples.iter().map(|s| items[s.item].label).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_cache_keeps_what_fits_and_gives_what_a_read_gives() {
        let dir = std::env::temp_dir().join(format!("mammo-image-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths: Vec<PathBuf> = (0..3u16)
            .map(|i| {
                let p = dir.join(format!("{i}.png"));
                let px: Vec<u16> = (0..6 * 4).map(|k| (k * 2000 + i) % 65535).collect();
                mammo_image::write_png_gray(&p, 4, 6, &px, 16).unwrap();
                p
            })
            .collect();
        let read: Vec<_> = paths.iter().map(|p| read_image(p).unwrap()).collect();
        // 24 pixels of 2 bytes: room for two images.
        let cache = ImageCache::new(2 * 48 + 10);
        for (p, want) in paths.iter().zip(&read) {
            assert_eq!(&cache.read(p).unwrap(), want);
        }
        assert_eq!((cache.len(), cache.used_bytes()), (2, 96));
        // The first two now come from memory, bit-identical; the third is read again.
        for p in &paths {
            std::fs::remove_file(p).unwrap();
        }
        assert_eq!(cache.read(&paths[0]).unwrap(), read[0]);
        assert_eq!(cache.read(&paths[1]).unwrap(), read[1]);
        assert!(cache.read(&paths[2]).is_err());
        let none = ImageCache::new(0);
        assert!(none.read(&paths[0]).is_err() && none.is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }

    fn items(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| Item {
                image_id: format!("{i}"),
                patient_id: format!("p{}", i / 4),
                laterality: if i % 2 == 0 { "L".into() } else { "R".into() },
                label: u8::from(i % 8 == 0),
                synthetic: i >= n - 3,
                synthetic_fold: None,
                path: PathBuf::new(),
            })
            .collect()
    }

    #[test]
    fn folds_group_patients_and_keep_synthetic_out_of_validation() {
        let items = items(83);
        let cfg = TrainConfig {
            folds: 4,
            ..TrainConfig::default()
        };
        let folds = assign_folds(&items, cfg.split, cfg.folds, cfg.seed).unwrap();
        for (i, it) in items.iter().enumerate() {
            assert_eq!(folds[i].is_none(), it.synthetic);
            for (j, other) in items.iter().enumerate() {
                if it.patient_id == other.patient_id && !it.synthetic && !other.synthetic {
                    assert_eq!(
                        folds[i], folds[j],
                        "patient {} split across folds",
                        it.patient_id
                    );
                }
            }
        }
        for f in 0..4 {
            assert!(
                validation_items(&folds, f)
                    .iter()
                    .all(|&i| !items[i].synthetic)
            );
        }
    }

    #[test]
    fn a_fold_specific_synthetic_item_trains_only_that_fold() {
        let mut items = items(40);
        items[39].synthetic_fold = Some(2); // made without fold 2's images
        let cfg = TrainConfig {
            folds: 4,
            oversample_positives: 1,
            ..TrainConfig::default()
        };
        let folds = assign_folds(&items, cfg.split, cfg.folds, cfg.seed).unwrap();
        for f in 0..4 {
            let s = epoch_samples(&items, &folds, f, 0, &cfg);
            assert_eq!(s.iter().any(|x| x.item == 39), f == 2, "fold {f}");
            assert!(
                s.iter().any(|x| x.item == 38),
                "an unrestricted synthetic item trains every fold"
            );
        }
    }

    #[test]
    fn epoch_order_oversamples_and_is_reproducible() {
        let items = items(80);
        let cfg = TrainConfig {
            folds: 4,
            ..TrainConfig::default()
        };
        let folds = assign_folds(&items, cfg.split, cfg.folds, cfg.seed).unwrap();
        let a = epoch_samples(&items, &folds, 1, 0, &cfg);
        assert_eq!(a, epoch_samples(&items, &folds, 1, 0, &cfg));
        assert_ne!(
            a,
            epoch_samples(&items, &folds, 1, 1, &cfg),
            "each epoch reshuffles"
        );
        let train: Vec<usize> = (0..80).filter(|&i| folds[i] != Some(1)).collect();
        let pos = train.iter().filter(|&&i| items[i].label == 1).count();
        assert_eq!(a.len(), train.len() + 4 * pos, "positives 5x");
        for &i in &train {
            let times = a.iter().filter(|s| s.item == i).count();
            assert_eq!(times, if items[i].label == 1 { 5 } else { 1 });
        }
        assert!(
            a.iter().all(|s| folds[s.item] != Some(1)),
            "no validation image in training"
        );
        let flips = a.iter().filter(|s| s.aug.hflip).count() as f64 / a.len() as f64;
        assert!((0.3..0.7).contains(&flips), "flip rate {flips}");
        assert!(
            a.iter().all(|s| !s.aug.vflip && s.aug.shift == [0.0; 2]),
            "vflip and shift are off by default"
        );
        let none = TrainConfig {
            hflip: 0.0,
            oversample_positives: 1,
            ..cfg.clone()
        };
        let b = epoch_samples(&items, &folds, 1, 0, &none);
        assert!(b.iter().all(|s| s.aug == Augment::NONE) && b.len() == train.len());
        // With vflip and shift on, both vary, stay in range and are reproducible.
        let more = TrainConfig {
            vflip: 0.5,
            shift: 0.1,
            ..cfg
        };
        let c = epoch_samples(&items, &folds, 1, 0, &more);
        let v = c.iter().filter(|s| s.aug.vflip).count() as f64 / c.len() as f64;
        assert!((0.3..0.7).contains(&v), "vflip rate {v}");
        assert!(
            c.iter().all(|s| s.aug.shift.iter().all(|d| d.abs() <= 0.1)),
            "shift within range"
        );
        assert!(
            c.iter().any(|s| s.aug.shift[0] > 0.05) && c.iter().any(|s| s.aug.shift[1] < -0.05)
        );
        assert_eq!(
            c,
            epoch_samples(&items, &folds, 1, 0, &more),
            "deterministic"
        );
    }

    #[test]
    fn normalise_and_flip() {
        let model = ModelConfig::new("resnet18").unwrap();
        let px = [0.0, 0.5, 1.0, 0.25];
        let mut out = [0f32; 4];
        normalise_into(&px, 2, 2, true, &model, &mut out);
        let n = |v: f32| (v - model.mean[0]) / model.std[0];
        assert_eq!(out, [n(0.5), n(0.0), n(0.25), n(1.0)]);
    }

    #[test]
    fn augment_flips_then_shifts_with_a_black_border() {
        let model = ModelConfig::new("resnet18").unwrap();
        let n = |v: f32| (v - model.mean[0]) / model.std[0];
        // 3x3 image, values 1..9 / 10 row-major.
        let px: Vec<f32> = (1..=9).map(|v| v as f32 / 10.0).collect();
        let mut out = [0f32; 9];
        let aug = Augment {
            hflip: false,
            vflip: true,
            shift: [0.0, 1.0 / 3.0],
        };
        augment_into(&px, 3, 3, aug, &model, &mut out);
        // Flipped vertically: rows 7 8 9 / 4 5 6 / 1 2 3; then one pixel right.
        let want = [0.0, 0.7, 0.8, 0.0, 0.4, 0.5, 0.0, 0.1, 0.2].map(n);
        assert_eq!(out, want);
        let aug = Augment {
            hflip: true,
            vflip: false,
            shift: [-1.0 / 3.0, 0.0],
        };
        augment_into(&px, 3, 3, aug, &model, &mut out);
        // Mirrored: 3 2 1 / 6 5 4 / 9 8 7; then one pixel up.
        let want = [0.6, 0.5, 0.4, 0.9, 0.8, 0.7, 0.0, 0.0, 0.0].map(n);
        assert_eq!(out, want);
        let aug = Augment {
            hflip: true,
            vflip: false,
            shift: [0.0, 1.0 / 3.0],
        };
        augment_into(&px, 3, 3, aug, &model, &mut out);
        // Mirrored, then one pixel right.
        let want = [0.0, 0.3, 0.2, 0.0, 0.6, 0.5, 0.0, 0.9, 0.8].map(n);
        assert_eq!(out, want);
    }
}
