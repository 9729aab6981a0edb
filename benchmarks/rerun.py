"""Whether the current code still reproduces recorded ``dslgraph train`` runs, to the last digit.

Each RUN_DIR's ``metrics.json`` records the run's ``settings``; this script writes them to
``OUT/NAME.settings.json`` and trains them again with ``dslgraph train --config`` into ``OUT/NAME`` (so the
settings reach the run through the CLI's own config-file path: a setting it does not know fails there, named),
then compares every evaluation both runs made (each metric of each split, and the epoch's mean loss), the best
epoch and the cost numbers (MACs and bytes).

    python benchmarks/rerun.py docs/results/lastfm-tuning/s0.8-dt50-mask-init-degree --out runs/rerun
    python benchmarks/rerun.py docs/results/ml-100k-dt50/dense-d13-seed1 --root data --out runs/rerun

Writes ``OUT/rerun.csv`` (one row a compared number: run, epoch, quantity, recorded, rerun, difference,
relative difference, ``ok``: within the tolerance, ``new``: a quantity the recorded run has not) and
``OUT/rerun.md`` (a table per run), prints the differences, and exits with 1 when a
metric differs by more than ``--tolerance`` (relative; default 0: exact), an epoch's mean loss by more than
``--loss-tolerance`` (default: ``--tolerance``), the best epoch or a cost number at all, or an evaluation of
one run is missing from the other. A quantity the recorded run has in none of its evaluations (a metric
dslgraph added since it ran, such as ``capped_recall@20``) is shown as "not recorded", not as a difference.
(The logged losses are sums over an epoch's batches: a LastFM run whose
every evaluation reproduced exactly had losses 2.5e-8 apart, relative; see docs/results.md §4.)

``--stop-after-epoch N`` retrains only the first N epochs of each run (``dslgraph train --stop-after-epoch``:
the cosine learning rate and DSL's ρ still laid out over the run's epochs, where a shorter ``--epochs`` would
follow another schedule) and compares the evaluations up to epoch N, which must be one the run evaluated: a
spot check of a long run. Neither the best epoch nor the cost numbers are compared then: both are the
finished run's (the costs are counted from its final masks, which the epochs after N move).

    python benchmarks/rerun.py docs/results/gowalla/e30-s0.8-degree --root data --stop-after-epoch 10 \\
        --out runs/rerun

A run stopped by ``--max-seconds`` or ``--stop-after-epoch`` is rerun to the epoch where it stopped (not for
``max_seconds`` of this machine's time); an evaluation at a stop it was resumed from, which the rerun,
uninterrupted, does not make, is not compared.

``--root`` (where the data lies) and ``--threads`` may be given anew, as a resumed run may: neither changes
what is trained, though another thread count may change the last digits.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import sys
from pathlib import Path

from common import markdown_table, write_csv, write_text
from summary import read_summary

from dslgraph.cli import main as dslgraph
from dslgraph.config import PATH_FIELDS, ConfigError, validate

log = logging.getLogger("rerun")

#: The cost numbers of a metrics.json, compared exactly.
COSTS = (
    "macs", "ideal_macs", "dense_macs", "parameter_bytes", "optimizer_state_bytes", "dense_parameter_bytes",
    "dense_optimizer_state_bytes", "workspace_bytes", "active_entries",
)  # fmt: skip
#: The numbers of a finished run, which a run stopped after an epoch is not compared by.
FINISHED = ("best_epoch", *COSTS)
#: What an evaluation records that is no result of the run: wall-clock times, and whether it was on the
#: eval_every schedule (a rerun stopped after an epoch evaluates there off it).
NOT_RESULTS = ("epoch", "seconds", "eval_seconds", "scheduled")


def recorded_run(
    run: Path, root: str | None, threads: int | None, stop_after_epoch: int | None = None
) -> tuple[dict, dict]:
    """``run``'s metrics.json and the settings it records (with ``root``, ``threads`` and
    ``stop_after_epoch`` where given), checked as ``dslgraph train --config`` checks them; a setting it
    cannot take, or a ``stop_after_epoch`` at which the run did not evaluate, stops the script naming the
    file. With ``stop_after_epoch``, the summary keeps the evaluations up to that epoch and no
    :data:`FINISHED` numbers (:func:`unfinished`). The settings lose ``max_seconds``: a run that ended at a
    stop is rerun to the epoch where it stopped; an evaluation at a stop it was resumed from is not
    compared (an uninterrupted rerun does not make it)."""
    path = run / "metrics.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (is {run} the output folder of a dslgraph train run?)")
    summary = read_summary(path, required=("settings", "history"))
    settings = summary["settings"]
    if not isinstance(settings, dict):
        raise SystemExit(f"{path}: its settings are {type(settings).__name__}, not an object of settings")
    settings = dict(settings)
    if root is not None:
        settings["root"] = root
    for name in PATH_FIELDS:  # from here: written to OUT's settings file, they would be read from OUT
        if settings.get(name) is not None:
            settings[name] = str(Path(settings[name]).absolute())
    if threads is not None:
        settings["threads"] = threads
    history = summary["history"]
    if stop_after_epoch is not None:
        evaluated = [entry.get("epoch") for entry in history]
        if stop_after_epoch not in evaluated:
            raise SystemExit(
                f"{path}: the run has no evaluation at epoch {stop_after_epoch} to compare with; "
                f"--stop-after-epoch takes one of its evaluated epochs {evaluated}"
            )
        settings["stop_after_epoch"] = stop_after_epoch
        history = [entry for entry in history if entry["epoch"] <= stop_after_epoch]
        summary = unfinished(summary)
    elif history and (
        not history[-1].get("scheduled", True) or history[-1]["epoch"] < settings.get("epochs", math.inf)
    ):
        # the run ended at a stop (max_seconds' or stop_after_epoch's, also one that fell on the eval_every
        # schedule): the rerun stops there, not where its own wall-clock time would say; patience's stop,
        # which the rerun under the same patience makes at the same epoch, is the same run stopped there
        settings["stop_after_epoch"] = history[-1]["epoch"]
    settings["max_seconds"] = 0.0
    try:
        validate(dict(settings))
    except ConfigError as exc:
        raise SystemExit(f"{path}: its settings cannot be run by this dslgraph: {exc}") from None
    # an evaluation off the eval_every schedule where the run stopped and was resumed is one the rerun,
    # uninterrupted, does not make: only the last one, where both stop, is compared
    history = [entry for entry in history[:-1] if entry.get("scheduled", True)] + history[-1:]
    return summary | {"history": history}, settings


def flatten(summary: dict) -> dict[tuple[str, str], float]:
    """The numbers of ``summary`` to compare, by (epoch, quantity): each evaluation's metrics and loss (its
    epoch as text), the best epoch and the cost numbers (epoch ``-``)."""
    numbers: dict[tuple[str, str], float] = {}
    for entry in summary["history"]:
        epoch = str(entry["epoch"])
        for key, value in entry.items():
            if isinstance(value, dict):  # a split's metrics
                numbers |= {(epoch, f"{key} {metric}"): number for metric, number in value.items()}
            elif key not in NOT_RESULTS and value is not None:
                numbers[(epoch, key)] = value
    for key in FINISHED:
        value = summary.get(key)
        if isinstance(value, dict):
            numbers |= {("-", f"{key} {part}"): number for part, number in value.items()}
        elif value is not None:
            numbers[("-", key)] = value
    return numbers


def compare(name: str, recorded: dict, rerun: dict, tolerance: float, loss_tolerance: float) -> list[dict]:
    """One row per number of either summary: both values, their difference and whether it is within
    ``tolerance`` (relative, for the metrics; ``loss_tolerance`` for the losses; the best epoch and costs
    must be equal). A quantity the recorded run has nowhere (a metric dslgraph added since) is ``new``,
    not a difference; one of its quantities missing from an evaluation of either run is."""
    ours, theirs = flatten(recorded), flatten(rerun)
    recorded_quantities = {quantity for _, quantity in ours}
    rows = []
    for key in sorted(ours.keys() | theirs.keys(), key=lambda k: (k[0] == "-", _epoch(k[0]), k[1])):
        before, after = ours.get(key), theirs.get(key)
        new = key[1] not in recorded_quantities
        if before is None or after is None:
            difference = relative = math.nan
            ok = new
        else:
            difference = after - before
            relative = abs(difference) / abs(before) if before else (0.0 if difference == 0 else math.inf)
            allowed = loss_tolerance if key[1] == "loss" else tolerance
            ok = relative <= allowed if key[0] != "-" else difference == 0
        rows.append(
            {
                "run": name,
                "epoch": key[0],
                "quantity": key[1],
                "recorded": before,
                "rerun": after,
                "difference": difference,
                "relative": relative,
                "ok": ok,
                "new": new,
            }
        )
    return rows


def _epoch(text: str) -> int:
    return int(text) if text.isdigit() else 0


def rerun(run: Path, settings: dict, out: Path) -> dict:
    """Trains ``settings`` (``run``'s) again into ``out / run.name``; returns the new metrics.json."""
    config = out / f"{run.name}.settings.json"
    write_text(config, json.dumps(settings, indent=1))
    output = out / run.name
    log.info("rerunning %s into %s", run, output)
    argv = ["train", "--config", str(config), "--output", str(output), "--overwrite", "--no-progress"]
    with contextlib.redirect_stdout(io.StringIO()):  # its summary, which metrics.json holds
        failed = dslgraph(argv) != 0
    if failed:
        raise SystemExit(f"{run}: dslgraph train {' '.join(argv[1:])} failed (its error is above)")
    return read_summary(output / "metrics.json", required=("history",))


def unfinished(summary: dict) -> dict:
    """``summary`` without the numbers of a finished run (:data:`FINISHED`)."""
    return {key: value for key, value in summary.items() if key not in FINISHED}


def write_tables(rows: list[dict], out: Path) -> str:
    """Writes ``OUT/rerun.csv`` and ``OUT/rerun.md``; returns the markdown."""
    write_csv(rows, out / "rerun.csv")
    columns = ["epoch", "quantity", "recorded", "rerun", "difference", "relative", "verdict"]
    parts = []
    for name in dict.fromkeys(row["run"] for row in rows):
        own = [row for row in rows if row["run"] == name]
        bad = sum(not row["ok"] for row in own)
        verdict = "reproduced" if not bad else f"{bad} of {len(own)} numbers differ"
        shown = [
            row
            | {
                "difference": f"{row['difference']:.3g}",
                "relative": f"{row['relative']:.3g}",
                "verdict": "not recorded" if row["new"] else "ok" if row["ok"] else "**differs**",
            }
            for row in own
        ]
        parts.append(f"### {name}: {verdict}\n\n{markdown_table(shown, columns)}")
    text = "\n".join(parts)
    write_text(out / "rerun.md", text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "runs", nargs="+", type=Path, metavar="RUN_DIR", help="recorded dslgraph train outputs"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the reruns and the tables")
    parser.add_argument("--root", help="where the datasets lie, instead of the recorded root")
    parser.add_argument("--threads", type=int, help="CPU threads, instead of the recorded ones")
    parser.add_argument(
        "--tolerance", type=float, default=0.0, help="relative difference allowed (default 0)"
    )
    parser.add_argument(
        "--stop-after-epoch",
        type=int,
        help="retrain and compare only the first N epochs of each run's schedule (N: an evaluated epoch)",
    )
    parser.add_argument(
        "--loss-tolerance",
        type=float,
        help="relative difference allowed in the losses (default: --tolerance)",
    )
    args = parser.parse_args(argv)
    if args.loss_tolerance is None:
        args.loss_tolerance = args.tolerance
    for name in ("tolerance", "loss_tolerance"):
        if not getattr(args, name) >= 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.stop_after_epoch is not None and args.stop_after_epoch < 1:
        parser.error(f"--stop-after-epoch must be >= 1, got {args.stop_after_epoch}")
    names = [run.name for run in args.runs]
    if len(set(names)) < len(names):
        parser.error(f"two RUN_DIRs share a name, and so OUT/NAME: {names}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # every run's settings checked before the first trains
    recorded = {run: recorded_run(run, args.root, args.threads, args.stop_after_epoch) for run in args.runs}
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for run, (summary, settings) in recorded.items():
        trained = rerun(run, settings, args.out)
        if args.stop_after_epoch is not None:  # as recorded_run left the recorded run's
            trained = unfinished(trained)
        rows += compare(run.name, summary, trained, args.tolerance, args.loss_tolerance)
    text = write_tables(rows, args.out)
    differing = [row for row in rows if not row["ok"]]
    print(text)
    for row in differing:
        log.error("%s epoch %s %s: recorded %s, rerun %s", row["run"], row["epoch"], row["quantity"],
                  row["recorded"], row["rerun"])  # fmt: skip
    log.info("%d numbers compared, %d differ; tables in %s", len(rows), len(differing), args.out)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
