"""pytest for the Python package: what it reads equals what the CLI wrote.

Needs the package (`pip install ./python`), numpy, safetensors, pandas (optional) and the
plmscope binary: $PLMSCOPE_BIN, or target/debug/plmscope / target/release/plmscope of this
checkout (built by `cargo build -p plmscope`). Without the binary the CLI comparisons are
skipped, except under CI (env CI set), where they fail.
Run: python3 -m pytest python/tests
"""
import os
import sqlite3
import subprocess

import numpy as np
import pytest

import plmscope

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "crates", "exchange", "tests", "fixtures", "import")


def binary():
    candidates = [os.environ.get("PLMSCOPE_BIN", "")] + [
        os.path.join(ROOT, "target", p, "plmscope") for p in ("debug", "release")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    if os.environ.get("CI"):
        pytest.fail("CI is set but no plmscope binary was found (cargo build -p plmscope)")
    pytest.skip("no plmscope binary (set PLMSCOPE_BIN or cargo build -p plmscope)")


def cli(*args):
    out = subprocess.run([binary(), *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """An activation set written by `plmscope import` from the committed .npy fixtures."""
    out = tmp_path_factory.mktemp("sets") / "acts"
    cli("import", "--format", "npy", os.path.join(FIXTURES, "npy", "per_protein"), "--out", out,
        "--proteins-per-shard", "2")
    return out


def test_activation_set_arrays_equal_the_imported_files(imported):
    acts = plmscope.ActivationSet(imported)
    assert acts.ids == ["P0A7V0", "Q9XYZ1", "tm_0001"]
    assert acts.level == "residue" and acts.d_model == 16 and len(acts) == 3
    for i, pid in enumerate(acts.ids):
        original = np.load(os.path.join(FIXTURES, "npy", "per_protein", pid + ".npy"))
        by_index, by_id = acts.protein(i), acts.protein(pid)
        assert by_index.dtype == np.float32 and by_index.shape == original.shape
        assert np.array_equal(by_index, original) and np.array_equal(by_id, original)
    assert np.array_equal(acts.read(0, acts.rows), np.concatenate([acts.protein(i) for i in range(3)]))


def test_errors_are_plmscope_errors_with_the_cli_message(tmp_path):
    with pytest.raises(plmscope.PlmscopeError) as info:
        plmscope.ActivationSet(tmp_path / "missing")
    assert "missing" in str(info.value)


def test_dictionary_encode_equals_plmscope_encode(imported, tmp_path):
    from safetensors.numpy import load_file
    sae = tmp_path / "sae"
    cli("train", "--activations", imported, "--arch", "topk", "--k", "4", "--latents", "32",
        "--steps", "20", "--batch", "8", "--seed", "0", "--out", sae)
    codes_dir = tmp_path / "codes"
    cli("encode", "--sae", sae, "--activations", imported, "--out", codes_dir)
    acts = plmscope.ActivationSet(imported)
    dictionary = plmscope.Dictionary(sae)
    assert (dictionary.d_in, dictionary.d_sae) == (16, 32)
    z = dictionary.encode(acts.read(0, acts.rows))
    dense = []
    for name in sorted(f for f in os.listdir(codes_dir) if f.startswith("codes-")):
        t = load_file(os.path.join(codes_dir, name))
        for r in range(len(t["row_ptr"]) - 1):
            row = np.zeros(32, dtype=np.float32)
            lo, hi = t["row_ptr"][r], t["row_ptr"][r + 1]
            row[t["feature"][lo:hi]] = t["value"][lo:hi]
            dense.append(row)
    assert np.array_equal(z, np.stack(dense))
    assert dictionary.decode(z).shape == (acts.rows, 16)
    assert dictionary.reconstruct(acts.read(0, 2)).shape == (2, 16)


def test_atlas_tables_equal_sqlite(tmp_path):
    path = tmp_path / "atlas.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE units (unit INTEGER PRIMARY KEY, kind TEXT NOT NULL, density REAL, note TEXT);
        INSERT INTO units VALUES (0, 'feature', 0.25, NULL), (1, 'neuron', 1e-300, 'ü');
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """)
    db.commit()
    atlas = plmscope.Atlas(path)
    assert atlas.tables == ["meta", "units"]
    columns = atlas.table("units", as_dict=True)
    assert columns == {"unit": [0, 1], "kind": ["feature", "neuron"], "density": [0.25, 1e-300],
                       "note": [None, "ü"]}
    try:
        import pandas  # noqa: F401
    except ImportError:
        return
    frame = atlas.table("units")
    assert list(frame.columns) == ["unit", "kind", "density", "note"]
    assert frame["density"].tolist() == [0.25, 1e-300]


def test_unknown_protein_is_a_key_error(imported):
    with pytest.raises(KeyError):
        plmscope.ActivationSet(imported).protein("nope")
    with pytest.raises(IndexError):
        plmscope.ActivationSet(imported).protein(3)


def test_model_embed_equals_plmscope_embed(tmp_path):
    model_dir = tmp_path / "model"
    cli("model", "init", "--arch", "esm2_t6_8M", "--seed", "0", "--out", model_dir)
    sequences = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLE", "ACDEFGHIKLMNPQRSTVWY"]
    fasta = tmp_path / "p.fasta"
    fasta.write_text("".join(f">p{i}\n{s}\n" for i, s in enumerate(sequences)))
    acts = tmp_path / "acts"
    cli("embed", "--model", model_dir, "--fasta", fasta, "--layers", "3,6", "--level", "residue",
        "--out", acts)
    model = plmscope.Model(str(model_dir))
    assert (model.num_layers, model.d_model) == (6, 320)
    got = model.embed(sequences, layers=[3, 6])
    for layer in (3, 6):
        written = plmscope.ActivationSet(acts / f"layer{layer}.resid_post.residue")
        assert written.ids == ["p0", "p1", "p2"]
        for i, s in enumerate(sequences):
            x = got[layer][i]
            assert x.shape == (len(s), 320) and x.dtype == np.float32
            # The CLI packs the sequences into one batch, the binding runs one at a time; the
            # forward pass is row-independent outside attention (packed, no padding), so the
            # bits agree (measured: max difference 0.0).
            assert np.array_equal(x, written.protein(i))
    with pytest.raises(plmscope.PlmscopeError, match="alphabet"):
        model.embed(["MK1"], layers=[3])
