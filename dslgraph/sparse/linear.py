"""A linear layer whose weight stores, computes with and trains only its active entries."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dslgraph.checks import as_count
from dslgraph.sparse.embedding import (
    SparseEmbedding,
    active_count,
    check_density,
    check_values_source,
    initial_positions,
)
from dslgraph.sparse.table import LINEAR_INIT


class SparseLinear(nn.Module):
    r"""A drop-in for :class:`torch.nn.Linear`, :math:`y = x W^\top + b`, whose weight
    :math:`W` (``[out_features, in_features]``) keeps only its active entries.

    The weight lives in :attr:`sparse_weight`, a :class:`~dslgraph.sparse.SparseEmbedding` with
    ``out_features`` rows: its trainable ``values`` (one per active entry) and their ``positions``,
    so the weight and its optimizer state take memory in proportion to the active entries. The
    forward pass is a CSR product and the backward pass an SDDMM (the weight's gradient is computed
    at the active entries only) plus a product with the transposed CSR, each costing
    ``batch x nnz`` multiply-adds. The bias stays dense (mask it with the DSL controller if
    wanted). :attr:`weight` is the dense view, for code that reads ``layer.weight`` directly
    (correct, but dense work): computed when read, it cannot be assigned, and writing into it
    (``nn.init.xavier_uniform_(layer.weight)``) changes nothing, bar within the table's
    :meth:`~dslgraph.sparse.SparseEmbedding.writable_weight` (where DSL runs a module's
    ``reset_parameters()``); call :meth:`reset_parameters` or write into ``sparse_weight.values`` instead.
    Weight and bias are initialised as :class:`torch.nn.Linear`'s, from
    :math:`U(-1/\sqrt{\text{in\_features}}, 1/\sqrt{\text{in\_features}})` (the weight drawn dense, then
    kept at the active entries), so that a model computes the same whether DSL makes a layer a
    ``SparseLinear`` or masks it.

    :class:`~dslgraph.sparse.DynamicSparseLearning` puts one in place of each :class:`torch.nn.Linear`
    whose weight it sparsifies (``backend="sparse"``), and refuses a subclass with methods or state of its
    own (a ``forward``, a ``reset_parameters``, more parameters), which it would drop.

    Args:
        in_features (int): Size of each input.
        out_features (int): Size of each output.
        density (float): Fraction of the weight's entries that are active, in ``(0, 1]``.
        bias (bool, optional): Whether to learn a dense bias. (default: :obj:`True`)
        generator (torch.Generator, optional): Source of the random mask.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        density: float,
        bias: bool = True,
        generator: torch.Generator | None = None,
        _entries: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.in_features = as_count(in_features, "in_features", 1)
        self.out_features = as_count(out_features, "out_features", 1)
        self.sparse_weight = SparseEmbedding(
            self.out_features, self.in_features, density, LINEAR_INIT, generator=generator, _entries=_entries
        )
        self.bias = nn.Parameter(torch.empty(self.out_features)) if bias else None
        self._reset_bias()
        self.register_load_state_dict_pre_hook(_dense_weight_loaded)

    @classmethod
    def from_linear(
        cls, linear: nn.Linear, density: float, generator: torch.Generator | None = None
    ) -> SparseLinear:
        """Keeps a uniformly random ``density`` of ``linear``'s weight (its values as they are) and
        shares its bias parameter."""
        if not isinstance(linear, nn.Linear):  # an nn.Embedding failed on its missing out_features
            raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
        check_values_source(linear.weight, "linear.weight")
        check_density(density)
        shape = (linear.out_features, linear.in_features)
        positions = initial_positions(
            shape, active_count(linear.weight.numel(), density), "random", generator
        )
        entries = (positions, linear.weight.detach().reshape(-1).cpu()[positions])
        layer = cls(linear.in_features, linear.out_features, density, bias=False, _entries=entries)
        layer = layer.to(linear.weight.device)
        layer.bias = linear.bias
        return layer

    def reset_parameters(self) -> None:
        """:class:`torch.nn.Linear`'s initialisation, weight then bias, on a new random mask (a DSL target
        keeps its mask, and then draws the very numbers of the masked backend's :class:`torch.nn.Linear`)."""
        self.sparse_weight.reset_parameters()
        self._reset_bias()

    def _reset_bias(self) -> None:
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)  # torch.nn.Linear's: 1 / sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def nnz(self) -> int:
        """The number of active (stored) weight entries."""
        return self.sparse_weight.nnz

    def density(self) -> float:
        """The fraction of the weight's entries that are active."""
        return self.sparse_weight.density()

    @property
    def weight(self) -> Tensor:
        """The dense ``[out_features, in_features]`` weight, zero at inactive entries, built when read
        from :attr:`sparse_weight` (it cannot be assigned)."""
        return self.sparse_weight.weight  # writable where the table's is (SparseEmbedding.writable_weight)

    def __setattr__(self, name: str, value) -> None:
        if name == "weight":  # a KeyError "attribute 'weight' already exists" for a Parameter
            raise AttributeError(
                "SparseLinear.weight is a dense view of sparse_weight, computed when read: it cannot be "
                "assigned (and writing into it changes nothing). Draw new values with reset_parameters(), or "
                "build the layer from a torch.nn.Linear with SparseLinear.from_linear(linear, density)"
            )
        super().__setattr__(name, value)

    def forward(self, x: Tensor) -> Tensor:
        """``x @ weight.T + bias`` for ``[..., in_features]`` inputs (dense, or a sparse COO or CSR
        matrix, as :class:`torch.nn.Linear` takes), with work proportional to the active entries."""
        if x.layout != torch.strided:  # interaction rows as a sparse COO or CSR tensor, as nn.Linear takes
            x = x.to_dense()
        if x.dim() == 0 or x.size(-1) != self.in_features:  # named [B, in_features] for x flattened to 2-D
            raise ValueError(f"expected inputs of shape [..., {self.in_features}], got {tuple(x.shape)}")
        out = self.sparse_weight.linear(x.reshape(-1, x.size(-1)))
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"density={self.density():.3f}, bias={self.bias is not None}"
        )


def _dense_weight_loaded(
    layer: SparseLinear,
    state_dict: dict,
    prefix: str,
    local_metadata: dict,
    strict: bool,
    missing_keys: list,
    unexpected_keys: list,
    error_msgs: list,
) -> None:
    """Load-state-dict pre-hook: a :class:`torch.nn.Linear`'s dense ``weight`` goes to :attr:`sparse_weight`,
    which loads it at its positions (as a sparse table loads a dense table's weight), or with the
    ``weight_mask`` of ``backend="masked"`` at the mask's entries. A module-level function, not a lambda, so
    that ``torch.save(model)`` can pickle the hook."""
    if prefix + "weight" in state_dict and prefix + "sparse_weight.values" not in state_dict:
        state_dict[prefix + "sparse_weight.weight"] = state_dict.pop(prefix + "weight")
        if prefix + "weight_mask" in state_dict:
            state_dict[prefix + "sparse_weight.weight_mask"] = state_dict.pop(prefix + "weight_mask")
