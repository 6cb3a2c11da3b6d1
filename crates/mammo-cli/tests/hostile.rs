//! The `mammo` binary against a hostile but fair user: ids that try to leave their folder,
//! inputs that are not files, edited CSVs, closed pipes, out-of-range flags, two writers in
//! one folder, and temporary files of killed runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{mammo, phantom, stderr, tempdir};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mammo-dicom/tests/fixtures")
        .join(name)
}

const HEADER: &str = "site_id,patient_id,image_id,laterality,view,age,cancer,biopsy,invasive,\
                      BIRADS,implant,density,machine_id,difficult_negative_case\n";

/// Writes train.csv with `rows` (patient, image, laterality, view, age, cancer) and copies a
/// fixture for every row whose image folder is a plain id.
fn dataset(dir: &Path, rows: &[(&str, &str, &str, &str, &str, &str)]) -> (PathBuf, PathBuf) {
    let images = dir.join("train_images");
    std::fs::create_dir_all(&images).unwrap();
    let mut csv = String::from(HEADER);
    for (p, i, lat, view, age, cancer) in rows {
        csv += &format!("1,{p},{i},{lat},{view},{age},{cancer},0,0,,0,B,49,False\n");
        let plain = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric());
        if plain(p) && plain(i) {
            std::fs::create_dir_all(images.join(p)).unwrap();
            std::fs::copy(
                fixture("synth12_j2k_gdcm.dcm"),
                images.join(p).join(format!("{i}.dcm")),
            )
            .unwrap();
        }
    }
    let path = dir.join("train.csv");
    std::fs::write(&path, csv).unwrap();
    (path, images)
}

fn preprocess(csv: &Path, images: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "preprocess",
        "--csv",
        csv.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--size",
        "32",
        "--flip-to",
        "left",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    mammo(&args)
}

/// Runs mammo with a deadline: a command that blocks (on a FIFO, say) fails the test instead
/// of hanging it.
fn mammo_within(args: &[&str], limit: Duration) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mammo"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("mammo {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn ids_that_would_leave_their_folder_are_refused_naming_the_row() {
    let dir = tempdir("escape");
    let out = dir.join("out");
    for (p, i, field) in [
        ("../../escape", "1", "patient_id"),
        ("10", "../../../etc/passwd", "image_id"),
        ("/abs", "1", "patient_id"),
        ("10", "a\\b", "image_id"),
    ] {
        let (csv, images) = dataset(
            &dir,
            &[
                ("10", "100", "L", "CC", "60", "0"),
                (p, i, "L", "CC", "60", "0"),
            ],
        );
        let o = preprocess(&csv, &images, &out, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("row 3") && err.contains(field),
            "{p} {i}: {err}"
        );
        assert!(!dir.join("escape.png").exists() && !dir.parent().unwrap().join("escape").exists());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn train_csv_values_are_checked_on_read() {
    let dir = tempdir("csv-values");
    let out = dir.join("out");
    for (rows, want) in [
        (vec![("10", "100", "L", "CC", "60", "yes")], "row 2: cancer"),
        (vec![("10", "100", "L", "CC", "60", "2")], "row 2: cancer"),
        (
            vec![("10", "100", "X", "CC", "60", "0")],
            "row 2: laterality",
        ),
        (
            vec![
                ("10", "100", "L", "CC", "60", "0"),
                ("11", "100", "R", "CC", "60", "0"),
            ],
            "already on row 2",
        ),
    ] {
        let (csv, images) = dataset(&dir, &rows);
        let o = preprocess(&csv, &images, &out, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "want {want:?}: {err}");
        // The error keeps its typed cause (the row's), whose text the message already
        // holds: printed once, not again as a "caused by" line.
        assert!(
            err.contains("cannot read") && err.contains("train.csv: row "),
            "{err}"
        );
        assert!(!err.contains("caused by"), "{err}");
    }
    // RSNA's own spellings are labels; an unknown view is kept with a warning.
    let (csv, images) = dataset(
        &dir,
        &[
            ("10", "100", "L", "CC", "60", "1.0"),
            ("10", "101", "R", "XYZ", "60", "False"),
        ],
    );
    let o = preprocess(&csv, &images, &out, &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("row 3: unknown view \"XYZ\""), "{err}");
    let rows = mammo_dataset::read_manifest(&out.join("32/manifest.csv")).unwrap();
    let labels: Vec<Option<bool>> = rows.iter().map(|r| r.label).collect();
    assert_eq!(labels, [Some(true), Some(false)]);
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(unix)]
#[test]
fn inputs_outside_images_and_non_files_fail_alone_and_the_batch_goes_on() {
    let dir = tempdir("inputs");
    let (csv, images) = dataset(
        &dir,
        &[
            ("10", "100", "L", "CC", "60", "0"),
            ("10", "101", "R", "CC", "60", "0"),
            ("11", "110", "L", "CC", "60", "0"),
            ("11", "111", "R", "CC", "60", "0"),
        ],
    );
    // 101 is a link to a file outside --images; 110 is a FIFO; 111 is a folder.
    let outside = dir.join("outside.dcm");
    std::fs::copy(fixture("synth12_j2k_gdcm.dcm"), &outside).unwrap();
    let link = images.join("10/101.dcm");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let fifo = images.join("11/110.dcm");
    std::fs::remove_file(&fifo).unwrap();
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let folder = images.join("11/111.dcm");
    std::fs::remove_file(&folder).unwrap();
    std::fs::create_dir(&folder).unwrap();

    let out = dir.join("out");
    let args = [
        "preprocess",
        "--csv",
        csv.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--size",
        "32",
        "--quiet",
    ];
    let o = mammo_within(&args, Duration::from_secs(120));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("1 new, 0 already done, 3 failed"), "{err}");
    assert!(err.contains("outside --images"), "{err}");
    assert!(err.contains("not a regular file (a FIFO)"), "{err}");
    assert!(err.contains("not a regular file (a folder)"), "{err}");

    // `convert` on a FIFO is an error, not a hang.
    let png = dir.join("x.png");
    let o = mammo_within(
        &["convert", fifo.to_str().unwrap(), png.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a regular file (a FIFO)"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_edited_train_csv_rewrites_or_redoes_exactly_what_it_changes() {
    let dir = tempdir("edited");
    let rows = [
        ("10", "100", "L", "CC", "60", "0"),
        ("10", "101", "R", "MLO", "60", "0"),
        ("11", "110", "L", "CC", "55", "0"),
    ];
    let (csv, images) = dataset(&dir, &rows);
    let out = dir.join("out");
    let o = preprocess(&csv, &images, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let png = |i: &str, p: &str| out.join("32").join(p).join(format!("{i}.png"));
    let mtime = |p: PathBuf| std::fs::metadata(p).unwrap().modified().unwrap();
    let before: Vec<_> = [("100", "10"), ("101", "10"), ("110", "11")]
        .iter()
        .map(|(i, p)| mtime(png(i, p)))
        .collect();
    std::thread::sleep(Duration::from_millis(1100));

    // A corrected label and age: rows rewritten, PNGs kept. A corrected laterality changes
    // the flip: that image is made again.
    let edited = [
        ("10", "100", "L", "CC", "60", "1"),
        ("10", "101", "L", "MLO", "60", "0"),
        ("11", "110", "L", "CC", "56", "0"),
    ];
    dataset(&dir, &edited);
    let o = preprocess(&csv, &images, &out, &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("1 new, 2 already done, 0 failed"), "{err}");
    assert!(
        err.contains("2 finished images had changed train.csv rows"),
        "{err}"
    );
    let manifest = mammo_dataset::read_manifest(&out.join("32/manifest.csv")).unwrap();
    let get = |i: &str| manifest.iter().find(|r| r.image_id == i).unwrap();
    assert_eq!(get("100").label, Some(true));
    assert_eq!(get("110").age, "56");
    assert_eq!(
        (get("101").laterality.as_str(), get("101").flipped),
        ("L", false)
    );
    assert_eq!(
        mtime(png("100", "10")),
        before[0],
        "label change keeps the PNG"
    );
    assert_eq!(
        mtime(png("110", "11")),
        before[2],
        "age change keeps the PNG"
    );
    assert_ne!(
        mtime(png("101", "10")),
        before[1],
        "laterality change redoes the image"
    );

    // And a third run with the same CSV changes nothing.
    let o = preprocess(&csv, &images, &out, &[]);
    let err = stderr(&o);
    assert!(
        err.contains("0 new, 3 already done") && !err.contains("changed train.csv"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn output_folders_have_one_writer_and_lose_their_temporaries() {
    let dir = tempdir("lock");
    let (csv, images) = dataset(&dir, &[("10", "100", "L", "CC", "60", "0")]);
    let out = dir.join("out");
    std::fs::create_dir_all(out.join("32/10")).unwrap();
    // A live process holds the folder: this test's own, with its real start time.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let start = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().nth(19).map(str::to_owned))
        .unwrap_or_default();
    let lock = out.join(".mammo.lock");
    std::fs::write(
        &lock,
        format!("{}\nmammo train\n{start}\n", std::process::id()),
    )
    .unwrap();
    let o = preprocess(&csv, &images, &out, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("being written by another mammo process")
            && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );

    // The holder was killed: its lock is stale, its temporaries are swept.
    std::fs::write(&lock, "99999999\nmammo preprocess\n1\n").unwrap();
    let tmp = out.join("32/10/100.png.tmp4242");
    std::fs::write(&tmp, vec![0u8; 4096]).unwrap();
    let o = preprocess(&csv, &images, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!tmp.exists(), "temporary of a killed run swept");
    assert!(!lock.exists(), "lock released at the end");
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_mammo_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempdir("pipe");
    let png = dir.join("x.png");
    // stderr into a pipe whose reader is already gone: the final message hits EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = Command::new(env!("CARGO_BIN_EXE_mammo"))
        .args([
            "convert",
            fixture("synth12_j2k_gdcm.dcm").to_str().unwrap(),
            png.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(writer)
        .status()
        .unwrap();
    assert_ne!(status.code(), Some(101), "no panic: {status:?}");
    assert_eq!(
        status.signal(),
        Some(13),
        "ends by SIGPIPE like cat or grep: {status:?}"
    );
    assert!(png.exists(), "the work was done before the message");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn usage_errors_exit_2_naming_the_flag_and_the_range() {
    let dir = tempdir("usage");
    let bad_toml = dir.join("bad.toml");
    std::fs::write(&bad_toml, "[experiment\nstages = 3").unwrap();
    let (m, o) = ("--manifest", dir.join("m.csv"));
    let o = o.to_str().unwrap();
    let train = |extra: &[&str]| {
        let mut v = vec!["train", m, o, "--out", o];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (train(&["--batch-size", "0"]), "--batch-size"),
        (train(&["--batch-size", "-6"]), "-6 is out of range"),
        (train(&["--folds", "1"]), "--folds"),
        (train(&["--epochs", "0"]), "--epochs"),
        (train(&["--lr", "nan"]), "--lr"),
        (train(&["--lr", "-0.5"]), "-0.5 is out of range"),
        (train(&["--device", "gpu"]), "--device"),
        (train(&["--model", "resnet9000"]), "resnet9000"),
        (train(&["--preset", "nope"]), "--preset nope"),
        (train(&["--config", bad_toml.to_str().unwrap()]), "bad.toml"),
        (
            s(&[
                "preprocess",
                "--csv",
                "a",
                "--images",
                "b",
                "--out",
                "c",
                "--size",
                "0",
            ]),
            "--size",
        ),
        (
            s(&["preprocess", "--csv", "a", "--images", "b", "--out", "c"]),
            "--size",
        ),
        (
            s(&["phantom", "--out", o, "--prevalence", "2"]),
            "--prevalence",
        ),
        (s(&["phantom", "--out", o, "--patients", "0"]), "--patients"),
        (
            s(&["gan", "generate", "--run", o, "--out", o, "--n", "0"]),
            "--n",
        ),
        (
            s(&["experiment", "--config", bad_toml.to_str().unwrap()]),
            "bad.toml",
        ),
        (
            s(&["experiment", "--config", o, "--resolutions", "0"]),
            "--resolutions",
        ),
        (
            s(&["convert", "--max-pixels", "0", "a.dcm", "b.png"]),
            "--max-pixels",
        ),
    ];
    for (args, want) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = mammo(&a);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{a:?}: {err}");
        assert!(err.contains(want), "{a:?}: want {want:?} in {err}");
        assert!(!err.contains("unexpected argument"), "{a:?}: {err}");
    }
    // The allocator's budget comes from the environment: a bad value is a usage error too.
    let out = Command::new(env!("CARGO_BIN_EXE_mammo"))
        .args(["phantom", "--out", o])
        .env("MAMMO_ALLOC_CACHE_MB", "lots")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("MAMMO_ALLOC_CACHE_MB=\"lots\" is not a whole number of MiB"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_image_larger_than_the_limit_is_refused_before_decoding() {
    let dir = tempdir("limit");
    let png = dir.join("x.png");
    let src = fixture("synth12_j2k_gdcm.dcm");
    let o = mammo(&[
        "convert",
        "--max-pixels",
        "100",
        src.to_str().unwrap(),
        png.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("more than the limit of 100") && err.contains("--max-pixels"),
        "{err}"
    );
    assert!(!png.exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// Files under `dir` (relative path -> bytes), leaving out what may differ between an
/// interrupted and an uninterrupted run: timings and logs.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Kills `args` with SIGKILL after each of `delays`, then lets it finish.
fn kill_then_finish(args: &[&str], delays: &[Duration]) -> std::process::Output {
    for &d in delays {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mammo"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(d);
        child.kill().ok(); // SIGKILL on unix
        child.wait().unwrap();
    }
    mammo(args)
}

/// Runs `args(reference)` to the end, then `args(killed)` killed (SIGKILL) three times at
/// seeded moments within the reference run's duration, each restart resuming, and finished.
fn reference_then_killed<const N: usize>(
    args: impl Fn(&Path) -> [String; N],
    reference: &Path,
    killed: &Path,
    seed: u64,
) {
    let a = args(reference);
    let started = Instant::now();
    let o = mammo(&a.each_ref().map(String::as_str));
    assert!(o.status.success(), "{}", stderr(&o));
    let took = started.elapsed();
    let b = args(killed);
    let o = kill_then_finish(
        &b.each_ref().map(String::as_str),
        &delays(seed, 3, took / 10, took * 9 / 10),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Seeded delays in `lo..hi` (xorshift: the test is the same on every run).
fn delays(seed: u64, n: usize, lo: Duration, hi: Duration) -> Vec<Duration> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            lo + (hi - lo).mul_f64((x % 1000) as f64 / 1000.0)
        })
        .collect()
}

fn no_leftovers(dir: &Path) {
    for (rel, _) in tree(dir) {
        let name = Path::new(&rel)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(!mammo_image::is_temp_name(&name), "temporary left: {rel}");
        assert!(name != mammo_image::LOCK_FILE, "lock left: {rel}");
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                let name = e.file_name().to_string_lossy().into_owned();
                assert!(
                    !mammo_image::is_temp_name(&name),
                    "temporary folder left: {name}"
                );
                stack.push(e.path());
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn killed_preprocess_and_train_resume_to_identical_outputs() {
    let dir = tempdir("kill");
    let data = dir.join("data");
    phantom(&data, 8, "160x200", 5, &[]);
    let (csv, images) = (data.join("train.csv"), data.join("train_images"));

    // Preprocess: uninterrupted, then killed three times at seeded moments and resumed.
    let prep = |out: &Path| {
        [
            "preprocess",
            "--csv",
            csv.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--size",
            "32",
            "--flip-to",
            "left",
            "--jobs",
            "1",
            "--quiet",
        ]
        .map(String::from)
    };
    let (ref_out, killed_out) = (dir.join("prep-ref"), dir.join("prep-killed"));
    reference_then_killed(prep, &ref_out, &killed_out, 0x5eed);
    let strip = |mut t: std::collections::BTreeMap<String, Vec<u8>>| {
        // Timings and the journal (its order follows the threads) may differ.
        t.retain(|k, _| k != "summary.json" && k != "journal.jsonl" && k != "preprocess.json");
        t
    };
    assert_eq!(
        strip(tree(&ref_out)),
        strip(tree(&killed_out)),
        "preprocess outputs differ"
    );
    no_leftovers(&killed_out);

    // Train: the same, killed during training.
    let manifest = ref_out.join("32/manifest.csv");
    let train = |run: &Path| {
        [
            "train",
            "--manifest",
            manifest.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--folds",
            "2",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--quiet",
        ]
        .map(String::from)
    };
    let (ref_run, killed_run) = (dir.join("run-ref"), dir.join("run-killed"));
    reference_then_killed(train, &ref_run, &killed_run, 0x7a1e);
    for f in [
        "oof_predictions.csv",
        "fold-0/last.safetensors",
        "fold-1/last.safetensors",
        "folds.csv",
    ] {
        assert_eq!(
            std::fs::read(ref_run.join(f)).unwrap(),
            std::fs::read(killed_run.join(f)).unwrap(),
            "{f} differs after kills and resume"
        );
    }
    no_leftovers(&killed_run);
    std::fs::remove_dir_all(&dir).ok();
}
