//! Pretrained weights per architecture (Algorithm 1 starts from timm's ImageNet models).
//!
//! `[weights]` in the experiment file maps a timm model name to a safetensors file;
//! `--weights-dir` names a Hugging Face hub cache (where `timm.create_model(...,
//! pretrained=True)` keeps its downloads) searched for the models `[weights]` leaves out:
//!
//! ```text
//! DIR/models--timm--resnet18.a1_in1k/refs/main                  the revision "main" points to
//! DIR/models--timm--resnet18.a1_in1k/snapshots/<rev>/model.safetensors
//! ```
//!
//! Every file used is recorded with its sha256 in `experiment.json` and the report, and the
//! sha256 is part of the training step's key; a model with no file trains from scratch and
//! the report says so. The 3 -> 1 input-channel adaptation of the first convolution is
//! `mammo_models::load_timm_safetensors`'s (timm's own rule).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ExperimentError;

/// timm's default pretrained tag of each architecture mammo registers (what
/// `timm.create_model(name, pretrained=True)` downloads): the choice when a hub cache holds
/// several tags of one model.
const DEFAULT_TAGS: &[(&str, &str)] = &[
    ("resnet18", "a1_in1k"),
    ("resnet34", "a1_in1k"),
    ("resnet152", "a1h_in1k"),
    ("efficientnet_b0", "ra_in1k"),
    ("maxvit_nano_rw_256", "sw_in1k"),
];

/// The weights one model starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelWeights {
    pub file: PathBuf,
    pub sha256: String,
    /// Where the file was named: `[weights]`, `[train] pretrained`, or the hub cache
    /// repository and revision (`models--timm--resnet18.a1_in1k@<rev>`).
    pub origin: String,
}

/// The weights of each of `models` that has any: `[weights]` first (`table`), then
/// `[train] pretrained` (only with one model), then the hub cache `dir`. Missing from all: not
/// in the map (trained from scratch).
pub fn resolve_weights(
    models: &[String],
    table: &BTreeMap<String, PathBuf>,
    pretrained: Option<&Path>,
    dir: Option<&Path>,
) -> Result<BTreeMap<String, ModelWeights>, ExperimentError> {
    if let Some(dir) = dir
        && !dir.is_dir()
    {
        return Err(ExperimentError::Invalid(format!(
            "--weights-dir {}: not a folder",
            dir.display()
        )));
    }
    let mut out = BTreeMap::new();
    for model in models {
        let named = table
            .get(model)
            .map(|f| (f.clone(), "[weights]".to_string()))
            .or_else(|| pretrained.map(|f| (f.to_path_buf(), "[train] pretrained".to_string())));
        let found = match (named, dir) {
            (Some(named), _) => Some(named),
            (None, Some(dir)) => find_in_hub_cache(dir, model)?,
            (None, None) => None,
        };
        let Some((file, origin)) = found else {
            continue;
        };
        let meta = std::fs::metadata(&file).map_err(|e| {
            ExperimentError::Invalid(format!(
                "weights of {model} ({origin}): {}: {e}",
                file.display()
            ))
        })?;
        if !meta.is_file() {
            return Err(ExperimentError::Invalid(format!(
                "weights of {model} ({origin}): {}: not a regular file",
                file.display()
            )));
        }
        let sha256 = mammo_train::run::sha256_file(&file)
            .map_err(|e| ExperimentError::invalid(format!("weights of {model} ({origin})"), e))?;
        out.insert(
            model.clone(),
            ModelWeights {
                file,
                sha256,
                origin,
            },
        );
    }
    Ok(out)
}

/// The safetensors checkpoint of timm model `model` in hub cache `dir`, with its origin, or
/// `None` when the cache has no repository of that model.
pub fn find_in_hub_cache(
    dir: &Path,
    model: &str,
) -> Result<Option<(PathBuf, String)>, ExperimentError> {
    let exact = format!("models--timm--{model}");
    let tagged = format!("{exact}.");
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ExperimentError::invalid(format!("--weights-dir {}", dir.display()), e))?;
    let mut repos: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|n| {
            *n == exact
                || n.strip_prefix(&tagged)
                    .is_some_and(|tag| !tag.is_empty() && !tag.contains('.'))
        })
        .collect();
    repos.sort();
    let repo = match repos.len() {
        0 => return Ok(None),
        1 => repos.remove(0),
        _ => {
            let default = DEFAULT_TAGS
                .iter()
                .find(|(m, _)| *m == model)
                .map(|(m, tag)| format!("models--timm--{m}.{tag}"));
            match default.filter(|d| repos.contains(d)) {
                Some(d) => d,
                None => {
                    return Err(ExperimentError::Invalid(format!(
                        "--weights-dir {}: several checkpoints of {model} ({}) and none is timm's \
                         default; name one in [weights]",
                        dir.display(),
                        repos.join(", ")
                    )));
                }
            }
        }
    };
    let repo_dir = dir.join(&repo);
    let snapshots = repo_dir.join("snapshots");
    let main = std::fs::read_to_string(repo_dir.join("refs").join("main"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|rev| is_revision(rev) && snapshots.join(rev).is_dir());
    let rev = match main {
        Some(rev) => rev,
        None => {
            let mut revs: Vec<String> = std::fs::read_dir(&snapshots)
                .map_err(|e| ExperimentError::invalid(snapshots.display().to_string(), e))?
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(String::from))
                .filter(|r| is_revision(r))
                .collect();
            match revs.len() {
                1 => revs.remove(0),
                0 => {
                    return Err(ExperimentError::Invalid(format!(
                        "{}: no snapshot",
                        snapshots.display()
                    )));
                }
                _ => {
                    revs.sort();
                    return Err(ExperimentError::Invalid(format!(
                        "{}: several snapshots ({}) and no refs/main naming one; name the file in \
                         [weights]",
                        snapshots.display(),
                        revs.join(", ")
                    )));
                }
            }
        }
    };
    let file = snapshots.join(&rev).join("model.safetensors");
    if !file.exists() && file.symlink_metadata().is_ok() {
        // The hub links snapshot files to blobs/; a link to nothing is a download that did
        // not finish.
        return Err(ExperimentError::Invalid(format!(
            "{}: a link to a missing blob (an interrupted download?); download it again or name \
             the file in [weights]",
            file.display()
        )));
    }
    if !file.exists() {
        return Err(ExperimentError::Invalid(format!(
            "{}: missing (mammo reads timm's safetensors checkpoints, not pytorch_model.bin)",
            file.display()
        )));
    }
    Ok(Some((file, format!("{repo}@{rev}"))))
}

/// A snapshot folder name as the hub writes them (a commit hash): nothing that could leave
/// the cache when joined to a path.
fn is_revision(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mammo-weights-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A hub cache repository with one snapshot holding `bytes`; `main` writes refs/main.
    fn repo(dir: &Path, name: &str, rev: &str, bytes: &[u8], main: bool) -> PathBuf {
        let r = dir.join(format!("models--timm--{name}"));
        let snap = r.join("snapshots").join(rev);
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("model.safetensors"), bytes).unwrap();
        if main {
            std::fs::create_dir_all(r.join("refs")).unwrap();
            std::fs::write(r.join("refs").join("main"), rev).unwrap();
        }
        snap.join("model.safetensors")
    }

    #[test]
    fn the_hub_cache_layout_is_found_and_timms_default_tag_wins() {
        let d = tmp("hub");
        let a1 = repo(&d, "resnet18.a1_in1k", "abc123", b"a1", true);
        repo(&d, "resnet18.tv_in1k", "def456", b"tv", true);
        let only = repo(&d, "resnet34.tv_in1k", "0a0a", b"r34", false);
        // Not resnet18's: a longer name with the same prefix.
        repo(&d, "resnet18d.ra2_in1k", "aa", b"x", true);
        let (f, origin) = find_in_hub_cache(&d, "resnet18").unwrap().unwrap();
        assert_eq!(f, a1);
        assert_eq!(origin, "models--timm--resnet18.a1_in1k@abc123");
        // One snapshot and no refs/main: that snapshot.
        assert_eq!(find_in_hub_cache(&d, "resnet34").unwrap().unwrap().0, only);
        assert_eq!(find_in_hub_cache(&d, "efficientnet_b0").unwrap(), None);
    }

    #[test]
    fn ambiguous_or_incomplete_caches_are_clear_errors() {
        let d = tmp("ambiguous");
        repo(&d, "efficientnet_b0.x_in1k", "aa", b"1", true);
        repo(&d, "efficientnet_b0.y_in1k", "bb", b"2", true);
        let e = find_in_hub_cache(&d, "efficientnet_b0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("several checkpoints of efficientnet_b0"), "{e}");
        assert!(e.contains("[weights]"), "{e}");

        let r = d.join("models--timm--resnet34.a1_in1k");
        std::fs::create_dir_all(r.join("snapshots/r1")).unwrap();
        std::fs::create_dir_all(r.join("snapshots/r2")).unwrap();
        let e = find_in_hub_cache(&d, "resnet34").unwrap_err().to_string();
        assert!(e.contains("several snapshots"), "{e}");

        let r = d.join("models--timm--resnet152.a1h_in1k/snapshots/r1");
        std::fs::create_dir_all(&r).unwrap();
        std::fs::write(r.join("pytorch_model.bin"), b"pickle").unwrap();
        let e = find_in_hub_cache(&d, "resnet152").unwrap_err().to_string();
        assert!(e.contains("not pytorch_model.bin"), "{e}");

        #[cfg(unix)]
        {
            let r = d.join("models--timm--maxvit_nano_rw_256.sw_in1k/snapshots/r1");
            std::fs::create_dir_all(&r).unwrap();
            std::os::unix::fs::symlink(d.join("blobs/absent"), r.join("model.safetensors"))
                .unwrap();
            let e = find_in_hub_cache(&d, "maxvit_nano_rw_256")
                .unwrap_err()
                .to_string();
            assert!(e.contains("interrupted download"), "{e}");
        }
    }

    #[test]
    fn a_ref_that_leaves_the_cache_is_not_followed() {
        let d = tmp("escape");
        let r = d.join("models--timm--resnet18.a1_in1k");
        let good = repo(&d, "resnet18.a1_in1k", "good", b"ok", false);
        std::fs::create_dir_all(r.join("refs")).unwrap();
        std::fs::write(r.join("refs/main"), "../../../etc").unwrap();
        assert_eq!(find_in_hub_cache(&d, "resnet18").unwrap().unwrap().0, good);
    }

    #[test]
    fn the_table_comes_first_and_every_file_is_hashed() {
        let d = tmp("resolve");
        let hub = d.join("hub");
        std::fs::create_dir_all(&hub).unwrap();
        repo(&hub, "resnet18.a1_in1k", "abc", b"from the hub", true);
        repo(&hub, "resnet34.a1_in1k", "abc", b"r34 from the hub", true);
        let named = d.join("mine.safetensors");
        std::fs::write(&named, b"mine").unwrap();
        let models: Vec<String> = ["resnet18", "resnet34", "efficientnet_b0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let table = BTreeMap::from([("resnet34".to_string(), named.clone())]);
        let w = resolve_weights(&models, &table, None, Some(&hub)).unwrap();
        assert_eq!(w.len(), 2, "efficientnet_b0 has none: from scratch");
        assert_eq!(w["resnet34"].file, named);
        assert_eq!(w["resnet34"].origin, "[weights]");
        // sha256("mine")
        assert_eq!(
            w["resnet34"].sha256,
            "3fd30542fe3f61b14bd4a4b2dc0b6fb30fa6f63ebce52dd1778aaa8c4dc02cff"
        );
        assert_eq!(w["resnet18"].origin, "models--timm--resnet18.a1_in1k@abc");
        assert_ne!(w["resnet18"].sha256, w["resnet34"].sha256);

        let missing = BTreeMap::from([("resnet18".to_string(), d.join("nope.safetensors"))]);
        let e = resolve_weights(&models, &missing, None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("weights of resnet18 ([weights])") && e.contains("nope.safetensors"),
            "{e}"
        );
        let e = resolve_weights(&models, &BTreeMap::new(), None, Some(&d.join("absent")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a folder"), "{e}");
    }
}
