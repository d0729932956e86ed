//! The command lines array tasks run: each sharded stage's own subcommand with `--shard`, and
//! the analyze flags that reproduce a study's [analyze] request exactly.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Result};
use plmscope_bio::Namespace;
use plmscope_interpret::enrichment::CorrectionMethod;
use plmscope_interpret::pipeline::{ForegroundRule, StoreTests};

use super::{absolute, q, qp, ScriptContext};
use crate::analyze::{AnalyzeRequest, LabelKind};
use crate::embed::{LongPolicy, OnInvalid};
use crate::runner::PlannedStage;
use crate::study_stages::StageWork;

/// The command an array task runs: the stage's own subcommand with `--shard`.
pub(super) fn shard_command(
    stage: &PlannedStage,
    ctx: &ScriptContext,
    shards: usize,
    part: &str,
) -> Result<String> {
    let bin = q(&ctx.binary);
    let shard = format!("--shard \"${{SLURM_ARRAY_TASK_ID}}/{shards}\"");
    // The part path holds ${SLURM_ARRAY_TASK_ID}: double quotes, so the shell expands it.
    let out = format!("--out \"{part}\"");
    Ok(match &stage.work {
        StageWork::Embed { request, .. } => {
            let r = request;
            let mut c = format!(
                "{bin} embed --model {} --fasta {} --layers {} --sites {} --level {} --dtype {} \
                 --token-budget {}",
                q(&r.model),
                qp(&absolute(&r.fasta)?),
                r.layers
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                r.sites
                    .iter()
                    .map(|s| s.name().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                r.levels
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                r.dtype,
                r.token_budget,
            );
            if let Some(n) = r.proteins_per_shard {
                let _ = write!(c, " --proteins-per-shard {n}");
            }
            let on_invalid = match r.on_invalid {
                OnInvalid::Error => "error",
                OnInvalid::Skip => "skip",
            };
            let long = match r.long {
                LongPolicy::Truncate => "truncate",
                LongPolicy::Skip => "skip",
                LongPolicy::Error => "error",
            };
            let _ = write!(c, " --on-invalid {on_invalid} --long {long}");
            format!("{c} {shard} {out}")
        }
        StageWork::Encode { sae, activations } => format!(
            "{bin} encode --sae {} --activations {} {shard} {out}",
            qp(&absolute(sae)?),
            qp(&absolute(activations)?)
        ),
        StageWork::Analyze { request } => {
            format!("{bin} analyze {} {shard} {out}", analyze_flags(request)?)
        }
        _ => bail!("stage {} cannot be sharded", stage.id),
    })
}

/// `plmscope analyze` flags equal to a study's analyze request (its preset already applied).
fn analyze_flags(r: &AnalyzeRequest) -> Result<String> {
    let mut f = Vec::new();
    let mut path = |flag: &str, p: &Path| -> Result<()> {
        f.push(format!("{flag} {}", qp(&absolute(p)?)));
        Ok(())
    };
    if let Some(p) = &r.codes {
        path("--codes", p)?;
    }
    if let Some(p) = &r.activations {
        path("--activations", p)?;
    }
    if let Some(p) = &r.neurons {
        path("--neurons", p)?;
    }
    if let Some(p) = &r.proteins_from {
        path("--proteins-from", p)?;
    }
    for p in &r.annotations {
        path("--annotations", p)?;
    }
    if let Some(p) = &r.go {
        path("--go", p)?;
    }
    for p in &r.gaf {
        path("--gaf", p)?;
    }
    for p in &r.fasta {
        path("--fasta", p)?;
    }
    for l in &r.residue_labels {
        let file = absolute(&l.path)?;
        f.push(format!(
            "--residue-labels {}",
            q(format!("{}={}", label_kind(&l.kind), file.display()))
        ));
    }
    let namespaces: Vec<&str> = r
        .namespaces
        .iter()
        .map(|n| match n {
            Namespace::BiologicalProcess => "BP",
            Namespace::MolecularFunction => "MF",
            Namespace::CellularComponent => "CC",
        })
        .collect();
    f.push(format!("--namespace {}", namespaces.join(",")));
    f.push(format!(
        "--min-term-size {} --max-term-size {}",
        r.go_term_size.min_population_count, r.go_term_size.max_population_count
    ));
    f.push(format!(
        "--correction {}",
        match r.correction {
            CorrectionMethod::BenjaminiHochberg => "bh",
            CorrectionMethod::Bonferroni => "bonferroni",
        }
    ));
    f.push(format!("--alpha {}", r.alpha));
    if let Some(rule) = &r.feature_rule {
        f.push(format!("--foreground {}", q(rule_text(rule))));
    }
    f.push(format!(
        "--neuron-foreground {}",
        q(rule_text(&r.neuron_rule))
    ));
    f.push(format!(
        "--store-tests {}",
        match r.store_tests {
            StoreTests::Nominal => "nominal",
            StoreTests::Significant => "significant",
            StoreTests::All => "all",
        }
    ));
    Ok(f.join(" "))
}

/// A foreground rule as `--foreground` spells it.
fn rule_text(rule: &ForegroundRule) -> String {
    match rule {
        ForegroundRule::TopKMember => "topk".into(),
        ForegroundRule::Above(t) => format!("above:{t}"),
        ForegroundRule::TopProteins(n) => format!("top:{n}"),
        ForegroundRule::AboveQuantile(x) => format!("quantile:{x}"),
        ForegroundRule::MatchFeatures => "match".into(),
    }
}

/// A residue label kind as `--residue-labels KIND=FILE` spells it.
fn label_kind(kind: &LabelKind) -> &'static str {
    match kind {
        LabelKind::Tmbed => "tmbed",
        LabelKind::Binding(class) => class.name(),
        LabelKind::UniProt => "uniprot",
    }
}
