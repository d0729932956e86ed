//! The in-memory index built at startup, read by every request without a lock: one summary
//! row per unit (best GO term, Pfam, concept, family, pattern class, description score) with
//! each atlas's rows pre-sorted by every sort key of the features list ([`units`]), the
//! proteins and the units each tops, and a word index over GO ids and names, Pfam ids, protein
//! accessions, names and description text ([`text`]). The atlases stay read-only.

mod load;
mod text;
mod units;

use std::collections::HashMap;

pub(crate) use text::{Doc, TextQuery};
pub(crate) use units::{Sort, UnitFilter, UnitRow};

use crate::atlas::Atlas;
use crate::error::{WebError, WebResult};
use text::{TextIndex, TextIndexBuilder};

/// A protein as the index knows it.
pub struct ProteinEntry {
    pub index: i64,
    pub accession: String,
    pub length: Option<i64>,
    /// Pfam families, `;`-separated.
    pub families: String,
    /// Name and gene (protein_info), when the atlas has them.
    pub name: String,
}

/// A stored top example: the unit reached `activation` on the protein.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Top {
    pub unit: i64,
    pub activation: f64,
}

/// One atlas's part of the index.
struct AtlasIndex {
    /// In the atlas's `units` order.
    units: Vec<UnitRow>,
    row_of_unit: HashMap<i64, u32>,
    /// Per sort key (as [`Sort::ALL`]), rows in that order.
    orders: Vec<Vec<u32>>,
    proteins: Vec<ProteinEntry>,
    row_of_accession: HashMap<String, u32>,
    /// Protein index → its top examples, in the atlas's order.
    tops: HashMap<i64, Vec<Top>>,
}

/// The startup index (plain data: no lock on any request).
pub struct Index {
    atlases: Vec<AtlasIndex>,
    text: TextIndex,
}

/// A page of a list: the rows matching, how many match in all.
pub(crate) struct Page<'a> {
    pub total: usize,
    pub rows: Vec<&'a UnitRow>,
}

/// What a search found: every matching unit (best GO q first, at most `limit`) and how many
/// matched, and the first matching proteins in atlas order.
pub(crate) struct Found<'a> {
    pub units: Vec<&'a UnitRow>,
    pub units_total: usize,
    pub proteins: Vec<(usize, &'a ProteinEntry)>,
}

impl Index {
    /// Builds the index over every atlas.
    pub fn build(atlases: &[Atlas]) -> WebResult<Index> {
        let mut text = TextIndexBuilder::new()?;
        let mut out = Vec::with_capacity(atlases.len());
        for atlas in atlases {
            let part = atlas
                .with(|c| load::atlas(atlas, c, &mut text))
                .map_err(|e| WebError::input(&atlas.path, format!("building the index: {e}")))?;
            out.push(part);
        }
        Ok(Index {
            atlases: out,
            text: text.finish()?,
        })
    }

    fn part(&self, atlas: usize) -> WebResult<&AtlasIndex> {
        self.atlases
            .get(atlas)
            .ok_or_else(|| WebError::NotFound(format!("no atlas {atlas}")))
    }

    /// A unit's summary row.
    pub(crate) fn unit(&self, atlas: usize, unit: i64) -> Option<&UnitRow> {
        let a = self.atlases.get(atlas)?;
        a.row_of_unit.get(&unit).map(|&r| &a.units[r as usize])
    }

    /// The protein of an accession in an atlas.
    pub fn protein(&self, atlas: usize, accession: &str) -> WebResult<Option<&ProteinEntry>> {
        let a = self.part(atlas)?;
        Ok(a.row_of_accession
            .get(accession)
            .map(|&r| &a.proteins[r as usize]))
    }

    /// The stored top examples on a protein (activation > 0), in the atlas's order.
    pub(crate) fn tops(&self, atlas: usize, protein: i64) -> &[Top] {
        self.atlases
            .get(atlas)
            .and_then(|a| a.tops.get(&protein))
            .map_or(&[], Vec::as_slice)
    }

    /// Rows `offset..offset + limit` of the units of `atlas` that pass `filter`, in `sort`
    /// order, and how many pass.
    pub(crate) fn list(
        &self,
        atlas: usize,
        sort: Sort,
        filter: &UnitFilter,
        offset: usize,
        limit: usize,
    ) -> WebResult<Page<'_>> {
        let a = self.part(atlas)?;
        let which = Sort::ALL.iter().position(|&s| s == sort).unwrap_or(0);
        let mut total = 0;
        let mut rows = Vec::with_capacity(limit);
        for &r in &a.orders[which] {
            let u = &a.units[r as usize];
            if filter.matches(u) {
                if total >= offset && rows.len() < limit {
                    rows.push(u);
                }
                total += 1;
            }
        }
        Ok(Page { total, rows })
    }

    /// Units and proteins matching a word search over every atlas.
    pub(crate) fn search(&self, query: &TextQuery, units: usize, proteins: usize) -> Found<'_> {
        let mut found = Found {
            units: Vec::new(),
            units_total: 0,
            proteins: Vec::new(),
        };
        for doc in self.text.search(query) {
            match doc {
                Doc::Unit { atlas, row } => {
                    found
                        .units
                        .push(&self.atlases[atlas as usize].units[row as usize]);
                }
                Doc::Protein { atlas, row } if found.proteins.len() < proteins => {
                    let a = atlas as usize;
                    found
                        .proteins
                        .push((a, &self.atlases[a].proteins[row as usize]));
                }
                Doc::Protein { .. } => {}
            }
        }
        found.units_total = found.units.len();
        found.units.sort_by(|a, b| units::by_go_q(a, b));
        found.units.truncate(units);
        found
    }
}
