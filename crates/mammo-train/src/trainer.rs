//! The training loop: per fold, per epoch, with a checkpoint after every epoch so that a
//! killed run resumes from the last finished epoch and ends bit-identical to an uninterrupted
//! one (the sample order, flips and learning rate are pure functions of seed, fold, epoch and
//! step; the model and optimiser state are restored exactly).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use mammo_models::optim::{AdamConfig, WeightDecay};
use mammo_models::{
    Classifier, Model, ModelConfig, create_model, load_timm_safetensors, save_safetensors,
};

use crate::config::{OptimizerKind, TrainConfig};
use crate::data::{
    Augment, Dataset, ImageCache, Item, Sample, assign_folds, epoch_samples, load_batch,
    validation_items,
};
use crate::error::{Result, TrainError, io_err};
use crate::prefetch::for_each_prefetched;
use crate::report::{self, Prediction, RunMetrics};
use crate::run::{self, fold_dir, read_json, write_csv, write_json};
use crate::schedule::learning_rate;

/// Batches prepared ahead of the one the device is computing.
pub(crate) const PREFETCH_BATCHES: usize = 2;
/// Steps between reads of the loss (each read waits for the device).
const LOSS_READ_EVERY: usize = 8;

/// How and where to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub manifest: PathBuf,
    pub out: PathBuf,
    /// Plain (inference) device; training uses its autodiff twin.
    pub device: Device,
    pub progress: bool,
    /// One line per finished epoch on stderr (losses, validation metrics, time).
    pub log: bool,
    /// Stop after this many epochs (over all folds) in this call; the run stays resumable.
    pub stop_after_epochs: Option<usize>,
    /// Bytes of decoded images kept in memory across epochs and folds (0: none); see
    /// [`ImageCache`]. Does not change any result.
    pub cache_bytes: usize,
}

/// One epoch's record in `history.csv` and `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_auc: Option<f64>,
    pub val_accuracy: f64,
    pub val_f1: f64,
    pub val_pf1: f64,
    pub lr_last: f64,
    pub seconds: f64,
}

/// `fold-K/checkpoint/state.json`: progress of a fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldState {
    pub epochs_done: usize,
    pub steps_done: usize,
    pub best_epoch: usize,
    pub best_auc: Option<f64>,
    pub history: Vec<EpochRecord>,
}

/// What a call to [`train`] did.
#[derive(Debug, Clone)]
pub struct TrainReport {
    pub run: PathBuf,
    pub folds_trained: Vec<usize>,
    pub epochs_run: usize,
    /// Every fold of the run has finished (metrics were written).
    pub complete: bool,
    pub metrics: Option<RunMetrics>,
    pub seconds: f64,
}

/// Trains (or resumes) the cross-validated run `opts.out` on `opts.manifest`.
pub fn train(cfg: &TrainConfig, opts: &TrainOptions) -> Result<TrainReport> {
    cfg.validate()?;
    let started = Instant::now();
    let data = Dataset::from_manifest(&opts.manifest)?;
    let model_cfg = ModelConfig::new(&cfg.model)?
        .with_input_size(data.size)
        .with_drop_rate(cfg.drop_rate);
    model_cfg.validate()?;
    let folds = assign_folds(&data.items, cfg.split, cfg.folds, cfg.seed)?;
    // One writer per run folder; what killed writers left half-written goes first.
    let _lock = mammo_image::OutputLock::acquire(&opts.out, "mammo train")?;
    mammo_image::sweep_temp_files(&opts.out)
        .map_err(|e| io_err("clean temporary files in", &opts.out, e))?;
    run::prepare(&opts.out, cfg, &model_cfg, &data, &folds)?;

    let mut budget = opts.stop_after_epochs;
    let mut trained = Vec::new();
    let mut epochs_run = 0;
    // One cache for every fold: each image is decoded once for the whole run when it fits.
    let cache = ImageCache::new(opts.cache_bytes);
    for fold in cfg.folds_to_train() {
        if budget == Some(0) {
            break;
        }
        let ran = train_fold(
            cfg,
            &model_cfg,
            &data,
            &folds,
            fold,
            opts,
            &mut budget,
            &cache,
        )?;
        if ran > 0 {
            trained.push(fold);
        }
        epochs_run += ran;
    }

    let complete = (0..cfg.folds).all(|f| fold_finished(&opts.out, f, cfg.epochs));
    let metrics = if complete {
        Some(report::finish_run(&opts.out)?)
    } else {
        None
    };
    Ok(TrainReport {
        run: opts.out.clone(),
        folds_trained: trained,
        epochs_run,
        complete,
        metrics,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether fold `fold` of the run in `run` has trained all `epochs`.
pub fn fold_finished(run: &Path, fold: usize, epochs: usize) -> bool {
    load_state(&fold_dir(run, fold))
        .ok()
        .flatten()
        .is_some_and(|s| s.epochs_done >= epochs)
}

fn checkpoint_dir(fold_dir: &Path) -> PathBuf {
    fold_dir.join("checkpoint")
}

/// The fold's saved state, recovering from a kill between the two renames of a checkpoint
/// swap.
pub fn load_state(fold_dir: &Path) -> Result<Option<FoldState>> {
    let ckpt = checkpoint_dir(fold_dir);
    mammo_image::recover_dir(&ckpt).map_err(|e| io_err("restore", &ckpt, e))?;
    let state = ckpt.join("state.json");
    if !state.exists() {
        return Ok(None);
    }
    read_json(&state).map(Some)
}

/// A freshly initialised model whose weights depend only on `seed`, whatever the device: they
/// are drawn on flex (the host) and then moved, so a run on a GPU starts from the weights the
/// same seed gives on the CPU.
///
/// The move is a `fork`, not a `to_device`: on an autodiff device `to_device` is a tracked
/// operation, so every parameter would be the output of a device copy rather than a leaf. The
/// first backward then computes no parameter gradient at all (the copy's gradient flows to the
/// host tensor and is dropped) and the second one finds the copy's step consumed ("graph tape
/// has already been consumed"). `fork` detaches and marks each parameter as a new leaf.
pub fn create_initialised(cfg: &ModelConfig, device: &Device, seed: u64) -> Result<Model> {
    let host = if device.is_autodiff() {
        Device::flex().autodiff()
    } else {
        Device::flex()
    };
    // Drawn under the seeding lock, every parameter materialised: a function of the seed.
    let model = mammo_models::seeded(&host, seed, || {
        let model = create_model(cfg, &host)?;
        mammo_models::materialise(&model);
        Ok::<_, TrainError>(model)
    })?;
    Ok(if *device == host {
        model
    } else {
        model.fork(device)
    })
}

/// Adam or AdamW as burn defines them, fused on flex ([`mammo_models::optim`]).
fn optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    let [b1, b2] = cfg.betas;
    let decay = cfg.weight_decay as f32;
    AdamConfig {
        beta_1: b1 as f32,
        beta_2: b2 as f32,
        epsilon: cfg.eps as f32,
        weight_decay: match cfg.optimizer {
            OptimizerKind::Adam if cfg.weight_decay > 0.0 => WeightDecay::L2(decay),
            OptimizerKind::Adam => WeightDecay::None,
            OptimizerKind::Adamw => WeightDecay::Decoupled(decay),
        },
    }
    .init()
}

#[allow(clippy::too_many_arguments)]
fn train_fold(
    cfg: &TrainConfig,
    model_cfg: &ModelConfig,
    data: &Dataset,
    folds: &[Option<usize>],
    fold: usize,
    opts: &TrainOptions,
    budget: &mut Option<usize>,
    cache: &ImageCache,
) -> Result<usize> {
    let dir = fold_dir(&opts.out, fold);
    std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
    let mut state = load_state(&dir)?;
    if state.as_ref().is_some_and(|s| s.epochs_done >= cfg.epochs) {
        return Ok(0);
    }
    let plain = opts.device.clone();
    let device = plain.clone().autodiff();
    let mut model = create_initialised(
        model_cfg,
        &device,
        mammo_rand::derive(cfg.seed, &[0x696e_6974, fold as u64]),
    )?;
    let mut optim = optimizer(cfg);
    match &state {
        Some(_) => {
            let ckpt = checkpoint_dir(&dir);
            let path = ckpt.join("model.bpk");
            let mut store = BurnpackStore::from_file(&path);
            model
                .load_from(&mut store)
                .map_err(|e| io_err("load checkpoint", &path, e))?;
            let path = ckpt.join("optim.bpk");
            optim = optim
                .load(&path)
                .map_err(|e| io_err("load optimiser state", &path, e))?;
        }
        None => {
            if let Some(weights) = &cfg.pretrained {
                let spec = mammo_models::spec(&cfg.model)?;
                load_timm_safetensors(&mut model, spec, weights)?;
            }
        }
    }
    let mut st = state.take().unwrap_or(FoldState {
        epochs_done: 0,
        steps_done: 0,
        best_epoch: 0,
        best_auc: None,
        history: Vec::new(),
    });

    let loss_fn = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);
    let val_idx = validation_items(folds, fold);
    let train_len = epoch_samples(&data.items, folds, fold, 0, cfg).len();
    let steps_per_epoch = train_len.div_ceil(cfg.batch_size);
    let total_steps = steps_per_epoch * cfg.epochs;
    let [h, w] = data.size;
    let c = model_cfg.in_chans;
    let mut ran = 0;

    for epoch in st.epochs_done..cfg.epochs {
        if *budget == Some(0) {
            break;
        }
        let t0 = Instant::now();
        // Dropout draws from burn's process-wide generator: reseed it per epoch (under the
        // seeding lock, so another training's initialisation is not disturbed).
        let epoch_seed = mammo_rand::derive(cfg.seed, &[0x6570_6f63, fold as u64, epoch as u64]);
        mammo_models::seeded(&plain, epoch_seed, || ());
        let samples: Vec<Sample> = epoch_samples(&data.items, folds, fold, epoch, cfg);
        let pb = mammo_io::progress_bar(
            opts.progress,
            steps_per_epoch as u64,
            format!(
                "fold {}/{} epoch {}/{}",
                fold + 1,
                cfg.folds,
                epoch + 1,
                cfg.epochs
            ),
        );
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        let mut lr = cfg.lr;
        // Losses stay on the device and are read a few steps at a time: reading one waits for
        // the device, so a per-step read would stall a GPU on every batch. The values read are
        // the same f32 losses, summed in the same order.
        let mut pending: Vec<(usize, usize, Tensor<1>)> = Vec::with_capacity(LOSS_READ_EVERY);
        let flush = |pending: &mut Vec<(usize, usize, Tensor<1>)>,
                     lr: f64,
                     loss_sum: &mut f64,
                     seen: &mut usize|
         -> Result<()> {
            if pending.is_empty() {
                return Ok(());
            }
            let values: Vec<f32> =
                Tensor::cat(pending.iter().map(|(_, _, t)| t.clone()).collect(), 0)
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec()
                    .map_err(|e| TrainError::Config(format!("reading losses: {e:?}")))?;
            for ((b, n, _), value) in pending.drain(..).zip(values) {
                if !value.is_finite() {
                    return Err(TrainError::Diverged {
                        fold,
                        epoch: epoch + 1,
                        step: b,
                        loss: value,
                        lr,
                    });
                }
                *loss_sum += value as f64 * n as f64;
                *seen += n;
            }
            pb.set_message(format!(
                "loss {:.4} lr {lr:.2e}",
                *loss_sum / (*seen).max(1) as f64
            ));
            Ok(())
        };
        let chunks: Vec<&[Sample]> = samples.chunks(cfg.batch_size).collect();
        // The closure below takes the model out and puts the stepped one back (no clone: the
        // optimiser updates parameters in place when nothing else holds them).
        let mut slot = Some(model);
        for_each_prefetched(
            chunks.len(),
            PREFETCH_BATCHES,
            |b| load_batch(&data.items, chunks[b], data.size, model_cfg, cache),
            |b, batch| {
                let step = epoch * steps_per_epoch + b;
                lr = learning_rate(cfg, step, total_steps);
                let x = Tensor::<4>::from_data(
                    TensorData::new(batch.values, [batch.n, c, h, w]),
                    &device,
                );
                let y = Tensor::<2, Int>::from_data(
                    TensorData::new(
                        batch.labels.iter().map(|&v| v as i64).collect::<Vec<_>>(),
                        [batch.n, 1],
                    ),
                    &device,
                );
                let m = slot.take().expect("the model is put back after every step");
                let loss = loss_fn.forward(m.forward(x), y);
                pending.push((b, batch.n, loss.clone().detach().reshape([1])));
                let grads = GradientsParams::from_grads(loss.backward(), &m);
                slot = Some(optim.step(lr, m, grads));
                pb.inc(1);
                if pending.len() >= LOSS_READ_EVERY {
                    flush(&mut pending, lr, &mut loss_sum, &mut seen)?;
                }
                Ok(())
            },
        )?;
        flush(&mut pending, lr, &mut loss_sum, &mut seen)?;
        model = slot.take().expect("the model is put back after every step");
        pb.finish_and_clear();

        let valid = model.valid();
        let preds = predict_items(
            &valid,
            model_cfg,
            &data.items,
            &val_idx,
            data.size,
            cfg.eval_batch_size,
            &plain,
            opts.progress,
            &format!("fold {}/{} validate", fold + 1, cfg.folds),
            cache,
        )?;
        let rows: Vec<Prediction> = val_idx
            .iter()
            .zip(&preds)
            .map(|(&i, &logit)| Prediction::new(&data.items[i], Some(fold), logit))
            .collect();
        let m = report::metrics_of(&rows);
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            val_loss: report::bce(&rows),
            val_auc: m.binary.roc_auc,
            val_accuracy: m.binary.accuracy,
            val_f1: m.binary.f1,
            val_pf1: m.pf1,
            lr_last: lr,
            seconds: t0.elapsed().as_secs_f64(),
        };
        let improved = st.history.is_empty()
            || record.val_auc.unwrap_or(f64::NEG_INFINITY)
                > st.best_auc.unwrap_or(f64::NEG_INFINITY);
        if improved {
            st.best_epoch = epoch + 1;
            st.best_auc = record.val_auc;
            save_safetensors(&valid, model_cfg, &dir.join("best.safetensors"))?;
            write_csv(&dir.join("predictions_best.csv"), &rows)?;
        }
        st.history.push(record.clone());
        st.epochs_done = epoch + 1;
        st.steps_done = (epoch + 1) * steps_per_epoch;
        // The epoch's outputs first, the checkpoint that marks it done last: a kill in between
        // makes the resumed run redo the epoch and rewrite the same bytes, where the other
        // order would leave a finished epoch with the previous epoch's outputs.
        save_safetensors(&valid, model_cfg, &dir.join("last.safetensors"))?;
        write_csv(&dir.join("predictions_last.csv"), &rows)?;
        write_csv(&dir.join("history.csv"), &st.history)?;
        save_checkpoint(&dir, &model, &optim, &st, st.epochs_done >= cfg.epochs)?;
        if opts.log {
            eprintln!(
                "fold {}/{} epoch {}/{}: train loss {:.4}, val loss {:.4}, AUC {}, F1 {:.3}, pF1 \
                 {:.3} ({:.0} s){}",
                fold + 1,
                cfg.folds,
                epoch + 1,
                cfg.epochs,
                record.train_loss,
                record.val_loss,
                record.val_auc.map_or("n/a".into(), |a| format!("{a:.4}")),
                record.val_f1,
                record.val_pf1,
                record.seconds,
                if improved { " *" } else { "" }
            );
        }
        ran += 1;
        if let Some(b) = budget.as_mut() {
            *b -= 1;
        }
    }
    Ok(ran)
}

/// Writes model, optimiser and state into `checkpoint.tmp/`, then swaps it in with renames.
/// A `finished` fold keeps only its state: it is never resumed (a run refuses any other
/// configuration, and the state says every epoch is done), and its model and optimiser
/// would only take space (128 MB for resnet18; the weights are in `last.safetensors`).
fn save_checkpoint(
    dir: &Path,
    model: &Model,
    optim: &ModuleOptimizer,
    state: &FoldState,
    finished: bool,
) -> Result<()> {
    let tmp = dir.join("checkpoint.tmp");
    let ckpt = checkpoint_dir(dir);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io_err("remove", &tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| io_err("create", &tmp, e))?;
    if !finished {
        let path = tmp.join("model.bpk");
        let mut store = BurnpackStore::from_file(&path).overwrite(true);
        model
            .save_into(&mut store)
            .map_err(|e| io_err("write", &path, e))?;
        let path = tmp.join("optim.bpk");
        optim.save(&path).map_err(|e| io_err("write", &path, e))?;
    }
    write_json(&tmp.join("state.json"), state)?;
    mammo_image::swap_dir(&tmp, &ckpt).map_err(|e| io_err("swap in", &ckpt, e))
}

/// Logits of `model` (in validation mode, on `device`) for `items[idx]`, unflipped.
#[allow(clippy::too_many_arguments)]
pub fn predict_items(
    model: &Model,
    model_cfg: &ModelConfig,
    items: &[Item],
    idx: &[usize],
    size: [usize; 2],
    batch_size: usize,
    device: &Device,
    progress: bool,
    label: &str,
    cache: &ImageCache,
) -> Result<Vec<f64>> {
    let [h, w] = size;
    let pb = mammo_io::progress_bar(progress, idx.len() as u64, label);
    let mut out = Vec::with_capacity(idx.len());
    let chunks: Vec<&[usize]> = idx.chunks(batch_size).collect();
    for_each_prefetched(
        chunks.len(),
        PREFETCH_BATCHES,
        |k| {
            let samples: Vec<Sample> = chunks[k]
                .iter()
                .map(|&item| Sample {
                    item,
                    aug: Augment::NONE,
                })
                .collect();
            load_batch(items, &samples, size, model_cfg, cache)
        },
        |_, batch| {
            let x = Tensor::<4>::from_data(
                TensorData::new(batch.values, [batch.n, model_cfg.in_chans, h, w]),
                device,
            );
            let logits: Vec<f32> = model
                .forward(x)
                .into_data()
                .convert::<f32>()
                .try_into_vec()
                .map_err(|e| TrainError::Config(format!("reading logits: {e:?}")))?;
            out.extend(logits.into_iter().map(f64::from));
            pb.inc(batch.n as u64);
            Ok(())
        },
    )?;
    pb.finish_and_clear();
    Ok(out)
}
