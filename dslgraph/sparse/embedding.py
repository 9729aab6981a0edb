"""An embedding table that stores, computes with and trains only its active entries."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from dslgraph.checks import as_count, is_real, require_torch_sparse
from dslgraph.sparse.ops import (
    check_cpu_product,
    csr_row_slice,
    csr_segments,
    graph_degrees,
    graph_entries,
    row_pointers,
    spmm,
)
from dslgraph.sparse.table import (
    INITS,
    LINEAR_INIT,
    EmbeddingTable,
    check_index,
    check_shape,
    check_std,
    init_table_,
)

if TYPE_CHECKING:
    from torch_sparse import SparseTensor


MASK_INITS = ("random", "aligned", "degree")
PROPAGATIONS = ("planned", "dense")

DEGREE_EXPONENT = 0.5
"""``mask_init="degree"`` gives row :math:`r` a width proportional to :math:`(d_r + 1)^{0.5}`."""


@dataclass
class _Layout:
    """Index structures derived from ``positions``; rebuilt only when the positions change."""

    order: Tensor  # slots sorted by flat position (row-major)
    row: Tensor  # row of each sorted slot
    col: Tensor  # column of each sorted slot
    crow: Tensor  # CSR row pointer over the sorted slots


def _version(adj: Tensor) -> int | None:
    """``adj``'s version counter, which an edit in place through ``adj.values()`` (or its indices) moves on;
    ``None`` for a tensor made under ``torch.inference_mode()``, which keeps none."""
    return None if adj.is_inference() else adj._version


@dataclass
class _Plan:
    """The first propagation step ``adj @ table`` as a linear map of the active values.

    ``forward`` is ``[N*d, nnz]`` with one entry per (graph edge, active entry of the edge's source
    row); ``backward`` is its transpose, one row per slot. Both are CSR, so forward and backward are
    one spmv each and cost ``nnz(adj) x active entries per row``, never ``nnz(adj) x d``.
    """

    adj: object
    # the graph's version counter when planned: an edit in place (edge weights reweighted or dropped
    # into adj.values()) bumps it, and the plan, which copied the weights, is rebuilt
    version: int | None
    forward: Tensor
    backward: Tensor


class _PlannedSpmv(torch.autograd.Function):
    """``adj @ table`` as the plan's product, reshaped to ``shape`` inside the function so that
    autograd records one node, not a view too (a GPU iteration is bound by per-operator costs)."""

    @staticmethod
    def forward(ctx, values: Tensor, plan: _Plan, shape: tuple[int, int]) -> Tensor:
        ctx.plan = plan
        # written into the 2-D output, not returned as a view of a vector: autograd refuses to let a caller
        # change in place a view made inside a custom Function, which A @ E of a dense table allows
        out = values.new_empty(shape)
        torch.mv(plan.forward, values, out=out.view(-1))
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        return torch.mv(ctx.plan.backward, grad.reshape(-1)), None, None


class _Scatter(torch.autograd.Function):
    """The dense ``shape`` table holding ``values`` at flat ``positions``; backward gathers.

    ``put_`` and ``take`` index the flat tensor directly: fewer operators per call than indexing a
    flat view, and operators are what a GPU iteration of this size waits on."""

    @staticmethod
    def forward(ctx, values: Tensor, positions: Tensor, shape: tuple[int, int]) -> Tensor:
        ctx.save_for_backward(positions)
        return values.new_zeros(shape).put_(positions, values)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (positions,) = ctx.saved_tensors
        return grad.take(positions), None, None


class _SparseLinear(torch.autograd.Function):
    """``x @ W.T`` for the sparse ``W`` of a table: a CSR product forward, and backward an SDDMM for
    the active values (``grad.T @ x`` sampled at the active entries only) plus, only when ``x``
    needs a gradient, a product with the CSR of ``W.T``."""

    @staticmethod
    def forward(ctx, values: Tensor, x: Tensor, table: SparseEmbedding) -> Tensor:
        weight = table.csr(values)
        ctx.save_for_backward(values, x)
        ctx.table, ctx.weight, ctx.order = table, weight, table.slot_order()
        # a contiguous x.T: 3x faster on CPU at batch 500, density 0.5 (bench_sparse_linear.py shapes);
        # the output contiguous, as nn.Linear's: its transpose failed .view() and made dropout and
        # randn_like draw in another order than after the dense layer, from the same seed; a copy even where
        # the transpose is contiguous already (a batch of one, one output): autograd refuses to let a caller
        # change in place a view made inside a custom Function (`layer(x).sigmoid_()`)
        return torch.sparse.mm(weight, x.t().contiguous()).t().clone(memory_format=torch.contiguous_format)

    @staticmethod
    def backward(ctx, grad: Tensor):
        values, x = ctx.saved_tensors
        grad_values = grad_x = None
        if ctx.needs_input_grad[0]:
            sampled = torch.sparse.sampled_addmm(ctx.weight, grad.t().contiguous(), x, beta=0.0)
            grad_values = torch.empty_like(sampled.values()).index_copy_(0, ctx.order, sampled.values())
        if ctx.needs_input_grad[1]:
            grad_x = torch.sparse.mm(ctx.table.csr(values, transposed=True), grad.t()).t()
        return grad_values, grad_x, None


class SparseEmbedding(EmbeddingTable):
    r"""An embedding table holding only its active entries: values plus their flat positions.

    The trainable parameter :attr:`values` has one element per active entry, so the table and its
    optimizer state (e.g. Adam's two moments) take memory proportional to the number of active
    entries, not to ``num_embeddings x embedding_dim``. :attr:`positions` holds the row-major flat
    index ``row * embedding_dim + col`` of each value; the number of active entries never changes,
    so when the DSL controller prunes and regrows it rewrites positions in place (same slots) and
    optimizer state keeps its shape.

    It implements the :class:`~dslgraph.sparse.table.EmbeddingTable` seam:
    :meth:`forward` looks up dense rows of a batch from the active entries of those rows,
    :meth:`propagate` computes ``adj @ table`` with work ``nnz(adj) x`` active entries per row (or,
    with ``propagation="dense"``, through a dense copy, holding no plan), and
    :meth:`to_dense` scatters the values into a dense tensor. For graph models that read
    ``embedding.weight`` directly, :attr:`weight` is the dense view (correct, but not sparse work).

    During a DSL update step (:attr:`probing`), the dense gradient that every use of the table
    would have sent to a dense table is recorded as the use's output gradient, and
    :meth:`dense_grad_chunks` rebuilds it a bounded block of rows at a time.

    Args:
        num_embeddings (int): Number of rows.
        embedding_dim (int): Number of columns.
        density (float): Fraction of entries that are active, in ``(0, 1]``.
        init (str, optional): ``"normal"``, ``"xavier"`` or ``"linear"`` (:class:`torch.nn.Linear`'s, for a
            linear layer's weight: see :data:`~dslgraph.sparse.table.LINEAR_INIT`), drawn as for the dense
            table then masked. (default: :obj:`"normal"`)
        std (float, optional): Std of the normal init. (default: :obj:`0.1`)
        generator (torch.Generator, optional): Source of the random mask.
        mask_init (str, optional): ``"random"`` (uniformly random entries, DSL's), ``"aligned"``
            (each row's first columns) or ``"degree"`` (each row's first columns, more for rows of
            higher ``row_degree``); see :func:`initial_positions`. (default: :obj:`"random"`)
        row_degree (torch.Tensor, optional): One degree per row, for ``mask_init="degree"``.
        propagation (str, optional): How :meth:`propagate` computes ``adj @ table``:
            ``"planned"`` through a cached plan with work proportional to the active entries (but
            an index and a weight per multiply-add to hold, see :meth:`workspace_bytes`), or
            ``"dense"`` through a dense copy of the table made for the product and freed after it
            (work and a transient tensor of the dense table's size, no plan).
            (default: :obj:`"planned"`)
    """

    # class defaults too: a table pickled whole before writable_weight() existed reads its weight
    _writable = False
    _written: Tensor | None = None

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        density: float,
        init: str = "normal",
        std: float = 0.1,
        generator: torch.Generator | None = None,
        mask_init: str = "random",
        propagation: str = "planned",
        row_degree: Tensor | None = None,
        _entries: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = check_shape(num_embeddings, embedding_dim)
        check_density(density)
        for option, value, choices in (
            ("init", init, (*INITS, LINEAR_INIT)),
            ("mask_init", mask_init, MASK_INITS),
            ("propagation", propagation, PROPAGATIONS),
        ):
            if value not in choices:
                raise ValueError(f"{option} must be one of {list(choices)}, got {value!r}")
        self.init = init
        self.std = check_std(std)
        self.mask_init = mask_init
        self.row_degree = row_degree
        self.propagation = propagation
        if _entries is None:
            nnz, dtype = active_count(self.num_embeddings * self.embedding_dim, density), None
        else:  # the from_* constructors' (positions, values): no mask and values drawn to be replaced
            nnz = _entries[0].numel()
            # a half or double table stays one; integer weights give float values
            dtype = _entries[1].dtype if _entries[1].is_floating_point() else None
        self.values = nn.Parameter(torch.empty(nnz, dtype=dtype))
        self.register_buffer("positions", torch.empty(nnz, dtype=torch.long))
        self.probing = False
        self._adjoints: list[tuple[str, object, Tensor]] = []
        self._cache_key: tuple | None = None
        self._layout: _Layout | None = None
        self._plans: list[_Plan] = []
        self._transposed: tuple[Tensor, Tensor, Tensor] | None = None
        self.register_state_dict_post_hook(_record_shape)
        self.register_load_state_dict_pre_hook(_dense_weight_loaded)
        self.register_load_state_dict_pre_hook(_check_loaded_positions)
        self.register_load_state_dict_post_hook(_positions_loaded)
        if _entries is None:
            self.reset_parameters(generator)
        else:
            with torch.no_grad():
                self.positions.copy_(_entries[0])
                self.values.copy_(_entries[1])

    @classmethod
    def from_dense(
        cls,
        weight: Tensor,
        density: float | None = None,
        generator: torch.Generator | None = None,
        mask_init: str = "random",
        propagation: str = "planned",
        row_degree: Tensor | None = None,
    ) -> SparseEmbedding:
        """A sparse table from a dense ``[N, d]`` tensor.

        With ``density`` it keeps that fraction of the entries, chosen as ``mask_init`` says (DSL's
        initial mask; ``row_degree`` for ``"degree"``); without, it keeps exactly the non-zero entries.
        """
        if not isinstance(weight, Tensor):
            raise TypeError(f"weight must be a tensor, got {type(weight).__name__}")
        check_values_source(weight, "weight")
        if weight.dim() != 2:
            raise ValueError(f"weight must be 2-D, got shape {tuple(weight.shape)}")
        if weight.layout != torch.strided:  # a torch sparse COO / CSR tensor: reshape failed inside torch
            weight = weight.to_dense()
        flat = weight.detach().reshape(-1).cpu()
        if density is None:
            positions = flat.nonzero().squeeze(1)
            if positions.numel() == 0:
                raise ValueError(
                    "weight has no non-zero entry to keep: pass a density to keep that fraction of its "
                    "entries (without one, from_dense keeps exactly the non-zero entries)"
                )
            density = positions.numel() / flat.numel()
        else:
            check_density(density)
            positions = initial_positions(
                tuple(weight.shape), active_count(flat.numel(), density), mask_init, generator, row_degree
            )
        options = {"mask_init": mask_init, "propagation": propagation, "row_degree": row_degree}
        return cls(*weight.shape, density, **options, _entries=(positions, flat[positions])).to(weight.device)

    @classmethod
    def from_sparse_tensor(cls, tensor: SparseTensor) -> SparseEmbedding:
        """A sparse table holding the stored entries of a ``torch_sparse.SparseTensor`` (an entry
        stored more than once holds their sum, as ``tensor.to_dense()`` does)."""
        if not hasattr(tensor, "coo") or not hasattr(tensor, "sparse_sizes"):
            raise TypeError(f"expected a torch_sparse.SparseTensor, got {type(tensor).__name__}")
        # a repeated entry was kept twice: the table then held one position in two slots
        row, col, value = tensor.coalesce("sum").coo()
        if value is None:
            raise ValueError("the SparseTensor has no values")
        check_values_source(value, "the SparseTensor")
        if value.dim() != 1:
            raise ValueError(
                f"the SparseTensor must hold one value per entry, got values of shape {tuple(value.shape)}"
            )
        num_rows, dim = tensor.sparse_sizes()
        if value.numel() == 0:  # failed as density=0.0, or a ZeroDivisionError for a table of no rows
            raise ValueError(f"the [{num_rows}, {dim}] SparseTensor stores no entry to keep")
        density = value.numel() / (num_rows * dim)
        return cls(num_rows, dim, density, _entries=(row * dim + col, value)).to(value.device)

    def to_sparse_tensor(self) -> SparseTensor:
        """The table as a ``torch_sparse.SparseTensor`` (requires torch-sparse)."""
        require_torch_sparse("to_sparse_tensor")
        from torch_sparse import SparseTensor

        layout = self._current_layout()
        return SparseTensor(
            row=layout.row,
            col=layout.col,
            value=self.values.detach()[layout.order],
            sparse_sizes=(self.num_embeddings, self.embedding_dim),
        )

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draws a mask at the table's density (as :attr:`mask_init` says) and initial values for it."""
        shape = (self.num_embeddings, self.embedding_dim)
        positions = initial_positions(shape, self.values.numel(), self.mask_init, generator, self.row_degree)
        with torch.no_grad():
            self.positions.copy_(positions)
            self.values.copy_(self._initial_values(positions))
        self._written = None  # what was written into weight before is drawn over
        self.positions_changed()

    def reset_values(self) -> None:
        """Draws initial values for the active entries where they are: what a DSL target's reset does,
        keeping the controller's mask."""
        with torch.no_grad():
            self.values.copy_(self._initial_values(self.positions.cpu()))
        self._written = None

    @contextlib.contextmanager
    def writable_weight(self) -> Iterator[None]:
        """Within it, :attr:`weight` is one dense tensor, and what is written into it at the active entries
        becomes their values as it ends (inactive entries stay inactive): what DSL runs the
        ``reset_parameters()`` of a module holding the table in, which may initialise the table by writing
        into its weight (PyG's ``LightGCN``: ``xavier_uniform_(self.embedding.weight)``). Nothing is kept
        if the body raises; a nested use is the outer one's."""
        if self._writable:
            yield
            return
        self._writable, self._written = True, None
        try:
            yield
            written = self._written
        finally:
            self._writable, self._written = False, None
        if written is not None:
            with torch.no_grad():
                self.values.copy_(written.reshape(-1)[self.positions])

    def _initial_values(self, positions: Tensor) -> Tensor:
        """Initial values (as :attr:`init` says, from torch's global generator) at flat CPU ``positions``."""
        dense = init_table_(torch.empty(self.num_embeddings, self.embedding_dim), self.init, self.std)
        return dense.view(-1)[positions]

    @property
    def nnz(self) -> int:
        """The number of active (stored) entries."""
        return self.values.numel()

    def density(self) -> float:
        """The fraction of the table's entries that are active."""
        return self.nnz / (self.num_embeddings * self.embedding_dim)

    def positions_changed(self) -> None:
        """Drops the cached layout and propagation plans (call after editing :attr:`positions`)."""
        self._cache_key = None
        self._layout = None
        self._plans = []
        self._transposed = None

    def __getstate__(self) -> dict:
        """Pickles (``torch.save(model)``, ``copy.deepcopy``) without the derived caches: the
        propagation plan can outweigh the table many times over and is rebuilt on first use. A copy does
        not probe either: only the DSL controller that turned :attr:`probing` on turns it off, and a copy of
        the model taken just before an update recorded every later backward pass's output gradients, kept
        without end (a copied controller turns its copy's probing on again where it should be)."""
        state = self.__dict__.copy()
        state.update(_cache_key=None, _layout=None, _plans=[], _transposed=None, _adjoints=[], probing=False)
        return state

    def _apply(self, fn, recurse: bool = True) -> SparseEmbedding:
        """Keeps :attr:`positions` integer: ``model.type(torch.float64)`` casts every buffer, which
        made them a float index that every lookup refused (and a float32 cast rounds positions past
        2**24); they follow the call's device only."""
        positions = self.positions
        super()._apply(fn, recurse)
        if self.positions.dtype != positions.dtype:
            self.positions = positions.to(self.positions.device)
        return self

    # outside torch.compile's graph: guarded there on positions' version, which every DSL update moves on,
    # the calling function was compiled anew after each update until dynamo's recompile limit
    @torch.compiler.disable
    def _drop_stale_caches(self) -> None:
        """Drops the layout and plans if :attr:`positions` was edited in place or moved since."""
        key = (self.positions.data_ptr(), self.positions._version, self.positions.device)
        if self._cache_key != key:
            self.positions_changed()
            self._cache_key = key

    def _current_layout(self) -> _Layout:
        self._drop_stale_caches()
        if self._layout is None:
            sorted_pos, order = self.positions.sort()
            row = sorted_pos.div(self.embedding_dim, rounding_mode="floor")
            crow = row_pointers(torch.bincount(row, minlength=self.num_embeddings))
            self._layout = _Layout(order, row, sorted_pos - row * self.embedding_dim, crow)
        return self._layout

    # ----------------------------------------------------------------- the seam
    def to_dense(self) -> Tensor:
        out = _Scatter.apply(self.values, self.positions, (self.num_embeddings, self.embedding_dim))
        return self._watch(out, "identity", None)

    @property
    def weight(self) -> Tensor:
        """The dense table, zero at inactive entries, as :meth:`to_dense` builds it (for code that reads
        ``.weight`` of a :class:`torch.nn.Embedding`; writing into it changes nothing, bar within
        :meth:`writable_weight`)."""
        if not self._writable:
            return self.to_dense()
        if self._written is None:  # to_dense() builds a new tensor: written into, it changes no other
            self._written = self.to_dense().detach()
        return self._written

    def forward(self, index: Tensor) -> Tensor:
        """Dense ``[*index.shape, d]`` rows ``index``, built from their active entries only."""
        check_index(index)  # a bool or uint8 index would be read as a mask of the row pointer
        # ids on any device, as a DenseEmbedding's (indexing) takes them: CPU ids of a table on a GPU failed
        # in repeat_interleave
        rows = index.reshape(-1).to(self.values.device)
        layout = self._current_layout()
        sorted_slot, batch_row = csr_segments(layout.crow, rows)
        slot = layout.order[sorted_slot]
        flat = batch_row * self.embedding_dim + layout.col[sorted_slot]
        out = self.values.new_zeros(rows.numel() * self.embedding_dim).index_put((flat,), self.values[slot])
        # watched before any view is taken: a hook on a view never fired once the caller changed the rows in
        # place (SASRec's `seqs *= d ** 0.5`), and growth went without their gradient
        return self._watch(out, "rows", rows).view(*index.shape, self.embedding_dim)

    # outside torch.compile's graph: its tracer failed on the plan's indexing (an IndexError inside PyG's
    # index_select override); the product is one opaque kernel to it anyway
    @torch.compiler.disable
    def propagate(self, adj, dense_view: Tensor | None = None) -> Tensor:
        """``adj @ table`` for a symmetric ``adj``: with work proportional to the active entries
        (``propagation="planned"``, a CSR ``adj``), or through a transient dense copy (``dense_view``
        if given: :meth:`to_dense`'s output, which the caller made anyway)."""
        check_cpu_product(self.values.device, self.values.dtype, "a sparse table's propagation")
        shape = (self.num_embeddings, self.num_embeddings)
        if (adj.size(0), adj.size(1)) != shape:
            # a symmetric [N, N] graph over the table's rows; another failed inside the plan's indexing
            raise ValueError(
                f"the graph is [{adj.size(0)}, {adj.size(1)}], this table needs a {list(shape)} one"
            )
        if self.propagation == "dense":
            return spmm(adj, self.to_dense() if dense_view is None else dense_view)
        if not isinstance(adj, Tensor) or adj.layout != torch.sparse_csr:
            given = type(adj).__name__ if not isinstance(adj, Tensor) else f"a {adj.layout} tensor"
            raise TypeError(
                f"SparseEmbedding.propagate needs a torch sparse CSR adjacency, got {given}: pass "
                "dslgraph.data.propagation_graph(data) (a SparseTensor's adj.to_torch_sparse_csr_tensor(), a "
                "COO tensor's adj.to_sparse_csr()), or train with backend='compact' or 'masked', which take "
                "any layout"
            )
        if adj.dtype != self.values.dtype:
            # the plan holds the graph's weights: addmv named no input
            raise TypeError(
                f"the graph holds {adj.dtype} weights, the table {self.values.dtype}: convert one"
            )
        plan = self._plan_for(adj)
        out = _PlannedSpmv.apply(self.values, plan, (self.num_embeddings, self.embedding_dim))
        return self._watch(out, "propagate", adj)

    def linear(self, x: Tensor) -> Tensor:
        """``x @ table.T`` for ``[B, embedding_dim]`` inputs: the table as the weight of a linear layer
        (see :class:`~dslgraph.sparse.SparseLinear`), with work ``B x nnz`` forward and backward."""
        if x.dim() != 2 or x.size(1) != self.embedding_dim:
            raise ValueError(f"expected inputs of shape [B, {self.embedding_dim}], got {tuple(x.shape)}")
        check_cpu_product(x.device, self.values.dtype, "a sparse linear layer", "use DSL's backend='masked'")
        # the CSR product has no autocast rule: it runs in the table's dtype
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return self.linear(x.to(self.values.dtype))
        if x.dtype != self.values.dtype:
            # as nn.Linear; torch's CSR product said "expected scalar type Double but found Float", or that
            # it is "not implemented for 'Long'"
            raise TypeError(f"the inputs are {x.dtype}, the weight {self.values.dtype}: convert one")
        out = _SparseLinear.apply(self.values, x, self)
        return self._watch(out, "linear", x.detach())

    def slot_order(self) -> Tensor:
        """The slot of each entry of :meth:`csr` (its values are ``values[slot_order()]``)."""
        return self._current_layout().order

    def csr(self, values: Tensor, transposed: bool = False) -> Tensor:
        """The table (or its transpose) as a CSR matrix holding ``values``, one per slot."""
        layout = self._current_layout()
        shape = (self.num_embeddings, self.embedding_dim)
        if not transposed:
            return torch.sparse_csr_tensor(
                layout.crow, layout.col, values[layout.order], shape, check_invariants=False
            )
        if self._transposed is None:
            # transposed CSR: the slots sorted by (column, row), counted per column
            order_t = (layout.col * self.num_embeddings + layout.row).argsort()
            crow_t = row_pointers(torch.bincount(layout.col, minlength=self.embedding_dim))
            self._transposed = (crow_t, layout.row[order_t], layout.order[order_t])
        crow_t, row_t, slot_t = self._transposed
        return torch.sparse_csr_tensor(crow_t, row_t, values[slot_t], shape[::-1], check_invariants=False)

    def _plan_for(self, adj: Tensor) -> _Plan:
        self._drop_stale_caches()
        for plan in self._plans:
            if plan.adj is adj and plan.version == _version(adj):
                return plan
        d = self.embedding_dim
        # built in int32 wherever the plan's indices fit (half the memory)
        index_dtype = _index_dtype(max(adj.size(0) * d, adj._nnz()), self.plan_entries(adj))
        crow, col, weight = adj.crow_indices(), adj.col_indices().to(index_dtype), adj.values()
        # adj is symmetric, so walking the edges (j, i) of each active entry (j, c) slot by slot
        # lists every product w_ij * value(j, c) -> output (i, c) grouped by slot: that is the
        # backward matrix in CSR as generated (the forward one is built by _forward_matrix).
        positions = self.positions.to(index_dtype)
        row = positions.div(d, rounding_mode="floor")
        edge, slot = csr_segments(crow, row, index_dtype)
        # index_select takes int32 indices as they are (indexing with [] converts them to int64)
        out_pos = col.index_select(0, edge).mul_(d).add_((positions - row * d).index_select(0, slot))
        weight = weight.index_select(0, edge)
        backward_crow = row_pointers(crow.diff()[row]).to(index_dtype)
        shape = (self.nnz, adj.size(0) * d)
        backward = torch.sparse_csr_tensor(backward_crow, out_pos, weight, shape, check_invariants=False)
        del edge, slot
        forward = _forward_matrix(adj, self.positions, d, out_pos.numel(), index_dtype)
        plan = _Plan(adj, _version(adj), forward, backward)
        self._plans = [plan]  # one graph at a time: plans are large
        return plan

    def plan_entries(self, adj) -> int:
        """Multiply-adds of a planned :meth:`propagate` (and of its backward) on ``adj``: the active
        entries of each row times the row's edges, summed (the plan's size; nothing is built)."""
        row = self.positions.div(self.embedding_dim, rounding_mode="floor")
        return int(graph_degrees(adj)[row].sum())

    def propagation_macs(self, adj) -> int:
        """Multiply-adds that :meth:`propagate` runs (and as many in its backward pass)."""
        if self.propagation == "planned":
            return self.plan_entries(adj)
        return graph_entries(adj) * self.embedding_dim

    def workspace_bytes(self) -> int:
        """Bytes of the index structures cached from :attr:`positions` (row layout, transposed
        layout, propagation plan): derived state, not parameters, but memory the table holds.

        The propagation plan dominates: an index and a weight per (graph edge, active entry),
        forward and backward, so about ``16 P`` bytes for ``P`` = :meth:`plan_entries`.
        """
        self._drop_stale_caches()
        tensors = []
        if self._layout is not None:
            tensors += [self._layout.order, self._layout.row, self._layout.col, self._layout.crow]
        if self._transposed is not None:
            tensors += self._transposed
        for plan in self._plans:
            for matrix in (plan.forward, plan.backward):
                tensors += [matrix.crow_indices(), matrix.col_indices(), matrix.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

    # ------------------------------------------------------------ growth gradient
    def _watch(self, out: Tensor, kind: str, context) -> Tensor:
        if self.probing and out.requires_grad:
            out.register_hook(lambda grad: self._adjoints.append((kind, context, grad)))
        return out

    def clear_probe(self) -> None:
        """Forgets the output gradients recorded while :attr:`probing` (the DSL controller clears them as
        it turns probing on or off)."""
        self._adjoints = []

    @property
    def recorded_gradient(self) -> bool:
        """Whether a use of the table was differentiated while :attr:`probing`."""
        return bool(self._adjoints)

    def dense_grad_chunks(self, chunk_rows: int) -> Iterator[tuple[int, Tensor]]:
        """Yields ``(first_row, grad)`` blocks of the gradient a dense table would have received.

        Only ``chunk_rows x embedding_dim`` of that dense gradient exists at once; it is summed
        from the output gradients recorded while :attr:`probing` (each use is linear in the table,
        so its dense gradient is the adjoint of the use applied to its output gradient).
        """
        if not self._adjoints:
            raise RuntimeError("no gradient was recorded: set probing=True before the backward pass")
        # a negative chunk_rows yielded no block, as if the gradient were empty; 0 failed in range()
        chunk_rows = as_count(chunk_rows, "chunk_rows", 1)
        for start in range(0, self.num_embeddings, chunk_rows):
            yield start, self._dense_grad_block(start, min(start + chunk_rows, self.num_embeddings))

    def _dense_grad_block(self, start: int, end: int) -> Tensor:
        """Rows ``start:end`` of the dense gradient: each recorded use's adjoint, summed."""
        block = self.values.new_zeros(end - start, self.embedding_dim)
        for kind, context, grad in self._adjoints:
            if kind == "identity":  # to_dense()
                block += grad[start:end]
            elif kind == "propagate":  # adj @ table, adj symmetric
                block += torch.sparse.mm(csr_row_slice(context, start, end), grad)
            elif kind == "linear":  # x @ table.T
                block += grad[:, start:end].T @ context
            else:  # "rows": forward(index), its flat output's gradient
                rows = context.remainder(self.num_embeddings)  # a negative index counts from the end
                hit = (rows >= start) & (rows < end)
                block.index_add_(0, rows[hit] - start, grad.reshape(-1, self.embedding_dim)[hit])
        return block

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}, density={self.density():.3f}"
        return text if self.propagation == "planned" else f"{text}, propagation={self.propagation!r}"

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.extra_repr()})"


def _dense_weight_loaded(
    table: SparseEmbedding,
    state_dict: dict,
    prefix: str,
    local_metadata: dict,
    strict: bool,
    missing_keys: list,
    unexpected_keys: list,
    error_msgs: list,
) -> None:
    """Load-state-dict pre-hook: a dense table's ``weight`` (an :class:`torch.nn.Embedding`'s, a
    :class:`DenseEmbedding`'s, :meth:`DynamicSparseLearning.dense_state_dict`'s) loads its entries at this
    table's positions as the values, the positions kept, as a masked weight keeps its mask; with the
    ``weight_mask`` of ``backend="masked"``, at the mask's entries (as many as this table holds). A dense
    state loaded with ``strict=False`` (a warm start) left a sparse table as it was, without a word, where
    ``backend="masked"`` loaded it masked; with ``strict=True`` both fail, on the missing positions or
    mask."""
    weight = state_dict.get(prefix + "weight")
    if prefix + "values" in state_dict or not isinstance(weight, Tensor) or weight.is_meta:
        return
    shape = (table.num_embeddings, table.embedding_dim)
    if tuple(weight.shape) != shape:
        error_msgs.append(
            f"size mismatch for {prefix}weight: a dense weight of shape {tuple(weight.shape)}, where this "
            f"sparse table is {shape[0]} x {shape[1]}"
        )
        return
    mask = state_dict.get(prefix + "weight_mask")
    if isinstance(mask, Tensor) and tuple(mask.shape) == shape:
        # backend="masked"'s table: its own active entries, which a warm start at this table's positions
        # dropped (the mask was only reported unexpected, under strict=False)
        positions = mask.detach().reshape(-1).nonzero().squeeze(1)
        if positions.numel() != table.nnz:
            error_msgs.append(
                f"{prefix}weight_mask holds {positions.numel()} active entries, where this sparse table "
                f"holds {table.nnz}: a masked table loads into a sparse one of the same sparsity"
            )
            return
        del state_dict[prefix + "weight_mask"]
        state_dict[prefix + "positions"] = positions.to(table.positions.device)
    else:
        positions = table.positions
    del state_dict[prefix + "weight"]
    state_dict[prefix + "values"] = weight.reshape(-1)[positions.to(weight.device)]


def _check_loaded_positions(
    table: SparseEmbedding,
    state_dict: dict,
    prefix: str,
    local_metadata: dict,
    strict: bool,
    missing_keys: list,
    unexpected_keys: list,
    error_msgs: list,
) -> None:
    """Load-state-dict pre-hook: refuses a checkpoint of a table of another shape (as its metadata says,
    where it has :func:`_record_shape`'s), and positions that are not distinct entries of this table. A
    checkpoint of a table with more rows (or columns) and as many active entries loaded without a word,
    its values then read as other entries, and its positions past the end failed only when used."""
    shape = f"{table.num_embeddings} x {table.embedding_dim}"
    saved = local_metadata.get("table_shape")
    if saved is not None and tuple(saved) != (table.num_embeddings, table.embedding_dim):
        # a 6 x 3 table's entries are all entries of a 3 x 6 one: they loaded, each read as another
        error_msgs.append(
            f"{prefix}values and positions are of a {saved[0]} x {saved[1]} table, not this {shape} one"
        )
        return
    positions = state_dict.get(prefix + "positions")
    if not isinstance(positions, Tensor) or positions.shape != table.positions.shape or positions.is_meta:
        return  # torch names a missing key or another size; a meta tensor holds no positions to check
    problem = positions_problem(positions, (table.num_embeddings, table.embedding_dim))
    if problem:
        error_msgs.append(f"{prefix}positions {problem}")


def positions_problem(positions: Tensor, shape: tuple[int, ...]) -> str | None:
    """Why loaded flat ``positions`` are not distinct entries of a table of ``shape`` (``"must hold integers,
    got torch.float32"``), or :obj:`None`: what a sparse table and a masked weight check a sparse state's
    positions by."""
    table = " x ".join(map(str, shape))
    if positions.is_floating_point() or positions.is_complex() or positions.dtype == torch.bool:
        # copied into the int64 buffer: 2.5 became 2, and float32 rounds positions past 2**24
        return f"must hold integers, got {positions.dtype}"
    if positions.numel() and (positions.min() < 0 or positions.max() >= math.prod(shape)):
        return f"hold entries outside this {table} table (a checkpoint of a table of another shape)"
    if positions.unique().numel() != positions.numel():
        return f"hold an entry of this {table} table more than once"
    return None


def _record_shape(table: SparseEmbedding, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """State-dict post-hook: the table's shape, beside its version in the state dictionary's metadata, for
    :func:`_check_loaded_positions` (its values and positions do not say it). A module-level function, not
    a lambda, so that ``torch.save(model)`` can pickle the hook."""
    local_metadata["table_shape"] = (table.num_embeddings, table.embedding_dim)


def _positions_loaded(table: SparseEmbedding, incompatible_keys) -> None:
    """Load-state-dict post-hook: the loaded positions invalidate the cached layout and plans. A
    module-level function, not a lambda, so that ``torch.save(model)`` can pickle the hook."""
    if table.positions.dtype != torch.long:  # load_state_dict(assign=True) put in the int32 tensor given
        table.positions = table.positions.long()  # which lookups and the dense view cannot index with
    table.positions_changed()


def _forward_matrix(adj: Tensor, positions: Tensor, d: int, entries: int, index_dtype: torch.dtype) -> Tensor:
    """The ``[N*d, nnz]`` CSR matrix with ``a_ij`` at row ``i * d + c``, column ``slot(j, c)`` for each
    edge ``(i, j)`` of the symmetric ``adj`` whose source entry ``(j, c)`` is active (``entries`` of
    them).

    Built without sorting the plan (a sort and the random permutation it implies took 2/3 of a
    rebuild): a column ``c`` at a time, ``adj``'s entries (sorted by ``i``) filtered to those whose
    ``j`` has ``c`` active come out as CSR rows in column-major order ``c * N + i``; the rows are
    then moved, as blocks, into row-major order. Work ``d x nnz(adj)`` plus a few passes over the
    plan's entries.
    """
    n, nnz = adj.size(0), positions.numel()
    crow, col, weight = adj.crow_indices(), adj.col_indices(), adj.values()
    row = torch.repeat_interleave(torch.arange(n, device=col.device), crow.diff().long())
    slot_of = torch.full((d, n), -1, dtype=index_dtype, device=col.device)  # slot of (j, c), -1 if inactive
    slot_of.view(-1)[(positions % d) * n + positions.div(d, rounding_mode="floor")] = torch.arange(
        nnz, dtype=index_dtype, device=col.device
    )
    counts = torch.empty(d, n, dtype=torch.long, device=col.device)
    slots = torch.empty(entries, dtype=index_dtype, device=col.device)
    weights = torch.empty(entries, dtype=weight.dtype, device=col.device)
    first = 0
    for c in range(d):
        slot = slot_of[c].index_select(0, col)
        kept = (slot >= 0).nonzero().squeeze(1)
        last = first + kept.numel()
        torch.index_select(slot, 0, kept, out=slots[first:last])
        torch.index_select(weight, 0, kept, out=weights[first:last])
        counts[c] = torch.bincount(row.index_select(0, kept), minlength=n)
        first = last
    old_row = torch.arange(d * n, device=col.device).view(d, n).t().reshape(-1)  # of row i * d + c
    moved, _ = csr_segments(row_pointers(counts.view(-1)), old_row, index_dtype)
    return torch.sparse_csr_tensor(
        row_pointers(counts.t().reshape(-1)).to(index_dtype),
        slots.index_select(0, moved),
        weights.index_select(0, moved),
        (n * d, nnz),
        check_invariants=False,
    )


def _index_dtype(largest_index: int, entries: int) -> torch.dtype:
    """int32 CSR indices halve the plan's index memory wherever they fit."""
    return torch.int32 if max(largest_index, entries) < 2**31 else torch.long


def initial_positions(
    shape: tuple[int, int],
    nnz: int,
    mask_init: str,
    generator: torch.Generator | None = None,
    row_degree: Tensor | None = None,
) -> Tensor:
    """Sorted flat positions of ``nnz`` active entries of a ``[rows, cols]`` table.

    ``"random"``: uniformly random entries (DSL's initial mask). ``"aligned"``: every row active on
    its first ``nnz // rows`` columns, one more column for ``nnz % rows`` random rows — a dense table
    of that width to start from, where any user's and item's active columns overlap fully, while a
    random mask at density δ gives them only ``δ² · cols`` shared columns on average. (Gradient
    growth cannot open a column that is zero in every row, so DSL then reallocates entries between
    rows within those columns.) ``"degree"``: every row active on its first columns too, but as many
    as :func:`degree_widths` gives its ``row_degree`` (the interactions of the user or item the row
    belongs to): a mixed-dimension table, wider for busier rows, as DSL's updates make it.
    """
    rows, cols = shape
    if mask_init == "random":
        return torch.randperm(rows * cols, generator=generator)[:nnz].sort().values
    if mask_init == "aligned":
        width = torch.full((rows,), nnz // rows)
        width[torch.randperm(rows, generator=generator)[: nnz - int(width.sum())]] += 1
        return prefix_positions(width, cols)
    if mask_init != "degree":
        raise ValueError(f"mask_init must be one of {list(MASK_INITS)}, got {mask_init!r}")
    if not isinstance(row_degree, Tensor) or row_degree.shape != (rows,) or not row_degree.isfinite().all():
        if not isinstance(row_degree, Tensor):  # a list failed with "'list' object has no attribute 'shape'"
            got = "none" if row_degree is None else f"a {type(row_degree).__name__}, not a tensor"
        else:  # a nan degree failed with "Overflow when unpacking long long"
            got = f"shape {tuple(row_degree.shape)}" if row_degree.shape != (rows,) else "non-finite degrees"
        raise ValueError(f"mask_init='degree' needs one degree per row of the {rows}-row table, got {got}")
    return prefix_positions(degree_widths(row_degree, nnz, cols), cols)


def degree_widths(degree: Tensor, nnz: int, cols: int) -> Tensor:
    """Row widths proportional to ``(degree + 1) ** DEGREE_EXPONENT``, clipped to ``[1, cols]`` (to
    ``[0, cols]`` where there are fewer entries than rows), that sum to exactly ``nnz``: the scale
    is found by bisection and the rounding remainder goes to the rows with the largest fractions."""
    weight = (degree.detach().cpu().double().clamp(min=0) + 1) ** DEGREE_EXPONENT
    least = 1 if nnz >= weight.numel() else 0
    low, high = 0.0, cols / weight.min().item()  # at ``high`` every row is full
    for _ in range(100):
        scale = (low + high) / 2
        if (scale * weight).clamp(least, cols).floor().sum() <= nnz:
            low = scale
        else:
            high = scale
    raw = (low * weight).clamp(least, cols)
    width = raw.floor().long()
    fraction = torch.where(width < cols, raw - width, torch.full_like(raw, -1.0))
    width[fraction.topk(nnz - int(width.sum())).indices] += 1
    return width


def prefix_positions(width: Tensor, cols: int) -> Tensor:
    """Sorted flat positions of a ``[len(width), cols]`` table whose row ``r`` is active on its first
    ``width[r]`` columns."""
    row = torch.repeat_interleave(torch.arange(width.numel()), width)
    return row * cols + torch.arange(row.numel()) - (width.cumsum(0) - width)[row]


def check_values_source(tensor: Tensor, name: str, instead: str = "") -> None:
    """Refuses, naming ``name``, a tensor that a sparse table cannot take its values from: an uninitialised
    lazy parameter (torch's own error spoke of ``numel``), a meta tensor ("Cannot copy out of meta tensor")
    and a complex one (its imaginary parts dropped, with nothing but torch's warning). ``instead``: a way
    on, appended to the complex tensor's message."""
    if isinstance(tensor, nn.parameter.UninitializedParameter):
        raise ValueError(
            f"{name} is not initialised yet (a lazy layer's, such as torch.nn.LazyLinear or PyG's "
            "Linear(-1, ...)): run the model on one batch first, so that it has a shape and values"
        )
    if tensor.is_meta:
        raise ValueError(
            f"{name} is on the meta device, a shape without values to keep: materialise the model first "
            "(model.to_empty(device=...) and its reset_parameters(), or load its weights)"
        )
    if tensor.is_complex():
        raise ValueError(f"{name} is {tensor.dtype}, and a sparse table holds real values{instead}")


def check_density(density: float) -> None:
    """Refuses a density outside ``(0, 1]``, naming the sparsity it stands for."""
    if not (is_real(density) and 0.0 < density <= 1.0):  # True was density 1, text a TypeError
        raise ValueError(f"density must be in (0, 1] (sparsity in [0, 1)), got density={density!r}")


def active_count(numel: int, density: float) -> int:
    """Active entries of a tensor at ``density``: rounded, at least one."""
    return max(1, round(numel * density))
