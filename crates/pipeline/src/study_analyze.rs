//! A study's `[analyze]` section → one [`crate::analyze::AnalyzeRequest`] per encoded set, with
//! the set's own dimensions as the neuron baseline.

use std::path::Path;

use anyhow::{Context, Result};

use crate::analyze::{parse_correction, parse_namespaces, parse_rule, AnalyzeRequest, LabelSource};
use crate::presets::Preset;
use crate::study::AnalyzeSection;

/// The analyze stage's request, built when the study is planned so that a typo in a rule,
/// namespace or label kind fails before any stage runs.
pub(crate) fn analyze_request(
    codes: &Path,
    activations: &Path,
    section: &AnalyzeSection,
    preset: Option<Preset>,
    out: &Path,
) -> Result<AnalyzeRequest> {
    let mut req = AnalyzeRequest::new(out.to_path_buf());
    req.codes = Some(codes.to_path_buf());
    req.proteins_from = Some(activations.to_path_buf());
    if section.neurons {
        req.neurons = Some(activations.to_path_buf());
    }
    req.annotations = section.annotations.clone();
    req.go = section.go.clone();
    req.gaf = section.gaf.clone();
    req.residue_labels = section
        .residue_labels
        .iter()
        .map(|l| l.parse::<LabelSource>())
        .collect::<Result<_>>()
        .context("[analyze] residue_labels")?;
    // A preset gives the paper's statistics; the study's own values win.
    if let Some(p) = preset {
        p.fill_analyze_request(&mut req)?;
    }
    if section.namespaces != ["BP", "MF", "CC"] || preset.is_none() {
        req.namespaces = parse_namespaces(&section.namespaces).context("[analyze] namespaces")?;
    }
    if let Some(c) = &section.correction {
        req.correction = parse_correction(c).context("[analyze] correction")?;
    }
    if let Some(a) = section.alpha {
        req.alpha = a;
    }
    if let Some(n) = section.min_term_size {
        req.go_term_size.min_population_count = n;
    }
    if let Some(n) = section.max_term_size {
        req.go_term_size.max_population_count = n;
    }
    if let Some(rule) = &section.foreground {
        req.feature_rule = Some(parse_rule(rule, false).context("[analyze] foreground")?);
    }
    if let Some(rule) = &section.neuron_foreground {
        req.neuron_rule = parse_rule(rule, true).context("[analyze] neuron_foreground")?;
    }
    if section.tsv {
        let mut dir = out.as_os_str().to_owned();
        dir.push(".tsv");
        req.tsv = Some(dir.into());
    }
    Ok(req)
}
