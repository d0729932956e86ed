//! The ESM alphabet (33 tokens, as fair-esm and HF `EsmTokenizer`) and tokenisation.

/// Token strings in id order; `vocab.txt` is these, one per line.
pub const VOCAB: [&str; 33] = [
    "<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K",
    "Q", "N", "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>",
    "<mask>",
];
pub const CLS: u32 = 0;
pub const PAD: u32 = 1;
pub const EOS: u32 = 2;
pub const UNK: u32 = 3;
pub const MASK: u32 = 32;
/// Longest protein ESM2 takes: 1024 positions minus `<cls>` and `<eos>`.
pub const MAX_RESIDUES: usize = 1022;

/// A residue letter ESM does not know: which character and where (0-based) in the sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidResidue {
    pub character: char,
    pub position: usize,
}

/// Token id of one residue letter (case-insensitive), or `None` for characters outside the
/// alphabet. `.`/`-` (gap tokens) are rejected: they never occur in real protein sequences.
pub fn residue_token(c: char) -> Option<u32> {
    let upper = c.to_ascii_uppercase();
    VOCAB[4..29]
        .iter()
        .position(|t| t.len() == 1 && t.as_bytes()[0] as char == upper)
        .map(|i| i as u32 + 4)
}

/// `<cls> residues <eos>`, validating every letter.
pub fn tokenize(sequence: &str) -> Result<Vec<u32>, InvalidResidue> {
    let mut ids = Vec::with_capacity(sequence.len() + 2);
    ids.push(CLS);
    for (position, character) in sequence.chars().enumerate() {
        ids.push(residue_token(character).ok_or(InvalidResidue {
            character,
            position,
        })?);
    }
    ids.push(EOS);
    Ok(ids)
}

/// The `vocab.txt` that HF `EsmTokenizer` reads.
pub fn vocab_txt() -> String {
    let mut s = VOCAB.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_fair_esm_order() {
        assert_eq!(tokenize("LAGX").unwrap(), vec![0, 4, 5, 6, 24, 2]);
        assert_eq!(tokenize("buzo").unwrap(), vec![0, 25, 26, 27, 28, 2]);
        let err = tokenize("AC1D").unwrap_err();
        assert_eq!(
            err,
            InvalidResidue {
                character: '1',
                position: 2
            }
        );
        assert!(tokenize("A-").is_err());
    }
}
