"""Trains with one experimental DSL variant that dslgraph does not offer as an option, to test an
idea about why sparse tables trail a dense one (docs/results.md §2, "what does not close the gap").

    python benchmarks/dsl_variants.py row-balanced train --dataset lastfm --sparsity 0.8 ...
    python benchmarks/dsl_variants.py prefix train --dataset lastfm --sparsity 0.8 ...
    python benchmarks/dsl_variants.py degree-init train --dataset lastfm --sparsity 0.8 ...
    python benchmarks/dsl_variants.py degree-exponent=0.25 train --dataset lastfm --mask-init degree ...
    python benchmarks/dsl_variants.py probe-batches=10 train --dataset lastfm --sparsity 0.8 ...
    python benchmarks/dsl_variants.py fresh-adam train --dataset lastfm --sparsity 0.8 ...
    python benchmarks/dsl_variants.py grown-boost=2 train --dataset lastfm --sparsity 0.8 ...

Everything after the variant name is a ``dslgraph`` command line. Variants:

* ``row-balanced``: every prune-and-grow keeps each row's count of active entries: it prunes
  ``ceil(rho_t x count)`` smallest entries of each row and grows as many in the same row by largest
  dense gradient (embedding tables only).
* ``prefix``: every row is active on a prefix of its columns (widths drawn from an exponential law
  with the table's mean width), and prune-and-grow keeps it so: rows lose their tails and grow the
  columns right after their end, so users and items always share their first columns.
* ``scaled-init``: a table's initial active values are multiplied by ``1 / sqrt(density)``, so that
  each row starts with the norm a dense row would have (sparse initialisations that keep the
  variance of a layer's output, as in the literature on sparse training from scratch).
* ``degree-init``: the initial mask gives each row of LightGCN's table (users, then items) a number of
  active entries proportional to ``(degree + 1) ** 0.5`` (clipped to [1, d], the table's count kept),
  at random columns: the allocation DSL itself learns, where active entries follow a node's degree
  (docs/results.md §2), given from the start.
  (The same counts on each row's first columns, which the 12th session's runs tried as a variant
  ``degree-prefix``, are now an option: ``--mask-init degree``.)
* ``accumulated-gradient`` (``--backend masked`` only): gradient growth by the gradient summed over
  every iteration since the last update (about the gradient of the whole training loss, where the
  engine uses the one batch before the update, and Adam's first moment, ``--growth momentum``, an
  average over the last ~10 batches).
* ``probe-batches=K``: the iteration whose gradient DSL grows by (the one just before an update)
  trains on ``K`` batches at once, its own and ``K - 1`` more from a second pass over the epoch's
  batches, in one mean loss (a step of the usual scale): a gradient over ``K`` times the data that
  the sparse backend records as it does one batch's. Iterations per epoch and schedules unchanged.
* ``fresh-adam`` (``--optimizer-state reset``, Adam): a grown entry restarts Adam as a new parameter
  would, its bias correction counted from its own first step. ``reset`` zeroes its moments, but torch's
  Adam keeps one step count per tensor, whose corrections are about 1 late in training: a grown entry's
  first steps then divide a moment of a few gradients by the root of ~0.1% of one (β₂ = 0.999), steps
  several times ``lr`` (up to ~6.5× for a steady gradient, ~3× after 100 steps) where a new parameter's
  are ``lr``. This variant rewrites the step of every entry grown since the optimizer started as Adam
  with the entry's own step count would make it.
* ``grown-boost=B`` (``--optimizer-state reset``, Adam): the engine's steps, with each grown entry's step
  multiplied by ``B`` until the next update (``update_interval`` steps after it was grown): whether the
  larger steps that ``fresh-adam`` takes out are what grown entries need, and more of them better.
* ``grown-grace`` (``--optimizer-state reset``, Adam): the engine, except that an update never prunes
  the entries the previous one grew (the others are pruned in their place): whether grown entries
  lose by being pruned before they have grown.
* ``degree-exponent=A``: ``--mask-init degree`` (and ``degree-init``) with widths proportional to
  ``(degree + 1) ** A`` instead of ``** 0.5`` (``A = 0`` is the aligned mask's equal widths; larger
  ``A`` gives busy rows more of the budget).

(The aligned initial mask these experiments started from is now an option: ``--mask-init aligned``.)
"""

from __future__ import annotations

import math
import sys

import torch

import dslgraph.cli
import dslgraph.sparse.embedding
from dslgraph.cli import main
from dslgraph.nn.base import node_degrees
from dslgraph.sparse import DynamicSparseLearning, SparseEmbedding
from dslgraph.sparse.embedding import degree_widths, prefix_positions
from dslgraph.sparse.table import init_table_


@torch.no_grad()
def row_balanced_update(dsl: DynamicSparseLearning) -> dict:
    rho = dsl.update_fraction()
    record = {"iteration": dsl.iteration, "rho": rho, "changed": {}}
    for target in dsl.targets:
        table = target.table  # embedding tables only
        d = table.embedding_dim
        rows = table.positions // d
        counts = torch.bincount(rows, minlength=table.num_embeddings)
        per_row = torch.ceil(rho * counts.float()).long()
        magnitude = table.values.detach().abs()
        # group by row, smallest magnitude first within a row
        order = torch.argsort(rows.double() * 4 + 2 * magnitude.double() / magnitude.max().clamp_min(1e-30))
        rank = torch.arange(rows.numel()) - (counts.cumsum(0) - counts)[rows[order]]
        prune = rank < per_row[rows[order]]
        pruned = order[prune]
        active = torch.zeros(table.num_embeddings * d, dtype=torch.bool)
        active[table.positions[order[~prune]]] = True
        grown = []
        for start, block in table.dense_grad_chunks(dsl.chunk_rows):
            r = block.size(0)
            score = block.abs().masked_fill(active[start * d : (start + r) * d].view(r, d), -math.inf)
            best = score.argsort(dim=1, descending=True)
            row, k = (torch.arange(d) < per_row[start : start + r, None]).nonzero(as_tuple=True)
            grown.append((row + start) * d + best[row, k])
        # pruned slots and grown positions are both listed row by row, with equal counts per row
        dsl.replace_entries(target, pruned, torch.cat(grown))
        record["changed"][target.name] = int(pruned.numel())
    dsl.updates.append(record)
    return record


def prefix_reset(table: SparseEmbedding, generator: torch.Generator | None = None) -> None:
    """Each row active on its first ``w_r`` columns, widths drawn from an exponential law with the
    table's mean width (clipped to [1, d]), so that a few rows are full width and no column is dead."""
    n, d, nnz = table.num_embeddings, table.embedding_dim, table.nnz
    draw = torch.empty(n).exponential_(generator=generator)
    widths = (draw * nnz / draw.sum()).round().long().clamp(1, d)
    while int(widths.sum()) != nnz:  # fix the rounding: add or remove one column at a time
        gap = nnz - int(widths.sum())
        room = widths < d if gap > 0 else widths > 1
        pick = room.nonzero().squeeze(1)[torch.randperm(int(room.sum()), generator=generator)[: abs(gap)]]
        widths[pick] += 1 if gap > 0 else -1
    positions = prefix_positions(widths, d)
    dense = init_table_(torch.empty(n, d), table.init, table.std)
    with torch.no_grad():
        table.positions.copy_(positions)
        table.values.copy_(dense.view(-1)[positions])
    table.positions_changed()


@torch.no_grad()
def prefix_update(dsl: DynamicSparseLearning) -> dict:
    """Prune-and-grow that keeps every row a prefix of columns: prune row tails (a tail entry's score
    is the largest magnitude from it to the row's end), grow the columns right after a row's end (a
    column's score is the smallest gradient from the row's end to it)."""
    rho = dsl.update_fraction()
    record = {"iteration": dsl.iteration, "rho": rho, "changed": {}}
    for target in dsl.targets:
        table = target.table
        n_rows, d = table.num_embeddings, table.embedding_dim
        n = math.ceil(rho * table.nnz)
        cols = torch.arange(d, dtype=torch.float64)
        tie = 1e-9 * cols  # among equal scores, the farther column goes first / comes last
        magnitude = torch.full((n_rows * d,), -math.inf, dtype=torch.float64)
        magnitude[table.positions] = table.values.detach().abs().double()
        tail_max = magnitude.view(n_rows, d).flip(1).cummax(1).values.flip(1) - tie
        score = tail_max.view(-1)[table.positions]
        pruned = score.topk(n, largest=False).indices
        width = torch.bincount(table.positions // d, minlength=n_rows)
        width -= torch.bincount(table.positions[pruned] // d, minlength=n_rows)
        best_score, best_pos = torch.empty(0, dtype=torch.float64), torch.empty(0, dtype=torch.long)
        for start, block in table.dense_grad_chunks(dsl.chunk_rows):
            r = block.size(0)
            inside = cols.unsqueeze(0) < width[start : start + r].unsqueeze(1)
            run_min = block.abs().double().masked_fill(inside, math.inf).cummin(1).values - tie
            run_min = run_min.masked_fill(inside, -math.inf).view(-1)
            top = run_min.topk(min(n, run_min.numel()))
            best_score = torch.cat([best_score, top.values])
            best_pos = torch.cat([best_pos, top.indices + start * d])
            keep = best_score.topk(min(n, best_score.numel())).indices
            best_score, best_pos = best_score[keep], best_pos[keep]
        dsl.replace_entries(target, pruned, best_pos)
        record["changed"][target.name] = n
    dsl.updates.append(record)
    return record


def use_prefix() -> None:
    SparseEmbedding.reset_parameters = prefix_reset
    from_dense = SparseEmbedding.from_dense.__func__

    def prefixed(cls, weight, density=None, *args, **kwargs):
        table = from_dense(cls, weight, density, *args, **kwargs)
        if density is not None:  # DSL's initial mask: from_dense draws its own, not by reset_parameters
            prefix_reset(table)
            with torch.no_grad():  # the values the dense table holds there, as from_dense keeps
                table.values.copy_(weight.detach().reshape(-1).to(table.values)[table.positions])
        return table

    SparseEmbedding.from_dense = classmethod(prefixed)
    DynamicSparseLearning.update = prefix_update


def use_scaled_init() -> None:
    from_dense = SparseEmbedding.from_dense.__func__

    def scaled(
        cls, weight, density=None, generator=None, mask_init="random", propagation="planned", row_degree=None
    ):
        table = from_dense(cls, weight, density, generator, mask_init, propagation, row_degree)
        if density is not None:
            with torch.no_grad():
                table.values.mul_(table.density() ** -0.5)
        return table

    SparseEmbedding.from_dense = classmethod(scaled)


def use_degree_init() -> None:
    degree = {}
    load_data, from_dense = dslgraph.cli.load_data, SparseEmbedding.from_dense.__func__

    def load_and_count(settings):
        data = load_data(settings)
        degree["rows"] = node_degrees(data)
        return data

    def allocated(
        cls, weight, density=None, generator=None, mask_init="random", propagation="planned", row_degree=None
    ):
        table = from_dense(cls, weight, density, generator, mask_init, propagation, row_degree)
        if density is None:
            return table
        rows, cols = weight.shape
        if rows != degree["rows"].numel():
            raise SystemExit(
                f"degree-init needs one table of users and items ({degree['rows'].numel()} rows), got {rows}"
            )
        counts = degree_widths(degree["rows"], table.nnz, cols)
        order = torch.rand(rows, cols, generator=generator).argsort(dim=1)
        chosen = torch.arange(cols) < counts.unsqueeze(1)
        mask = torch.zeros(rows, cols, dtype=torch.bool).scatter_(1, order, chosen)
        positions = mask.view(-1).nonzero().squeeze(1)
        with torch.no_grad():
            table.positions.copy_(positions)
            table.values.copy_(weight.reshape(-1)[positions])
        table.positions_changed()
        return table

    dslgraph.cli.load_data = load_and_count
    SparseEmbedding.from_dense = classmethod(allocated)


def use_accumulated_gradient() -> None:
    from dslgraph.sparse import dsl as engine

    def probe_always(target, on: bool) -> None:
        # the engine probes only the batch before an update; this sums every backward since the last one
        if target._hook is None:
            target._hook = target.param.register_hook(target._record)

    engine_update = DynamicSparseLearning.update

    def update_then_restart(dsl: DynamicSparseLearning) -> dict:
        foreign = [t.name for t in dsl.targets if not isinstance(t, engine._MaskedTarget)]
        if foreign:
            raise SystemExit(f"accumulated-gradient needs --backend masked (dense gradients): {foreign}")
        record = engine_update(dsl)
        for target in dsl.targets:
            target.grad = None  # the next window starts here
        return record

    engine._MaskedTarget.set_probe = probe_always
    DynamicSparseLearning.update = update_then_restart


class ProbeBatches:
    """The trainer's batches, with the batch of each iteration before a DSL update concatenated with
    ``k - 1`` more drawn from a second iterator over the same batches (restarted when exhausted)."""

    def __init__(self, batches, dsl: DynamicSparseLearning, k: int) -> None:
        self.batches, self.dsl, self.k = batches, dsl, k
        self.extra = iter(())

    def __len__(self) -> int:
        return len(self.batches)

    def _draw(self):
        try:
            return next(self.extra)
        except StopIteration:
            self.extra = iter(self.batches)
            return next(self.extra)

    def __iter__(self):
        for batch in self.batches:
            # the hook steps after this batch's backward, so this batch is iteration dsl.iteration + 1
            if self.dsl.is_update_step(self.dsl.iteration + 1):
                more = [self._draw() for _ in range(self.k - 1)]
                batch = tuple(torch.cat(parts) for parts in zip(batch, *more))
            yield batch


def use_probe_batches(value: str) -> None:
    from dslgraph.train.trainer import Trainer

    try:
        k = int(value)
    except ValueError:
        raise SystemExit(f"probe-batches=K needs a whole number K, got {value!r}") from None
    if k < 1:
        raise SystemExit(f"probe-batches=K needs K >= 1, got {value!r}")
    train_epoch = Trainer.train_epoch

    def probing_epoch(trainer: Trainer) -> float:
        dsl = [hook for hook in trainer.hooks if isinstance(hook, DynamicSparseLearning)]
        if not dsl:
            return train_epoch(trainer)
        batches = trainer.batches
        trainer.batches = ProbeBatches(batches, dsl[0], k)
        try:
            return train_epoch(trainer)
        finally:
            trainer.batches = batches

    Trainer.train_epoch = probing_epoch


class GrownSteps:
    """Per-slot birth steps of one sparse table's values under Adam, and the rewrite of grown entries'
    steps after each optimizer step: Adam's bias correction for the entry's own age (``boost=None``,
    ``fresh-adam``), or the step Adam took times ``boost`` for entries grown at most ``window`` steps
    ago (``grown-boost``; no rewrite at ``boost=1``). Birth steps are not saved in checkpoints: a resumed run
    counts every entry as old."""

    def __init__(
        self, table: SparseEmbedding, optimizer: torch.optim.Optimizer, boost: float | None, window: float
    ) -> None:
        self.table, self.optimizer, self.boost, self.window = table, optimizer, boost, window
        self.born = torch.zeros(table.values.numel(), dtype=torch.long, device=table.values.device)
        self.before: torch.Tensor | None = None
        if boost != 1:  # grown-grace takes the engine's steps, to the last bit: nothing to rewrite
            optimizer.register_step_pre_hook(lambda *_: self.remember())
            optimizer.register_step_post_hook(lambda *_: self.rewrite())

    def steps(self) -> int:
        return int(self.optimizer.state.get(self.table.values, {}).get("step", 0))

    def remember(self) -> None:
        self.before = self.table.values.detach().clone()

    def restarted(self, slots: torch.Tensor) -> None:
        self.born[slots] = self.steps()

    def young(self) -> torch.Tensor:
        """Which slots hold an entry grown at most ``window`` steps ago."""
        return (self.born > 0) & (self.steps() - self.born <= self.window)

    @torch.no_grad()
    def rewrite(self) -> None:
        young = self.young().nonzero().squeeze(1)
        if not young.numel():
            return
        values, before = self.table.values, self.before[young]
        if self.boost is not None:
            values[young] = before + self.boost * (values[young] - before)
            return
        group = next(g for g in self.optimizer.param_groups if any(p is values for p in g["params"]))
        if group.get("weight_decay", 0) or group.get("amsgrad", False):
            raise SystemExit("fresh-adam rewrites plain Adam steps: no weight_decay, no amsgrad")
        beta1, beta2 = group["betas"]
        state = self.optimizer.state[values]
        k = (self.steps() - self.born[young]).double()
        m, v = state["exp_avg"][young].double(), state["exp_avg_sq"][young].double()
        step = group["lr"] * (m / (1 - beta1**k)) / ((v / (1 - beta2**k)).sqrt() + group["eps"])
        values[young] = (before.double() - step).to(values.dtype)


def use_grown_steps(boost: float | None = None, grace: bool = False) -> None:
    """``fresh-adam`` (``boost=None``), ``grown-boost=boost`` or ``grown-grace`` (``boost=1``, ``grace``)."""
    from dslgraph.sparse import dsl as engine

    attach, replace = DynamicSparseLearning.attach, engine._TableTarget.replace
    magnitudes = engine._TableTarget.active_magnitudes

    def attach_and_count(dsl: DynamicSparseLearning, optimizer) -> DynamicSparseLearning:
        if dsl.optimizer_state != "reset" or not isinstance(optimizer, torch.optim.Adam):
            raise SystemExit("fresh-adam, grown-boost and grown-grace need --optimizer-state reset and Adam")
        attach(dsl, optimizer)
        window = math.inf if boost is None else dsl.update_interval
        for target in dsl.targets:
            if isinstance(target, engine._TableTarget):
                target.grown_steps = GrownSteps(target.table, optimizer, boost, window)
        return dsl

    def replace_and_restart(target, pruned, grown, optimizer, reset_state) -> None:
        replace(target, pruned, grown, optimizer, reset_state)
        target.grown_steps.restarted(pruned)

    def magnitudes_but_young(target) -> torch.Tensor:
        # the largest finite value, not inf: the engine refuses to rank non-finite magnitudes
        largest = torch.finfo(target.table.values.dtype).max
        return magnitudes(target).masked_fill(target.grown_steps.young(), largest)

    DynamicSparseLearning.attach = attach_and_count
    engine._TableTarget.replace = replace_and_restart
    if grace:
        engine._TableTarget.active_magnitudes = magnitudes_but_young


def use_grown_boost(value: str) -> None:
    try:
        boost = float(value)
    except ValueError:
        raise SystemExit(f"grown-boost=B needs a number B, got {value!r}") from None
    if not math.isfinite(boost) or boost <= 0:
        raise SystemExit(f"grown-boost=B needs a finite B > 0, got {value!r}")
    use_grown_steps(boost)


VARIANTS = {
    "accumulated-gradient": use_accumulated_gradient,
    "degree-init": use_degree_init,
    "fresh-adam": use_grown_steps,
    "grown-grace": lambda: use_grown_steps(1.0, grace=True),
    "prefix": use_prefix,
    "row-balanced": lambda: setattr(DynamicSparseLearning, "update", row_balanced_update),
    "scaled-init": use_scaled_init,
}


def use_degree_exponent(value: str) -> None:
    try:
        exponent = float(value)
    except ValueError:
        raise SystemExit(f"degree-exponent=A needs a number A, got {value!r}") from None
    if not math.isfinite(exponent) or exponent < 0:
        raise SystemExit(f"degree-exponent=A needs a finite A >= 0, got {value!r}")
    dslgraph.sparse.embedding.DEGREE_EXPONENT = exponent  # read by degree_widths at each call


if __name__ == "__main__":
    variant, _, value = sys.argv[1].partition("=") if len(sys.argv) > 1 else ("", "", "")
    if variant == "degree-exponent":
        use_degree_exponent(value)
    elif variant == "probe-batches":
        use_probe_batches(value)
    elif variant == "grown-boost":
        use_grown_boost(value)
    elif variant in VARIANTS:
        VARIANTS[variant]()
    else:
        sys.exit(
            f"usage: dsl_variants.py {{{','.join(VARIANTS)},degree-exponent=A,grown-boost=B,probe-batches=K}}"
            " <dslgraph command line>"
        )
    sys.exit(main(sys.argv[2:]))
