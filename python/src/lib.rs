//! `plmscope._plmscope`: PyO3 bindings over the library crates (no logic of their own). The
//! Python-facing names, docs and types are in `plmscope/__init__.py` and `plmscope/__init__.pyi`.
//!
//! Errors are the library crates' errors with the same text the CLI prints, raised as
//! `plmscope.PlmscopeError`.

use std::path::PathBuf;

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use plmscope_sae::dictionary::SparseCodes;
use plmscope_store::{ActivationSet as StoreSet, CsrRows};
use pyo3::exceptions::{PyException, PyIndexError, PyKeyError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

pyo3::create_exception!(
    _plmscope,
    PlmscopeError,
    PyException,
    "An error from plmscope, with the message the command-line tool prints."
);

fn err(e: impl std::fmt::Display) -> PyErr {
    PlmscopeError::new_err(e.to_string())
}

/// An activation set on disk, memory-mapped; arrays are read protein by protein.
#[pyclass(module = "plmscope._plmscope")]
struct ActivationSet {
    set: StoreSet,
}

#[pymethods]
impl ActivationSet {
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        Ok(ActivationSet {
            set: StoreSet::open(&path).map_err(err)?,
        })
    }

    #[getter]
    fn ids(&self) -> Vec<String> {
        self.set.proteins().iter().map(|p| p.id.clone()).collect()
    }

    #[getter]
    fn lengths(&self) -> Vec<usize> {
        self.set.proteins().iter().map(|p| p.length).collect()
    }

    #[getter]
    fn d_model(&self) -> usize {
        self.set.d_model()
    }

    #[getter]
    fn rows(&self) -> usize {
        self.set.rows()
    }

    #[getter]
    fn level(&self) -> String {
        self.set.level().to_string()
    }

    #[getter]
    fn layer(&self) -> usize {
        self.set.header().layer
    }

    #[getter]
    fn site(&self) -> String {
        self.set.header().site.to_string()
    }

    #[getter]
    fn model(&self) -> String {
        self.set.header().model.id.clone()
    }

    fn __len__(&self) -> usize {
        self.set.proteins().len()
    }

    /// Protein `index` (int) or id (str) as a float32 array [rows, d_model].
    fn protein<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let index = if let Ok(i) = key.extract::<isize>() {
            let n = self.set.proteins().len() as isize;
            let j = if i < 0 { i + n } else { i };
            if j < 0 || j >= n {
                return Err(PyIndexError::new_err(format!(
                    "protein index {i} out of range ({n} proteins)"
                )));
            }
            j as usize
        } else {
            let id: String = key.extract()?;
            self.set
                .proteins()
                .iter()
                .position(|p| p.id == id)
                .ok_or_else(|| {
                    PyKeyError::new_err(format!(
                        "no protein {id:?} in {}",
                        self.set.dir().display()
                    ))
                })?
        };
        let range = self.set.protein_rows(index);
        self.read(py, range.start, range.len())
    }

    /// Rows `start .. start + count` (global row numbers) as float32 [count, d_model].
    fn read<'py>(
        &self,
        py: Python<'py>,
        start: usize,
        count: usize,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let mut values = Vec::new();
        self.set.read_rows(start, count, &mut values).map_err(err)?;
        let array = Array2::from_shape_vec((count, self.set.d_model()), values).map_err(err)?;
        Ok(array.into_pyarray(py))
    }
}

/// A dictionary (SAE or transcoder) in any format plmscope reads.
#[pyclass(module = "plmscope._plmscope")]
struct Dictionary {
    dictionary: plmscope_sae::dictionary::Dictionary,
}

#[pymethods]
impl Dictionary {
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        Ok(Dictionary {
            dictionary: plmscope_sae::io::load(&path).map_err(err)?,
        })
    }

    #[getter]
    fn d_in(&self) -> usize {
        self.dictionary.d_in
    }

    #[getter]
    fn d_sae(&self) -> usize {
        self.dictionary.d_sae
    }

    #[getter]
    fn d_out(&self) -> usize {
        self.dictionary.d_out
    }

    /// Dense codes float32 [rows, d_sae] of x float32 [rows, d_in].
    fn encode<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (rows, d) = (x.shape()[0], x.shape()[1]);
        if d != self.dictionary.d_in {
            return Err(err(format!(
                "x has {d} columns, the dictionary takes d_in = {}",
                self.dictionary.d_in
            )));
        }
        let input = x
            .as_slice()
            .map(<[f32]>::to_vec)
            .unwrap_or_else(|_| x.as_array().iter().copied().collect());
        let codes = py.detach(|| self.dictionary.encode(&input)).map_err(err)?;
        let d_sae = self.dictionary.d_sae;
        let mut dense = vec![0f32; rows * d_sae];
        for r in 0..codes.rows() {
            let (features, values) = codes.csr.row(r);
            for (&f, &v) in features.iter().zip(values) {
                dense[r * d_sae + f as usize] = v;
            }
        }
        Ok(Array2::from_shape_vec((rows, d_sae), dense)
            .map_err(err)?
            .into_pyarray(py))
    }

    /// Reconstruction float32 [rows, d_out] of dense codes z float32 [rows, d_sae]. For a
    /// dictionary that LayerNorms its inputs the result is in normalised units (the row
    /// statistics are not in z); `reconstruct(x)` undoes them.
    fn decode<'py>(
        &self,
        py: Python<'py>,
        z: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let d_sae = self.dictionary.d_sae;
        if z.shape()[1] != d_sae {
            return Err(err(format!(
                "z has {} columns, the dictionary has d_sae = {d_sae}",
                z.shape()[1]
            )));
        }
        let z = z.as_array();
        let mut csr = CsrRows::new();
        for row in z.rows() {
            let (mut f, mut v) = (Vec::new(), Vec::new());
            for (i, &x) in row.iter().enumerate() {
                if x != 0.0 {
                    f.push(i as u32);
                    v.push(x);
                }
            }
            csr.push_row(&f, &v);
        }
        let rows = csr.rows();
        let codes = SparseCodes {
            d_sae,
            csr,
            row_norm: None,
        };
        let out = py.detach(|| self.dictionary.decode(&codes)).map_err(err)?;
        Ok(Array2::from_shape_vec((rows, self.dictionary.d_out), out)
            .map_err(err)?
            .into_pyarray(py))
    }

    /// encode then decode in one call (LayerNorm statistics kept), float32 [rows, d_out].
    fn reconstruct<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let rows = x.shape()[0];
        let input: Vec<f32> = x.as_array().iter().copied().collect();
        let out = py
            .detach(|| self.dictionary.forward(&input).map(|(_, out)| out))
            .map_err(err)?;
        Ok(Array2::from_shape_vec((rows, self.dictionary.d_out), out)
            .map_err(err)?
            .into_pyarray(py))
    }
}

/// An ESM2 model (a checkpoint directory or file, or a hub id resolved through the HF cache).
#[pyclass(module = "plmscope._plmscope")]
struct Model {
    model: plmscope_model::Esm2,
    #[pyo3(get)]
    id: String,
    #[pyo3(get)]
    arch: String,
    #[pyo3(get)]
    weights_sha256: String,
}

#[pymethods]
impl Model {
    #[new]
    fn new(path_or_hub_id: &str) -> PyResult<Self> {
        let (model, info) = plmscope_model::load_model(path_or_hub_id).map_err(err)?;
        Ok(Model {
            model,
            id: info.id,
            arch: info.arch,
            weights_sha256: info.weights_sha256,
        })
    }

    #[getter]
    fn num_layers(&self) -> usize {
        self.model.config.num_hidden_layers
    }

    #[getter]
    fn d_model(&self) -> usize {
        self.model.config.hidden_size
    }

    /// {layer: [float32 [L_i, d] per sequence]} of `site` (resid_post, mlp_in, mlp_out), the
    /// residue rows only (no <cls>/<eos>), one forward pass per sequence.
    #[pyo3(signature = (sequences, layers, site = "resid_post"))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        sequences: Vec<String>,
        layers: Vec<usize>,
        site: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let site: plmscope_model::Site = match site {
            "resid_post" => plmscope_model::Site::ResidPost,
            "mlp_in" => plmscope_model::Site::MlpIn,
            "mlp_out" => plmscope_model::Site::MlpOut,
            other => {
                return Err(err(format!(
                    "unknown site {other:?}; expected resid_post, mlp_in or mlp_out"
                )))
            }
        };
        let request = plmscope_model::CaptureRequest {
            sites: layers.iter().map(|&l| (l, site)).collect(),
            logits: false,
        };
        let mut per_layer: Vec<Vec<Bound<'py, PyArray2<f32>>>> = vec![Vec::new(); layers.len()];
        for (i, sequence) in sequences.iter().enumerate() {
            let tokens = plmscope_model::alphabet::tokenize(sequence).map_err(|e| {
                err(format!(
                    "sequence {i}: residue {:?} at position {} is not in the ESM alphabet",
                    e.character, e.position
                ))
            })?;
            let captured = py
                .detach(|| self.model.forward(&[&tokens], &request))
                .map_err(err)?;
            let d = captured.hidden;
            let residues = tokens.len() - 2;
            for (slot, &layer) in layers.iter().enumerate() {
                let rows = &captured.sites[&(layer, site)];
                let values = rows[d..(residues + 1) * d].to_vec();
                per_layer[slot].push(
                    Array2::from_shape_vec((residues, d), values)
                        .map_err(err)?
                        .into_pyarray(py),
                );
            }
        }
        let out = PyDict::new(py);
        for (layer, arrays) in layers.iter().zip(per_layer) {
            out.set_item(layer, arrays)?;
        }
        Ok(out)
    }
}

/// Table names of an atlas.
#[pyfunction]
fn atlas_tables(path: PathBuf) -> PyResult<Vec<String>> {
    let db = open_atlas(&path)?;
    let mut s = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .map_err(err)?;
    let names = s
        .query_map([], |r| r.get(0))
        .map_err(err)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(err)?;
    Ok(names)
}

fn open_atlas(path: &std::path::Path) -> PyResult<rusqlite::Connection> {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| err(format!("{}: opening read-only: {e}", path.display())))
}

/// One atlas table as {column: list}, columns in table order.
#[pyfunction]
fn atlas_table<'py>(py: Python<'py>, path: PathBuf, table: &str) -> PyResult<Bound<'py, PyDict>> {
    let db = open_atlas(&path)?;
    if !atlas_tables(path.clone())?.iter().any(|t| t == table) {
        return Err(PyKeyError::new_err(format!(
            "{}: no table {table:?}",
            path.display()
        )));
    }
    let mut s = db
        .prepare(&format!("SELECT * FROM \"{}\"", table.replace('"', "\"\"")))
        .map_err(err)?;
    let names: Vec<String> = s.column_names().iter().map(|c| c.to_string()).collect();
    let columns: Vec<Bound<'py, PyList>> = names.iter().map(|_| PyList::empty(py)).collect();
    let mut rows = s.query([]).map_err(err)?;
    while let Some(row) = rows.next().map_err(err)? {
        for (c, list) in columns.iter().enumerate() {
            use rusqlite::types::ValueRef;
            match row.get_ref(c).map_err(err)? {
                ValueRef::Null => list.append(py.None())?,
                ValueRef::Integer(i) => list.append(i)?,
                ValueRef::Real(f) => list.append(f)?,
                ValueRef::Text(t) => list.append(String::from_utf8_lossy(t))?,
                ValueRef::Blob(b) => list.append(pyo3::types::PyBytes::new(py, b))?,
            }
        }
    }
    let out = PyDict::new(py);
    for (name, list) in names.iter().zip(columns) {
        out.set_item(name, list)?;
    }
    Ok(out)
}

#[pymodule]
fn _plmscope(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("PlmscopeError", m.py().get_type::<PlmscopeError>())?;
    m.add_class::<ActivationSet>()?;
    m.add_class::<Dictionary>()?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(atlas_tables, m)?)?;
    m.add_function(wrap_pyfunction!(atlas_table, m)?)?;
    Ok(())
}
