r"""Cost accounting: multiply-accumulates (MACs) and bytes that training and serving really take.

Counts follow what dslgraph's kernels execute for a LightGCN-style model (one table of
``N = num_users + num_items`` rows and ``d`` columns, ``K`` propagation layers over a graph with
``nnz(A)`` stored entries, batch size ``B``):

========================  ====================================  ===================================
step                      dense / dense-with-mask table         genuinely sparse table
========================  ====================================  ===================================
layer 1 (fwd, and bwd)    ``nnz(A) d``                          ``P`` = Σ over edges (i, j) of the
                                                                active entries of row j
layers 2..K (fwd, bwd)    ``nnz(A) d`` each                     ``nnz(A) d`` each (dense by nature)
layer mean                ``(K+1) N d``                         ``K N d + nnz(E)``
BPR scores + L2           ``5 B d``                             ``5 B d``
growth step (every ΔT)    —                                     ``nnz(A) d + N d`` (dense gradient,
                                                                rebuilt a block of rows at a time)
inference                 ``K nnz(A) d + U I d`` (scoring)      ``P + (K-1) nnz(A) d + U I d``
========================  ====================================  ===================================

The paper's savings (74.4% training, 75.0% inference) scale every MAC by the density. An honest
count differs in three places: propagation beyond the first layer multiplies *dense* activations
(a sum of sparse rows is dense), full-ranking scoring multiplies dense final embeddings, and the
growth step needs the dense gradient once every ΔT iterations. :func:`cost_report` gives both the
executed count and the naive density-scaled one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def parameter_bytes(model: torch.nn.Module) -> int:
    """Bytes of parameters plus the buffers that define them (sparse positions, masks)."""
    return tensor_bytes(model.parameters()) + tensor_bytes(model.buffers())


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor the optimizer keeps per parameter (e.g. Adam's two moments)."""
    return sum(
        tensor_bytes(v for v in state.values() if isinstance(v, Tensor) and v.dim() > 0)
        for state in optimizer.state.values()
    )


def lightgcn_macs(
    num_users: int,
    num_items: int,
    dim: int,
    num_layers: int,
    graph_entries: int,
    batch_size: int,
    first_layer: int | None = None,
    active: int | None = None,
    update_interval: int | None = None,
) -> dict[str, float]:
    """MACs of one training iteration and one full inference (see the module docs).

    ``first_layer`` (the sparse plan's entries) and ``active`` (active table entries) describe a
    sparse table and default to the dense values; ``update_interval`` adds the amortised growth step.
    """
    n, d, k = num_users + num_items, dim, num_layers
    first = graph_entries * d if first_layer is None else first_layer
    if k == 0:
        first = 0
    later = max(k - 1, 0) * graph_entries * d
    mean = k * n * d + (n * d if active is None else active)
    propagation = first + later + mean
    head = 5 * batch_size * d
    growth = (graph_entries * d + n * d) / update_interval if update_interval else 0.0
    scoring = num_users * num_items * d
    return {
        "train_forward": propagation + head,
        "train_backward": propagation + head,
        "train_update_amortised": growth,
        "train_iteration": 2 * (propagation + head) + growth,
        "inference_propagation": propagation,
        "inference_scoring": scoring,
        "inference": propagation + scoring,
    }


def cost_report(
    model, adj: Tensor, optimizer, batch_size: int, steps_per_epoch: int, dsl=None
) -> dict[str, Any]:
    """Sparsity, active entries, bytes and MACs of a trained LightGCN-style model, with the dense reference.

    The dense reference is the same model with a dense table and Adam, counted by the same
    formulas; ``naive_savings`` scales the dense count by the density (the paper's way of counting).
    """
    table = model.embedding
    dense_entries = table.num_embeddings * table.embedding_dim
    graph_entries = adj._nnz() if adj.layout == torch.sparse_csr else adj.nnz()
    shape = (
        model.num_users,
        model.num_items,
        table.embedding_dim,
        model.num_layers,
        graph_entries,
        batch_size,
    )
    sparse_table = hasattr(table, "plan_entries")
    macs = lightgcn_macs(
        *shape,
        first_layer=table.plan_entries(adj) if sparse_table else None,
        active=table.nnz if sparse_table else None,
        update_interval=dsl.update_interval if sparse_table else None,
    )
    dense_macs = lightgcn_macs(*shape)
    param_bytes, state_bytes = parameter_bytes(model), optimizer_state_bytes(optimizer)
    table_bytes = parameter_bytes(table)
    # The dense reference: 4-byte weights and Adam's two 4-byte moments per table entry.
    dense_param_bytes = param_bytes - table_bytes + 4 * dense_entries
    dense_state_bytes = 8 * dense_entries
    density = 1.0 if dsl is None else 1.0 - dsl.achieved_sparsity()
    return {
        "sparsity": 1.0 - density,
        "active_entries": dsl.active_counts() if dsl is not None else {"embedding": dense_entries},
        "parameter_bytes": param_bytes,
        "optimizer_state_bytes": state_bytes,
        "dense_parameter_bytes": dense_param_bytes,
        "dense_optimizer_state_bytes": dense_state_bytes,
        "bytes_ratio": (param_bytes + state_bytes) / (dense_param_bytes + dense_state_bytes),
        "macs": macs,
        "dense_macs": dense_macs,
        "training_savings": 1 - macs["train_iteration"] / dense_macs["train_iteration"],
        "inference_savings": 1 - macs["inference"] / dense_macs["inference"],
        "naive_savings": 1 - density,
        "steps_per_epoch": steps_per_epoch,
    }
