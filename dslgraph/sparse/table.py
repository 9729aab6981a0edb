"""The embedding-table seam: what a model asks of its table, so a sparse table can stand in.

A model never touches ``table.weight`` for its own maths; it asks the table for

* ``table(index)`` — dense rows for a batch (like :class:`torch.nn.Embedding`),
* ``table.to_dense()`` — the whole ``[num_embeddings, embedding_dim]`` table,
* ``table.propagate(adj, dense_view)`` — ``adj @ table``, the first graph-propagation step
  (``dense_view``: what ``to_dense()`` returned, if the caller made it, for a table that
  multiplies a dense copy to reuse).

:class:`DenseEmbedding` does each the ordinary way; :class:`dslgraph.sparse.SparseEmbedding`
stores only active entries and does the same maths with work proportional to them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dslgraph.checks import as_count, is_real
from dslgraph.sparse.ops import spmm

INITS = ("normal", "xavier")


LINEAR_INIT = "linear"
"""The init of a table that is a linear layer's ``[out_features, in_features]`` weight (a
:class:`~dslgraph.sparse.SparseLinear`'s): :class:`torch.nn.Linear`'s, Kaiming-uniform with
:math:`a = \\sqrt{5}`, that is :math:`U(-1/\\sqrt{d}, 1/\\sqrt{d})` for ``d = embedding_dim`` inputs."""


def init_table_(weight: Tensor, init: str, std: float) -> Tensor:
    """Fills a dense table in place: ``normal(0, std)``, Xavier-uniform or :data:`LINEAR_INIT`."""
    if init == "normal":
        return nn.init.normal_(weight, std=std)
    if init == "xavier":
        return nn.init.xavier_uniform_(weight)
    if init == LINEAR_INIT:  # the very draw of torch.nn.Linear.reset_parameters
        return nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    raise ValueError(f"init must be one of {[*INITS, LINEAR_INIT]}, got {init!r}")


def check_std(std: float) -> float:
    """Refuses a normal-init ``std`` that is not a finite number > 0 and returns it as a Python float
    (NumPy's pass): 0 would start an all-zero table, which a dot-product model never moves off zero (every
    gradient is a product with zero); a negative std, nan or text failed only in ``nn.init.normal_``, inf
    filled the table with infinities, and a NumPy std was kept in the table's attributes."""
    if not (is_real(std) and math.isfinite(std) and std > 0):
        raise ValueError(f"std must be a finite number > 0, got {std!r}")
    return float(std)


def check_shape(num_embeddings: int, embedding_dim: int) -> tuple[int, int]:
    """The table shape as two Python ints >= 1, else a :class:`ValueError` naming the size: a zero,
    negative or fractional size failed inside torch (``randperm``, ``empty``) with an error that did not
    name the table's shape, a 0-dim tensor (``index.max() + 1``) was refused, and a NumPy size was kept
    in the table's attributes (``np.int32`` rows times columns overflowed past 2**31 entries)."""
    return as_count(num_embeddings, "num_embeddings", 1), as_count(embedding_dim, "embedding_dim", 1)


def check_index(index: Tensor, name: str = "index") -> None:
    """Raises a :class:`ValueError` naming ``name`` unless ``index`` is an int64 or int32 tensor of ids, as
    :class:`torch.nn.Embedding` takes: torch indexes by a bool or uint8 tensor as by a mask of the rows (other
    rows, fewer of them, no error), and a float tensor or a list failed naming neither. The check of the
    models' ids too (:func:`dslgraph.nn.base.check_ids`), which adds their range."""
    if isinstance(index, Tensor) and index.dtype in (torch.int64, torch.int32):
        return
    if not isinstance(index, Tensor):
        raise ValueError(f"{name} must be a tensor of integer ids, got a {type(index).__name__}")
    got = f"a {index.dtype} tensor of shape {list(index.shape)}"
    if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
        raise ValueError(f"{name} must be a tensor of integer ids, got {got}")
    raise ValueError(
        f"{name} must be int64 or int32 ids, got {got}, which torch does not index by as ids: pass "
        f"{name}.long()"
    )


class EmbeddingTable(nn.Module):
    """Base class of embedding tables behind the seam: what a model asks of its table, so that a sparse
    table can stand in (see the docs of :mod:`dslgraph.sparse.table`)."""

    num_embeddings: int
    embedding_dim: int

    def to_dense(self) -> Tensor:
        """The whole ``[num_embeddings, embedding_dim]`` table as a dense tensor (differentiable)."""
        raise NotImplementedError

    def forward(self, index: Tensor) -> Tensor:
        """Dense ``[*index.shape, embedding_dim]`` rows ``index``, as :class:`torch.nn.Embedding` gives."""
        raise NotImplementedError

    def propagate(self, adj, dense_view: Tensor | None = None) -> Tensor:
        """``adj @ table``, the first graph-propagation step; ``dense_view`` is what :meth:`to_dense`
        returned, if the caller made it, for a table that multiplies a dense copy to reuse."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_embeddings}, {self.embedding_dim})"


TABLE_MODULES = (EmbeddingTable, nn.Embedding, nn.EmbeddingBag)
"""The modules DSL's ``targets="tables"`` sparsifies as embedding tables. An :class:`torch.nn.EmbeddingBag` is
masked in place under every backend: a sparse table does plain look-ups, not a bag's pooling."""


class DenseEmbedding(EmbeddingTable):
    """An ordinary dense embedding table.

    Args:
        num_embeddings (int): Number of rows.
        embedding_dim (int): Number of columns.
        init (str, optional): ``"normal"`` (LightGCN's official code) or ``"xavier"`` (DSL's).
            (default: :obj:`"normal"`)
        std (float, optional): Standard deviation of the normal init. (default: :obj:`0.1`)
    """

    def __init__(
        self, num_embeddings: int, embedding_dim: int, init: str = "normal", std: float = 0.1
    ) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = check_shape(num_embeddings, embedding_dim)
        if init not in INITS:  # a table's inits (LINEAR_INIT is a linear layer's weight's)
            raise ValueError(f"init must be one of {list(INITS)}, got {init!r}")
        self.init = init
        self.std = check_std(std)
        self.weight = nn.Parameter(torch.empty(self.num_embeddings, self.embedding_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draws the table anew, as ``init`` and ``std`` say."""
        init_table_(self.weight.data, self.init, self.std)

    def to_dense(self) -> Tensor:
        return self.weight

    def forward(self, index: Tensor) -> Tensor:
        check_index(index)  # a bool index was taken as a mask of the rows, which a SparseEmbedding refuses
        return self.weight[index]

    def propagate(self, adj, dense_view: Tensor | None = None) -> Tensor:
        return spmm(adj, self.weight)
