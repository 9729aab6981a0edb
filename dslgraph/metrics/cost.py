r"""Cost accounting: multiply-accumulates (MACs) and bytes that training and serving really take.

Every model of :mod:`dslgraph.nn` counts its own MACs (``model.macs(graph, batch_size, count)``)
three ways: ``"dense"`` (the same model with every tensor dense), ``"executed"`` (what dslgraph's
kernels run: a genuinely sparse table costs its active entries, a masked dense layer costs as
much as a dense one) and ``"ideal"`` (every sparsified tensor costs only its active entries, as if
sparse kernels existed for all of them). :func:`cost_report` puts them side by side with the
bytes of parameters and optimizer state, and with the paper's naive count. ``workspace_bytes`` adds
what ``bytes_ratio`` leaves out: the index structures a genuinely sparse table derives from its
positions, above all its propagation plan (about ``16 P`` bytes: an index and a weight per
multiply-add, forward and backward), which on a graph with many edges per row outweighs the table
itself. Activations (``K + 1`` dense ``N x d`` layers) are counted for no backend.

For LightGCN (one table of ``N = num_users + num_items`` rows and ``d`` columns, ``K`` propagation
layers over a graph with ``nnz(A)`` stored entries, batch size ``B``):

========================  ====================================  ===================================
step                      dense / dense-with-mask table         genuinely sparse table
========================  ====================================  ===================================
layer 1 (fwd, and bwd)    ``nnz(A) d``                          ``P`` = Σ over edges (i, j) of the
                                                                active entries of row j
layers 2..K (fwd, bwd)    ``nnz(A) d`` each                     ``nnz(A) d`` each (dense by nature)
layer mean                ``(K+1) N d``                         ``(K+1) N d`` (``K N d + nnz(E)``
                                                                ideally: the first sum runs on the
                                                                dense layer 0 the mean needs anyway)
BPR scores + L2           ``5 B d``                             ``5 B d``
growth step (every ΔT)    —                                     ``nnz(A) d + N d`` (dense gradient,
                                                                rebuilt a block of rows at a time;
                                                                ``N d`` for ``backend="compact"``,
                                                                whose dense copy's gradient holds it)
inference                 ``K nnz(A) d + U I d`` (scoring)      ``P + (K-1) nnz(A) d + U I d``
========================  ====================================  ===================================

The paper's savings (74.4% training, 75.0% inference) scale every MAC by the density. An honest
count differs in three places: propagation beyond the first layer multiplies *dense* activations
(a sum of sparse rows is dense), full-ranking scoring multiplies dense final embeddings, and the
growth step needs the dense gradient once every ΔT iterations. For the adapters, dense layers under
DSL are masked, so their executed MACs equal the dense ones; only the ideal count drops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from dslgraph.checks import is_count
from dslgraph.sparse.dsl import DynamicSparseLearning


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def parameter_bytes(model: torch.nn.Module) -> int:
    """Bytes of parameters plus the buffers that define them (sparse positions, masks)."""
    return tensor_bytes(model.parameters()) + tensor_bytes(model.buffers())


def workspace_bytes(model: torch.nn.Module) -> int:
    """Bytes of the index structures that sparse tables derive from their positions (above all the
    propagation plan of a graph model's sparse table); a dense model holds none."""
    return sum(m.workspace_bytes() for m in model.modules() if hasattr(m, "workspace_bytes"))


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor the optimizer keeps per weight (e.g. Adam's two moments; not its step
    counters, one number per parameter tensor)."""
    return sum(_state_bytes(state) for state in optimizer.state.values())


def memory_report(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, dsl: DynamicSparseLearning | None = None
) -> dict[str, Any]:
    """Sparsity, active entries and bytes of parameters and optimizer state of any model (a model of
    your own too), with its dense reference: the same model with every tensor ``dsl`` sparsified
    dense, in its own dtype, with as much optimizer state per weight as the optimizer holds per active
    entry (Adam's two moments once it has stepped; none under plain SGD, or for a frozen tensor).
    ``workspace_bytes`` is what sparse tables derive from their positions (above all a propagation
    plan).

    Returns:
        A dict of ``"sparsity"`` (over the tensors ``dsl`` sparsified; 0 without it), ``"active_entries"``
        (``{target name: active entries}``; ``{}`` without ``dsl``), ``"parameter_bytes"``,
        ``"optimizer_state_bytes"``, ``"dense_parameter_bytes"``, ``"dense_optimizer_state_bytes"``,
        ``"bytes_ratio"`` (parameters and optimizer state against the dense reference's) and
        ``"workspace_bytes"``.
    """
    if not isinstance(getattr(optimizer, "state", None), Mapping):  # failed on None.state
        raise TypeError(
            "optimizer must be the torch.optim.Optimizer that trains the model (the bytes of its state are "
            f"counted), got {type(optimizer).__name__}"
        )
    check_controller(model, dsl)
    param_bytes, state_bytes = parameter_bytes(model), optimizer_state_bytes(optimizer)
    kept, dense = _sparsified_storage(optimizer, dsl)
    # the dense reference holds the sparsified tensors dense, and as much optimizer state per weight
    # as they hold per active entry (a float64 table's moments take 16 bytes a weight, SGD's none)
    dense_param_bytes = param_bytes - kept[0] + dense[0]
    dense_state_bytes = state_bytes - kept[1] + dense[1]
    density = 1.0 if dsl is None else 1.0 - dsl.achieved_sparsity()
    return {
        "sparsity": 1.0 - density,
        "active_entries": dsl.active_counts() if dsl is not None else {},
        "parameter_bytes": param_bytes,
        "optimizer_state_bytes": state_bytes,
        "dense_parameter_bytes": dense_param_bytes,
        "dense_optimizer_state_bytes": dense_state_bytes,
        "bytes_ratio": (param_bytes + state_bytes) / (dense_param_bytes + dense_state_bytes),
        "workspace_bytes": workspace_bytes(model),
    }


def check_controller(model: torch.nn.Module, dsl) -> None:
    """Raises unless ``dsl`` is None or a :class:`~dslgraph.sparse.DynamicSparseLearning` whose targets are
    ``model``'s: another model's controller reported its sparsity and dense reference against this
    model's bytes, without a word."""
    if dsl is None:
        return
    if not isinstance(dsl, DynamicSparseLearning):  # failed reading its missing targets
        raise TypeError(
            f"dsl must be the DynamicSparseLearning that sparsifies the model, got {type(dsl).__name__}"
        )
    own = {id(param) for param in model.parameters()}
    for target in dsl.targets:
        if any(id(param) not in own for param in target.storage()[0]):
            raise ValueError(
                f"dsl's target {target.name!r} is not among the model's parameters: pass the controller "
                f"built on this model ({type(model).__name__})"
            )


def cost_report(
    model: torch.nn.Module,
    graph: Any,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    dsl: DynamicSparseLearning | None = None,
    *,
    steps_per_epoch: int | None = None,
) -> dict[str, Any]:
    """:func:`memory_report` plus the MACs of a trained model and of its dense reference.

    The MACs are the model's own count, ``model.macs(graph, batch_size, count)`` (every model of
    :mod:`dslgraph.nn` has it; see :meth:`~dslgraph.nn.base.Recommender.macs`); ``naive_savings``
    scales the dense count by the density (the paper's way of counting). A DSL growth step's cost
    (``update_step``) is spread over the run's iterations as the run makes them: one per ``update_interval``
    up to ``t_end`` (else ``total_steps``), none under a static mask (whose first update would come after
    the last iteration), and none where DSL grows without a gradient (``growth="random"`` or
    ``"momentum"``: no dense gradient is rebuilt). ``steps_per_epoch``, where given, is recorded in the
    report as given (``dslgraph train``'s ``metrics.json`` keeps it), not counted with.

    Returns:
        :func:`memory_report`'s dict, plus ``"macs"``, ``"ideal_macs"`` and ``"dense_macs"`` (the
        ``"executed"``, ``"ideal"`` and ``"dense"`` counts of ``model.macs``: ``"train_iteration"`` and
        ``"inference"`` among the model's own keys), ``"training_savings"`` and ``"inference_savings"``
        (1 - executed / dense), ``"ideal_training_savings"``, ``"ideal_inference_savings"``,
        ``"naive_savings"``, and ``"steps_per_epoch"`` where it was given.
    """
    if not callable(getattr(model, "macs", None)):
        raise TypeError(
            f"cost_report counts MACs with model.macs(graph, batch_size, count), which the models of "
            f"dslgraph.nn have and {type(model).__name__} has not: implement it (see "
            "dslgraph.nn.base.Recommender.macs), or call dslgraph.metrics.memory_report(model, "
            "optimizer, dsl) for the bytes alone"
        )
    # a negative or fractional batch gave negative or fractional MACs (a model of one's own is counted too)
    if not (is_count(batch_size) and batch_size >= 1):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if is_count(dsl):  # a call of versions where steps_per_epoch came before dsl, and was required
        raise TypeError(
            f"dsl must be the DynamicSparseLearning that sparsifies the model, got {dsl!r}: "
            "steps_per_epoch is a keyword argument, "
            f"cost_report(model, graph, optimizer, batch_size, dsl, steps_per_epoch={dsl})"
        )
    if steps_per_epoch is not None and not (is_count(steps_per_epoch) and steps_per_epoch >= 0):
        raise ValueError(f"steps_per_epoch must be an integer >= 0, got {steps_per_epoch!r}")
    batch_size = int(batch_size)  # np.int32 ones overflow
    macs = {count: dict(model.macs(graph, batch_size, count)) for count in ("dense", "executed", "ideal")}
    if dsl is not None and dsl.growth == "gradient":
        for counted in macs.values():
            updates = dsl.horizon // dsl.update_interval  # is_update_step's iterations
            counted["train_iteration"] += counted.get("update_step", 0) * updates / dsl.total_steps
    report = memory_report(model, optimizer, dsl)
    dense = macs["dense"]
    return {
        **report,
        "macs": macs["executed"],
        "ideal_macs": macs["ideal"],
        "dense_macs": dense,
        "training_savings": 1 - macs["executed"]["train_iteration"] / dense["train_iteration"],
        "inference_savings": 1 - macs["executed"]["inference"] / dense["inference"],
        "ideal_training_savings": 1 - macs["ideal"]["train_iteration"] / dense["train_iteration"],
        "ideal_inference_savings": 1 - macs["ideal"]["inference"] / dense["inference"],
        "naive_savings": report["sparsity"],
        **({} if steps_per_epoch is None else {"steps_per_epoch": int(steps_per_epoch)}),
    }


def _sparsified_storage(optimizer, dsl) -> tuple[tuple[int, int], tuple[int, int]]:
    """The parameter and optimizer-state bytes the tensors DSL sparsified take now, and those they
    would take dense: each weight in its tensor's dtype, and each per-entry state tensor (Adam's
    moments) grown from the active entries to all of them."""
    kept, dense = [0, 0], [0, 0]
    for target in dsl.targets if dsl is not None else ():
        params, buffers = target.storage()
        kept[0] += tensor_bytes(params) + tensor_bytes(buffers)
        for param in params:
            dense[0] += target.numel * param.element_size()
            state = _per_weight_state(optimizer.state.get(param, {}))
            kept[1] += tensor_bytes(state)
            for value in state:
                per_entry = value.shape == param.shape
                dense[1] += (target.numel if per_entry else value.numel()) * value.element_size()
    return tuple(kept), tuple(dense)


def _per_weight_state(state: dict) -> list[Tensor]:
    """The tensors of a parameter's optimizer ``state`` that it keeps per weight (Adam's moments), not its
    0-dim step counter."""
    return [v for v in state.values() if isinstance(v, Tensor) and v.dim() > 0]


def _state_bytes(state: dict) -> int:
    return tensor_bytes(_per_weight_state(state))
