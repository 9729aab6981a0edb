"""Does dslgraph hold up at the size of the largest paper dataset? Seconds and peak memory of each stage
of a LightGCN run on a synthetic graph of Amazon-book's size, on CPU.

Amazon-book in the LightGCN split has 52,643 users, 91,599 items and 2,984,108 interactions (about 2.38 M
of them for training). The graph is generated here with those numbers and power-law degrees on both sides
(each user and item at least ``--min-degree``, as the 10-core filter leaves them; the rest
Pareto-distributed), paired as a configuration model, and split by
:meth:`~dslgraph.data.InteractionDataset.from_pandas` (20% of each user's interactions for test, as in the
published split). Nothing is written to the repository: the raw files of the LightGCN format (read back
through :class:`~dslgraph.data.AmazonBook`, as ``dslgraph train --dataset amazon-book`` reads them) go to
``--root``, a temporary folder by default.

Stages, each timed, with the process's peak resident memory during it (``VmHWM``, reset before the stage
through ``/proc/self/clear_refs``) less its resident memory when it started:

* ``generate`` (this script's, not the library's), ``from_pandas``, ``amazon_book_files`` (reading and
  processing the raw files), ``propagation_graph``, ``sampler`` (the BPR batches and their negative
  sampler) and ``sampler_epoch_draw`` (an epoch's shuffle and negatives);
* per backend (``dense``; DSL at ``--sparsity`` with ``sparse``, ``compact`` or ``masked``): ``build``
  (the model and DSL as ``dslgraph train`` builds them, the fused Adam and the
  :class:`~dslgraph.train.Trainer`); ``epoch_draw``; ``first_batch`` (for ``sparse``, the propagation
  plan's build); ``train``: the next ``--batches`` batches through :meth:`Trainer.train_epoch`, at
  ``--batch-size``, the epoch extrapolated from them (its draw plus the mean iteration times the epoch's
  batches); for DSL, ``probed_iteration`` (the iteration that records the growth gradient and runs the
  update), ``update`` inside it (``dsl.update()`` alone: prune and grow, the gradient rebuilt
  ``chunk_rows`` rows at a time) and ``after_update`` (for ``sparse``, the plan's rebuild); ``evaluate``:
  full ranking of every test user (:meth:`Trainer.evaluate`, ``--eval-batch-size`` users at a time).

    python benchmarks/scale_check.py --threads 1 --backends dense \\
        --output docs/benchmarks/amazon_scale_cpu.csv
    python benchmarks/scale_check.py --threads 1 --backends sparse masked --skip-setup --append \\
        --output docs/benchmarks/amazon_scale_cpu.csv

The memory columns need Linux's ``/proc``: elsewhere (macOS, Windows) the stages are timed and their
memory columns hold NaN. ``--users/--items/--interactions`` shrink the graph for a quick try.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import check_output, machine, write_rows

from dslgraph.cli import build_model, train_config
from dslgraph.config import ConfigError, validate
from dslgraph.data import EDGE, AmazonBook, InteractionDataset, propagation_graph
from dslgraph.sparse.dsl import BACKENDS
from dslgraph.train import Trainer, make_adam
from dslgraph.train.trainer import TrainConfig, make_batches

MB = 2**20
#: Linux's memory counters of this process, which the stages read (and reset) where they exist.
PROC = Path("/proc/self")


def _status(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB; NaN without ``/proc``."""
    if not (PROC / "status").is_file():
        return math.nan
    text = (PROC / "status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1)) * 1024 / MB


class Stages:
    """Rows of ``(stage, seconds, MB)``: each stage's time and its peak resident memory above its start.

    A stage may open inside another (the DSL update inside the training iteration that runs it): resetting
    the peak for the inner one first carries the peak so far into every open stage."""

    def __init__(self, common: dict) -> None:
        self.common = common
        self.rows: list[dict] = []
        self._open: list[dict] = []  # per open stage, the highest peak seen before an inner reset

    @contextlib.contextmanager
    def stage(self, backend: str, name: str, note: str = "") -> Iterator[dict]:
        if not self._open:
            gc.collect()
        for outer in self._open:
            outer["peak"] = max(outer["peak"], _status("VmHWM"))
        if (PROC / "clear_refs").is_file():
            (PROC / "clear_refs").write_text("5")  # resets VmHWM to the current resident size
        start_rss = _status("VmRSS")
        state = {"peak": start_rss}
        self._open.append(state)
        started = time.perf_counter()
        extra: dict = {}
        try:
            yield extra
        finally:
            self._open.pop()
        seconds = time.perf_counter() - started
        peak = max(state["peak"], _status("VmHWM"))
        row = {
            **self.common,
            "backend": backend,
            "stage": name,
            "seconds": round(seconds, 3),
            "peak_mb_above_start": round(peak - start_rss, 1),
            "rss_mb_start": round(start_rss, 1),
            "rss_mb_end": round(_status("VmRSS"), 1),
            **extra,
            "note": note,
        }
        self.rows.append(row)
        print({k: v for k, v in row.items() if k not in self.common}, flush=True)

    def add(self, backend: str, name: str, seconds: float, note: str) -> None:
        """A row computed from others (an extrapolation), without memory."""
        self.rows.append(
            {**self.common, "backend": backend, "stage": name, "seconds": round(seconds, 1), "note": note}
        )
        print(self.rows[-1], flush=True)


# ---------------------------------------------------------------------------------------------- the graph
def power_law_degrees(
    count: int, total: int, minimum: int, alpha: float, cap: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` degrees of at least ``minimum`` and at most ``cap`` summing to ``total``: ``minimum`` plus a
    Pareto(``alpha``) excess scaled to the total (the rounding remainder to the largest fractions)."""
    excess = rng.pareto(alpha, count)
    low, high = 0.0, (total - minimum * count) / excess.mean() / count * 10
    for _ in range(100):  # the scale at which the capped degrees sum to the total
        scale = (low + high) / 2
        if np.minimum(minimum + scale * excess, cap).sum() <= total:
            low = scale
        else:
            high = scale
    raw = np.minimum(minimum + low * excess, cap)
    degree = np.floor(raw).astype(np.int64)
    fraction = np.where(degree < cap, raw - degree, -1.0)
    degree[np.argsort(-fraction)[: total - degree.sum()]] += 1
    return degree


def synthetic_interactions(
    num_users: int, num_items: int, num_interactions: int, min_degree: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``(user, item)`` pairs, ``num_interactions`` of them, every user and item in at least
    ``min_degree`` pairs before the pairing's repeats are dropped, with power-law degrees on both sides.

    A configuration model: user and item "stubs" repeated by degree, shuffled and paired; the few repeated
    pairs (busy users with popular items) are dropped and the shortfall drawn again, users and items
    chosen in proportion to their degrees."""
    rng = np.random.default_rng(seed)
    user_degree = power_law_degrees(num_users, num_interactions, min_degree, 1.6, num_items // 4, rng)
    item_degree = power_law_degrees(num_items, num_interactions, min_degree, 1.2, num_users // 4, rng)
    users = np.repeat(np.arange(num_users), user_degree)
    items = rng.permutation(np.repeat(np.arange(num_items), item_degree))
    keys = np.unique(users * num_items + items)
    while keys.size < num_interactions:
        missing = num_interactions - keys.size
        drawn = (
            users[rng.integers(0, users.size, 2 * missing)] * num_items
            + items[rng.integers(0, items.size, 2 * missing)]
        )
        drawn = drawn[~np.isin(drawn, keys)]
        drawn = pd.unique(drawn)[:missing]  # in order of drawing, so the first ones are taken
        keys = np.union1d(keys, drawn)
    return keys // num_items, keys % num_items


def write_lightgcn_files(data, raw_dir: Path) -> None:
    """The train and test splits of ``data`` as LightGCN adjacency lists (``user item item ...``)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, key in (("train.txt", "edge_index"), ("test.txt", "edge_label_index")):
        index = data[EDGE][key]
        index = index[:, (index[0] * data["item"].num_nodes + index[1]).argsort()]
        users, counts = torch.unique_consecutive(index[0], return_counts=True)
        items = np.split(index[1].numpy(), counts.cumsum(0)[:-1].numpy())
        lines = (f"{u} {' '.join(map(str, row))}\n" for u, row in zip(users.tolist(), items))
        with (raw_dir / name).open("w") as f:
            f.writelines(lines)


# --------------------------------------------------------------------------------------------- the stages
def setup_stages(stages: Stages, args, root: Path) -> None:
    with stages.stage("-", "generate", "synthetic power-law graph (this script)"):
        user, item = synthetic_interactions(
            args.users, args.items, args.interactions, args.min_degree, args.seed
        )
    frame = pd.DataFrame({"user": user, "item": item})
    del user, item
    with stages.stage("-", "from_pandas", "InteractionDataset.from_pandas, test_ratio 0.2") as extra:
        data = InteractionDataset.from_pandas(frame, test_ratio=0.2, seed=args.seed)[0]
        extra["detail"] = _sizes(data)
    del frame
    write_lightgcn_files(data, root / AmazonBook.name / "raw")
    del data
    with stages.stage("-", "amazon_book_files", "AmazonBook(root): read train.txt/test.txt, process, save"):
        data = AmazonBook(root, force_reload=True)[0]
    with stages.stage("-", "propagation_graph", "D^-1/2 A D^-1/2 as CSR"):
        adj = propagation_graph(data)
    del adj
    config = TrainConfig(batch_size=args.batch_size, epochs=1, progress=False)
    with stages.stage("-", "sampler", "BPRBatches + NegativeSampler (make_batches)"):
        batches = make_batches(None, data, config, torch.Generator().manual_seed(0))
        # BPRBatches builds it at its first draw: built here, so that this stage measures it
        sampler = batches.sampler
        del sampler
    with stages.stage("-", "sampler_epoch_draw", "an epoch's shuffle and negatives (first batch)"):
        next(iter(batches))


class FirstBatches:
    """The first ``count`` batches of an epoch of ``batches`` (its draw of negatives included)."""

    def __init__(self, batches, count: int) -> None:
        self.batches, self.count = batches, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        for number, batch in enumerate(self.batches):
            if number == self.count:
                return
            yield batch


def backend_settings(args: argparse.Namespace, backend: str) -> dict:
    """The settings ``dslgraph train`` would validate for the stages of ``backend``."""
    sparsity = 0.0 if backend == "dense" else args.sparsity
    return validate(
        {
            "dataset": "amazon-book",
            "epochs": 1,
            "batch_size": args.batch_size,
            "eval_batch_size": args.eval_batch_size,
            "sparsity": sparsity,
            "backend": "sparse" if backend == "dense" else backend,
            # the first update comes after the first batch, the timed ones and one probed iteration
            "update_interval": args.batches + 2,
            "threads": args.threads,
            "device": "cpu",
        }
    )


def backend_stages(stages: Stages, args, data, backend: str) -> None:
    settings = backend_settings(args, backend)
    with stages.stage(backend, "build", "build_model (+ DSL), fused Adam, Trainer"):
        config = train_config(settings, progress=False)
        model, dsl = build_model(settings, data, config)
        optimizer = make_adam(model.parameters(), config.lr)
        if dsl is not None:
            dsl.attach(optimizer)
        trainer = Trainer(model, data, config, device="cpu", hooks=[dsl] if dsl else [], optimizer=optimizer)
    epoch_batches = len(trainer.batches)
    if epoch_batches < args.batches + 3:
        raise ValueError(f"an epoch has {epoch_batches} batches, fewer than --batches + 3")
    with stages.stage(backend, "epoch_draw", "the epoch's shuffle and negatives (before its first batch)"):
        epoch = iter(trainer.batches)
        first = next(epoch)

    def run(name: str, count: int, note: str, batches: Iterator | None = None) -> float:
        """Trains ``count`` batches of the drawn epoch through the trainer's own loop; their seconds."""
        trainer.batches = FirstBatches(batches or epoch, count)
        with stages.stage(backend, name, note):
            trainer.train_epoch()
        return stages.rows[-1]["seconds"]

    run("first_batch", 1, "builds the propagation plan" if backend == "sparse" else "", iter([first]))
    per_batch = run("train", args.batches, f"{args.batches} of {epoch_batches} batches") / args.batches
    draw = next(row["seconds"] for row in reversed(stages.rows) if row["stage"] == "epoch_draw")
    note = f"draw {draw:.2f} s + {per_batch:.3f} s x {epoch_batches} batches (extrapolated)"
    stages.add(backend, "epoch_extrapolated", draw + per_batch * epoch_batches, note)
    if dsl is not None:
        update = dsl.update

        def timed_update() -> dict:
            with stages.stage(
                backend, "update", f"dsl.update(): prune and grow, chunk_rows={dsl.chunk_rows}"
            ):
                return update()

        dsl.update = timed_update
        run("probed_iteration", 1, "records the growth gradient, then runs the update")
        if not dsl.updates:
            raise RuntimeError("the probed iteration ran no DSL update")
        run("after_update", 1, "the next iteration (sparse: rebuilds the plan)")
    with stages.stage(backend, "evaluate", f"full ranking, {args.eval_batch_size} users a batch") as extra:
        metrics = trainer.evaluate("test")
        users = trainer._evaluator("test").num_eval_users
        extra["detail"] = f"{users} users; recall@20={metrics['recall@20']:.4f}"
    workspace = getattr(trainer.model.embedding, "workspace_bytes", None)
    if workspace is not None:
        stages.rows[-1]["detail"] += f"; sparse table's workspace {workspace() / MB:.0f} MB"


def _sizes(data) -> str:
    store = data[EDGE]
    return (
        f"{int(data['user'].num_nodes)} users, {int(data['item'].num_nodes)} items, "
        f"{store.edge_index.size(1)} train, {store.edge_label_index.size(1)} test"
    )


#: Allocations from 1 MiB up are mapped and unmapped one by one, so that resident memory follows the live
#: tensors: glibc's adaptive threshold (up to 32 MiB) would keep freed blocks in its heap for reuse, hiding
#: a later stage's peak under an earlier stage's leftovers.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(2**20)}


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--users", type=int, default=52_643)
    parser.add_argument("--items", type=int, default=91_599)
    parser.add_argument("--interactions", type=int, default=2_984_108)
    parser.add_argument("--min-degree", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=None, help="folder for the raw files (default: a temporary one)")
    parser.add_argument("--skip-setup", action="store_true", help="reuse --root's processed files")
    parser.add_argument(
        "--backends", nargs="*", default=["dense", "sparse", "masked"], choices=["dense", *BACKENDS]
    )
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--batch-size", type=int, default=16_384)
    parser.add_argument("--eval-batch-size", type=int, default=2048)
    parser.add_argument("--batches", type=int, default=10, help="batches timed per backend")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="docs/benchmarks/amazon_scale_cpu.csv")
    parser.add_argument("--append", action="store_true", help="add the rows to --output's")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work(args)
        return
    # checked here: a worker would fail on them only after the setup's minutes
    if args.batches < 1:
        parser.error(f"--batches must be at least 1, got {args.batches}")
    check_output(parser, "--output", args.output)
    for backend in args.backends:
        try:
            backend_settings(args, backend)
        except ConfigError as exc:
            parser.error(str(exc))
    # each part in a process of its own: memory one part freed would otherwise be another's to reuse
    with contextlib.ExitStack() as stack:
        if args.root is None:
            if args.skip_setup:
                parser.error("--skip-setup needs the --root of an earlier run")
            args.root = stack.enter_context(tempfile.TemporaryDirectory(prefix="dslgraph-scale-"))
        parts = ([] if args.skip_setup else [[]]) + [[backend] for backend in args.backends]
        for number, backends in enumerate(parts):
            skip = args.skip_setup or number > 0
            command = [sys.executable, __file__, *sys.argv[1:], "--worker", "--root", args.root]
            command += ["--backends", *backends] + ["--skip-setup"] * skip + ["--append"] * (number > 0)
            subprocess.run(command, check=True, env=os.environ | MALLOC_ENV)


def work(args: argparse.Namespace) -> None:
    """The setup stages, or those of ``args.backends``, in this process; the rows go to ``args.output``."""
    if args.threads:  # 0: torch's default, as dslgraph train's --threads
        torch.set_num_threads(args.threads)
    root = Path(args.root)
    stages = Stages({**machine(torch.device("cpu")), "batch_size": args.batch_size})
    if not args.skip_setup:
        setup_stages(stages, args, root)
    if args.backends:
        data = AmazonBook(root)[0]
        for backend in args.backends:
            backend_stages(stages, args, data, backend)
    write_rows(stages.rows, Path(args.output), args.append)


if __name__ == "__main__":
    main()
