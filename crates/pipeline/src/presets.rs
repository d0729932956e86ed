//! The three papers' setups by name (`--preset NAME`, `preset = "NAME"` in a study). Each
//! setting names the file it comes from in [`Preset::sources`]; the README's preset table is
//! checked against these values by a test, so the two cannot drift apart.

use anyhow::{bail, Result};
use plmscope_sae::trainer::{
    BDecInit, DeadRule, EncoderInit, ReconLoss, TrainConfig, TrainNorm, WeightInit,
};
use plmscope_store::Level;

use crate::analyze::{parse_correction, parse_namespaces, AnalyzeRequest};
use crate::train::{DictionarySize, Normalize, TrainRequest};

/// A published setup: model, layers, dictionary and analysis settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    pub paper: &'static str,
    /// Hub id of the model the paper used.
    pub model: &'static str,
    pub layers: &'static [usize],
    pub site: &'static str,
    pub level: &'static str,
    pub arch: &'static str,
    pub latents: usize,
    /// Active latents per row (TopK); `None` for ReLU-L1.
    pub k: Option<usize>,
    /// `none`, `unit_mean_square` (folded into the weights) or `layernorm` (per row, undone).
    pub normalize: &'static str,
    pub decoder_norm: bool,
    pub lr: f32,
    pub b_dec_init: &'static str,
    pub auxk_coefficient: f32,
    /// Dead after this many training steps without firing (`None`: the row window).
    pub dead_after_steps: Option<u64>,
    /// A transcoder from `site` at layer L to this site at layer L + 1 (the seed's
    /// inter-layer transcoder on pooled `block_delta`).
    pub transcoder_target: Option<&'static str>,
    /// GO namespaces tested.
    pub namespaces: &'static [&'static str],
    /// `bh` or `bonferroni`.
    pub correction: &'static str,
    pub alpha: f64,
    /// Concept thresholds as fractions of each unit's maximum (InterPLM).
    pub concept_thresholds: &'static [f64],
    /// InterProt's family-specificity F1 and activation-pattern classes.
    pub interprot_analyses: bool,
    /// (setting, where it comes from)
    pub sources: &'static [(&'static str, &'static str)],
}

const GUJRAL_SOURCES: &[(&str, &str)] = &[
    (
        "model, layers",
        "Rep_SAEs_PLMs main_script.py (ESM2-35M choices; paper: layers 6-10)",
    ),
    (
        "latents 20000",
        "Rep_SAEs_PLMs GO and autointerp scripts (d_sae = 20000 hard-coded)",
    ),
    (
        "k 64 protein / 16 residue",
        "Rep_SAEs_PLMs README commands (--k)",
    ),
    (
        "per-sample LayerNorm, undone on decode",
        "Rep_SAEs_PLMs SAE model file (LN before encode)",
    ),
    (
        "no decoder norm, b_dec zeros",
        "Rep_SAEs_PLMs SAE model file (weights.0..3 init)",
    ),
    (
        "AuxK 1/32, k_aux = d/2",
        "Rep_SAEs_PLMs SAE training step (auxk loss)",
    ),
    (
        "dead after 200 / 50 idle steps",
        "Rep_SAEs_PLMs neuron_idle_counts (protein / AA scripts)",
    ),
    ("Adam 1e-4 constant", "Rep_SAEs_PLMs configure_optimizers"),
    (
        "GO BP, Bonferroni 0.05, top-k study sets",
        "Rep_SAEs_PLMs GO enrichment script (goatools)",
    ),
];

/// Every preset, by name.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "gujral2025-protein",
        paper: "Gujral et al., PNAS 2025",
        model: "facebook/esm2_t12_35M_UR50D",
        layers: &[6, 7, 8, 9, 10],
        site: "resid_post",
        level: "protein",
        arch: "topk",
        latents: 20_000,
        k: Some(64),
        normalize: "layernorm",
        decoder_norm: false,
        lr: 1e-4,
        b_dec_init: "zeros",
        auxk_coefficient: 1.0 / 32.0,
        dead_after_steps: Some(200),
        transcoder_target: None,
        namespaces: &["BP"],
        correction: "bonferroni",
        alpha: 0.05,
        concept_thresholds: &[],
        interprot_analyses: false,
        sources: GUJRAL_SOURCES,
    },
    Preset {
        name: "gujral2025-residue",
        paper: "Gujral et al., PNAS 2025",
        model: "facebook/esm2_t12_35M_UR50D",
        layers: &[6, 7, 8, 9, 10],
        site: "resid_post",
        level: "residue",
        arch: "topk",
        latents: 20_000,
        k: Some(16),
        normalize: "layernorm",
        decoder_norm: false,
        lr: 1e-4,
        b_dec_init: "zeros",
        auxk_coefficient: 1.0 / 32.0,
        dead_after_steps: Some(50),
        transcoder_target: None,
        namespaces: &["BP"],
        correction: "bonferroni",
        alpha: 0.05,
        concept_thresholds: &[],
        interprot_analyses: false,
        sources: GUJRAL_SOURCES,
    },
    Preset {
        name: "gujral2025-transcoder",
        paper: "Gujral et al., PNAS 2025",
        model: "facebook/esm2_t12_35M_UR50D",
        layers: &[6, 7, 8, 9],
        site: "resid_post",
        level: "protein",
        arch: "topk",
        latents: 20_000,
        k: Some(64),
        normalize: "none",
        decoder_norm: false,
        lr: 1e-4,
        b_dec_init: "zeros",
        auxk_coefficient: 1.0 / 32.0,
        dead_after_steps: Some(200),
        transcoder_target: Some("block_delta"),
        namespaces: &["BP"],
        correction: "bonferroni",
        alpha: 0.05,
        concept_thresholds: &[],
        interprot_analyses: false,
        sources: &[
            (
                "target: layer L+1 minus layer L, mean-pooled",
                "Rep_SAEs_PLMs README (--return_difference 1)",
            ),
            ("other settings", "as gujral2025-protein"),
        ],
    },
    Preset {
        name: "interplm-esm2-8m",
        paper: "Simon & Zou, Nature Methods 2025 (InterPLM)",
        model: "facebook/esm2_t6_8M_UR50D",
        layers: &[1, 2, 3, 4, 5, 6],
        site: "resid_post",
        level: "residue",
        arch: "relu",
        latents: 10_240,
        k: None,
        normalize: "unit_mean_square",
        decoder_norm: true,
        lr: 1e-4,
        b_dec_init: "geometric_median",
        auxk_coefficient: 0.0,
        dead_after_steps: None,
        transcoder_target: None,
        namespaces: &["BP", "MF", "CC"],
        correction: "bh",
        alpha: 0.05,
        concept_thresholds: &[0.0, 0.15, 0.5, 0.6, 0.8],
        interprot_analyses: false,
        sources: &[
            (
                "model, layers 1-6, 10240 latents",
                "InterPLM HF model card Elana/InterPLM-esm2-8m (layer_N/ae_normalized.pt)",
            ),
            (
                "ReLU-L1, normalisation folded into the weights",
                "InterPLM interplm/sae/dictionary.py (ReLUSAE, activation_rescale_factor)",
            ),
            (
                "concept thresholds 0, .15, .5, .6, .8; valid->test",
                "InterPLM interplm/concept/ (compare_activations.py)",
            ),
        ],
    },
    Preset {
        name: "interprot-esm2-650m",
        paper: "Adams et al. 2025 (InterProt)",
        model: "facebook/esm2_t33_650M_UR50D",
        layers: &[24],
        site: "resid_post",
        level: "residue",
        arch: "topk",
        latents: 4_096,
        k: Some(64),
        normalize: "layernorm",
        decoder_norm: true,
        lr: 2e-4,
        b_dec_init: "zeros",
        auxk_coefficient: 1.0 / 32.0,
        dead_after_steps: None,
        transcoder_target: None,
        namespaces: &["BP", "MF", "CC"],
        correction: "bh",
        alpha: 0.05,
        concept_thresholds: &[],
        interprot_analyses: true,
        sources: &[
            (
                "model 650M, layer 24, 4096 latents, k 64",
                "interprot viz/src/SAEConfigs.ts",
            ),
            (
                "TopK with per-token LayerNorm, unit-norm decoder",
                "interprot interprot/sae_model.py",
            ),
            ("AdamW 2e-4, AuxK 1/32", "interprot interprot/training.py"),
            (
                "family F1 (threshold on 50%), pattern classes",
                "interprot interprot/ (family and latent-type analyses)",
            ),
        ],
    },
];

impl Preset {
    /// The preset called `name`, or an error listing them all.
    pub fn by_name(name: &str) -> Result<Preset> {
        match PRESETS.iter().find(|p| p.name == name) {
            Some(p) => Ok(*p),
            None => bail!(
                "unknown preset {name}; choose one of {}",
                PRESETS
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Fills a training request with this setup (what the user gives later overrides it).
    pub fn fill_train_request(&self, req: &mut TrainRequest) {
        req.archs = vec![plmscope_sae::Architecture::from_name(self.arch).expect("registered")];
        req.ks = self.k.into_iter().collect();
        req.sizes = vec![DictionarySize::Latents(self.latents)];
        req.lr = Some(self.lr);
        req.normalize = match self.normalize {
            "layernorm" => Normalize::Layernorm,
            "unit_mean_square" => Normalize::UnitMeanSquare,
            _ => Normalize::None,
        };
        req.decoder_norm = self.decoder_norm;
        req.adjust = Some(match self.name {
            "gujral2025-protein" | "gujral2025-residue" | "gujral2025-transcoder" => adjust_gujral,
            "interplm-esm2-8m" => adjust_interplm,
            _ => adjust_interprot,
        });
    }

    /// Puts this setup under a request that already holds the command line's values: the
    /// architecture, normalisation, decoder norm and adjustments become the preset's, while
    /// `ks`, `sizes` and `lr`, when the request has them, override the preset's (`--k`,
    /// `--latents`/`--expansion` and `--lr` win).
    pub fn fill_train_request_under(&self, req: &mut TrainRequest) {
        let ks = std::mem::take(&mut req.ks);
        let sizes = std::mem::take(&mut req.sizes);
        let lr = req.lr;
        self.fill_train_request(req);
        if !ks.is_empty() {
            req.ks = ks;
        }
        if !sizes.is_empty() {
            req.sizes = sizes;
        }
        req.lr = lr.or(req.lr);
    }

    /// Sets an analysis request's statistics to this setup's: GO namespaces, correction and
    /// alpha.
    pub fn fill_analyze_request(&self, req: &mut AnalyzeRequest) -> Result<()> {
        req.namespaces = parse_namespaces(self.namespaces)?;
        req.correction = parse_correction(self.correction)?;
        req.alpha = self.alpha;
        Ok(())
    }
}

/// Rep: per-sample LayerNorm with eps inside the root (undone without it), encoder = decoder
/// transpose, U(±1/√d_sae) weights, zeros b_dec, MSE loss, AuxK 1/32 with k_aux = d/2, idle-step
/// dead counting (200 protein / 50 residue steps), constant Adam 1e-4.
fn adjust_gujral(c: &mut TrainConfig, level: Level) {
    c.b_dec_init = BDecInit::Zeros;
    c.recon_loss = ReconLoss::Mse;
    c.auxk_coefficient = 1.0 / 32.0;
    c.k_aux = Some(c.d_in / 2);
    c.encoder_init = Some(EncoderInit::DecoderTranspose);
    c.weight_init = WeightInit::LinearUniform;
    c.dead_rule = DeadRule::IdleSteps {
        steps: if level == Level::Protein { 200 } else { 50 },
    };
    if matches!(c.input_norm, TrainNorm::LayerNorm { .. }) {
        c.input_norm = TrainNorm::BiasedLayerNorm { eps: 1e-5 };
    }
}

/// InterPLM: geometric-median b_dec; the ReLU-L1 penalty from the command line.
fn adjust_interplm(c: &mut TrainConfig, _level: Level) {
    c.b_dec_init = BDecInit::GeometricMedian;
}

/// InterProt: per-token LayerNorm, zeros b_dec, AuxK 1/32.
fn adjust_interprot(c: &mut TrainConfig, _level: Level) {
    c.b_dec_init = BDecInit::Zeros;
    c.auxk_coefficient = 1.0 / 32.0;
    if let TrainNorm::LayerNorm { .. } = c.input_norm {
        c.input_norm = TrainNorm::LayerNorm { eps: 1e-5 };
    }
}

/// The README's preset table, made from [`PRESETS`] (a test checks the README holds exactly
/// this, so the documentation and the code cannot disagree).
pub fn presets_markdown() -> String {
    let mut t = String::from(
        "| preset | paper | model | layers | level | dictionary | input norm | decoder norm | lr | dead rule | GO / statistics |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for p in PRESETS {
        let layers = p
            .layers
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let dict = match p.k {
            Some(k) => format!("{} k={k}, {} latents", p.arch, p.latents),
            None => format!("{}, {} latents", p.arch, p.latents),
        };
        let dict = match p.transcoder_target {
            Some(t) => format!("{dict}; transcoder → layer L+1 {t}"),
            None => dict,
        };
        let dead = p
            .dead_after_steps
            .map_or("rows window".to_string(), |n| format!("{n} idle steps"));
        let mut stats = format!("{} {} {}", p.namespaces.join("+"), p.correction, p.alpha);
        if !p.concept_thresholds.is_empty() {
            stats.push_str(&format!("; concept thresholds {:?}", p.concept_thresholds));
        }
        if p.interprot_analyses {
            stats.push_str("; family F1 + pattern classes");
        }
        t.push_str(&format!(
            "| `{}` | {} | `{}` | {layers} | {} | {dict} | {} | {} | {} | {dead} | {stats} |\n",
            p.name, p.paper, p.model, p.level, p.normalize, p.decoder_norm, p.lr
        ));
    }
    t.push_str("\nSources of each setting:\n\n");
    for p in PRESETS {
        for (setting, source) in p.sources {
            t.push_str(&format!("- `{}` {setting}: {source}\n", p.name));
        }
    }
    t
}
