//! Content-keyed step folders: a step's folder is named by the digest of its key (its
//! inputs, settings and code fingerprints), `key.json` holds the key and `done.json` marks it
//! finished, so a rerun skips what is done and redoes what changed; a finished folder of an
//! earlier build (same key up to code fingerprints) is found and, with `--reuse-stale`,
//! reused. [`Steps`] counts and announces the steps as they run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::code::without_code;
use crate::{ExperimentError, io_err};

/// `done.json` of a step.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    key: Value,
    seconds: f64,
}

/// First 12 hex digits of the sha256 of the canonical JSON of `key`.
pub(crate) fn digest(key: &Value) -> String {
    let bytes = serde_json::to_vec(key).expect("JSON of a Value");
    Sha256::digest(&bytes)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<(), ExperimentError> {
    Ok(mammo_io::write_json(path, value)?)
}

/// Runs the steps in order, counting and announcing them.
pub(crate) struct Steps {
    pub(crate) root: PathBuf,
    pub(crate) total: usize,
    pub(crate) index: usize,
    pub(crate) cached: usize,
    pub(crate) stale: usize,
    pub(crate) reuse_stale: bool,
    pub(crate) started: Instant,
}

/// The overall progress line of step `index` (1-based) of `total`: steps finished before it
/// as a bar, and the time since the experiment started.
pub(crate) fn overall(
    index: usize,
    total: usize,
    kind: &str,
    name: &str,
    cached: &str,
    elapsed: f64,
) -> String {
    const WIDTH: usize = 24;
    let done = (index - 1).min(total);
    let filled = done * WIDTH / total.max(1);
    let secs = elapsed as u64;
    format!(
        "[{index}/{total}] {kind} {name}{cached}  [{}{}] {}% of steps, {}m{:02}s elapsed",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        100 * done / total.max(1),
        secs / 60,
        secs % 60
    )
}

impl Steps {
    /// The folder of a step, whether it is already done, and the key it is done (or will be
    /// done) with: `key` itself, or, for an earlier build's result reused under
    /// `reuse_stale`, that result's own key, which is what later steps must be keyed on.
    pub(crate) fn begin(
        &mut self,
        kind: &str,
        name: &str,
        key: &Value,
    ) -> Result<(PathBuf, bool, Value), ExperimentError> {
        self.index += 1;
        let mut dir = self
            .root
            .join("steps")
            .join(format!("{kind}-{name}-{}", digest(key)));
        let mut finished = dir.join("done.json").exists();
        let mut note = if finished { " (done, cached)" } else { "" };
        let mut key_used = key.clone();
        if !finished && let Some((old, old_key)) = self.earlier_build(kind, name, key, &dir) {
            if self.reuse_stale {
                dir = old;
                key_used = old_key;
                finished = true;
                self.stale += 1;
                note = " (done by an earlier build, reused: --reuse-stale)";
            } else {
                note = " (an earlier build did it; the code changed, so it runs again: \
                        --reuse-stale keeps the old result)";
            }
        }
        if finished {
            self.cached += 1;
        }
        eprintln!(
            "{}",
            overall(
                self.index,
                self.total,
                kind,
                name,
                note,
                self.started.elapsed().as_secs_f64()
            )
        );
        std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
        if !finished {
            write_json(&dir.join("key.json"), key)?;
        }
        Ok((dir, finished, key_used))
    }

    /// A finished folder of the same step whose key differs from `key` only in its own code
    /// fingerprints (the result of an earlier build), with that key.
    fn earlier_build(
        &self,
        kind: &str,
        name: &str,
        key: &Value,
        dir: &Path,
    ) -> Option<(PathBuf, Value)> {
        let prefix = format!("{kind}-{name}-");
        let want = without_code(key);
        let mut found: Vec<(PathBuf, Value)> = std::fs::read_dir(self.root.join("steps"))
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                // `<kind>-<name>-` then the 12-digit digest: not a longer name's folder.
                n.strip_prefix(&prefix).is_some_and(|rest| {
                    rest.len() == 12 && rest.bytes().all(|b| b.is_ascii_hexdigit())
                })
            })
            .map(|e| e.path())
            .filter(|p| p != dir)
            .filter_map(|p| {
                let done = std::fs::read(p.join("done.json")).ok()?;
                let done: Done = serde_json::from_slice(&done).ok()?;
                (without_code(&done.key) == want).then_some((p, done.key))
            })
            .collect();
        // The most recently finished one, if several builds did it.
        found.sort_by_key(|(p, _)| {
            std::fs::metadata(p.join("done.json"))
                .and_then(|m| m.modified())
                .ok()
        });
        found.pop()
    }

    pub(crate) fn finish(
        &self,
        dir: &Path,
        key: &Value,
        started: Instant,
    ) -> Result<(), ExperimentError> {
        write_json(
            &dir.join("done.json"),
            &Done {
                key: key.clone(),
                seconds: started.elapsed().as_secs_f64(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_overall_line_shows_the_steps_done() {
        assert_eq!(
            overall(1, 4, "data", "phantom", "", 0.0),
            "[1/4] data phantom  [------------------------] 0% of steps, 0m00s elapsed"
        );
        assert_eq!(
            overall(3, 4, "train", "x", " (done, cached)", 75.0),
            "[3/4] train x (done, cached)  [############------------] 50% of steps, 1m15s elapsed"
        );
    }

    #[test]
    fn digest_changes_with_any_setting() {
        let a = digest(&json!({"lr": 1e-4, "epochs": 3}));
        assert_eq!(a, digest(&json!({"lr": 1e-4, "epochs": 3})));
        assert_ne!(a, digest(&json!({"lr": 1e-4, "epochs": 4})));
        assert_eq!(a.len(), 12);
    }
}
