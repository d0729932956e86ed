//! Flow between layers: planted continuations are matched, planted transcoder paths attributed.

use plmscope_interpret::flow::{
    attribute, match_decoders, write_flow_links, Directions, LinkKind, MatchOptions,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn gaussian(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
        .collect()
}

fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// `v` turned by `angle` towards a random direction orthogonal to it (v of unit length).
fn rotate(v: &[f32], angle: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let r = gaussian(rng, v.len());
    let along: f32 = r.iter().zip(v).map(|(a, b)| a * b).sum();
    let orth = unit(r.iter().zip(v).map(|(a, b)| a - along * b).collect());
    v.iter()
        .zip(&orth)
        .map(|(a, o)| (angle.cos() as f32) * a + (angle.sin() as f32) * o)
        .collect()
}

#[test]
fn rotated_copies_at_the_next_layer_are_matched() {
    let (d, n_source, n_target, planted) = (32, 64, 60, 20);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let source: Vec<Vec<f32>> = (0..n_source).map(|_| unit(gaussian(&mut rng, d))).collect();
    // Target t < 20 continues source (3t + 1) % 64, turned by 25 degrees and rescaled (decoder
    // norms differ between dictionaries); the other targets are new directions.
    let angle = 25f64.to_radians();
    let mut target = Vec::new();
    for t in 0..n_target {
        if t < planted {
            let turned = rotate(&source[(3 * t + 1) % n_source], angle, &mut rng);
            target.extend(turned.iter().map(|x| x * 2.5));
        } else {
            target.extend(gaussian(&mut rng, d));
        }
    }
    let source = Directions::new(n_source, d, source.concat()).unwrap();
    let target = Directions::new(n_target, d, target).unwrap();
    let found = match_decoders(&source, &target, &MatchOptions::default());
    assert_eq!(found.links.len(), n_target);
    println!(
        "null q99 {:.3}, q99.9 {:.3}",
        found.null_q99, found.null_q999
    );
    for link in &found.links {
        let t = link.target as usize;
        if t < planted {
            // Catches: unnormalised rows (the 2.5 scale), matching by index, a transposed matrix.
            assert_eq!(link.source as usize, (3 * t + 1) % n_source, "{link:?}");
            assert!((link.weight - angle.cos()).abs() < 1e-4, "{link:?}");
            assert!(link.p.unwrap() <= 1.0 / 1001.0 + 1e-12, "{link:?}");
            assert!(link.weight > found.null_q999);
        }
    }
    let chance = found.links[planted..]
        .iter()
        .filter(|l| l.p.unwrap() < 0.01)
        .count();
    assert!(
        chance <= 2,
        "{chance} random targets beat the null at p < 0.01"
    );
}

#[test]
fn transcoder_paths_are_attributed_to_their_source() {
    let (d, n_source, n_target) = (24, 40, 15);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let decoder: Vec<f32> = (0..n_source)
        .flat_map(|_| unit(gaussian(&mut rng, d)))
        .collect();
    let decoder = Directions::new(n_source, d, decoder).unwrap();
    // W_enc is [d_in, d_sae] (SAELens): target t reads source 2t's direction plus noise.
    let mut w_enc = vec![0f32; d * n_target];
    for t in 0..n_target {
        let noise = gaussian(&mut rng, d);
        for i in 0..d {
            w_enc[i * n_target + t] = 3.0 * decoder.row(2 * t)[i] + 0.2 * noise[i];
        }
    }
    let encoder = Directions::from_columns(d, n_target, &w_enc).unwrap();
    let links = attribute(&decoder, &encoder, 3).unwrap();
    assert_eq!(links.len(), 3 * n_target);
    for t in 0..n_target as u32 {
        let first = links.iter().find(|l| l.target == t).unwrap();
        assert_eq!(first.source, 2 * t, "{first:?}");
        assert_eq!(first.kind, LinkKind::Transcoder);
        assert!(first.weight > 2.0);
    }
    // Into an atlas, replacing on rewrite.
    let dir = tempfile::tempdir().unwrap();
    let atlas = dir.path().join("a.sqlite");
    write_flow_links(&atlas, "l3.sqlite", "l4.sqlite", &links).unwrap();
    write_flow_links(&atlas, "l3.sqlite", "l4.sqlite", &links).unwrap();
    let db = rusqlite::Connection::open(&atlas).unwrap();
    let n: i64 = db
        .query_row("SELECT count(*) FROM flow_links", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n as usize, links.len());
    let (s, w): (i64, f64) = db
        .query_row(
            "SELECT source_unit, weight FROM flow_links WHERE target_unit = 4 AND kind = \
             'transcoder' ORDER BY abs(weight) DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(s, 8);
    assert!(w > 2.0);
}
