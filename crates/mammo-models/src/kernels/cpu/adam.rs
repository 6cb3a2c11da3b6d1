//! One Adam / AdamW step over a parameter tensor in one pass: the gradient's L2 penalty, both
//! moments, the bias-corrected update and the new parameter, written in place.
//!
//! burn's `Adam` and `AdamW` compose the same step from a dozen tensor operations, each a
//! serial pass over the parameter that allocates its result. Here every element takes the
//! same `f32` operations in the same order (no fused multiply-adds), so the results equal
//! burn's bit for bit; the tests hold them to that.

use rayon::prelude::*;

use super::*;

/// How the bias-corrected moments become the update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AdamUpdate {
    /// burn's `Adam`: `m * scale / (sqrt(v) + eps)`, with `scale = sqrt(1 - b2^t) / (1 - b1^t)`
    /// and `eps = epsilon * sqrt(1 - b2^t)` folded on the host.
    Folded { scale: f32, eps: f32 },
    /// burn's `AdamW`: `(m / c1) / (sqrt(v / c2) + eps)`, with `c1 = 1 - b1^t` and
    /// `c2 = 1 - b2^t`.
    Corrected { c1: f32, c2: f32, eps: f32 },
}

/// The scalars of one step, as `f32` values computed on the host the way burn computes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    pub beta_1: f32,
    pub beta_2: f32,
    /// `1 - beta_1` and `1 - beta_2`.
    pub one_minus_beta_1: f32,
    pub one_minus_beta_2: f32,
    /// The first step: the moments are `(1 - b1) g` and `(1 - b2) g^2`, the state's values are
    /// not read.
    pub first: bool,
    /// Adam's L2 weight decay: the gradient becomes `p * penalty + g` before the moments.
    pub penalty: Option<f32>,
    pub update: AdamUpdate,
    /// The learning rate.
    pub lr: f32,
    /// AdamW's decoupled weight decay: the parameter becomes `p * keep - lr * update`, with
    /// `keep = 1 - lr * weight_decay`.
    pub keep: Option<f32>,
}

/// One element's step; `FIRST`, `L2`, `W` (AdamW's update) and `DECAY` select the terms, so
/// each combination compiles to a branch-free loop.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lanes<const FIRST: bool, const L2: bool, const W: bool, const DECAY: bool>(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    s: &AdamStep,
) {
    let (b1, b2) = (s.beta_1, s.beta_2);
    let (c1, c2) = (s.one_minus_beta_1, s.one_minus_beta_2);
    let penalty = s.penalty.unwrap_or(0.0);
    let keep = s.keep.unwrap_or(1.0);
    let (scale, d1, d2, eps) = match s.update {
        AdamUpdate::Folded { scale, eps } => (scale, 1.0, 1.0, eps),
        AdamUpdate::Corrected { c1, c2, eps } => (1.0, c1, c2, eps),
    };
    let lr = s.lr;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if L2 { *p * penalty + g } else { g };
        let sq = g * g;
        let (m1, m2) = if FIRST {
            (g * c1, sq * c2)
        } else {
            (*m * b1 + g * c1, *v * b2 + sq * c2)
        };
        *m = m1;
        *v = m2;
        let u = if W {
            (m1 / d1) / ((m2 / d2).sqrt() + eps)
        } else {
            (m1 * scale) / (m2.sqrt() + eps)
        };
        *p = if DECAY {
            *p * keep - u * lr
        } else {
            *p - u * lr
        };
    }
}

multiversion! {
    fn adam_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamStep) {
        // `FMA` is unused: the step must round as burn's separate operations do.
        let _ = FMA;
        let w = matches!(s.update, AdamUpdate::Corrected { .. });
        match (s.first, s.penalty.is_some(), w, s.keep.is_some()) {
            (true, false, false, _) => lanes::<true, false, false, false>(p, g, m, v, s),
            (true, true, false, _) => lanes::<true, true, false, false>(p, g, m, v, s),
            (false, false, false, _) => lanes::<false, false, false, false>(p, g, m, v, s),
            (false, true, false, _) => lanes::<false, true, false, false>(p, g, m, v, s),
            (true, _, true, false) => lanes::<true, false, true, false>(p, g, m, v, s),
            (true, _, true, true) => lanes::<true, false, true, true>(p, g, m, v, s),
            (false, _, true, false) => lanes::<false, false, true, false>(p, g, m, v, s),
            (false, _, true, true) => lanes::<false, false, true, true>(p, g, m, v, s),
        }
    }
}

/// One step of Adam (or AdamW) on parameter `p` with gradient `g` and moments `m`, `v`, all
/// updated in place.
///
/// # Panics
/// If the lengths differ, or an L2 penalty is combined with AdamW's update or a decoupled
/// decay with Adam's (burn has neither).
pub fn adam_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamStep) {
    assert!(
        g.len() == p.len() && m.len() == p.len() && v.len() == p.len(),
        "adam: parameter, gradient and moments differ in length ({}, {}, {}, {})",
        p.len(),
        g.len(),
        m.len(),
        v.len()
    );
    let w = matches!(s.update, AdamUpdate::Corrected { .. });
    assert!(
        if w {
            s.penalty.is_none()
        } else {
            s.keep.is_none()
        },
        "adam: L2 penalty goes with Adam's update, decoupled decay with AdamW's"
    );
    p.par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((p, m), v), g)| adam_chunk(p, g, m, v, s));
}
