//! delphi's prompts for residue windows and the parsing of their replies. The structure is
//! delphi's (`explainers/`, `scorers/classifier/prompts/`): the explainer sees windows with the
//! activating residues marked `<<...>>` (a run of marked residues shares one pair of marks);
//! the detection scorer sees unmarked windows and says for each whether the unit fires in it;
//! the fuzzing scorer sees marked windows and says for each whether the marks are the residues
//! the description predicts. The wording is ours, for protein sequences.

use std::fmt::Write;

use super::windows::Window;

/// delphi's marks.
pub const LEFT: &str = "<<";
pub const RIGHT: &str = ">>";

/// The window's residues with those where `marked(i)` wrapped in `<<` `>>`, runs together.
pub fn mark(window: &Window, marked: &dyn Fn(usize) -> bool) -> String {
    let mut out = String::new();
    let mut open = false;
    for (i, residue) in window.residues.chars().enumerate() {
        let m = marked(i);
        if m && !open {
            out.push_str(LEFT);
            open = true;
        } else if !m && open {
            out.push_str(RIGHT);
            open = false;
        }
        out.push(residue);
    }
    if open {
        out.push_str(RIGHT);
    }
    out
}

/// Residues at or above `threshold` × the window's maximum (delphi's highlighting rule, 0.3).
pub fn above_threshold(window: &Window, threshold: f32) -> Vec<bool> {
    let max = window.max();
    window
        .activations
        .iter()
        .map(|&a| max > 0.0 && a > 0.0 && a >= threshold * max)
        .collect()
}

/// The explain prompt: `unit_label` names the unit, `windows` are the explain set.
pub fn explain_prompt(unit_label: &str, windows: &[Window], threshold: f32) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "We are studying {unit_label} of a protein language model, which reads amino-acid \
         sequences (one-letter codes). Below are {} stretches of protein sequence on which it is \
         active. In each, the residues where it is most active are marked like <<this>>.\n",
        windows.len()
    );
    for (i, w) in windows.iter().enumerate() {
        let marks = above_threshold(w, threshold);
        let _ = writeln!(out, "Example {}: {}", i + 1, mark(w, &|j| marks[j]));
    }
    let _ = write!(
        out,
        "\nWhat do the marked residues and their surroundings have in common: which residues, \
         motifs or structural or functional sites does this unit respond to? Answer with one \
         sentence, and nothing else."
    );
    out
}

fn answer_format(n: usize) -> String {
    let example: Vec<&str> = (0..n).map(|i| if i % 2 == 0 { "1" } else { "0" }).collect();
    format!(
        "Reply with a list of exactly {n} numbers, 1 or 0, one per example in order, e.g. \
         [{}], and nothing else.",
        example.join(", ")
    )
}

/// The detection prompt: does the unit fire anywhere in each (unmarked) window?
pub fn detection_prompt(description: &str, windows: &[&Window]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A unit of a protein language model has been described as follows:\n\n{description}\n\n\
         Below are {} stretches of protein sequence. For each, say whether the unit is active \
         on any of its residues (1) or on none (0), based on the description.\n",
        windows.len()
    );
    for (i, w) in windows.iter().enumerate() {
        let _ = writeln!(out, "Example {}: {}", i + 1, w.residues);
    }
    let _ = write!(out, "\n{}", answer_format(windows.len()));
    out
}

/// The fuzzing prompt: are the marked residues of each window the ones the description names?
pub fn fuzzing_prompt(description: &str, marked: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A unit of a protein language model has been described as follows:\n\n{description}\n\n\
         Below are {} stretches of protein sequence with some residues marked like <<this>>. In \
         some, the marks are on the residues where the unit is active; in others they were \
         placed at random. For each, say whether the marked residues are ones the description \
         says the unit responds to (1) or not (0).\n",
        marked.len()
    );
    for (i, text) in marked.iter().enumerate() {
        let _ = writeln!(out, "Example {}: {}", i + 1, text);
    }
    let _ = write!(out, "\n{}", answer_format(marked.len()));
    out
}

/// The `n` answers of a detection or fuzzing reply: the last `[...]` list when there is one,
/// else the bare 0s and 1s of the reply. A wrong count or a value other than 0 or 1 is
/// malformed.
pub fn parse_binary(reply: &str, n: usize) -> Result<Vec<bool>, String> {
    let text = match (reply.rfind('['), reply.rfind(']')) {
        (Some(open), Some(close)) if open < close => &reply[open + 1..close],
        _ => reply,
    };
    let tokens: Vec<&str> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|t| t.trim_matches(|c: char| c == '"' || c == '\'' || c == '.'))
        .filter(|t| !t.is_empty())
        .collect();
    let mut values = Vec::with_capacity(tokens.len());
    for t in &tokens {
        match *t {
            "1" | "1.0" | "true" | "True" | "yes" | "Yes" => values.push(true),
            "0" | "0.0" | "false" | "False" | "no" | "No" => values.push(false),
            other => return Err(format!("{other:?} is not 1 or 0 in the reply {reply:?}")),
        }
    }
    if values.len() != n {
        return Err(format!(
            "expected {n} answers, found {} in the reply {reply:?}",
            values.len()
        ));
    }
    Ok(values)
}
