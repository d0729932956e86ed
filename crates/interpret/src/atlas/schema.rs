//! The atlas schema (ARCHITECTURE.md "Atlas"). Column names never differ only by case (SQLite
//! ignores case), so the goatools quantities are spelled out (`study_count`, not `k`).
//! `units."index"` is the unit's index within its kind; `index` is an SQL keyword, so queries
//! quote it.
//!
//! InterProt's measures (Adams et al. 2025), written when their inputs are given:
//! - `family_specificity` (families given): one row per unit and family of the unit's
//!   top-activating protein (`top_protein`). `threshold` is on the activation divided by the
//!   unit's maximum over proteins, chosen from 0.3, 0.4, ..., 0.9 by F1 on the training half
//!   (`train_f1`; 0 when none reached F1 > 0); `threshold_activation` is the same in raw units;
//!   `precision`, `recall`, `f1`, `accuracy` are on the other half, `family_size` counts members
//!   among all proteins, `test_family_size` among the reporting half. The split and rule are in
//!   `meta.family_specificity` ([`crate::family_f1`]).
//! - `unit_patterns` (residue-level units): one row per unit, `class` one of `dead`,
//!   `not_enough_data`, `periodic`, `point`, `short_motif`, `medium_motif`, `long_motif`,
//!   `whole`, `other`, with the statistics that decided it: `examples` (proteins above 0.75 of
//!   the maximum, at most 12), `mean_fraction_active`, `median_contigs`,
//!   `median_top_motif_length`, `median_motif_length`, `freq_top_two_period`, `top_period`
//!   (NULL without two contigs) ([`crate::patterns`]).

/// Tables, created on an empty database.
pub const CREATE_TABLES: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE proteins (
    protein      INTEGER PRIMARY KEY,
    accession    TEXT NOT NULL,
    length       INTEGER,
    organism     TEXT,
    families     TEXT,
    go_annotated INTEGER NOT NULL
);
CREATE TABLE units (
    unit            INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('feature', 'neuron')),
    "index"         INTEGER NOT NULL,
    density         REAL NOT NULL,
    max             REAL NOT NULL,
    mean            REAL NOT NULL,
    dead            INTEGER NOT NULL,
    active_proteins INTEGER NOT NULL,
    study_size      INTEGER NOT NULL,
    UNIQUE (kind, "index")
);
CREATE TABLE examples (
    unit       INTEGER NOT NULL,
    protein    INTEGER NOT NULL,
    activation REAL NOT NULL,
    position   INTEGER,
    rank       INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('top', 'quantile', 'random'))
);
CREATE TABLE go_terms (
    id        TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    namespace TEXT NOT NULL
);
CREATE TABLE enrichment (
    unit             INTEGER NOT NULL,
    annotation       TEXT NOT NULL,
    term             TEXT NOT NULL,
    study_count      INTEGER NOT NULL,
    study_size       INTEGER NOT NULL,
    population_count INTEGER NOT NULL,
    population_size  INTEGER NOT NULL,
    fold             REAL NOT NULL,
    p                REAL NOT NULL,
    q                REAL NOT NULL,
    ln_p             REAL NOT NULL,
    ln_q             REAL NOT NULL
);
CREATE TABLE concepts (
    unit          INTEGER NOT NULL,
    concept       TEXT NOT NULL,
    threshold     REAL NOT NULL,
    precision     REAL NOT NULL,
    recall        REAL NOT NULL,
    f1            REAL NOT NULL,
    domain_recall REAL NOT NULL,
    domain_f1     REAL NOT NULL,
    train_score   REAL NOT NULL
);
CREATE TABLE descriptions (
    unit          INTEGER NOT NULL,
    provider      TEXT NOT NULL,
    model         TEXT NOT NULL,
    text          TEXT NOT NULL,
    prompt_sha256 TEXT NOT NULL,
    pearson       REAL,
    spearman      REAL,
    auroc         REAL
);
CREATE TABLE coherence (
    unit                    INTEGER NOT NULL,
    namespace               TEXT NOT NULL,
    n_terms                 INTEGER NOT NULL,
    mean_shortest_path      REAL,
    mean_lca_depth          REAL,
    null_mean_shortest_path REAL,
    null_mean_lca_depth     REAL,
    p_shortest_path         REAL,
    p_lca_depth             REAL,
    random_sets             INTEGER NOT NULL
);
CREATE TABLE family_specificity (
    unit                 INTEGER NOT NULL,
    family               TEXT NOT NULL,
    top_protein          INTEGER NOT NULL,
    threshold            REAL NOT NULL,
    threshold_activation REAL NOT NULL,
    train_f1             REAL NOT NULL,
    precision            REAL NOT NULL,
    recall               REAL NOT NULL,
    f1                   REAL NOT NULL,
    accuracy             REAL NOT NULL,
    family_size          INTEGER NOT NULL,
    test_family_size     INTEGER NOT NULL
);
CREATE TABLE unit_patterns (
    unit                    INTEGER PRIMARY KEY,
    class                   TEXT NOT NULL,
    examples                INTEGER NOT NULL,
    mean_fraction_active    REAL NOT NULL,
    median_contigs          REAL NOT NULL,
    median_top_motif_length REAL NOT NULL,
    median_motif_length     REAL NOT NULL,
    freq_top_two_period     REAL NOT NULL,
    top_period              INTEGER
);
"#;

/// Indices, built after the bulk inserts (cheaper than maintaining them row by row).
pub const CREATE_INDICES: &str = r#"
CREATE INDEX enrichment_unit ON enrichment (unit);
CREATE INDEX enrichment_term ON enrichment (term);
CREATE INDEX enrichment_q ON enrichment (q);
CREATE INDEX examples_unit ON examples (unit);
CREATE INDEX concepts_unit ON concepts (unit);
CREATE INDEX concepts_concept ON concepts (concept);
CREATE INDEX coherence_unit ON coherence (unit);
CREATE INDEX descriptions_unit ON descriptions (unit);
CREATE INDEX family_specificity_unit ON family_specificity (unit);
CREATE INDEX family_specificity_family ON family_specificity (family);
"#;
