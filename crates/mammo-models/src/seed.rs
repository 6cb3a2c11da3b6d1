//! burn draws random values (initial weights, dropout masks, noise inputs) from one
//! process-wide generator per backend. [`seeded`] seeds it and runs the drawing code while no
//! other seeded section runs, so what that code draws is a function of the seed alone, even
//! with several trainings in one process (tests, a GAN beside a classifier). Every crate that
//! seeds burn goes through it.

use std::sync::Mutex;

use burn::tensor::Device;

static SEED_LOCK: Mutex<()> = Mutex::new(());

/// Seeds `device`'s generator with `seed` and runs `draw` under the process-wide seeding
/// lock. Parameters that burn initialises lazily draw when first used, so `draw` should use
/// (materialise) them if their values must follow the seed.
pub fn seeded<T>(device: &Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    let _guard = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    draw()
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
}
