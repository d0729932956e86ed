//! Writes a tiny activation set and its code set with the store crate's own writers, as seeds
//! for the store targets: `cargo run --release --features store --example store_seeds`, then
//! `bash seed_corpus.sh` packs them (see README.md).

use plmscope_store::{
    ActivationSet, ActivationSetWriter, CodeSetHeader, CodeSetWriter, CsrRows, DictionaryRef,
    Level, ModelRef, ProteinEntry, SetHeader, StorageDtype,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/seeds");
    let acts = out.join("acts");
    let codes = out.join("codes");
    let _ = std::fs::remove_dir_all(&out);
    let d_model = 4;
    let header = SetHeader {
        model: ModelRef {
            id: "seed".into(),
            arch: "esm2_t6_8M".into(),
            weights_sha256: "00".into(),
        },
        layer: 1,
        site: "resid_post".into(),
        level: Level::Residue,
        d_model,
        dtype: StorageDtype::F16,
        proteins_per_shard: 2,
        total_proteins: 2,
        extra: serde_json::json!({}),
    };
    let mut writer = ActivationSetWriter::create_or_resume(&acts, header)?;
    let proteins = [
        ProteinEntry {
            id: "P02185".into(),
            length: 2,
        },
        ProteinEntry {
            id: "P09211".into(),
            length: 1,
        },
    ];
    let values: Vec<f32> = (0..3 * d_model).map(|i| i as f32 * 0.25 - 1.0).collect();
    writer.write_shard(0, &proteins, &values)?;
    writer.finish(serde_json::json!({}))?;

    let set = ActivationSet::open(&acts)?;
    let dictionary = DictionaryRef {
        id: "seed".into(),
        architecture: "topk".into(),
        d_sae: 8,
        weights_sha256: "00".into(),
    };
    let header = CodeSetHeader::for_activation_set(&set, dictionary, serde_json::json!({}));
    let mut writer = CodeSetWriter::create_or_resume(&codes, header)?;
    let rows = CsrRows {
        row_ptr: vec![0, 2, 2, 3],
        feature: vec![1, 5, 7],
        value: vec![0.5, 1.5, 2.0],
    };
    writer.write_shard(0, &rows)?;
    writer.finish(serde_json::json!({}))?;
    println!("seeds in {}", out.display());
    Ok(())
}
