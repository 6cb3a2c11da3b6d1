//! `mammo bench models` and `mammo bench gan`: classifier and GAN throughput on a device,
//! beside PyTorch + timm on the same device (f32 and `torch.autocast` bf16). In the release
//! binary so that a GPU machine with PyTorch and no Rust toolchain can run it
//! (`bench/gpu.sh`). Numbers, not verdicts.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use mammo_gan::{GanConfig, GanTrainOptions, ImageSource, train_gan};
use mammo_models::DeviceSpec;
use mammo_train::bench::{ModelBench, time_model};

use super::bench::median;
use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// timm model names.
    #[arg(default_values_t = ["resnet18".to_string(), "efficientnet_b0".to_string()])]
    pub models: Vec<String>,
    /// Square input sizes (repeatable).
    #[arg(long = "size", default_values_t = [256usize])]
    pub sizes: Vec<usize>,
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub batch: u64,
    #[arg(long, default_value_t = 1)]
    pub in_chans: usize,
    /// Untimed iterations first (kernel compilation and autotuning happen here).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed iterations; the median is reported.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub iters: u64,
    /// mammo's device: auto, flex, vulkan[:N], cuda[:N].
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Python with torch and timm; without it only mammo is measured.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// PyTorch's device (cpu, cuda, cuda:N).
    #[arg(long, default_value = "cuda")]
    pub python_device: String,
    /// The PyTorch + timm script.
    #[arg(long, default_value = "bench/python/timm_bench.py")]
    pub script: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct GanArgs {
    /// Output resolutions to time: 16 (the stem) and/or 32 (a super-resolution stage on a
    /// briefly trained stem).
    #[arg(long = "res", default_values_t = [16usize, 32])]
    pub res: Vec<usize>,
    /// GAN preset or file (`cpu`, `gan-paper`, a TOML path).
    #[arg(long, default_value = "cpu")]
    pub config: String,
    /// Images per step (overrides the config's training.batch_size).
    #[arg(long)]
    pub batch: Option<usize>,
    /// kimg trained before timing (kernel compilation, autotuning).
    #[arg(long, default_value_t = 0.25)]
    pub warmup_kimg: f64,
    /// kimg timed.
    #[arg(long, default_value_t = 1.0)]
    pub kimg: f64,
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
}

/// RSNA: 54,706 images, 1,158 positive. A fold's training part is 4/5 of them with each
/// positive 5 times (4 extra copies); its validation part is the other 1/5.
const RSNA_TRAIN_PER_EPOCH: usize = (54_706 + 4 * 1_158) * 4 / 5;
const RSNA_VALIDATION: usize = 54_706 / 5;

/// Device-hours of the paper's Algorithm 1 for one model at one resolution: 3 data stages
/// (the augmented one adds 1,000 synthetic images, counted here; its GAN is not) x 5 folds x
/// 3 epochs of training and validation.
fn rsna_hours(forward_ips: f64, train_ips: f64) -> f64 {
    let per_epoch = RSNA_TRAIN_PER_EPOCH as f64 / train_ips + RSNA_VALIDATION as f64 / forward_ips;
    let augmented_extra = 1000.0 / train_ips * 5.0 * 3.0;
    (3.0 * 5.0 * 3.0 * per_epoch + augmented_extra) / 3600.0
}

/// One JSON line of bench/python/timm_bench.py.
#[derive(Debug, serde::Deserialize)]
struct TorchRow {
    model: String,
    size: usize,
    forward_ms: Option<f64>,
    train_step_ms: Option<f64>,
    #[serde(default)]
    amp: Option<String>,
}

fn torch_rows(
    a: &ModelsArgs,
    python: &Path,
    size: usize,
    amp: Option<&str>,
) -> Result<Vec<TorchRow>> {
    let mut cmd = Command::new(python);
    cmd.arg(&a.script).args(&a.models).args([
        "--batch",
        &a.batch.to_string(),
        "--size",
        &size.to_string(),
        "--in-chans",
        &a.in_chans.to_string(),
    ]);
    cmd.args([
        "--warmup",
        &a.warmup.to_string(),
        "--iters",
        &a.iters.to_string(),
        "--device",
        &a.python_device,
    ]);
    if let Some(amp) = amp {
        cmd.args(["--amp", amp]);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {} {}", python.display(), a.script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            a.script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).with_context(|| format!("parsing {l}")))
        .collect()
}

pub fn models(a: ModelsArgs) -> Result<Outcome> {
    let dev = super::open_device(a.device, false)?;
    let batch = a.batch as usize;
    let ips = |ms: f64| batch as f64 / (ms / 1e3);
    let mut estimates = Vec::new();
    println!(
        "| model | size | backend | forward img/s | train img/s | forward vs PyTorch f32 / bf16 | \
         train vs PyTorch f32 / bf16 |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|");
    for &size in &a.sizes {
        let torch: Vec<TorchRow> = match &a.python {
            Some(py) => {
                let mut rows = torch_rows(&a, py, size, None)?;
                rows.extend(torch_rows(&a, py, size, Some("bf16"))?);
                rows
            }
            None => Vec::new(),
        };
        for name in &a.models {
            let b = ModelBench {
                model: name.clone(),
                batch,
                size,
                in_chans: a.in_chans,
                warmup: a.warmup,
                iters: a.iters as usize,
            };
            let t = time_model(&b, &dev.device)
                .with_context(|| format!("timing {name} at {size} px on {dev}"))?;
            let (f, tr) = (ips(median(&t.forward_ms)), ips(median(&t.train_ms)));
            estimates.push((name.clone(), size, f, tr));
            let find = |amp: Option<&str>| {
                torch
                    .iter()
                    .find(|r| &r.model == name && r.size == size && r.amp.as_deref() == amp)
            };
            let (t32, t16) = (find(None), find(Some("bf16")));
            let ratio = |mine: f64, theirs: Option<f64>| {
                theirs.map_or("-".to_string(), |ms| format!("{:.2}x", mine / ips(ms)))
            };
            println!(
                "| {name} | {size} | mammo {} | {f:.0} | {tr:.0} | {} / {} | {} / {} |",
                dev.spec,
                ratio(f, t32.and_then(|r| r.forward_ms)),
                ratio(f, t16.and_then(|r| r.forward_ms)),
                ratio(tr, t32.and_then(|r| r.train_step_ms)),
                ratio(tr, t16.and_then(|r| r.train_step_ms)),
            );
            for (label, r) in [("PyTorch f32", t32), ("PyTorch bf16 autocast", t16)] {
                if let Some(r) = r {
                    let cell = |ms: Option<f64>| {
                        ms.map_or("-".to_string(), |ms| format!("{:.0}", ips(ms)))
                    };
                    println!(
                        "| {name} | {size} | {label} ({}) | {} | {} | | |",
                        a.python_device,
                        cell(r.forward_ms),
                        cell(r.train_step_ms)
                    );
                }
            }
        }
    }
    println!(
        "\nbatch {batch}, {} input channel(s), median of {} iterations after {} warm-up; ratios > \
         1 mean mammo is faster",
        a.in_chans, a.iters, a.warmup
    );
    for (name, size, f, tr) in &estimates {
        let h = rsna_hours(*f, *tr);
        println!(
            "Algorithm 1 on RSNA with {name} at {size} px from these rates: {h:.1} device-hours \
             (3 stages x 5 folds x 3 epochs; {RSNA_TRAIN_PER_EPOCH} training and \
             {RSNA_VALIDATION} validation images per fold and epoch; loader assumed to keep up)"
        );
    }
    Ok(Outcome::Ok)
}

/// Writes `n` deterministic 16-bit PNGs of a bright blob on a dark field.
fn write_images(dir: &Path, n: usize, res: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for i in 0..n {
        let c = (res / 2) as f64 + (i % 5) as f64 - 2.0;
        let px: Vec<u16> = (0..res * res)
            .map(|k| {
                let (y, x) = ((k / res) as f64, (k % res) as f64);
                let d = ((x - c).powi(2) + (y - c).powi(2)).sqrt() / res as f64;
                ((1.0 - d * 2.0).clamp(0.0, 1.0) * 60000.0) as u16
            })
            .collect();
        mammo_image::write_png_gray(
            &dir.join(format!("b{i}.png")),
            res as u32,
            res as u32,
            &px,
            16,
        )?;
    }
    Ok(())
}

pub fn gan(a: GanArgs) -> Result<Outcome> {
    let dev = super::open_device(a.device, false)?;
    let tmp = std::env::temp_dir().join(format!("mammo-bench-gan-{}", std::process::id()));
    let result = gan_in(&a, &dev, &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn gan_in(a: &GanArgs, dev: &mammo_models::OpenDevice, tmp: &Path) -> Result<Outcome> {
    let mut cfg = GanConfig::load(&a.config)?;
    if let Some(b) = a.batch {
        cfg.training.batch_size = b;
    }
    let max_res = a.res.iter().copied().max().unwrap_or(16);
    let images = tmp.join("images");
    write_images(&images, 64, max_res)?;
    let total = a.warmup_kimg + a.kimg;
    cfg.training.kimg = total;
    cfg.training.metric_kimg = 1e9;
    cfg.training.snap_kimg = 1e9;
    cfg.training.tick_kimg = total;
    println!("| stage | device | batch | kimg/s | s/kimg |");
    println!("|---|---|---:|---:|---:|");
    let mut stem: Option<PathBuf> = None;
    let mut res_list = a.res.clone();
    res_list.sort_unstable();
    for res in res_list {
        if res != 16 && stem.is_none() {
            // A brief stem for the super-resolution stage to grow from.
            let run = tmp.join("stem16");
            let mut c = cfg.clone();
            c.training.kimg = a.warmup_kimg;
            train_gan(&c, &opts(&images, &run, 16, None, dev, None))?;
            stem = Some(run);
        }
        let run = tmp.join(format!("g{res}"));
        let stem_for = if res == 16 { None } else { stem.clone() };
        let s1 = train_gan(
            &cfg,
            &opts(
                &images,
                &run,
                res,
                stem_for.clone(),
                dev,
                Some(a.warmup_kimg),
            ),
        )?;
        let s2 = train_gan(&cfg, &opts(&images, &run, res, stem_for, dev, None))?;
        let rate = (s2.kimg - s1.kimg) / (s2.seconds - s1.seconds).max(1e-9);
        println!(
            "| {res} px | {} | {} | {rate:.3} | {:.1} |",
            dev.spec,
            cfg.training.batch_size,
            1.0 / rate.max(1e-12)
        );
        if res == 16 {
            stem = Some(run);
        }
    }
    println!(
        "\nconfig {}; {} kimg timed after {} kimg warm-up (each timed call includes resuming its \
         checkpoint)",
        a.config, a.kimg, a.warmup_kimg
    );
    Ok(Outcome::Ok)
}

fn opts(
    images: &Path,
    out: &Path,
    res: usize,
    stem: Option<PathBuf>,
    dev: &mammo_models::OpenDevice,
    stop: Option<f64>,
) -> GanTrainOptions {
    GanTrainOptions {
        source: ImageSource::Folder(images.to_path_buf()),
        out: out.to_path_buf(),
        res,
        stem,
        device: dev.device.clone(),
        metric_features: None,
        progress: false,
        log: false,
        stop_after_kimg: stop,
    }
}
