//! One atlas, opened read-only: its meta table, a small pool of read-only connections, and
//! where its inputs (code set, activation set, FASTA) are on this machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use crate::error::{WebError, WebResult};
use crate::tracks::Tracks;

/// An atlas file served read-only.
pub struct Atlas {
    /// Position in the command line (the `{atlas}` of the URLs).
    pub id: usize,
    pub path: PathBuf,
    /// File name without `.sqlite`.
    pub name: String,
    /// `protein` or `residue` (meta `feature_level`).
    pub level: String,
    /// Significance level of the enrichment (meta `alpha`, 0.05 when absent).
    pub alpha: f64,
    /// First unit id of each kind (`units.unit = offset + index`).
    pub feature_offset: i64,
    pub neuron_offset: i64,
    pub meta: BTreeMap<String, String>,
    /// Optional tables present in this file.
    pub has_descriptions: bool,
    pub has_protein_activations: bool,
    pub has_protein_info: bool,
    pub has_similar_units: bool,
    /// `plmscope flow`'s links (`flow_links`).
    pub has_flow_links: bool,
    /// Residue tracks, when the code and activation sets named in `meta.inputs` were found.
    pub tracks: Option<Tracks>,
    pool: Mutex<Vec<Connection>>,
}

/// Opens `path` read-only (never created, never written).
pub fn open_read_only(path: &Path) -> WebResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)
        .map_err(|e| WebError::input(path, format!("cannot open the atlas read-only: {e}")))?;
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| WebError::input(path, e.to_string()))?;
    Ok(connection)
}

impl Atlas {
    /// Opens an atlas and checks that it is one (meta `format` = `plmscope.atlas`).
    pub fn open(id: usize, path: &Path) -> WebResult<Atlas> {
        let connection = open_read_only(path)?;
        let bad = |e: rusqlite::Error| {
            WebError::input(path, format!("not a plmscope atlas (reading meta: {e})"))
        };
        let meta: BTreeMap<String, String> = {
            let mut statement = connection
                .prepare("SELECT key, value FROM meta")
                .map_err(bad)?;
            let rows = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(bad)?;
            rows.collect::<Result<_, _>>().map_err(bad)?
        };
        if meta.get("format").map(String::as_str) != Some("plmscope.atlas") {
            return Err(WebError::input(path, "meta.format is not plmscope.atlas"));
        }
        let tables: Vec<String> = {
            let mut statement = connection
                .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
                .map_err(bad)?;
            let rows = statement.query_map([], |row| row.get(0)).map_err(bad)?;
            rows.collect::<Result<_, _>>().map_err(bad)?
        };
        let has = |t: &str| tables.iter().any(|n| n == t);
        let offset = |kind: &str| -> i64 {
            // "units.unit = 1280 + index"
            meta.get(&format!("{kind}_unit_ids"))
                .and_then(|v| v.split('=').nth(1))
                .and_then(|v| v.split('+').next())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".sqlite").to_string())
            .unwrap_or_else(|| format!("atlas{id}"));
        let level = meta
            .get("feature_level")
            .cloned()
            .unwrap_or_else(|| "protein".into());
        let alpha = meta
            .get("alpha")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.05);
        let tracks = Tracks::find(path, &meta, &level);
        Ok(Atlas {
            id,
            path: path.to_path_buf(),
            name,
            level,
            alpha,
            feature_offset: offset("feature"),
            neuron_offset: offset("neuron"),
            has_descriptions: has("descriptions"),
            has_protein_activations: has("protein_activations"),
            has_protein_info: has("protein_info"),
            has_similar_units: has("similar_units"),
            has_flow_links: has("flow_links"),
            meta,
            tracks,
            pool: Mutex::new(vec![connection]),
        })
    }

    /// Runs `f` on a pooled read-only connection.
    pub fn with<R>(&self, f: impl FnOnce(&Connection) -> WebResult<R>) -> WebResult<R> {
        let pooled = self
            .pool
            .lock()
            .map_err(|_| WebError::Internal("pool poisoned".into()))?
            .pop();
        let connection = match pooled {
            Some(c) => c,
            None => open_read_only(&self.path)?,
        };
        let result = f(&connection);
        if let Ok(mut pool) = self.pool.lock() {
            if pool.len() < 16 {
                pool.push(connection);
            }
        }
        result
    }

    /// Whether this atlas's features come from the dictionary at `sae`: the code set's recorded
    /// dictionary is that folder when the code set is here; otherwise the feature count and
    /// level match and no other atlas given matches as well (`unique_by_size`).
    pub fn uses_dictionary(
        &self,
        sae: &Path,
        d_sae: usize,
        level: &str,
        unique_by_size: bool,
    ) -> bool {
        if let Some(id) = self.tracks.as_ref().and_then(|t| t.dictionary_id()) {
            let recorded = resolve_input(&self.path, &id).and_then(|p| p.canonicalize().ok());
            return recorded.is_some() && recorded == sae.canonicalize().ok();
        }
        unique_by_size && self.level == level && self.feature_units() == Some(d_sae)
    }

    /// `meta.feature_units`.
    pub fn feature_units(&self) -> Option<usize> {
        self.meta.get("feature_units").and_then(|v| v.parse().ok())
    }

    /// The unit's kind and index from its id.
    pub fn kind_of(&self, unit: i64) -> (&'static str, i64) {
        if self.neuron_offset > self.feature_offset && unit >= self.neuron_offset {
            ("neuron", unit - self.neuron_offset)
        } else {
            ("feature", unit - self.feature_offset)
        }
    }
}

/// Finds a path recorded relative to the directory `analyze` ran in: tried as given, then
/// against the atlas's folder and each folder above it.
pub fn resolve_input(atlas: &Path, recorded: &str) -> Option<PathBuf> {
    let recorded = Path::new(recorded);
    if recorded.exists() {
        return Some(recorded.to_path_buf());
    }
    if recorded.is_absolute() {
        return None;
    }
    let atlas = atlas.canonicalize().ok()?;
    atlas
        .ancestors()
        .skip(1)
        .map(|base| base.join(recorded))
        .find(|p| p.exists())
}
