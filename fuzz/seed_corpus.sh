#!/usr/bin/env bash
# Writes seed corpora into fuzz/corpus/TARGET from small heads of the real files in
# ../shared/data (read in place, never committed) and the repository's own fixtures.
# Usage: bash fuzz/seed_corpus.sh [DATA_DIR]   (default: the shared data beside the repo)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
data="${1:-$repo/../shared/data}"
corpus="$here/corpus"

seed() { # target name < bytes
    mkdir -p "$corpus/$1"
    cat > "$corpus/$1/$2"
}
# A gzip copy too: the readers open gzip by its magic bytes.
seed_both() { # target name file-to-read-from-stdin
    local bytes
    bytes="$(mktemp)"
    cat > "$bytes"
    seed "$1" "$2" < "$bytes"
    gzip -c "$bytes" | seed "$1" "$2.gz"
    rm -f "$bytes"
}
records() { # n file: the first n '>' records
    awk -v n="$1" '/^>/ { seen++ } seen > n { exit } { print }' "$2"
}

records 4 "$data/yeast_s288c/UP000002311_559292.fasta" | seed_both fasta yeast
records 4 "$data/bindembed21/independent_set/indep_set.fasta" | seed_both fasta bindembed
records 4 "$data/tmbed/alpha.fasta" | seed_both tmbed alpha
records 6 "$data/tmbed/cv_00_a.fasta" | seed_both tmbed cv_00
head -n 12 "$data/bindembed21/development_set/binding_residues_2.5_metal.txt" | seed_both binding_sites metal
head -n 12 "$data/bindembed21/independent_set/binding_residues_small.txt" | seed_both binding_sites small
head -n 20 "$data/pfam/Pfam-A.clans.tsv" | seed_both pfam_clans head
seed_both uniprot_tsv sample < "$data/uniprot_tsv_example/sample_uniprot.tsv"
head -n 8 "$data/ecoli_k12/Ecoli_metadata.txt" | seed_both uniprot_tsv ecoli
head -n 40 "$data/ecoli_k12/gene_association.ecocyc" | seed_both gaf ecocyc
head -n 12 "$data/yeast_s288c/UP000002311_559292_go.csv" | seed_both go_csv yeast
head -n 12 "$data/ecoli_k12/UP000000625_83333_go.csv" | seed_both go_csv ecoli
# A closed piece of GO: the header and the first stanzas, parents outside it dropped (the reader
# rejects dangling parents, and the fuzzer can still reach that check by mutation).
awk 'NR < 400' "$data/go-basic.obo" | seed_both obo head
# The flat file: no .dat in the shared data; one entry in UniProt's layout with real content
# (A0A0B4J2F2 of sample_uniprot.tsv).
seed_both uniprot_dat entry < "$here/seeds/entry.dat"

fixtures="$repo/crates"
pack() { # target name file... : each file but the last preceded by its u32 LE length
    local target="$1" name="$2"
    shift 2
    mkdir -p "$corpus/$target"
    local out="$corpus/$target/$name"
    : > "$out"
    while [ $# -gt 1 ]; do
        python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<I", int(sys.argv[1])))' \
            "$(stat -c %s "$1")" >> "$out"
        cat "$1" >> "$out"
        shift
    done
    cat "$1" >> "$out"
}
sparsify="$fixtures/sae/tests/fixtures/sparsify_tiny"
pack sae_load sparsify "$sparsify/cfg.json" "$sparsify/sae.safetensors"
tiny="$fixtures/model/tests/fixtures/tiny_checkpoints"
pack model_load tiny "$tiny/config.json" "$tiny/model.safetensors"
for pt in "$tiny/esm2_tiny.pt" "$fixtures"/sae/tests/fixtures/foreign/*/ae.pt; do
    seed torchfile "$(basename "$(dirname "$pt")")-$(basename "$pt")" < "$pt"
done
# Activation and code sets written by the store crate's own writer (fuzz/examples/store_seeds.rs).
if [ -d "$here/target/seeds" ]; then
    set_dir="$here/target/seeds/acts"
    pack store_activations tiny "$set_dir/manifest.json" "$set_dir/proteins.tsv" \
        "$set_dir/shard-00000.safetensors"
    codes_dir="$here/target/seeds/codes"
    [ -d "$codes_dir" ] && pack store_codes tiny "$codes_dir/manifest.json" \
        "$codes_dir/codes-00000.safetensors"
fi
echo "corpora in $corpus:"
for d in "$corpus"/*; do echo "  $(basename "$d"): $(ls "$d" | wc -l) files"; done
