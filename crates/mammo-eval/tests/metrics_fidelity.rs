//! Metrics against scikit-learn and the RSNA probabilistic-F1 definition, on fixtures made
//! by `tools/fixtures/make_metric_fixtures.py` (tolerance 1e-6).

use mammo_eval::{binary_metrics, per_breast_probabilistic_f1, probabilistic_f1};
use serde_json::Value;

#[test]
fn metrics_match_scikit_learn() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let labels: Vec<u8> = c["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u8)
            .collect();
        let scores: Vec<f64> = c["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let patients: Vec<&str> = c["patients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        let lat: Vec<&str> = c["laterality"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        let m = binary_metrics(&labels, &scores);
        let close = |what: &str, ours: f64, key: &str| {
            let want = c[key].as_f64().unwrap();
            assert!(
                (ours - want).abs() <= 1e-6,
                "{name} {what}: mammo {ours}, reference {want}"
            );
        };
        close("ROC-AUC", m.roc_auc.unwrap(), "roc_auc");
        close("accuracy", m.accuracy, "accuracy");
        close("precision", m.precision, "precision");
        close("recall", m.recall, "recall");
        close("F1", m.f1, "f1");
        close("best F1", m.best_f1, "best_f1");
        close(
            "pF1 per image",
            probabilistic_f1(&labels, &scores),
            "pf1_image",
        );
        close(
            "pF1 per breast",
            per_breast_probabilistic_f1(&patients, &lat, &labels, &scores),
            "pf1_breast",
        );
        let conf = &c["confusion"];
        assert_eq!(
            (
                m.confusion.tp,
                m.confusion.fp,
                m.confusion.tn,
                m.confusion.fn_
            ),
            (
                conf["tp"].as_u64().unwrap(),
                conf["fp"].as_u64().unwrap(),
                conf["tn"].as_u64().unwrap(),
                conf["fn"].as_u64().unwrap()
            ),
            "{name} confusion matrix"
        );
    }
}
