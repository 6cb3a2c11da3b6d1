//! `mammo bench`: throughput against the Python pipelines users run today, side by side on
//! the same files and cores, printed with ratios. Not a test: numbers, not verdicts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mammo_preprocess::{OutputSize, PipelineConfig, process_image};
use rayon::prelude::*;

use crate::Outcome;

#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// DICOM -> cropped, windowed, resized 8-bit PNG: mammo vs pydicom+pylibjpeg and dicomsdl.
    Preprocess(PreprocessArgs),
    /// Classifier forward and training-step images/s on a device, beside PyTorch + timm
    /// (f32 and bf16 autocast) on its device.
    Models(super::bench_models::ModelsArgs),
    /// GAN training kimg/s per stage on a device.
    Gan(super::bench_models::GanArgs),
    /// The training data loader alone (PNG read, normalise, flip, batch) in images/s per
    /// thread count, beside a PyTorch DataLoader on the same files.
    Loader(super::bench_loader::LoaderArgs),
}

#[derive(Debug, clap::Args)]
pub struct PreprocessArgs {
    /// DICOM files or folders (searched recursively for *.dcm).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output size (square).
    #[arg(long, default_value_t = 512)]
    pub size: u32,
    /// Worker threads for mammo and worker processes for Python (same for both).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Timed repetitions of each pipeline; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Python interpreter with numpy, pydicom, pylibjpeg(-openjpeg), dicomsdl, opencv
    /// (see bench/README.md). Without it only mammo is measured.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// The reference pipeline script.
    #[arg(long, default_value = "bench/python/reference_preprocess.py")]
    pub reference: PathBuf,
    /// Python backends to run.
    #[arg(long, default_values_t = ["pydicom".to_string(), "dicomsdl".to_string()])]
    pub backends: Vec<String>,
    /// Where the PNGs go (a temporary folder by default).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(b: Bench) -> Result<Outcome> {
    match b {
        Bench::Preprocess(a) => preprocess(a),
        Bench::Models(a) => super::bench_models::models(a),
        Bench::Gan(a) => super::bench_models::gan(a),
        Bench::Loader(a) => super::bench_loader::loader(a),
    }
}

fn collect_dicoms(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        if p.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .collect();
            entries.sort();
            for e in entries {
                walk(&e, out)?;
            }
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("dcm")) {
            out.push(p.to_path_buf());
        }
        Ok(())
    }
    let mut files = Vec::new();
    for i in inputs {
        if !i.exists() {
            bail!("{}: no such file or folder", i.display());
        }
        walk(i, &mut files)?;
    }
    if files.is_empty() {
        bail!(
            "no .dcm files under {}",
            inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(files)
}

/// The median of timed repetitions (the upper one of an even count); `v` must not be empty.
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Images per second of mammo's pipeline (decode, render, crop, resize, PNG) over `files`.
fn time_mammo(files: &[PathBuf], cfg: &PipelineConfig, jobs: usize, out: &Path) -> Result<f64> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let start = Instant::now();
    pool.install(|| {
        files
            .par_iter()
            .enumerate()
            .try_for_each(|(i, f)| -> Result<()> {
                let p = process_image(f, cfg, None)?;
                let o = &p.outputs[0];
                mammo_image::write_png_gray(
                    &out.join(format!("{i}.png")),
                    o.size.width,
                    o.size.height,
                    &o.pixels,
                    cfg.bits,
                )?;
                Ok(())
            })
    })?;
    Ok(files.len() as f64 / start.elapsed().as_secs_f64())
}

fn time_python(
    a: &PreprocessArgs,
    python: &Path,
    backend: &str,
    files: &[PathBuf],
    out: &Path,
) -> Result<(f64, String)> {
    let list = out.join("files.txt");
    std::fs::write(
        &list,
        files
            .iter()
            .map(|f| f.display().to_string() + "\n")
            .collect::<String>(),
    )?;
    let output = Command::new(python)
        .arg(&a.reference)
        .args([
            "--backend",
            backend,
            "--jobs",
            &a.jobs.to_string(),
            "--size",
            &a.size.to_string(),
        ])
        .arg("--out")
        .arg(out.join(backend))
        .arg("--list")
        .arg(&list)
        .output()
        .with_context(|| format!("running {} {}", python.display(), a.reference.display()))?;
    if !output.status.success() {
        bail!(
            "{backend} reference pipeline failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON result line from the reference pipeline")?;
    let v: serde_json::Value =
        serde_json::from_str(line).context("parsing the reference pipeline's JSON line")?;
    let rate = v["images_per_s"].as_f64().context("images_per_s missing")?;
    let versions = v.get("versions").map(|x| x.to_string()).unwrap_or_default();
    Ok((rate, versions))
}

fn preprocess(a: PreprocessArgs) -> Result<Outcome> {
    let files = collect_dicoms(&a.inputs)?;
    let out = match &a.out {
        Some(o) => o.clone(),
        None => std::env::temp_dir().join(format!("mammo-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let first = mammo_dicom::DicomImage::open(&files[0])?;
    let m = first.meta();
    eprintln!(
        "{} files (first: {}x{} {}-bit {}, {}), size {}, jobs {}, {} repeats, {} cores",
        files.len(),
        m.columns,
        m.rows,
        m.bits_stored,
        m.photometric.as_str(),
        m.transfer_syntax,
        a.size,
        a.jobs,
        a.repeat,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    drop(first);

    let cfg = PipelineConfig {
        sizes: vec![OutputSize {
            height: a.size,
            width: a.size,
        }],
        ..PipelineConfig::default()
    };
    let full = PipelineConfig {
        reduced_decode: false,
        ..cfg.clone()
    };
    let mut rows: Vec<(String, f64)> = Vec::new();
    for (name, c) in [("mammo", &cfg), ("mammo --full-decode", &full)] {
        time_mammo(&files[..1], c, 1, &out)?; // warm the page cache
        let rates = (0..a.repeat.max(1))
            .map(|_| time_mammo(&files, c, a.jobs, &out))
            .collect::<Result<Vec<_>>>()?;
        rows.push((name.to_string(), median(&rates)));
    }
    let mut notes = Vec::new();
    if let Some(py) = &a.python {
        for backend in &a.backends {
            let mut rates = Vec::new();
            for _ in 0..a.repeat.max(1) {
                let (r, v) = time_python(&a, py, backend, &files, &out)?;
                rates.push(r);
                if notes.len() < a.backends.len() && !notes.iter().any(|n: &String| n.contains(&v))
                {
                    notes.push(v);
                }
            }
            rows.push((format!("python {backend}"), median(&rates)));
        }
    } else {
        eprintln!("(no --python: Python pipelines not measured; see bench/README.md)");
    }
    let mammo_rate = rows[0].1;
    println!("| pipeline | images/s | mammo is x times faster |");
    println!("|---|---:|---:|");
    for (name, rate) in &rows {
        println!("| {name} | {rate:.2} | {:.1} |", mammo_rate / rate);
    }
    for n in notes {
        println!("python versions: {n}");
    }
    if a.out.is_none() {
        std::fs::remove_dir_all(&out).ok();
    }
    Ok(Outcome::Ok)
}
