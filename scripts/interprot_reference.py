#!/usr/bin/env python3
"""Reference values for plmscope-interpret's InterProt measures: family-specificity F1 and
activation-pattern classes, computed with numpy from the definitions in InterProt's code
(etowahadams/interprot @ 287c373):

- interprot/make_viz_files/compute_family_specificity.py (optimize_f1_boundary,
  add_normalized_acts, compute_family_specifc_features);
- interprot/make_viz_files/analyze_viz_files.py (calculate_act_stats, calulate_dim_metrics,
  classify_into_type) and interprot/make_viz_files/__main__.py (examples: the 12 highest
  proteins with normalised maximum in (0.75, 1]).

plmscope's documented departures (crates/interpret/src/family_f1.rs and patterns.rs) are
followed: one protein split for all units, given by sha256("{seed}:{accession}") order; no
rounding of activations; ties broken by lower protein index / earlier contig.

Writes crates/interpret/tests/fixtures/interprot_reference.json. Run from the repository root:

    python3 scripts/interprot_reference.py

Inputs: 30 real E. coli K-12 proteins (sequences from
../shared/data/ecoli_k12/UP000000625_83333.fasta, Pfam from Ecoli_metadata.txt: members of the
two largest Pfam families among proteins of 170..300 residues, plus others), 30 synthetic
proteins with planted families, and 13 residue-level units with planted patterns (values are
multiples of 1/8, exact in f32 and f64). Deterministic (seeded numpy generator).
"""
import hashlib
import json
import pathlib

import numpy as np

DATA = pathlib.Path("../shared/data/ecoli_k12")
OUT = pathlib.Path("crates/interpret/tests/fixtures/interprot_reference.json")
SEED = 42  # the split seed (plmscope's default, InterProt's random_state)
rng = np.random.default_rng(20261201)


def read_fasta(path):
    seqs, acc = {}, None
    for line in open(path):
        line = line.strip()
        if line.startswith(">"):
            acc = line[1:].split("|")[1]
            seqs[acc] = []
        elif acc:
            seqs[acc].append(line)
    return {a: "".join(s) for a, s in seqs.items()}


def read_pfam(path):
    lines = open(path).read().splitlines()
    col = lines[0].split("\t").index("Cross-reference (Pfam)")
    out = {}
    for line in lines[1:]:
        f = line.split("\t")
        out[f[0]] = [x for x in f[col].split(";") if x]
    return out


# ---------------------------------------------------------------- proteins
seqs = read_fasta(DATA / "UP000000625_83333.fasta")
pfam = read_pfam(DATA / "Ecoli_metadata.txt")
pool = sorted(a for a in seqs if a in pfam and pfam[a] and 170 <= len(seqs[a]) <= 300)
counts = {}
for a in pool:
    for f in pfam[a]:
        counts[f] = counts.get(f, 0) + 1
fam1, fam2 = sorted(counts, key=lambda f: (-counts[f], f))[:2]
members1 = [a for a in pool if fam1 in pfam[a] and fam2 not in pfam[a]][:9]
members2 = [a for a in pool if fam2 in pfam[a] and fam1 not in pfam[a]][:9]
others = [a for a in pool if fam1 not in pfam[a] and fam2 not in pfam[a]]
others = [others[i] for i in sorted(rng.choice(len(others), 12, replace=False))]
real = members1 + members2 + others
order = rng.permutation(len(real))
real = [real[i] for i in order]

proteins = []
for a in real:
    proteins.append({"accession": a, "length": len(seqs[a]), "families": pfam[a], "seq": seqs[a]})
for i in range(30):
    length = 400 if i < 6 else int(rng.integers(60, 161))
    fams = []
    if 6 <= i < 18:
        fams.append("SYN_A")
    if 14 <= i < 24:
        fams.append("SYN_B")
    proteins.append({"accession": f"SYN{i:03d}", "length": length, "families": fams, "seq": None})
perm = rng.permutation(len(proteins))
proteins = [proteins[i] for i in perm]
n = len(proteins)
lengths = [p["length"] for p in proteins]

# ---------------------------------------------------------------- planted units
N_UNITS = 13
acts = [np.zeros((n, L)) for L in lengths]  # acts[p][unit] built per unit below
tracks = [[np.zeros(L) for L in lengths] for _ in range(N_UNITS)]
HYDRO = {a: i + 1 for i, a in enumerate("DEKRHNQSTGPCAYWMVFIL")}  # 1..20 by hydrophobicity rank


def q(x):
    return np.round(np.asarray(x, dtype=float) * 8) / 8


for p, prot in enumerate(proteins):
    L, fams, seq = prot["length"], prot["families"], prot["seq"]
    # 0: dead. 1: point, at tryptophans of real proteins (value by position).
    if seq:
        for i, c in enumerate(seq):
            if c == "W":
                tracks[1][p][i] = q(1.5 + (i % 5) / 8)
    # 2: periodic, pairs of residues every 7 in SYN_A.
    if "SYN_A" in fams:
        for i in range(L):
            if i % 7 == 0:
                tracks[2][p][i] = 2.0 - (p % 3) / 8
            elif i % 7 == 1:
                tracks[2][p][i] = 1.0
    # 3: short motif, 8 residues in SYN_B; weak singletons elsewhere.
    if "SYN_B" in fams:
        tracks[3][p][10:18] = q(np.linspace(1.0, 2.5, 8))
    elif rng.random() < 0.5:
        tracks[3][p][int(rng.integers(0, L))] = 0.5
    # 4: medium motif, 30 residues in members of the first real family.
    if fam1 in fams:
        tracks[4][p][20:50] = q(1.0 + 0.5 * np.sin(np.arange(30) / 5) ** 2 + (p % 4) / 8)
    # 5: long motif, 120 residues in members of the second real family.
    if fam2 in fams:
        tracks[5][p][30:150] = q(1.5 + (np.arange(120) % 4) / 8 - (p % 3) / 8)
    # 6: whole protein on real proteins, by residue hydrophobicity.
    if seq:
        tracks[6][p][:] = [HYDRO.get(c, 10) / 8 for c in seq]
    # 7: not enough data: one protein far above the rest.
    tracks[7][p][5] = 3.0 if p == 7 else 1.0
    # 8: other: a 310-residue stretch in the 400-residue synthetic proteins.
    if L == 400:
        tracks[8][p][40:350] = q(1.0 + (np.arange(310) % 3) / 8)
    # 9..12: random sparse units.
    for u in range(9, N_UNITS):
        on = rng.random(L) < 0.04 * (u - 8)
        tracks[u][p][on] = rng.integers(1, 17, on.sum()) / 8

# ---------------------------------------------------------------- reference computations
THRESHOLDS = np.linspace(0.3, 0.9, 7)


def split(accessions, seed):
    keyed = sorted((hashlib.sha256(f"{seed}:{a}".encode()).hexdigest(), i) for i, a in enumerate(accessions))
    train = np.zeros(len(accessions), dtype=bool)
    for _, i in keyed[: len(accessions) // 2]:
        train[i] = True
    return train


def f1(y, pred):
    tp = np.sum(pred & y)
    fp = np.sum(pred & ~y)
    fn = np.sum(~pred & y)
    d = 2 * tp + fp + fn
    return 0.0 if d == 0 else 2 * tp / d


def family_specificity(unit, maxes, train):
    if maxes.max() <= 0:
        return []
    act = maxes / maxes.max()
    top = int(np.flatnonzero(act == 1.0)[0])
    rows = []
    for fam in sorted(set(proteins[top]["families"])):
        y = np.array([fam in p["families"] for p in proteins])
        best_f1, best_t = 0.0, 0.0
        for t in THRESHOLDS.tolist():
            score = f1(y[train], act[train] >= t)
            if score > best_f1:
                best_f1, best_t = score, t
        test = ~train
        pred, yt = act[test] >= best_t, y[test]
        tp, fp, fn = np.sum(pred & yt), np.sum(pred & ~yt), np.sum(~pred & yt)
        rows.append({
            "unit": unit, "family": fam, "top_protein": top, "threshold": best_t,
            "train_f1": best_f1,
            "precision": float(tp / (tp + fp)) if tp + fp else 0.0,
            "recall": float(tp / (tp + fn)) if tp + fn else 0.0,
            "f1": float(f1(yt, pred)),
            "accuracy": float(np.mean(pred == yt)),
            "family_size": int(y.sum()), "test_family_size": int(yt.sum()),
        })
    return rows


def contigs(a):
    """(start, length, max) of maximal runs of a > 0."""
    out, start = [], None
    for i, v in enumerate(list(a) + [0.0]):
        if v > 0 and start is None:
            start = i
        elif v <= 0 and start is not None:
            out.append((start, i - start, float(np.max(a[start:i]))))
            start = None
    return out


def pattern(unit, maxes):
    base = {"unit": unit, "examples": 0, "mean_fraction_active": 0.0, "median_contigs": 0.0,
            "median_top_motif_length": 0.0, "median_motif_length": 0.0,
            "freq_top_two_period": 0.0, "top_period": None}
    if not np.any(maxes > 0):
        return {**base, "class": "dead"}
    norm = maxes / maxes.max()
    idx = [i for i in np.argsort(-maxes, kind="stable") if norm[i] > 0.75][:12]
    ex = [tracks[unit][i] for i in idx]
    mx = max(e.max() for e in ex)
    dists, n_contigs, fractions, top_lens, motif_lens = [], [], [], [], []
    for e in ex:
        a = e / mx
        cs = contigs(a)
        dists += [cs[i][0] - cs[i - 1][0] for i in range(1, len(cs))]
        n_contigs.append(len(cs))
        fractions.append(np.sum(a > 0) / len(a))
        motifs = [c for c in cs if c[2] > 0.75]
        motif_lens += [c[1] for c in motifs]
        if motifs:
            best = max(c[2] for c in motifs)
            top_lens.append(next(c[1] for c in motifs if c[2] == best))
    s = dict(base)
    s["examples"] = len(ex)
    s["mean_fraction_active"] = float(np.mean(fractions))
    s["median_contigs"] = float(np.median(n_contigs))
    s["median_top_motif_length"] = float(np.median(top_lens))
    s["median_motif_length"] = float(np.median(motif_lens))
    if dists:
        bc = np.bincount(dists)
        top_two = np.sort(bc)[-2:]
        s["freq_top_two_period"] = float(top_two.sum() / bc.sum())
        s["top_period"] = int(np.flatnonzero(bc == bc.max())[0])
    if s["examples"] < 5:
        c = "not_enough_data"
    elif s["freq_top_two_period"] > 0.5 and s["median_contigs"] > 10 and s["median_top_motif_length"] < 10:
        c = "periodic"
    elif s["median_motif_length"] == 1:
        c = "point"
    elif s["mean_fraction_active"] < 0.8 and s["median_top_motif_length"] < 20:
        c = "short_motif"
    elif s["mean_fraction_active"] < 0.8 and s["median_top_motif_length"] < 50:
        c = "medium_motif"
    elif s["mean_fraction_active"] < 0.8 and s["median_top_motif_length"] < 300:
        c = "long_motif"
    elif s["mean_fraction_active"] > 0.8:
        c = "whole"
    else:
        c = "other"
    return {**s, "class": c}


accessions = [p["accession"] for p in proteins]
train = split(accessions, SEED)
fam_rows, pat_rows = [], []
for u in range(N_UNITS):
    maxes = np.array([t.max() for t in tracks[u]])
    fam_rows += family_specificity(u, maxes, train)
    pat_rows.append(pattern(u, maxes))

planted = {0: "dead", 1: "point", 2: "periodic", 3: "short_motif", 4: "medium_motif",
           5: "long_motif", 6: "whole", 7: "not_enough_data", 8: "other"}
for u, c in planted.items():
    assert pat_rows[u]["class"] == c, (u, pat_rows[u])
best = {(r["unit"], r["family"]): r["f1"] for r in fam_rows}
assert best[(2, "SYN_A")] == 1.0 and best[(3, "SYN_B")] == 1.0, best
assert best[(4, fam1)] == 1.0 and best[(5, fam2)] == 1.0, best

segments = []
for u in range(N_UNITS):
    for p in range(n):
        nz = np.flatnonzero(tracks[u][p])
        if len(nz):
            lo, hi = int(nz[0]), int(nz[-1]) + 1
            segments.append([u, p, lo, [int(round(v * 8)) for v in tracks[u][p][lo:hi]]])

out = {
    "generated_by": "scripts/interprot_reference.py",
    "numpy": np.__version__,
    "split_seed": SEED,
    "value_scale": "activation = integer / 8",
    "real_families": [fam1, fam2],
    "proteins": [{"accession": p["accession"], "length": p["length"], "families": p["families"]} for p in proteins],
    "is_training": train.tolist(),
    "n_units": N_UNITS,
    "segments": segments,
    "planted_classes": {str(k): v for k, v in planted.items()},
    "family_specificity": fam_rows,
    "patterns": pat_rows,
}
OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")
print(f"{OUT}: {n} proteins, {N_UNITS} units, {len(fam_rows)} family rows, "
      f"{OUT.stat().st_size} bytes; families {fam1} {fam2}")
for r in pat_rows:
    print(r["unit"], r["class"], r["examples"], round(r["mean_fraction_active"], 3), r["median_contigs"],
          r["median_top_motif_length"], r["median_motif_length"], r["freq_top_two_period"])
