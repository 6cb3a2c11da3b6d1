use super::*;

fn sigmoid_ref(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn inputs(len: usize, scale: f32) -> Vec<f32> {
    // Deterministic spread over [-scale, scale], with the edges and zero included.
    (0..len)
        .map(|i| {
            let t = ((i as u64 * 2_654_435_761) % 10_007) as f32 / 10_006.0;
            (2.0 * t - 1.0) * scale
        })
        .collect()
}

#[test]
fn exp_matches_std_in_relative_error() {
    // A sweep over the whole unclamped range (every power of two the exponent can build,
    // both ends included) and a few named points.
    let sweep = (0..=200_000).map(|i| -87.3f32 + (88.3 + 87.3) * i as f32 / 200_000.0);
    let named = [
        -87.0f32, -20.0, -1.0, -1e-3, 0.0, 1e-3, 0.5, 1.0, 10.0, 50.0, 88.0,
    ];
    for x in sweep.chain(named) {
        for fma in [false, true] {
            let got = if fma {
                exp_f32::<true>(x)
            } else {
                exp_f32::<false>(x)
            } as f64;
            let want = (x as f64).exp();
            assert!(
                ((got - want) / want).abs() < 5e-7,
                "exp({x}) = {got}, want {want}"
            );
        }
    }
    // Clamped, never inf or 0; NaN stays NaN.
    assert!(exp_f32::<false>(1000.0).is_finite());
    assert!(exp_f32::<false>(-1000.0) > 0.0);
    assert!(exp_f32::<true>(f32::NAN).is_nan());
    assert!(silu_f32::<true>(f32::NAN).is_nan());
}

#[test]
fn silu_and_sigmoid_match_f64_reference() {
    let x = inputs(100_003, 30.0); // spans chunks, remainder lanes
    let mut y = vec![0.0; x.len()];
    silu(&x, &mut y);
    let mut s = vec![0.0; x.len()];
    sigmoid(&x, &mut s);
    for i in 0..x.len() {
        let r = sigmoid_ref(x[i] as f64);
        assert!(
            (s[i] as f64 - r).abs() < 1e-6,
            "sigmoid({}) = {}, want {r}",
            x[i],
            s[i]
        );
        let want = x[i] as f64 * r;
        assert!(
            (y[i] as f64 - want).abs() <= 1e-6 * want.abs().max(1.0),
            "silu({})",
            x[i]
        );
    }
    assert_eq!(s[0], sigmoid_f32::<false>(x[0]));
}

#[test]
fn silu_backward_matches_finite_difference_of_the_reference() {
    let x = inputs(4099, 8.0);
    let dy: Vec<f32> = inputs(4099, 1.0).into_iter().rev().collect();
    let mut dx = vec![0.0; x.len()];
    silu_backward(&x, &dy, &mut dx);
    for i in 0..x.len() {
        let f = |v: f64| v * sigmoid_ref(v);
        let h = 1e-5;
        let d = (f(x[i] as f64 + h) - f(x[i] as f64 - h)) / (2.0 * h);
        let want = dy[i] as f64 * d;
        assert!(
            (dx[i] as f64 - want).abs() < 1e-5,
            "silu'({}) * {}: {} vs {want}",
            x[i],
            dy[i],
            dx[i]
        );
    }
}

#[test]
fn channel_stats_are_exact_with_a_large_mean() {
    let (n, c, hw) = (3, 5, 37);
    let mut x = inputs(n * c * hw, 1.0);
    for (i, v) in x.iter_mut().enumerate() {
        *v += 1000.0 * ((i / hw) % c) as f32; // channel means 0, 1000, 2000, ...
    }
    let (mean, var) = channel_stats(&x, n, c, hw);
    for ch in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|b| {
                x[(b * c + ch) * hw..(b * c + ch + 1) * hw]
                    .iter()
                    .map(|&v| v as f64)
            })
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let v = vals.iter().map(|&x| (x - m) * (x - m)).sum::<f64>() / vals.len() as f64;
        assert!(
            (mean[ch] as f64 - m).abs() < 1e-4 * m.abs().max(1.0),
            "mean {ch}"
        );
        assert!(
            (var[ch] as f64 - v).abs() < 1e-4 * v,
            "var {ch}: {} vs {v}",
            var[ch]
        );
    }
}

#[test]
fn affine_act_applies_the_channel_of_each_plane() {
    let (n, c, hw) = (2, 3, 5);
    let x = inputs(n * c * hw, 3.0);
    let scale = [1.0, -2.0, 0.5];
    let shift = [0.0, 1.0, -1.0];
    for act in [Act::Identity, Act::Relu, Act::Relu6, Act::Silu] {
        let mut y = vec![0.0; x.len()];
        affine_act(&x, &mut y, &scale, &shift, hw, act);
        for (i, &v) in y.iter().enumerate() {
            let ch = (i / hw) % c;
            let z = x[i] as f64 * scale[ch] as f64 + shift[ch] as f64;
            let want = match act {
                Act::Identity => z,
                Act::Relu => z.max(0.0),
                Act::Relu6 => z.clamp(0.0, 6.0),
                Act::Silu => z * sigmoid_ref(z),
            };
            assert!(
                (v as f64 - want).abs() < 1e-5,
                "{act:?} at {i}: {v} vs {want}"
            );
        }
    }
}

#[test]
fn batch_norm_backward_matches_finite_differences() {
    let (n, c, hw) = (2, 3, 6);
    let x: Vec<f32> = inputs(n * c * hw, 2.0);
    let dy: Vec<f32> = inputs(n * c * hw, 1.0).into_iter().rev().collect();
    let gamma = [1.5f32, -0.7, 0.3];
    // The third channel's shift puts part of it past ReLU6's upper kink.
    let beta = [0.1f32, 0.2, 5.8];
    let eps = 1e-5;
    for act in [Act::Identity, Act::Relu, Act::Relu6, Act::Silu] {
        let f = |z: f64| match act {
            Act::Identity => z,
            Act::Relu => z.max(0.0),
            Act::Relu6 => z.clamp(0.0, 6.0),
            Act::Silu => z * sigmoid_ref(z),
        };
        // loss = sum(dy * act(bn(x))), in f64.
        let loss = |x: &[f64], g: &[f64], b: &[f64]| -> f64 {
            let mut total = 0.0;
            for ch in 0..c {
                let idx: Vec<usize> = (0..n)
                    .flat_map(|bi| (0..hw).map(move |k| (bi * c + ch) * hw + k))
                    .collect();
                let m = idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64;
                let v = idx.iter().map(|&i| (x[i] - m).powi(2)).sum::<f64>() / idx.len() as f64;
                for &i in &idx {
                    total += dy[i] as f64 * f((x[i] - m) / (v + eps).sqrt() * g[ch] + b[ch]);
                }
            }
            total
        };
        let (mean, var) = channel_stats(&x, n, c, hw);
        let (_, _, inv_std) = fold_stats(&gamma, &beta, &mean, &var, eps);
        let (dx, dg, db) =
            batch_norm_backward(&x, &dy, &gamma, &beta, &mean, &inv_std, n, c, hw, act);
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let g64: Vec<f64> = gamma.iter().map(|&v| v as f64).collect();
        let b64: Vec<f64> = beta.iter().map(|&v| v as f64).collect();
        // Each gradient against the central difference of the loss in that argument.
        let h = 1e-6;
        let check = |what: &str, grad: &[f32], at: &[f64], loss: &dyn Fn(&[f64]) -> f64| {
            assert_eq!(grad.len(), at.len(), "{act:?} {what}: length");
            for (i, &got) in grad.iter().enumerate() {
                let (mut up, mut dn) = (at.to_vec(), at.to_vec());
                up[i] += h;
                dn[i] -= h;
                let want = (loss(&up) - loss(&dn)) / (2.0 * h);
                assert!(
                    (got as f64 - want).abs() < 1e-4,
                    "{act:?} {what}[{i}] {got} vs {want}"
                );
            }
        };
        check("dx", &dx, &x64, &|v| loss(v, &g64, &b64));
        check("dgamma", &dg, &g64, &|v| loss(&x64, v, &b64));
        check("dbeta", &db, &b64, &|v| loss(&x64, &g64, v));
    }
}

/// Direct 7-loop depthwise convolution in f64, and its two gradients by definition.
fn dw_reference(
    x: &[f32],
    wt: &[f32],
    dy: &[f32],
    n: usize,
    c: usize,
    g: Window,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut y = vec![0.0; n * c * g.oh * g.ow];
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; wt.len()];
    for b in 0..n {
        for ch in 0..c {
            let p = b * c + ch;
            for o in 0..g.oh {
                for q in 0..g.ow {
                    for i in 0..g.kh {
                        for j in 0..g.kw {
                            let (r, s) = (
                                (o * g.sh + i) as isize - g.ph as isize,
                                (q * g.sw + j) as isize - g.pw as isize,
                            );
                            if r < 0 || s < 0 || r >= g.h as isize || s >= g.w as isize {
                                continue;
                            }
                            let xi = p * g.h * g.w + r as usize * g.w + s as usize;
                            let yi = p * g.oh * g.ow + o * g.ow + q;
                            let wi = ch * g.kh * g.kw + i * g.kw + j;
                            y[yi] += x[xi] as f64 * wt[wi] as f64;
                            dx[xi] += dy[yi] as f64 * wt[wi] as f64;
                            dw[wi] += dy[yi] as f64 * x[xi] as f64;
                        }
                    }
                }
            }
        }
    }
    (y, dx, dw)
}

#[test]
fn depthwise_matches_the_direct_definition() {
    // 3x3/1, 5x5/2, asymmetric (TF SAME-like) padding, odd sizes, a kernel wider than the
    // padded border, widths over and under one AVX register, and rows with several blocks of
    // 16 columns every tap covers plus a remainder (with padding, strided, without padding).
    let cases = [
        (9, 13, 3, 1, 1, 1, 1, 1),
        (12, 11, 5, 2, 1, 2, 2, 2),
        (7, 20, 3, 2, 0, 0, 1, 1),
        (16, 17, 5, 1, 2, 2, 2, 2),
        (4, 3, 5, 1, 2, 2, 2, 2),
        (5, 40, 3, 1, 1, 1, 1, 1),
        (6, 75, 5, 2, 1, 2, 2, 2),
        (3, 37, 3, 1, 0, 0, 0, 0),
    ];
    for (h, w, k, s, pt, pl, pb, pr) in cases {
        let (n, c) = (2, 3);
        let oh = (h + pt + pb - k) / s + 1;
        let ow = (w + pl + pr - k) / s + 1;
        let g = Window {
            h,
            w,
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            ph: pt,
            pw: pl,
            oh,
            ow,
        };
        let x = inputs(n * c * h * w, 2.0);
        let wt = inputs(c * k * k, 1.0).into_iter().rev().collect::<Vec<_>>();
        let dy = inputs(n * c * oh * ow, 1.5);
        let (y_ref, dx_ref, dw_ref) = dw_reference(&x, &wt, &dy, n, c, g);
        let y = depthwise_forward(&x, &wt, n, c, g);
        let dx = depthwise_input_grad(&dy, &wt, n, c, g);
        let dw = depthwise_weight_grad(&x, &dy, n, c, g);
        let close = |a: &[f32], b: &[f64], what: &str| {
            assert_eq!(a.len(), b.len(), "{what} {g:?}");
            for (i, (&a, &b)) in a.iter().zip(b).enumerate() {
                assert!(
                    (a as f64 - b).abs() < 1e-4 * b.abs().max(1.0),
                    "{what}[{i}] {a} vs {b} {g:?}"
                );
            }
        };
        close(&y, &y_ref, "y");
        close(&dx, &dx_ref, "dx");
        close(&dw, &dw_ref, "dw");
    }
}

#[test]
fn max_pool_matches_the_direct_definition_and_routes_gradients_to_the_first_maximum() {
    for (h, w, k, s, p) in [
        (9, 13, 3, 2, 1),
        (8, 8, 2, 2, 0),
        (7, 10, 3, 1, 1),
        (5, 4, 3, 2, 1),
    ] {
        let planes = 3;
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        let g = Window {
            h,
            w,
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            ph: p,
            pw: p,
            oh,
            ow,
        };
        // Coarse values, so windows hold ties.
        let x: Vec<f32> = inputs(planes * h * w, 2.0)
            .iter()
            .map(|v| v.round())
            .collect();
        let (y, idx) = max_pool_forward(&x, planes, g, true);
        let (y2, none) = max_pool_forward(&x, planes, g, false);
        assert_eq!(y, y2);
        assert!(none.is_empty());
        for pl in 0..planes {
            for o in 0..oh {
                for q in 0..ow {
                    let (mut best, mut at) = (f32::NEG_INFINITY, usize::MAX);
                    for i in 0..k {
                        for j in 0..k {
                            let (r, c) = (
                                (o * s + i) as isize - p as isize,
                                (q * s + j) as isize - p as isize,
                            );
                            if r < 0 || c < 0 || r >= h as isize || c >= w as isize {
                                continue;
                            }
                            let v = x[pl * h * w + r as usize * w + c as usize];
                            if v > best {
                                best = v;
                                at = r as usize * w + c as usize;
                            }
                        }
                    }
                    let out = pl * oh * ow + o * ow + q;
                    assert_eq!(y[out], best, "{g:?} plane {pl} ({o}, {q})");
                    assert_eq!(idx[out] as usize, at, "{g:?} plane {pl} ({o}, {q}) argmax");
                }
            }
        }
        let dy = inputs(planes * oh * ow, 1.0);
        let dx = max_pool_backward(&dy, &idx, planes, g);
        let mut want = vec![0.0f32; planes * h * w];
        for (out, &d) in dy.iter().enumerate() {
            want[(out / (oh * ow)) * h * w + idx[out] as usize] += d;
        }
        assert_eq!(dx, want);
    }
}

/// Dense convolution (groups 1) in f64 by definition: output and both gradients.
fn dense_reference(x: &[f32], wt: &[f32], dy: &[f32], d: Dense) -> [Vec<f64>; 3] {
    let g = d.window;
    let mut y = vec![0.0; d.n * d.co * g.oh * g.ow];
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; wt.len()];
    for b in 0..d.n {
        for o in 0..d.co {
            for ci in 0..d.c {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        for i in 0..g.kh {
                            for j in 0..g.kw {
                                let r = (oy * g.sh + i) as isize - g.ph as isize;
                                let s = (ox * g.sw + j) as isize - g.pw as isize;
                                if r < 0 || s < 0 || r >= g.h as isize || s >= g.w as isize {
                                    continue;
                                }
                                let xi = (b * d.c + ci) * g.h * g.w + r as usize * g.w + s as usize;
                                let yi = ((b * d.co + o) * g.oh + oy) * g.ow + ox;
                                let wi = ((o * d.c + ci) * g.kh + i) * g.kw + j;
                                y[yi] += x[xi] as f64 * wt[wi] as f64;
                                dx[xi] += dy[yi] as f64 * wt[wi] as f64;
                                dw[wi] += dy[yi] as f64 * x[xi] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    [y, dx, dw]
}

#[test]
fn dense_matches_the_direct_definition() {
    // 3x3/1 and /2, 1x1/1 and /2 (ResNet's shortcut), the 7x7/2 stem, asymmetric padding, a
    // kernel wider than the border, one-pixel outputs, channel counts past gemm's panels.
    // COL_FLOATS is 600 in tests, so these
    // run as several groups of images (and groups of one), accumulating across groups.
    // Cases with filters larger than 1x1 also run the direct kernels (direct.rs; the input
    // gradient at stride 1 only), checked with and without them:
    // channel counts off its register tiles, rows shorter and longer than a tile, rectangular
    // and even filters, padding beyond `k - 1` (its input gradient falls back), no padding.
    let cases = [
        // (n, c, co, h, w, (kh, kw), s, pt, pl, pb, pr)
        (3, 4, 5, 9, 13, (3, 3), 1, 1, 1, 1, 1),
        (2, 3, 4, 12, 11, (3, 3), 2, 1, 1, 1, 1),
        (3, 6, 7, 8, 8, (1, 1), 1, 0, 0, 0, 0),
        (2, 5, 3, 9, 7, (1, 1), 2, 0, 0, 0, 0),
        (2, 1, 4, 15, 14, (7, 7), 2, 3, 3, 3, 3),
        (2, 3, 2, 7, 20, (3, 3), 2, 0, 0, 1, 1),
        (1, 2, 3, 4, 3, (5, 5), 1, 2, 2, 2, 2),
        (4, 3, 2, 2, 2, (3, 3), 1, 1, 1, 1, 1),
        // Wide enough for gemm's 64-row AVX-512 panels (with a remainder) and its threaded
        // path (m*n*k >= 128^3): the weight gradient's transposed gather and product.
        (2, 32, 70, 16, 16, (3, 3), 1, 1, 1, 1, 1),
        (2, 96, 80, 12, 12, (1, 1), 1, 0, 0, 0, 0),
        // Groups of two images (k = 1) on both sides of the 64-channel switch.
        (3, 1, 70, 32, 32, (1, 1), 2, 0, 0, 0, 0),
        (3, 1, 40, 32, 32, (1, 1), 2, 0, 0, 0, 0),
        // The direct kernel's edges.
        (1, 3, 5, 7, 9, (3, 3), 1, 1, 1, 1, 1),
        (2, 16, 24, 8, 8, (3, 3), 1, 1, 1, 1, 1),
        (3, 4, 9, 5, 11, (5, 3), 1, 2, 1, 2, 1),
        (2, 3, 4, 6, 6, (2, 2), 1, 0, 0, 1, 1),
        (2, 3, 4, 6, 5, (1, 3), 1, 1, 1, 1, 1),
        (1, 2, 3, 3, 40, (3, 3), 1, 0, 0, 0, 0),
        (1, 8, 17, 30, 70, (3, 3), 1, 1, 1, 1, 1),
        (3, 5, 9, 12, 25, (3, 3), 1, 1, 1, 1, 1),
        // Strided ones through the direct kernels' phase planes: stride 3 with a 5x4 filter,
        // the stem at a size where rows end mid-phase.
        (2, 2, 5, 11, 13, (5, 4), 3, 2, 1, 2, 2),
        (1, 1, 9, 21, 19, (7, 7), 2, 3, 3, 3, 3),
    ];
    for (n, c, co, h, w, (kh, kw), s, pt, pl, pb, pr) in cases {
        let window = Window::new([h, w], [kh, kw], [s, s], [pt, pl, pb, pr]).unwrap();
        let d = Dense { n, c, co, window };
        let x = inputs(n * c * h * w, 2.0);
        let wt = inputs(co * c * kh * kw, 1.0)
            .into_iter()
            .rev()
            .collect::<Vec<_>>();
        let dy = inputs(n * co * window.oh * window.ow, 1.5);
        let [y_ref, dx_ref, dw_ref] = dense_reference(&x, &wt, &dy, d);
        let close = |a: &[f32], b: &[f64], what: &str| {
            assert_eq!(a.len(), b.len(), "{what} {d:?}");
            for (i, (&a, &b)) in a.iter().zip(b).enumerate() {
                assert!(
                    (a as f64 - b).abs() < 1e-4 * b.abs().max(1.0),
                    "{what}[{i}] {a} vs {b} {d:?}"
                );
            }
        };
        close(&dense_forward(&x, &wt, d), &y_ref, "y");
        close(&dense_input_grad(&dy, &wt, d), &dx_ref, "dx");
        close(&dense_weight_grad(&x, &dy, d), &dw_ref, "dw");
        close(&dense_forward_with(&x, &wt, d, false), &y_ref, "y (im2col)");
        close(
            &dense_input_grad_with(&dy, &wt, d, false),
            &dx_ref,
            "dx (col2im)",
        );
        close(
            &dense_weight_grad_with(&x, &dy, d, false),
            &dw_ref,
            "dw (im2col)",
        );
        close(
            &dense_weight_grad_with(&x, &dy, d, true),
            &dw_ref,
            "dw (direct where stride 1)",
        );
    }
}

#[test]
fn max_pool_takes_the_first_nan_of_a_window() {
    let nan = f32::NAN;
    // 2x2 windows, stride 2: [1 NaN / NaN 5], [2 3 / NaN 1], [4 1 / 1 4], [-1 -2 / -3 -4].
    #[rustfmt::skip]
    let x = [
        1.0, nan, 2.0, 3.0,
        nan, 5.0, nan, 1.0,
        4.0, 1.0, -1.0, -2.0,
        1.0, 4.0, -3.0, -4.0,
    ];
    let g = Window::new([4, 4], [2, 2], [2, 2], [0, 0, 0, 0]).unwrap();
    let (y, idx) = max_pool_forward(&x, 1, g, true);
    let (y2, _) = max_pool_forward(&x, 1, g, false);
    assert!(y[0].is_nan() && y[1].is_nan() && y2[0].is_nan() && y2[1].is_nan());
    assert_eq!(&y[2..], &[4.0, -1.0]);
    assert_eq!(&y2[2..], &[4.0, -1.0]);
    assert_eq!(idx, vec![1, 6, 8, 10]);
}

#[test]
fn affine_act_in_place_matches_the_two_buffer_pass() {
    let (c, hw) = (3, 37);
    let x = inputs(2 * c * hw, 4.0);
    let scale = [1.5f32, -0.5, 0.25];
    let shift = [0.1f32, -2.0, 5.9];
    for act in [Act::Identity, Act::Relu, Act::Relu6, Act::Silu] {
        let mut want = vec![0.0; x.len()];
        affine_act(&x, &mut want, &scale, &shift, hw, act);
        let mut got = x.clone();
        affine_act_in_place(&mut got, &scale, &shift, hw, act);
        assert_eq!(got, want, "{act:?}");
    }
}
