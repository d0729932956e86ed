"""plmscope from Python: activation sets as NumPy arrays, dictionaries' encode/decode, and atlas
tables as pandas data frames. A thin layer over the Rust library crates (the extension module
``plmscope._plmscope``); no Python runs inside plmscope itself.

>>> import plmscope
>>> acts = plmscope.ActivationSet("runs/quickstart/t6/activations/layer6.resid_post.residue")
>>> x = acts.protein(0)                       # float32 [residues, d_model], read alone
>>> sae = plmscope.Dictionary("runs/quickstart/t6/dictionaries/topk-residue/layer6.resid_post.residue")
>>> z = sae.encode(x)                         # float32 [residues, d_sae], dense
>>> model = plmscope.Model("facebook/esm2_t6_8M_UR50D")
>>> per_layer = model.embed(["MKTAYIAKQR"], layers=[3, 6])   # {3: [float32 [10, 320]], 6: [...]}
>>> units = plmscope.Atlas("atlas.sqlite").table("units")   # pandas.DataFrame

Errors carry the command-line tool's message and are raised as :class:`PlmscopeError`.
"""
from ._plmscope import ActivationSet, Dictionary, Model, PlmscopeError
from . import _plmscope

__all__ = ["ActivationSet", "Dictionary", "Model", "Atlas", "PlmscopeError"]


class Atlas:
    """An atlas (the SQLite file ``plmscope analyze`` writes), opened read-only.

    ``tables`` lists its tables; ``table(name)`` returns one as a ``pandas.DataFrame`` (or, with
    ``as_dict=True`` or without pandas installed, a dict of column name → list).
    """

    def __init__(self, path):
        self.path = str(path)
        self.tables = _plmscope.atlas_tables(self.path)

    def table(self, name, as_dict=False):
        columns = _plmscope.atlas_table(self.path, name)
        if as_dict:
            return columns
        try:
            import pandas
        except ImportError:
            return columns
        return pandas.DataFrame(columns)

    def __repr__(self):
        return f"Atlas({self.path!r}, tables={self.tables!r})"
