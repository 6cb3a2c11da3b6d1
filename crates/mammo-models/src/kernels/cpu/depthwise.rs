//! Depthwise convolution (groups == channels, one filter per channel, dilation 1) and the
//! sliding-window geometry it shares with max pooling.

use rayon::prelude::*;

use super::*;

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

    pub(super) fn cols(&self, j: usize) -> (usize, usize) {
        Self::valid(j, self.w, self.ow, self.sw, self.pw)
    }

    /// The input gradient of this window, at stride 1, as a forward window over the output
    /// gradient: the full convolution of `dy` with the kernel flipped, padding `k - 1 - p`
    /// before and after (after: `k - 1` minus the forward's padding after), output the input's
    /// size. `None` when strided, or when a padding reaches the kernel's size.
    pub(super) fn input_grad_window(&self) -> Option<Window> {
        let (pb, pr) = (
            (self.oh + self.kh - 1).saturating_sub(self.h + self.ph),
            (self.ow + self.kw - 1).saturating_sub(self.w + self.pw),
        );
        let fits = self.ph.max(pb) < self.kh && self.pw.max(pr) < self.kw;
        (self.sh == 1 && self.sw == 1 && fits).then(|| Window {
            h: self.oh,
            w: self.ow,
            kh: self.kh,
            kw: self.kw,
            sh: 1,
            sw: 1,
            ph: self.kh - 1 - self.ph,
            pw: self.kw - 1 - self.pw,
            oh: self.h,
            ow: self.w,
        })
    }

    /// Input row of output row `o` at kernel row `i`, if inside the image.
    pub(super) fn in_row(&self, o: usize, i: usize) -> Option<usize> {
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
    pub(super) fn column_taps(&self) -> Vec<(usize, usize, usize, isize)> {
        (0..self.kw)
            .map(|j| {
                let (lo, hi) = self.cols(j);
                let (phase, off) = self.tap(j);
                (lo, hi, phase, off)
            })
            .collect()
    }

    /// The phase-split row `r` of `plane` (`[h][sw][phase_len]`), at `phase`.
    pub(super) fn phase_row<'a>(&self, plane: &'a [f32], r: usize, phase: usize) -> &'a [f32] {
        let pl = self.phase_len();
        &plane[(r * self.sw + phase) * pl..(r * self.sw + phase + 1) * pl]
    }
}

/// A plane `[h, w]` with each row split into its `sw` column phases, `[h][sw][ceil(w / sw)]`,
/// so a strided convolution reads every tap contiguously (and vectorises). Stride 1: the plane
/// itself.
pub(super) fn split_phases<'a>(x: &'a [f32], g: &Window, buf: &'a mut Vec<f32>) -> &'a [f32] {
    if g.sw == 1 {
        return x;
    }
    let pl = g.phase_len();
    buf.clear();
    buf.resize(g.h * g.sw * pl, 0.0);
    if g.w == 0 {
        return buf;
    }
    // Phase by phase, a strided read into a contiguous write (no division per element: it
    // was most of this function's time, 8-10 % of EfficientNet-B0's forward).
    for (row, out) in x.chunks_exact(g.w).zip(buf.chunks_exact_mut(g.sw * pl)) {
        for (phase, dst) in out.chunks_exact_mut(pl).enumerate() {
            for (d, &v) in dst.iter_mut().zip(row[phase..].iter().step_by(g.sw)) {
                *d = v;
            }
        }
    }
    buf
}

/// Inverse of [`split_phases`]: add the phase-split plane `xp` into `x`.
fn merge_phases(xp: &[f32], g: &Window, x: &mut [f32]) {
    let pl = g.phase_len();
    if g.w == 0 {
        return;
    }
    for (row, src) in x.chunks_exact_mut(g.w).zip(xp.chunks_exact(g.sw * pl)) {
        for (phase, part) in src.chunks_exact(pl).enumerate() {
            for (v, &s) in row[phase..].iter_mut().step_by(g.sw).zip(part) {
                *v += s;
            }
        }
    }
}

/// Output columns per register block of [`conv_plane`] (one AVX-512 vector).
const BLOCK: usize = 16;

impl Window {
    /// Padded rows the output reads: `(oh - 1) * sh + kh`.
    fn padded_rows(&self) -> usize {
        (self.oh - 1) * self.sh + self.kh
    }

    /// Length of one phase of a padded row in [`pad_phases`]: the padded columns the output
    /// reads, and room for the last block of [`BLOCK`] outputs to read whole vectors.
    fn padded_phase_len(&self) -> usize {
        let read = (self.ow - 1) * self.sw + self.kw;
        read.div_ceil(self.sw)
            .max(self.ow.next_multiple_of(BLOCK) + (self.kw - 1) / self.sw)
    }
}

/// Writes the plane `x` (`[h, w]`) into `buf` zero-padded (top `ph`, left `pw`, and on to
/// whatever the output reads), each padded row split into its `sw` column phases: padded pixel
/// `(rp, xc)` goes to `(rp * sw + xc % sw) * lp + xc / sw`, `lp` = [`Window::padded_phase_len`].
/// Every tap of every output is then in range, and a run of outputs reads a contiguous run.
/// Only the image's pixels are written: `buf` holds zeros elsewhere ([`with_padded`]).
fn pad_phases(x: &[f32], g: &Window, buf: &mut [f32]) {
    let (hp, lp, sw) = (g.padded_rows(), g.padded_phase_len(), g.sw);
    for (r, row) in x.chunks_exact(g.w.max(1)).take(g.h).enumerate() {
        let rp = r + g.ph;
        if rp >= hp {
            break;
        }
        for p in 0..sw {
            let dst = &mut buf[(rp * sw + p) * lp..(rp * sw + p + 1) * lp];
            // Input columns `c` with `(c + pw) % sw == p`, at index `(c + pw) / sw`.
            let c0 = (p + sw - g.pw % sw) % sw;
            let i0 = (c0 + g.pw) / sw;
            if sw == 1 {
                let n = g.w.min(lp.saturating_sub(i0));
                dst[i0..i0 + n].copy_from_slice(&row[..n]);
            } else {
                for (d, &v) in dst.iter_mut().skip(i0).zip(row.iter().skip(c0).step_by(sw)) {
                    *d = v;
                }
            }
        }
    }
}

std::thread_local! {
    /// A thread's padded plane ([`with_padded`]) and the geometry it was padded for (its
    /// zeros are only valid for that geometry).
    static PADDED: std::cell::Cell<(Vec<f32>, Option<Window>)> =
        const { std::cell::Cell::new((Vec::new(), None)) };
}

/// Runs `f` on the plane `x` padded by [`pad_phases`] in this thread's buffer, which is
/// zero-filled once per geometry, not once per plane or per rayon job (that memset was 5 % of
/// EfficientNet-B0's forward). `f` must not pad another plane itself.
fn with_padded<R>(x: &[f32], g: &Window, f: impl FnOnce(&[f32]) -> R) -> R {
    let (mut buf, last) = PADDED.take();
    if last != Some(*g) {
        buf.clear();
        buf.resize(g.padded_rows() * g.sw * g.padded_phase_len(), 0.0);
    }
    pad_phases(x, g, &mut buf);
    let out = f(&buf);
    PADDED.set((buf, Some(*g)));
    out
}

multiversion! {
    fn conv_plane(xpad: &[f32], wt: &[f32], y: &mut [f32], g: Window) {
        let lp = g.padded_phase_len();
        // Per kernel column: its phase and shift within the phase.
        let taps: Vec<(usize, usize)> = (0..g.kw).map(|j| (j % g.sw, j / g.sw)).collect();
        // y = conv(x, wt) for one plane from its padded phase rows, `BLOCK` outputs at a time
        // summed over every tap in registers and stored once (a tap at a time over the row,
        // each tap loaded and stored the output again).
        for (o, yrow) in y.chunks_exact_mut(g.ow).enumerate() {
            for q0 in (0..g.ow).step_by(BLOCK) {
                let mut acc = [0.0f32; BLOCK];
                for i in 0..g.kh {
                    let rp = o * g.sh + i;
                    for (j, &(phase, shift)) in taps.iter().enumerate() {
                        let start = (rp * g.sw + phase) * lp + q0 + shift;
                        let src: &[f32; BLOCK] =
                            xpad[start..start + BLOCK].try_into().expect("one block");
                        let wv = wt[i * g.kw + j];
                        for (a, &x) in acc.iter_mut().zip(src) {
                            *a = madd::<FMA>(wv, x, *a);
                        }
                    }
                }
                let n = BLOCK.min(g.ow - q0);
                yrow[q0..q0 + n].copy_from_slice(&acc[..n]);
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
    fn conv_weight_grad_plane(xpad: &[f32], dypad: &[f32], dw: &mut [f64], g: Window) {
        // dw[i, j] += sum over output positions of dy * x at the tap, from the padded phase
        // rows and `dy` with its rows padded to whole blocks of zeros: per tap one vector of
        // partial sums over the whole plane, summed across once (per row and tap, the
        // horizontal sum had cost more than the products on short rows).
        let lp = g.padded_phase_len();
        let owp = g.ow.next_multiple_of(BLOCK);
        for i in 0..g.kh {
            for j in 0..g.kw {
                let (phase, shift) = (j % g.sw, j / g.sw);
                let mut acc = [0.0f32; BLOCK];
                for (o, dyrow) in dypad.chunks_exact(owp).enumerate() {
                    let row = ((o * g.sh + i) * g.sw + phase) * lp + shift;
                    for (q0, d) in (0..owp).step_by(BLOCK).zip(dyrow.chunks_exact(BLOCK)) {
                        let x = &xpad[row + q0..row + q0 + BLOCK];
                        for l in 0..BLOCK {
                            acc[l] = madd::<FMA>(d[l], x[l], acc[l]);
                        }
                    }
                }
                dw[i * g.kw + j] += acc.iter().map(|&v| v as f64).sum::<f64>();
            }
        }
    }
}

/// `dy` (`[oh, ow]`) with each row padded with zeros to whole blocks of [`BLOCK`].
fn pad_rows<'a>(dy: &[f32], g: &Window, buf: &'a mut Vec<f32>) -> &'a [f32] {
    let owp = g.ow.next_multiple_of(BLOCK);
    buf.clear();
    buf.resize(g.oh * owp, 0.0);
    for (src, dst) in dy.chunks_exact(g.ow).zip(buf.chunks_exact_mut(owp)) {
        dst[..g.ow].copy_from_slice(src);
    }
    buf
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
    y.par_chunks_mut(plane_out).enumerate().for_each(|(p, y)| {
        let ch = p % c;
        with_padded(&x[p * plane_in..(p + 1) * plane_in], &g, |xpad| {
            conv_plane(xpad, &wt[ch * k..(ch + 1) * k], y, g)
        });
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
    if let Some(flipped) = g.input_grad_window() {
        // The forward's register blocks over `dy`, not a scatter of every tap into `dx`.
        let wt: Vec<f32> = wt
            .chunks_exact(k)
            .flat_map(|w| w.iter().rev().copied())
            .collect();
        return depthwise_forward(dy, &wt, n, c, flipped);
    }
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
    if plane_out == 0 {
        return vec![0.0; c * k];
    }
    let per_channel: Vec<Vec<f32>> = (0..c)
        .into_par_iter()
        .map_init(Vec::new, |dybuf, ch| {
            let mut acc = vec![0.0f64; k];
            for b in 0..n {
                let p = b * c + ch;
                let dypad = pad_rows(&dy[p * plane_out..(p + 1) * plane_out], &g, dybuf);
                with_padded(&x[p * plane_in..(p + 1) * plane_in], &g, |xpad| {
                    conv_weight_grad_plane(xpad, dypad, &mut acc, g)
                });
            }
            acc.into_iter().map(|v| v as f32).collect()
        })
        .collect();
    per_channel.concat()
}
