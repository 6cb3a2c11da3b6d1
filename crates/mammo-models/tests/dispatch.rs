//! One binary for every x86-64 CPU: mammo's kernels and gemm's microkernels (AVX-512 ones
//! included) are picked at run time. This test runs itself again under QEMU's user-mode
//! emulator as CPUs without AVX-512 (`Haswell`: AVX2 + FMA) and without AVX at all
//! (`qemu64`). An instruction the emulated CPU lacks kills the child with SIGILL; the child also
//! checks a dense convolution (forward and both gradients, wide enough for gemm's largest panels
//! and its threaded path) and SiLU against definitions in f64.
//!
//! Needs `qemu-x86_64` (Debian's `qemu-user`, which `.ci/run` installs); without it the test
//! says so and passes, unless `MAMMO_TEST_QEMU=1` asks for it (CI sets it).

use std::process::Command;

use mammo_models::kernels::cpu::{
    Dense, Window, dense_forward, dense_input_grad, dense_weight_grad, silu,
};

/// Set in the child, to the CPU model it runs as.
const CHILD: &str = "MAMMO_DISPATCH_CPU";

fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * 7919 + seed * 104_729) % 2001) as f32 - 1000.0) / 1000.0)
        .collect()
}

/// `|a - b| <= 1e-4 * max(1, |b|)` for every element.
fn close(what: &str, a: &[f32], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (&a, &b)) in a.iter().zip(b).enumerate() {
        assert!(
            (a as f64 - b).abs() <= 1e-4 * b.abs().max(1.0),
            "{what}[{i}]: {a} vs {b}"
        );
    }
}

/// The kernels on this CPU, against their definitions.
fn check_kernels() {
    for co in [40, 70] {
        let (n, c, h, w) = (2, 24, 14, 14);
        let g = Window::new([h, w], [3, 3], [1, 1], [1, 1, 1, 1]).unwrap();
        let d = Dense {
            n,
            c,
            co,
            window: g,
        };
        let x = values(n * c * h * w, 1);
        let wt = values(co * c * 9, 2);
        let dy = values(n * co * g.oh * g.ow, 3);
        let mut y = vec![0.0f64; n * co * g.oh * g.ow];
        let mut dx = vec![0.0f64; x.len()];
        let mut dw = vec![0.0f64; wt.len()];
        for img in 0..n {
            for o in 0..co {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let yi = ((img * co + o) * g.oh + oy) * g.ow + ox;
                        for ci in 0..c {
                            for i in 0..3 {
                                for j in 0..3 {
                                    let (iy, ix) = (oy + i, ox + j);
                                    if iy < 1 || ix < 1 || iy > h || ix > w {
                                        continue;
                                    }
                                    let xi = ((img * c + ci) * h + iy - 1) * w + ix - 1;
                                    let wi = ((o * c + ci) * 3 + i) * 3 + j;
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
        close("dense forward", &dense_forward(&x, &wt, d), &y);
        close("dense input gradient", &dense_input_grad(&dy, &wt, d), &dx);
        close("dense weight gradient", &dense_weight_grad(&x, &dy, d), &dw);
    }
    let x: Vec<f32> = values(70_000, 4).iter().map(|v| v * 20.0).collect();
    let mut y = vec![0.0f32; x.len()];
    silu(&x, &mut y);
    let want: Vec<f64> = x
        .iter()
        .map(|&v| v as f64 / (1.0 + (-(v as f64)).exp()))
        .collect();
    close("silu", &y, &want);
}

#[test]
fn kernels_run_and_agree_on_cpus_without_avx512_or_avx() {
    if std::env::var_os(CHILD).is_some() {
        check_kernels();
        return;
    }
    if !cfg!(target_arch = "x86_64") {
        eprintln!("not an x86-64 build: nothing to emulate");
        return;
    }
    let required = std::env::var("MAMMO_TEST_QEMU").is_ok_and(|v| v == "1");
    if Command::new("qemu-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            !required,
            "MAMMO_TEST_QEMU=1 but qemu-x86_64 is not installed"
        );
        eprintln!("skipped: qemu-x86_64 not installed (Debian: qemu-user)");
        return;
    }
    let me = std::env::current_exe().unwrap();
    for cpu in ["Haswell", "qemu64"] {
        let out = Command::new("qemu-x86_64")
            .args(["-cpu", cpu])
            .arg(&me)
            .args([
                "kernels_run_and_agree_on_cpus_without_avx512_or_avx",
                "--exact",
                "--test-threads=1",
            ])
            .env(CHILD, cpu)
            .env("RAYON_NUM_THREADS", "2")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "as a {cpu} CPU: {:?}\n{text}",
            out.status
        );
        assert!(text.contains("1 passed"), "as a {cpu} CPU:\n{text}");
    }
}
