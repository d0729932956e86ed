//! The per-kind figures of an atlas's descriptions (the seed paper's headline comparison: how
//! many units were described, their median score, the share with r > 0.5, features against
//! neurons).

use std::path::Path;

use rusqlite::Connection;

use super::error::{DescribeError, DescribeResult};
use super::stats::median;

/// One unit kind's descriptions by one provider and model.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct KindStats {
    /// Units with a description and a score.
    pub described: usize,
    /// Units recorded failed.
    pub failed: usize,
    pub median_pearson: Option<f64>,
    /// Share of described units with Pearson r > 0.5.
    pub share_above_half: Option<f64>,
}

/// The descriptions of one protocol, provider and model in an atlas.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DescriptionStats {
    pub protocol: String,
    pub provider: String,
    pub model: String,
    pub features: KindStats,
    pub neurons: KindStats,
}

/// Per protocol, provider and model: the described units of each kind, their median Pearson r
/// and the share with r > 0.5. Empty when the atlas holds no description. Reads only.
pub fn description_stats(atlas: &Path) -> DescribeResult<Vec<DescriptionStats>> {
    let connection = Connection::open_with_flags(atlas, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(DescribeError::sqlite(atlas, "opening"))?;
    let has_status: bool = connection
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('descriptions') WHERE name = 'status'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .unwrap_or(false);
    if !has_status {
        return Ok(Vec::new());
    }
    let action = "reading descriptions";
    let mut statement = connection
        .prepare(
            "SELECT d.protocol, d.provider, d.model, u.kind, d.status, d.pearson FROM \
             descriptions d JOIN units u ON u.unit = d.unit \
             ORDER BY d.protocol, d.provider, d.model",
        )
        .map_err(DescribeError::sqlite(atlas, action))?;
    type Row = (String, String, String, String, String, Option<f64>);
    let rows: Vec<Row> = statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(DescribeError::sqlite(atlas, action))?;
    let mut groups: Vec<(DescriptionStats, [Vec<f64>; 2])> = Vec::new();
    for (protocol, provider, model, kind, status, r) in rows {
        let position = groups.iter().position(|(g, _)| {
            g.protocol == protocol && g.provider == provider && g.model == model
        });
        let position = position.unwrap_or_else(|| {
            groups.push((
                DescriptionStats {
                    protocol,
                    provider,
                    model,
                    ..DescriptionStats::default()
                },
                [Vec::new(), Vec::new()],
            ));
            groups.len() - 1
        });
        let (group, scores) = &mut groups[position];
        let (stats, scores) = if kind == "neuron" {
            (&mut group.neurons, &mut scores[1])
        } else {
            (&mut group.features, &mut scores[0])
        };
        if status == "ok" {
            stats.described += 1;
            // A constant prediction has no correlation; it counts as described, below 0.5.
            scores.push(r.unwrap_or(f64::NAN));
        } else {
            stats.failed += 1;
        }
    }
    Ok(groups
        .into_iter()
        .map(|(mut group, [features, neurons])| {
            for (stats, scores) in [
                (&mut group.features, features),
                (&mut group.neurons, neurons),
            ] {
                if !scores.is_empty() {
                    let above = scores.iter().filter(|r| **r > 0.5).count();
                    stats.share_above_half = Some(above as f64 / scores.len() as f64);
                }
                stats.median_pearson = median(scores);
            }
            group
        })
        .collect())
}
