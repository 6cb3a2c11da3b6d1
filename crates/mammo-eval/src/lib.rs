//! Evaluation without a deep-learning engine: cross-validation folds (stratified, and
//! stratified-grouped by patient) and the metrics the paper and the RSNA challenge report.

mod folds;
mod metrics;

pub use folds::{FoldError, stratified_group_kfold, stratified_kfold};
pub use metrics::{
    BinaryMetrics, Confusion, best_f1_threshold, binary_metrics, per_breast_probabilistic_f1,
    probabilistic_f1, roc_auc, roc_curve,
};
