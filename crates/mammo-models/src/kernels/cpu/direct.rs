//! Dense convolution computed directly from zero-padded planes, with no column matrix: the
//! forward pass at any stride, the input gradient at stride 1 (the same convolution of the
//! output gradient with the filters flipped and transposed) and the weight gradient at any
//! stride.
//!
//! At stride 1 each input plane is copied once into a zero-padded plane of width
//! `wq = ow + kw - 1`. The output is computed on that wider grid: output position
//! `q = oy * wq + ox` reads, for filter tap `(i, j)`, padded position `q + i * wq + j`, so
//! every tap is one contiguous run of positions and a vector of consecutive outputs is one
//! unaligned load per tap. The `kw - 1` columns past `ow` in each row are computed and dropped
//! (3 % at 64 columns, 20 % at 8). At stride `(sh, sw)` the padded plane is first split into
//! its `sh * sw` phase planes (phase `(a, b)` holds padded pixels `(sh * u + a, sw * v + b)`):
//! tap `(i, j)` is then a stride-1 tap `(i / sh, j / sw)` of phase `(i % sh, j % sw)`, and the
//! same kernels run over a list of (phase plane, offset) filter rows, one per filter tap, so
//! no zero taps are added.
//!
//! The microkernel keeps `O` output channels times `R` vectors of positions in registers for
//! the whole reduction over filter rows (AVX-512: 8 x 3 x 16 lanes, AVX2 + FMA: 4 x 3 x 8),
//! reading per row `R` input vectors and `O` broadcast filter values (packed
//! `[channel group][input channel][tap][O]`, so they are consecutive), and writes each output
//! once. Nothing is packed per call but the filters, and nothing the size of `kh * kw` times
//! the input is written: im2col wrote such a matrix and gemm then copied it into its panels
//! (a quarter of resnet18's forward on a 2-core AMD EPYC).
//!
//! CPUs without AVX2 + FMA get `None`, and the caller takes the im2col path.

use rayon::prelude::*;

/// Which microkernel this CPU runs: AVX-512 (F) or AVX2 + FMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    fn detect() -> Option<Isa> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Some(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Some(Isa::Avx2);
            }
        }
        None
    }

    /// Output channels per register tile.
    fn channels(self) -> usize {
        match self {
            Isa::Avx512 => 8,
            Isa::Avx2 => 4,
        }
    }

    /// Output positions per register tile.
    fn positions(self) -> usize {
        match self {
            Isa::Avx512 => 3 * 16,
            Isa::Avx2 => 3 * 8,
        }
    }

    /// Floats per vector.
    fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
        }
    }

    /// Weight gradient register tile: output channels x filter rows `(ci, tap)`.
    fn grad_tile(self) -> (usize, usize) {
        match self {
            Isa::Avx512 => (4, 6),
            Isa::Avx2 => (2, 6),
        }
    }
}

/// A convolution on the padded grid: its geometry, at any stride.
#[derive(Debug, Clone, Copy)]
pub(super) struct Direct {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub co: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    /// Zero padding before (top, left); the padding after is whatever makes the output
    /// `oh x ow`.
    pub pt: usize,
    pub pl: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Direct {
    /// Row length of the computed grid and of every phase plane: `ow` plus the furthest
    /// column tap within a phase.
    fn wq(&self) -> usize {
        self.ow + (self.kw - 1) / self.sw
    }

    /// Rows of a phase plane.
    fn hq(&self) -> usize {
        self.oh + (self.kh - 1) / self.sh
    }

    /// Phase planes per input plane (`sh * sw`; one at stride 1).
    fn phases(&self) -> usize {
        self.sh * self.sw
    }

    /// Grid positions computed per image, rounded up to whole tiles of `q_tile`.
    fn grid(&self, q_tile: usize) -> usize {
        (self.oh * self.wq()).div_ceil(q_tile) * q_tile
    }

    /// Furthest offset of a filter tap from its output position within a phase plane.
    fn reach(&self) -> usize {
        (self.kh - 1) / self.sh * self.wq() + (self.kw - 1) / self.sw
    }

    /// Floats per phase plane: long enough for the last grid position's furthest tap.
    fn plane(&self, q_tile: usize) -> usize {
        (self.grid(q_tile) + self.reach())
            .max(self.hq() * self.wq())
            .next_multiple_of(16)
    }

    /// Offset of every filter row `(ci, i, j)` (in the filters' order) from an output
    /// position: tap `(i, j)` reads phase `(i % sh, j % sw)` of channel `ci` shifted by
    /// `(i / sh, j / sw)`, and phase `p` of channel `ci` starts at
    /// `(ci * phases + p) * stride`.
    fn rows(&self, stride: usize) -> Vec<usize> {
        let wq = self.wq();
        let mut rows = Vec::with_capacity(self.c * self.kh * self.kw);
        for ci in 0..self.c {
            for i in 0..self.kh {
                for j in 0..self.kw {
                    let phase = (i % self.sh) * self.sw + j % self.sw;
                    let shift = (i / self.sh) * wq + j / self.sw;
                    rows.push((ci * self.phases() + phase) * stride + shift);
                }
            }
        }
        rows
    }

    /// Writes the phase planes of one input plane `src` (`[h, w]`): phase `(a, b)` holds
    /// padded pixel `(sh * u + a, sw * v + b)` at `(u, v)` (rows of `wq`, `hq` rows) and goes
    /// to `dst(a * sw + b)`, which must be zero-filled (the padding is not written). At
    /// stride 1 this is the zero-padded plane itself.
    fn write_phases<'a>(&self, src: &[f32], mut dst: impl FnMut(usize) -> &'a mut [f32]) {
        let (wq, hq) = (self.wq(), self.hq());
        // Phase positions `t < count` whose source index `s * t + phase - pad` is in
        // `[0, size)`.
        let span = |phase: usize, s: usize, pad: usize, size: usize, count: usize| {
            let lo = if pad > phase {
                (pad - phase).div_ceil(s)
            } else {
                0
            };
            let hi = if size + pad > phase {
                ((size + pad - phase - 1) / s + 1).min(count)
            } else {
                0
            };
            (lo.min(hi), hi)
        };
        for a in 0..self.sh {
            let (u0, u1) = span(a, self.sh, self.pt, self.h, hq);
            for b in 0..self.sw {
                let (v0, v1) = span(b, self.sw, self.pl, self.w, wq);
                let out = dst(a * self.sw + b);
                if v0 == v1 {
                    continue;
                }
                let first = self.sw * v0 + b - self.pl;
                for u in u0..u1 {
                    let row = &src[(self.sh * u + a - self.pt) * self.w..][..self.w];
                    let dst_row = &mut out[u * wq + v0..u * wq + v1];
                    if self.sw == 1 {
                        dst_row.copy_from_slice(&row[first..first + (v1 - v0)]);
                    } else {
                        let taken = row[first..].iter().step_by(self.sw);
                        for (d, &v) in dst_row.iter_mut().zip(taken) {
                            *d = v;
                        }
                    }
                }
            }
        }
    }
}

/// Filters packed for the microkernel: `[co / O][c][kh * kw][O]`, zero beyond `co`.
pub(super) struct Packed {
    data: Vec<f32>,
    isa: Isa,
}

impl Packed {
    /// Packs `filter(o, ci, i, j)` for `co` output and `c` input channels, or `None` when the
    /// CPU has no microkernel.
    pub fn new(
        co: usize,
        c: usize,
        kh: usize,
        kw: usize,
        filter: impl Fn(usize, usize, usize, usize) -> f32 + Sync,
    ) -> Option<Packed> {
        let isa = Isa::detect()?;
        let o_tile = isa.channels();
        let taps = kh * kw;
        let groups = co.div_ceil(o_tile);
        let mut data = vec![0.0f32; groups * c * taps * o_tile];
        data.par_chunks_mut(c * taps * o_tile)
            .enumerate()
            .for_each(|(g, block)| {
                for ci in 0..c {
                    for i in 0..kh {
                        for j in 0..kw {
                            let at = (ci * taps + i * kw + j) * o_tile;
                            for o in 0..o_tile.min(co - g * o_tile) {
                                block[at + o] = filter(g * o_tile + o, ci, i, j);
                            }
                        }
                    }
                }
            });
        Some(Packed { data, isa })
    }
}

/// `*mut f32` shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: every task writes a set of elements no other task writes (see `conv`).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The element at `index` (a method, so that closures capture the whole `Out`).
    fn at(self, index: usize) -> *mut f32 {
        self.0.wrapping_add(index)
    }
}

/// `y[n, co, oh, ow]` of `x[n, c, h, w]` with the packed filters.
pub(super) fn conv(x: &[f32], filters: &Packed, d: Direct) -> Vec<f32> {
    let wq = d.wq();
    assert!(
        d.sh > 0 && d.sw > 0 && d.kh > 0 && d.kw > 0,
        "direct conv: empty filter or zero stride"
    );
    assert_eq!(x.len(), d.n * d.c * d.h * d.w, "direct conv: input size");
    let isa = filters.isa;
    let (o_tile, q_tile) = (isa.channels(), isa.positions());
    let k = d.c * d.kh * d.kw;
    let groups = d.co.div_ceil(o_tile);
    assert_eq!(
        filters.data.len(),
        groups * k * o_tile,
        "direct conv: packed filters"
    );
    // Grid positions computed, rounded up to whole tiles; each phase plane is long enough for
    // the last tile's furthest tap.
    let (grid, plane) = (d.grid(q_tile), d.plane(q_tile));
    let image_len = d.c * d.phases() * plane;
    let mut xp = vec![0.0f32; d.n * image_len];
    if d.h * d.w > 0 {
        xp.par_chunks_mut(d.phases() * plane)
            .zip(x.par_chunks(d.h * d.w))
            .for_each(|(dst, src)| {
                let mut planes = dst.chunks_mut(plane);
                d.write_phases(src, |_| planes.next().expect("one plane per phase"));
            });
    }
    let rows = d.rows(plane);

    // Tasks: (image, block of tiles, block of channel groups), enough to share out even a
    // batch of one at 8 x 8.
    let tiles = grid / q_tile;
    let threads = rayon::current_num_threads().max(1);
    let tiles_per_block = 4.min(tiles);
    let blocks = tiles.div_ceil(tiles_per_block);
    let group_splits = (4 * threads).div_ceil(d.n * blocks).clamp(1, groups);
    let groups_per_split = groups.div_ceil(group_splits);
    let out_len = d.n * d.co * d.oh * d.ow;
    let mut y: Vec<f32> = Vec::with_capacity(out_len);
    let out = Out(y.as_mut_ptr());
    let tasks = d.n * blocks * group_splits;
    (0..tasks).into_par_iter().for_each(|task| {
        let split = task % group_splits;
        let block = (task / group_splits) % blocks;
        let img = task / (group_splits * blocks);
        let image = &xp[img * image_len..(img + 1) * image_len];
        let mut tile = vec![0.0f32; o_tile * q_tile];
        let g_end = ((split + 1) * groups_per_split).min(groups);
        for g in split * groups_per_split..g_end {
            let w = &filters.data[g * k * o_tile..(g + 1) * k * o_tile];
            let t_end = ((block + 1) * tiles_per_block).min(tiles);
            for t in block * tiles_per_block..t_end {
                let q0 = t * q_tile;
                // SAFETY: filter row `r` reads `q_tile` floats of `image` from
                // `q0 + rows[r]`, inside its phase plane (`q0 + q_tile <= grid` and
                // `grid + reach <= plane`); the kernel reads `k * o_tile` filter values and
                // writes `o_tile * q_tile` floats of `tile`.
                unsafe {
                    microkernel(
                        isa,
                        image[q0..].as_ptr(),
                        &rows,
                        w.as_ptr(),
                        tile.as_mut_ptr(),
                    )
                };
                for o in 0..o_tile.min(d.co - g * o_tile) {
                    let co = g * o_tile + o;
                    let src = &tile[o * q_tile..(o + 1) * q_tile];
                    let dst = (img * d.co + co) * d.oh * d.ow;
                    // Copy the valid part of each grid row the tile touches.
                    let mut q = q0;
                    while q < q0 + q_tile {
                        let (oy, ox) = (q / wq, q % wq);
                        if oy >= d.oh {
                            break;
                        }
                        let row_end = ((oy + 1) * wq).min(q0 + q_tile);
                        let valid_end = (oy * wq + d.ow).min(row_end);
                        if q < valid_end {
                            let len = valid_end - q;
                            // SAFETY: (img, co, oy, ox..ox + len) lies inside the output and
                            // belongs to this task alone: tasks differ in image, tile or
                            // channel group.
                            unsafe {
                                std::ptr::copy_nonoverlapping(
                                    src[q - q0..].as_ptr(),
                                    out.at(dst + oy * d.ow + ox),
                                    len,
                                )
                            };
                        }
                        q = row_end;
                    }
                }
            }
        }
    });
    // SAFETY: the tiles cover every grid position of every row `oy < oh`, so every
    // (image, channel, oy, ox < ow) was written above.
    unsafe { y.set_len(out_len) };
    y
}

std::thread_local! {
    /// A thread's partial sums for one block of the weight gradient, kept between calls.
    static GRAD_SUMS: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Positions per chunk of the weight gradient's reduction: the chunk's output-gradient rows
/// for one register tile stay in L1, its input planes in L2.
const GRAD_CHUNK: usize = 1024;

/// Weight gradient `[co, c, kh, kw]` of the convolution `d` from its input `x` and output
/// gradient `dy`: `dW[o][ci][i][j] = sum over images and grid positions q of
/// dy[o][q] * phase(ci, i % sh, j % sw)[q + (i / sh) * wq + j / sw]`, with `dy` laid on the
/// grid (zero in the dropped columns), so every product is two contiguous runs. A register tile holds `O`
/// channels x `T` filter rows as vectors of partial sums over positions; tasks own disjoint
/// blocks of channels x filter rows, so no two threads add into the same sum. `None` when the
/// CPU has no microkernel.
pub(super) fn weight_grad(x: &[f32], dy: &[f32], d: Direct) -> Option<Vec<f32>> {
    let isa = Isa::detect()?;
    let lanes = isa.lanes();
    let (o_tile, t_tile) = isa.grad_tile();
    let (wq, taps) = (d.wq(), d.kh * d.kw);
    let k = d.c * taps;
    assert_eq!(
        x.len(),
        d.n * d.c * d.h * d.w,
        "direct weight grad: input size"
    );
    assert_eq!(
        dy.len(),
        d.n * d.co * d.oh * d.ow,
        "direct weight grad: output gradient size"
    );
    // Channel-major: each phase plane (`hq * wq`) of a channel, for every image back to back,
    // so one run of positions spans the batch. The output gradient goes on the same grid,
    // zero at the dropped columns and rows: positions there multiply whatever the taps read
    // (the next image's plane of the same phase, or the zero slack) by 0.
    let plane = d.hq() * wq;
    let len = (d.n * plane).next_multiple_of(lanes);
    let stride = (len + d.reach()).next_multiple_of(16);
    let mut xq = vec![0.0f32; d.c * d.phases() * stride];
    if d.h * d.w > 0 {
        xq.par_chunks_mut(d.phases() * stride)
            .enumerate()
            .for_each(|(ci, dst)| {
                for img in 0..d.n {
                    let src = &x[(img * d.c + ci) * d.h * d.w..][..d.h * d.w];
                    let mut blocks = dst.chunks_mut(stride);
                    d.write_phases(src, |_| {
                        let block = blocks.next().expect("one block per phase");
                        &mut block[img * plane..(img + 1) * plane]
                    });
                }
            });
    }
    // Channels rounded up to whole tiles (zero rows).
    let co_pad = d.co.next_multiple_of(o_tile);
    let mut dyg = vec![0.0f32; co_pad * len];
    dyg.par_chunks_mut(len)
        .take(d.co)
        .enumerate()
        .for_each(|(o, dst)| {
            for img in 0..d.n {
                let src = &dy[(img * d.co + o) * d.oh * d.ow..][..d.oh * d.ow];
                for (r, row) in src.chunks(d.ow.max(1)).enumerate() {
                    let at = img * plane + r * wq;
                    dst[at..at + d.ow].copy_from_slice(row);
                }
            }
        });
    // Rows past `k` (filling the last tile) read row 0 and are dropped.
    let k_pad = k.next_multiple_of(t_tile);
    let mut rows = d.rows(stride);
    rows.resize(k_pad, 0);

    // Blocks of channel tiles x row tiles, as many as keep every thread busy.
    let co_tiles = co_pad / o_tile;
    let k_tiles = k_pad / t_tile;
    let co_block = co_tiles.min(64 / o_tile).max(1);
    let co_blocks = co_tiles.div_ceil(co_block);
    let want = 4 * rayon::current_num_threads().max(1);
    let k_block = k_tiles
        .div_ceil(want.div_ceil(co_blocks))
        .clamp(1, 96 / t_tile);
    let k_blocks = k_tiles.div_ceil(k_block);
    let sums = o_tile * t_tile * lanes;
    let mut dw: Vec<f32> = Vec::with_capacity(d.co * k);
    let out = Out(dw.as_mut_ptr());
    (0..co_blocks * k_blocks).into_par_iter().for_each(|task| {
        let (cb, kb) = (task / k_blocks, task % k_blocks);
        let cts = cb * co_block..((cb + 1) * co_block).min(co_tiles);
        let kts = kb * k_block..((kb + 1) * k_block).min(k_tiles);
        // The block's partial sums (up to 300 KiB), kept per thread: a fresh buffer of that
        // size is an mmap, and unmapping it from a threaded process costs a TLB shootdown.
        let mut acc = GRAD_SUMS.take();
        acc.clear();
        acc.resize(cts.len() * kts.len() * sums, 0.0);
        for q0 in (0..len).step_by(GRAD_CHUNK) {
            let steps = GRAD_CHUNK.min(len - q0) / lanes;
            for (a, ct) in cts.clone().enumerate() {
                let g = &dyg[ct * o_tile * len + q0..];
                for (b, kt) in kts.clone().enumerate() {
                    let tile = &mut acc[(a * kts.len() + b) * sums..][..sums];
                    // SAFETY: `g` holds `o_tile` rows of `len` floats from `q0` (rows
                    // `ct * o_tile..`, all inside `co_pad`), each read for
                    // `steps * lanes <= len - q0` floats; filter row `r` reads `xq` from
                    // `q0 + rows[r]` for as many floats, which ends within its phase block
                    // (`stride >= len + reach`); `tile` has `sums` floats.
                    unsafe {
                        grad_microkernel(
                            isa,
                            g.as_ptr(),
                            len,
                            xq[q0..].as_ptr(),
                            &rows[kt * t_tile..(kt + 1) * t_tile],
                            steps,
                            tile.as_mut_ptr(),
                        )
                    };
                }
            }
        }
        // Sum the lanes into dW[o][r], r = ci * taps + tap.
        for (a, ct) in cts.clone().enumerate() {
            for (b, kt) in kts.clone().enumerate() {
                let tile = &acc[(a * kts.len() + b) * sums..][..sums];
                for o in 0..o_tile {
                    let co = ct * o_tile + o;
                    for t in 0..t_tile {
                        let r = kt * t_tile + t;
                        if co < d.co && r < k {
                            let v = &tile[(o * t_tile + t) * lanes..][..lanes];
                            let sum = v.iter().map(|&v| v as f64).sum::<f64>() as f32;
                            // SAFETY: (co, r) is inside dW and belongs to this task's block
                            // of channel tiles x row tiles alone.
                            unsafe { out.at(co * k + r).write(sum) };
                        }
                    }
                }
            }
        }
        GRAD_SUMS.set(acc);
    });
    // SAFETY: the blocks cover every channel tile and row tile, so every (o < co, r < k)
    // was written above.
    unsafe { dw.set_len(d.co * k) };
    Some(dw)
}

/// `tile[o][t][lane] += sum over steps s of dy[o][s * lanes + lane] *
/// x[rows[t] + s * lanes + lane]`, for the weight gradient.
///
/// # Safety
/// `dy` must be readable for `(channels - 1) * dy_stride + steps * lanes` floats, `x` for
/// `max(rows) + steps * lanes`, `tile` read- and writable for the tile's sums, `rows` must hold
/// the tile's filter-row count, and the CPU must have the features of `isa`.
unsafe fn grad_microkernel(
    isa: Isa,
    dy: *const f32,
    dy_stride: usize,
    x: *const f32,
    rows: &[usize],
    steps: usize,
    tile: *mut f32,
) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: forwarded from the caller.
    unsafe {
        match isa {
            Isa::Avx512 => x86::grad_avx512(dy, dy_stride, x, rows, steps, tile),
            Isa::Avx2 => x86::grad_avx2(dy, dy_stride, x, rows, steps, tile),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, dy, dy_stride, x, rows, steps, tile);
        unreachable!("no direct-convolution microkernel on this architecture");
    }
}

/// One register tile: `tile[o][q] = sum over filter rows r of x[rows[r] + q] * w[r][o]`, for
/// `O` channels and the tile's positions.
///
/// # Safety
/// `x` must be readable for `max(rows) + positions` floats, `w` for `rows.len() * channels`,
/// `tile` writable for `channels * positions`, and the CPU must have the features of `isa`.
unsafe fn microkernel(isa: Isa, x: *const f32, rows: &[usize], w: *const f32, tile: *mut f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: forwarded from the caller.
    unsafe {
        match isa {
            Isa::Avx512 => x86::tile_avx512(x, rows, w, tile),
            Isa::Avx2 => x86::tile_avx2(x, rows, w, tile),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, x, rows, w, tile);
        unreachable!("no direct-convolution microkernel on this architecture");
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Defines a register-tile kernel: `$o` channels x `$r` vectors of `$lanes` positions.
    macro_rules! tile_kernel {
        ($name:ident, $features:literal, $v:ty, $lanes:literal, $o:literal, $r:literal,
         $zero:ident, $load:ident, $splat:ident, $fma:ident, $store:ident) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name(
                x: *const f32,
                rows: &[usize],
                w: *const f32,
                tile: *mut f32,
            ) {
                // SAFETY (whole body): the caller's contract on `x`, `rows`, `w` and `tile`.
                unsafe {
                    let mut acc: [[$v; $r]; $o] = [[$zero(); $r]; $o];
                    let mut wp = w;
                    for &off in rows {
                        let xt = x.add(off);
                        let mut xv: [$v; $r] = [$zero(); $r];
                        for r in 0..$r {
                            xv[r] = $load(xt.add(r * $lanes));
                        }
                        for o in 0..$o {
                            let b = $splat(*wp.add(o));
                            for r in 0..$r {
                                acc[o][r] = $fma(xv[r], b, acc[o][r]);
                            }
                        }
                        wp = wp.add($o);
                    }
                    for o in 0..$o {
                        for r in 0..$r {
                            $store(tile.add((o * $r + r) * $lanes), acc[o][r]);
                        }
                    }
                }
            }
        };
    }

    /// Defines a weight-gradient kernel: `$o` channels x `$t` filter rows of partial sums.
    macro_rules! grad_kernel {
        ($name:ident, $features:literal, $v:ty, $lanes:literal, $o:literal, $t:literal,
         $zero:ident, $load:ident, $fma:ident, $store:ident) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name(
                dy: *const f32,
                dy_stride: usize,
                x: *const f32,
                rows: &[usize],
                steps: usize,
                tile: *mut f32,
            ) {
                assert_eq!(rows.len(), $t, "grad kernel: filter rows per tile");
                // SAFETY (whole body): the caller's contract on `dy`, `x`, `rows` and `tile`.
                unsafe {
                    let mut acc: [[$v; $t]; $o] = [[$zero(); $t]; $o];
                    for o in 0..$o {
                        for t in 0..$t {
                            acc[o][t] = $load(tile.add((o * $t + t) * $lanes));
                        }
                    }
                    let xr: [*const f32; $t] = std::array::from_fn(|t| x.add(rows[t]));
                    for s in 0..steps {
                        let q = s * $lanes;
                        let mut g: [$v; $o] = [$zero(); $o];
                        for o in 0..$o {
                            g[o] = $load(dy.add(o * dy_stride + q));
                        }
                        for t in 0..$t {
                            let xv = $load(xr[t].add(q));
                            for o in 0..$o {
                                acc[o][t] = $fma(g[o], xv, acc[o][t]);
                            }
                        }
                    }
                    for o in 0..$o {
                        for t in 0..$t {
                            $store(tile.add((o * $t + t) * $lanes), acc[o][t]);
                        }
                    }
                }
            }
        };
    }

    grad_kernel!(
        grad_avx512,
        "avx512f",
        __m512,
        16,
        4,
        6,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_fmadd_ps,
        _mm512_storeu_ps
    );
    grad_kernel!(
        grad_avx2,
        "avx2,fma",
        __m256,
        8,
        2,
        6,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_fmadd_ps,
        _mm256_storeu_ps
    );

    tile_kernel!(
        tile_avx512,
        "avx512f",
        __m512,
        16,
        8,
        3,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_storeu_ps
    );
    tile_kernel!(
        tile_avx2,
        "avx2,fma",
        __m256,
        8,
        4,
        3,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_storeu_ps
    );
}
