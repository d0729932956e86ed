#!/usr/bin/env python3
"""Reference training steps for plmscope-sae, computed densely with PyTorch autograd.

Writes crates/sae/tests/fixtures/reference_step_<case>.safetensors: a fixed initial state and two
batches (drawn here from a seeded generator), and after each of two steps the loss terms, the
gradients handed to Adam (after the decoder-parallel projection when the decoder is kept at unit
norm), the updated weights and the dead-latent counters. The Rust test replays the same steps with
its sparse backward and compares.

    python3 scripts/sae_reference_step.py   # from the repository root

Formulas (the contract the Rust trainer implements):
    pre   = (x - b_dec) @ enc_t.T + b_enc
    codes = scatter(topk(pre, k)) then relu            (topk)   | relu(pre)   (relu)
    x_hat = codes @ w_dec + b_dec
    recon = sum((x_hat - x)^2) / D,   D = sum((x - mean_rows(x))^2) (fvu) | x.numel() (mse)
    auxk  = c * min(n_dead / k_aux, 1) * sum((e_hat - (x - x_hat).detach())^2) / D,
            e_hat = scatter(relu(topk(pre over dead latents, min(k_aux, n_dead)))) @ w_dec,
            k_aux = d_in // 2, dead = rows_since_fired >= window
    l1    = lambda * mean_rows(sum_j codes_j * ||w_dec_j||)
    unit-norm decoder: g_j -= (g_j . w_j) / (w_j . w_j) * w_j before Adam; rows renormalised after.
    Adam: torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-8).
"""
import os

import torch
from safetensors.torch import save_file

D_IN, D_SAE, K, BATCH = 16, 64, 4, 32
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "sae", "tests", "fixtures")

CASES = {
    "topk": dict(arch="topk", auxk=0.0, l1=0.0, unit_norm=True, loss="fvu", window=10_000),
    "topk_auxk": dict(arch="topk", auxk=1.0 / 32.0, l1=0.0, unit_norm=True, loss="fvu", window=40),
    "topk_free_decoder": dict(arch="topk", auxk=0.0, l1=0.0, unit_norm=False, loss="fvu", window=10_000),
    "relu_l1": dict(arch="relu", auxk=0.0, l1=0.05, unit_norm=True, loss="mse", window=10_000),
}
LR = 1e-2


def initial_state(gen):
    w_dec = torch.randn(D_SAE, D_IN, generator=gen, dtype=torch.float64).float()
    w_dec = w_dec / w_dec.norm(dim=1, keepdim=True)
    enc_t = (w_dec + 0.3 * torch.randn(D_SAE, D_IN, generator=gen, dtype=torch.float64).float()).contiguous()
    b_enc = 0.1 * torch.randn(D_SAE, generator=gen, dtype=torch.float64).float()
    b_dec = 0.2 * torch.randn(D_IN, generator=gen, dtype=torch.float64).float()
    return dict(enc_t=enc_t, b_enc=b_enc, w_dec=w_dec, b_dec=b_dec)


def batch(gen):
    # Sparse non-negative mixtures of a few directions plus noise, so TopK codes are meaningful.
    atoms = torch.randn(8, D_IN, generator=gen, dtype=torch.float64)
    mix = torch.rand(BATCH, 8, generator=gen, dtype=torch.float64) * (torch.rand(BATCH, 8, generator=gen, dtype=torch.float64) < 0.4)
    return (mix @ atoms + 0.1 * torch.randn(BATCH, D_IN, generator=gen, dtype=torch.float64) + 0.5).float()


def losses(p, x, dead, c):
    xc = x - p["b_dec"]
    pre = xc @ p["enc_t"].T + p["b_enc"]
    if c["arch"] == "topk":
        vals, idx = pre.topk(K, dim=1)
        codes = torch.zeros_like(pre).scatter(1, idx, torch.relu(vals))
    else:
        codes = torch.relu(pre)
    x_hat = codes @ p["w_dec"] + p["b_dec"]
    denom = ((x - x.mean(0)) ** 2).sum() if c["loss"] == "fvu" else torch.tensor(float(x.numel()))
    recon = ((x_hat - x) ** 2).sum() / denom
    aux = torch.zeros(())
    n_dead = int(dead.sum())
    if c["auxk"] > 0 and n_dead > 0:
        k_nom = D_IN // 2
        k_aux = min(k_nom, n_dead)
        scale = min(n_dead / k_nom, 1.0)
        masked = torch.where(dead[None, :], pre, torch.full_like(pre, -float("inf")))
        v, i = masked.topk(k_aux, dim=1)
        e_hat = torch.zeros_like(pre).scatter(1, i, torch.relu(v)) @ p["w_dec"]
        aux = c["auxk"] * scale * ((e_hat - (x - x_hat).detach()) ** 2).sum() / denom
    l1 = c["l1"] * (codes * p["w_dec"].norm(dim=1)).sum(1).mean()
    return recon, aux, l1, codes


def run_case(name, c, seed):
    gen = torch.Generator().manual_seed(seed)
    init = initial_state(gen)
    xs = [batch(gen), batch(gen)]
    # Half the latents start "dead" for AuxK cases; counters are rows since last fired.
    counters = torch.zeros(D_SAE, dtype=torch.int64)
    counters[::2] = c["window"]
    params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    order = ["enc_t", "b_enc", "w_dec", "b_dec"]
    opt = torch.optim.Adam([params[k] for k in order], lr=LR, betas=(0.9, 0.999), eps=1e-8)
    out = {f"init.{k}": v for k, v in init.items()}
    out["init.rows_since_fired"] = counters.clone()
    for s, x in enumerate(xs, start=1):
        out[f"x{s}"] = x
        dead = counters >= c["window"]
        opt.zero_grad()
        recon, aux, l1, codes = losses(params, x, dead, c)
        loss = recon + aux + l1
        loss.backward()
        with torch.no_grad():
            if c["unit_norm"]:
                w, g = params["w_dec"], params["w_dec"].grad
                g -= ((g * w).sum(1, keepdim=True) / (w * w).sum(1, keepdim=True)) * w
            for k in order:
                out[f"step{s}.grad.{k}"] = params[k].grad.clone()
            opt.step()
            if c["unit_norm"]:
                params["w_dec"] /= params["w_dec"].norm(dim=1, keepdim=True)
            for k in order:
                out[f"step{s}.param.{k}"] = params[k].detach().clone()
            counters += BATCH
            counters[(codes > 0).any(0)] = 0
        out[f"step{s}.rows_since_fired"] = counters.clone()
        out[f"step{s}.loss"] = torch.tensor([loss.detach().item(), recon.detach().item(), float(aux.detach()), float(l1.detach())], dtype=torch.float64)
    meta = {k: str(v) for k, v in c.items()}
    meta.update(lr=str(LR), k=str(K), d_in=str(D_IN), d_sae=str(D_SAE), seed=str(seed))
    path = os.path.join(OUT_DIR, f"reference_step_{name}.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    os.makedirs(OUT_DIR, exist_ok=True)
    for n, (name, case) in enumerate(CASES.items()):
        run_case(name, case, seed=1234 + n)
