//! The class-activation-map family as arithmetic on one layer's activations `A` and the
//! gradient `G = d logit / d A` (both `[C, h, w]`, row-major). One driver
//! ([`cam_map`]); each method only decides how channels are weighted. Formulas as in
//! pytorch-grad-cam (jacobgil), whose output the parity test compares against.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Zhou et al. 2016: the classifier's weights. For a global-average-pool + linear head,
    /// `d logit / d A_c(i, j) = w_c / (h w)`, so `w_c` is the spatial *sum* of the gradient;
    /// mammo's three families all end in such a head.
    Cam,
    /// Selvaraju et al. 2017: spatial mean of the gradient per channel.
    GradCam,
    /// Chattopadhyay et al. 2018, eq. 19 (pytorch-grad-cam's closed form).
    #[serde(rename = "gradcam++")]
    GradCamPlusPlus,
    /// Jiang et al. 2021: positive gradient times activation, per position.
    LayerCam,
    /// Draelos & Carin 2020: gradient times activation, per position.
    HiResCam,
}

pub const METHODS: [Method; 5] = [
    Method::Cam,
    Method::GradCam,
    Method::GradCamPlusPlus,
    Method::LayerCam,
    Method::HiResCam,
];

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Cam => "cam",
            Method::GradCam => "gradcam",
            Method::GradCamPlusPlus => "gradcam++",
            Method::LayerCam => "layercam",
            Method::HiResCam => "hirescam",
        }
    }

    /// The name as its paper writes it ("Grad-CAM++"), for tables and figures.
    pub fn label(self) -> &'static str {
        match self {
            Method::Cam => "CAM",
            Method::GradCam => "Grad-CAM",
            Method::GradCamPlusPlus => "Grad-CAM++",
            Method::LayerCam => "LayerCAM",
            Method::HiResCam => "HiResCAM",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        METHODS
            .into_iter()
            .find(|m| m.name() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                format!("unknown method {s:?} (known: cam, gradcam, gradcam++, layercam, hirescam)")
            })
    }
}

/// The raw map `[h, w]`, ReLU applied: `relu(sum_c weight_c(i, j) * A_c(i, j))`.
pub fn cam_map(
    method: Method,
    activations: &[f32],
    grads: &[f32],
    c: usize,
    h: usize,
    w: usize,
) -> Vec<f32> {
    let hw = h * w;
    assert_eq!(activations.len(), c * hw);
    assert_eq!(grads.len(), c * hw);
    let mut out = vec![0f64; hw];
    for ch in 0..c {
        let a = &activations[ch * hw..(ch + 1) * hw];
        let g = &grads[ch * hw..(ch + 1) * hw];
        let sum = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>();
        let channel_weight = match method {
            Method::Cam => Some(sum(g)),
            Method::GradCam => Some(sum(g) / hw as f64),
            Method::GradCamPlusPlus => {
                let sum_a = sum(a);
                let mut weight = 0f64;
                for &gv in g {
                    let gv = gv as f64;
                    if gv != 0.0 {
                        let g2 = gv * gv;
                        let aij = g2 / (2.0 * g2 + sum_a * g2 * gv + 1e-6);
                        weight += gv.max(0.0) * aij;
                    }
                }
                Some(weight)
            }
            Method::LayerCam | Method::HiResCam => None,
        };
        match channel_weight {
            Some(wc) => out
                .iter_mut()
                .zip(a)
                .for_each(|(o, &av)| *o += wc * av as f64),
            None => {
                let positive = method == Method::LayerCam;
                for ((o, &av), &gv) in out.iter_mut().zip(a).zip(g) {
                    let gv = if positive { gv.max(0.0) } else { gv };
                    *o += gv as f64 * av as f64;
                }
            }
        }
    }
    out.into_iter().map(|v| v.max(0.0) as f32).collect()
}

/// Min-max scaling to [0, 1] as pytorch-grad-cam does (`(x - min) / (1e-7 + max)`).
pub fn min_max(map: &[f32]) -> Vec<f32> {
    let lo = map.iter().copied().fold(f32::INFINITY, f32::min);
    let shifted: Vec<f32> = map.iter().map(|v| v - lo).collect();
    let hi = shifted.iter().copied().fold(0f32, f32::max);
    shifted.into_iter().map(|v| v / (1e-7 + hi)).collect()
}

/// Bilinear resize with pixel-centre alignment and edge clamping (OpenCV `INTER_LINEAR`,
/// PyTorch `align_corners=False`).
pub fn resize_bilinear(src: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let coords = |n_out: usize, n_in: usize| -> Vec<(usize, usize, f32)> {
        let scale = n_in as f64 / n_out as f64;
        (0..n_out)
            .map(|d| {
                let s = ((d as f64 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (s.floor() as usize).min(n_in - 1);
                let i1 = (i0 + 1).min(n_in - 1);
                (i0, i1, (s - i0 as f64).clamp(0.0, 1.0) as f32)
            })
            .collect()
    };
    let (ys, xs) = (coords(out_h, h), coords(out_w, w));
    let mut out = Vec::with_capacity(out_h * out_w);
    for &(y0, y1, fy) in &ys {
        for &(x0, x1, fx) in &xs {
            let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
            let bottom = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// The heat map at image resolution in [0, 1], as pytorch-grad-cam returns it for one target
/// layer: scale, resize, then (aggregating one layer) ReLU and scale again.
pub fn heat_map(raw: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let up = resize_bilinear(&min_max(raw), h, w, out_h, out_w);
    min_max(&up.into_iter().map(|v| v.max(0.0)).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_by_hand() {
        // 2 channels of 1x2.
        let a = [1.0, 2.0, 3.0, -1.0];
        let g = [0.5, -0.5, 1.0, 2.0];
        // GradCAM weights: [0, 1.5] -> map [4.5, -1.5] -> relu [4.5, 0]
        assert_eq!(cam_map(Method::GradCam, &a, &g, 2, 1, 2), vec![4.5, 0.0]);
        // CAM: weights [0, 3] -> [9, -3] -> [9, 0]
        assert_eq!(cam_map(Method::Cam, &a, &g, 2, 1, 2), vec![9.0, 0.0]);
        // HiResCAM: [0.5 + 3, -1 - 2] -> [3.5, 0]
        assert_eq!(cam_map(Method::HiResCam, &a, &g, 2, 1, 2), vec![3.5, 0.0]);
        // LayerCAM: [0.5 + 3, 0 - 2] -> [3.5, 0]
        assert_eq!(cam_map(Method::LayerCam, &a, &g, 2, 1, 2), vec![3.5, 0.0]);
        // Grad-CAM++ channel 1: sum_a = 2; g=1: 1/(2+2+1e-6); g=2: 4/(8+16+1e-6)
        // -> w = 1*0.25 + 2*(1/6)
        let w1 = 1.0 / (4.0 + 1e-6) + 2.0 * 4.0 / (24.0 + 1e-6);
        // channel 0: sum_a = 3; only g = 0.5 is positive
        let g0 = 0.5f64;
        let w0 = g0 * (g0 * g0) / (2.0 * g0 * g0 + 3.0 * g0 * g0 * g0 + 1e-6);
        let m = cam_map(Method::GradCamPlusPlus, &a, &g, 2, 1, 2);
        assert!((m[0] as f64 - (w0 * 1.0 + w1 * 3.0)).abs() < 1e-6);
        assert_eq!(m[1], 0.0); // w0*2 - w1 < 0
        assert_eq!(
            "GradCAM++".parse::<Method>().unwrap(),
            Method::GradCamPlusPlus
        );
    }

    #[test]
    fn resize_matches_opencv_rules() {
        // 2 -> 4: OpenCV gives [a, a*.75+b*.25, a*.25+b*.75, b]
        let r = resize_bilinear(&[0.0, 1.0], 1, 2, 1, 4);
        assert_eq!(r, vec![0.0, 0.25, 0.75, 1.0]);
        let same = resize_bilinear(&[1.0, 2.0, 3.0, 4.0], 2, 2, 2, 2);
        assert_eq!(same, vec![1.0, 2.0, 3.0, 4.0]);
        let hm = heat_map(&[0.0, 2.0, 4.0, 8.0], 2, 2, 4, 4);
        assert!(hm.iter().all(|v| (0.0..=1.0).contains(v)) && hm[15] > 0.99 && hm[0] == 0.0);
    }
}
