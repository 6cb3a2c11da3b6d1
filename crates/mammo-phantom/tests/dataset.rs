//! End-to-end checks of generated datasets: CSV structure and RSNA conventions, prevalence,
//! determinism, lesion ground truth, and DICOM files that read back to the rendered pixels.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use mammo_phantom::anatomy::View;
use mammo_phantom::machines::{Photometric, PixelEncoding, machines};
use mammo_phantom::{
    Conspicuity, DensityMix, PhantomConfig, SizePreset, generate, plan_dataset, render,
};

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("mammo-phantom")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn tiny(name: &str, patients: usize, seed: u64, prevalence: f64) -> PhantomConfig {
    PhantomConfig {
        out: out_dir(name),
        patients,
        seed,
        prevalence,
        size: SizePreset::Custom {
            width: 64,
            height: 80,
        },
        conspicuity: Conspicuity::High,
        density: Default::default(),
        jobs: 0,
        progress: false,
    }
}

type Row = BTreeMap<String, String>;

fn read_csv(path: &Path) -> (Vec<String>, Vec<Row>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| {
            header
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (header, rows)
}

#[test]
fn csv_structure_follows_rsna() {
    let cfg = tiny("structure", 40, 11, 0.3);
    let summary = generate(&cfg).unwrap();
    let (header, rows) = read_csv(&cfg.out.join("train.csv"));
    assert_eq!(
        header.join(","),
        "site_id,patient_id,image_id,laterality,view,age,cancer,biopsy,invasive,BIRADS,implant,\
         density,machine_id,difficult_negative_case"
    );
    assert_eq!(rows.len(), summary.images);
    let (lesion_header, lesions) = read_csv(&cfg.out.join("lesions.csv"));
    assert_eq!(
        lesion_header.join(","),
        "image_id,patient_id,laterality,view,lesion_type,x0,y0,x1,y1,contrast"
    );

    let mut image_ids = HashSet::new();
    let mut by_patient: HashMap<&str, Vec<&Row>> = HashMap::new();
    let mut previous_patient = 0u64;
    for row in &rows {
        assert!(
            image_ids.insert(row["image_id"].clone()),
            "duplicate image_id {}",
            row["image_id"]
        );
        let pid: u64 = row["patient_id"].parse().unwrap();
        assert!(pid >= previous_patient, "rows not ordered by patient_id");
        previous_patient = pid;
        by_patient.entry(&row["patient_id"]).or_default().push(row);
        assert!(["L", "R"].contains(&row["laterality"].as_str()));
        assert!(
            ["CC", "MLO", "ML", "LM", "AT"].contains(&row["view"].as_str()),
            "{}",
            row["view"]
        );
        if !row["age"].is_empty() {
            let age: f64 = row["age"].parse().unwrap();
            assert!(
                (26.0..=89.0).contains(&age) && row["age"].ends_with(".0"),
                "age {}",
                row["age"]
            );
        }
        for col in ["cancer", "biopsy", "invasive", "implant"] {
            assert!(
                ["0", "1"].contains(&row[col].as_str()),
                "{col} = {}",
                row[col]
            );
        }
        assert!(
            ["", "0.0", "1.0", "2.0"].contains(&row["BIRADS"].as_str()),
            "BIRADS {}",
            row["BIRADS"]
        );
        assert!(["", "A", "B", "C", "D"].contains(&row["density"].as_str()));
        assert!(["True", "False"].contains(&row["difficult_negative_case"].as_str()));
        if row["invasive"] == "1" {
            assert_eq!(row["cancer"], "1", "invasive without cancer");
        }
        if row["cancer"] == "1" {
            assert_eq!(row["biopsy"], "1", "cancer without biopsy");
        }
        let machine: u32 = row["machine_id"].parse().unwrap();
        let m = machines()
            .iter()
            .find(|m| m.machine_id == machine)
            .expect("known machine");
        assert_eq!(row["site_id"], m.site_id.to_string());
        let file = cfg
            .out
            .join("train_images")
            .join(&row["patient_id"])
            .join(format!("{}.dcm", row["image_id"]));
        assert!(file.is_file(), "missing {}", file.display());
    }
    assert_eq!(by_patient.len(), 40);

    let lesion_images: HashMap<&str, usize> = lesions.iter().fold(HashMap::new(), |mut m, l| {
        *m.entry(l["image_id"].as_str()).or_default() += 1;
        m
    });
    let mut cancer_breasts = 0;
    for images in by_patient.values() {
        assert!(images.len() >= 4);
        for lat in ["L", "R"] {
            let breast: Vec<&&Row> = images.iter().filter(|r| r["laterality"] == lat).collect();
            for view in ["CC", "MLO"] {
                assert!(
                    breast.iter().any(|r| r["view"] == view),
                    "patient lacks {lat} {view}"
                );
            }
            let cancer: HashSet<&str> = breast.iter().map(|r| r["cancer"].as_str()).collect();
            assert_eq!(
                cancer.len(),
                1,
                "cancer differs between views of one breast"
            );
            let is_cancer = cancer.contains("1");
            cancer_breasts += is_cancer as usize;
            for r in &breast {
                let n = lesion_images
                    .get(r["image_id"].as_str())
                    .copied()
                    .unwrap_or(0);
                assert_eq!(
                    n > 0,
                    is_cancer,
                    "image {} cancer={} has {n} lesion rows",
                    r["image_id"],
                    r["cancer"]
                );
            }
        }
        let same: HashSet<(&str, &str, &str)> = images
            .iter()
            .map(|r| {
                (
                    r["site_id"].as_str(),
                    r["machine_id"].as_str(),
                    r["age"].as_str(),
                )
            })
            .collect();
        assert_eq!(same.len(), 1, "one study, one machine and age per patient");
    }
    assert!(
        cancer_breasts >= 5,
        "only {cancer_breasts} cancer breasts at prevalence 0.3"
    );
    for l in &lesions {
        let (x0, y0, x1, y1): (i64, i64, i64, i64) = (
            l["x0"].parse().unwrap(),
            l["y0"].parse().unwrap(),
            l["x1"].parse().unwrap(),
            l["y1"].parse().unwrap(),
        );
        assert!(
            0 <= x0 && x0 < x1 && x1 <= 64 && 0 <= y0 && y0 < y1 && y1 <= 80,
            "box {x0},{y0},{x1},{y1}"
        );
        let contrast: f64 = l["contrast"].parse().unwrap();
        assert!(contrast > 0.0);
    }
}

/// Patient-level prevalence within 4 binomial standard deviations, and per breast (not per
/// image or per view).
#[test]
fn prevalence_matches_request() {
    for (p, seed) in [(0.3, 5u64), (mammo_phantom::RSNA_PREVALENCE, 6)] {
        let cfg = tiny(&format!("prevalence-{seed}"), 400, seed, p);
        let summary = generate(&cfg).unwrap();
        let (_, rows) = read_csv(&cfg.out.join("train.csv"));
        let cancer_patients: HashSet<&str> = rows
            .iter()
            .filter(|r| r["cancer"] == "1")
            .map(|r| r["patient_id"].as_str())
            .collect();
        assert_eq!(cancer_patients.len(), summary.cancer_patients);
        let observed = cancer_patients.len() as f64 / 400.0;
        let sd = (p * (1.0 - p) / 400.0).sqrt();
        assert!(
            (observed - p).abs() <= 4.0 * sd,
            "prevalence {observed} for requested {p}"
        );
        let images_per_patient = rows.len() as f64 / 400.0;
        assert!(
            (4.2..5.0).contains(&images_per_patient),
            "{images_per_patient} images per patient"
        );
    }
}

fn all_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != "phantom.json" {
                files.insert(
                    p.strip_prefix(dir).unwrap().to_owned(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    files
}

#[test]
fn same_seed_same_bytes_whatever_the_threads() {
    let mut a = tiny("det-a", 12, 42, 0.5);
    a.jobs = 1;
    let mut b = tiny("det-b", 12, 42, 0.5);
    b.jobs = 2;
    let c = tiny("det-c", 12, 43, 0.5);
    generate(&a).unwrap();
    generate(&b).unwrap();
    generate(&c).unwrap();
    let (fa, fb, fc) = (all_files(&a.out), all_files(&b.out), all_files(&c.out));
    assert!(fa.len() > 12 * 4);
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (path, bytes) in &fa {
        assert!(
            bytes == &fb[path],
            "{} differs between runs",
            path.display()
        );
    }
    assert_ne!(fa[Path::new("train.csv")], fc[Path::new("train.csv")]);
    let dicoms_a: HashSet<&Vec<u8>> = fa
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "dcm"))
        .map(|(_, b)| b)
        .collect();
    assert!(
        fc.values().all(|b| !dicoms_a.contains(b)),
        "a file is identical under another seed"
    );

    // Rerunning into a finished folder keeps its files and gives the same bytes.
    let again = generate(&a).unwrap();
    assert_eq!(again.reused_images, again.images);
    assert_eq!(all_files(&a.out), fa);
}

/// Lesion boxes lie in the breast, enclose every changed pixel, and the lesion shows.
#[test]
fn lesions_are_inside_the_breast_and_their_boxes_are_tight() {
    let mut cfg = tiny("unused-lesions", 60, 3, 0.5);
    cfg.size = SizePreset::Custom {
        width: 160,
        height: 200,
    };
    let plans = plan_dataset(&cfg);
    let mut checked = 0;
    for plan in plans.iter().filter(|p| p.cancer) {
        let img = render(plan);
        let mut clean = plan.clone();
        clean.lesions.clear();
        let base = render(&clean);
        let w = img.width as usize;
        assert_eq!(img.lesions.len(), plan.lesions.len());
        for (kind, b, _) in &img.lesions {
            let mut diff_sum = 0i64;
            for y in b.y0..b.y1 {
                for x in b.x0..b.x1 {
                    let i = y as usize * w + x as usize;
                    assert!(
                        img.breast_mask[i],
                        "{kind:?} box {b:?} leaves the breast at ({x},{y})"
                    );
                    diff_sum += (img.pixels[i] as i64 - base.pixels[i] as i64).abs();
                }
            }
            assert!(
                diff_sum > 0,
                "{kind:?} changed nothing in image {}",
                plan.image_id
            );
            checked += 1;
        }
        for (i, (&p, &q)) in img.pixels.iter().zip(&base.pixels).enumerate() {
            if p != q {
                let (x, y) = ((i % w) as i64, (i / w) as i64);
                let inside = img
                    .lesions
                    .iter()
                    .any(|(_, b, _)| x >= b.x0 && x < b.x1 && y >= b.y0 && y < b.y1);
                assert!(
                    inside,
                    "pixel ({x},{y}) changed outside every lesion box of image {}",
                    plan.image_id
                );
            }
        }
    }
    assert!(checked >= 40, "only {checked} lesions checked");
}

/// Both views of a cancer breast show the lesion at the same distance from the nipple.
#[test]
fn views_of_a_breast_agree_on_lesion_depth() {
    let mut cfg = tiny("unused-depth", 80, 8, 0.6);
    cfg.size = SizePreset::Small;
    let plans = plan_dataset(&cfg);
    let mut pairs = 0;
    for cc in plans.iter().filter(|p| p.cancer && p.view == View::CC) {
        for mlo in plans.iter().filter(|p| {
            p.patient_id == cc.patient_id && p.laterality == cc.laterality && p.view == View::MLO
        }) {
            let depth = |p: &mammo_phantom::ImagePlan| {
                let l = &p.lesions[0];
                let a = p.geometry.at(l.x, l.y);
                p.geometry.depth_fraction(a.s)
            };
            assert_eq!(cc.lesions[0].kind, mlo.lesions[0].kind);
            assert!(
                (depth(cc) - depth(mlo)).abs() < 0.01,
                "depth {} vs {}",
                depth(cc),
                depth(mlo)
            );
            pairs += 1;
        }
    }
    assert!(pairs >= 20, "{pairs} pairs");
}

fn u16s(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Every file reads back with the expected tags and its pixels decode to the rendered ones.
#[test]
fn files_read_back_with_their_pixels() {
    let mut cfg = tiny("readback", 70, 21, 0.2);
    cfg.size = SizePreset::Custom {
        width: 48,
        height: 64,
    };
    generate(&cfg).unwrap();
    let plans = plan_dataset(&cfg);
    let mut seen_machines = HashSet::new();
    for plan in &plans {
        let path = cfg
            .out
            .join("train_images")
            .join(plan.patient_id.to_string())
            .join(format!("{}.dcm", plan.image_id));
        let obj = dicom_object::open_file(&path).unwrap();
        let m = plan.machine;
        seen_machines.insert(m.machine_id);
        let text = |tag| {
            obj.element(tag)
                .unwrap()
                .to_str()
                .unwrap()
                .trim()
                .to_string()
        };
        let int = |tag| obj.element(tag).unwrap().to_int::<u32>().unwrap();
        assert_eq!(
            obj.meta().transfer_syntax().trim_end_matches('\0'),
            m.encoding.transfer_syntax()
        );
        assert_eq!(
            obj.meta()
                .media_storage_sop_class_uid()
                .trim_end_matches('\0'),
            "1.2.840.10008.5.1.4.1.1.1.2"
        );
        assert_eq!(text(tags::SOP_CLASS_UID), "1.2.840.10008.5.1.4.1.1.1.2");
        assert_eq!(text(tags::SOP_INSTANCE_UID), plan.sop_uid);
        assert_eq!(text(tags::MODALITY), "MG");
        assert_eq!(text(tags::PATIENT_ID), plan.patient_id.to_string());
        assert_eq!(text(tags::IMAGE_LATERALITY), plan.laterality.as_str());
        assert_eq!(text(tags::VIEW_POSITION), plan.view.as_str());
        assert_eq!(text(tags::PRESENTATION_INTENT_TYPE), "FOR PRESENTATION");
        assert_eq!(text(tags::BODY_PART_EXAMINED), "BREAST");
        assert_eq!(
            text(tags::PHOTOMETRIC_INTERPRETATION),
            m.photometric.as_str()
        );
        assert_eq!(text(tags::VOILUT_FUNCTION), m.voi.as_str());
        if let Some(age) = plan.age {
            assert_eq!(text(tags::PATIENT_AGE), format!("{age:03}Y"));
        }
        assert_eq!((int(tags::ROWS), int(tags::COLUMNS)), (64, 48));
        assert_eq!(
            (int(tags::BITS_ALLOCATED), int(tags::BITS_STORED)),
            (16, m.bits_stored)
        );
        assert_eq!(
            (
                int(tags::HIGH_BIT),
                int(tags::PIXEL_REPRESENTATION),
                int(tags::SAMPLES_PER_PIXEL)
            ),
            (m.bits_stored - 1, 0, 1)
        );
        let centers = obj
            .element(tags::WINDOW_CENTER)
            .unwrap()
            .to_multi_float64()
            .unwrap();
        let widths = obj
            .element(tags::WINDOW_WIDTH)
            .unwrap()
            .to_multi_float64()
            .unwrap();
        assert_eq!((centers.len(), widths.len()), (m.windows, m.windows));

        let pixel = obj.element(tags::PIXEL_DATA).unwrap();
        let stored: Vec<u16> = match (m.encoding, pixel.value()) {
            (PixelEncoding::ExplicitLittle, _) => u16s(&pixel.to_bytes().unwrap()),
            (_, Value::PixelSequence(seq)) => {
                assert!(seq.offset_table().is_empty());
                assert_eq!(seq.fragments().len(), 1);
                let frag = &seq.fragments()[0];
                assert_eq!(frag.len() % 2, 0);
                let container = mammo_j2k::detect_container(frag).unwrap();
                let want = if m.encoding == PixelEncoding::J2kJp2 {
                    mammo_j2k::Container::Jp2
                } else {
                    mammo_j2k::Container::Codestream
                };
                assert_eq!(container, want);
                let d = mammo_j2k::decode(frag, &mammo_j2k::DecodeOptions::default()).unwrap();
                assert_eq!((d.width, d.height, d.precision), (48, 64, m.bits_stored));
                d.data.iter().map(|&v| u16::try_from(v).unwrap()).collect()
            }
            (enc, _) => panic!("{enc:?} file without a pixel sequence"),
        };
        assert_eq!(stored.len(), 48 * 64);
        assert!(stored.iter().all(|&v| (v as u32) <= m.max_value()));
        let img = render(plan);
        assert!(
            stored == img.pixels,
            "pixels of {} differ from the rendering",
            path.display()
        );

        // Breast vs air: brighter for MONOCHROME2, darker (inverted) for MONOCHROME1; the
        // first window covers most breast pixels.
        let mean = |inside: bool| {
            let v: Vec<f64> = stored
                .iter()
                .zip(&img.breast_mask)
                .filter(|(_, m)| **m == inside)
                .map(|(v, _)| *v as f64)
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let (breast, air) = (mean(true), mean(false));
        match m.photometric {
            Photometric::Monochrome2 => assert!(
                breast > air + 0.1 * m.max_value() as f64,
                "{breast} vs {air}"
            ),
            Photometric::Monochrome1 => assert!(
                breast < air - 0.1 * m.max_value() as f64,
                "{breast} vs {air}"
            ),
        }
        let (c, w) = (centers[0], widths[0]);
        let in_window = stored
            .iter()
            .zip(&img.breast_mask)
            .filter(|(v, m)| **m && (**v as f64 - c).abs() <= w / 2.0)
            .count() as f64
            / img.breast_mask.iter().filter(|m| **m).count() as f64;
        assert!(
            in_window > 0.6,
            "only {in_window} of the breast within window {c}/{w} ({})",
            m.machine_id
        );
    }
    assert_eq!(
        seen_machines.len(),
        machines().len(),
        "not every machine was exercised"
    );
}

#[test]
fn presets_parse_and_print() {
    for s in ["full", "small", "64x80"] {
        assert_eq!(s.parse::<SizePreset>().unwrap().to_string(), s);
    }
    assert_eq!(
        "512X640".parse::<SizePreset>().unwrap(),
        SizePreset::Custom {
            width: 512,
            height: 640
        }
    );
    assert_eq!(
        "huge".parse::<SizePreset>().unwrap_err(),
        "size \"huge\" is not \"full\", \"small\" or WIDTHxHEIGHT (e.g. 512x640)"
    );
    assert_eq!(
        "8x8".parse::<SizePreset>().unwrap_err(),
        "size \"8x8\": width and height must be 16..=65535"
    );
    for s in ["low", "medium", "high", "obvious"] {
        assert_eq!(s.parse::<Conspicuity>().unwrap().to_string(), s);
    }
    assert_eq!(
        "loud".parse::<Conspicuity>().unwrap_err(),
        "conspicuity \"loud\" is not low, medium, high or obvious"
    );
    let bad = PhantomConfig {
        prevalence: 1.5,
        ..PhantomConfig::default()
    };
    assert_eq!(
        generate(&bad).unwrap_err().to_string(),
        "invalid phantom configuration: prevalence 1.5 is outside 0..=1"
    );
    let json = serde_json::to_value(PhantomConfig::default()).unwrap();
    assert_eq!(json["size"], "small");
    assert_eq!(json["conspicuity"], "medium");
    assert_eq!(json["density"], "rsna");
}

#[test]
fn density_mix_parses_and_prints() {
    for (s, w) in [
        ("rsna", [0.10, 0.42, 0.39, 0.09]),
        ("AB", [1.0, 1.0, 0.0, 0.0]),
        ("d", [0.0, 0.0, 0.0, 1.0]),
        ("0.3,0.5,0.2,0", [0.3, 0.5, 0.2, 0.0]),
    ] {
        let m: DensityMix = s.parse().unwrap();
        assert_eq!(m.weights, w, "{s}");
        assert_eq!(m.to_string().parse::<DensityMix>().unwrap(), m, "{s}");
    }
    assert_eq!("ab".parse::<DensityMix>().unwrap().to_string(), "AB");
    for bad in ["", "E", "0,0,0,0", "1,2,3", "-1,1,1,1", "AX"] {
        assert!(bad.parse::<DensityMix>().is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn density_mix_draws_only_its_categories() {
    let cfg = PhantomConfig {
        patients: 200,
        density: "AB".parse().unwrap(),
        ..PhantomConfig::default()
    };
    let plans = plan_dataset(&cfg);
    let mut seen = std::collections::BTreeSet::new();
    for p in &plans {
        seen.insert(p.density.as_str());
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["A", "B"]);
}
