//! MaxViT's two ways of cutting a channels-last feature map into attention groups
//! (Tu et al., "MaxViT: Multi-Axis Vision Transformer", 2022, section 3.2; timm
//! `window_partition`, `window_reverse`, `grid_partition`, `grid_reverse` in
//! `timm/models/maxxvit.py`).
//!
//! - Block (window) attention: non-overlapping `p x p` windows of neighbouring pixels.
//! - Grid attention: a fixed `p x p` grid spread over the whole map, so each group holds pixels
//!   `H / p` apart (a dilated, global mixing).
//!
//! Both return `[B * groups, p_h * p_w, C]` token groups, and the `*_reverse` functions put
//! them back exactly where they came from.

use burn::tensor::Tensor;

/// Which partition an attention layer uses (timm `partition_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// Non-overlapping windows of neighbouring pixels (timm `'block'`).
    Block,
    /// A strided grid over the whole map (timm `'grid'`).
    Grid,
}

impl Partition {
    /// `[B, H, W, C]` to `[B * groups, size_h * size_w, C]`.
    ///
    /// Panics if `H` or `W` is not a multiple of the partition size, naming both (timm asserts
    /// the same).
    pub fn split(self, x: Tensor<4>, size: [usize; 2]) -> Tensor<3> {
        let [b, h, w, c] = x.dims();
        let [ph, pw] = size;
        assert!(
            h % ph == 0 && w % pw == 0,
            "{self:?} partition: feature map {h}x{w} is not divisible by the partition size \
             {ph}x{pw}"
        );
        match self {
            Partition::Block => x
                .reshape([b, h / ph, ph, w / pw, pw, c]) // [B, nH, ph, nW, pw, C]
                .permute([0, 1, 3, 2, 4, 5]) // [B, nH, nW, ph, pw, C]
                .reshape([b * (h / ph) * (w / pw), ph * pw, c]), // [B*nH*nW, ph*pw, C]
            Partition::Grid => x
                .reshape([b, ph, h / ph, pw, w / pw, c]) // [B, ph, H/ph, pw, W/pw, C]
                .permute([0, 2, 4, 1, 3, 5]) // [B, H/ph, W/pw, ph, pw, C]
                .reshape([b * (h / ph) * (w / pw), ph * pw, c]), // [B*H/ph*W/pw, ph*pw, C]
        }
    }

    /// Inverse of [`Self::split`]: `[B * groups, size_h * size_w, C]` back to `[B, H, W, C]`.
    pub fn merge(self, groups: Tensor<3>, size: [usize; 2], hw: [usize; 2]) -> Tensor<4> {
        let [n, _, c] = groups.dims();
        let [ph, pw] = size;
        let [h, w] = hw;
        let b = n / ((h / ph) * (w / pw));
        match self {
            Partition::Block => groups
                .reshape([b, h / ph, w / pw, ph, pw, c]) // [B, nH, nW, ph, pw, C]
                .permute([0, 1, 3, 2, 4, 5]) // [B, nH, ph, nW, pw, C]
                .reshape([b, h, w, c]),
            Partition::Grid => groups
                .reshape([b, h / ph, w / pw, ph, pw, c]) // [B, H/ph, W/pw, ph, pw, C]
                .permute([0, 3, 1, 4, 2, 5]) // [B, ph, H/ph, pw, W/pw, C]
                .reshape([b, h, w, c]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn ramp(shape: [usize; 4], device: &Device) -> Tensor<4> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| i as f32).collect();
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    /// On a 4x4 map with 2x2 partitions, hand-checked: the first block window holds pixels
    /// (0,0), (0,1), (1,0), (1,1); the first grid group holds (0,0), (0,2), (2,0), (2,2).
    #[test]
    fn partitions_pick_the_right_pixels_and_invert() {
        let device = Device::flex();
        let x = ramp([1, 4, 4, 1], &device); // value = 4 * row + col
        let block: Vec<f32> = Partition::Block
            .split(x.clone(), [2, 2])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(&block[..4], &[0.0, 1.0, 4.0, 5.0]);
        assert_eq!(&block[4..8], &[2.0, 3.0, 6.0, 7.0]);
        let grid: Vec<f32> = Partition::Grid
            .split(x.clone(), [2, 2])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(&grid[..4], &[0.0, 2.0, 8.0, 10.0]);
        assert_eq!(&grid[4..8], &[1.0, 3.0, 9.0, 11.0]);

        let x = ramp([2, 8, 4, 3], &device);
        for p in [Partition::Block, Partition::Grid] {
            let back = p.merge(p.split(x.clone(), [2, 2]), [2, 2], [8, 4]);
            assert_eq!(back.into_data(), x.clone().into_data(), "{p:?}");
        }
    }
}
