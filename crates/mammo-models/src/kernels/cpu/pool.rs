//! Max pooling (dilation 1, padding never selected, first maximum of a window wins).

use rayon::prelude::*;

use super::*;

// One plane (`xp`: phase-split, [`split_phases`]): the maximum of each window in `y` and,
// with `with_arg`, its flat index in the plane in `arg`. Branch-free selects over contiguous
// runs, so the loops vectorise: strict `>` keeps the first maximum in window order (PyTorch,
// burn), and a NaN is taken and then kept.
multiversion! {
    fn max_pool_plane(xp: &[f32], y: &mut [f32], arg: &mut [u32], with_arg: bool, g: Window) {
        let taps = g.column_taps();
        y.fill(f32::NEG_INFINITY);
        for o in 0..g.oh {
            let yrow = &mut y[o * g.ow..(o + 1) * g.ow];
            for i in 0..g.kh {
                let Some(r) = g.in_row(o, i) else { continue };
                for &(lo, hi, phase, off) in &taps {
                    if lo == hi {
                        continue;
                    }
                    let first = (lo as isize + off) as usize;
                    let src = &g.phase_row(xp, r, phase)[first..first + hi - lo];
                    if with_arg {
                        let arow = &mut arg[o * g.ow + lo..o * g.ow + hi];
                        // Input column of output column `lo + t`: `(first + t) * sw + phase`.
                        let base = (r * g.w + first * g.sw + phase) as u32;
                        let step = g.sw as u32;
                        for (t, ((m, a), &v)) in
                            yrow[lo..hi].iter_mut().zip(arow.iter_mut()).zip(src).enumerate()
                        {
                            let take = v > *m || (v.is_nan() && !m.is_nan());
                            *a = if take { base + t as u32 * step } else { *a };
                            *m = if take { v } else { *m };
                        }
                    } else {
                        for (m, &v) in yrow[lo..hi].iter_mut().zip(src) {
                            *m = if v > *m || v.is_nan() { v } else { *m };
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
    let plane_x = |p: usize| &x[p * plane_in..(p + 1) * plane_in];
    if with_indices {
        y.par_chunks_mut(plane_out)
            .zip(idx.par_chunks_mut(plane_out))
            .enumerate()
            .for_each_init(Vec::new, |buf, (p, (y, a))| {
                max_pool_plane(split_phases(plane_x(p), &g, buf), y, a, true, g)
            });
    } else {
        y.par_chunks_mut(plane_out)
            .enumerate()
            .for_each_init(Vec::new, |buf, (p, y)| {
                max_pool_plane(split_phases(plane_x(p), &g, buf), y, &mut [], false, g)
            });
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
