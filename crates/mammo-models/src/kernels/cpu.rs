//! Slice kernels behind [`super`]'s fused operations: SiLU forward/backward and batch norm
//! (statistics, normalise + activation, backward) on contiguous NCHW `f32` data.
//!
//! Each loop is written once, branch-free, and compiled twice: for AVX2 + FMA (picked at run
//! time) and for the baseline target. Large inputs are split across rayon's pool, the pool
//! flex itself runs on.

use rayon::prelude::*;

/// Elements per parallel chunk of the elementwise kernels (256 KiB of f32).
const CHUNK: usize = 1 << 16;

/// Pointwise activation fused into the normalisation pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// No activation.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x * sigmoid(x)`.
    Silu,
}

impl Act {
    /// Stable code passed through the backend-extension boundary.
    pub fn code(self) -> u8 {
        match self {
            Act::Identity => 0,
            Act::Relu => 1,
            Act::Relu6 => 2,
            Act::Silu => 3,
        }
    }

    /// Inverse of [`Act::code`].
    pub fn from_code(code: u8) -> Act {
        match code {
            1 => Act::Relu,
            2 => Act::Relu6,
            3 => Act::Silu,
            _ => Act::Identity,
        }
    }
}

/// `a * b + c`, fused where the target has FMA.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `exp(x)` without branches (Cephes `expf`: range reduction by ln 2 in two parts, degree-6
/// polynomial, exponent built from the integer part). Relative error about 2 ulp on
/// [-87.3, 88.3]; inputs outside are clamped, so the result is always finite and non-zero.
#[inline(always)]
fn exp_f32<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.3);
    let n = madd::<FMA>(x, LOG2E, 0.5).floor();
    let r = madd::<FMA>(n, -LN2_LO, madd::<FMA>(n, -LN2_HI, x));
    let mut p = 1.987_569_1e-4_f32;
    p = madd::<FMA>(p, r, 1.398_199_9e-3);
    p = madd::<FMA>(p, r, 8.333_452e-3);
    p = madd::<FMA>(p, r, 4.166_579_6e-2);
    p = madd::<FMA>(p, r, 1.666_666_5e-1);
    p = madd::<FMA>(p, r, 0.5);
    let y = madd::<FMA>(p, r * r, r) + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) << 23) as u32);
    y * scale
}

/// `1 / (1 + exp(-x))`.
#[inline(always)]
fn sigmoid_f32<const FMA: bool>(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32::<FMA>(-x))
}

/// `x * sigmoid(x)`.
#[inline(always)]
fn silu_f32<const FMA: bool>(x: f32) -> f32 {
    x * sigmoid_f32::<FMA>(x)
}

/// Runs `$body` (generic over `const FMA: bool`) compiled for AVX2 + FMA when the CPU has
/// them, and for the baseline target otherwise.
macro_rules! multiversion {
    (fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body<const FMA: bool>($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    body::<true>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports the features `avx2` was compiled for.
                    unsafe { avx2($($arg),*) };
                    return;
                }
            }
            body::<false>($($arg),*)
        }
    };
}

multiversion! {
    fn silu_chunk(x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = silu_f32::<FMA>(x);
        }
    }
}

multiversion! {
    fn silu_grad_chunk(x: &[f32], dy: &[f32], dx: &mut [f32]) {
        for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
            let s = sigmoid_f32::<FMA>(x);
            *dx = dy * s * madd::<FMA>(x, 1.0 - s, 1.0);
        }
    }
}

multiversion! {
    fn sigmoid_chunk(x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = sigmoid_f32::<FMA>(x);
        }
    }
}

/// `y = x * sigmoid(x)`.
pub fn silu(x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "silu: length mismatch");
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| silu_chunk(x, y));
}

/// `dx = dy * d/dx[x * sigmoid(x)] = dy * s * (1 + x (1 - s))`, `s = sigmoid(x)`.
pub fn silu_backward(x: &[f32], dy: &[f32], dx: &mut [f32]) {
    assert!(
        x.len() == dy.len() && x.len() == dx.len(),
        "silu_backward: length mismatch"
    );
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dx, (x, dy))| silu_grad_chunk(x, dy, dx));
}

/// `y = sigmoid(x)`.
pub fn sigmoid(x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "sigmoid: length mismatch");
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| sigmoid_chunk(x, y));
}

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

multiversion! {
    fn affine_act_plane(x: &[f32], y: &mut [f32], a: f32, b: f32, act: Act) {
        match act {
            Act::Identity => {
                for (y, &x) in y.iter_mut().zip(x) {
                    *y = madd::<FMA>(x, a, b);
                }
            }
            Act::Relu => {
                for (y, &x) in y.iter_mut().zip(x) {
                    *y = madd::<FMA>(x, a, b).max(0.0);
                }
            }
            Act::Relu6 => {
                for (y, &x) in y.iter_mut().zip(x) {
                    *y = madd::<FMA>(x, a, b).clamp(0.0, 6.0);
                }
            }
            Act::Silu => {
                for (y, &x) in y.iter_mut().zip(x) {
                    *y = silu_f32::<FMA>(madd::<FMA>(x, a, b));
                }
            }
        }
    }
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
    let scale: Vec<f32> = gamma.iter().zip(&inv_std).map(|(&g, &s)| g * s).collect();
    let shift: Vec<f32> = beta
        .iter()
        .zip(mean)
        .zip(&scale)
        .map(|((&b, &m), &s)| b - m * s)
        .collect();
    (scale, shift, inv_std)
}

multiversion! {
    fn plane_grad_sums(x: &[f32], dy: &[f32], mean: f32, out: &mut [f64; 2]) {
        let mut s = [0.0f32; 8];
        let mut p = [0.0f32; 8];
        let xc = x.chunks_exact(8);
        let dc = dy.chunks_exact(8);
        let (xr, dr) = (xc.remainder(), dc.remainder());
        for (x, d) in xc.zip(dc) {
            for l in 0..8 {
                s[l] += d[l];
                p[l] = madd::<FMA>(d[l], x[l] - mean, p[l]);
            }
        }
        let mut sum: f64 = s.iter().map(|&v| v as f64).sum();
        let mut dot: f64 = p.iter().map(|&v| v as f64).sum();
        for (&x, &d) in xr.iter().zip(dr) {
            sum += d as f64;
            dot += (d as f64) * ((x - mean) as f64);
        }
        out[0] = sum;
        out[1] = dot;
    }
}

multiversion! {
    fn bn_grad_plane(x: &[f32], dy: &[f32], dx: &mut [f32], k: [f32; 4]) {
        // dx = k0 * dy + k1 * (x - mean) + k2, with k = [scale, coef, bias, mean].
        let [k0, k1, k2, mean] = k;
        for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
            *dx = madd::<FMA>(k0, dy, madd::<FMA>(k1, x - mean, k2));
        }
    }
}

/// Gradients of training-mode batch norm, `y = (x - mean) * inv_std * gamma + beta` with the
/// batch's own statistics: returns `(dx, dgamma, dbeta)`.
///
/// `dbeta = sum(dy)`, `dgamma = sum(dy * xhat)`, and
/// `dx = gamma * inv_std * (dy - dbeta / m - xhat * dgamma / m)`, `m = n * hw`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    n: usize,
    c: usize,
    hw: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(
        x.len() == n * c * hw && dy.len() == x.len(),
        "batch_norm_backward: shape mismatch"
    );
    let m = (n * hw) as f64;
    let sums: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut sum, mut dot) = (0.0f64, 0.0f64);
            for b in 0..n {
                let r = (b * c + ch) * hw..(b * c + ch + 1) * hw;
                let mut out = [0.0f64; 2];
                plane_grad_sums(&x[r.clone()], &dy[r], mean[ch], &mut out);
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
                bn_grad_plane(x, dy, dx, coefs[ch]);
            }
        });
    (dx, dgamma, dbeta)
}

// ---------------------------------------------------------------------------------------
// Depthwise convolution (groups == channels, one filter per channel, dilation 1)
// ---------------------------------------------------------------------------------------

/// Geometry of a sliding window (depthwise convolution, max pool) over `[N, C, H, W]`: kernel,
/// stride, padding before (top, left; the padding after only shows in the output size) and
/// output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Window {
    /// The window of a `kernel` sliding over an `[h, w]` plane with `stride` and zero padding
    /// `[top, left, bottom, right]`. `None` when the kernel is larger than the padded plane.
    pub fn new(
        [h, w]: [usize; 2],
        [kh, kw]: [usize; 2],
        [sh, sw]: [usize; 2],
        [pt, pl, pb, pr]: [usize; 4],
    ) -> Option<Window> {
        (h + pt + pb >= kh && w + pl + pr >= kw && sh > 0 && sw > 0).then(|| Window {
            h,
            w,
            kh,
            kw,
            sh,
            sw,
            ph: pt,
            pw: pl,
            oh: (h + pt + pb - kh) / sh + 1,
            ow: (w + pl + pr - kw) / sw + 1,
        })
    }

    /// Output positions `o` in `[0, out)` whose input `o * s + k - p` lies in `[0, size)`.
    fn valid(k: usize, size: usize, out: usize, s: usize, p: usize) -> (usize, usize) {
        // o * s + k >= p  <=>  o >= ceil((p - k) / s)
        let lo = if k >= p { 0 } else { (p - k).div_ceil(s) };
        // o * s + k - p <= size - 1  <=>  o <= (size - 1 + p - k) / s
        let hi = if size + p > k {
            ((size - 1 + p - k) / s + 1).min(out)
        } else {
            0
        };
        (lo, hi.max(lo))
    }

    fn cols(&self, j: usize) -> (usize, usize) {
        Self::valid(j, self.w, self.ow, self.sw, self.pw)
    }

    /// Input row of output row `o` at kernel row `i`, if inside the image.
    fn in_row(&self, o: usize, i: usize) -> Option<usize> {
        let r = o * self.sh + i;
        (r >= self.ph && r - self.ph < self.h).then(|| r - self.ph)
    }
}

impl Window {
    /// Length of one phase of a row: columns `p, p + sw, p + 2 sw, ...` (see [`split_phases`]).
    fn phase_len(&self) -> usize {
        self.w.div_ceil(self.sw)
    }

    /// For kernel column `j`: the phase of the input columns it reads and the offset from the
    /// output column to the index within that phase. Output column `q` reads input column
    /// `q * sw + j - pw = (q + offset) * sw + phase`.
    fn tap(&self, j: usize) -> (usize, isize) {
        let d = j as isize - self.pw as isize;
        let phase = d.rem_euclid(self.sw as isize);
        (phase as usize, (d - phase) / self.sw as isize)
    }

    /// Per kernel column: valid output columns `[lo, hi)`, phase and offset ([`Window::tap`]),
    /// computed once per plane instead of once per row (they cost integer divisions).
    fn column_taps(&self) -> Vec<(usize, usize, usize, isize)> {
        (0..self.kw)
            .map(|j| {
                let (lo, hi) = self.cols(j);
                let (phase, off) = self.tap(j);
                (lo, hi, phase, off)
            })
            .collect()
    }

    /// The phase-split row `r` of `plane` (`[h][sw][phase_len]`), at `phase`.
    fn phase_row<'a>(&self, plane: &'a [f32], r: usize, phase: usize) -> &'a [f32] {
        let pl = self.phase_len();
        &plane[(r * self.sw + phase) * pl..(r * self.sw + phase + 1) * pl]
    }
}

/// A plane `[h, w]` with each row split into its `sw` column phases, `[h][sw][ceil(w / sw)]`,
/// so a strided convolution reads every tap contiguously (and vectorises). Stride 1: the plane
/// itself.
fn split_phases<'a>(x: &'a [f32], g: &Window, buf: &'a mut Vec<f32>) -> &'a [f32] {
    if g.sw == 1 {
        return x;
    }
    let pl = g.phase_len();
    buf.clear();
    buf.resize(g.h * g.sw * pl, 0.0);
    for r in 0..g.h {
        for (c, &v) in x[r * g.w..(r + 1) * g.w].iter().enumerate() {
            buf[(r * g.sw + c % g.sw) * pl + c / g.sw] = v;
        }
    }
    buf
}

/// Inverse of [`split_phases`]: add the phase-split plane `xp` into `x`.
fn merge_phases(xp: &[f32], g: &Window, x: &mut [f32]) {
    let pl = g.phase_len();
    for r in 0..g.h {
        for (c, v) in x[r * g.w..(r + 1) * g.w].iter_mut().enumerate() {
            *v += xp[(r * g.sw + c % g.sw) * pl + c / g.sw];
        }
    }
}

multiversion! {
    fn conv_plane_acc(xp: &[f32], wt: &[f32], y: &mut [f32], g: Window) {
        let taps = g.column_taps();
        // y += conv(x, wt) for one input and one output plane; `xp` phase-split.
        for o in 0..g.oh {
            let yrow = &mut y[o * g.ow..(o + 1) * g.ow];
            for i in 0..g.kh {
                let Some(r) = g.in_row(o, i) else { continue };
                for (j, &(lo, hi, phase, off)) in taps.iter().enumerate() {
                    if lo >= hi {
                        continue;
                    }
                    let src = g.phase_row(xp, r, phase);
                    let start = (lo as isize + off) as usize;
                    let wv = wt[i * g.kw + j];
                    for (y, &x) in yrow[lo..hi].iter_mut().zip(&src[start..start + hi - lo]) {
                        *y = madd::<FMA>(wv, x, *y);
                    }
                }
            }
        }
    }
}

multiversion! {
    fn conv_input_grad_acc(dy: &[f32], wt: &[f32], dxp: &mut [f32], g: Window) {
        let taps = g.column_taps();
        // dxp += the input gradient of conv(., wt) for one plane pair; `dxp` phase-split.
        let pl = g.phase_len();
        for o in 0..g.oh {
            let dyrow = &dy[o * g.ow..(o + 1) * g.ow];
            for i in 0..g.kh {
                let Some(r) = g.in_row(o, i) else { continue };
                for (j, &(lo, hi, phase, off)) in taps.iter().enumerate() {
                    if lo >= hi {
                        continue;
                    }
                    let base = (r * g.sw + phase) * pl;
                    let start = base + (lo as isize + off) as usize;
                    let wv = wt[i * g.kw + j];
                    for (dx, &dy) in dxp[start..start + hi - lo].iter_mut().zip(&dyrow[lo..hi]) {
                        *dx = madd::<FMA>(wv, dy, *dx);
                    }
                }
            }
        }
    }
}

multiversion! {
    fn conv_weight_grad_acc(xp: &[f32], dy: &[f32], dw: &mut [f64], g: Window) {
        let taps = g.column_taps();
        // dw[i, j] += sum over output positions of dy * x at the tap; `xp` phase-split.
        for o in 0..g.oh {
            let dyrow = &dy[o * g.ow..(o + 1) * g.ow];
            for i in 0..g.kh {
                let Some(r) = g.in_row(o, i) else { continue };
                for (j, &(lo, hi, phase, off)) in taps.iter().enumerate() {
                    if lo >= hi {
                        continue;
                    }
                    let src = g.phase_row(xp, r, phase);
                    let start = (lo as isize + off) as usize;
                    let (xs, ds) = (&src[start..start + hi - lo], &dyrow[lo..hi]);
                    let mut acc = [0.0f32; 8];
                    let (xc, dc) = (xs.chunks_exact(8), ds.chunks_exact(8));
                    let (xr, dr) = (xc.remainder(), dc.remainder());
                    for (xv, dv) in xc.zip(dc) {
                        for l in 0..8 {
                            acc[l] = madd::<FMA>(xv[l], dv[l], acc[l]);
                        }
                    }
                    for (&xv, &dv) in xr.iter().zip(dr) {
                        acc[0] = madd::<FMA>(xv, dv, acc[0]);
                    }
                    dw[i * g.kw + j] += acc.iter().map(|&v| v as f64).sum::<f64>();
                }
            }
        }
    }
}

/// Depthwise convolution forward: `x` `[n, c, h, w]`, `wt` `[c, kh, kw]`, returns
/// `[n, c, oh, ow]`.
pub fn depthwise_forward(x: &[f32], wt: &[f32], n: usize, c: usize, g: Window) -> Vec<f32> {
    let (plane_in, plane_out, k) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    assert!(
        x.len() == n * c * plane_in && wt.len() == c * k,
        "depthwise_forward: shape mismatch"
    );
    let mut y = vec![0.0f32; n * c * plane_out];
    if plane_out == 0 {
        return y;
    }
    y.par_chunks_mut(plane_out)
        .enumerate()
        .for_each_init(Vec::new, |buf, (p, y)| {
            let ch = p % c;
            let xp = split_phases(&x[p * plane_in..(p + 1) * plane_in], &g, buf);
            conv_plane_acc(xp, &wt[ch * k..(ch + 1) * k], y, g);
        });
    y
}

/// Gradient of [`depthwise_forward`] with respect to its input.
pub fn depthwise_input_grad(dy: &[f32], wt: &[f32], n: usize, c: usize, g: Window) -> Vec<f32> {
    let (plane_in, plane_out, k) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    assert!(
        dy.len() == n * c * plane_out && wt.len() == c * k,
        "depthwise_input_grad: shape mismatch"
    );
    let mut dx = vec![0.0f32; n * c * plane_in];
    if plane_in == 0 {
        return dx;
    }
    let pl = g.phase_len();
    dx.par_chunks_mut(plane_in).enumerate().for_each_init(
        Vec::new,
        |buf: &mut Vec<f32>, (p, dx)| {
            let (dy, w) = (
                &dy[p * plane_out..(p + 1) * plane_out],
                &wt[(p % c) * k..(p % c + 1) * k],
            );
            if g.sw == 1 {
                conv_input_grad_acc(dy, w, dx, g);
            } else {
                buf.clear();
                buf.resize(g.h * g.sw * pl, 0.0);
                conv_input_grad_acc(dy, w, buf, g);
                merge_phases(buf, &g, dx);
            }
        },
    );
    dx
}

/// Gradient of [`depthwise_forward`] with respect to its weight, `[c, kh, kw]`.
pub fn depthwise_weight_grad(x: &[f32], dy: &[f32], n: usize, c: usize, g: Window) -> Vec<f32> {
    let (plane_in, plane_out, k) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    assert!(
        x.len() == n * c * plane_in && dy.len() == n * c * plane_out,
        "depthwise_weight_grad: shape mismatch"
    );
    let per_channel: Vec<Vec<f32>> = (0..c)
        .into_par_iter()
        .map_init(Vec::new, |buf, ch| {
            let mut acc = vec![0.0f64; k];
            for b in 0..n {
                let p = b * c + ch;
                let xp = split_phases(&x[p * plane_in..(p + 1) * plane_in], &g, buf);
                conv_weight_grad_acc(xp, &dy[p * plane_out..(p + 1) * plane_out], &mut acc, g);
            }
            acc.into_iter().map(|v| v as f32).collect()
        })
        .collect();
    per_channel.concat()
}

// ---------------------------------------------------------------------------------------
// Max pooling (dilation 1, padding never selected, first maximum of a window wins)
// ---------------------------------------------------------------------------------------

/// One plane: the maximum of each window and, if `arg` is given, its flat index in the plane.
fn max_pool_plane(x: &[f32], y: &mut [f32], mut arg: Option<&mut [u32]>, g: Window) {
    y.fill(f32::NEG_INFINITY);
    for o in 0..g.oh {
        let yrow = &mut y[o * g.ow..(o + 1) * g.ow];
        for i in 0..g.kh {
            let Some(r) = g.in_row(o, i) else { continue };
            let xrow = &x[r * g.w..(r + 1) * g.w];
            for j in 0..g.kw {
                let (lo, hi) = g.cols(j);
                match arg.as_deref_mut() {
                    None => {
                        for (q, y) in yrow[lo..hi].iter_mut().enumerate() {
                            let v = xrow[(lo + q) * g.sw + j - g.pw];
                            *y = if v > *y || v.is_nan() { v } else { *y };
                        }
                    }
                    Some(arg) => {
                        let arow = &mut arg[o * g.ow..(o + 1) * g.ow];
                        for q in lo..hi {
                            let c = q * g.sw + j - g.pw;
                            // Strict: the first maximum in window order stays (PyTorch, burn);
                            // NaN is taken and then kept.
                            let v = xrow[c];
                            if v > yrow[q] || (v.is_nan() && !yrow[q].is_nan()) {
                                yrow[q] = v;
                                arow[q] = (r * g.w + c) as u32;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Max pool forward over `[n, c, h, w]`; with `with_indices`, also the flat in-plane index of
/// each maximum (for the backward).
pub fn max_pool_forward(
    x: &[f32],
    planes: usize,
    g: Window,
    with_indices: bool,
) -> (Vec<f32>, Vec<u32>) {
    let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
    assert_eq!(
        x.len(),
        planes * plane_in,
        "max_pool_forward: shape mismatch"
    );
    assert!(
        plane_in <= u32::MAX as usize,
        "max_pool_forward: plane too large"
    );
    let mut y = vec![0.0f32; planes * plane_out];
    let mut idx = if with_indices {
        vec![0u32; planes * plane_out]
    } else {
        Vec::new()
    };
    if plane_out == 0 {
        return (y, idx);
    }
    if with_indices {
        y.par_chunks_mut(plane_out)
            .zip(idx.par_chunks_mut(plane_out))
            .enumerate()
            .for_each(|(p, (y, a))| {
                max_pool_plane(&x[p * plane_in..(p + 1) * plane_in], y, Some(a), g)
            });
    } else {
        y.par_chunks_mut(plane_out)
            .enumerate()
            .for_each(|(p, y)| max_pool_plane(&x[p * plane_in..(p + 1) * plane_in], y, None, g));
    }
    (y, idx)
}

/// Max pool backward: each output gradient goes to its window's maximum.
pub fn max_pool_backward(dy: &[f32], idx: &[u32], planes: usize, g: Window) -> Vec<f32> {
    let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
    assert!(
        dy.len() == planes * plane_out && idx.len() == dy.len(),
        "max_pool_backward: shape mismatch"
    );
    let mut dx = vec![0.0f32; planes * plane_in];
    if plane_in == 0 || plane_out == 0 {
        return dx;
    }
    dx.par_chunks_mut(plane_in).enumerate().for_each(|(p, dx)| {
        let r = p * plane_out..(p + 1) * plane_out;
        for (&d, &i) in dy[r.clone()].iter().zip(&idx[r]) {
            dx[i as usize] += d;
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigmoid_ref(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    fn inputs(len: usize, scale: f32) -> Vec<f32> {
        // Deterministic spread over [-scale, scale], with the edges and zero included.
        (0..len)
            .map(|i| {
                let t = ((i as u64 * 2_654_435_761) % 10_007) as f32 / 10_006.0;
                (2.0 * t - 1.0) * scale
            })
            .collect()
    }

    #[test]
    fn exp_matches_std_in_relative_error() {
        for &x in &[
            -87.0f32, -20.0, -1.0, -1e-3, 0.0, 1e-3, 0.5, 1.0, 10.0, 50.0, 88.0,
        ] {
            for fma in [false, true] {
                let got = if fma {
                    exp_f32::<true>(x)
                } else {
                    exp_f32::<false>(x)
                } as f64;
                let want = (x as f64).exp();
                assert!(
                    ((got - want) / want).abs() < 5e-7,
                    "exp({x}) = {got}, want {want}"
                );
            }
        }
        // Clamped, never inf or 0.
        assert!(exp_f32::<false>(1000.0).is_finite());
        assert!(exp_f32::<false>(-1000.0) > 0.0);
    }

    #[test]
    fn silu_and_sigmoid_match_f64_reference() {
        let x = inputs(100_003, 30.0); // spans chunks, remainder lanes
        let mut y = vec![0.0; x.len()];
        silu(&x, &mut y);
        let mut s = vec![0.0; x.len()];
        sigmoid(&x, &mut s);
        for i in 0..x.len() {
            let r = sigmoid_ref(x[i] as f64);
            assert!(
                (s[i] as f64 - r).abs() < 1e-6,
                "sigmoid({}) = {}, want {r}",
                x[i],
                s[i]
            );
            let want = x[i] as f64 * r;
            assert!(
                (y[i] as f64 - want).abs() <= 1e-6 * want.abs().max(1.0),
                "silu({})",
                x[i]
            );
        }
        assert_eq!(s[0], sigmoid_f32::<false>(x[0]));
    }

    #[test]
    fn silu_backward_matches_finite_difference_of_the_reference() {
        let x = inputs(4099, 8.0);
        let dy: Vec<f32> = inputs(4099, 1.0).into_iter().rev().collect();
        let mut dx = vec![0.0; x.len()];
        silu_backward(&x, &dy, &mut dx);
        for i in 0..x.len() {
            let f = |v: f64| v * sigmoid_ref(v);
            let h = 1e-5;
            let d = (f(x[i] as f64 + h) - f(x[i] as f64 - h)) / (2.0 * h);
            let want = dy[i] as f64 * d;
            assert!(
                (dx[i] as f64 - want).abs() < 1e-5,
                "silu'({}) * {}: {} vs {want}",
                x[i],
                dy[i],
                dx[i]
            );
        }
    }

    #[test]
    fn channel_stats_are_exact_with_a_large_mean() {
        let (n, c, hw) = (3, 5, 37);
        let mut x = inputs(n * c * hw, 1.0);
        for (i, v) in x.iter_mut().enumerate() {
            *v += 1000.0 * ((i / hw) % c) as f32; // channel means 0, 1000, 2000, ...
        }
        let (mean, var) = channel_stats(&x, n, c, hw);
        for ch in 0..c {
            let vals: Vec<f64> = (0..n)
                .flat_map(|b| {
                    x[(b * c + ch) * hw..(b * c + ch + 1) * hw]
                        .iter()
                        .map(|&v| v as f64)
                })
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let v = vals.iter().map(|&x| (x - m) * (x - m)).sum::<f64>() / vals.len() as f64;
            assert!(
                (mean[ch] as f64 - m).abs() < 1e-4 * m.abs().max(1.0),
                "mean {ch}"
            );
            assert!(
                (var[ch] as f64 - v).abs() < 1e-4 * v,
                "var {ch}: {} vs {v}",
                var[ch]
            );
        }
    }

    #[test]
    fn affine_act_applies_the_channel_of_each_plane() {
        let (n, c, hw) = (2, 3, 5);
        let x = inputs(n * c * hw, 3.0);
        let scale = [1.0, -2.0, 0.5];
        let shift = [0.0, 1.0, -1.0];
        for act in [Act::Identity, Act::Relu, Act::Relu6, Act::Silu] {
            let mut y = vec![0.0; x.len()];
            affine_act(&x, &mut y, &scale, &shift, hw, act);
            for (i, &v) in y.iter().enumerate() {
                let ch = (i / hw) % c;
                let z = x[i] as f64 * scale[ch] as f64 + shift[ch] as f64;
                let want = match act {
                    Act::Identity => z,
                    Act::Relu => z.max(0.0),
                    Act::Relu6 => z.clamp(0.0, 6.0),
                    Act::Silu => z * sigmoid_ref(z),
                };
                assert!(
                    (v as f64 - want).abs() < 1e-5,
                    "{act:?} at {i}: {v} vs {want}"
                );
            }
        }
    }

    #[test]
    fn batch_norm_backward_matches_finite_differences() {
        let (n, c, hw) = (2, 3, 6);
        let x: Vec<f32> = inputs(n * c * hw, 2.0);
        let dy: Vec<f32> = inputs(n * c * hw, 1.0).into_iter().rev().collect();
        let gamma = [1.5f32, -0.7, 0.3];
        let beta = [0.1f32, 0.2, -0.3];
        let eps = 1e-5;
        // loss = sum(dy * bn(x)), in f64.
        let loss = |x: &[f64], g: &[f64], b: &[f64]| -> f64 {
            let mut total = 0.0;
            for ch in 0..c {
                let idx: Vec<usize> = (0..n)
                    .flat_map(|bi| (0..hw).map(move |k| (bi * c + ch) * hw + k))
                    .collect();
                let m = idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64;
                let v = idx.iter().map(|&i| (x[i] - m).powi(2)).sum::<f64>() / idx.len() as f64;
                for &i in &idx {
                    total += dy[i] as f64 * ((x[i] - m) / (v + eps).sqrt() * g[ch] + b[ch]);
                }
            }
            total
        };
        let (mean, var) = channel_stats(&x, n, c, hw);
        let (_, _, inv_std) = fold_stats(&gamma, &beta, &mean, &var, eps);
        let (dx, dg, db) = batch_norm_backward(&x, &dy, &gamma, &mean, &inv_std, n, c, hw);
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let g64: Vec<f64> = gamma.iter().map(|&v| v as f64).collect();
        let b64: Vec<f64> = beta.iter().map(|&v| v as f64).collect();
        let h = 1e-6;
        for i in 0..x.len() {
            let (mut up, mut dn) = (x64.clone(), x64.clone());
            up[i] += h;
            dn[i] -= h;
            let want = (loss(&up, &g64, &b64) - loss(&dn, &g64, &b64)) / (2.0 * h);
            assert!(
                (dx[i] as f64 - want).abs() < 1e-4,
                "dx[{i}] {} vs {want}",
                dx[i]
            );
        }
        for ch in 0..c {
            let (mut up, mut dn) = (g64.clone(), g64.clone());
            up[ch] += h;
            dn[ch] -= h;
            let want = (loss(&x64, &up, &b64) - loss(&x64, &dn, &b64)) / (2.0 * h);
            assert!(
                (dg[ch] as f64 - want).abs() < 1e-4,
                "dgamma[{ch}] {} vs {want}",
                dg[ch]
            );
            let (mut up, mut dn) = (b64.clone(), b64.clone());
            up[ch] += h;
            dn[ch] -= h;
            let want = (loss(&x64, &g64, &up) - loss(&x64, &g64, &dn)) / (2.0 * h);
            assert!(
                (db[ch] as f64 - want).abs() < 1e-4,
                "dbeta[{ch}] {} vs {want}",
                db[ch]
            );
        }
    }

    /// Direct 7-loop depthwise convolution in f64, and its two gradients by definition.
    fn dw_reference(
        x: &[f32],
        wt: &[f32],
        dy: &[f32],
        n: usize,
        c: usize,
        g: Window,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut y = vec![0.0; n * c * g.oh * g.ow];
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; wt.len()];
        for b in 0..n {
            for ch in 0..c {
                let p = b * c + ch;
                for o in 0..g.oh {
                    for q in 0..g.ow {
                        for i in 0..g.kh {
                            for j in 0..g.kw {
                                let (r, s) = (
                                    (o * g.sh + i) as isize - g.ph as isize,
                                    (q * g.sw + j) as isize - g.pw as isize,
                                );
                                if r < 0 || s < 0 || r >= g.h as isize || s >= g.w as isize {
                                    continue;
                                }
                                let xi = p * g.h * g.w + r as usize * g.w + s as usize;
                                let yi = p * g.oh * g.ow + o * g.ow + q;
                                let wi = ch * g.kh * g.kw + i * g.kw + j;
                                y[yi] += x[xi] as f64 * wt[wi] as f64;
                                dx[xi] += dy[yi] as f64 * wt[wi] as f64;
                                dw[wi] += dy[yi] as f64 * x[xi] as f64;
                            }
                        }
                    }
                }
            }
        }
        (y, dx, dw)
    }

    #[test]
    fn depthwise_matches_the_direct_definition() {
        // 3x3/1, 5x5/2, asymmetric (TF SAME-like) padding, odd sizes, a kernel wider than the
        // padded border, and widths over and under one AVX register.
        let cases = [
            (9, 13, 3, 1, 1, 1, 1, 1),
            (12, 11, 5, 2, 1, 2, 2, 2),
            (7, 20, 3, 2, 0, 0, 1, 1),
            (16, 17, 5, 1, 2, 2, 2, 2),
            (4, 3, 5, 1, 2, 2, 2, 2),
        ];
        for (h, w, k, s, pt, pl, pb, pr) in cases {
            let (n, c) = (2, 3);
            let oh = (h + pt + pb - k) / s + 1;
            let ow = (w + pl + pr - k) / s + 1;
            let g = Window {
                h,
                w,
                kh: k,
                kw: k,
                sh: s,
                sw: s,
                ph: pt,
                pw: pl,
                oh,
                ow,
            };
            let x = inputs(n * c * h * w, 2.0);
            let wt = inputs(c * k * k, 1.0).into_iter().rev().collect::<Vec<_>>();
            let dy = inputs(n * c * oh * ow, 1.5);
            let (y_ref, dx_ref, dw_ref) = dw_reference(&x, &wt, &dy, n, c, g);
            let y = depthwise_forward(&x, &wt, n, c, g);
            let dx = depthwise_input_grad(&dy, &wt, n, c, g);
            let dw = depthwise_weight_grad(&x, &dy, n, c, g);
            let close = |a: &[f32], b: &[f64], what: &str| {
                assert_eq!(a.len(), b.len(), "{what} {g:?}");
                for (i, (&a, &b)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (a as f64 - b).abs() < 1e-4 * b.abs().max(1.0),
                        "{what}[{i}] {a} vs {b} {g:?}"
                    );
                }
            };
            close(&y, &y_ref, "y");
            close(&dx, &dx_ref, "dx");
            close(&dw, &dw_ref, "dw");
        }
    }

    #[test]
    fn max_pool_matches_the_direct_definition_and_routes_gradients_to_the_first_maximum() {
        for (h, w, k, s, p) in [
            (9, 13, 3, 2, 1),
            (8, 8, 2, 2, 0),
            (7, 10, 3, 1, 1),
            (5, 4, 3, 2, 1),
        ] {
            let planes = 3;
            let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
            let g = Window {
                h,
                w,
                kh: k,
                kw: k,
                sh: s,
                sw: s,
                ph: p,
                pw: p,
                oh,
                ow,
            };
            // Coarse values, so windows hold ties.
            let x: Vec<f32> = inputs(planes * h * w, 2.0)
                .iter()
                .map(|v| v.round())
                .collect();
            let (y, idx) = max_pool_forward(&x, planes, g, true);
            let (y2, none) = max_pool_forward(&x, planes, g, false);
            assert_eq!(y, y2);
            assert!(none.is_empty());
            for pl in 0..planes {
                for o in 0..oh {
                    for q in 0..ow {
                        let (mut best, mut at) = (f32::NEG_INFINITY, usize::MAX);
                        for i in 0..k {
                            for j in 0..k {
                                let (r, c) = (
                                    (o * s + i) as isize - p as isize,
                                    (q * s + j) as isize - p as isize,
                                );
                                if r < 0 || c < 0 || r >= h as isize || c >= w as isize {
                                    continue;
                                }
                                let v = x[pl * h * w + r as usize * w + c as usize];
                                if v > best {
                                    best = v;
                                    at = r as usize * w + c as usize;
                                }
                            }
                        }
                        let out = pl * oh * ow + o * ow + q;
                        assert_eq!(y[out], best, "{g:?} plane {pl} ({o}, {q})");
                        assert_eq!(idx[out] as usize, at, "{g:?} plane {pl} ({o}, {q}) argmax");
                    }
                }
            }
            let dy = inputs(planes * oh * ow, 1.0);
            let dx = max_pool_backward(&dy, &idx, planes, g);
            let mut want = vec![0.0f32; planes * h * w];
            for (out, &d) in dy.iter().enumerate() {
                want[(out / (oh * ow)) * h * w + idx[out] as usize] += d;
            }
            assert_eq!(dx, want);
        }
    }
}
