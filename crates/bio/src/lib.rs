//! Biological file formats and annotations for plmscope: FASTA, TMbed residue labels, UniProt TSV
//! and flat files, GO OBO, GAF, the per-proteome GO CSV, Pfam clans and bindEmbed21 binding
//! residues; a protein annotation table; and a GO DAG with annotation propagation.
//!
//! Every reader streams (`BufRead`), opens plain or gzip files alike (told apart by their magic
//! bytes), and reports problems as a [`BioError`] naming the file, the 1-based line, what is
//! wrong and what to do.
//!
//! ```no_run
//! use plmscope_bio::{AnnotationTable, FastaReader, GoCsvReader, GoDag};
//!
//! # fn main() -> Result<(), plmscope_bio::BioError> {
//! for record in FastaReader::open("proteome.fasta.gz")? {
//!     let record = record?;
//!     println!("{} {}", record.id, record.sequence.len());
//! }
//! let table: AnnotationTable = GoCsvReader::open("proteome_go.csv")?
//!     .map(|row| row.map(|r| r.into_annotation()))
//!     .collect::<Result<_, _>>()?;
//! let dag = GoDag::open("go-basic.obo")?;
//! let (propagated, report) = dag.propagate(table.go_sets());
//! println!("{} proteins, {} unknown ids", propagated.len(), report.unknown.len());
//! # Ok(())
//! # }
//! ```

pub mod annotations;
pub mod binding_sites;
pub mod error;
pub mod fasta;
pub mod features;
pub mod gaf;
pub mod go_csv;
pub mod go_dag;
mod graph;
pub mod ids;
pub mod input;
pub mod obo;
pub mod pfam_clans;
pub mod tmbed;
pub mod uniprot_dat;
pub mod uniprot_tsv;

pub use annotations::{AnnotationTable, ProteinAnnotation};
pub use binding_sites::{BindingResidues, BindingResiduesReader};
pub use error::{BioError, Result};
pub use fasta::{FastaReader, FastaRecord};
pub use features::{EndCertainty, FeatureEnd, FeatureKind, ResidueFeature};
pub use gaf::{GafReader, GafRecord, GafSummary};
pub use go_csv::{GoCsvReader, GoCsvRow};
pub use go_dag::{GoDag, PropagatedAnnotation, PropagationReport, Resolution, TermIndex};
pub use ids::{uniprot_accession, GoId, Namespace};
pub use obo::{OboDocument, OboTerm, RelationType, Relationship};
pub use pfam_clans::{PfamClansReader, PfamFamily};
pub use tmbed::{ResidueClass, TmbedLabel, TmbedReader, TmbedRecord};
pub use uniprot_dat::UniProtDatReader;
pub use uniprot_tsv::UniProtTsvReader;
