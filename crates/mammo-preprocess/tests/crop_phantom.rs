//! The breast crop against the phantom's ground truth (`RenderedImage::breast_mask`, the
//! breast and pectoral muscle): every machine (MONOCHROME1 and 2, LINEAR and SIGMOID
//! windows, 12 to 16 bits, JPEG 2000 and native) through the whole pipeline, and the same
//! images made film-like: film borders, bright and dark edge strips, a label touching the
//! breast, a redaction box, a low-contrast breast. Each must crop with IoU >= 0.9.

use std::path::Path;

use mammo_dicom::VoiChoice;
use mammo_image::{CropParams, GrayImage, Rect, Side, detect_breast};
use mammo_phantom::anatomy::Laterality;
use mammo_phantom::dicom_write::write_file;
use mammo_phantom::machines::{Photometric, machines};
use mammo_phantom::{
    Conspicuity, ImagePlan, PhantomConfig, RenderedImage, SizePreset, plan_dataset, render,
};
use mammo_preprocess::{OutputSize, PipelineConfig, process_image};

const MIN_IOU: f64 = 0.9;

/// Bounding box of the true pixels of a `w`-wide mask.
fn mask_box(mask: &[bool], w: usize) -> Rect {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
        let (x, y) = (i % w, i / w);
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x + 1);
        y1 = y1.max(y + 1);
    }
    Rect {
        x0: x0 as u32,
        y0: y0 as u32,
        x1: x1 as u32,
        y1: y1 as u32,
    }
}

/// A CC and an MLO view of each laterality for every machine, from one small phantom plan.
fn plans() -> Vec<ImagePlan> {
    let cfg = PhantomConfig {
        patients: 80,
        seed: 18,
        prevalence: 0.3,
        size: SizePreset::Small,
        conspicuity: Conspicuity::Medium,
        density: Default::default(),
        ..Default::default()
    };
    let all = plan_dataset(&cfg);
    let mut chosen = Vec::new();
    for m in machines() {
        let mut seen = Vec::new();
        for p in all.iter().filter(|p| p.machine.machine_id == m.machine_id) {
            let key = (p.laterality, p.view);
            if !seen.contains(&key) {
                seen.push(key);
                chosen.push(p.clone());
            }
        }
        assert!(
            seen.len() >= 2,
            "machine {} has only {} views in the plan",
            m.machine_id,
            seen.len()
        );
    }
    chosen
}

fn chest_wall(plan: &ImagePlan) -> Side {
    match plan.laterality {
        Laterality::L => Side::Left,
        Laterality::R => Side::Right,
    }
}

/// Every machine through the pipeline: its first window (LINEAR or SIGMOID) at 512 px, and
/// min-max (as a film without a window is shown) at 128 px, which decodes JPEG 2000 reduced.
#[test]
fn every_phantom_machine_crops_to_the_breast() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mammo-preprocess-crop-phantom");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let configs = [
        PipelineConfig::default(),
        PipelineConfig {
            voi: VoiChoice::None,
            sizes: vec![OutputSize {
                height: 128,
                width: 128,
            }],
            ..Default::default()
        },
    ];
    let mut worst = (1.0f64, String::new());
    for plan in plans() {
        let img = render(&plan);
        let path = dir.join(format!("{}.dcm", plan.image_id));
        write_file(&path, &plan, &img).unwrap();
        let truth = mask_box(&img.breast_mask, img.width as usize);
        for cfg in &configs {
            let p = process_image(&path, cfg, None).unwrap();
            assert!(p.breast_found);
            let score = p.crop.iou(&truth);
            let what = format!(
                "machine {} {} {} voi {}: crop {:?} truth {truth:?} IoU {score:.3}",
                plan.machine.machine_id,
                plan.laterality.as_str(),
                plan.view.as_str(),
                cfg.voi,
                p.crop
            );
            eprintln!("{what}");
            if score < worst.0 {
                worst = (score, what.clone());
            }
            assert!(score >= MIN_IOU, "{what}");
        }
    }
    eprintln!("worst: {}", worst.1);
}

/// The stored pixels over their own minimum and maximum, MONOCHROME1 inverted: what the
/// pipeline shows the detector of a file without a VOI window.
fn min_max(plan: &ImagePlan, img: &RenderedImage) -> GrayImage {
    let (lo, hi) = img
        .pixels
        .iter()
        .fold((u16::MAX, 0u16), |(a, b), &v| (a.min(v), b.max(v)));
    let span = (hi - lo).max(1) as f32;
    let inverted = plan.machine.photometric == Photometric::Monochrome1;
    let data = img
        .pixels
        .iter()
        .map(|&v| {
            let x = (v - lo) as f32 / span;
            if inverted { 1.0 - x } else { x }
        })
        .collect();
    GrayImage::new(img.width, img.height, data)
}

/// A small deterministic jitter in [-1, 1] (film grain on the artefacts).
fn grain(x: usize, y: usize) -> f32 {
    let h = (x as u32)
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add((y as u32).wrapping_mul(0x85EB_CA6B));
    let h = (h ^ (h >> 15)).wrapping_mul(0x2C1B_3C6D);
    ((h >> 8) as f32 / (1u32 << 24) as f32) * 2.0 - 1.0
}

/// The film-like variants of one image: (name, image, true breast box).
fn film_variants(
    base: &GrayImage,
    mask: &[bool],
    chest: Side,
) -> Vec<(&'static str, GrayImage, Rect)> {
    let (w, h) = (base.width as usize, base.height as usize);
    let long = w.max(h) as f64;
    let truth = mask_box(mask, w);
    // column distance from the chest-wall edge
    let from_chest = |x: usize| if chest == Side::Left { x } else { w - 1 - x };
    let breast_rows = |y: usize| (truth.y0 as usize..truth.y1 as usize).contains(&y);
    let mut out = Vec::new();

    // Bright film border all round, 1.5 % of the longer side, over the breast too.
    let b = (0.015 * long).ceil() as usize;
    let mut img = base.clone();
    let mut covered = mask.to_vec();
    for y in 0..h {
        for x in 0..w {
            if x < b || y < b || x >= w - b || y >= h - b {
                img.data[y * w + x] = 0.93 + 0.03 * grain(x, y);
                covered[y * w + x] = false;
            }
        }
    }
    out.push(("film border", img, mask_box(&covered, w)));

    // Scanner edge strips: bright bands fading inward over 4 % of the width along the
    // chest-wall edge above and below the breast, and thin top and bottom film borders.
    let s = (0.04 * w as f64).ceil() as usize;
    let t = (0.01 * long).ceil() as usize;
    let mut img = base.clone();
    for y in 0..h {
        for x in 0..w {
            let v = &mut img.data[y * w + x];
            let d = from_chest(x);
            if d < s && !breast_rows(y) {
                *v = v.max(0.55 * (1.0 - d as f32 / s as f32) + 0.02 * grain(x, y));
            }
            if y < t || y >= h - t {
                *v = 0.9 + 0.05 * grain(x, y);
            }
        }
    }
    out.push(("edge strips", img, truth));

    // A dark scanner strip along the chest-wall edge over the whole height and a black
    // redaction box in the far top corner.
    let d0 = (0.012 * w as f64).ceil() as usize;
    let mut img = base.clone();
    let mut covered = mask.to_vec();
    for y in 0..h {
        for x in 0..w {
            let d = from_chest(x);
            let redact = d >= w - w / 4 && y < h / 8;
            if d < d0 || redact {
                img.data[y * w + x] = 0.0;
                covered[y * w + x] = false;
            }
        }
    }
    out.push(("dark strip", img, mask_box(&covered, w)));

    // A burned-in label block (2.5 % x 8 % of the longer side) touching the breast's upper
    // outline a third of the way out from the chest wall.
    let (lh, lw) = (
        (0.025 * long).ceil() as usize,
        (0.08 * long).ceil() as usize,
    );
    let xc = if chest == Side::Left {
        truth.x0 as usize + truth.width() as usize / 3
    } else {
        truth.x1 as usize - truth.width() as usize / 3
    };
    let top = (0..h).find(|&y| mask[y * w + xc]).unwrap();
    let mut img = base.clone();
    let y1 = top + 2;
    for y in y1.saturating_sub(lh)..y1 {
        for x in xc.saturating_sub(lw / 2)..(xc + lw / 2).min(w) {
            img.data[y * w + x] = 1.0;
        }
    }
    out.push(("label touching", img, truth));

    // A fatty, low-contrast breast: everything squeezed into the bottom 12 % of the range
    // over a grainy background.
    let mut img = base.clone();
    for (i, v) in img.data.iter_mut().enumerate() {
        *v = 0.02 + 0.12 * *v + 0.004 * grain(i % w, i / w);
    }
    out.push(("low contrast", img, truth));
    out
}

#[test]
fn film_like_artefacts_do_not_join_the_breast() {
    let mut worst = (1.0f64, String::new());
    for plan in plans() {
        let rendered = render(&plan);
        let base = min_max(&plan, &rendered);
        let chest = chest_wall(&plan);
        for (name, img, truth) in film_variants(&base, &rendered.breast_mask, chest) {
            let region = detect_breast(&img, &CropParams::default()).expect("breast");
            let score = region.bbox.iou(&truth);
            let what = format!(
                "machine {} {} {} {name}: box {:?} truth {truth:?} IoU {score:.3}",
                plan.machine.machine_id,
                plan.laterality.as_str(),
                plan.view.as_str(),
                region.bbox
            );
            eprintln!("{what}");
            if score < worst.0 {
                worst = (score, what.clone());
            }
            assert!(score >= MIN_IOU, "{what}");
            assert_eq!(region.chest_wall, chest, "{what}");
        }
    }
    eprintln!("worst: {}", worst.1);
}
