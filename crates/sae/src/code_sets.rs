//! Encoding an activation set into a code set: CSR codes, one code shard per activation shard,
//! streamed shard by shard; a rerun skips shards already complete (the store's writer rules).

use std::path::Path;

use plmscope_store::{ActivationSet, CodeSetHeader, CodeSetWriter, CsrRows, DictionaryRef};

use crate::dictionary::Dictionary;
use crate::error::{Result, SaeError};

/// What [`encode_set`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeSummary {
    /// Shards of the set.
    pub shards: usize,
    /// Shards encoded by this call.
    pub written: usize,
    /// Shards found complete and left alone.
    pub skipped: usize,
    /// Rows encoded by this call.
    pub rows: usize,
    /// Non-zero codes written by this call.
    pub nnz: u64,
}

/// Encodes every row of `set` with `dict` into the code set in `out` (created, or resumed when
/// it holds the same header), reading and writing one shard at a time in blocks of
/// `block_rows` rows. `on_shard(shard, rows, skipped)` is called after each shard.
pub fn encode_set(
    dict: &Dictionary,
    dictionary: DictionaryRef,
    set: &ActivationSet,
    out: &Path,
    extra: serde_json::Value,
    block_rows: usize,
    mut on_shard: impl FnMut(usize, usize, bool),
) -> Result<EncodeSummary> {
    if dict.d_in != set.d_model() {
        return Err(SaeError::Config(format!(
            "the dictionary takes rows of width d_in = {}, but {} holds rows of width {}",
            dict.d_in,
            set.dir().display(),
            set.d_model()
        )));
    }
    let header = CodeSetHeader::for_activation_set(set, dictionary, extra);
    let mut writer = CodeSetWriter::create_or_resume(out, header)?;
    let mut summary = EncodeSummary {
        shards: writer.shard_count(),
        written: 0,
        skipped: 0,
        rows: 0,
        nnz: 0,
    };
    let mut first_row = 0;
    let mut x = Vec::new();
    for (shard, record) in set.manifest().shards.iter().enumerate() {
        let rows = record.rows;
        if writer.is_shard_complete(shard) {
            summary.skipped += 1;
            on_shard(shard, rows, true);
            first_row += rows;
            continue;
        }
        let mut csr = CsrRows::new();
        let mut start = first_row;
        while start < first_row + rows {
            let count = (first_row + rows - start).min(block_rows.max(1));
            set.read_rows(start, count, &mut x)?;
            let codes = dict.encode(&x)?;
            for r in 0..codes.rows() {
                let (features, values) = codes.row(r);
                csr.push_row(features, values);
            }
            start += count;
        }
        summary.nnz += csr.nnz() as u64;
        writer.write_shard(shard, &csr)?;
        summary.written += 1;
        summary.rows += rows;
        on_shard(shard, rows, false);
        first_row += rows;
    }
    writer.finish(serde_json::json!({}))?;
    Ok(summary)
}
