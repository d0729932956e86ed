//! Writes a synthetic residue-level activation set of a given size, for benchmarks that need a
//! large set on disk (e.g. the flat-RSS check of `scripts/bench_sae_train.py --rss`).
//!
//!     cargo build --release -p plmscope-store --example synthetic_set
//!     target/release/examples/synthetic_set --out /tmp/acts-1gb --gb 1 \
//!         [--d-model 320] [--seed 7] [--proteins-per-shard 500]
//!
//! Proteins get seeded lengths, uniform in 50..=650 residues (mean 350, about UniRef50's), and
//! are added until the f32 activations reach `--gb` × 10⁹ bytes (the last protein is trimmed to
//! fit exactly). Rows are i.i.d. uniform in [-1, 1) from ChaCha8 streams seeded by (seed,
//! shard, half), generated on two threads; the set is f32 and written through
//! `ActivationSetWriter`, so it is a normal finished set (manifest, proteins.tsv, checksums).
//! The same arguments give a byte-identical set. Prints one JSON line: rows, proteins, shards,
//! bytes and seconds.

use std::path::PathBuf;
use std::time::Instant;

use plmscope_store::{
    ActivationSetWriter, Level, ModelRef, ProteinEntry, SetHeader, Site, StorageDtype,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const USAGE: &str = "usage: synthetic_set --out DIR --gb SIZE [--d-model N] [--seed N] \
                     [--proteins-per-shard N]";
const MIN_LENGTH: usize = 50;
const MAX_LENGTH: usize = 650;

struct Options {
    out: PathBuf,
    gb: f64,
    d_model: usize,
    seed: u64,
    proteins_per_shard: usize,
}

fn parse_options() -> Result<Options, String> {
    let (mut out, mut gb) = (None, None);
    let (mut d_model, mut seed, mut proteins_per_shard) = (320usize, 7u64, 500usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_string());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}\n{USAGE}");
        match flag.as_str() {
            "--out" => out = Some(PathBuf::from(&value)),
            "--gb" => gb = Some(value.parse::<f64>().map_err(|e| bad(&e))?),
            "--d-model" => d_model = value.parse().map_err(|e| bad(&e))?,
            "--seed" => seed = value.parse().map_err(|e| bad(&e))?,
            "--proteins-per-shard" => proteins_per_shard = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    let out = out.ok_or_else(|| format!("--out is required\n{USAGE}"))?;
    let gb = gb.ok_or_else(|| format!("--gb is required\n{USAGE}"))?;
    if !(gb > 0.0 && gb.is_finite()) || d_model == 0 || proteins_per_shard == 0 {
        return Err(format!(
            "--gb, --d-model and --proteins-per-shard must be positive\n{USAGE}"
        ));
    }
    Ok(Options {
        out,
        gb,
        d_model,
        seed,
        proteins_per_shard,
    })
}

/// Protein lengths whose rows fill `total_rows` exactly.
fn protein_lengths(total_rows: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut lengths = Vec::new();
    let mut rows = 0;
    while rows < total_rows {
        let length = rng
            .random_range(MIN_LENGTH..=MAX_LENGTH)
            .min(total_rows - rows);
        lengths.push(length);
        rows += length;
    }
    lengths
}

/// Fills `out` with uniform [-1, 1) values, the two halves (at a row boundary) on two threads.
fn fill_rows(out: &mut [f32], d_model: usize, seed: u64, shard: usize) {
    let half_rows = out.len() / d_model / 2;
    let (a, b) = out.split_at_mut(half_rows * d_model);
    std::thread::scope(|scope| {
        for (part, values) in [a, b].into_iter().enumerate() {
            // One stream per (seed, shard, half): the set does not depend on thread timing.
            let stream = ((shard as u64) << 1) | part as u64;
            scope.spawn(move || {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(stream);
                values
                    .iter_mut()
                    .for_each(|v| *v = rng.random::<f32>() * 2.0 - 1.0);
            });
        }
    });
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = match parse_options() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let clock = Instant::now();
    let row_bytes = o.d_model * std::mem::size_of::<f32>();
    let total_rows = ((o.gb * 1e9) / row_bytes as f64).ceil() as usize;
    let lengths = protein_lengths(total_rows, o.seed);
    let header = SetHeader {
        model: ModelRef {
            id: "synthetic".into(),
            arch: "synthetic".into(),
            weights_sha256: "none".into(),
        },
        layer: 0,
        site: Site::ResidPost,
        level: Level::Residue,
        d_model: o.d_model,
        dtype: StorageDtype::F32,
        proteins_per_shard: o.proteins_per_shard,
        total_proteins: lengths.len(),
        extra: serde_json::json!({
            "synthetic": { "gb": o.gb, "seed": o.seed, "values": "uniform [-1, 1)" }
        }),
    };
    let mut writer = ActivationSetWriter::create_or_resume(&o.out, header)?;
    let mut values = Vec::new();
    for shard in writer.missing_shards() {
        let range = writer.header().shard_proteins(shard);
        let proteins: Vec<ProteinEntry> = range
            .clone()
            .map(|p| ProteinEntry {
                id: format!("SYN{p:08}"),
                length: lengths[p],
            })
            .collect();
        let rows: usize = lengths[range].iter().sum();
        values.resize(rows * o.d_model, 0.0);
        fill_rows(&mut values, o.d_model, o.seed, shard);
        writer.write_shard(shard, &proteins, &values)?;
    }
    let shards = writer.shard_count();
    writer.finish(serde_json::json!({}))?;
    println!(
        "{}",
        serde_json::json!({
            "out": o.out.display().to_string(),
            "rows": total_rows,
            "proteins": lengths.len(),
            "shards": shards,
            "d_model": o.d_model,
            "bytes": total_rows * row_bytes,
            "seconds": clock.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}
