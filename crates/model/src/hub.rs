//! Resolving `--model`: a local checkpoint path, or a Hugging Face hub id looked up in the HF
//! cache (`$HF_HUB_CACHE`, `$HF_HOME/hub` or `~/.cache/huggingface/hub`, the layout
//! `huggingface_hub` uses) and downloaded into it when online. `HF_HUB_OFFLINE=1` or no
//! network fails at once with a message saying how to pass a local path.

use crate::error::ModelError;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The directory or file to load for `spec`.
pub fn resolve(spec: &str) -> Result<PathBuf, ModelError> {
    let local = Path::new(spec);
    if local.exists() {
        return Ok(local.to_path_buf());
    }
    if !is_hub_id(spec) {
        return Err(ModelError::Hub(format!(
            "--model {spec}: no such file or directory, and not a hub id like facebook/esm2_t6_8M_UR50D"
        )));
    }
    let cache = cache_dir();
    if let Some(snapshot) = cached_snapshot(&cache, spec) {
        return Ok(snapshot);
    }
    let offline = ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|x| x == "1" || x.eq_ignore_ascii_case("true")));
    let how = format!(
        "pass a local checkpoint instead: --model /path/to/dir (with config.json and model.safetensors or pytorch_model.bin) or --model /path/to/{}.pt (fair-esm)",
        spec.rsplit('/').next().unwrap_or(spec)
    );
    if offline {
        return Err(ModelError::Hub(format!(
            "{spec} is not in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set; {how}",
            cache.display()
        )));
    }
    download(&cache, spec).map_err(|e| {
        ModelError::Hub(format!(
            "{spec} is not in the Hugging Face cache ({}) and could not be downloaded from {} ({e}); {how}",
            cache.display(),
            endpoint()
        ))
    })
}

fn is_hub_id(spec: &str) -> bool {
    let mut parts = spec.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

pub fn cache_dir() -> PathBuf {
    if let Ok(p) = std::env::var("HF_HUB_CACHE") {
        return PathBuf::from(p);
    }
    if let Ok(p) = std::env::var("HF_HOME") {
        return Path::new(&p).join("hub");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    Path::new(&home).join(".cache/huggingface/hub")
}

fn endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .unwrap_or_else(|_| "https://huggingface.co".into())
        .trim_end_matches('/')
        .to_string()
}

fn repo_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

fn has_weights(dir: &Path) -> bool {
    dir.join("config.json").is_file()
        && (dir.join("model.safetensors").is_file() || dir.join("pytorch_model.bin").is_file())
}

fn cached_snapshot(cache: &Path, repo: &str) -> Option<PathBuf> {
    let dir = repo_dir(cache, repo);
    let commit = std::fs::read_to_string(dir.join("refs/main")).ok()?;
    let snapshot = dir.join("snapshots").join(commit.trim());
    has_weights(&snapshot).then_some(snapshot)
}

fn download(cache: &Path, repo: &str) -> Result<PathBuf, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(Duration::from_secs(60))
        .build();
    let base = format!("{}/{repo}/resolve/main", endpoint());
    let get = |file: &str| {
        agent
            .get(&format!("{base}/{file}"))
            .call()
            .map_err(Box::new)
    };
    let config = get("config.json").map_err(|e| e.to_string())?;
    let commit = config.header("X-Repo-Commit").unwrap_or("main").to_string();
    let snapshot = repo_dir(cache, repo).join("snapshots").join(&commit);
    std::fs::create_dir_all(&snapshot).map_err(|e| format!("{}: {e}", snapshot.display()))?;
    save(config, &snapshot.join("config.json"))?;
    let mut weights = false;
    for file in ["model.safetensors", "pytorch_model.bin", "vocab.txt"] {
        if weights && file != "vocab.txt" {
            continue;
        }
        match get(file) {
            Ok(resp) => {
                save(resp, &snapshot.join(file))?;
                weights |= file != "vocab.txt";
            }
            Err(e) if matches!(*e, ureq::Error::Status(404, _)) => {}
            Err(e) => return Err(format!("{file}: {e}")),
        }
    }
    if !weights {
        return Err("the repository has neither model.safetensors nor pytorch_model.bin".into());
    }
    let refs = repo_dir(cache, repo).join("refs");
    std::fs::create_dir_all(&refs).map_err(|e| e.to_string())?;
    write_atomic(&refs.join("main"), commit.as_bytes())?;
    Ok(snapshot)
}

fn save(resp: ureq::Response, path: &Path) -> Result<(), String> {
    let mut bytes = Vec::new();
    resp.into_reader()
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    write_atomic(path, &bytes)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    plmscope_fsutil::write_atomic(path, bytes).map_err(|e| e.to_string())
}
