#!/usr/bin/env python3
"""Pick 256 real proteins from the yeast and E. coli proteomes for the embed speed benchmark.

The pick is deterministic: every record of both proteomes is ranked by
sha256("plmscope-bench256:" + accession), the first 85 yeast and the first 171 E. coli proteins
are kept (a seeded shuffle that needs no RNG and survives reordering of the files), and all are
written in rank order. Within each organism the pick follows the proteome's own length
distribution (yeast median 395 aa, E. coli 271); one third yeast puts the median at 298 aa, near
the ~300 aa typical of embedding jobs, and 7 proteins exceed 1022 aa (truncated when embedded).

Example:
  python3 scripts/make_bench_fasta.py --out /tmp/bench256.fasta
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from pathlib import Path

from fasta_io import (
    DEFAULT_DATA_DIR,
    ECOLI_FASTA,
    MAX_RESIDUES,
    YEAST_FASTA,
    FastaRecord,
    read_fasta,
    write_fasta,
)

SALT = "plmscope-bench256:"


def rank_key(record: FastaRecord) -> str:
    return hashlib.sha256((SALT + record.accession).encode()).hexdigest()


def pick(data_dir: Path, n_yeast: int, n_ecoli: int) -> list[FastaRecord]:
    chosen: list[FastaRecord] = []
    for source, wanted in ((YEAST_FASTA, n_yeast), (ECOLI_FASTA, n_ecoli)):
        records = read_fasta(data_dir / source)
        if len(records) < wanted:
            raise ValueError(f"{data_dir / source}: {len(records)} records, need {wanted}")
        chosen.extend(sorted(records, key=rank_key)[:wanted])
    return sorted(chosen, key=rank_key)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="FASTA file to write")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--count", type=int, default=256, help="total proteins")
    parser.add_argument("--yeast", type=int, default=85, help="how many of them are yeast (rest E. coli)")
    args = parser.parse_args(argv)
    if not 0 <= args.yeast <= args.count:
        parser.error("--yeast must lie between 0 and --count")

    records = pick(args.data_dir, args.yeast, args.count - args.yeast)
    write_fasta(args.out, records)
    lengths = [len(r.sequence) for r in records]
    embedded = [min(n, MAX_RESIDUES) for n in lengths]
    data = args.out.read_bytes()
    print(
        json.dumps(
            {
                "out": str(args.out),
                "proteins": len(records),
                "yeast": args.yeast,
                "ecoli": args.count - args.yeast,
                "median_length": statistics.median(lengths),
                "min_length": min(lengths),
                "max_length": max(lengths),
                "longer_than_1022": sum(n > MAX_RESIDUES for n in lengths),
                "residues": sum(lengths),
                "residues_after_truncation": sum(embedded),
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
