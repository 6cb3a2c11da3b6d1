//! End-to-end tests of the `mammo` binary: exit codes, pinned error messages, outputs.

use std::path::{Path, PathBuf};

mod common;

use common::{TINY_GAN, mammo, phantom, preprocess, stderr, tempdir};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mammo-dicom/tests/fixtures")
        .join(name)
}

#[test]
fn convert_writes_a_viewer_rendering() {
    let dir = tempdir("convert");
    let out = dir.join("mono1.png");
    let o = mammo(&[
        "convert",
        fixture("voi_mono1.dcm").to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("MONOCHROME1 inverted"),
        "{}",
        stderr(&o)
    );
    let mammo_image::GrayPng {
        width: w,
        height: h,
        bit_depth: bits,
        samples: px,
    } = mammo_image::read_png_gray(&out).unwrap();
    assert_eq!((w, h, bits), (120, 150, 8));
    assert!(px.contains(&0) && px.iter().any(|&v| v > 200));

    let out16 = dir.join("x16.png");
    let o = mammo(&[
        "convert",
        "--bits",
        "16",
        "--voi",
        "none",
        fixture("synth12_j2k_jp2wrapped.dcm").to_str().unwrap(),
        out16.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let png16 = mammo_image::read_png_gray(&out16).unwrap();
    let (bits, px) = (png16.bit_depth, png16.samples);
    assert_eq!(bits, 16);
    assert_eq!(
        (*px.iter().min().unwrap(), *px.iter().max().unwrap()),
        (0, 65535),
        "min-max spans the range"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn errors_name_the_file_and_the_reason() {
    let dir = tempdir("errors");
    let bad = dir.join("bad.dcm");
    std::fs::write(&bad, b"not dicom").unwrap();
    let o = mammo(&[
        "convert",
        bad.to_str().unwrap(),
        dir.join("x.png").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!("error: cannot read {}:", bad.display())),
        "{err}"
    );
    assert!(!dir.join("x.png").exists());

    let o = mammo(&["convert", "--bits", "12", "a.dcm", "b.png"]);
    assert_eq!(o.status.code(), Some(2), "bad usage exits 2");
    assert!(
        stderr(&o).contains("12: PNG depth is 8 or 16"),
        "{}",
        stderr(&o)
    );

    let o = mammo(&[
        "convert",
        "--voi",
        "7",
        fixture("voi_linear.dcm").to_str().unwrap(),
        dir.join("y.png").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("VOI transform 7 requested, the image offers 1"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A small RSNA-layout set from the fixtures, with one corrupt and one missing file.
fn small_dataset(dir: &Path) -> (PathBuf, PathBuf) {
    let images = dir.join("train_images");
    let files = [
        ("10", "101", "L", "CC", "0", "synth12_j2k_jp2wrapped.dcm"),
        ("10", "102", "R", "MLO", "1", "synth12_j2k_gdcm.dcm"),
        ("11", "111", "L", "CC", "0", "voi_mono1.dcm"),
        ("11", "112", "R", "CC", "0", "synth12_jpegls.dcm"),
        ("12", "121", "L", "MLO", "0", "CORRUPT"),
        ("12", "122", "R", "MLO", "0", "MISSING"),
    ];
    let mut csv = String::from(
        "site_id,patient_id,image_id,laterality,view,age,cancer,biopsy,invasive,BIRADS,implant,\
         density,machine_id,difficult_negative_case\n",
    );
    for (p, i, lat, view, cancer, src) in files {
        csv += &format!("1,{p},{i},{lat},{view},60,{cancer},0,0,,0,B,49,False\n");
        std::fs::create_dir_all(images.join(p)).unwrap();
        let dst = images.join(p).join(format!("{i}.dcm"));
        match src {
            "CORRUPT" => {
                let bytes = std::fs::read(fixture("synth12_j2k_gdcm.dcm")).unwrap();
                std::fs::write(&dst, &bytes[..bytes.len() / 2]).unwrap();
            }
            "MISSING" => {}
            f => {
                std::fs::copy(fixture(f), &dst).unwrap();
            }
        }
    }
    let csv_path = dir.join("train.csv");
    std::fs::write(&csv_path, csv).unwrap();
    (csv_path, images)
}

#[test]
fn preprocess_reports_failures_goes_on_and_resumes() {
    let dir = tempdir("preprocess");
    let (csv, images) = small_dataset(&dir);
    let out = dir.join("out");
    let args = |extra: &[&str]| {
        let mut v = vec![
            "preprocess",
            "--csv",
            csv.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--size",
            "64",
            "--height",
            "96",
            "--width",
            "48",
            "--flip-to",
            "left",
            "--quiet",
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| mammo(&a.iter().map(String::as_str).collect::<Vec<_>>());

    let o = run(args(&[]));
    assert_eq!(
        o.status.code(),
        Some(3),
        "some failed -> exit 3: {}",
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("preprocessed 6 images") && err.contains("4 new, 0 already done, 2 failed"),
        "{err}"
    );
    assert!(err.contains("122.dcm: no such file"), "{err}");

    let failures = std::fs::read_to_string(out.join("failures.csv")).unwrap();
    assert_eq!(failures.lines().count(), 3, "{failures}");
    assert!(
        failures.contains("121.dcm") && failures.contains("122.dcm"),
        "{failures}"
    );

    for (label, w, h) in [("64", 64, 64), ("96x48", 48, 96)] {
        let rows = mammo_dataset::read_manifest(&out.join(label).join("manifest.csv")).unwrap();
        assert_eq!(rows.len(), 6);
        let ok: Vec<_> = rows.iter().filter(|r| r.is_ok()).collect();
        assert_eq!(ok.len(), 4);
        assert!(
            rows.iter()
                .filter(|r| !r.is_ok())
                .all(|r| matches!(r.status, mammo_dataset::Status::Failed(_)))
        );
        for r in &ok {
            let png = mammo_image::png_dimensions(&out.join(label).join(&r.path)).unwrap();
            assert_eq!((png.width, png.height, png.bit_depth), (w, h, 8));
            assert_eq!(r.flipped, r.laterality == "R", "{r:?}");
            assert!(r.crop_x1 > r.crop_x0 && r.crop_x1 <= r.source_width);
        }
        let labelled = rows.iter().find(|r| r.image_id == "102").unwrap();
        assert_eq!(
            (labelled.label, labelled.view.as_str()),
            (Some(true), "MLO")
        );
    }

    // Second run: everything finished is skipped; the failed ones are retried and fail again.
    let o = run(args(&[]));
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("0 new, 4 already done, 2 failed"),
        "{}",
        stderr(&o)
    );

    // A damaged output is redone.
    let victim = out.join("64/10/101.png");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let o = run(args(&[]));
    assert!(
        stderr(&o).contains("1 new, 3 already done, 2 failed"),
        "{}",
        stderr(&o)
    );
    assert!(mammo_image::png_dimensions(&victim).is_ok());

    // Other settings into the same folder are refused.
    let o = run(args(&["--voi", "none"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("was made with other settings"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The phantom set is what the README's demo runs on: every file must preprocess cleanly,
/// and every lesion box must land inside the breast in the PNG.
#[test]
fn phantom_set_preprocesses_without_failures() {
    let dir = tempdir("phantom");
    let data = dir.join("data");
    phantom(&data, 12, "200x260", 3, &["--conspicuity", "high"]);
    let out = dir.join("processed");
    let rows = mammo_dataset::read_manifest(&preprocess(&data, &out, 64)).unwrap();
    assert!(rows.len() >= 48, "{} rows", rows.len());
    assert!(
        rows.iter().all(|r| r.status == mammo_dataset::Status::Ok),
        "{:?}",
        rows.iter().find(|r| r.status != mammo_dataset::Status::Ok)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("failures.csv"))
            .unwrap()
            .trim(),
        "",
        "no failures"
    );

    // Map each lesion's centre into its PNG: it must be inside the picture and on tissue.
    let lesions = std::fs::read_to_string(data.join("lesions.csv")).unwrap();
    let mut checked = 0;
    for line in lesions.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (image_id, x0, y0, x1, y1): (&str, f64, f64, f64, f64) = (
            f[0],
            f[5].parse().unwrap(),
            f[6].parse().unwrap(),
            f[7].parse().unwrap(),
            f[8].parse().unwrap(),
        );
        let r = rows
            .iter()
            .find(|r| r.image_id == image_id)
            .expect("lesion image in manifest");
        let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        let dx = if r.flipped {
            r.crop_x1 as f64 - cx
        } else {
            cx - r.crop_x0 as f64
        };
        let (px, py) = (
            r.offset_x as f64 + r.scale_x * dx,
            r.offset_y as f64 + r.scale_y * (cy - r.crop_y0 as f64),
        );
        assert!(
            px >= 0.0 && py >= 0.0 && px < r.width as f64 && py < r.height as f64,
            "{image_id}: ({px}, {py})"
        );
        let png = mammo_image::read_png_gray(&out.join("64").join(&r.path)).unwrap();
        let (w, pixels) = (png.width, png.samples);
        let v = pixels[py as usize * w as usize + px as usize];
        assert!(v > 20, "{image_id}: lesion centre maps to background ({v})");
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} lesions");

    // Train -> eval -> predict on the same set (one epoch: this checks the plumbing; learning
    // is tested in mammo-train).
    let manifest = out.join("64/manifest.csv");
    let run = dir.join("run");
    let train = |lr: &str| {
        mammo(&[
            "train",
            "--manifest",
            manifest.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--folds",
            "2",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--lr",
            lr,
            "--quiet",
        ])
    };
    let o = train("1e-3");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        table.contains("| mean ± std |") && table.contains("resnet18 at 64x64"),
        "{table}"
    );
    for f in [
        "metrics.json",
        "oof_predictions.csv",
        "folds.csv",
        "plots/roc.svg",
        "fold-1/last.safetensors",
        "fold-1/checkpoint/state.json",
    ] {
        assert!(run.join(f).is_file(), "{f}");
    }
    // A finished fold keeps only its progress, not the model and optimiser it resumes from.
    for f in ["fold-0/checkpoint/model.bpk", "fold-1/checkpoint/optim.bpk"] {
        assert!(
            !run.join(f).exists(),
            "{f} left after the fold's last epoch"
        );
    }
    let o = train("1e-2");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("different training config"),
        "{}",
        stderr(&o)
    );
    let o = mammo(&["eval", "--run", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A clinician's DICOM (processed with the saved preprocess settings), a PNG, and a typo.
    let r = &rows[0];
    let dcm = data
        .join("train_images")
        .join(&r.patient_id)
        .join(format!("{}.dcm", r.image_id));
    let png = out.join("64").join(&r.path);
    let o = mammo(&[
        "predict",
        "--run",
        run.to_str().unwrap(),
        dcm.to_str().unwrap(),
        png.to_str().unwrap(),
        "nope.dcm",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let probs: Vec<f64> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(probs.len(), 2, "{stdout}");
    assert!(
        (probs[0] - probs[1]).abs() < 1e-3,
        "the DICOM and its preprocessed PNG must give the same prediction: {stdout}"
    );
    assert!(stderr(&o).contains("nope.dcm"), "{}", stderr(&o));

    // Explain: each fold alone, then (no --fold) the folds' mean map.
    let explain = |fold: Option<&str>| {
        let ex = dir.join(format!("explain-{}", fold.unwrap_or("all")));
        let mut args = vec![
            "explain",
            "--run",
            run.to_str().unwrap(),
            "--out",
            ex.to_str().unwrap(),
            "--method",
            "gradcam",
            "--quiet",
            png.to_str().unwrap(),
        ];
        if let Some(k) = fold {
            args.extend(["--fold", k]);
        }
        let o = mammo(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let stem = png.file_stem().unwrap().to_str().unwrap();
        let npy = std::fs::read(ex.join(format!("{stem}_gradcam_heat.npy"))).unwrap();
        let header = u16::from_le_bytes([npy[8], npy[9]]) as usize + 10;
        let map: Vec<f32> = npy[header..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let summary = std::fs::read_to_string(ex.join("summary.json")).unwrap();
        (map, summary)
    };
    let (m0, s0) = explain(Some("0"));
    let (m1, _) = explain(Some("1"));
    let (mean, s_all) = explain(None);
    assert!(s0.contains("\"ensemble\": false"), "{s0}");
    assert!(s_all.contains("\"ensemble\": true"), "{s_all}");
    let avg: Vec<f32> = m0.iter().zip(&m1).map(|(a, b)| (a + b) / 2.0).collect();
    let (lo, hi) = avg
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    assert_eq!(mean.len(), 64 * 64);
    for (e, a) in mean.iter().zip(&avg) {
        let want = (a - lo) / (1e-7 + hi - lo);
        assert!(
            (e - want).abs() < 1e-5,
            "ensemble map {e} vs mean of folds {want}"
        );
    }
    let o = mammo(&[
        "explain",
        "--run",
        run.to_str().unwrap(),
        "--out",
        dir.join("explain-bad").to_str().unwrap(),
        "--fold",
        "2",
        png.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--fold 2"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn gan_train_generate_and_fid() {
    let dir = tempdir("gan");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..16u16 {
        let px: Vec<u16> = (0..32 * 32u16)
            .map(|k| if (k % 32) < 10 + i % 6 { 180 } else { 20 })
            .collect();
        mammo_image::write_png_gray(&images.join(format!("p{i}.png")), 32, 32, &px, 8).unwrap();
    }
    let gan = dir.join("tiny-gan.toml");
    std::fs::write(&gan, TINY_GAN).unwrap();
    let run = dir.join("g16");
    let o = mammo(&[
        "gan",
        "train",
        "--images",
        images.to_str().unwrap(),
        "--config",
        gan.to_str().unwrap(),
        "--res",
        "16",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("0.016 kimg") && text.contains("FID") && text.contains("done:"),
        "{text}"
    );

    // the stem must be trained at stem_res
    let o = mammo(&[
        "gan",
        "train",
        "--images",
        images.to_str().unwrap(),
        "--config",
        gan.to_str().unwrap(),
        "--res",
        "32",
        "--out",
        dir.join("bad").to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--res 32 without --stem"),
        "{}",
        stderr(&o)
    );

    let syn = dir.join("syn");
    let o = mammo(&[
        "gan",
        "generate",
        "--run",
        run.to_str().unwrap(),
        "--n",
        "10",
        "--out",
        syn.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = mammo_dataset::read_manifest(&syn.join("manifest.csv")).unwrap();
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r.synthetic && r.label == Some(true)));

    let o = mammo(&[
        "gan",
        "fid",
        "--real",
        images.to_str().unwrap(),
        "--fake",
        syn.join("images").to_str().unwrap(),
        "--features",
        "resnet18",
        "--res",
        "32",
        "--kid-subset-size",
        "8",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("not FID")
            && text.contains("real 16 images, fake 10 images")
            && text.contains("KID"),
        "{text}"
    );

    // FID proper needs the Inception weights, and says how to get them
    let o = mammo(&[
        "gan",
        "fid",
        "--real",
        images.to_str().unwrap(),
        "--fake",
        syn.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("convert_pt_inception.py"),
        "{}",
        stderr(&o)
    );
    let o = mammo(&[
        "gan",
        "generate",
        "--run",
        dir.join("nope").to_str().unwrap(),
        "--out",
        syn.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn preprocess_dataset_rsna_equals_the_csv_path_and_bad_dataset_flags_are_usage_errors() {
    let dir = tempdir("preprocess-dataset");
    let (csv, images) = small_dataset(&dir);
    let run = |extra: &[&str], out: &Path| {
        let mut v = vec![
            "preprocess",
            "--out",
            out.to_str().unwrap(),
            "--size",
            "48",
            "--quiet",
            "--jobs",
            "1",
        ];
        v.extend_from_slice(extra);
        mammo(&v)
    };
    let by_csv = dir.join("by-csv");
    let by_dataset = dir.join("by-dataset");
    let a = run(
        &[
            "--csv",
            csv.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
        ],
        &by_csv,
    );
    let b = run(
        &["--dataset", "rsna", "--images", dir.to_str().unwrap()],
        &by_dataset,
    );
    // Both end with the same two per-file failures (a corrupt and a missing file).
    assert_eq!(a.status.code(), Some(3), "{}", stderr(&a));
    assert_eq!(b.status.code(), Some(3), "{}", stderr(&b));
    let manifest = |d: &Path| {
        let text = std::fs::read_to_string(d.join("48").join("manifest.csv")).unwrap();
        let mut rows: Vec<String> = text.lines().skip(1).map(String::from).collect();
        rows.sort();
        rows
    };
    assert_eq!(manifest(&by_csv), manifest(&by_dataset));
    assert_eq!(
        manifest(&by_csv).len(),
        6,
        "one row per train.csv row, failures included"
    );

    for bad in [
        vec!["--dataset", "rsna", "--csv", csv.to_str().unwrap()],
        vec!["--dataset", "ddsm-nope"],
        vec![],
    ] {
        let mut args = bad.clone();
        args.extend(["--images", dir.to_str().unwrap()]);
        let o = run(&args, &dir.join("bad"));
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }
}
