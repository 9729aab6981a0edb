"""A metric of groups of ``dslgraph train`` runs against one of their settings: one CSV table and one PNG
plot (Recall@20 against the L2 weight for dense and sparse runs, say).

Each ``--curve NAME FOLDER [FOLDER ...]`` names a curve and its runs (output folders, each holding its
``metrics.json``, the best epoch's metric on ``--split``); the setting's value is read from each run's
recorded settings, and the runs of one curve at one value (its seeds) are averaged. The table has one row per
(curve, value): how many runs, their mean, lowest and highest; the plot draws each curve's means, the lowest
to highest as error bars. Runs of one curve whose other settings differ (besides the seeds, threads, device,
progress bar and data root; among the settings every run records) are logged as a warning naming them, since
the curve would then mix more than the setting:

    python benchmarks/plot_setting.py --setting reg_weight --log-x \\
        --curve dense docs/results/lastfm-l2/dense-reg* \\
        --curve "DSL 50%" docs/results/lastfm-l2/s0.5-reg1e-3* --out docs/results/lastfm-l2/recall_vs_l2
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from statistics import mean

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from common import checked_outputs, write_csv  # noqa: E402
from plot_history import finish  # noqa: E402
from summary import read_summary  # noqa: E402

log = logging.getLogger("plot_setting")

#: Settings that may differ between the runs of one curve without a warning: none changes what is trained
#: but the seed (which the curve's runs are meant to vary) and where the dataset's files lie; how often a run
#: checkpoints and the batches it is evaluated in change none of its numbers.
VARYING = (
    "seed",
    "split_seed",
    "threads",
    "device",
    "progress",
    "root",
    "checkpoint_every",
    "eval_batch_size",
)


def run_point(folder: Path, setting: str, split: str, metric: str) -> tuple[object, float, dict]:
    """The run's value of ``setting``, its ``metric`` on ``split`` and its settings; stops naming the run
    where one is missing."""
    if not (folder / "metrics.json").is_file():
        raise SystemExit(f"{folder}: not a run folder (no metrics.json)")
    summary = read_summary(folder / "metrics.json")
    settings = {**summary.get("config", {}), **summary.get("settings", {})}
    if setting not in settings:
        raise SystemExit(f"{folder}: its metrics.json records no setting {setting!r}")
    value = (summary.get(split) or {}).get(metric)
    if value is None:
        raise SystemExit(f"{folder}: its metrics.json holds no {split} {metric}")
    return settings[setting], value, settings


def warn_differing(what: str, points: list[tuple[object, float, dict]], setting: str) -> None:
    """Logs a warning naming the settings besides ``setting`` and :data:`VARYING` in which the runs of
    ``points`` (from :func:`run_point`) differ."""
    # a setting some runs do not record (one dslgraph added after they were made) is not compared
    keys = set.intersection(*(set(settings) for _, _, settings in points)) - {setting, *VARYING}
    differing = [key for key in sorted(keys) if len({repr(s[key]) for _, _, s in points}) > 1]
    if differing:
        log.warning("%s: its runs differ in %s, not only in %s", what, ", ".join(differing), setting)


def curve_rows(name: str, folders: list[Path], setting: str, split: str, metric: str) -> list[dict]:
    points = [run_point(folder, setting, split, metric) for folder in folders]
    warn_differing(f"curve {name!r}", points, setting)
    by_value: dict[object, list[float]] = {}
    for value, result, _ in points:
        by_value.setdefault(value, []).append(result)
    key = f"{split}_{metric}"
    return [
        {
            "curve": name,
            setting: value,
            "runs": len(results),
            f"mean_{key}": mean(results),
            f"min_{key}": min(results),
            f"max_{key}": max(results),
        }
        for value, results in sorted(by_value.items())
    ]


def plot(rows: list[dict], setting: str, key: str, log_x: bool, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(row["curve"] for row in rows):
        own = [row for row in rows if row["curve"] == name]
        x = [row[setting] for row in own]
        y = [row[f"mean_{key}"] for row in own]
        spread = [
            [row[f"mean_{key}"] - row[f"min_{key}"] for row in own],
            [row[f"max_{key}"] - row[f"mean_{key}"] for row in own],
        ]
        ax.errorbar(x, y, yerr=spread, marker="o", markersize=4, capsize=3, label=name)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(setting)
    ax.set_ylabel(key.replace("_", " ", 1))
    finish(fig, ax, path)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setting", required=True, help="a key of the runs' settings (reg_weight, lr, ...)")
    parser.add_argument("--curve", nargs="+", action="append", required=True, metavar=("NAME", "FOLDER"))
    parser.add_argument("--metric", default="recall@20")
    parser.add_argument("--split", default="test", choices=["test", "validation"])
    parser.add_argument("--log-x", action="store_true", help="a logarithmic axis for the setting")
    parser.add_argument("--out", required=True, help="path without suffix: OUT.csv and OUT.png are written")
    args = parser.parse_args()
    for curve in args.curve:
        if len(curve) < 2:
            parser.error(f"--curve {curve[0]} names no run folder: --curve NAME FOLDER [FOLDER ...]")
    names = [curve[0] for curve in args.curve]
    twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:
        parser.error(f"the curve name {twice!r} is given twice: name each curve differently")
    table, figure = checked_outputs(parser, args.out)  # a folder's files were written beside it
    rows = [
        row
        for name, *folders in args.curve
        for row in curve_rows(name, [Path(f) for f in folders], args.setting, args.split, args.metric)
    ]
    write_csv(rows, table)
    plot(rows, args.setting, f"{args.split}_{args.metric}", args.log_x, figure)
    print(f"wrote {table} and {figure}")


if __name__ == "__main__":
    main()
