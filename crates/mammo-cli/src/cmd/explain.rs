use mammo_models::DeviceSpec;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use mammo_explain::render::{colour, draw_box, npy_bytes, overlay, write_rgb_png};
use mammo_explain::{
    BBox, Explainer, Localisation, Method, centered_box, explain_ensemble, localise, summarise,
    threshold_box,
};
use mammo_preprocess::ManifestRow;
use mammo_train::data::normalise_into;
use mammo_train::{Run, Select, load_input};
use serde::Serialize;

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run folder written by `mammo train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Explain with this fold's model only. Without it every fold's model explains each
    /// image and the maps are their mean (rescaled to 0..1; the probability is the folds'
    /// mean): the cross-validated ensemble, which no single fold's quirks dominate.
    #[arg(long)]
    pub fold: Option<usize>,
    /// The folds' `last` or `best` weights.
    #[arg(long, default_value = "last", value_parser = super::select_parser())]
    pub select: Select,
    /// Images: PNGs at the run's size or DICOM files.
    pub images: Vec<PathBuf>,
    /// Explain the rows of this manifest instead (needed for --truth).
    #[arg(long, conflicts_with = "images")]
    pub manifest: Option<PathBuf>,
    /// With --manifest: only rows labelled 1 (the paper explains positives).
    #[arg(long)]
    pub positives_only: bool,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Method(s), repeatable: cam, gradcam, gradcam++, layercam, hirescam.
    #[arg(long = "method", default_value = "gradcam")]
    pub methods: Vec<Method>,
    /// Target feature layer (default: the last stage, e.g. layer4, conv_head, norm).
    #[arg(long)]
    pub layer: Option<String>,
    /// `centered` (the paper's fixed-size box at the peak) or `threshold` (largest region
    /// above --threshold x max).
    #[arg(long = "box", default_value = "centered", value_parser = ["centered", "threshold"])]
    pub box_kind: String,
    /// Side of the centered box in pixels (default: a fifth of the image width).
    #[arg(long, value_parser = crate::cmd::at_least::<1>)]
    pub box_size: Option<usize>,
    /// Fraction of the maximum for --box threshold.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Ground-truth lesion boxes (`lesions.csv` of `mammo phantom`: image_id, x0, y0, x1, y1
    /// in DICOM pixels), mapped into each PNG through the manifest; adds localisation scores.
    #[arg(long, requires = "manifest")]
    pub truth: Option<PathBuf>,
    /// Compute device: auto (a CUDA or hardware Vulkan GPU if present, else flex), flex (CPU),
    /// vulkan[:N], cuda[:N] (builds with those features). An absent device is a usage error.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Serialize)]
struct Row {
    image: String,
    label: String,
    probability: f64,
    method: String,
    layer: String,
    peak_x: usize,
    peak_y: usize,
    box_x0: f64,
    box_y0: f64,
    box_x1: f64,
    box_y1: f64,
    lesions: usize,
    pointing_hit: Option<bool>,
    iou: Option<f64>,
}

struct Input {
    name: String,
    path: PathBuf,
    label: String,
    row: Option<ManifestRow>,
}

pub fn run(args: Args) -> Result<Outcome> {
    let run = Run::open(&args.run)?;
    let device = super::open_device(args.device, args.quiet)?.device;
    let select = args.select;
    let folds: Vec<usize> = match args.fold {
        Some(k) if k >= run.config.folds => {
            return Err(super::UsageError(format!(
                "--fold {k}: this run has folds 0..{}",
                run.config.folds
            ))
            .into());
        }
        Some(k) => vec![k],
        None => (0..run.config.folds).collect(),
    };
    let mut weights = Vec::new();
    let mut explainers = Vec::new();
    for &k in &folds {
        let path = run.weights_path(k, select);
        if !path.exists() {
            bail!(
                "{}: no such weights (fold {k} of this run is not trained; train it, or pick a trained one with --fold)",
                path.display()
            );
        }
        let model = run.load_fold_model(k, select, &device)?;
        explainers.push(Explainer::new(model, run.model.clone(), &device));
        weights.push(path);
    }
    let layer = explainers[0]
        .layer_index(args.layer.as_deref())
        .map_err(super::usage("--layer"))?;
    let layer_name = explainers[0].feature_layers()[layer].clone();
    let [h, w] = run.info.input_size;

    let inputs: Vec<Input> = match &args.manifest {
        Some(m) => {
            let base = m.parent().unwrap_or(Path::new("."));
            mammo_preprocess::read_manifest(m)?
                .into_iter()
                .filter(|r| r.is_ok() && (!args.positives_only || r.cancer() == Some(true)))
                .map(|r| Input {
                    name: r.image_id.clone(),
                    path: base.join(&r.path),
                    label: r.label.clone(),
                    row: Some(r),
                })
                .collect()
        }
        None => {
            if args.images.is_empty() {
                return Err(
                    super::UsageError("give images to explain, or --manifest".into()).into(),
                );
            }
            args.images
                .iter()
                .map(|p| Input {
                    name: p
                        .file_stem()
                        .map_or("image".into(), |s| s.to_string_lossy().into_owned()),
                    path: p.clone(),
                    label: String::new(),
                    row: None,
                })
                .collect()
        }
    };
    let truth = args
        .truth
        .as_deref()
        .map(mammo_preprocess::lesion_boxes_by_image)
        .transpose()?;
    std::fs::create_dir_all(&args.out)?;
    let _lock = mammo_image::OutputLock::acquire(&args.out, "mammo explain")?;
    mammo_image::sweep_temp_files(&args.out)?;

    let progress = !args.quiet && std::io::stderr().is_terminal();
    let pb = if progress {
        ProgressBar::new(inputs.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template("explain [{bar:30}] {pos}/{len} ({elapsed}<{eta})")?
            .progress_chars("=> "),
    );
    let box_size = args.box_size.unwrap_or((w / 5).max(1));
    let mut rows = Vec::new();
    let mut scores: HashMap<Method, Vec<Localisation>> = HashMap::new();
    let mut failures = Vec::new();
    for input in &inputs {
        pb.inc(1);
        let pixels = match load_input(&run, &input.path) {
            Ok(p) => p,
            Err(e) => {
                pb.suspend(|| eprintln!("error: {e}"));
                failures.push(input.path.clone());
                continue;
            }
        };
        let mut x = vec![0f32; run.model.in_chans * h * w];
        normalise_into(&pixels, h, w, false, &run.model, &mut x);
        let ensemble = explain_ensemble(&explainers, &x, h, w, layer, &args.methods)?;
        let probability = ensemble.probability;
        let lesions: Vec<BBox> = match (&truth, &input.row) {
            (Some(t), Some(row)) => t
                .get(&input.name)
                .map(|v| {
                    v.iter()
                        .map(|&b| BBox::from(row.box_to_output(b)))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        for e in ensemble.explanations {
            let b = if args.box_kind == "threshold" {
                threshold_box(&e.heat, w, h, args.threshold).unwrap_or(BBox {
                    x0: 0.0,
                    y0: 0.0,
                    x1: 0.0,
                    y1: 0.0,
                })
            } else {
                centered_box(&e.heat, w, h, box_size, box_size)
            };
            let stem = format!("{}_{}", input.name, e.method.name().replace('+', "p"));
            let mut over = overlay(&pixels, &e.heat, w, h, 0.4);
            for t in &lesions {
                draw_box(&mut over, t, [255, 40, 40], 1);
            }
            draw_box(&mut over, &b, [40, 255, 40], 1);
            write_rgb_png(&args.out.join(format!("{stem}_overlay.png")), &over)?;
            write_rgb_png(
                &args.out.join(format!("{stem}_heat.png")),
                &colour(&e.heat, w, h),
            )?;
            mammo_image::write_atomic(
                &args.out.join(format!("{stem}_heat.npy")),
                &npy_bytes(&e.heat, h, w),
            )?;
            let loc = (!lesions.is_empty()).then(|| localise(e.peak, &b, &lesions));
            if let Some(l) = loc {
                scores.entry(e.method).or_default().push(l);
            }
            rows.push(Row {
                image: input.path.display().to_string(),
                label: input.label.clone(),
                probability,
                method: e.method.to_string(),
                layer: layer_name.clone(),
                peak_x: e.peak.0,
                peak_y: e.peak.1,
                box_x0: b.x0,
                box_y0: b.y0,
                box_x1: b.x1,
                box_y1: b.y1,
                lesions: lesions.len(),
                pointing_hit: loc.map(|l| l.pointing_hit),
                iou: loc.map(|l| l.iou),
            });
        }
    }
    pb.finish_and_clear();

    let mut csv = csv::Writer::from_writer(Vec::new());
    for r in &rows {
        csv.serialize(r)?;
    }
    mammo_image::write_atomic(&args.out.join("explanations.csv"), &csv.into_inner()?)?;
    let mut summary = serde_json::Map::new();
    for m in &args.methods {
        if let Some(s) = scores.get(m) {
            let s = summarise(s);
            println!(
                "{:<10} {} images with lesions: pointing game {:.3}, mean IoU {:.3}, hit@IoU0.1 {:.3}, hit@IoU0.3 {:.3}",
                m.name(),
                s.images,
                s.pointing_game,
                s.mean_iou,
                s.hit_rate_iou_0_1,
                s.hit_rate_iou_0_3
            );
            summary.insert(m.name().into(), serde_json::to_value(s)?);
        }
    }
    let meta = serde_json::json!({"run": args.run, "folds": folds, "ensemble": folds.len() > 1, "weights": weights, "layer": layer_name, "box": args.box_kind, "box_size": box_size, "threshold": args.threshold, "localisation": summary});
    mammo_image::write_atomic(
        &args.out.join("summary.json"),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    println!(
        "{} images explained ({} maps) into {}",
        inputs.len() - failures.len(),
        rows.len(),
        args.out.display()
    );
    if !failures.is_empty() {
        eprintln!("{} of {} images failed", failures.len(), inputs.len());
        return Ok(Outcome::PartialFailure);
    }
    Ok(Outcome::Ok)
}
