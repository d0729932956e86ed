"""Load an HF-layout ESM2 checkpoint directory and prove every weight came from the file.

`from_pretrained` quietly initialises any tensor whose name it does not find, which would make a
parity fixture compare the Rust model against random weights. So after loading, every parameter
the forward pass uses is compared with the tensor of the same (normalised) name in
`model.safetensors`, and every tensor in the file must map to a known parameter.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open

# Tensors a checkpoint may omit without changing hidden states or logits.
OPTIONAL_PREFIXES = ("esm.contact_head.",)
TIED_DECODER = "lm_head.decoder.weight"
WORD_EMBEDDINGS = "esm.embeddings.word_embeddings.weight"
ROTARY_SUFFIX = "rotary_embeddings.inv_freq"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def normalise_name(name: str) -> str:
    """Map legacy names to the module's: LayerNorm gamma/beta (transformers >= 5 writes these)."""
    if name.endswith(".gamma"):
        return name[: -len(".gamma")] + ".weight"
    if name.endswith(".beta"):
        return name[: -len(".beta")] + ".bias"
    return name


def expected_inv_freq(config) -> torch.Tensor:
    head_dim = config.hidden_size // config.num_attention_heads
    base = getattr(config, "rope_theta", 10000.0)
    return 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))


# config.json must state these ESM2 settings: EsmConfig's defaults for several of them
# (absolute positions, no token dropout) would silently build a different model.
REQUIRED_CONFIG = {
    "model_type": "esm",
    "position_embedding_type": "rotary",
    "token_dropout": True,
    "emb_layer_norm_before": False,
    "vocab_size": 33,
    "mask_token_id": 32,
    "pad_token_id": 1,
}
ESM2_VOCAB = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO.-", "<null_1>", "<mask>"]


def check_checkpoint_files(model_dir: Path) -> None:
    """Raise unless config.json states the ESM2 settings and vocab.txt is the ESM2 alphabet."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    problems = [
        f"config.json: {key} is {config.get(key, '<absent>')!r}, expected {value!r}"
        for key, value in REQUIRED_CONFIG.items()
        if config.get(key, "<absent>") != value
    ]
    vocab = (model_dir / "vocab.txt").read_text(encoding="utf-8").split()
    if vocab != ESM2_VOCAB:
        problems.append(f"vocab.txt: {vocab} is not the 33-token ESM2 alphabet {ESM2_VOCAB}")
    if problems:
        raise ValueError(f"checkpoint {model_dir} is not an ESM2 checkpoint as expected:\n  " + "\n  ".join(problems))


def load_masked_lm(model_dir: Path, attn_implementation: str = "eager"):
    """EsmForMaskedLM in float32 eval mode, with its config and weights checked against the files."""
    from transformers import EsmForMaskedLM

    check_checkpoint_files(model_dir)
    model = EsmForMaskedLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=attn_implementation)
    model.eval()
    report = verify_weights(model, model_dir / "model.safetensors")
    return model, report


def verify_weights(model, weights_path: Path) -> dict:
    """Raise if any used parameter differs from the file or a file tensor is unknown."""
    params = {name: tensor for name, tensor in model.state_dict().items()}
    matched: set[str] = set()
    ignored: list[str] = []
    problems: list[str] = []
    inv_freq = expected_inv_freq(model.config)
    with safe_open(str(weights_path), framework="pt") as handle:
        for file_name in handle.keys():
            tensor = handle.get_tensor(file_name)
            if file_name.endswith(ROTARY_SUFFIX):
                # Buffer, not a weight: only check it agrees with the formula.
                if not torch.allclose(tensor.float(), inv_freq, rtol=1e-6, atol=0):
                    problems.append(f"{file_name}: rotary inv_freq differs from 1/10000^(2i/d)")
                ignored.append(file_name)
                continue
            name = normalise_name(file_name)
            if name not in params:
                if name.startswith(OPTIONAL_PREFIXES):
                    ignored.append(file_name)
                    continue
                problems.append(f"{file_name}: tensor in the file matches no model parameter")
                continue
            target = params[name]
            if tuple(tensor.shape) != tuple(target.shape):
                problems.append(f"{file_name}: shape {tuple(tensor.shape)} != model {tuple(target.shape)}")
            elif not torch.equal(tensor.to(torch.float32), target):
                problems.append(f"{file_name}: loaded value differs from the file")
            matched.add(name)
    for name in params:
        if name in matched or name.startswith(OPTIONAL_PREFIXES) or name.endswith(ROTARY_SUFFIX):
            continue
        if name == TIED_DECODER:
            if not torch.equal(params[name], params[WORD_EMBEDDINGS]):
                problems.append(f"{TIED_DECODER}: absent from the file and not tied to {WORD_EMBEDDINGS}")
            continue
        if name.endswith("position_ids"):
            continue
        problems.append(f"{name}: parameter not in {weights_path} (would be random)")
    live_inv_freq = model.esm.rotary_embeddings.inv_freq
    if not torch.allclose(live_inv_freq.float(), inv_freq, rtol=1e-6, atol=0):
        problems.append("esm.rotary_embeddings.inv_freq in the loaded model differs from the formula")
    if problems:
        raise ValueError(f"checkpoint {weights_path} does not load cleanly:\n  " + "\n  ".join(problems))
    return {"tensors_matched": len(matched), "file_tensors_ignored": sorted(ignored)}
