//! Dense convolution (groups 1, dilation 1) as im2col + GEMM over groups of images: the forward
//! pass and both gradients.
//!
//! burn's default weight gradient is a convolution of the input (batch and channels swapped)
//! with the output gradient as its kernel: per input channel a GEMM with as many columns as
//! the filter has taps (9 for 3x3), which keeps the vector units mostly idle. Here it is the
//! textbook product, `dW[co, c*kh*kw] = dY[co, n*p] x col[c*kh*kw, n*p]^T`, with the
//! reduction running over the pixels of several images at once; the input gradient is
//! `col2im(W^T x dY)`. At small images (the demo's 64 px: 4 x 4 pixels at the last stage) a
//! GEMM per image would be tiny, so images are grouped until a group's column matrix reaches
//! [`COL_FLOATS`], and every GEMM spans the whole group.
//!
//! Filters larger than 1x1 take the direct kernels of `direct.rs` instead where they pay
//! ([`Dense::direct_pays`]) and the CPU has AVX2 + FMA; this path remains for 1x1
//! convolutions, small outputs (under 16 x 16 at stride 1 in the forward pass and input
//! gradient, else 32 x 32), strided input gradients and older CPUs.

use rayon::prelude::*;

use super::Window;
use super::direct::{self, Direct, Packed};

/// Largest column matrix (`c*kh*kw x images*oh*ow` floats, 32 MiB) built at once.
#[cfg(not(test))]
const COL_FLOATS: usize = 8 << 20;
/// Small in the unit tests, so that they run several groups, and groups of one image.
#[cfg(test)]
const COL_FLOATS: usize = 600;

std::thread_local! {
    /// Two scratch matrices per calling thread (the column matrix and a gathered one), kept
    /// between calls: a fresh buffer per call costs a zero fill of up to [`COL_FLOATS`] that
    /// the kernels then overwrite (5-8 % of a small-image train step in `perf`).
    static SCRATCH: std::cell::Cell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` with this thread's two scratch buffers (empty if a caller up the stack holds them).
fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>, &mut Vec<f32>) -> R) -> R {
    let (mut a, mut b) = SCRATCH.take();
    let r = f(&mut a, &mut b);
    SCRATCH.set((a, b));
    r
}

/// The first `len` floats of `buf`, grown (zero-filled) only when it is too short. Callers
/// overwrite every element they read.
fn prefix(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Geometry of a dense convolution of `[n, c, h, w]` with `[co, c, kh, kw]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dense {
    pub n: usize,
    pub c: usize,
    pub co: usize,
    pub window: Window,
}

impl Dense {
    /// Rows of the column matrix: one per input channel and filter tap.
    fn k(&self) -> usize {
        self.c * self.window.kh * self.window.kw
    }

    /// Output pixels per image.
    fn p(&self) -> usize {
        self.window.oh * self.window.ow
    }

    /// Input pixels per plane.
    fn hw(&self) -> usize {
        self.window.h * self.window.w
    }

    /// Images per group: as many as keep the column matrix within [`COL_FLOATS`] (at least one).
    fn group(&self) -> usize {
        (COL_FLOATS / (self.k() * self.p()).max(1)).clamp(1, self.n.max(1))
    }

    /// A 1x1 convolution with stride 1 and no padding: the column matrix of an image is the
    /// image itself, so each image is one GEMM on its own planes, with no copies.
    fn pointwise(&self) -> bool {
        let g = &self.window;
        g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.oh == g.h && g.ow == g.w
    }

    /// Whether the direct kernels ([`direct::conv`], [`direct::weight_grad`]) compute this
    /// convolution: a filter larger than 1x1 (a 1x1 convolution is one GEMM on the planes, or
    /// on a subsample), any stride.
    fn direct(&self) -> bool {
        let g = &self.window;
        g.kh * g.kw > 1
    }

    /// Whether the direct path is the faster one here, for the forward pass and the input
    /// gradient or (`weight_grad`) the weight gradient. On small outputs the padded grid's
    /// dropped columns and the last, partly used tile of each image waste a third or more
    /// (8 x 8 at stride 1: 96 positions computed for 64), and strided convolutions split into
    /// `sh * sw` phase planes, each a fraction of the output wide. Measured on resnet18 at
    /// 256 px on a 2-core AMD EPYC (AVX-512), ms per train step for a layer's convolutions,
    /// direct against gemm: at stride 1 the forward pass and the input gradient need 16 x 16
    /// outputs (layer4's 8 x 8: forward 61-66 against 42-50, input gradient 68 against 45-53;
    /// at 16 x 16 within the noise), the weight gradient 32 x 32 (16 x 16: 55-58 against
    /// 44-50; 32 x 32: 46-51 against 51-54); strided, all three need 32 x 32 (8 x 8 forward:
    /// 107 GFLOP/s against 150; weight gradient at 16 x 16: 10.9 ms against 8.8).
    fn direct_pays(&self, weight_grad: bool) -> bool {
        let stride_1 = self.window.sh == 1 && self.window.sw == 1;
        let least = match (stride_1, weight_grad) {
            (true, false) => 16 * 16,
            _ => 32 * 32,
        };
        self.p() >= least
    }

    /// This convolution as the direct kernels' geometry.
    fn geometry(&self) -> Direct {
        let g = &self.window;
        Direct {
            n: self.n,
            c: self.c,
            h: g.h,
            w: g.w,
            co: self.co,
            kh: g.kh,
            kw: g.kw,
            sh: g.sh,
            sw: g.sw,
            pt: g.ph,
            pl: g.pw,
            oh: g.oh,
            ow: g.ow,
        }
    }

    /// The groups of images, as ranges.
    fn groups(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let g = self.group();
        (0..self.n).step_by(g).map(move |s| s..(s + g).min(self.n))
    }
}

/// `dst = a[m, k] x b[k, n]` (`accumulate`: `dst += ...`), each matrix given by its row and
/// column strides, on rayon's pool when the product is large enough to pay for it.
#[allow(clippy::too_many_arguments)]
fn gemm(
    (m, k, n): (usize, usize, usize),
    dst: &mut [f32],
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(
        last(m, n, dst_rs, dst_cs) < dst.len(),
        "gemm: dst too short"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[i * dst_rs + j * dst_cs] = 0.0;
                }
            }
        }
        return;
    }
    assert!(last(m, k, a_rs, a_cs) < a.len(), "gemm: lhs too short");
    assert!(last(k, n, b_rs, b_cs) < b.len(), "gemm: rhs too short");
    let parallelism = if m * n * k >= 128 * 128 * 128 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every element the strides address inside its slice; dst
    // is borrowed mutably, so it overlaps neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Writes image `x` (`[c, h, w]`) into columns `off..off + oh*ow` of the column matrix `col`
/// (row `(ci * kh + i) * kw + j`, row length `ld`): row `(ci, i, j)` holds, for every output
/// pixel, the input pixel under filter tap `(i, j)`, 0 in the padding.
fn im2col_channel(plane: &[f32], g: &Window, rows: &mut [f32], ld: usize, off: usize) {
    let (oh, ow) = (g.oh, g.ow);
    for i in 0..g.kh {
        for j in 0..g.kw {
            let r = i * g.kw + j;
            let row = &mut rows[r * ld + off..r * ld + off + oh * ow];
            let (lo, hi) = g.cols(j);
            for oy in 0..oh {
                let dst = &mut row[oy * ow..(oy + 1) * ow];
                let Some(y) = g.in_row(oy, i) else {
                    dst.fill(0.0);
                    continue;
                };
                dst[..lo].fill(0.0);
                dst[hi..].fill(0.0);
                if lo == hi {
                    continue;
                }
                let src = &plane[y * g.w..(y + 1) * g.w];
                let x0 = lo * g.sw + j - g.pw;
                if g.sw == 1 {
                    dst[lo..hi].copy_from_slice(&src[x0..x0 + hi - lo]);
                } else {
                    for (t, d) in dst[lo..hi].iter_mut().enumerate() {
                        *d = src[x0 + t * g.sw];
                    }
                }
            }
        }
    }
}

/// The reverse of [`im2col_channel`]: adds every column entry back onto the input pixel it
/// was read from (`plane` starts at zero).
fn col2im_channel(rows: &[f32], g: &Window, ld: usize, off: usize, plane: &mut [f32]) {
    let (oh, ow) = (g.oh, g.ow);
    for i in 0..g.kh {
        for j in 0..g.kw {
            let r = i * g.kw + j;
            let row = &rows[r * ld + off..r * ld + off + oh * ow];
            let (lo, hi) = g.cols(j);
            if lo == hi {
                continue;
            }
            for oy in 0..oh {
                let Some(y) = g.in_row(oy, i) else {
                    continue;
                };
                let src = &row[oy * ow + lo..oy * ow + hi];
                let dst = &mut plane[y * g.w..(y + 1) * g.w];
                let x0 = lo * g.sw + j - g.pw;
                if g.sw == 1 {
                    for (d, s) in dst[x0..x0 + hi - lo].iter_mut().zip(src) {
                        *d += s;
                    }
                } else {
                    for (t, s) in src.iter().enumerate() {
                        dst[x0 + t * g.sw] += s;
                    }
                }
            }
        }
    }
}

/// The column matrix (`[c*kh*kw, images*oh*ow]`) of `images` of `x`.
fn im2col(x: &[f32], d: &Dense, images: &std::ops::Range<usize>, col: &mut [f32]) {
    let (k, p, hw, taps) = (d.k(), d.p(), d.hw(), d.window.kh * d.window.kw);
    let ld = images.len() * p;
    assert_eq!(col.len(), k * ld);
    let g = d.window;
    // Each input channel owns `taps` consecutive rows; channels are independent.
    col.par_chunks_mut(taps * ld)
        .enumerate()
        .for_each(|(ci, rows)| {
            for (l, img) in images.clone().enumerate() {
                let plane = &x[(img * d.c + ci) * hw..(img * d.c + ci + 1) * hw];
                im2col_channel(plane, &g, rows, ld, l * p);
            }
        });
}

/// `rows[co, images*p]` gathered from `t` (`[n, co, p]`), image by image.
fn gather(t: &[f32], co: usize, p: usize, images: &std::ops::Range<usize>, out: &mut [f32]) {
    let ld = images.len() * p;
    assert_eq!(out.len(), co * ld);
    out.par_chunks_mut(ld).enumerate().for_each(|(o, row)| {
        for (l, img) in images.clone().enumerate() {
            row[l * p..(l + 1) * p].copy_from_slice(&t[(img * co + o) * p..(img * co + o + 1) * p]);
        }
    });
}

/// Forward: `y[n, co, oh, ow]` of `x[n, c, h, w]` and `weight[co, c, kh, kw]`, no bias.
pub fn dense_forward(x: &[f32], weight: &[f32], d: Dense) -> Vec<f32> {
    dense_forward_with(x, weight, d, d.direct_pays(false))
}

/// [`dense_forward`], with the direct kernel allowed or not (the tests compare both paths).
pub(super) fn dense_forward_with(x: &[f32], weight: &[f32], d: Dense, direct: bool) -> Vec<f32> {
    if direct && d.direct() {
        let (c, kh, kw) = (d.c, d.window.kh, d.window.kw);
        let filters = Packed::new(d.co, c, kh, kw, |o, ci, i, j| {
            weight[((o * c + ci) * kh + i) * kw + j]
        });
        if let Some(filters) = filters {
            return direct::conv(x, &filters, d.geometry());
        }
    }
    let (k, p) = (d.k(), d.p());
    let mut y = vec![0.0f32; d.n * d.co * p];
    if d.pointwise() {
        // y[n][co, p] = W[co, c] x x[n][c, p]
        y.par_chunks_mut(d.co * p)
            .zip(x.par_chunks(d.c * p))
            .for_each(|(yn, xn)| {
                gemm(
                    (d.co, d.c, p),
                    yn,
                    (p, 1),
                    false,
                    weight,
                    (k, 1),
                    xn,
                    (p, 1),
                )
            });
        return y;
    }
    // With few output channels the product is better taken with them as the vectorised
    // dimension (`out^T[ld, co] = col^T x W^T`, one 64-row AVX-512 panel or four AVX2 ones
    // spanning every channel): gemm then packs the small weight instead of the column matrix.
    // At resnet18's 64-channel layers (k 576, 12288 columns) that ran at 140-190 GFLOP/s
    // against 115-140 the other way round, on a 2-core AMD EPYC with AVX-512.
    let channels_inner = d.co <= 64;
    let wt = if channels_inner {
        transposed(weight, d.co, k)
    } else {
        Vec::new()
    };
    with_scratch(|col_buf, out_buf| {
        for images in d.groups() {
            let ld = images.len() * p;
            let col = prefix(col_buf, k * ld);
            im2col(x, &d, &images, col);
            let base = images.start * d.co * p;
            let dst = &mut y[base..base + images.len() * d.co * p];
            if channels_inner {
                let out = prefix(out_buf, d.co * ld);
                // out[ld, co] = col[k, ld]^T x W^T[k, co], as (co x k) x (k x ld) column-major
                gemm(
                    (d.co, k, ld),
                    out,
                    (1, d.co),
                    false,
                    &wt,
                    (1, d.co),
                    col,
                    (ld, 1),
                );
                scatter_transposed(out, d.co, p, dst);
                continue;
            }
            let out = prefix(out_buf, d.co * ld);
            // out[co, ld] = W[co, k] x col[k, ld]
            gemm(
                (d.co, k, ld),
                out,
                (ld, 1),
                false,
                weight,
                (k, 1),
                col,
                (ld, 1),
            );
            let out = &*out;
            dst.par_chunks_mut(d.co * p)
                .enumerate()
                .for_each(|(l, img)| {
                    for (o, plane) in img.chunks_mut(p).enumerate() {
                        plane.copy_from_slice(&out[o * ld + l * p..o * ld + (l + 1) * p]);
                    }
                });
        }
    });
    y
}

/// Side of the tiles the transpositions walk, so reads and writes both stay in cache.
const TILE: usize = 16;

/// Columns `c0..c0 + out.len() / rows` of `a[rows, cols]` (row-major), transposed into `out`
/// (`[width, rows]`), tile by tile.
fn transpose_columns(a: &[f32], rows: usize, cols: usize, c0: usize, out: &mut [f32]) {
    let width = out.len() / rows;
    for r0 in (0..rows).step_by(TILE) {
        for c in c0..c0 + width {
            for r in r0..(r0 + TILE).min(rows) {
                out[(c - c0) * rows + r] = a[r * cols + c];
            }
        }
    }
}

/// `a[rows, cols]` (row-major) transposed, in parallel blocks of [`TILE`] columns.
fn transposed(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(a.len(), rows * cols);
    let mut t = vec![0.0f32; rows * cols];
    if rows == 0 {
        return t;
    }
    t.par_chunks_mut(TILE * rows)
        .enumerate()
        .for_each(|(block, out)| transpose_columns(a, rows, cols, block * TILE, out));
    t
}

/// `t[images*p, co]` (a row per pixel) written out as `out[images, co, p]` (planes): each
/// image's `[p, co]` block transposed.
fn scatter_transposed(t: &[f32], co: usize, p: usize, out: &mut [f32]) {
    assert_eq!(t.len(), out.len());
    if co * p == 0 {
        return;
    }
    out.par_chunks_mut(co * p)
        .zip(t.par_chunks(p * co))
        .for_each(|(planes, rows)| transpose_columns(rows, p, co, 0, planes));
}

/// `rows[images*p, co]` gathered from `t` (`[n, co, p]`), transposed: one row per pixel.
fn gather_transposed(
    t: &[f32],
    co: usize,
    p: usize,
    images: &std::ops::Range<usize>,
    out: &mut [f32],
) {
    /// Pixels per parallel chunk (the tiles are [`TILE`] square).
    const ROWS: usize = 256;
    assert_eq!(out.len(), images.len() * p * co);
    out.par_chunks_mut(ROWS * co)
        .enumerate()
        .for_each(|(chunk, rows)| {
            let first = chunk * ROWS;
            let count = rows.len() / co;
            for r0 in (0..count).step_by(TILE) {
                let r1 = (r0 + TILE).min(count);
                for o0 in (0..co).step_by(TILE) {
                    let o1 = (o0 + TILE).min(co);
                    for r in r0..r1 {
                        let (img, pix) = ((first + r) / p, (first + r) % p);
                        let src = (images.start + img) * co * p + pix;
                        for o in o0..o1 {
                            rows[r * co + o] = t[src + o * p];
                        }
                    }
                }
            }
        });
}

/// Weight gradient `[co, c, kh, kw]` from the input `x` and the output gradient `dy`.
///
/// Both factors of `dW = dY x col^T` run along the pixels, the GEMM's reduction. Given as they
/// are, gemm has to transpose one of them into its packed panels on every call (with its
/// AVX-512 kernels, whose panels are 64 rows, that packing took most of the time: 30 GFLOP/s at
/// resnet18's 64-channel layers on a 2-core AMD EPYC). So the output gradient is gathered
/// transposed (`[pixels, co]`, one pass over `dY`, against `col`'s `kh*kw` times as many
/// values), the product is taken as `dW^T[k, co]` with the output channels as the vectorised
/// dimension (170-200 GFLOP/s there), and the small result is transposed back.
///
/// Filters larger than 1x1 take the direct kernel instead where it pays
/// ([`direct::weight_grad`], [`Dense::direct_pays`]: no column matrix; resnet18's layers 1
/// and 2 at 256 px).
pub fn dense_weight_grad(x: &[f32], dy: &[f32], d: Dense) -> Vec<f32> {
    dense_weight_grad_with(x, dy, d, d.direct_pays(true))
}

/// [`dense_weight_grad`], with the direct kernel allowed or not.
pub(super) fn dense_weight_grad_with(x: &[f32], dy: &[f32], d: Dense, direct: bool) -> Vec<f32> {
    if direct
        && d.direct()
        && let Some(dw) = direct::weight_grad(x, dy, d.geometry())
    {
        return dw;
    }
    let k = d.k();
    let p = d.p();
    let mut dwt = vec![0.0f32; k * d.co];
    with_scratch(|col_buf, dyt_buf| {
        for (step, images) in d.groups().enumerate() {
            let ld = images.len() * p;
            let col = prefix(col_buf, k * ld);
            im2col(x, &d, &images, col);
            let dyt = prefix(dyt_buf, ld * d.co);
            gather_transposed(dy, d.co, p, &images, dyt);
            // dW^T[k, co] (+)= col[k, ld] x dY^T[ld, co], written as the product
            // (co x ld) x (ld x k) into a column-major [co, k], which is dW^T row-major.
            gemm(
                (d.co, ld, k),
                &mut dwt,
                (1, d.co),
                step > 0,
                dyt,
                (1, d.co),
                col,
                (1, ld),
            );
        }
    });
    transposed(&dwt, k, d.co)
}

/// Input gradient `[n, c, h, w]` from the weight and the output gradient `dy`.
pub fn dense_input_grad(dy: &[f32], weight: &[f32], d: Dense) -> Vec<f32> {
    dense_input_grad_with(dy, weight, d, d.direct_pays(false))
}

/// [`dense_input_grad`], with the direct kernel allowed or not.
pub(super) fn dense_input_grad_with(
    dy: &[f32],
    weight: &[f32],
    d: Dense,
    direct: bool,
) -> Vec<f32> {
    // At stride 1: the full convolution of `dy` with the filters flipped and input and output
    // channels swapped.
    if direct
        && d.direct()
        && let Some(window) = d.window.input_grad_window()
    {
        let (c, co, kh, kw) = (d.c, d.co, window.kh, window.kw);
        let filters = Packed::new(c, co, kh, kw, |ci, o, i, j| {
            weight[((o * c + ci) * kh + kh - 1 - i) * kw + kw - 1 - j]
        });
        if let Some(filters) = filters {
            let flipped = Dense {
                n: d.n,
                c: co,
                co: c,
                window,
            };
            return direct::conv(dy, &filters, flipped.geometry());
        }
    }
    let (k, p, hw, taps) = (d.k(), d.p(), d.hw(), d.window.kh * d.window.kw);
    let mut dx = vec![0.0f32; d.n * d.c * hw];
    if d.pointwise() {
        // dx[n][c, p] = W[co, c]^T x dY[n][co, p]
        dx.par_chunks_mut(d.c * p)
            .zip(dy.par_chunks(d.co * p))
            .for_each(|(dxn, dyn_)| {
                gemm(
                    (d.c, d.co, p),
                    dxn,
                    (p, 1),
                    false,
                    weight,
                    (1, k),
                    dyn_,
                    (p, 1),
                )
            });
        return dx;
    }
    let g = d.window;
    with_scratch(|dcol_buf, dyg_buf| {
        for images in d.groups() {
            let ld = images.len() * p;
            let dcol = prefix(dcol_buf, k * ld);
            let dyg = prefix(dyg_buf, d.co * ld);
            gather(dy, d.co, p, &images, dyg);
            // dcol[k, ld] = W[co, k]^T x dY[co, ld]
            gemm(
                (k, d.co, ld),
                dcol,
                (ld, 1),
                false,
                weight,
                (1, k),
                dyg,
                (ld, 1),
            );
            let dcol = &*dcol;
            let base = images.start * d.c * hw;
            dx[base..base + images.len() * d.c * hw]
                .par_chunks_mut(hw)
                .enumerate()
                .for_each(|(plane_index, plane)| {
                    let (l, ci) = (plane_index / d.c, plane_index % d.c);
                    let rows = &dcol[ci * taps * ld..(ci + 1) * taps * ld];
                    col2im_channel(rows, &g, ld, l * p, plane);
                });
        }
    });
    dx
}
