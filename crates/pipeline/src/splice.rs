//! The spliced-in test of a residue-level SAE on `resid_post` (`plmscope eval --model M
//! --fasta F`). The layer's residue activations are replaced by the SAE's reconstruction (or
//! by zeros) and the masked-LM cross-entropy is compared with the unpatched model's.

use anyhow::{bail, Context, Result};
use plmscope_bio::FastaReader;
use plmscope_model::{alphabet, load_model, splice};
use plmscope_sae::Dictionary;
use plmscope_store::{Level, Site};
use serde_json::{json, Value};
use std::path::Path;

pub struct SpliceOptions<'a> {
    pub model: &'a str,
    pub fasta: &'a Path,
    pub max_proteins: usize,
    pub mask_fraction: f64,
    pub seed: u64,
}

/// Runs the test and returns its JSON report.
pub fn splice_report(dict: &Dictionary, opts: &SpliceOptions) -> Result<Value> {
    let source = &dict.meta.source;
    if source.site != Some(Site::ResidPost) || source.level != Some(Level::Residue) {
        bail!(
            "the spliced-in test needs a residue-level SAE on resid_post; this one was trained on {} {} activations",
            source.level.map_or("unrecorded-level", |level| level.name()),
            source.site.map_or("unrecorded-site", |site| site.name())
        );
    }
    let layer = source
        .layer
        .context("the dictionary does not record its layer")? as usize;
    let (model, info) = load_model(opts.model)?;
    if dict.d_in != model.config.hidden_size || dict.d_out != model.config.hidden_size {
        bail!(
            "the dictionary maps {} -> {} dimensions but {} has hidden size {}",
            dict.d_in,
            dict.d_out,
            info.arch,
            model.config.hidden_size
        );
    }
    let mut proteins = Vec::new();
    for record in FastaReader::open(opts.fasta)? {
        let record = record?;
        let seq = &record.sequence[..record.sequence.len().min(alphabet::MAX_RESIDUES)];
        match alphabet::tokenize(seq) {
            Ok(t) => proteins.push(t),
            Err(bad) => tracing::warn!(
                "skipping {} (line {}): invalid residue {:?}",
                record.id,
                record.line,
                bad.character
            ),
        }
        if proteins.len() == opts.max_proteins {
            break;
        }
    }
    if proteins.is_empty() {
        bail!("{}: no protein to evaluate", opts.fasta.display());
    }
    let mut failure: Option<anyhow::Error> = None;
    let mut reconstruct = |rows: &mut [f32]| match dict.forward(rows) {
        Ok((_, recon)) => rows.copy_from_slice(&recon),
        Err(e) => failure = Some(e.into()),
    };
    let mut zero = |rows: &mut [f32]| rows.iter_mut().for_each(|v| *v = 0.0);
    let losses = splice::masked_lm_losses(
        &model,
        &proteins,
        layer,
        opts.mask_fraction,
        opts.seed,
        8192,
        &mut [&mut reconstruct, &mut zero],
    )?;
    if let Some(e) = failure {
        return Err(e.context("the dictionary failed on the model's activations"));
    }
    let (clean, recon, zeroed) = (losses.clean, losses.patched[0], losses.patched[1]);
    let recovered = splice::loss_recovered(clean, recon, zeroed);
    Ok(json!({
        "model": info.id, "layer": layer, "proteins": proteins.len(),
        "masked_tokens": losses.masked_tokens, "mask_fraction": opts.mask_fraction, "seed": opts.seed,
        "ce_original": clean, "ce_reconstruction": recon, "ce_zero_ablation": zeroed,
        "loss_recovered": recovered,
    }))
}
