"""Several ``dslgraph train`` runs side by side on one machine, each given the epochs that fit a time budget.

A GPU lent for a few minutes is best used by training several small models at once: one LightGCN or
UltraGCN process leaves most of an H100 idle (its kernels are small and launched one by one), so runs that
share the card finish together in little more than the time of one. How many epochs fit is not known in
advance, and a cosine learning-rate (and DSL ρ) schedule cut short by a time limit has not decayed, so this
script first runs every setting for ``--probe-epochs`` epochs side by side, reads from each one's log and
``metrics.json`` the seconds per epoch and per evaluation under that same load, and only then starts the real
runs with a whole schedule that fits what is left of ``--budget``. Runs in one GROUP get the same number of
epochs (a sparsity sweep must compare at equal epochs); a run alone in its group gets all its time allows.

    python benchmarks/timed_runs.py --budget 300 --out runs/gpu \\
        --run dense sweep "--dataset gowalla --root data --batch-size 16384 --lr 0.01 --lr-schedule cosine" \\
        --run dsl80 sweep "--dataset gowalla --root data --batch-size 16384 --lr 0.01 --lr-schedule cosine \\
            --sparsity 0.8" \\
        --run ultragcn alone "--dataset gowalla --root data --model ultragcn"

Writes ``OUT/NAME/`` (each run's ``dslgraph train`` output), ``OUT/NAME.log``, ``OUT/probe/NAME/`` and
``OUT/probe/NAME.log`` (its probe's) and ``OUT/timing.json`` (the probe's measurements and the epochs chosen).
A run still going at the end of the budget is stopped; its ``metrics.json`` then holds its evaluations so far.
Tabulate a sweep with ``sweep_sparsity.py --collect`` (with ``--at-epoch N``, an epoch every run evaluated,
where the budget stopped one: ``--collect`` refuses a run cut short otherwise).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from summary import read_summary

from dslgraph.files import replace_file

log = logging.getLogger("timed_runs")
EVALUATIONS = 10  # per real run, besides the one at its last epoch
EPOCH_LINE = re.compile(r"epoch \d+ loss \S+ \((\d+(?:\.\d+)?)s\)")  # the trainer's line after each epoch


@dataclass
class Run:
    name: str
    group: str
    flags: list[str]
    process: subprocess.Popen | None = None
    started: float = 0.0
    wall: float = 0.0

    def start(self, out: Path, epochs: int, eval_every: int, max_seconds: float = 0.0) -> None:
        command = [sys.executable, "-m", "dslgraph", "train", *self.flags, "--no-progress"]
        command += ["--epochs", str(epochs), "--eval-every", str(eval_every)]
        command += ["--output", str(out / self.name)]
        command += ["--max-seconds", f"{max_seconds:.0f}"] if max_seconds else []
        out.mkdir(parents=True, exist_ok=True)
        with open(out / f"{self.name}.log", "w") as log_file:
            self.process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        self.started, self.wall = time.monotonic(), 0.0

    def poll(self) -> bool:
        """Whether the run has ended; records its wall-clock seconds when it has."""
        if self.process is None or self.process.poll() is None:
            return False
        self.wall = self.wall or time.monotonic() - self.started
        return True

    def stop(self) -> None:
        if not self.poll():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.poll()


def wait(runs: list[Run], deadline: float) -> None:
    """Waits for every run, stopping those still going at ``deadline`` (a ``time.monotonic`` value)."""
    while not all(run.poll() for run in runs) and time.monotonic() < deadline:
        time.sleep(1.0)
    for run in runs:
        if not run.poll():
            log.warning("%s: stopped at the end of the budget", run.name)
            run.stop()


def costs(run: Run, out: Path) -> dict | None:
    """Seconds per epoch (past the first one's warm-up), per evaluation and outside both (start-up,
    checkpoints) of a probe run evaluated once, after its last epoch.

    The epochs are timed from the run's log (``epoch N loss L (Ts)``, T its training seconds so far): a
    probe evaluated after every epoch let the runs sharing a card take turns and measured DSL epochs at
    0.26 s that then took 0.41 s with all runs training (H200, 16th session)."""
    path = out / run.name / "metrics.json"
    if run.process.returncode != 0 or not path.exists():
        log.error("%s: probe failed (exit %s); see its log", run.name, run.process.returncode)
        return None
    try:
        summary = read_summary(path, required=("history", "train_seconds", "epochs"))
    except SystemExit as exc:  # damaged, or lacking a key: a failed probe, named; the other runs still go on
        log.error("%s: probe failed: %s", run.name, exc)
        return None
    evals = [entry["eval_seconds"] for entry in summary["history"]]
    train = summary["train_seconds"]
    logged = [float(t) for t in EPOCH_LINE.findall((out / f"{run.name}.log").read_text(errors="replace"))]
    # a log without the epoch lines (another log level): the mean epoch, warm-up included
    steady = (logged[-1] - logged[0]) / (len(logged) - 1) if len(logged) > 1 else train / summary["epochs"]
    return {
        "epoch_seconds": steady,
        "eval_seconds": sum(evals) / len(evals),
        "other_seconds": max(0.0, run.wall - train - sum(evals)),
    }


def training_seconds(cost: dict, seconds: float) -> float:
    """What ``seconds`` leave for training after start-up and ``EVALUATIONS + 1`` evaluations."""
    return seconds - cost["other_seconds"] - (EVALUATIONS + 1) * cost["eval_seconds"]


def epochs_that_fit(cost: dict, seconds: float) -> int:
    """Epochs whose training and ``EVALUATIONS + 1`` evaluations fit ``seconds`` after start-up."""
    return max(0, math.floor(training_seconds(cost, seconds) / cost["epoch_seconds"]))


def schedule(runs: list[Run], fits: dict[str, int], max_epochs: int) -> dict[str, dict[str, int]]:
    """Epochs and evaluation interval of each run: the fewest that fit any run of its group (``fits``
    holds the runs whose probe succeeded), at most ``max_epochs``, a multiple of the interval."""
    plan = {}
    for run in runs:
        group = [fits[other.name] for other in runs if other.group == run.group and other.name in fits]
        epochs = min([*group, max_epochs]) if run.name in fits else 0
        eval_every = max(1, epochs // EVALUATIONS)
        plan[run.name] = {"epochs": epochs - epochs % eval_every, "eval_every": eval_every}
    return plan


def split_flags(flags: str) -> list[str]:
    r"""The arguments of a FLAGS string, split as a shell splits them: at spaces, quotes grouping and
    removed. On Windows a backslash is a path's separator, not an escape: POSIX splitting made ``--root
    C:\Users\me\data`` into ``C:Usersmedata``, a root the run then downloaded its data into."""
    if os.name != "nt":
        return shlex.split(flags)
    lexer = shlex.shlex(flags, posix=True)
    lexer.whitespace_split, lexer.commenters, lexer.escape = True, "", ""
    return list(lexer)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run",
        nargs=3,
        action="append",
        required=True,
        metavar=("NAME", "GROUP", "FLAGS"),
        help="a dslgraph train setting (FLAGS without --epochs/--eval-every/--output)",
    )
    parser.add_argument("--budget", type=float, required=True, help="seconds for the probe and the runs")
    parser.add_argument("--probe-epochs", type=int, default=5, help="epochs of each probe run (>= 2)")
    parser.add_argument("--max-epochs", type=int, default=1000, help="no run gets more epochs than this")
    parser.add_argument(
        "--margin",
        type=float,
        default=0.25,
        help="fraction of the time left that the plan keeps for runs slower than probed: runs that share "
        "a GPU slow each other down more once all of them train (H200: 10-23%% slower than probed while "
        "probes evaluated after every epoch)",
    )
    parser.add_argument("--out", default="runs/timed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    deadline = time.monotonic() + args.budget
    out = Path(args.out)
    runs = [Run(name, group, split_flags(flags)) for name, group, flags in args.run]
    # OUT/NAME is its folder, which macOS and Windows name case-blind: A and a trained into one
    if len({run.name.casefold() for run in runs}) < len(runs):
        parser.error("--run NAMEs must differ (in more than case)")
    for run in runs:  # "probe" is the probe runs' folder, a path would nest
        if run.name.casefold() in ("", ".", "..", "probe") or os.sep in run.name or "/" in run.name:
            parser.error(f"--run NAME {run.name!r} cannot be a run's folder name in --out (nor 'probe')")
    # --max-epochs 0 let the probes run, then started no run "as no epoch fits the budget"
    if args.budget <= 0 or not 0 <= args.margin < 1 or args.probe_epochs < 2 or args.max_epochs < 1:
        parser.error("need --budget > 0, 0 <= --margin < 1, --probe-epochs >= 2 and --max-epochs >= 1")
    given = {flag.partition("=")[0] for run in runs for flag in run.flags}  # --epochs=5 as --epochs 5
    for flag in ("--epochs", "--eval-every", "--output", "--max-seconds"):
        if flag in given:
            parser.error(f"{flag} is set by this script; leave it out of FLAGS")
    if "--stop-after-epoch" in given:  # a probe past it failed, and a run stopped there, its budget unused
        parser.error(
            "--stop-after-epoch would stop the probes and the runs short of the epochs this script plans; "
            "leave it out of FLAGS"
        )
    if out.exists() and not out.is_dir():  # not a traceback from making the first run's folder
        parser.error(f"--out {out} is a file: give a folder")
    # dslgraph train refuses an output folder an earlier run wrote to: said here, not in the runs' logs
    folders = [folder for run in runs for folder in (out / "probe" / run.name, out / run.name)]
    used = [str(folder) for folder in folders if folder.exists()]
    if used:
        parser.error(f"{', '.join(used)} hold earlier runs; pass another --out")

    for run in runs:
        run.start(out / "probe", args.probe_epochs, eval_every=args.probe_epochs)
    wait(runs, deadline)
    probed = {run.name: costs(run, out / "probe") for run in runs}
    left = deadline - time.monotonic() - 5.0  # seconds for stopping and writing
    log.info("probe done; %.0fs left for the runs: %s", left, json.dumps(probed))

    planned = left * (1 - args.margin)
    fits = {run.name: epochs_that_fit(probed[run.name], planned) for run in runs if probed[run.name]}
    plan = schedule(runs, fits, args.max_epochs)
    started = []
    for run in runs:
        if plan[run.name]["epochs"] > 0:
            # the plan kept a margin; a run slower than probed may use it before this guard stops it
            guard = training_seconds(probed[run.name], left)
            run.start(out, **plan[run.name], max_seconds=max(1.0, guard))
            started.append(run)
            log.info("%s: %s", run.name, plan[run.name])
        else:
            why = "no epoch fits the budget" if probed[run.name] else "its probe failed"
            log.warning("%s: not run: %s", run.name, why)
    wait(started, deadline)
    for run in started:
        plan[run.name] |= {"exit": run.process.returncode, "wall_seconds": round(run.wall, 1)}
    timing = {"budget": args.budget, "probe": probed, "plan": plan}
    # beside and renamed, as common.write_text does; not imported from there, which loads torch and PyG
    # (seconds that the budget's deadline, set after the imports, would not count)
    partial = out / ".timing.json.tmp"
    partial.write_text(json.dumps(timing, indent=1))
    replace_file(partial, out / "timing.json")
    log.info("done: %s", json.dumps(plan))


if __name__ == "__main__":
    main()
