//! No input crashes a reader: small heads of the real files in `shared/data` (read in place),
//! mutated with a seeded generator (bit flips, deletions, duplications, truncation, huge numbers,
//! invalid UTF-8, very long lines, inserted separators, swapped lines; gzip streams corrupted),
//! must each parse to `Ok` or to an error that names the file and a line inside the input;
//! never a panic, never one allocation out of proportion to the input, and never more items
//! than lines (a reader that stops consuming input would loop forever).
//!
//! `cargo test -p plmscope-bio --test mutation -- --nocapture` prints the cases per reader.
//! `PLMSCOPE_MUTATION_CASES=N` runs N plain cases per sample instead of the default (the seed
//! is fixed, so a failure reproduces); failing inputs are written to the system temp directory.
//! `PLMSCOPE_MUTATION_TRACE=1` names each case on stderr before running it.
//! The whole run is one `#[test]`, because the allocation check reads a process-wide peak.

mod common;
mod mutate;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, Cursor, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use common::data;
use mutate::Rng;
use plmscope_bio::input::maybe_gunzip;
use plmscope_bio::{
    BindingResiduesReader, BioError, FastaReader, GafReader, GoCsvReader, GoDag, OboDocument,
    PfamClansReader, TmbedReader, UniProtDatReader, UniProtTsvReader,
};

/// Records the largest single allocation request; refuses (and so aborts the test with
/// "memory allocation of N bytes failed") anything over 4 GiB instead of swapping the machine.
struct PeakRequest;

static LARGEST_REQUEST: AtomicUsize = AtomicUsize::new(0);
const REFUSED_OVER: usize = 4 << 30;

unsafe impl GlobalAlloc for PeakRequest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_REQUEST.fetch_max(layout.size(), Ordering::Relaxed);
        if layout.size() > REFUSED_OVER {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_REQUEST.fetch_max(layout.size(), Ordering::Relaxed);
        if layout.size() > REFUSED_OVER {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_REQUEST.fetch_max(new_size, Ordering::Relaxed);
        if new_size > REFUSED_OVER {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakRequest = PeakRequest;

type Input = Box<dyn BufRead + Send>;

/// What one parse produced: items read and the error messages among them.
#[derive(Default)]
struct Outcome {
    ok: usize,
    errors: Vec<String>,
    /// Set when a reader yielded more items than the input has lines.
    runaway: bool,
}

impl Outcome {
    fn drain<T>(&mut self, items: impl Iterator<Item = Result<T, BioError>>, cap: usize) {
        for item in items {
            if self.ok + self.errors.len() >= cap {
                self.runaway = true;
                return;
            }
            match item {
                Ok(_) => self.ok += 1,
                Err(error) => self.errors.push(error.to_string()),
            }
        }
    }

    fn one<T>(&mut self, result: Result<T, BioError>) -> Option<T> {
        match result {
            Ok(value) => {
                self.ok += 1;
                Some(value)
            }
            Err(error) => {
                self.errors.push(error.to_string());
                None
            }
        }
    }
}

/// Parses `input` (named `name`) to the end; `cap` is the most items it may yield.
type Reader = fn(Input, &Path, usize) -> Outcome;

fn fasta(input: Input, name: &Path, cap: usize) -> Outcome {
    let mut outcome = Outcome::default();
    outcome.drain(FastaReader::new(input, name), cap);
    outcome
}

fn tmbed(input: Input, name: &Path, cap: usize) -> Outcome {
    let mut outcome = Outcome::default();
    outcome.drain(TmbedReader::new(input, name), cap);
    outcome
}

fn binding(input: Input, name: &Path, cap: usize) -> Outcome {
    let mut outcome = Outcome::default();
    outcome.drain(BindingResiduesReader::new(input, name), cap);
    outcome
}

fn pfam_clans(input: Input, name: &Path, cap: usize) -> Outcome {
    let mut outcome = Outcome::default();
    outcome.drain(PfamClansReader::new(input, name), cap);
    outcome
}

fn uniprot_tsv(input: Input, name: &Path, cap: usize) -> Outcome {
    let mut outcome = Outcome::default();
    if let Some(reader) = outcome.one(UniProtTsvReader::new(input, name, &["Sequence"])) {
        outcome.ok -= 1; // the header is not an item
        outcome.drain(reader, cap);
    }
    outcome
}

fn uniprot_dat(input: Input, name: &Path, cap: usize) -> Outcome {
    let mut outcome = Outcome::default();
    outcome.drain(UniProtDatReader::new(input, name), cap);
    outcome
}

fn gaf(input: Input, name: &Path, cap: usize) -> Outcome {
    let mut outcome = Outcome::default();
    outcome.drain(GafReader::new(input, name), cap);
    outcome
}

fn go_csv(input: Input, name: &Path, cap: usize) -> Outcome {
    let mut outcome = Outcome::default();
    if let Some(reader) = outcome.one(GoCsvReader::new(input, name)) {
        outcome.ok -= 1;
        outcome.drain(reader, cap);
    }
    outcome
}

/// The OBO reader and, on success, the DAG built from it (the checks a DAG adds: namespaces,
/// obsolete parents, ancestor closure).
fn obo(input: Input, name: &Path, _cap: usize) -> Outcome {
    let mut outcome = Outcome::default();
    if let Some(document) = outcome.one(OboDocument::read(input, name)) {
        if let Some(dag) = outcome.one(GoDag::from_document(&document)) {
            // Touch every ancestor slice, so a bad offset would panic here.
            let total: usize = dag.terms().map(|t| dag.ancestors(t).len()).sum();
            assert!(total >= dag.len());
        }
    }
    outcome
}

/// A real sample, the reader for it and how many items the unmutated sample yields.
struct Sample {
    name: &'static str,
    reader: Reader,
    bytes: Vec<u8>,
    expected_items: usize,
}

fn samples() -> Vec<Sample> {
    let sample = |name, reader, bytes, expected_items| Sample {
        name,
        reader,
        bytes,
        expected_items,
    };
    let tsv = data("uniprot_tsv_example/sample_uniprot.tsv");
    vec![
        sample(
            "yeast.fasta",
            fasta as Reader,
            mutate::head_records(&data("yeast_s288c/UP000002311_559292.fasta"), 8),
            8,
        ),
        sample(
            "ecoli_tpp.fasta",
            fasta,
            mutate::head_records(&data("ecoli_k12/UP000000625_83333_tpp_solver.fasta"), 8),
            8,
        ),
        sample(
            "tmbed_alpha.fasta",
            tmbed,
            mutate::head_records(&data("tmbed/alpha.fasta"), 6),
            6,
        ),
        sample(
            "tmbed_cv_00_a.fasta",
            tmbed,
            mutate::head_records(&data("tmbed/cv_00_a.fasta"), 10),
            10,
        ),
        sample(
            "binding_residues_2.5_metal.txt",
            binding,
            mutate::head_lines(
                &data("bindembed21/development_set/binding_residues_2.5_metal.txt"),
                30,
            ),
            30,
        ),
        sample(
            "Pfam-A.clans.tsv",
            pfam_clans,
            mutate::head_lines(&data("pfam/Pfam-A.clans.tsv"), 40),
            40,
        ),
        sample(
            "sample_uniprot.tsv",
            uniprot_tsv,
            std::fs::read(&tsv).expect("sample TSV"),
            6,
        ),
        sample(
            "Ecoli_metadata.txt",
            uniprot_tsv_no_sequence,
            mutate::head_lines(&data("ecoli_k12/Ecoli_metadata.txt"), 25),
            24,
        ),
        sample(
            "sample_uniprot.dat",
            uniprot_dat,
            mutate::flat_file_from_tsv(&tsv),
            6,
        ),
        sample(
            "gene_association.ecocyc",
            gaf,
            mutate::gaf_head(&data("ecoli_k12/gene_association.ecocyc"), 40),
            0,
        ),
        sample(
            "yeast_go.csv",
            go_csv,
            mutate::head_lines(&data("yeast_s288c/UP000002311_559292_go.csv"), 30),
            29,
        ),
        sample(
            "go-basic.obo",
            obo,
            mutate::obo_closure(
                &data("go-basic.obo"),
                &["GO:0006281", "GO:0005524", "GO:0005634", "GO:0000278"],
            ),
            2,
        ),
    ]
}

fn uniprot_tsv_no_sequence(input: Input, name: &Path, cap: usize) -> Outcome {
    let mut outcome = Outcome::default();
    if let Some(reader) = outcome.one(UniProtTsvReader::new(input, name, &[])) {
        outcome.ok -= 1;
        outcome.drain(reader, cap);
    }
    outcome
}

/// `None` when `message` names `name` and a line in `1..=max_line`; otherwise what is wrong.
/// Only a missing header column may omit the line: it names the column and those found.
fn message_problem(message: &str, name: &str, max_line: usize) -> Option<String> {
    let Some(rest) = message.strip_prefix(name) else {
        return Some("does not start with the file name".into());
    };
    if rest.starts_with(": required column") {
        return None;
    }
    let digits: String = rest
        .strip_prefix(':')
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match digits.parse::<usize>() {
        Ok(line) if (1..=max_line).contains(&line) => None,
        Ok(line) => Some(format!("names line {line}, outside 1..={max_line}")),
        Err(_) => Some("names no line".into()),
    }
}

static PANIC_MESSAGE: Mutex<String> = Mutex::new(String::new());

struct Totals {
    cases: usize,
    ok: usize,
    err: usize,
}

/// Runs one case; a failure description when the reader misbehaved.
fn run_case(sample: &Sample, bytes: &[u8], gzip: Option<Vec<u8>>) -> (Outcome, Option<String>) {
    let name = Path::new(sample.name);
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
    let (input, max_line, budget): (Input, usize, usize) = match gzip {
        Some(gz) => {
            // A corrupt deflate stream can decode to more text than went in (deflate expands
            // at most ~1000x); bound lines by that and allocations by the longest line accepted.
            let input = maybe_gunzip(Cursor::new(gz), name).expect("in-memory read");
            (
                input,
                usize::MAX,
                plmscope_bio::input::MAX_LINE_BYTES * 2 + (1 << 20),
            )
        }
        None => (
            Box::new(Cursor::new(bytes.to_vec())),
            newlines + 1,
            16 * bytes.len() + (1 << 20),
        ),
    };
    LARGEST_REQUEST.store(0, Ordering::Relaxed);
    let result = catch_unwind(AssertUnwindSafe(|| {
        (sample.reader)(input, name, max_line.saturating_add(1))
    }));
    let largest = LARGEST_REQUEST.load(Ordering::Relaxed);
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(_) => {
            let message = PANIC_MESSAGE.lock().map(|m| m.clone()).unwrap_or_default();
            return (Outcome::default(), Some(format!("panicked: {message}")));
        }
    };
    let mut problems = Vec::new();
    if outcome.runaway {
        problems.push(format!("yielded more than {max_line} items"));
    }
    if largest > budget {
        problems.push(format!(
            "allocated {largest} bytes at once for {} input bytes",
            bytes.len()
        ));
    }
    for message in &outcome.errors {
        if let Some(problem) = message_problem(message, sample.name, max_line) {
            problems.push(format!("error {problem}: {message}"));
        }
    }
    let failure = (!problems.is_empty()).then(|| problems.join("; "));
    (outcome, failure)
}

fn save_failure(sample: &Sample, case: usize, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join("plmscope-mutation");
    let path = dir.join(format!("{}-{case}", sample.name));
    let saved = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::File::create(&path))
        .and_then(|mut file| file.write_all(bytes));
    match saved {
        Ok(()) => path.display().to_string(),
        Err(error) => format!("(not saved: {error})"),
    }
}

#[test]
fn mutated_real_files_never_crash_a_reader() {
    let plain_cases: usize = std::env::var("PLMSCOPE_MUTATION_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let gzip_cases = plain_cases / 5;
    let trace = std::env::var_os("PLMSCOPE_MUTATION_TRACE").is_some();
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut message) = PANIC_MESSAGE.lock() {
            *message = info.to_string();
        }
    }));

    let mut failures = Vec::new();
    let mut grand = Totals {
        cases: 0,
        ok: 0,
        err: 0,
    };
    for (index, sample) in samples().iter().enumerate() {
        // The unmutated sample is valid, so what the mutations break is meaningful.
        let (baseline, failure) = run_case(sample, &sample.bytes, None);
        assert_eq!(failure, None, "{}: unmutated sample", sample.name);
        assert_eq!(baseline.errors, Vec::<String>::new(), "{}", sample.name);
        if sample.expected_items > 0 {
            assert_eq!(baseline.ok, sample.expected_items, "{}", sample.name);
        } else {
            assert!(baseline.ok > 0, "{}: no records in the sample", sample.name);
        }

        let mut rng = Rng::new(0x5EED_0000 + index as u64);
        let mut totals = Totals {
            cases: 0,
            ok: 0,
            err: 0,
        };
        for case in 0..plain_cases + gzip_cases {
            let mut bytes = sample.bytes.clone();
            let mut applied = mutate::mutate(&mut rng, &mut bytes);
            let gzip = (case >= plain_cases).then(|| {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(&bytes).expect("in memory");
                let mut gz = encoder.finish().expect("in memory");
                applied.push(mutate::corrupt_gzip(&mut rng, &mut gz));
                gz
            });
            let fed = gzip.clone().unwrap_or_else(|| bytes.clone());
            if trace {
                eprintln!("{} case {case}: {}", sample.name, applied.join(", "));
            }
            let (outcome, failure) = run_case(sample, &bytes, gzip);
            totals.cases += 1;
            totals.ok += outcome.ok;
            totals.err += outcome.errors.len();
            if let Some(failure) = failure {
                let saved = save_failure(sample, case, &fed);
                failures.push(format!(
                    "{} case {case} ({}): {failure}; input saved to {saved}",
                    sample.name,
                    applied.join(", ")
                ));
            }
        }
        println!(
            "{:<32} {:>6} cases, {:>7} records read, {:>6} errors",
            sample.name, totals.cases, totals.ok, totals.err
        );
        grand.cases += totals.cases;
        grand.ok += totals.ok;
        grand.err += totals.err;
    }
    std::panic::set_hook(previous_hook);
    println!(
        "{:<32} {:>6} cases, {:>7} records read, {:>6} errors",
        "total", grand.cases, grand.ok, grand.err
    );
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Mutations that never produce an error would test nothing.
    assert!(grand.err > grand.cases / 4, "too few errors: {}", grand.err);
}
