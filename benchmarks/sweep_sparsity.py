"""Quality and cost of a model across sparsity levels, with the static-mask ablation.

Runs ``dslgraph train`` settings for each sparsity (0 = dense) with the same epoch budget, then the
same masks never updated (``--static-mask``) at the given ablation sparsities, then (``--same-budget``,
LightGCN and UltraGCN) a dense model whose embedding size ``round(d x (1 - s))`` has the parameter
budget of sparsity ``s`` — the baseline a sparse table has to beat to be worth its indices — and writes
``<out>/sweep.csv``, ``<out>/sweep.md`` and ``<out>/quality_vs_sparsity.png`` (Recall@20, or HR@20
under the leave-one-out protocol, against sparsity).

    python benchmarks/sweep_sparsity.py --dataset lastfm --epochs 150 --update-interval 100 \\
        --sparsities 0 0.5 0.8 0.9 0.95 --static 0.8 --out runs/lastfm
    python benchmarks/sweep_sparsity.py --model neumf --dataset ml-1m-lcf --epochs 20 \\
        --update-interval 2000 --sparsities 0 0.5 0.8 --static --out runs/ml-1m/neumf

``--collect RUN ...`` tabulates and plots runs that ``dslgraph train`` made one by one instead (in parallel,
resumed, on a GPU): each RUN folder's ``metrics.json`` says its settings; a dense run narrower than the widest
one counts as the same-budget baseline of sparsity ``1 - width / widest``. A sweep into an ``--out`` whose
``runs/`` holds an earlier sweep's runs is refused, as ``dslgraph train`` refuses an earlier run's folder:
``--overwrite`` starts them afresh; to finish them, resume each with ``dslgraph train --resume`` and
``--collect`` them.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import logging
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from common import (  # noqa: E402
    add_settings_option,
    check_output,
    markdown_table,
    save_figure,
    sparsity_level,
    write_csv,
    write_text,
)
from summary import read_summary  # noqa: E402

from dslgraph.cli import run_training  # noqa: E402
from dslgraph.config import ConfigError, validate  # noqa: E402
from dslgraph.nn import MODELS  # noqa: E402
from dslgraph.train.checkpoint import earlier_run_files, remove_run_files  # noqa: E402
from dslgraph.train.trainer import stopped_early  # noqa: E402

SAME_BUDGET = "dense, same budget"
SAME_BUDGET_MODELS = ("lightgcn", "ultragcn")
COLUMNS = [
    "model",
    "dataset",
    "protocol",
    "sparsity",
    "mask",
    "mask_init",
    "optimizer_state",
    "epochs",
    "best_epoch",
    "recall@20",
    "capped_recall@20",
    "hr@20",
    "ndcg@20",
    "train_seconds",
    "active_entries",
    "parameter_bytes",
    "optimizer_state_bytes",
    "workspace_bytes",
    "bytes_ratio",
    "train_macs_per_iteration",
    "dense_train_macs_per_iteration",
    "training_savings",
    "inference_macs",
    "inference_savings",
    "naive_savings",
]


def row_for(summary: dict, settings: dict, mask: str) -> dict:
    return {
        "model": settings["model"],
        "dataset": settings["dataset"],
        "protocol": settings["protocol"],
        "sparsity": settings["sparsity"],
        "mask": mask,
        # runs before the 12th session recorded no mask_init: theirs was random
        "mask_init": settings.get("mask_init", "random") if settings["sparsity"] else "",
        "optimizer_state": settings["optimizer_state"] if settings["sparsity"] else "",
        "epochs": summary["epochs"],
        "best_epoch": summary["best_epoch"],
        **{  # no recall under the sampled protocol, no capped recall in runs before the 12th session
            key: round(summary["test"][key], 4) if key in summary["test"] else ""
            for key in ("recall@20", "capped_recall@20")
        },
        "hr@20": round(summary["test"]["hr@20"], 4),
        "ndcg@20": round(summary["test"]["ndcg@20"], 4),
        "train_seconds": summary["train_seconds"],
        "active_entries": sum(summary["active_entries"].values()) or "",
        "parameter_bytes": summary["parameter_bytes"],
        "optimizer_state_bytes": summary["optimizer_state_bytes"],
        "workspace_bytes": summary.get("workspace_bytes", ""),  # not in runs before the 8th session
        "bytes_ratio": round(summary["bytes_ratio"], 3),
        "train_macs_per_iteration": int(summary["macs"]["train_iteration"]),
        "dense_train_macs_per_iteration": int(summary["dense_macs"]["train_iteration"]),
        "training_savings": round(summary["training_savings"], 3),
        "inference_macs": int(summary["macs"]["inference"]),
        "inference_savings": round(summary["inference_savings"], 4),
        "naive_savings": round(summary["naive_savings"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="lightgcn")
    parser.add_argument("--dataset", default="lastfm")
    parser.add_argument("--root", default=None)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--update-interval", type=int, default=100)
    parser.add_argument("--sparsities", type=float, nargs="*", default=[0, 0.5, 0.8, 0.9, 0.95])
    # a static mask at 0 is the dense run again; a same-budget S outside (0, 1) made a width of 1 (S >= 1) or
    # one wider than d (S < 0), and trained it under the sparsity given
    parser.add_argument("--static", type=sparsity_level, nargs="*", default=[0.8])
    parser.add_argument(
        "--same-budget",
        type=sparsity_level,
        nargs="*",
        default=[],
        metavar="S",
        help="also train dense models with embedding size round(d x (1 - S))",
    )
    parser.add_argument("--optimizer-states", nargs="+", default=["reset"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    add_settings_option(
        parser, "other dslgraph settings for every run, VALUE as JSON or text (e.g. lr=0.01 mask_init=degree)"
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        default=[],
        metavar="DIR",
        help="only merge the sweep.csv of these folders into --out (tables and plot)",
    )
    parser.add_argument(
        "--collect",
        nargs="+",
        default=[],
        metavar="RUN",
        help="only tabulate and plot these finished dslgraph train output folders into --out",
    )
    parser.add_argument(
        "--at-epoch",
        type=int,
        default=None,
        metavar="N",
        help="with --collect: each run's evaluation at epoch N instead of its best (runs cut short, which "
        "--collect refuses otherwise)",
    )
    parser.add_argument(
        "--out",
        default="runs/sweep",
        help="the folder of sweep.csv, sweep.md, the plot and runs/ (default runs/sweep; docs/results/ holds "
        "the committed sweeps)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh where --out/runs holds an earlier sweep's runs (as dslgraph train --overwrite)",
    )
    args = parser.parse_args()
    if args.merge and args.collect:
        parser.error("--merge and --collect each make the tables on their own: give one of them")
    if args.at_epoch is not None and not args.collect:
        parser.error("--at-epoch picks an evaluation of each --collect run: it needs --collect RUN ...")
    if args.overwrite and (args.merge or args.collect):
        parser.error("--overwrite is for the runs a sweep trains; --collect and --merge train none")
    if not (args.merge or args.collect or args.sparsities or args.static or args.same_budget):
        parser.error(
            "nothing to train: give --sparsities, --static or --same-budget (or --collect / --merge)"
        )
    check_output(parser, "--out", args.out, folder=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    if args.merge:
        folders = given_once([Path(folder) for folder in args.merge], "--merge")
        rows = counted_once([row for folder in folders for row in read_rows(folder / "sweep.csv")])
        if not rows:
            raise SystemExit(f"nothing to merge: the sweep.csv of {', '.join(args.merge)} hold no rows")
        one_experiment(rows, "--merge")
        out.mkdir(parents=True, exist_ok=True)
        write_tables(rows, out)
        plot(rows, out / "quality_vs_sparsity.png")
        return
    if args.collect:
        rows = collect([Path(run) for run in args.collect], args.at_epoch)
        one_experiment(rows, "--collect")
        out.mkdir(parents=True, exist_ok=True)
        write_tables(rows, out)
        plot(rows, out / "quality_vs_sparsity.png")
        return
    extra = dict(args.set)
    if args.same_budget and args.model not in SAME_BUDGET_MODELS:
        parser.error(f"--same-budget needs a model whose weights are its tables: {SAME_BUDGET_MODELS}")
    sparsities = [s + 0.0 for s in args.sparsities]  # -0 is 0: it planned a second dense run, dense-s-0.0
    runs = [
        (s, "dense" if s == 0 else "dynamic", state)
        for s in sparsities
        for state in (args.optimizer_states if s else ["reset"])
    ]
    runs += [(s, "static", "reset") for s in args.static]
    runs += [(s, SAME_BUDGET, "reset") for s in args.same_budget]
    planned = []  # every run's settings checked before the first one trains
    for sparsity, mask, state in runs:
        common = {
            "model": args.model,
            "dataset": args.dataset,
            "root": args.root,
            "epochs": args.epochs,
            "eval_every": args.eval_every,
            "update_interval": args.update_interval,
            "optimizer_state": state,
            "threads": args.threads,
            "device": args.device,
            **extra,
        }
        try:
            if mask == SAME_BUDGET:
                full_dim = validate(common)["embedding_dim"] or default_dim(args.model)
                settings = validate(common | {"embedding_dim": max(1, round(full_dim * (1 - sparsity)))})
            else:
                full_dim = None
                settings = validate(common | {"sparsity": sparsity, "static_mask": mask == "static"})
        except ConfigError as exc:
            parser.error(str(exc))
        if 20 not in settings["ks"]:  # a KeyError in the table, after the first run had trained
            parser.error(f"the tables compare metrics @20: ks {settings['ks']} must hold 20")
        name = f"{re.sub('[^a-z]+', '-', mask)}-s{sparsity}-{state}"
        if name in (other[0] for other in planned):  # one folder trained twice, its row counted twice
            parser.error(f"the run {name} is asked for twice (a sparsity listed twice?)")
        planned.append((name, sparsity, mask, settings, full_dim))
    # a rerun would train over an earlier sweep's runs file by file, leaving folders of both where it stops
    earlier = [out / "runs" / name for name, *_ in planned if earlier_run_files(out / "runs" / name)]
    if earlier and not args.overwrite:
        parser.error(
            f"{', '.join(map(str, earlier))} hold(s) an earlier sweep's runs: start afresh with --overwrite, "
            "or pass another --out (to finish them instead: dslgraph train --output RUN --resume, then "
            "--collect)"
        )
    for folder in earlier:  # a sweep is replaced whole, before its first run: none is left to mix with it
        remove_run_files(folder, earlier_run_files(folder))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, sparsity, mask, settings, full_dim in planned:
        summary = run_training(settings, str(out / "runs" / name), progress=False)
        rows.append(row_for(summary, settings, mask))
        if mask == SAME_BUDGET:  # a sparsity-s budget, spent on a dense table of the smaller width
            rows[-1] |= {"sparsity": sparsity, "bytes_ratio": round(settings["embedding_dim"] / full_dim, 3)}
        logging.info("%s: %s", name, json.dumps(rows[-1]))
        write_tables(rows, out)
    plot(rows, out / "quality_vs_sparsity.png")


def given_once(folders: list[Path], flag: str) -> list[Path]:
    """``folders``, refused where one is given twice (also as another path): its rows would count twice."""
    seen = {}
    for folder in folders:
        if folder.resolve() in seen:
            raise SystemExit(f"{folder}: given twice to {flag} (as {seen[folder.resolve()]} before)")
        seen[folder.resolve()] = folder
    return folders


def counted_once(rows: list[dict]) -> list[dict]:
    """``rows`` less the repeats of a row (equal in every column: the same run), which a folder merged into
    another holds twice: ``--merge A B --out A`` wrote A's and B's rows into A, and once more B's twice."""
    first = {}
    for row in rows:
        first.setdefault(tuple(row[key] for key in COLUMNS), row)
    kept = list(first.values())
    if len(kept) < len(rows):
        logging.warning(
            "%d row(s) found more than once in the --merge folders (one merged into another?) counted once",
            len(rows) - len(kept),
        )
    return kept


def one_experiment(rows: list[dict], flag: str) -> None:
    """Refuses ``rows`` of several models, datasets or protocols (rows of sweeps that predate the model and
    protocol columns leave them empty): the plot joined their points in one line, under the first one's title
    and dense line, and ``--collect`` took the widest run of all for each one's same-budget baseline."""
    for key in ("model", "dataset", "protocol"):
        values = sorted({row[key] for row in rows if row[key] != ""})
        if len(values) > 1:
            raise SystemExit(
                f"{flag}: its runs are of {len(values)} {key}s, {values}: a sweep's table and plot compare "
                f"one {key}'s runs; give each its own {flag} and --out"
            )


def finished_summary(run: Path) -> dict:
    """The ``metrics.json`` of the finished ``dslgraph train`` run in ``run``, refused naming the folder where
    there is none or where the run has not finished: its file then holds no settings and no cost report, and
    a table without the run would compare the others silently (its dense baseline, its widest run)."""
    path = run / "metrics.json"
    if not path.is_file():
        raise SystemExit(
            f"{run}: no metrics.json (not a dslgraph train output folder, or a run not evaluated)"
        )
    summary = read_summary(path)
    if "settings" not in summary:
        raise SystemExit(
            f"{run}: its run has not finished (metrics.json holds no settings yet): let it end, or finish it "
            f"with dslgraph train --output {run} --resume"
        )
    return summary


def collect(runs: list[Path], at_epoch: int | None = None) -> list[dict]:
    """The rows of finished runs, told apart by their recorded settings; with ``at_epoch``, each run's
    evaluation at that epoch stands for the run."""
    summaries = [finished_summary(run) for run in given_once(runs, "--collect")]
    if at_epoch is not None:
        summaries = [at(summary, at_epoch, run) for summary, run in zip(summaries, runs)]
    for summary, run in zip(summaries, runs):
        if at_epoch is None and cut_short(summary):  # its best epoch would stand beside whole schedules'
            raise SystemExit(
                f"{run}: its run stopped after epoch {summary['epochs']} of {summary['settings']['epochs']} "
                f"(max_seconds or stop_after_epoch): finish it with dslgraph train --output {run} --resume, "
                "or compare every run at an epoch all of them evaluated with --at-epoch"
            )
    for summary, run in zip(summaries, runs):
        if "ndcg@20" not in summary["test"]:  # was a KeyError
            raise SystemExit(
                f"{run}: no metrics @20 (evaluated at ks {summary['settings']['ks']}): the tables compare "
                "metrics @20"
            )

    def width(summary: dict) -> int:
        return summary["settings"]["embedding_dim"] or default_dim(summary["settings"]["model"])

    widest = max(width(summary) for summary in summaries)
    rows = []
    for summary in summaries:
        settings = summary["settings"]
        if settings["sparsity"]:
            rows.append(row_for(summary, settings, "static" if settings["static_mask"] else "dynamic"))
        elif width(summary) == widest:
            rows.append(row_for(summary, settings, "dense"))
        else:
            budget = {
                "sparsity": round(1 - width(summary) / widest, 2),
                "bytes_ratio": round(width(summary) / widest, 3),
            }
            rows.append(row_for(summary, settings, SAME_BUDGET) | budget)
    return rows


def cut_short(summary: dict) -> bool:
    """Whether the run of ``summary`` stopped before the end of its schedule other than by patience (the
    scheduled evaluations after its best epoch are the trainer's count of evaluations without a gain)."""
    settings = summary["settings"]
    if summary["epochs"] >= settings["epochs"]:
        return False
    after_best = [
        e for e in summary["history"] if e["epoch"] > summary["best_epoch"] and e.get("scheduled", True)
    ]
    return not stopped_early(len(after_best), settings["patience"])


def at(summary: dict, epoch: int, run: Path) -> dict:
    """``summary`` as if training had stopped after its evaluation at ``epoch``."""
    entry = next((entry for entry in summary["history"] if entry["epoch"] == epoch), None)
    if entry is None:
        evaluated = [entry["epoch"] for entry in summary["history"]]
        raise SystemExit(f"{run}: no evaluation at epoch {epoch} (evaluated at {evaluated})")
    return summary | {
        "test": entry["test"],
        "best_epoch": epoch,
        "epochs": epoch,
        "train_seconds": entry["seconds"],
    }


def default_dim(model: str) -> int:
    """The embedding size ``model`` gets when none is given."""
    return inspect.signature(MODELS[model]).parameters["embedding_dim"].default


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise SystemExit(f"{path.parent}: no sweep.csv (--merge takes folders that a sweep wrote as --out)")
    with path.open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    for line, row in enumerate(rows, 2):  # a sweep.csv's rows are one line each, after the header
        # a copy cut short ends with a row of fewer fields (read as None), which was merged with blank metrics
        if None in row.values() or None in row:
            fields = len(reader.fieldnames or [])
            raise SystemExit(f"{path}, line {line}: not the {fields} fields of its header (copy cut short?)")
        for key in COLUMNS:
            row.setdefault(key, "")  # sweeps written before a column existed
        for key in ("sparsity", "recall@20", "capped_recall@20", "hr@20", "ndcg@20"):
            try:
                row[key] = float(row[key]) if row[key] != "" else ""
            except ValueError:
                raise SystemExit(f"{path}, line {line}: {key} {row[key]!r} is not a number") from None
    return rows


def write_tables(rows: list[dict], out: Path) -> None:
    write_csv(rows, out / "sweep.csv", COLUMNS)
    write_text(out / "sweep.md", markdown_table(rows, COLUMNS))


def plot(rows: list[dict], path: Path) -> None:
    metric = "recall@20" if rows[0]["recall@20"] != "" else "hr@20"
    fig, ax = plt.subplots(figsize=(5, 3.5))
    labels = {"dynamic": "DSL", "static": "static mask", SAME_BUDGET: "dense, d × (1 − sparsity)"}
    for (mask, label), style in zip(labels.items(), ("o-", "s--", "^:")):
        points = sorted(
            (r["sparsity"], r[metric])
            for r in rows
            if r["mask"] in (mask, "dense") and (r["optimizer_state"] in ("reset", ""))
        )
        if len(points) > 1 or mask == "dynamic":
            ax.plot(*zip(*points), style, label=label)
    for r in rows:  # an initial mask other than the paper's random one is named at its point
        if r["mask"] == "dynamic" and r["mask_init"] not in ("random", ""):
            ax.annotate(
                f"{r['mask_init']} mask",
                (r["sparsity"], r[metric]),
                fontsize=8,
                textcoords="offset points",
                xytext=(4, 4),
            )
    dense = [r[metric] for r in rows if r["mask"] == "dense"]
    if dense:
        ax.axhline(dense[0], color="grey", lw=0.8, label="dense")
    ax.set_xlabel("sparsity of the sparsified tensors")
    ax.set_ylabel(f"{'Recall' if metric == 'recall@20' else 'HR'}@20 (test)")
    model, protocol = (next((r[key] for r in rows if r[key]), "") for key in ("model", "protocol"))
    ax.set_title(f"{model} on {rows[0]['dataset']} ({protocol} protocol)")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
