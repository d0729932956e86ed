//! What units mean: activation summaries, GO/family enrichment statistics, residue concept
//! scores, the neuron baseline, and the atlas database.

pub mod coherence;
pub mod concepts;
pub mod enrichment;
pub mod foreground;
pub mod hypergeom;
pub mod multiple_testing;
pub mod stats_error;
