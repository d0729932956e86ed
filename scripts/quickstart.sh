#!/usr/bin/env bash
# Builds plmscope, writes a random-weight ESM2 t6_8M checkpoint (no weights can be downloaded
# here; online, pass --model facebook/esm2_t6_8M_UR50D instead) and embeds the 46 proteins of
# the bindEmbed21 independent set from ../shared/data at layers 3 and 6, per residue and per
# protein. Output: out/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p plmscope
bin=target/release/plmscope
data=../shared/data
out=out/quickstart
"$bin" model init --arch esm2_t6_8M --seed 0 --out "$out/model"
"$bin" model info "$out/model"
"$bin" embed --model "$out/model" --fasta "$data/bindembed21/independent_set/indep_set.fasta" \
  --layers 3,6 --sites resid_post,mlp_in,mlp_out,block_delta --level residue,protein \
  --out "$out/activations"
ls "$out/activations"
