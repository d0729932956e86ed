#!/usr/bin/env python3
"""PyTorch side of the embed speed benchmark: what a typical user script does with HF `EsmModel`.

Does the work of `plmscope embed --level residue,protein --long truncate`: proteins truncated to
1022 residues, one forward pass per batch (float32, eval, torch.inference_mode, all hidden states),
and for each requested layer the residue rows are copied out of the batch (as a writer would) and
mean-pooled per protein. Nothing is written to disk. Prints one JSON line.

Batching:
  fixed8  batches of --batch-size (8) in file order, padded to the longest, the usual user script;
  budget  proteins sorted by length (longest first), greedily grouped so that
          batch size x padded length <= --token-budget.

Example:
  python3 scripts/bench_embed_torch.py --model /tmp/esm2_t6 --fasta examples/bench256.fasta \
      --threads 2 --mode budget --token-budget 8192 --layers 3,6
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from fasta_io import MAX_RESIDUES, read_fasta
from transformers import EsmModel, EsmTokenizer

# HF's load report lists the LM head this class does not use; a benchmark only times the model.
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()


def matmul_gflops(threads: int, repeats: int = 30) -> dict:
    """GFLOP/s of a fixed f32 matmul (4096x320 @ 320x1280), to show the machine's state."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4096, 320, generator=gen)
    b = torch.randn(320, 1280, generator=gen)
    flop = 2 * 4096 * 320 * 1280
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return {
        "shape": "4096x320 @ 320x1280 f32",
        "threads": threads,
        "median_gflops": round(flop / statistics.median(times) / 1e9, 1),
        "best_gflops": round(flop / min(times) / 1e9, 1),
    }


def make_batches(lengths: list[int], mode: str, batch_size: int, token_budget: int) -> list[list[int]]:
    """Protein indices per batch. Padded length = longest residues + 2 (<cls>, <eos>)."""
    if mode == "fixed8":
        order = list(range(len(lengths)))
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    current_max = 0
    for index in order:
        tokens = lengths[index] + 2
        new_max = max(current_max, tokens)
        if current and (len(current) + 1) * new_max > token_budget:
            batches.append(current)
            current, new_max = [], tokens
        current.append(index)
        current_max = new_max
    if current:
        batches.append(current)
    return batches


def embed(model, tokenizer, sequences: list[str], batches, layers: list[int]) -> dict:
    padded_tokens = 0
    checksum = 0.0
    for batch in batches:
        texts = [sequences[i] for i in batch]
        inputs = tokenizer(texts, padding=True, return_tensors="pt")
        padded_tokens += inputs["input_ids"].numel()
        hidden_states = model(**inputs, output_hidden_states=True).hidden_states
        for layer in layers:
            states = hidden_states[layer]
            for row, text in enumerate(texts):
                residues = states[row, 1 : 1 + len(text)]
                rows = residues.numpy().copy()  # per-residue rows, as a shard writer copies them
                protein = residues.mean(dim=0)  # protein level: mean over residues only
                checksum += float(rows[0, 0]) + float(protein[0])
    return {"padded_tokens": padded_tokens, "checksum": checksum}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="HF-layout ESM2 checkpoint dir")
    parser.add_argument("--fasta", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", choices=["fixed8", "budget"], default="fixed8")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size of mode fixed8")
    parser.add_argument("--token-budget", type=int, default=8192, help="padded tokens per batch, mode budget")
    parser.add_argument("--layers", default="3,6", help="comma-separated hidden_states indices")
    parser.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa", help="HF attention implementation")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    gflops = matmul_gflops(args.threads)

    load_start = time.perf_counter()
    model = EsmModel.from_pretrained(
        args.model, add_pooling_layer=False, dtype=torch.float32, attn_implementation=args.attn
    ).eval()
    tokenizer = EsmTokenizer(vocab_file=str(args.model / "vocab.txt"))
    load_seconds = time.perf_counter() - load_start

    layers = [int(x) for x in args.layers.split(",")]
    n_layers = model.config.num_hidden_layers
    if any(not 0 <= layer <= n_layers for layer in layers):
        parser.error(f"--layers must lie in 0..{n_layers} for this model")
    records = read_fasta(args.fasta)
    sequences = [rec.sequence[:MAX_RESIDUES].upper() for rec in records]
    lengths = [len(s) for s in sequences]
    batches = make_batches(lengths, args.mode, args.batch_size, args.token_budget)

    with torch.inference_mode():
        start = time.perf_counter()
        work = embed(model, tokenizer, sequences, batches, layers)
        seconds = time.perf_counter() - start
    # Measured again after the run: on a shared machine the load can change mid-run.
    gflops_end = matmul_gflops(args.threads)

    residues = sum(lengths)
    print(
        json.dumps(
            {
                "impl": "pytorch",
                "model": {
                    "dir": str(args.model),
                    "hidden_size": model.config.hidden_size,
                    "num_hidden_layers": n_layers,
                },
                "fasta": str(args.fasta),
                "mode": args.mode,
                "batch_size": args.batch_size if args.mode == "fixed8" else None,
                "token_budget": args.token_budget if args.mode == "budget" else None,
                "layers": layers,
                "threads": args.threads,
                "attn_implementation": args.attn,
                "proteins": len(sequences),
                "batches": len(batches),
                "residues": residues,
                "padded_tokens": work["padded_tokens"],
                "seconds": round(seconds, 3),
                "residues_per_s": round(residues / seconds, 1),
                "load_seconds": round(load_seconds, 3),
                # Linux reports ru_maxrss in KiB.
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "matmul": gflops,
                "matmul_end": gflops_end,
                "checksum": work["checksum"],
                "versions": {
                    "python": platform.python_version(),
                    "torch": torch.__version__,
                    "transformers": transformers.__version__,
                    "numpy": np.__version__,
                },
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
