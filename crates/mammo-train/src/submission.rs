//! RSNA Screening Mammography's test side: a run's fold ensemble on every image of an
//! RSNA-layout test set (`test.csv` + `test_images/`), averaged per breast, written as Kaggle's
//! submission (`prediction_id,cancer`).
//!
//! The per-breast probability is the mean of the breast's image probabilities, the
//! aggregation the training metric uses ([`mammo_eval::per_breast_probabilistic_f1`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use mammo_preprocess::{RsnaTestRow, RsnaTestSet};

use crate::error::{Result, io_err};
use crate::infer::{Ensemble, ImagePrediction, dicom_pipeline, load_dicom};
use crate::run::write_atomic;

/// One image of the test set and its prediction, or why it has none (naming the file).
#[derive(Debug)]
pub struct TestImage {
    pub row: RsnaTestRow,
    pub prediction: Result<ImagePrediction>,
}

/// Images decoded at once (in parallel) before the models see them.
const CHUNK: usize = 32;

/// Predicts every image of `set` with the fold ensemble, in `test.csv`'s order. DICOMs are
/// processed with the training set's settings, the CSV's laterality deciding flips (as
/// `mammo preprocess` did for training). An image that cannot be read is that image's
/// failure; the others go on. Fails only when the run's preprocessing settings are missing.
pub fn predict_rsna_test(
    ensemble: &Ensemble,
    set: &RsnaTestSet,
    progress: bool,
) -> Result<Vec<TestImage>> {
    let pipeline = dicom_pipeline(&ensemble.run).map_err(|e| {
        io_err(
            "process DICOM images without the training set's settings",
            &ensemble.run.dir,
            e,
        )
    })?;
    let bar = mammo_io::progress_bar(progress, set.rows.len() as u64, "predict");
    let mut out = Vec::with_capacity(set.rows.len());
    for chunk in set.rows.chunks(CHUNK) {
        let pixels: Vec<_> = chunk
            .par_iter()
            .map(|row| -> Result<(PathBuf, Vec<f32>)> {
                let file = set.dicom(row)?;
                let px = load_dicom(&pipeline, &file, Some(&row.laterality))?;
                Ok((file, px))
            })
            .collect();
        for (row, loaded) in chunk.iter().zip(pixels) {
            let prediction = loaded.map(|(path, px)| {
                let (probability, fold_probabilities) = ensemble.predict_pixels(&px);
                ImagePrediction {
                    path,
                    probability,
                    fold_probabilities,
                }
            });
            out.push(TestImage {
                row: row.clone(),
                prediction,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(out)
}

/// One row of the submission.
#[derive(Debug, Clone, PartialEq)]
pub struct BreastPrediction {
    /// `{patient_id}_{laterality}`.
    pub prediction_id: String,
    /// The mean of the breast's image probabilities.
    pub cancer: f64,
    /// How many images that mean is over.
    pub images: usize,
}

/// Kaggle's submission: one row per breast, sorted by `prediction_id` (byte order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Submission {
    pub rows: Vec<BreastPrediction>,
    /// Breasts none of whose images could be read, sorted: a submission without them would
    /// be refused by Kaggle, so [`Submission::write`] refuses too.
    pub unreadable: Vec<String>,
}

impl Submission {
    /// Groups image probabilities by breast (`prediction_id`) and takes the mean of each
    /// breast's; `None` (an image that could not be read) counts for nothing, and a breast
    /// with only `None` goes to [`Submission::unreadable`].
    pub fn per_breast<'a>(images: impl IntoIterator<Item = (&'a str, Option<f64>)>) -> Self {
        let mut breasts: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
        for (id, p) in images {
            let e = breasts.entry(id).or_default();
            if let Some(p) = p {
                e.0 += p;
                e.1 += 1;
            }
        }
        let mut sub = Self::default();
        for (id, (sum, n)) in breasts {
            if n == 0 {
                sub.unreadable.push(id.to_string());
            } else {
                sub.rows.push(BreastPrediction {
                    prediction_id: id.to_string(),
                    cancer: sum / n as f64,
                    images: n,
                });
            }
        }
        sub
    }

    /// [`Submission::per_breast`] of a test set's predictions.
    pub fn from_predictions(images: &[TestImage]) -> Self {
        Self::per_breast(images.iter().map(|i| {
            (
                i.row.prediction_id.as_str(),
                i.prediction.as_ref().ok().map(|p| p.probability),
            )
        }))
    }

    /// `prediction_id,cancer` and a row per breast; probabilities in full (shortest
    /// round-trip) precision.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["prediction_id", "cancer"])
            .expect("in-memory CSV");
        for r in &self.rows {
            w.write_record([r.prediction_id.as_str(), &r.cancer.to_string()])
                .expect("in-memory CSV");
        }
        String::from_utf8(w.into_inner().expect("in-memory CSV")).expect("UTF-8 fields")
    }

    /// Writes [`Submission::to_csv`] to `path` atomically (a reader never sees half a file,
    /// an earlier submission stays until this one is complete). Refuses while a breast is
    /// [`Submission::unreadable`].
    pub fn write(&self, path: &Path) -> Result<()> {
        if !self.unreadable.is_empty() {
            return Err(io_err(
                "write",
                path,
                format!(
                    "{} without a readable image ({}); Kaggle needs a row for every breast",
                    breasts(self.unreadable.len()),
                    self.unreadable.join(", ")
                ),
            ));
        }
        write_atomic(path, self.to_csv().as_bytes())
    }
}

/// "1 breast", "2 breasts".
pub fn breasts(n: usize) -> String {
    if n == 1 {
        "1 breast".into()
    } else {
        format!("{n} breasts")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breasts_are_the_mean_of_their_readable_images_sorted_by_id() {
        let sub = Submission::per_breast([
            ("9_R", Some(0.2)),
            ("10_L", Some(0.9)),
            ("10_L", None),
            ("10_L", Some(0.5)),
            ("10_R", None),
            ("9_R", Some(0.4)),
            ("11_L", None),
            ("11_L", None),
        ]);
        let got: Vec<(&str, f64, usize)> = sub
            .rows
            .iter()
            .map(|r| (r.prediction_id.as_str(), r.cancer, r.images))
            .collect();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0, got[0].2), ("10_L", 2));
        assert!((got[0].1 - 0.7).abs() < 1e-12, "{got:?}");
        assert_eq!((got[1].0, got[1].2), ("9_R", 2));
        assert!((got[1].1 - 0.3).abs() < 1e-12, "{got:?}");
        assert_eq!(sub.unreadable, ["10_R", "11_L"]);
    }

    /// The same grouping as the training metric: the per-breast pF1 of the submission's
    /// rows equals `per_breast_probabilistic_f1` of the images.
    #[test]
    fn aggregation_is_the_training_metrics() {
        let patients = ["1", "1", "1", "2", "2", "3"];
        let lats = ["L", "L", "R", "L", "L", "R"];
        let labels = [1u8, 1, 0, 0, 0, 1];
        let probs = [0.9, 0.3, 0.4, 0.1, 0.35, 0.8];
        let ids: Vec<String> = patients
            .iter()
            .zip(lats)
            .map(|(p, l)| mammo_preprocess::prediction_id(p, l))
            .collect();
        let sub = Submission::per_breast(ids.iter().map(String::as_str).zip(probs.map(Some)));
        let breast_labels: Vec<u8> = sub
            .rows
            .iter()
            .map(|r| {
                ids.iter()
                    .zip(labels)
                    .filter(|(id, _)| **id == r.prediction_id)
                    .map(|(_, y)| y)
                    .max()
                    .unwrap()
            })
            .collect();
        let cancer: Vec<f64> = sub.rows.iter().map(|r| r.cancer).collect();
        let want = mammo_eval::per_breast_probabilistic_f1(&patients, &lats, &labels, &probs);
        let got = mammo_eval::probabilistic_f1(&breast_labels, &cancer);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert_eq!(sub.rows.len(), 4);
    }

    #[test]
    fn csv_has_kaggles_header_and_quotes_what_needs_it() {
        let sub = Submission::per_breast([("1_L", Some(0.25)), ("a,b_R", Some(1e-7))]);
        assert_eq!(
            sub.to_csv(),
            "prediction_id,cancer\n1_L,0.25\n\"a,b_R\",0.0000001\n"
        );
    }

    #[test]
    fn an_incomplete_submission_is_not_written() {
        let dir = std::env::temp_dir().join(format!("mammo-submission-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("submission.csv");
        std::fs::write(&path, "earlier").unwrap();
        let sub = Submission::per_breast([("1_L", Some(0.5)), ("1_R", None)]);
        let e = sub.write(&path).unwrap_err().to_string();
        assert!(e.contains("1 breast without a readable image (1_R)"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "earlier");
        Submission::per_breast([("1_L", Some(0.5))])
            .write(&path)
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "prediction_id,cancer\n1_L,0.5\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
