//! Max pooling (dilation 1, padding never selected, first maximum of a window wins).

use rayon::prelude::*;

use super::*;

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
