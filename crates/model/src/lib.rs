//! ESM2 protein language model: config, alphabet/tokenizer, weight loading (HF safetensors,
//! HF `pytorch_model.bin`, fair-esm `.pt`), hub resolution, random-weight init, and a CPU
//! forward pass that captures chosen sites (residual stream, MLP input/output) per layer.
