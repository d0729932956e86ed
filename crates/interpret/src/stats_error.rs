//! The error type of the statistics modules (`hypergeom`, `multiple_testing`, `enrichment`,
//! `foreground`, `concepts`, `coherence`). Every variant says which input is wrong, where
//! (unit, protein, row or position) and what would fix it.

/// Result alias for the statistics modules.
pub type StatsResult<T> = std::result::Result<T, StatsError>;

/// Everything the statistics code refuses to compute.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// Counts that cannot describe a draw from a finite population.
    #[error(
        "hypergeometric counts are inconsistent: study set of {n_study} and {k_pop} successes \
         in a population of {n_pop} (both must be at most the population size)"
    )]
    InconsistentCounts {
        n_study: u32,
        k_pop: u32,
        n_pop: u32,
    },

    /// A p-value (given as ln p) that is not a probability.
    #[error("p-value at position {position} has ln p = {ln_p}; it must be a number <= 0")]
    InvalidLnP { position: usize, ln_p: f64 },

    /// Fewer tests declared than p-values given.
    #[error(
        "{given} p-values were given but only {total_tests} tests declared; \
         the number of tests made must be at least the number of p-values"
    )]
    TooFewTests { given: usize, total_tests: usize },

    /// A list that must be sorted and free of duplicates is not.
    #[error("{what}: entry {position} ({value}) is not greater than the one before; sort and deduplicate it")]
    NotStrictlySorted {
        what: String,
        position: usize,
        value: u64,
    },

    /// An id beyond the range the input declared.
    #[error("{what}: id {id} at position {position} is out of range (there are {limit})")]
    IdOutOfRange {
        what: String,
        position: usize,
        id: u64,
        limit: u64,
    },

    /// Two inputs that must have the same length do not.
    #[error("{what}: expected length {expected}, got {actual}")]
    LengthMismatch {
        what: String,
        expected: usize,
        actual: usize,
    },

    /// A parameter outside its valid range.
    #[error("invalid parameter {name} = {value}: {requirement}")]
    InvalidParameter {
        name: String,
        value: String,
        requirement: String,
    },
}
