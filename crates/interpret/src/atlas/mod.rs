//! The atlas: one SQLite file with everything the analysis found (schema in [`schema`]).
//!
//! [`AtlasWriter`] writes to `<path>.tmp` inside one transaction with prepared statements and
//! renames the file to `<path>` only in [`AtlasWriter::finish`]. Until then an existing atlas at
//! `<path>` is untouched, and a writer dropped without finishing (an error anywhere in the
//! analysis) deletes its temporary file: a failure leaves no atlas and no half file. The
//! temporary file needs no crash safety, so SQLite's journal and syncs are off while writing; the
//! finished file is synced before the rename.

mod export;
mod interprot;
pub mod schema;

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use crate::error::{AnalysisError, AnalysisResult};
use crate::summaries::Example;

pub use export::export_tsv;
pub use interprot::{FamilySpecificityRow, PatternRow};

/// What a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitKind {
    /// A dictionary (SAE / transcoder) latent.
    Feature,
    /// A raw model dimension (the neuron baseline).
    Neuron,
}

impl UnitKind {
    /// The atlas spelling: `feature` or `neuron`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Feature => "feature",
            UnitKind::Neuron => "neuron",
        }
    }
}

/// A row of `proteins`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProteinRow<'a> {
    pub protein: u32,
    pub accession: &'a str,
    pub length: Option<u32>,
    pub organism: Option<&'a str>,
    /// Family ids, `;`-separated.
    pub families: Option<String>,
    pub go_annotated: bool,
}

/// A row of `units`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitRow {
    /// Atlas-wide id (features first, then neurons).
    pub unit: u32,
    pub kind: UnitKind,
    /// Index within its kind (feature id or neuron dimension).
    pub index: u32,
    pub density: f64,
    pub max: f32,
    pub mean: f64,
    pub dead: bool,
    pub active_proteins: u32,
    /// Size of the foreground (study set before intersecting with a background).
    pub study_size: u32,
}

/// A row of `enrichment`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnrichmentRow<'a> {
    pub unit: u32,
    /// `go` or `pfam`.
    pub annotation: &'a str,
    pub term: &'a str,
    pub study_count: u32,
    pub study_size: u32,
    pub population_count: u32,
    pub population_size: u32,
    pub fold: f64,
    pub ln_p: f64,
    pub ln_q: f64,
}

/// A row of `concepts`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConceptRow<'a> {
    pub unit: u32,
    pub concept: &'a str,
    pub threshold: f32,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub domain_recall: f64,
    pub domain_f1: f64,
    pub train_score: f64,
}

/// A row of `coherence`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoherenceRow<'a> {
    pub unit: u32,
    pub namespace: &'a str,
    pub test: crate::coherence::CoherenceTest,
}

/// The statement [`insert_coherence_row`] fills (the writer and the merge of parts share it).
pub(crate) const COHERENCE_INSERT: &str = "INSERT INTO coherence (unit, namespace, n_terms, \
    mean_shortest_path, mean_lca_depth, null_mean_shortest_path, null_mean_lca_depth, \
    p_shortest_path, p_lca_depth, random_sets) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// One `coherence` row through a prepared [`COHERENCE_INSERT`].
pub(crate) fn insert_coherence_row(
    statement: &mut rusqlite::Statement,
    unit: u32,
    namespace: &str,
    t: &crate::coherence::CoherenceTest,
) -> rusqlite::Result<usize> {
    statement.execute(params![
        unit,
        namespace,
        t.observed.n_terms as u64,
        t.observed.mean_shortest_path,
        t.observed.mean_lca_depth,
        t.null_mean_shortest_path,
        t.null_mean_lca_depth,
        t.p_shortest_path,
        t.p_lca_depth,
        t.random_sets
    ])
}

/// Writes one atlas; see the module documentation for the guarantees.
pub struct AtlasWriter {
    path: PathBuf,
    tmp_path: PathBuf,
    connection: Option<Connection>,
}

impl AtlasWriter {
    /// Starts `<path>.tmp` (a stale one from an earlier crash is replaced) with the schema.
    pub fn create(path: &Path) -> AnalysisResult<Self> {
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp_path = PathBuf::from(tmp_name);
        remove_if_present(&tmp_path)?;
        let connection =
            Connection::open(&tmp_path).map_err(AnalysisError::sqlite(&tmp_path, "creating"))?;
        let writer = AtlasWriter {
            path: path.to_path_buf(),
            tmp_path,
            connection: Some(connection),
        };
        writer.batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA page_size = 8192;",
            "setting pragmas",
        )?;
        writer.batch(schema::CREATE_TABLES, "creating tables")?;
        writer.batch("BEGIN", "starting the transaction")?;
        Ok(writer)
    }

    /// The temporary file being written.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp_path
    }

    fn connection(&self) -> &Connection {
        // Only `finish` takes the connection, and it consumes the writer.
        self.connection
            .as_ref()
            .expect("connection is present until finish")
    }

    fn batch(&self, sql: &str, action: &str) -> AnalysisResult<()> {
        self.connection()
            .execute_batch(sql)
            .map_err(AnalysisError::sqlite(&self.tmp_path, action))
    }

    /// Runs `insert` once per item through one prepared statement.
    fn insert_all<T>(
        &self,
        table: &str,
        sql: &str,
        items: impl IntoIterator<Item = T>,
        mut insert: impl FnMut(&mut rusqlite::Statement, T) -> rusqlite::Result<usize>,
    ) -> AnalysisResult<usize> {
        let action = format!("inserting into {table}");
        let mut statement = self
            .connection()
            .prepare_cached(sql)
            .map_err(AnalysisError::sqlite(&self.tmp_path, &action))?;
        let mut count = 0;
        for item in items {
            insert(&mut statement, item).map_err(AnalysisError::sqlite(&self.tmp_path, &action))?;
            count += 1;
        }
        Ok(count)
    }

    /// Sets `meta[key] = value` (replacing an earlier value).
    pub fn set_meta(&self, key: &str, value: impl std::fmt::Display) -> AnalysisResult<()> {
        self.insert_all(
            "meta",
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            [(key, value.to_string())],
            |s, (k, v)| s.execute(params![k, v]),
        )
        .map(drop)
    }

    pub fn insert_proteins<'a>(
        &self,
        rows: impl IntoIterator<Item = ProteinRow<'a>>,
    ) -> AnalysisResult<usize> {
        self.insert_all(
            "proteins",
            "INSERT INTO proteins (protein, accession, length, organism, families, go_annotated) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rows,
            |s, r| {
                s.execute(params![
                    r.protein,
                    r.accession,
                    r.length,
                    r.organism,
                    r.families,
                    r.go_annotated
                ])
            },
        )
    }

    pub fn insert_units(&self, rows: impl IntoIterator<Item = UnitRow>) -> AnalysisResult<usize> {
        self.insert_all(
            "units",
            "INSERT INTO units (unit, kind, \"index\", density, max, mean, dead, active_proteins, \
             study_size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rows,
            |s, r| {
                s.execute(params![
                    r.unit,
                    r.kind.as_str(),
                    r.index,
                    r.density,
                    f64::from(r.max),
                    r.mean,
                    r.dead,
                    r.active_proteins,
                    r.study_size
                ])
            },
        )
    }

    /// Examples of one unit.
    pub fn insert_examples(&self, unit: u32, examples: &[Example]) -> AnalysisResult<usize> {
        self.insert_all(
            "examples",
            "INSERT INTO examples (unit, protein, activation, position, rank, kind) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            examples,
            |s, e| {
                s.execute(params![
                    unit,
                    e.protein,
                    f64::from(e.activation),
                    e.position,
                    e.rank,
                    e.kind.as_str()
                ])
            },
        )
    }

    /// `(id, name, namespace)` rows of `go_terms`.
    pub fn insert_go_terms<'a>(
        &self,
        rows: impl IntoIterator<Item = (String, &'a str, &'a str)>,
    ) -> AnalysisResult<usize> {
        self.insert_all(
            "go_terms",
            "INSERT INTO go_terms (id, name, namespace) VALUES (?1, ?2, ?3)",
            rows,
            |s, (id, name, namespace)| s.execute(params![id, name, namespace]),
        )
    }

    pub fn insert_enrichment<'a>(
        &self,
        rows: impl IntoIterator<Item = EnrichmentRow<'a>>,
    ) -> AnalysisResult<usize> {
        self.insert_all(
            "enrichment",
            "INSERT INTO enrichment (unit, annotation, term, study_count, study_size, \
             population_count, population_size, fold, p, q, ln_p, ln_q) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            rows,
            |s, r| {
                s.execute(params![
                    r.unit,
                    r.annotation,
                    r.term,
                    r.study_count,
                    r.study_size,
                    r.population_count,
                    r.population_size,
                    r.fold,
                    r.ln_p.exp(),
                    r.ln_q.exp(),
                    r.ln_p,
                    r.ln_q
                ])
            },
        )
    }

    pub fn insert_concepts<'a>(
        &self,
        rows: impl IntoIterator<Item = ConceptRow<'a>>,
    ) -> AnalysisResult<usize> {
        self.insert_all(
            "concepts",
            "INSERT INTO concepts (unit, concept, threshold, precision, recall, f1, \
             domain_recall, domain_f1, train_score) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rows,
            |s, r| {
                s.execute(params![
                    r.unit,
                    r.concept,
                    f64::from(r.threshold),
                    r.precision,
                    r.recall,
                    r.f1,
                    r.domain_recall,
                    r.domain_f1,
                    r.train_score
                ])
            },
        )
    }

    pub fn insert_coherence<'a>(
        &self,
        rows: impl IntoIterator<Item = CoherenceRow<'a>>,
    ) -> AnalysisResult<usize> {
        self.insert_all("coherence", COHERENCE_INSERT, rows, |s, r| {
            insert_coherence_row(s, r.unit, r.namespace, &r.test)
        })
    }

    /// Commits, builds the indices, syncs and renames `<path>.tmp` to `<path>`.
    pub fn finish(mut self) -> AnalysisResult<PathBuf> {
        self.batch("COMMIT", "committing")?;
        self.batch(schema::CREATE_INDICES, "creating indices")?;
        self.batch("ANALYZE", "gathering index statistics")?;
        let connection = self.connection.take().expect("present until finish");
        connection
            .close()
            .map_err(|(_, e)| AnalysisError::sqlite(&self.tmp_path, "closing")(e))?;
        plmscope_fsutil::persist(&self.tmp_path, &self.path)
            .map_err(|e| AnalysisError::io(e.path, e.action)(e.source))?;
        Ok(self.path.clone())
    }
}

impl Drop for AtlasWriter {
    fn drop(&mut self) {
        // Not finished: an error happened. Close and delete the partial file; nothing else can
        // be reported from a destructor.
        if let Some(connection) = self.connection.take() {
            drop(connection.close());
            drop(std::fs::remove_file(&self.tmp_path));
        }
    }
}

fn remove_if_present(path: &Path) -> AnalysisResult<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(AnalysisError::io(
            path,
            "removing a stale temporary atlas",
        )(e)),
        _ => Ok(()),
    }
}

/// Gathers the query planner's index statistics (`sqlite_stat1`) of the finished atlas at
/// `path` again, over every table added after [`AtlasWriter::finish`] (similar features, the
/// source): the last step of a single-process `analyze` and of a merge of parts, so both leave
/// the same statistics.
pub fn gather_statistics(path: &Path) -> AnalysisResult<()> {
    let action = "gathering index statistics";
    let db = Connection::open(path).map_err(AnalysisError::sqlite(path, action))?;
    db.execute_batch("ANALYZE")
        .map_err(AnalysisError::sqlite(path, action))
}
