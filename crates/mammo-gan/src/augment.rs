//! DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout, applied to
//! real and generated images alike before the discriminator. The random draws come from a
//! [`mammo_rand::Rng`], so a step's augmentation is a function of the seed and step.

use burn::tensor::ops::PadMode;
use burn::tensor::{Tensor, TensorData};
use mammo_rand::Rng;

/// Which DiffAugment policies are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiffAugment {
    pub color: bool,
    pub translation: bool,
    pub cutout: bool,
}

/// Translation by up to this fraction of the size (DiffAugment's default).
const TRANSLATION_RATIO: f64 = 0.125;
/// Cutout square side as a fraction of the size.
const CUTOUT_RATIO: f64 = 0.5;

impl DiffAugment {
    pub fn from_policies(policies: &[String]) -> Self {
        let has = |p: &str| policies.iter().any(|q| q == p);
        Self {
            color: has("color"),
            translation: has("translation"),
            cutout: has("cutout"),
        }
    }

    pub fn apply(&self, x: Tensor<4>, rng: &mut Rng) -> Tensor<4> {
        let mut x = x;
        if self.color {
            x = color(x, rng);
        }
        if self.translation {
            x = translation(x, rng);
        }
        if self.cutout {
            x = cutout(x, rng);
        }
        x
    }
}

fn per_sample(rng: &mut Rng, n: usize, f: impl Fn(f64) -> f64, x: &Tensor<4>) -> Tensor<4> {
    let v: Vec<f32> = (0..n).map(|_| f(rng.uniform()) as f32).collect();
    Tensor::from_data(TensorData::new(v, [n, 1, 1, 1]), &x.device())
}

/// Brightness (add U(-0.5, 0.5)), saturation (scale the deviation from the channel mean by
/// U(0, 2); only with several channels) and contrast (scale the deviation from the image mean
/// by U(0.5, 1.5)), per sample.
fn color(x: Tensor<4>, rng: &mut Rng) -> Tensor<4> {
    let [n, c, _, _] = x.dims();
    let x = x.clone() + per_sample(rng, n, |u| u - 0.5, &x);
    let x = if c > 1 {
        let mean = x.clone().mean_dim(1);
        mean.clone() + (x.clone() - mean) * per_sample(rng, n, |u| 2.0 * u, &x)
    } else {
        x
    };
    let mean = x.clone().mean_dim(3).mean_dim(2).mean_dim(1);
    mean.clone() + (x.clone() - mean) * per_sample(rng, n, |u| u + 0.5, &x)
}

/// Shift each sample by up to 1/8 of its size in x and y, filling with zeros.
fn translation(x: Tensor<4>, rng: &mut Rng) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let sy = ((h as f64 * TRANSLATION_RATIO) + 0.5) as usize;
    let sx = ((w as f64 * TRANSLATION_RATIO) + 0.5) as usize;
    if sx == 0 && sy == 0 {
        return x;
    }
    let padded = x.pad((sx, sx, sy, sy), PadMode::Constant(0.0));
    let parts: Vec<Tensor<4>> = (0..n)
        .map(|i| {
            let ty = rng.int_in(0, 2 * sy as u64) as usize;
            let tx = rng.int_in(0, 2 * sx as u64) as usize;
            padded
                .clone()
                .slice([i..i + 1, 0..c, ty..ty + h, tx..tx + w])
        })
        .collect();
    Tensor::cat(parts, 0)
}

/// Zero a square of half the size at a random centre (it may hang over the border).
fn cutout(x: Tensor<4>, rng: &mut Rng) -> Tensor<4> {
    let [n, _, h, w] = x.dims();
    let ch = ((h as f64 * CUTOUT_RATIO) + 0.5) as i64;
    let cw = ((w as f64 * CUTOUT_RATIO) + 0.5) as i64;
    let mut mask = vec![1f32; n * h * w];
    for i in 0..n {
        let cy = rng.int_in(0, h as u64 - 1) as i64;
        let cx = rng.int_in(0, w as u64 - 1) as i64;
        let (y0, x0) = (cy - ch / 2, cx - cw / 2);
        for y in y0.max(0)..(y0 + ch).min(h as i64) {
            for xx in x0.max(0)..(x0 + cw).min(w as i64) {
                mask[i * h * w + y as usize * w + xx as usize] = 0.0;
            }
        }
    }
    let m = Tensor::<4>::from_data(TensorData::new(mask, [n, 1, h, w]), &x.device());
    x * m
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn ones(n: usize, s: usize) -> Tensor<4> {
        Tensor::ones([n, 1, s, s], &Device::flex())
    }

    #[test]
    fn policies_do_what_they_say() {
        let mut rng = Rng::from_keys(1, &[]);
        let all = DiffAugment {
            color: true,
            translation: true,
            cutout: true,
        };
        assert_eq!(all.apply(ones(4, 16), &mut rng).dims(), [4, 1, 16, 16]);

        // cutout zeroes about a quarter of each image (less where the square hangs over)
        let cut = DiffAugment {
            cutout: true,
            ..Default::default()
        };
        let v: Vec<f32> = cut
            .apply(ones(8, 16), &mut rng)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        for img in v.chunks(256) {
            let zeros = img.iter().filter(|&&p| p == 0.0).count();
            assert!((16..=64).contains(&zeros), "{zeros}");
        }

        // translation moves content, keeps the size, fills with zeros
        let tr = DiffAugment {
            translation: true,
            ..Default::default()
        };
        let v: Vec<f32> = tr
            .apply(ones(16, 16), &mut rng)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let shifted = v.chunks(256).filter(|img| img.contains(&0.0)).count();
        assert!(shifted >= 10, "{shifted} of 16 moved");

        // colour on a constant image: every pixel of a sample changes by the same amount
        let col = DiffAugment {
            color: true,
            ..Default::default()
        };
        let v: Vec<f32> = col
            .apply(ones(4, 8), &mut rng)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        for img in v.chunks(64) {
            assert!(img.iter().all(|&p| (p - img[0]).abs() < 1e-6));
        }
        assert!(v.chunks(64).any(|img| (img[0] - 1.0).abs() > 1e-3));
    }

    #[test]
    fn same_seed_same_augmentation() {
        let all = DiffAugment {
            color: true,
            translation: true,
            cutout: true,
        };
        let x = Tensor::<4>::random(
            [2, 1, 8, 8],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &Device::flex(),
        );
        let a: Vec<f32> = all
            .apply(x.clone(), &mut Rng::from_keys(5, &[1]))
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let b: Vec<f32> = all
            .apply(x, &mut Rng::from_keys(5, &[1]))
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert_eq!(a, b);
    }
}
