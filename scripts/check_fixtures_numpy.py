#!/usr/bin/env python3
"""Check ESM2 parity fixtures against an independent float64 NumPy forward pass.

The fixtures come from Hugging Face transformers; this re-derives the same numbers from the
architecture as written in ARCHITECTURE.md ("ESM2 facts that matter") and the raw
model.safetensors, without torch or transformers. Agreement shows that the fixtures hold what
their key names say (layer numbering, mlp_in/mlp_out sites, token dropout, rotary convention,
final LayerNorm, LM head), and the reported differences are the float32 error of the reference,
a floor for the tolerance of the Rust tests.

Example:
  python3 scripts/check_fixtures_numpy.py --model /tmp/esm2_t6 --fixtures /tmp/fixtures_t6 --proteins 0,6,10,12
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from scipy.special import erf

MASK_RATIO_TRAIN = 0.15 * 0.8


def load_weights(model_dir: Path) -> dict[str, np.ndarray]:
    raw = load_file(str(model_dir / "model.safetensors"))
    weights = {}
    for name, value in raw.items():
        # transformers >= 5 writes LayerNorm.gamma/beta; older writers use weight/bias.
        name = name.removesuffix(".gamma") + ".weight" if name.endswith(".gamma") else name
        name = name.removesuffix(".beta") + ".bias" if name.endswith(".beta") else name
        weights[name] = value.astype(np.float64)
    return weights


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def rotary(x, n_tokens, head_dim):
    """Rotate the two halves of each head dimension pair-wise by position * 10000^(-2i/d)."""
    inv_freq = 1.0 / 10000.0 ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.arange(n_tokens, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos = np.cos(np.concatenate([angles, angles], -1))
    sin = np.sin(np.concatenate([angles, angles], -1))
    half = head_dim // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin


def forward(w: dict, cfg: dict, ids: np.ndarray) -> dict:
    d, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    head_dim = d // heads
    n = len(ids)
    is_mask = ids == cfg["mask_token_id"]
    x = w["esm.embeddings.word_embeddings.weight"][ids]
    x = np.where(is_mask[:, None], 0.0, x) * (1 - MASK_RATIO_TRAIN) / (1 - is_mask.mean())
    hidden, mlp = [x], {}
    for b in range(cfg["num_hidden_layers"]):
        p = f"esm.encoder.layer.{b}."
        h = layer_norm(x, w[p + "attention.LayerNorm.weight"], w[p + "attention.LayerNorm.bias"], eps)

        def proj(name, inp, p=p):
            return inp @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (
            proj(f"attention.self.{s}", h).reshape(n, heads, head_dim).transpose(1, 0, 2)
            for s in ("query", "key", "value")
        )
        q = rotary(q * head_dim**-0.5, n, head_dim)
        k = rotary(k, n, head_dim)
        scores = q @ k.transpose(0, 2, 1)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(n, d)
        x = x + proj("attention.output.dense", context)
        mlp_in = layer_norm(x, w[p + "LayerNorm.weight"], w[p + "LayerNorm.bias"], eps)
        mlp_out = proj("output.dense", gelu(proj("intermediate.dense", mlp_in)))
        x = x + mlp_out
        mlp[("mlp_in", b + 1)], mlp[("mlp_out", b + 1)] = mlp_in, mlp_out
        hidden.append(x)
    hidden[-1] = layer_norm(
        x, w["esm.encoder.emb_layer_norm_after.weight"], w["esm.encoder.emb_layer_norm_after.bias"], eps
    )
    head = gelu(hidden[-1] @ w["lm_head.dense.weight"].T + w["lm_head.dense.bias"])
    head = layer_norm(head, w["lm_head.layer_norm.weight"], w["lm_head.layer_norm.bias"], eps)
    decoder = w.get("lm_head.decoder.weight", w["esm.embeddings.word_embeddings.weight"])
    logits = head @ decoder.T + w["lm_head.bias"]
    return {"hidden": hidden, "mlp": mlp, "logits": logits}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--fixtures", type=Path, required=True, help="dir with fixtures.{safetensors,json}")
    parser.add_argument("--proteins", default="all", help="comma-separated protein indices, or 'all'")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="max abs difference allowed")
    args = parser.parse_args(argv)

    meta = json.loads((args.fixtures / "fixtures.json").read_text())
    cfg = meta["checkpoint"]["config"]
    fixtures = load_file(str(args.fixtures / "fixtures.safetensors"))
    weights = load_weights(args.model)
    indices = range(len(meta["proteins"])) if args.proteins == "all" else [int(i) for i in args.proteins.split(",")]
    worst = 0.0
    for i in indices:
        key = f"p{i}"
        ids = fixtures[f"{key}.input_ids"]
        pos = fixtures[f"{key}.positions"]
        n_res = len(ids) - 2
        ref = forward(weights, cfg, ids)
        diffs = {}
        for layer, h in enumerate(ref["hidden"]):
            diffs[f"hidden.{layer}"] = np.abs(fixtures[f"{key}.hidden.{layer}"] - h[pos]).max()
            diffs[f"mean.{layer}"] = np.abs(fixtures[f"{key}.mean.{layer}"] - h[1 : 1 + n_res].mean(0)).max()
        for block in meta["blocks"]:
            for site in ("mlp_in", "mlp_out"):
                expected = ref["mlp"][(site, block)][pos]
                diffs[f"{site}.{block}"] = np.abs(fixtures[f"{key}.{site}.{block}"] - expected).max()
        diffs["logits"] = np.abs(fixtures[f"{key}.logits"] - ref["logits"][pos]).max()
        diffs["batched_last"] = np.abs(fixtures[f"{key}.batched_last"] - ref["hidden"][-1][pos]).max()
        name, value = max(diffs.items(), key=lambda kv: kv[1])
        worst = max(worst, value)
        print(f"{key} {meta['proteins'][i]['label']}: tokens={len(ids)} max|diff|={value:.2e} at {name}")
    summary = {"proteins_checked": len(list(indices)), "max_abs_diff": float(worst), "tolerance": args.tolerance}
    print(json.dumps(summary))
    if worst > args.tolerance:
        sys.exit(f"fixtures differ from the NumPy forward by {worst:.3e} > {args.tolerance}")


if __name__ == "__main__":
    main(sys.argv[1:])
