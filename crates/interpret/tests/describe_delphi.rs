//! describe's delphi protocol: residue windows cut from residue-level codes (real TMbed
//! sequences and planted synthetic ones), the quantile sampling and the held-out sets (never
//! overlapping the explain set, for this protocol and the seed's), the marks, and the whole
//! loop against a loopback server (tests/fake_llm) that answers as an oracle or as a model that
//! says yes to everything: detection and fuzzing precision, recall, F1, balanced accuracy,
//! AUROC from OpenAI log-probabilities, and null AUROC from Anthropic.

mod fake_llm;

use std::path::{Path, PathBuf};

use fake_llm::FakeLlm;
use plmscope_bio::{ResidueClass, TmbedReader};
use plmscope_interpret::activations::{Activations, ResidueRows};
use plmscope_interpret::atlas::UnitKind;
use plmscope_interpret::describe::delphi::prompts::{mark, parse_binary};
use plmscope_interpret::describe::delphi::{
    fuzzing_items, prompts, read_residue_windows, residue_windows, sample_windows,
    write_residue_windows, DelphiOptions, DelphiSample, DelphiSampled, DelphiScores, Window,
    WindowOptions,
};
use plmscope_interpret::describe::sampling::{bin_of, sample_unit, Sampled, UnitMode};
use plmscope_interpret::describe::*;
use plmscope_interpret::foreground::SparseCodes;
use plmscope_interpret::{analyze, AnalysisInputs, AnalysisOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn data(relative: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")).join(relative)
}

/// Residue-level sparse codes in the CSR layout analyze reads: one row per residue.
struct ResidueCodes {
    protein: Vec<u32>,
    position: Vec<u32>,
    row_ptr: Vec<u64>,
    feature: Vec<u32>,
    value: Vec<f32>,
    n_units: u32,
}

impl ResidueCodes {
    /// `activation(protein, position)` lists the (unit, value) pairs of one residue.
    fn build(
        sequences: &[String],
        n_units: u32,
        activation: &mut dyn FnMut(usize, usize) -> Vec<(u32, f32)>,
    ) -> ResidueCodes {
        let mut c = ResidueCodes {
            protein: Vec::new(),
            position: Vec::new(),
            row_ptr: vec![0],
            feature: Vec::new(),
            value: Vec::new(),
            n_units,
        };
        for (p, s) in sequences.iter().enumerate() {
            for i in 0..s.len() {
                c.protein.push(p as u32);
                c.position.push(i as u32);
                for (u, v) in activation(p, i) {
                    c.feature.push(u);
                    c.value.push(v);
                }
                c.row_ptr.push(c.feature.len() as u64);
            }
        }
        c
    }

    fn activations(&self) -> Activations<'_> {
        Activations::SparseResidues {
            codes: SparseCodes {
                row_ptr: &self.row_ptr,
                feature: &self.feature,
                value: &self.value,
                n_units: self.n_units,
            },
            rows: ResidueRows {
                protein: &self.protein,
                position: &self.position,
            },
        }
    }

    fn value(&self, unit: u32, protein: u32, position: u32) -> f32 {
        let row = self
            .protein
            .iter()
            .zip(&self.position)
            .position(|(&p, &i)| p == protein && i == position)
            .unwrap();
        let range = self.row_ptr[row] as usize..self.row_ptr[row + 1] as usize;
        self.feature[range.clone()]
            .iter()
            .zip(&self.value[range])
            .find(|(&u, _)| u == unit)
            .map_or(0.0, |(_, &v)| v)
    }
}

#[test]
fn windows_on_real_tmbed_helices_match_the_sequence_and_never_overlap() {
    let records: Vec<_> = TmbedReader::open(data("tmbed/alpha.fasta"))
        .unwrap()
        .take(40)
        .collect::<Result<_, _>>()
        .unwrap();
    let sequences: Vec<String> = records.iter().map(|r| r.sequence.clone()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    // Feature 0 fires on transmembrane-helix residues of the first 30 proteins.
    let codes = ResidueCodes::build(&sequences, 1, &mut |p, i| {
        let helix = records[p].labels[i].class() == ResidueClass::TmHelix;
        if p < 30 && helix {
            vec![(0, 0.5 + rng.random::<f32>())]
        } else {
            vec![]
        }
    });
    let refs: Vec<&str> = sequences.iter().map(String::as_str).collect();
    let options = WindowOptions {
        max_active: 1000,
        n_inactive: 10,
        ..WindowOptions::default()
    };
    let windows = residue_windows(&codes.activations(), &refs, &options).unwrap();
    let unit = &windows[0];
    assert!(unit.active.len() > 60, "{} windows", unit.active.len());
    assert_eq!(unit.inactive.len(), 10);
    for w in unit.active.iter().chain(&unit.inactive) {
        let s = &sequences[w.protein as usize];
        assert_eq!(w.residues, s[w.start as usize..w.end() as usize]);
        assert_eq!(w.activations.len(), 32.min(s.len()));
        for (k, &a) in w.activations.iter().enumerate() {
            assert_eq!(a, codes.value(0, w.protein, w.start + k as u32));
        }
    }
    assert!(unit.inactive.iter().all(|w| w.protein >= 30));
    assert!(unit.active.iter().all(|w| w.max() > 0.0 && w.protein < 30));
    for (i, a) in unit.active.iter().enumerate() {
        for b in &unit.active[i + 1..] {
            assert!(!a.overlaps(b), "{a:?} overlaps {b:?}");
        }
    }
    // Every active protein's strongest residue opens a window, at ctx_len - ctx_len / 4 = 24
    // unless the protein's end is nearer; windows are sorted by their maximum.
    assert!(unit.active.windows(2).all(|w| w[0].max() <= w[1].max()));
    for p in 0..30u32 {
        let s = &sequences[p as usize];
        let (best, value) = (0..s.len() as u32)
            .map(|i| (i, codes.value(0, p, i)))
            .fold((0, 0.0f32), |a, b| if b.1 > a.1 { b } else { a });
        if value == 0.0 {
            continue;
        }
        let w = unit
            .active
            .iter()
            .find(|w| w.protein == p && (w.start..w.end()).contains(&best))
            .unwrap_or_else(|| panic!("protein {p}: no window holds its strongest residue"));
        let expected_start = best
            .saturating_sub(24)
            .min(s.len() as u32 - w.activations.len() as u32);
        assert_eq!(w.start, expected_start, "protein {p}");
    }
}

const PLAIN: &[u8] = b"ACDEFGHIKLMNPQRSTVY";

/// 200 synthetic proteins without tryptophan except at planted sites: proteins 0..130 carry
/// 2-3 W, 40+ residues apart, on which features 0 and 1 fire (values 0.5-3.0).
fn planted() -> (Vec<String>, ResidueCodes) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut sequences = Vec::new();
    for p in 0..200 {
        let len = rng.random_range(130..200);
        let mut s: Vec<u8> = (0..len)
            .map(|_| PLAIN[rng.random_range(0..PLAIN.len())])
            .collect();
        if p < 130 {
            let sites = rng.random_range(2..=3);
            for k in 0..sites {
                s[5 + 40 * k + rng.random_range(0..10)] = b'W';
            }
        }
        sequences.push(String::from_utf8(s).unwrap());
    }
    let values: Vec<Vec<f32>> = sequences
        .iter()
        .map(|s| {
            s.bytes()
                .map(|b| {
                    if b == b'W' {
                        0.5 + 2.5 * rng.random::<f32>()
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let codes = ResidueCodes::build(&sequences, 2, &mut |p, i| {
        let v = values[p][i];
        if v > 0.0 {
            vec![(0, v), (1, v)]
        } else {
            vec![]
        }
    });
    (sequences, codes)
}

fn planted_atlas(dir: &Path) -> (PathBuf, Vec<String>) {
    let (sequences, codes) = planted();
    let accessions: Vec<String> = (0..sequences.len()).map(|i| format!("Q{i:05}")).collect();
    let lengths: Vec<u32> = sequences.iter().map(|s| s.len() as u32).collect();
    let path = dir.join("atlas.sqlite");
    let inputs = AnalysisInputs {
        accessions: &accessions,
        protein_lengths: Some(&lengths),
        features: Some(codes.activations()),
        neurons: None,
        go: None,
        families: None,
        concepts: None,
    };
    analyze(inputs, AnalysisOptions::default(), &path).unwrap();
    let refs: Vec<&str> = sequences.iter().map(String::as_str).collect();
    let written = write_residue_windows(
        &path,
        UnitKind::Feature,
        0,
        &codes.activations(),
        &refs,
        &WindowOptions::default(),
    )
    .unwrap();
    assert_eq!(written, 2);
    (path, sequences)
}

#[test]
fn quantile_sampling_draws_40_explain_and_50_held_out_windows_that_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let (atlas, _) = planted_atlas(dir.path());
    let db = rusqlite::Connection::open(&atlas).unwrap();
    let windows = read_residue_windows(&db, 0, &atlas).unwrap().unwrap();
    // 130 proteins with 2-3 planted sites; sites closer than a window share one.
    let n = windows.active.len();
    assert!((150..=200).contains(&n), "{n} windows");
    assert_eq!(windows.inactive.len(), 50);
    let options = DelphiOptions::default();
    for seed in 0..20 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let DelphiSampled::Unit(s) = sample_windows(&windows, &options, &mut rng) else {
            panic!("200 windows are enough");
        };
        assert_eq!(
            (s.explain.len(), s.test_active.len(), s.test_inactive.len()),
            (40, 50, 50)
        );
        for e in &s.explain {
            for h in s.test_active.iter().chain(&s.test_inactive) {
                assert!(!e.overlaps(h), "held-out {h:?} overlaps explain {e:?}");
            }
        }
        // 4 explain and 5 test windows from each of the 10 equal-count quantiles.
        let quantile = |w: &Window| {
            let i = windows.active.iter().position(|a| a == w).unwrap();
            (0..10).find(|q| i < (q + 1) * n / 10).unwrap()
        };
        for q in 0..10 {
            assert_eq!(s.explain.iter().filter(|w| quantile(w) == q).count(), 4);
            assert_eq!(s.test_active.iter().filter(|w| quantile(w) == q).count(), 5);
        }
    }
    // Too few windows for a quantile's share is counted, not sampled.
    let mut few = windows.clone();
    few.active.truncate(89);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert_eq!(
        sample_windows(&few, &options, &mut rng),
        DelphiSampled::TooFewActive { active: 89 }
    );
}

#[test]
fn the_seed_protocol_holds_out_disjoint_proteins_with_the_seed_bin_counts() {
    let protocol = SeedSampling::default();
    // 400 proteins: 100 inactive, 60 in each bin.
    let mut scaled = vec![0.0; 100];
    for bin in 0..5 {
        scaled.extend((0..60).map(|i| 0.2 * bin as f64 + 0.001 + 0.003 * i as f64));
    }
    for (mode, seed) in [(UnitMode::Sparse, 0u64), (UnitMode::Dense, 1)]
        .into_iter()
        .flat_map(|(m, s)| (0..10).map(move |k| (m, s * 100 + k)))
    {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let Sampled::Unit(s) = sample_unit(&scaled, mode, &protocol, &mut rng) else {
            panic!("enough proteins");
        };
        let explain: Vec<u32> = s
            .explain_active
            .iter()
            .chain(&s.explain_inactive)
            .map(|x| x.protein)
            .collect();
        assert!(s.held_out.iter().all(|h| !explain.contains(&h.protein)));
        let mut all: Vec<u32> = explain.clone();
        all.extend(s.held_out.iter().map(|h| h.protein));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 17 + 15, "{mode:?}: a protein drawn twice");
        // Sparse: inactive proteins are exactly 0. Dense: "inactive" is scaled < 0.2, bin 0,
        // so bin 0 holds the 2 active and the 15 inactive draws.
        let sampled: Vec<f64> = s
            .explain_active
            .iter()
            .chain(&s.explain_inactive)
            .chain(&s.held_out)
            .filter(|x| mode == UnitMode::Dense || x.protein >= 100)
            .map(|x| x.activation)
            .collect();
        let mut per_bin = [0; 5];
        for a in sampled {
            per_bin[bin_of(a)] += 1;
        }
        if mode == UnitMode::Dense {
            per_bin[0] -= 15;
        }
        assert_eq!(per_bin, [2, 3, 3, 3, 6], "{mode:?} seed {seed}");
    }
}

#[test]
fn marks_and_answers_parse_as_delphi_shows_them() {
    let w = Window {
        protein: 0,
        start: 0,
        residues: "ACDWWKLW".into(),
        activations: vec![0.0, 0.0, 0.0, 1.0, 2.0, 0.1, 0.0, 0.6],
    };
    let marks = prompts::above_threshold(&w, 0.3);
    assert_eq!(mark(&w, &|i| marks[i]), "ACD<<WW>>KL<<W>>");
    assert_eq!(
        parse_binary("[1, 0, 1]", 3).unwrap(),
        vec![true, false, true]
    );
    assert_eq!(parse_binary("Answer: [0,1]", 2).unwrap(), vec![false, true]);
    assert!(parse_binary("[1, 0]", 3).is_err());
    assert!(parse_binary("[1, 2, 0]", 3).is_err());
    // Fuzzing's wrong marks: ⌈mean active residues of the test windows⌉ per non-activating
    // window (here 2), the anchor ctx_len - ctx_len / 4 among them.
    let sample = DelphiSample {
        explain: vec![],
        test_active: vec![w.clone(), {
            let mut v = w.clone();
            v.activations = vec![0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
            v
        }],
        test_inactive: vec![Window {
            protein: 1,
            start: 0,
            residues: "ACDEFGHI".into(),
            activations: vec![0.0; 8],
        }],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let items = fuzzing_items(&sample, 0.3, &mut rng);
    let wrong = items.iter().find(|i| !i.truth).unwrap();
    let marked: usize = wrong.text.matches("<<").count();
    assert!(wrong.text.contains("<<H>>"), "{}", wrong.text);
    let letters = wrong.text.replace("<<", "").replace(">>", "");
    assert_eq!(letters, "ACDEFGHI");
    // (4 + 1 active residues over 2 windows: 3 marks, none adjacent to another here.)
    assert_eq!(marked, 3, "{}", wrong.text);
    assert_eq!(
        wrong
            .text
            .chars()
            .filter(|c| c.is_ascii_uppercase())
            .count(),
        8
    );
}

/// The answers of a model that knows feature 0 fires on W (described so) and says yes to
/// everything for feature 1.
fn oracle(prompt: &str) -> String {
    if prompt.contains("on which it is active. In each") {
        return if prompt.contains("studying feature 0 ") {
            "Tryptophan (W) residues.".into()
        } else {
            "Anything at all.".into()
        };
    }
    let knows = prompt.contains("Tryptophan");
    let fuzzing = prompt.contains("placed at random");
    let answers: Vec<&str> = prompt
        .lines()
        .filter_map(|l| l.strip_prefix("Example "))
        .map(|l| l.split_once(": ").unwrap().1)
        .map(|text| {
            let yes = if !knows {
                true
            } else if fuzzing {
                let marked: String = text
                    .split("<<")
                    .skip(1)
                    .map(|s| s.split(">>").next().unwrap())
                    .collect();
                !marked.is_empty() && marked.chars().all(|c| c == 'W')
            } else {
                text.contains('W')
            };
            if yes {
                "1"
            } else {
                "0"
            }
        })
        .collect();
    format!("[{}]", answers.join(", "))
}

/// (unit, status, text, auroc, n_held_out, scores) of each delphi row.
type DelphiRow = (u32, String, String, Option<f64>, i64, String);

fn delphi_rows(atlas: &Path) -> Vec<DelphiRow> {
    let db = rusqlite::Connection::open(atlas).unwrap();
    let mut st = db
        .prepare(
            "SELECT unit, status, text, auroc, n_held_out, scores FROM descriptions \
             WHERE protocol = 'delphi' ORDER BY unit",
        )
        .unwrap();
    st.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn delphi_scores_an_oracle_perfectly_and_a_yes_sayer_at_chance_on_both_apis() {
    for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
        let dir = tempfile::tempdir().unwrap();
        let (atlas, _) = planted_atlas(dir.path());
        let server = FakeLlm::start(oracle);
        let mut provider = ProviderOptions::new(kind, "model-under-test");
        provider.base_url = Some(match kind {
            ProviderKind::OpenAi => server.openai_url(),
            _ => server.anthropic_url(),
        });
        provider.api_key = Some("k".into());
        provider.price = Some(Price {
            input_per_mtok: 1.0,
            output_per_mtok: 5.0,
        });
        let mut options = DescribeOptions::new(provider);
        options.protocol = Protocol::Delphi;
        options.units = UnitSelection::Features;
        options.concurrency = 2;
        let summary = describe(&atlas, &options, &mut |_| {}).unwrap();
        assert_eq!(summary.features.unwrap().described, 2, "{kind:?}");
        let requests = server.requests();
        // Per unit: one explain prompt, 100 detection and 100 fuzzing windows in prompts of 5.
        assert_eq!(requests.len(), 2 * (1 + 20 + 20));
        let logprobs_asked = requests.iter().all(|r| r.body["logprobs"] == true);
        assert_eq!(logprobs_asked, kind == ProviderKind::OpenAi);
        let rows = delphi_rows(&atlas);
        assert_eq!(rows.len(), 2);
        for (unit, status, text, auroc, n_held_out, scores) in &rows {
            assert_eq!(status, "ok");
            assert_eq!(*n_held_out, 100);
            let scores: DelphiScores = serde_json::from_str(scores).unwrap();
            assert_eq!(scores.n_explain, 40);
            for s in [&scores.detection, &scores.fuzzing] {
                assert_eq!((s.n, s.scored, s.failed_prompts), (100, 100, 0));
                let c = s.confusion;
                assert_eq!(
                    c.true_positives + c.false_negatives,
                    50,
                    "50 activating windows"
                );
            }
            if *unit == 0 {
                assert_eq!(text, "Tryptophan (W) residues.");
                for s in [&scores.detection, &scores.fuzzing] {
                    assert_eq!(
                        (s.precision, s.recall, s.f1, s.balanced_accuracy),
                        (1.0, 1.0, 1.0, 1.0)
                    );
                }
            } else {
                for s in [&scores.detection, &scores.fuzzing] {
                    assert_eq!(
                        (s.precision, s.recall, s.balanced_accuracy),
                        (0.5, 1.0, 0.5)
                    );
                    assert!((s.f1 - 2.0 / 3.0).abs() < 1e-12);
                }
            }
            match kind {
                // P(1) is 0.8 for every 1 and 0.3 for every 0 (the fake's log-probabilities).
                ProviderKind::OpenAi => {
                    let expected = if *unit == 0 { 1.0 } else { 0.5 };
                    assert_eq!(scores.detection.auroc, Some(expected));
                    assert_eq!(scores.fuzzing.auroc, Some(expected));
                    assert_eq!(*auroc, Some(expected), "descriptions.auroc is detection's");
                }
                _ => {
                    assert_eq!(scores.detection.auroc, None);
                    assert_eq!(*auroc, None);
                }
            }
        }
        // A rerun asks nothing.
        let again = describe(&atlas, &options, &mut |_| {}).unwrap();
        assert_eq!(again.features.unwrap().already_done, 2);
        assert_eq!(server.requests().len(), requests.len());
    }
}

#[test]
fn an_atlas_without_windows_says_how_to_write_them() {
    let dir = tempfile::tempdir().unwrap();
    let (sequences, codes) = planted();
    let accessions: Vec<String> = (0..sequences.len()).map(|i| format!("Q{i:05}")).collect();
    let path = dir.path().join("atlas.sqlite");
    let inputs = AnalysisInputs {
        accessions: &accessions,
        protein_lengths: None,
        features: Some(codes.activations()),
        neurons: None,
        go: None,
        families: None,
        concepts: None,
    };
    analyze(inputs, AnalysisOptions::default(), &path).unwrap();
    let mut options = DescribeOptions::new(ProviderOptions::new(ProviderKind::Replay, "m"));
    options.protocol = Protocol::Delphi;
    options.units = UnitSelection::Features;
    options.dry_run = true;
    let error = describe(&path, &options, &mut |_| {}).unwrap_err();
    assert!(
        error.to_string().contains("--residue-windows --fasta"),
        "{error}"
    );
}

#[test]
fn a_delphi_dry_run_counts_every_prompt_and_calls_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (atlas, _) = planted_atlas(dir.path());
    // A server that would answer: a dry run must not reach it.
    let server = FakeLlm::start(oracle);
    let mut provider = ProviderOptions::new(ProviderKind::OpenAi, "model-under-test");
    provider.base_url = Some(server.openai_url());
    provider.api_key = Some("k".into());
    provider.price = Some(Price {
        input_per_mtok: 1.0,
        output_per_mtok: 5.0,
    });
    let mut options = DescribeOptions::new(provider);
    options.protocol = Protocol::Delphi;
    options.units = UnitSelection::Features;
    options.dry_run = true;
    let mut prompts = 0;
    let summary = describe(&atlas, &options, &mut |event| {
        if matches!(event, DescribeEvent::Prompt { .. }) {
            prompts += 1;
        }
    })
    .unwrap();
    assert!(server.requests().is_empty());
    assert!(!options.log_path_for(&atlas).exists());
    assert_eq!(prompts, 2);
    let (input, output) = summary.estimated_tokens.unwrap();
    // Per unit the reply budget of one explain prompt (150) and 20 detection + 20 fuzzing
    // prompts (100 each), as the real run above makes them.
    assert_eq!(output, 2 * (150 + 40 * 100));
    // 41 prompts per unit of at least a few hundred characters each.
    assert!(input > 2 * 41 * 50, "{input}");
    let cost = summary.estimated_cost_usd.unwrap();
    let expected = (input as f64 * 1.0 + output as f64 * 5.0) / 1e6;
    assert!((cost - expected).abs() < 1e-12, "{cost} {expected}");
}
