//! The mutation engine and the real samples behind `tests/mutation.rs`: a seeded splitmix64
//! generator, the byte-level mutations, and small heads of the files in `shared/data`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use plmscope_bio::{FeatureEnd, ProteinAnnotation, UniProtTsvReader};

/// splitmix64: tiny, seedable and good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Numbers that overflow u32/u64/usize or are otherwise hostile to a parser.
const HUGE_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "999999999999999999999999999999",
    "1e309",
    "NaN",
];

/// Bytes that are not UTF-8: a lone continuation, a cut 2- and 3-byte sequence, a surrogate.
const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\x80",
    b"\xc3",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf0\x28\x8c\x28",
];

/// Separators and markers the formats give meaning to.
const TOKENS: &[&str] = &[
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\"",
    ",",
    "|",
    ">",
    "[",
    "]",
    ":",
    ";",
    "..",
    "//",
    "/",
    "=",
    " ",
    "\n\n",
    "\u{feff}",
    "\0",
    "[Term]\n",
    "is_a: ",
    "GO:",
    "!",
    "NA",
    "<",
    "?",
    "FT   ",
    "relationship: part_of ",
    "id: GO:0000001\n",
];

/// Applies one to four random mutations; returns their names for the failure report.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>) -> Vec<&'static str> {
    let count = 1 + rng.below(4);
    (0..count).map(|_| mutate_once(rng, data)).collect()
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>) -> &'static str {
    let len = data.len();
    let at = rng.below(len + 1);
    match rng.below(20) {
        0..=2 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
            "bit flip"
        }
        3 if len > 0 => {
            let i = rng.below(len);
            data[i] = rng.next() as u8;
            "random byte"
        }
        4..=5 => {
            let end = (at + 1 + rng.below(64)).min(len);
            data.drain(at..end);
            "delete range"
        }
        6..=7 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(4096)).min(len);
            let copy = data[start..end].to_vec();
            let to = rng.below(data.len() + 1);
            data.splice(to..to, copy);
            "duplicate range"
        }
        8 => {
            data.truncate(at);
            "truncate"
        }
        9..=10 => {
            let number = rng.pick(HUGE_NUMBERS).as_bytes();
            // Replace the digit run at `at`, if any, so fields keep their shape.
            let end = at + data[at..].iter().take_while(|b| b.is_ascii_digit()).count();
            data.splice(at..end, number.iter().copied());
            "huge number"
        }
        11..=12 => {
            let bytes = *rng.pick(INVALID_UTF8);
            data.splice(at..at, bytes.iter().copied());
            "invalid UTF-8"
        }
        13 => {
            let byte = if len > 0 && rng.below(2) == 0 {
                data[rng.below(len)]
            } else {
                *rng.pick(b"A1\t,|\"[ ")
            };
            let run = 1024 + rng.below(256 * 1024);
            data.splice(at..at, std::iter::repeat_n(byte, run));
            "very long line"
        }
        14..=16 => {
            let token = rng.pick(TOKENS).as_bytes();
            data.splice(at..at, token.iter().copied());
            "insert token"
        }
        _ => {
            swap_lines(rng, data);
            "swap or drop lines"
        }
    }
}

/// Swaps two lines, or drops one.
fn swap_lines(rng: &mut Rng, data: &mut Vec<u8>) {
    let mut lines: Vec<Vec<u8>> = data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let a = rng.below(lines.len());
    let b = rng.below(lines.len());
    if rng.below(3) == 0 {
        lines.remove(a);
    } else {
        lines.swap(a, b);
    }
    *data = lines.join(&b'\n');
}

/// Corrupts a gzip stream: bit flips, cut tails, dropped or repeated bytes.
pub fn corrupt_gzip(rng: &mut Rng, gz: &mut Vec<u8>) -> &'static str {
    let len = gz.len();
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(len);
                gz[i] ^= 1 << rng.below(8);
            }
            "gzip bit flips"
        }
        1 => {
            gz.truncate(rng.below(len));
            "gzip truncated"
        }
        2 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(16)).min(len);
            gz.drain(at..end);
            "gzip bytes dropped"
        }
        _ => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(64)).min(len);
            let copy = gz[at..end].to_vec();
            gz.splice(at..at, copy);
            "gzip bytes repeated"
        }
    }
}

/// The first `n` lines of a file, without reading the rest.
pub fn head_lines(path: &Path, n: usize) -> Vec<u8> {
    let mut reader = BufReader::new(File::open(path).expect("shared data file"));
    let mut out = Vec::new();
    for _ in 0..n {
        if reader.read_until(b'\n', &mut out).expect("readable") == 0 {
            break;
        }
    }
    out
}

/// The first `records` FASTA-style records (`>` header and what follows).
pub fn head_records(path: &Path, records: usize) -> Vec<u8> {
    let mut reader = BufReader::new(File::open(path).expect("shared data file"));
    let mut out = Vec::new();
    let mut seen = 0;
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).expect("readable") == 0 {
            break;
        }
        if line.starts_with(b">") {
            seen += 1;
            if seen > records {
                break;
            }
        }
        out.extend(line);
    }
    out
}

/// The GAF's comment header and its first `annotations` annotation lines.
pub fn gaf_head(path: &Path, annotations: usize) -> Vec<u8> {
    let mut reader = BufReader::new(File::open(path).expect("shared data file"));
    let mut out = Vec::new();
    let mut taken = 0;
    while taken < annotations {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).expect("readable") == 0 {
            break;
        }
        taken += usize::from(!line.starts_with(b"!"));
        out.extend(line);
    }
    out
}

/// A self-contained OBO: the header plus the `[Term]` stanzas of `seeds` and of every term they
/// reach through `is_a`, `relationship:`, `replaced_by`... so the reader's checks pass on the
/// unmutated sample. Stanzas keep their order and text from the file.
pub fn obo_closure(path: &Path, seeds: &[&str]) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("shared data file");
    let mut stanzas = text.split("\n\n");
    let header = stanzas.next().expect("OBO header");
    let mut terms: Vec<(&str, &str)> = Vec::new();
    for stanza in stanzas {
        let stanza = stanza.trim_start_matches('\n');
        if let Some(body) = stanza.strip_prefix("[Term]\n") {
            let id = body.lines().find_map(|l| l.strip_prefix("id: "));
            terms.extend(id.map(|id| (id.trim(), stanza)));
        }
    }
    let by_id: HashMap<&str, usize> = terms.iter().enumerate().map(|(i, t)| (t.0, i)).collect();
    let mut keep: HashSet<usize> = HashSet::new();
    let mut queue: VecDeque<&str> = seeds.iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        let Some(&index) = by_id.get(id) else {
            continue;
        };
        if !keep.insert(index) {
            continue;
        }
        for line in terms[index].1.lines() {
            if let Some((tag, value)) = line.split_once(": ") {
                if ["is_a", "relationship"].contains(&tag) {
                    let mut words = value.split_whitespace();
                    if tag == "relationship" {
                        words.next(); // the relation name
                    }
                    queue.extend(words.next());
                }
            }
        }
    }
    let mut chosen: Vec<usize> = keep.into_iter().collect();
    chosen.sort_unstable();
    let mut out = String::from(header);
    for index in chosen {
        out.push_str("\n\n");
        out.push_str(terms[index].1.trim_end());
    }
    out.push('\n');
    out.into_bytes()
}

/// UniProt flat-file entries written from the rows of a real UniProt TSV export (the shared
/// data has no `.dat`), features in the current FT layout with their real qualifiers.
pub fn flat_file_from_tsv(path: &Path) -> Vec<u8> {
    let rows: Vec<ProteinAnnotation> = UniProtTsvReader::open(path)
        .expect("sample TSV")
        .collect::<Result<_, _>>()
        .expect("sample TSV parses");
    let mut out = String::new();
    for row in rows {
        let sequence = row.sequence.clone().unwrap_or_default();
        let name = row.entry_name.clone().unwrap_or_default();
        out += &format!("ID   {name:<24}Reviewed;{:>12} AA.\n", sequence.len());
        out += &format!("AC   {};\n", row.accession);
        if let Some(full) = &row.protein_name {
            out += &format!("DE   RecName: Full={full};\n");
        }
        if let Some(organism) = &row.organism {
            out += &format!("OS   {organism}.\n");
        }
        for feature in &row.features {
            let location = match (feature.start, feature.end) {
                (start, end) if start == end => end_text(start),
                (start, end) => format!("{}..{}", end_text(start), end_text(end)),
            };
            out += &format!("FT   {:<16}{location}\n", feature.kind.key());
            for (qualifier, value) in &feature.qualifiers {
                out += &format!("FT                   /{qualifier}=\"{value}\"\n");
            }
        }
        out += &format!("SQ   SEQUENCE   {} AA;\n", sequence.len());
        for chunk in sequence.as_bytes().chunks(60) {
            let blocks: Vec<&str> = chunk
                .chunks(10)
                .map(|b| std::str::from_utf8(b).expect("ASCII residues"))
                .collect();
            out += &format!("     {}\n", blocks.join(" "));
        }
        out += "//\n";
    }
    out.into_bytes()
}

fn end_text(end: FeatureEnd) -> String {
    let prefix = match end.certainty {
        plmscope_bio::EndCertainty::Exact => "",
        plmscope_bio::EndCertainty::Before => "<",
        plmscope_bio::EndCertainty::After => ">",
        plmscope_bio::EndCertainty::Uncertain => "?",
    };
    format!(
        "{prefix}{}",
        end.position.map_or(String::new(), |p| p.to_string())
    )
}
