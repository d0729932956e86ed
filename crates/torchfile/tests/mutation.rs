//! Seeded mutation of the real torch checkpoints in the repository's fixtures (fair-esm `.pt`,
//! HF `pytorch_model.bin`, InterPLM `ae.pt`, Lightning `.ckpt`): every mutant must give `Ok`
//! or `Err` from [`read_torch_zip`], never a panic, and no load may allocate more than
//! `MAX_LIVE` bytes. A tracking allocator measures the second; it refuses any single request
//! over the limit, which aborts the test binary with "memory allocation of N bytes failed".
//! Catches: a size, stride, offset, string length or memo copy taken from the file unchecked.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use plmscope_torchfile::read_torch_zip;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MAX_LIVE: usize = 256 << 20;

struct Tracking;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_LIVE {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Tests in this binary share the counters, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let files = [
        "model/tests/fixtures/tiny_checkpoints/esm2_tiny.pt",
        "model/tests/fixtures/tiny_checkpoints/pytorch_model.bin",
        "sae/tests/fixtures/foreign/interplm_relu/ae.pt",
        "sae/tests/fixtures/foreign/interplm_topk/ae.pt",
        "sae/tests/fixtures/foreign/interplm_jumprelu/ae.pt",
        "sae/tests/fixtures/foreign/mystery.pt",
        "sae/tests/fixtures/foreign/rep_topk.ckpt",
    ];
    files
        .iter()
        .map(|f| {
            let path = format!("{ROOT}/{f}");
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            (f.to_string(), bytes)
        })
        .collect()
}

/// Byte range of the (stored) `data.pkl` inside an archive: from the pickle's PROTO opcode
/// after the entry's name to the next zip header.
fn pickle_range(bytes: &[u8]) -> std::ops::Range<usize> {
    let find = |from: usize, pat: &[u8]| {
        bytes[from..]
            .windows(pat.len())
            .position(|w| w == pat)
            .map(|p| p + from)
    };
    let name = find(0, b"data.pkl").expect("data.pkl entry");
    let start = find(name, &[0x80, 2]).expect("pickle PROTO 2");
    let end = find(start, b"PK").unwrap_or(bytes.len());
    start..end
}

/// One mutation of `bytes`, chosen by `rng`; returns what it did, for the failure message.
fn mutate(rng: &mut ChaCha8Rng, bytes: &mut Vec<u8>, pkl: &std::ops::Range<usize>) -> String {
    let n = bytes.len();
    let kind = if n < 16 { 3 } else { rng.random_range(0..7) };
    match kind {
        0 => {
            let i = rng.random_range(0..n);
            let bit = rng.random_range(0..8);
            bytes[i] ^= 1 << bit;
            format!("flip bit {bit} of byte {i}")
        }
        1 => {
            let i = rng.random_range(0..n);
            let v = [0u8, 0xff][rng.random_range(0..2)];
            bytes[i] = v;
            format!("byte {i} = {v:#x}")
        }
        2 => {
            let i = rng.random_range(0..n.saturating_sub(8));
            let v: u64 = [u32::MAX as u64, 1 << 30, i64::MAX as u64, u64::MAX, 1 << 62]
                [rng.random_range(0..5)];
            bytes[i..i + 8].copy_from_slice(&v.to_le_bytes());
            format!("bytes {i}..{} = {v:#x}", i + 8)
        }
        3 => {
            let keep = rng.random_range(0..n);
            bytes.truncate(keep);
            format!("truncate to {keep}")
        }
        4 => {
            let a = rng.random_range(0..n);
            let len = rng.random_range(1..=(n - a).min(4096));
            let at = rng.random_range(0..n);
            let chunk = bytes[a..a + len].to_vec();
            bytes.splice(at..at, chunk);
            format!("copy {a}..{} to {at}", a + len)
        }
        // Integers of the pickle (shapes, strides, offsets, numels are BININT1/2/4) set huge,
        // or the opcode byte itself replaced.
        5 | 6 => {
            let ints: Vec<usize> = bytes[pkl.clone()]
                .iter()
                .enumerate()
                .filter(|(_, &b)| matches!(b, b'K' | b'M' | b'J'))
                .map(|(i, _)| pkl.start + i)
                .filter(|&i| i + 5 <= n)
                .collect();
            if ints.is_empty() {
                bytes.truncate(n / 2);
                return format!("truncate to {}", n / 2);
            }
            let i = ints[rng.random_range(0..ints.len())];
            match bytes[i] {
                b'K' => bytes[i + 1] = 0xff,
                b'M' => bytes[i + 1..i + 3].copy_from_slice(&[0xff, 0xff]),
                _ => {
                    let v: i32 = [1 << 30, i32::MAX, -1][rng.random_range(0..3)];
                    bytes[i + 1..i + 5].copy_from_slice(&v.to_le_bytes());
                }
            }
            if rng.random_bool(0.2) {
                bytes[i] = rng.random();
            }
            format!("pickle integer at byte {i} set huge")
        }
        _ => unreachable!(),
    }
}

/// Reads `bytes`, failing the test on a panic or on more than MAX_LIVE live bytes.
fn load_survives(what: &str, bytes: &[u8]) -> bool {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let result = catch_unwind(AssertUnwindSafe(|| read_torch_zip(bytes).is_ok()));
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let ok = result.unwrap_or_else(|_| panic!("{what}: the reader panicked"));
    assert!(peak <= MAX_LIVE, "{what}: {peak} bytes live at the peak");
    ok
}

#[test]
fn mutated_checkpoints_give_ok_or_err_without_panicking() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (mut cases, mut refused) = (0, 0);
    for (name, original) in fixtures() {
        assert!(
            load_survives(&name, &original),
            "{name}: the original must load"
        );
        let pkl = pickle_range(&original);
        for _ in 0..1000 {
            let mut bytes = original.clone();
            let mut did = Vec::new();
            for _ in 0..rng.random_range(1..=3) {
                if bytes.is_empty() {
                    break;
                }
                let range = pkl.start..pkl.end.min(bytes.len());
                if range.is_empty() {
                    break;
                }
                did.push(mutate(&mut rng, &mut bytes, &range));
            }
            cases += 1;
            if !load_survives(&format!("{name} after {did:?}"), &bytes) {
                refused += 1;
            }
        }
    }
    eprintln!("{cases} mutants, {refused} refused with an error");
    assert_eq!(cases, 7 * 1000);
    // Most mutants hit tensor bytes and still load; a mutator that never broke anything would
    // test nothing.
    assert!(refused > cases / 10, "only {refused} of {cases} refused");
}

/// A stored zip holding `data.pkl` and `data/0`, as `torch.save` lays it out.
fn torch_zip(pickle: &[u8], storage: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("archive/data.pkl", opts).unwrap();
    w.write_all(pickle).unwrap();
    w.start_file("archive/data/0", opts).unwrap();
    w.write_all(storage).unwrap();
    w.finish().unwrap().into_inner()
}

/// `{"w": tensor}` in protocol 2, the tensor a float view of storage "0" with the given
/// shape and stride, as `torch._utils._rebuild_tensor_v2` receives it.
fn tensor_pickle(shape: [u32; 2], stride: [u32; 2]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'(', b'X', 1, 0, 0, 0, b'w'];
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage");
    p.extend(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00");
    for pair in [shape, stride] {
        p.push(b'(');
        for v in pair {
            p.push(b'J');
            p.extend(v.to_le_bytes());
        }
        p.push(b't');
    }
    p.extend(b"\x89ccollections\nOrderedDict\n)RtRu.");
    p
}

#[test]
fn a_2_30_by_2_30_shape_over_four_floats_is_refused_by_name() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let storage: Vec<u8> = (0..4).flat_map(|i| (i as f32).to_le_bytes()).collect();
    // The same file with an honest 2 × 2 shape loads, so the refusal below is the shape's.
    let ok = read_torch_zip(&torch_zip(&tensor_pickle([2, 2], [2, 1]), &storage)).unwrap();
    assert_eq!(ok.tensor("w").unwrap().to_f32(), [0.0, 1.0, 2.0, 3.0]);
    let huge = 1 << 30;
    let bytes = torch_zip(&tensor_pickle([huge, huge], [huge, 1]), &storage);
    assert!(!load_survives("2^30 x 2^30", &bytes));
    let err = read_torch_zip(&bytes).unwrap_err().to_string();
    assert!(
        err.contains("tensor w:")
            && err.contains("[1073741824, 1073741824]")
            && err.contains("holds 4 F32 elements"),
        "{err}"
    );
    // Stride 0 fits the storage but would materialise 2^60 elements.
    let bytes = torch_zip(&tensor_pickle([huge, huge], [0, 0]), &storage);
    let err = read_torch_zip(&bytes).unwrap_err().to_string();
    assert!(err.contains("repeat a smaller storage"), "{err}");
}
