"""A metric along training for several ``dslgraph train`` runs: one CSV table and one PNG plot.

Each RUN is ``NAME=FOLDER`` (a run's output folder, holding its ``metrics.json``). The table has one row
per (run, evaluated epoch) with the epoch, the training seconds so far and the metric on ``--split``, in a
column that names both (``test_recall@20``); the plot draws the metric against the epoch, its axis named
the same way (``test recall@20``), with each ``--reference NAME=VALUE`` as a horizontal line named in the
legend (a paper's number, a target):

    python benchmarks/plot_history.py b16k=docs/results/gowalla/h200/reproduce-s7/b16k \\
        b32k=docs/results/gowalla/h200/reproduce-s7/b32k --reference paper=0.1830 target=0.180 \\
        --out docs/results/gowalla/h200/reproduce-s7/recall
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from common import checked_outputs, save_figure, write_csv  # noqa: E402
from summary import read_summary  # noqa: E402


def named(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def reference(text: str) -> tuple[str, float]:
    name, value = named(text)
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: {value!r} is not a number") from None


def column(split: str, metric: str) -> str:
    """The table's column of ``metric`` read from ``split`` (a run with a validation split has both)."""
    return f"{split}_{metric}"


def history(name: str, folder: Path, metric: str, split: str) -> list[dict]:
    """The run's evaluations as table rows; fails naming the run where the metric is missing."""
    path = folder / "metrics.json"
    if not path.is_file():
        raise SystemExit(f"{name}: no metrics.json in {folder}")
    entries = read_summary(path).get("history", [])
    key = column(split, metric)
    rows = [
        {"run": name, "epoch": e["epoch"], "train_seconds": e["seconds"], key: e[split][metric]}
        for e in entries
        if (e.get(split) or {}).get(metric) is not None
    ]
    if not rows:
        raise SystemExit(f"{name}: no {split} {metric} in {path}")
    return rows


def plot(rows: list[dict], split: str, metric: str, references: list[tuple[str, float]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(row["run"] for row in rows):
        points = [(row["epoch"], row[column(split, metric)]) for row in rows if row["run"] == name]
        ax.plot(*zip(*points), marker="o", markersize=3, label=name)
    for (name, value), style in zip(references, itertools.cycle(["--", ":", "-."])):
        ax.axhline(value, linestyle=style, linewidth=1, color="grey", label=f"{name} {value:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{split} {metric}")
    finish(fig, ax, path)


def finish(fig, ax, path: Path) -> None:
    """Grid, legend and layout, then ``fig`` written to ``path`` (write then rename) and closed."""
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=named, metavar="NAME=FOLDER")
    parser.add_argument("--metric", default="recall@20")
    parser.add_argument("--split", default="test", choices=["test", "validation"])
    parser.add_argument("--reference", nargs="*", default=[], type=reference, metavar="NAME=VALUE")
    parser.add_argument("--out", required=True, help="path without suffix: OUT.csv and OUT.png are written")
    args = parser.parse_args()
    names = [name for name, _ in args.runs]
    twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:  # the two runs' evaluations would be drawn as one line
        parser.error(f"the run name {twice!r} is given twice: name each run differently")
    table, figure = checked_outputs(parser, args.out)
    rows = [row for name, folder in args.runs for row in history(name, Path(folder), args.metric, args.split)]
    write_csv(rows, table)
    plot(rows, args.split, args.metric, args.reference, figure)
    print(f"wrote {table} and {figure}")


if __name__ == "__main__":
    main()
