#!/usr/bin/env python3
"""Reference values for plmscope-interpret's statistics tests, from scipy and statsmodels.

Writes crates/interpret/tests/fixtures/hypergeom_reference.json. Run from the repository root:

    python3 scripts/stats_reference.py

Inputs are fixed (a seeded numpy generator), so the file changes only if scipy or statsmodels do.
Versions used are recorded in the file.
"""
import json
import math
import pathlib

import numpy as np
import scipy
import statsmodels
from scipy.stats import fisher_exact, hypergeom
from statsmodels.stats.multitest import multipletests

OUT = pathlib.Path("crates/interpret/tests/fixtures/hypergeom_reference.json")
rng = np.random.default_rng(20250611)


def tail_case(k, n_study, k_pop, n_pop):
    """P(X >= k): scipy's sf at k-1, and logsf for the log (used where sf underflows)."""
    sf = float(hypergeom.sf(k - 1, n_pop, k_pop, n_study))
    ln_sf = float(hypergeom.logsf(k - 1, n_pop, k_pop, n_study))
    return {"k": k, "n_study": n_study, "k_pop": k_pop, "n_pop": n_pop, "sf": sf, "ln_sf": ln_sf}


def realistic_cases():
    """Population 6,000, term sizes 5..2,000, study sets 10..600, counts across the range."""
    cases = []
    n_pop = 6000
    for _ in range(400):
        k_pop = int(rng.integers(5, 2001))
        n_study = int(rng.integers(10, 601))
        lo = max(0, n_study + k_pop - n_pop)
        hi = min(n_study, k_pop)
        mean = n_study * k_pop / n_pop
        # Mostly counts at and above the mean (enrichment), some below.
        k = int(rng.choice([
            rng.integers(lo, hi + 1),
            min(hi, math.ceil(mean) + int(rng.integers(0, 4 * math.sqrt(mean + 1) + 2))),
            max(lo, math.floor(mean) - int(rng.integers(0, 3))),
        ]))
        cases.append(tail_case(max(k, 1), n_study, k_pop, n_pop))
    return cases


def extreme_cases():
    """p far below 1e-300: compare on ln p (scipy's logsf)."""
    specs = [
        (600, 600, 600, 6000),
        (598, 600, 2000, 6000),
        (300, 300, 300, 6000),
        (200, 250, 200, 6000),
        (500, 600, 600, 20000),
        (170, 170, 170, 5000),
        (1000, 1000, 1000, 50000),
    ]
    out = [tail_case(*s) for s in specs]
    for c in out:
        assert c["ln_sf"] < -300 * math.log(10), c
    return out


def fisher_cases():
    tables = [(12, 30, 40, 900), (3, 5, 2, 20), (50, 10, 100, 5000), (0, 10, 5, 50), (7, 0, 0, 7)]
    out = []
    for a, b, c, d in tables:
        _, p = fisher_exact([[a, b], [c, d]], alternative="greater")
        out.append({"a": a, "b": b, "c": c, "d": d, "p": float(p)})
    return out


def bh_cases():
    cases = []
    # Uniform nulls with a few tiny values, ties and ones; some with extra untested p = 1 tests.
    for size, extra in [(20, 0), (200, 0), (200, 300), (1000, 0)]:
        p = rng.uniform(size=size)
        p[: size // 10] = 10.0 ** rng.uniform(-300, -2, size=size // 10)
        p[size // 10 : size // 10 + 3] = p[size // 10 + 3]  # ties
        p[-2:] = 1.0
        full = np.concatenate([p, np.ones(extra)])
        q = multipletests(full, method="fdr_bh")[1][:size]
        bonf = multipletests(full, method="bonferroni")[1][:size]
        cases.append({"p": p.tolist(), "total_tests": size + extra, "q_bh": q.tolist(), "q_bonferroni": bonf.tolist()})
    return cases


def bh_extreme_case():
    """ln p in [-1100, -1000]: BH is scale-equivariant while nothing is clipped at 1, so
    statsmodels on p·e^shift gives ln q = ln q' - shift (checked: all q' < 1)."""
    ln_p = -1000.0 - 100.0 * rng.uniform(size=50)
    shift = 980.0
    q_shifted = multipletests(np.exp(ln_p + shift), method="fdr_bh")[1]
    assert np.all(q_shifted < 1.0)
    return {"ln_p": ln_p.tolist(), "total_tests": 50, "ln_q_bh": (np.log(q_shifted) - shift).tolist()}


def main():
    data = {
        "generator": "scripts/stats_reference.py",
        "scipy": scipy.__version__,
        "statsmodels": statsmodels.__version__,
        "hypergeom_realistic": realistic_cases(),
        "hypergeom_extreme": extreme_cases(),
        "fisher_greater": fisher_cases(),
        "bh": bh_cases(),
        "bh_extreme": bh_extreme_case(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
