#!/usr/bin/env python3
"""Side-by-side SAE training speed: plmscope's TopK trainer against a minimal PyTorch one.

Builds nothing. Build first (any CARGO_TARGET_DIR; this script reads the same variable):

    cargo build --release -p plmscope-sae --examples                  # bench_train
    cargo build --release -p plmscope-store --example synthetic_set   # only for --rss

Speed mode (default): for each config (small: d_in 320, 32x, k 32; large: d_in 1280, 16x, k 64;
batch 4096), runs plmscope then each PyTorch variant, in turn, `--pairs` times (A B A B ...),
each in a fresh process with `--threads` threads (2). Before every run it prints a torch
matmul GFLOP/s probe (the machine's state: the box is shared). Peak RSS is ru_maxrss from
os.wait4 on the child. Ends with a Markdown table of medians and of per-pair ratios
(plmscope rows/s over PyTorch rows/s, runs of the same pair).

PyTorch variants (scripts/sae_torch_trainer.py): `dense` (zeros_like(pre).scatter(...) @ W_dec,
what a typical user writes), `embedding_bag` (sparse decode, the best native form), and
`embedding_bag+sparse_encoder_grad` (also gradients only to the k selected encoder rows).

RSS mode (`--rss`): writes synthetic d=320 f32 activation sets of `--rss-sizes` GB (1 and 8)
under /tmp (checks free space first, deletes them afterwards), trains on each through the
store's ShuffledRows with a fixed window of `--buffer-rows` rows, and prints peak RSS for
each: ru_maxrss from os.wait4 and, polled from /proc/PID/status, the peak of anonymous memory
and of mapped file pages separately (mmap'd shard pages touched by the reader count in RSS).
`--rss-steps 0` (default) trains one full epoch of each set; the SAE there is `--rss-expansion`
(8) times wide, since the dictionary adds the same constant at every set size.

    python3 scripts/bench_sae_train.py [--pairs 3] [--configs small,large]
    python3 scripts/bench_sae_train.py --rss [--rss-sizes 1,8] [--rss-steps 0]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TORCH_TRAINER = REPO / "scripts" / "sae_torch_trainer.py"
CONFIGS = {
    "small": {"d_in": 320, "expansion": 32, "k": 32},
    "large": {"d_in": 1280, "expansion": 16, "k": 64},
}
TORCH_VARIANTS = {
    "dense": [],
    "embedding_bag": ["--sparse-decode"],
    "embedding_bag+sparse_encoder_grad": ["--sparse-decode", "--sparse-encoder-grad"],
}


def example_binary(name: str, package: str) -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = target / "release" / "examples" / name
    if not path.exists():
        sys.exit(f"{path} not found: run `cargo build --release -p {package} "
                 f"{'--examples' if package == 'plmscope-sae' else '--example ' + name}` "
                 f"with the same CARGO_TARGET_DIR first")
    return path


PROBE = """
import sys, time, torch
threads, n, reps = int(sys.argv[1]), 2048, 3
torch.set_num_threads(threads)
a, b = torch.randn(n, n), torch.randn(n, n)
a @ b
best = 0.0
for _ in range(reps):
    start = time.perf_counter()
    a @ b
    best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
print(best)
"""


def matmul_probe(threads: int) -> float:
    """Best-of-3 GFLOP/s of a 2048² f32 torch matmul on `threads` threads, in a child process:
    this process must stay small, because a child's ru_maxrss starts from its parent's peak
    RSS (Linux carries the forked memory's high-water mark across exec)."""
    out = subprocess.run([sys.executable, "-c", PROBE, str(threads)], capture_output=True,
                         text=True, check=True, env=child_env(threads))
    return float(out.stdout.strip())


def child_env(threads: int) -> dict:
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                RAYON_NUM_THREADS=str(threads))


def proc_status_kib(pid: int) -> dict:
    """RssAnon and RssFile of a live process, in KiB (empty when it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile"):
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return out


def run_child(argv: list, threads: int) -> dict:
    """Runs `argv`, returns its last stdout JSON line plus wall time, ru_maxrss from wait4 and
    polled peaks of RssAnon/RssFile (MiB)."""
    env = child_env(threads)
    with tempfile.TemporaryFile() as stdout:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=stdout, env=env)
        peaks = {"RssAnon": 0, "RssFile": 0}
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid == child.pid:
                break
            for key, value in proc_status_kib(child.pid).items():
                peaks[key] = max(peaks[key], value)
            time.sleep(0.05)
        wall = time.perf_counter() - start
        stdout.seek(0)
        text = stdout.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(map(str, argv))} failed with status "
                 f"{os.waitstatus_to_exitcode(status)}:\n{text}")
    lines = [l for l in text.splitlines() if l.startswith("{")]
    if not lines:
        sys.exit(f"{' '.join(map(str, argv))} printed no JSON line:\n{text}")
    result = json.loads(lines[-1])
    result["wall_s"] = wall
    result["wait4_maxrss_mb"] = usage.ru_maxrss / 1024
    result["polled_peak_anon_mb"] = peaks["RssAnon"] / 1024
    result["polled_peak_file_mb"] = peaks["RssFile"] / 1024
    return result


def speed_mode(args) -> None:
    bench_train = example_binary("bench_train", "plmscope-sae")
    variants = [v for v in args.torch_variants.split(",") if v]
    for v in variants:
        if v not in TORCH_VARIANTS:
            sys.exit(f"unknown torch variant {v}; choose from {', '.join(TORCH_VARIANTS)}")
    configs = [c for c in args.configs.split(",") if c]
    runs = []  # (config, pair, label, result, probe)
    for name in configs:
        if name not in CONFIGS:
            sys.exit(f"unknown config {name}; choose from {', '.join(CONFIGS)}")
        c = CONFIGS[name]
        steps = args.steps_small if name == "small" else args.steps_large
        shape = ["--d-in", str(c["d_in"]), "--expansion", str(c["expansion"]),
                 "--k", str(c["k"]), "--batch", str(args.batch), "--steps", str(steps),
                 "--warmup", str(args.warmup), "--threads", str(args.threads)]
        sides = [("plmscope", [str(bench_train)] + shape)]
        sides += [(f"pytorch {v}", [sys.executable, str(TORCH_TRAINER)] + shape + TORCH_VARIANTS[v])
                  for v in variants]
        for pair in range(args.pairs):
            for label, argv in sides:
                probe = matmul_probe(args.threads)
                result = run_child(argv, args.threads)
                runs.append((name, pair, label, result, probe))
                print(f"[{name} pair {pair + 1}] {label:<42} probe {probe:6.1f} GFLOP/s | "
                      f"{result['rows_per_s']:9.0f} rows/s {result['ms_per_step']:9.1f} ms/step "
                      f"peak RSS {result['wait4_maxrss_mb']:7.0f} MB fvu {result['fvu_last']:.4f}",
                      flush=True)
    print_speed_table(runs, configs, args)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            [{"config": n, "pair": p, "label": l, "probe_gflops": g, **r}
             for n, p, l, r, g in runs], indent=1))


def print_speed_table(runs, configs, args) -> None:
    print(f"\n### SAE training, batch {args.batch}, {args.threads} threads each, "
          f"{args.pairs} alternating pairs (medians)\n")
    print("| config | implementation | rows/s | ms/step | peak RSS (MB, wait4) | "
          "plmscope ÷ this, per pair | median ratio | probe GFLOP/s (median) |")
    print("|---|---|---:|---:|---:|---|---:|---:|")
    for name in configs:
        c = CONFIGS[name]
        desc = f"d={c['d_in']}, {c['expansion']}×, k={c['k']}"
        mine = [r for n, _, l, r, _ in runs if n == name and l == "plmscope"]
        labels = list(dict.fromkeys(l for n, _, l, _, _ in runs if n == name))
        for label in labels:
            these = [(p, r, g) for n, p, l, r, g in runs if n == name and l == label]
            rows = statistics.median(r["rows_per_s"] for _, r, _ in these)
            ms = statistics.median(r["ms_per_step"] for _, r, _ in these)
            rss = statistics.median(r["wait4_maxrss_mb"] for _, r, _ in these)
            probe = statistics.median(g for _, _, g in these)
            if label == "plmscope":
                ratios, median_ratio = "", ""
            else:
                per_pair = [mine[p]["rows_per_s"] / r["rows_per_s"] for p, r, _ in these]
                ratios = ", ".join(f"{x:.2f}" for x in per_pair)
                median_ratio = f"{statistics.median(per_pair):.2f}×"
            print(f"| {desc} | {label} | {rows:.0f} | {ms:.1f} | {rss:.0f} | {ratios} | "
                  f"{median_ratio} | {probe:.1f} |")


def rss_mode(args) -> None:
    bench_train = example_binary("bench_train", "plmscope-sae")
    synthetic_set = example_binary("synthetic_set", "plmscope-store")
    sizes = [float(s) for s in args.rss_sizes.split(",") if s]
    root = Path(args.rss_dir)
    print(subprocess.run(["df", "-h", str(root.parent)], capture_output=True, text=True).stdout)
    needed = sum(sizes) * 1e9 * 1.05 + 2e9
    free = shutil.disk_usage(root.parent).free
    if free < needed:
        sys.exit(f"{root.parent} has {free / 1e9:.1f} GB free; the sets need {needed / 1e9:.1f} GB "
                 "(with 2 GB to spare)")
    if root.exists():
        sys.exit(f"{root} exists; remove it or pass another --rss-dir")
    results = []
    try:
        root.mkdir(parents=True)
        for gb in sizes:
            out = root / f"acts-{gb:g}gb"
            made = run_child([str(synthetic_set), "--out", str(out), "--gb", str(gb),
                              "--d-model", "320"], args.threads)
            print(f"wrote {out}: {made['rows']} rows, {made['shards']} shards in "
                  f"{made['seconds']:.1f} s", flush=True)
            probe = matmul_probe(args.threads)
            result = run_child([str(bench_train), "--activations", str(out),
                                "--expansion", str(args.rss_expansion), "--k", "32",
                                "--batch", str(args.batch), "--steps", str(args.rss_steps),
                                "--warmup", str(args.warmup), "--threads", str(args.threads),
                                "--buffer-rows", str(args.buffer_rows)], args.threads)
            results.append((gb, result, probe))
            print(f"trained {result['steps']} steps on {gb:g} GB (probe {probe:.1f} GFLOP/s): "
                  f"peak RSS {result['wait4_maxrss_mb']:.0f} MB", flush=True)
            if not args.keep:
                shutil.rmtree(out)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\n### Peak RSS training from activation sets (d=320 f32, {args.rss_expansion}× SAE, "
          f"k=32, batch {args.batch}, window {args.buffer_rows} rows, {args.threads} threads)\n")
    print("| set | rows | steps (of epoch) | rows/s | peak RSS (MB, wait4) | "
          "peak anon (MB) | peak mapped file (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for gb, r, _ in results:
        print(f"| {gb:g} GB | {r['set_rows']} | {r['steps']} (+{r['warmup_steps']} warm-up) of "
              f"{r['steps_per_epoch']} | {r['rows_per_s']:.0f} | {r['wait4_maxrss_mb']:.0f} | "
              f"{r['polled_peak_anon_mb']:.0f} | {r['polled_peak_file_mb']:.0f} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            [{"gb": gb, "probe_gflops": g, **r} for gb, r, g in results], indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--configs", default="small,large", help="comma list of small, large")
    ap.add_argument("--torch-variants", default=",".join(TORCH_VARIANTS))
    ap.add_argument("--steps-small", type=int, default=20)
    ap.add_argument("--steps-large", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json-out", help="also write every run's JSON here")
    ap.add_argument("--rss", action="store_true", help="peak-RSS mode (see module doc)")
    ap.add_argument("--rss-sizes", default="1,8", help="set sizes in GB")
    ap.add_argument("--rss-steps", type=int, default=0, help="0 = one full epoch")
    ap.add_argument("--rss-expansion", type=int, default=8)
    ap.add_argument("--buffer-rows", type=int, default=262_144)
    ap.add_argument("--rss-dir", default=f"/tmp/plmscope-saebench-rss-{os.getpid()}")
    ap.add_argument("--keep", action="store_true", help="keep the synthetic sets")
    args = ap.parse_args()
    if args.pairs < 1:
        sys.exit("--pairs must be at least 1")
    if args.pairs < 3 and not args.rss:
        print(f"note: {args.pairs} pair(s) is a smoke run; report numbers from 3 or more",
              file=sys.stderr)
    if not args.rss_dir.startswith("/tmp/"):
        sys.exit("--rss-dir must be under /tmp")
    rss_mode(args) if args.rss else speed_mode(args)


if __name__ == "__main__":
    main()
