"""Two groups of ``dslgraph train`` runs compared seed by seed: is DSL at 50% sparsity at least dense?

Each ``--runs NAME FOLDER [FOLDER ...]`` names a group and its runs (output folders holding their
``metrics.json``); the first group is the reference. Runs are paired by their recorded ``seed`` (and
``split_seed``, where one is set), which on a dataset split by the seed (MovieLens-100K) also pairs the
splits. Writes ``OUT.csv`` (one row per seed: both runs' metric and the difference), ``OUT.md`` (that
table and the summary: the means, their ratio, the mean difference with its 95% Student-t interval, and
how many seeds are above, level or below, a difference under half the tables' last digit counting as
level) and ``OUT.png`` (the differences, their mean and its interval), and prints the summary; the settings
in which the two groups differ are logged. The interval is over seeds only: it says how far the difference
could move with more seeds of the same runs, nothing about other settings (and where every seed differs by
the same amount it is that one point).

    python benchmarks/paired_seeds.py --runs dense docs/results/lastfm-l2/dense-reg1e-3* \\
        --runs "DSL 50%" docs/results/lastfm-l2/s0.5-reg1e-3 docs/results/lastfm-l2/s0.5-reg1e-3-seed* \\
        --out docs/results/lastfm-l2/paired-s0.5
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from statistics import mean, stdev

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from common import checked_outputs, markdown_table, write_csv, write_text  # noqa: E402
from plot_history import finish  # noqa: E402
from plot_setting import VARYING, run_point, warn_differing  # noqa: E402
from scipy import stats  # noqa: E402

#: The confidence of the interval on the mean difference.
CONFIDENCE = 0.95
#: Differences smaller than this count as level: the tables show four decimals.
LEVEL = 0.5e-4

log = logging.getLogger("paired_seeds")


def group_results(name: str, folders: list[Path], split: str, metric: str) -> dict[tuple, tuple]:
    """``(seed, split_seed)`` → (the run's ``metric`` on ``split``, its folder, its settings), for the runs of
    one group; two runs of one seed, or a metric that is not finite, stop the script naming the runs."""
    points = [run_point(folder, "seed", split, metric) for folder in folders]
    warn_differing(f"group {name!r}", points, "seed")
    results: dict[tuple, tuple] = {}
    for folder, (seed, value, settings) in zip(folders, points):
        if not math.isfinite(value):
            raise SystemExit(f"group {name!r}: {folder} records {split} {metric} = {value}: a diverged run?")
        key = (seed, settings.get("split_seed"))
        if key in results:
            raise SystemExit(
                f"group {name!r}: {results[key][1]} and {folder} are both seed {_seed(key)}: keep one of them"
            )
        results[key] = (value, folder, settings)
    return results


def log_differences(reference: dict, other: dict, names: tuple[str, str]) -> None:
    """Logs the settings (besides the seeds and what :data:`plot_setting.VARYING` allows) in which the two
    groups' runs differ: what the comparison is about, and anything it was not meant to be about."""
    first = [next(iter(group.values()))[2] for group in (reference, other)]
    keys = (set(first[0]) & set(first[1])) - set(VARYING)
    differing = [
        f"{key} ({first[0][key]!r} / {first[1][key]!r})"
        for key in sorted(keys)
        if first[0][key] != first[1][key]
    ]
    log.info("%s and %s differ in %s", *names, ", ".join(differing) or "no recorded setting")


def _seed(key: tuple) -> str:
    seed, split_seed = key
    return str(seed) if split_seed is None else f"{seed} (split seed {split_seed})"


def paired_rows(reference: dict, other: dict, names: tuple[str, str]) -> list[dict]:
    """One row per seed both groups ran; a seed only one group ran stops the script naming it."""
    for a, b, name in ((reference, other, names[1]), (other, reference, names[0])):
        missing = [_seed(key) for key in a if key not in b]
        if missing:
            raise SystemExit(f"group {name!r} has no run of seed {', '.join(missing)}: pair every run")
    keys = sorted(reference, key=lambda key: (key[0], -1 if key[1] is None else key[1]))
    return [
        {
            "seed": _seed(key),
            names[0]: reference[key][0],
            names[1]: other[key][0],
            "difference": other[key][0] - reference[key][0],
        }
        for key in keys
    ]


def summary(rows: list[dict], names: tuple[str, str]) -> dict:
    """The means of both groups, their ratio, the mean difference and its Student-t interval over seeds."""
    n = len(rows)
    differences = [row["difference"] for row in rows]
    spread = stdev(differences)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * spread / math.sqrt(n)
    reference, other = mean(row[names[0]] for row in rows), mean(row[names[1]] for row in rows)
    centre = mean(differences)
    return {
        "seeds": n,
        "reference_mean": reference,
        "mean": other,
        "ratio": other / reference if reference else math.nan,
        "mean_difference": centre,
        "difference_sd": spread,
        "interval": (centre - half, centre + half),
        "above": sum(d >= LEVEL for d in differences),
        "level": sum(abs(d) < LEVEL for d in differences),
        "below": sum(d <= -LEVEL for d in differences),
    }


def describe(result: dict, names: tuple[str, str], metric: str) -> str:
    lo, hi = result["interval"]
    if lo > 0:
        reading = f"{names[1]} is above {names[0]}: the interval lies above 0"
    elif hi < 0:
        reading = f"{names[1]} is below {names[0]}: the interval lies below 0"
    else:
        reading = f"the seeds do not tell {names[1]} from {names[0]}: the interval holds 0"
    return (
        f"{result['seeds']} seeds, {metric}: {names[0]} mean {result['reference_mean']:.4f}, {names[1]} mean "
        f"{result['mean']:.4f} ({result['ratio']:.3f}x); {names[1]} - {names[0]} per seed: mean "
        f"{result['mean_difference']:+.4f}, sd {result['difference_sd']:.4f}, {CONFIDENCE:.0%} interval "
        f"[{lo:+.4f}, {hi:+.4f}]; above / level / below on {result['above']} / {result['level']} / "
        f"{result['below']} seeds. Reading: {reading}.\n"
    )


def plot(rows: list[dict], result: dict, names: tuple[str, str], metric: str, path: Path) -> None:
    """Each seed's difference as a bar, the mean as a line and its interval as a band, against 0."""
    fig, ax = plt.subplots(figsize=(6, 4))
    at = range(len(rows))  # positions, labelled with the seeds (matplotlib logs strings of digits it plots)
    ax.bar(at, [row["difference"] for row in rows], color="tab:blue", alpha=0.7, label="per seed")
    ax.set_xticks(at, [row["seed"] for row in rows])
    ax.axhline(result["mean_difference"], color="tab:red", label=f"mean {result['mean_difference']:+.4f}")
    ax.axhspan(*result["interval"], color="tab:red", alpha=0.15, label=f"{CONFIDENCE:.0%} interval")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("seed")
    ax.set_ylabel(f"{names[1]} - {names[0]}, {metric}")
    finish(fig, ax, path)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        action="append",
        required=True,
        metavar=("NAME", "FOLDER"),
        help="a group's name and its run folders; twice, the reference first",
    )
    parser.add_argument("--metric", default="recall@20")
    parser.add_argument("--split", default="test", choices=["test", "validation"])
    parser.add_argument(
        "--out", required=True, help="path without suffix: OUT.csv, OUT.md and OUT.png are written"
    )
    args = parser.parse_args()
    if len(args.runs) != 2:
        parser.error(f"--runs is given {len(args.runs)} times: give it twice, the reference group first")
    for group in args.runs:
        if len(group) < 2:
            parser.error(f"--runs {group[0]} names no run folder: --runs NAME FOLDER [FOLDER ...]")
    names = (args.runs[0][0], args.runs[1][0])
    if names[0] == names[1]:
        parser.error(f"both groups are named {names[0]!r}: name them differently")
    taken = next((name for name in names if name in ("seed", "difference")), None)
    if taken is not None:
        parser.error(f"a group named {taken!r} would share the table's column of that name: rename it")
    table, text, figure = checked_outputs(parser, args.out, ("csv", "md", "png"))
    reference, other = (
        group_results(name, [Path(f) for f in folders], args.split, args.metric)
        for name, *folders in args.runs
    )
    log_differences(reference, other, names)
    rows = paired_rows(reference, other, names)
    if len(rows) < 2:
        raise SystemExit("one seed only: an interval over seeds needs at least two pairs of runs")
    result = summary(rows, names)
    line = describe(result, names, f"{args.split} {args.metric}")
    shown = [
        {key: f"{value:.4f}" if isinstance(value, float) else value for key, value in row.items()}
        for row in rows
    ]
    write_csv(rows, table)
    write_text(text, markdown_table(shown, list(rows[0])) + "\n" + line)
    plot(rows, result, names, f"{args.split} {args.metric}", figure)
    print(line, end="")
    print(f"wrote {table}, {text} and {figure}")


if __name__ == "__main__":
    main()
