//! Binary classification metrics.

use std::collections::BTreeMap;

use serde::Serialize;

/// Confusion matrix at a threshold (prediction >= threshold is positive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    /// False negatives (`fn` in JSON; `fn` is a Rust keyword).
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl Confusion {
    pub fn at(labels: &[u8], scores: &[f64], threshold: f64) -> Self {
        let mut c = Confusion::default();
        for (&y, &s) in labels.iter().zip(scores) {
            match (y == 1, s >= threshold) {
                (true, true) => c.tp += 1,
                (true, false) => c.fn_ += 1,
                (false, true) => c.fp += 1,
                (false, false) => c.tn += 1,
            }
        }
        c
    }
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn_)
    }
    /// 0 when nothing is predicted positive (scikit-learn's `zero_division=0`).
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting one half (Mann-Whitney U with mid-ranks; equal to scikit-learn's
/// `roc_auc_score`). `None` when one class is absent.
pub fn roc_auc(labels: &[u8], scores: &[f64]) -> Option<f64> {
    assert_eq!(labels.len(), scores.len());
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum_pos, mut n_pos) = (0f64, 0f64);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0; // 1-based ranks i+1 ..= j+1
        for &k in &idx[i..=j] {
            if labels[k] == 1 {
                rank_sum_pos += mid_rank;
                n_pos += 1.0;
            }
        }
        i = j + 1;
    }
    let n_neg = labels.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    Some((rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

/// ROC curve points `(false positive rate, true positive rate)`, one per distinct score from
/// the highest down, starting at (0, 0) and ending at (1, 1) (scikit-learn's `roc_curve` with
/// `drop_intermediate=False`). Empty when one class is absent.
pub fn roc_curve(labels: &[u8], scores: &[f64]) -> Vec<(f64, f64)> {
    assert_eq!(labels.len(), scores.len());
    let pos = labels.iter().filter(|&&y| y == 1).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return Vec::new();
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0f64, 0f64);
    let mut i = 0;
    while i < idx.len() {
        let s = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == s {
            if labels[idx[i]] == 1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        points.push((fp / neg, tp / pos));
    }
    points
}

/// The threshold (one of the scores) that maximises F1, and that F1. Ties go to the higher
/// threshold.
pub fn best_f1_threshold(labels: &[u8], scores: &[f64]) -> (f64, f64) {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a])); // descending
    let positives = labels.iter().filter(|&&y| y == 1).count() as u64;
    let (mut tp, mut fp) = (0u64, 0u64);
    let (mut best_t, mut best_f1) = (f64::INFINITY, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let t = scores[idx[i]];
        // take every sample scoring exactly t
        while i < idx.len() && scores[idx[i]] == t {
            if labels[idx[i]] == 1 {
                tp += 1
            } else {
                fp += 1
            }
            i += 1;
        }
        let f1 = ratio(2 * tp, tp + fp + positives);
        if f1 > best_f1 {
            best_f1 = f1;
            best_t = t;
        }
    }
    (best_t, best_f1)
}

/// Kaggle's probabilistic F1 (RSNA Screening Mammography): soft TP = sum of predictions on
/// positives, precision = soft TP / sum of all predictions, recall = soft TP / positives.
pub fn probabilistic_f1(labels: &[u8], predictions: &[f64]) -> f64 {
    let positives = labels.iter().filter(|&&y| y == 1).count() as f64;
    let total: f64 = predictions.iter().sum();
    let soft_tp: f64 = labels
        .iter()
        .zip(predictions)
        .filter(|(y, _)| **y == 1)
        .map(|(_, p)| p)
        .sum();
    if positives == 0.0 || total == 0.0 || soft_tp == 0.0 {
        return 0.0;
    }
    let (p, r) = (soft_tp / total, soft_tp / positives);
    2.0 * p * r / (p + r)
}

/// pF1 per breast: predictions averaged per (patient, laterality), the label of a breast
/// being the maximum of its images' labels.
pub fn per_breast_probabilistic_f1(
    patients: &[&str],
    lateralities: &[&str],
    labels: &[u8],
    predictions: &[f64],
) -> f64 {
    let mut breasts: BTreeMap<(&str, &str), (f64, usize, u8)> = BTreeMap::new();
    for i in 0..labels.len() {
        let e = breasts
            .entry((patients[i], lateralities[i]))
            .or_insert((0.0, 0, 0));
        e.0 += predictions[i];
        e.1 += 1;
        e.2 = e.2.max(labels[i]);
    }
    let (ys, ps): (Vec<u8>, Vec<f64>) =
        breasts.values().map(|&(s, n, y)| (y, s / n as f64)).unzip();
    probabilistic_f1(&ys, &ps)
}

/// Everything the paper's Table 2 reports for one evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct BinaryMetrics {
    pub n: usize,
    pub positives: usize,
    pub accuracy: f64,
    pub roc_auc: Option<f64>,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub confusion: Confusion,
    pub best_f1_threshold: f64,
    pub best_f1: f64,
    pub confusion_at_best: Confusion,
}

/// Metrics at threshold 0.5 and at the F1-optimal threshold.
pub fn binary_metrics(labels: &[u8], scores: &[f64]) -> BinaryMetrics {
    let c = Confusion::at(labels, scores, 0.5);
    let (t, f1_best) = best_f1_threshold(labels, scores);
    BinaryMetrics {
        n: labels.len(),
        positives: labels.iter().filter(|&&y| y == 1).count(),
        accuracy: c.accuracy(),
        roc_auc: roc_auc(labels, scores),
        precision: c.precision(),
        recall: c.recall(),
        f1: c.f1(),
        confusion: c,
        best_f1_threshold: t,
        best_f1: f1_best,
        confusion_at_best: Confusion::at(labels, scores, t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_serialises_with_the_usual_names() {
        let c = Confusion {
            tp: 1,
            fp: 2,
            tn: 3,
            fn_: 4,
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"tp":1,"fp":2,"tn":3,"fn":4}"#
        );
    }

    #[test]
    fn auc_by_hand() {
        // positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4, 0.8>0.1, 0.4=0.4 half, 0.4>0.1)
        assert_eq!(
            roc_auc(&[1, 1, 0, 0], &[0.8, 0.4, 0.4, 0.1]),
            Some(3.5 / 4.0)
        );
        assert_eq!(roc_auc(&[1, 1], &[0.8, 0.4]), None);
    }

    #[test]
    fn pf1_by_hand() {
        // sTP = 0.9 + 0.5 = 1.4; sum = 1.4 + 0.2 = 1.6; P = 0.875, R = 0.7
        let f = probabilistic_f1(&[1, 1, 0], &[0.9, 0.5, 0.2]);
        assert!((f - 2.0 * 0.875 * 0.7 / (0.875 + 0.7)).abs() < 1e-12);
        // per breast: (p1,L) images 0.9 and 0.5 -> 0.7; (p2,R) 0.2
        let g = per_breast_probabilistic_f1(
            &["p1", "p1", "p2"],
            &["L", "L", "R"],
            &[1, 1, 0],
            &[0.9, 0.5, 0.2],
        );
        let (p, r) = (0.7 / 0.9, 0.7);
        assert!((g - 2.0 * p * r / (p + r)).abs() < 1e-12);
    }

    #[test]
    fn roc_points() {
        let pts = roc_curve(&[1, 1, 0, 0], &[0.8, 0.4, 0.4, 0.1]);
        assert_eq!(pts, vec![(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        // trapezoid area equals the rank AUC
        let area: f64 = pts
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum();
        assert!((area - roc_auc(&[1, 1, 0, 0], &[0.8, 0.4, 0.4, 0.1]).unwrap()).abs() < 1e-12);
        assert!(roc_curve(&[1, 1], &[0.2, 0.3]).is_empty());
    }

    #[test]
    fn best_threshold() {
        let (t, f1) = best_f1_threshold(&[1, 0, 1, 0], &[0.9, 0.8, 0.7, 0.1]);
        // thresholds: 0.9 -> F1 2/3; 0.8 -> 0.5; 0.7 -> 0.8; 0.1 -> 2/3
        assert_eq!(t, 0.7);
        assert!((f1 - 0.8).abs() < 1e-12);
    }
}
