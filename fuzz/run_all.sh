#!/usr/bin/env bash
# Runs fuzz targets one after another, SECONDS each (default 60), and prints libFuzzer's final
# execution count per target. Usage: bash fuzz/run_all.sh [SECONDS] [TARGET...]
# Targets outside crates/bio need their feature: store_* -> store, sae_load -> sae,
# model_load -> model, torchfile -> torchfile (added here automatically).
set -uo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fasta uniprot_tsv uniprot_dat obo gaf go_csv tmbed binding_sites pfam_clans)
mkdir -p target/logs
for t in "${targets[@]}"; do
    case "$t" in
        store_*) features=(--features store) ;;
        sae_load) features=(--features sae) ;;
        model_load) features=(--features model) ;;
        torchfile) features=(--features torchfile) ;;
        *) features=() ;;
    esac
    mkdir -p "corpus/$t"
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O "${features[@]}" "$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
        > "target/logs/$t.log" 2>&1
    status=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "target/logs/$t.log" | grep -o '[0-9]*$')
    echo "$t exit=$status runs=${runs:-?} $(date -u +%F)"
done
