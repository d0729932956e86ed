//! Biological file formats and annotations: FASTA, UniProt TSV and flat files, GO OBO, GAF,
//! residue label sets, and a GO DAG with annotation propagation.
