//! Timing a classifier's inference forward and training step on a device, for `mammo bench
//! models` (the release binary, so a GPU machine without a Rust toolchain can run it). The
//! step is the one [`crate::train`] runs: forward, BCE with logits, backward, Adam.
//!
//! Each timed iteration ends with a device sync, so GPU time is measured, not queueing time.
//! The input is one host-made batch uploaded once: this measures the model, not the loader;
//! [`time_loader`] measures the loader alone (`mammo bench loader`).

use std::time::Instant;

use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use mammo_models::optim::AdamConfig;
use mammo_models::{Classifier, ModelConfig};

use crate::data::{ImageCache, Item, Sample, load_batch};
use crate::error::{Result, TrainError};
use crate::prefetch::for_each_prefetched;
use crate::trainer::{PREFETCH_BATCHES, create_initialised};

/// What to time.
#[derive(Debug, Clone)]
pub struct ModelBench {
    pub model: String,
    pub batch: usize,
    pub size: usize,
    pub in_chans: usize,
    pub warmup: usize,
    pub iters: usize,
}

/// Milliseconds per iteration, one entry per timed iteration.
#[derive(Debug, Clone, Default)]
pub struct ModelTimings {
    pub forward_ms: Vec<f64>,
    pub train_ms: Vec<f64>,
}

fn sync(device: &Device) -> Result<()> {
    device
        .sync()
        .map_err(|e| TrainError::Config(format!("device failed: {e:?}")))
}

fn time(device: &Device, warmup: usize, iters: usize, mut f: impl FnMut()) -> Result<Vec<f64>> {
    for _ in 0..warmup {
        f();
    }
    sync(device)?;
    let mut out = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        f();
        sync(device)?;
        out.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(out)
}

/// A deterministic batch in roughly the normalised range, made on the host.
fn batch(b: &ModelBench, device: &Device) -> (Tensor<4>, Tensor<2, Int>) {
    let n = b.batch * b.in_chans * b.size * b.size;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i as f32) * 0.618_034).fract() * 4.0 - 2.0)
        .collect();
    let y: Vec<i64> = (0..b.batch as i64).map(|i| i % 2).collect();
    (
        Tensor::from_data(
            TensorData::new(x, [b.batch, b.in_chans, b.size, b.size]),
            device,
        ),
        Tensor::from_data(TensorData::new(y, [b.batch, 1]), device),
    )
}

/// Times `b.model` on `device` (plain): inference forward, then the training step on its
/// autodiff twin.
pub fn time_model(b: &ModelBench, device: &Device) -> Result<ModelTimings> {
    let cfg = ModelConfig::new(&b.model)?
        .with_in_chans(b.in_chans)
        .with_input_size([b.size, b.size]);
    let model = create_initialised(&cfg, device, 0)?;
    let (x, _) = batch(b, device);
    let forward_ms = time(device, b.warmup, b.iters, || {
        let _ = model.forward(x.clone());
    })?;

    let ad = device.clone().autodiff();
    let mut model = Some(create_initialised(&cfg, &ad, 0)?);
    let (x, y) = batch(b, &ad);
    let loss_fn = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&ad);
    let mut optim: ModuleOptimizer = AdamConfig::default().init();
    let train_ms = time(device, b.warmup, b.iters, || {
        let m = model.take().expect("model put back after each step");
        let loss = loss_fn.forward(m.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        model = Some(optim.step(1e-4, m, grads));
    })?;
    Ok(ModelTimings {
        forward_ms,
        train_ms,
    })
}

/// One pass of the training loader over some samples.
#[derive(Debug, Clone, Copy)]
pub struct LoaderTiming {
    pub images: usize,
    pub seconds: f64,
}

impl LoaderTiming {
    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.seconds.max(1e-9)
    }
}

/// The training loader alone, as [`crate::train`] runs it: batches of `batch` samples read,
/// normalised and augmented by `jobs` threads, on a prefetch thread at most
/// `PREFETCH_BATCHES` ahead of a consumer that only takes them (a model that never waits).
/// Every image must have size `size`. Images are read through `cache` (`ImageCache::new(0)`
/// for none).
pub fn time_loader(
    items: &[Item],
    samples: &[Sample],
    size: [usize; 2],
    model: &ModelConfig,
    batch: usize,
    jobs: usize,
    cache: &ImageCache,
) -> Result<LoaderTiming> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| TrainError::Config(format!("loader threads: {e}")))?;
    let chunks: Vec<&[Sample]> = samples.chunks(batch.max(1)).collect();
    let t = Instant::now();
    let mut images = 0;
    // The prefetch thread is not one of the pool's: each batch is handed to the pool
    // explicitly (called from outside it, rayon would run it on the global pool).
    for_each_prefetched(
        chunks.len(),
        PREFETCH_BATCHES,
        |b| pool.install(|| load_batch(items, chunks[b], size, model, cache)),
        |_, b| {
            images += b.n;
            Ok(())
        },
    )?;
    Ok(LoaderTiming {
        images,
        seconds: t.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Augment;

    #[test]
    fn the_loader_reads_every_sample_once_per_pass() {
        let dir = std::env::temp_dir().join(format!("mammo-loader-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let items: Vec<Item> = (0..5)
            .map(|i| {
                let path = dir.join(format!("{i}.png"));
                let px: Vec<u16> = (0..16 * 12).map(|k| ((k * 7 + i) % 256) as u16).collect();
                mammo_image::write_png_gray(&path, 12, 16, &px, 8).unwrap();
                Item {
                    image_id: i.to_string(),
                    patient_id: i.to_string(),
                    laterality: "L".into(),
                    label: 0,
                    synthetic: false,
                    synthetic_fold: None,
                    path,
                }
            })
            .collect();
        let samples: Vec<Sample> = (0..11)
            .map(|k| Sample {
                item: k % 5,
                aug: Augment {
                    hflip: k % 2 == 0,
                    ..Augment::NONE
                },
            })
            .collect();
        let cfg = ModelConfig::new("resnet18").unwrap().with_in_chans(1);
        let none = ImageCache::new(0);
        let t = time_loader(&items, &samples, [16, 12], &cfg, 4, 2, &none).unwrap();
        assert_eq!(t.images, 11);
        assert!(t.images_per_second() > 0.0);
        assert!(none.is_empty());
        // A wrong size is the loader's error, as in training.
        assert!(time_loader(&items, &samples, [12, 16], &cfg, 4, 1, &none).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn times_a_small_model_on_flex() {
        let b = ModelBench {
            model: "resnet18".into(),
            batch: 2,
            size: 32,
            in_chans: 1,
            warmup: 1,
            iters: 2,
        };
        let t = time_model(&b, &Device::flex()).unwrap();
        assert_eq!((t.forward_ms.len(), t.train_ms.len()), (2, 2));
        assert!(
            t.forward_ms
                .iter()
                .chain(&t.train_ms)
                .all(|&ms| ms > 0.0 && ms.is_finite())
        );
    }
}
