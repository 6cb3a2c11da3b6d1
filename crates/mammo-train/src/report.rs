//! Out-of-fold predictions, metrics per fold with mean +- std, and the run's plots.

use std::path::Path;

use serde::{Deserialize, Serialize};

use mammo_eval::{BinaryMetrics, binary_metrics, per_breast_probabilistic_f1, roc_curve};
use mammo_plot::{LineChart, Series, confusion_svg};

use crate::config::Select;
use crate::data::Item;
use crate::error::{Result, io_err};
use crate::run::{Run, fold_dir, read_csv, write_atomic, write_csv, write_json};
use crate::trainer::EpochRecord;

/// One prediction row (validation, out-of-fold or held-out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub image_id: String,
    pub patient_id: String,
    pub laterality: String,
    pub label: u8,
    pub fold: Option<usize>,
    pub logit: f64,
    pub probability: f64,
}

impl Prediction {
    pub fn new(item: &Item, fold: Option<usize>, logit: f64) -> Self {
        Self {
            image_id: item.image_id.clone(),
            patient_id: item.patient_id.clone(),
            laterality: item.laterality.clone(),
            label: item.label,
            fold,
            logit,
            probability: sigmoid(logit),
        }
    }
}

pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        x.exp() / (1.0 + x.exp())
    }
}

/// Mean binary cross-entropy of the rows' logits (numerically stable form).
pub fn bce(rows: &[Prediction]) -> f64 {
    if rows.is_empty() {
        return f64::NAN;
    }
    rows.iter()
        .map(|r| r.logit.max(0.0) - r.logit * r.label as f64 + (-r.logit.abs()).exp().ln_1p())
        .sum::<f64>()
        / rows.len() as f64
}

/// Image-level metrics plus the per-breast probabilistic F1.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    #[serde(flatten)]
    pub binary: BinaryMetrics,
    /// Probabilistic F1 per breast (mean prediction per patient + laterality).
    pub pf1: f64,
}

pub fn metrics_of(rows: &[Prediction]) -> Metrics {
    let labels: Vec<u8> = rows.iter().map(|r| r.label).collect();
    let probs: Vec<f64> = rows.iter().map(|r| r.probability).collect();
    let patients: Vec<&str> = rows.iter().map(|r| r.patient_id.as_str()).collect();
    let sides: Vec<&str> = rows.iter().map(|r| r.laterality.as_str()).collect();
    Metrics {
        binary: binary_metrics(&labels, &probs),
        pf1: per_breast_probabilistic_f1(&patients, &sides, &labels, &probs),
    }
}

/// Mean and sample standard deviation over folds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

impl MeanStd {
    pub fn of(values: &[f64]) -> Self {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Self {
                mean: f64::NAN,
                std: f64::NAN,
            };
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let std = if v.len() > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        } else {
            0.0
        };
        Self { mean, std }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FoldMetrics {
    pub fold: usize,
    pub epoch: usize,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// The Table 2 columns, mean +- std over folds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub accuracy: MeanStd,
    pub roc_auc: MeanStd,
    pub precision: MeanStd,
    pub recall: MeanStd,
    pub f1: MeanStd,
    pub best_f1: MeanStd,
    pub pf1: MeanStd,
}

/// `metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunMetrics {
    pub model: String,
    pub input_size: [usize; 2],
    pub select: Select,
    pub folds: Vec<FoldMetrics>,
    pub mean: Summary,
    /// All out-of-fold predictions pooled.
    pub pooled: Metrics,
}

fn summary(folds: &[FoldMetrics]) -> Summary {
    let col = |f: &dyn Fn(&Metrics) -> f64| {
        MeanStd::of(&folds.iter().map(|m| f(&m.metrics)).collect::<Vec<_>>())
    };
    Summary {
        accuracy: col(&|m| m.binary.accuracy),
        roc_auc: col(&|m| m.binary.roc_auc.unwrap_or(f64::NAN)),
        precision: col(&|m| m.binary.precision),
        recall: col(&|m| m.binary.recall),
        f1: col(&|m| m.binary.f1),
        best_f1: col(&|m| m.binary.best_f1),
        pf1: col(&|m| m.pf1),
    }
}

/// Once every fold is done: `oof_predictions.csv`, `metrics.json`, `metrics.md` and
/// `plots/` from the folds' saved predictions and histories.
pub fn finish_run(dir: &Path) -> Result<RunMetrics> {
    let run = Run::open(dir)?;
    let cfg = &run.config;
    let mut oof = Vec::new();
    let mut folds = Vec::new();
    let mut histories = Vec::new();
    for fold in 0..cfg.folds {
        let fd = fold_dir(dir, fold);
        let state = crate::trainer::load_state(&fd)?
            .ok_or_else(|| io_err("read", &fd, "fold has no checkpoint"))?;
        let (file, epoch) = match cfg.select {
            Select::Last => ("predictions_last.csv", state.epochs_done),
            Select::Best => ("predictions_best.csv", state.best_epoch),
        };
        let rows: Vec<Prediction> = read_csv(&fd.join(file))?;
        folds.push(FoldMetrics {
            fold,
            epoch,
            metrics: metrics_of(&rows),
        });
        oof.extend(rows);
        histories.push(state.history);
    }
    let metrics = RunMetrics {
        model: cfg.model.clone(),
        input_size: run.info.input_size,
        select: cfg.select,
        mean: summary(&folds),
        pooled: metrics_of(&oof),
        folds,
    };
    write_csv(&dir.join("oof_predictions.csv"), &oof)?;
    write_json(&dir.join("metrics.json"), &metrics)?;
    write_atomic(&dir.join("metrics.md"), markdown(&metrics).as_bytes())?;
    write_plots(&dir.join("plots"), &metrics, &oof, &histories)?;
    Ok(metrics)
}

fn pct(m: MeanStd) -> String {
    if m.mean.is_nan() {
        "n/a".into()
    } else {
        format!("{:.2} ± {:.2}", 100.0 * m.mean, 100.0 * m.std)
    }
}

/// The Markdown cells accuracy | ROC-AUC | precision | recall | F1 | best F1 | pF1 | TP | FP |
/// TN | FN of one evaluation (percentages except pF1), without the outer pipes.
pub(crate) fn metric_cells(x: &Metrics) -> String {
    let (b, c) = (&x.binary, &x.binary.confusion);
    format!(
        "{:.2} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.4} | {} | {} | {} | {}",
        100.0 * b.accuracy,
        b.roc_auc
            .map_or("n/a".into(), |a| format!("{:.2}", 100.0 * a)),
        100.0 * b.precision,
        100.0 * b.recall,
        100.0 * b.f1,
        100.0 * b.best_f1,
        x.pf1,
        c.tp,
        c.fp,
        c.tn,
        c.fn_
    )
}

/// The metrics as a Markdown table: one row per fold, then mean ± std and pooled.
pub fn markdown(m: &RunMetrics) -> String {
    let mut s = format!(
        "# {} at {}x{} ({} epoch per fold)\n\n| fold | epoch | accuracy | ROC-AUC | precision | \
         recall | F1 | best F1 | pF1 (breast) | TP | FP | TN | FN \
         |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        m.model,
        m.input_size[1],
        m.input_size[0],
        m.select.label()
    );
    let row = |name: String, epoch: String, x: &Metrics| {
        format!("| {name} | {epoch} | {} |\n", metric_cells(x))
    };
    for f in &m.folds {
        s += &row(f.fold.to_string(), f.epoch.to_string(), &f.metrics);
    }
    let mean = &m.mean;
    s += &format!(
        "| mean ± std | | {} | {} | {} | {} | {} | {} | {:.4} ± {:.4} | | | | |\n",
        pct(mean.accuracy),
        pct(mean.roc_auc),
        pct(mean.precision),
        pct(mean.recall),
        pct(mean.f1),
        pct(mean.best_f1),
        mean.pf1.mean,
        mean.pf1.std
    );
    s += &row("pooled".into(), String::new(), &m.pooled);
    s += "\nPercentages except pF1; thresholds 0.5 except best F1 (F1-optimal threshold per \
          fold).\n";
    s
}

fn write_plots(
    dir: &Path,
    m: &RunMetrics,
    oof: &[Prediction],
    histories: &[Vec<EpochRecord>],
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
    let per_fold = |f: &dyn Fn(&EpochRecord) -> f64| -> Vec<Series> {
        histories
            .iter()
            .enumerate()
            .map(|(k, h)| {
                Series::new(
                    format!("fold {k}"),
                    h.iter().map(|r| (r.epoch as f64, f(r))).collect(),
                )
            })
            .collect()
    };
    let mut loss = LineChart::new(
        "Loss per epoch (solid: train, dashed: validation)",
        "epoch",
        "BCE loss",
    )
    .markers(true);
    for (k, h) in histories.iter().enumerate() {
        loss = loss.series(Series::new(
            format!("fold {k} train"),
            h.iter().map(|r| (r.epoch as f64, r.train_loss)).collect(),
        ));
        loss = loss.series(
            Series::new(
                format!("fold {k} val"),
                h.iter().map(|r| (r.epoch as f64, r.val_loss)).collect(),
            )
            .dashed(),
        );
    }
    let mut auc = LineChart::new("Validation ROC-AUC per epoch", "epoch", "ROC-AUC")
        .markers(true)
        .y_range(0.0, 1.0);
    for s in per_fold(&|r| r.val_auc.unwrap_or(f64::NAN)) {
        auc = auc.series(s);
    }
    let mut f1 = LineChart::new("Validation F1 and pF1 per epoch", "epoch", "score")
        .markers(true)
        .y_range(0.0, 1.0);
    for s in per_fold(&|r| r.val_f1) {
        f1 = f1.series(s);
    }
    let labels: Vec<u8> = oof.iter().map(|r| r.label).collect();
    let probs: Vec<f64> = oof.iter().map(|r| r.probability).collect();
    let mut roc = LineChart::new(
        format!(
            "ROC, out-of-fold (AUC {})",
            m.pooled
                .binary
                .roc_auc
                .map_or("n/a".into(), |a| format!("{a:.3}"))
        ),
        "false positive rate",
        "true positive rate",
    )
    .x_range(0.0, 1.0)
    .y_range(0.0, 1.0)
    .series(Series::new("pooled", roc_curve(&labels, &probs)));
    for k in 0..m.folds.len() {
        let rows: Vec<&Prediction> = oof.iter().filter(|r| r.fold == Some(k)).collect();
        let l: Vec<u8> = rows.iter().map(|r| r.label).collect();
        let p: Vec<f64> = rows.iter().map(|r| r.probability).collect();
        roc = roc.series(Series::new(format!("fold {k}"), roc_curve(&l, &p)));
    }
    roc = roc.series(Series::new("chance", vec![(0.0, 0.0), (1.0, 1.0)]).dashed());
    let c = &m.pooled.binary.confusion;
    let files = [
        ("loss.svg", loss.to_svg()),
        ("auc.svg", auc.to_svg()),
        ("f1.svg", f1.to_svg()),
        ("roc.svg", roc.to_svg()),
        (
            "confusion.svg",
            confusion_svg(
                &format!("{}: out-of-fold, threshold 0.5", m.model),
                c.tn,
                c.fp,
                c.fn_,
                c.tp,
            ),
        ),
    ];
    for (name, svg) in files {
        write_atomic(&dir.join(name), svg.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bce_matches_definition() {
        let rows: Vec<Prediction> = [(2.0, 1u8), (-1.0, 0), (0.5, 0)]
            .iter()
            .map(|&(logit, label)| Prediction {
                image_id: String::new(),
                patient_id: String::new(),
                laterality: String::new(),
                label,
                fold: None,
                logit,
                probability: sigmoid(logit),
            })
            .collect();
        let direct = rows
            .iter()
            .map(|r| {
                if r.label == 1 {
                    -r.probability.ln()
                } else {
                    -(1.0 - r.probability).ln()
                }
            })
            .sum::<f64>()
            / 3.0;
        assert!((bce(&rows) - direct).abs() < 1e-12);
        assert!((sigmoid(-800.0)).abs() < 1e-300 && sigmoid(800.0) == 1.0);
    }

    #[test]
    fn mean_std_sample() {
        let m = MeanStd::of(&[1.0, 2.0, 3.0, f64::NAN]);
        assert_eq!(m.mean, 2.0);
        assert!((m.std - 1.0).abs() < 1e-12);
    }
}
