//! Adam and AdamW with burn's arithmetic and burn's saved state, one fused pass per parameter
//! on flex.
//!
//! burn's `Adam` / `AdamW` build each step from a dozen tensor operations, every one a serial
//! pass over the parameter (60-65 ms of a ResNet-18 train step on 2 cores; fused: 9-11 ms).
//! [`AdamConfig`] gives a [`ModuleOptimizer`] that on flex runs
//! [`crate::kernels::cpu::adam_update`] instead: the same `f32` operations in the same order,
//! so parameters and moments equal burn's bit for bit, in one parallel pass that writes in
//! place. On other devices, or with the fused kernels off (`MAMMO_KERNELS=burn`), it runs
//! burn's own optimiser. Its state is burn's [`AdamState`], so optimiser files saved by either
//! load in the other.

use burn::optim::{
    AdamState, AdamWConfig, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
    decay::WeightDecayConfig,
};
use burn::tensor::{Device, Tensor};

use crate::kernels::{self, cpu};

/// Weight decay of [`AdamConfig`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WeightDecay {
    /// None.
    None,
    /// Added to the gradient as `penalty * p` before the moments (Adam's, as in PyTorch's
    /// `Adam(weight_decay=...)`).
    L2(f32),
    /// Decoupled from the gradient: `p *= 1 - lr * decay` each step (AdamW).
    Decoupled(f32),
}

/// Adam (or, with [`WeightDecay::Decoupled`], AdamW) as burn defines them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub beta_1: f32,
    pub beta_2: f32,
    /// Added to `sqrt(v)`; burn's default `1e-5` (PyTorch's is `1e-8`).
    pub epsilon: f32,
    pub weight_decay: WeightDecay,
}

impl Default for AdamConfig {
    /// burn's defaults: betas 0.9 / 0.999, epsilon 1e-5, no weight decay.
    fn default() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-5,
            weight_decay: WeightDecay::None,
        }
    }
}

impl AdamConfig {
    /// The optimiser for a whole module.
    pub fn init(&self) -> ModuleOptimizer {
        ModuleOptimizer::from(self.optimizer())
    }

    fn optimizer(&self) -> Adam {
        Adam {
            config: *self,
            fused: true,
            burn: match self.weight_decay {
                WeightDecay::Decoupled(decay) => Burn::AdamW(
                    AdamWConfig::new()
                        .with_beta_1(self.beta_1)
                        .with_beta_2(self.beta_2)
                        .with_epsilon(self.epsilon)
                        .with_weight_decay(decay)
                        .build(),
                ),
                other => Burn::Adam(
                    burn::optim::AdamConfig::new()
                        .with_beta_1(self.beta_1)
                        .with_beta_2(self.beta_2)
                        .with_epsilon(self.epsilon)
                        .with_weight_decay(match other {
                            WeightDecay::L2(penalty) => Some(WeightDecayConfig::new(penalty)),
                            _ => None,
                        })
                        .build(),
                ),
            },
        }
    }

    /// The scalars of step number `time` (from 1) at learning rate `lr`, each computed as
    /// burn computes it (in `f32`, the learning rate and AdamW's decay factor from `f64`).
    fn step(&self, time: usize, lr: LearningRate) -> cpu::AdamStep {
        let t = time as i32;
        let (update, penalty, keep) = match self.weight_decay {
            WeightDecay::Decoupled(decay) => {
                let update = cpu::AdamUpdate::Corrected {
                    c1: 1.0 - self.beta_1.powi(t),
                    c2: 1.0 - self.beta_2.powi(t),
                    eps: self.epsilon,
                };
                let rate = lr * decay as f64;
                (update, None, (rate != 0.0).then_some((1.0 - rate) as f32))
            }
            decay => {
                let bias_2 = (1.0 - self.beta_2.powi(t)).sqrt();
                let update = cpu::AdamUpdate::Folded {
                    scale: bias_2 / (1.0 - self.beta_1.powi(t)),
                    eps: self.epsilon * bias_2,
                };
                let penalty = match decay {
                    WeightDecay::L2(penalty) => Some(penalty),
                    _ => None,
                };
                (update, penalty, None)
            }
        };
        cpu::AdamStep {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            one_minus_beta_1: 1.0 - self.beta_1,
            one_minus_beta_2: 1.0 - self.beta_2,
            first: time == 1,
            penalty,
            update,
            lr: lr as f32,
            keep,
        }
    }
}

/// burn's optimiser of the same configuration, for devices the fused step does not serve.
#[derive(Clone)]
enum Burn {
    Adam(burn::optim::Adam),
    AdamW(burn::optim::AdamW),
}

/// The optimiser behind [`AdamConfig::init`].
#[derive(Clone)]
struct Adam {
    config: AdamConfig,
    /// Take the fused step wherever it can run (always, except in a test of the fallback).
    fused: bool,
    burn: Burn,
}

impl Optimizer for Adam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let fused = self.fused
            && kernels::adam_fused(&[&tensor, &grad])
            && state.as_ref().is_none_or(|s| {
                s.momentum.max_moment_2.is_none()
                    && kernels::adam_fused(&[&s.momentum.moment_1, &s.momentum.moment_2])
            });
        if fused {
            let (time, m, v) = match state {
                Some(s) => (
                    s.momentum.time + 1,
                    s.momentum.moment_1,
                    s.momentum.moment_2,
                ),
                // Not read on the first step, only written.
                None => (1, tensor.zeros_like(), tensor.zeros_like()),
            };
            let step = self.config.step(time, lr);
            let (tensor, m, v) = kernels::adam_step(tensor, grad, m, v, step);
            let momentum = AdaptiveMomentumState::new(time, m, v);
            return (tensor, Some(AdamState::new(momentum)));
        }
        match &self.burn {
            Burn::Adam(adam) => adam.step(lr, tensor, grad, state),
            Burn::AdamW(adamw) => {
                let state = state.map(|s| burn::optim::AdamWState::new(s.momentum));
                let (tensor, state) = adamw.step(lr, tensor, grad, state);
                (tensor, state.map(|s| AdamState::new(s.momentum)))
            }
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        burn::optim::Adam::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::{Distribution, TensorData};

    use super::*;

    /// Two layers with more elements than one parallel chunk, so the step spans chunks.
    #[derive(Module, Debug)]
    struct Net {
        conv: Conv2d,
        linear: Linear,
    }

    impl Net {
        fn new(device: &Device) -> Self {
            Self {
                conv: Conv2dConfig::new([3, 8], [3, 3]).init(device),
                linear: LinearConfig::new(300, 290).init(device),
            }
        }

        /// A loss whose gradient reaches every parameter, with signs of both kinds.
        fn loss(&self, x: Tensor<4>, z: Tensor<2>) -> Tensor<1> {
            let a = self.conv.forward(x).powi_scalar(2).mean();
            let b = (self.linear.forward(z) - 0.25).powi_scalar(2).mean();
            (a + b).reshape([1])
        }
    }

    fn params(net: &Net) -> Vec<TensorData> {
        vec![
            net.conv.weight.val().into_data(),
            net.conv.bias.as_ref().expect("bias").val().into_data(),
            net.linear.weight.val().into_data(),
            net.linear.bias.as_ref().expect("bias").val().into_data(),
        ]
    }

    fn assert_bits_equal(a: &Net, b: &Net, what: &str) {
        for (i, (x, y)) in params(a).iter().zip(params(b)).enumerate() {
            let (x, y) = (x.as_slice::<f32>().unwrap(), y.as_slice::<f32>().unwrap());
            let diff = x
                .iter()
                .zip(y)
                .position(|(p, q)| p.to_bits() != q.to_bits());
            assert!(
                diff.is_none(),
                "{what}: parameter {i} differs at {:?}: {:?}",
                diff,
                diff.map(|k| (x[k], y[k]))
            );
        }
    }

    /// burn's optimiser of the same configuration.
    fn burns(config: &AdamConfig) -> ModuleOptimizer {
        let burn = burn::optim::AdamConfig::new()
            .with_beta_1(config.beta_1)
            .with_beta_2(config.beta_2)
            .with_epsilon(config.epsilon);
        match config.weight_decay {
            WeightDecay::None => burn.init(),
            WeightDecay::L2(p) => burn
                .with_weight_decay(Some(WeightDecayConfig::new(p)))
                .init(),
            WeightDecay::Decoupled(d) => AdamWConfig::new()
                .with_beta_1(config.beta_1)
                .with_beta_2(config.beta_2)
                .with_epsilon(config.epsilon)
                .with_weight_decay(d)
                .init(),
        }
    }

    /// Five steps (learning rate changing, as under a schedule) of the fused optimiser and of
    /// burn's from the same start: parameters equal bit for bit after every step; then the
    /// state saved by one and loaded into the other gives the same sixth step.
    fn check(config: AdamConfig) {
        let device = Device::flex().autodiff();
        let start = Net::new(&device);
        let (mut ours, mut theirs) = (start.clone(), start);
        let (mut fused, mut reference) = (config.init(), burns(&config));
        let batch = |k: usize| {
            let x = Tensor::<4>::random([2, 3, 9, 9], Distribution::Normal(0.0, 1.0), &device);
            let z = Tensor::<2>::random([4, 300], Distribution::Normal(0.0, 1.0), &device);
            (x, z, 1e-2 / (k + 1) as f64)
        };
        for k in 0..5 {
            let (x, z, lr) = batch(k);
            let g = GradientsParams::from_grads(ours.loss(x.clone(), z.clone()).backward(), &ours);
            ours = fused.step(lr, ours, g);
            let g = GradientsParams::from_grads(theirs.loss(x, z).backward(), &theirs);
            theirs = reference.step(lr, theirs, g);
            assert_bits_equal(&ours, &theirs, &format!("{config:?}, step {}", k + 1));
        }
        // Swap the saved states: each optimiser resumes from the other's file.
        let ours_state = fused.to_record();
        let mut fused = config.init().load_record(reference.to_record());
        let mut reference = burns(&config).load_record(ours_state);
        let (x, z, lr) = batch(5);
        let g = GradientsParams::from_grads(ours.loss(x.clone(), z.clone()).backward(), &ours);
        let a = fused.step(lr, ours, g);
        let g = GradientsParams::from_grads(theirs.loss(x, z).backward(), &theirs);
        let b = reference.step(lr, theirs, g);
        assert_bits_equal(&a, &b, &format!("{config:?}, resumed step 6"));
    }

    #[test]
    fn adam_equals_burns_bit_for_bit() {
        check(AdamConfig::default());
        check(AdamConfig {
            beta_1: 0.5,
            beta_2: 0.99,
            epsilon: 1e-8,
            weight_decay: WeightDecay::None,
        });
    }

    #[test]
    fn adam_with_l2_penalty_equals_burns() {
        check(AdamConfig {
            weight_decay: WeightDecay::L2(0.05),
            ..AdamConfig::default()
        });
    }

    #[test]
    fn adamw_equals_burns() {
        check(AdamConfig {
            weight_decay: WeightDecay::Decoupled(0.3),
            ..AdamConfig::default()
        });
        check(AdamConfig {
            weight_decay: WeightDecay::Decoupled(0.0),
            ..AdamConfig::default()
        });
    }

    /// Where the fused step cannot run (other devices), burn's optimiser runs, AdamW's state
    /// converted both ways.
    #[test]
    fn fallback_is_burns_optimiser() {
        for weight_decay in [WeightDecay::L2(0.05), WeightDecay::Decoupled(0.3)] {
            let config = AdamConfig {
                weight_decay,
                ..AdamConfig::default()
            };
            let device = Device::flex().autodiff();
            let start = Net::new(&device);
            let (mut ours, mut theirs) = (start.clone(), start);
            let mut fallback = ModuleOptimizer::from(Adam {
                fused: false,
                ..config.optimizer()
            });
            let mut reference = burns(&config);
            for k in 0..3 {
                let x = Tensor::<4>::random([2, 3, 9, 9], Distribution::Default, &device);
                let z = Tensor::<2>::random([4, 300], Distribution::Default, &device);
                let lr = 1e-2 / (k + 1) as f64;
                let l = ours.loss(x.clone(), z.clone());
                let g = GradientsParams::from_grads(l.backward(), &ours);
                ours = fallback.step(lr, ours, g);
                let l = theirs.loss(x, z);
                let g = GradientsParams::from_grads(l.backward(), &theirs);
                theirs = reference.step(lr, theirs, g);
                assert_bits_equal(&ours, &theirs, &format!("{config:?} unfused, step {k}"));
            }
        }
    }

    #[test]
    fn parameters_shared_with_another_module_are_not_overwritten() {
        let device = Device::flex().autodiff();
        let net = Net::new(&device);
        let before = params(&net);
        let keep = net.clone();
        let (x, z) = (
            Tensor::<4>::ones([1, 3, 9, 9], &device),
            Tensor::<2>::ones([1, 300], &device),
        );
        let g = GradientsParams::from_grads(net.loss(x, z).backward(), &net);
        let stepped = AdamConfig::default().init().step(1e-2, net, g);
        assert_eq!(params(&keep), before, "the clone kept its values");
        assert_ne!(params(&stepped), before, "the step moved the parameters");
    }
}
