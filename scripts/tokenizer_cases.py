"""Edge-case strings run through HF `EsmTokenizer`, recorded verbatim for plmscope's tokenizer tests.

HF's tokenizer splits text only around exact vocabulary entries (uppercase letters and the
`<...>` specials); whatever is left between them goes through `str.split()` and becomes one token
per whitespace-separated chunk, which is `<unk>` when not in the vocabulary. So a run of lowercase
letters becomes ONE `<unk>`, and whitespace disappears. plmscope upper-cases residues instead
(as `fasta_text_for_plmscope` of the lowercase protein expects), so these cases document where
plmscope deliberately differs from HF, not what it must reproduce.
"""

from __future__ import annotations

ALL_LETTERS = "LAGVSERTIDPKQNFYMHWCXBUZO"  # the 25 residue letters, in vocabulary order

CASES = [
    ("all 25 residue letters in vocabulary order", ALL_LETTERS),
    ("the 20 standard residues, alphabetical", "ACDEFGHIKLMNPQRSTVWY"),
    ("rare letters", "BZOUX"),
    ("lowercase standard residues", "acdefghiklmnpqrstvwy"),
    ("lowercase rare letters", "bzoux"),
    ("mixed case", "MKvlA"),
    ("lowercase then uppercase", "mkVL"),
    ("whitespace inside", "MK VL"),
    ("gap and stop-like characters in vocabulary", "MK.-L"),
    ("letters outside the alphabet", "MJ*L"),
    ("mask token inside a sequence", "MK<mask>L"),
    ("lowercase mask text", "MK<MASK>L"),
    ("empty string", ""),
]

NOTE = (
    "HF EsmTokenizer (transformers {version}) splits text only around exact vocabulary entries; "
    "leftover text is split on whitespace and each chunk not in the vocabulary becomes ONE <unk>. "
    "So lowercase residues are NOT upper-cased: 'mkvl' -> [<cls>, <unk>, <eos>] (one <unk> for the "
    "whole lowercase run), 'MKvlA' -> M K <unk> A. Whitespace is dropped. plmscope upper-cases "
    "instead; the parity proteins are fed to HF in uppercase."
)


def tokenizer_section(tokenizer) -> dict:
    import transformers

    cases = []
    for description, text in CASES:
        ids = tokenizer(text)["input_ids"]
        cases.append(
            {
                "description": description,
                "input": text,
                "input_ids": ids,
                "tokens": tokenizer.convert_ids_to_tokens(ids),
            }
        )
    return {
        "class": type(tokenizer).__name__,
        "vocab": [tokenizer.convert_ids_to_tokens(i) for i in range(tokenizer.vocab_size)],
        "letter_ids": {letter: tokenizer.convert_tokens_to_ids(letter) for letter in ALL_LETTERS},
        "cases": cases,
        "note": NOTE.format(version=transformers.__version__),
    }
