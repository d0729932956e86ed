"""Writes one tiny random ESM2 (2 layers, hidden 40, 4 heads) in the three checkpoint formats
plmscope reads, plus reference logits and hidden states from HF transformers, so the Rust tests
check the pickle readers and fair-esm name mapping against PyTorch itself.

    python3 scripts/make_torch_checkpoints.py crates/model/tests/fixtures/tiny_checkpoints

Writes: config.json, model.safetensors, pytorch_model.bin (HF names), esm2_tiny.pt (fair-esm
names inside {"model": state_dict, "cfg": ...}), reference.safetensors (input ids, last hidden
state, logits).
"""
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import EsmConfig, EsmForMaskedLM

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(7)
config = EsmConfig(
    vocab_size=33, hidden_size=40, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=160, max_position_embeddings=1026, position_embedding_type="rotary",
    token_dropout=True, mask_token_id=32, pad_token_id=1, layer_norm_eps=1e-5,
    emb_layer_norm_before=False, hidden_act="gelu",
)
model = EsmForMaskedLM(config).eval()
with torch.no_grad():
    # HF's N(0, 0.02) init gives near-uniform attention; widen it so formats really differ if
    # a tensor is mapped to the wrong place.
    for name, p in model.named_parameters():
        if p.dim() == 2:
            p.normal_(0.0, p.shape[1] ** -0.5)
        elif "LayerNorm" in name or "layer_norm" in name:
            p.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
        else:
            p.normal_(0.0, 0.05)
model.save_pretrained(out, safe_serialization=True)
state = {k: v.clone() for k, v in model.state_dict().items()}
torch.save(state, os.path.join(out, "pytorch_model.bin"))

# fair-esm names (esm/model/esm2.py), nested as fair-esm's hub files are.
fair = {}
for k, v in state.items():
    k = k.removeprefix("esm.")
    if "contact_head" in k or "inv_freq" in k or "position_ids" in k:
        continue
    k = k.replace("embeddings.word_embeddings", "embed_tokens")
    k = k.replace("encoder.emb_layer_norm_after", "emb_layer_norm_after")
    k = k.replace("encoder.layer.", "layers.")
    for a, b in [("attention.self.query", "self_attn.q_proj"), ("attention.self.key", "self_attn.k_proj"),
                 ("attention.self.value", "self_attn.v_proj"), ("attention.output.dense", "self_attn.out_proj"),
                 ("attention.LayerNorm", "self_attn_layer_norm"), ("intermediate.dense", "fc1"),
                 ("output.dense", "fc2"), ("LayerNorm", "final_layer_norm")]:
        k = k.replace(a, b)
    if k == "lm_head.decoder.weight":
        k = "lm_head.weight"
    fair["encoder.sentence_encoder." + k if not k.startswith("lm_head") else "encoder." + k] = v
if "encoder.lm_head.weight" not in fair:
    fair["encoder.lm_head.weight"] = state["esm.embeddings.word_embeddings.weight"]
torch.save({"model": fair, "cfg": {"model": {"encoder_layers": 2, "encoder_embed_dim": 40,
            "encoder_attention_heads": 4}}}, os.path.join(out, "esm2_tiny.pt"))

ids = torch.tensor([[0, 20, 15, 11, 5, 19, 12, 5, 15, 16, 10, 24, 26, 9, 6, 2]])
with torch.no_grad():
    o = model(input_ids=ids, output_hidden_states=True)
save_file({"input_ids": ids[0].contiguous(), "last_hidden": o.hidden_states[-1][0].contiguous(),
           "logits": o.logits[0].contiguous()}, os.path.join(out, "reference.safetensors"))
print("torch", torch.__version__)
