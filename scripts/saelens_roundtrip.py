#!/usr/bin/env python3
"""Independent readers/writers for plmscope-sae's checkpoint round-trip tests (SAELens'
parameter names and formulas, no SAELens install needed).

    python3 scripts/saelens_roundtrip.py encode DIR INPUT OUTPUT
        numpy + safetensors only (no torch; what CI installs). Reads DIR/cfg.json +
        DIR/sae_weights.safetensors as SAELens would, encodes INPUT's `x` with
            codes = topk(relu((x - b_dec * apply_b_dec_to_input) @ W_enc + b_enc), k)
        (jumprelu: relu(pre) * (pre > threshold); standard: relu(pre)) and decodes with
        x_hat = codes @ W_dec + b_dec; writes dense `codes` and `x_hat` to OUTPUT.

    python3 scripts/saelens_roundtrip.py fixtures
        Needs torch. Writes tiny foreign checkpoints with their expected outputs into
        crates/sae/tests/fixtures/: sparsify_tiny/{cfg.json, sae.safetensors} (bf16 weights) +
        sparsify_tiny_expected.safetensors, interprot_tiny.safetensors +
        interprot_tiny_expected.safetensors.
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file as load_numpy, save_file as save_numpy

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "sae", "tests", "fixtures")


def saelens_encode(directory, input_path, output_path):
    with open(os.path.join(directory, "cfg.json")) as f:
        cfg = json.load(f)
    w = {name: t.astype(np.float32) for name, t in load_numpy(os.path.join(directory, "sae_weights.safetensors")).items()}
    x = load_numpy(input_path)["x"].astype(np.float32)
    sae_in = x - w["b_dec"] * np.float32(1.0 if cfg["apply_b_dec_to_input"] else 0.0)
    pre = sae_in @ w["W_enc"] + w["b_enc"]
    arch = cfg["architecture"]
    if arch == "topk":
        k = cfg["k"]
        # The k largest pre-activations of each row (order within the k does not matter).
        idx = np.argpartition(-pre, k - 1, axis=-1)[:, :k]
        vals = np.take_along_axis(pre, idx, axis=-1)
        codes = np.zeros_like(pre)
        np.put_along_axis(codes, idx, np.maximum(vals, np.float32(0.0)), axis=-1)
    elif arch in ("jumprelu", "jumprelu_transcoder"):
        codes = np.maximum(pre, np.float32(0.0)) * (pre > w["threshold"])
    elif arch in ("standard", "transcoder", "skip_transcoder"):
        codes = np.maximum(pre, np.float32(0.0))
    else:
        raise SystemExit(f"unknown architecture {arch}")
    x_hat = codes @ w["W_dec"] + w["b_dec"]
    save_numpy(
        {"codes": np.ascontiguousarray(codes, dtype=np.float32), "x_hat": np.ascontiguousarray(x_hat, dtype=np.float32)},
        output_path,
    )


def layer_norm(x, eps=1e-5):
    # OpenAI's LN as used by InterProt: unbiased std, eps added to the std.
    mu = x.mean(dim=-1, keepdim=True)
    xc = x - mu
    std = xc.std(dim=-1, keepdim=True)
    return xc / (std + eps), mu, std


def write_fixtures():
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(99)
    d, n, k, rows = 12, 48, 5, 10

    # sparsify: one folder per hookpoint; weights saved in bf16 (its usual dtype).
    enc = torch.randn(n, d, generator=gen).to(torch.bfloat16)
    enc_b = (0.1 * torch.randn(n, generator=gen)).to(torch.bfloat16)
    w_dec = torch.randn(n, d, generator=gen).to(torch.bfloat16)
    b_dec = (0.2 * torch.randn(d, generator=gen)).to(torch.bfloat16)
    folder = os.path.join(FIXTURES, "sparsify_tiny")
    os.makedirs(folder, exist_ok=True)
    save_file({"encoder.weight": enc, "encoder.bias": enc_b, "W_dec": w_dec, "b_dec": b_dec}, os.path.join(folder, "sae.safetensors"))
    cfg = dict(activation="topk", expansion_factor=4, normalize_decoder=True, num_latents=n, k=k,
               multi_topk=False, skip_connection=False, transcode=False, d_in=d)
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    x = torch.randn(rows, d, generator=gen)
    pre = torch.relu((x - b_dec.float()) @ enc.float().T + enc_b.float())
    vals, idx = pre.topk(k, dim=-1)
    codes = torch.zeros_like(pre).scatter(-1, idx, vals)
    x_hat = codes @ w_dec.float() + b_dec.float()
    save_file({"x": x, "codes": codes, "x_hat": x_hat}, os.path.join(FIXTURES, "sparsify_tiny_expected.safetensors"))

    # InterProt: w_enc [d, h], w_dec [h, d], b_enc [h], b_pre [d]; inputs LayerNorm'd per token.
    w_enc = torch.randn(d, n, generator=gen)
    w_dec2 = torch.randn(n, d, generator=gen)
    b_enc = 0.1 * torch.randn(n, generator=gen)
    b_pre = 0.1 * torch.randn(d, generator=gen)
    save_file({"w_enc": w_enc, "w_dec": w_dec2, "b_enc": b_enc, "b_pre": b_pre}, os.path.join(FIXTURES, "interprot_tiny.safetensors"))
    x = 3.0 * torch.randn(rows, d, generator=gen) + 1.0
    xn, mu, std = layer_norm(x)
    pre = (xn - b_pre) @ w_enc + b_enc
    vals, idx = pre.topk(k, dim=-1)
    codes = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
    x_hat = (codes @ w_dec2 + b_pre) * std + mu
    save_file({"x": x, "codes": codes, "x_hat": x_hat}, os.path.join(FIXTURES, "interprot_tiny_expected.safetensors"))
    print("wrote fixtures into", os.path.normpath(FIXTURES))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "encode":
        saelens_encode(*sys.argv[2:])
    elif len(sys.argv) == 2 and sys.argv[1] == "fixtures":
        write_fixtures()
    else:
        raise SystemExit(__doc__)
