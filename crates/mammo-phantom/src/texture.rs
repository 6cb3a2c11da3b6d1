//! Fibroglandular texture: a periodic Gaussian random field with a power-law spectrum
//! `P(f) ~ 1 / f^beta`, beta about 3 as measured on mammograms (Burgess, Jacobson & Judy,
//! Med. Phys. 28(4), 2001), made by filtering white noise in the Fourier domain on a coarse
//! grid and sampled with Catmull-Rom interpolation, so no full-resolution FFT is needed.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

use crate::rng::Rng;

/// A periodic `n` x `n` field with zero mean and unit variance.
#[derive(Debug, Clone)]
pub struct Field {
    n: usize,
    data: Vec<f32>,
}

impl Field {
    /// Grid side.
    pub fn size(&self) -> usize {
        self.n
    }

    /// Generates a power-law field. `anisotropy` > 1 stretches structures along the first
    /// axis (ducts and ligaments run toward the nipple).
    pub fn power_law(rng: &mut Rng, n: usize, beta: f64, anisotropy: f64) -> Self {
        assert!(
            n >= 4 && n.is_power_of_two(),
            "field side {n} is not a power of two >= 4"
        );
        let freq = |i: usize| {
            let k = if i <= n / 2 {
                i as f64
            } else {
                i as f64 - n as f64
            };
            k / n as f64
        };
        let f_min = 1.0 / n as f64;
        let mut spec = vec![Complex::new(0.0f32, 0.0); n * n];
        for i in 0..n {
            for j in 0..n {
                let (fx, fy) = (freq(i) * anisotropy, freq(j));
                let f2 = fx * fx + fy * fy;
                if i == 0 && j == 0 {
                    continue;
                }
                let amp = (f2 + f_min * f_min).powf(-beta / 4.0);
                let (re, im) = (rng.normal(), rng.normal());
                spec[i * n + j] = Complex::new((amp * re) as f32, (amp * im) as f32);
            }
        }
        let fft = FftPlanner::<f32>::new().plan_fft_inverse(n);
        // Rows, transpose, rows again = 2-D transform (layout [i][j], j fastest).
        for row in spec.chunks_mut(n) {
            fft.process(row);
        }
        let mut t = vec![Complex::new(0.0f32, 0.0); n * n];
        for i in 0..n {
            for j in 0..n {
                t[j * n + i] = spec[i * n + j];
            }
        }
        for row in t.chunks_mut(n) {
            fft.process(row);
        }
        // t is now [j][i]; keep [i][j] so the first axis is the stretched one.
        let mut data = vec![0.0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                data[i * n + j] = t[j * n + i].re;
            }
        }
        let len = data.len() as f64;
        let mean = data.iter().map(|&v| v as f64).sum::<f64>() / len;
        let var = data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / len;
        let inv = 1.0 / var.sqrt().max(1e-20);
        for v in &mut data {
            *v = ((*v as f64 - mean) * inv) as f32;
        }
        Field { n, data }
    }

    #[inline]
    fn get(&self, i: i64, j: i64) -> f32 {
        // n is a power of two: masking is the periodic wrap (also for negative indices).
        let mask = self.n as i64 - 1;
        self.data[((i & mask) * self.n as i64 + (j & mask)) as usize]
    }

    /// Catmull-Rom (bicubic) sample at grid coordinates (`u` along the first axis, `v` along
    /// the second); the field wraps around.
    pub fn sample(&self, u: f64, v: f64) -> f32 {
        let (fu, fv) = (u.floor(), v.floor());
        let (du, dv) = ((u - fu) as f32, (v - fv) as f32);
        let (iu, iv) = (fu as i64, fv as i64);
        let wu = catmull_rom(du);
        let wv = catmull_rom(dv);
        let mut acc = 0.0f32;
        for (a, wa) in wu.iter().enumerate() {
            let mut row = 0.0f32;
            for (b, wb) in wv.iter().enumerate() {
                row += wb * self.get(iu + a as i64 - 1, iv + b as i64 - 1);
            }
            acc += wa * row;
        }
        acc
    }
}

/// Catmull-Rom weights for taps at -1, 0, 1, 2 and fractional offset `t`.
fn catmull_rom(t: f32) -> [f32; 4] {
    let t2 = t * t;
    let t3 = t2 * t;
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

/// Coarse grid side for an image: about a sixth of the longer side, a power of two in
/// 64..=512.
pub fn grid_for(width: u32, height: u32) -> usize {
    ((width.max(height) as usize / 6).next_power_of_two()).clamp(64, 512)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_is_normalised_and_smooth() {
        let mut rng = Rng::from_keys(5, &[]);
        let f = Field::power_law(&mut rng, 64, 3.0, 1.0);
        let n = 64 * 64;
        let mean: f32 = f.data.iter().sum::<f32>() / n as f32;
        let var: f32 = f.data.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
        assert!(
            mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3,
            "{mean} {var}"
        );
        // beta = 3 is dominated by low frequencies: neighbours are strongly correlated.
        let mut num = 0.0f32;
        for i in 0..64 {
            for j in 0..64 {
                num += f.get(i, j) * f.get(i, j + 1);
            }
        }
        assert!(num / n as f32 > 0.8, "lag-1 correlation {}", num / n as f32);
        // Interpolation reproduces grid points.
        assert!((f.sample(3.0, 5.0) - f.get(3, 5)).abs() < 1e-5);
    }
}
