"""Per-model MACs and bytes, dense vs sparse, from the ``metrics.json`` of finished runs.

Reads every ``<folder>/**/metrics.json`` written by ``dslgraph train`` (or the sweeps), one row per run:
the three MAC counts of a training iteration and a full-ranking inference (dense reference, what dslgraph's
kernels execute, and the ideal count where every sparsified tensor costs its active entries, the paper's way)
with their savings, the bytes of parameters plus optimizer state against the dense reference, and the bytes of
the sparse tables' propagation plans (``workspace_bytes``, left empty for runs that predate it).

    python benchmarks/cost_table.py docs/results/ml-1m --out docs/results/ml-1m/cost
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import write_csv

COLUMNS = (
    "model", "run", "sparsity", "train_macs_dense", "train_macs_executed", "train_macs_ideal",
    "training_savings", "ideal_training_savings", "inference_macs_dense", "inference_savings",
    "ideal_inference_savings", "bytes", "dense_bytes", "bytes_ratio", "workspace_bytes",
)  # fmt: skip


def row_for(path: Path) -> dict | None:
    summary = json.loads(path.read_text())
    if "dense_macs" not in summary:
        return None
    # runs of a sweep sit in <model>/runs/<run>/; older summaries do not record the model's name
    in_sweep = path.parent.parent.name == "runs"
    folder = path.parts[-4] if in_sweep else path.parent.name
    model = summary.get("settings", {}).get("model", folder)
    return {
        "model": model,
        "run": f"{folder}/{path.parent.name}" if in_sweep else path.parent.name,
        "sparsity": round(summary["sparsity"], 3),
        "train_macs_dense": int(summary["dense_macs"]["train_iteration"]),
        "train_macs_executed": int(summary["macs"]["train_iteration"]),
        "train_macs_ideal": int(summary["ideal_macs"]["train_iteration"]),
        "training_savings": round(summary["training_savings"], 3),
        "ideal_training_savings": round(summary["ideal_training_savings"], 3),
        "inference_macs_dense": int(summary["dense_macs"]["inference"]),
        "inference_savings": round(summary["inference_savings"], 3),
        "ideal_inference_savings": round(summary["ideal_inference_savings"], 3),
        "bytes": summary["parameter_bytes"] + summary["optimizer_state_bytes"],
        "dense_bytes": summary["dense_parameter_bytes"] + summary["dense_optimizer_state_bytes"],
        "bytes_ratio": round(summary["bytes_ratio"], 3),
        "workspace_bytes": summary.get("workspace_bytes", ""),  # not in runs before the 8th session
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--out", required=True, help="writes OUT.csv and OUT.md")
    args = parser.parse_args()
    paths = sorted(p for folder in args.folders for p in Path(folder).glob("**/metrics.json"))
    rows = [row for row in map(row_for, paths) if row is not None]
    if not rows:
        raise SystemExit(f"no metrics.json with cost accounting under {args.folders}")
    write_csv(rows, f"{args.out}.csv")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in rows]
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
