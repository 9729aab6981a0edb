"""What every dslgraph model offers the trainer, the evaluators, the cost accounting and DSL.

A model is a :class:`Recommender`: it names the batches it trains on, builds the graph input it
needs from the :class:`~torch_geometric.data.HeteroData` of :mod:`dslgraph.data.graph`, returns a
loss for a batch and a score function for evaluation, and counts its own multiply-accumulates.

* ``batch_kind = "pairs"``: batches are ``(users, positives, negatives)``, with ``negatives`` of
  shape ``[B]`` when ``num_negatives == 1`` and ``[B, num_negatives]`` otherwise (LightGCN,
  UltraGCN, NeuMF, ConvNCF); negatives are never training positives of the user unless the
  model sets ``exclude_positives = False``.
* ``batch_kind = "users"``: batches are ``(users,)``; the model reads each user's training row
  from its graph input (CDAE, MultVAE).

:attr:`folds_in` says whether the model scores a user it never trained on from that user's
interactions (its graph input's row, or propagation over its edges): what the held-out-users protocol
evaluates. Models that score users by a trained embedding alone do not.

``loss(graph, *batch, reg_weight=...)`` is called with the graph input of :meth:`input_graph`
(:attr:`uses_reg_weight` is False where the loss has no term it weighs, and ignores it),
and ``scorer(graph)`` returns ``score(users, items=None)``: ``[B, num_items]`` scores of every
item, or ``[B, C]`` scores of the candidate items ``items`` (``[B, C]``), which the sampled
(leave-one-out) protocol asks for so that costly models score 101 items, not all of them.

:attr:`dsl_targets` are the tensors :class:`~dslgraph.sparse.DynamicSparseLearning` sparsifies by
default (the DSL authors' choice for the model); users pass their own ``targets`` to change it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from dslgraph.checks import as_count, is_count, is_real
from dslgraph.data.graph import (
    EDGE,
    check_pair_index,
    interaction_csr,
    is_index,
    num_users_items,
    propagation_graph,
)
from dslgraph.sparse.embedding import SparseEmbedding
from dslgraph.sparse.linear import SparseLinear
from dslgraph.sparse.ops import csr_segments, exclude_entries
from dslgraph.sparse.table import TABLE_MODULES, EmbeddingTable, check_index

ScoreFn = Callable[..., Tensor]

MAC_COUNTS = ("dense", "executed", "ideal")


class Recommender(nn.Module):
    """Base class of the models: the batches a model trains on, its graph input, its loss, its score
    function for evaluation and its multiply-accumulates (see the docs of :mod:`dslgraph.nn.base`)."""

    num_users: int
    num_items: int
    batch_kind: str = "pairs"
    num_negatives: int = 1
    exclude_positives: bool = True
    dsl_targets: tuple[str, ...] = ("tables",)
    folds_in: bool = False
    uses_reg_weight: bool = True

    def input_graph(self, data: HeteroData):
        """The graph input of :meth:`loss` and :meth:`scorer`; by default the normalised graph."""
        self.check_data(data)
        return propagation_graph(data, self.float_dtype())

    def float_dtype(self) -> torch.dtype:
        """The dtype of the model's floating-point parameters, which its graph input takes (after
        ``model.double()`` too)."""
        floats = (p.dtype for p in self.parameters() if p.is_floating_point())
        return next(floats, torch.get_default_dtype())

    def check_data(self, data: HeteroData) -> None:
        """Raises a :class:`ValueError` unless ``data`` has the model's numbers of users and items (a
        graph of other sizes failed deep in a product, or was silently taken by models that index it) and
        training interactions of ids in their ranges."""
        self.check_data_sizes(data)
        # an item id past num_items (PyG's one id space, items after the users) failed deep in torch, or
        # built CDAE's and Mult-VAE's rows silently with columns outside the matrix
        check_pair_index(f"data[{EDGE}].edge_index", data[EDGE].edge_index, self.num_items, self.num_users)

    def check_data_sizes(self, data: HeteroData) -> None:
        """The numbers of users and items of :meth:`check_data`, for a graph input whose builder checks the
        training interactions itself (:func:`interaction_matrix`)."""
        sizes = num_users_items(data)
        if sizes != (self.num_users, self.num_items):
            raise ValueError(
                f"the data has {sizes[0]} users and {sizes[1]} items, the model was built for "
                f"{self.num_users} and {self.num_items}"
            )

    def check_pairs(self, users: Tensor, items: Tensor | None = None, candidates: bool = False) -> None:
        """Raises a :class:`ValueError` unless ``users`` is a ``[B]`` tensor of the model's user ids and
        ``items``, if given, a ``[B]`` or ``[B, C]`` tensor of its item ids (``[B, C]`` only, with
        ``candidates``): a negative id would silently index from the end of a table, an id past
        the end of LightGCN's table (users, then items) another node's row, and items of another
        length would be paired with other users."""
        if not is_index(users) or users.dim() != 1:
            raise ValueError(f"users must be a 1-D tensor of integer ids, got {describe(users)}")
        check_ids("users", users, self.num_users)
        if items is None:
            return
        check_ids("items", items, self.num_items, self.num_users)
        if items.dim() not in ((2,) if candidates else (1, 2)) or items.size(0) != users.numel():
            shape = "[B, C]" if candidates else "[B] or [B, C]"
            raise ValueError(
                f"items must have shape {shape} for B = {users.numel()} users, got {list(items.shape)}"
            )

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """:meth:`torch.nn.Module.load_state_dict`, refusing the state of a DSL model for a module that is
        dense here (not DSL-masked), naming :meth:`DynamicSparseLearning.dense_state_dict` as the state to
        load: a sparse module's ``values`` and ``positions`` (with ``strict=False`` torch skipped them as
        unexpected keys and left the model untrained, without a word) and, under ``strict``, a masked
        weight's ``<name>_mask`` (torch named the unexpected key alone; with ``strict=False`` the weight,
        zero where masked, loads)."""
        for key in state_dict:
            self._check_sparse_entries(key, state_dict)
            if strict:
                self._check_mask(key, state_dict)
        return super().load_state_dict(state_dict, strict, assign)

    def _check_sparse_entries(self, key: str, state_dict: Mapping[str, Any]) -> None:
        prefix = key[: -len("values")]
        in_module = not prefix or prefix.endswith(".")
        if not (key.endswith("values") and in_module and prefix + "positions" in state_dict):
            return
        name = prefix.removesuffix(".")
        try:
            module = self.get_submodule(name)
        except AttributeError:
            return  # a module this model lacks: torch names the unexpected keys
        # a DSL-masked module (backend="masked") takes them as its weight and mask
        if not isinstance(module, (SparseEmbedding, SparseLinear)) and not hasattr(module, "weight_mask"):
            raise ValueError(
                f"the state dict holds {key!r} and {prefix + 'positions'!r} (the active entries of a "
                f"sparse module), where {name or 'the model'!r} is a dense {type(module).__name__} here: "
                "load DynamicSparseLearning.dense_state_dict() of the sparse model instead"
            )

    def _check_mask(self, key: str, state_dict: Mapping[str, Any]) -> None:
        name, _, mask = key.rpartition(".")
        attr = mask.removesuffix("_mask")
        # not torch's pruning, which keeps weight_orig beside weight_mask (and no weight)
        if attr == mask or f"{name}.{attr}".lstrip(".") not in state_dict:
            return
        try:
            module = self.get_submodule(name)
        except AttributeError:
            return
        if isinstance(module, (SparseEmbedding, SparseLinear)):  # takes a masked weight as its entries
            return
        if isinstance(getattr(module, attr, None), Tensor) and not hasattr(module, mask):
            raise ValueError(
                f"the state dict holds {key!r} (the mask of a DSL-masked weight, backend='masked'), where "
                f"{attr!r} of {name or 'the model'!r} is dense here: load DynamicSparseLearning."
                "dense_state_dict() of the DSL model instead"
            )

    def loss(self, graph, *batch: Tensor, reg_weight: float = 0.0) -> Tensor:
        """The training loss of one batch (``(users, positives, negatives)`` or ``(users,)``, as
        :attr:`batch_kind` says) on the graph input of :meth:`input_graph`, with ``reg_weight`` times
        the model's regulariser (ignored where :attr:`uses_reg_weight` is False)."""
        raise NotImplementedError

    def scorer(self, graph) -> ScoreFn:
        """``score(users, items=None)`` on the graph input of :meth:`input_graph`: ``[B, num_items]``
        scores of every item for ``[B]`` users, or ``[B, C]`` scores of the candidates ``items``."""
        raise NotImplementedError

    def macs(self, graph, batch_size: int, count: str = "executed") -> dict[str, float]:
        """Multiply-accumulates of one training iteration and one full-ranking inference.

        ``count`` is ``"dense"`` (the same model with every tensor dense), ``"executed"`` (what
        dslgraph's kernels run now: sparse tables cost their active entries, masked dense
        layers cost as much as dense ones) or ``"ideal"`` (every sparsified tensor costs its
        active entries only, as if sparse kernels existed for all of them — the paper's count).
        Returns at least ``train_iteration`` and ``inference``.
        """
        raise NotImplementedError

    def _sparsity_repr(self) -> str:
        """``", sparsity=S"`` for the :meth:`__repr__` of a model a DSL controller sparsified (``S``: the
        fraction of zeros over its sparse tables and layers and its masked weights, what the controller's
        ``achieved_sparsity()`` gives), else ``""``: a DSL model printed as the same model dense."""
        total = active = 0
        for module in self.modules():
            if isinstance(module, SparseEmbedding):
                total += module.num_embeddings * module.embedding_dim
                active += module.nnz
            for name, buffer in module.named_buffers(recurse=False):
                if name.endswith("_mask") and buffer.dtype == torch.bool:  # the masked backend's
                    total += buffer.numel()
                    active += int(buffer.count_nonzero())
        return f", sparsity={1 - active / total:.3f}" if total else ""

    @torch.no_grad()
    def recommend(
        self, graph, users: Tensor, k: int, exclude: Tensor | None = None, batch_size: int = 2048
    ) -> Tensor:
        """Top-``k`` item ids for ``users`` (a user may appear more than once); ``exclude`` is a
        ``[2, E]`` index of pairs never recommended while the user has other items: a user with
        fewer than ``k`` items left gets its best-scored excluded ones at the end of the row. ``users`` and
        ``exclude`` may be on any device; the ids come back on the model's. ``batch_size`` users are scored
        at once, so that memory holds ``batch_size x num_items`` scores (the exclusions are written into them,
        not into a copy) however many users are asked for (all of Amazon-book's 52,643 at once would be
        19 GB)."""
        if not (is_count(k) and 1 <= k <= self.num_items):  # 2.0 and True failed inside topk
            raise ValueError(f"k must be an integer in [1, num_items={self.num_items}], got {k!r}")
        check_sizes(batch_size=batch_size)
        self.check_pairs(users)
        if exclude is not None:
            # a transposed [E, 2] index would silently exclude the wrong pairs, a wrong id another user's
            check_pair_index("exclude", exclude, self.num_items, self.num_users)
        # ids and exclusions go where the model is: CPU ones would meet its CSR rows (CDAE, Mult-VAE)
        # and its scores on a GPU
        device = next(self.parameters()).device
        users = users.to(device)
        score = self.scorer(graph)
        if exclude is not None:
            # each user's excluded items as a CSR row: every row of a repeated user gets them
            seen = interaction_csr(exclude.long().cpu(), self.num_users, self.num_items)
            seen_crow, seen_col = seen.crow_indices().to(device), seen.col_indices().to(device)
        top = []
        for block in users.split(batch_size):
            scores = score(block)
            if exclude is not None:
                scores = exclude_entries(scores, seen_crow, seen_col, block)
            values, indices = scores.topk(k, dim=-1)
            del scores  # before the next block is scored, not once it is
            if exclude is not None:
                indices = fill_with_excluded(score, seen_crow, seen_col, block, values, indices)
            top.append(indices)
        return torch.cat(top)  # no users: one empty block, so a [0, k] tensor


def fill_with_excluded(
    score: Callable, crow: Tensor, col: Tensor, users: Tensor, values: Tensor, indices: Tensor
) -> Tensor:
    """``indices`` (each user's top-``k`` with its excluded items at :math:`-\\infty`, written in place)
    where the rows of users with fewer than ``k`` items left end in their best-scored excluded items:
    ``topk`` filled them with the lowest ids among its :math:`-\\infty` ties, whatever their scores. Those
    few users are scored again, so that no block holds a second copy of its scores."""
    short = values[:, -1] == float("-inf")
    if not short.any():
        return indices
    rows = short.nonzero().flatten()
    scores = score(users[rows])  # only read: masked_fill below writes a new tensor
    excluded = exclude_entries(torch.zeros_like(scores), crow, col, users[rows], copy_shared=False)
    best = scores.masked_fill(excluded == 0, float("-inf")).topk(indices.size(1), dim=-1).indices
    for row, left, excluded_best in zip(rows.tolist(), (values[rows] > float("-inf")).sum(1).tolist(), best):
        indices[row, left:] = excluded_best[: indices.size(1) - left]
    return indices


def describe(value) -> str:
    """A tensor's dtype and shape (its values may be many), or another value's repr, for an error message."""
    return (
        f"a {value.dtype} tensor of shape {list(value.shape)}" if isinstance(value, Tensor) else repr(value)
    )


def _describe_with_layout(tensor: Tensor) -> str:
    """:func:`describe`, with the layout of a tensor that is not dense (a sparse graph or rows)."""
    if tensor.layout == torch.strided:
        return describe(tensor)
    return f"{describe(tensor)} in layout {tensor.layout}"


def check_graph(graph, shape: tuple[int, int], name: str, sparse_tensor: bool = False) -> None:
    """Raises unless ``graph`` is a sparse CSR tensor of ``shape``, the graph input ``input_graph`` builds
    (with ``sparse_tensor``, a ``torch_sparse.SparseTensor`` of that size too): the ``HeteroData`` itself,
    an edge index or another dataset's graph failed deep inside torch (an attribute missing, shapes that
    cannot be multiplied). Reads the shape only, so it costs no wait for a GPU."""
    if isinstance(graph, Tensor) and graph.layout == torch.sparse_csr:
        size = tuple(graph.shape)
    elif sparse_tensor and callable(getattr(graph, "sparse_sizes", None)):
        size = tuple(graph.sparse_sizes())
    else:
        got = _describe_with_layout(graph) if isinstance(graph, Tensor) else f"a {type(graph).__name__}"
        raise TypeError(
            f"{name} takes the graph model.input_graph(data) builds, a sparse CSR {list(shape)} tensor, "
            f"not {got}"
        )
    if size != shape:
        raise ValueError(
            f"the graph is {list(size)}, {name} was built for a {list(shape)} one: pass the "
            "model.input_graph(data) of the data it was built for"
        )


def check_rows(rows: Tensor, num_items: int, num_users: int | None = None, sparse: bool = False) -> None:
    """Raises a :class:`ValueError` unless ``rows`` is a floating-point ``[B, num_items]`` tensor of
    interaction rows, ``B = num_users`` where given (dense, or also sparse CSR with ``sparse``): rows
    of another width failed deep in a product, and one row for several users was silently broadcast."""
    layouts = (torch.strided, torch.sparse_csr) if sparse else (torch.strided,)
    if (
        not isinstance(rows, Tensor)
        or rows.layout not in layouts
        or not rows.is_floating_point()
        or rows.dim() != 2
        or rows.size(1) != num_items
        or (num_users is not None and rows.size(0) != num_users)
    ):
        users = "B" if num_users is None else num_users
        layout = " (dense or sparse CSR)" if sparse else ""
        got = _describe_with_layout(rows) if isinstance(rows, Tensor) else repr(rows)
        raise ValueError(
            f"rows must be a floating-point [{users}, num_items={num_items}] tensor{layout}, got {got}"
        )


def check_ids(name: str, ids: Tensor, bound: int, offset: int | None = None) -> None:
    """Raises a :class:`ValueError` naming ``name`` unless ``ids`` is an int64 or int32 tensor of ids in
    ``[0, bound)`` (the tables' :func:`~dslgraph.sparse.table.check_index`, and the range). Item ids all in
    ``[offset, offset + bound)``, ``offset`` the number of users, are said to be node ids (PyG's LightGCN
    numbers items after the users)."""
    check_index(ids, name)
    outside = ids[(ids < 0) | (ids >= bound)]
    if outside.numel():
        shifted = offset is not None and bool(((ids >= offset) & (ids < offset + bound)).all())
        hint = (
            f" (node ids? items are numbered from 0 here, not from num_users={offset} as in PyG)"
            if shifted
            else ""
        )
        raise ValueError(f"{name} must be ids in [0, num_{name}={bound}), got {outside[:5].tolist()}{hint}")


def check_sizes(**sizes: int) -> tuple[int, ...]:
    """Raises a :class:`ValueError` naming the first of the keyword arguments that is not an integer >= 1;
    returns them, in order, as Python ints. NumPy's integers pass, to go on as ints: a product of
    ``np.int32`` sizes overflows (the MACs of scoring 60,000 users against 50,000 items came out negative),
    and so do 0-dim integer tensors (``index.max() + 1``)."""
    return tuple(as_count(size, name, minimum=1) for name, size in sizes.items())


def check_weights(**weights: float) -> tuple[float, ...]:
    """Raises a :class:`ValueError` naming the first of the keyword arguments that is not a finite
    number >= 0 (a loss weight); returns them, in order, as Python floats (NumPy's numbers pass)."""
    for name, weight in weights.items():
        if not (is_real(weight) and math.isfinite(weight) and weight >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {weight!r}")
    return tuple(float(weight) for weight in weights.values())


def check_probability(name: str, p: float) -> float:
    """Raises a :class:`ValueError` unless the drop-out probability ``p`` (argument ``name``) is in [0, 1);
    returns it as a Python float (NumPy's pass)."""
    if not (is_real(p) and 0.0 <= p < 1.0):
        raise ValueError(f"{name} must be a number in [0, 1), got {p!r}")
    return float(p)


def check_count(count: str) -> None:
    """Raises a :class:`ValueError` unless ``count`` is one of :data:`MAC_COUNTS`."""
    if count not in MAC_COUNTS:
        raise ValueError(f"count must be one of {MAC_COUNTS}, got {count!r}")


def check_macs(count: str, batch_size: int) -> int:
    """Checks the arguments of a model's ``macs``; returns ``batch_size`` as a Python int. A negative or
    fractional batch gave negative or fractional MACs, an ``np.int32`` one overflowed (UltraGCN's
    8,192 users against 50,000 items)."""
    check_count(count)
    return check_sizes(batch_size=batch_size)[0]


def active_fraction(module: nn.Module) -> float:
    """The fraction of ``module.weight`` that is active: a sparse layer's density, its DSL mask's
    density, or 1 without a mask."""
    if isinstance(module, SparseLinear):
        return module.density()
    mask = getattr(module, "weight_mask", None)
    return 1.0 if mask is None else float(mask.float().mean())


def linear_macs(layer: nn.Linear | SparseLinear | nn.Conv2d, rows: int, count: str) -> float:
    """MACs of ``layer`` applied to ``rows`` inputs (output positions for a convolution).

    A masked weight runs dense (``"executed"``) unless ``count == "ideal"``, which charges only
    its active weights; a :class:`~dslgraph.sparse.SparseLinear` executes only its active ones.
    """
    check_count(count)
    if isinstance(layer, SparseLinear):
        return rows * (layer.in_features * layer.out_features if count == "dense" else layer.nnz)
    fraction = active_fraction(layer) if count == "ideal" else 1.0
    return rows * layer.weight.numel() * fraction  # each row / output position uses every weight once


def growth_macs(layer: nn.Linear | SparseLinear, rows: int, count: str) -> float:
    """MACs of the dense weight gradient a DSL growth step rebuilds for ``layer`` applied to ``rows``
    inputs in the iteration (``rows x in_features x out_features``, the product its backward skips).

    A :class:`~dslgraph.sparse.SparseLinear`'s backward computes its gradient at the active entries only,
    so its growth step runs the dense one (``"executed"`` and ``"ideal"``); a masked layer's backward
    computes it dense anyway, so only ``"ideal"`` (sparse kernels for every sparsified tensor) charges it.
    A dense layer grows nothing.
    """
    check_count(count)
    masked = getattr(layer, "weight_mask", None) is not None
    if count == "dense" or not (isinstance(layer, SparseLinear) or (count == "ideal" and masked)):
        return 0.0
    return rows * layer.in_features * layer.out_features


def per_user_macs(
    per_user: float, batch_size: int, num_users: int, input_layer: float = 0.0, update_step: float = 0.0
) -> dict[str, float]:
    """The MAC counts of a model that runs each user's row once: ``batch_size`` users per training
    iteration and every user for a full ranking. Backward runs two products per linear layer (the
    gradients of its weight and of its input) except one for the first, ``input_layer`` MACs a user,
    whose input (the interaction row) needs no gradient. ``update_step`` is a DSL growth step's
    (:func:`growth_macs` of the iteration's layers), which :func:`~dslgraph.metrics.cost_report` spreads
    over the iterations."""
    forward = batch_size * per_user
    return {
        "per_user": per_user,
        "train_forward": forward,
        "train_iteration": 3 * forward - batch_size * input_layer,
        "update_step": update_step,
        "inference": num_users * per_user,
    }


def node_degrees(data: HeteroData) -> Tensor:
    """The training degree of every node, users first, then items (LightGCN's table order)."""
    num_users, num_items = num_users_items(data)
    users, items = data[EDGE].edge_index.cpu()
    return torch.cat([torch.bincount(users, minlength=num_users), torch.bincount(items, minlength=num_items)])


def table_sides(rows: int, num_users: int, num_items: int) -> dict[str, slice]:
    """Which rows of a table of ``rows`` rows are users' (``"user"``) and which items' (``"item"``).

    A table of ``num_users + num_items`` rows (LightGCN's) holds users then items; one of
    ``num_users`` or ``num_items`` rows is that side's (UltraGCN's, NeuMF's). A table of any other
    size, or of a size both sides share, gets ``{}``.
    """
    if rows == num_users + num_items:
        return {"user": slice(0, num_users), "item": slice(num_users, rows)}
    if num_users != num_items and rows in (num_users, num_items):
        return {"user" if rows == num_users else "item": slice(0, rows)}
    return {}


def table_row_degrees(model: nn.Module, data: HeteroData) -> dict[str, Tensor]:
    """The training degree of the user or item behind each row of every embedding table of ``model``
    whose rows :func:`table_sides` places, keyed by the table's module name (``row_degrees`` of
    :class:`~dslgraph.sparse.DynamicSparseLearning` for ``mask_init="degree"``)."""
    num_users, num_items = num_users_items(data)
    degree = node_degrees(data)
    nodes = {"user": slice(0, num_users), "item": slice(num_users, num_users + num_items)}
    degrees = {}
    for name, module in model.named_modules():
        if isinstance(module, TABLE_MODULES):
            sides = table_sides(module.num_embeddings, num_users, num_items)
            if sides:
                degrees[name] = torch.cat([degree[nodes[side]] for side in sides])
    return degrees


def interaction_matrix(data: HeteroData, dtype: torch.dtype = torch.float32) -> Tensor:
    """The binary ``[num_users, num_items]`` training interactions as a ``torch.sparse_csr`` tensor; a
    :class:`ValueError` names ``data[EDGE].edge_index`` for ids outside them."""
    index_name = f"data[{EDGE}].edge_index"
    return interaction_csr(data[EDGE].edge_index, *num_users_items(data), dtype, index_name)


def dense_rows(matrix: Tensor, rows: Tensor) -> Tensor:
    """Rows ``rows`` of a CSR ``matrix`` as a dense ``[len(rows), num_columns]`` tensor, on the matrix's
    device (``rows`` may be on any: CPU user ids against CDAE's and Mult-VAE's graph on a GPU failed in
    ``repeat_interleave``, naming neither)."""
    value = matrix.values()
    rows = rows.to(value.device)
    entries, owner = csr_segments(matrix.crow_indices(), rows)
    out = torch.zeros(rows.numel(), matrix.size(1), dtype=value.dtype, device=value.device)
    out[owner, matrix.col_indices()[entries]] = value[entries]
    return out


def table_density(table: EmbeddingTable, count: str, sparse_kernel: bool = False) -> float:
    """The fraction of ``table``'s entries a product with it is charged for under ``count``.

    ``"ideal"`` charges the active entries of a sparse or masked table; ``"executed"`` only where
    the product really runs on a genuinely sparse table (``sparse_kernel`` and the table has
    ``nnz``); rows looked up from any table are dense, so they cost in full when executed.
    """
    check_count(count)
    if count == "dense" or (count == "executed" and not (sparse_kernel and hasattr(table, "nnz"))):
        return 1.0
    if hasattr(table, "nnz"):
        return table.nnz / (table.num_embeddings * table.embedding_dim)
    return active_fraction(table)


def column_counts(table: EmbeddingTable) -> Tensor:
    """The active entries of each column of ``table`` (float64, on the CPU): a sparse table's stored
    ones, a masked table's unmasked ones, every row of a dense table."""
    d = table.embedding_dim
    if isinstance(table, SparseEmbedding):
        return torch.bincount(table.positions.remainder(d).cpu(), minlength=d).double()
    mask = getattr(table, "weight_mask", None)
    if mask is None:
        return torch.full((d,), float(table.num_embeddings), dtype=torch.float64)
    return mask.sum(0).cpu().double()


def table_product(table: EmbeddingTable, weight: Tensor) -> Tensor:
    """``table @ weight.T`` over the whole table, with work proportional to a sparse table's entries
    (and no dense copy of it)."""
    if isinstance(table, SparseEmbedding):
        return table.linear(weight).T
    return table.to_dense() @ weight.T


def score_in_blocks(
    score_pairs: Callable[[Tensor, Tensor | None], Tensor],
    users: Tensor,
    items: Tensor | None,
    num_items: int,
    block_pairs: int,
) -> Tensor:
    """Scores ``[B, C]`` of ``users`` with candidates ``items`` (``[B, C]``; ``None`` for every item),
    by ``score_pairs(users, items)`` on a block of users at a time, so that at most about
    ``block_pairs`` pairs are held at once. ``score_pairs`` gets ``None`` for every item, so it can
    broadcast the item side instead of gathering it once per user."""
    width = num_items if items is None else items.size(1)
    rows = max(1, block_pairs // max(width, 1))
    blocks = [
        score_pairs(users[s : s + rows], None if items is None else items[s : s + rows])
        for s in range(0, users.numel(), rows)
    ]
    return torch.cat(blocks) if blocks else torch.zeros(0, width, device=users.device)


def decode(layer: nn.Linear, hidden: Tensor, items: Tensor | None) -> Tensor:
    """``layer(hidden)`` for every output (``[B, num_items]``), or only the ``[B, C]`` outputs ``items``,
    which costs ``C`` rows of the layer instead of all of them."""
    if items is None:
        return layer(hidden)
    return torch.einsum("bh,bch->bc", hidden, layer.weight[items]) + layer.bias[items]
