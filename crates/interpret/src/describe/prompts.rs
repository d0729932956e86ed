//! The two prompts of the seed protocol and the parsing of their replies. The structure follows
//! the seed (`Pooling_Auto_Interp.py`: metadata of active and inactive proteins with scaled
//! activations, a one-sentence explanation; then the explanation and held-out proteins without
//! activations, one number in [0, 1] per protein); the wording is ours.

use std::fmt::Write;

use super::metadata::ProteinMeta;
use super::sampling::Sample;

/// Which prompt of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Explain,
    Predict,
    /// delphi: which windows activate.
    Detection,
    /// delphi: are the marks on the right residues.
    Fuzzing,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Explain => "explain",
            Step::Predict => "predict",
            Step::Detection => "detection",
            Step::Fuzzing => "fuzzing",
        }
    }

    /// Reply budget: the seed uses 100 tokens for the sentence and 1000 for the numbers.
    pub fn max_tokens(self) -> u32 {
        match self {
            Step::Explain => 150,
            Step::Predict => 1000,
            // A list of a few 1s and 0s.
            Step::Detection | Step::Fuzzing => 100,
        }
    }
}

fn protein_block(out: &mut String, meta: &ProteinMeta, activation: Option<f64>, sequence: bool) {
    let field = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".to_string());
    let _ = writeln!(out, "Protein {}", meta.accession);
    if let Some(a) = activation {
        let _ = writeln!(out, "  scaled activation: {a:.3}");
    }
    let _ = writeln!(out, "  name: {}", field(&meta.name));
    let _ = writeln!(out, "  gene: {}", field(&meta.gene));
    let _ = writeln!(out, "  organism: {}", field(&meta.organism));
    let _ = writeln!(out, "  families: {}", field(&meta.families));
    let _ = writeln!(out, "  GO biological process: {}", field(&meta.go_bp));
    let _ = writeln!(out, "  GO molecular function: {}", field(&meta.go_mf));
    let _ = writeln!(out, "  GO cellular component: {}", field(&meta.go_cc));
    if sequence {
        let _ = writeln!(out, "  sequence: {}", field(&meta.sequence));
    }
}

/// The explain prompt: `unit_label` names the unit ("feature 17", "neuron 3").
pub fn explain_prompt(
    unit_label: &str,
    active: &[(&ProteinMeta, Sample)],
    inactive: &[(&ProteinMeta, Sample)],
    sequence: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "We are studying {unit_label} of a protein language model. Below are annotations of \
         proteins on which it is active, each with its activation scaled to the range 0 to 1 \
         (1 is the strongest activation seen over all proteins), followed by proteins on which \
         it is inactive."
    );
    let _ = writeln!(out, "\nACTIVE PROTEINS\n");
    for (meta, sample) in active {
        protein_block(&mut out, meta, Some(sample.activation), sequence);
    }
    let _ = writeln!(out, "\nINACTIVE PROTEINS\n");
    for (meta, sample) in inactive {
        protein_block(&mut out, meta, Some(sample.activation), sequence);
    }
    let _ = write!(
        out,
        "\nWhat property of a protein, visible in these annotations, does this unit respond to? \
         Answer with one sentence describing that property, and nothing else."
    );
    out
}

/// The predict prompt: the description and the held-out proteins, without activations.
pub fn predict_prompt(description: &str, held_out: &[&ProteinMeta], sequence: bool) -> String {
    let n = held_out.len();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A unit of a protein language model has been described as follows:\n\n{description}\n\n\
         For each of the {n} proteins below, predict the unit's activation on it, scaled to the \
         range 0 to 1 (0: inactive, 1: the strongest activation over all proteins). Base the \
         prediction on the description and the protein's annotations.\n"
    );
    for (i, meta) in held_out.iter().enumerate() {
        let _ = writeln!(out, "[{}]", i + 1);
        protein_block(&mut out, meta, None, sequence);
    }
    let _ = write!(
        out,
        "\nReply with exactly {n} lines and nothing else: line i is `i: value` for protein [i], \
         value a number between 0 and 1."
    );
    out
}

/// The description in an explain reply: the text with a leading label, quotes and surrounding
/// whitespace removed, whitespace runs collapsed. An empty reply is malformed.
pub fn parse_description(reply: &str) -> Result<String, String> {
    let mut text = reply.trim();
    for label in ["Description:", "Interpretation:", "Explanation:", "Answer:"] {
        if text.len() >= label.len() && text[..label.len()].eq_ignore_ascii_case(label) {
            text = text[label.len()..].trim();
        }
    }
    let text = text.trim_matches(|c| c == '"' || c == '“' || c == '”' || c == '`');
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().any(char::is_alphabetic) {
        Ok(collapsed)
    } else {
        Err(format!("no description in the reply {reply:?}"))
    }
}

/// The `n` predictions in a predict reply. One number per line is read as the last number on
/// each line that has one (so `3: 0.4`, `3. 0.4`, `P12345 0.4` all give 0.4); when that does
/// not give `n` numbers, all numbers of a single-line list (`0.1, 0.5, ...`) are tried. A wrong
/// count or a number outside [0, 1] is malformed.
pub fn parse_predictions(reply: &str, n: usize) -> Result<Vec<f64>, String> {
    let per_line: Vec<f64> = reply
        .lines()
        .filter_map(|line| numbers(line).last().copied())
        .collect();
    let values = if per_line.len() == n {
        per_line
    } else {
        let all = numbers(reply);
        if all.len() == n && reply.trim().lines().count() == 1 {
            all
        } else {
            return Err(format!(
                "expected {n} predictions, found {} lines with numbers",
                per_line.len()
            ));
        }
    };
    if let Some(bad) = values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(format!("prediction {bad} is outside [0, 1]"));
    }
    Ok(values)
}

/// Decimal numbers in `text` (an optional minus, digits with at most one point; a leading `i:` index counts too,
/// which is why callers take the last number of a line).
fn numbers(text: &str) -> Vec<f64> {
    let mut found = Vec::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        let sign = c == '-' && current.is_empty();
        if sign || c.is_ascii_digit() || (c == '.' && !current.contains('.')) {
            current.push(c);
        } else {
            if current.chars().any(|c| c.is_ascii_digit()) {
                if let Ok(v) = current.trim_end_matches('.').parse::<f64>() {
                    found.push(v);
                }
            }
            current.clear();
        }
    }
    found
}
