#!/usr/bin/env bash
# Writes the exact prompts `plmscope describe` sends for three units of the quick-start atlases
# (one protein-level feature, one residue-level feature, one neuron) into examples/prompts/,
# calling no API (--dry-run). Needs atlases written by this version's analyze (they hold the
# per-protein activations and protein names prompts need): bash scripts/quickstart.sh, after
# removing runs/quickstart/t6/atlas if it was made by an older version.
#   bash examples/prompts/make.sh            (PLMSCOPE=path/to/plmscope, ATLAS_DIR=dir to override)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${PLMSCOPE:-target/release/plmscope}
ATLAS_DIR=${ATLAS_DIR:-runs/quickstart/t6/atlas}
OUT=examples/prompts
describe() { # atlas, units
  "$BIN" describe --atlas "$ATLAS_DIR/$1.sqlite" --provider anthropic --model claude-haiku-4-5 \
    --units "$2" --sample 1 --seed 42 --dry-run --prompts-dir "$OUT"
}
describe topk-protein.layer3.resid_post.protein features
describe topk-residue.layer3.resid_post.residue features
describe topk-protein.layer3.resid_post.protein neurons
