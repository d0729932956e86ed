#!/usr/bin/env python3
"""Reference values for the scoring math of `describe` (plmscope-interpret's describe::stats),
from scipy and scikit-learn.

Writes crates/interpret/tests/fixtures/describe_stats_reference.json. Run from the repository
root:

    python3 scripts/describe_stats_reference.py

Inputs are fixed (hand-written edge cases and a seeded numpy generator), so the file changes only
if scipy or scikit-learn do. The versions used are recorded in the file. Undefined results
(scipy's nan for a constant input, sklearn's ValueError for AUROC with one class) are written as
null: the Rust side returns None there.
"""
import json
import math
import pathlib
import warnings

import numpy as np
import scipy
import sklearn
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

OUT = pathlib.Path("crates/interpret/tests/fixtures/describe_stats_reference.json")
rng = np.random.default_rng(20251201)
warnings.simplefilter("ignore")


def num(v):
    v = float(v)
    return None if math.isnan(v) else v


def correlation_case(name, x, y):
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    const = len(set(x)) == 1 or len(set(y)) == 1
    if const:
        pr, pp, sr, sp = (None,) * 4
    else:
        p = pearsonr(x, y)
        s = spearmanr(x, y)
        pr, pp, sr, sp = num(p.statistic), num(p.pvalue), num(s.statistic), num(s.pvalue)
    return {"name": name, "x": x, "y": y, "pearson_r": pr, "pearson_p": pp,
            "spearman_r": sr, "spearman_p": sp}


def correlation_cases():
    cases = [
        correlation_case("n3", [1, 2, 3], [1, 3, 2]),
        correlation_case("n4_perfect", [0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4]),
        correlation_case("n5", [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]),
        correlation_case("ties", [0, 0, 0.5, 0.5, 1, 1, 1, 0.2], [0, 0.1, 0.1, 0.7, 0.9, 0.9, 0.3, 0]),
        correlation_case("negative", [0.9, 0.8, 0.5, 0.1, 0.0, 0.3], [0, 0.1, 0.4, 0.8, 1.0, 0.5]),
        correlation_case("constant_x", [0.5, 0.5, 0.5, 0.5], [0.1, 0.2, 0.3, 0.4]),
        correlation_case("constant_y", [0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0]),
    ]
    # The seed protocol's held-out set: 17 predictions in steps of 0.1 against scaled truth.
    for i in range(12):
        n = int(rng.integers(3, 60))
        truth = rng.random(n)
        truth[rng.random(n) < 0.4] = 0.0
        noise = rng.normal(0, 0.3 + 0.1 * i, n)
        pred = np.clip(np.round(truth + noise, 1), 0, 1)
        if len(set(pred.tolist())) == 1:
            pred[0] = 1.0 - pred[0]
        cases.append(correlation_case(f"random{i}_n{n}", pred, truth))
    return cases


def auroc_case(name, scores, labels):
    labels = [bool(v) for v in labels]
    scores = [float(v) for v in scores]
    value = None if len(set(labels)) < 2 else float(roc_auc_score(labels, scores))
    return {"name": name, "scores": scores, "labels": labels, "auroc": value}


def auroc_cases():
    cases = [
        auroc_case("perfect", [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]),
        auroc_case("inverted", [0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]),
        auroc_case("all_tied", [0.5] * 6, [0, 1, 0, 1, 1, 0]),
        auroc_case("ties_across", [0, 0, 1, 1, 0.5, 0.5, 1], [0, 1, 1, 0, 1, 0, 1]),
        auroc_case("one_class", [0.1, 0.4, 0.3], [1, 1, 1]),
        auroc_case("binary_scores", [1, 0, 1, 1, 0, 0, 1, 0], [1, 0, 1, 0, 0, 1, 1, 0]),
    ]
    for i in range(10):
        n = int(rng.integers(4, 120))
        labels = rng.random(n) < 0.5
        labels[0], labels[1] = True, False
        # Probabilities rounded to 2 places, so ties are common (as with log-probabilities).
        scores = np.round(np.clip(labels * 0.3 + rng.random(n) * 0.8, 0, 1), 2)
        cases.append(auroc_case(f"random{i}_n{n}", scores, labels))
    return cases


def classification_case(name, truth, pred):
    truth = [bool(v) for v in truth]
    pred = [bool(v) for v in pred]
    return {
        "name": name, "truth": truth, "predicted": pred,
        "precision": float(precision_score(truth, pred, zero_division=0)),
        "recall": float(recall_score(truth, pred, zero_division=0)),
        "f1": float(f1_score(truth, pred, zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(truth, pred)),
    }


def classification_cases():
    cases = [
        classification_case("perfect", [1, 0, 1, 0], [1, 0, 1, 0]),
        classification_case("no_positive_predictions", [1, 0, 1, 0, 0], [0, 0, 0, 0, 0]),
        classification_case("all_positive_predictions", [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]),
        classification_case("only_negatives_in_truth", [0, 0, 0, 0], [0, 1, 0, 0]),
        classification_case("only_positives_in_truth", [1, 1, 1], [1, 0, 1]),
        classification_case("small", [1, 0], [0, 1]),
    ]
    for i in range(10):
        n = int(rng.integers(5, 100))
        truth = rng.random(n) < 0.5
        flip = rng.random(n) < 0.1 + 0.05 * i
        cases.append(classification_case(f"random{i}_n{n}", truth, truth ^ flip))
    return cases


def main():
    data = {
        "generator": "scripts/describe_stats_reference.py",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                     "sklearn": sklearn.__version__},
        "correlation": correlation_cases(),
        "auroc": auroc_cases(),
        "classification": classification_cases(),
    }
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT}: {len(data['correlation'])} correlation, {len(data['auroc'])} AUROC, "
          f"{len(data['classification'])} classification cases")


if __name__ == "__main__":
    main()
