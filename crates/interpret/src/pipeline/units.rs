//! Per-kind unit processing: summaries and foregrounds in one parallel pass over units.

use rayon::prelude::*;

use super::rules::{select, ForegroundRule};
use crate::activations::{dense_block, Activations, ProteinColumns};
use crate::enrichment::Foreground;
use crate::error::AnalysisResult;
use crate::summaries::{
    summarize_column, SparseFromDense, SummaryOptions, UnitSummary, DENSE_BLOCK,
};

/// Summaries and foregrounds of every unit of one kind (`Foreground::unit` = index in the kind).
pub(crate) struct KindUnits {
    pub summaries: Vec<UnitSummary>,
    pub foregrounds: Vec<Foreground>,
}

/// Summarises every unit and applies the (resolved) foreground rule.
pub(crate) fn process_units(
    activations: &Activations,
    n_proteins: u32,
    rule: ForegroundRule,
    options: &SummaryOptions,
) -> AnalysisResult<KindUnits> {
    let pairs: Vec<(UnitSummary, Foreground)> = match *activations {
        Activations::SparseProteins(codes) => sparse_units(
            &ProteinColumns::from_sparse(&codes, None, n_proteins)?,
            rule,
            options,
        ),
        Activations::SparseResidues { codes, rows } => sparse_units(
            &ProteinColumns::from_sparse(&codes, Some(rows), n_proteins)?,
            rule,
            options,
        ),
        Activations::DenseProteins { values, n_units } => {
            dense_units(values, n_units, None, n_proteins, rule, options)
        }
        Activations::DenseResidues {
            values,
            n_units,
            rows,
        } => dense_units(values, n_units, Some(rows), n_proteins, rule, options),
    };
    let (summaries, foregrounds) = pairs.into_iter().unzip();
    Ok(KindUnits {
        summaries,
        foregrounds,
    })
}

fn sparse_units(
    columns: &ProteinColumns,
    rule: ForegroundRule,
    options: &SummaryOptions,
) -> Vec<(UnitSummary, Foreground)> {
    (0..columns.n_units())
        .into_par_iter()
        .map(|unit| {
            let column = columns.column(unit);
            let summary = summarize_column(
                unit,
                &column,
                &columns.totals[unit as usize],
                columns.n_rows,
                columns.n_proteins,
                None,
                options,
            );
            let proteins = select(
                rule,
                column.proteins,
                column.values,
                columns.n_proteins,
                true,
            );
            (summary, Foreground { unit, proteins })
        })
        .collect()
}

fn dense_units(
    values: &[f32],
    n_units: u32,
    rows: Option<crate::activations::ResidueRows>,
    n_proteins: u32,
    rule: ForegroundRule,
    options: &SummaryOptions,
) -> Vec<(UnitSummary, Foreground)> {
    let n_rows = (values.len() / n_units as usize) as u64;
    let starts: Vec<u32> = (0..n_units).step_by(DENSE_BLOCK as usize).collect();
    starts
        .into_par_iter()
        .flat_map_iter(|start| {
            let units = start..(start + DENSE_BLOCK).min(n_units);
            let block = dense_block(values, n_units, rows, n_proteins, units.clone());
            units
                .enumerate()
                .map(|(j, unit)| {
                    let column = &block.values[j];
                    let positions = block.positions.as_ref().map(|p| p[j].as_slice());
                    let active = SparseFromDense::new(column, positions);
                    let summary = summarize_column(
                        unit,
                        &active.view(),
                        &block.totals[j],
                        n_rows,
                        n_proteins,
                        Some(column),
                        options,
                    );
                    // Proteins without residue rows have no value and are never selected.
                    let with_value: Vec<u32> = (0..n_proteins)
                        .filter(|&p| column[p as usize].is_finite())
                        .collect();
                    let values: Vec<f32> = with_value.iter().map(|&p| column[p as usize]).collect();
                    let proteins = select(rule, &with_value, &values, n_proteins, false);
                    (summary, Foreground { unit, proteins })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}
