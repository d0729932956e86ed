//! The flow stage: links features of two dictionaries (adjacent layers by decoder cosine
//! against a random-direction null, or a transcoder's path by decoder · encoder weights) and
//! writes them into an atlas's `flow_links`. The matching belongs to `plmscope_interpret::flow`;
//! this module loads the dictionaries, keeps the matches that pass the null and words the report.
//!
//! ```no_run
//! use plmscope_pipeline::flow::{flow, FlowRequest};
//! # fn main() -> anyhow::Result<()> {
//! let outcome = flow(&FlowRequest {
//!     source: "runs/x/dict-layer3".into(),
//!     target: "runs/x/dict-layer4".into(),
//!     weights: false,
//!     atlas: "runs/x/layer4.sqlite".into(),
//!     source_atlas: None,
//!     target_atlas: None,
//!     max_p: 0.01,
//!     top: 5,
//!     null_directions: 1000,
//!     seed: 0,
//! })?;
//! print!("{outcome}");
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plmscope_interpret::flow::{
    attribute, match_decoders, write_flow_links, Directions, FlowLink, MatchOptions,
};
use plmscope_sae::Dictionary;

/// Which dictionaries to link, how, and into which atlas. With the `cli` feature it is also
/// `plmscope flow`'s flags (the field docs are their help; `null_directions` and `seed` are the
/// null's size and seed).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct FlowRequest {
    /// Dictionary at the source layer (or the transcoder, with --transcoder-into).
    #[cfg_attr(feature = "cli", arg(long))]
    pub source: PathBuf,
    /// Dictionary at the target layer.
    #[cfg_attr(feature = "cli", arg(long))]
    pub target: PathBuf,
    /// Link by decoder · encoder weights (source = a transcoder writing into the target's
    /// input space, or an SAE feeding a transcoder) instead of decoder cosine.
    #[cfg_attr(feature = "cli", arg(long))]
    pub weights: bool,
    /// Atlas to write `flow_links` into (the target's atlas, usually).
    #[cfg_attr(feature = "cli", arg(long))]
    pub atlas: PathBuf,
    /// Names of the two atlases as stored in `flow_links` (default: the dictionary folders).
    #[cfg_attr(feature = "cli", arg(long))]
    pub source_atlas: Option<String>,
    #[cfg_attr(feature = "cli", arg(long))]
    pub target_atlas: Option<String>,
    /// Keep decoder matches with null p at most this.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.01))]
    pub max_p: f64,
    /// Sources kept per target feature with --weights.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5))]
    pub top: usize,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1000))]
    pub null_directions: usize,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
}

/// The random-direction null of a decoder-cosine match, and how many matches passed it.
#[derive(Clone, Debug, PartialEq)]
pub struct NullReport {
    pub directions: usize,
    /// The null's 99th and 99.9th percentiles of the best cosine.
    pub q99: f64,
    pub q999: f64,
    /// Target features matched before the p filter.
    pub matched: usize,
    pub max_p: f64,
}

/// The links written; displayed, the report `plmscope flow` prints (the null, the ten
/// strongest links, the count).
#[derive(Clone, Debug)]
pub struct FlowOutcome {
    /// `None` for `--weights` links, which have no null.
    pub null: Option<NullReport>,
    pub links: Vec<FlowLink>,
    pub atlas: PathBuf,
}

impl fmt::Display for FlowOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = &self.null {
            writeln!(
                f,
                "null best cosine of {} random directions: 99% {:.3}, 99.9% {:.3}",
                n.directions, n.q99, n.q999
            )?;
            writeln!(
                f,
                "{} of {} target features matched at p <= {}",
                self.links.len(),
                n.matched,
                n.max_p
            )?;
        }
        let mut strongest: Vec<&FlowLink> = self.links.iter().collect();
        strongest.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        writeln!(f, "source\ttarget\tweight\tp\tkind")?;
        for l in strongest.iter().take(10) {
            let p = l.p.map_or("-".to_string(), |p| format!("{p:.4}"));
            writeln!(
                f,
                "{}\t{}\t{:.4}\t{p}\t{}",
                l.source,
                l.target,
                l.weight,
                l.kind.as_str()
            )?;
        }
        writeln!(
            f,
            "{} links written to {}",
            self.links.len(),
            self.atlas.display()
        )
    }
}

/// Loads both dictionaries, links them ([`link`]) and writes the links into `req.atlas`,
/// replacing earlier links of the same pair and kind.
pub fn flow(req: &FlowRequest) -> Result<FlowOutcome> {
    let load = |p: &Path| {
        plmscope_sae::io::load(p).with_context(|| format!("loading dictionary {}", p.display()))
    };
    let (source, target) = (load(&req.source)?, load(&req.target)?);
    let outcome = link(&source, &target, req)?;
    let name =
        |given: &Option<String>, p: &Path| given.clone().unwrap_or_else(|| p.display().to_string());
    write_flow_links(
        &req.atlas,
        &name(&req.source_atlas, &req.source),
        &name(&req.target_atlas, &req.target),
        &outcome.links,
    )?;
    Ok(outcome)
}

/// The links from `source` to `target` as `req` asks, nothing written: with `weights`, each
/// target feature's `top` sources by decoder · encoder; else each target feature's best source
/// by decoder cosine, kept when its null p is at most `max_p`.
pub fn link(source: &Dictionary, target: &Dictionary, req: &FlowRequest) -> Result<FlowOutcome> {
    let decoder = Directions::new(source.d_sae, source.d_out, source.w_dec.clone())?;
    let (links, null) = if req.weights {
        if source.d_out != target.d_in {
            bail!(
                "{} writes {} dimensions but {} reads {}: --weights needs the source's output \
                 space to be the target's input space",
                req.source.display(),
                source.d_out,
                req.target.display(),
                target.d_in
            );
        }
        let encoder = Directions::from_columns(target.d_in, target.d_sae, &target.w_enc)?;
        (attribute(&decoder, &encoder, req.top)?, None)
    } else {
        let target_decoder = Directions::new(target.d_sae, target.d_out, target.w_dec.clone())?;
        let options = MatchOptions {
            null_directions: req.null_directions,
            seed: req.seed,
        };
        let found = match_decoders(&decoder, &target_decoder, &options);
        let null = NullReport {
            directions: req.null_directions,
            q99: found.null_q99,
            q999: found.null_q999,
            matched: found.links.len(),
            max_p: req.max_p,
        };
        let kept = found
            .links
            .into_iter()
            .filter(|l| l.p.unwrap_or(1.0) <= req.max_p)
            .collect();
        (kept, Some(null))
    };
    Ok(FlowOutcome {
        null,
        links,
        atlas: req.atlas.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use plmscope_sae::{Architecture, DictionaryMeta, InputNorm, Kind};

    /// A TopK SAE whose decoder rows (and encoder columns) are the given unit vectors.
    fn dictionary(rows: &[[f32; 4]]) -> Dictionary {
        let d_sae = rows.len();
        let w_dec: Vec<f32> = rows.iter().flatten().copied().collect();
        let mut w_enc = vec![0.0; 4 * d_sae];
        for (j, row) in rows.iter().enumerate() {
            for (i, v) in row.iter().enumerate() {
                w_enc[i * d_sae + j] = *v;
            }
        }
        Dictionary {
            architecture: Architecture::TopK,
            kind: Kind::Sae,
            d_in: 4,
            d_sae,
            d_out: 4,
            k: 1,
            w_enc,
            b_enc: vec![0.0; d_sae],
            w_dec,
            b_dec: vec![0.0; 4],
            threshold: None,
            w_skip: None,
            apply_b_dec_to_input: true,
            input_norm: InputNorm::None,
            meta: DictionaryMeta::default(),
        }
    }

    fn request(dir: &Path, weights: bool) -> FlowRequest {
        FlowRequest {
            source: dir.join("source"),
            target: dir.join("target"),
            weights,
            atlas: dir.join("atlas.sqlite"),
            source_atlas: None,
            target_atlas: None,
            max_p: 0.01,
            top: 1,
            null_directions: 200,
            seed: 0,
        }
    }

    const SOURCE: [[f32; 4]; 2] = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]];
    /// Target 0 is source 1 exactly (beats the null); target 1 is a diagonal no source matches.
    const TARGET: [[f32; 4]; 2] = [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]];

    /// Catches a p filter that keeps chance matches (or drops exact ones), and a report that
    /// loses the null or the count of matches before the filter.
    #[test]
    fn decoder_matches_keep_only_those_beating_the_null() {
        let dir = tempfile::tempdir().unwrap();
        let req = request(dir.path(), false);
        let out = link(&dictionary(&SOURCE), &dictionary(&TARGET), &req).unwrap();
        assert_eq!(out.links.len(), 1, "{:?}", out.links);
        assert_eq!((out.links[0].source, out.links[0].target), (1, 0));
        let null = out.null.as_ref().unwrap();
        assert_eq!((null.directions, null.matched), (200, 2));
        let text = out.to_string();
        assert!(text.starts_with("null best cosine of 200 random directions: 99% "));
        assert!(text.contains("\n1 of 2 target features matched at p <= 0.01\n"));
        assert!(
            text.contains("\n1\t0\t1.0000\t0.0050\tdecoder_cosine\n"),
            "{text}"
        );
        assert!(text.ends_with(&format!("1 links written to {}\n", req.atlas.display())));
    }

    /// Catches weight links without the width check, or with a null line they cannot have.
    #[test]
    fn weight_links_need_the_source_output_to_be_the_target_input() {
        let dir = tempfile::tempdir().unwrap();
        let req = request(dir.path(), true);
        let out = link(&dictionary(&SOURCE), &dictionary(&TARGET), &req).unwrap();
        assert!(out.null.is_none());
        // Target 0's best source; target 1 reads nothing any source writes (zero weights).
        assert_eq!(out.links.len(), 1, "{:?}", out.links);
        assert_eq!((out.links[0].source, out.links[0].target), (1, 0));
        assert!(out
            .to_string()
            .starts_with("source\ttarget\tweight\tp\tkind\n"));

        let mut wide = dictionary(&TARGET);
        wide.d_in = 5;
        let err = link(&dictionary(&SOURCE), &wide, &req).unwrap_err();
        assert!(err.to_string().contains("--weights needs"), "{err}");
    }

    /// The whole stage: dictionaries from disk, links into a fresh atlas, a rerun replacing
    /// them; a missing dictionary is named.
    #[test]
    fn flow_loads_links_and_writes_the_atlas() {
        let dir = tempfile::tempdir().unwrap();
        let req = request(dir.path(), false);
        plmscope_sae::io::save(&dictionary(&SOURCE), &req.source).unwrap();
        plmscope_sae::io::save(&dictionary(&TARGET), &req.target).unwrap();
        assert_eq!(flow(&req).unwrap().links.len(), 1);
        assert_eq!(flow(&req).unwrap().links.len(), 1);
        assert!(req.atlas.is_file());
        let missing = FlowRequest {
            source: dir.path().join("nowhere"),
            ..req
        };
        let err = flow(&missing).unwrap_err();
        assert!(format!("{err:#}").contains("loading dictionary"), "{err:#}");
    }
}
