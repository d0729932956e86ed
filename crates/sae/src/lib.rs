//! Sparse dictionaries (SAEs and transcoders): architectures, training, evaluation metrics and
//! checkpoint exchange with SAELens, sparsify, InterPLM and the seed paper's format.
