"""Tiny InterPLM (`ae.pt`) and Rep (Lightning `.ckpt`) checkpoints, plus reference encodings.

Usage (repository root; torch and safetensors from PyPI):
    python3 scripts/make_foreign_sae_fixtures.py [crates/sae/tests/fixtures/foreign]

Writes, for d_in 16 and d_sae 64:
    interplm_relu/ae.pt          ReLUSAE keys, non-trivial activation_rescale_factor
    interplm_topk/ae.pt          TopK keys, `k` as an int32 scalar tensor, threshold 0.25
    interplm_batchtopk/ae.pt     same keys, `k` int64, threshold 0.3, + config.json naming BatchTopKSAE
    interplm_jumprelu/ae.pt      JumpReLU keys, per-latent threshold
    interplm_sqrt_d/ae.pt        ReLUSAE with normalize_to_sqrt_d = True (to be refused)
    interplm_broken/ae.pt        ReLUSAE without `encoder.bias`, plus a stray key (to be refused)
    rep_topk.ckpt                Lightning checkpoint dict with state_dict, hyper_parameters.k, optimizer state
    rep_nan.ckpt                 the same weights with a NaN in b_dec (to be refused)
    mystery.pt, legacy.pt        an unknown state_dict; a pre-1.6 (non-zip) torch pickle (to be refused)
    <name>_expected.safetensors  x [8, 16] and float64 codes / x_hat (and codes_normalised)

The references follow each project's published inference rule, written here from the format
notes (nn.Linear stores weight as [out, in], so y = x W^T + b):
    InterPLM ReLU      f = relu((x - bias) W_e^T + b_e)           x_hat = f W_d^T + bias
    InterPLM TopK      f = top_k(relu((x - b_dec) W_e^T + b_e))   x_hat = f W_d^T + b_dec
    InterPLM BatchTopK f = g * (g > threshold), g = relu((x - b_dec) W_e^T + b_e)
    InterPLM JumpReLU  p = x W_e^T + b_e; f = relu(p * (p > threshold)); x_hat = f W_d^T + b_d
    normalised codes   f / activation_rescale_factor (per-feature maximum)
    Rep TopK           n = layer_norm(x) (mean over d, biased variance, eps 1e-5 inside the root)
                       f = top_k then relu of ((n - b_dec) W_enc + b_enc)
                       x_hat = (f W_dec + b_dec) * sqrt(biased variance) + mean
                       (FeatureNormalizer and TopKAuto in Rep's
                       Folder_Random_Seed_Regular_Pooling_Scripts/sparse_auto_script.py). Its
                       expected file is written by a float64 numpy implementation, checked against
                       torch's layer_norm; its x adds 4 rows with standard deviation 0.05-0.3,
                       where eps inside the root changes the codes by up to ~1e-3.
"""

import collections
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

D_IN, D_SAE, ROWS = 16, 64, 8
OUT = sys.argv[1] if len(sys.argv) > 1 else "crates/sae/tests/fixtures/foreign"


def linear_weights(gen):
    # Encoder rows close to the decoder columns, as both projects initialise them, plus noise
    # so the two differ.
    dec = torch.randn(D_IN, D_SAE, generator=gen)
    dec = dec / dec.norm(dim=0, keepdim=True)
    enc = dec.T.clone() + 0.1 * torch.randn(D_SAE, D_IN, generator=gen)
    return enc.contiguous(), dec.contiguous()


def rescale(gen):
    return (0.5 + 2.0 * torch.rand(D_SAE, generator=gen)).float()


def top_k_rows(g, k):
    vals, idx = g.topk(k, dim=-1)
    return torch.zeros_like(g).scatter(-1, idx, vals)


def write_expected(name, x, codes, x_hat, codes_normalised=None):
    tensors = {"x": x.float().contiguous(), "codes": codes.contiguous(), "x_hat": x_hat.contiguous()}
    if codes_normalised is not None:
        tensors["codes_normalised"] = codes_normalised.contiguous()
    save_file(tensors, os.path.join(OUT, f"{name}_expected.safetensors"))


def save_state_dict(folder, state, config=None):
    os.makedirs(os.path.join(OUT, folder), exist_ok=True)
    torch.save(state, os.path.join(OUT, folder, "ae.pt"))
    if config is not None:
        with open(os.path.join(OUT, folder, "config.json"), "w") as f:
            json.dump(config, f, indent=1)


def d64(t):
    return t.double()


def interplm_relu(gen, x):
    enc, dec = linear_weights(gen)
    bias = 0.1 * torch.randn(D_IN, generator=gen)
    enc_b = 0.05 * torch.randn(D_SAE, generator=gen)
    factor = rescale(gen)
    state = collections.OrderedDict(
        [
            ("bias", bias),
            ("encoder.weight", enc),
            ("encoder.bias", enc_b),
            ("decoder.weight", dec),
            ("activation_rescale_factor", factor),
            ("normalize_to_sqrt_d", torch.tensor(False)),
        ]
    )
    save_state_dict("interplm_relu", state)
    f = torch.relu((d64(x) - d64(bias)) @ d64(enc).T + d64(enc_b))
    x_hat = f @ d64(dec).T + d64(bias)
    write_expected("interplm_relu", x, f, x_hat, f / d64(factor))

    sqrt_d = collections.OrderedDict(state)
    sqrt_d["normalize_to_sqrt_d"] = torch.tensor(True)
    save_state_dict("interplm_sqrt_d", sqrt_d)

    broken = collections.OrderedDict((k, v) for k, v in state.items() if k != "encoder.bias")
    broken["encoder.bias_renamed"] = enc_b
    save_state_dict("interplm_broken", broken)


def interplm_topk(gen, x, batch):
    enc, dec = linear_weights(gen)
    b_dec = 0.1 * torch.randn(D_IN, generator=gen)
    enc_b = 0.05 * torch.randn(D_SAE, generator=gen)
    factor = rescale(gen)
    k, threshold = 5, (0.3 if batch else 0.25)
    state = collections.OrderedDict(
        [
            ("encoder.weight", enc),
            ("encoder.bias", enc_b),
            ("decoder.weight", dec),
            ("b_dec", b_dec),
            # InterPLM registers k as a 32-bit int; dictionary_learning files may hold int64.
            ("k", torch.tensor(k, dtype=torch.int64 if batch else torch.int32)),
            ("threshold", torch.tensor(threshold, dtype=torch.float32)),
            ("activation_rescale_factor", factor),
            ("normalize_to_sqrt_d", torch.tensor(False)),
        ]
    )
    name = "interplm_batchtopk" if batch else "interplm_topk"
    config = {"trainer": {"dict_class": "BatchTopKSAE", "k": k}} if batch else None
    save_state_dict(name, state, config)
    g = torch.relu((d64(x) - d64(b_dec)) @ d64(enc).T + d64(enc_b))
    f = g * (g > threshold) if batch else top_k_rows(g, k)
    x_hat = f @ d64(dec).T + d64(b_dec)
    write_expected(name, x, f, x_hat, f / d64(factor))


def interplm_jumprelu(gen, x):
    enc, dec = linear_weights(gen)
    enc_b = 0.05 * torch.randn(D_SAE, generator=gen)
    dec_b = 0.1 * torch.randn(D_IN, generator=gen)
    threshold = 0.2 + 0.4 * torch.rand(D_SAE, generator=gen)
    factor = rescale(gen)
    state = collections.OrderedDict(
        [
            ("encoder.weight", enc),
            ("encoder.bias", enc_b),
            ("decoder.weight", dec),
            ("decoder.bias", dec_b),
            ("threshold", threshold),
            ("activation_rescale_factor", factor),
            ("normalize_to_sqrt_d", torch.tensor(False)),
        ]
    )
    save_state_dict("interplm_jumprelu", state)
    p = d64(x) @ d64(enc).T + d64(enc_b)
    f = torch.relu(p * (p > d64(threshold)))
    x_hat = f @ d64(dec).T + d64(dec_b)
    write_expected("interplm_jumprelu", x, f, x_hat, f / d64(factor))


def rep_lightning(gen, x):
    k = 4
    w_dec = torch.randn(D_SAE, D_IN, generator=gen) / D_SAE**0.5
    w_enc = w_dec.T.clone() * 4.0 + 0.1 * torch.randn(D_IN, D_SAE, generator=gen)
    b_enc = 0.05 * torch.randn(D_SAE, generator=gen)
    b_dec = 0.1 * torch.randn(D_IN, generator=gen)
    params = [w_enc, w_dec, b_enc, b_dec]
    state = collections.OrderedDict(
        [(f"model.weights.{i}", p) for i, p in enumerate(params)]
        + [("model.neuron_idle_counts", torch.zeros(D_SAE, dtype=torch.long))]
    )
    # Adam state: tensors inside lists and int-keyed dicts, as Lightning saves it.
    optimizer = {
        "state": {
            i: {"step": torch.tensor(10.0), "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
            for i, p in enumerate(params)
        },
        "param_groups": [
            {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False, "params": [0, 1, 2, 3]}
        ],
    }
    ckpt = {
        "epoch": 0,
        "global_step": 10,
        "pytorch-lightning_version": "2.x",
        "state_dict": state,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 1, "completed": 0}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {"best_model_score": torch.tensor(0.125), "dirpath": "Topk_weights"}},
        "optimizer_states": [optimizer],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": {
            "input_dim": D_IN,
            "hidden_dim": D_SAE,
            "k": k,
            "encoder_decoder_init": 1,
            "learning_rate": 0.001,
            "inactive_threshold": 200,
        },
    }
    torch.save(ckpt, os.path.join(OUT, "rep_topk.ckpt"))
    # A diverged run's weights: one NaN in b_dec (to be refused, naming model.weights.3).
    broken = collections.OrderedDict(state)
    broken["model.weights.3"] = b_dec.clone()
    broken["model.weights.3"][5] = float("nan")
    torch.save({"state_dict": broken, "hyper_parameters": {"k": k}}, os.path.join(OUT, "rep_nan.ckpt"))
    # Low-variance rows (own generator, so the other fixtures keep their bytes).
    small = torch.randn(4, D_IN, generator=torch.Generator().manual_seed(5)) + 0.3
    x = torch.cat([x, small * torch.linspace(0.05, 0.3, 4).unsqueeze(1)]).float()
    as64 = [p.double().numpy() for p in params]
    f, x_hat = rep_forward_numpy(x.double().numpy(), *as64, k)
    # Cross-check against torch's own layer_norm (biased variance, eps inside the root).
    xd = d64(x)
    mean = xd.mean(dim=-1, keepdim=True)
    var = ((xd - mean) ** 2).mean(dim=-1, keepdim=True)
    n = torch.nn.functional.layer_norm(xd, (D_IN,), eps=1e-5)
    pre = (n - d64(b_dec)) @ d64(w_enc) + d64(b_enc)
    vals, idx = pre.topk(k, dim=-1)
    f_torch = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
    x_hat_torch = (f_torch @ d64(w_dec) + d64(b_dec)) * var.sqrt() + mean
    assert np.abs(f - f_torch.numpy()).max() < 1e-12 and np.abs(x_hat - x_hat_torch.numpy()).max() < 1e-12
    write_expected("rep_topk", x, torch.from_numpy(f), torch.from_numpy(x_hat))


def rep_forward_numpy(x, w_enc, w_dec, b_enc, b_dec, k, eps=1e-5):
    """Rep's TopKAuto forward in float64 numpy: returns codes [rows, d_sae] and x_hat."""
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)  # biased, as Rep's .pow(2).mean()
    n = (x - mean) / np.sqrt(var + eps)
    pre = (n - b_dec) @ w_enc + b_enc
    top = np.argsort(-pre, axis=1, kind="stable")[:, :k]
    rows = np.arange(pre.shape[0])[:, None]
    f = np.zeros_like(pre)
    f[rows, top] = np.maximum(pre[rows, top], 0.0)
    x_hat = (f @ w_dec + b_dec) * np.sqrt(var) + mean  # Rep multiplies back by sqrt(var), no eps
    return f, x_hat


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(20250705)
    # Residual-stream-like rows: a shared offset and row scales from 0.5 to 4.
    x = torch.randn(ROWS, D_IN, generator=gen) + 0.3
    x = x * torch.linspace(0.5, 4.0, ROWS).unsqueeze(1)
    interplm_relu(gen, x)
    interplm_topk(gen, x, batch=False)
    interplm_topk(gen, x, batch=True)
    interplm_jumprelu(gen, x)
    rep_lightning(gen, x)
    torch.save({"W_in": torch.zeros(2, 2), "W_out": torch.zeros(2, 2)}, os.path.join(OUT, "mystery.pt"))
    torch.save({"bias": torch.zeros(2)}, os.path.join(OUT, "legacy.pt"), _use_new_zipfile_serialization=False)
    print(f"wrote fixtures to {OUT}")


if __name__ == "__main__":
    main()
