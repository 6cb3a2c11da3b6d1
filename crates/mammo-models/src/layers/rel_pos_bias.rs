//! Learned relative position bias for window attention (Swin, Liu et al. 2021, section 3.2),
//! timm `RelPosBias` (`timm/layers/pos_embed_rel.py`): one learned value per head and per
//! relative offset `(dy, dx)` inside a `p_h x p_w` window, added to the attention logits.

use burn::module::{Initializer, Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// timm `RelPosBias` (no prefix tokens); key `relative_position_bias_table`,
/// `[(2 p_h - 1) (2 p_w - 1), heads]`.
///
/// timm's `relative_position_index` is a non-persistent buffer (absent from the state dict);
/// here it is recomputed from the window size at every forward pass
/// ([`relative_position_index`]), so it is never stored or loaded either.
#[derive(Module, Debug)]
pub struct RelPosBias {
    pub relative_position_bias_table: Param<Tensor<2>>,
    /// Window `[height, width]` the table was made for.
    pub window: [usize; 2],
}

impl RelPosBias {
    /// A table for `window` and `num_heads`, initialised as timm does (truncated normal, std
    /// 0.02; a plain normal here, the truncation at 2 std changes nothing that matters).
    pub fn new(window: [usize; 2], num_heads: usize, device: &Device) -> Self {
        let distances = (2 * window[0] - 1) * (2 * window[1] - 1);
        let init = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        Self {
            relative_position_bias_table: init.init([distances, num_heads], device),
            window,
        }
    }

    /// The bias for every query/key pair, `[1, heads, N, N]` with `N = p_h * p_w` (timm
    /// `get_bias`).
    pub fn bias(&self) -> Tensor<4> {
        let table = self.relative_position_bias_table.val(); // [D, heads]
        let [_, heads] = table.dims();
        let n = self.window[0] * self.window[1];
        let index = relative_position_index(self.window);
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [n * n]), &table.device());
        table
            .select(0, index) // [N*N, heads]
            .reshape([n, n, heads]) // [N, N, heads]
            .permute([2, 0, 1]) // [heads, N, N]
            .unsqueeze::<4>() // [1, heads, N, N]
    }
}

/// timm `gen_relative_position_index`: for tokens `i = y_i * p_w + x_i` and `j`, the table row
/// of their offset, `(y_i - y_j + p_h - 1) * (2 p_w - 1) + (x_i - x_j + p_w - 1)`, flattened
/// row-major over `(i, j)`.
pub fn relative_position_index(window: [usize; 2]) -> Vec<i64> {
    let [ph, pw] = window.map(|v| v as i64);
    let coords: Vec<(i64, i64)> = (0..ph).flat_map(|y| (0..pw).map(move |x| (y, x))).collect();
    coords
        .iter()
        .flat_map(|&(yi, xi)| {
            coords
                .iter()
                .map(move |&(yj, xj)| (yi - yj + ph - 1) * (2 * pw - 1) + (xi - xj + pw - 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2x2 window, hand-checked: the table is 3x3 offsets (dy, dx) in -1..=1, row
    /// `(dy + 1) * 3 + (dx + 1)`; token 0 = (0,0) vs token 3 = (1,1) is (-1,-1) -> 0,
    /// token 3 vs token 0 is (1,1) -> 8, the diagonal is (0,0) -> 4.
    #[test]
    fn index_of_a_2x2_window() {
        assert_eq!(
            relative_position_index([2, 2]),
            vec![4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]
        );
    }

    #[test]
    fn index_covers_the_table() {
        let idx = relative_position_index([8, 8]);
        assert_eq!(idx.len(), 64 * 64);
        assert_eq!(*idx.iter().max().unwrap(), 15 * 15 - 1);
        assert_eq!(*idx.iter().min().unwrap(), 0);
    }
}
