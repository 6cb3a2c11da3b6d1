//! Stride-1 dense convolution computed directly from zero-padded planes, with no column
//! matrix: the forward pass, and the input gradient (the same convolution of the output
//! gradient with the filters flipped and transposed).
//!
//! Each input plane is copied once into a zero-padded plane of width `wp = ow + kw - 1`. The
//! output is computed on that wider grid: output position `q = oy * wp + ox` reads, for filter
//! tap `(i, j)`, padded position `q + i * wp + j`, so every tap is one contiguous run of
//! positions and a vector of consecutive outputs is one unaligned load per tap. The `kw - 1`
//! columns past `ow` in each row are computed and dropped (3 % at 64 columns, 20 % at 8).
//!
//! The microkernel keeps `O` output channels times `R` vectors of positions in registers for
//! the whole reduction over input channels and taps (AVX-512: 8 x 3 x 16 lanes, AVX2 + FMA:
//! 4 x 3 x 8), reading per step `R` input vectors and `O` broadcast filter values (packed
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
}

/// A stride-1 convolution on the padded grid.
#[derive(Debug, Clone, Copy)]
pub(super) struct Direct {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub co: usize,
    pub kh: usize,
    pub kw: usize,
    /// Zero padding before (top, left); the padding after is whatever makes the output
    /// `oh x ow`.
    pub pt: usize,
    pub pl: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Direct {
    /// Padded width (and row length of the computed grid).
    fn wp(&self) -> usize {
        self.ow + self.kw - 1
    }

    /// Padded height.
    fn hp(&self) -> usize {
        self.oh + self.kh - 1
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
    let (wp, hp) = (d.wp(), d.hp());
    assert!(
        d.pt + d.h <= hp && d.pl + d.w <= wp,
        "direct conv: padding {:?} leaves no room for the input",
        (d.pt, d.pl)
    );
    assert_eq!(x.len(), d.n * d.c * d.h * d.w, "direct conv: input size");
    let isa = filters.isa;
    let (o_tile, q_tile) = (isa.channels(), isa.positions());
    let taps = d.kh * d.kw;
    let groups = d.co.div_ceil(o_tile);
    assert_eq!(
        filters.data.len(),
        groups * d.c * taps * o_tile,
        "direct conv: packed filters"
    );
    // Grid positions computed, rounded up to whole tiles; the padded plane is long enough for
    // the last tile's furthest tap.
    let grid = (d.oh * wp).div_ceil(q_tile) * q_tile;
    let plane = (grid + (d.kh - 1) * wp + d.kw - 1)
        .max(hp * wp)
        .next_multiple_of(16);
    let xp = pad(x, &d, plane);
    let offsets: Vec<usize> = (0..taps).map(|t| (t / d.kw) * wp + t % d.kw).collect();

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
        let image = &xp[img * d.c * plane..(img + 1) * d.c * plane];
        let mut tile = vec![0.0f32; o_tile * q_tile];
        let g_end = ((split + 1) * groups_per_split).min(groups);
        for g in split * groups_per_split..g_end {
            let w = &filters.data[g * d.c * taps * o_tile..(g + 1) * d.c * taps * o_tile];
            let t_end = ((block + 1) * tiles_per_block).min(tiles);
            for t in block * tiles_per_block..t_end {
                let q0 = t * q_tile;
                // SAFETY: the kernel reads `c` planes of `plane` floats from `image[q0..]`
                // at offsets below `plane - q0 - q_tile` (see `plane`), `c * taps * o_tile`
                // filter values and writes `o_tile * q_tile` floats of `tile`.
                unsafe {
                    microkernel(
                        isa,
                        image[q0..].as_ptr(),
                        plane,
                        &offsets,
                        d.c,
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
                        let (oy, ox) = (q / wp, q % wp);
                        if oy >= d.oh {
                            break;
                        }
                        let row_end = ((oy + 1) * wp).min(q0 + q_tile);
                        let valid_end = (oy * wp + d.ow).min(row_end);
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

/// `x` copied into zero-padded planes of `plane` floats, row length `wp`.
fn pad(x: &[f32], d: &Direct, plane: usize) -> Vec<f32> {
    let wp = d.wp();
    let mut xp = vec![0.0f32; d.n * d.c * plane];
    xp.par_chunks_mut(plane)
        .zip(x.par_chunks(d.h * d.w))
        .for_each(|(dst, src)| {
            for (r, row) in src.chunks(d.w).enumerate() {
                let at = (d.pt + r) * wp + d.pl;
                dst[at..at + d.w].copy_from_slice(row);
            }
        });
    xp
}

/// One register tile: `tile[o][q] = sum over ci, taps of x[ci][q + offsets[t]] * w[ci][t][o]`
/// for `O` channels and the tile's positions.
///
/// # Safety
/// `x` must be readable for `(c - 1) * plane + max(offsets) + positions` floats, `w` for
/// `c * offsets.len() * channels`, `tile` writable for `channels * positions`, and the CPU
/// must have the features of `isa`.
unsafe fn microkernel(
    isa: Isa,
    x: *const f32,
    plane: usize,
    offsets: &[usize],
    c: usize,
    w: *const f32,
    tile: *mut f32,
) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: forwarded from the caller.
    unsafe {
        match isa {
            Isa::Avx512 => x86::tile_avx512(x, plane, offsets, c, w, tile),
            Isa::Avx2 => x86::tile_avx2(x, plane, offsets, c, w, tile),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, x, plane, offsets, c, w, tile);
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
                plane: usize,
                offsets: &[usize],
                c: usize,
                w: *const f32,
                tile: *mut f32,
            ) {
                // SAFETY (whole body): the caller's contract on `x`, `w` and `tile`.
                unsafe {
                    let mut acc: [[$v; $r]; $o] = [[$zero(); $r]; $o];
                    let mut wp = w;
                    for ci in 0..c {
                        let xc = x.add(ci * plane);
                        for &off in offsets {
                            let xt = xc.add(off);
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
