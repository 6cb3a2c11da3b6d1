//! Autodiff over flex: the forward on flex, a hand-written backward per fused kernel
//! (SiLU, sigmoid, training batch norm, depthwise and dense convolutions, max pooling).

use super::*;

#[derive(Debug)]
struct SiluBackward;

impl Backward<Flex, 1> for SiluBackward {
    /// The input.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let [parent] = ops.parents;
        if let Some(parent) = parent {
            let x = contiguous(&ops.state);
            let mut dx = vec![0.0f32; x.layout().num_elements()];
            cpu::silu_backward(values(&x), values(&dy), &mut dx);
            grads.register::<Flex>(parent.id, flex_tensor(dx, x.layout().shape().to_vec()));
        }
    }
}

#[derive(Debug)]
struct SigmoidBackward;

impl Backward<Flex, 1> for SigmoidBackward {
    /// The output.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let [parent] = ops.parents;
        if let Some(parent) = parent {
            grads.register::<Flex>(parent.id, Flex::sigmoid_backward(ops.state, dy));
        }
    }
}

#[derive(Debug)]
struct NormTrainBackward;

/// Input, gamma, beta, batch mean, 1/sqrt(var + eps) and the activation after the norm (its
/// gradient is taken from the output recomputed from these, so no output is kept).
#[derive(Debug, Clone)]
struct NormTrainState {
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    act: Act,
}

impl Backward<Flex, 3> for NormTrainBackward {
    type State = NormTrainState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let NormTrainState {
            x,
            gamma,
            beta,
            mean,
            inv_std,
            act,
        } = ops.state;
        let x = contiguous(&x);
        let (n, c, hw) = nc_hw(&x);
        let (dx, dgamma, dbeta) = cpu::batch_norm_backward(
            values(&x),
            values(&dy),
            values(&contiguous(&gamma)),
            values(&contiguous(&beta)),
            &mean,
            &inv_std,
            n,
            c,
            hw,
            act,
        );
        let [px, pgamma, pbeta] = ops.parents;
        if let Some(p) = px {
            grads.register::<Flex>(p.id, flex_tensor(dx, x.layout().shape().to_vec()));
        }
        if let Some(p) = pgamma {
            grads.register::<Flex>(p.id, flex_tensor(dgamma, vec![c]));
        }
        if let Some(p) = pbeta {
            grads.register::<Flex>(p.id, flex_tensor(dbeta, vec![c]));
        }
    }
}

#[derive(Debug)]
struct DepthwiseBackward;

/// Input, weight, stride and padding of a convolution (depthwise or dense).
#[derive(Debug, Clone)]
struct ConvState {
    x: FlexTensor,
    w: FlexTensor,
    stride: [usize; 2],
    pad: [usize; 4],
}

impl Backward<Flex, 2> for DepthwiseBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let ConvState { x, w, stride, pad } = ops.state;
        let (x, w) = (contiguous(&x), contiguous(&w));
        let (n, c, g) = dw_geom(&x, &w, stride, pad);
        let [px, pw] = ops.parents;
        if let Some(p) = px {
            let dx = cpu::depthwise_input_grad(values(&dy), values(&w), n, c, g);
            grads.register::<Flex>(p.id, flex_tensor(dx, vec![n, c, g.h, g.w]));
        }
        if let Some(p) = pw {
            let dw = cpu::depthwise_weight_grad(values(&x), values(&dy), n, c, g);
            grads.register::<Flex>(p.id, flex_tensor(dw, vec![c, 1, g.kh, g.kw]));
        }
    }
}

#[derive(Debug)]
struct DenseBackward;

impl Backward<Flex, 2> for DenseBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let ConvState { x, w, stride, pad } = ops.state;
        let (x, w) = (contiguous(&x), contiguous(&w));
        let d = dense_geom(&x, &w, stride, pad);
        let [px, pw] = ops.parents;
        if let Some(p) = px {
            let dx = cpu::dense_input_grad(values(&dy), values(&w), d);
            grads.register::<Flex>(p.id, flex_tensor(dx, x.layout().shape().to_vec()));
        }
        if let Some(p) = pw {
            let dw = cpu::dense_weight_grad(values(&x), values(&dy), d);
            grads.register::<Flex>(p.id, flex_tensor(dw, w.layout().shape().to_vec()));
        }
    }
}

#[derive(Debug)]
struct MaxPoolBackward;

/// Input shape, window and the argmax of every output (made by [`flex_max_pool`]).
#[derive(Debug, Clone)]
pub(super) struct MaxPoolState {
    pub(super) input_dims: Vec<usize>,
    pub(super) planes: usize,
    pub(super) window: cpu::Window,
    pub(super) indices: std::sync::Arc<Vec<u32>>,
}

impl Backward<Flex, 1> for MaxPoolBackward {
    type State = MaxPoolState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let [parent] = ops.parents;
        if let Some(p) = parent {
            let s = ops.state;
            let dx = cpu::max_pool_backward(values(&dy), &s.indices, s.planes, s.window);
            grads.register::<Flex>(p.id, flex_tensor(dx, s.input_dims));
        }
    }
}

type Ad<C> = Autodiff<Flex, C>;

/// Records `y`, computed on flex from the inputs behind `nodes`, as the output of `op` in the
/// autodiff graph; `state` (what `op`'s backward reads) is only built when a gradient is
/// tracked.
fn record<C: CheckpointStrategy, Op: Backward<Flex, N>, const N: usize>(
    op: Op,
    nodes: [NodeGuard; N],
    state: impl FnOnce() -> Op::State,
    y: FlexTensor,
) -> FloatTensor<Ad<C>> {
    match op.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state(), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// A convolution computed on flex by `forward`, recorded with `op` as its backward (which
/// reads the input, weight, stride and padding).
fn record_conv<C: CheckpointStrategy, Op: Backward<Flex, 2, State = ConvState>>(
    op: Op,
    forward: fn(&FlexTensor, &FlexTensor, [usize; 2], [usize; 4]) -> FlexTensor,
    x: FloatTensor<Ad<C>>,
    weight: FloatTensor<Ad<C>>,
    stride: [usize; 2],
    pad: [usize; 4],
) -> FloatTensor<Ad<C>> {
    let y = forward(x.primitive(), weight.primitive(), stride, pad);
    let state = || ConvState {
        x: x.primitive().clone(),
        w: weight.primitive().clone(),
        stride,
        pad,
    };
    record::<C, _, 2>(op, [x.node(), weight.node()], state, y)
}

impl<C: CheckpointStrategy> MammoKernels for Autodiff<Flex, C> {
    fn silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let y = <Flex as MammoKernels>::silu(x.primitive().clone());
        record::<C, _, 1>(SiluBackward, [x.node()], || x.primitive().clone(), y)
    }

    fn sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let y = <Flex as MammoKernels>::sigmoid(x.primitive().clone());
        record::<C, _, 1>(SigmoidBackward, [x.node()], || y.clone(), y.clone())
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
        // Differentiable (gradients reach x, gamma and beta, as through burn's BatchNorm in
        // inference, e.g. Grad-CAM or a frozen feature network): burn's composed batch norm,
        // then the activation.
        let y = <Self as ModuleOps<Self>>::batch_norm(x, gamma, beta, mean, var, eps);
        match Act::from_code(act) {
            Act::Identity => y,
            Act::Relu => Self::relu(y),
            Act::Relu6 => Self::float_clamp(y, Scalar::Float(0.0), Scalar::Float(6.0)),
            Act::Silu => <Self as MammoKernels>::silu(y),
        }
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
        record_conv::<C, _>(
            DepthwiseBackward,
            flex_depthwise,
            x,
            weight,
            [sh, sw],
            [pt, pl, pb, pr],
        )
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
        record_conv::<C, _>(
            DenseBackward,
            flex_dense,
            x,
            weight,
            [sh, sw],
            [pt, pl, pb, pr],
        )
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
        let (kernel, stride, pad) = ([kh, kw], [sh, sw], [pt, pl, pb, pr]);
        match MaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, state) = flex_max_pool(x.primitive(), kernel, stride, pad, true);
                prep.finish(state.expect("argmax state requested"), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(flex_max_pool(x.primitive(), kernel, stride, pad, false).0)
            }
        }
    }

    fn norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        act: u8,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let c = gamma.primitive().layout().num_elements();
        let act = Act::from_code(act);
        let (y, mean, var, inv_std) =
            flex_norm_train(x.primitive(), gamma.primitive(), beta.primitive(), eps, act);
        let stats = (
            Ad::<C>::from_inner(flex_tensor(mean.clone(), vec![c])),
            Ad::<C>::from_inner(flex_tensor(var, vec![c])),
        );
        let state = || NormTrainState {
            x: x.primitive().clone(),
            gamma: gamma.primitive().clone(),
            beta: beta.primitive().clone(),
            mean,
            inv_std,
            act,
        };
        let nodes = [x.node(), gamma.node(), beta.node()];
        let out = record::<C, _, 3>(NormTrainBackward, nodes, state, y);
        (out, stats.0, stats.1)
    }

    /// Optimisers step the inner (flex) tensors; on autodiff ones the step is not tracked.
    fn adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: cpu::AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (p, m, v) = flex_adam_step(
            param.into_primitive(),
            grad.primitive(),
            moment_1.into_primitive(),
            moment_2.into_primitive(),
            step,
        );
        (
            Ad::<C>::from_inner(p),
            Ad::<C>::from_inner(m),
            Ad::<C>::from_inner(v),
        )
    }
}
