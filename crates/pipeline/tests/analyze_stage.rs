//! The analyze stage called as a library, on real proteins with planted units: residue concepts
//! from TMbed labels with no GO at all, and GO enrichment from the real E. coli GO list and
//! go-basic.obo. Each activation set holds one planted unit (a known answer) beside noise; the
//! atlas is read back through its TSV export.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use plmscope_interpret::pipeline::ForegroundRule;
use plmscope_pipeline::analyze::{analyze, AnalyzeRequest, LabelKind, LabelSource};
use plmscope_pipeline::NoProgress;
use plmscope_store::{
    ActivationSetWriter, Level, ModelRef, ProteinEntry, SetHeader, Site, StorageDtype,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

fn data(path: &str) -> PathBuf {
    Path::new(DATA).join(path)
}

/// Deterministic noise in [0, 1): a 64-bit LCG's top bits.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Writes a one-shard f32 activation set of `d_model` units; `values` is row-major.
fn write_set(dir: &Path, level: Level, proteins: &[ProteinEntry], d_model: usize, values: &[f32]) {
    let header = SetHeader {
        model: ModelRef {
            id: "planted".into(),
            arch: "esm2_t6_8M".into(),
            weights_sha256: "0".repeat(64),
        },
        layer: 1,
        site: Site::ResidPost,
        level,
        d_model,
        dtype: StorageDtype::F32,
        proteins_per_shard: proteins.len(),
        total_proteins: proteins.len(),
        extra: serde_json::json!({}),
    };
    let mut writer = ActivationSetWriter::create_or_resume(dir, header).unwrap();
    writer.write_shard(0, proteins, values).unwrap();
    writer.finish(serde_json::json!({})).unwrap();
}

/// The rows of `<dir>/<table>.tsv` as column → value maps.
fn table(dir: &Path, name: &str) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.tsv"))).unwrap();
    let mut lines = text.lines();
    let columns: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .map(|line| {
            columns
                .iter()
                .zip(line.split('\t'))
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The atlas unit id of unit `index` of `kind`.
fn unit_id(tsv: &Path, kind: &str, index: usize) -> String {
    table(tsv, "units")
        .into_iter()
        .find(|u| u["kind"] == kind && u["index"] == index.to_string())
        .unwrap_or_else(|| panic!("no {kind} {index} in units.tsv"))["unit"]
        .clone()
}

fn number(row: &BTreeMap<String, String>, column: &str) -> f64 {
    row[column].parse().unwrap()
}

/// A TMbed record: header, sequence, one label per residue.
struct TmbedProtein {
    id: String,
    labels: Vec<u8>,
}

/// The first `n` proteins of TMbed's alpha set of at most 300 residues.
fn tmbed_proteins(n: usize) -> Vec<TmbedProtein> {
    let text = std::fs::read_to_string(data("tmbed/alpha.fasta")).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .chunks(3)
        .map(|c| TmbedProtein {
            id: c[0].trim_start_matches('>').trim().to_string(),
            labels: c[2].trim().bytes().collect(),
        })
        .filter(|p| p.labels.len() <= 300)
        .take(n)
        .collect()
}

#[test]
fn residue_labels_alone_give_concepts_and_no_enrichment() {
    let root = tempfile::tempdir().unwrap();
    let proteins = tmbed_proteins(60);
    // Unit 0 is on exactly the TM helix residues (TMbed's H and h), units 1-3 are noise.
    let d_model = 4;
    let mut noise = Noise(7);
    let mut values = Vec::new();
    let mut helix_residues = 0;
    for p in &proteins {
        for &label in &p.labels {
            let helix = label == b'H' || label == b'h';
            helix_residues += usize::from(helix);
            values.push(if helix { 1.0 + noise.next() } else { 0.0 });
            values.extend((1..d_model).map(|_| noise.next()));
        }
    }
    assert!(helix_residues > 1000, "the alpha set is mostly helical");
    let entries: Vec<ProteinEntry> = proteins
        .iter()
        .map(|p| ProteinEntry {
            id: p.id.clone(),
            length: p.labels.len(),
        })
        .collect();
    let set = root.path().join("residue");
    write_set(&set, Level::Residue, &entries, d_model, &values);

    let tsv = root.path().join("tsv");
    let mut request = AnalyzeRequest::new(root.path().join("atlas.sqlite"));
    request.neurons = Some(set);
    request.residue_labels = vec![format!("tmbed={}", data("tmbed/alpha.fasta").display())
        .parse::<LabelSource>()
        .unwrap()];
    assert_eq!(request.residue_labels[0].kind, LabelKind::Tmbed);
    request.tsv = Some(tsv.clone());
    let outcome = analyze(&request, &NoProgress).unwrap();

    assert!(request.out.exists());
    assert_eq!(outcome.summary.proteins, 60);
    assert_eq!(outcome.summary.go_unmatched_proteins, None);
    assert_eq!(outcome.go_ids_dropped, None);
    let counts = outcome.concepts.expect("TMbed labels give concepts");
    assert_eq!(
        counts.labelled_proteins, 60,
        "every alpha protein has a helix"
    );
    let text = outcome.to_string();
    assert!(text.contains("GO records: -"), "{text}");
    assert!(text.contains("proteins analysed: 60"), "{text}");

    // No GO and no Pfam: no enrichment row, no GO term; concept rows for every unit.
    assert!(table(&tsv, "enrichment").is_empty());
    assert!(table(&tsv, "go_terms").is_empty());
    let concepts = table(&tsv, "concepts");
    let helix_f1 = |unit: &str| {
        concepts
            .iter()
            .find(|c| c["unit"] == unit && c["concept"] == "tmbed:tm_helix")
            .map(|c| number(c, "f1"))
            .unwrap_or_else(|| panic!("no tm_helix row for unit {unit}"))
    };
    let planted = helix_f1(&unit_id(&tsv, "neuron", 0));
    assert!(planted > 0.95, "planted helix unit: held-out F1 {planted}");
    for index in 1..d_model {
        let f1 = helix_f1(&unit_id(&tsv, "neuron", index));
        assert!(f1 < planted - 0.2, "noise unit {index}: F1 {f1}");
    }
    let neurons = outcome.summary.neurons.unwrap();
    assert!(neurons.go.is_none() && neurons.families.is_none());
    assert!(neurons.concepts.unwrap().units_with_concept >= 1);
}

/// The first `n` proteins of the E. coli GO list, with their direct GO ids.
fn ecoli_go(n: usize) -> Vec<(String, BTreeSet<String>)> {
    let text = std::fs::read_to_string(data("ecoli_k12/UP000000625_83333_go.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split(',');
            let accession = fields.next()?.to_string();
            let terms = fields.next()?.split('|').map(str::to_string).collect();
            Some((accession, terms))
        })
        .take(n)
        .collect()
}

#[test]
fn a_unit_planted_on_a_go_term_is_enriched_for_it() {
    let root = tempfile::tempdir().unwrap();
    let proteins = ecoli_go(400);
    // The term directly annotated to most of these proteins among those on 15..=60 of them.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, terms) in &proteins {
        for t in terms {
            *counts.entry(t).or_default() += 1;
        }
    }
    let (&term, &planted) = counts
        .iter()
        .filter(|(_, &c)| (15..=60).contains(&c))
        .max_by_key(|(t, &c)| (c, std::cmp::Reverse(*t)))
        .unwrap();
    let d_model = 3;
    let mut noise = Noise(11);
    let mut values = Vec::new();
    for (_, terms) in &proteins {
        values.push(if terms.contains(term) { 1.0 } else { 0.0 });
        values.extend((1..d_model).map(|_| noise.next()));
    }
    let entries: Vec<ProteinEntry> = proteins
        .iter()
        .map(|(a, _)| ProteinEntry {
            id: a.clone(),
            length: 100,
        })
        .collect();
    let set = root.path().join("protein");
    write_set(&set, Level::Protein, &entries, d_model, &values);

    let tsv = root.path().join("tsv");
    let mut request = AnalyzeRequest::new(root.path().join("atlas.sqlite"));
    request.activations = Some(set);
    request.annotations = vec![data("ecoli_k12/UP000000625_83333_go.csv")];
    request.go = Some(data("go-basic.obo"));
    request.feature_rule = Some(ForegroundRule::Above(0.5));
    request.tsv = Some(tsv.clone());
    let outcome = analyze(&request, &NoProgress).unwrap();

    // Every protein comes from the GO list, so all have a GO record.
    assert_eq!(outcome.summary.go_unmatched_proteins, Some(0));
    assert!(outcome
        .to_string()
        .contains("GO records: 400 matched, 0 unmatched"));
    let unit = unit_id(&tsv, "feature", 0);
    let row = table(&tsv, "enrichment")
        .into_iter()
        .find(|e| e["unit"] == unit && e["annotation"] == "go" && e["term"] == term)
        .unwrap_or_else(|| panic!("no enrichment row for the planted unit and {term}"));
    assert_eq!(number(&row, "study_size") as usize, planted);
    assert_eq!(number(&row, "study_count") as usize, planted);
    assert!(number(&row, "ln_q") < 0.05f64.ln(), "{row:?}");
    let go = outcome.summary.features.unwrap().go.unwrap();
    assert!(go.units_with_significant >= 1 && go.distinct_terms >= 1);

    // Provenance: every input file with its role, size and sha256, the set by its manifest.
    let meta = table(&tsv, "meta");
    let inputs = &meta.iter().find(|m| m["key"] == "inputs").unwrap()["value"];
    let inputs: Vec<serde_json::Value> = serde_json::from_str(inputs).unwrap();
    let roles: BTreeMap<&str, &serde_json::Value> = inputs
        .iter()
        .map(|i| (i["role"].as_str().unwrap(), i))
        .collect();
    assert_eq!(
        roles.keys().copied().collect::<Vec<_>>(),
        ["activations", "annotations", "go"]
    );
    let obo = data("go-basic.obo");
    assert_eq!(roles["go"]["path"], obo.display().to_string());
    assert_eq!(
        roles["go"]["size"].as_u64().unwrap(),
        std::fs::metadata(&obo).unwrap().len()
    );
    assert_eq!(roles["go"]["sha256"].as_str().unwrap().len(), 64);
    assert!(roles["activations"]["path"]
        .as_str()
        .unwrap()
        .ends_with("manifest.json"));
}

#[test]
fn go_annotations_and_the_ontology_go_together() {
    let root = tempfile::tempdir().unwrap();
    let proteins = ecoli_go(50);
    let entries: Vec<ProteinEntry> = proteins
        .iter()
        .map(|(a, _)| ProteinEntry {
            id: a.clone(),
            length: 100,
        })
        .collect();
    let set = root.path().join("protein");
    write_set(&set, Level::Protein, &entries, 2, &vec![0.5; 100]);
    let atlas = root.path().join("out/atlas.sqlite");
    let go_csv = data("ecoli_k12/UP000000625_83333_go.csv");

    // GO annotations without an ontology would go untested: refused, naming the file.
    let mut request = AnalyzeRequest::new(atlas.clone());
    request.neurons = Some(set.clone());
    request.annotations = vec![go_csv.clone()];
    let err = format!("{:#}", analyze(&request, &NoProgress).unwrap_err());
    assert!(
        err.contains(&go_csv.display().to_string()) && err.contains("--go"),
        "{err}"
    );

    // An ontology with only Pfam annotations tests nothing: refused, naming the ontology.
    let pfam_only = root.path().join("pfam.tsv");
    std::fs::write(&pfam_only, "Entry\tPfam\nP00350\tPF00393;\n").unwrap();
    request.annotations = vec![pfam_only];
    request.go = Some(data("go-basic.obo"));
    let err = format!("{:#}", analyze(&request, &NoProgress).unwrap_err());
    assert!(
        err.contains("go-basic.obo") && err.contains("GO annotations"),
        "{err}"
    );

    // No annotation source at all is refused before anything is read.
    request.annotations.clear();
    request.go = None;
    let err = format!("{:#}", analyze(&request, &NoProgress).unwrap_err());
    assert!(err.contains("nothing to test"), "{err}");
    assert!(!atlas.exists() && !atlas.with_extension("sqlite.tmp").exists());
}
