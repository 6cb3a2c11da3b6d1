//! Cross-validation fold assignment. Both functions return one fold index per sample and are
//! deterministic in the seed.

use std::collections::HashMap;

/// Why folds cannot be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FoldError {
    #[error("{k} folds requested: at least 2 are needed")]
    TooFewFolds { k: usize },
    #[error("{k} folds requested but only {groups} {what} to spread over them")]
    TooFewItems {
        k: usize,
        groups: usize,
        what: &'static str,
    },
    #[error("{labels} labels but {groups} group ids")]
    LengthMismatch { labels: usize, groups: usize },
}

/// Stratified K-fold over samples (the paper's split): each class is shuffled and dealt
/// round-robin, so every fold holds about 1/k of each class.
pub fn stratified_kfold(labels: &[u8], k: usize, seed: u64) -> Result<Vec<usize>, FoldError> {
    if k < 2 {
        return Err(FoldError::TooFewFolds { k });
    }
    if labels.len() < k {
        return Err(FoldError::TooFewItems {
            k,
            groups: labels.len(),
            what: "samples",
        });
    }
    let mut rng = mammo_rand::Rng::from_keys(seed, &[0x666f_6c64]); // "fold"
    let mut fold = vec![0usize; labels.len()];
    let mut next = 0usize; // continue dealing across classes so fold sizes stay even
    let mut classes: Vec<u8> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    for c in classes {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
        rng.shuffle(&mut idx);
        for i in idx {
            fold[i] = next % k;
            next += 1;
        }
    }
    Ok(fold)
}

/// Stratified group K-fold: all samples of one group (patient) share a fold, and folds get
/// class proportions as even as the groups allow. Groups are taken in a seeded random order,
/// those holding positives first and larger first, and each goes to the fold where it
/// leaves the per-class fold shares most even (then the smallest fold).
pub fn stratified_group_kfold(
    labels: &[u8],
    groups: &[&str],
    k: usize,
    seed: u64,
) -> Result<Vec<usize>, FoldError> {
    if labels.len() != groups.len() {
        return Err(FoldError::LengthMismatch {
            labels: labels.len(),
            groups: groups.len(),
        });
    }
    if k < 2 {
        return Err(FoldError::TooFewFolds { k });
    }
    // Per group: sample indices and counts per class (0 and 1; other labels count as 0).
    let mut order: Vec<&str> = Vec::new();
    let mut members: HashMap<&str, (Vec<usize>, [usize; 2])> = HashMap::new();
    for (i, (&y, &g)) in labels.iter().zip(groups).enumerate() {
        let e = members.entry(g).or_insert_with(|| {
            order.push(g);
            (Vec::new(), [0, 0])
        });
        e.0.push(i);
        e.1[(y == 1) as usize] += 1;
    }
    if order.len() < k {
        return Err(FoldError::TooFewItems {
            k,
            groups: order.len(),
            what: "groups",
        });
    }
    let mut rng = mammo_rand::Rng::from_keys(seed, &[0x666f_6c64]); // "fold"
    rng.shuffle(&mut order);
    // stable sort keeps the shuffled order among equals
    order.sort_by_key(|g| {
        let c = members[g].1;
        (std::cmp::Reverse(c[1]), std::cmp::Reverse(c[0] + c[1]))
    });
    let totals = [
        labels.iter().filter(|&&y| y != 1).count().max(1),
        labels.iter().filter(|&&y| y == 1).count().max(1),
    ];
    let mut counts = vec![[0usize; 2]; k];
    let mut fold = vec![0usize; labels.len()];
    for g in order {
        let (idx, c) = &members[g];
        let spread = |counts: &[[usize; 2]]| -> f64 {
            (0..2)
                .map(|cls| {
                    let shares: Vec<f64> = counts
                        .iter()
                        .map(|f| f[cls] as f64 / totals[cls] as f64)
                        .collect();
                    let mean = shares.iter().sum::<f64>() / k as f64;
                    shares.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>()
                })
                .sum()
        };
        let best = (0..k)
            .min_by(|&a, &b| {
                let score = |f: usize| {
                    let mut trial = counts.clone();
                    trial[f][0] += c[0];
                    trial[f][1] += c[1];
                    (spread(&trial), counts[f][0] + counts[f][1])
                };
                let (sa, na) = score(a);
                let (sb, nb) = score(b);
                sa.total_cmp(&sb).then(na.cmp(&nb)).then(a.cmp(&b))
            })
            .expect("k >= 2");
        counts[best][0] += c[0];
        counts[best][1] += c[1];
        for &i in idx {
            fold[i] = best;
        }
    }
    Ok(fold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(patients: usize, seed: u64) -> (Vec<u8>, Vec<String>) {
        // 4 images per patient; about 1 in 12 patients has one cancer breast (2 images).
        let mut rng = mammo_rand::Rng::from_keys(seed, &[0x666f_6c64]); // "fold"
        let (mut y, mut g) = (Vec::new(), Vec::new());
        for p in 0..patients {
            let cancer = rng.next_u64().is_multiple_of(12);
            for view in 0..4 {
                y.push((cancer && view < 2) as u8);
                g.push(format!("p{p}"));
            }
        }
        (y, g)
    }

    #[test]
    fn grouped_folds_keep_patients_together_and_balance_classes() {
        let (y, g) = dataset(600, 1);
        let gs: Vec<&str> = g.iter().map(String::as_str).collect();
        let f = stratified_group_kfold(&y, &gs, 5, 42).unwrap();
        let mut fold_of: HashMap<&str, usize> = HashMap::new();
        for (i, &p) in gs.iter().enumerate() {
            assert_eq!(
                *fold_of.entry(p).or_insert(f[i]),
                f[i],
                "patient {p} split across folds"
            );
        }
        let pos_total = y.iter().filter(|&&v| v == 1).count() as f64;
        for k in 0..5 {
            let n = f.iter().filter(|&&x| x == k).count() as f64;
            let pos = (0..y.len()).filter(|&i| f[i] == k && y[i] == 1).count() as f64;
            assert!((n / y.len() as f64 - 0.2).abs() < 0.02, "fold {k} size {n}");
            assert!(
                (pos / pos_total - 0.2).abs() < 0.03,
                "fold {k} positives {pos} of {pos_total}"
            );
        }
        assert_eq!(
            f,
            stratified_group_kfold(&y, &gs, 5, 42).unwrap(),
            "deterministic"
        );
        assert_ne!(
            f,
            stratified_group_kfold(&y, &gs, 5, 43).unwrap(),
            "seed matters"
        );
    }

    #[test]
    fn plain_stratified_folds_balance_each_class() {
        let (y, _) = dataset(300, 2);
        let f = stratified_kfold(&y, 5, 7).unwrap();
        let pos: Vec<usize> = (0..5)
            .map(|k| (0..y.len()).filter(|&i| f[i] == k && y[i] == 1).count())
            .collect();
        let (lo, hi) = (pos.iter().min().unwrap(), pos.iter().max().unwrap());
        assert!(hi - lo <= 1, "{pos:?}");
        let sizes: Vec<usize> = (0..5)
            .map(|k| f.iter().filter(|&&x| x == k).count())
            .collect();
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            stratified_kfold(&[0, 1], 1, 0),
            Err(FoldError::TooFewFolds { k: 1 })
        );
        let e = stratified_group_kfold(&[0, 1, 0], &["a", "a", "b"], 3, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "3 folds requested but only 2 groups to spread over them"
        );
    }
}
