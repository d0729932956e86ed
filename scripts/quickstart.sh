#!/usr/bin/env bash
# The README's main job: builds plmscope and runs the whole quick-start study
# (examples/quickstart.toml) offline on ../shared/data: 600 real proteins, a random-weight ESM2
# t6_8M written by the study, protein- and residue-level TopK SAEs at layers 3 and 6, GO + Pfam
# enrichment and TMbed transmembrane-helix concepts, neurons as the baseline, ending with the
# atlas summaries. Rerunning resumes an interrupted run, or says nothing is left to do.
# Output: runs/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p plmscope
target/release/plmscope run examples/quickstart.toml "$@"
