"""Writes the fixtures of crates/exchange/tests/import_roundtrip.rs: small embeddings in the
file formats of the tools `plmscope import` reads, written by those tools' own libraries.

- fair_esm/: one `<label>.pt` per protein, the dict fair-esm's scripts/extract.py saves with
  `--include per_tok mean` (torch.save of {"label", "representations": {layer: L x d},
  "mean_representations": {layer: d}}, tensors cloned out of the batch as extract.py does);
- hdf5/: h5py files with one dataset per protein (the layout of bio_embeddings' embeddings
  file and the ProtT5 / Ankh embedding scripts): `earliest.h5` (h5py defaults: superblock v0,
  symbol-table group, contiguous float32), `gzip_f16.h5` (chunked, gzip + shuffle, float16),
  `latest.h5` (libver="latest": superblock v3, link-message group, a gzip single-chunk dataset),
  `reduced.h5` (one mean vector per protein, bio_embeddings' reduced_embeddings_file);
- npy/: `embeddings.npy` (n x d float32) + `ids.txt`, and `per_protein/<id>.npy` (L x d);
- expected.json: the values written, as Python floats (exact for float32 and float16).

usage: python3 scripts/make_import_fixtures.py [OUT]   (default: the fixtures folder)
needs: torch, h5py, numpy.
"""
import json
import os
import sys

import h5py
import numpy as np
import torch

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "crates", "exchange", "tests", "fixtures", "import")
D = 16
LAYERS = [2, 6]
# FASTA headers as extract.py's labels: the whole header line without ">".
PROTEINS = [("sp|P0A7V0|RS2_ECOLI 30S ribosomal protein S2", 5),
            ("Q9XYZ1 uncharacterized", 9),
            ("tm_0001", 3)]


def record_id(label):
    word = label.split()[0]
    parts = word.split("|")
    return parts[1] if parts[0] in ("sp", "tr") and len(parts) > 1 else word


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    expected = {"d": D, "layers": LAYERS, "proteins": []}
    os.makedirs(os.path.join(OUT, "fair_esm"), exist_ok=True)
    for label, length in PROTEINS:
        # extract.py: t is the batch's [B, T, d] output; residues are t[i, 1:truncate_len + 1].
        batch = {layer: torch.randn(1, length + 2, D) for layer in LAYERS}
        result = {"label": label}
        result["representations"] = {
            layer: t[0, 1:length + 1].clone() for layer, t in batch.items()}
        result["mean_representations"] = {
            layer: t[0, 1:length + 1].mean(0).clone() for layer, t in batch.items()}
        torch.save(result, os.path.join(OUT, "fair_esm", f"{label}.pt"))
        entry = {"label": label, "id": record_id(label), "length": length, "fair_esm": {}}
        for layer in LAYERS:
            entry["fair_esm"][str(layer)] = {
                "residues": result["representations"][layer].tolist(),
                "mean": result["mean_representations"][layer].tolist()}
        entry["f32"] = rng.standard_normal((length, D)).astype(np.float32).tolist()
        entry["f16"] = np.asarray(rng.standard_normal((length, D)), dtype=np.float16).tolist()
        entry["reduced"] = np.asarray(entry["f32"], dtype=np.float32).mean(0).tolist()
        expected["proteins"].append(entry)

    os.makedirs(os.path.join(OUT, "hdf5"), exist_ok=True)
    with h5py.File(os.path.join(OUT, "hdf5", "earliest.h5"), "w") as f:
        for e in expected["proteins"]:
            f.create_dataset(e["id"], data=np.asarray(e["f32"], dtype=np.float32))
    with h5py.File(os.path.join(OUT, "hdf5", "gzip_f16.h5"), "w") as f:
        for e in expected["proteins"]:
            data = np.asarray(e["f16"], dtype=np.float16)
            f.create_dataset(e["id"], data=data, chunks=(2, 8), compression="gzip",
                             compression_opts=4, shuffle=True)
    with h5py.File(os.path.join(OUT, "hdf5", "latest.h5"), "w", libver="latest") as f:
        for i, e in enumerate(expected["proteins"]):
            data = np.asarray(e["f32"], dtype=np.float32)
            if i == 1:
                f.create_dataset(e["id"], data=data, chunks=data.shape, compression="gzip")
            else:
                f.create_dataset(e["id"], data=data)
    with h5py.File(os.path.join(OUT, "hdf5", "reduced.h5"), "w") as f:
        for e in expected["proteins"]:
            f.create_dataset(e["id"], data=np.asarray(e["reduced"], dtype=np.float32))

    os.makedirs(os.path.join(OUT, "npy", "per_protein"), exist_ok=True)
    np.save(os.path.join(OUT, "npy", "embeddings.npy"),
            np.stack([np.asarray(e["reduced"], dtype=np.float32) for e in expected["proteins"]]))
    with open(os.path.join(OUT, "npy", "ids.txt"), "w") as f:
        f.write("".join(e["id"] + "\n" for e in expected["proteins"]))
    for e in expected["proteins"]:
        np.save(os.path.join(OUT, "npy", "per_protein", e["id"] + ".npy"),
                np.asarray(e["f32"], dtype=np.float32))

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(f"wrote fixtures to {OUT}")


if __name__ == "__main__":
    main()
