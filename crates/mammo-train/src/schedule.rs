//! Learning-rate schedules, as a pure function of the step so a resumed run continues exactly.

use std::f64::consts::PI;

use crate::config::{Schedule, TrainConfig};

/// Learning rate at optimiser step `step` (0-based) of `total` steps.
pub fn learning_rate(cfg: &TrainConfig, step: usize, total: usize) -> f64 {
    match cfg.schedule {
        Schedule::Constant => cfg.lr,
        Schedule::OneCycle => one_cycle(
            cfg.lr,
            cfg.pct_start,
            cfg.div_factor,
            cfg.final_div_factor,
            step,
            total,
        ),
    }
}

/// fastai `fit_one_cycle`: cosine from `max / div` up to `max` over the first `pct_start` of
/// the steps, then cosine down to `max / div / final_div`. fastai evaluates the schedule at
/// `pos = step / total`; so does this.
pub fn one_cycle(
    max: f64,
    pct_start: f64,
    div: f64,
    final_div: f64,
    step: usize,
    total: usize,
) -> f64 {
    let start = max / div;
    let end = start / final_div;
    let pos = step as f64 / total.max(1) as f64;
    let cos = |from: f64, to: f64, t: f64| to + (from - to) / 2.0 * (1.0 + (PI * t).cos());
    if pos < pct_start {
        cos(start, max, pos / pct_start)
    } else {
        cos(max, end, ((pos - pct_start) / (1.0 - pct_start)).min(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_shape() {
        let total = 100;
        let lr = |s| one_cycle(1e-3, 0.25, 25.0, 1e5, s, total);
        assert!((lr(0) - 4e-5).abs() < 1e-12);
        assert!((lr(25) - 1e-3).abs() < 1e-12);
        assert!(lr(10) > lr(5) && lr(30) < lr(25) && lr(99) < 1e-5);
        assert!((one_cycle(1e-3, 0.25, 25.0, 1e5, total, total) - 4e-10).abs() < 1e-15);
        // fastai: pos 0.125 is half way up the warm-up cosine
        assert!((lr(12) - one_cycle(1e-3, 0.25, 25.0, 1e5, 12, total)).abs() < 1e-15);
        let mid = one_cycle(1.0, 0.5, 2.0, 1.0, 1, 4); // pos 0.25 = half of warm-up
        assert!((mid - 0.75).abs() < 1e-12);
    }
}
