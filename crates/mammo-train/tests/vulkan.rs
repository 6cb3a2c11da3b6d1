//! Training's model setup on a Vulkan device (on CI: Mesa's lavapipe, a CPU Vulkan).
//!
//! `create_initialised` draws the weights on flex and moves them to the training device. The
//! move once used `to_device`, which on an autodiff device is a tracked copy: every parameter
//! became the copy's output instead of a leaf, the first backward gave no parameter gradient
//! (nothing trained) and the second panicked with "graph tape has already been consumed". This
//! test takes two optimiser steps on the moved model and requires a gradient for every
//! parameter in each, and the moved weights to be the host's.
//!
//! Runs with `MAMMO_TEST_VULKAN=ci` (CI), `1` or `all` (see `mammo_models::TEST_VULKAN_ENV`).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Gradients, Tensor, TensorData};
use mammo_models::optim::AdamConfig;
use mammo_models::{Classifier, ModelConfig, VulkanTier, vulkan_for_tests_at};
use mammo_train::create_initialised;

/// Every float parameter's values, in visiting order.
struct Values(Vec<Vec<f32>>);

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(
            param
                .val()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap(),
        );
    }
}

/// Counts the float parameters that are trainable leaves.
struct Leaves(usize);

impl ModuleVisitor for Leaves {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0 += usize::from(param.val().is_require_grad());
    }
}

/// How many float parameters are trainable leaves (batch-norm running statistics are
/// visited too, and are not) and how many of them `grads` holds a gradient for.
struct GradCount<'a> {
    grads: &'a Gradients,
    trainable: usize,
    with_grad: usize,
}

impl ModuleVisitor for GradCount<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if value.is_require_grad() {
            self.trainable += 1;
            self.with_grad += usize::from(value.grad(self.grads).is_some());
        }
    }
}

/// Two Adam steps (the trainer's optimiser: fused on flex, burn's on vulkan) from
/// `create_initialised` on `device` (autodiff); returns the initial weights and each step's
/// loss.
fn two_steps(cfg: &ModelConfig, device: &Device) -> (Vec<Vec<f32>>, [f32; 2]) {
    let mut model = create_initialised(cfg, device, 11).unwrap();
    let mut initial = Values(Vec::new());
    model.visit(&mut initial);
    let mut optim: ModuleOptimizer = AdamConfig::default().init();
    let [h, w] = cfg.input_size;
    let mut losses = [0f32; 2];
    for (step, loss_out) in losses.iter_mut().enumerate() {
        let values: Vec<f32> = (0..2 * h * w)
            .map(|i| ((i * (step + 3)) as f32 * 0.013).sin())
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(values, [2, 1, h, w]), device);
        let loss = model.forward(x).powf_scalar(2.0).mean();
        *loss_out = loss.clone().into_scalar();
        let grads = loss.backward();
        let mut count = GradCount {
            grads: &grads,
            trainable: 0,
            with_grad: 0,
        };
        model.visit(&mut count);
        // resnet18: 20 convolutions, 20 batch norms (weight and bias) and the classifier.
        assert_eq!(
            count.trainable,
            62,
            "{device:?}, step {}: {} parameters are trainable leaves",
            step + 1,
            count.trainable
        );
        assert_eq!(
            count.with_grad,
            count.trainable,
            "{device:?}, step {}: {} of {} parameters have a gradient",
            step + 1,
            count.with_grad,
            count.trainable
        );
        let grads = GradientsParams::from_grads(grads, &model);
        model = optim.step(1e-3, model, grads);
    }
    (initial.0, losses)
}

#[test]
fn a_model_moved_to_vulkan_trains_from_the_host_weights() {
    let Some(vk) = vulkan_for_tests_at(VulkanTier::Ci) else {
        return;
    };
    let cfg = ModelConfig::new("resnet18")
        .unwrap()
        .with_in_chans(1)
        .with_num_classes(1)
        .with_input_size([32, 32]);
    // The control: `to_device` on an autodiff device leaves no trainable leaf (what the
    // counts below catch); `create_initialised` forks instead.
    let vk_ad = vk.device.clone().autodiff();
    let host = create_initialised(&cfg, &Device::flex().autodiff(), 11).unwrap();
    let mut leaves = Leaves(0);
    host.clone().to_device(&vk_ad).visit(&mut leaves);
    assert_eq!(leaves.0, 0, "to_device kept trainable leaves");
    host.fork(&vk_ad).visit(&mut leaves);
    assert_eq!(leaves.0, 62, "fork: trainable leaves");

    let (host_weights, host_losses) = two_steps(&cfg, &Device::flex().autodiff());
    let (weights, losses) = two_steps(&cfg, &vk_ad);
    assert_eq!(weights.len(), host_weights.len());
    for (i, (a, b)) in weights.iter().zip(&host_weights).enumerate() {
        assert_eq!(a, b, "parameter {i}: moved weights differ from the host's");
    }
    for (step, (a, b)) in losses.iter().zip(&host_losses).enumerate() {
        assert!(
            (a - b).abs() <= 1e-3 * b.abs().max(1e-3),
            "step {}: loss {a} on vulkan, {b} on flex",
            step + 1
        );
    }
    eprintln!("losses: vulkan {losses:?}, flex {host_losses:?}");
}
