//! burn draws random values (initial weights, dropout masks, noise inputs) from one
//! process-wide generator per backend. [`seeded`] seeds it and runs the drawing code while no
//! other seeded section runs, so what that code draws is a function of the seed alone, even
//! with several trainings in one process (tests, a GAN beside a classifier). Every crate that
//! seeds burn goes through it.

use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

static SEED_LOCK: Mutex<()> = Mutex::new(());

/// Seeds `device`'s generator with `seed` and runs `draw` under the process-wide seeding
/// lock. Parameters that burn initialises lazily draw when first used, so `draw` should use
/// (materialise) them if their values must follow the seed.
pub fn seeded<T>(device: &Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    let _guard = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    draw()
}

/// Draws every parameter of `module` that burn initialises lazily (on first use), in the
/// module's own order: called inside [`seeded`], the values follow the seed alone rather than
/// whatever the process-wide generator holds when the module is first run.
pub fn materialise<M: Module>(module: &M) {
    struct Materialise;
    impl ModuleVisitor for Materialise {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Materialise);
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tensor};

    #[test]
    fn the_same_seed_draws_the_same_values_across_threads() {
        let device = Device::flex();
        let draw = |seed| {
            seeded(&device, seed, || {
                Tensor::<1>::random([64], Distribution::Default, &device)
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
            })
        };
        let first = draw(7);
        let others: Vec<Vec<f32>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|i| s.spawn(move || draw(7 + (i % 2)))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(others[0], first);
        assert_eq!(others[2], first);
        assert_ne!(others[1], first);
    }

    #[test]
    fn materialised_parameters_follow_the_seed_not_what_was_seeded_before_first_use() {
        use burn::nn::conv::{Conv2d, Conv2dConfig};
        let device = Device::flex();
        let conv = || Conv2dConfig::new([2, 3], [3, 3]).init(&device);
        let weights = |c: &Conv2d| c.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let drawn = |seed| {
            seeded(&device, seed, || {
                let c = conv();
                materialise(&c);
                c
            })
        };
        let a = drawn(11);
        seeded(&device, 99, || ());
        assert_eq!(weights(&a), weights(&drawn(11)));
        // Lazily initialised and first used after another seeding: that seed's values.
        let lazy = seeded(&device, 11, conv);
        seeded(&device, 99, || ());
        assert_ne!(weights(&lazy), weights(&a));
    }
}
