//! Fingerprints of the code behind each kind of step, computed at build time (`build.rs`):
//! part of every step's cache key, so a build whose code changed what a step computes runs
//! that step again instead of reusing its old result.

use std::collections::BTreeMap;

use serde_json::Value;

include!(concat!(env!("OUT_DIR"), "/fingerprints.rs"));

/// The step kinds that carry a code fingerprint.
pub const STEP_KINDS: [&str; 5] = ["phantom", "preprocess", "gan", "train", "explain"];

/// The fingerprint of the code that computes steps of `kind` (one of [`STEP_KINDS`]).
///
/// # Panics
/// On any other kind (a programming error: build.rs and this list disagree).
pub fn fingerprint(kind: &str) -> &'static str {
    CODE_FINGERPRINTS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no code fingerprint for step kind {kind:?}"))
}

/// Every kind's fingerprint, for `experiment.json` and the report.
pub fn fingerprints() -> BTreeMap<&'static str, &'static str> {
    CODE_FINGERPRINTS.iter().copied().collect()
}

/// What the fingerprints were computed from: the workspace's sources and `Cargo.lock`, or
/// (a packaged build) the crate versions only.
pub fn fingerprint_origin() -> &'static str {
    FINGERPRINT_ORIGIN
}

/// `key` without what identifies the build of this step (its top-level `code` member, and
/// the `version` member of keys written before fingerprints existed): two steps whose keys
/// agree on this computed the same thing with possibly different code. Keys nested in it
/// (an explanation's training key) keep theirs: what a step was built on must match exactly.
pub(crate) fn without_code(key: &Value) -> Value {
    match key {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "code" && k.as_str() != "version")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_step_kind_has_a_fingerprint() {
        for kind in STEP_KINDS {
            let f = fingerprint(kind);
            assert_eq!(f.len(), 16, "{kind}: {f}");
            assert!(f.chars().all(|c| c.is_ascii_hexdigit()), "{kind}: {f}");
        }
        assert_eq!(fingerprints().len(), STEP_KINDS.len());
    }

    #[test]
    fn step_kinds_built_on_different_crates_have_different_fingerprints() {
        // The phantom's closure lacks burn; training's holds it.
        assert_ne!(fingerprint("phantom"), fingerprint("train"));
        assert_ne!(fingerprint("preprocess"), fingerprint("gan"));
    }

    #[test]
    fn keys_compare_without_their_own_code_only() {
        let a = json!({"train": {"lr": 1e-4}, "code": {"train": "aa", "preprocess": "p"}});
        let b = json!({"train": {"lr": 1e-4}, "code": "bb"});
        let c = json!({"train": {"lr": 1e-3}, "code": "aa"});
        assert_eq!(without_code(&a), without_code(&b));
        assert_ne!(without_code(&a), without_code(&c));
        // Keys from before fingerprints carried the package version instead.
        let old = json!({"train": {"lr": 1e-4}, "version": "0.1.0"});
        assert_eq!(without_code(&old), without_code(&a));
        // A nested key (what the step was built on) must match with its code.
        let e1 = json!({"train_key": {"lr": 1, "code": "x"}, "code": "e1"});
        let e2 = json!({"train_key": {"lr": 1, "code": "y"}, "code": "e2"});
        assert_ne!(without_code(&e1), without_code(&e2));
    }
}
