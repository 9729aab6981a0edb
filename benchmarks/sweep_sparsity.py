"""Quality and cost of a model across sparsity levels, with the static-mask ablation.

Runs ``dslgraph train`` settings for each sparsity (0 = dense) with the same epoch budget, then the
same masks never updated (``--static-mask``) at the given ablation sparsities, and writes
``<out>/sweep.csv``, ``<out>/sweep.md`` and ``<out>/quality_vs_sparsity.png`` (Recall@20, or HR@20
under the leave-one-out protocol, against sparsity).

    python benchmarks/sweep_sparsity.py --dataset lastfm --epochs 150 --update-interval 100 \
        --sparsities 0 0.5 0.8 0.9 0.95 --static 0.8 --out docs/results/lastfm
    python benchmarks/sweep_sparsity.py --model neumf --dataset ml-1m-lcf --epochs 20 \
        --update-interval 2000 --sparsities 0 0.5 0.8 --static --out docs/results/ml-1m/neumf
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dslgraph.cli import run_training  # noqa: E402
from dslgraph.config import validate  # noqa: E402

COLUMNS = [
    "model",
    "dataset",
    "protocol",
    "sparsity",
    "mask",
    "optimizer_state",
    "epochs",
    "best_epoch",
    "recall@20",
    "hr@20",
    "ndcg@20",
    "train_seconds",
    "active_entries",
    "parameter_bytes",
    "optimizer_state_bytes",
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
        "optimizer_state": settings["optimizer_state"] if settings["sparsity"] else "",
        "epochs": summary["epochs"],
        "best_epoch": summary["best_epoch"],
        "recall@20": round(summary["test"]["recall@20"], 4) if "recall@20" in summary["test"] else "",
        "hr@20": round(summary["test"]["hr@20"], 4),
        "ndcg@20": round(summary["test"]["ndcg@20"], 4),
        "train_seconds": summary["train_seconds"],
        "active_entries": sum(summary["active_entries"].values()) or "",
        "parameter_bytes": summary["parameter_bytes"],
        "optimizer_state_bytes": summary["optimizer_state_bytes"],
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
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0, 0.5, 0.8, 0.9, 0.95])
    parser.add_argument("--static", type=float, nargs="*", default=[0.8])
    parser.add_argument("--optimizer-states", nargs="+", default=["reset"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="other dslgraph settings for every run, VALUE as JSON (e.g. lr=0.01)",
    )
    parser.add_argument(
        "--merge",
        nargs="*",
        default=[],
        metavar="DIR",
        help="only merge the sweep.csv of these folders into --out (tables and plot)",
    )
    parser.add_argument("--out", default="docs/results/lastfm")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.merge:
        rows = [row for folder in args.merge for row in read_rows(Path(folder) / "sweep.csv")]
        write_tables(rows, out)
        plot(rows, out / "quality_vs_sparsity.png")
        return
    extra = {key: json.loads(value) for key, _, value in (item.partition("=") for item in args.set)}
    runs = [
        (s, False, state) for s in args.sparsities for state in (args.optimizer_states if s else ["reset"])
    ]
    runs += [(s, True, "reset") for s in args.static]
    rows = []
    for sparsity, static, state in runs:
        mask = "dense" if sparsity == 0 else ("static" if static else "dynamic")
        settings = validate(
            {
                "model": args.model,
                "dataset": args.dataset,
                "root": args.root,
                "epochs": args.epochs,
                "eval_every": args.eval_every,
                "sparsity": sparsity,
                "static_mask": static,
                "update_interval": args.update_interval,
                "optimizer_state": state,
                "threads": args.threads,
                "device": args.device,
                **extra,
            }
        )
        name = f"{mask}-s{sparsity}-{state}"
        summary = run_training(settings, str(out / "runs" / name), progress=False)
        rows.append(row_for(summary, settings, mask))
        logging.info("%s: %s", name, json.dumps(rows[-1]))
        write_tables(rows, out)
    plot(rows, out / "quality_vs_sparsity.png")


def read_rows(path: Path) -> list[dict]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in ("sparsity", "recall@20", "hr@20", "ndcg@20"):
            row[key] = float(row[key]) if row.get(key) not in (None, "") else ""
    return rows


def write_tables(rows: list[dict], out: Path) -> None:
    with (out / "sweep.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in rows]
    (out / "sweep.md").write_text("\n".join(lines) + "\n")


def plot(rows: list[dict], path: Path) -> None:
    metric = "recall@20" if rows[0]["recall@20"] != "" else "hr@20"
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for mask, style in (("dynamic", "o-"), ("static", "s--")):
        points = sorted(
            (r["sparsity"], r[metric])
            for r in rows
            if r["mask"] in (mask, "dense") and (r["optimizer_state"] in ("reset", ""))
        )
        if len(points) > 1 or mask == "dynamic":
            ax.plot(*zip(*points), style, label="DSL" if mask == "dynamic" else "static mask")
    dense = [r[metric] for r in rows if r["mask"] == "dense"]
    if dense:
        ax.axhline(dense[0], color="grey", lw=0.8, label="dense")
    ax.set_xlabel("sparsity of the sparsified tensors")
    ax.set_ylabel(f"{'Recall' if metric == 'recall@20' else 'HR'}@20 (test)")
    ax.set_title(f"{rows[0]['model']} on {rows[0]['dataset']} ({rows[0]['protocol']} protocol)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
