"""Reads plmscope's Parquet exports back with DuckDB (crates/exchange/tests/parquet_export.rs).

usage:
  check_parquet.py atlas ATLAS.sqlite DIR   every table of the atlas (read with sqlite3) equals
                                            DIR/TABLE.parquet (read with DuckDB), row for row
  check_parquet.py set DIR OUT              dumps DIR's long-form table as raw little-endian
                                            arrays OUT/{protein,position,unit}.i32 (position -1
                                            for NULL) and OUT/value.f32, and the proteins table
                                            as OUT/proteins.json, for the Rust side to compare
"""
import json
import math
import os
import sqlite3
import sys

import duckdb
import numpy as np


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def check_atlas(atlas, folder):
    db = sqlite3.connect(f"file:{atlas}?mode=ro", uri=True)
    tables = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    files = sorted(f[:-8] for f in os.listdir(folder) if f.endswith(".parquet"))
    assert files == tables, f"parquet files {files} != tables {tables}"
    con = duckdb.connect()
    total = 0
    for table in tables:
        expected = db.execute(f'SELECT * FROM "{table}"').fetchall()
        columns = [d[0] for d in db.execute(f'SELECT * FROM "{table}" LIMIT 0').description]
        path = os.path.join(folder, f"{table}.parquet")
        got_rel = con.execute("SELECT * FROM read_parquet(?)", [path])
        got_columns = [d[0] for d in got_rel.description]
        got = got_rel.fetchall()
        assert got_columns == columns, f"{table}: columns {got_columns} != {columns}"
        assert len(got) == len(expected), f"{table}: {len(got)} rows != {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            for c, (x, y) in enumerate(zip(g, e)):
                if isinstance(y, bytes):
                    x = bytes(x)
                assert same(x, y), f"{table} row {i} column {columns[c]}: parquet {x!r} != sqlite {y!r}"
        total += len(got)
    print(f"ok: {len(tables)} tables, {total} rows equal")


def dump_set(folder, out):
    con = duckdb.connect()
    values = [f for f in ("activations.parquet", "codes.parquet") if os.path.exists(os.path.join(folder, f))]
    assert len(values) == 1, f"expected one of activations/codes.parquet in {folder}"
    table = con.execute(
        "SELECT protein, coalesce(position, -1) AS position, unit, value FROM read_parquet(?)",
        [os.path.join(folder, values[0])]).fetchnumpy()
    os.makedirs(out, exist_ok=True)
    for name in ("protein", "position", "unit"):
        np.asarray(table[name], dtype="<i4").tofile(os.path.join(out, f"{name}.i32"))
    value = np.asarray(table["value"])
    assert value.dtype == np.float32, value.dtype
    value.astype("<f4").tofile(os.path.join(out, "value.f32"))
    proteins = con.execute(
        "SELECT protein, id, length, first_row, rows FROM read_parquet(?)",
        [os.path.join(folder, "proteins.parquet")]).fetchall()
    with open(os.path.join(out, "proteins.json"), "w") as f:
        json.dump([list(p) for p in proteins], f)
    print(f"ok: {len(value)} values from {values[0]}")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "atlas":
        check_atlas(sys.argv[2], sys.argv[3])
    elif mode == "set":
        dump_set(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown mode {mode}")
