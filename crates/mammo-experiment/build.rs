//! Fingerprints of the code behind each kind of experiment step, baked in at compile time.
//!
//! A step's result depends on the code that computed it, so its cache key carries a digest of
//! that code: for each kind of step, the transitive closure of the library crate that runs it
//! in `Cargo.lock` (every registry dependency by name, version and checksum; every path
//! package of this workspace, mammo's crates and the patched `third_party/` ones, by a sha256
//! of its sources), plus the experiment's own module that drives the step. A change to
//! mammo-gan reruns the GAN steps and what is built on them, not the preprocessing.
//!
//! Outside this repository (a packaged build, no `Cargo.lock` beside the workspace), the path
//! packages are identified by name and version only, and the fingerprint says so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// (step kind, library crates that run it, experiment modules that drive it).
const STEPS: &[(&str, &[&str], &[&str])] = &[
    ("phantom", &["mammo-phantom"], &[]),
    ("preprocess", &["mammo-preprocess"], &[]),
    // The experiment's GAN step assigns folds with mammo-train.
    ("gan", &["mammo-gan", "mammo-train"], &["src/gan.rs"]),
    ("train", &["mammo-train"], &[]),
    // Explanations run the trained models through mammo-train's ensemble.
    (
        "explain",
        &["mammo-explain", "mammo-train"],
        &["src/explain.rs"],
    ),
];

struct Package {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
    deps: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Every file under `dir`, sorted, skipping build outputs.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// sha256 over the relative names and contents of a path package's sources.
fn hash_sources(dir: &Path) -> String {
    let mut files = Vec::new();
    for sub in ["src", "build.rs", "Cargo.toml"] {
        let p = dir.join(sub);
        if !p.exists() {
            // A missing path would make cargo rerun this script on every build.
            continue;
        }
        println!("cargo:rerun-if-changed={}", p.display());
        if p.is_dir() {
            files_under(&p, &mut files);
        } else if p.is_file() {
            files.push(p);
        }
    }
    let mut h = Sha256::new();
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(&f).unwrap_or_default());
        h.update([0]);
    }
    hex(&h.finalize())
}

fn parse_lock(text: &str) -> Vec<Package> {
    let lock: toml::Value = toml::from_str(text).expect("Cargo.lock is TOML");
    let str_of = |t: &toml::Value, k: &str| t.get(k).and_then(|v| v.as_str()).map(String::from);
    lock.get("package")
        .and_then(|p| p.as_array())
        .map(|packages| {
            packages
                .iter()
                .map(|p| Package {
                    name: str_of(p, "name").unwrap_or_default(),
                    version: str_of(p, "version").unwrap_or_default(),
                    source: str_of(p, "source"),
                    checksum: str_of(p, "checksum"),
                    deps: p
                        .get("dependencies")
                        .and_then(|d| d.as_array())
                        .map(|d| {
                            d.iter()
                                .filter_map(|v| v.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Index of the package a `dependencies` entry (`name`, `name version` or
/// `name version (source)`) names.
fn resolve(packages: &[Package], dep: &str) -> Option<usize> {
    let mut parts = dep.split_whitespace();
    let name = parts.next()?;
    let version = parts.next();
    packages
        .iter()
        .position(|p| p.name == name && version.is_none_or(|v| p.version == v))
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest_dir.join("../..");
    let lock_path = root.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets it");

    let lock = std::fs::read_to_string(&lock_path).ok();
    let packages = lock.as_deref().map(parse_lock).unwrap_or_default();
    let in_workspace = !packages.is_empty();
    let mut source_hashes: BTreeMap<String, String> = BTreeMap::new();

    let mut lines = String::new();
    for (kind, roots, own) in STEPS {
        let mut h = Sha256::new();
        let starts: Vec<usize> = roots
            .iter()
            .filter_map(|r| packages.iter().position(|p| p.name == *r))
            .collect();
        match starts.len() == roots.len() && in_workspace {
            true => {
                let mut seen = BTreeSet::new();
                let mut todo = starts;
                while let Some(i) = todo.pop() {
                    if !seen.insert(i) {
                        continue;
                    }
                    todo.extend(
                        packages[i]
                            .deps
                            .iter()
                            .filter_map(|d| resolve(&packages, d)),
                    );
                }
                let mut ids: Vec<String> = seen
                    .into_iter()
                    .map(|i| {
                        let p = &packages[i];
                        let content = match (&p.source, &p.checksum) {
                            (Some(source), Some(sum)) => format!("{source} {sum}"),
                            (Some(source), None) => source.clone(),
                            (None, _) => {
                                let dir = [root.join("crates"), root.join("third_party")]
                                    .into_iter()
                                    .map(|d| d.join(&p.name))
                                    .find(|d| d.join("Cargo.toml").is_file());
                                match dir {
                                    Some(dir) => source_hashes
                                        .entry(p.name.clone())
                                        .or_insert_with(|| hash_sources(&dir))
                                        .clone(),
                                    None => {
                                        println!(
                                            "cargo:warning=code fingerprint: the sources of path \
                                             package {} were not found; it is keyed by version \
                                             only",
                                            p.name
                                        );
                                        "path package, sources not found".into()
                                    }
                                }
                            }
                        };
                        format!("{} {} {content}", p.name, p.version)
                    })
                    .collect();
                ids.sort();
                for id in ids {
                    h.update(id.as_bytes());
                    h.update([b'\n']);
                }
            }
            false => {
                for r in *roots {
                    h.update(format!("{r} {version} (packaged build)\n").as_bytes());
                }
            }
        }
        for file in *own {
            let p = manifest_dir.join(file);
            println!("cargo:rerun-if-changed={}", p.display());
            h.update(file.as_bytes());
            h.update([0]);
            h.update(std::fs::read(&p).unwrap_or_default());
        }
        let digest = hex(&h.finalize());
        let _ = writeln!(lines, "    ({kind:?}, {:?}),", &digest[..16]);
    }
    let origin = if in_workspace {
        "sources and Cargo.lock"
    } else {
        "crate versions (packaged build)"
    };
    let code = format!(
        "/// (step kind, fingerprint of the code that computes it), from {origin}.\n\
         pub(crate) const CODE_FINGERPRINTS: &[(&str, &str)] = &[\n{lines}];\n\
         /// What the fingerprints were computed from.\n\
         pub(crate) const FINGERPRINT_ORIGIN: &str = {origin:?};\n"
    );
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("fingerprints.rs");
    std::fs::write(&out, code).expect("write fingerprints.rs");
}
