//! What units mean: activation summaries, GO/family enrichment statistics, residue concept
//! scores, the neuron baseline, and the atlas database.
