#!/usr/bin/env python3
"""Write ESM2 parity fixtures from Hugging Face transformers for plmscope's Rust model tests.

Given an HF-layout checkpoint dir (config.json, model.safetensors, vocab.txt), runs a fixed set of
real proteins (see reference_proteins.py) through `EsmForMaskedLM` in float32 eval mode, each
protein alone (batch of 1, no padding), and once more all together in one padded batch, and
writes `fixtures.safetensors` + `fixtures.json` to --out. Key layout (i = protein index):

  p{i}.input_ids        int64 [T]      <cls> residues <eos> from EsmTokenizer
  p{i}.positions        int64 [P]      token positions stored below (0 = <cls>)
  p{i}.hidden.{L}       f32 [P, d]     HF hidden_states[L], L = 0..num_layers
  p{i}.mlp_in.{B}       f32 [P, d]     input of block B's intermediate.dense (B 1-based)
  p{i}.mlp_out.{B}      f32 [P, d]     output of block B's output.dense (before residual)
  p{i}.mean.{L}         f32 [d]        hidden_states[L] averaged over residues (no cls/eos)
  p{i}.logits           f32 [P, 33]    LM head logits
  p{i}.batched_last     f32 [P, d]     hidden_states[num_layers] from the padded batch run
  p{i}.batched_mean_last f32 [d]       its residue mean

Example:
  python3 scripts/esm_reference.py --model /tmp/esm2_t6 --out /tmp/fixtures_t6
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import numpy as np
import safetensors
import torch
import transformers
from esm_hf_load import load_masked_lm, sha256_file
from fasta_io import DEFAULT_DATA_DIR
from reference_proteins import ReferenceProtein, select_proteins
from safetensors.numpy import save_file
from tokenizer_cases import tokenizer_section
from transformers import EsmTokenizer

# HF's load report lists buffers it recomputes and heads the class does not use; the checks here
# (esm_hf_load.verify_weights for the reference) are what decide whether a load is acceptable.
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()

# Stored-position rules (full_max, edge, stride), tried in order until the estimated file fits
# --max-bytes: every token when T <= full_max, else the first and last `edge` tokens and every
# `stride`-th token. Tokens of X, U, B, Z, O and <mask> are always stored. Hidden states at every
# layer cost ~15 KB (t6) to ~35 KB (t12) per stored token, so the generous first rule gives 16 MB
# (t6) and a 6 MB budget ends further down the ladder. Means over all residues are always stored.
POSITION_LADDER = [
    (160, 24, 9),
    (128, 16, 16),
    (96, 16, 24),
    (72, 8, 32),
    (48, 8, 32),
    (40, 8, 48),
    (40, 4, 64),
    (40, 2, 128),
    (30, 2, 128),
    (30, 2, 256),
    (30, 1, 512),
]


def stored_positions(n_tokens: int, rule: tuple[int, int, int], always: list[int] = ()) -> list[int]:
    full_max, edge, stride = rule
    if n_tokens <= full_max:
        return list(range(n_tokens))
    picked = set(range(edge)) | set(range(n_tokens - edge, n_tokens)) | set(range(0, n_tokens, stride))
    return sorted(picked | set(always))


def estimate_bytes(proteins, rule, n_layers: int, d: int, n_blocks: int, vocab: int) -> int:
    """`proteins` = [(n_tokens, always_stored_positions)]; exact up to the header size."""
    total = 0
    for n, always in proteins:
        p = len(stored_positions(n, rule, always))
        floats = p * d * (n_layers + 1 + 2 * n_blocks + 1) + p * vocab + d * (n_layers + 2)
        total += 4 * floats + 8 * (n + p) + 100 * (n_layers + 2 * n_blocks + 6)  # + header entries
    return total


def choose_rule(proteins, n_layers, d, n_blocks, vocab, max_bytes):
    for rule in POSITION_LADDER:
        if estimate_bytes(proteins, rule, n_layers, d, n_blocks, vocab) <= max_bytes:
            return rule
    return POSITION_LADDER[-1]


class MlpCapture:
    """Forward hooks recording, for chosen blocks, the MLP input and output (and the attention
    output, used only to check the hooks capture what their names claim)."""

    def __init__(self, model, blocks: list[int]):
        self.values: dict[tuple[str, int], torch.Tensor] = {}
        self.handles = []
        for block in blocks:
            layer = model.esm.encoder.layer[block - 1]
            self.handles.append(layer.intermediate.dense.register_forward_hook(self._input_hook("mlp_in", block)))
            self.handles.append(layer.output.dense.register_forward_hook(self._output_hook("mlp_out", block)))
            self.handles.append(layer.LayerNorm.register_forward_hook(self._input_hook("attn_out", block)))

    def _input_hook(self, site, block):
        def hook(_module, inputs, _output):
            self.values[(site, block)] = inputs[0].detach().clone()

        return hook

    def _output_hook(self, site, block):
        def hook(_module, _inputs, output):
            self.values[(site, block)] = output.detach().clone()

        return hook

    def remove(self):
        for handle in self.handles:
            handle.remove()


def residue_mean(hidden: torch.Tensor, n_residues: int) -> np.ndarray:
    """Mean over token positions 1..=n_residues, accumulated in float64."""
    return hidden[1 : 1 + n_residues].double().mean(dim=0).float().numpy()


def check_hooks(model, capture: MlpCapture, hidden_states, blocks: list[int], label: str) -> None:
    """A block's output is attention output + MLP output (final LayerNorm after the last)."""
    n_layers = model.config.num_hidden_layers
    for block in blocks:
        resid = capture.values[("attn_out", block)][0] + capture.values[("mlp_out", block)][0]
        if block == n_layers:
            resid = model.esm.encoder.emb_layer_norm_after(resid)
        if not torch.allclose(resid, hidden_states[block][0], rtol=1e-5, atol=1e-5):
            raise AssertionError(f"{label}: hooks of block {block} do not add up to hidden_states[{block}]")


def check_embedding(model, ids: torch.Tensor, hidden0: torch.Tensor, label: str) -> None:
    """hidden_states[0] is the token-dropout-scaled embedding (mask rows zeroed)."""
    cfg = model.config
    emb = model.esm.embeddings.word_embeddings.weight[ids]
    is_mask = ids == cfg.mask_token_id
    ratio = is_mask.float().mean()
    expected = emb.masked_fill(is_mask[:, None], 0.0) * (1 - 0.15 * 0.8) / (1 - ratio)
    if not torch.allclose(expected, hidden0, rtol=1e-6, atol=1e-6):
        raise AssertionError(f"{label}: hidden_states[0] is not the scaled embedding")


def run_single(model, ids: list[int], blocks: list[int], label: str):
    capture = MlpCapture(model, blocks)
    try:
        ids_t = torch.tensor([ids], dtype=torch.long)
        out = model(input_ids=ids_t, output_hidden_states=True)
    finally:
        capture.remove()
    check_embedding(model, ids_t[0], out.hidden_states[0][0], label)
    check_hooks(model, capture, out.hidden_states, blocks, label)
    hidden = [h[0] for h in out.hidden_states]
    mlp = {key: value[0] for key, value in capture.values.items() if key[0] != "attn_out"}
    return hidden, mlp, out.logits[0]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="HF-layout ESM2 checkpoint dir")
    parser.add_argument("--out", type=Path, required=True, help="output dir for fixtures.{safetensors,json}")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-bytes", type=int, default=6_000_000, help="size budget of fixtures.safetensors")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # nothing is random in eval mode; set for good measure
    model, load_report = load_masked_lm(args.model)
    cfg = model.config
    n_layers, d = cfg.num_hidden_layers, cfg.hidden_size
    blocks = sorted({1, n_layers})
    tokenizer = EsmTokenizer(vocab_file=str(args.model / "vocab.txt"))

    proteins: list[ReferenceProtein] = select_proteins(args.data_dir)
    token_ids = [tokenizer(p.fed_text)["input_ids"] for p in proteins]
    for protein, ids in zip(proteins, token_ids):
        if len(ids) != len(protein.residues) + 2:
            raise AssertionError(f"{protein.label}: tokenizer gave {len(ids)} ids for {len(protein.residues)} residues")

    sizes = [(len(ids), p.unusual_token_positions) for p, ids in zip(proteins, token_ids)]
    rule = choose_rule(sizes, n_layers, d, len(blocks), cfg.vocab_size, args.max_bytes)
    tensors: dict[str, np.ndarray] = {}
    entries = []
    singles_last = []
    with torch.inference_mode():
        for index, (protein, ids) in enumerate(zip(proteins, token_ids)):
            key = f"p{index}"
            positions = stored_positions(len(ids), rule, protein.unusual_token_positions)
            hidden, mlp, logits = run_single(model, ids, blocks, protein.label)
            pos = torch.tensor(positions, dtype=torch.long)
            tensors[f"{key}.input_ids"] = np.asarray(ids, dtype=np.int64)
            tensors[f"{key}.positions"] = pos.numpy().astype(np.int64)
            for layer, h in enumerate(hidden):
                tensors[f"{key}.hidden.{layer}"] = h[pos].contiguous().numpy()
                tensors[f"{key}.mean.{layer}"] = residue_mean(h, len(protein.residues))
            for (site, block), value in mlp.items():
                tensors[f"{key}.{site}.{block}"] = value[pos].contiguous().numpy()
            tensors[f"{key}.logits"] = logits[pos].contiguous().numpy()
            singles_last.append(hidden[n_layers])
            entries.append(protein_entry(index, protein, ids, positions))
            print(
                f"{key} {protein.label} {protein.record.accession} residues={len(protein.residues)} "
                f"stored={len(positions)}",
                file=sys.stderr,
            )

        batch = tokenizer([p.fed_text for p in proteins], padding=True, return_tensors="pt")
        batched = model(**batch, output_hidden_states=True).hidden_states[n_layers]
    batch_diffs = {}
    for index, (protein, ids) in enumerate(zip(proteins, token_ids)):
        key = f"p{index}"
        if batch["input_ids"][index, : len(ids)].tolist() != ids:
            raise AssertionError(f"{protein.label}: batched ids differ from the single run")
        pos = torch.from_numpy(tensors[f"{key}.positions"])
        tensors[f"{key}.batched_last"] = batched[index][pos].contiguous().numpy()
        tensors[f"{key}.batched_mean_last"] = residue_mean(batched[index], len(protein.residues))
        diff = (batched[index, : len(ids)] - singles_last[index]).abs().max().item()
        batch_diffs[key] = diff

    args.out.mkdir(parents=True, exist_ok=True)
    fixture_path = args.out / "fixtures.safetensors"
    save_file(tensors, str(fixture_path), metadata={"format": "plmscope.esm_reference_fixtures"})
    fixture_path.chmod(0o644)  # safetensors creates the file owner-only
    summary = {
        "format": "plmscope.esm_reference_fixtures",
        "version": 1,
        "command": "python3 " + " ".join(shlex.quote(a) for a in [sys.argv[0], *argv]),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
        },
        "run": {
            "model_class": "EsmForMaskedLM",
            "dtype": "float32",
            "mode": "eval + torch.inference_mode",
            "attn_implementation": "eager",
            "threads": args.threads,
            "single_runs": "each protein alone: batch of 1, no padding, no attention_mask",
            "batched_run": f"all {len(proteins)} proteins in one batch, right-padded with <pad> "
            f"to {batch['input_ids'].shape[1]} tokens, attention_mask passed",
        },
        "checkpoint": checkpoint_summary(args.model, cfg, load_report),
        "layers": list(range(n_layers + 1)),
        "blocks": blocks,
        "layer_numbering": "hidden.L = HF hidden_states[L]: 0 = embedding output (token-dropout scaled), "
        "L = output of block L; the last one is after emb_layer_norm_after",
        "sites": {
            "mlp_in.B": "input of encoder.layer[B-1].intermediate.dense (LayerNorm-ed attention output)",
            "mlp_out.B": "output of encoder.layer[B-1].output.dense, before dropout and residual",
        },
        "position_rule": {
            "full_max_tokens": rule[0],
            "edge": rule[1],
            "stride": rule[2],
            "text": f"all tokens if T <= {rule[0]}, else the first {rule[1]}, the last {rule[1]} "
            f"and every token whose position is a multiple of {rule[2]}, plus every X/U/B/Z/O/<mask> token; "
            f"the first rule of a fixed ladder whose file fits {args.max_bytes} bytes",
        },
        "proteins": entries,
        "batch_vs_single_max_abs_diff_last_layer_torch": batch_diffs,
        "tokenizer": tokenizer_section(tokenizer),
        "keys": key_layout(),
        "fixture_file": {
            "name": fixture_path.name,
            "bytes": fixture_path.stat().st_size,
            "sha256": sha256_file(fixture_path),
            "tensors": len(tensors),
        },
    }
    with open(args.out / "fixtures.json", "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
        handle.write("\n")
    print(
        json.dumps(
            {
                "fixtures": str(fixture_path),
                "bytes": fixture_path.stat().st_size,
                "position_rule": rule,
                "proteins": len(proteins),
                "stored_positions": sum(len(e["positions_stored"]) for e in entries),
            }
        )
    )


def key_layout() -> list[str]:
    """The key table of this module's docstring, one entry per key pattern."""
    table = __doc__.split("(i = protein index):")[1].split("Example:")[0]
    return [line.strip() for line in table.strip().splitlines()]


def protein_entry(index: int, protein: ReferenceProtein, ids: list[int], positions: list[int]) -> dict:
    return {
        "index": index,
        "key": f"p{index}",
        "label": protein.label,
        "accession": protein.record.accession,
        "header": protein.record.header,
        "source_file": protein.source,
        "selection_rule": protein.rule,
        "length_in_file": len(protein.record.sequence),
        "residues_fed": len(protein.residues),
        "truncated_to_1022": protein.truncated,
        "sequence_fed_to_hf": protein.fed_text,
        "fasta_text_for_plmscope": protein.fasta_text,
        "n_tokens": len(ids),
        "count_X": protein.fed_text.count("X"),
        "count_U": protein.fed_text.count("U"),
        "count_mask": protein.residues.count("<mask>"),
        "positions_stored": positions,
        "note": entry_note(protein),
    }


def entry_note(protein: ReferenceProtein) -> str:
    if protein.residues.count("<mask>"):
        return "contains <mask> tokens (written '<mask>' in the texts); feed p{i}.input_ids directly"
    if protein.fasta_text != protein.fed_text:
        return "plmscope gets the lowercase text and must upper-case it; HF got the uppercase text"
    if protein.truncated:
        return "first 1022 residues of a longer protein, as plmscope --long truncate"
    return ""


def checkpoint_summary(model_dir: Path, cfg, load_report: dict) -> dict:
    fields = [
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "vocab_size",
        "max_position_embeddings",
        "position_embedding_type",
        "token_dropout",
        "mask_token_id",
        "pad_token_id",
        "layer_norm_eps",
        "emb_layer_norm_before",
        "rope_theta",
    ]
    return {
        "dir": str(model_dir.resolve()),
        "model_safetensors_sha256": sha256_file(model_dir / "model.safetensors"),
        "vocab_txt_sha256": sha256_file(model_dir / "vocab.txt"),
        "config": {name: getattr(cfg, name, None) for name in fields},
        "weights_check": load_report,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
