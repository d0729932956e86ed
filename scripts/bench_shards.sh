#!/usr/bin/env bash
# BENCHMARKS.md "Sharded embed": one `plmscope embed` process using both cores against the same
# embed as two `--shard i/2` parts run at once (one thread each) plus `plmscope merge`, side by
# side with a whole-process timer; then the per-residue cost of ESM2-650M for the Swiss-Prot
# estimate. Needs a release build (cargo build --release -p plmscope) and ../shared/data.
#
#   scripts/bench_shards.sh prepare         # models + inputs under $WORK
#   scripts/bench_shards.sh one|two         # one timed variant (what the timer runs)
#   scripts/bench_shards.sh t33             # the 650M per-residue run
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/target/release/plmscope}
WORK=${WORK:-/tmp/plmscope-shard-bench}
DATA=$PWD/../shared/data
PROTEINS=${PROTEINS:-800}
EMBED=(embed --layers 6 --sites resid_post --level residue,protein)

case "${1:-}" in
prepare)
    mkdir -p "$WORK"
    # The first $PROTEINS E. coli K-12 proteins (UniProt UP000000625), in file order.
    awk -v n="$PROTEINS" '/^>/{c++} c<=n' "$DATA/ecoli_k12/UP000000625_83333.fasta" >"$WORK/ecoli.fasta"
    awk '/^>/{c++} c<=40' "$DATA/ecoli_k12/UP000000625_83333.fasta" >"$WORK/ecoli40.fasta"
    [ -d "$WORK/t6" ] || "$BIN" model init --arch esm2_t6_8M --seed 0 --out "$WORK/t6"
    ;;
one)
    rm -rf "$WORK/one"
    "$BIN" --threads 2 "${EMBED[@]}" --model "$WORK/t6" --fasta "$WORK/ecoli.fasta" --out "$WORK/one"
    ;;
two)
    rm -rf "$WORK/part-0" "$WORK/part-1" "$WORK/merged"
    for i in 0 1; do
        "$BIN" --threads 1 "${EMBED[@]}" --model "$WORK/t6" --fasta "$WORK/ecoli.fasta" \
            --shard "$i/2" --out "$WORK/part-$i" &
    done
    wait
    "$BIN" merge "$WORK/part-0" "$WORK/part-1" --out "$WORK/merged"
    ;;
merge)
    rm -rf "$WORK/merged"
    "$BIN" merge "$WORK/part-0" "$WORK/part-1" --out "$WORK/merged"
    ;;
t33)
    [ -d "$WORK/t33" ] || "$BIN" model init --arch esm2_t33_650M --seed 0 --out "$WORK/t33"
    rm -rf "$WORK/t33-out"
    "$BIN" --threads 2 embed --layers 24 --sites resid_post --level protein --model "$WORK/t33" \
        --fasta "$WORK/ecoli40.fasta" --out "$WORK/t33-out"
    ;;
*)
    echo "usage: $0 prepare|one|two|merge|t33" >&2
    exit 2
    ;;
esac
