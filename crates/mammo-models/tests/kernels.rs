//! The fused flex kernels (`mammo_models::kernels`) against burn's own operations, on every
//! registered model: inference logits, and for a training step the logits, the gradient of
//! every parameter and of the input, and the updated batch-norm running statistics.
//!
//! Training-mode gradients of the deeper deterministic models at 64 px are discontinuous at
//! rounding scale: a ReLU input within rounding of zero takes the other branch when sums run in
//! another order, and that moves the gradients below it by up to several percent (resnet34,
//! resnet50, resnet152, tf_efficientnet_lite0; see `common::rounding_perturbations`). The
//! other three (`common::WELL_CONDITIONED`), which between them run every fused path, are
//! compared within the tolerances alone (1e-4 of the largest value for logits and statistics,
//! 1e-3 for gradients: the reductions over a batch run in another order); the deeper four with
//! a slack on every quantity of twice its largest change under burn's own ops when the input or
//! the weights are perturbed at rounding scale.
//!
//! One test function: the kernel switch is process-wide, so the two paths run in sequence.

mod common;

use burn::module::Module;
use burn::tensor::Device;
use mammo_models::{Classifier, MODELS, kernels};

use common::{
    Perturb, Step, det_input, det_model, max_abs_diff, rounding_perturbed_steps, rounding_slack,
    train_step, values,
};

/// `|a - b| <= tol * max(1, max |b|) + slack`.
fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32, slack: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(a, b);
    assert!(
        diff <= tol * scale + slack,
        "{what}: max abs diff {diff} (scale {scale}, rounding slack {slack})"
    );
}

#[test]
fn fused_kernels_match_burn_ops_on_every_model() {
    for spec in MODELS {
        let name = spec.name;

        // Inference.
        let device = Device::flex();
        let m = det_model(name, &device).valid();
        kernels::set_enabled(false);
        let reference = values(m.forward(det_input(&device, 1.0)));
        kernels::set_enabled(true);
        let fused = values(m.forward(det_input(&device, 1.0)));
        assert_close(
            &format!("{name} inference logits"),
            &fused,
            &reference,
            1e-4,
            0.0,
        );

        // Training step.
        let flex = Device::flex();
        kernels::set_enabled(false);
        let reference = train_step(name, &flex, Perturb::None, "kernels");
        let perturbed = rounding_perturbed_steps(name, &flex, "kernels-perturbed");
        kernels::set_enabled(true);
        let fused = train_step(name, &flex, Perturb::None, "kernels");
        let slack =
            |pick: &dyn Fn(&Step) -> Vec<f32>, b: &[f32]| rounding_slack(&perturbed, pick, b);
        assert_close(
            &format!("{name} train logits"),
            &fused.logits,
            &reference.logits,
            1e-4,
            slack(&|s| s.logits.clone(), &reference.logits),
        );
        // (`train_step` checked that every running statistic moved in the step.)
        for (key, b) in &reference.state {
            let a = fused.state[key].try_to_vec::<f32>().unwrap();
            let b = b.try_to_vec::<f32>().unwrap();
            assert_close(
                &format!("{name} {key} after the step"),
                &a,
                &b,
                1e-4,
                slack(&|s| s.state[key].try_to_vec().unwrap(), &b),
            );
        }
        assert_close(
            &format!("{name} input grad"),
            &fused.input_grad,
            &reference.input_grad,
            1e-3,
            slack(&|s| s.input_grad.clone(), &reference.input_grad),
        );
        assert_eq!(fused.param_grads.len(), reference.param_grads.len());
        let mut compared = 0;
        for (i, ((what, a), (_, b))) in fused
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
            if !a.is_empty() {
                let s = slack(&|s| s.param_grads[i].1.clone(), b);
                assert_close(&format!("{name} {what} grad"), a, b, 1e-3, s);
                compared += 1;
            }
        }
        assert!(compared > 10, "{name}: only {compared} parameter gradients");
    }
}
