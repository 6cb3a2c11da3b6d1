//! FID against pytorch-fid and KID against the reference definition, on committed feature
//! sets made by `tools/fixtures/make_fid_fixtures.py`. The bar is 0.5 %; the test
//! holds mammo to 1e-6 relative.

use mammo_fid::{Features, GaussianStats, frechet_distance, kernel_inception_distance};
use serde_json::Value;

fn load(name: &str) -> Vec<f32> {
    let p = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn fid_and_kid_match_the_references() {
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/expected.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let d = meta["dim"].as_u64().unwrap() as usize;
    let (real, fake) = (load("real.f32"), load("fake.f32"));
    let (r, f) = (
        Features::new(&real, d).unwrap(),
        Features::new(&fake, d).unwrap(),
    );
    assert_eq!(
        (r.n(), f.n()),
        (
            meta["real_rows"].as_u64().unwrap() as usize,
            meta["fake_rows"].as_u64().unwrap() as usize
        )
    );

    let (sr, sf) = (
        GaussianStats::from_features(&r).unwrap(),
        GaussianStats::from_features(&f).unwrap(),
    );
    let fid = frechet_distance(&sr, &sf).unwrap();
    let want = meta["fid"].as_f64().unwrap();
    assert!(
        ((fid - want) / want).abs() < 1e-6,
        "FID {fid} vs pytorch-fid {want}"
    );
    assert!(frechet_distance(&sr, &sr).unwrap().abs() < 1e-9);

    // The reference KID uses the first min(n, m) rows of each set, no sampling.
    let k = f.n();
    let r_head = Features::new(&real[..k * d], d).unwrap();
    let kid = kernel_inception_distance(&r_head, &f, 1, k, 0).unwrap();
    let want = meta["kid_full"].as_f64().unwrap();
    assert!(
        ((kid.mean - want) / want).abs() < 1e-6,
        "KID {} vs reference {want}",
        kid.mean
    );
    assert_eq!((kid.subsets, kid.subset_size, kid.std), (1, k, 0.0));

    // Subsampled KID scatters around the full value and is deterministic in the seed.
    let a = kernel_inception_distance(&r, &f, 20, 100, 7).unwrap();
    assert_eq!(a, kernel_inception_distance(&r, &f, 20, 100, 7).unwrap());
    assert!(
        (a.mean - want).abs() < 4.0 * a.std + 0.05 * want,
        "{a:?} vs {want}"
    );
}
