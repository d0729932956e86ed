"""Small FASTA helpers shared by the reference and benchmark scripts.

Kept dependency-free so that `make_bench_fasta.py` runs without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The repository is checked out beside `shared/`, so the data lives two levels above scripts/.
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"

YEAST_FASTA = "yeast_s288c/UP000002311_559292.fasta"
ECOLI_FASTA = "ecoli_k12/UP000000625_83333_tpp_solver.fasta"
BINDEMBED_FASTA = "bindembed21/development_set/all.fasta"

# plmscope's context: <cls> + 1022 residues + <eos> = 1024 tokens.
MAX_RESIDUES = 1022


@dataclass(frozen=True)
class FastaRecord:
    header: str  # the header line without '>'
    sequence: str  # residues as in the file (line breaks removed)

    @property
    def accession(self) -> str:
        """UniProt accession for `sp|ACC|NAME ...` headers, else the first word."""
        first = self.header.split()[0]
        parts = first.split("|")
        return parts[1] if len(parts) >= 3 else first


def read_fasta(path: Path) -> list[FastaRecord]:
    """Read every record of a FASTA file, in file order."""
    records: list[FastaRecord] = []
    header: str | None = None
    chunks: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = raw.strip()
            if line.startswith(">"):
                if header is not None:
                    records.append(FastaRecord(header, "".join(chunks)))
                header, chunks = line[1:], []
            elif line:
                if header is None:
                    raise ValueError(f"{path}:{line_no}: sequence line before the first '>' header")
                chunks.append(line)
    if header is not None:
        records.append(FastaRecord(header, "".join(chunks)))
    return records


def write_fasta(path: Path, records: list[FastaRecord], width: int = 60) -> None:
    """Write records with sequence lines wrapped at `width`, as UniProt does."""
    with open(path, "w", encoding="utf-8") as handle:
        for rec in records:
            handle.write(f">{rec.header}\n")
            for start in range(0, len(rec.sequence), width):
                handle.write(rec.sequence[start : start + width] + "\n")
