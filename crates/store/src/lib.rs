//! Activation sets and sparse code sets on disk: manifest, safetensors shards written atomically
//! and resumably, memory-mapped readers, and a seeded shuffling stream for training.
