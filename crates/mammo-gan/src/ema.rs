//! Exponential moving average of the generator's weights (what is sampled and evaluated).

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

use crate::generator::Generator;

struct Collect(HashMap<ParamId, Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().inner();
        let n = t.shape().num_elements();
        self.0.insert(param.id, t.reshape([n]));
    }
}

struct Blend {
    source: HashMap<ParamId, Tensor<1>>,
    beta: f64,
    matched: usize,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(src) = self.source.get(&param.id).cloned() else {
            return param;
        };
        self.matched += 1;
        let beta = self.beta;
        param.map(|t| {
            let dims = t.dims();
            let src = src.to_device(&t.device()).reshape(dims);
            // lerp form: a parameter equal in both (a frozen stage) stays bit-identical
            t.clone() + (src - t) * (1.0 - beta)
        })
    }
}

/// `ema <- ema + (1 - beta) (g - ema)` for every parameter of `g` (matched by id: `ema` must
/// have been made from `g`, e.g. by `g.valid()`), and `w_avg` copied. Parameters of frozen
/// stages, equal in both, stay bit-identical. Panics when a parameter has no match, which
/// would mean the EMA silently froze.
pub fn update(ema: Generator, g: &Generator, beta: f64) -> Generator {
    let mut c = Collect(HashMap::new());
    g.visit(&mut c);
    let expected = c.0.len();
    let mut blend = Blend {
        source: c.0,
        beta,
        matched: 0,
    };
    let ema = ema.map(&mut blend);
    assert_eq!(
        blend.matched, expected,
        "EMA matched {} of {expected} trainable generator parameters",
        blend.matched
    );
    let avg = g.mapping.w_avg.value_sync().inner();
    ema.mapping
        .w_avg
        .update(avg.to_device(&ema.input.val().device()));
    ema
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GanConfig;
    use crate::generator::GeneratorArch;
    use burn::tensor::Device;

    #[test]
    fn ema_moves_towards_the_generator() {
        let d = Device::flex().autodiff();
        d.seed(7);
        let arch = GeneratorArch::stem(&GanConfig::cpu().generator);
        let g = Generator::new(&arch, &d);
        let ema = g.valid();
        // shift g's input by +1: ema moves 1 - beta of the way
        let g = Generator {
            input: g.input.clone().map(|t| t + 1.0),
            ..g
        };
        let before: Vec<f32> = ema.input.val().into_data().try_into_vec::<f32>().unwrap();
        let ema = update(ema, &g, 0.75);
        let after: Vec<f32> = ema.input.val().into_data().try_into_vec::<f32>().unwrap();
        for (a, b) in before.iter().zip(&after) {
            assert!((b - a - 0.25).abs() < 1e-5);
        }
        // a parameter equal in both stays bit-identical (frozen stages)
        let same = update(g.valid(), &g, 0.75);
        let want: Vec<f32> = g.input.val().into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(
            want,
            same.input.val().into_data().try_into_vec::<f32>().unwrap()
        );
    }
}
