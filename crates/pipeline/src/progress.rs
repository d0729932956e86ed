//! How a stage reports what it is doing, without knowing how it is shown.

/// Progress sink for long stages. The command-line program draws bars from it; tests and
/// library users may pass [`NoProgress`].
pub trait Progress: Sync {
    /// A new phase of work: `what` names it, `total` counts its units (`unit`: proteins,
    /// steps, rows...) when known.
    fn start(&self, what: &str, total: Option<u64>, unit: &str);
    /// `n` more units of the current phase are done.
    fn advance(&self, n: u64);
    /// A short status line within the phase.
    fn message(&self, msg: &str);
    /// The current phase is over.
    fn finish(&self);
}

/// Discards every report.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: Option<u64>, _: &str) {}
    fn advance(&self, _: u64) {}
    fn message(&self, _: &str) {}
    fn finish(&self) {}
}
