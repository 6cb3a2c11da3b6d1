//! `mammo bench loader`: the training data loader alone (PNG read, normalise, flip, batch, on
//! worker threads with bounded prefetch), images/s per worker count, beside the PyTorch
//! loader users write today on the same files.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use mammo_models::ModelConfig;
use mammo_train::bench::time_loader;
use mammo_train::data::{Augment, Dataset, ImageCache, Item, Sample};

use super::bench::median;
use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct LoaderArgs {
    /// Time the images of this manifest (from `mammo preprocess`); without it, synthetic
    /// mammogram-like PNGs are written for each of --sizes x --bits.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Square sizes of the synthetic images.
    #[arg(long, value_delimiter = ',', default_values_t = [256u32, 512])]
    pub sizes: Vec<u32>,
    /// Bit depths of the synthetic PNGs (8 and/or 16).
    #[arg(long, value_delimiter = ',', default_values_t = [8u8, 16])]
    pub bits: Vec<u8>,
    /// Images per timed pass (synthetic: distinct files; manifest: the first rows).
    #[arg(
        long,
        default_value_t = 512,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000)
    )]
    pub images: u64,
    /// Loader threads to time (comma-separated); default: 1 and all cores.
    #[arg(long, value_delimiter = ',')]
    pub jobs: Vec<usize>,
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub batch: u64,
    /// Timed passes per setting; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub repeat: u64,
    /// Model whose input normalisation is applied (one input channel).
    #[arg(long, default_value = "resnet18")]
    pub model: String,
    /// Python with numpy and Pillow (and torch, for its DataLoader): runs
    /// bench/python/reference_loader.py on the same files. Without it only mammo is timed.
    #[arg(long)]
    pub python: Option<PathBuf>,
    #[arg(long, default_value = "bench/python/reference_loader.py")]
    pub reference: PathBuf,
}

/// A breast-like synthetic image: a bright half-ellipse against the left edge fading to its
/// skin line, fine texture and noise, so a PNG compresses about as a processed mammogram does.
fn synthetic(size: usize, bits: u8, seed: u64) -> Vec<u16> {
    // splitmix64: deterministic noise without a generator dependency.
    let mut state =
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((size as u64) << 8) ^ u64::from(bits);
    let mut uniform = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let max = if bits == 16 { 65535.0 } else { 255.0 };
    let (cy, ry, rx) = (size as f64 * 0.5, size as f64 * 0.45, size as f64 * 0.7);
    let mut px = Vec::with_capacity(size * size);
    for y in 0..size {
        for x in 0..size {
            let d = ((x as f64 / rx).powi(2) + ((y as f64 - cy) / ry).powi(2)).sqrt();
            let v = if d < 1.0 {
                let tissue = 0.55
                    + 0.25 * (1.0 - d)
                    + 0.05 * ((x as f64 * 0.21).sin() * (y as f64 * 0.17).cos());
                (tissue + 0.03 * (uniform() + uniform() - 1.0)).clamp(0.0, 1.0)
            } else {
                0.0
            };
            px.push((v * max).round() as u16);
        }
    }
    px
}

fn item(path: PathBuf, i: usize) -> Item {
    Item {
        image_id: i.to_string(),
        patient_id: i.to_string(),
        laterality: "L".into(),
        label: 0,
        synthetic: false,
        synthetic_fold: None,
        path,
    }
}

/// Images per second of the Python reference over `items` with `jobs` workers.
fn time_python(
    python: &Path,
    script: &Path,
    items: &[Item],
    batch: u64,
    jobs: usize,
    norm: (f32, f32),
    scratch: &Path,
) -> Result<(f64, String)> {
    let list = scratch.join("files.txt");
    let text: String = items
        .iter()
        .map(|i| i.path.display().to_string() + "\n")
        .collect();
    std::fs::write(&list, text).with_context(|| format!("writing {}", list.display()))?;
    let o = Command::new(python)
        .arg(script)
        .arg("--files")
        .arg(&list)
        .args(["--batch", &batch.to_string(), "--jobs", &jobs.to_string()])
        .args(["--mean", &norm.0.to_string(), "--std", &norm.1.to_string()])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !o.status.success() {
        bail!(
            "{} {}: {}",
            python.display(),
            script.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    let line = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim())
        .with_context(|| format!("reading the reference's output: {line}"))?;
    Ok((
        v["images_per_second"].as_f64().unwrap_or(0.0),
        v["loader"].as_str().unwrap_or("?").to_string(),
    ))
}

pub fn loader(a: LoaderArgs) -> Result<Outcome> {
    if a.bits.iter().any(|b| *b != 8 && *b != 16) {
        return Err(super::UsageError("--bits takes 8 and/or 16".into()).into());
    }
    if let Some(s) = a.sizes.iter().find(|s| !(16..=4096).contains(*s)) {
        return Err(super::UsageError(format!("--sizes: {s} is outside 16..=4096")).into());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut jobs = if a.jobs.is_empty() {
        vec![1, cores]
    } else {
        a.jobs.clone()
    };
    if jobs.contains(&0) {
        return Err(super::UsageError("--jobs: worker counts start at 1".into()).into());
    }
    jobs.sort_unstable();
    jobs.dedup();
    let cfg = ModelConfig::new(&a.model)
        .map_err(|e| super::UsageError(format!("--model: {e}")))?
        .with_in_chans(1);
    let norm = (cfg.mean[0], cfg.std[0]);
    let scratch = std::env::temp_dir().join(format!("mammo-bench-loader-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;

    // (label, items, [h, w])
    let mut sets: Vec<(String, Vec<Item>, [usize; 2])> = Vec::new();
    match &a.manifest {
        Some(m) => {
            let d = Dataset::from_manifest(m)?;
            let items: Vec<Item> = d.items.into_iter().take(a.images as usize).collect();
            if items.is_empty() {
                bail!("{}: no usable rows", m.display());
            }
            sets.push((
                format!("{} ({}x{})", m.display(), d.size[1], d.size[0]),
                items,
                d.size,
            ));
        }
        None => {
            for &size in &a.sizes {
                for &bits in &a.bits {
                    let dir = scratch.join(format!("{size}-{bits}"));
                    std::fs::create_dir_all(&dir)?;
                    let items: Vec<Item> = (0..a.images as usize)
                        .map(|i| {
                            let path = dir.join(format!("{i}.png"));
                            let px = synthetic(size as usize, bits, i as u64);
                            mammo_image::write_png_gray(&path, size, size, &px, u32::from(bits))
                                .map(|_| item(path, i))
                        })
                        .collect::<Result<_, _>>()?;
                    let bytes: u64 = items
                        .iter()
                        .filter_map(|i| std::fs::metadata(&i.path).ok())
                        .map(|m| m.len())
                        .sum();
                    sets.push((
                        format!(
                            "synthetic {size}x{size} {bits}-bit PNG, {:.0} KB each",
                            bytes as f64 / items.len() as f64 / 1024.0
                        ),
                        items,
                        [size as usize, size as usize],
                    ));
                }
            }
        }
    }

    println!(
        "Training loader: read PNG, scale, flip every other sample, normalise ({}), batch {}; {} \
         image(s) per pass, median of {}; {cores} cores here.\n",
        a.model, a.batch, a.images, a.repeat
    );
    println!(
        "| images | threads | mammo img/s | per thread | cached img/s | reference img/s | mammo / \
         reference |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut reference_kind = None;
    for (label, items, size) in &sets {
        let samples: Vec<Sample> = (0..items.len())
            .map(|i| Sample {
                item: i,
                aug: Augment {
                    hflip: i % 2 == 0,
                    ..Augment::NONE
                },
            })
            .collect();
        // Decoded images in memory (`mammo train --cache-mb`), filled by one pass, when
        // they take under 4 GB (2 bytes a pixel).
        let bytes = items.len() * size[0] * size[1] * 2;
        let cache = ImageCache::new(if bytes <= 4 << 30 { bytes } else { 0 });
        time_loader(
            items,
            &samples,
            *size,
            &cfg,
            a.batch as usize,
            cores,
            &cache,
        )?;
        let none = ImageCache::new(0);
        for &j in &jobs {
            // One untimed pass warms the page cache for both sides.
            time_loader(items, &samples, *size, &cfg, a.batch as usize, j, &none)?;
            let timed = |c: &ImageCache| -> Result<f64> {
                let runs: Vec<f64> = (0..a.repeat)
                    .map(|_| {
                        time_loader(items, &samples, *size, &cfg, a.batch as usize, j, c)
                            .map(|t| t.images_per_second())
                    })
                    .collect::<Result<_, _>>()?;
                Ok(median(&runs))
            };
            let ours = timed(&none)?;
            let cached = if cache.is_empty() {
                "-".to_string()
            } else {
                format!("{:.0}", timed(&cache)?)
            };
            let (theirs, ratio) = match &a.python {
                Some(py) => {
                    let mut runs = Vec::new();
                    for _ in 0..a.repeat {
                        let (r, kind) =
                            time_python(py, &a.reference, items, a.batch, j, norm, &scratch)?;
                        reference_kind = Some(kind);
                        runs.push(r);
                    }
                    let r = median(&runs);
                    (format!("{r:.0}"), format!("{:.2}x", ours / r))
                }
                None => ("-".into(), "-".into()),
            };
            println!(
                "| {label} | {j} | {ours:.0} | {:.0} | {cached} | {theirs} | {ratio} |",
                ours / j as f64
            );
        }
    }
    if let Some(kind) = reference_kind {
        println!("\nReference: {kind} (bench/python/reference_loader.py).");
    }
    println!(
        "\nThe loader scales with threads while cores are free: per-thread figures times the \
         cores of a GPU machine estimate what it can feed (compare with `mammo bench models` \
         train-step images/s there)."
    );
    std::fs::remove_dir_all(&scratch).ok();
    Ok(Outcome::Ok)
}
