#!/usr/bin/env python3
"""Reference for crates/interpret/tests/probe.rs: scikit-learn's L1 logistic regression on a
seeded synthetic probe problem, split by protein.

    python3 scripts/probe_reference.py > crates/interpret/tests/fixtures/probe_reference.json

Rows are residues of 150 proteins (1-6 rows each), 24 units of which 4 carry the label
(logistic, with noise); 30% of the proteins are held out (numpy seed 7). Each unit is
standardised on the training rows (StandardScaler, ddof 0); for each C the fit is
LogisticRegression(penalty='l1', C=C, solver='saga') run to tol 1e-12 (saga leaves the
intercept unpenalised, as plmscope's solver does). Held-out AUROC is roc_auc_score of the
decision function; F1 is f1_score of predict (probability > 0.5).
"""
import json
import warnings

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

rng = np.random.default_rng(7)
proteins = 150
rows_per = rng.integers(1, 7, size=proteins)
groups = np.repeat(np.arange(proteins), rows_per)
n, p = len(groups), 24
x = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p) + rng.normal(size=p)
# Sparse, skewed units like SAE codes for a few columns.
x[:, 20:] = np.maximum(x[:, 20:] - 1.5, 0.0)
x = np.round(x, 5)  # what the fixture stores is what both sides fit
truth = np.zeros(p)
truth[[2, 5, 11, 21]] = [1.5, -1.0, 0.8, 1.2]
z = (x - x.mean(0)) / x.std(0)
logit = z @ truth - 0.4 + rng.normal(scale=0.7, size=n)
y = (logit > 0).astype(int)

held = rng.permutation(proteins)[: int(np.ceil(0.3 * proteins))]
is_test = np.isin(groups, held)
scaler = StandardScaler().fit(x[~is_test])
xtr, xte = scaler.transform(x[~is_test]), scaler.transform(x[is_test])
ytr, yte = y[~is_test], y[is_test]

fits = []
for c in [0.02, 0.1, 1.0]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(
            penalty="l1", C=c, solver="saga", tol=1e-12, max_iter=1_000_000
        ).fit(xtr, ytr)
    fits.append(
        {
            "c": c,
            "intercept": float(model.intercept_[0]),
            "coef": [float(v) for v in model.coef_[0]],
            "auroc": float(roc_auc_score(yte, model.decision_function(xte))),
            "f1": float(f1_score(yte, model.predict(xte))),
        }
    )

print(
    json.dumps(
        {
            "sklearn": sklearn.__version__,
            "rows": int(n),
            "units": p,
            "x": [[round(float(v), 5) for v in row] for row in x],
            "labels": [bool(v) for v in y],
            "groups": [int(g) for g in groups],
            "is_test": [bool(t) for t in is_test],
            "fits": fits,
        }
    )
)
