//! Fused CPU kernels for the layers where burn's flex backend spends most of its time, added
//! through burn's backend-extension mechanism (`#[backend_extension]`).
//!
//! Measured with `perf` on the model bench (`bench/README.md`): on flex, `sigmoid` is a
//! scalar, single-threaded `expf` loop (a third of EfficientNet-B0's forward); batch norm is
//! composed from generic tensor operations (transposed copies for the statistics, four
//! broadcast passes to normalise, a dozen more in the backward); depthwise convolutions run
//! as grouped im2col GEMMs with one row per group (40 % of an EfficientNet-B0 train step);
//! max pooling tracks indices in scalar loops even in inference. These kernels replace them
//! on flex:
//!
//! * [`silu`] / [`sigmoid`]: branch-free vectorised `exp`, parallel, with a one-pass backward.
//! * [`norm_act`]: batch norm followed by an activation. In inference it is one pass with
//!   the statistics folded into a per-channel scale and shift (`act(x * a + b)`); in training
//!   (autodiff device, layer not frozen) the statistics take one pass, normalising another,
//!   and the backward two, with the running statistics updated as burn's `BatchNorm` does.
//! * [`conv2d`]: depthwise convolutions direct, forward and both gradients one pass per
//!   plane, from zero-padded planes (strided ones with rows split into column phases, so
//!   every tap is contiguous) in register blocks of 16 outputs or per-tap partial sums.
//!   Dense ones direct from zero-padded planes (register tiles over every filter row, no
//!   column matrix) where that pays, else im2col + GEMM.
//! * [`max_pool2d`]: a window scan, with the argmax kept only when a backward needs it.
//! * The Adam / AdamW step behind [`crate::optim`]: one pass per parameter, in place, with
//!   burn's arithmetic.
//!
//! An inference batch norm on an autodiff device (Grad-CAM, a frozen feature network) stays
//! differentiable: burn's composed batch norm, then the activation. Every other device (CUDA)
//! and dtype (`f16`) takes burn's own operations, as does everything when
//! [`set_enabled`]`(false)` is called or `MAMMO_KERNELS=burn` is set; the tests compare the
//! two paths.

mod autodiff;
pub mod cpu;

use std::sync::atomic::{AtomicU8, Ordering};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ActivationOps, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, DispatchDevice, Flex, Scalar, backend_extension,
};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::{DType, Tensor, TensorData};

pub use cpu::Act;

use autodiff::MaxPoolState;

use crate::layers::tf_same_padding;

/// 0: not decided yet (read `MAMMO_KERNELS`), 1: on, 2: off.
static ENABLED: AtomicU8 = AtomicU8::new(0);

/// Turn the fused kernels on or off for the whole process (default: on, unless the
/// environment variable `MAMMO_KERNELS` is `burn`). Off, every layer runs burn's own ops.
pub fn set_enabled(on: bool) {
    ENABLED.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

/// Whether the fused kernels are used on flex devices.
pub fn enabled() -> bool {
    match ENABLED.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let on = std::env::var("MAMMO_KERNELS")
                .map(|v| v != "burn")
                .unwrap_or(true);
            set_enabled(on);
            on
        }
    }
}

/// Whether `x` lives on flex (directly or under autodiff) as `f32`, with the kernels enabled.
fn fused<const D: usize>(x: &Tensor<D>) -> bool {
    enabled()
        && x.dtype() == DType::F32
        && matches!(x.device().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// The operations, per backend. Only flex (and autodiff over flex) implement them; the
/// wrappers below never route another device here.
#[backend_extension(Flex, Autodiff)]
pub trait MammoKernels: Backend {
    /// `x * sigmoid(x)`.
    fn silu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `sigmoid(x)`.
    fn sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Inference batch norm on `[N, C, ...]` with the given statistics, then `act`
    /// (an [`Act::code`]).
    fn norm_act_infer(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        eps: f64,
        act: u8,
    ) -> FloatTensor<Self>;
    /// Depthwise convolution (`groups == channels`, dilation 1, no bias) of `x` `[N, C, H, W]`
    /// with `weight` `[C, 1, kh, kw]`, stride `(sh, sw)` and zero padding top, left, bottom,
    /// right.
    #[allow(clippy::too_many_arguments)]
    fn depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        sh: usize,
        sw: usize,
        pt: usize,
        pl: usize,
        pb: usize,
        pr: usize,
    ) -> FloatTensor<Self>;
    /// Dense convolution (`groups == 1`, dilation 1, no bias) of `x` `[N, C, H, W]` with
    /// `weight` `[C_out, C, kh, kw]`, stride `(sh, sw)` and zero padding top, left, bottom,
    /// right.
    #[allow(clippy::too_many_arguments)]
    fn dense_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        sh: usize,
        sw: usize,
        pt: usize,
        pl: usize,
        pb: usize,
        pr: usize,
    ) -> FloatTensor<Self>;
    /// Max pool (dilation 1, no ceil mode) of `x` `[N, C, H, W]` with a `kh x kw` window,
    /// stride `(sh, sw)` and padding top, left, bottom, right that is never selected.
    #[allow(clippy::too_many_arguments)]
    fn max_pool2d(
        x: FloatTensor<Self>,
        kh: usize,
        kw: usize,
        sh: usize,
        sw: usize,
        pt: usize,
        pl: usize,
        pb: usize,
        pr: usize,
    ) -> FloatTensor<Self>;
    /// Training batch norm on `[N, C, ...]` with the batch's statistics, then `act` (an
    /// [`Act::code`]): the output, the batch mean and the biased batch variance (both `[C]`,
    /// not differentiated).
    fn norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        act: u8,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// One Adam / AdamW step of `param` with `grad` and the moments: the new parameter and
    /// moments (not differentiated), written over the inputs where they are not shared.
    fn adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: cpu::AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

// ---------------------------------------------------------------------------------------
// flex
// ---------------------------------------------------------------------------------------

fn contiguous(x: &FlexTensor) -> FlexTensor {
    x.to_contiguous()
}

fn values(x: &FlexTensor) -> &[f32] {
    let n = x.layout().num_elements();
    &x.storage::<f32>()[x.layout().start_offset()..x.layout().start_offset() + n]
}

/// The values of `x` to overwrite in place: `Some` when `x` is `f32`, contiguous and holds
/// its storage alone (the input of an inference layer, whose output is not kept elsewhere).
fn unique_values(x: &mut FlexTensor) -> Option<&mut [f32]> {
    if x.dtype() != DType::F32 || !x.is_contiguous() {
        return None;
    }
    let (start, n) = (x.layout().start_offset(), x.layout().num_elements());
    x.try_storage_mut::<f32>()?.get_mut(start..start + n)
}

/// `x` itself when its values can be overwritten in place ([`unique_values`]), else a
/// contiguous copy that can.
fn owned(mut x: FlexTensor) -> FlexTensor {
    if unique_values(&mut x).is_some() {
        return x;
    }
    let x = contiguous(&x);
    flex_tensor(values(&x).to_vec(), x.layout().shape().to_vec())
}

fn flex_adam_step(
    param: FlexTensor,
    grad: &FlexTensor,
    moment_1: FlexTensor,
    moment_2: FlexTensor,
    step: cpu::AdamStep,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let grad = contiguous(grad);
    let (mut p, mut m, mut v) = (owned(param), owned(moment_1), owned(moment_2));
    cpu::adam_update(
        unique_values(&mut p).expect("owned: unique"),
        values(&grad),
        unique_values(&mut m).expect("owned: unique"),
        unique_values(&mut v).expect("owned: unique"),
        &step,
    );
    (p, m, v)
}

fn flex_tensor(data: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

/// `[N, C, spatial]` of a tensor of rank >= 2.
fn nc_hw(x: &FlexTensor) -> (usize, usize, usize) {
    let dims = x.layout().shape().to_vec();
    assert!(
        dims.len() >= 2,
        "batch norm: input of rank {} (want [N, C, ...])",
        dims.len()
    );
    (dims[0], dims[1], dims[2..].iter().product::<usize>().max(1))
}

fn unary(x: FlexTensor, f: fn(&[f32], &mut [f32])) -> FlexTensor {
    let x = contiguous(&x);
    let mut y = vec![0.0f32; x.layout().num_elements()];
    f(values(&x), &mut y);
    flex_tensor(y, x.layout().shape().to_vec())
}

fn flex_norm_train(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    eps: f64,
    act: Act,
) -> (FlexTensor, Vec<f32>, Vec<f32>, Vec<f32>) {
    let x = contiguous(x);
    let (n, c, hw) = nc_hw(&x);
    let (mean, var) = cpu::channel_stats(values(&x), n, c, hw);
    let (scale, shift, inv_std) = cpu::fold_stats(
        values(&contiguous(gamma)),
        values(&contiguous(beta)),
        &mean,
        &var,
        eps,
    );
    let mut y = vec![0.0f32; x.layout().num_elements()];
    cpu::affine_act(values(&x), &mut y, &scale, &shift, hw, act);
    (
        flex_tensor(y, x.layout().shape().to_vec()),
        mean,
        var,
        inv_std,
    )
}

/// `(n, c, geometry)` of a depthwise convolution.
fn dw_geom(
    x: &FlexTensor,
    w: &FlexTensor,
    stride: [usize; 2],
    pad: [usize; 4],
) -> (usize, usize, cpu::Window) {
    let xd = x.layout().shape().to_vec();
    let wd = w.layout().shape().to_vec();
    assert!(
        xd.len() == 4 && wd.len() == 4 && wd[0] == xd[1] && wd[1] == 1,
        "depthwise conv: input {xd:?} and weight {wd:?} (want [N, C, H, W] and [C, 1, kh, kw])"
    );
    let g = cpu::Window::new([xd[2], xd[3]], [wd[2], wd[3]], stride, pad)
        .expect("depthwise conv: kernel larger than the padded input");
    (xd[0], xd[1], g)
}

fn flex_depthwise(
    x: &FlexTensor,
    w: &FlexTensor,
    stride: [usize; 2],
    pad: [usize; 4],
) -> FlexTensor {
    let (x, w) = (contiguous(x), contiguous(w));
    let (n, c, g) = dw_geom(&x, &w, stride, pad);
    let y = cpu::depthwise_forward(values(&x), values(&w), n, c, g);
    flex_tensor(y, vec![n, c, g.oh, g.ow])
}

fn dense_geom(x: &FlexTensor, w: &FlexTensor, stride: [usize; 2], pad: [usize; 4]) -> cpu::Dense {
    let xd = x.layout().shape().to_vec();
    let wd = w.layout().shape().to_vec();
    assert!(
        xd.len() == 4 && wd.len() == 4 && wd[1] == xd[1],
        "dense conv: input {xd:?} and weight {wd:?} (want [N, C, H, W] and [C_out, C, kh, kw])"
    );
    let window = cpu::Window::new([xd[2], xd[3]], [wd[2], wd[3]], stride, pad)
        .expect("dense conv: kernel larger than the padded input");
    cpu::Dense {
        n: xd[0],
        c: xd[1],
        co: wd[0],
        window,
    }
}

fn flex_dense(x: &FlexTensor, w: &FlexTensor, stride: [usize; 2], pad: [usize; 4]) -> FlexTensor {
    let (x, w) = (contiguous(x), contiguous(w));
    let d = dense_geom(&x, &w, stride, pad);
    let y = cpu::dense_forward(values(&x), values(&w), d);
    flex_tensor(y, vec![d.n, d.co, d.window.oh, d.window.ow])
}

/// `(planes, window)` of a max pool.
fn pool_window(
    x: &FlexTensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 4],
) -> (usize, cpu::Window) {
    let xd = x.layout().shape().to_vec();
    assert!(xd.len() == 4, "max pool: input {xd:?} (want [N, C, H, W])");
    let g = cpu::Window::new([xd[2], xd[3]], kernel, stride, pad)
        .expect("max pool: window larger than the padded input");
    (xd[0] * xd[1], g)
}

/// The pooled tensor and its argmax state, if `with_indices`.
fn flex_max_pool(
    x: &FlexTensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 4],
    with_indices: bool,
) -> (FlexTensor, Option<MaxPoolState>) {
    let x = contiguous(x);
    let (planes, window) = pool_window(&x, kernel, stride, pad);
    let (y, idx) = cpu::max_pool_forward(values(&x), planes, window, with_indices);
    let dims = x.layout().shape().to_vec();
    let y = flex_tensor(y, vec![dims[0], dims[1], window.oh, window.ow]);
    let state = with_indices.then(|| MaxPoolState {
        input_dims: dims,
        planes,
        window,
        indices: std::sync::Arc::new(idx),
    });
    (y, state)
}

impl MammoKernels for Flex {
    fn silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        unary(x, cpu::silu)
    }

    fn sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        unary(x, cpu::sigmoid)
    }

    fn norm_act_infer(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        eps: f64,
        act: u8,
    ) -> FloatTensor<Self> {
        let (_, _, hw) = nc_hw(&x);
        let (scale, shift, _) = cpu::fold_stats(
            values(&contiguous(&gamma)),
            values(&contiguous(&beta)),
            values(&contiguous(&mean)),
            values(&contiguous(&var)),
            eps,
        );
        let act = Act::from_code(act);
        let mut x = x;
        if let Some(y) = unique_values(&mut x) {
            cpu::affine_act_in_place(y, &scale, &shift, hw, act);
            return x;
        }
        let x = contiguous(&x);
        let mut y = vec![0.0f32; x.layout().num_elements()];
        cpu::affine_act(values(&x), &mut y, &scale, &shift, hw, act);
        flex_tensor(y, x.layout().shape().to_vec())
    }

    fn depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        sh: usize,
        sw: usize,
        pt: usize,
        pl: usize,
        pb: usize,
        pr: usize,
    ) -> FloatTensor<Self> {
        flex_depthwise(&x, &weight, [sh, sw], [pt, pl, pb, pr])
    }

    fn dense_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        sh: usize,
        sw: usize,
        pt: usize,
        pl: usize,
        pb: usize,
        pr: usize,
    ) -> FloatTensor<Self> {
        flex_dense(&x, &weight, [sh, sw], [pt, pl, pb, pr])
    }

    fn max_pool2d(
        x: FloatTensor<Self>,
        kh: usize,
        kw: usize,
        sh: usize,
        sw: usize,
        pt: usize,
        pl: usize,
        pb: usize,
        pr: usize,
    ) -> FloatTensor<Self> {
        flex_max_pool(&x, [kh, kw], [sh, sw], [pt, pl, pb, pr], false).0
    }

    fn norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        act: u8,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let c = gamma.layout().num_elements();
        let (y, mean, var, _) = flex_norm_train(&x, &gamma, &beta, eps, Act::from_code(act));
        (y, flex_tensor(mean, vec![c]), flex_tensor(var, vec![c]))
    }

    fn adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: cpu::AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        flex_adam_step(param, &grad, moment_1, moment_2, step)
    }
}

// ---------------------------------------------------------------------------------------
// Tensor-level entry points
// ---------------------------------------------------------------------------------------

/// `x * sigmoid(x)` (SiLU / swish).
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !fused(&x) {
        return burn::tensor::activation::silu(x);
    }
    Tensor::from_dispatch(<Dispatch as MammoKernels>::silu(x.into_dispatch()))
}

/// `1 / (1 + exp(-x))`.
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !fused(&x) {
        return burn::tensor::activation::sigmoid(x);
    }
    Tensor::from_dispatch(<Dispatch as MammoKernels>::sigmoid(x.into_dispatch()))
}

/// Whether [`adam_step`] runs for these tensors: all `f32` on flex, the kernels enabled.
pub(crate) fn adam_fused<const D: usize>(tensors: &[&Tensor<D>]) -> bool {
    tensors.iter().all(|t| fused(t))
}

/// One Adam / AdamW step in one pass ([`cpu::adam_update`]): the new parameter and moments.
/// Only where [`adam_fused`] holds.
pub(crate) fn adam_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    step: cpu::AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (p, m, v) = <Dispatch as MammoKernels>::adam_step(
        param.into_dispatch(),
        grad.into_dispatch(),
        moment_1.into_dispatch(),
        moment_2.into_dispatch(),
        step,
    );
    (
        Tensor::from_dispatch(p),
        Tensor::from_dispatch(m),
        Tensor::from_dispatch(v),
    )
}

/// burn's `act(bn.forward(x))` (same train/inference choice, same running-statistics update),
/// fused on flex.
pub fn norm_act<const D: usize>(bn: &BatchNorm, x: Tensor<D>, act: Act) -> Tensor<D> {
    if !fused(&x) {
        return apply_act(bn.forward(x), act);
    }
    let device = x.device();
    let training = device.is_autodiff() && bn.training.is_enabled();
    let [channels] = bn.gamma.shape().dims();
    assert_eq!(
        x.dims()[1],
        channels,
        "batch norm over {channels} channels got {:?}",
        x.dims()
    );
    if !training {
        let out = <Dispatch as MammoKernels>::norm_act_infer(
            x.into_dispatch(),
            bn.gamma.val().into_dispatch(),
            bn.beta.val().into_dispatch(),
            bn.running_mean.value().to_device(&device).into_dispatch(),
            bn.running_var.value().to_device(&device).into_dispatch(),
            bn.epsilon,
            act.code(),
        );
        return Tensor::from_dispatch(out);
    }
    let (out, mean, var) = <Dispatch as MammoKernels>::norm_train(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon,
        act.code(),
    );
    let (mean, var) = (
        Tensor::<1>::from_dispatch(mean),
        Tensor::<1>::from_dispatch(var),
    );
    let m = bn.momentum;
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    bn.running_mean.update(
        running_mean
            .mul_scalar(1.0 - m)
            .add(mean.detach().mul_scalar(m))
            .detach(),
    );
    bn.running_var.update(
        running_var
            .mul_scalar(1.0 - m)
            .add(var.detach().mul_scalar(m))
            .detach(),
    );
    Tensor::from_dispatch(out)
}

/// `conv.forward(x)`, on flex through mammo's kernels where they apply (dilation 1):
///
/// * depthwise convolutions (`groups == channels_in == channels_out`): forward, input and
///   weight gradients each one pass per plane, where flex runs grouped im2col GEMMs with one
///   row per group and a transposed convolution;
/// * dense convolutions (`groups == 1`): filters larger than 1x1 computed directly from
///   zero-padded (phase) planes, forward and both gradients, where that pays; otherwise
///   im2col + one GEMM per group of images ([`cpu::dense_forward`]), where burn computes the
///   weight gradient as a convolution with one GEMM column per filter tap.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [c_out, c_per_group, kh, kw] = conv.weight.dims();
    let [_, c_in, h, w] = x.dims();
    let depthwise = conv.groups > 1 && conv.groups == c_in && c_out == c_in && c_per_group == 1;
    let dense = conv.groups == 1 && c_per_group == c_in;
    if !fused(&x) || !(depthwise || dense) || conv.dilation != [1, 1] {
        return conv.forward(x);
    }
    let [sh, sw] = conv.stride;
    let (pt, pl, pb, pr) = match conv.padding {
        PaddingConfig2d::Valid => (0, 0, 0, 0),
        PaddingConfig2d::Explicit(t, l, b, r) => (t, l, b, r),
        // burn's `Same`, as its conv computes it for stride >= 1 (TF SAME; pinned for the
        // tf_ models by tests/parity.rs).
        PaddingConfig2d::Same => {
            let (t, b) = tf_same_padding(h, kh, sh);
            let (l, r) = tf_same_padding(w, kw, sw);
            (t, l, b, r)
        }
    };
    if h + pt + pb < kh || w + pl + pr < kw {
        return conv.forward(x);
    }
    let op = if depthwise {
        <Dispatch as MammoKernels>::depthwise_conv2d
    } else {
        <Dispatch as MammoKernels>::dense_conv2d
    };
    let y = Tensor::<4>::from_dispatch(op(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        sh,
        sw,
        pt,
        pl,
        pb,
        pr,
    ));
    match &conv.bias {
        Some(bias) => y + bias.val().reshape([1, c_out, 1, 1]),
        None => y,
    }
}

/// `pool.forward(x)`, on flex through mammo's max-pool kernel when the pool has explicit (or
/// no) padding, dilation 1 and no ceil mode: a direct window scan, where flex tracks indices
/// with scalar loops even in inference.
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let pad = match pool.padding {
        PaddingConfig2d::Valid => Some((0, 0, 0, 0)),
        PaddingConfig2d::Explicit(t, l, b, r) => Some((t, l, b, r)),
        PaddingConfig2d::Same => None,
    };
    let [kh, kw] = pool.kernel_size;
    let [_, _, h, w] = x.dims();
    let supported = pool.dilation == [1, 1] && !pool.ceil_mode;
    match pad {
        // burn requires padding at most half the window; so do we (padding is never selected,
        // so a window of padding only would have no maximum).
        Some((t, l, b, r))
            if fused(&x)
                && supported
                && t.max(b) <= kh / 2
                && l.max(r) <= kw / 2
                && h + t + b >= kh
                && w + l + r >= kw =>
        {
            let [sh, sw] = pool.stride;
            Tensor::from_dispatch(<Dispatch as MammoKernels>::max_pool2d(
                x.into_dispatch(),
                kh,
                kw,
                sh,
                sw,
                t,
                l,
                b,
                r,
            ))
        }
        _ => pool.forward(x),
    }
}

/// The activation alone, through the fused SiLU where it applies.
pub fn apply_act<const D: usize>(x: Tensor<D>, act: Act) -> Tensor<D> {
    match act {
        Act::Identity => x,
        Act::Relu => burn::tensor::activation::relu(x),
        Act::Relu6 => burn::tensor::activation::relu6(x),
        Act::Silu => silu(x),
    }
}
