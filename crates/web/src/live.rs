//! Live encoding of a pasted sequence: ESM2 forward to the dictionary's layer and site, then
//! the dictionary's encoder (per residue, or on the residue mean at protein level, as `embed`
//! pools).

use plmscope_model::{alphabet, load_model, CaptureRequest, Esm2};
use plmscope_sae::Dictionary;
use plmscope_store::{Level, Site};

use crate::error::{WebError, WebResult};

/// ESM2's context without `<cls>`/`<eos>`.
pub const MAX_RESIDUES: usize = 1022;

/// The model and dictionary behind `/sequence`.
pub struct Live {
    model: Esm2,
    pub dictionary: Dictionary,
    pub layer: usize,
    pub site: Site,
    pub residue: bool,
    /// The atlas whose features these are (same count and level), for links.
    pub atlas: Option<usize>,
}

/// What one sequence made the features do.
pub struct Encoded {
    pub residues: usize,
    /// Per feature that fired: (index, max, per-residue values; one value at protein level).
    pub features: Vec<(usize, f32, Vec<f32>)>,
}

impl Live {
    /// Loads the model; the layer and site come from the dictionary's metadata.
    pub fn load(model: &str, dictionary: Dictionary, atlas: Option<usize>) -> WebResult<Live> {
        let (model, _) = load_model(model).map_err(|e| WebError::input(model, e.to_string()))?;
        let source = &dictionary.meta.source;
        let layer = source.layer.ok_or_else(|| {
            WebError::BadRequest(
                "the dictionary does not record its layer (meta.source.layer)".into(),
            )
        })? as usize;
        let site = source.site.unwrap_or(Site::ResidPost);
        let residue = source.level != Some(Level::Protein);
        if model.config.hidden_size != dictionary.d_in {
            return Err(WebError::BadRequest(format!(
                "the model's width {} is not the dictionary's d_in {}",
                model.config.hidden_size, dictionary.d_in
            )));
        }
        Ok(Live {
            model,
            dictionary,
            layer,
            site,
            residue,
            atlas,
        })
    }

    /// Encodes one sequence (uppercase letters of ESM's alphabet, at most 1022).
    pub fn encode(&self, sequence: &str) -> WebResult<Encoded> {
        let tokens = alphabet::tokenize(sequence).map_err(|e| {
            WebError::BadRequest(format!(
                "residue {} ({:?}) is not in ESM's alphabet",
                e.position + 1,
                e.character
            ))
        })?;
        let request = CaptureRequest {
            sites: vec![(self.layer, self.site)],
            logits: false,
        };
        let captured = self
            .model
            .forward(&[&tokens], &request)
            .map_err(|e| WebError::Internal(format!("forward pass: {e}")))?;
        let rows = captured
            .sites
            .get(&(self.layer, self.site))
            .ok_or_else(|| WebError::Internal("the forward pass captured nothing".into()))?;
        let d = captured.hidden;
        let n = sequence.chars().count();
        let residues = &rows[d..(n + 1) * d];
        let input: Vec<f32> = if self.residue {
            residues.to_vec()
        } else {
            let mut mean = vec![0.0f64; d];
            for row in residues.chunks_exact(d) {
                mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
            }
            mean.iter().map(|m| (m / n as f64) as f32).collect()
        };
        let codes = self
            .dictionary
            .encode(&input)
            .map_err(|e| WebError::Internal(format!("encode: {e}")))?;
        let width = if self.residue { n } else { 1 };
        let mut per: std::collections::HashMap<u32, Vec<f32>> = std::collections::HashMap::new();
        for r in 0..codes.rows() {
            let (features, values) = codes.row(r);
            for (&f, &v) in features.iter().zip(values) {
                per.entry(f).or_insert_with(|| vec![0.0; width])[r] = v;
            }
        }
        let mut features: Vec<(usize, f32, Vec<f32>)> = per
            .into_iter()
            .map(|(f, v)| (f as usize, v.iter().copied().fold(0.0, f32::max), v))
            .filter(|x| x.1 > 0.0)
            .collect();
        features.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(Encoded {
            residues: n,
            features,
        })
    }
}
