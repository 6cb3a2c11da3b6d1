//! The generator: a mapping network `z -> w` (with the tracked `w_avg` truncation pulls
//! towards) and a style-modulated synthesis network grown in stages, as in StyleGAN-XL: a
//! stem of `syn_layers` layers trained at `stem_res` px, then super-resolution stages of
//! `head_layers` layers each, trained with everything before them frozen.
//!
//! Differences from StyleGAN-XL, on purpose and recorded here: the synthesis starts from a
//! learned 4x4 constant (StyleGAN2) rather than Fourier features, and up-samples with the
//! `[1, 3, 3, 1]` filter (bilinear) rather than StyleGAN3's alias-free filtered
//! non-linearities; each stage's image is added to the up-sampled image of the stages before
//! it (StyleGAN2's skip generator), with the new head's output layer starting at zero. There
//! is no class conditioning (positives only) and no path-length regulariser (StyleGAN-XL
//! trains without one).

use burn::module::{Module, Param, RunningState};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::GeneratorConfig;
use crate::error::{GanError, Result};
use crate::layers::{FullyConnected, Noise, SynthesisLayer, ToRgb, upsample2x};

/// What a generator is: its capacity and the output resolution of each stage (`[16]` for a
/// stem, `[16, 32]` after one super-resolution stage, ...). Saved as `generator.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorArch {
    pub config: GeneratorConfig,
    pub resolutions: Vec<usize>,
}

/// One synthesis layer of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    pub stage: usize,
    pub in_ch: usize,
    pub out_ch: usize,
    pub up: bool,
    /// Resolution of the layer's output.
    pub res: usize,
}

impl GeneratorArch {
    pub fn stem(config: &GeneratorConfig) -> Self {
        Self {
            config: config.clone(),
            resolutions: vec![config.stem_res],
        }
    }

    /// This generator grown by one super-resolution stage to `res`.
    pub fn grown(&self, res: usize) -> Result<Self> {
        let last = self.output_res();
        if !res.is_power_of_two() || res <= last {
            return Err(GanError::Config(format!(
                "a super-resolution stage must reach a power of two above {last} px, not {res}"
            )));
        }
        let ups = (res / last).trailing_zeros() as usize;
        if ups > self.config.head_layers {
            return Err(GanError::Config(format!(
                "{last} -> {res} px needs {ups} up-sampling layers but head_layers is {}",
                self.config.head_layers
            )));
        }
        let mut r = self.resolutions.clone();
        r.push(res);
        Ok(Self {
            config: self.config.clone(),
            resolutions: r,
        })
    }

    pub fn output_res(&self) -> usize {
        *self.resolutions.last().expect("at least the stem")
    }

    pub fn stages(&self) -> usize {
        self.resolutions.len()
    }

    /// The synthesis layers, stage by stage. Up-sampling layers are spread evenly over a
    /// stage; the stem starts from the 4x4 constant.
    pub fn plan(&self) -> Vec<LayerSpec> {
        let c = &self.config;
        let mut out = Vec::new();
        let mut res = 4;
        let mut ch = c.channels(4);
        for (stage, &target) in self.resolutions.iter().enumerate() {
            let n = if stage == 0 {
                c.syn_layers
            } else {
                c.head_layers
            };
            let ups = (target / res).trailing_zeros() as usize;
            let positions: Vec<usize> = if stage == 0 {
                (0..ups)
                    .map(|k| ((k + 1) as f64 * n as f64 / (ups + 1) as f64).round() as usize)
                    .collect()
            } else {
                (0..ups)
                    .map(|k| (k as f64 * n as f64 / ups as f64).round() as usize)
                    .collect()
            };
            for i in 0..n {
                let up = positions.contains(&i);
                if up {
                    res *= 2;
                }
                let out_ch = c.channels(res);
                out.push(LayerSpec {
                    stage,
                    in_ch: ch,
                    out_ch,
                    up,
                    res,
                });
                ch = out_ch;
            }
            debug_assert_eq!(res, target);
        }
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serialisable")
    }
}

/// `z -> w`: normalised latent through `mapping_layers` equalised-lr layers (lr multiplier
/// 0.01), with the running mean `w_avg`.
#[derive(Module, Debug)]
pub struct Mapping {
    pub fc: Vec<FullyConnected>,
    pub w_avg: RunningState<Tensor<1>>,
}

/// Decay of the `w_avg` running mean per step (StyleGAN's `w_avg_beta`).
const W_AVG_BETA: f64 = 0.995;

impl Mapping {
    pub fn new(c: &GeneratorConfig, device: &Device) -> Self {
        let fc = (0..c.mapping_layers)
            .map(|i| {
                FullyConnected::new(
                    if i == 0 { c.z_dim } else { c.w_dim },
                    c.w_dim,
                    0.01,
                    0.0,
                    true,
                    device,
                )
            })
            .collect();
        Self {
            fc,
            w_avg: RunningState::new(Tensor::zeros([c.w_dim], device)),
        }
    }

    /// `[N, z_dim]` to `[N, w_dim]`, truncated towards `w_avg` by `psi` (1: none).
    pub fn forward(&self, z: Tensor<2>, psi: f64) -> Tensor<2> {
        let norm = ((z.clone() * z.clone()).mean_dim(1) + 1e-8).sqrt(); // [N, 1]
        let w = self.fc.iter().fold(z / norm, |x, fc| fc.forward(x));
        if psi == 1.0 {
            return w;
        }
        let avg = self
            .w_avg
            .value_sync()
            .to_device(&w.device())
            .unsqueeze_dim(0);
        avg.clone() + (w - avg) * psi
    }

    /// Moves `w_avg` towards the batch mean of `w`.
    pub fn track(&self, w: Tensor<2>) {
        let mean = w.detach().inner().mean_dim(0).squeeze_dim(0); // [w_dim]
        let avg = self.w_avg.value_sync().inner().to_device(&mean.device());
        self.w_avg.update(mean.clone() + (avg - mean) * W_AVG_BETA);
    }
}

/// The generator network. Build with [`Generator::new`] from a [`GeneratorArch`].
#[derive(Module, Debug)]
pub struct Generator {
    pub mapping: Mapping,
    /// Learned `[C, 4, 4]` input.
    pub input: Param<Tensor<3>>,
    pub layers: Vec<SynthesisLayer>,
    /// One output layer per stage.
    pub torgb: Vec<ToRgb>,
    /// Index one past each stage's last layer.
    pub(crate) stage_ends: Vec<usize>,
}

impl Generator {
    pub fn new(arch: &GeneratorArch, device: &Device) -> Self {
        let c = &arch.config;
        let plan = arch.plan();
        let layers = plan
            .iter()
            .map(|l| SynthesisLayer::new(c.w_dim, l.in_ch, l.out_ch, l.up, device))
            .collect();
        let stage_ends = (0..arch.stages())
            .map(|s| {
                plan.iter()
                    .rposition(|l| l.stage == s)
                    .expect("every stage has layers")
                    + 1
            })
            .collect::<Vec<_>>();
        let torgb = (0..arch.stages())
            .map(|s| {
                ToRgb::new(
                    c.w_dim,
                    plan[stage_ends[s] - 1].out_ch,
                    c.img_channels,
                    s > 0,
                    device,
                )
            })
            .collect();
        Self {
            mapping: Mapping::new(c, device),
            input: Param::from_tensor(Tensor::random(
                [c.channels(4), 4, 4],
                Distribution::Normal(0.0, 1.0),
                device,
            )),
            layers,
            torgb,
            stage_ends,
        }
    }

    /// Freezes the mapping network and every stage before the last (what a
    /// super-resolution stage trains with).
    pub fn freeze_earlier_stages(self) -> Self {
        let stages = self.stage_ends.len();
        if stages < 2 {
            return self;
        }
        let frozen_layers = self.stage_ends[stages - 2];
        let Self {
            mapping,
            input,
            layers,
            torgb,
            stage_ends,
        } = self;
        Self {
            mapping: mapping.freeze(),
            input: input.set_require_grad(false),
            layers: layers
                .into_iter()
                .enumerate()
                .map(|(i, l)| if i < frozen_layers { l.freeze() } else { l })
                .collect(),
            torgb: torgb
                .into_iter()
                .enumerate()
                .map(|(i, t)| if i + 1 < stages { t.freeze() } else { t })
                .collect(),
            stage_ends,
        }
    }

    /// Images in `[-1, 1]` (not clamped) from styles `w` `[N, w_dim]`.
    pub fn synthesis(&self, w: Tensor<2>, noise: Noise) -> Tensor<4> {
        let n = w.dims()[0];
        let mut x = self.input.val().unsqueeze_dim::<4>(0).repeat_dim(0, n);
        let mut img: Option<Tensor<4>> = None;
        let mut start = 0;
        for (stage, &end) in self.stage_ends.iter().enumerate() {
            for layer in &self.layers[start..end] {
                x = layer.forward(x, w.clone(), noise);
            }
            let rgb = self.torgb[stage].forward(x.clone(), w.clone());
            img = Some(match img {
                None => rgb,
                Some(prev) => {
                    let mut prev = prev;
                    while prev.dims()[2] < rgb.dims()[2] {
                        prev = upsample2x(prev);
                    }
                    prev + rgb
                }
            });
            start = end;
        }
        img.expect("at least one stage")
    }

    /// `[N, z_dim]` latents to `[N, C, R, R]` images.
    pub fn forward(&self, z: Tensor<2>, psi: f64, noise: Noise) -> Tensor<4> {
        self.synthesis(self.mapping.forward(z, psi), noise)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GanConfig;

    #[test]
    fn plans_grow_to_the_stage_resolutions() {
        let p = GanConfig::paper().generator;
        let stem = GeneratorArch::stem(&p);
        let plan = stem.plan();
        assert_eq!(plan.len(), 7);
        assert_eq!(
            plan.iter().map(|l| l.res).collect::<Vec<_>>(),
            [4, 4, 8, 8, 8, 16, 16]
        );
        let g = stem.grown(32).unwrap().grown(256).unwrap();
        let plan = g.plan();
        assert_eq!(plan.len(), 7 + 4 + 4);
        assert_eq!(
            plan.iter().map(|l| l.res).collect::<Vec<_>>()[7..],
            [32, 32, 32, 32, 64, 128, 128, 256]
        );
        assert!(plan.windows(2).all(|w| w[0].out_ch == w[1].in_ch));
        assert_eq!(plan.last().unwrap().out_ch, 64); // min(16384 / 256, 256)
        assert!(stem.grown(16).is_err());
        assert!(
            stem.grown(16 * 32)
                .unwrap_err()
                .to_string()
                .contains("head_layers is 4")
        );
    }

    #[test]
    fn generator_shapes_and_truncation() {
        let d = Device::flex();
        d.seed(1);
        let c = GanConfig::cpu().generator;
        let arch = GeneratorArch::stem(&c).grown(32).unwrap();
        let g = Generator::new(&arch, &d);
        let z = Tensor::<2>::random([3, c.z_dim], Distribution::Normal(0.0, 1.0), &d);
        let img = g.forward(z.clone(), 1.0, Noise::Random);
        assert_eq!(img.dims(), [3, 1, 32, 32]);
        let v: Vec<f32> = img.into_data().try_into_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| x.is_finite()));
        // psi = 0 maps every latent to w_avg: identical images without noise
        let img = g.forward(z, 0.0, Noise::Off);
        let a: Vec<f32> = img
            .clone()
            .slice(0..1)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let b: Vec<f32> = img.slice(2..3).into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(a, b);
    }
}
