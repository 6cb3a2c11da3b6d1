//! Replays the committed fuzz corpora and crash regressions through the harnesses.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_target_has_a_seed_corpus_and_a_fuzz_target() {
    for (name, _) in mammo_fuzz::TARGETS {
        assert!(
            !files(&fuzz_dir().join("seeds").join(name)).is_empty(),
            "fuzz/seeds/{name} is empty"
        );
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{name}.rs missing"
        );
    }
}

#[test]
fn corpora_and_past_crashes_replay_without_panics() {
    let mut replayed = 0;
    for (name, harness) in mammo_fuzz::TARGETS {
        for sub in ["seeds", "corpus-min", "regressions"] {
            for file in files(&fuzz_dir().join(sub).join(name)) {
                let bytes = std::fs::read(&file).unwrap();
                let outcome = std::panic::catch_unwind(|| harness(&bytes));
                assert!(outcome.is_ok(), "{name} panics on {}", file.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= mammo_fuzz::TARGETS.len());
}
