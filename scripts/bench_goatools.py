#!/usr/bin/env python3
"""goatools on the study sets written by the Rust example `analyze_bench yeast`, side by side
with our enrichment engine: per-unit seconds for each, their ratio, and a check that counts and
p-values agree (for alternative=greater, the one-sided test we compute).

Commands (see crates/interpret/examples/analyze_bench.rs):
  export CARGO_TARGET_DIR=/tmp/target-interpret
  cargo run --release -p plmscope-interpret --example analyze_bench -- yeast /tmp/goea_bench 200
  python3 scripts/bench_goatools.py /tmp/goea_bench --units 200 --alternative greater
  python3 scripts/bench_goatools.py /tmp/goea_bench --units 50 --alternative two-sided

goatools setup: GOEnrichmentStudy(population, associations, GODag(go-basic.obo, relationship
loaded), propagate_counts=True, relationships={'part_of'} (we propagate over is_a and part_of),
methods=['fdr_bh'], alpha=0.05). goatools' Fisher test is two-sided by default; goatools >= 1.6
takes alternative='greater', which is the test we run. Associations are the raw GO ids of the
yeast GO CSV; the population is the annotated proteins our engine used (population.txt).
"""

import argparse
import csv
import math
import os
import time

from goatools.go_enrichment import GOEnrichmentStudy
from goatools.obo_parser import GODag

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data")


def read_associations(path):
    assoc = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            ids = row["GO ID"].strip()
            if ids and ids != "NA":
                assoc[row["Protein ID"]] = set(ids.split("|"))
    return assoc


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bench_dir")
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--alternative", default="greater", choices=["greater", "two-sided"])
    args = parser.parse_args()

    population = [line.strip() for line in open(os.path.join(args.bench_dir, "population.txt")) if line.strip()]
    studies = []
    for line in open(os.path.join(args.bench_dir, "study_sets.tsv")):
        unit, names = line.rstrip("\n").split("\t")
        studies.append((int(unit), set(names.split(","))))
    studies = studies[: args.units]
    ours = {}
    with open(os.path.join(args.bench_dir, "ours.tsv")) as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            ours[(int(row["unit"]), row["term"])] = row
    ours_seconds = float(open(os.path.join(args.bench_dir, "ours_seconds_per_unit.txt")).read())

    dag = GODag(os.path.join(DATA, "go-basic.obo"), optional_attrs={"relationship"}, prt=None)
    assoc = read_associations(os.path.join(DATA, "yeast_s288c", "UP000002311_559292_go.csv"))
    started = time.perf_counter()
    study = GOEnrichmentStudy(
        population, assoc, dag, propagate_counts=True, alpha=0.05, methods=["fdr_bh"],
        relationships={"part_of"}, alternative=args.alternative, log=None,
    )
    setup = time.perf_counter() - started

    started = time.perf_counter()
    results = [(unit, study.run_study(names, prt=None)) for unit, names in studies]
    elapsed = time.perf_counter() - started
    per_unit = elapsed / len(studies)
    print(f"goatools ({args.alternative}): setup {setup:.2f} s, {len(studies)} units in {elapsed:.2f} s "
          f"= {per_unit:.4f} s per unit")
    print(f"ours: {ours_seconds:.6f} s per unit; goatools / ours = {per_unit / ours_seconds:.0f}x")

    compared = count_mismatch = 0
    worst_p = worst_q = 0.0
    n_terms = set()
    for unit, records in results:
        for r in records:
            n_terms.add(len(records))
            if r.study_count == 0:
                continue
            mine = ours.get((unit, r.GO))
            if mine is None:
                count_mismatch += 1
                continue
            compared += 1
            if int(mine["study_count"]) != r.study_count or int(mine["population_count"]) != r.pop_count:
                count_mismatch += 1
                continue
            for theirs, ln_mine, worst in ((r.p_uncorrected, float(mine["ln_p"]), "p"), (r.p_fdr_bh, float(mine["ln_q"]), "q")):
                if theirs > 1e-290:
                    rel = abs(theirs - math.exp(ln_mine)) / theirs
                    if worst == "p":
                        worst_p = max(worst_p, rel)
                    else:
                        worst_q = max(worst_q, rel)
    print(f"compared {compared} (unit, term) tests with study_count >= 1; count mismatches {count_mismatch}; "
          f"terms tested per unit by goatools {sorted(n_terms)[:3]}")
    print(f"max relative difference vs ours: p {worst_p:.2e}, q {worst_q:.2e}"
          + ("" if args.alternative == "greater" else " (expected: two-sided p >= our one-sided p)"))


if __name__ == "__main__":
    main()
