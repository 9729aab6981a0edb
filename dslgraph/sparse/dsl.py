"""The Dynamic Sparse Learning controller: a fixed budget of active weights, pruned and regrown."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from dslgraph.checks import is_count, is_real
from dslgraph.sparse.embedding import (
    MASK_INITS,
    SparseEmbedding,
    active_count,
    check_values_source,
    initial_positions,
    positions_problem,
)
from dslgraph.sparse.linear import SparseLinear
from dslgraph.sparse.schedules import SCHEDULES, check_fractions, update_fraction
from dslgraph.sparse.table import TABLE_MODULES, DenseEmbedding, EmbeddingTable

log = logging.getLogger(__name__)

BACKENDS = ("sparse", "compact", "masked")
GROWTH = ("gradient", "random", "momentum")
OPTIMIZER_STATE = ("reset", "keep")
DISTRIBUTIONS = ("uniform", "erk")
TABLES = "tables"
# a model saved whole keeps what its controller made of it, and a second controller would sparsify it again
_ONCE = (
    "(one controller per model): to train on a model saved whole (torch.save(model)), which keeps its sparse "
    "tables and masks but no controller, build the model dense, give it a new controller and load the saved "
    "model's state_dict() into it (docs/dsl.md, 'Saving and resuming your own loop')"
)


class _Target:
    """One sparsified tensor as the controller sees it: active flat positions and their weights."""

    name: str
    numel: int

    def active_positions(self) -> Tensor:
        raise NotImplementedError

    def active_magnitudes(self) -> Tensor:
        raise NotImplementedError

    def grad_chunks(self, chunk_rows: int) -> Iterator[tuple[int, Tensor]]:
        """``(first flat position, dense |gradient| of a block)`` pairs covering the tensor."""
        raise NotImplementedError

    def momentum(self, optimizer: torch.optim.Optimizer | None) -> Tensor:
        raise NotImplementedError

    def replace(self, pruned: Tensor, grown: Tensor, optimizer, reset_state: bool) -> None:
        """Moves the entries at active indices ``pruned`` to flat positions ``grown`` (value 0)."""
        raise NotImplementedError

    def set_probe(self, on: bool) -> None:
        raise NotImplementedError

    def storage(self) -> tuple[list[Tensor], list[Tensor]]:
        """The trainable tensors that hold this target and the buffers that say where it is active."""
        raise NotImplementedError

    def frozen(self) -> bool:
        """Whether the target was frozen (``requires_grad_(False)``) after the controller was built."""
        return not any(param.requires_grad for param in self.storage()[0])


class _TableTarget(_Target):
    def __init__(self, name: str, table: SparseEmbedding) -> None:
        self.name, self.table = name, table
        self.numel = table.num_embeddings * table.embedding_dim

    def active_positions(self) -> Tensor:
        return self.table.positions

    def storage(self):
        return [self.table.values], [self.table.positions]

    def active_magnitudes(self) -> Tensor:
        return self.table.values.detach().abs()

    def grad_chunks(self, chunk_rows: int):
        if not self.table.recorded_gradient:
            raise _no_gradient(self.name)
        d = self.table.embedding_dim
        for first_row, block in self.table.dense_grad_chunks(chunk_rows):
            yield first_row * d, block.reshape(-1).abs()

    def replace(self, pruned, grown, optimizer, reset_state):
        table = self.table
        with torch.no_grad():
            table.positions[pruned] = grown
            table.values[pruned] = 0
            if table.values.grad is not None:
                # the slot's gradient is the pruned weight's: an optimizer step after this update
                # (dsl.step() called first) would start the grown weight from it instead of 0
                table.values.grad[pruned] = 0
        table.positions_changed()
        if reset_state and optimizer is not None:
            _reset_state(optimizer, table.values, pruned)

    def set_probe(self, on: bool) -> None:
        self.table.probing = on
        self.table.clear_probe()


class _MaskedTarget(_Target):
    """A dense parameter with a boolean mask buffer ``<name>_mask`` on its module (the authors' way).

    Gradients stay dense (as in the authors' code) and the weight is re-masked after every
    optimizer step, so inactive weights are exactly zero whenever the model runs.
    """

    def __init__(
        self,
        name: str,
        module: nn.Module,
        attr: str,
        density: float,
        generator,
        mask_init: str = "random",
        row_degree: Tensor | None = None,
    ) -> None:
        self.name, self.module, self.attr = name, module, attr
        param = getattr(module, attr)
        self.numel = param.numel()
        mask_name = f"{attr}_mask"  # a new buffer: _check_target refused a weight masked already
        flat = torch.zeros(self.numel, dtype=torch.bool)
        shape = tuple(param.shape) if param.dim() == 2 else (1, self.numel)
        nnz = active_count(self.numel, density)
        flat[initial_positions(shape, nnz, mask_init, generator, row_degree)] = True
        module.register_buffer(mask_name, flat.view_as(param).to(param.device))
        # a loaded mask must keep the budget (a sparse table of another sparsity fails on the size
        # of its values), and loaded weights get masked (a dense state loaded with strict=False)
        module.register_load_state_dict_pre_hook(
            functools.partial(_check_loaded_mask, mask_name, int(flat.sum()))
        )
        module.register_load_state_dict_post_hook(functools.partial(_mask_loaded, attr, mask_name))
        module.register_state_dict_post_hook(functools.partial(_save_mask, mask_name))
        self.mask_name = mask_name
        self.grad: Tensor | None = None
        self._hook = None
        self.apply_mask()

    @property
    def param(self) -> nn.Parameter:
        return getattr(self.module, self.attr)

    @property
    def mask(self) -> Tensor:
        return getattr(self.module, self.mask_name)

    def storage(self):
        return [self.param], [self.mask]

    def apply_mask(self) -> None:
        with torch.no_grad():
            self.param.mul_(self.mask)

    def active_positions(self) -> Tensor:
        return self.mask.reshape(-1).nonzero().squeeze(1)

    def active_magnitudes(self) -> Tensor:
        return self.param.detach().reshape(-1)[self.active_positions()].abs()

    def grad_chunks(self, chunk_rows: int):
        if self.grad is None:
            raise _no_gradient(self.name)
        yield 0, self.grad.reshape(-1).abs()

    def momentum(self, optimizer):
        state = optimizer.state.get(self.param, {}) if optimizer is not None else {}
        if "exp_avg" in state:
            return state["exp_avg"].abs().reshape(-1)
        if "momentum_buffer" in state and state["momentum_buffer"] is not None:
            # SGD keeps a sparse buffer for the sparse gradients of nn.Embedding(sparse=True)
            return state["momentum_buffer"].to_dense().abs().reshape(-1)
        held = sorted(key for key, value in state.items() if isinstance(value, Tensor) and value.numel() > 1)
        raise ValueError(
            f"momentum growth needs a momentum of {self.name!r}: Adam's exp_avg (Adam, AdamW, NAdam, "
            "RAdam, Adamax, SparseAdam) or a momentum_buffer (SGD or RMSprop with momentum > 0), but the "
            f"attached {type(optimizer).__name__} holds {held or 'no per-entry state for it'}; use "
            "growth='gradient' or one of those optimizers"
        )

    def replace(self, pruned, grown, optimizer, reset_state):
        _put(self.mask, self.active_positions()[pruned], False)
        _put(self.mask, grown, True)
        with torch.no_grad():
            _put(self.param, grown, 0)
            grad = self.param.grad
            # the gradient that grew them: an optimizer step after this update (dsl.step() called
            # first) would start the grown weights from it instead of 0
            if grad is not None and grad.is_sparse:  # nn.Embedding(sparse=True)
                keep = torch.ones_like(self.mask, dtype=grad.dtype)
                _put(keep, grown, 0)
                self.param.grad = grad * keep
            elif grad is not None:
                _put(grad, grown, 0)
        self.apply_mask()
        if reset_state and optimizer is not None:
            _reset_state(optimizer, self.param, grown)

    def set_probe(self, on: bool) -> None:
        # the gradient is recorded as backward computes it, not read from .grad at the update:
        # a zero_grad() between optimizer.step() and dsl.step() would leave zeros (or None) there
        self.grad = None
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if on:
            self._hook = self.param.register_hook(self._record)

    @torch.utils.hooks.unserializable_hook
    def _record(self, grad: Tensor) -> None:
        grad = grad.detach().to_dense()  # nn.Embedding(sparse=True) sends a sparse one
        self.grad = grad.clone() if self.grad is None else self.grad.add_(grad)


def _put(tensor: Tensor, index: Tensor, value) -> None:
    """Writes ``value`` in place at the row-major flat positions ``index`` of ``tensor`` (positions,
    masks and gradients are read row-major), whatever its strides: ``view(-1)`` fails on a
    channels_last convolution kernel or a transposed parameter."""
    if tensor.is_contiguous():
        tensor.view(-1)[index] = value
    else:
        tensor[torch.unravel_index(index, tensor.shape)] = value


def _check_loaded_mask(
    mask_name: str,
    active: int,
    module: nn.Module,
    state_dict: dict,
    prefix: str,
    local_metadata: dict,
    strict: bool,
    missing_keys: list,
    unexpected_keys: list,
    error_msgs: list,
) -> None:
    """Load-state-dict pre-hook of a masked module: takes a sparse table's (or ``SparseLinear``'s) ``values``
    and ``positions`` as its weight and mask (the state of a model of the sparse or compact backend), and
    refuses a mask with other than ``active`` entries."""
    _sparse_state_as_masked(module, mask_name, state_dict, prefix, local_metadata, error_msgs)
    mask = state_dict.get(prefix + mask_name)
    if isinstance(mask, Tensor) and mask.shape == getattr(module, mask_name).shape:
        loaded = int(mask.count_nonzero())
        if loaded != active:
            error_msgs.append(
                f"{prefix}{mask_name} holds {loaded} active entries, where this model's DSL controller "
                f"keeps {active} (a checkpoint of another sparsity or distribution)"
            )


def _sparse_state_as_masked(
    module: nn.Module, mask_name: str, state_dict: dict, prefix: str, local_metadata: dict, error_msgs: list
) -> None:
    """A sparse table's ``values`` and ``positions`` in ``state_dict`` (under ``prefix``, or ``prefix +
    "sparse_weight."`` for a linear layer) turned into the dense weight and mask of ``module``'s masked
    weight: they were only missing and unexpected keys, and under ``strict=False`` nothing loaded."""
    attr = mask_name.removesuffix("_mask")
    if prefix + attr in state_dict or prefix + mask_name in state_dict or attr != "weight":
        return
    for source in (prefix, prefix + "sparse_weight."):
        values, positions = state_dict.get(source + "values"), state_dict.get(source + "positions")
        if isinstance(values, Tensor) and isinstance(positions, Tensor):
            break
    else:
        return
    weight = getattr(module, attr)
    shape = " x ".join(map(str, weight.shape))
    # a 6 x 3 table's entries are all entries of a 3 x 6 weight: they loaded, each read as another (a
    # SparseLinear's table records its shape in metadata of its own, which this hook is not given)
    saved = local_metadata.get("table_shape") if source == prefix else None
    if saved is not None and tuple(saved) != tuple(weight.shape):
        error_msgs.append(
            f"{source}values and positions are of a {saved[0]} x {saved[1]} table, not this {shape} one"
        )
        return
    if positions.shape != values.shape:
        error_msgs.append(
            f"{source}positions must hold one entry per value, got {positions.numel()} for {values.numel()}"
        )
        return
    problem = positions_problem(positions, tuple(weight.shape))
    if problem:
        error_msgs.append(f"{source}positions {problem}")
        return
    flat = positions.long().cpu()
    dense = torch.zeros(weight.numel(), dtype=weight.dtype)
    dense[flat] = values.detach().cpu().to(weight.dtype)
    mask = torch.zeros(weight.numel(), dtype=torch.bool)
    mask[flat] = True
    for key in ("values", "positions"):
        del state_dict[source + key]
    state_dict[prefix + attr] = dense.view_as(weight)
    state_dict[prefix + mask_name] = mask.view_as(weight)


def _save_mask(
    mask_name: str, module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict
) -> None:
    """State-dict post-hook of a masked module: a module whose ``_save_to_state_dict`` writes its parameters
    only (PyG's ``Linear``, in its ``MLP`` and convolutions) left its mask out, so that no checkpoint could
    restore it and a load with ``strict=False`` kept the fresh controller's mask."""
    mask = getattr(module, mask_name, None)
    if mask is not None and prefix + mask_name not in state_dict:
        state_dict[prefix + mask_name] = mask.detach()


def _mask_loaded(attr: str, mask_name: str, module: nn.Module, incompatible_keys) -> None:
    """Load-state-dict post-hook of a masked module: inactive weights stay zero whatever was loaded."""
    with torch.no_grad():
        getattr(module, attr).mul_(getattr(module, mask_name))


def _mask_tied_loaded(
    owner: nn.Module, attr: str, mask_name: str, module: nn.Module, incompatible_keys
) -> None:
    """Load-state-dict post-hook of a module holding a masked weight tied to ``owner``'s."""
    _mask_loaded(attr, mask_name, owner, incompatible_keys)


def _reset_holding(
    module: nn.Module,
    own,
    masked: list[tuple[nn.Module, str, str]],
    tables: list[SparseEmbedding],
    *args,
    **kwargs,
):
    """``reset_parameters()`` of a module holding DSL targets: the module's own, run with its sparse
    tables' weights writable (an initialisation written into one, as PyG's ``LightGCN`` writes its table's,
    lands at the active entries instead of in a discarded copy), then its masked weights re-masked (an
    instance attribute, see :meth:`DynamicSparseLearning._keep_masks_on_reset`)."""
    with contextlib.ExitStack() as stack:
        for table in tables:
            stack.enter_context(table.writable_weight())
        if own is not None:
            result = own(*args, **kwargs)
        else:
            result = type(module).reset_parameters(module, *args, **kwargs)
    with torch.no_grad():
        for owner, attr, mask_name in masked:
            getattr(owner, attr).mul_(getattr(owner, mask_name))
    return result


def _reset_values(table: SparseEmbedding, generator: torch.Generator | None = None) -> None:
    """``reset_parameters()`` of a DSL target's sparse table: new initial values at the positions the
    controller keeps, not a new mask (which the table's own draws from ``generator``, unused here)."""
    table.reset_values()


def _no_gradient(name: str) -> RuntimeError:
    return RuntimeError(
        f"{name!r} received no gradient before the DSL update step: gradient growth needs the loss "
        "of every update iteration to use every target (or use growth='random')"
    )


def _zero(group: dict, param: Tensor, index: Tensor) -> float:
    return 0


#: Where torch's optimizers start each per-element state, as a function of the parameter group, the
#: parameter and the flat index being restarted: 0 for moments and previous gradients (Adam, AdamW,
#: NAdam, RAdam, Adamax, SparseAdam, SGD, RMSprop, Adadelta, Adafactor's vector variance, Rprop's
#: ``prev``), Adagrad's ``initial_accumulator_value``, Rprop's ``lr`` (a step size of 0 never moves
#: again) and, for ASGD's average, the parameter itself. SGD's momentum at 0 is torch's start only
#: without dampening: torch starts a new buffer at the first gradient, undamped, so with dampening
#: ``d`` a restarted entry's first step is ``(1 - d)`` times a new parameter's (RigL zeroes it too).
_INITIAL_STATE = {
    **dict.fromkeys(
        (
            "exp_avg",
            "exp_avg_sq",
            "max_exp_avg_sq",
            "exp_inf",
            "momentum_buffer",
            "square_avg",
            "grad_avg",
            "acc_delta",
            "prev",
            "variance",
        ),
        _zero,
    ),
    "sum": lambda group, param, index: group.get("initial_accumulator_value", 0),
    "step_size": lambda group, param, index: float(group["lr"]),  # float() reads a tensor lr too
    "ax": lambda group, param, index: param.detach().reshape(-1)[index],
}
_warned_states: set[tuple[str, str]] = set()


def _reset_state(optimizer: torch.optim.Optimizer, param: Tensor, index: Tensor) -> None:
    """Restarts every per-element optimizer state of ``param`` at flat ``index`` (RigL's semantics) at
    the value the optimizer starts it at (:data:`_INITIAL_STATE`). A state of that shape this table
    does not know (another library's optimizer) is zeroed, with a warning once per optimizer class and
    key, since 0 is right for moments but not for every state."""
    group = next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))
    state = optimizer.state.get(param, {})
    for key, value in state.items():
        if not (isinstance(value, Tensor) and value.shape == param.shape):
            continue  # a scalar (step, ASGD's eta and mu) or a factored state, not one per element
        initial = _INITIAL_STATE.get(key)
        if initial is None:
            name = type(optimizer).__name__
            if (name, key) not in _warned_states:
                _warned_states.add((name, key))
                log.warning(
                    "optimizer_state='reset' zeroes %s's state %r of grown entries, a state it does not "
                    "know the initial value of; use optimizer_state='keep' if 0 is wrong for it",
                    name,
                    key,
                )
            initial = _zero
        if value.layout == torch.strided:
            _put(value, index, initial(group, param, index))
        else:  # SGD's momentum of nn.Embedding(sparse=True): made dense, Nesterov's next step failed
            dense = value.to_dense()
            _put(dense, index, initial(group, param, index))
            state[key] = dense.to_sparse(value.sparse_dim())


class DynamicSparseLearning:
    r"""Dynamic Sparse Learning from `"Dynamic Sparse Learning: A Novel Paradigm for Efficient
    Recommendation" <https://arxiv.org/abs/2402.02855>`_ (Wang et al., WSDM 2024), for any model.

    On construction, the chosen tensors of ``model`` become sparse at a fixed density: embedding
    tables (:class:`~dslgraph.sparse.table.EmbeddingTable` and :class:`torch.nn.Embedding`) are
    replaced by genuinely sparse :class:`~dslgraph.sparse.SparseEmbedding` tables and
    :class:`torch.nn.Linear` layers whose weight is a target by :class:`~dslgraph.sparse.SparseLinear`
    (``backend="sparse"`` or ``"compact"``, which refuse a module holding or doing more than the sparse
    one in its place: a subclass's own methods, extra parameters, buffers, hooks), or masked in place
    (``backend="masked"``); other parameters (biases, convolution kernels) are always masked.
    Create the optimizer afterwards, :meth:`attach` it, and call :meth:`step` after every
    ``optimizer.step()``. Every ``update_interval`` iterations each tensor prunes
    :math:`n = \lceil \rho_t \cdot nnz \rceil` active weights of smallest magnitude and grows ``n``
    inactive ones (by largest dense gradient of that iteration's mini-batch, at random, or by
    largest momentum); grown weights start at zero and the count of active weights never changes.

    Args:
        model (torch.nn.Module): The model; modified in place.
        sparsity (float): Fraction of zero weights over the sparsified tensors, in ``[0, 1)``.
        total_steps (int): Iterations of the whole run, :math:`T` of the schedule.
        targets (str or list of str, optional): ``"tables"`` (every embedding table; an
            :class:`torch.nn.EmbeddingBag` is masked in place under every backend) and/or regular
            expressions matched against parameter names (e.g. ``r"mlp\..*\.weight"``); :obj:`None`
            takes the model's own ``dsl_targets`` where it has them (every model of :mod:`dslgraph.nn`
            does: the DSL authors' choice, which ``dslgraph train`` sparsifies), else ``"tables"``.
            (default: :obj:`None`)
        update_interval (int, optional): :math:`\Delta T`; one past ``t_end`` (else ``total_steps``) leaves
            the masks as drawn, with a warning. (default: :obj:`3000`)
        schedule (str, optional): ``"cosine"``, ``"linear"`` or ``"constant"``. (default: :obj:`"cosine"`)
        rho0 (float, optional): Initial update fraction. (default: :obj:`0.5`)
        rho_min (float, optional): Final update fraction. (default: :obj:`0.005`)
        t_end (int, optional): No updates after this iteration (RigL); ``None`` updates to the end
            like the DSL authors. (default: :obj:`None`)
        growth (str, optional): ``"gradient"``, ``"random"`` or ``"momentum"``. (default: :obj:`"gradient"`)
        optimizer_state (str, optional): ``"reset"`` restarts the optimizer state of grown weights
            where the optimizer starts it (RigL: zero moments, Adagrad's initial accumulator, Rprop's
            initial step size); ``"keep"`` never touches it (the DSL authors' code).
            (default: :obj:`"reset"`)
        distribution (str, optional): ``"uniform"`` density per tensor or ``"erk"``
            (Erdős-Rényi-kernel budgets, same total). (default: :obj:`"uniform"`)
        mask_init (str, optional): Initial mask of embedding tables: ``"random"`` entries (the
            DSL authors'), ``"aligned"`` (every row's first columns, so that users and items share
            their active columns) or ``"degree"`` (every row's first columns, more of them for rows
            of higher degree, from :obj:`row_degrees`; see
            :func:`~dslgraph.sparse.embedding.initial_positions`). Other targets always start random.
            (default: :obj:`"random"`)
        row_degrees (dict, optional): For ``mask_init="degree"``, one ``[rows]`` tensor of degrees per
            embedding table, keyed by the table's module name (what
            :func:`~dslgraph.nn.base.table_row_degrees` gives for a model and its data).
        backend (str, optional): ``"sparse"`` (only active entries stored, given optimizer state
            and computed with), ``"compact"`` (stored and given optimizer state like ``"sparse"``,
            but a graph model's tables propagate through a transient dense copy instead of a
            cached plan: a dense layer's work, no plan to hold) or ``"masked"`` (a dense weight
            times a mask, the DSL authors' way), for embedding tables and linear weights.
            (default: :obj:`"sparse"`)
        skip_zero_gradient (bool, optional): Never grow an entry whose growth score (gradient or
            momentum) is zero, and prune only as many entries as can be grown otherwise. A model without
            propagation (UltraGCN) gives gradient only to the rows of the update's mini-batch, so
            gradient growth would fill most of its slots with entries the loss ignores (all of gradient
            0: the lowest flat positions among them); they stay at zero until pruned again.
            (default: :obj:`False`, the DSL authors' and RigL's growth of exactly ``n``)
        chunk_rows (int, optional): Rows of dense gradient materialised at once during growth.
            (default: :obj:`4096`)
        seed (int, optional): Seed of masks and random growth. (default: :obj:`0`)
    """

    def __init__(
        self,
        model: nn.Module,
        sparsity: float,
        total_steps: int,
        targets: str | Sequence[str] | None = None,
        update_interval: int = 3000,
        schedule: str = "cosine",
        rho0: float = 0.5,
        rho_min: float = 0.005,
        t_end: int | None = None,
        growth: str = "gradient",
        optimizer_state: str = "reset",
        distribution: str = "uniform",
        mask_init: str = "random",
        backend: str = "sparse",
        skip_zero_gradient: bool = False,
        chunk_rows: int = 4096,
        seed: int = 0,
        row_degrees: dict[str, Tensor] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):  # failed on its named_modules, naming no argument
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not (is_real(sparsity) and 0.0 <= sparsity < 1.0):  # e.g. 80 meant as a percentage
            raise ValueError(f"sparsity must be a fraction in [0, 1), got {sparsity!r}")
        # NumPy's numbers and text go on as Python's: run_settings() goes into checkpoints, which a resume
        # loads with weights_only=True (it refuses NumPy scalars), and torch's manual_seed refuses np.int64
        schedule = _check_choice("schedule", schedule, SCHEDULES)
        growth = _check_choice("growth", growth, GROWTH)
        optimizer_state = _check_choice("optimizer_state", optimizer_state, OPTIMIZER_STATE)
        distribution = _check_choice("distribution", distribution, DISTRIBUTIONS)
        mask_init = _check_choice("mask_init", mask_init, MASK_INITS)
        backend = _check_choice("backend", backend, BACKENDS)
        update_interval = _check_int("update_interval", update_interval)
        total_steps = _check_int("total_steps", total_steps)
        chunk_rows = _check_int("chunk_rows", chunk_rows)
        seed = _check_int("seed", seed)
        if t_end is not None:
            t_end = _check_int("t_end", t_end)
        if not isinstance(skip_zero_gradient, bool | np.bool_):  # "no" grew as True does
            raise ValueError(f"skip_zero_gradient must be True or False, got {skip_zero_gradient!r}")
        if update_interval < 1:
            raise ValueError(f"update_interval (ΔT) must be >= 1, got {update_interval}")
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        check_fractions(rho0, rho_min)
        if t_end is not None and not 0 < t_end <= total_steps:
            raise ValueError(f"t_end must be in (0, total_steps={total_steps}], got {t_end}")
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        if not -(2**63) <= seed < 2**64:  # torch's generator said "Overflow when unpacking long long"
            raise ValueError(f"seed must be in [-2**63, 2**64), which torch's generators take, got {seed}")
        if skip_zero_gradient and growth == "random":  # it did nothing, silently
            raise ValueError(
                "skip_zero_gradient=True skips entries whose growth score (gradient or momentum) is zero, "
                "and growth='random' scores none: leave it out, or grow by 'gradient' or 'momentum'"
            )
        if row_degrees is not None and not isinstance(row_degrees, Mapping):  # one table's tensor
            raise ValueError(
                "row_degrees must be a dict of one degree tensor per embedding table, keyed by the table's "
                f"module name (dslgraph.nn.base.table_row_degrees gives it), got {type(row_degrees).__name__}"
            )
        if row_degrees and mask_init != "degree":  # silently ignored: the masks were drawn at random
            raise ValueError(
                f"row_degrees are read by mask_init='degree' only, got mask_init={mask_init!r}: pass "
                "mask_init='degree' for masks that follow them, or leave row_degrees out"
            )
        if row_degrees:
            modules = model.named_modules(remove_duplicate=False)
            tables = [name for name, module in modules if isinstance(module, TABLE_MODULES)]
            unknown = [key for key in row_degrees if key not in tables]
            if unknown:  # a table held as a bare parameter, or a misspelt name: its mask was drawn at random
                raise ValueError(
                    f"row_degrees names {unknown}, which are no embedding table of the model (its tables: "
                    f"{tables}): mask_init='degree' shapes the masks of tables alone (nn.Embedding, "
                    "nn.EmbeddingBag, EmbeddingTable), keyed by module name; other targets start random"
                )
        if growth == "momentum" and backend != "masked":
            raise ValueError("growth='momentum' needs dense momentum: use backend='masked' for it")
        self.model = model
        self.sparsity = float(sparsity)
        self.total_steps = total_steps
        self.update_interval = update_interval
        self.schedule = schedule
        self.rho0, self.rho_min = float(rho0), float(rho_min)
        self.t_end = t_end
        self.growth = growth
        self.optimizer_state = optimizer_state
        self.backend = backend
        self.mask_init = mask_init
        self.row_degrees = dict(row_degrees or {})
        self.skip_zero_gradient = bool(skip_zero_gradient)
        self.chunk_rows = chunk_rows
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizer: torch.optim.Optimizer | None = None
        self._mask_hook = self._start_hook = None
        self._step_started = False
        self._steps_unseen = 0  # steps of the attached optimizer since the last step()
        self._steps_since_update = 0  # and since the last update
        self._found_inf = None  # a GradScaler's word to a fused optimizer on its last step (see step())
        self._removed = False
        self.iteration = 0
        self.updates: list[dict] = []
        if update_interval > self.horizon:
            # the default ΔT of 3000 outlasts a short run: the masks would never change, as a static mask's
            warnings.warn(
                f"update_interval={update_interval} exceeds the {self.horizon} iterations DSL updates within "
                f"({'t_end' if t_end is not None else 'total_steps'}): no update comes, so the initial masks "
                "never change (a static mask); lower update_interval to prune and regrow",
                stacklevel=2,
            )
        from_model = targets is None and getattr(model, "dsl_targets", None) is not None
        # "tables" as the default sparsified all four of NeuMF's tables, where the CLI's run its MLP branch's
        if targets is None:
            own = getattr(model, "dsl_targets", None)  # None there too: a model with no choice of its own
            targets = TABLES if own is None else own
            if not isinstance(targets, (str, Sequence)) or len(targets) == 0:  # refused naming targets
                raise ValueError(
                    f"{type(model).__name__}.dsl_targets, the default targets, is {own!r}: pass targets "
                    "('tables' and/or regular expressions of parameter names), or give the model some"
                )
        try:
            if not isinstance(targets, (str, Sequence)):  # one pattern not in a list
                raise ValueError(f"targets must be 'tables' and/or regular expressions, got {targets!r}")
            selected = _select(model, [targets] if isinstance(targets, str) else list(targets))
        except ValueError as exc:
            if not from_model:
                raise
            # a misspelt pattern in a model of one's own said "matches no parameter", not where it was
            name = type(model).__name__
            owner = next((c.__name__ for c in type(model).__mro__ if "dsl_targets" in vars(c)), name)
            where = "correct them there" if owner == name else f"inherited from {owner}: set them on {name}"
            raise ValueError(
                f"{exc} (targets=None took the patterns from {name}.dsl_targets = {targets!r}, {where}, "
                "or pass targets)"
            ) from None
        # modules that get replaced first, so that masks of their other parameters (a linear
        # layer's bias) are registered on the replacement; in that order under every backend, since
        # the masks and random growth are drawn target by target from one generator (the masked
        # backend's own order gave a model's biases and later weights other masks from the same seed)
        replaced_first = sorted(selected, key=lambda name: not self._is_module_target(name, selected[name]))
        for name in replaced_first:  # all checked before the model changes
            self._check_target(name, selected[name])
        densities = _densities(selected, 1.0 - sparsity, distribution)
        if distribution == "erk" and sparsity > 0:
            whole = [name for name, density in densities.items() if density == 1.0]
            # a 1-D target (a bias) is the first to end here: its (rows + cols) / numel is 1, far above a
            # matrix's, so only a budget below every target's rows + cols leaves it sparse
            log.info(
                "ERK densities: %s%s",
                ", ".join(f"{name} {density:.3f}" for name, density in densities.items()),
                f"; kept whole, so never pruned nor saving memory: {', '.join(whole)}" if whole else "",
            )
        self.targets = [self._sparsify(name, selected[name], densities[name]) for name in replaced_first]
        self._keep_masks_on_reset()
        self._set_probe()

    def _check_target(self, name: str, obj) -> None:
        """Refuses a target that sparsifying would get silently wrong."""
        if isinstance(obj, SparseEmbedding):
            raise ValueError(
                f"{name!r} is already a sparse table: DynamicSparseLearning replaces a dense one by a "
                f"sparse one itself, once {_ONCE}"
            )
        if isinstance(obj, nn.Module):  # a table, named by its module
            module, module_name, attr = obj, name, "weight"
        else:
            module_name, _, attr = name.rpartition(".")
            module = self.model.get_submodule(module_name)
        param_name = f"{module_name}.{attr}" if module_name else attr
        weight = getattr(module, attr)
        if not isinstance(weight, nn.Parameter):
            # a table's weight computed by a parametrization (weight norm, pruning): masking or replacing it
            # would act on a tensor recomputed at every use, never on what trains
            params = [f"{module_name}.{p}" if module_name else p for p, _ in module.named_parameters()]
            raise ValueError(
                f"{param_name!r} is computed (a parametrization, weight norm or pruning), not a "
                f"parameter: name the parameter it is computed from, among {params}, as a target instead"
            )
        if weight.is_meta:  # a mask of no values, and a sparse module's values copied out of nothing
            check_values_source(weight, repr(param_name))
        if weight.numel() == 0:  # ERK's budgets divided by its 0 entries, a ZeroDivisionError
            raise ValueError(
                f"{param_name!r} has no entries (shape {tuple(weight.shape)}), none to keep or regrow: "
                "leave it out of targets (name the others by regular expression)"
            )
        if not weight.requires_grad:
            raise ValueError(
                f"{param_name!r} is frozen (requires_grad=False), and DSL regrows only weights that "
                "train: leave it out of targets (name the others by regular expression)"
            )
        if hasattr(module, f"{attr}_mask"):
            raise ValueError(
                f"{param_name!r} is already masked: DynamicSparseLearning sparsifies a model once {_ONCE}"
            )
        if self.mask_init == "degree" and isinstance(obj, TABLE_MODULES):
            degree = self.row_degrees.get(name)
            if not isinstance(degree, Tensor) or degree.shape != weight.shape[:1]:
                if not isinstance(degree, Tensor):  # a list: "'list' object has no attribute 'shape'"
                    got = "none" if degree is None else f"a {type(degree).__name__}, not a tensor"
                else:
                    got = f"shape {tuple(degree.shape)}"
                raise ValueError(
                    f"mask_init='degree' needs row_degrees[{name!r}], one degree per row of its "
                    f"{weight.shape[0]} rows, got {got} (dslgraph.nn.base.table_row_degrees gives them "
                    "for a table of num_users + num_items rows, or of num_users or num_items rows when "
                    "the two differ; for any other table, count the interactions of each row's node)"
                )
        if not self._replaces_module(name, obj):
            return
        if module is self.model:
            raise ValueError(
                f"the model is itself the {type(module).__name__} that DSL would replace by a sparse "
                "module: wrap it (torch.nn.Sequential(model)) or use backend='masked'"
            )
        _check_replaceable(module_name, module)
        check_values_source(weight, repr(param_name), ": use backend='masked', which masks it in place")
        shared = [n for n, p in self.model.named_parameters(remove_duplicate=False) if p is weight]
        if len(shared) > 1:
            raise ValueError(
                f"{param_name!r} is shared as {shared}: a sparse module in place of one would untie "
                "them (the others would keep training the dense tensor); use backend='masked', which "
                "masks the shared tensor in place"
            )

    def _replaces_module(self, name: str, obj) -> bool:
        """Whether the backend puts a genuinely sparse module in place of ``obj``'s module."""
        return self.backend != "masked" and self._is_module_target(name, obj)

    def _is_module_target(self, name: str, obj) -> bool:
        """Whether ``obj`` is what the sparse and compact backends replace by a sparse module:
        embedding tables (not an :class:`torch.nn.EmbeddingBag`), and linear layers whose weight is
        sparsified."""
        if isinstance(obj, nn.Module):  # a table
            return isinstance(obj, (EmbeddingTable, nn.Embedding))
        module_name, _, attr = name.rpartition(".")
        return attr == "weight" and isinstance(self.model.get_submodule(module_name), nn.Linear)

    def _sparsify(self, name: str, obj, density: float) -> _Target:
        replace = self._replaces_module(name, obj)
        if isinstance(obj, TABLE_MODULES):
            row_degree = self.row_degrees.get(name) if self.mask_init == "degree" else None
            if replace:
                propagation = "dense" if self.backend == "compact" else "planned"
                table = SparseEmbedding.from_dense(
                    obj.weight.detach(), density, self.generator, self.mask_init, propagation, row_degree
                )
                # reset_parameters() draws as the replaced table did (nn.Embedding: normal(0, 1))
                table.init, table.std = getattr(obj, "init", "normal"), getattr(obj, "std", 1.0)
                _set_submodule(self.model, name, table)
                return _TableTarget(name, table)
            target = _MaskedTarget(name, obj, "weight", density, self.generator, self.mask_init, row_degree)
            return self._mask_tied_loads(target)
        module_name, _, attr = name.rpartition(".")
        module = self.model.get_submodule(module_name)
        if replace:
            layer = SparseLinear.from_linear(module, density, generator=self.generator)
            _set_submodule(self.model, module_name, layer)
            return _TableTarget(name, layer.sparse_weight)
        return self._mask_tied_loads(_MaskedTarget(name, module, attr, density, self.generator))

    def _mask_tied_loads(self, target: _MaskedTarget) -> _MaskedTarget:
        """Masks a tied weight after every module holding it loads a state, not only the module of its
        mask: a dense state loaded with ``strict=False`` wrote the weight again under the later name
        (an output layer tied to a table) and left it unmasked until the next optimizer step."""
        for module in self.model.modules():
            if module is not target.module and any(
                p is target.param for p in module.parameters(recurse=False)
            ):
                hook = functools.partial(_mask_tied_loaded, target.module, target.attr, target.mask_name)
                module.register_load_state_dict_post_hook(hook)
        return target

    def _keep_masks_on_reset(self) -> None:
        """Makes ``reset_parameters()`` redraw the values of the targets and keep their masks: a masked
        module's (or a module holding one: the model's) redrew whole dense weights, active until the next
        optimizer step, and a sparse table's a new mask, apart from the controller's seed and from the
        masked backend's mask."""
        masked = [(t.module, t.attr, t.mask_name) for t in self.targets if isinstance(t, _MaskedTarget)]
        for module in self.model.modules():
            if not callable(getattr(module, "reset_parameters", None)):
                continue
            if isinstance(module, SparseEmbedding) and any(
                isinstance(t, _TableTarget) and t.table is module for t in self.targets
            ):
                module.reset_parameters = functools.partial(_reset_values, module)
                continue
            # by the parameters it holds: a tied weight is masked on its first module, and another resets it
            inside = {id(param) for param in module.parameters()}
            held = [entry for entry in masked if id(getattr(entry[0], entry[1])) in inside]
            below = set(module.modules())
            tables = [t.table for t in self.targets if isinstance(t, _TableTarget) and t.table in below]
            if held or tables:
                own = module.__dict__.get("reset_parameters")  # one set on the instance, else the class's
                module.reset_parameters = functools.partial(_reset_holding, module, own, held, tables)

    def attach(self, optimizer: torch.optim.Optimizer) -> DynamicSparseLearning:
        """Registers the optimizer (created after this controller) whose state DSL manages: required
        before training, and again for an optimizer created later (a new learning-rate phase)."""
        if not isinstance(optimizer, torch.optim.Optimizer):
            # a scheduler, a parameter list or a wrapper failed with an AttributeError, a wrapper after
            # the controller had taken it: its steps were then never seen
            raise TypeError(
                f"attach takes a torch.optim.Optimizer, got {type(optimizer).__name__}: DSL hooks the "
                "optimizer's step and resets its state of grown entries (attach the torch optimizer that "
                "a wrapper steps, not the wrapper or a learning-rate scheduler)"
            )
        self._check_removed()
        self._check_held(optimizer)
        self.optimizer = optimizer
        self._unhook_optimizer()
        self._hook_optimizer()
        self._steps_unseen = self._steps_since_update = 0
        self._found_inf = None
        return self

    def _check_held(self, optimizer: torch.optim.Optimizer) -> None:
        """Refuses an optimizer that does not hold every target that trains: at :meth:`attach`, and at
        every update for a target frozen when the optimizer was made and unfrozen since (an update
        failed with a bare ``StopIteration``, or under ``optimizer_state="keep"`` pruned trained weights
        for zeros that never trained)."""
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        for target in self.targets:
            params, _ = target.storage()
            # an optimizer made before the controller holds the dense tensors it replaced: the
            # sparse ones would silently never train
            missing = [p for p in params if p.requires_grad and id(p) not in held]
            if missing:
                # named as the model names it now: a choice of parameters by name made after the
                # controller (name.endswith("weight")) passes over the sparse backend's "<table>.values"
                names = self.model.named_parameters(remove_duplicate=False)
                name = next((n for n, p in names if p is missing[0]), target.name)
                raise ValueError(
                    f"the optimizer does not hold the parameters of DSL target {target.name!r} ({name!r}): "
                    "DSL manages one optimizer, which holds every target (not one optimizer per part of "
                    "the model); create it after DynamicSparseLearning, from model.parameters() or from "
                    f"parameters chosen by their names then, {name!r} among them (one made before holds the "
                    "dense tensors that the controller replaced; a target frozen when it was made and "
                    "trained since needs optimizer.add_param_group)"
                )

    def _hook_optimizer(self) -> None:
        # masked weights are zeroed after every optimizer step, whether dsl.step() comes next,
        # comes first, or is forgotten: a dense gradient would otherwise make them active
        self._mask_hook = self.optimizer.register_step_post_hook(lambda *_: self._optimizer_stepped())
        # a subclass's step that calls super().step() runs the hooks twice where torch has wrapped the
        # parent's step too (for an instance of the parent made earlier): that step is counted once
        self._step_started = False
        self._start_hook = self.optimizer.register_step_pre_hook(lambda *_: self._optimizer_stepping())

    def _unhook_optimizer(self) -> None:
        for hook in (self._mask_hook, self._start_hook):
            if hook is not None:
                hook.remove()
        self._mask_hook = self._start_hook = None

    def _optimizer_stepping(self) -> None:
        self._step_started = True

    def _optimizer_stepped(self) -> None:
        self._apply_masks()
        if not self._step_started:  # the outer hooks of a step counted at its inner ones
            return
        self._step_started = False
        self._steps_unseen += 1
        if self._steps_unseen == 2:
            # dsl.step() once an epoch, or never: iterations are counted in dsl.step() calls, so the
            # masks were updated less often than update_interval asks, or never, silently
            warnings.warn(
                "the optimizer attached to DSL stepped twice without a dsl.step() between: call dsl.step() "
                "after every optimizer.step() (not once an epoch), since DSL counts its iterations "
                "(update_interval, total_steps) in dsl.step() calls and updates the masks less often, or "
                "never, otherwise",
                stacklevel=4,
            )
        self._steps_since_update += 1
        # a GradScaler calls the step of an optimizer that scales for itself (torch's fused Adam, as
        # make_adam builds it) even where it skips it, and tells it in found_inf, which it then deletes
        self._found_inf = getattr(self.optimizer, "found_inf", None)

    def _apply_masks(self) -> None:
        for target in self.targets:
            if isinstance(target, _MaskedTarget):
                target.apply_mask()

    @property
    def horizon(self) -> int:
        """:math:`T` of the schedule and the last iteration an update may come at: ``t_end``, else
        ``total_steps``."""
        return self.t_end if self.t_end is not None else self.total_steps

    def is_update_step(self, iteration: int) -> bool:
        """Whether ``iteration`` (counted from 1) prunes and regrows: every ``update_interval``-th, up to
        :attr:`horizon`."""
        if iteration % self.update_interval:
            return False
        return 0 < iteration <= self.horizon

    def remove(self) -> None:
        """Lets go of the model once training is over, before fine-tuning it or differentiating through it
        without DSL: recording of the next update's growth gradient stops, and the controller's hook leaves
        the attached optimizer; the sparse tables and masks stay. The controller then refuses :meth:`step`,
        :meth:`update` and :meth:`attach`.

        Without it, a run stopped on the iteration before an update (early stopping) records the gradients
        of every later backward pass, without end. Masked weights are no longer re-masked after an
        optimizer step."""
        self._removed = True
        self._set_probe()
        self._unhook_optimizer()
        self.optimizer = None

    def _check_removed(self) -> None:
        if self._removed:
            raise RuntimeError(
                "this DSL controller was removed (dsl.remove()) and no longer trains the model: build a "
                "new model and controller to train with DSL again"
            )

    def _set_probe(self) -> None:
        probe = not self._removed and self.is_update_step(self.iteration + 1)
        self._probing = probe
        # a frozen tensor takes no gradient hook; unfrozen before the update, it still has no gradient to
        # grow by at that update
        self._unprobed = {target.name for target in self.targets if probe and target.frozen()}
        for target in self.targets:
            target.set_probe(probe and target.name not in self._unprobed)

    def step(self) -> None:
        """Call after ``optimizer.step()``: re-masks, and prunes/regrows on update iterations."""
        # at every step, not only before an update: a run with none (ΔT past its horizon, or resumed
        # after the last) would otherwise train the dense tensors of an optimizer made before the
        # controller, silently, while the sparse ones never train
        self._check_optimizer()
        self.iteration += 1
        if self.iteration == 1:
            self._check_not_resumed()
        if self.iteration == self.total_steps + 1 and self.t_end is None:
            # total_steps given as epochs, or as the batches of one epoch, stopped every update after it
            warnings.warn(
                f"DSL stepped past total_steps={self.total_steps}, the last iteration it updates the masks "
                "at: give total_steps as the run's number of optimizer steps (epochs x batches per epoch), "
                "and t_end to stop updating earlier",
                stacklevel=2,
            )
        # the attached optimizer's step re-masked; another optimizer's (one created later and not
        # attached) did not, and would leave masked weights active until the next update
        stepped = self._steps_unseen > 0
        if not stepped:
            self._apply_masks()
        found_inf, self._steps_unseen, self._found_inf = self._found_inf, 0, None
        if self.is_update_step(self.iteration):
            self._check_optimizer_stepped()
            if stepped and not (found_inf is not None and found_inf.item()):  # read here only: a sync
                self.update()
            else:
                # a GradScaler skips the step of an iteration whose gradients hold inf or NaN: those
                # cannot be ranked (the update failed as if training had diverged), and the step that
                # did not happen moves nothing
                warnings.warn(
                    f"DSL skipped its update at iteration {self.iteration}: the attached optimizer did not "
                    "step since the last dsl.step() (a GradScaler skips the steps whose gradients are inf or "
                    "NaN); the masks are kept until the next update. Call dsl.step() once after each "
                    "optimizer.step(): not after each backward pass of an accumulated gradient, nor twice; "
                    "and dsl.attach() an optimizer created later (a new phase), whose steps DSL does not see",
                    stacklevel=2,
                )
        self._set_probe()

    def _check_not_resumed(self) -> None:
        """Warns where the attached optimizer had stepped before it was attached, at this controller's first
        step: a resume that loaded the optimizer's state but not the controller's restarts ρ_t and the
        update times from iteration 0, silently."""
        stepped = max(
            (int(state["step"]) for state in self.optimizer.state.values() if "step" in state), default=0
        )
        if stepped > self._steps_unseen:  # the steps since attach() (more than one: warned of already)
            warnings.warn(
                f"DSL's first step, with the attached optimizer at step {stepped}: a resumed run needs the "
                "controller's state too (dsl.load_state_dict(state) with what dsl.state_dict() saved), or "
                "DSL restarts its schedule (ρ_t, update times) from iteration 0",
                stacklevel=3,
            )

    def _check_optimizer_stepped(self) -> None:
        if not self._steps_since_update:
            warnings.warn(
                f"the optimizer attached to DSL has not stepped since the last update (iteration "
                f"{self.iteration}): if the loop steps another optimizer, dsl.attach() it, since DSL "
                "resets or reads the optimizer state of grown entries in the attached one (a GradScaler "
                "that skipped these steps is harmless)",
                stacklevel=3,
            )
        self._steps_since_update = 0

    def update_fraction(self) -> float:
        """ρ_t, the fraction of each tensor's active entries that an update at this iteration moves."""
        return update_fraction(self.schedule, self.iteration, self.horizon, self.rho0, self.rho_min)

    def _check_optimizer(self) -> None:
        # under either optimizer_state: attach() is what refuses an optimizer created before the
        # controller, whose stale dense tensors would train while the sparse ones never do
        self._check_removed()
        if self.optimizer is None:
            raise RuntimeError(
                "no optimizer is attached: create it after DynamicSparseLearning, from "
                "model.parameters(), and call dsl.attach(optimizer) before training"
            )

    @torch.no_grad()
    def update(self) -> dict:
        """One prune-and-grow round at the current iteration; returns what it did. :meth:`step` calls it
        every ``update_interval`` iterations; gradient growth has a gradient to grow by only there."""
        self._check_optimizer()
        self._check_held(self.optimizer)
        if self.growth == "gradient" and not (self._probing and self.is_update_step(self.iteration)):
            # called directly (at each epoch's end): each target "received no gradient", whose loss used it;
            # probing is armed a step ahead, so a call just after the step before an update has none either
            raise RuntimeError(
                f"dsl.update() at iteration {self.iteration} has no gradient to grow by: DSL records it only "
                "on the iteration before each of its updates, which dsl.step() makes every update_interval "
                "iterations; call dsl.step() after every optimizer.step() and let it update (an "
                "update_interval of an epoch's batches updates once an epoch), or grow by growth='random'"
            )
        rho = self.update_fraction()
        # changed: the n entries pruned and grown; moved: those of them not grown straight back where pruned
        record = {"iteration": self.iteration, "rho": rho, "changed": {}, "moved": {}}
        # every target's entries are chosen before any moves: a non-finite tensor fails the update
        # without leaving the targets before it updated
        moves = []
        for target in self.targets:
            if target.frozen() or (self.growth == "gradient" and target.name in self._unprobed):
                # a frozen tensor keeps its values and mask: growth would zero entries that never train
                # again, and it has no gradient to grow by (nor has one unfrozen since the last step)
                continue
            active = target.active_positions()
            # rounded first: 0.07 * 100 is 7.000000000000001 in floating point, whose ceil is 8
            n = min(math.ceil(round(rho * active.numel(), 9)), active.numel())
            if n == 0 or active.numel() == target.numel:
                continue
            magnitudes = target.active_magnitudes()
            _check_finite(magnitudes, "weights", target.name, self.iteration)
            pruned = _smallest(magnitudes, active, n)
            keep = torch.ones(active.numel(), dtype=torch.bool, device=active.device)
            keep[pruned] = False
            grown, score = self._grow(target, active[keep], n)
            if self.skip_zero_gradient and score is not None:
                pruned, grown = _without_zero_growth(active, pruned, grown, score)
            moves.append((target, pruned, grown))
        for target, pruned, grown in moves:
            record["changed"][target.name] = int(grown.numel())
            record["moved"][target.name] = self.replace_entries(target, pruned, grown)
        self.updates.append(record)
        log.debug(
            "DSL update at iteration %d: rho=%.4f changed %s, moved %s",
            self.iteration,
            rho,
            record["changed"],
            record["moved"],
        )
        return record

    def replace_entries(self, target: _Target, pruned: Tensor, grown: Tensor) -> int:
        """Moves ``target``'s active entries at indices ``pruned`` (into its active positions) to the
        flat positions ``grown`` (as many), which start at 0 with the optimizer state
        :attr:`optimizer_state` says. A pruned entry grown back at once never left: it keeps its value
        and optimizer state, as in the DSL authors' code and RigL, instead of restarting at 0. Returns the
        number of entries that moved."""
        active = target.active_positions()
        regrown = torch.isin(grown, active[pruned])
        pruned, grown = pruned[~torch.isin(active[pruned], grown)], grown[~regrown]
        if grown.numel():
            target.replace(pruned, grown, self.optimizer, self.optimizer_state == "reset")
        return int(grown.numel())

    def _grow(self, target: _Target, kept: Tensor, n: int) -> tuple[Tensor, Tensor | None]:
        """Flat positions of ``n`` entries to grow, none of them in ``kept`` (the still-active ones),
        with their growth scores (``None`` for random growth). Gradient and momentum growth take the
        largest scores, the lowest positions first among equal ones (:func:`_largest`)."""
        kept = kept.sort().values
        if self.growth == "random":
            return _random_excluding(target.numel, kept, n, self.generator).to(kept.device), None
        if self.growth == "momentum":
            chunks = [(0, target.momentum(self.optimizer))]
        else:
            chunks = target.grad_chunks(self.chunk_rows)
        what = "gradients" if self.growth == "gradient" else "momenta"
        checked = (
            (offset, _check_finite(score, what, target.name, self.iteration)) for offset, score in chunks
        )
        return _largest(checked, kept, n)

    # ----------------------------------------------------------------- reporting
    def active_counts(self) -> dict[str, int]:
        """Active entries of each target, by name."""
        return {t.name: int(t.active_positions().numel()) for t in self.targets}

    def achieved_sparsity(self) -> float:
        """Fraction of zero entries over all targets (the requested ``sparsity``, up to rounding)."""
        total = sum(t.numel for t in self.targets)
        return 1.0 - sum(self.active_counts().values()) / total

    def run_settings(self) -> dict:
        """The settings that decide the masks and the layout of the sparse state, which a resumed
        controller must share (a run's length, ``total_steps``, may change: ρ_t then follows the new
        length from the resumed iteration on)."""
        return {
            "sparsity": self.sparsity,
            "backend": self.backend,
            "update_interval": self.update_interval,
            "schedule": self.schedule,
            "rho0": self.rho0,
            "rho_min": self.rho_min,
            "t_end": self.t_end,
            "growth": self.growth,
            "optimizer_state": self.optimizer_state,
            "skip_zero_gradient": self.skip_zero_gradient,
        }

    def state_dict(self) -> dict:
        """Iteration, RNG, update log and run settings; masks and positions live in the model's
        state dict."""
        return {
            "iteration": self.iteration,
            "generator": self.generator.get_state(),
            "updates": self.updates,
            "settings": self.run_settings(),
            "total_steps": self.total_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restores :meth:`state_dict`; refuses a state saved under other :meth:`run_settings`."""
        # a model's state dict or {} failed with a bare KeyError: 'iteration'
        if not isinstance(state, Mapping):
            raise ValueError(
                f"not a DSL controller's state (a dict, its state_dict()): got {type(state).__name__}"
            )
        missing = [key for key in ("iteration", "generator", "updates") if key not in state]
        if missing:
            raise ValueError(f"not a DSL controller's state (its state_dict()): it lacks {missing}")
        iteration = state["iteration"]
        if not (is_count(iteration) and iteration >= 0):  # -1 resumed, and moved every update by one
            raise ValueError(
                f"not a DSL controller's state (its state_dict()): its iteration is {iteration!r}, where a "
                "controller counts from 0"
            )
        ours = self.run_settings()
        # a setting of another (newer) version failed with a bare KeyError: it may decide the masks
        unknown = sorted(set(state.get("settings", {})) - set(ours))
        if unknown:
            raise ValueError(
                f"cannot resume this DSL controller: its state was saved with settings this version does "
                f"not know ({', '.join(map(str, unknown))}; known: {', '.join(ours)})"
            )
        for key, saved in state.get("settings", {}).items():  # older states recorded none
            if saved != ours.get(key):
                raise ValueError(f"cannot resume this DSL controller: {key} was {saved!r}, now {ours[key]!r}")
        if state.get("total_steps", self.total_steps) != self.total_steps:
            log.warning(
                "DSL resumed with total_steps %d (saved: %d): ρ_t follows the new length from iteration %d",
                self.total_steps, state["total_steps"], state["iteration"],
            )  # fmt: skip
        self.iteration = state["iteration"]
        # a checkpoint mapped to a GPU (Trainer.load) brings the CPU generator's state there too
        self.generator.set_state(state["generator"].cpu())
        self.updates = list(state["updates"])
        # the optimizer steps counted since the saved iteration are not the resumed run's: a trainer resumed
        # in the process it was interrupted in, between optimizer.step() and dsl.step(), warned at its first
        # step that the optimizer "stepped twice without a dsl.step() between"
        self._steps_unseen = self._steps_since_update = 0
        self._found_inf = None
        for target in self.targets:
            if isinstance(target, _TableTarget):
                target.table.positions_changed()
        self._set_probe()

    @torch.no_grad()
    def dense_state_dict(self) -> dict[str, Tensor]:
        """The model's ``state_dict`` in the layout it had before this controller, to serve the trained
        model with its own class built without DSL (or to train it on dense): each sparse table's and
        sparse linear layer's ``values`` and ``positions`` become its dense ``weight``, zero at inactive
        entries, and the masks of masked targets are left out."""
        tables = {id(target.table) for target in self.targets if isinstance(target, _TableTarget)}
        masks: dict[int, list[str]] = {}
        for target in self.targets:
            if isinstance(target, _MaskedTarget):
                masks.setdefault(id(target.module), []).append(target.mask_name)
        dense: dict[str, tuple[str, Tensor] | None] = {}  # key of the sparse state: what replaces it
        for name, module in self.model.named_modules(remove_duplicate=False):
            prefix = f"{name}." if name else ""
            if isinstance(module, SparseLinear) and id(module.sparse_weight) in tables:
                dense[f"{prefix}sparse_weight.values"] = (f"{prefix}weight", module.weight)
                dense[f"{prefix}sparse_weight.positions"] = None
            elif (
                isinstance(module, SparseEmbedding)
                and id(module) in tables
                and f"{prefix}values" not in dense  # not a SparseLinear's table, visited after its layer
            ):
                dense[f"{prefix}values"] = (f"{prefix}weight", module.to_dense())
                dense[f"{prefix}positions"] = None
            for mask_name in masks.get(id(module), ()):
                dense[f"{prefix}{mask_name}"] = None
        state = {}
        for key, value in self.model.state_dict().items():
            replacement = dense.get(key, (key, value))
            if replacement is not None:
                state[replacement[0]] = replacement[1]
        return state

    def __getstate__(self) -> dict:
        # the handle of a hook an optimizer does not pickle (torch's keep no hooks)
        return {**self.__dict__, "_mask_hook": None, "_start_hook": None}

    def __setstate__(self, state: dict) -> None:
        """Unpickles (``copy.deepcopy``, ``torch.load``) with its hooks in place: a copy of an optimizer
        or a parameter leaves them behind, so the copy's optimizer steps would go unseen (and masked
        weights unmasked until ``step()``) and a masked target would record no growth gradient."""
        # a controller pickled before remove() or the optimizer's step pre-hook existed
        self.__dict__.update({"_removed": False, "_start_hook": None, "_step_started": False, **state})
        if self.optimizer is not None:
            self._hook_optimizer()
        self._set_probe()

    def __repr__(self) -> str:
        # where the run stands (iteration of total_steps), as Trainer's repr gives its epoch
        return (
            f"{self.__class__.__name__}(sparsity={self.sparsity}, targets={[t.name for t in self.targets]}, "
            f"iteration={self.iteration}/{self.total_steps}, update_interval={self.update_interval}, "
            f"schedule={self.schedule!r}, growth={self.growth!r}, backend={self.backend!r})"
        )


def _without_zero_growth(
    active: Tensor, pruned: Tensor, grown: Tensor, score: Tensor
) -> tuple[Tensor, Tensor]:
    """The largest ``k`` such that the ``k`` smallest of ``pruned`` (indices into ``active``, smallest
    magnitude first) can be swapped for ``k`` of ``grown`` with a non-zero score, best first.

    Pruning fewer leaves ``pruned[k:]`` active, so grown positions among them no longer count."""
    positive = score > 0
    # stable: among equal scores, the lower position first, as growth chose them
    live = grown[positive][score[positive].argsort(descending=True, stable=True)]
    k = min(pruned.numel(), live.numel())
    while True:
        candidates = live[~torch.isin(live, active[pruned[k:]])]
        if candidates.numel() >= k:
            return pruned[:k], candidates[:k]
        k = candidates.numel()


#: The classes the sparse and compact backends replace, each with the parameters that the sparse module in
#: its place holds: a module holding anything else (a subclass's own methods, parameters, buffers, submodules
#: or attributes) would lose it.
_REPLACED_CLASSES = {
    nn.Embedding: ("weight",),
    nn.Linear: ("weight", "bias"),
    DenseEmbedding: ("weight",),
    EmbeddingTable: ("weight",),  # a table of one's own, whose lookup a sparse table would not do
}


def _check_replaceable(name: str, module: nn.Module) -> None:
    """A :class:`SparseEmbedding` is a plain lookup and a :class:`SparseLinear` a plain product:
    replacing a module that does more would silently drop it (a padding row would train, a subclass's
    own ``forward`` or ``reset_parameters``, a parametrization or a hook would no longer run, its extra
    parameters, buffers and attributes would be gone)."""
    used = []
    # torch's parametrization swaps in a subclass of the module's class, whose members are its own
    cls = type(module).__bases__[0] if parametrize.is_parametrized(module) else type(module)
    if isinstance(module, nn.Embedding):
        defaults = {"padding_idx": None, "max_norm": None, "scale_grad_by_freq": False, "sparse": False}
        used += [
            f"{option}={getattr(module, option)!r}"
            for option, default in defaults.items()
            if getattr(module, option) is not default
        ]
    base = next(ancestor for ancestor in cls.__mro__ if ancestor in _REPLACED_CLASSES)
    used += _own_members(cls, base)
    if parametrize.is_parametrized(module):
        used.append("a parametrization")
    else:  # a parametrization is held in a submodule of its own, named above
        used += [f"submodule {child!r}" for child, _ in module.named_children()]
    kept = _REPLACED_CLASSES[base]
    used += [f"parameter {p!r}" for p, _ in module.named_parameters(recurse=False) if p not in kept]
    used += [f"buffer {b!r}" for b, _ in module.named_buffers(recurse=False)]
    plain = _plain_attributes(base)
    used += [f"attribute {a!r}" for a in vars(module) if not (a.startswith("_") or a in plain)]
    hooks = {
        "forward pre-hooks": module._forward_pre_hooks,
        "forward hooks": module._forward_hooks,
        "backward hooks": module._backward_hooks,
        "backward pre-hooks": module._backward_pre_hooks,
    }
    used += [kind for kind, registered in hooks.items() if registered]
    if used:
        kind = f"an nn.{cls.__name__}" if cls in (nn.Embedding, nn.Linear) else f"a {cls.__name__}"
        replacement = "linear layer" if isinstance(module, nn.Linear) else "table"
        raise ValueError(
            f"{name!r} is {kind} with {', '.join(used)}, which a sparse {replacement} in its place "
            "would drop: use backend='masked' (which masks the module in place) or a module without them"
        )


# What every class statement defines (bar the constructor, whose state is checked on the module, and the
# repr): any other dunder a subclass defines (``__call__``, ``__getattr__``, ...) changes what it does.
_PLAIN_DUNDERS = frozenset(
    {
        "__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__annotations__", "__annotate__",
        "__firstlineno__", "__static_attributes__", "__orig_bases__", "__parameters__", "__type_params__",
        "__abstractmethods__", "__init__", "__repr__", "__str__", "__constants__",
    }
)  # fmt: skip


def _own_members(cls: type, base: type) -> list[str]:
    """What ``cls`` and the classes it inherits before ``base`` define (a subclass's methods: ``forward``,
    ``reset_parameters``, ``__call__``, ...), bar the constructor, whose state is checked on the module,
    and the repr."""
    mro = cls.__mro__
    own = {  # dict keys: each name once, in the order the classes define them
        member: None
        for ancestor in reversed(mro[: mro.index(base)])
        for member in vars(ancestor)
        if member != "extra_repr" and member not in _PLAIN_DUNDERS
    }
    return [f"its own {m}()" if callable(getattr(cls, m)) else f"its own attribute {m!r}" for m in own]


@functools.cache
def _plain_attributes(base: type) -> frozenset[str]:
    """The attributes of an instance of ``base`` itself (made on the meta device: no memory, no draws from
    torch's generator); an :class:`EmbeddingTable`'s, which only its subclasses make, are its shape."""
    if base is EmbeddingTable:
        return frozenset(vars(nn.Module())) | {"num_embeddings", "embedding_dim"}
    with torch.device("meta"):
        return frozenset(vars(base(1, 1)))


def _check_choice(field: str, value: str, allowed: Sequence[str]) -> str:
    """``value``, one of ``allowed``, as a Python str (NumPy's ``np.str_`` too)."""
    if value not in allowed:
        raise ValueError(f"{field} must be one of {list(allowed)}, got {value!r}")
    return str(value)


def _check_int(field: str, value) -> int:
    """``value`` as a Python int (NumPy's integers too)."""
    # update_interval=2.5 passed the range checks and updated every 5 iterations, True every one
    if not is_count(value):
        raise ValueError(f"{field} must be an int, got {value!r}")
    return int(value)


def _select(model: nn.Module, patterns: list[str]) -> dict[str, object]:
    """Maps names to the tables (modules) and parameters the patterns pick."""
    if not patterns:
        raise ValueError("targets is empty: name 'tables' and/or regular expressions of parameter names")
    if not all(isinstance(pattern, str) for pattern in patterns):
        raise ValueError(f"targets must be 'tables' and/or regular expressions (strings), got {patterns!r}")
    selected: dict[str, object] = {}
    table_params: set[str] = set()
    # every name of a shared module or parameter: a regular expression of the second name of a tied
    # weight (out.weight, tied to emb.weight) "matched no parameter" in a list that left it out
    modules = list(model.named_modules(remove_duplicate=False))
    parameters = [name for name, _ in model.named_parameters(remove_duplicate=False)]
    sparse_linears = [name for name, module in modules if isinstance(module, SparseLinear)]
    for name, module in modules:
        if any(name.startswith(f"{layer}.") for layer in sparse_linears):
            continue  # a SparseLinear's weight is a layer's weight, not an embedding table
        if isinstance(module, TABLE_MODULES):
            # its weight alone: what a parametrization, weight norm or torch's pruning computes it from
            # (weight_orig) is a parameter of its own, masked where it is
            table_params.add(f"{name}.weight" if name else "weight")
            if TABLES in patterns:
                selected[name] = module
    for pattern in patterns:
        if pattern == TABLES:
            if not table_params:  # named after a regular expression, it was then passed over, silently
                # a dslgraph.nn model names what dslgraph train picks
                own = getattr(model, "dsl_targets", None)
                hint = (
                    f"; this model's own targets are targets=list(model.dsl_targets) = {list(own)}"
                    if own and TABLES not in own  # a model of one's own keeps Recommender's ("tables",)
                    else ""
                )
                raise ValueError(
                    "targets include 'tables' but the model has no embedding table (an nn.Embedding, "
                    "nn.EmbeddingBag or EmbeddingTable): name a table held as a bare parameter by regular "
                    f"expression; parameters are {parameters}{hint}"
                )
            continue
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"target {pattern!r} is not a regular expression: {exc}") from None
        hits = [n for n in parameters if regex.fullmatch(n)]
        if not hits:
            raise ValueError(f"target {pattern!r} matches no parameter; parameters are {parameters}")
        for name in hits:
            if isinstance(model.get_parameter(name), nn.parameter.UninitializedParameter):
                raise ValueError(
                    f"{name!r} is not initialised yet (a lazy layer, such as PyG's Linear(-1, ...)): run "
                    "the model on one batch before building DynamicSparseLearning, so that it has a shape"
                )
            owner_name = name.rpartition(".")[0]
            owner = model.get_submodule(owner_name)
            # a SparseLinear's values too, as its table: masking them would sparsify a model again
            if name in table_params or isinstance(owner, SparseEmbedding):
                selected[owner_name] = owner
            else:
                selected[name] = model.get_parameter(name)
    # a tensor tied under two names (an input embedding and an output layer) is one target: a mask
    # for each name would leave active only the entries both masks keep
    first_name: dict[int, str] = {}
    for name, obj in selected.items():
        first_name.setdefault(id(obj.weight if isinstance(obj, nn.Module) else obj), name)
    return {name: selected[name] for name in first_name.values()}


def _shape(obj) -> tuple[int, ...]:
    # a scalar counts as (1,): ERK's (rows + cols) / numel would give it 0, and the budgets a division by 0
    return tuple(obj.weight.shape) if isinstance(obj, nn.Module) else tuple(obj.shape) or (1,)


def _densities(selected: dict[str, object], density: float, distribution: str) -> dict[str, float]:
    """Per-tensor densities: the same everywhere, or ERK budgets with the same total."""
    if distribution == "uniform":
        return {name: density for name in selected}
    shapes = {name: _shape(obj) for name, obj in selected.items()}
    numel = {name: math.prod(shape) for name, shape in shapes.items()}
    raw = {name: sum(shape) / numel[name] for name, shape in shapes.items()}
    budget = density * sum(numel.values())
    dense: set[str] = set()
    while True:
        free = [n for n in selected if n not in dense]
        if not free:  # density 1: the budget covers every tensor
            return dict.fromkeys(selected, 1.0)
        scale = (budget - sum(numel[n] for n in dense)) / sum(raw[n] * numel[n] for n in free)
        over = [n for n in free if raw[n] * scale > 1]
        if not over:
            return {n: 1.0 if n in dense else raw[n] * scale for n in selected}
        dense.update(over)


def _check_finite(values: Tensor, what: str, name: str, iteration: int) -> Tensor:
    """Refuses to rank NaN or infinite ``values`` (returned as they are): ``topk`` puts NaN first, so NaN
    gradients would be grown before every other entry and NaN weights never pruned, and the run would
    train on."""
    if not torch.isfinite(values).all():
        raise FloatingPointError(
            f"DSL update at iteration {iteration}: {name!r} has non-finite {what} (training diverged: a "
            "lower learning rate, or a loss that cannot overflow)"
        )
    return values


def _largest(chunks: Iterable[tuple[int, Tensor]], excluded: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The flat positions of the ``n`` largest scores outside sorted ``excluded``, in increasing order, and
    their scores; among equal scores the lowest positions win, so the choice is the same however the
    scores are cut into chunks (the masked backend's one, a sparse table's blocks of rows).

    ``chunks`` are ``(first flat position, scores)`` pairs in increasing order of position, together
    covering the tensor, with at least ``n`` positions not excluded. One chunk and at most ``2n`` other
    candidates exist at once: candidates pile up until they pass ``2n`` and are then cut to the ``n``
    best, whose worst score is from then on a threshold that a later chunk's entry must beat to become
    a candidate at all (an equal one comes at a higher position, and loses). A ``topk`` of the best so
    far and each block instead cost seconds an update at Amazon-book's size (36 blocks, ``n`` ≈ 0.93 M).
    """
    scores: list[Tensor] = []
    positions: list[Tensor] = []
    count = 0
    threshold = -math.inf
    for offset, score in chunks:
        # a copy, whose excluded entries become -inf; float64 stays float64 (in float32, distinct
        # gradients could tie)
        score = score.to(torch.promote_types(score.dtype, torch.float32), copy=True)
        lo, hi = torch.searchsorted(
            excluded, torch.tensor([offset, offset + score.numel()], device=excluded.device)
        )
        score[excluded[lo:hi] - offset] = -math.inf
        if score.numel() - int(hi - lo) > 2 * n:
            # more free entries than a cut would keep (a masked tensor's one chunk): cut the chunk
            # itself rather than gather all of it first
            index, _ = _best(score, n)
        else:
            index = (score > threshold).nonzero().squeeze(1)
        scores.append(score[index])
        positions.append(index + offset)
        count += index.numel()
        if count > 2 * n:
            best, where = _joined(scores), _joined(positions)
            index, threshold = _best(best, n)
            scores, positions, count = [best[index]], [where[index]], n
    best, where = _joined(scores), _joined(positions)
    if count > n:
        index, _ = _best(best, n)
        best, where = best[index], where[index]
    return where, best


def _smallest(magnitudes: Tensor, positions: Tensor, n: int) -> Tensor:
    """The indices of the ``n`` smallest ``magnitudes``, smallest first, the lowest ``positions`` first
    among equal ones: ``topk`` breaks ties its own way in the order it is given, which is slot order in
    a sparse table and position order in a masked tensor, so equal weights (zeros: a zero-initialised
    table, grown entries the loss never reached) were pruned differently by each backend."""
    threshold = magnitudes.kthvalue(n).values
    tied = (magnitudes == threshold).nonzero().squeeze(1)
    below = (magnitudes < threshold).nonzero().squeeze(1)
    tied = tied[positions[tied].argsort()[: n - below.numel()]]
    chosen = torch.cat([below, tied])
    chosen = chosen[positions[chosen].argsort()]
    return chosen[magnitudes[chosen].argsort(stable=True)]


def _best(score: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The indices of the ``n`` largest of ``score``, more than ``n`` of them finite (the lowest indices
    among equal ones), in increasing order, and the ``n``-th largest score."""
    threshold = score.kthvalue(score.numel() - n + 1).values
    take = score > threshold
    tied = (score == threshold).nonzero().squeeze(1)
    take[tied[: n - int(take.sum())]] = True
    return take.nonzero().squeeze(1), threshold


def _joined(parts: list[Tensor]) -> Tensor:
    # torch.cat copies even one tensor
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _random_excluding(numel: int, excluded: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """``n`` distinct positions in ``[0, numel)`` drawn uniformly, none in sorted ``excluded`` (distinct)."""
    free = numel - excluded.numel()
    if n > free:
        raise ValueError(f"cannot draw {n} distinct positions out of the {free} of {numel} not excluded")
    excluded = excluded.cpu()
    if excluded.numel() + n > numel // 2:
        # Rejection would mostly redraw excluded or chosen positions, for thousands of rounds near a
        # full tensor (density 0.999): permute the free positions instead, in memory of the order of
        # ``excluded`` and the result. Below this the draws are the rejection's of earlier versions.
        mask = torch.ones(numel, dtype=torch.bool)
        mask[excluded] = False
        positions = mask.nonzero().squeeze(1)
        return positions[torch.randperm(free, generator=generator)[:n]]
    chosen = torch.empty(0, dtype=torch.long)
    while chosen.numel() < n:
        draw = torch.randint(numel, (2 * (n - chosen.numel()) + 16,), generator=generator)
        if excluded.numel():
            pos = torch.searchsorted(excluded, draw).clamp_(max=excluded.numel() - 1)
            draw = draw[excluded[pos] != draw]
        chosen = torch.unique(torch.cat([chosen, draw]))
    return chosen[torch.randperm(chosen.numel(), generator=generator)[:n]]


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    # a reference held outside the module tree (a plain list, a variable taken before the controller)
    # would go on running the replaced module, whose parameters the optimizer no longer holds; one whose
    # weight is read (torch.cat([t.weight for t in tables])), not called, is refused at the backward pass
    replaced = getattr(parent, child)
    replaced.register_forward_pre_hook(functools.partial(_replaced_module_called, name))
    replaced.weight.register_hook(_replaced_weight_hook(name, type(replaced).__name__))
    setattr(parent, child, module)


def _replaced_module_called(name: str, module: nn.Module, args) -> None:
    """Forward pre-hook of a module DSL replaced by a sparse one: refuses to run it."""
    raise RuntimeError(_replaced_module_used(name, type(module).__name__, "was called"))


def _replaced_weight_hook(name: str, kind: str):
    """A gradient hook for the weight of a module DSL replaced by a sparse one: refuses the gradient (a
    closure, which torch.save passes over as it passes over the masked targets' hooks)."""

    @torch.utils.hooks.unserializable_hook
    def hook(grad: Tensor) -> None:
        raise RuntimeError(_replaced_module_used(name, kind, "had its weight read in the loss"))

    return hook


def _replaced_module_used(name: str, kind: str, how: str) -> str:
    return (
        f"the {kind} {name!r}, which DynamicSparseLearning replaced by a sparse module, {how}: something "
        "holds it outside the model's module tree (a plain list or dict, a variable taken before the "
        "controller, another model), where it would run dense, apart from the sparse module the model "
        f"trains; use nn.ModuleList / nn.ModuleDict, or read model.{name} after building the controller "
        "(and copy.deepcopy a module to keep dense before building it)"
    )
