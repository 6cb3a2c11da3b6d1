//! Batch norm on NCHW `f32` data: per-channel statistics, normalise + activation, backward.

use rayon::prelude::*;

use super::*;

multiversion! {
    fn plane_sums(x: &[f32], shift: f32, out: &mut [f64; 2]) {
        // Eight independent lanes (one AVX register) of shifted sums and sums of squares.
        let mut s = [0.0f32; 8];
        let mut q = [0.0f32; 8];
        let chunks = x.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..8 {
                let d = c[l] - shift;
                s[l] += d;
                q[l] = madd::<FMA>(d, d, q[l]);
            }
        }
        let mut sum: f64 = s.iter().map(|&v| v as f64).sum();
        let mut sq: f64 = q.iter().map(|&v| v as f64).sum();
        for &v in rest {
            let d = (v - shift) as f64;
            sum += d;
            sq += d * d;
        }
        out[0] = sum;
        out[1] = sq;
    }
}

/// Per-channel mean and biased variance of an NCHW tensor, `x.len() == n * c * hw`. One pass
/// over the data: sums of `x - x[channel's first element]` (the shift keeps the variance exact
/// when the mean is large against the spread), per `hw` plane in f32 lanes, then in f64.
pub fn channel_stats(x: &[f32], n: usize, c: usize, hw: usize) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), n * c * hw, "channel_stats: length mismatch");
    let count = (n * hw) as f64;
    let stats: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let shift = x[ch * hw];
            let (mut sum, mut sq) = (0.0f64, 0.0f64);
            for b in 0..n {
                let plane = &x[(b * c + ch) * hw..(b * c + ch + 1) * hw];
                let mut out = [0.0f64; 2];
                plane_sums(plane, shift, &mut out);
                sum += out[0];
                sq += out[1];
            }
            let mean_shifted = sum / count;
            let var = (sq / count - mean_shifted * mean_shifted).max(0.0);
            ((shift as f64 + mean_shifted) as f32, var as f32)
        })
        .collect();
    stats.into_iter().unzip()
}

/// `act(z)`.
#[inline(always)]
fn act_f32<const FMA: bool>(z: f32, act: Act) -> f32 {
    match act {
        Act::Identity => z,
        Act::Relu => z.max(0.0),
        Act::Relu6 => z.clamp(0.0, 6.0),
        Act::Silu => silu_f32::<FMA>(z),
    }
}

/// Evaluates `$body` with the constant `$a` equal to `$act`: the activation is matched once,
/// outside the loops `$body` runs, and each loop is compiled for one activation (with the
/// match inside a loop, LLVM vectorised it 2 to 4 lanes wide, not 16).
macro_rules! with_act {
    ($act:expr, |$a:ident| $body:expr) => {
        match $act {
            Act::Identity => {
                const $a: Act = Act::Identity;
                $body
            }
            Act::Relu => {
                const $a: Act = Act::Relu;
                $body
            }
            Act::Relu6 => {
                const $a: Act = Act::Relu6;
                $body
            }
            Act::Silu => {
                const $a: Act = Act::Silu;
                $body
            }
        }
    };
}

multiversion! {
    fn affine_act_plane(x: &[f32], y: &mut [f32], a: f32, b: f32, act: Act) {
        with_act!(act, |A| {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = act_f32::<FMA>(madd::<FMA>(x, a, b), A);
            }
        })
    }
}

multiversion! {
    fn affine_act_plane_in_place(y: &mut [f32], a: f32, b: f32, act: Act) {
        with_act!(act, |A| {
            for y in y.iter_mut() {
                *y = act_f32::<FMA>(madd::<FMA>(*y, a, b), A);
            }
        })
    }
}

/// [`affine_act`] in place: `y = act(y * scale[ch] + shift[ch])`, for an input nobody else
/// holds (no output to allocate and zero).
pub fn affine_act_in_place(y: &mut [f32], scale: &[f32], shift: &[f32], hw: usize, act: Act) {
    let c = scale.len();
    assert!(
        shift.len() == c && hw > 0 && y.len().is_multiple_of(c * hw),
        "affine_act_in_place: shape mismatch"
    );
    let planes_per_task = (CHUNK / hw).max(1);
    y.par_chunks_mut(planes_per_task * hw)
        .enumerate()
        .for_each(|(task, y)| {
            for (i, y) in y.chunks_mut(hw).enumerate() {
                let ch = (task * planes_per_task + i) % c;
                affine_act_plane_in_place(y, scale[ch], shift[ch], act);
            }
        });
}

/// `y = act(x * scale[ch] + shift[ch])` over an NCHW tensor: batch norm with folded
/// statistics and its activation, in one pass.
pub fn affine_act(x: &[f32], y: &mut [f32], scale: &[f32], shift: &[f32], hw: usize, act: Act) {
    let c = scale.len();
    assert!(
        x.len() == y.len() && shift.len() == c && hw > 0 && x.len().is_multiple_of(c * hw),
        "affine_act: shape mismatch"
    );
    // Several planes per task when planes are small (late, low-resolution layers).
    let planes_per_task = (CHUNK / hw).max(1);
    y.par_chunks_mut(planes_per_task * hw)
        .zip(x.par_chunks(planes_per_task * hw))
        .enumerate()
        .for_each(|(task, (y, x))| {
            for (i, (y, x)) in y.chunks_mut(hw).zip(x.chunks(hw)).enumerate() {
                let ch = (task * planes_per_task + i) % c;
                affine_act_plane(x, y, scale[ch], shift[ch], act);
            }
        });
}

/// Scale and shift that fold batch-norm statistics: `scale = gamma / sqrt(var + eps)`,
/// `shift = beta - mean * scale`. Also returns `1 / sqrt(var + eps)`.
pub fn fold_stats(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let inv_std: Vec<f32> = var
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect();
    let (scale, shift) = fold(gamma, beta, mean, &inv_std);
    (scale, shift, inv_std)
}

/// `scale = gamma * inv_std`, `shift = beta - mean * scale`: the per-channel affine map batch
/// norm applies. One definition, so the backward's recomputed pre-activation is bit for bit
/// the forward's (ReLU's mask depends on it).
fn fold(gamma: &[f32], beta: &[f32], mean: &[f32], inv_std: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma.iter().zip(inv_std).map(|(&g, &s)| g * s).collect();
    let shift: Vec<f32> = beta
        .iter()
        .zip(mean)
        .zip(&scale)
        .map(|((&b, &m), &s)| b - m * s)
        .collect();
    (scale, shift)
}

/// `dy * act'(z)`: the gradient at the batch norm's output `z` from the one at `act(z)`.
/// ReLU (and ReLU6) pass it where `0 < z (< 6)`, as PyTorch does.
#[inline(always)]
fn act_grad<const FMA: bool>(z: f32, dy: f32, act: Act) -> f32 {
    match act {
        Act::Identity => dy,
        Act::Relu => {
            if z > 0.0 {
                dy
            } else {
                0.0
            }
        }
        Act::Relu6 => {
            if z > 0.0 && z < 6.0 {
                dy
            } else {
                0.0
            }
        }
        Act::Silu => {
            let sg = sigmoid_f32::<FMA>(z);
            dy * sg * madd::<FMA>(z, 1.0 - sg, 1.0)
        }
    }
}

multiversion! {
    fn plane_grad_sums(
        x: &[f32],
        dy: &[f32],
        mean: f32,
        ab: [f32; 2],
        act: Act,
        out: &mut [f64; 2],
    ) {
        // `[sum(g), sum(g * (x - mean))]` over one plane, `g = dy * act'(z)` with
        // `z = x * a + b` recomputed from the input (`g = dy` for the identity, whose `z` is
        // then never computed).
        #[inline(always)]
        fn sums<const FMA: bool>(
            x: &[f32],
            dy: &[f32],
            mean: f32,
            [a, b]: [f32; 2],
            grad: impl Fn(f32, f32) -> f32,
        ) -> [f64; 2] {
            let mut s = [0.0f32; 16];
            let mut p = [0.0f32; 16];
            let xc = x.chunks_exact(16);
            let dc = dy.chunks_exact(16);
            let (xr, dr) = (xc.remainder(), dc.remainder());
            for (x, d) in xc.zip(dc) {
                for l in 0..16 {
                    let g = grad(madd::<FMA>(x[l], a, b), d[l]);
                    s[l] += g;
                    p[l] = madd::<FMA>(g, x[l] - mean, p[l]);
                }
            }
            let mut sum: f64 = s.iter().map(|&v| v as f64).sum();
            let mut dot: f64 = p.iter().map(|&v| v as f64).sum();
            for (&x, &d) in xr.iter().zip(dr) {
                let g = grad(madd::<FMA>(x, a, b), d);
                sum += g as f64;
                dot += (g as f64) * ((x - mean) as f64);
            }
            [sum, dot]
        }
        *out = with_act!(act, |A| sums::<FMA>(x, dy, mean, ab, |z, d| act_grad::<FMA>(z, d, A)));
    }
}

multiversion! {
    fn bn_grad_plane(x: &[f32], dy: &[f32], dx: &mut [f32], k: [f32; 4], ab: [f32; 2], act: Act) {
        // dx = k0 * g + k1 * (x - mean) + k2, with k = [scale, coef, bias, mean] and
        // g = dy * act'(x * a + b).
        #[inline(always)]
        fn plane<const FMA: bool>(
            x: &[f32],
            dy: &[f32],
            dx: &mut [f32],
            [k0, k1, k2, mean]: [f32; 4],
            [a, b]: [f32; 2],
            grad: impl Fn(f32, f32) -> f32,
        ) {
            for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                let g = grad(madd::<FMA>(x, a, b), dy);
                *dx = madd::<FMA>(k0, g, madd::<FMA>(k1, x - mean, k2));
            }
        }
        with_act!(act, |A| plane::<FMA>(x, dy, dx, k, ab, |z, d| act_grad::<FMA>(z, d, A)))
    }
}

/// Gradients of training-mode batch norm followed by `act`,
/// `y = act((x - mean) * inv_std * gamma + beta)` with the batch's own statistics: returns
/// `(dx, dgamma, dbeta)`.
///
/// With `g = dy * act'(z)` (recomputed from `x`, never stored): `dbeta = sum(g)`,
/// `dgamma = sum(g * xhat)`, and `dx = gamma * inv_std * (g - dbeta / m - xhat * dgamma / m)`,
/// `m = n * hw`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    n: usize,
    c: usize,
    hw: usize,
    act: Act,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(
        x.len() == n * c * hw && dy.len() == x.len(),
        "batch_norm_backward: shape mismatch"
    );
    let m = (n * hw) as f64;
    // z = x * a + b, the batch norm's output before the activation, as the forward made it.
    let (scale, shift) = fold(gamma, beta, mean, inv_std);
    let ab: Vec<[f32; 2]> = scale.into_iter().zip(shift).map(|(a, b)| [a, b]).collect();
    let sums: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut sum, mut dot) = (0.0f64, 0.0f64);
            for b in 0..n {
                let r = (b * c + ch) * hw..(b * c + ch + 1) * hw;
                let mut out = [0.0f64; 2];
                plane_grad_sums(&x[r.clone()], &dy[r], mean[ch], ab[ch], act, &mut out);
                sum += out[0];
                dot += out[1];
            }
            (sum, dot)
        })
        .collect();
    let dbeta: Vec<f32> = sums.iter().map(|&(s, _)| s as f32).collect();
    let dgamma: Vec<f32> = sums
        .iter()
        .zip(inv_std)
        .map(|(&(_, d), &is)| (d * is as f64) as f32)
        .collect();
    // dx = g*is*dy - g*is^3*dot/m * (x - mean) - g*is*sum/m
    let coefs: Vec<[f32; 4]> = (0..c)
        .map(|ch| {
            let (sum, dot) = sums[ch];
            let gi = gamma[ch] as f64 * inv_std[ch] as f64;
            let is = inv_std[ch] as f64;
            [
                gi as f32,
                (-gi * is * is * dot / m) as f32,
                (-gi * sum / m) as f32,
                mean[ch],
            ]
        })
        .collect();
    let mut dx = vec![0.0f32; x.len()];
    let planes_per_task = (CHUNK / hw).max(1);
    dx.par_chunks_mut(planes_per_task * hw)
        .zip(
            x.par_chunks(planes_per_task * hw)
                .zip(dy.par_chunks(planes_per_task * hw)),
        )
        .enumerate()
        .for_each(|(task, (dx, (x, dy)))| {
            for (i, ((dx, x), dy)) in dx
                .chunks_mut(hw)
                .zip(x.chunks(hw))
                .zip(dy.chunks(hw))
                .enumerate()
            {
                let ch = (task * planes_per_task + i) % c;
                bn_grad_plane(x, dy, dx, coefs[ch], ab[ch], act);
            }
        });
    (dx, dgamma, dbeta)
}
