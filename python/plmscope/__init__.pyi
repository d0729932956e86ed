"""Type stubs for plmscope (see the package docstring)."""
from os import PathLike
from typing import Any, Dict, List, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, "PathLike[str]"]

class PlmscopeError(Exception):
    """An error from plmscope, with the message the command-line tool prints."""

class ActivationSet:
    """An activation set directory (``plmscope embed`` / ``plmscope import``), memory-mapped."""

    ids: List[str]
    lengths: List[int]
    d_model: int
    rows: int
    level: str
    layer: int
    site: str
    model: str
    def __init__(self, path: _Path) -> None: ...
    def __len__(self) -> int: ...
    def protein(self, key: Union[int, str]) -> npt.NDArray[np.float32]:
        """One protein's rows, float32 [rows, d_model] (rows: residues, or 1 at protein level)."""
    def read(self, start: int, count: int) -> npt.NDArray[np.float32]:
        """Global rows start .. start + count, float32 [count, d_model]."""

class Dictionary:
    """A dictionary checkpoint (ours, SAELens, sparsify, InterPLM, Rep .ckpt)."""

    d_in: int
    d_sae: int
    d_out: int
    def __init__(self, path: _Path) -> None: ...
    def encode(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Dense codes float32 [rows, d_sae] of x float32 [rows, d_in] (as ``plmscope encode``)."""
    def decode(self, z: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Reconstruction float32 [rows, d_out] from dense codes (normalised units for
        LayerNorm dictionaries; use ``reconstruct``)."""
    def reconstruct(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """encode then decode, LayerNorm statistics and skip path included."""

class Model:
    """An ESM2 model: a checkpoint directory or file, or a hub id (HF cache; offline-safe)."""

    id: str
    arch: str
    weights_sha256: str
    num_layers: int
    d_model: int
    def __init__(self, path_or_hub_id: str) -> None: ...
    def embed(
        self, sequences: List[str], layers: List[int], site: str = ...
    ) -> Dict[int, List[npt.NDArray[np.float32]]]:
        """{layer: one float32 [L_i, d_model] array per sequence}, residue rows only, as
        ``plmscope embed`` stores them (site: resid_post, mlp_in or mlp_out)."""

class Atlas:
    path: str
    tables: List[str]
    def __init__(self, path: _Path) -> None: ...
    def table(self, name: str, as_dict: bool = ...) -> Any:
        """The table as a pandas.DataFrame (a dict of column -> list without pandas)."""
