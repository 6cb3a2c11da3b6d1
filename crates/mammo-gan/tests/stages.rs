//! A tiny GAN end to end on the CPU: stem at 16 px, interrupted and resumed to the same
//! weights as an uninterrupted run, grown to 32 px with the stem frozen, then synthetic
//! positives written as manifest rows that classifier training accepts.

use std::path::{Path, PathBuf};

mod common;

use common::tiny;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use mammo_gan::{
    GanTrainOptions, GenerateOptions, ImageSource, generate, load_generator, train_gan,
};

/// Grey 40x40 PNGs: a bright disc at a position that varies with `i`.
fn write_images(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let (cx, cy) = (12.0 + (i % 5) as f32 * 4.0, 14.0 + (i % 3) as f32 * 5.0);
        let px: Vec<u16> = (0..40 * 40)
            .map(|k| {
                let (x, y) = ((k % 40) as f32, (k / 40) as f32);
                let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
                if d < 8.0 { 200 } else { 30 + (x as u16) }
            })
            .collect();
        mammo_image::write_png_gray(&dir.join(format!("img{i:03}.png")), 40, 40, &px, 8).unwrap();
    }
}

fn opts(source: &ImageSource, out: &Path, res: usize, stem: Option<PathBuf>) -> GanTrainOptions {
    GanTrainOptions {
        source: source.clone(),
        out: out.to_path_buf(),
        res,
        stem,
        device: Device::flex(),
        metric_features: None,
        progress: false,
        log: false,
        stop_after_kimg: None,
    }
}

struct Collect(Vec<f32>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0
            .extend(p.val().into_data().try_into_vec::<f32>().unwrap());
    }
}

fn weights(run: &Path) -> Vec<f32> {
    let (g, _) = load_generator(run, &Device::flex()).unwrap();
    let mut c = Collect(Vec::new());
    g.visit(&mut c);
    c.0
}

#[test]
fn stem_resume_grow_generate() {
    let tmp = std::env::temp_dir().join(format!("mammo-gan-stages-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let images = tmp.join("images");
    write_images(&images, 24);
    let source = ImageSource::Folder(images.clone());
    let cfg = tiny();

    // uninterrupted stem
    let a = tmp.join("a");
    let s = train_gan(&cfg, &opts(&source, &a, 16, None)).unwrap();
    assert!(s.done);
    assert_eq!(s.kimg, 0.016);
    assert_eq!(s.train_images + s.holdout_images, 24);
    assert!(s.holdout_images >= 2);
    // FID/KID at kimg 0, 0.008 and 0.016, finite
    assert_eq!(
        s.metrics.iter().map(|m| m.kimg).collect::<Vec<_>>(),
        [0.0, 0.008, 0.016]
    );
    assert!(
        s.metrics
            .iter()
            .all(|m| m.fid.is_finite() && m.kid.is_finite())
    );
    for f in [
        "gan_config.json",
        "generator.json",
        "data.json",
        "generator.bpk",
        "log.csv",
        "metrics.csv",
        "summary.json",
        "samples/reals.png",
        "samples/progress.png",
        "samples/kimg-0000.008.png",
        "samples/kimg-0000.016.png",
    ] {
        assert!(a.join(f).exists(), "{f} missing");
    }
    let metrics = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    assert!(
        metrics.starts_with("kimg,fid,kid,kid_std,fake,real\n"),
        "{metrics}"
    );
    assert_eq!(metrics.lines().count(), 4);

    // the same run in two calls ends with the same generator
    let b = tmp.join("b");
    let s1 = train_gan(
        &cfg,
        &GanTrainOptions {
            stop_after_kimg: Some(0.008),
            ..opts(&source, &b, 16, None)
        },
    )
    .unwrap();
    assert!(!s1.done && !b.join("generator.bpk").exists());
    let s2 = train_gan(&cfg, &opts(&source, &b, 16, None)).unwrap();
    assert!(s2.done);
    let (wa, wb) = (weights(&a), weights(&b));
    assert_eq!(wa.len(), wb.len());
    let diff = wa
        .iter()
        .zip(&wb)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-4, "resumed run differs by {diff}");

    // a changed config is refused in the same folder
    let mut other = cfg.clone();
    other.training.g_lr = 0.001;
    let e = train_gan(&other, &opts(&source, &a, 16, None))
        .unwrap_err()
        .to_string();
    assert!(e.contains("other settings"), "{e}");

    // grow to 32 px: the stem's weights arrive frozen and unchanged
    let c = tmp.join("c");
    let s = train_gan(&cfg, &opts(&source, &c, 32, Some(a.clone()))).unwrap();
    assert!(s.done);
    assert_eq!(s.resolutions, [16, 32]);
    let (g32, arch) = load_generator(&c, &Device::flex()).unwrap();
    let (g16, _) = load_generator(&a, &Device::flex()).unwrap();
    assert_eq!(arch.output_res(), 32);
    let stem_input: Vec<f32> = g16.input.val().into_data().try_into_vec().unwrap();
    assert_eq!(
        stem_input,
        g32.input.val().into_data().try_into_vec::<f32>().unwrap()
    );
    let l0: Vec<f32> = g16.layers[0]
        .weight
        .val()
        .into_data()
        .try_into_vec()
        .unwrap();
    assert_eq!(
        l0,
        g32.layers[0]
            .weight
            .val()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap()
    );
    // growing needs a finished stem and a larger size
    assert!(train_gan(&cfg, &opts(&source, &tmp.join("d"), 16, Some(a.clone()))).is_err());

    // synthetic positives as manifest rows
    let syn = tmp.join("syn");
    let r = generate(&GenerateOptions {
        run: c.clone(),
        n: 5,
        out: syn.clone(),
        truncation: 0.7,
        seed: 3,
        base_manifest: None,
        device: Device::flex(),
        progress: false,
    })
    .unwrap();
    assert_eq!((r.n, r.res), (5, 32));
    let rows = mammo_dataset::read_manifest(&syn.join("manifest.csv")).unwrap();
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter()
            .all(|r| r.synthetic && r.label == Some(true) && r.height == 32 && r.is_ok())
    );
    let png = mammo_image::read_png_gray(&syn.join(&rows[0].path)).unwrap();
    let (w, h, bits) = (png.width, png.height, png.bit_depth);
    assert_eq!((w, h, bits), (32, 32, 16));
    // the same seed gives the same images
    let again = tmp.join("syn2");
    generate(&GenerateOptions {
        run: c.clone(),
        n: 5,
        out: again.clone(),
        truncation: 0.7,
        seed: 3,
        base_manifest: None,
        device: Device::flex(),
        progress: false,
    })
    .unwrap();
    assert_eq!(
        std::fs::read(syn.join(&rows[4].path)).unwrap(),
        std::fs::read(again.join(&rows[4].path)).unwrap()
    );

    let _ = std::fs::remove_dir_all(&tmp);
}
