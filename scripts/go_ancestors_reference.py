#!/usr/bin/env python3
"""Independent reference for plmscope-bio's GO DAG: ancestor sets, depths and distances.

Pure Python with its own minimal OBO parser (no goatools, no plmscope code). Follows `is_a`
and `relationship: part_of` only, skips obsolete terms, and prints JSON for a fixed list of
terms across BP, MF and CC, including some of the deepest terms of the ontology:

    python3 scripts/go_ancestors_reference.py ../shared/data/go-basic.obo \
        > crates/bio/tests/fixtures/go_ancestors.json

For each term: its namespace, its ancestors (self included, sorted), `depth` (longest path to a
root) and `level` (shortest path to a root). For a few pairs: the shortest path length in the
undirected is_a/part_of graph and the greatest depth among their common ancestors.
"""

import json
import sys
from collections import deque

TERMS = [
    "GO:0008150",  # biological_process (root)
    "GO:0006412",  # translation
    "GO:0002181",  # cytoplasmic translation
    "GO:0021809",  # a deepest BP term (longest path 18)
    "GO:0005524",  # ATP binding
    "GO:0003910",  # DNA ligase (ATP) activity
    "GO:0022625",  # cytosolic large ribosomal subunit (part_of chain)
    "GO:0005789",  # endoplasmic reticulum membrane
    "GO:0005314",  # a deepest MF term (longest path 12)
    "GO:0030085",  # a deepest CC term (longest path 14)
]
PAIRS = [
    ("GO:0006412", "GO:0002181"),
    ("GO:0002181", "GO:0021809"),
    ("GO:0005789", "GO:0022625"),
    ("GO:0005524", "GO:0003910"),
    ("GO:0005524", "GO:0022625"),  # different namespaces: no path
]


def read_obo(path):
    """Returns {id: (namespace, [parent ids])} for non-obsolete terms."""
    stanzas = []
    current = None
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if line.startswith("["):
                current = None
                if line == "[Term]":
                    current = {"parents": [], "obsolete": False}
                    stanzas.append(current)
                continue
            if current is None or ":" not in line:
                continue
            tag, value = line.split(":", 1)
            value = value.strip()
            if tag == "id":
                current["id"] = value
            elif tag == "namespace":
                current["namespace"] = value
            elif tag == "is_obsolete":
                current["obsolete"] = value == "true"
            elif tag == "is_a":
                current["parents"].append(value.split()[0])
            elif tag == "relationship":
                words = value.split()
                if words[0] == "part_of":
                    current["parents"].append(words[1])
    return {
        stanza["id"]: (stanza["namespace"], stanza["parents"])
        for stanza in stanzas
        if not stanza["obsolete"]
    }


def ancestors(terms, term):
    seen = {term}
    stack = [term]
    while stack:
        for parent in terms[stack.pop()][1]:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def depth_and_level(terms, term, memo):
    if term not in memo:
        parents = terms[term][1]
        if not parents:
            memo[term] = (0, 0)
        else:
            values = [depth_and_level(terms, p, memo) for p in parents]
            memo[term] = (1 + max(v[0] for v in values), 1 + min(v[1] for v in values))
    return memo[term]


def undirected_distance(terms, a, b):
    neighbours = {t: set(parents) for t, (_, parents) in terms.items()}
    for t, (_, parents) in terms.items():
        for p in parents:
            neighbours[p].add(t)
    distance = {a: 0}
    queue = deque([a])
    while queue:
        t = queue.popleft()
        if t == b:
            return distance[t]
        for n in neighbours[t]:
            if n not in distance:
                distance[n] = distance[t] + 1
                queue.append(n)
    return None


def main():
    terms = read_obo(sys.argv[1])
    sys.setrecursionlimit(10000)
    memo = {}
    out = {"terms": {}, "pairs": []}
    for term in TERMS:
        depth, level = depth_and_level(terms, term, memo)
        out["terms"][term] = {
            "namespace": terms[term][0],
            "ancestors": sorted(ancestors(terms, term)),
            "depth": depth,
            "level": level,
        }
    for a, b in PAIRS:
        common = ancestors(terms, a) & ancestors(terms, b)
        out["pairs"].append({
            "a": a,
            "b": b,
            "shortest_path": undirected_distance(terms, a, b),
            "lca_depth": max((depth_and_level(terms, t, memo)[0] for t in common), default=None),
        })
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
