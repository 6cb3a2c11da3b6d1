//! Model benchmark: inference forward and one training step (forward + BCE-with-logits +
//! backward + Adam), mammo on burn against PyTorch + timm on the same cores, printed as a
//! Markdown table with ratios. Numbers, not verdicts: this is not a timed test.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target cargo bench -p mammo-models --bench models -- \
//!     --python /work/venv-torch/bin/python --threads 2
//! ```
//!
//! Options (after `--`): model names (default `resnet18 efficientnet_b0`), `--batch 8`,
//! `--size 256`, `--in-chans 1`, `--device flex` (repeatable; `cuda:0` with feature `cuda`),
//! `--threads N` (rayon pool, which flex runs on; PyTorch gets the same), `--warmup 2`,
//! `--iters 5`, `--rounds 1` (repeat mammo and PyTorch alternately, pooling the timings),
//! `--python PATH` (without it only mammo is measured), `--python-device cpu`,
//! `--kernels fused|burn|both` (mammo's fused flex kernels, burn's own ops, or both rows),
//! `--profile` (per-op breakdown of ResNet inference on the first device, plus PyTorch's own
//! profiler when `--python` is given), `--only forward|train`. See bench/README.md.

/// The allocator the `mammo` binary runs with (freed large blocks kept for reuse), so the bench
/// measures what users run.
#[global_allocator]
static ALLOC: mammo_alloc::BlockCache = mammo_alloc::BlockCache::new(mammo_alloc::DEFAULT_BUDGET);

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use burn::module::{Module, Param};
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Int, Tensor};
use clap::Parser;
use mammo_models::kernels::{self, Act, max_pool2d, norm_act};
use mammo_models::optim::AdamConfig;
use mammo_models::resnet::{Block, ResNet};
use mammo_models::{Classifier, Model, ModelConfig, create_model, parse_device};

#[derive(Debug, Parser)]
#[command(about = "mammo-models benchmark: forward and train-step time vs PyTorch + timm")]
struct Args {
    /// timm model names from the registry.
    #[arg(default_values_t = ["resnet18".to_string(), "efficientnet_b0".to_string()])]
    models: Vec<String>,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Square input size.
    #[arg(long, default_value_t = 256)]
    size: usize,
    #[arg(long, default_value_t = 1)]
    in_chans: usize,
    /// burn devices to measure (repeatable): flex, cuda, cuda:<i> (feature `cuda`).
    #[arg(long = "device", default_values_t = ["flex".to_string()])]
    devices: Vec<String>,
    /// Threads of the global rayon pool (flex's CPU threads) and of PyTorch. Default: rayon's
    /// default (RAYON_NUM_THREADS or all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Untimed iterations before the timed ones.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed iterations; the median is reported.
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Python with torch and timm (see bench/README.md). Without it only mammo is measured.
    #[arg(long)]
    python: Option<PathBuf>,
    /// The PyTorch + timm script.
    #[arg(
        long,
        default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/python/timm_bench.py")
    )]
    script: PathBuf,
    /// Device for PyTorch: cpu or cuda[:i].
    #[arg(long, default_value = "cpu")]
    python_device: String,
    /// Also print a per-op time breakdown of ResNet inference (mammo and, with --python, PyTorch).
    #[arg(long)]
    profile: bool,
    /// Which layer implementations to time on flex: `fused` (mammo's kernels, the default in
    /// the library), `burn` (burn's own ops, `MAMMO_KERNELS=burn`) or `both`.
    #[arg(long, default_value = "both")]
    kernels: String,
    /// Repeat the whole measurement (mammo, then PyTorch; the other way round in even rounds)
    /// and pool the timings, so a slow spell of a shared machine hits both sides.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Measure only `forward` or only `train`.
    #[arg(long)]
    only: Option<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Every timed iteration after `warmup` untimed ones, milliseconds.
fn time_it(warmup: usize, iters: usize, mut f: impl FnMut()) -> Vec<f64> {
    for _ in 0..warmup {
        f();
    }
    (0..iters.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

fn sync(device: &Device) {
    device.sync().expect("device sync failed");
}

fn config(args: &Args, name: &str) -> ModelConfig {
    ModelConfig::new(name)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_in_chans(args.in_chans)
        .with_input_size([args.size, args.size])
}

fn input(args: &Args, device: &Device) -> Tensor<4> {
    Tensor::random(
        [args.batch, args.in_chans, args.size, args.size],
        Distribution::Normal(0.0, 1.0),
        device,
    )
}

/// Inference: plain (non-autodiff) device, `valid()` model (BN running stats, no dropout).
fn bench_forward(args: &Args, name: &str, device: &Device) -> Vec<f64> {
    let model = create_model(&config(args, name), device)
        .unwrap_or_else(|e| panic!("{e}"))
        .valid();
    let x = input(args, device);
    time_it(args.warmup, args.iters, || {
        let logits = model.forward(x.clone());
        // Reading the logits back waits for the whole forward on any backend.
        let _ = logits.into_data();
    })
}

/// One optimisation step: forward on the autodiff device, BCE-with-logits, backward, Adam.
fn bench_train(args: &Args, name: &str, device: &Device) -> Vec<f64> {
    let device = device.clone().autodiff();
    let mut model =
        Some(create_model(&config(args, name), &device).unwrap_or_else(|e| panic!("{e}")));
    // mammo's Adam: burn's arithmetic, fused on flex (burn's own optimiser under
    // `--kernels burn` and on other devices).
    let mut optim = AdamConfig::default().init();
    let loss_fn = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);
    let x = input(args, &device);
    let targets: Tensor<2, Int> =
        Tensor::<2>::random([args.batch, 1], Distribution::Bernoulli(0.5), &device).int();
    time_it(args.warmup, args.iters, || {
        let m = model.take().expect("model");
        let logits = m.forward(x.clone());
        let loss = loss_fn.forward(logits, targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let m = optim.step(1e-4, m, grads);
        sync(&device);
        model = Some(m);
    })
}

/// One model on one backend: every timed iteration, pooled over rounds.
#[derive(Debug, Clone, Default)]
struct Row {
    model: String,
    backend: String,
    forward_all: Vec<f64>,
    train_all: Vec<f64>,
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

fn min(v: &[f64]) -> Option<f64> {
    v.iter().copied().min_by(f64::total_cmp)
}

/// Add `row`'s timings to the row of the same model and backend.
fn pool(rows: &mut Vec<Row>, row: Row) {
    match rows
        .iter_mut()
        .find(|r| r.model == row.model && r.backend == row.backend)
    {
        Some(r) => {
            r.forward_all.extend(row.forward_all);
            r.train_all.extend(row.train_all);
        }
        None => rows.push(row),
    }
}

fn all_ms(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default()
}

fn run_python(args: &Args, threads: usize) -> Result<(Vec<Row>, Vec<serde_json::Value>), String> {
    let python = args.python.as_ref().expect("--python");
    let mut cmd = Command::new(python);
    cmd.arg(&args.script)
        .args(&args.models)
        .args(["--batch", &args.batch.to_string()])
        .args(["--size", &args.size.to_string()])
        .args(["--in-chans", &args.in_chans.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--iters", &args.iters.to_string()])
        .args(["--device", &args.python_device]);
    if args.profile {
        cmd.arg("--profile");
    }
    if let Some(only) = &args.only {
        cmd.args(["--only", only]);
    }
    eprintln!("running {cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}):\n{}",
            args.script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        rows.push(Row {
            model: v["model"].as_str().unwrap_or("?").to_string(),
            backend: v["backend"].as_str().unwrap_or("pytorch").to_string(),
            forward_all: all_ms(&v["forward_all_ms"]),
            train_all: all_ms(&v["train_step_all_ms"]),
        });
        lines.push(v);
    }
    Ok((rows, lines))
}

/// One PyTorch measurement (if `--python`), pooled into `rows`.
fn run_python_round(
    args: &Args,
    threads: usize,
    rows: &mut Vec<Row>,
    lines: &mut Vec<serde_json::Value>,
) {
    if args.python.is_none() {
        if lines.is_empty() && rows.is_empty() {
            eprintln!("(no --python: PyTorch + timm not measured; see bench/README.md)");
        }
        return;
    }
    match run_python(args, threads) {
        Ok((r, l)) => {
            for row in r {
                pool(rows, row);
            }
            lines.extend(l);
        }
        Err(e) => eprintln!("PyTorch side not measured: {e}"),
    }
}

/// "x times slower/faster" for mammo's time against PyTorch's.
fn ratio(mammo: Option<f64>, torch: Option<f64>) -> String {
    match (mammo, torch) {
        (Some(m), Some(t)) if m > 0.0 && t > 0.0 => {
            if m >= t {
                format!("{:.2}x slower", m / t)
            } else {
                format!("{:.2}x faster", t / m)
            }
        }
        _ => "-".to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Per-op profile of ResNet inference: every conv / BN / ReLU / add / pool timed on its own
// (each op is run and synchronised separately; flex executes eagerly), three ways: burn's
// ops, batch norm folded into the conv weights and bias, and mammo's fused batch norm + ReLU
// kernel (what the model runs).

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    BurnOps,
    Folded,
    Fused,
}

#[derive(Default)]
struct OpTimes {
    ms: BTreeMap<&'static str, f64>,
    /// Convolutions (plain or folded) by shape: `kxk cin->cout /stride @ HxW in`.
    conv_ms: BTreeMap<String, f64>,
}

impl OpTimes {
    fn run<T>(&mut self, device: &Device, op: &'static str, f: impl FnOnce() -> T) -> T {
        sync(device);
        let t = Instant::now();
        let out = f();
        sync(device);
        *self.ms.entry(op).or_default() += t.elapsed().as_secs_f64() * 1e3;
        out
    }
}

/// `conv` followed by inference-mode `bn`, as one conv with bias:
/// `w' = w * s`, `b' = (b - mean) * s + beta` with `s = gamma / sqrt(var + eps)`.
fn fold_bn(conv: &Conv2d, bn: &BatchNorm) -> Conv2d {
    let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt(); // [C]
    let [c, _, _, _] = conv.weight.dims();
    let bias = match &conv.bias {
        Some(b) => b.val() - bn.running_mean.value(),
        None => bn.running_mean.value().neg(),
    };
    let mut folded = conv.clone();
    folded.weight = Param::from_tensor(conv.weight.val() * scale.clone().reshape([c, 1, 1, 1]));
    folded.bias = Some(Param::from_tensor(bias * scale + bn.beta.val()));
    folded
}

fn conv_bn(
    t: &mut OpTimes,
    device: &Device,
    (conv, bn): (&Conv2d, &BatchNorm),
    mode: Mode,
    relu_after: bool,
    x: Tensor<4>,
) -> Tensor<4> {
    let [cout, cin, k, _] = conv.weight.dims();
    let [_, _, h, w] = x.dims();
    let label = format!("{k}x{k} {cin}->{cout} /{} @ {h}x{w}", conv.stride[0]);
    let before = t.ms.values().sum::<f64>();
    let y = match mode {
        Mode::Folded => {
            let f = fold_bn(conv, bn);
            t.run(device, "conv+bias (BN folded)", || f.forward(x))
        }
        Mode::BurnOps | Mode::Fused => t.run(device, "conv", || conv.forward(x)),
    };
    *t.conv_ms.entry(label).or_default() += t.ms.values().sum::<f64>() - before;
    match (mode, relu_after) {
        (Mode::Fused, true) => t.run(device, "batch_norm+relu (fused)", || {
            norm_act(bn, y, Act::Relu)
        }),
        (Mode::Fused, false) => t.run(device, "batch_norm (fused)", || {
            norm_act(bn, y, Act::Identity)
        }),
        (Mode::BurnOps, _) => {
            let y = t.run(device, "batch_norm", || bn.forward(y));
            if relu_after {
                t.run(device, "relu", || relu(y))
            } else {
                y
            }
        }
        (Mode::Folded, _) => {
            if relu_after {
                t.run(device, "relu", || relu(y))
            } else {
                y
            }
        }
    }
}

fn profile_resnet(r: &ResNet, device: &Device, x: Tensor<4>, mode: Mode) -> OpTimes {
    let mut t = OpTimes::default();
    let y = conv_bn(&mut t, device, (&r.conv1, &r.bn1), mode, true, x);
    let mut y = match mode {
        Mode::Fused => t.run(device, "max_pool (mammo)", || max_pool2d(&r.maxpool, y)),
        _ => t.run(device, "max_pool", || r.maxpool.forward(y)),
    };
    for block in r
        .layer1
        .iter()
        .chain(&r.layer2)
        .chain(&r.layer3)
        .chain(&r.layer4)
    {
        let shortcut = |t: &mut OpTimes, ds: &Option<(Conv2d, BatchNorm)>, y: Tensor<4>| match ds {
            Some((c, n)) => conv_bn(t, device, (c, n), mode, false, y),
            None => y,
        };
        y = match block {
            Block::Basic(b) => {
                let h = conv_bn(&mut t, device, (&b.conv1, &b.bn1), mode, true, y.clone());
                let h = conv_bn(&mut t, device, (&b.conv2, &b.bn2), mode, false, h);
                let s = shortcut(&mut t, &b.downsample, y);
                let h = t.run(device, "add", || h + s);
                t.run(device, "relu", || relu(h))
            }
            Block::Bottleneck(b) => {
                let h = conv_bn(&mut t, device, (&b.conv1, &b.bn1), mode, true, y.clone());
                let h = conv_bn(&mut t, device, (&b.conv2, &b.bn2), mode, true, h);
                let h = conv_bn(&mut t, device, (&b.conv3, &b.bn3), mode, false, h);
                let s = shortcut(&mut t, &b.downsample, y);
                let h = t.run(device, "add", || h + s);
                t.run(device, "relu", || relu(h))
            }
        };
    }
    let logits = t.run(device, "head (pool+fc)", || r.forward_head(y));
    let _ = logits.into_data();
    t
}

fn print_profile(args: &Args, name: &str, device: &Device) {
    let model = create_model(&config(args, name), device)
        .unwrap_or_else(|e| panic!("{e}"))
        .valid();
    let Model::ResNet(r) = &model else {
        eprintln!("--profile: {name} is not a ResNet; per-op breakdown skipped");
        return;
    };
    let x = input(args, device);
    for mode in [Mode::BurnOps, Mode::Folded, Mode::Fused] {
        for _ in 0..args.warmup {
            profile_resnet(r, device, x.clone(), mode);
        }
        // Median per op over the timed runs.
        let runs: Vec<OpTimes> = (0..args.iters.max(1))
            .map(|_| profile_resnet(r, device, x.clone(), mode))
            .collect();
        let mut ops: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for run in &runs {
            for (op, v) in &run.ms {
                ops.entry(op).or_default().push(*v);
            }
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let mut rows: Vec<(&str, f64)> = ops.iter_mut().map(|(k, v)| (*k, med(v))).collect();
        let mut convs: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for run in &runs {
            for (shape, v) in &run.conv_ms {
                convs.entry(shape).or_default().push(*v);
            }
        }
        let mut conv_rows: Vec<(&str, f64)> = convs.iter_mut().map(|(k, v)| (*k, med(v))).collect();
        conv_rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = rows.iter().map(|r| r.1).sum();
        println!();
        println!(
            "mammo {name} inference per op ({}, batch {}, {}x{}x{}){}:",
            dev_label(device),
            args.batch,
            args.in_chans,
            args.size,
            args.size,
            match mode {
                Mode::BurnOps => ", burn ops",
                Mode::Folded => ", burn ops, batch norm folded into conv",
                Mode::Fused => ", mammo's kernels (batch norm + ReLU, max pool)",
            }
        );
        println!();
        println!("| op | ms | share |");
        println!("|---|---:|---:|");
        for (op, v) in &rows {
            println!("| {op} | {v:.1} | {:.0}% |", 100.0 * v / total);
        }
        println!("| total (ops timed one by one) | {total:.1} | |");
        if mode != Mode::Folded {
            let conv_total: f64 = conv_rows.iter().map(|r| r.1).sum();
            println!();
            println!("| conv (all of that shape) | ms | share of conv |");
            println!("|---|---:|---:|");
            for (shape, v) in &conv_rows {
                println!("| {shape} | {v:.1} | {:.0}% |", 100.0 * v / conv_total);
            }
        }
    }
}

fn print_torch_profile(lines: &[serde_json::Value]) {
    for v in lines {
        let Some(p) = v["profile"].as_object() else {
            continue;
        };
        let mut rows: Vec<(&String, f64)> = p
            .iter()
            .filter_map(|(k, v)| Some((k, v.as_f64()?)))
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = rows.iter().map(|r| r.1).sum();
        println!();
        println!(
            "PyTorch {} inference per op (torch.profiler, self CPU time, one forward):",
            v["model"].as_str().unwrap_or("?")
        );
        println!();
        println!("| op | ms | share |");
        println!("|---|---:|---:|");
        for (op, ms) in rows.iter().take(12) {
            println!("| {op} | {ms:.1} | {:.0}% |", 100.0 * ms / total);
        }
        println!("| total | {total:.1} | |");
    }
}

fn dev_label(device: &Device) -> String {
    // `Device<Flex(..)>` etc.: keep it short.
    let d = format!("{device:?}");
    let inner = d.trim_start_matches("Device<").trim_end_matches('>');
    inner.split('(').next().unwrap_or(inner).to_lowercase()
}

/// The CPU (from /proc/cpuinfo, where there is one) and the vector units the kernels can use:
/// the same binary picks AVX-512 or AVX2 + FMA at run time, so the table says which ran.
fn cpu_line() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    #[cfg(target_arch = "x86_64")]
    let units = {
        let has = |yes: bool| if yes { "yes" } else { "no" };
        let avx512 = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl");
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        format!(
            "AVX2 + FMA {}, AVX-512 (F, VL) {}; mammo's elementwise kernels run {}, GEMMs gemm's \
             {} microkernels",
            has(avx2),
            has(avx512),
            if avx512 {
                "AVX-512"
            } else if avx2 {
                "AVX2 + FMA"
            } else {
                "baseline x86-64"
            },
            if std::arch::is_x86_feature_detected!("avx512f") {
                "AVX-512"
            } else if avx2 {
                "AVX2 + FMA"
            } else {
                "baseline"
            }
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let units = "no x86 vector units".to_string();
    format!("CPU: {model}; {units}")
}

fn main() {
    if let Err(e) = ALLOC.budget_from_env() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    let args = Args::parse();
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .expect("setting the rayon thread count");
    }
    let threads = rayon::current_num_threads();
    let (do_forward, do_train) = match args.only.as_deref() {
        None => (true, true),
        Some("forward") => (true, false),
        Some("train") => (false, true),
        Some(other) => panic!("--only forward|train, not {other}"),
    };
    println!("{}", cpu_line());
    eprintln!(
        "batch {}, input {}x{}x{}, rayon threads (flex) {threads}, warm-up {}, median of {}",
        args.batch, args.in_chans, args.size, args.size, args.warmup, args.iters
    );

    let kernel_modes: &[bool] = match args.kernels.as_str() {
        "both" => &[false, true],
        "fused" => &[true],
        "burn" => &[false],
        other => panic!("--kernels fused|burn|both, not {other}"),
    };
    let mut rows = Vec::new();
    let mut torch_rows = Vec::new();
    let mut torch_lines = Vec::new();
    let rounds = args.rounds.max(1);
    for round in 0..rounds {
        if rounds > 1 {
            eprintln!("round {}/{rounds}", round + 1);
        }
        let python_first = round % 2 == 1;
        if python_first {
            run_python_round(&args, threads, &mut torch_rows, &mut torch_lines);
        }
        for dev_name in &args.devices {
            let device = parse_device(dev_name).unwrap_or_else(|e| panic!("{e}"));
            for name in &args.models {
                for &fused in kernel_modes {
                    kernels::set_enabled(fused);
                    let backend = if fused {
                        format!("mammo {dev_name}")
                    } else {
                        format!("mammo {dev_name}, burn ops only")
                    };
                    let forward = do_forward.then(|| bench_forward(&args, name, &device));
                    let train = do_train.then(|| bench_train(&args, name, &device));
                    eprintln!(
                        "{backend} {name}: forward {:?} ms, train step {:?} ms",
                        forward, train
                    );
                    pool(
                        &mut rows,
                        Row {
                            model: name.clone(),
                            backend,
                            forward_all: forward.unwrap_or_default(),
                            train_all: train.unwrap_or_default(),
                        },
                    );
                }
            }
        }
        kernels::set_enabled(true);
        if !python_first {
            run_python_round(&args, threads, &mut torch_rows, &mut torch_lines);
        }
    }

    println!();
    println!(
        "batch {}, {}x{}x{} input, {threads} threads, {} timed iterations after {} warm-up{}; \
         ratios of medians, and of minima in brackets",
        args.batch,
        args.in_chans,
        args.size,
        args.size,
        args.iters,
        args.warmup,
        if rounds > 1 {
            format!(", x {rounds} rounds pooled")
        } else {
            String::new()
        }
    );
    println!();
    println!(
        "| model | backend | forward ms (median / min) | train step ms (median / min) | forward: \
         mammo vs PyTorch | train step: mammo vs PyTorch |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    let cell = |v: &[f64]| match (median(v), min(v)) {
        (Some(m), Some(n)) => format!("{m:.1} / {n:.1}"),
        _ => "-".to_string(),
    };
    // The median's ratio, then the minimum's; the minimum's direction is spelled out when it
    // differs from the median's (it used to be dropped, so "1.03x faster (1.05x)" hid a
    // minimum 1.05x slower).
    let both = |m: &[f64], t: &[f64]| match (ratio(median(m), median(t)), ratio(min(m), min(t))) {
        (r, _) if r == "-" => r,
        (r, q) if r.ends_with("slower") == q.ends_with("slower") => format!(
            "{r} ({})",
            q.trim_end_matches(" slower").trim_end_matches(" faster")
        ),
        (r, q) => format!("{r} (min {q})"),
    };
    for name in &args.models {
        let torch = torch_rows.iter().find(|r: &&Row| &r.model == name);
        let empty = Vec::new();
        let (tf, tt) = torch.map_or((&empty, &empty), |t| (&t.forward_all, &t.train_all));
        for r in rows.iter().filter(|r| &r.model == name) {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                r.model,
                r.backend,
                cell(&r.forward_all),
                cell(&r.train_all),
                both(&r.forward_all, tf),
                both(&r.train_all, tt),
            );
        }
        if let Some(t) = torch {
            println!(
                "| {} | {} | {} | {} | | |",
                t.model,
                t.backend,
                cell(&t.forward_all),
                cell(&t.train_all)
            );
        }
    }
    if let Some(v) = torch_lines.first() {
        println!();
        println!("python versions: {}", v["versions"]);
    }

    if args.profile {
        let device = parse_device(&args.devices[0]).unwrap_or_else(|e| panic!("{e}"));
        for name in &args.models {
            print_profile(&args, name, &device);
        }
        print_torch_profile(&torch_lines);
    }
}
