//! Hub resolution against a real HTTP server on loopback standing in for huggingface.co
//! (`HF_ENDPOINT`), with the HF cache in a temporary directory (`HF_HUB_CACHE`). One test
//! function, because the settings are process-wide environment variables.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Instant;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny_checkpoints"
);

/// Serves `GET /{repo}/resolve/main/{file}` from the fixture directory, like the hub does
/// (with `X-Repo-Commit`), 404 for anything else. Returns the endpoint and the request log.
fn serve(root: PathBuf) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (log, requests) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let mut stream = stream.unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let file = path
                .strip_prefix("/test-org/tiny-esm/resolve/main/")
                .map(|f| root.join(f));
            let _ = log.send(path.clone());
            match file.filter(|f| f.is_file()) {
                Some(f) => {
                    let body = std::fs::read(f).unwrap();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Repo-Commit: 0123abcd\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    stream.write_all(head.as_bytes()).unwrap();
                    stream.write_all(&body).unwrap();
                }
                None => {
                    stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
                }
            }
        }
    });
    (endpoint, requests)
}

#[test]
fn downloads_into_the_cache_then_works_offline_and_fails_fast_without_it() {
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("HF_HUB_CACHE", cache.path());
    std::env::remove_var("HF_HUB_OFFLINE");
    let (endpoint, requests) = serve(PathBuf::from(FIXTURE));
    std::env::set_var("HF_ENDPOINT", &endpoint);

    // Online: downloaded into the HF cache layout and loaded.
    let (model, info) = plmscope_model::load_model("test-org/tiny-esm").unwrap();
    assert_eq!(model.config.hidden_size, 40);
    let snapshot = cache
        .path()
        .join("models--test-org--tiny-esm/snapshots/0123abcd");
    assert_eq!(info.weights_file, snapshot.join("model.safetensors"));
    let commit =
        std::fs::read_to_string(cache.path().join("models--test-org--tiny-esm/refs/main")).unwrap();
    assert_eq!(commit, "0123abcd");
    let asked: Vec<String> = requests.try_iter().collect();
    assert!(
        asked.iter().any(|p| p.ends_with("/config.json")),
        "{asked:?}"
    );
    assert!(
        !asked.iter().any(|p| p.ends_with("/pytorch_model.bin")),
        "safetensors found first: {asked:?}"
    );
    let served = std::fs::read(format!("{FIXTURE}/model.safetensors")).unwrap();
    assert_eq!(
        std::fs::read(snapshot.join("model.safetensors")).unwrap(),
        served
    );

    // Offline: the cache answers, the server is not asked.
    std::env::set_var("HF_HUB_OFFLINE", "1");
    plmscope_model::load_model("test-org/tiny-esm").unwrap();
    assert_eq!(requests.try_iter().count(), 0);

    // Offline and not cached: fails at once, saying how to pass a local path.
    let start = Instant::now();
    let err = plmscope_model::load_model("facebook/esm2_t6_8M_UR50D")
        .unwrap_err()
        .to_string();
    assert!(start.elapsed().as_secs_f64() < 1.0);
    assert!(
        err.contains("HF_HUB_OFFLINE") && err.contains("--model /path/to"),
        "{err}"
    );

    // Online but the hub unreachable (nothing listens there): a clear error, not a hang.
    std::env::remove_var("HF_HUB_OFFLINE");
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::env::set_var("HF_ENDPOINT", format!("http://{dead}"));
    let start = Instant::now();
    let err = plmscope_model::load_model("facebook/esm2_t6_8M_UR50D")
        .unwrap_err()
        .to_string();
    assert!(start.elapsed().as_secs_f64() < 15.0);
    assert!(
        err.contains("could not be downloaded") && err.contains("--model /path/to"),
        "{err}"
    );

    // A path that exists nowhere and is no hub id.
    let err = plmscope_model::load_model("./no/such/model")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no such file or directory"), "{err}");
}
