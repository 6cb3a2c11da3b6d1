//! Distances between two sets of image features, as GAN papers report them.
//!
//! * FID (Heusel et al. 2017): `|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))` over
//!   Gaussian fits of the features. The trace of the matrix square root is computed as the sum
//!   of square roots of the eigenvalues of `S1^(1/2) S2 S1^(1/2)` (symmetric, positive
//!   semi-definite: stable, no complex parts to discard), which equals the trace pytorch-fid
//!   takes from `scipy.linalg.sqrtm(S1 S2)`.
//! * KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
//!   `k(x, y) = (x.y / d + 1)^3`, averaged over random subsets, with its standard deviation.
//!
//! What the features are (Inception-v3 pool3 for FID proper, or another network) is the
//! caller's business and must be reported with the number.

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use serde::Serialize;

/// Errors of this crate.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FidError {
    #[error("feature sets have {0} and {1} dimensions")]
    DimensionMismatch(usize, usize),
    #[error("{what}: {n} samples, at least {min} needed")]
    TooFewSamples {
        what: &'static str,
        n: usize,
        min: usize,
    },
    #[error("{0} features of dimension {1} do not fill a whole number of rows")]
    Ragged(usize, usize),
}

/// A feature matrix: `n` rows of `dim` values.
#[derive(Debug, Clone)]
pub struct Features<'a> {
    pub data: &'a [f32],
    pub dim: usize,
}

impl<'a> Features<'a> {
    pub fn new(data: &'a [f32], dim: usize) -> Result<Self, FidError> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(FidError::Ragged(data.len(), dim));
        }
        Ok(Self { data, dim })
    }
    pub fn n(&self) -> usize {
        self.data.len() / self.dim
    }
    fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Mean and covariance (unbiased, `ddof = 1`, as `numpy.cov`) of a feature set.
#[derive(Debug, Clone)]
pub struct GaussianStats {
    pub n: usize,
    pub mu: DVector<f64>,
    pub sigma: DMatrix<f64>,
}

impl GaussianStats {
    pub fn from_features(f: &Features<'_>) -> Result<Self, FidError> {
        let (n, d) = (f.n(), f.dim);
        if n < 2 {
            return Err(FidError::TooFewSamples {
                what: "covariance",
                n,
                min: 2,
            });
        }
        let x = DMatrix::from_row_iterator(n, d, f.data.iter().map(|&v| v as f64));
        let mu = DVector::from_iterator(d, (0..d).map(|j| x.column(j).sum() / n as f64));
        let mut centred = x;
        for j in 0..d {
            let m = mu[j];
            centred.column_mut(j).apply(|v| *v -= m);
        }
        let sigma = (centred.transpose() * &centred) / (n as f64 - 1.0);
        Ok(Self { n, mu, sigma })
    }
}

/// Symmetric PSD square root via the eigendecomposition (negative eigenvalues from rounding
/// are clamped to zero).
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (m + m.transpose()) * 0.5;
    let e = SymmetricEigen::new(sym);
    let roots = e.eigenvalues.map(|l| l.max(0.0).sqrt());
    &e.eigenvectors * DMatrix::from_diagonal(&roots) * e.eigenvectors.transpose()
}

/// Frechet distance between two Gaussian fits.
pub fn frechet_distance(a: &GaussianStats, b: &GaussianStats) -> Result<f64, FidError> {
    if a.mu.len() != b.mu.len() {
        return Err(FidError::DimensionMismatch(a.mu.len(), b.mu.len()));
    }
    let diff = &a.mu - &b.mu;
    let r = sqrt_psd(&a.sigma);
    let inner = &r * &b.sigma * &r;
    let inner = (&inner + inner.transpose()) * 0.5;
    let tr_covmean: f64 = SymmetricEigen::new(inner)
        .eigenvalues
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .sum();
    Ok(diff.dot(&diff) + a.sigma.trace() + b.sigma.trace() - 2.0 * tr_covmean)
}

/// KID estimate: mean and standard deviation over subsets.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Kid {
    pub mean: f64,
    pub std: f64,
    pub subsets: usize,
    pub subset_size: usize,
}

fn poly_kernel(x: &[f32], y: &[f32]) -> f64 {
    let d = x.len() as f64;
    let dot: f64 = x.iter().zip(y).map(|(a, b)| *a as f64 * *b as f64).sum();
    (dot / d + 1.0).powi(3)
}

/// Unbiased MMD^2 between two equally sized samples (rows `xi` of `x`, `yi` of `y`).
fn mmd2_unbiased(x: &Features<'_>, xi: &[usize], y: &Features<'_>, yi: &[usize]) -> f64 {
    let m = xi.len() as f64;
    let (mut kxx, mut kyy, mut kxy) = (0f64, 0f64, 0f64);
    for (a, &i) in xi.iter().enumerate() {
        for &j in &xi[a + 1..] {
            kxx += poly_kernel(x.row(i), x.row(j));
        }
    }
    for (a, &i) in yi.iter().enumerate() {
        for &j in &yi[a + 1..] {
            kyy += poly_kernel(y.row(i), y.row(j));
        }
    }
    for &i in xi {
        for &j in yi {
            kxy += poly_kernel(x.row(i), y.row(j));
        }
    }
    // off-diagonal sums counted once above; each appears twice in the full sum
    2.0 * (kxx + kyy) / (m * (m - 1.0)) - 2.0 * kxy / (m * m)
}

/// KID over `subsets` random subsets of `subset_size` samples from each set (capped at the
/// smaller set; with `subset_size >= both sizes` and one subset it is deterministic).
pub fn kernel_inception_distance(
    x: &Features<'_>,
    y: &Features<'_>,
    subsets: usize,
    subset_size: usize,
    seed: u64,
) -> Result<Kid, FidError> {
    if x.dim != y.dim {
        return Err(FidError::DimensionMismatch(x.dim, y.dim));
    }
    let m = subset_size.min(x.n()).min(y.n());
    if m < 2 {
        return Err(FidError::TooFewSamples {
            what: "KID subset",
            n: m,
            min: 2,
        });
    }
    let mut rng = mammo_rand::Rng::from_keys(seed, &[0x006b_6964]); // "kid"
    let values: Vec<f64> = (0..subsets.max(1))
        .map(|_| {
            let xi = rng.sample_indices(x.n(), m);
            let yi = rng.sample_indices(y.n(), m);
            mmd2_unbiased(x, &xi, y, &yi)
        })
        .collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let std =
        (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / values.len() as f64).sqrt();
    Ok(Kid {
        mean,
        std,
        subsets: values.len(),
        subset_size: m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_sets_have_zero_distance() {
        let data: Vec<f32> = (0..40 * 5)
            .map(|i| ((i * 7919) % 97) as f32 / 10.0)
            .collect();
        let f = Features::new(&data, 5).unwrap();
        let s = GaussianStats::from_features(&f).unwrap();
        assert!(frechet_distance(&s, &s).unwrap().abs() < 1e-9);
    }

    #[test]
    fn one_dimensional_closed_form() {
        // N(m1, s1^2) vs N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2
        let a = GaussianStats {
            n: 10,
            mu: DVector::from_vec(vec![1.0]),
            sigma: DMatrix::from_vec(1, 1, vec![4.0]),
        };
        let b = GaussianStats {
            n: 10,
            mu: DVector::from_vec(vec![3.0]),
            sigma: DMatrix::from_vec(1, 1, vec![9.0]),
        };
        assert!((frechet_distance(&a, &b).unwrap() - (4.0 + 1.0)).abs() < 1e-12);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Features::new(&[1.0, 2.0, 3.0], 2).unwrap_err(),
            FidError::Ragged(3, 2)
        );
        let one = [1.0f32, 2.0];
        let f = Features::new(&one, 2).unwrap();
        assert_eq!(
            GaussianStats::from_features(&f).unwrap_err().to_string(),
            "covariance: 1 samples, at least 2 needed"
        );
    }
}
