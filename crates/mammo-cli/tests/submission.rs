//! `mammo predict --rsna-test`: Kaggle's submission for an RSNA-layout test set.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

mod common;

use common::{mammo, stderr, tempdir, tiny_run};

const TEST_HEADER: &str =
    "site_id,patient_id,image_id,laterality,view,age,implant,machine_id,prediction_id\n";

/// The phantom's images as an RSNA test set: `test.csv` with Kaggle's columns and
/// `test_images/<patient_id>/<image_id>.dcm`. One breast keeps a single readable image of
/// two (the other is truncated). Returns the test set and its readable images by breast.
fn test_set(data: &Path, dir: &Path) -> BTreeMap<String, Vec<String>> {
    let table = mammo_preprocess::read_rsna_csv(&data.join("train.csv")).unwrap();
    let mut csv = String::from(TEST_HEADER);
    let mut readable: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut truncated = false;
    for r in &table.rows {
        let id = format!("{}_{}", r.patient_id, r.laterality);
        csv += &format!(
            "{},{},{},{},{},{},{},{},{id}\n",
            r.site_id,
            r.patient_id,
            r.image_id,
            r.laterality,
            r.view,
            r.age,
            r.implant,
            r.machine_id
        );
        let src = data
            .join("train_images")
            .join(&r.patient_id)
            .join(format!("{}.dcm", r.image_id));
        let dst_dir = dir.join("test_images").join(&r.patient_id);
        std::fs::create_dir_all(&dst_dir).unwrap();
        let dst = dst_dir.join(format!("{}.dcm", r.image_id));
        let bytes = std::fs::read(&src).unwrap();
        if !truncated && readable.get(&id).is_some_and(|v| !v.is_empty()) {
            // The breast's second image: cut in half, it cannot be decoded.
            std::fs::write(&dst, &bytes[..bytes.len() / 2]).unwrap();
            truncated = true;
            continue;
        }
        std::fs::write(&dst, bytes).unwrap();
        readable
            .entry(id)
            .or_default()
            .push(dst.to_str().unwrap().to_string());
    }
    assert!(truncated, "no breast with two images");
    std::fs::write(dir.join("test.csv"), csv).unwrap();
    readable
}

fn read_submission(path: &Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("prediction_id,cancer"));
    lines
        .map(|l| {
            let (id, p) = l.split_once(',').unwrap();
            (id.to_string(), p.parse().unwrap())
        })
        .collect()
}

#[test]
fn rsna_test_set_gives_one_row_per_breast_the_mean_of_its_images() {
    let dir = tempdir("rsna-test");
    let (data, run) = tiny_run(&dir);
    let set = dir.join("test");
    let readable = test_set(&data, &set);
    let run_s = run.to_str().unwrap();
    let set_s = set.to_str().unwrap();

    // Per image, as `mammo predict` gives it.
    let images: Vec<&str> = readable.values().flatten().map(String::as_str).collect();
    let per_image = dir.join("per-image.csv");
    let mut args = vec![
        "predict",
        "--run",
        run_s,
        "--csv",
        per_image.to_str().unwrap(),
    ];
    args.extend(&images);
    let o = mammo(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut prob: BTreeMap<String, f64> = BTreeMap::new();
    for line in std::fs::read_to_string(&per_image).unwrap().lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        prob.insert(f[0].to_string(), f[1].parse().unwrap());
    }
    assert_eq!(prob.len(), images.len());

    // The submission, at its default place: submission.csv in the current folder.
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mammo"))
        .args(["predict", "--run", run_s, "--rsna-test", set_s])
        .current_dir(&work)
        .output()
        .unwrap();
    // One truncated image: reported, the batch goes on, the exit status says so.
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 of ") && stderr(&o).contains("images failed"),
        "{}",
        stderr(&o)
    );
    let sub = read_submission(&work.join("submission.csv"));
    let ids: Vec<&str> = sub.iter().map(|(id, _)| id.as_str()).collect();
    let want_ids: Vec<&str> = readable.keys().map(String::as_str).collect();
    assert_eq!(ids, want_ids, "one row per breast, sorted by prediction_id");
    for (id, p) in &sub {
        let files = &readable[id];
        let mean = files.iter().map(|f| prob[f]).sum::<f64>() / files.len() as f64;
        assert!(
            (p - mean).abs() < 2e-6,
            "{id}: submission {p}, mean of its images {mean}"
        );
    }

    // A breast without a readable image: named, exit 3, the earlier submission kept.
    let out = dir.join("sub.csv");
    std::fs::write(&out, "earlier").unwrap();
    let csv = std::fs::read_to_string(set.join("test.csv")).unwrap();
    std::fs::write(
        set.join("test.csv"),
        format!("{csv}1,9999,424242,R,CC,60,0,49,9999_R\n"),
    )
    .unwrap();
    let o = mammo(&[
        "predict",
        "--run",
        run_s,
        "--rsna-test",
        set_s,
        "--submission",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("424242.dcm: no such file")
            && err.contains("error: 1 breast without a readable image: 9999_R;"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "earlier");

    // test.csv is checked before any model is loaded: a wrong prediction_id, an id that
    // would leave test_images/.
    for (row, want) in [
        (
            "1,9999,424242,R,CC,60,0,49,9999_L\n",
            "row 2: prediction_id \"9999_L\" is not patient_id_laterality \"9999_R\"",
        ),
        ("1,..,424242,R,CC,60,0,49,\n", "row 2: patient_id \"..\""),
    ] {
        std::fs::write(set.join("test.csv"), format!("{TEST_HEADER}{row}")).unwrap();
        let o = mammo(&["predict", "--run", run_s, "--rsna-test", set_s]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }

    // IMAGES and --rsna-test exclude each other; --submission needs --rsna-test.
    for args in [
        vec!["predict", "--run", run_s, "--rsna-test", set_s, images[0]],
        vec![
            "predict",
            "--run",
            run_s,
            "--submission",
            "s.csv",
            images[0],
        ],
        vec!["predict", "--run", run_s, "--submission", "s.csv"],
    ] {
        let o = mammo(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("--rsna-test") || stderr(&o).contains("--submission"));
    }
    std::fs::remove_dir_all(&dir).ok();
}
