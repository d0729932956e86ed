//! Residue tracks: per-residue activations of a unit on a protein, read from the code set
//! (features) and activation set (neurons) an atlas names in `meta.inputs`, and sequences from
//! the FASTA the activation set was embedded from. All optional: an atlas moved away from its
//! inputs is still served, without tracks.

use std::collections::HashMap;
use std::path::Path;

use plmscope_store::codes::CodeSet;
use plmscope_store::ActivationSet;

use crate::atlas::resolve_input;

/// The sets behind an atlas.
pub struct Tracks {
    codes: Option<CodeSet>,
    activations: Option<ActivationSet>,
    /// Accession → protein index in the sets.
    index: HashMap<String, usize>,
    sequences: HashMap<String, String>,
    /// Residue-level sets (one row per residue).
    pub residue: bool,
}

fn input_path(meta: &std::collections::BTreeMap<String, String>, role: &str) -> Option<String> {
    let inputs: serde_json::Value = serde_json::from_str(meta.get("inputs")?).ok()?;
    inputs.as_array()?.iter().find_map(|i| {
        (i.get("role")?.as_str()? == role).then(|| i.get("path")?.as_str().map(str::to_string))?
    })
}

/// The names a protein id is found by: the id, and each `|` field of ids such as TMbed's
/// `1iij_A|P06494|ERBB2_RAT` (the atlas names that protein `P06494`).
fn keys(id: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(id.to_string()).chain(
        id.split('|')
            .filter(move |k| !k.is_empty() && *k != id)
            .map(str::to_string),
    )
}

fn set_dir(atlas: &Path, recorded: &str) -> Option<std::path::PathBuf> {
    let path = resolve_input(atlas, recorded)?;
    if path.is_dir() {
        Some(path)
    } else {
        path.parent().map(Path::to_path_buf)
    }
}

impl Tracks {
    /// Looks for the atlas's inputs; `None` when neither set is found.
    pub fn find(
        atlas: &Path,
        meta: &std::collections::BTreeMap<String, String>,
        level: &str,
    ) -> Option<Tracks> {
        let codes = input_path(meta, "codes")
            .and_then(|p| set_dir(atlas, &p))
            .and_then(|d| CodeSet::open(&d).ok());
        let activations = input_path(meta, "neurons")
            .or_else(|| input_path(meta, "proteins_from"))
            .and_then(|p| set_dir(atlas, &p))
            .and_then(|d| ActivationSet::open(&d).ok());
        let set = activations.as_ref()?;
        if let Some(codes) = &codes {
            if codes.rows() != set.rows() {
                return None;
            }
        }
        let mut index = HashMap::new();
        for p in set.proteins() {
            for key in keys(&p.id) {
                index.entry(key).or_insert(p.index);
            }
        }
        let mut sequences = HashMap::new();
        if let Some(fasta) = set.manifest().extra.get("fasta").and_then(|f| f.as_str()) {
            if let Some(path) = resolve_input(atlas, fasta) {
                if let Ok(reader) = plmscope_bio::FastaReader::open(&path) {
                    for record in reader.flatten() {
                        for key in keys(&record.id) {
                            sequences
                                .entry(key)
                                .or_insert_with(|| record.sequence.clone());
                        }
                    }
                }
            }
        }
        Some(Tracks {
            codes,
            activations,
            index,
            sequences,
            residue: level == "residue",
        })
    }

    /// Where the dictionary that wrote the code set was loaded from (as recorded).
    pub fn dictionary_id(&self) -> Option<String> {
        self.codes.as_ref().map(|c| c.header().dictionary.id)
    }

    /// The protein's sequence (as embedded; long ones may have been truncated).
    pub fn sequence(&self, accession: &str) -> Option<&str> {
        self.sequences.get(accession).map(String::as_str)
    }

    fn rows(&self, accession: &str) -> Option<std::ops::Range<usize>> {
        let set = self.activations.as_ref()?;
        let p = *self.index.get(accession)?;
        Some(set.protein_rows(p))
    }

    /// Per-row values of one unit on one protein (one per residue at residue level).
    pub fn values(&self, accession: &str, kind: &str, index: i64) -> Option<Vec<f32>> {
        let rows = self.rows(accession)?;
        let index = usize::try_from(index).ok()?;
        if kind == "feature" {
            let codes = self.codes.as_ref()?;
            Some(
                rows.map(|r| {
                    codes
                        .row_pairs(r)
                        .find(|&(f, _)| f as usize == index)
                        .map_or(0.0, |(_, v)| v)
                })
                .collect(),
            )
        } else {
            let set = self.activations.as_ref()?;
            let d = set.d_model();
            if index >= d {
                return None;
            }
            let mut buffer = Vec::new();
            set.read_rows(rows.start, rows.len(), &mut buffer).ok()?;
            Some(buffer.chunks_exact(d).map(|row| row[index]).collect())
        }
    }

    /// Features that fire on the protein, with their maximum over its rows, largest first.
    pub fn features_on(&self, accession: &str) -> Option<Vec<(i64, f32)>> {
        let rows = self.rows(accession)?;
        let codes = self.codes.as_ref()?;
        let mut max: HashMap<u32, f32> = HashMap::new();
        for r in rows {
            for (f, v) in codes.row_pairs(r) {
                let slot = max.entry(f).or_insert(0.0);
                *slot = slot.max(v);
            }
        }
        let mut out: Vec<(i64, f32)> = max
            .into_iter()
            .filter(|&(_, v)| v > 0.0)
            .map(|(f, v)| (f as i64, v))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(out)
    }
}
