#!/usr/bin/env python3
"""Minimal PyTorch TopK SAE trainer, the reference side of `scripts/bench_sae_train.py`.

Same math as plmscope's `TrainConfig::topk` step with AuxK off:

    xc   = x - b_dec                      (b_dec = mean of the first batch)
    pre  = relu(xc @ W_enc.T + b_enc)
    vals, idx = topk(pre, k)
    x̂    = decode(vals, idx) + b_dec
    loss = ‖x̂ - x‖² / Σ‖x - x̄‖²          (FVU, sparsify's loss)
    backward; remove the gradient component parallel to each decoder row; Adam
    (lr 2e-4 / sqrt(d_sae / 2^14), betas 0.9/0.999, eps 1e-8); renormalise decoder rows;
    dead-latent counters (rows since each latent fired).

Decoding variants (`--decode`):
  dense          torch.zeros_like(pre).scatter(-1, idx, vals) @ W_dec: what a typical user writes.
  embedding_bag  F.embedding_bag(idx, W_dec, per_sample_weights=vals, mode="sum"): only the k
                 active decoder rows are read and written (sparsify's CPU path).
`--sparse-decode` is shorthand for `--decode embedding_bag`. `--sparse-encoder-grad` also
avoids the dense encoder backward: the encoder runs under no_grad, and the k selected
pre-activations are recomputed with autograd from the gathered encoder rows, so only those rows
get gradients (the strongest PyTorch-native form we know of; memory B·k·d floats).

Data: sparse mixtures of random directions from a fixed seed, 4 batches' worth, served in a
seeded random order reshuffled every epoch (as the Rust benchmark does). Runs `--warmup` steps,
then `--steps` timed steps, and prints one JSON line:
rows_per_s, ms_per_step, peak_rss_mb (ru_maxrss of this process) and the configuration.

    python3 scripts/sae_torch_trainer.py --d-in 320 --expansion 32 --k 32 --batch 4096 \
        --steps 20 --threads 2 [--sparse-decode] [--sparse-encoder-grad]
"""

import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F

ATOMS = 2048
ATOMS_PER_ROW = 16
BATCHES_IN_MEMORY = 4


def synthetic_rows(rows: int, d_in: int, seed: int) -> torch.Tensor:
    """Each row a sum of 16 random atoms (of 2048 standard-normal directions) with U(0,1)
    coefficients, so TopK codes have structure as on real activations."""
    gen = torch.Generator().manual_seed(seed)
    atoms = torch.randn(ATOMS, d_in, generator=gen)
    which = torch.randint(0, ATOMS, (rows, ATOMS_PER_ROW), generator=gen)
    coef = torch.rand(rows, ATOMS_PER_ROW, generator=gen)
    mixing = torch.zeros(rows, ATOMS).scatter_add_(1, which, coef)
    return mixing @ atoms


class TopKSae(torch.nn.Module):
    def __init__(self, d_in: int, d_sae: int, k: int, decode: str, sparse_encoder_grad: bool):
        super().__init__()
        w = torch.randn(d_sae, d_in, generator=torch.Generator().manual_seed(0))
        w /= w.norm(dim=1, keepdim=True)
        # Tied start: encoder rows = decoder rows (sparsify, OpenAI).
        self.W_enc = torch.nn.Parameter(w.clone())
        self.b_enc = torch.nn.Parameter(torch.zeros(d_sae))
        self.W_dec = torch.nn.Parameter(w.clone())
        self.b_dec = torch.nn.Parameter(torch.zeros(d_in))
        self.k = k
        self.decode_mode = decode
        self.sparse_encoder_grad = sparse_encoder_grad

    def encode(self, x: torch.Tensor):
        xc = x - self.b_dec
        if not self.sparse_encoder_grad:
            pre = F.relu(F.linear(xc, self.W_enc, self.b_enc))
            vals, idx = pre.topk(self.k, dim=-1, sorted=False)
            return pre, vals, idx
        with torch.no_grad():
            pre = F.relu(F.linear(xc, self.W_enc, self.b_enc))
            idx = pre.topk(self.k, dim=-1, sorted=False).indices
        # Recompute only the selected pre-activations, with gradients to the k rows.
        rows = self.W_enc[idx]  # [B, k, d]
        vals = F.relu(torch.bmm(rows, xc.unsqueeze(-1)).squeeze(-1) + self.b_enc[idx])
        return pre, vals, idx

    def decode(self, pre: torch.Tensor, vals: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if self.decode_mode == "dense":
            acts = torch.zeros_like(pre).scatter(-1, idx, vals)
            return acts @ self.W_dec + self.b_dec
        out = F.embedding_bag(idx, self.W_dec, per_sample_weights=vals, mode="sum")
        return out + self.b_dec


def fvu_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    total_variance = (x - x.mean(0)).pow(2).sum()
    return (x_hat - x).pow(2).sum() / total_variance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--d-in", type=int, default=320)
    ap.add_argument("--expansion", type=int, default=32)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--decode", choices=["dense", "embedding_bag"], default="dense")
    ap.add_argument("--sparse-decode", action="store_true",
                    help="shorthand for --decode embedding_bag")
    ap.add_argument("--sparse-encoder-grad", action="store_true",
                    help="gradients only to the k selected encoder rows (see module doc)")
    args = ap.parse_args()
    if args.sparse_decode:
        args.decode = "embedding_bag"

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    d_in, k, batch = args.d_in, args.k, args.batch
    d_sae = args.expansion * d_in
    data = synthetic_rows(BATCHES_IN_MEMORY * batch, d_in, args.seed)
    sae = TopKSae(d_in, d_sae, k, args.decode, args.sparse_encoder_grad)
    lr = 2e-4 / math.sqrt(d_sae / 16384)
    opt = torch.optim.Adam(sae.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    rows_since_fired = torch.zeros(d_sae, dtype=torch.long)

    order_gen = torch.Generator().manual_seed(args.seed + 1)
    state = {"order": torch.randperm(data.shape[0], generator=order_gen), "cursor": 0}

    def next_batch() -> torch.Tensor:
        if state["cursor"] + batch > data.shape[0]:
            state["order"] = torch.randperm(data.shape[0], generator=order_gen)
            state["cursor"] = 0
        picked = state["order"][state["cursor"]:state["cursor"] + batch]
        state["cursor"] += batch
        return data[picked]

    def step(first: bool):
        x = next_batch()
        if first:
            with torch.no_grad():
                sae.b_dec.copy_(x.mean(0))
        pre, vals, idx = sae.encode(x)
        x_hat = sae.decode(pre, vals, idx)
        loss = fvu_loss(x, x_hat)
        loss.backward()
        with torch.no_grad():
            w, g = sae.W_dec, sae.W_dec.grad
            parallel = (g * w).sum(-1, keepdim=True) / (w * w).sum(-1, keepdim=True)
            g -= parallel * w
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            sae.W_dec /= sae.W_dec.norm(dim=1, keepdim=True)
            rows_since_fired.add_(batch)
            rows_since_fired[idx.flatten()] = 0
            l0 = (vals > 0).sum().item() / batch
        return loss.item(), l0

    for i in range(args.warmup):
        step(first=i == 0)
    start = time.perf_counter()
    last = (float("nan"), float("nan"))
    for i in range(args.steps):
        last = step(first=args.warmup == 0 and i == 0)
    secs = time.perf_counter() - start

    variant = args.decode + ("+sparse_encoder_grad" if args.sparse_encoder_grad else "")
    print(json.dumps({
        "impl": "pytorch",
        "variant": variant,
        "torch": torch.__version__,
        "d_in": d_in,
        "expansion": args.expansion,
        "d_sae": d_sae,
        "k": k,
        "batch": batch,
        "steps": args.steps,
        "warmup_steps": args.warmup,
        "threads": torch.get_num_threads(),
        "auxk": False,
        "rows_per_s": args.steps * batch / secs,
        "ms_per_step": 1e3 * secs / args.steps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "fvu_last": last[0],
        "l0_last": last[1],
    }))


if __name__ == "__main__":
    main()
