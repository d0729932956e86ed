//! What units mean: activation summaries, GO/family enrichment statistics, residue concept
//! scores, the neuron baseline, and the atlas database.
//!
//! Units are SAE features or model neurons; [`pipeline::analyze`] runs both through the same
//! statistics into one atlas ([`atlas`]), so "how many features vs neurons map to a GO term or
//! concept, and how many distinct terms they cover" is one query.

pub mod activations;
pub mod atlas;
pub mod coherence;
pub mod compare;
pub mod concepts;
pub mod describe;
pub mod enrichment;
pub mod error;
pub mod family_f1;
pub mod flow;
pub mod foreground;
pub mod go_graph;
pub mod hypergeom;
pub mod multiple_testing;
pub mod patterns;
pub mod pipeline;
pub mod probe;
pub mod provenance;
pub mod similar;
pub mod stats_error;
pub mod summaries;

pub use error::{AnalysisError, AnalysisResult};
pub use pipeline::{analyze, AnalysisInputs, AnalysisOptions, AnalysisSummary};
