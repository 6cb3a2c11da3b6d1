//! The breast crop on real digitised film: four CBIS-DDSM views (CC BY 3.0, see
//! `tests/fixtures/cbis-ddsm/README.md`), decimated by 8, against boxes drawn by hand on the
//! full-size images. Film borders, scanner edge strips and burned-in labels are present.

use std::path::{Path, PathBuf};

use mammo_image::{CropParams, GrayImage, Rect, Side, detect_breast, read_png_gray};

const FACTOR: f64 = 8.0;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cbis-ddsm")
}

struct Case {
    file: String,
    laterality: String,
    truth: Rect,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("breast_boxes.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "file,laterality,view,rows,columns,x0,y0,x1,y1"
    );
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let n = |i: usize| f[i].parse::<u32>().unwrap();
            Case {
                file: f[0].to_owned(),
                laterality: f[1].to_owned(),
                truth: Rect {
                    x0: n(5),
                    y0: n(6),
                    x1: n(7),
                    y1: n(8),
                },
            }
        })
        .collect()
}

/// The fixture as the pipeline renders a 16-bit film without a VOI window: a linear window
/// over the image's minimum and maximum, to 0..1.
fn load(file: &str) -> GrayImage {
    let stem = file.trim_end_matches(".dcm");
    let png = read_png_gray(&fixtures().join(format!("{stem}_d8.png"))).unwrap();
    let (w, h, bits, px) = (png.width, png.height, png.bit_depth, png.samples);
    assert_eq!(bits, 16);
    let (lo, hi) = px
        .iter()
        .fold((u16::MAX, 0u16), |(a, b), &v| (a.min(v), b.max(v)));
    let span = (hi - lo).max(1) as f32;
    GrayImage::new(w, h, px.iter().map(|&v| (v - lo) as f32 / span).collect())
}

#[test]
fn film_crop_matches_the_hand_drawn_breast_box() {
    let mut worst = 1.0f64;
    for case in cases() {
        let img = load(&case.file);
        let region = detect_breast(&img, &CropParams::default()).expect("breast");
        // The detected box in full-size pixels.
        let b = region.bbox;
        let full = Rect {
            x0: (b.x0 as f64 * FACTOR) as u32,
            y0: (b.y0 as f64 * FACTOR) as u32,
            x1: (b.x1 as f64 * FACTOR) as u32,
            y1: (b.y1 as f64 * FACTOR) as u32,
        };
        let score = full.iou(&case.truth);
        eprintln!(
            "{}: box {full:?}, hand-drawn {:?}, IoU {score:.3}, chest wall {:?}",
            case.file, case.truth, region.chest_wall
        );
        worst = worst.min(score);
        assert!(
            score >= 0.9,
            "{}: IoU {score:.3} ({full:?} vs {:?})",
            case.file,
            case.truth
        );
        let expected = if case.laterality == "L" {
            Side::Left
        } else {
            Side::Right
        };
        assert_eq!(region.chest_wall, expected, "{}", case.file);
    }
    eprintln!("worst IoU {worst:.3}");
}
