//! Every registered model on a Vulkan device (on CI: Mesa's lavapipe, a CPU Vulkan) against
//! flex: inference logits; for a training step the logits, the updated batch-norm running
//! statistics, the input gradient and every parameter gradient.
//!
//! Tolerances: `|vulkan - flex| <= tol * max(1, max |flex|) + slack`, with tol 1e-4 for logits
//! and statistics and 1e-3 for gradients (reductions over the batch run in another order and
//! burn's GPU convolutions accumulate in another order than gemm). The deeper models' training
//! gradients at 64 px are discontinuous at rounding scale (a ReLU input within rounding of
//! zero takes the other branch under another summation order; see
//! `common::rounding_perturbations`): for every model outside `common::WELL_CONDITIONED` the
//! slack is twice the largest change of the same quantity on flex under rounding-scale
//! perturbations (the input scaled by 1 + 1e-6; every weight by 1 + 1e-6 u, u uniform in
//! [-1, 1), eight draws), so a device difference is only accepted where flex itself moves that
//! much.
//!
//! Runs with `MAMMO_TEST_VULKAN=ci` (CI, on Mesa's lavapipe), `1` or `all` (see
//! `mammo_models::TEST_VULKAN_ENV`). `MAMMO_TEST_VULKAN_MODELS` picks the models (default
//! resnet18; `all` for every registered one).

mod common;

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use mammo_models::{Classifier, VulkanTier, vulkan_for_tests_at, vulkan_test_models};

use common::{
    Perturb, Step, det_input, det_model, max_abs_diff, rounding_perturbed_steps, rounding_slack,
    train_step, values,
};

/// Checks the bound and returns the error relative to the scale, for the report line.
fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32, slack: f32) -> f32 {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    assert!(
        a.iter().all(|v| v.is_finite()),
        "{what}: non-finite values on vulkan"
    );
    let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(a, b);
    assert!(
        diff <= tol * scale + slack,
        "{what}: max abs diff {diff} (scale {scale}, rounding slack {slack})"
    );
    diff / scale
}

#[test]
fn every_model_matches_flex_on_vulkan() {
    let Some(vk) = vulkan_for_tests_at(VulkanTier::Ci) else {
        return;
    };
    eprintln!("vulkan device: {vk}");
    let flex = Device::flex();
    let models = vulkan_test_models();
    assert!(!models.is_empty(), "no model selected");
    for name in models {
        let t0 = Instant::now();

        // Inference.
        let reference = values(
            det_model(name, &flex)
                .valid()
                .forward(det_input(&flex, 1.0)),
        );
        let t_flex = t0.elapsed();
        let t1 = Instant::now();
        let got = values(
            det_model(name, &vk.device)
                .valid()
                .forward(det_input(&vk.device, 1.0)),
        );
        let t_vk_infer = t1.elapsed();
        let infer = assert_close(
            &format!("{name} inference logits"),
            &got,
            &reference,
            1e-4,
            0.0,
        );

        // Training step.
        let reference = train_step(name, &flex, Perturb::None, "vulkan-flex");
        let perturbed = rounding_perturbed_steps(name, &flex, "vulkan-perturbed");
        let t2 = Instant::now();
        let got = train_step(name, &vk.device, Perturb::None, "vulkan-vk");
        let t_vk_train = t2.elapsed();
        let slack =
            |pick: &dyn Fn(&Step) -> Vec<f32>, b: &[f32]| rounding_slack(&perturbed, pick, b);

        let logits = assert_close(
            &format!("{name} train logits"),
            &got.logits,
            &reference.logits,
            1e-4,
            slack(&|s| s.logits.clone(), &reference.logits),
        );
        let mut worst_state = 0.0f32;
        // (`train_step` checked that every running statistic moved in the step.)
        for (key, b) in &reference.state {
            let a = got.state[key].try_to_vec::<f32>().unwrap();
            let b = b.try_to_vec::<f32>().unwrap();
            let s = slack(&|s| s.state[key].try_to_vec().unwrap(), &b);
            worst_state = worst_state.max(assert_close(
                &format!("{name} {key} after the step"),
                &a,
                &b,
                1e-4,
                s,
            ));
        }
        let input_grad = assert_close(
            &format!("{name} input grad"),
            &got.input_grad,
            &reference.input_grad,
            1e-3,
            slack(&|s| s.input_grad.clone(), &reference.input_grad),
        );
        assert_eq!(got.param_grads.len(), reference.param_grads.len());
        let mut compared = 0;
        let mut worst_grad = 0.0f32;
        for (i, ((what, a), (_, b))) in got
            .param_grads
            .iter()
            .zip(&reference.param_grads)
            .enumerate()
        {
            assert_eq!(
                a.is_empty(),
                b.is_empty(),
                "{name} {what}: gradient presence"
            );
            if a.is_empty() {
                continue;
            }
            let s = slack(&|s| s.param_grads[i].1.clone(), b);
            worst_grad =
                worst_grad.max(assert_close(&format!("{name} {what} grad"), a, b, 1e-3, s));
            compared += 1;
        }
        assert!(compared > 10, "{name}: only {compared} parameter gradients");
        eprintln!(
            "{name}: relative max diff: inference {infer:.1e}, train logits {logits:.1e}, state \
             {worst_state:.1e}, input grad {input_grad:.1e}, {compared} param grads \
             {worst_grad:.1e}{}; vulkan {:.1} s inference, {:.1} s train step (flex inference \
             {:.2} s)",
            if perturbed.is_empty() {
                ""
            } else {
                " (rounding slack)"
            },
            t_vk_infer.as_secs_f64(),
            t_vk_train.as_secs_f64(),
            t_flex.as_secs_f64()
        );
    }
}
