//! SiLU and sigmoid, forward and backward, elementwise over contiguous `f32` slices.

use rayon::prelude::*;

use super::*;

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
