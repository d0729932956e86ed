"""The deterministic set of real proteins used by the ESM2 parity fixtures.

Each entry is picked by a fixed rule over a fixed file of /work/shared/data (first match in file
order, or the shortest match with ties broken by file order), so rerunning on the same data gives
the same proteins. The rules cover the cases a Rust forward pass can get wrong: tiny and short
chains (every token stored), mid-length and long chains, truncation at 1022 residues, the rare
letters X and U, lowercase input, and `<mask>` tokens (the token-dropout rescaling).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fasta_io import BINDEMBED_FASTA, ECOLI_FASTA, MAX_RESIDUES, YEAST_FASTA, FastaRecord, read_fasta

STANDARD_RESIDUES = frozenset("ACDEFGHIKLMNPQRSTVWY")


@dataclass(frozen=True)
class Rule:
    label: str
    source: str  # path relative to the data dir
    description: str
    accept: Callable[[str], bool]
    pick: str = "first"  # "first" in file order, or "shortest"
    lowercase_input: bool = False  # plmscope is given the lowercase text; HF the uppercase
    mask_every: int = 0  # replace every n-th residue (1-based n, 2n, ...) by <mask>


def _length_between(lo: int, hi: int) -> Callable[[str], bool]:
    return lambda seq: lo <= len(seq) <= hi


RULES: list[Rule] = [
    Rule("yeast_short_a", YEAST_FASTA, "first yeast protein of 30-60 aa", _length_between(30, 60)),
    Rule("yeast_short_b", YEAST_FASTA, "first yeast protein of 61-100 aa", _length_between(61, 100)),
    Rule("yeast_short_c", YEAST_FASTA, "first yeast protein of 101-150 aa", _length_between(101, 150)),
    Rule("ecoli_short_a", ECOLI_FASTA, "first E. coli protein of 30-60 aa", _length_between(30, 60)),
    Rule("ecoli_short_b", ECOLI_FASTA, "first E. coli protein of 61-100 aa", _length_between(61, 100)),
    Rule("ecoli_short_c", ECOLI_FASTA, "first E. coli protein of 101-150 aa", _length_between(101, 150)),
    Rule(
        "ecoli_tiny_lowercase",
        ECOLI_FASTA,
        "first E. coli protein under 30 aa, given to plmscope in lowercase",
        lambda seq: len(seq) < 30,
        lowercase_input=True,
    ),
    Rule("ecoli_mid", ECOLI_FASTA, "first E. coli protein of 250-400 aa", _length_between(250, 400)),
    Rule("yeast_mid", YEAST_FASTA, "first yeast protein of 500-1022 aa", _length_between(500, MAX_RESIDUES)),
    Rule(
        "yeast_long_truncated",
        YEAST_FASTA,
        "first yeast protein longer than 1022 aa, truncated to its first 1022 residues",
        lambda seq: len(seq) > MAX_RESIDUES,
    ),
    Rule("ecoli_with_X", ECOLI_FASTA, "shortest E. coli protein containing X", lambda s: "X" in s, "shortest"),
    Rule(
        "bindembed_with_U",
        BINDEMBED_FASTA,
        "shortest bindEmbed21 development protein containing U (selenocysteine)",
        lambda s: "U" in s,
        "shortest",
    ),
    Rule(
        "yeast_tiny_masked",
        YEAST_FASTA,
        "first yeast protein under 30 aa, every 8th residue replaced by <mask> (token dropout)",
        lambda seq: len(seq) < 30,
        mask_every=8,
    ),
]


@dataclass(frozen=True)
class ReferenceProtein:
    label: str
    source: str
    rule: str
    record: FastaRecord
    residues: list[str]  # one token string per residue as fed to HF ('<mask>' is one entry)
    fasta_text: str  # what plmscope is given (lowercase for the lowercase case)

    @property
    def fed_text(self) -> str:
        return "".join(self.residues)

    @property
    def unusual_token_positions(self) -> list[int]:
        """Token positions (<cls> = 0) of residues outside the 20 standard ones, and of masks."""
        return [i + 1 for i, res in enumerate(self.residues) if res not in STANDARD_RESIDUES]

    @property
    def truncated(self) -> bool:
        return len(self.record.sequence) > MAX_RESIDUES


def _pick(records: list[FastaRecord], rule: Rule) -> FastaRecord:
    matches = [rec for rec in records if rule.accept(rec.sequence)]
    if not matches:
        raise ValueError(f"rule {rule.label!r}: no record of {rule.source} matches '{rule.description}'")
    if rule.pick == "shortest":
        return min(matches, key=lambda rec: len(rec.sequence))  # min keeps the first of equals
    return matches[0]


def select_proteins(data_dir: Path) -> list[ReferenceProtein]:
    cache: dict[str, list[FastaRecord]] = {}
    chosen: list[ReferenceProtein] = []
    for rule in RULES:
        if rule.source not in cache:
            cache[rule.source] = read_fasta(data_dir / rule.source)
        record = _pick(cache[rule.source], rule)
        residues = list(record.sequence[:MAX_RESIDUES].upper())
        if rule.mask_every:
            for index in range(rule.mask_every - 1, len(residues), rule.mask_every):
                residues[index] = "<mask>"
        text = "".join(residues)
        chosen.append(
            ReferenceProtein(
                label=rule.label,
                source=rule.source,
                rule=rule.description,
                record=record,
                residues=residues,
                fasta_text=text.lower() if rule.lowercase_input else text,
            )
        )
    return chosen
