//! Enrichment speed: our engine against goatools on the same study sets, and the full analysis
//! at SAE scale.
//!
//! Side by side with goatools (real yeast proteome, GO propagated over is_a + part_of, BP+MF+CC,
//! every population term tested, BH per study as goatools does):
//!   export CARGO_TARGET_DIR=/tmp/target-interpret
//!   cargo run --release -p plmscope-interpret --example analyze_bench -- yeast /tmp/goea_bench 200
//!   python3 scripts/bench_goatools.py /tmp/goea_bench --units 200 --alternative greater
//!   python3 scripts/bench_goatools.py /tmp/goea_bench --units 50 --alternative two-sided
//! The first writes population.txt, study_sets.tsv (200 units, 50..500 proteins) and ours.tsv
//! (our counts, ln p, ln q) and prints our per-unit time; the script runs goatools on the same
//! sets, prints its per-unit time and the ratio, and checks counts and p-values against ours.
//!
//! Scale (20,000 proteins sampled with replacement from the annotated yeast proteins, 10,240
//! features, each protein active on 32 random features as a TopK SAE with k = 32, all GO terms
//! of size 5..=1000, full `analyze` into an atlas, 2 threads):
//!   cargo run --release -p plmscope-interpret --example analyze_bench -- scale /tmp/goea_scale

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use plmscope_bio::{AnnotationTable, FastaReader, GoCsvReader, GoDag, PropagatedAnnotation};
use plmscope_interpret::activations::Activations;
use plmscope_interpret::enrichment::{
    AnnotatedProteins, Background, CorrectionMethod, CorrectionScope, EnrichmentConfig,
    EnrichmentEngine, Foreground, TermSizeFilter,
};
use plmscope_interpret::foreground::SparseCodes;
use plmscope_interpret::go_graph::AccessionIndex;
use plmscope_interpret::pipeline::{GoInput, StoreTests};
use plmscope_interpret::{analyze, AnalysisInputs, AnalysisOptions};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn data(relative: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")).join(relative)
}

struct Yeast {
    accessions: Vec<String>,
    dag: GoDag,
    propagated: Vec<PropagatedAnnotation>,
    report: plmscope_bio::PropagationReport,
}

fn load_yeast() -> Result<Yeast, BoxError> {
    let started = Instant::now();
    let mut accessions = Vec::new();
    for record in FastaReader::open(data("yeast_s288c/UP000002311_559292.fasta"))? {
        accessions.push(record?.id);
    }
    let table: AnnotationTable = GoCsvReader::open(data("yeast_s288c/UP000002311_559292_go.csv"))?
        .map(|row| row.map(|r| r.into_annotation()))
        .collect::<Result<_, _>>()?;
    let dag = GoDag::open(data("go-basic.obo"))?;
    let (propagated, report) = dag.propagate(table.go_sets());
    eprintln!(
        "loaded yeast + GO in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(Yeast {
        accessions,
        dag,
        propagated,
        report,
    })
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: analyze_bench (yeast OUT_DIR [UNITS] | scale OUT_DIR [THREADS] | store OUT_DIR)";
    let (mode, out) = match (args.get(1), args.get(2)) {
        (Some(m), Some(o)) => (m.as_str(), PathBuf::from(o)),
        _ => return Err(usage.into()),
    };
    std::fs::create_dir_all(&out)?;
    match mode {
        "yeast" => yeast_side_by_side(&out, args.get(3).map_or(Ok(200), |s| s.parse())?),
        "scale" => scale(&out, args.get(3).map_or(Ok(2), |s| s.parse())?),
        "store" => store_sizes(&out),
        _ => Err(usage.into()),
    }
}

fn yeast_side_by_side(out: &Path, n_units: usize) -> Result<(), BoxError> {
    let y = load_yeast()?;
    let index = AccessionIndex::new(&y.accessions)?;
    let mapped = index.map_go(&y.propagated);
    let proteins = AnnotatedProteins::from_term_sets(y.dag.len() as u32, &mapped.term_sets)?;
    let config = EnrichmentConfig {
        background: Background::AnnotatedOnly,
        // goatools tests every term of the population: no size filter.
        term_size: TermSizeFilter {
            min_population_count: 1,
            max_population_count: u32::MAX,
        },
        method: CorrectionMethod::BenjaminiHochberg,
        scope: CorrectionScope::PerUnit,
    };
    let started = Instant::now();
    let engine = EnrichmentEngine::new(&proteins, &vec![true; y.dag.len()], config)?;
    let setup = started.elapsed().as_secs_f64();
    let pool: Vec<u32> = (0..y.accessions.len() as u32)
        .filter(|&p| !mapped.term_sets[p as usize].is_empty())
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let foregrounds: Vec<Foreground> = (0..n_units as u32)
        .map(|unit| {
            let size = rng.random_range(50..=500);
            let mut set: Vec<u32> = sample(&mut rng, pool.len(), size)
                .iter()
                .map(|i| pool[i])
                .collect();
            set.sort_unstable();
            Foreground {
                unit,
                proteins: set,
            }
        })
        .collect();
    let started = Instant::now();
    let result = engine.run(&foregrounds)?;
    let run = started.elapsed().as_secs_f64();
    println!(
        "ours: population {} proteins, {} terms tested, setup {setup:.3} s, {n_units} units in {run:.3} s = {:.6} s per unit ({} threads)",
        engine.population_size(),
        engine.tested_terms(),
        run / n_units as f64,
        rayon::current_num_threads()
    );
    let mut population =
        std::io::BufWriter::new(std::fs::File::create(out.join("population.txt"))?);
    for &p in &pool {
        writeln!(population, "{}", y.accessions[p as usize])?;
    }
    let mut sets = std::io::BufWriter::new(std::fs::File::create(out.join("study_sets.tsv"))?);
    for fg in &foregrounds {
        let names: Vec<&str> = fg
            .proteins
            .iter()
            .map(|&p| y.accessions[p as usize].as_str())
            .collect();
        writeln!(sets, "{}\t{}", fg.unit, names.join(","))?;
    }
    let mut ours = std::io::BufWriter::new(std::fs::File::create(out.join("ours.tsv"))?);
    writeln!(
        ours,
        "unit\tterm\tstudy_count\tstudy_size\tpopulation_count\tpopulation_size\tln_p\tln_q"
    )?;
    for unit in &result.units {
        for t in &unit.tests {
            writeln!(
                ours,
                "{}\t{}\t{}\t{}\t{}\t{}\t{:e}\t{:e}",
                unit.unit,
                y.dag.id(plmscope_bio::TermIndex(t.term)),
                t.study_count,
                unit.study_size,
                t.population_count,
                result.population_size,
                t.ln_p,
                t.ln_q
            )?;
        }
    }
    std::fs::write(
        out.join("ours_seconds_per_unit.txt"),
        format!("{}\n", run / n_units as f64),
    )?;
    eprintln!(
        "wrote population.txt, study_sets.tsv, ours.tsv to {}",
        out.display()
    );
    Ok(())
}

fn scale(out: &Path, threads: usize) -> Result<(), BoxError> {
    const PROTEINS: usize = 20_000;
    const FEATURES: u32 = 10_240;
    const K: usize = 32;
    let y = load_yeast()?;
    let annotated: Vec<&PropagatedAnnotation> = y
        .propagated
        .iter()
        .filter(|p| !p.terms.is_empty())
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // 20,000 proteins drawn with replacement from the annotated pool, renamed to stay unique.
    let (mut accessions, mut propagated) = (Vec::new(), Vec::new());
    for i in 0..PROTEINS {
        let source = annotated[rng.random_range(0..annotated.len())];
        let accession = format!("{}-{i}", source.accession);
        propagated.push(PropagatedAnnotation {
            accession: accession.clone(),
            terms: source.terms.clone(),
        });
        accessions.push(accession);
    }
    let (mut row_ptr, mut feature, mut value) = (vec![0u64], Vec::new(), Vec::new());
    for _ in 0..PROTEINS {
        let mut active: Vec<u32> = sample(&mut rng, FEATURES as usize, K)
            .iter()
            .map(|f| f as u32)
            .collect();
        active.sort_unstable();
        for f in active {
            feature.push(f);
            value.push(rng.random_range(0.1f32..8.0));
        }
        row_ptr.push(feature.len() as u64);
    }
    let unique: HashSet<&String> = accessions.iter().collect();
    assert_eq!(unique.len(), PROTEINS);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let atlas = out.join("scale_atlas.sqlite");
    let inputs = AnalysisInputs {
        accessions: &accessions,
        protein_lengths: None,
        features: Some(Activations::SparseProteins(SparseCodes {
            row_ptr: &row_ptr,
            feature: &feature,
            value: &value,
            n_units: FEATURES,
        })),
        neurons: None,
        go: Some(GoInput {
            dag: &y.dag,
            propagated: &propagated,
            report: &y.report,
        }),
        families: None,
        concepts: None,
    };
    let started = Instant::now();
    let summary = pool.install(|| analyze(inputs, AnalysisOptions::default(), &atlas))?;
    let wall = started.elapsed().as_secs_f64();
    let go = summary.features.as_ref().and_then(|f| f.go.clone());
    println!(
        "scale: {PROTEINS} proteins x {FEATURES} features (k = {K}), {} GO terms tested, {} tests, full analyze incl. atlas in {wall:.2} s on {threads} threads; atlas {} MB",
        go.as_ref().map_or(0, |g| g.tested_terms),
        go.as_ref().map_or(0, |g| g.total_tests),
        std::fs::metadata(&atlas)?.len() / 1_000_000
    );
    // The engine alone, on the same foregrounds (TopK membership), for the split of the time.
    let index = AccessionIndex::new(&accessions)?;
    let mapped = index.map_go(&propagated);
    let proteins = AnnotatedProteins::from_term_sets(y.dag.len() as u32, &mapped.term_sets)?;
    let mut sets = vec![Vec::new(); FEATURES as usize];
    for r in 0..PROTEINS {
        for &f in &feature[row_ptr[r] as usize..row_ptr[r + 1] as usize] {
            sets[f as usize].push(r as u32);
        }
    }
    let foregrounds: Vec<Foreground> = sets
        .into_iter()
        .enumerate()
        .map(|(u, proteins)| Foreground {
            unit: u as u32,
            proteins,
        })
        .collect();
    let config = EnrichmentConfig {
        background: Background::AnnotatedOnly,
        term_size: TermSizeFilter {
            min_population_count: 5,
            max_population_count: 1000,
        },
        method: CorrectionMethod::BenjaminiHochberg,
        scope: CorrectionScope::AllUnits,
    };
    let started = Instant::now();
    let result = pool.install(|| -> Result<_, BoxError> {
        let engine = EnrichmentEngine::new(&proteins, &vec![true; y.dag.len()], config)?;
        Ok(engine.run(&foregrounds)?)
    })?;
    let rows: usize = result.units.iter().map(|u| u.tests.len()).sum();
    println!(
        "scale: enrichment engine alone {:.2} s ({rows} materialised tests)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Atlas size per `store_tests` policy: the first 600 yeast proteins, 2,880 features, each
/// protein active on 32 random ones (TopK k = 32), GO BP+MF+CC of size 5..=1000:
///   cargo run --release -p plmscope-interpret --example analyze_bench -- store /tmp/store_sizes
fn store_sizes(out: &Path) -> Result<(), BoxError> {
    const PROTEINS: usize = 600;
    const FEATURES: u32 = 2_880;
    const K: usize = 32;
    let y = load_yeast()?;
    let accessions = &y.accessions[..PROTEINS];
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let (mut row_ptr, mut feature, mut value) = (vec![0u64], Vec::new(), Vec::new());
    for _ in 0..PROTEINS {
        let mut active: Vec<u32> = sample(&mut rng, FEATURES as usize, K)
            .iter()
            .map(|f| f as u32)
            .collect();
        active.sort_unstable();
        for f in active {
            feature.push(f);
            value.push(rng.random_range(0.1f32..8.0));
        }
        row_ptr.push(feature.len() as u64);
    }
    for store in [
        StoreTests::All,
        StoreTests::Nominal,
        StoreTests::Significant,
    ] {
        let atlas = out.join(format!("store_{store:?}.sqlite"));
        let inputs = AnalysisInputs {
            accessions,
            protein_lengths: None,
            features: Some(Activations::SparseProteins(SparseCodes {
                row_ptr: &row_ptr,
                feature: &feature,
                value: &value,
                n_units: FEATURES,
            })),
            neurons: None,
            go: Some(GoInput {
                dag: &y.dag,
                propagated: &y.propagated,
                report: &y.report,
            }),
            families: None,
            concepts: None,
        };
        let options = AnalysisOptions {
            store_tests: store,
            ..AnalysisOptions::default()
        };
        let summary = analyze(inputs, options, &atlas)?;
        let rows: i64 = rusqlite::Connection::open(&atlas)?.query_row(
            "SELECT COUNT(*) FROM enrichment",
            [],
            |r| r.get(0),
        )?;
        let go = summary.features.as_ref().and_then(|f| f.go.clone());
        println!(
            "store {store:?}: {PROTEINS} proteins x {FEATURES} features, {} tests counted, {rows} enrichment rows, atlas {} bytes",
            go.as_ref().map_or(0, |g| g.total_tests),
            std::fs::metadata(&atlas)?.len()
        );
    }
    Ok(())
}
