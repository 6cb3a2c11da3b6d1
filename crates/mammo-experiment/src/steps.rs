//! Algorithm 1 as a list of content-keyed steps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use burn::tensor::Device;
use mammo_phantom::PhantomConfig;
use mammo_preprocess::{BatchOptions, OutputSize, PipelineConfig, run_batch};
use mammo_train::{TrainOptions, train};

use crate::cache::{Steps, digest, overall, write_json};
use crate::code::{fingerprint, fingerprints};
use crate::config::{ExperimentConfig, Stage};
use crate::explain::{ExplainStep, explain_run};
use crate::gan;
use crate::report::{ReportInput, RunResult, write_report};
use crate::weights::{ModelWeights, resolve_weights};
use crate::{ExperimentError, io_err};

/// How and where to run an experiment.
#[derive(Debug, Clone)]
pub struct ExperimentOptions {
    pub config: ExperimentConfig,
    /// RSNA-layout folder (`train.csv`, `train_images/`, optional `lesions.csv`); the phantom
    /// set of `[phantom]` when absent.
    pub data: Option<PathBuf>,
    pub out: PathBuf,
    pub device: Device,
    pub progress: bool,
    /// Reuse a step done by an earlier build whose code differs but whose settings and inputs
    /// are the same (`--reuse-stale`), instead of running it again.
    pub reuse_stale: bool,
    /// A folder of timm checkpoints in the Hugging Face hub cache layout
    /// (`models--timm--<name>.<tag>/snapshots/<rev>/model.safetensors`), searched for the
    /// models that `[weights]` does not name (`--weights-dir`).
    pub weights_dir: Option<PathBuf>,
}

/// What a call did.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentSummary {
    pub report: PathBuf,
    pub steps: usize,
    pub steps_cached: usize,
    /// Of those, steps done by an earlier build and reused under `reuse_stale`.
    pub steps_stale: usize,
    pub seconds: f64,
    /// Images that preprocessing could not read (the runs go on without them).
    pub failed_images: usize,
}

fn sha256_file(path: &Path) -> Result<String, ExperimentError> {
    mammo_train::run::sha256_file(path).map_err(|e| ExperimentError::step("data", e))
}

/// The preprocessing of a stage (Algorithm 1: original = render + resize; processed = crop +
/// windowing + normalisation).
fn pipeline_for(stage: Stage, resolutions: &[u32]) -> PipelineConfig {
    match stage {
        Stage::Original => PipelineConfig::original_stage(resolutions),
        Stage::Processed | Stage::Augmented => PipelineConfig::processed_stage(resolutions),
    }
}

/// One step of an experiment's plan: its kind (`data`, `preprocess`, `gan`, `train`,
/// `explain`, `report`) and name, as the progress lines and the step folders call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    pub kind: &'static str,
    pub name: String,
}

impl std::fmt::Display for PlannedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name.is_empty() {
            f.write_str(self.kind)
        } else {
            write!(f, "{} {}", self.kind, self.name)
        }
    }
}

/// The configured stages in run order (original, processed, augmented), each once.
fn run_stages(stages: &[Stage]) -> Vec<Stage> {
    let mut stages = stages.to_vec();
    stages.sort();
    stages.dedup();
    stages
}

/// The augmented stage trains on the processed images plus generated positives, so the
/// stages to preprocess are the configured ones with augmented read as processed.
fn preprocessed_stages(stages: &[Stage]) -> Vec<Stage> {
    let mut prep: Vec<Stage> = stages
        .iter()
        .map(|&s| {
            if s == Stage::Augmented {
                Stage::Processed
            } else {
                s
            }
        })
        .collect();
    prep.sort();
    prep.dedup();
    prep
}

/// Every step [`run_experiment`] takes for `cfg`, in order, before any runs (`mammo experiment
/// --dry-run` prints it); `phantom` when the data is the built-in phantom (no `--data`).
pub fn plan(cfg: &ExperimentConfig, phantom: bool) -> Vec<PlannedStep> {
    let e = &cfg.experiment;
    let step = |kind, name: String| PlannedStep { kind, name };
    let stages = run_stages(&e.stages);
    let mut out = Vec::new();
    if phantom {
        out.push(step("data", "phantom".into()));
    }
    for stage in preprocessed_stages(&stages) {
        out.push(step("preprocess", stage.name().into()));
    }
    if stages.contains(&Stage::Augmented) {
        for &res in &e.resolutions {
            for fold in 0..cfg.train.folds {
                out.push(step("gan", format!("{res}-fold{fold}")));
            }
        }
    }
    for &res in &e.resolutions {
        for &stage in &stages {
            for model in &e.models {
                out.push(step("train", format!("{stage}-{res}-{model}")));
                out.push(step("explain", format!("{stage}-{res}-{model}")));
            }
        }
    }
    out.push(step("report", String::new()));
    out
}

pub fn run_experiment(opts: &ExperimentOptions) -> Result<ExperimentSummary, ExperimentError> {
    let started = Instant::now();
    let cfg = &opts.config;
    cfg.validate()?;
    let e = &cfg.experiment;
    let augmented = e.stages.contains(&Stage::Augmented);
    let gan_cfg = if augmented {
        Some(gan::gan_config(&cfg.gan)?)
    } else {
        None
    };
    let weights = resolve_weights(
        &e.models,
        &cfg.weights,
        cfg.train.pretrained.as_deref(),
        opts.weights_dir.as_deref(),
    )?;
    for model in &e.models {
        match weights.get(model) {
            Some(w) => eprintln!(
                "{model}: pretrained weights {} ({}, sha256 {})",
                w.file.display(),
                w.origin,
                &w.sha256[..12]
            ),
            None => {
                eprintln!("{model}: no pretrained weights named or found: trained from scratch")
            }
        }
    }
    std::fs::create_dir_all(&opts.out).map_err(|err| io_err("create", &opts.out, err))?;
    // One writer per folder; what killed writers left half-written goes first.
    let _lock = mammo_image::OutputLock::acquire(&opts.out, "mammo experiment")?;
    mammo_image::sweep_temp_files(&opts.out)
        .map_err(|err| io_err("clean temporary files in", &opts.out, err))?;
    let stages = run_stages(&e.stages);
    let prep_stages = preprocessed_stages(&stages);
    let planned = plan(cfg, opts.data.is_none());
    let mut steps = Steps {
        root: opts.out.clone(),
        total: planned.len(),
        index: 0,
        cached: 0,
        stale: 0,
        reuse_stale: opts.reuse_stale,
        started,
    };

    let data_dir = data_step(&mut steps, opts)?;
    let train_csv = data_dir.join("train.csv");
    let images = data_dir.join("train_images");
    if !train_csv.exists() || !images.is_dir() {
        return Err(ExperimentError::Invalid(format!(
            "{}: not an RSNA-layout folder (needs train.csv and train_images/)",
            data_dir.display()
        )));
    }
    let lesions = Some(data_dir.join("lesions.csv")).filter(|p| p.exists());
    let lesions_sha = lesions.as_deref().map(sha256_file).transpose()?;
    let data_sha = sha256_file(&train_csv)?;
    write_json(
        &opts.out.join("experiment.json"),
        &json!({
            "tool": "mammo",
            "version": env!("CARGO_PKG_VERSION"),
            "code": fingerprints(),
            "code_fingerprints_from": crate::code::fingerprint_origin(),
            "engine": "burn 0.22.1",
            "device": format!("{:?}", opts.device),
            "config": cfg,
            "data": data_dir,
            "train_csv_sha256": data_sha,
            "lesions": lesions,
            "weights": weights,
        }),
    )?;

    let (mut manifests, failed_images) = preprocess_steps(
        &mut steps,
        opts,
        &prep_stages,
        &Inputs {
            train_csv: &train_csv,
            images: &images,
            train_csv_sha: &data_sha,
        },
    )?;

    // Generated positives: per resolution and fold, a GAN on that fold's training positives.
    let gan_folds = match &gan_cfg {
        Some(gcfg) => gan_steps(&mut steps, opts, gcfg, &mut manifests)?,
        None => Vec::new(),
    };

    // Training, then explanations, per resolution x stage x model.
    let mut results = Vec::new();
    for &res in &e.resolutions {
        for &stage in &stages {
            let manifest = manifests.get(stage, res);
            let manifest_sha = sha256_file(manifest)?;
            for model in &e.models {
                let which = TrainedRun {
                    stage,
                    resolution: res,
                    model,
                    manifest,
                    manifest_sha: &manifest_sha,
                };
                let lesions = lesions.as_deref().zip(lesions_sha.as_deref());
                results.push(train_and_explain(
                    &mut steps, opts, &weights, &which, lesions,
                )?);
            }
        }
    }

    steps.index += 1;
    debug_assert_eq!(
        steps.index,
        planned.len(),
        "the plan counts every step taken"
    );
    eprintln!(
        "{}",
        overall(
            steps.index,
            steps.total,
            "report",
            "",
            "",
            started.elapsed().as_secs_f64()
        )
    );
    let report = write_report(&ReportInput {
        name: &e.name,
        out: &opts.out.join("report"),
        config: cfg,
        results: &results,
        gans: &gan_folds,
        seconds: started.elapsed().as_secs_f64(),
        phantom: opts.data.is_none(),
        weights: &weights,
    })?;
    Ok(ExperimentSummary {
        report,
        steps: steps.total,
        steps_cached: steps.cached,
        steps_stale: steps.stale,
        seconds: started.elapsed().as_secs_f64(),
        failed_images,
    })
}

/// A manifest the runs read: one per (stage, resolution).
#[derive(Debug, Clone)]
struct StageManifest {
    stage: Stage,
    resolution: u32,
    path: PathBuf,
}

/// The manifests of an experiment, found by stage and resolution.
#[derive(Debug, Default)]
struct Manifests(Vec<StageManifest>);

impl Manifests {
    fn add(&mut self, stage: Stage, resolution: u32, path: PathBuf) {
        self.0.push(StageManifest {
            stage,
            resolution,
            path,
        });
    }

    /// The manifest of `stage` at `resolution`, which the plan made before any step reads it.
    fn get(&self, stage: Stage, resolution: u32) -> &Path {
        self.0
            .iter()
            .find(|m| m.stage == stage && m.resolution == resolution)
            .map(|m| m.path.as_path())
            .expect("every stage's manifest is made before a step reads it")
    }
}

/// The data: the user's folder, or the phantom set of `[phantom]` made as a step.
fn data_step(steps: &mut Steps, opts: &ExperimentOptions) -> Result<PathBuf, ExperimentError> {
    let cfg = &opts.config;
    let e = &cfg.experiment;
    Ok(match &opts.data {
        Some(d) => d.clone(),
        None => {
            let p = &cfg.phantom;
            let key = json!({"phantom": p, "code": fingerprint("phantom")});
            let (dir, done, _) = steps.begin("data", "phantom", &key)?;
            let data = dir.join("data");
            if !done {
                let t = Instant::now();
                mammo_phantom::generate(&PhantomConfig {
                    out: data.clone(),
                    patients: p.patients,
                    seed: p.seed,
                    prevalence: p.prevalence,
                    size: p.size.parse().map_err(ExperimentError::Invalid)?,
                    conspicuity: p.conspicuity.parse().map_err(ExperimentError::Invalid)?,
                    density: p.density.parse().map_err(ExperimentError::Invalid)?,
                    jobs: e.jobs,
                    progress: opts.progress,
                })
                .map_err(|err| ExperimentError::step("phantom", err))?;
                steps.finish(&dir, &key, t)?;
            }
            data
        }
    })
}

/// The RSNA-layout inputs, and `train.csv`'s digest (what steps are keyed on).
struct Inputs<'a> {
    train_csv: &'a Path,
    images: &'a Path,
    train_csv_sha: &'a str,
}

/// Preprocessing per stage, every resolution at once: the manifests made, and how many
/// images failed.
fn preprocess_steps(
    steps: &mut Steps,
    opts: &ExperimentOptions,
    prep_stages: &[Stage],
    inputs: &Inputs,
) -> Result<(Manifests, usize), ExperimentError> {
    let e = &opts.config.experiment;
    let (train_csv, images, data_sha) = (inputs.train_csv, inputs.images, inputs.train_csv_sha);
    let mut manifests = Manifests::default();
    let mut failed_images = 0;
    for &stage in prep_stages {
        let pipeline = pipeline_for(stage, &e.resolutions);
        let key = json!({
            "stage": stage,
            "pipeline": pipeline,
            "train_csv_sha256": data_sha,
            "images": images,
            "code": fingerprint("preprocess"),
        });
        let (dir, done, _) = steps.begin("preprocess", stage.name(), &key)?;
        if !done {
            let t = Instant::now();
            let report = run_batch(
                &BatchOptions {
                    csv: train_csv.to_path_buf(),
                    images: images.to_path_buf(),
                    out: dir.clone(),
                    jobs: e.jobs,
                    progress: opts.progress,
                },
                &pipeline,
            )
            .map_err(|err| ExperimentError::step(format!("preprocess {stage}"), err))?;
            if report.failed > 0 {
                eprintln!(
                    "      {} of {} images failed (listed in {}); the runs go on without them",
                    report.failed,
                    report.total,
                    dir.display()
                );
            }
            failed_images += report.failed;
            steps.finish(&dir, &key, t)?;
        }
        for &res in &e.resolutions {
            let size = OutputSize::square(res);
            manifests.add(stage, res, dir.join(size.label()).join("manifest.csv"));
        }
    }
    Ok((manifests, failed_images))
}

/// Per resolution and fold, a GAN on that fold's training positives and its generated
/// images; per resolution, the augmented manifest (processed rows plus every fold's
/// generated rows), added to `manifests`.
fn gan_steps(
    steps: &mut Steps,
    opts: &ExperimentOptions,
    gcfg: &mammo_gan::GanConfig,
    manifests: &mut Manifests,
) -> Result<Vec<gan::GanFold>, ExperimentError> {
    let cfg = &opts.config;
    let e = &cfg.experiment;
    let mut gan_folds: Vec<gan::GanFold> = Vec::new();
    for &res in &e.resolutions {
        let processed = manifests.get(Stage::Processed, res).to_path_buf();
        let processed_sha = sha256_file(&processed)?;
        let mut folds = Vec::new();
        for fold in 0..cfg.train.folds {
            let t = &cfg.train;
            let key = json!({
                "gan": cfg.gan,
                "gan_config": gcfg,
                "resolution": res,
                "fold": fold,
                "folds": t.folds,
                "split": t.split,
                "seed": t.seed,
                "synthetic_positives": e.synthetic_positives,
                "manifest_sha256": processed_sha,
                // Manifests name their PNGs by relative path: a preprocessing change that
                // alters only pixels leaves them byte-identical, so that code is keyed too.
                "code": {"gan": fingerprint("gan"), "preprocess": fingerprint("preprocess")},
            });
            let (dir, done, _) = steps.begin("gan", &format!("{res}-fold{fold}"), &key)?;
            let g = if done {
                gan::GanFold::load(&dir)?
            } else {
                let started = Instant::now();
                let g = gan::run_fold(
                    &processed,
                    &cfg.train,
                    &cfg.gan,
                    gcfg,
                    res,
                    fold,
                    e.synthetic_positives,
                    &dir,
                    &opts.device,
                    opts.progress,
                )?;
                steps.finish(&dir, &key, started)?;
                g
            };
            folds.push(g);
        }
        let digest_key = json!({
            "processed": processed_sha,
            "folds": folds.iter().map(|f| f.manifest.clone()).collect::<Vec<_>>(),
        });
        let path = opts
            .out
            .join("steps")
            .join(format!("augment-{res}-{}", digest(&digest_key)))
            .join("manifest.csv");
        gan::write_augmented(&processed, &folds, &path)?;
        manifests.add(Stage::Augmented, res, path);
        gan_folds.extend(folds);
    }
    Ok(gan_folds)
}

/// One model trained on one stage's manifest at one resolution.
struct TrainedRun<'a> {
    stage: Stage,
    resolution: u32,
    model: &'a str,
    manifest: &'a Path,
    manifest_sha: &'a str,
}

/// The training step of `run` and its explain step; `lesions` is `lesions.csv` and its
/// digest, when the data has one.
fn train_and_explain(
    steps: &mut Steps,
    opts: &ExperimentOptions,
    weights: &BTreeMap<String, ModelWeights>,
    run: &TrainedRun,
    lesions: Option<(&Path, &str)>,
) -> Result<RunResult, ExperimentError> {
    let cfg = &opts.config;
    let (stage, res, model) = (run.stage, run.resolution, run.model);
    let (lesions, lesions_sha) = (lesions.map(|l| l.0), lesions.map(|l| l.1));
    let mut tc = cfg.train.clone();
    tc.model = model.to_string();
    tc.pretrained = weights.get(model).map(|w| w.file.clone());
    let name = format!("{stage}-{res}-{model}");
    // The weights by content, not by where they were found: the same file named
    // in [weights] or found in a hub cache is the same training.
    let mut key_tc = tc.clone();
    key_tc.pretrained = None;
    let weights_sha = weights.get(model).map(|w| w.sha256.clone());
    let key = json!({
        "train": key_tc,
        "weights_sha256": weights_sha,
        "manifest_sha256": run.manifest_sha,
        // As for the GAN: the manifest does not change with the pixels it names.
        "code": {"train": fingerprint("train"), "preprocess": fingerprint("preprocess")},
    });
    // Explanations are keyed on the training actually used (an earlier build's,
    // under --reuse-stale), so they never pass for another model's.
    let (dir, done, key) = steps.begin("train", &name, &key)?;
    let run_dir = dir.join("run");
    let trained = if done {
        None
    } else {
        let t = Instant::now();
        let report = train(
            &tc,
            &TrainOptions {
                manifest: run.manifest.to_path_buf(),
                out: run_dir.clone(),
                device: opts.device.clone(),
                progress: opts.progress,
                log: true,
                stop_after_epochs: None,
                cache_bytes: 0,
            },
        )
        .map_err(|err| ExperimentError::step(format!("train {name}"), err))?;
        let Some(metrics) = report.metrics else {
            return Err(ExperimentError::step(
                format!("train {name}"),
                "stopped before every fold finished; run the experiment again to resume",
            ));
        };
        steps.finish(&dir, &key, t)?;
        Some(metrics)
    };
    // A run done in an earlier call: its metrics again from the saved predictions.
    let metrics = match trained {
        Some(m) => m,
        None => mammo_train::evaluate_run(&run_dir)
            .map_err(|err| ExperimentError::step(format!("metrics {name}"), err))?,
    };

    let ekey = json!({
        "train_key": key,
        "explain": cfg.explain,
        "lesions": lesions_sha,
        "code": fingerprint("explain"),
    });
    let (edir, edone, _) = steps.begin("explain", &name, &ekey)?;
    let explain_out = edir.join("explain");
    let explanation = if edone {
        ExplainStep::load(&explain_out)?
    } else {
        let t = Instant::now();
        let r = explain_run(&run_dir, &cfg.explain, lesions, &explain_out, &opts.device)?;
        steps.finish(&edir, &ekey, t)?;
        r
    };
    Ok(RunResult {
        resolution: res,
        stage,
        model: model.to_string(),
        run_dir,
        metrics,
        explanation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mammo_preprocess::FlipTo;

    #[test]
    fn the_plan_lists_every_step_in_order() {
        let mut cfg = ExperimentConfig::from_toml_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/demo-full.toml"),
        )
        .unwrap();
        cfg.experiment.resolutions = vec![64, 32];
        cfg.train.folds = 2;
        let names: Vec<String> = plan(&cfg, true).iter().map(|s| s.to_string()).collect();
        let mut want: Vec<String> = [
            "data phantom",
            "preprocess original",
            "preprocess processed",
            "gan 64-fold0",
            "gan 64-fold1",
            "gan 32-fold0",
            "gan 32-fold1",
        ]
        .map(String::from)
        .to_vec();
        for res in [64, 32] {
            for stage in ["original", "processed", "augmented"] {
                want.push(format!("train {stage}-{res}-resnet18"));
                want.push(format!("explain {stage}-{res}-resnet18"));
            }
        }
        want.push("report".into());
        assert_eq!(names, want);
        // Given data, no phantom step; without the augmented stage, no GANs.
        cfg.experiment.stages = vec![Stage::Processed];
        let names: Vec<String> = plan(&cfg, false).iter().map(|s| s.to_string()).collect();
        assert_eq!(
            names,
            [
                "preprocess processed",
                "train processed-64-resnet18",
                "explain processed-64-resnet18",
                "train processed-32-resnet18",
                "explain processed-32-resnet18",
                "report"
            ]
        );
    }

    #[test]
    fn stages_preprocess_as_algorithm_1() {
        let o = pipeline_for(Stage::Original, &[256, 512]);
        assert!(!o.crop);
        assert_eq!(o.flip_to, FlipTo::None);
        let p = pipeline_for(Stage::Processed, &[256]);
        assert!(p.crop);
        assert_eq!(p.flip_to, FlipTo::Left);
        assert_eq!(o.sizes.len(), 2);
    }
}
