//! Slice kernels behind [`super`]'s fused operations: SiLU forward/backward, batch norm
//! (statistics, normalise + activation, backward), convolutions and max pooling on
//! contiguous NCHW `f32` data, and the optimiser's Adam step.
//!
//! Each loop is written once, branch-free, and compiled three times: for AVX-512, for AVX2 +
//! FMA (the widest the CPU has is picked at run time) and for the baseline target. Large
//! inputs are split across rayon's pool, the pool flex itself runs on.

/// Elements per parallel chunk of the elementwise kernels (256 KiB of f32).
const CHUNK: usize = 1 << 16;

/// Pointwise activation fused into the normalisation pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// No activation.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x * sigmoid(x)`.
    Silu,
}

impl Act {
    /// Stable code passed through the backend-extension boundary.
    pub fn code(self) -> u8 {
        match self {
            Act::Identity => 0,
            Act::Relu => 1,
            Act::Relu6 => 2,
            Act::Silu => 3,
        }
    }

    /// Inverse of [`Act::code`].
    pub fn from_code(code: u8) -> Act {
        match code {
            1 => Act::Relu,
            2 => Act::Relu6,
            3 => Act::Silu,
            _ => Act::Identity,
        }
    }
}

/// `a * b + c`, fused where the target has FMA.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `exp(x)` without branches (Cephes `expf`: range reduction by ln 2 in two parts, degree-6
/// polynomial, exponent built from the integer part). Relative error about 2 ulp on
/// [-87.3, 88.3]; inputs outside are clamped, so the result is always finite and non-zero.
#[inline(always)]
fn exp_f32<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.3);
    let n = madd::<FMA>(x, LOG2E, 0.5).floor();
    let r = madd::<FMA>(n, -LN2_LO, madd::<FMA>(n, -LN2_HI, x));
    let mut p = 1.987_569_1e-4_f32;
    p = madd::<FMA>(p, r, 1.398_199_9e-3);
    p = madd::<FMA>(p, r, 8.333_452e-3);
    p = madd::<FMA>(p, r, 4.166_579_6e-2);
    p = madd::<FMA>(p, r, 1.666_666_5e-1);
    p = madd::<FMA>(p, r, 0.5);
    let y = madd::<FMA>(p, r * r, r) + 1.0;
    // 2^n from the bits of `n + 1.5 * 2^23`, whose low mantissa bits hold the integer `n`
    // (in [-126, 127] here) in two's complement: `n as i32` is a saturating conversion that
    // LLVM does not vectorise (it became sixteen scalar compares and moves per vector, half
    // of EfficientNet-B0's normalise + SiLU pass). A NaN input stays NaN through `y`.
    const MAGIC: f32 = 12_582_912.0;
    let int = (n + MAGIC).to_bits().wrapping_sub(MAGIC.to_bits());
    let scale = f32::from_bits(int.wrapping_add(127) << 23);
    y * scale
}

/// `1 / (1 + exp(-x))`.
#[inline(always)]
fn sigmoid_f32<const FMA: bool>(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32::<FMA>(-x))
}

/// `x * sigmoid(x)`.
#[inline(always)]
fn silu_f32<const FMA: bool>(x: f32) -> f32 {
    x * sigmoid_f32::<FMA>(x)
}

/// Runs `$body` (generic over `const FMA: bool`) compiled for AVX-512 (F + VL) when the CPU
/// has it, else for AVX2 + FMA when it has those, else for the baseline target: one binary,
/// the widest vector unit present, picked at run time.
macro_rules! multiversion {
    (fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body<const FMA: bool>($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    body::<true>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports the features `avx512` was compiled for.
                    unsafe { avx512($($arg),*) };
                    return;
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    body::<true>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports the features `avx2` was compiled for.
                    unsafe { avx2($($arg),*) };
                    return;
                }
            }
            body::<false>($($arg),*)
        }
    };
}

mod act;
mod adam;
mod dense;
mod depthwise;
mod direct;
mod norm;
mod pool;
#[cfg(test)]
mod tests;

pub use act::*;
pub use adam::*;
pub use dense::*;
pub use depthwise::*;
pub use norm::*;
pub use pool::*;
