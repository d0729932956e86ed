#!/usr/bin/env python3
"""Side-by-side embed benchmark: `plmscope embed` against PyTorch `EsmModel` on the same
checkpoint (written by `plmscope model init`) and the same 256 real proteins (median length
~300), 2 threads each, the programs alternated run by run so machine drift hits both.

Each run prints a fixed torch matmul's GFLOP/s first (the machine's state), then times:
  plmscope  `plmscope embed --layers 3,6 --level residue,protein` (writes the sets to disk)
  torch-fixed8  HF EsmModel, batches of 8 in file order padded to the longest (a typical script)
  torch-budget  HF EsmModel, the same length-sorted token-budget batches as plmscope
Throughput is each program's own timer around the embedding loop (after model load); peak RSS
and whole-process wall time come from the OS (wait4). Prints a Markdown table of medians and
the per-run ratios.

    cargo build --release -p plmscope
    python3 scripts/bench_embed.py --arch esm2_t6_8M --runs 3
    python3 scripts/bench_embed.py --arch esm2_t12_35M --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"


def run_rss(cmd: list[str], env: dict) -> tuple[float, float, str, str]:
    """Like run, with the child's own peak RSS from wait4."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        o, e = out.read(), err.read()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{e[-3000:]}")
        return wall, usage.ru_maxrss / 1024.0, o, e


def matmul_gflops() -> float:
    code = (
        "import torch,time,statistics;torch.set_num_threads(2);a=torch.randn(4096,320);b=torch.randn(320,1280)\n"
        "[a@b for _ in range(3)]\nts=[]\nfor _ in range(20):\n s=time.perf_counter();a@b;ts.append(time.perf_counter()-s)\n"
        "print(2*4096*320*1280/statistics.median(ts)/1e9)"
    )
    return float(subprocess.check_output([sys.executable, "-c", code], text=True).strip())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="esm2_t6_8M")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--token-budget", type=int, default=8192)
    p.add_argument("--plmscope", default=str(ROOT / "target/release/plmscope"))
    p.add_argument("--work", default="/tmp/plmscope-bench")
    args = p.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model = work / args.arch
    if not (model / "model.safetensors").exists():
        subprocess.check_call([args.plmscope, "model", "init", "--arch", args.arch, "--seed", "0", "--out", str(model)])
    fasta = work / "bench256.fasta"
    if not fasta.exists():
        subprocess.check_call([sys.executable, str(SCRIPTS / "make_bench_fasta.py"), "--out", str(fasta)])
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    t = str(args.threads)
    commands = {
        "plmscope": lambda out: [args.plmscope, "--threads", t, "embed", "--model", str(model), "--fasta", str(fasta),
                                 "--layers", "3,6", "--sites", "resid_post", "--level", "residue,protein",
                                 "--token-budget", str(args.token_budget), "--out", out],
        "torch-fixed8": lambda out: [sys.executable, str(SCRIPTS / "bench_embed_torch.py"), "--model", str(model),
                                     "--fasta", str(fasta), "--threads", t, "--mode", "fixed8", "--layers", "3,6"],
        "torch-budget": lambda out: [sys.executable, str(SCRIPTS / "bench_embed_torch.py"), "--model", str(model),
                                     "--fasta", str(fasta), "--threads", t, "--mode", "budget",
                                     "--token-budget", str(args.token_budget), "--layers", "3,6"],
    }
    names = list(commands)
    rows = {n: [] for n in names}
    for r in range(args.runs):
        gflops = matmul_gflops()
        order = names[r % 3:] + names[: r % 3]
        for name in order:
            out = str(work / f"out-{name}")
            shutil.rmtree(out, ignore_errors=True)
            wall, rss, stdout, stderr = run_rss(commands[name](out), env)
            if name == "plmscope":
                m = re.search(r"in ([0-9.]+)s \(([0-9.]+) residues/s\)", stderr)
                rate = float(m.group(2))
            else:
                rate = json.loads(stdout.strip().splitlines()[-1])["residues_per_s"]
            rows[name].append({"rate": rate, "wall": wall, "rss": rss, "gflops": gflops})
            print(f"run {r} {name:13s} matmul {gflops:6.1f} GFLOP/s  {rate:8.0f} residues/s  wall {wall:6.1f}s  peak RSS {rss:7.1f} MiB", flush=True)
    med = {n: {k: statistics.median(x[k] for x in rows[n]) for k in ("rate", "wall", "rss")} for n in names}
    print(f"\n{args.arch}, {args.threads} threads, {args.runs} alternated runs, medians:\n")
    print("| program | residues/s | wall s | peak RSS MiB | plmscope / it (per-run ratios) |")
    print("|---|---|---|---|---|")
    for n in names:
        ratios = [a["rate"] / b["rate"] for a, b in zip(rows["plmscope"], rows[n])]
        print(f"| {n} | {med[n]['rate']:.0f} | {med[n]['wall']:.1f} | {med[n]['rss']:.0f} | "
              f"{statistics.median(ratios):.2f}x ({', '.join(f'{x:.2f}' for x in ratios)}) |")
    per_run = ", ".join(f"{x['gflops']:.0f}" for x in rows["plmscope"])
    print(f"\nmatmul GFLOP/s per run: {per_run}")


if __name__ == "__main__":
    main()
