"""The training loop: mini-batches, periodic ranking evaluation, checkpoints and resume."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import pickle
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from dslgraph.config import (
    FIELDS,
    OTHER_DEVICES,
    Field,
    check_settings,
    check_stop_after_epoch,
    default_monitor,
    naming_the_field_meant,
)
from dslgraph.data.graph import EDGE, data_fingerprint, num_users_items, propagation_graph
from dslgraph.data.io import write_then_rename
from dslgraph.data.protocols import training_users
from dslgraph.data.sampling import BPRBatches, UserBatches
from dslgraph.metrics.ranking import RankingEvaluator, eval_split, metric_names_hint
from dslgraph.metrics.sampled import SampledRankingEvaluator
from dslgraph.train.checkpoint import (
    CheckpointError,
    check_earlier_run,
    check_entries,
    load_checkpoint,
    load_model_state,
    load_optimizer_state,
    make_output_folder,
    remove_run_files,
    save_checkpoint,
)

log = logging.getLogger(__name__)


class TrainableModel(Protocol):
    """What the trainer asks of a model (every :class:`dslgraph.nn.base.Recommender` offers it).

    A :class:`torch.nn.Module` with ``loss(graph, *batch, reg_weight=...)``, a scalar, and
    ``scorer(graph)``, which returns ``score(users)``: fresh ``[B, num_items]`` scores (the evaluator
    overwrites seen items' in place), and ``score(users, items)``, ``[B, C]`` scores of candidates,
    where the data carries sampled negatives. The rest is optional: ``batch_kind`` (default
    ``"pairs"``), ``num_negatives`` (1), ``exclude_positives`` (True) and ``input_graph(data)``
    (default: :func:`~dslgraph.data.propagation_graph`; ``None`` for a model that needs no graph).
    """

    batch_kind: str
    num_negatives: int

    def input_graph(self, data: HeteroData): ...

    def loss(self, graph, *batch: Tensor, reg_weight: float) -> Tensor: ...

    def scorer(self, graph): ...


def _empty_split(split: str) -> ValueError:
    ratio = {"test": "test_ratio, --data-option test_ratio=R", "validation": "val_ratio, --val-ratio"}
    return ValueError(
        f"the {split} split of data holds no interaction: there is nothing to rank; hold some out "
        f"({ratio[split]})"
    )


class StepHook(Protocol):
    """Something run after every optimizer step, with checkpointed state (the DSL controller)."""

    def step(self) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@naming_the_field_meant
@dataclass
class TrainConfig:
    """Plain training settings, each described under Args (``help(TrainConfig)``), checked as they are made
    against the ranges of :data:`dslgraph.config.FIELDS`, as the CLI's are (``lr=0`` is allowed here).

    ``selection`` says which split picks the best epoch: ``"validation"`` when the data has one,
    otherwise ``"test"`` (the LightGCN/UltraGCN/DSL papers' protocol). NumPy scalars (``np.int64(5)`` from
    a grid) are taken where Python's numbers are, and kept as Python's. The settings of ``dslgraph train``
    that are no field here go elsewhere in Python (the model's arguments, ``load_dataset``'s,
    :class:`~dslgraph.sparse.DynamicSparseLearning`'s): one given here is refused naming its place.

    Args:
        epochs (int, optional): Epochs to train, at least 1. (default: :obj:`1000`)
        batch_size (int, optional): Training pairs (of a ``"pairs"`` model) or users (of a ``"users"``
            model: CDAE, MultVAE) per optimizer step. (default: :obj:`2048`)
        sampling (str, optional): How a pairs model's epoch draws its positives: ``"edge"`` (every training
            interaction once) or ``"user"`` (as many draws of a uniform user, then one of its items:
            LightGCN's sampler). (default: :obj:`"edge"`)
        lr (float, optional): The learning rate of the Adam that :class:`Trainer` makes, and its cosine
            schedule's start (an optimizer given to it keeps its own, and the schedule starts there).
            (default: :obj:`1e-3`)
        lr_schedule (str, optional): ``"none"`` (``lr`` throughout) or ``"cosine"`` (from ``lr`` down to
            ``lr_min`` over ``epochs`` times the batches of an epoch). (default: :obj:`"none"`)
        lr_min (float, optional): The cosine schedule's last learning rate. (default: :obj:`1e-4`)
        reg_weight (float, optional): The weight of the model's regulariser in its loss (LightGCN's L2 of
            the batch's embeddings; ignored by a model whose ``uses_reg_weight`` is False).
            (default: :obj:`1e-4`)
        eval_every (int, optional): Evaluates every this many epochs, and after the last.
            (default: :obj:`10`)
        eval_batch_size (int, optional): Users scored at once by an evaluation. (default: :obj:`2048`)
        ks (tuple of int, optional): The cut-offs :math:`K` of the metrics evaluated: ``recall@20``, ... at
            each (the CLI's default and the papers' cut-off; the evaluators of :mod:`dslgraph.metrics`
            default to ``(10, 20)``). (default: :obj:`(20,)`)
        monitor (str, optional): ``METRIC@K`` picking the best epoch, one of the metrics evaluated at one of
            ``ks``. :obj:`None` is the CLI's default: ``recall@K`` at the first of ``ks``, ``hr@K`` where the
            data ranks each test item among sampled negatives (leave-one-out); :class:`Trainer` settles
            it in ``trainer.config`` (so checkpoints and ``metrics.json`` name a metric), and a resumed run
            keeps the monitor its checkpoint records. (default: :obj:`None`)
        patience (int, optional): Stops after this many scheduled evaluations in a row without a gain in
            ``monitor`` (0: never). (default: :obj:`0`)
        seed (int, optional): Seeds the trainer's generator, which draws the batches (their order and
            negatives); the model's initialisation, the data's split and DSL's masks are seeded where they
            are made (``torch.manual_seed``, ``load_dataset``'s and ``DynamicSparseLearning``'s ``seed``),
            as the CLI's ``--seed`` does for all of them. (default: :obj:`2020`)
        max_seconds (float, optional): Stops at the end of the first epoch past this many seconds of
            training in one :meth:`Trainer.fit` call (0: no limit). (default: :obj:`0.0`)
        stop_after_epoch (int, optional): Stops at the end of this epoch, the learning rate's and DSL's
            schedules still laid out over ``epochs``, so that ``fit(resume=True)`` goes on as the
            uninterrupted run (0: train to ``epochs``). (default: :obj:`0`)
        checkpoint_every (int, optional): Also writes ``last.pt`` (not ``best.pt`` nor ``metrics.json``)
            every this many epochs between evaluations, where the trainer has an ``output_dir``, so that a
            run killed between them loses fewer epochs (0: at evaluations only). (default: :obj:`0`)
        compile (bool, optional): Trains with the model's loss compiled by :func:`torch.compile` (its
            default compiler, inductor, needs a C++ compiler on the CPU). (default: :obj:`False`)
        progress (bool, optional): Shows :mod:`tqdm` progress bars over each epoch's batches and each
            full-ranking evaluation's users. (default: :obj:`True`)
    """

    epochs: int = 1000
    batch_size: int = 2048
    sampling: str = "edge"
    lr: float = 1e-3
    lr_schedule: str = "none"
    lr_min: float = 1e-4
    reg_weight: float = 1e-4
    eval_every: int = 10
    eval_batch_size: int = 2048
    ks: tuple[int, ...] = (20,)
    monitor: str | None = None
    patience: int = 0
    seed: int = 2020
    max_seconds: float = 0.0
    stop_after_epoch: int = 0
    checkpoint_every: int = 0
    compile: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        # kept as the plain values checked (np.int64(5) as 5): metrics.json and checkpoints, which a resume
        # loads with weights_only=True, take no NumPy scalar; a run that updates nothing is fine from Python
        # (the CLI wants lr > 0)
        checked = check_settings(
            asdict(self), lr=replace(FIELDS["lr"], low_open=False), progress=Field(bool, True)
        )
        for name, value in checked.items():
            setattr(self, name, tuple(value) if name == "ks" else value)
        check_stop_after_epoch(self.stop_after_epoch, self.epochs, ValueError)


class Trainer:
    """Trains a recommender of :mod:`dslgraph.nn` on a :class:`HeteroData` interaction graph.

    Each epoch of a pairwise model (``batch_kind == "pairs"``) visits every training interaction
    once with fresh uniform negatives; each epoch of a user-batch model (``"users"``) visits every
    user with training interactions once. Users with ``data['user'].train_mask`` False (held-out
    users of :func:`~dslgraph.data.protocols.held_out_users`) are never trained on. Every
    ``eval_every`` epochs the model is ranked against the validation split (when present) and the
    test split, over all items or, when the data carries sampled negatives
    (:func:`~dslgraph.data.protocols.leave_one_out`), over the positive and its negatives; the
    best epoch by ``monitor`` is kept in ``best.pt``, the latest in ``last.pt``
    (both written atomically), and ``metrics.json`` summarises the run; every ``checkpoint_every``
    epochs between evaluations ``last.pt`` alone is written too. With ``resume=True`` a run
    continues from ``last.pt`` exactly where it stopped (RNG states included).

    Args:
        model: A model of :mod:`dslgraph.nn`, or any module that offers what :class:`TrainableModel` lists.
        data (HeteroData): Interactions in the layout of :mod:`dslgraph.data.graph`.
        config (TrainConfig): Settings, checked again and kept as a copy (``trainer.config``): a field set
            after the config was made is checked as one given to it. The arguments after it are keyword-only.
        output_dir (str, optional): Where checkpoints and ``metrics.json`` go (none when omitted); made
            here, where one that is a file or cannot be written to fails.
        device (str, optional): ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``. (default: :obj:`"auto"`)
        hooks (list, optional): :class:`StepHook` objects run after each optimizer step; one with an
            ``optimizer`` attribute still ``None`` (a DSL controller) is ``attach``-ed to the trainer's, one
            attached to another optimizer is refused, and one whose ``total_steps`` is not the run's
            (``config.epochs * len(make_batches(model, data, config))``) is warned of.
        optimizer (torch.optim.Optimizer, optional): Defaults to Adam at ``config.lr``.
        graph (optional): A prebuilt graph input (default: ``model.input_graph(data)``).
        metadata (dict, optional): Stored as is in every checkpoint (the CLI keeps its settings there): plain
            values, tensors, and lists, tuples and dicts of them, which a checkpoint reads back.
        overwrite (bool, optional): Whether a fresh :meth:`fit` may replace an earlier run's ``best.pt``,
            ``last.pt`` and ``metrics.json`` in ``output_dir`` (CLI: ``--overwrite``); they are removed as
            this run writes its first checkpoint, so a run that fails before it leaves them whole. Without
            it, such a folder is refused. (default: :obj:`False`)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        data: HeteroData,
        config: TrainConfig,
        *,  # Trainer(model, data, config, "cpu") made a folder "cpu" and trained on the automatic device
        output_dir: str | os.PathLike | None = None,
        device: str = "auto",
        hooks: list[StepHook] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        graph: Any = None,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        missing = [name for name in ("loss", "scorer") if not callable(getattr(model, name, None))]
        if missing:  # an AttributeError in the first batch, after the progress bar had started
            raise TypeError(
                f"Trainer trains models with loss(graph, *batch, reg_weight=...) and scorer(graph), as every "
                f"dslgraph.nn model has (TrainableModel), but {type(model).__name__} has no "
                f"{' or '.join(missing)}: add them in a subclass, or write the loop yourself, as "
                "examples/custom_gnn_dsl.py does for PyG's LightGCN"
            )
        if not isinstance(config, TrainConfig):  # a dict failed in dataclasses.replace, naming no argument
            hint = ": pass TrainConfig(**config)" if isinstance(config, Mapping) else ""
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}{hint}")
        self.metadata = check_metadata(metadata or {})
        self.device = resolve_device(device)
        # checked again, as a copy: a field set after the config was made (config.eval_every = 0) failed in
        # the training loop (a ZeroDivisionError), or not at all (epochs = -1 trained nothing)
        self.config = replace(config)
        self.model = model.to(self.device)
        # a torch.compile'd model's state names its tensors "_orig_mod.*": its checkpoints hold the
        # uncompiled model's, which every model (and `dslgraph eval`) loads back
        self._module = getattr(self.model, "_orig_mod", self.model)
        if self._module is not self.model and not config.compile:
            warnings.warn(
                "the model is a torch.compile wrapper, which compiles its forward only: the trainer calls "
                "model.loss and model.scorer, so the run is not compiled; pass the model itself with "
                "TrainConfig(compile=True) (dslgraph train --compile) to compile the loss",
                stacklevel=2,
            )
        self._compiled_loss = None  # config.compile's, made at the first epoch
        self.data = data
        self.num_users, self.num_items = num_users_items(data)
        self.data_fingerprint = data_fingerprint(data)  # a resume on other interactions is refused
        self.val_index = data[EDGE].get("val_edge_label_index")
        self._evaluators: dict[str, RankingEvaluator | SampledRankingEvaluator] = {}
        # bad ks, monitor or splits fail here, before a hook is attached or the output folder made, not after
        # the first eval_every epochs of training; an empty split first, the cause where data too small to
        # split has fewer items than ks too
        splits = dict.fromkeys((self.selection, "test"))
        for split in splits:
            held_out = data[EDGE].get("val_edge_label_index" if split == "validation" else "edge_label_index")
            if held_out is not None and held_out.numel() == 0:
                raise _empty_split(split)
        # the evaluator's refusal would name no setting
        if "test_negatives" not in data[EDGE] and max(config.ks) > self.num_items:
            raise ValueError(
                f"ks {config.ks} cut a ranking of the data's {self.num_items} items beyond its end: give ks "
                f"of at most {self.num_items} (TrainConfig.ks; CLI --ks, default {FIELDS['ks'].default[0]})"
            )
        evaluator = self._evaluator(self.selection)
        reported = evaluator.metric_names
        self._monitor_given = config.monitor is not None
        if not self._monitor_given:  # the CLI's default, settled where the protocol is known
            sampled = isinstance(evaluator, SampledRankingEvaluator)
            self.config.monitor = default_monitor(sampled, self.config.ks)
        elif config.monitor not in reported:
            hint = metric_names_hint([config.monitor], {name.partition("@")[0] for name in reported})
            raise ValueError(
                f"monitor {config.monitor!r} is not among the metrics evaluated, {reported}{hint}"
            )
        for split in splits:
            if self._evaluator(split).num_eval_users == 0:  # every metric would read 0, every epoch the best
                raise _empty_split(split)
        if graph is None:
            graph = model.input_graph(data) if hasattr(model, "input_graph") else propagation_graph(data)
        self.graph = graph.to(self.device) if hasattr(graph, "to") else graph
        self.optimizer = optimizer or make_adam(self.model.parameters(), config.lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.batches = make_batches(self.model, data, config, self.generator, self.device)
        self.total_steps = config.epochs * len(self.batches)
        self.scheduler = self._make_scheduler()
        self.hooks = hooks or []
        check_hooks(self.hooks, self.optimizer, self.total_steps, len(self.batches), config.epochs)
        for hook in self.hooks:
            if getattr(hook, "optimizer", False) is None:  # a DSL controller not yet given its optimizer
                hook.attach(self.optimizer)
        self.output_dir = make_output_folder(output_dir) if output_dir is not None else None
        self.overwrite = bool(overwrite)
        # an earlier run's files that this run's first checkpoint replaces; whether output_dir's run files
        # are this trainer's run (it wrote them, or loaded its state from them)
        self._replaced: list[str] = []
        self._own_folder = False
        self.epoch = 0
        self.train_seconds = 0.0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.bad_evals = 0

    def __repr__(self) -> str:
        output = f", output_dir='{self.output_dir}'" if self.output_dir is not None else ""
        return (
            f"Trainer(model={type(self._module).__name__}, epoch={self.epoch}/{self.config.epochs}, "
            f"device='{self.device}', hooks={[type(hook).__name__ for hook in self.hooks]}{output})"
        )

    @property
    def selection(self) -> str:
        """The split that picks the best epoch: ``"validation"`` where the data holds one, else
        ``"test"``."""
        return "validation" if self.val_index is not None else "test"

    def _make_scheduler(self):
        if self.config.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=max(self.total_steps, 1), eta_min=self.config.lr_min
            )
        return None  # "none", the only other schedule TrainConfig takes

    def _cosine_over(self, length: int) -> None:
        """Lays the resumed cosine learning rate out over ``length`` iterations from the current one
        on, as DSL's ρ_t is (a resumed run may have other ``epochs``)."""
        scheduler = self.scheduler
        if scheduler.T_max == length:
            return
        log.warning(
            "resumed with %d iterations in all (saved: %d): the cosine learning rate follows the new "
            "length from iteration %d", length, scheduler.T_max, scheduler.last_epoch,
        )  # fmt: skip
        scheduler.T_max = length
        progress = min(scheduler.last_epoch, length) / length
        low = scheduler.eta_min
        for group, base in zip(self.optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = low + (base - low) * (1 + math.cos(math.pi * progress)) / 2
        scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def train_epoch(self) -> float:
        """One pass over the training interactions; returns the mean loss."""
        self.model.train()
        losses, sizes = [], []  # read once per epoch: .item() per iteration would wait for the GPU each time
        bar = tqdm(
            self.batches, desc=f"epoch {self.epoch + 1}", leave=False, disable=not self.config.progress
        )
        loss_function = self._loss_function()
        for batch in bar:
            self.optimizer.zero_grad(set_to_none=True)
            loss = loss_function(self.graph, *batch, reg_weight=self.config.reg_weight)
            loss.backward()
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            for hook in self.hooks:
                hook.step()
            losses.append(loss.detach())
            sizes.append(batch[0].numel())
        # never empty: BPRBatches and UserBatches refuse training data without interactions or users
        total = float(torch.stack(losses).double().cpu() @ torch.tensor(sizes, dtype=torch.double))
        if not math.isfinite(total):
            raise FloatingPointError(
                f"training loss became {total} in epoch {self.epoch + 1}; lower the lr, or an initial scale "
                "or L2 weight set large (CLI: --init-std, --reg-weight)"
            )
        return total / sum(sizes)

    def _loss_function(self):
        """``model.loss``, compiled once by ``torch.compile`` where ``config.compile`` says: the bound method,
        so that the model, its state dict and the checkpoints stay the uncompiled model's."""
        if not self.config.compile:
            return self.model.loss
        if self._compiled_loss is None:
            self._compiled_loss = torch.compile(self.model.loss)
        return self._compiled_loss

    @torch.no_grad()
    def evaluate(self, split: str = "test") -> dict[str, float]:
        """Ranking metrics on ``"test"`` or ``"validation"`` (also ``"val"``); seen items are excluded."""
        split = "validation" if eval_split(split) == "val" else "test"
        if split == "validation" and self.val_index is None:
            raise ValueError("the data has no validation split; load it with val_ratio > 0")
        self.model.eval()
        return self._evaluator(split)(self.model.scorer(self.graph))

    def _evaluator(self, split: str) -> RankingEvaluator | SampledRankingEvaluator:
        if split not in self._evaluators:
            name = eval_split(split)  # the evaluators' name of the split
            sampled = f"{name}_negatives" in self.data[EDGE]
            # full ranking scores every item for every user (a bar, as an epoch has); 100 candidates each, no
            options = {} if sampled else {"progress": self.config.progress}
            evaluator = SampledRankingEvaluator if sampled else RankingEvaluator
            self._evaluators[split] = evaluator.from_data(
                self.data,
                name,
                ks=self.config.ks,
                batch_size=self.config.eval_batch_size,
                device=self.device,
                **options,
            )
        return self._evaluators[split]

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Trains until ``config.epochs``, early stopping, ``config.stop_after_epoch`` or
        ``config.max_seconds`` of training in this call; returns the summary. ``max_seconds`` is checked as
        each epoch ends, so an epoch that began under it ends past it: a checkpoint within an epoch could not
        resume as the uninterrupted run goes on (the epoch's batches, drawn as it begins, and the step counts
        of the schedules). A run stopped by ``stop_after_epoch`` or ``max_seconds`` resumes
        (``fit(resume=True)``) as the uninterrupted run goes on."""
        if resume:
            self.load(self._path("last.pt"))
        elif self.output_dir is not None and not self._own_folder:
            resume, afresh = "fit(resume=True)", "Trainer(..., overwrite=True) (CLI: --overwrite)"
            self._replaced = check_earlier_run(self.output_dir, self.overwrite, resume, afresh)
        cfg = self.config
        # max_seconds is this call's budget: a run it stopped, resumed under the same one, trains on for as
        # long again (against the time it has trained in all, it would stop after one more epoch)
        budget_start = self.train_seconds
        loss = None  # JSON null, where this call trained no epoch (NaN is not JSON)
        # a run that stopped early, resumed under the same patience, stays stopped: it would train eval_every
        # epochs more, which the uninterrupted run did not, and stop again
        last = min(cfg.stop_after_epoch or cfg.epochs, cfg.epochs)
        while self.epoch < last and not stopped_early(self.bad_evals, cfg.patience):
            started = time.perf_counter()
            loss = self.train_epoch()
            self.epoch += 1
            self.train_seconds += time.perf_counter() - started  # evaluation time not included
            log.info("epoch %d loss %.5f (%.1fs)", self.epoch, loss, self.train_seconds)
            due = self._evaluation_due()
            if due and self._record_evaluation(loss):
                log.info("early stop at epoch %d: no gain in %d evaluations", self.epoch, cfg.patience)
                break
            if cfg.max_seconds and self.train_seconds - budget_start >= cfg.max_seconds:
                log.info(
                    "stopping after %.1fs (max_seconds); %s", self.train_seconds - budget_start, self._resume
                )
                break
            # last.pt alone between evaluations; at this call's last epoch the stop's evaluation writes it
            checkpoint = cfg.checkpoint_every and self.epoch % cfg.checkpoint_every == 0
            if checkpoint and not due and self.epoch < last and self.output_dir is not None:
                self._save_run(new_best=False, evaluated=False)
        # not where patience stopped the run at the same epoch: that one does not resume
        if self.epoch == last < cfg.epochs and not stopped_early(self.bad_evals, cfg.patience):
            log.info("stopped after epoch %d of %d (stop_after_epoch); %s", last, cfg.epochs, self._resume)
        if not self.history or self.history[-1]["epoch"] != self.epoch:
            # on the schedule where a resume from a checkpoint_every last.pt trains nothing before it (epochs
            # set to its epoch): as an unscheduled one it picked no best, where the whole run's did
            self._record_evaluation(loss, scheduled=self._evaluation_due())
        return self.summary()

    def _evaluation_due(self) -> bool:
        """Whether the epoch just trained is evaluated on the schedule: every ``eval_every``-th, and the
        last."""
        return self.epoch % self.config.eval_every == 0 or self.epoch == self.config.epochs

    @property
    def _resume(self) -> str:
        """How a run stopped short goes on: a trainer without ``output_dir`` saved nothing to resume from."""
        if self.output_dir is None:
            return "no output_dir (CLI: --output) holds a checkpoint, so it cannot resume"
        return "resume to go on with fit(resume=True) (CLI: --resume)"

    def _record_evaluation(self, loss: float | None, scheduled: bool = True) -> bool:
        """Evaluates, saves checkpoints and returns whether early stopping triggers.

        An evaluation off the ``eval_every`` schedule (a ``max_seconds`` stop's) is recorded and
        checkpointed but neither picks the best epoch nor counts towards ``patience``, so that a run
        stopped and resumed ends as the uninterrupted run does; its metrics stand in for the best
        only while no scheduled evaluation has happened.
        """
        entry: dict[str, Any] = {"epoch": self.epoch, "loss": loss, "seconds": round(self.train_seconds, 2)}
        if not scheduled:
            entry["scheduled"] = False
        started = time.perf_counter()
        if self.val_index is not None:
            entry["validation"] = self.evaluate("validation")
        entry["test"] = self.evaluate("test")
        entry["eval_seconds"] = round(time.perf_counter() - started, 2)
        self.history.append(entry)
        value = entry[self.selection][self.config.monitor]
        log.info("epoch %d %s %s", self.epoch, self.selection, _format_metrics(entry[self.selection]))
        improved = self.best is None or value > self.best[self.selection][self.config.monitor]
        if scheduled and improved:
            self.best = entry
            self.bad_evals = 0
        elif scheduled:
            self.bad_evals += 1
        if self.output_dir is not None:
            self._save_run(new_best=improved and (scheduled or self.best is None))
        return stopped_early(self.bad_evals, self.config.patience)

    def _save_run(self, new_best: bool, evaluated: bool = True) -> None:
        """Writes ``best.pt`` (where ``new_best``), ``metrics.json`` (where the epoch was ``evaluated``: a
        ``checkpoint_every`` checkpoint leaves the last evaluation's, which a resumed run writes again at
        its next) and ``last.pt``, in that order: a run stopped before ``last.pt`` resumes from the previous
        one and writes the other two again, where a ``last.pt`` ahead of them would leave them behind for
        good. The first write removes the files of the earlier run it replaces, all of them: none is left
        to mix with this run's."""
        remove_run_files(self.output_dir, self._replaced)
        self._replaced, self._own_folder = [], True
        state = self.state_dict()
        if new_best:
            save_checkpoint(state, self._path("best.pt"))
        if evaluated:
            self.write_summary()
        save_checkpoint(state, self._path("last.pt"))

    def summary(self) -> dict[str, Any]:
        """The test (and validation) metrics of the best evaluated epoch (of the latest evaluation while
        no scheduled one has picked a best), with the run's selection, protocol, epochs, training
        seconds, device, settings and evaluation history: what :meth:`fit` returns and ``metrics.json``
        holds.

        Returns:
            A dict of ``"test"`` (``{"recall@20": ..., ...}``: the metrics at each of ``config.ks``; ``{}``
            before the first evaluation), ``"validation"`` (the same, or :obj:`None` without a validation
            split), ``"selection"`` (``"validation"`` or ``"test"``: the split that picked the best epoch),
            ``"protocol"`` (``"full"`` or ``"sampled"``: how the test items were ranked), ``"best_epoch"``
            (:obj:`None` before the first evaluation), ``"epochs"`` (trained so far), ``"train_seconds"``,
            ``"device"``, ``"config"`` (the :class:`TrainConfig` as a dict) and ``"history"`` (one dict per
            evaluation: ``"epoch"``, ``"loss"``, ``"seconds"``, ``"test"``, ``"validation"`` where there is
            one, ``"eval_seconds"``, and ``"scheduled": False`` for an evaluation off ``eval_every``).
        """
        best = self.best or (self.history[-1] if self.history else {})
        return {
            "test": best.get("test", {}),
            "validation": best.get("validation"),
            "selection": self.selection,
            "protocol": "sampled" if "test_negatives" in self.data[EDGE] else "full",
            "best_epoch": best.get("epoch"),
            "epochs": self.epoch,
            "train_seconds": round(self.train_seconds, 2),
            "device": str(self.device),
            "config": asdict(self.config),
            "history": self.history,
        }

    def write_summary(self, extra: dict[str, Any] | None = None) -> Path:
        """Writes :meth:`summary`, with the entries of ``extra`` added, to ``metrics.json`` of
        ``output_dir`` (whole or not at all) and returns its path."""
        summary = self.summary() | (extra or {})
        text = json.dumps(summary, indent=2, default=str)
        return write_then_rename(self._path("metrics.json"), lambda tmp: tmp.write_text(text))

    def _path(self, name: str) -> Path:
        if self.output_dir is None:
            raise ValueError(f"this trainer has no output_dir to hold {name}: pass Trainer an output_dir")
        return self.output_dir / name

    def state_dict(self) -> dict[str, Any]:
        """Everything a run resumes from: the model's, optimizer's, scheduler's and hooks' states, the
        counters, history and best epoch, the random generators' states, the settings, the data's
        fingerprint and the device and CPU threads it ran on (what the ``last.pt`` and ``best.pt``
        checkpoints hold)."""
        return {
            "model": self._module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "hooks": [hook.state_dict() for hook in self.hooks],
            "epoch": self.epoch,
            "train_seconds": self.train_seconds,
            "history": self.history,
            "best": self.best,
            "bad_evals": self.bad_evals,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "config": asdict(self.config),
            "metadata": self.metadata,
            "data_fingerprint": self.data_fingerprint,
            "optimizer_class": type(self.optimizer).__name__,
            "runtime": self._runtime(),
        }

    def _runtime(self) -> dict[str, Any]:
        """What rounds the run's numbers besides its settings: the device (a GPU by its model) and, on the
        CPU, torch's threads, which a resume may change (``compile`` is in the config)."""
        if self.device.type == "cuda":
            return {"device": f"cuda ({torch.cuda.get_device_name(self.device)})"}
        return {"device": self.device.type, "threads": torch.get_num_threads()}

    def load(self, path: str | os.PathLike) -> None:
        """Restores everything :meth:`state_dict` saved, checking the run's settings, data and optimizer
        class match; a checkpoint that fails to load leaves the trainer as it was (model, optimizer, hooks,
        RNGs and counters)."""
        state = load_checkpoint(path, map_location=self.device)
        current = self.state_dict()
        self._check_resumable(state, current, path)
        # restored one part after another, any of which may fail (a tensor of another shape, a foreign
        # RNG state): the state before goes back in place then, kept serialised on the CPU, not as a copy
        # in GPU memory
        before = io.BytesIO()
        torch.save(current, before)
        try:
            self._restore(state, path)
        except BaseException as exc:
            before.seek(0)
            self._restore(torch.load(before, map_location=self.device, weights_only=True), path)
            if isinstance(exc, CheckpointError) or not isinstance(exc, Exception):
                raise
            raise CheckpointError(f"cannot resume from {path}: {exc}") from exc
        log.info("resumed from %s at epoch %d", path, self.epoch)
        self._warn_of_other_rounding(state, path)
        if self.output_dir is not None and Path(path).resolve().parent == self.output_dir.resolve():
            self._own_folder = True  # the folder's run goes on: its files are this one's

    def _warn_of_other_rounding(self, state: dict[str, Any], path: str | os.PathLike) -> None:
        """One warning where this run rounds otherwise than checkpoint ``state``'s did: on another device,
        with other CPU threads, compiled where it was not or the other way round. It goes on from the
        checkpoint then, though not to the uninterrupted run's numbers, and nothing said so."""
        runtime = state.get("runtime")  # none in checkpoints written before it was recorded
        runtime = runtime if isinstance(runtime, dict) else {}
        was = runtime | {"compile": state["config"].get("compile", False)}
        now = self._runtime() | {"compile": self.config.compile}
        changed = [f"{key} {was[key]}, now {now[key]}" for key in now if was.get(key, now[key]) != now[key]]
        if changed:
            log.warning(
                "resumed from %s with %s: the rest of the run rounds otherwise and will not be bit-identical "
                "to the uninterrupted run",
                path,
                "; ".join(changed),
            )

    def _check_resumable(
        self, state: dict[str, Any], current: dict[str, Any], path: str | os.PathLike
    ) -> None:
        """Raises unless checkpoint ``state`` holds the keys of this trainer's ``current`` state and was
        written by a run of the same data, optimizer class, settings and number of step hooks."""
        # checkpoints written before the data fingerprint and the optimizer's name were recorded still resume
        optional = ("metadata", "data_fingerprint", "optimizer_class", "runtime")
        missing = [key for key in current if key not in state and key not in optional]
        if missing:
            raise CheckpointError(f"checkpoint {path} lacks {missing}: not written by dslgraph's trainer")
        check_entries(state, path, ("hooks", "train_seconds", "history", "best", "bad_evals"))
        recorded = state.get("data_fingerprint")  # None: recorded before fingerprints, as eval takes it
        if recorded is not None and recorded != self.data_fingerprint:
            # a table of the same size (LightGCN's for 40 users and 30 items, or 30 and 40) loaded silently
            raise CheckpointError(
                f"cannot resume from {path}: it was trained on other interactions (users, items or a "
                "split's interactions differ); pass the data it was trained on"
            )
        optimizer = type(self.optimizer).__name__
        if state.get("optimizer_class", optimizer) != optimizer:
            # another optimizer's state loaded without a word, and its first step failed (KeyError: 'betas')
            raise CheckpointError(
                f"cannot resume from {path}: it was trained with {state['optimizer_class']}, now {optimizer}"
            )
        ours = asdict(self.config) | {"monitor": self._resumed_monitor(state)}
        # monitor picked the saved best epoch; the cosine schedule is restored with its saved lr_min
        for key in ("batch_size", "sampling", "lr", "lr_schedule", "lr_min", "reg_weight", "seed", "monitor"):
            if state["config"].get(key) != ours[key]:
                raise ValueError(
                    f"cannot resume from {path}: {key} was {state['config'].get(key)!r}, now {ours[key]!r}"
                )
        if len(state["hooks"]) != len(self.hooks):
            raise ValueError(
                f"cannot resume from {path}: it has {len(state['hooks'])} step hooks (DSL), now "
                f"{len(self.hooks)}; pass the same hooks (CLI: the same --sparsity)"
            )

    def _resumed_monitor(self, state: dict[str, Any]) -> str:
        """The monitor of the run resumed from checkpoint ``state``: the one given, else (``monitor=None``)
        the one the checkpoint records where it is evaluated (the default of another ``ks``, or of
        versions whose default was ``recall@20`` whatever ``ks``), else the default."""
        recorded = state["config"].get("monitor")
        if self._monitor_given or recorded not in self._evaluator(self.selection).metric_names:
            return self.config.monitor
        return recorded

    def _restore(self, state: dict[str, Any], path: str | os.PathLike) -> None:
        self.config.monitor = self._resumed_monitor(state)
        for hook, hook_state in zip(self.hooks, state["hooks"]):
            hook.load_state_dict(hook_state)
        load_model_state(self._module, state, path)
        load_optimizer_state(self.optimizer, state, path)
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
            self._cosine_over(max(self.total_steps, 1))
        self.epoch = state["epoch"]
        self.train_seconds = state["train_seconds"]
        self.history = state["history"]
        self.best = state["best"]
        self.bad_evals = state["bad_evals"]
        self.generator.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            # one state per GPU of the saving host: a host with fewer GPUs restores those it has
            saved = state["cuda_rng"][: torch.cuda.device_count()]
            torch.cuda.set_rng_state_all([s.cpu() for s in saved])


def check_hooks(
    hooks: list[StepHook], optimizer: torch.optim.Optimizer, total_steps: int, batches: int, epochs: int
) -> None:
    """Raises unless every hook attached to an optimizer is attached to the trainer's ``optimizer``, and
    warns of one whose ``total_steps`` is not the run's."""
    for hook in hooks:
        attached = getattr(hook, "optimizer", None)
        # a controller attached to an optimizer of one's own, which the trainer never steps: every DSL update
        # was skipped with a warning, and the run trained its initial masks (a static mask)
        if attached is not None and attached is not optimizer:
            raise ValueError(
                f"a step hook ({type(hook).__name__}) is attached to an optimizer the trainer does not "
                "step: pass that optimizer too (Trainer(..., optimizer=optimizer)), or leave the hook "
                "unattached for the trainer to attach its own"
            )
        hook_steps = getattr(hook, "total_steps", None)
        # rho_t and the last update follow the controller's length: a longer one never decayed rho_t
        if hook_steps is not None and hook_steps != total_steps:
            warnings.warn(
                f"{type(hook).__name__} was built with total_steps={hook_steps}, but this trainer runs "
                f"{total_steps} optimizer steps (epochs={epochs} x {batches} batches, "
                "len(make_batches(model, data, config))): its schedule follows total_steps; build it with "
                f"total_steps={total_steps}",
                stacklevel=3,
            )


def stopped_early(bad_evals: int, patience: int) -> bool:
    """Whether a run whose last ``bad_evals`` evaluations brought no gain has stopped early (or stops now)
    under ``patience``, of which 0 never stops: the trainer's rule, and the CLI's for a run it resumes."""
    return bool(patience) and bad_evals >= patience


def check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Returns ``metadata`` if a checkpoint holding it reads back, else raises a :class:`ValueError` naming
    what it holds that does not: a ``Path`` or a NumPy number was saved in every checkpoint, and the run's
    ``last.pt`` then failed to load (``weights_only``) at the resume."""
    buffer = io.BytesIO()
    torch.save(metadata, buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"a {found[1]}" if found else "what it holds"
        raise ValueError(
            "metadata must hold only what a checkpoint reads back (None, bools, Python numbers, text, "
            f"tensors, and lists, tuples and dicts of them), not {what}: its checkpoints could not be "
            "resumed; convert it (str(path), int(n))"
        ) from None
    return metadata


def make_batches(
    model: torch.nn.Module,
    data: HeteroData,
    config: TrainConfig,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
) -> BPRBatches | UserBatches:
    """The epoch iterator ``model`` trains on (see :mod:`dslgraph.nn.base` for the batch kinds);
    users with ``data['user'].train_mask`` False are left out. Its length is the optimizer steps of an
    epoch: ``config.epochs * len(make_batches(model, data, config))`` is the ``total_steps`` of a DSL
    controller that :class:`Trainer` steps."""
    train_index = data[EDGE].edge_index
    trainable = training_users(data)
    if trainable is not None:
        train_index = train_index[:, trainable[train_index[0]]]
    kind = getattr(model, "batch_kind", "pairs")
    if kind == "users":
        return UserBatches(train_index[0].unique(), config.batch_size, generator, device)
    if kind != "pairs":
        raise ValueError(f"model.batch_kind must be 'pairs' or 'users', got {kind!r}")
    return BPRBatches(
        train_index,
        int(data["item"].num_nodes),
        config.batch_size,
        generator,
        device,
        config.sampling,
        getattr(model, "num_negatives", 1),
        getattr(model, "exclude_positives", True),
    )


def make_adam(parameters: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float) -> torch.optim.Adam:
    """Adam as dslgraph trains with it: the fused implementation (one pass over each tensor per step:
    5.5 against 37 ms for the default loop on a Gowalla-sized table on a 2-core CPU,
    ``benchmarks/bench_optimizer.py``), or the default one where this torch or these parameters do
    not support it."""
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(parameters, lr=lr)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` means CUDA when available; asking for CUDA without one is an error, and so is any device
    but the CPU and CUDA (Apple's ``"mps"``)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"device {str(device)!r} is not a torch device; use 'cpu', 'cuda', 'cuda:N' or 'auto'"
        ) from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {str(device)!r} is not supported: {OTHER_DEVICES}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} was asked for but torch sees no CUDA device; use 'cpu' or 'auto' "
            "(CLI: --device cpu)"
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {str(device)!r} does not exist: torch sees {torch.cuda.device_count()} CUDA devices"
        )
    return device


def _format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
